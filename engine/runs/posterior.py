"""Runs whose parameters come from a posterior (``crisis run --posterior``, issue 14, item 2).

The run's trials are cut into blocks of ``trials_per_draw(trials)`` consecutive trials (about
:data:`TARGET_BLOCKS` blocks, at least :data:`MIN_TRIALS_PER_DRAW` trials each).  Block ``b``
takes posterior draw ``⌊u · D⌋``, ``u = uniform(posterior_key(seed_base(seed), b), 0)``
(:mod:`kernels.rng`), ``D`` the number of draws: a pure function of the seed and the trial index,
so a run is the same whatever the thread count or block size.  Each block is simulated with the
scenario at its draw's parameters (:func:`engine.model.parameters.apply_values`) and the tallies
are summed exactly, so the point estimates are posterior means.  Every interval of the summary is
the 2.5–97.5% range, over the blocks, of the value each block gives on its own trials: the spread
of the measure over the posterior (parameter uncertainty) plus the Monte Carlo error of one
block's trials.

``posterior.parquet`` (as written by ``crisis calibrate --method mcmc``) is read like user
input: a regular file (no symbolic link), one float column per parameter (``walker``, ``step``
and ``log_posterior`` are ignored), finite values, 1 … :data:`MAX_DRAWS` rows; its SHA-256 ties
it to the run (``run.json`` and the manifest).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import UserError

META_COLUMNS = ("walker", "step", "log_posterior")
MAX_DRAWS = 1_000_000
MAX_BYTES = 512 * 2**20
TARGET_BLOCKS = 200
MIN_TRIALS_PER_DRAW = 1000


@dataclass(frozen=True)
class Posterior:
    names: tuple[str, ...]
    draws: np.ndarray  # float64 (D, k)
    sha256: str
    source: str

    @property
    def n_draws(self) -> int:
        return int(self.draws.shape[0])

    def values(self, draw: int) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.draws[draw], strict=True)}

    def manifest(self, trials: int) -> dict:
        return {"file": self.source, "sha256": self.sha256, "draws": self.n_draws,
                "parameters": list(self.names), "trials_per_draw": trials_per_draw(trials),
                "interval": "2.5-97.5% over posterior draws of each draw's own estimate "
                            "(parameter and Monte Carlo uncertainty together)"}


def read_posterior(path: str | Path) -> Posterior:
    """The draws of ``path`` (module docstring); a bad file is a :class:`UserError` naming it."""
    path = Path(path)
    if path.is_symlink():
        raise UserError(f"{path}: is a symbolic link; give the posterior file itself")
    if not path.is_file():
        raise UserError(f"{path}: no such posterior file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise UserError(f"{path}: {size:,} bytes is more than a posterior may have "
                        f"({MAX_BYTES:,})")
    data = path.read_bytes()
    try:
        frame = pl.read_parquet(data)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{path}: not a readable Parquet file ({err})") from None
    names = [c for c in frame.columns if c not in META_COLUMNS]
    if not names:
        raise UserError(f"{path}: no parameter column (only {', '.join(frame.columns)})")
    for name in names:
        if not frame[name].dtype.is_numeric():
            raise UserError(f"{path}: column {name!r} is not numeric")
    if not 1 <= frame.height <= MAX_DRAWS:
        raise UserError(f"{path}: {frame.height} draws; a posterior has 1 … {MAX_DRAWS:,}")
    draws = frame.select(names).to_numpy().astype(np.float64)
    if not np.all(np.isfinite(draws)):
        bad = names[int(np.argwhere(~np.isfinite(draws))[0][1])]
        raise UserError(f"{path}: column {bad!r} has a missing or non-finite value")
    return Posterior(tuple(names), draws, hashlib.sha256(data).hexdigest(), str(path))


def trials_per_draw(trials: int) -> int:
    """Trials per posterior draw of a run of ``trials`` trials (module docstring)."""
    return max(MIN_TRIALS_PER_DRAW, math.ceil(trials / TARGET_BLOCKS))


def draw_of_block(seed: int, block: int, n_draws: int) -> int:
    """The posterior draw of trial block ``block`` (module docstring)."""
    from kernels.rng import posterior_key, seed_base, uniform

    base = np.uint64(seed_base(np.int64(seed)))
    u = uniform(np.uint64(posterior_key(base, np.int64(block))), np.int64(0))
    return min(n_draws - 1, int(u * n_draws))


def blocks(start: int, stop: int, trials: int) -> list[tuple[int, int, int]]:
    """(block, first trial, end) of the blocks that meet ``[start, stop)``."""
    size = trials_per_draw(trials)
    return [(b, max(start, b * size), min(stop, (b + 1) * size))
            for b in range(start // size, -(-stop // size))]
