"""Run the kernel over a trial range and return exact integer tallies.

This is the only place that calls the private kernel :func:`kernels.trial._run_trials`: it packs
the compiled scenario and the precomputed tables into the kernel's named tuples
(:mod:`kernels.args`), allocates the per-thread tally slabs, walks the range in waves (for
progress and bounded memory), and sums the slabs in a fixed order.  All tallies are integers, so
the result does not depend on threads or block size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kernels.layout import (
    A_COVERED,
    A_DETERRED,
    C_DETERRED,
    C_TRIALS,
    N_ALLIANCE_COLUMNS,
    N_CELL_COLUMNS,
    N_COUNTERS,
    N_HIST_BINS,
    N_MEMBER_COLUMNS,
    N_RECORD_COLUMNS,
)

from ..model.compile import CompiledScenario

DEFAULT_BLOCK_SIZE = 4096


@dataclass
class Tallies:
    """Exact totals of a trial range (every array int64)."""

    cells: np.ndarray  # (C, N_CELL_COLUMNS)
    cell_hist: np.ndarray  # (C, N_HIST_BINS)
    alliances: np.ndarray  # (A, N_ALLIANCE_COLUMNS)
    alliance_hist: np.ndarray  # (A, N_HIST_BINS)
    # (memberships, N_MEMBER_COLUMNS): row r is membership r of the compiled member CSR
    # (state member_idx[r] of the alliance whose member_ptr range holds r)
    members: np.ndarray

    @classmethod
    def zeros(cls, n_cells: int, n_alliances: int, n_memberships: int) -> Tallies:
        return cls(
            np.zeros((n_cells, N_CELL_COLUMNS), np.int64),
            np.zeros((n_cells, N_HIST_BINS), np.int64),
            np.zeros((n_alliances, N_ALLIANCE_COLUMNS), np.int64),
            np.zeros((n_alliances, N_HIST_BINS), np.int64),
            np.zeros((n_memberships, N_MEMBER_COLUMNS), np.int64),
        )

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Every tally array, in field order."""
        return (self.cells, self.cell_hist, self.alliances, self.alliance_hist, self.members)

    def add(self, other: Tallies) -> None:
        for mine, theirs in zip(self.arrays(), other.arrays(), strict=True):
            mine += theirs

    def equals(self, other: Tallies) -> bool:
        return all(np.array_equal(x, y)
                   for x, y in zip(self.arrays(), other.arrays(), strict=True))


@dataclass
class DeterrenceTables:
    """Step 2 per cell (design §2, §8): ``p_deterred`` and ``p_deterred_no_alliance`` float64
    (C,); in ``expected_response`` mode also ``expected`` (E_cell), ``how`` (``E_EXACT`` or
    ``E_PILOT`` per cell) and ``standard_error`` (of a pilot's E_cell; 0 where exact)."""

    mode: str
    p_deterred: np.ndarray
    p_deterred_no_alliance: np.ndarray
    expected: np.ndarray | None = None
    how: np.ndarray | None = None
    standard_error: np.ndarray | None = None
    pilot_samples: int = 0
    misperception: float = 1.0

    def manifest(self) -> dict:
        """How deterrence was computed, for the run manifest: the mode and, in
        ``expected_response`` mode, the cells computed exactly and by pilot, the pilot's samples
        per cell and its largest standard error on ``P(deterred)`` (delta method:
        ``φ(z) / σ · SE(E) / E``)."""
        out: dict = {"mode": self.mode}
        if self.how is None:
            return out
        from kernels.layout import E_PILOT

        pilot = self.how == E_PILOT
        out["cells_exact"] = int((~pilot).sum())
        out["cells_pilot"] = int(pilot.sum())
        out["pilot_samples"] = self.pilot_samples if pilot.any() else 0
        error = 0.0
        relative = 0.0
        if pilot.any():
            from scipy.stats import norm

            z = norm.ppf(np.clip(self.p_deterred[pilot], 1e-300, 1.0 - 1e-16))
            rel = self.standard_error[pilot] / self.expected[pilot]
            error = float(np.max(norm.pdf(z) / self.misperception * rel))
            relative = float(np.max(rel))
        out["pilot_max_relative_error"] = relative
        out["pilot_max_probability_error"] = error
        return out


NO_PILOT = np.zeros((0, 2), np.float64)


