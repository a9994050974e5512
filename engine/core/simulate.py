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
    N_HIST_BINS,
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

    @classmethod
    def zeros(cls, n_cells: int, n_alliances: int) -> Tallies:
        return cls(
            np.zeros((n_cells, N_CELL_COLUMNS), np.int64),
            np.zeros((n_cells, N_HIST_BINS), np.int64),
            np.zeros((n_alliances, N_ALLIANCE_COLUMNS), np.int64),
            np.zeros((n_alliances, N_HIST_BINS), np.int64),
        )

    def add(self, other: Tallies) -> None:
        self.cells += other.cells
        self.cell_hist += other.cell_hist
        self.alliances += other.alliances
        self.alliance_hist += other.alliance_hist

    def equals(self, other: Tallies) -> bool:
        return all(
            np.array_equal(x, y)
            for x, y in zip(
                (self.cells, self.cell_hist, self.alliances, self.alliance_hist),
                (other.cells, other.cell_hist, other.alliances, other.alliance_hist),
                strict=True,
            )
        )


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
) -> tuple[Tallies, np.ndarray]:
    """Simulate global trials ``[start, stop)``.

    Returns the tallies and the saved records of the first ``save_trials`` trials of the range,
    float64 ``(min(save_trials, stop − start), N_RECORD_COLUMNS)``.  ``progress(n)`` is called
    after each wave with the number of trials it finished.  To continue a run, pass the
    ``records`` array so far and its ``record_start`` (rows are trials ``record_start + i``).
    ``on_wave(position, snapshot, records)`` is called after each wave; ``snapshot()`` returns the
    tallies of ``[start, position)`` (for checkpoints).
    """
    import numba

    from kernels.args import (
        Alliances,
        AttackTypes,
        Cells,
        Crises,
        Deterrence,
        Run,
        Settings,
        States,
    )
    from kernels.deterrence import deterrence_probabilities
    from kernels.prepare import consultation_tables
    from kernels.trial import _run_trials

    if block_size < 1:
        raise ValueError("block_size must be ≥ 1")
    c = compiled
    threads = numba.get_num_threads()
    p_det, p_det0 = deterrence_probabilities(
        c.capability, c.commitment, c.membership, c.bindingness, c.cover_ptr, c.cover_idx,
        c.aggressor_state, c.resolve, c.target_ptr, c.target_state, c.misperception,
    )
    consultations, entries = consultation_tables(
        c.capability_units, c.commitment, c.free_riding, c.member_ptr, c.member_idx, c.rule,
        c.quota,
        c.veto, c.bindingness, c.cover_ptr, c.cover_idx, c.shares_alliance, c.exposure,
        c.aggressor_state, c.cell_aggressor, c.cell_target, c.cell_attack_type, c.severity,
        c.ambiguity, c.conflict_penalty, c.threat_weight,
    )
    inputs = (
        States(c.capability, c.stability),
        Alliances(c.rule, c.round_days, c.max_rounds, c.integration, c.intel_sharing),
        Crises(
            c.aggressor_state, c.aggressor_cum_weight, c.target_ptr, c.target_state,
            c.target_cum_weight, c.target_cell_base, c.mix_ptr, c.mix_type, c.mix_cum_weight,
        ),
        AttackTypes(c.severity, c.attribution_days),
        Cells(c.cell_aggressor, c.cell_target, c.cell_attack_type),
        Deterrence(p_det, p_det0),
        consultations,
        entries,
        Settings(
            c.outcome_noise, c.mobilization_days, c.window_days, c.interoperability_bonus,
            c.defection_threshold, c.threat_weight,
        ),
    )
    slab = (
        np.zeros((threads, c.n_cells, N_CELL_COLUMNS), np.int64),
        np.zeros((threads, c.n_cells, N_HIST_BINS), np.int64),
        np.zeros((threads, c.n_alliances, N_ALLIANCE_COLUMNS), np.int64),
        np.zeros((threads, c.n_alliances, N_HIST_BINS), np.int64),
    )
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
        # A trial is "covered" by every defense alliance of its target: per-alliance coverage
        # and deterrence follow exactly from the cell tallies.
        np.add.at(total.alliances[:, A_COVERED], cc_alliance, total.cells[cc_cell, C_TRIALS])
        np.add.at(total.alliances[:, A_DETERRED], cc_alliance, total.cells[cc_cell, C_DETERRED])
        return total
    if wave_trials is None:
        wave_trials = max(block_size * threads * 8, 1 << 22)
    wave_trials = max(block_size, (wave_trials // block_size) * block_size)
    position = start
    while position < stop:
        end = min(stop, position + wave_trials)
        _run_trials(
            Run(seed, position, end, block_size, record_start), *inputs,
            slab[0], slab[1], slab[2], slab[3], records,
        )
        if progress is not None:
            progress(end - position)
        position = end
        if on_wave is not None:
            on_wave(position, snapshot, records)
    return snapshot(), records
