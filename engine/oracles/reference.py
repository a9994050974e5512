"""Slow, readable NumPy reference of the model (design §2 and the v2 core of §8): the test oracle.

:func:`simulate_reference` reproduces :func:`engine.core.simulate.simulate` draw for draw: the same
counter-based uniforms (reimplemented here on NumPy ``uint64`` arrays, see :mod:`kernels.rng`),
the same float operations in the same order, the same integer tallies, histograms and saved
records.  It is written for clarity, vectorized over trials:

1. *coverage* (design §8): :func:`covering_alliances` derives, for every (aggressor, target)
   entry, the alliances that cover the crisis — those protecting the target, less a ``defense``
   pact the aggressor belongs to and any alliance with no member besides the target and the
   aggressor — from the alliances' obligations and members, and checks the compiler's
   ``entry_cover_ptr/idx`` against it;
2. *deterrence* per cell (step 2, :func:`cell_deterrence`), once before the trials: ``capability``
   (v1: ``R`` from capabilities and commitments) or ``expected_response`` (``E_cell =
   E[F · exp(−delay / window_days)]``: exact with no covering alliance or with one unanimity
   alliance whose members' backing chances stay fixed, otherwise a pilot of the cell's steps 3–8
   under keys of its own, :func:`pilot_key`, run by the same code as the trials, averaging
   ``F · exp(−delay / window_days)`` or, with one unanimity alliance, its conditional estimate
   given the consultation's rounds);
3. the trial range is processed in chunks; for every trial of a chunk the crisis
   (aggressor entry ``j``, target entry ``ti``, attack-mix entry ``ki``) is drawn at once;
4. the trials are grouped by cell (aggressor × target × attack type); within a cell the target,
   aggressor, attack type and covering alliances are fixed, so steps 2–8 run as NumPy array
   operations over the cell's trials, with plain Python loops over covering alliances,
   consultation rounds and members; the cell, alliance and per-member tallies follow.

Float exactness.  Only IEEE basic operations (``+ − × /``, correctly rounded everywhere) are done
by NumPy ufuncs; the transcendental functions (``log``, ``exp``, ``erfc``) go through Python's
:mod:`math` module, i.e. the C library, which is what the Numba kernels call.  NumPy's own SIMD
``log`` may differ from the C library's in the last bit on some CPUs, which would break
draw-for-draw equality.  Sums whose order matters (the pilot's) are plain sequential loops.

``literal_rounds=True`` runs the consultation exactly as design §2 step 4 words it: one fresh
uniform per member and round (slot ``round_slot(A, s, r)``), backing iff ``U < p_{i,r}``.  The
random stream differs from the engine's one-uniform-per-member scheme but the distribution is the
same (see :mod:`kernels.layout`); tests compare the two statistically.  The pilot of
expected-response deterrence always uses the engine's scheme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from kernels.layout import (
    A_BACKING_SHARE_SUM,
    A_CONSULTED,
    A_COVERED,
    A_DEADLOCK,
    A_DECIDED,
    A_DELAY_SUM,
    A_DETERRED,
    A_FIRST,
    A_FREE_RIDERS_SUM,
    A_REPELLED,
    A_ROUNDS_SUM,
    A_VETO,
    C_ALLIES_SUM,
    C_ATTACKED,
    C_BACKING_SHARE_SUM,
    C_CONSULTED,
    C_DEADLOCK,
    C_DEFECTION,
    C_DELAY_SUM,
    C_DELIVERED_SHARE_SUM,
    C_DETERRED,
    C_DETERRED_NO_ALLIANCE,
    C_FREE_RIDERS_SUM,
    C_HONORED_SUM,
    C_INVOKED,
    C_REPELLED,
    C_REPELLED_INVOKED,
    C_ROUNDS_SUM,
    C_SUCCEEDED,
    C_TRIALS,
    C_VETO,
    C_WITH_ALLIED_BACKERS,
    CAUSE_DEADLOCK,
    CAUSE_DEFECTION,
    CAUSE_NONE,
    CAUSE_VETO,
    DELAY_SCALE,
    DETERRENCE_CAPABILITY,
    E_EXACT,
    E_PILOT,
    HIST_FINE_BINS,
    HIST_FINE_LIMIT,
    HIST_FINE_WIDTH,
    HIST_OCTAVES,
    HIST_OVERFLOW,
    HIST_SUB_BINS,
    M_BACKED,
    M_DELIVERED,
    M_FREE_RODE,
    M_HONORED,
    M_PLEDGED,
    N_HIST_BINS,
    N_RECORD_COLUMNS,
    OBLIGATION_DEFENSE,
    QUOTA_EPSILON,
    R_AGGRESSOR,
    R_ALLIANCE,
    R_ATTACK_TYPE,
    R_ATTACKED,
    R_BACKING_SHARE,
    R_CAUSE,
    R_CELL,
    R_DELAY,
    R_DELIVERED_SHARE,
    R_DETERRED,
    R_FORCE,
    R_FREE_RIDERS,
    R_INVOKED,
    R_REPELLED,
    R_ROUNDS,
    R_TARGET,
    R_TRIAL,
    RULE_MAJORITY,
    RULE_QUALIFIED,
    RULE_UNANIMITY,
    RULE_VETO,
    SHARE_SCALE,
    SLOT_AGGRESSOR,
    SLOT_ATTACK_TYPE,
    SLOT_ATTRIBUTION,
    SLOT_DETERRENCE,
    SLOT_OUTCOME,
    SLOT_TARGET,
    consult_slot,
    delivery_slot,
    round_slot,
)

from ..core.simulate import Tallies
from ..model.compile import CompiledScenario

__all__ = [
    "CellDeterrence",
    "cell_deterrence",
    "covering_alliances",
    "delay_bin",
    "pilot_estimate",
    "pilot_key",
    "seed_base",
    "simulate_reference",
    "trial_key",
    "uniform",
]

# ---- counter-based generator (kernels/rng.py) on uint64 arrays ----------------------------
# SplitMix64 (Steele, Lea & Flood 2014).  Every constant is an np.uint64 so that NumPy never
# promotes to float64 (NumPy 1.x turns uint64 + Python int into float64); products wrap mod 2^64.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_SEED_SALT = np.uint64(0x5851F42D4C957F2D)
_PILOT_SALT = np.uint64(0xD1B54A32D192ED03)
_ONE = np.uint64(1)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer, elementwise on a uint64 array."""
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def seed_base(seed: int) -> np.uint64:
    """The hashed seed every trial key of a run derives from (``seed`` ≥ 0)."""
    with np.errstate(over="ignore"):
        z = np.array([seed], dtype=np.uint64) * _SEED_SALT + _GOLDEN
    return _mix64(z)[0]