def _slab(c: CompiledScenario, threads: int) -> tuple[np.ndarray, ...]:
    """Per-thread tally arrays of the kernel, zeroed (the Tallies arrays with a thread axis)."""
    return (
        np.zeros((threads, c.n_cells, N_CELL_COLUMNS), np.int64),
        np.zeros((threads, c.n_cells, N_HIST_BINS), np.int64),
        np.zeros((threads, c.n_alliances, N_ALLIANCE_COLUMNS), np.int64),
        np.zeros((threads, c.n_alliances, N_HIST_BINS), np.int64),
        np.zeros((threads, c.n_memberships, N_MEMBER_COLUMNS), np.int64),
    )


def _counter_slab() -> np.ndarray:
    """The kernel's per-thread work counters (T, N_COUNTERS), zeroed."""
    import numba

    return np.zeros((numba.get_num_threads(), N_COUNTERS), np.int64)


@dataclass
class _Prepared:
    """The kernel's inputs that do not depend on the seed (:mod:`kernels.args`)."""

    consultations: object
    entries: object
    states: object
    alliances: object
    crises: object
    attack_types: object
    cells: object
    settings: object

    def inputs(self, deterrence: DeterrenceTables, pilot_cells: np.ndarray | None = None,
               pilot_hazard: np.ndarray | None = None):
        """The kernel's input tuples in argument order."""
        from kernels.args import Deterrence

        if pilot_cells is None:
            pilot_cells = np.zeros(0, np.int64)
            pilot_hazard = np.zeros(0, np.uint8)
        return (self.states, self.alliances, self.crises, self.attack_types, self.cells,
                Deterrence(deterrence.p_deterred, deterrence.p_deterred_no_alliance,
                           pilot_cells, pilot_hazard),
                self.consultations, self.entries, self.settings)


def _prepare(c: CompiledScenario) -> _Prepared:
    from kernels.args import Alliances, AttackTypes, Cells, Crises, Settings, States
    from kernels.prepare import consultation_tables

    consultations, entries = consultation_tables(
        c.capability_units, c.commitment, c.free_riding, c.member_ptr, c.member_idx, c.rule,
        c.quota, c.veto, c.bindingness, c.entry_cover_ptr, c.entry_cover_idx,
        c.shares_alliance, c.exposure, c.aggressor_state, c.cell_aggressor, c.cell_target,
        c.cell_attack_type, c.cell_entry, c.severity, c.ambiguity, c.conflict_penalty,
        c.threat_weight,
    )
    return _Prepared(
        consultations, entries,
        States(c.capability, c.stability),
        Alliances(c.rule, c.round_days, c.max_rounds, c.integration, c.intel_sharing),
        Crises(
            c.aggressor_state, c.aggressor_cum_weight, c.target_ptr, c.target_state,
            c.target_cum_weight, c.target_cell_base, c.mix_ptr, c.mix_type, c.mix_cum_weight,
        ),
        AttackTypes(c.severity, c.attribution_days),
        Cells(c.cell_aggressor, c.cell_target, c.cell_attack_type),
        Settings(
            c.outcome_noise, c.mobilization_days, c.window_days, c.interoperability_bonus,
            c.defection_threshold, c.threat_weight,
        ),
    )


_STEP2_CACHE: dict[tuple[str, int], DeterrenceTables] = {}
_STEP2_CACHE_SIZE = 16


