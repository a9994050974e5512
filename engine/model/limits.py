"""Requests the engine refuses up front, with the reason, instead of failing hours later.

* trials per process above :data:`MAX_TRIALS_PER_RUN` (10¹³ ≈ 11 days at 10 M trials/s): shard
  the run instead (``--shard``, ``crisis submit``);
* scenarios larger than :data:`MAX_STATES` states or :data:`MAX_ALLIANCES` alliances (the
  state × state matrices alone would not fit), or whose tallies would need more memory than
  ``CRISIS_MEMORY_LIMIT_GB`` (default 8 GiB) — memory does not grow with the trial count, only
  with cells × threads;
* a trial count for which the fixed-point delay sum could overflow int64 (the delay histogram
  has an overflow bin, so only the sum is at risk).
"""

from __future__ import annotations

import math
import os

from kernels.layout import (
    DELAY_SCALE,
    N_ALLIANCE_COLUMNS,
    N_CELL_COLUMNS,
    N_HIST_BINS,
    N_RECORD_COLUMNS,
)

from ..errors import UserError
from .config import Scenario

MAX_TRIALS_PER_RUN = 10**13
MAX_STATES = 5_000
MAX_ALLIANCES = 20_000
MAX_SAVE_TRIALS = 10**7
# −ln(2^−53): the largest multiple of its mean an exponential attribution delay can reach
MAX_EXPONENTIAL_MULTIPLE = 53 * math.log(2)


def memory_limit_bytes() -> float:
    try:
        return float(os.environ.get("CRISIS_MEMORY_LIMIT_GB", "8")) * 2**30
    except ValueError:
        return 8 * 2**30


def check_scenario_size(scenario: Scenario, source: str = "") -> None:
    """Refuse scenarios too large to compile (before any array is allocated)."""
    where = f"{source}: " if source else ""
    n_states, n_alliances = len(scenario.states), len(scenario.alliances)
    if n_states > MAX_STATES:
        raise UserError(f"{where}{n_states:,} states is more than this engine handles "
                        f"({MAX_STATES:,}: state × state matrices grow with the square)")
    if n_alliances > MAX_ALLIANCES:
        raise UserError(f"{where}{n_alliances:,} alliances is more than this engine handles "
                        f"({MAX_ALLIANCES:,})")


def estimated_bytes(scenario: Scenario, threads: int, save_trials: int) -> float:
    n_states, n_alliances = len(scenario.states), len(scenario.alliances)
    n_cells = sum(len(a.targets) * len(a.attack_mix) for a in scenario.aggressors)
    per_cell = (N_CELL_COLUMNS + N_HIST_BINS) * 8
    per_alliance = (N_ALLIANCE_COLUMNS + N_HIST_BINS) * 8
    slabs = (threads + 2) * (n_cells * per_cell + n_alliances * per_alliance)
    matrices = n_states * n_states * 9 + n_states * n_alliances * 2
    return slabs + matrices + save_trials * N_RECORD_COLUMNS * 8


def check_request(scenario: Scenario, *, trials_in_process: int, total_trials: int,
                  threads: int, save_trials: int) -> None:
    """Refuse a run that cannot finish or fit; every message says why and what to do."""
    check_scenario_size(scenario)
    if trials_in_process > MAX_TRIALS_PER_RUN:
        days = trials_in_process / 1e7 / 86400
        raise UserError(
            f"{trials_in_process:.3g} trials in one process would take about {days:,.0f} days "
            f"at 10 M trials/s (limit {MAX_TRIALS_PER_RUN:.0e}); split it with --shard I/K or "
            f"`crisis submit --shards K`")
    if save_trials > MAX_SAVE_TRIALS:
        raise UserError(f"--save-trials {save_trials:,}: at most {MAX_SAVE_TRIALS:,} per-trial "
                        f"records are kept (they are for inspection; tallies cover every trial)")
    need = estimated_bytes(scenario, threads, min(save_trials, trials_in_process))
    limit = memory_limit_bytes()
    if need > limit:
        raise UserError(
            f"this run needs about {need / 2**30:.1f} GiB for its tallies ({threads} threads); "
            f"the limit is {limit / 2**30:.1f} GiB (CRISIS_MEMORY_LIMIT_GB): use fewer threads "
            f"or fewer aggressor × target × attack-type cells")
    sc = scenario.scenario
    longest = max((a.attribution_days for a in scenario.attack_types.values()), default=0.0)
    rounds = max((a.max_rounds * a.round_days for a in scenario.alliances), default=0.0)
    max_delay = longest * MAX_EXPONENTIAL_MULTIPLE + rounds + sc.mobilization_days
    if total_trials * (max_delay * DELAY_SCALE + 1) >= 2**63:
        raise UserError(
            f"{total_trials:.3g} trials with delays up to {max_delay:,.0f} days could overflow "
            f"the exact delay sums; run fewer trials per run and merge shards")