def trial_key(base: np.uint64, trials: np.ndarray) -> np.ndarray:
    """Keys (uint64) of the global trial indices ``trials`` (int64 ≥ 0)."""
    with np.errstate(over="ignore"):
        return _mix64(np.uint64(base) + (trials.astype(np.uint64) + _ONE) * _GOLDEN)


def pilot_key(base: np.uint64, cell: int, samples: np.ndarray) -> np.ndarray:
    """Keys (uint64) of the pilot samples ``samples`` (int64 ≥ 0) of cell ``cell``: a stream of
    its own, never a trial's key (design §8)::

        cell_base = mix64((base ^ PILOT_SALT) + (cell + 1) · GOLDEN)
        key       = mix64(cell_base + (sample + 1) · GOLDEN)
    """
    with np.errstate(over="ignore"):
        salted = np.array([base], dtype=np.uint64) ^ _PILOT_SALT
        cell_base = _mix64(salted + (np.uint64(cell) + _ONE) * _GOLDEN)[0]
        return _mix64(cell_base + (samples.astype(np.uint64) + _ONE) * _GOLDEN)


def uniform(keys: np.ndarray, slot: int) -> np.ndarray:
    """Uniform in [0, 1) of draw ``slot`` for every key: the top 53 bits of the hash."""
    with np.errstate(over="ignore"):
        offset = (np.uint64(slot) + _ONE) * _GOLDEN
        bits = _mix64(keys + offset)
    return (bits >> np.uint64(11)).astype(np.int64) * _TO_UNIT


# ---- elementwise math through the C library ------------------------------------------------
def _log(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(math.log, np.asarray(x, np.float64).tolist()), np.float64, count=x.size)


def _exp(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(math.exp, np.asarray(x, np.float64).tolist()), np.float64, count=x.size)


def _log_scalar(x: float) -> float:
    """``math.log`` with ``log(0) = −inf``, as in the kernels (an expected response can
    underflow to 0 when every delay is thousands of windows long)."""
    return math.log(x) if x > 0.0 else -math.inf


def _phi_scalar(x: float) -> float:
    """Standard normal CDF, Φ(x) = erfc(−x/√2) / 2, in the kernels' operation order."""
    return 0.5 * math.erfc(-x * 0.7071067811865476)


def _phi(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(_phi_scalar, np.asarray(x, np.float64).tolist()), np.float64,
                       count=x.size)


def _fixed(x: np.ndarray, scale: float) -> np.ndarray:
    """Fixed-point value int64(x · scale + 0.5) of each x ≥ 0."""
    return (x * scale + 0.5).astype(np.int64)


def delay_bin(delay_days: np.ndarray) -> np.ndarray:
    """Histogram bin of each delay ≥ 0 (see :mod:`kernels.layout` and kernels/histogram.py).

    Below 128 days: ``min(int(10·d), 1279)``.  Above: ``d/128 = mant · 2^expo`` (frexp, exact),
    octave ``expo − 1`` (overflow bin from octave 10 on), sub-bin ``int((2·mant − 1) · 64)``.
    """
    d = np.asarray(delay_days, np.float64)
    fine = np.minimum((np.minimum(d, HIST_FINE_LIMIT) * (1.0 / HIST_FINE_WIDTH)).astype(np.int64),
                      HIST_FINE_BINS - 1)
    mant, expo = np.frexp(d / HIST_FINE_LIMIT)
    octave = expo.astype(np.int64) - 1
    sub = ((2.0 * mant - 1.0) * HIST_SUB_BINS).astype(np.int64)
    coarse = np.where(octave >= HIST_OCTAVES, HIST_OVERFLOW,
                      HIST_FINE_BINS + octave * HIST_SUB_BINS + sub)
    return np.where(d < HIST_FINE_LIMIT, fine, coarse)


# 1/HIST_FINE_WIDTH must be exactly 10.0 for `d * 10.0` above to be the documented `int(10·d)`.
assert 1.0 / HIST_FINE_WIDTH == 10.0


def _hist(bins: np.ndarray) -> np.ndarray:
    return np.bincount(bins, minlength=N_HIST_BINS).astype(np.int64)


