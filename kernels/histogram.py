"""Fixed-bin delay histogram (bins described in :mod:`kernels.layout`)."""

import math

from numba import njit

from .layout import HIST_FINE_BINS, HIST_FINE_LIMIT, HIST_OCTAVES, HIST_OVERFLOW, HIST_SUB_BINS


@njit(cache=True)
def delay_bin(delay_days):
    """Bin index (int) of a delay ≥ 0 in days.

    Below 128 days the bin is ``int(10 · d)``; above, ``frexp`` splits ``d / 128`` into octave
    and mantissa exactly (no log), so every implementation bins the same double the same way.
    """
    if delay_days < HIST_FINE_LIMIT:
        b = int(delay_days * 10.0)
        return min(b, HIST_FINE_BINS - 1)
    x = delay_days / HIST_FINE_LIMIT
    mant, expo = math.frexp(x)  # x = mant · 2^expo, mant in [0.5, 1)
    octave = expo - 1
    if octave >= HIST_OCTAVES:
        return HIST_OVERFLOW
    sub = int((2.0 * mant - 1.0) * HIST_SUB_BINS)
    return HIST_FINE_BINS + octave * HIST_SUB_BINS + sub
