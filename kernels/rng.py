"""Counter-based random numbers keyed by (seed, global trial index, slot).

``trial_key(seed_base(seed), g)`` hashes the seed and the trial index (``pilot_key`` the seed, a
cell and a pilot sample); ``uniform(key, slot)``
hashes the key and the draw's slot (see :mod:`kernels.layout`).  The hash is the SplitMix64
finalizer (Steele, Lea & Flood 2014), whose output passes BigCrush when fed a Weyl sequence.
A uniform is the top 53 bits of the hash, so it lies in [0, 1) with 2^-53 resolution and
``1 − u`` is never 0.

All arithmetic is on uint64 and wraps modulo 2^64; constants are ``np.uint64`` so Numba never
promotes to float64.
"""

import numpy as np
from numba import njit

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
SEED_SALT = np.uint64(0x5851F42D4C957F2D)
S30 = np.uint64(30)
S27 = np.uint64(27)
S31 = np.uint64(31)
S11 = np.uint64(11)
ONE = np.uint64(1)
TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53
PILOT_SALT = np.uint64(0xD1B54A32D192ED03)
POSTERIOR_SALT = np.uint64(0x8CB92BA72F3D8DD7)
PERIOD_SALT = np.uint64(0x2545F4914F6CDD1D)


@njit(cache=True)
def mix64(z):
    """SplitMix64 finalizer: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> S30)) * MIX1
    z = (z ^ (z >> S27)) * MIX2
    return z ^ (z >> S31)


@njit(cache=True)
def seed_base(seed):
    """The hashed seed (uint64) that every trial key of a run derives from; ``seed`` int64 ≥ 0."""
    return mix64(np.uint64(seed) * SEED_SALT + GOLDEN)


@njit(cache=True)
def trial_key(base, trial):
    """Key of global trial ``trial`` (int64 ≥ 0) under ``base = seed_base(seed)``."""
    return mix64(base + (np.uint64(trial) + ONE) * GOLDEN)


@njit(cache=True)
def pilot_key(base, cell, sample):
    """Key of sample ``sample`` of the pilot simulation of cell ``cell`` (int64 ≥ 0 each) under
    ``base = seed_base(seed)``: a stream of its own, never a trial's key (design §8)."""
    cell_base = mix64((base ^ PILOT_SALT) + (np.uint64(cell) + ONE) * GOLDEN)
    return mix64(cell_base + (np.uint64(sample) + ONE) * GOLDEN)


@njit(cache=True)
def posterior_key(base, block):
    """Key of trial block ``block`` (int64 ≥ 0) of a run with parameters from a posterior: the
    block's draw is ``⌊uniform(posterior_key(base, block), 0) · draws⌋``, a stream of its own,
    never a trial's or a pilot's key."""
    return mix64((base ^ POSTERIOR_SALT) + (np.uint64(block) + ONE) * GOLDEN)


@njit(cache=True)
def period_key(key, period):
    """Key of period ``period`` (int64 ≥ 1) of the campaign trajectory whose trial key is
    ``key`` (design §7); period 0 uses the trial key itself, so a one-period campaign draws
    exactly what a v1 trial draws."""
    return mix64((key ^ PERIOD_SALT) + (np.uint64(period) + ONE) * GOLDEN)


@njit(cache=True)
def uniform(key, slot):
    """The uniform in [0, 1) of draw ``slot`` (int64 ≥ 0) of the trial with ``key``."""
    bits = mix64(key + (np.uint64(slot) + ONE) * GOLDEN)
    return np.int64(bits >> S11) * TO_UNIT
