"""The kernel's inputs, packed in named tuples (design §2 vocabulary).

:func:`kernels.trial._run_trials` takes these instead of ~50 positional arguments and unpacks
every field into a local at its very top (free; reading fields of a tuple inside per-trial
helpers is not, because of reference counting).  Only inputs travel here: the outputs stay plain
arrays, since a write through a tuple attribute inside a ``parallel=True`` function can be lost.

Sizes: ``S`` states, ``A`` alliances, ``G`` aggressors, ``K`` attack types, ``E`` (aggressor,
target) entries, ``X`` (aggressor, attack type) mix entries, ``C`` cells (aggressor × target ×
attack type), ``N`` consultations (cell × covering alliance), ``M`` consultation entries (a
member of ``M_A`` in one consultation).  Every array is C-contiguous.
"""

from typing import NamedTuple

import numpy as np


class Run(NamedTuple):
    """Which trials to simulate: global trials ``[start, stop)`` in blocks of ``block_size``
    (every int64); row 0 of ``records`` is trial ``record_start``.

    ``pilot_samples > 0`` runs the *pilot* of expected-response deterrence instead (design §8):
    index ``g`` is sample ``g mod pilot_samples`` of cell ``Deterrence.pilot_cells[g //
    pilot_samples]``, keyed by :func:`kernels.rng.pilot_key`, never deterred; steps 3–8 give
    a value ``v`` with ``E[v] = E[F · exp(−delay / window_days)]``; Σ v and Σ v² are summed per
    pilot cell in sample order into the ``pilot`` output (P, 2).  ``v`` is the sample's
    ``F · exp(−delay / window_days)``, except where ``Deterrence.pilot_hazard`` is 1 (one
    covering alliance under unanimity): there ``v = att · (Σ_r 1{undecided before r} · π_r ·
    F_dec · exp(−(r · round_days + mobilization_days · (1 − integration)) / window_days) +
    1{undecided before R} · (1 − π_R) · cap_t)``, with ``π_r`` the chance, given the sample's
    round-start state, that every member still waiting backs in round ``r`` (the product of
    their ``p_{i,r}``), ``F_dec = (cap_t + Σ stability_i · cap_i) · (1 + integration · bonus)``
    and ``att = E[exp(−D_att / window_days)]``.  Its mean is the same (E[1{D = r}] =
    E[1{D ≥ r} · π_r]) and its variance far smaller when decisions are rare.
    ``block_size`` must then equal ``pilot_samples`` (one block per pilot cell, so one thread
    sums each cell, in order)."""

    seed: int
    start: int
    stop: int
    block_size: int
    record_start: int
    pilot_samples: int


class States(NamedTuple):
    """Per state (S,)."""

    capability: np.ndarray  # float64: cap_i
    stability: np.ndarray  # float64: chance that a backer delivers (step 7)


class Alliances(NamedTuple):
    """Per alliance (A,)."""

    rule: np.ndarray  # int64: index into layout.DECISION_RULES
    round_days: np.ndarray  # float64
    max_rounds: np.ndarray  # int64
    integration: np.ndarray  # float64
    intel_sharing: np.ndarray  # float64


class Crises(NamedTuple):
    """Step 1's draw tables: aggressor, then target and attack type within the aggressor."""

    aggressor_state: np.ndarray  # int64 (G,): state index of aggressor j
    aggressor_cum_weight: np.ndarray  # float64 (G,): cumulative, last = 1
    target_ptr: np.ndarray  # int64 (G + 1,): targets of aggressor j are entries ptr[j]…ptr[j+1]
    target_state: np.ndarray  # int64 (E,)
    target_cum_weight: np.ndarray  # float64 (E,): cumulative within each aggressor, last = 1
    target_cell_base: np.ndarray  # int64 (E,): first cell of each (aggressor, target) entry
    mix_ptr: np.ndarray  # int64 (G + 1,): attack mix of aggressor j is ptr[j]…ptr[j+1]
    mix_type: np.ndarray  # int64 (X,): attack type index
    mix_cum_weight: np.ndarray  # float64 (X,): cumulative within each aggressor, last = 1


class AttackTypes(NamedTuple):
    """Per attack type (K,)."""

    severity: np.ndarray  # float64
    attribution_days: np.ndarray  # float64: mean of D_att (0: no delay)


class Cells(NamedTuple):
    """Per cell (C,)."""

    aggressor: np.ndarray  # int64: aggressor index j (not a state index)
    target: np.ndarray  # int64: state index
    attack_type: np.ndarray  # int64: attack type index


class Deterrence(NamedTuple):
    """Step 2, precomputed per cell (C,) by :mod:`kernels.deterrence`, and the cells whose
    expected response a pilot estimates."""

    p_deterred: np.ndarray  # float64 (C,): with the covering alliances
    p_deterred_no_alliance: np.ndarray  # float64 (C,): the no-alliance baseline
    pilot_cells: np.ndarray  # int64 (P,): cells of a pilot run (empty for trials)
    # uint8 (P,): 1 where a pilot sample is the conditional estimate (one covering alliance
    # under unanimity; see Run)
    pilot_hazard: np.ndarray


class Consultations(NamedTuple):
    """Step 4, per consultation (a cell × one covering alliance of its target), built by
    :func:`kernels.prepare.consultation_tables`."""

    ptr: np.ndarray  # int64 (C + 1,): consultations of cell c are ptr[c] … ptr[c + 1]
    alliance: np.ndarray  # int64 (N,)
    entry_ptr: np.ndarray  # int64 (N + 1,): entries of consultation cc are entry_ptr[cc]…[cc+1]
    need: np.ndarray  # int64 (N,): backers the decision rule needs
    units_members: np.ndarray  # int64 (N,): capability units of M_A
    free_riding: np.ndarray  # uint8 (N,): 1 when a member other than the target free-rides
    max_members: int  # most entries of one consultation, ≥ 1 (scratch size)
    max_cover: int  # most consultations of one cell, ≥ 1 (scratch size)


class Entries(NamedTuple):
    """Step 4, per consultation entry (M,): the parts of ``p_i`` fixed for the whole run."""

    state: np.ndarray  # int64: state index i (ascending within a consultation)
    units: np.ndarray  # int64: capability units
    free_riding: np.ndarray  # float64
    base: np.ndarray  # float64: (commitment · bindingness) · (1 − ambiguity) · conflict
    theta: np.ndarray  # float64: θ before round 1, min(1, exposure · severity)
    static: np.ndarray  # float64: base · ((1 − w) + w · θ), p before free riding
    veto: np.ndarray  # uint8: 1 for a veto holder under a veto rule
    member: np.ndarray  # int64: row of the per-member tallies (index into the member CSR)


class Settings(NamedTuple):
    """The scenario's scalars (float64)."""

    outcome_noise: float  # σ_o
    mobilization_days: float
    window_days: float
    interoperability_bonus: float
    defection_threshold: float
    threat_weight: float  # w
