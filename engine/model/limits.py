"""Requests the engine refuses up front, with the reason, instead of failing hours later.

* trials per process above :data:`MAX_TRIALS_PER_RUN` (10¹³ ≈ 11 days at 10 M trials/s): shard
  the run instead (``--shard``, ``crisis submit``);
* scenarios larger than :data:`MAX_STATES` states, :data:`MAX_ALLIANCES` alliances or
  :data:`MAX_ATTACK_TYPES` attack types;
* scenarios or runs whose arrays would need more memory than ``CRISIS_MEMORY_LIMIT_GB``
  (default 8 GiB).  :func:`memory_parts` counts every large array, from the scenario's sizes
  alone (nothing is allocated to find out): the compiled state × state and state × alliance
  matrices (and the portfolio-similarity temporaries of ``[exposure] from``), the consultation
  tables (one row per cell × covering alliance, one entry per member of ``M_A`` in it), the
  kernel's per-thread scratch (member × trial arrays of a batch), the per-thread tallies and the
  saved trial records.  Memory grows with cells, alliance sizes and threads, never with trials;
* a trial count for which the fixed-point delay sums could overflow int64 (the delay histogram
  has an overflow bin, so only the sums are at risk) — and a scenario whose delays are so long
  that even one trial could overflow them.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass

from kernels.layout import (
    DELAY_SCALE,
    MAX_ROUNDS,
    N_ALLIANCE_COLUMNS,
    N_CELL_COLUMNS,
    N_HIST_BINS,
    N_MEMBER_COLUMNS,
    N_RECORD_COLUMNS,
)

from ..errors import UserError
from .config import Scenario

MAX_TRIALS_PER_RUN = 10**13
MAX_STATES = 5_000
MAX_ALLIANCES = 20_000
# every attack type is a cell per (aggressor, target), a row of every summary and a knob of
# `crisis sensitivity`; real scenarios use a handful
MAX_ATTACK_TYPES = 1_000
MAX_SAVE_TRIALS = 10**7
DEFAULT_MEMORY_LIMIT_GB = 8.0
# −ln(2^−53): the largest multiple of its mean an exponential attribution delay can reach
MAX_EXPONENTIAL_MULTIPLE = 53 * math.log(2)
# the longest delay (days) whose fixed-point value fits an int64 delay sum
MAX_DELAY_DAYS = (2**63 - 1) / DELAY_SCALE

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")

# Bytes per state pair of the portfolio-similarity temporaries of `[exposure] from = …`
# (engine.model.similarity; measured peaks with tracemalloc, rounded up: the S-scores hold a few
# (S, S) float64 matrices, tau_b and kappa a (4, 4, S, S) contingency table and its cumulative
# sums), plus 9 bytes per state × alliance (a 0/1 copy and a float64 block of the membership).
SIMILARITY_BYTES_PER_PAIR = {"s_score": 80, "s_weighted": 80, "tau_b": 420, "kappa": 420}
SIMILARITY_BYTES_PER_MEMBERSHIP = 9

# Bytes per consultation (cell × covering alliance) and per consultation entry (a member of M_A
# in one consultation): kernels/prepare.py `consultation_tables` (alliance, entry_ptr, need,
# units_members int64, free_riding uint8) plus engine/core/simulate.py (the consultation's cell,
# int64, and two int64 gathers when tallies are summed); per entry: state, units int64, and
# free_riding, base, theta, static float64, veto uint8, member int64.
BYTES_PER_CONSULTATION = 4 * 8 + 1 + 8 + 2 * 8
BYTES_PER_ENTRY = 7 * 8 + 1


def memory_limit_bytes() -> float:
    """``CRISIS_MEMORY_LIMIT_GB`` (GiB, default 8) in bytes; ``inf`` turns the check off."""
    text = os.environ.get("CRISIS_MEMORY_LIMIT_GB", "").strip()
    if not text:
        return DEFAULT_MEMORY_LIMIT_GB * 2**30
    try:
        gib = float(text)
    except ValueError:
        gib = math.nan
    if not gib > 0:  # also NaN
        raise UserError(f"CRISIS_MEMORY_LIMIT_GB={text[:40]!r}: expected a number of GiB > 0 "
                        f"(default {DEFAULT_MEMORY_LIMIT_GB:g}; inf for no limit)")
    return gib * 2**30


@dataclass(frozen=True)
class ScenarioShape:
    """The sizes that fix a scenario's memory, counted from the scenario alone."""

    states: int
    alliances: int
    memberships: int  # Σ members over alliances
    cells: int  # aggressor × target × attack type
    consultations: int  # cell × covering alliance of its (aggressor, target) entry
    entries: int  # Σ over consultations of |M_A| (members other than the aggressor)
    largest_consultation: int  # most entries in one consultation (≥ 1; may exceed by one)
    most_cover: int  # most covering alliances of one attacked target (≥ 1)


