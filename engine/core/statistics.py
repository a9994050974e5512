"""Statistics of the tallies: Wilson intervals of rates and quantiles of the fixed-bin delay
histograms (shared by the tables, the comparisons and the calibration)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from kernels.layout import HIST_OVERFLOW, N_HIST_BINS, histogram_edges

Z_95 = 1.959963984540054  # Φ⁻¹(0.975)


@lru_cache(maxsize=1)
def _edges() -> np.ndarray:
    edges = histogram_edges()
    edges.setflags(write=False)
    return edges


def histogram_quantiles(hist: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """Quantiles of the values counted in fixed-bin delay histograms.

    ``hist``: integer counts, shape ``(..., N_HIST_BINS)`` (bins of :func:`histogram_edges`).
    Returns float64 of shape ``(..., len(qs))``.  The ``q``-quantile is the value at which the
    cumulative count reaches ``q · n``, interpolated linearly within the bin where that happens
    (counts spread uniformly over the bin); ``q = 0`` gives the lower edge of the first non-empty
    bin.  In the overflow bin (no upper edge) the result is the bin's lower edge.  NaN where
    ``n == 0``.
    """
    h = np.asarray(hist)
    if h.shape[-1:] != (N_HIST_BINS,):
        raise ValueError(f"histogram must have {N_HIST_BINS} bins on its last axis, got {h.shape}")
    q = np.asarray(qs, dtype=np.float64).reshape(-1)
    if np.any(~(q >= 0.0) | ~(q <= 1.0)):
        raise ValueError(f"quantile levels must lie in [0, 1], got {list(qs)}")
    edges = _edges()
    lower = edges[:-1]
    width = np.diff(edges)
    width[HIST_OVERFLOW] = 0.0  # the overflow bin has no upper edge: report its lower edge
    cum = np.cumsum(h, axis=-1, dtype=np.int64)
    n = cum[..., -1]
    nonempty = h > 0
    out = np.full(h.shape[:-1] + (q.size,), np.nan)
    for i, level in enumerate(q):
        target = level * n
        # first non-empty bin whose cumulative count reaches the target (for target > 0 the first
        # bin reaching it is always non-empty; for target = 0 this skips leading empty bins)
        b = np.argmax((cum >= target[..., None]) & nonempty, axis=-1)
        count = np.take_along_axis(h, b[..., None], axis=-1)[..., 0]
        before = np.take_along_axis(cum, b[..., None], axis=-1)[..., 0] - count
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((target - before) / count, 0.0, 1.0)
        out[..., i] = np.where(n > 0, lower[b] + frac * width[b], np.nan)
    return out


def wilson_interval(successes, n, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion ``successes / n`` (vectorized).

    ``low, high = (p + z²/2n ∓ z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n)``; the bounds are exactly 0
    when ``successes == 0`` and exactly 1 when ``successes == n``.  NaN where ``n == 0``.
    """
    k = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    k, m = np.broadcast_arrays(k, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / m
        z2 = z * z
        denom = 1.0 + z2 / m
        center = (p + z2 / (2.0 * m)) / denom
        half = z / denom * np.sqrt(np.maximum(p * (1.0 - p) / m + z2 / (4.0 * m * m), 0.0))
        low = np.where(k <= 0, 0.0, np.clip(center - half, 0.0, 1.0))
        high = np.where(k >= m, 1.0, np.clip(center + half, 0.0, 1.0))
    empty = ~(m > 0)
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)