# ---- step 1: draw the crisis ---------------------------------------------------------------
def _pick(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Within one cumulative-weight row: first index i with u < cum[i] (the last one if none)."""
    return np.minimum(np.searchsorted(cum, u, side="right"), len(cum) - 1)


def _draw_crises(c: CompiledScenario, keys: np.ndarray):
    """Aggressor entry j, target entry ti and attack-mix entry ki (global indices) per trial."""
    j = _pick(c.aggressor_cum_weight, uniform(keys, SLOT_AGGRESSOR))
    u_target = uniform(keys, SLOT_TARGET)
    u_type = uniform(keys, SLOT_ATTACK_TYPE)
    ti = np.empty(len(keys), np.int64)
    ki = np.empty(len(keys), np.int64)
    for entry in np.unique(j):
        rows = j == entry
        t0, t1 = c.target_ptr[entry], c.target_ptr[entry + 1]
        m0, m1 = c.mix_ptr[entry], c.mix_ptr[entry + 1]
        ti[rows] = t0 + _pick(c.target_cum_weight[t0:t1], u_target[rows])
        ki[rows] = m0 + _pick(c.mix_cum_weight[m0:m1], u_type[rows])
    return j, ti, ki


# ---- coverage: which alliances consult in a crisis (design §8) ----------------------------
def _protecting(c: CompiledScenario, t: int) -> list[int]:
    """The alliances that protect state ``t``: the defense alliances that list it as protected
    and the collective-security alliances it belongs to (ascending)."""
    return [int(A) for A in c.cover_idx[c.cover_ptr[t]:c.cover_ptr[t + 1]]]


def _members(c: CompiledScenario, A: int) -> np.ndarray:
    """Member states of alliance ``A``, ascending (rows ``member_ptr[A] …`` of the member CSR)."""
    return c.member_idx[c.member_ptr[A]:c.member_ptr[A + 1]]


def covering_alliances(c: CompiledScenario) -> list[list[int]]:
    """The alliances that cover each (aggressor, target) entry's crisis, ascending (design §8).

    Those protecting the target ``t``, less a ``defense`` alliance that the aggressor ``a``
    belongs to (a pact against outside attack; a ``collective_security`` alliance covers its
    members against anyone, members included) and less any alliance with no member besides
    ``t`` and ``a`` (nobody to consult).  Derived here from the alliances' obligations and
    members and checked against the compiler's ``entry_cover_ptr/idx``.
    """
    cover: list[list[int]] = []
    for j in range(len(c.aggressor_state)):
        a = int(c.aggressor_state[j])
        for ti in range(c.target_ptr[j], c.target_ptr[j + 1]):
            t = int(c.target_state[ti])
            entry = []
            for A in _protecting(c, t):
                members = _members(c, A)
                if c.obligation[A] == OBLIGATION_DEFENSE and a in members:
                    continue  # a defense pact does not act against one of its own members
                if not np.any((members != t) & (members != a)):
                    continue  # nobody to consult besides the target and the aggressor
                entry.append(A)
            cover.append(entry)
    for ti, entry in enumerate(cover):
        compiled = c.entry_cover_idx[c.entry_cover_ptr[ti]:c.entry_cover_ptr[ti + 1]].tolist()
        if entry != compiled:
            raise AssertionError(f"covering alliances of entry {ti}: the compiler has "
                                 f"{compiled}, design §8 gives {entry}")
    return cover


def _cells(c: CompiledScenario) -> list[tuple[int, int, int]]:
    """``(j, ti, k)`` of every cell: aggressor entry, (aggressor, target) entry, attack type."""
    cells: list[tuple[int, int, int]] = [(-1, -1, -1)] * c.n_cells
    for j in range(len(c.aggressor_state)):
        for ti in range(c.target_ptr[j], c.target_ptr[j + 1]):
            for ki in range(c.mix_ptr[j], c.mix_ptr[j + 1]):
                cells[c.target_cell_base[ti] + (ki - c.mix_ptr[j])] = (j, ti, int(c.mix_type[ki]))
    return cells


# ---- step 2: deterrence, per cell ----------------------------------------------------------
class CellDeterrence(NamedTuple):
    """Step 2 of every cell (C,), computed once before the trials."""

    p_deterred: np.ndarray  # float64: P(deterred) with the covering alliances
    p_deterred_no_alliance: np.ndarray  # float64: the no-alliance baseline
    # float64: E_cell = E[F · exp(−delay / window_days)] (expected_response; NaN in capability)
    expected_response: np.ndarray
    how: np.ndarray  # int64: E_EXACT or E_PILOT (expected_response; −1 in capability mode)


def _capability_response(c: CompiledScenario, a: int, t: int, cover: list[int]) -> float:
    """v1's ``R = cap_t + Σ_i cred_i · cap_i`` over states ``i ∉ {t, a}`` in ascending order,
    ``cred_i = max_{A covering, i ∈ A} commitment_i · bindingness_A`` (0 outside them)."""
    R = float(c.capability[t])
    for i in range(c.n_states):
        if i == t or i == a:
            continue
        cred = 0.0
        for A in cover:
            if c.membership[i, A]:
                cred = max(cred, c.commitment[i] * c.bindingness[A])
        R = R + cred * c.capability[i]
    return R


def _attribution_factor(c: CompiledScenario, k: int) -> float:
    """``att_k = E[exp(−D_att / window_days)] = 1 / (1 + attribution_days_k / window_days)``."""
    return 1.0 / (1.0 + c.attribution_days[k] / c.window_days)


def _static_probability(c: CompiledScenario, A: int, i: int, a: int, t: int, k: int) -> float:
    """Member ``i``'s backing chance per round in ``A`` before free riding, while θ stays put:
    ``base · ((1 − w) + w · θ)`` with ``base = ((commitment · bindingness) · (1 − ambiguity))
    · conflict`` and ``θ = min(1, exposure(i, t) · severity)`` (the ``static`` of
    :mod:`kernels.prepare`; the same operations as :func:`consult`)."""
    conflict = 1.0 - c.conflict_penalty if c.shares_alliance[i, a] != 0 else 1.0
    base = ((c.commitment[i] * c.bindingness[A]) * (1.0 - c.ambiguity[k])) * conflict
    theta = min(1.0, c.exposure[i, t] * c.severity[k])
    w = c.threat_weight
    return float(base * ((1.0 - w) + w * theta))


def _single_unanimity(c: CompiledScenario, cover: list[int]) -> bool:
    """One covering alliance, under unanimity: the alliance decides in round ``r`` exactly when
    every member still waiting backs in it."""
    return len(cover) == 1 and int(c.rule[cover[0]]) == RULE_UNANIMITY


def _has_exact_form(c: CompiledScenario, cover: list[int], a: int, t: int) -> bool:
    """Case 2 of E_cell: one covering alliance, unanimity, no free rider besides the target, θ
    fixed — members back independently with a fixed chance per round."""
    if not _single_unanimity(c, cover):
        return False
    A = cover[0]
    allies = [int(i) for i in _members(c, A) if i != a and i != t]
    moving_threat = c.intel_sharing[A] > 0.0 and c.threat_weight > 0.0
    return not moving_threat and not any(c.free_riding[i] > 0.0 for i in allies)


def _integer_power(x: float, r: int) -> float:
    """``x ** r`` for an integer ``r ≥ 0`` as Numba compiles it: binary exponentiation (the
    product of ``x^(2^j)`` over the set bits ``j`` of ``r``, lowest first), which can differ in
    the last bit from C's ``pow`` and from ``r`` repeated multiplications."""
    result = 1.0
    while r:
        if r & 1:
            result = result * x
        r >>= 1
        x = x * x
    return result


def _decided_force(c: CompiledScenario, A: int, a: int, t: int) -> float:
    """``E[F | A decided] = (cap_t + Σ_i stability_i · cap_i) · (1 + integration_A · bonus)``
    under unanimity (every ally backed; each delivers with its stability), allies ascending."""
    force = float(c.capability[t])
    for i in _members(c, A):
        if i != a and i != t:
            force = force + c.stability[i] * c.capability[i]
    return force * (1.0 + c.integration[A] * c.interoperability_bonus)


def _exact_single_unanimity(c: CompiledScenario, A: int, a: int, t: int, k: int,
                            att: float) -> float:
    """E_cell with one unanimity alliance whose members back with fixed chances ``p_i``::

        E = att_k · (Σ_{r=1..R} (P_r − P_{r−1}) · F_dec · exp(−(r · round_days + mob) / window)
                     + (1 − P_R) · cap_t)

    ``P_r = Π_i (1 − (1 − p_i)^r)`` (all allies backed by round r, :func:`_integer_power`),
    ``F_dec`` of :func:`_decided_force`, ``mob = mobilization_days · (1 − integration)``, allies
    in ascending state order, sums and products left to right.
    """
    allies = [int(i) for i in _members(c, A) if i != a and i != t]
    p = [_static_probability(c, A, i, a, t, k) for i in allies]
    force = _decided_force(c, A, a, t)
    mobilization = c.mobilization_days * (1.0 - c.integration[A])
    round_days = float(c.round_days[A])
    decided_before = 0.0  # P_{r−1}
    total = 0.0
    for r in range(1, int(c.max_rounds[A]) + 1):
        decided_by = 1.0  # P_r
        for p_i in p:
            decided_by = decided_by * (1.0 - _integer_power(1.0 - p_i, r))
        discount = math.exp(-(r * round_days + mobilization) / c.window_days)
        total = total + ((decided_by - decided_before) * force) * discount
        decided_before = decided_by
    return float(att * (total + (1.0 - decided_before) * float(c.capability[t])))


def _pilot(c: CompiledScenario, cell: int, a: int, t: int, k: int, cover: list[int],
           base: np.uint64, samples: int, conditional: bool | None = None) -> tuple[float, float]:
    """E_cell by the keyed pilot: ``samples`` runs of steps 3–8 of an attacked trial of the
    cell (the trials' code, :func:`_respond`), keyed by :func:`pilot_key`.  Returns the mean of
    the samples' values ``v`` (summed sequentially in sample order) and its standard error
    ``sqrt(max(0, Σv²/n − E²) / (n − 1))``.

    ``v = F · exp(−delay / window_days)``, except for the *conditional* estimate (the default
    with one covering alliance under unanimity, :func:`_single_unanimity`)::

        v = att_k · (Σ_r 1{undecided before r} · π_r · F_dec · exp(−(r · round_days + mob)
                     / window) + 1{undecided before R} · (1 − π_R) · cap_t)

    ``π_r`` is the chance, given the sample's state at the start of round ``r``, that every
    member still waiting backs in it (the alliance then decides in round r): the same mean,
    since ``P(decided in r) = E[1{undecided before r} · π_r]``, and a far smaller variance.
    """
    if conditional is None:
        conditional = _single_unanimity(c, cover)
    if conditional and not _single_unanimity(c, cover):
        raise ValueError("the conditional estimate needs one covering alliance under unanimity")
    keys = pilot_key(base, cell, np.arange(samples, dtype=np.int64))
    response = _respond(c, a, t, k, cover, keys)
    if conditional:
        A = cover[0]
        res = response.consultations[0]
        force = _decided_force(c, A, a, t)
        mobilization = c.mobilization_days * (1.0 - c.integration[A])
        max_rounds = int(c.max_rounds[A])
        decided_sum = np.zeros(samples)
        tail = np.zeros(samples)
        for r, (undecided, chance) in enumerate(
                zip(res.undecided_before, res.all_back_chance, strict=True), start=1):
            weight = force * math.exp(-(r * c.round_days[A] + mobilization) / c.window_days)
            decided_sum = np.where(undecided, decided_sum + chance * weight, decided_sum)
            if r == max_rounds:
                tail = np.where(undecided, 1.0 - chance, 0.0)
        values = _attribution_factor(c, k) * (decided_sum + tail * float(c.capability[t]))
    else:
        values = response.force * _exp(-response.delay / c.window_days)
    total = 0.0
    total_sq = 0.0
    for v in values.tolist():  # in sample order, as the kernel sums
        total += v
        total_sq += v * v
    mean = total / samples
    return mean, math.sqrt(max(0.0, total_sq / samples - mean * mean) / (samples - 1))


def pilot_estimate(c: CompiledScenario, seed: int, cell: int, samples: int | None = None,
                   conditional: bool | None = None) -> tuple[float, float]:
    """The pilot's ``(E_cell, standard error)`` for cell ``cell`` with ``samples`` samples
    (default ``c.pilot_samples``), whichever case of E_cell the cell falls in; ``conditional``
    picks the estimate (default: as :func:`cell_deterrence` would, see :func:`_pilot`)."""
    j, ti, k = _cells(c)[cell]
    cover = covering_alliances(c)[ti]
    return _pilot(c, cell, int(c.aggressor_state[j]), int(c.target_state[ti]), k, cover,
                  seed_base(seed), c.pilot_samples if samples is None else samples, conditional)


def _expected_response(c: CompiledScenario, cell: int, a: int, t: int, k: int,
                       cover: list[int], base: np.uint64) -> tuple[float, int]:
    """``(E_cell, how)``: exact (no covering alliance; one fixed-chance unanimity alliance) or
    by the keyed pilot."""
    att = _attribution_factor(c, k)
    if not cover:  # case 1: the target alone, after the attribution delay
        return float(c.capability[t]) * att, E_EXACT
    if _has_exact_form(c, cover, a, t):  # case 2
        return _exact_single_unanimity(c, cover[0], a, t, k, att), E_EXACT
    return _pilot(c, cell, a, t, k, cover, base, c.pilot_samples)[0], E_PILOT  # case 3


def cell_deterrence(c: CompiledScenario, seed: int,
                    cover: list[list[int]] | None = None) -> CellDeterrence:
    """Step 2 of every cell (aggressor ``a``, target ``t``, attack type ``k``).

    * ``capability`` (v1): ``P(deterred) = Φ((ln R − ln(cap_a · resolve)) / σ)`` with ``R`` of
      :func:`_capability_response`; the baseline with ``R = cap_t``; alike for every attack type.
    * ``expected_response``: ``Φ((ln E_cell − ln(cap_a · resolve · severity_k)) / σ)``; the
      baseline with ``E0 = cap_t · att_k``.

    ``cover`` (from :func:`covering_alliances`) is derived when not given.
    """
    if cover is None:
        cover = covering_alliances(c)
    n = c.n_cells
    p_det = np.empty(n)
    p_det0 = np.empty(n)
    expected = np.full(n, np.nan)
    how = np.full(n, -1, dtype=np.int64)
    base = seed_base(seed)
    sigma = c.misperception
    for cell, (j, ti, k) in enumerate(_cells(c)):
        a = int(c.aggressor_state[j])
        t = int(c.target_state[ti])
        cap_t = float(c.capability[t])
        if c.deterrence == DETERRENCE_CAPABILITY:
            log_threat = math.log(c.capability[a] * c.resolve[j])
            response = _capability_response(c, a, t, cover[ti])
            alone = cap_t
        else:
            log_threat = math.log((c.capability[a] * c.resolve[j]) * c.severity[k])
            response, how[cell] = _expected_response(c, cell, a, t, k, cover[ti], base)
            expected[cell] = response
            alone = cap_t * _attribution_factor(c, k)
        p_det[cell] = _phi_scalar((_log_scalar(response) - log_threat) / sigma)
        p_det0[cell] = _phi_scalar((_log_scalar(alone) - log_threat) / sigma)
    return CellDeterrence(p_det, p_det0, expected, how)


# ---- step 4: consultation in one alliance --------------------------------------------------
@dataclass
class Consultation:
    """Outcome of alliance ``A``'s consultation over the attacked trials of one cell."""

    alliance: int
    members: np.ndarray  # M_A: member states except the aggressor, ascending
    rows: np.ndarray  # int64 (m,): each member's row of the per-member tallies (member CSR)
    backed: np.ndarray  # bool (m, n): member row backed by the end (frozen once decided)
    decided: np.ndarray  # bool (n,)
    rounds: np.ndarray  # int64 (n,): round of the decision, 0 if none
    vetoed: np.ndarray  # bool (n,)
    deadlock: np.ndarray  # bool (n,)
    # per round run, for the pilot's conditional estimate: undecided at the round's start, and
    # π_r, the chance that every member still waiting then backs in the round (float64 (n,))
    undecided_before: list[np.ndarray]
    all_back_chance: list[np.ndarray]

    @property
    def n_back(self) -> np.ndarray:
        return self.backed.sum(axis=0)


def backers_needed(rule: int, quota: float, m: int) -> int:
    if rule == RULE_UNANIMITY:
        return m
    if rule == RULE_MAJORITY:
        return m // 2 + 1
    if rule in (RULE_QUALIFIED, RULE_VETO):
        return max(1, math.ceil(quota * m - QUOTA_EPSILON))
    raise ValueError(f"unknown decision rule {rule}")


def consult(c: CompiledScenario, A: int, a: int, t: int, k: int, keys: np.ndarray,
            literal_rounds: bool = False) -> Consultation:
    """Design §2 step 4 for alliance ``A``, aggressor state ``a``, target ``t``, attack type ``k``.

    Default scheme: member ``i`` draws one uniform ``u_i`` and backs in the first round with
    ``u_i < 1 − S_i``, ``S_i = Π_r (1 − p_{i,r})``.  Literal scheme: a fresh uniform per round,
    backing iff ``U < p_{i,r}``.
    """
    n = len(keys)
    members = _members(c, A)
    rows = c.member_ptr[A] + np.flatnonzero(members != a)
    M = members[members != a]
    m = len(M)
    rule = int(c.rule[A])
    need = backers_needed(rule, float(c.quota[A]), m)
    veto_rows = [row for row, i in enumerate(M) if c.veto[i, A]] if rule == RULE_VETO else []
    w = c.threat_weight
    intel = float(c.intel_sharing[A])

    # Per-member constants of the cell (θ evolves by round, but identically for every trial).
    # Member arrays are (m,) or columns (m, 1); per-trial state is (m, n), one row per member.
    theta = np.array([min(1.0, c.exposure[i, t] * c.severity[k]) for i in M])
    conflict = np.where(c.shares_alliance[M, a] != 0, 1.0 - c.conflict_penalty, 1.0)
    base = ((c.commitment[M] * c.bindingness[A]) * (1.0 - c.ambiguity[k])) * conflict
    units = c.capability_units[M][:, None]  # integer capability: sums are exact in any order
    free_riding = c.free_riding[M][:, None]
    units_M = int(c.capability_units[M].sum())

    backed = np.zeros((m, n), dtype=bool)
    backed[M == t] = True  # the target backs action from the start
    backing_units = np.full(n, int(c.capability_units[t]), dtype=np.int64)
    survive = np.ones((m, n))  # S_i, default scheme
    if not literal_rounds:  # one uniform per member (the target's is never used)
        u = np.stack([np.ones(n) if i == t else uniform(keys, consult_slot(A, int(i)))
                      for i in M])
    decided = np.zeros(n, dtype=bool)
    rounds = np.zeros(n, dtype=np.int64)
    undecided_before: list[np.ndarray] = []
    all_back_chance: list[np.ndarray] = []

    for r in range(1, int(c.max_rounds[A]) + 1):
        if r > 1 and intel > 0.0:
            total = 0.0
            for x in theta:
                total = total + x  # left to right
            theta = theta + intel * (total / m - theta)
        active = ~decided  # trials still consulting
        if not active.any():
            break
        share = backing_units / units_M  # capability share of the backers at the round's start
        threat = (1.0 - w) + w * theta
        p = (base * threat)[:, None] * (1.0 - free_riding * share)  # (m, n)
        waiting = active & ~backed  # the target is never waiting
        chance = np.ones(n)  # π_r, a product over the waiting members in ascending order
        for row in range(m):
            chance = np.where(waiting[row], chance * p[row], chance)
        undecided_before.append(active)
        all_back_chance.append(chance)
        if literal_rounds:
            fresh = np.stack([uniform(keys, round_slot(A, int(i), r)) for i in M])
            newly_backed = waiting & (fresh < p)
        else:
            survive = np.where(waiting, survive * (1.0 - p), survive)
            newly_backed = waiting & (u < 1.0 - survive)
        backed |= newly_backed
        backing_units += (units * newly_backed).sum(axis=0)
        holds = backed.sum(axis=0) >= need
        for row in veto_rows:
            holds &= backed[row]
        newly = active & holds
        decided |= newly
        rounds[newly] = r

    n_back = backed.sum(axis=0)
    vetoed = ~decided & (n_back >= need) if rule == RULE_VETO else np.zeros(n, dtype=bool)
    return Consultation(A, M, rows, backed, decided, rounds, vetoed, ~decided & ~vetoed,
                        undecided_before, all_back_chance)


# ---- steps 3–8: the response to the attacked trials of one cell ----------------------------
@dataclass
class Response:
    """Steps 3–8 for ``n`` attacked trials (or pilot samples) of one cell, one value per key."""

    consultations: list[Consultation]  # step 4, one per covering alliance, ascending
    first: np.ndarray  # int64 (n,): position in ``consultations`` of the deciding one, −1
    invoked: np.ndarray  # bool (n,): some covering alliance decided
    rounds_first: np.ndarray  # int64 (n,): its rounds (0 if none)
    delay: np.ndarray  # float64 (n,): D_att, plus rounds and mobilization when invoked
    force: np.ndarray  # float64 (n,): F after the integration bonus (cap_t with no decision)
    backed_any: dict[int, np.ndarray]  # state of some M_A → bool (n,): backed in some alliance
    responder: dict[int, np.ndarray]  # state ≠ t → bool (n,): backed in a deciding alliance
    delivered: dict[int, np.ndarray]  # state ≠ t → bool (n,): responded and delivered
    n_resp: np.ndarray  # int64 (n,): responders
    n_failed: np.ndarray  # int64 (n,): responders that did not deliver
    n_free: np.ndarray  # int64 (n,): members of a deciding alliance that never backed in one


def _respond(c: CompiledScenario, a: int, t: int, k: int, cover: list[int], keys: np.ndarray,
             literal_rounds: bool = False) -> Response:
    """Steps 3–8 (all but the outcome draw) for aggressor ``a``, target ``t``, attack type
    ``k`` and covering alliances ``cover``, one trial per key: the trials' code and the pilot's."""
    n = len(keys)
    cap_t = float(c.capability[t])

    # Step 3: attribution delay.
    mean_att = float(c.attribution_days[k])
    if mean_att > 0.0:
        d_att = -mean_att * _log(1.0 - uniform(keys, SLOT_ATTRIBUTION))
    else:
        d_att = np.zeros(n)

    # Step 4: consultation in every covering alliance.
    results = [consult(c, A, a, t, k, keys, literal_rounds) for A in cover]

    # Steps 5–6: the earliest deciding alliance (ties: less mobilization, then list position).
    first = np.full(n, -1, dtype=np.int64)  # position in `cover`
    best_time = np.full(n, np.inf)
    best_mob = np.full(n, np.inf)
    for pos, res in enumerate(results):
        A = res.alliance
        time = res.rounds * c.round_days[A]
        mob = c.mobilization_days * (1.0 - c.integration[A])
        better = res.decided & ((time < best_time) | ((time == best_time) & (mob < best_mob)))
        first = np.where(better, pos, first)
        best_time = np.where(better, time, best_time)
        best_mob = np.where(better, mob, best_mob)
    invoked = first >= 0
    rounds_first = np.zeros(n, dtype=np.int64)
    round_days_first = np.zeros(n)
    integration_first = np.zeros(n)
    for pos, res in enumerate(results):
        sel = first == pos
        rounds_first[sel] = res.rounds[sel]
        round_days_first[sel] = c.round_days[res.alliance]
        integration_first[sel] = c.integration[res.alliance]
    delay = np.where(
        invoked,
        (d_att + rounds_first * round_days_first)
        + c.mobilization_days * (1.0 - integration_first),
        d_att,
    )

    # Responders (backed in some deciding alliance, not the target) and free riders.
    responder: dict[int, np.ndarray] = {}
    in_deciding: dict[int, np.ndarray] = {}
    backed_any: dict[int, np.ndarray] = {}
    for res in results:
        for row, i in enumerate(res.members):
            i = int(i)
            backed_any[i] = backed_any.get(i, np.zeros(n, bool)) | res.backed[row]
            if i == t:
                continue
            responder[i] = responder.get(i, np.zeros(n, bool)) | (res.decided & res.backed[row])
            in_deciding[i] = in_deciding.get(i, np.zeros(n, bool)) | res.decided
    n_free = np.zeros(n, dtype=np.int64)
    for i in sorted(in_deciding):
        n_free += in_deciding[i] & ~responder[i]

    # Step 7: delivery (forces summed in ascending state order).
    force = np.full(n, cap_t)
    n_resp = np.zeros(n, dtype=np.int64)
    n_failed = np.zeros(n, dtype=np.int64)
    delivered: dict[int, np.ndarray] = {}
    for i in sorted(responder):
        responds = responder[i]
        delivered[i] = responds & (uniform(keys, delivery_slot(i)) < c.stability[i])
        force = np.where(delivered[i], force + c.capability[i], force)
        n_resp += responds
        n_failed += responds & ~delivered[i]

    # Step 8 (its force): the integration bonus of the deciding alliance.
    force = np.where(invoked, force * (1.0 + integration_first * c.interoperability_bonus), force)
    return Response(results, first, invoked, rounds_first, delay, force, backed_any, responder,
                    delivered, n_resp, n_failed, n_free)


# ---- steps 2–8 for the trials of one cell, and their tallies -------------------------------
def _run_cell(c: CompiledScenario, cell: int, j: int, ti: int, k: int, cover: list[int],
              keys: np.ndarray, p_det: float, p_det0: float, literal_rounds: bool,
              tallies: Tallies, rec: dict[str, np.ndarray] | None) -> None:
    """Tally the trials ``keys`` of cell ``cell``; fill ``rec`` (per-trial values) if given."""
    a = int(c.aggressor_state[j])
    t = int(c.target_state[ti])
    cap_t = float(c.capability[t])
    cells = tallies.cells[cell]

    # Step 2: deterrence (and the no-alliance baseline on the same uniform).
    u_det = uniform(keys, SLOT_DETERRENCE)
    deterred = u_det < p_det
    cells[C_TRIALS] += len(keys)
    cells[C_DETERRED] += deterred.sum()
    cells[C_DETERRED_NO_ALLIANCE] += (u_det < p_det0).sum()
    for A in cover:
        tallies.alliances[A, A_COVERED] += len(keys)
        tallies.alliances[A, A_DETERRED] += deterred.sum()
    if rec is not None:
        rec["deterred"] = deterred
    attacked = ~deterred
    keys = keys[attacked]
    n = len(keys)
    if n == 0:
        return
    cells[C_ATTACKED] += n

    # Steps 3–7.
    resp = _respond(c, a, t, k, cover, keys, literal_rounds)
    results = resp.consultations
    invoked = resp.invoked
    delay = resp.delay
    force = resp.force
    n_resp, n_failed = resp.n_resp, resp.n_failed
    has_resp = invoked & (n_resp > 0)
    failed_share = np.where(has_resp, n_failed / np.maximum(n_resp, 1), 0.0)
    delivered_share = np.where(has_resp, (n_resp - n_failed) / np.maximum(n_resp, 1), 0.0)
    defection = has_resp & (failed_share > c.defection_threshold)

    # Step 8: outcome.
    log_force = np.full(n, math.log(cap_t))
    if invoked.any():
        log_force[invoked] = _log(force[invoked])
    z = (log_force - math.log(c.capability[a] * c.severity[k])
         - delay / c.window_days) / c.outcome_noise
    repelled = uniform(keys, SLOT_OUTCOME) < _phi(z)

    # Per-member tallies: each consultation × each member of M_A but the target (a pledge).
    honored_sum = 0
    for res in results:
        for position, (row, i) in enumerate(zip(res.rows, res.members, strict=True)):
            if i == t:
                continue
            backed = res.backed[position]
            delivered = resp.delivered.get(int(i), np.zeros(n, bool))  # implies invoked
            member = tallies.members[row]
            member[M_PLEDGED] += n
            member[M_BACKED] += backed.sum()
            member[M_DELIVERED] += delivered.sum()
            member[M_HONORED] += (backed & delivered).sum()
            member[M_FREE_RODE] += (res.decided & ~backed).sum()
            honored_sum += int((backed & delivered).sum())

    # Cell tallies.
    backed_any = resp.backed_any
    cells[C_REPELLED] += repelled.sum()
    cells[C_SUCCEEDED] += (~repelled).sum()
    covered = len(cover) > 0
    backing_share = np.zeros(n)
    any_veto = np.zeros(n, dtype=bool)
    if covered:
        backing_share = sum(backed_any[i].astype(np.int64) for i in sorted(backed_any)) / len(
            backed_any)
        for res in results:
            any_veto |= res.vetoed
        cells[C_CONSULTED] += n
        cells[C_BACKING_SHARE_SUM] += _fixed(backing_share, SHARE_SCALE).sum()
        cells[C_ALLIES_SUM] += n * sum(len(res.members) - 1 for res in results)  # the pledges
        cells[C_HONORED_SUM] += honored_sum
        cells[C_VETO] += (~invoked & any_veto).sum()
        cells[C_DEADLOCK] += (~invoked & ~any_veto).sum()
    delay_fx = _fixed(delay, DELAY_SCALE)
    bins = delay_bin(delay)
    cells[C_INVOKED] += invoked.sum()
    cells[C_ROUNDS_SUM] += resp.rounds_first[invoked].sum()
    cells[C_DELAY_SUM] += delay_fx[invoked].sum()
    cells[C_FREE_RIDERS_SUM] += resp.n_free[invoked].sum()
    tallies.cell_hist[cell] += _hist(bins[invoked])
    cells[C_WITH_ALLIED_BACKERS] += has_resp.sum()
    cells[C_DELIVERED_SHARE_SUM] += _fixed(delivered_share[has_resp], SHARE_SCALE).sum()
    cells[C_DEFECTION] += defection.sum()
    cells[C_REPELLED_INVOKED] += (invoked & repelled).sum()

    # Alliance tallies.
    for pos, res in enumerate(results):
        row = tallies.alliances[res.alliance]
        m = len(res.members)
        n_back = res.n_back
        row[A_CONSULTED] += n
        row[A_BACKING_SHARE_SUM] += _fixed(n_back / m, SHARE_SCALE).sum()
        row[A_REPELLED] += repelled.sum()
        row[A_DECIDED] += res.decided.sum()
        row[A_ROUNDS_SUM] += res.rounds[res.decided].sum()
        row[A_FREE_RIDERS_SUM] += (m - n_back)[res.decided].sum()
        row[A_VETO] += res.vetoed.sum()
        row[A_DEADLOCK] += res.deadlock.sum()
        is_first = resp.first == pos
        row[A_FIRST] += is_first.sum()
        row[A_DELAY_SUM] += delay_fx[is_first].sum()
        tallies.alliance_hist[res.alliance] += _hist(bins[is_first])

    if rec is not None:
        cause = np.full(n, CAUSE_NONE)
        if covered:
            cause = np.where(~invoked, np.where(any_veto, CAUSE_VETO, CAUSE_DEADLOCK), cause)
        cause = np.where(invoked & defection, CAUSE_DEFECTION, cause)
        alliance = np.full(n, -1, dtype=np.int64)
        for pos, res in enumerate(results):
            alliance[resp.first == pos] = res.alliance
        rec["attacked_values"] = {
            R_ATTACKED: np.ones(n),
            R_INVOKED: invoked,
            R_ALLIANCE: alliance,
            R_ROUNDS: resp.rounds_first,
            R_DELAY: delay,
            R_BACKING_SHARE: backing_share,
            R_FREE_RIDERS: np.where(invoked, resp.n_free, 0),
            R_CAUSE: cause,
            R_DELIVERED_SHARE: delivered_share,
            R_FORCE: force,
            R_REPELLED: repelled,
        }


# ---- driver --------------------------------------------------------------------------------
def simulate_reference(
    compiled: CompiledScenario,
    seed: int,
    start: int,
    stop: int,
    *,
    save_trials: int = 0,
    literal_rounds: bool = False,
    chunk: int = 65536,
    deterrence: CellDeterrence | None = None,
) -> tuple[Tallies, np.ndarray]:
    """Simulate global trials ``[start, stop)`` like :func:`engine.core.simulate.simulate`.

    Returns the same integer :class:`~engine.core.simulate.Tallies` (per-member tallies
    included) and the records of the first ``save_trials`` trials of the range, float64
    ``(min(save_trials, stop − start), N_RECORD_COLUMNS)``.  With ``literal_rounds`` the
    consultation draws a fresh uniform per member and round (same distribution, different random
    stream).  ``deterrence`` (step 2 of every cell) is computed by :func:`cell_deterrence` unless
    given (e.g. to time the trials alone): anything with float64 (C,) ``p_deterred`` and
    ``p_deterred_no_alliance``, such as the engine's ``DeterrenceTables``.
    """
    if chunk < 1:
        raise ValueError("chunk must be ≥ 1")
    c = compiled
    tallies = Tallies.zeros(c.n_cells, c.n_alliances, c.n_memberships)
    n_records = max(0, min(save_trials, stop - start))
    records = np.zeros((n_records, N_RECORD_COLUMNS), np.float64)
    cover = covering_alliances(c)
    if deterrence is None:
        deterrence = cell_deterrence(c, seed, cover)
    base = seed_base(seed)

    for position in range(start, stop, chunk):
        end = min(stop, position + chunk)
        trials = np.arange(position, end, dtype=np.int64)
        keys = trial_key(base, trials)
        j, ti, ki = _draw_crises(c, keys)
        cell = c.target_cell_base[ti] + (ki - c.mix_ptr[j])
        k = c.mix_type[ki]
        order = np.argsort(cell, kind="stable")
        cells_here, first_of = np.unique(cell[order], return_index=True)
        bounds = list(first_of) + [len(order)]
        for number, cc in enumerate(cells_here):
            idx = order[bounds[number]:bounds[number + 1]]  # chunk positions, ascending
            n_rec = int(np.sum(trials[idx] < start + n_records))  # idx ascending → a prefix
            rec = {} if n_rec else None
            i0 = idx[0]
            _run_cell(c, int(cc), int(j[i0]), int(ti[i0]), int(k[i0]), cover[ti[i0]], keys[idx],
                      float(deterrence.p_deterred[cc]),
                      float(deterrence.p_deterred_no_alliance[cc]), literal_rounds, tallies, rec)
            if rec is not None:
                _write_records(records, rec, trials[idx] - start, n_rec, int(cc), int(j[i0]),
                               int(c.target_state[ti[i0]]), int(k[i0]), start)
    return tallies, records


def _write_records(records, rec, rows, n_rec, cell, j, t, k, start) -> None:
    """Write the records of one cell's trials (chunk rows ``rows``, ascending; the first
    ``n_rec`` of them are saved).  Deterred trials keep zeros apart from their identity."""
    rows = rows[:n_rec]
    out = np.zeros((n_rec, N_RECORD_COLUMNS))
    out[:, R_TRIAL] = rows + start
    out[:, R_CELL] = cell
    out[:, R_AGGRESSOR] = j
    out[:, R_TARGET] = t
    out[:, R_ATTACK_TYPE] = k
    out[:, R_ALLIANCE] = -1
    deterred = rec["deterred"][:n_rec]
    out[:, R_DETERRED] = deterred
    values = rec.get("attacked_values")  # per attacked trial of the cell, in order
    if values is not None:
        attacked_rows = np.flatnonzero(~deterred)
        for column, v in values.items():
            out[attacked_rows, column] = np.asarray(v, np.float64)[:len(attacked_rows)]
    records[rows] = out