def scenario_shape(scenario: Scenario) -> ScenarioShape:
    """Count cells, consultations and their entries as :func:`kernels.prepare.
    consultation_tables` will, in time linear in the scenario's size."""
    size = [len(al.members) for al in scenario.alliances]
    defense = [al.obligation == "defense" for al in scenario.alliances]
    aggressors = {ag.state for ag in scenario.aggressors}
    # state → alliances that protect it and have a member besides it (design §8: defense pacts
    # protect their protected members, collective security all members)
    cover: dict[str, list[int]] = {}
    member_of: dict[str, set[int]] = {s: set() for s in aggressors}
    for a, al in enumerate(scenario.alliances):
        for m in al.members:
            if m in member_of:
                member_of[m].add(a)
        if al.obligation == "defense":
            protected = al.members if al.protected is None else dict.fromkeys(al.protected)
        elif al.obligation == "collective_security":
            protected = al.members
        else:
            continue
        if size[a] < 2:
            continue
        for s in protected:
            cover.setdefault(s, []).append(a)
    cells = consultations = entries = 0
    largest = most_cover = 1
    cover_members: dict[str, int] = {}
    cover_largest: dict[str, int] = {}
    for ag in scenario.aggressors:
        types = len(ag.attack_mix)
        cells += types * len(ag.targets)
        own = member_of[ag.state]
        for t in ag.targets:
            covering = cover.get(t)
            if not covering:
                continue
            if t not in cover_members:
                cover_members[t] = sum(size[a] for a in covering)
                cover_largest[t] = max(size[a] for a in covering)
            n_cover = len(covering)
            n_entries = cover_members[t]
            # the aggressor's alliances among them: a defense pact does not cover it, and no
            # alliance covers when only the target and the aggressor are in it; otherwise the
            # aggressor is one member fewer
            for a in own.intersection(covering) if own else ():
                if defense[a] or size[a] <= 2:
                    n_cover -= 1
                    n_entries -= size[a]
                else:
                    n_entries -= 1
            consultations += types * n_cover
            entries += types * n_entries
            if n_cover:
                most_cover = max(most_cover, n_cover)
                largest = max(largest, cover_largest[t])
    return ScenarioShape(len(scenario.states), len(scenario.alliances), sum(size), cells,
                         consultations, entries, largest, most_cover)