def _compiled_digest(c: CompiledScenario) -> str:
    """A digest of every array and scalar of a compiled scenario (what step 2 reads)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=20)
    for name, value in c.arrays().items():
        digest.update(name.encode())
        if isinstance(value, np.ndarray):
            digest.update(str((value.dtype, value.shape)).encode())
            digest.update(np.ascontiguousarray(value).tobytes())
        else:
            digest.update(repr(value).encode())
    return digest.hexdigest()


def deterrence_tables(compiled: CompiledScenario, seed: int,
                      prepared: _Prepared | None = None, *, cache: bool = True) -> DeterrenceTables:
    """Step 2 of every cell of the scenario under ``seed`` (memoized per process unless
    ``cache=False``: a pure function of the compiled scenario and the seed, so repeated runs of
    one scenario — tests, notebooks, resumed waves — compute an expected-response pilot once;
    do not modify the arrays of the tables it returns)."""
    if compiled.deterrence == 0 or not cache:  # capability mode is cheap: no cache
        return _deterrence_tables(compiled, seed, prepared)
    key = (_compiled_digest(compiled), int(seed))
    if key not in _STEP2_CACHE:
        if len(_STEP2_CACHE) >= _STEP2_CACHE_SIZE:
            _STEP2_CACHE.pop(next(iter(_STEP2_CACHE)))
        _STEP2_CACHE[key] = _deterrence_tables(compiled, seed, prepared)
    return _STEP2_CACHE[key]


def _deterrence_tables(compiled: CompiledScenario, seed: int,
                       prepared: _Prepared | None = None) -> DeterrenceTables:
    """Step 2 of every cell of the scenario under ``seed`` (design §2 ``capability``, §8
    ``expected_response``).

    In ``expected_response`` mode ``E_cell`` is exact where a closed form exists
    (:func:`kernels.deterrence.exact_expected_response`) and otherwise the mean of
    ``pilot_samples`` samples of the cell's response, drawn by the kernel itself with keys of
    (seed, cell, sample) (:func:`kernels.rng.pilot_key`): the same for every trial range,
    thread count, block size and shard.
    """
    import numba

    from kernels.args import Run
    from kernels.deterrence import (
        deterrence_probabilities,
        exact_expected_response,
        expected_response_probabilities,
    )
    from kernels.layout import DETERRENCE_MODES, E_PILOT
    from kernels.trial import _run_trials

    c = compiled
    mode = DETERRENCE_MODES[c.deterrence]
    if mode == "capability":
        p_det, p_det0 = deterrence_probabilities(
            c.capability, c.commitment, c.membership, c.bindingness, c.entry_cover_ptr,
            c.entry_cover_idx, c.aggressor_state, c.resolve, c.target_ptr, c.target_state,
            c.misperception,
        )
        return DeterrenceTables(mode, p_det[c.cell_entry], p_det0[c.cell_entry],
                                misperception=c.misperception)
    if prepared is None:
        prepared = _prepare(c)
    cons, ent = prepared.consultations, prepared.entries
    expected, how, hazard = exact_expected_response(
        c.capability, c.stability, c.rule, c.round_days, c.max_rounds, c.integration,
        c.intel_sharing, cons.ptr, cons.alliance, cons.entry_ptr, cons.free_riding, ent.state,
        ent.static, c.cell_target, c.cell_attack_type, c.attribution_days,
        c.mobilization_days, c.window_days, c.interoperability_bonus, c.threat_weight,
    )
    error = np.zeros(c.n_cells, np.float64)
    pilot_cells = np.flatnonzero(how == E_PILOT).astype(np.int64)
    n = c.pilot_samples
    if len(pilot_cells):
        sums = np.zeros((len(pilot_cells), 2), np.float64)
        zero = np.zeros(c.n_cells, np.float64)
        scratch = DeterrenceTables(mode, zero, zero)
        _run_trials(
            Run(seed, 0, len(pilot_cells) * n, n, 0, n),
            *prepared.inputs(scratch, pilot_cells, hazard[pilot_cells]),
            *_slab(c, numba.get_num_threads()), np.zeros((0, N_RECORD_COLUMNS)), sums,
            _counter_slab(),
        )
        mean = sums[:, 0] / n
        expected[pilot_cells] = mean
        error[pilot_cells] = np.sqrt(np.maximum(0.0, sums[:, 1] / n - mean * mean) / (n - 1))
    p_det, p_det0 = expected_response_probabilities(
        expected, c.capability, c.aggressor_state, c.resolve, c.severity, c.attribution_days,
        c.cell_aggressor, c.cell_target, c.cell_attack_type, c.window_days, c.misperception,
    )
    return DeterrenceTables(mode, p_det, p_det0, expected, how, error, n, c.misperception)


def set_threads(threads: int | None) -> int:
    """Use ``threads`` Numba threads (None: all available); return the number in use."""
    import numba

    if threads is None:
        threads = numba.config.NUMBA_NUM_THREADS
    if threads < 1:
        raise ValueError("threads must be ≥ 1")
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return numba.get_num_threads()


def simulate(
    compiled: CompiledScenario,
    seed: int,
    start: int,
    stop: int,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    save_trials: int = 0,
    wave_trials: int | None = None,
    progress: Callable[[int], None] | None = None,
    records: np.ndarray | None = None,
    record_start: int | None = None,
    on_wave: Callable[[int, Callable[[], Tallies], np.ndarray], None] | None = None,
    deterrence: DeterrenceTables | None = None,
    counters: np.ndarray | None = None,
) -> tuple[Tallies, np.ndarray]:
    """Simulate global trials ``[start, stop)``.

    Returns the tallies and the saved records of the first ``save_trials`` trials of the range,
    float64 ``(min(save_trials, stop − start), N_RECORD_COLUMNS)``.  ``progress(n)`` is called
    after each wave with the number of trials it finished.  To continue a run, pass the
    ``records`` array so far and its ``record_start`` (rows are trials ``record_start + i``).
    ``on_wave(position, snapshot, records)`` is called after each wave; ``snapshot()`` returns the
    tallies of ``[start, position)`` (for checkpoints).  ``deterrence`` is step 2 as
    :func:`deterrence_tables` computes it for this scenario and seed (computed here when None).
    ``counters`` int64 (N_COUNTERS,), when given, receives the kernel's work
    (:data:`kernels.layout.COUNT_UNIFORMS` …: what ``crisis bench`` sets against the hashing
    limit); it never changes a tally.
    """
    import numba

    from kernels.args import Run
    from kernels.trial import _run_trials

    if block_size < 1:
        raise ValueError("block_size must be ≥ 1")
    c = compiled
    threads = numba.get_num_threads()
    prepared = _prepare(c)
    if deterrence is None:
        deterrence = deterrence_tables(c, seed, prepared)
    inputs = prepared.inputs(deterrence)
    consultations = prepared.consultations
    slab = _slab(c, threads)
    if records is None:
        n_records = max(0, min(save_trials, stop - start))
        records = np.zeros((n_records, N_RECORD_COLUMNS), np.float64)
        record_start = start
    elif record_start is None:
        raise ValueError("records need their record_start")
    cc_alliance = consultations.alliance
    cc_cell = np.repeat(np.arange(c.n_cells), np.diff(consultations.ptr))

    def snapshot() -> Tallies:
        total = Tallies(*(s.sum(axis=0) for s in slab))
        # A trial is "covered" by every covering alliance of its cell (design §8): per-alliance
        # coverage and deterrence follow exactly from the cell tallies.
        np.add.at(total.alliances[:, A_COVERED], cc_alliance, total.cells[cc_cell, C_TRIALS])
        np.add.at(total.alliances[:, A_DETERRED], cc_alliance, total.cells[cc_cell, C_DETERRED])
        return total
    if wave_trials is None:
        wave_trials = max(block_size * threads * 8, 1 << 22)
    wave_trials = max(block_size, (wave_trials // block_size) * block_size)
    position = start
    work = _counter_slab()
    while position < stop:
        end = min(stop, position + wave_trials)
        _run_trials(
            Run(seed, position, end, block_size, record_start, 0), *inputs,
            *slab, records, NO_PILOT, work,
        )
        if progress is not None:
            progress(end - position)
        position = end
        if on_wave is not None:
            on_wave(position, snapshot, records)
    if counters is not None:
        counters += work.sum(axis=0)
    return snapshot(), records


@dataclass
class CampaignTallies:
    """What a campaign run adds up (design §7; every array int64): the v1 tallies over every
    crisis of every period (``cells`` … ``members``, the latter with a row per roster slot:
    members in the member CSR's order, then the candidates), and per period the cell columns
    and delay histogram summed over cells, the :data:`~kernels.layout.PERIOD_COLUMNS`, per
    alliance × period the :data:`~kernels.layout.ALLIANCE_PERIOD_COLUMNS`, and the trajectories
    by their number of successful aggressions."""

    cells: np.ndarray  # (C, N_CELL_COLUMNS)
    cell_hist: np.ndarray  # (C, N_HIST_BINS)
    alliances: np.ndarray  # (A, N_ALLIANCE_COLUMNS)
    alliance_hist: np.ndarray  # (A, N_HIST_BINS)
    members: np.ndarray  # (memberships + candidates, N_MEMBER_COLUMNS)
    period_cells: np.ndarray  # (steps, N_CELL_COLUMNS)
    period_hist: np.ndarray  # (steps, N_HIST_BINS)
    periods: np.ndarray  # (steps, N_PERIOD_COLUMNS)
    alliance_periods: np.ndarray  # (A, steps, N_ALLIANCE_PERIOD_COLUMNS)
    successes: np.ndarray  # (steps + 1,)

    @classmethod
    def zeros(cls, c: CompiledScenario, threads: int | None = None) -> CampaignTallies:
        """Zero tallies of campaign scenario ``c`` (with a leading thread axis when given)."""
        from kernels.layout import N_ALLIANCE_PERIOD_COLUMNS, N_PERIOD_COLUMNS

        cp = c.campaign
        lead = () if threads is None else (threads,)
        shapes = ((c.n_cells, N_CELL_COLUMNS), (c.n_cells, N_HIST_BINS),
                  (c.n_alliances, N_ALLIANCE_COLUMNS), (c.n_alliances, N_HIST_BINS),
                  (c.n_memberships + cp.n_candidates, N_MEMBER_COLUMNS),
                  (cp.steps, N_CELL_COLUMNS), (cp.steps, N_HIST_BINS),
                  (cp.steps, N_PERIOD_COLUMNS),
                  (c.n_alliances, cp.steps, N_ALLIANCE_PERIOD_COLUMNS), (cp.steps + 1,))
        return cls(*(np.zeros(lead + shape, np.int64) for shape in shapes))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.cells, self.cell_hist, self.alliances, self.alliance_hist, self.members,
                self.period_cells, self.period_hist, self.periods, self.alliance_periods,
                self.successes)

    def add(self, other: CampaignTallies) -> None:
        for mine, theirs in zip(self.arrays(), other.arrays(), strict=True):
            mine += theirs

    def equals(self, other: CampaignTallies) -> bool:
        return all(np.array_equal(x, y)
                   for x, y in zip(self.arrays(), other.arrays(), strict=True))


def simulate_campaign(compiled: CompiledScenario, seed: int, start: int, stop: int, *,
                      block_size: int = 256,
                      deterrence: DeterrenceTables | None = None,
                      counters: np.ndarray | None = None) -> CampaignTallies:
    """Simulate campaign trajectories ``[start, stop)`` (design §7) with the campaign kernel
    (:mod:`kernels.campaign`); ``deterrence`` is step 2 of the scenario's cells at the start
    (computed here when None).  Tallies are integers summed over threads: the same for any
    thread count or block size.  ``counters`` int64 (N_COUNTERS,), when given, receives the
    kernel's work as :func:`simulate`'s does (uniforms, keys: the trial's and each later
    period's, members' draws)."""
    import numba

    from kernels.campaign import run_campaigns

    c = compiled
    cp = c.campaign
    if cp is None:
        raise ValueError("not a campaign scenario")
    if block_size < 1:
        raise ValueError("block_size must be ≥ 1")
    if deterrence is None:
        deterrence = deterrence_tables(c, seed)
    expected = (deterrence.expected if deterrence.expected is not None
                else np.full(c.n_cells, np.nan))
    threads = numba.get_num_threads()
    slab = CampaignTallies.zeros(c, threads)
    work = _counter_slab()
    run_campaigns(
        np.int64(seed), np.int64(start), np.int64(stop), np.int64(block_size),
        c.capability, c.capability_units, c.commitment, c.stability, c.free_riding,
        c.exposure, c.shares_alliance,
        c.obligation, c.rule, c.quota, c.max_rounds, c.round_days, c.integration,
        c.intel_sharing, c.bindingness, c.veto,
        c.aggressor_state, c.aggressor_cum_weight, c.resolve, c.target_ptr, c.target_state,
        c.target_cum_weight, c.target_cell_base, c.mix_ptr, c.mix_type, c.mix_cum_weight,
        c.severity, c.attribution_days, c.ambiguity,
        np.ascontiguousarray(deterrence.p_deterred, dtype=np.float64),
        np.ascontiguousarray(deterrence.p_deterred_no_alliance, dtype=np.float64),
        np.ascontiguousarray(expected, dtype=np.float64), np.int64(c.deterrence),
        c.misperception, c.outcome_noise, c.mobilization_days, c.window_days,
        c.interoperability_bonus, c.defection_threshold, c.conflict_penalty, c.threat_weight,
        np.int64(cp.steps), cp.crisis_rate, cp.reputation_learning, cp.trust_weight,
        cp.resolve_learning, cp.threat_shock, cp.threat_decay, cp.exit_threshold,
        cp.join_threshold, cp.roster_ptr, cp.roster_idx, cp.roster_initial,
        cp.roster_protected, cp.roster_row, np.unique(cp.roster_idx).astype(np.int64),
        *slab.arrays(), work,
    )
    if counters is not None:
        counters += work.sum(axis=0)
    return CampaignTallies(*(x.sum(axis=0) for x in slab.arrays()))