def compile_parts(scenario: Scenario, shape: ScenarioShape | None = None) -> dict[str, float]:
    """Bytes of the largest arrays :func:`engine.model.compile.compile_scenario` builds."""
    shape = shape or scenario_shape(scenario)
    s, a = shape.states, shape.alliances
    # membership and veto uint8 (S, A); shares_alliance uint8 and exposure float64 (S, S) and
    # the bit rows shares_alliance is built from (A and S rows of S / 8 bytes); per membership
    # the member lists (Python and int64) and the sorts of shared_alliance_matrix
    parts = {"state × state and state × alliance matrices": (
        2.0 * s * a + 9.0 * s * s + (a + s) * (s + 7) // 8 + 96.0 * shape.memberships)}
    measure = scenario.exposure.from_
    if measure is not None:
        parts[f'portfolio similarity of [exposure] from = "{measure}"'] = (
            SIMILARITY_BYTES_PER_PAIR.get(measure, max(SIMILARITY_BYTES_PER_PAIR.values()))
            * float(s) * s + SIMILARITY_BYTES_PER_MEMBERSHIP * float(s) * a)
    return parts


def scratch_bytes_per_thread(shape: ScenarioShape, block_size: int | None = None,
                             max_rounds: int = MAX_ROUNDS) -> float:
    """The kernel's scratch of one thread (``kernels.trial._allocate_scratch``): per batch of
    ``B = batch_size(block_size, L)`` trials, member × trial arrays of the largest consultation
    (``L`` members), and the thresholds of ``max_rounds`` rounds per member."""
    from kernels.trial import BATCH, SCRATCH_PAD, batch_size

    members, cover = shape.largest_consultation, shape.most_cover
    batch = batch_size.py_func(block_size or BATCH, members)
    b = batch + SCRATCH_PAD
    return float(
        b * (5 * 8 + 6 * 8 + 3 * 8 + 8 + 2)  # attacked trials, their order; share, the five
        # counters and the pilot's three hazard arrays; group keys; limit, latest
        + cover * members * b  # backed uint8 (V, L, B)
        + (2 * 8 + 1) * members * b  # draw, survival float64, rounds_to_back uint8 (L, B)
        + 8 * members * (max_rounds + SCRATCH_PAD)  # threshold float64 (L, R)
        + 2 * 8 * (max_rounds + 2) * b  # in_round, veto_in_round (R + 2, B)
        + cover * b * (1 + 8 + 8 + 1)  # decided, rounds_of, n_back_of, vetoed (V, B)
        + 2 * 8 * (shape.cells + SCRATCH_PAD)  # cell_count, cell_fill
        + 2 * 8 * (members + SCRATCH_PAD) + 8 * (cover + SCRATCH_PAD)
        + (shape.states + SCRATCH_PAD))  # mark


def memory_parts(scenario: Scenario, threads: int, save_trials: int,
                 block_size: int | None = None) -> dict[str, float]:
    """Bytes of every large array of a run, by what holds them (see the module docstring)."""
    shape = scenario_shape(scenario)
    per_cell = (N_CELL_COLUMNS + N_HIST_BINS) * 8
    per_alliance = (N_ALLIANCE_COLUMNS + N_HIST_BINS) * 8
    return {
        **compile_parts(scenario, shape),
        "consultation tables": (shape.consultations * BYTES_PER_CONSULTATION
                                + shape.entries * BYTES_PER_ENTRY + 8.0 * shape.cells),
        "kernel scratch": threads * scratch_bytes_per_thread(
            shape, block_size, max((al.max_rounds for al in scenario.alliances), default=1)),
        # one slab per thread, their sum, and the tables built from it
        "tallies": (threads + 3.0) * (shape.cells * per_cell + shape.alliances * per_alliance
                                      + shape.memberships * N_MEMBER_COLUMNS * 8),
        "saved trial records": 2.0 * save_trials * N_RECORD_COLUMNS * 8,
    }


def estimated_bytes(scenario: Scenario, threads: int, save_trials: int,
                    block_size: int | None = None) -> float:
    """Peak bytes of a run's large arrays (an upper estimate; see :func:`memory_parts`)."""
    return sum(memory_parts(scenario, threads, save_trials, block_size).values())


_ADVICE = {
    "consultation tables": "they hold one entry per member of every consultation (cell × "
                           "covering alliance), so give the aggressors fewer targets or attack "
                           "types, or make the defense alliances smaller",
    "kernel scratch": "it grows with threads × the largest alliance, so use fewer threads "
                      "(--threads)",
    "tallies": "they grow with threads × (cells + alliances + memberships), so use fewer "
               "threads (--threads) "
               "or fewer aggressor × target × attack-type cells",
    "saved trial records": "keep fewer records (--save-trials)",
    "state × state and state × alliance matrices": "use fewer states or alliances",
}


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 / 10 else f"{n / 2**20:,.1f} MiB"


def _refuse_memory(parts: dict[str, float], what: str, source: str = "") -> None:
    need, limit = sum(parts.values()), memory_limit_bytes()
    if need <= limit:
        return
    largest = max(parts, key=parts.__getitem__)
    advice = _ADVICE.get(largest, "it grows with the square of the states: use fewer states or "
                                  'the "s_score" measure')
    where = f"{source}: " if source else ""
    raise UserError(
        f"{where}{what} needs about {_gib(need)} of memory, more than the limit of {_gib(limit)} "
        f"(CRISIS_MEMORY_LIMIT_GB). The largest part is the {largest} ({_gib(parts[largest])}): "
        f"{advice}. If the machine has the memory, raise CRISIS_MEMORY_LIMIT_GB")


def check_scenario_size(scenario: Scenario, source: str = "") -> None:
    """Refuse scenarios too large to compile (before any array is allocated)."""
    where = f"{source}: " if source else ""
    n_states, n_alliances = len(scenario.states), len(scenario.alliances)
    n_types = len(scenario.attack_types)
    if n_states > MAX_STATES:
        raise UserError(f"{where}{n_states:,} states is more than this engine handles "
                        f"({MAX_STATES:,}: state × state matrices grow with the square)")
    if n_alliances > MAX_ALLIANCES:
        raise UserError(f"{where}{n_alliances:,} alliances is more than this engine handles "
                        f"({MAX_ALLIANCES:,})")
    if n_types > MAX_ATTACK_TYPES:
        raise UserError(f"{where}{n_types:,} attack types is more than this engine handles "
                        f"({MAX_ATTACK_TYPES:,}: each is a cell per aggressor and target, a "
                        f"row of every summary and a knob of `crisis sensitivity`)")
    _refuse_memory(compile_parts(scenario), "compiling this scenario", source)


def _days(x: float) -> str:
    """A number of days for a message: grouped digits when small, 3 significant digits when
    large (never a 300-digit number)."""
    if not math.isfinite(x):
        return "unbounded"
    return f"{x:,.0f}" if x < 1e7 else f"{x:.3g}"


def _toml_key(name: str) -> str:
    """An attack-type name as a TOML key: bare when it can be, else a quoted string with
    escapes (names may hold any text, control characters included)."""
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def _delay_parts(scenario: Scenario) -> list[tuple[float, str, str]]:
    """(days, what, how to shorten it) of the longest delay each source can add to one trial."""
    parts = []
    if scenario.attack_types:
        name, kind = max(scenario.attack_types.items(), key=lambda kv: kv[1].attribution_days)
        longest = kind.attribution_days * MAX_EXPONENTIAL_MULTIPLE
        parts.append((longest, f"attack_types.{_toml_key(name)}.attribution_days = "
                               f"{kind.attribution_days:.3g} (an exponential delay with that "
                               f"mean can reach {_days(longest)} days)",
                      "attribution_days"))
    if scenario.alliances:
        al = max(scenario.alliances, key=lambda al: al.max_rounds * al.round_days)
        rounds = al.max_rounds * al.round_days
        parts.append((rounds, f"alliances[{al.id}]: max_rounds × round_days = {al.max_rounds} × "
                              f"{al.round_days:.3g} = {_days(rounds)} days", "round_days"))
    mobilization = scenario.scenario.mobilization_days
    parts.append((mobilization, f"scenario.mobilization_days = {_days(mobilization)}",
                  "mobilization_days"))
    return sorted(parts, key=lambda p: -p[0])


def check_delays(scenario: Scenario, total_trials: int) -> None:
    """Refuse a run whose exact (fixed-point int64) delay sums could overflow."""
    parts = _delay_parts(scenario)
    max_delay = sum(days for days, _, _ in parts)
    per_trial = max_delay * DELAY_SCALE + 1
    if total_trials * per_trial < 2**63:
        return
    longest = parts[0][1]
    if per_trial >= 2**63:
        raise UserError(
            f"one trial's delay could reach {_days(max_delay)} days, more than the "
            f"{_days(MAX_DELAY_DAYS)} days an exact delay sum can hold (int64 at 1/"
            f"{DELAY_SCALE:g} day), so the delay sums could overflow whatever the trial count: "
            f"the scenario's delays are the problem, not the number of trials. The longest is "
            f"{longest}: shorten it (any delay beyond a few centuries already lands in the "
            f"histogram's overflow bin)")
    most = int((2**63 - 1) // per_trial)
    raise UserError(
        f"{total_trials:,} trials with delays up to {_days(max_delay)} days per trial could "
        f"overflow the exact delay sums (they are summed over every trial of the run, shards "
        f"included): at most {most:,} trials with these delays. Run fewer trials, or shorten "
        f"the longest delay: {longest}")


def check_request(scenario: Scenario, *, trials_in_process: int, total_trials: int,
                  threads: int, save_trials: int, block_size: int | None = None) -> None:
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
    parts = memory_parts(scenario, threads, min(save_trials, trials_in_process), block_size)
    _refuse_memory(parts, f"this run ({threads} thread{'s' if threads != 1 else ''})")
    check_delays(scenario, total_trials)
