"""What the tallies and saved trial records a run reads back must satisfy.

Every relation checked here follows from how the kernel (:mod:`kernels.trial`) counts, so a real
run always satisfies it, whatever its seed, split or scenario (the tests check every shipped
configuration); a file that breaks one was damaged, mixed up or forged.  Per cell (C rows):

* every count, sum and histogram bin is ≥ 0, and the trials add up to the trial range;
* ``deterred + attacked = trials``, ``repelled + succeeded = attacked``,
  ``deterred_no_alliance ≤ trials``;
* ``consulted`` is ``attacked`` where the cell has a covering alliance (per aggressor and
  target, design §8) and 0 elsewhere; ``invoked + deadlock + veto = consulted``; ``veto`` is 0
  unless a covering alliance decides by veto;
* ``defection``, ``with_allied_backers`` and ``repelled_invoked`` are ≤ ``invoked``, and
  ``repelled_invoked ≤ repelled``;
* ``invoked ≤ rounds_sum ≤ invoked · max_rounds``; the delay histogram holds ``invoked``
  trials; ``backing_share_sum_fx ≤ consulted · 2²⁴``; ``delivered_share_sum_fx ≤
  with_allied_backers · 2²⁴``; ``free_riders_sum ≤ invoked · states``; ``honored_sum ≤
  allies_sum ≤ consulted · memberships``, and (with the scenario) ``allies_sum`` is exactly
  ``consulted`` times the pledges of one consulted trial of the cell (Σ over its covering
  alliances of their members other than the target and the aggressor).

Per alliance (A rows): ``covered``, ``deterred``, ``consulted`` and ``repelled`` are the sums of
the cell ``trials``, ``deterred``, ``attacked`` and ``repelled`` over the cells it covers;
``decided + deadlock + veto = consulted``; ``veto`` is 0 unless it decides by veto;
``first ≤ decided ≤ rounds_sum ≤ decided · max_rounds``; its delay histogram holds ``first``
trials; ``backing_share_sum_fx ≤ consulted · 2²⁴``; ``free_riders_sum ≤ decided · members``.
Across both: Σ ``first`` = Σ ``invoked``, the delay sums agree, and so do the histograms bin by
bin (every invoked trial is tallied once in its cell and once in its earliest alliance).

Per membership (rows of the member CSR, design §8): ``backed``, ``delivered`` and ``free_rode``
are ≤ ``pledged``, ``backed + free_rode ≤ pledged`` (a pledge is backed, free-ridden or
neither), ``honored ≤ backed`` and ``honored ≤ delivered``; Σ ``pledged`` = Σ the cells'
``allies_sum`` and Σ ``honored`` = Σ their ``honored_sum`` (the same pledges, counted per member
and per cell).  With the scenario: each row's ``pledged`` is exactly the ``consulted`` trials of
the cells its alliance covers in which the member is neither the target nor the aggressor, and
an alliance's Σ ``free_rode`` is its ``free_riders_sum``.

A campaign run (design §7) holds trajectories, not single crises: its successes add up to the
trajectories and weigh up to the cells' ``succeeded``; its periods' cell columns and delay
histograms add up to the cells' exactly; no period has more crises than trajectories; the
survivors of an alliance never grow; the periods' exits and joins are the alliances'.  Then
the per-cell, per-alliance and per-member relations above hold over its crises (those that need
the scenario's fixed coverage do not apply: coverage moves with membership).

These checks stop accidents, mix-ups and crashes; they cannot tell a consistent forgery from a
real result (nothing in a run folder is secret).
"""

from __future__ import annotations

import hashlib

import numpy as np

from kernels.layout import (
    ALLIANCE_COLUMNS,
    AP_ALIVE,
    AP_EXITS,
    AP_JOINS,
    C_SUCCEEDED,
    CAUSES,
    CELL_COLUMNS,
    MAX_ROUNDS,
    MEMBER_COLUMNS,
    N_RECORD_COLUMNS,
    P_EXITS,
    P_JOINS,
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
    R_FREE_RIDERS,
    R_INVOKED,
    R_REPELLED,
    R_ROUNDS,
    R_TARGET,
    R_TRIAL,
    RECORD_COLUMNS,
    RULE_VETO,
    SHARE_SCALE,
)

from ..core.simulate import CampaignTallies, Tallies
from ..model.compile import CompiledScenario
from ..model.limits import MAX_STATES

SHARE_ONE = int(SHARE_SCALE)  # fixed(1.0, SHARE_SCALE): the most a share adds per trial
# the counts a manifest records as ``totals`` (sums over every cell)
TOTAL_COLUMNS = CELL_COLUMNS[:C_SUCCEEDED + 1]
MAX_PROBLEMS = 8  # problems listed per file


def _exact(values: np.ndarray) -> np.ndarray:
    """``values`` as Python integers (object dtype): sums and products cannot overflow."""
    return np.asarray(values, dtype=np.int64).astype(object)


def _column_sums(values: np.ndarray) -> np.ndarray:
    """Exact column sums of a non-negative int64 matrix (object dtype)."""
    if values.size == 0:
        return np.zeros(values.shape[1:], dtype=object)
    if int(values.max()) * values.shape[0] < 2**63:
        return values.sum(axis=0).astype(object)
    return values.astype(object).sum(axis=0)


def _row_sums(values: np.ndarray) -> np.ndarray:
    if values.size == 0:
        return np.zeros(values.shape[:1], dtype=object)
    if int(values.max()) * values.shape[1] < 2**63:
        return values.sum(axis=1).astype(object)
    return values.astype(object).sum(axis=1)


def _need(problems: list[str], ok, what: str) -> None:
    """Note ``what`` (with the first failing row) unless every element of ``ok`` holds."""
    bad = np.flatnonzero(~np.asarray(ok, dtype=bool))
    if bad.size:
        problems.append(f"{what} (row {int(bad[0])}{' and others' if bad.size > 1 else ''})")


def totals(tallies: Tallies | CampaignTallies) -> dict[str, int]:
    """The manifest's ``totals``: every count summed over the cells (a campaign's ``trials``
    are its trajectories, its ``crises`` the cells' trials)."""
    sums = _column_sums(np.asarray(tallies.cells, dtype=np.int64))
    out = {name: int(sums[CELL_COLUMNS.index(name)]) for name in TOTAL_COLUMNS}
    if isinstance(tallies, CampaignTallies):
        out["crises"] = out["trials"]
        out["trials"] = int(sum(_exact(tallies.successes)))
    return out


def campaign_problems(ct: CampaignTallies, n_trials: int) -> list[str]:
    """The campaign relations of the module docstring, then the per-crisis ones."""
    problems: list[str] = []
    for name, array in zip(("period_cells", "period_hist", "periods", "alliance_periods",
                            "successes"), ct.arrays()[5:], strict=True):
        if array.size and int(array.min()) < 0:
            problems.append(f"{name}: negative counts")
    if problems:
        return problems
    successes = _exact(ct.successes)
    if sum(successes) != n_trials:
        return [f"successes: {sum(successes):,} trajectories where the range holds "
                f"{n_trials:,}"]
    weighted = sum(k * x for k, x in enumerate(successes))
    if weighted != sum(_exact(ct.cells[:, CELL_COLUMNS.index("succeeded")])):
        problems.append("successes: do not add up to the cells' succeeded")
    if not np.array_equal(_column_sums(ct.period_cells), _column_sums(ct.cells)):
        problems.append("period_cells: do not add up to the cells column by column")
    if not np.array_equal(_column_sums(ct.period_hist), _column_sums(ct.cell_hist)):
        problems.append("period_hist: does not add up to cell_hist bin by bin")
    crises = _exact(ct.period_cells[:, CELL_COLUMNS.index("trials")])
    if any(x > n_trials for x in crises):
        problems.append("period_cells: a period with more crises than trajectories")
    alive = np.asarray(ct.alliance_periods[:, :, AP_ALIVE], dtype=np.int64)
    if alive.size and (int(alive.max()) > n_trials or np.any(np.diff(alive, axis=1) > 0)):
        problems.append("alliance_periods: survivors above the trajectories or growing")
    for column, mine in ((P_EXITS, AP_EXITS), (P_JOINS, AP_JOINS)):
        if not np.array_equal(ct.periods[:, column],
                              ct.alliance_periods[:, :, mine].sum(axis=0)):
            problems.append("periods: exits or joins differ from the alliances'")
            break
    if problems:
        return problems
    return tally_problems(Tallies(*ct.arrays()[:5]), int(sum(crises)))


def tally_problems(tallies: Tallies | CampaignTallies, n_trials: int,
                   compiled: CompiledScenario | None = None) -> list[str]:
    """Every broken relation of the module docstring (with ``compiled``, also those that need
    the scenario: cover, veto rules, rounds and members); empty when the tallies are sound.
    Arrays must already have their dtype (int64) and consistent shapes.  A campaign's
    ``n_trials`` are its trajectories."""
    if isinstance(tallies, CampaignTallies):
        return campaign_problems(tallies, n_trials)[:MAX_PROBLEMS]
    cells, alliances = tallies.cells, tallies.alliances
    problems: list[str] = []

    def need(ok, what: str) -> None:
        _need(problems, ok, what)

    for name, array in (("cells", cells), ("cell_hist", tallies.cell_hist),
                        ("alliances", alliances), ("alliance_hist", tallies.alliance_hist),
                        ("members", tallies.members)):
        if array.size and int(array.min()) < 0:
            problems.append(f"{name}: negative counts")
    if problems:
        return problems
    c = {name: _exact(cells[:, i]) for i, name in enumerate(CELL_COLUMNS)}
    a = {name: _exact(alliances[:, i]) for i, name in enumerate(ALLIANCE_COLUMNS)}
    m = {name: _exact(tallies.members[:, i]) for i, name in enumerate(MEMBER_COLUMNS)}
    if sum(c["trials"]) != n_trials:
        problems.append(f"cells: {sum(c['trials']):,} trials where the range holds {n_trials:,}")
        return problems
    n_states = MAX_STATES if compiled is None else compiled.n_states
    rounds_cap = MAX_ROUNDS
    need(c["deterred"] + c["attacked"] == c["trials"], "cells: deterred + attacked ≠ trials")
    need(c["deterred_no_alliance"] <= c["trials"], "cells: deterred_no_alliance > trials")
    need(c["repelled"] + c["succeeded"] == c["attacked"],
         "cells: repelled + succeeded ≠ attacked")
    need(c["consulted"] <= c["attacked"], "cells: consulted > attacked")
    need(c["invoked"] + c["deadlock"] + c["veto"] == c["consulted"],
         "cells: invoked + deadlock + veto ≠ consulted")
    for name in ("defection", "with_allied_backers", "repelled_invoked"):
        need(c[name] <= c["invoked"], f"cells: {name} > invoked")
    need(c["repelled_invoked"] <= c["repelled"], "cells: repelled_invoked > repelled")
    need(c["invoked"] <= c["rounds_sum"], "cells: rounds_sum < invoked")
    need(c["rounds_sum"] <= c["invoked"] * rounds_cap, "cells: rounds_sum too large")
    need(c["backing_share_sum_fx"] <= c["consulted"] * SHARE_ONE,
         "cells: backing_share_sum_fx too large")
    need(c["delivered_share_sum_fx"] <= c["with_allied_backers"] * SHARE_ONE,
         "cells: delivered_share_sum_fx too large")
    need(c["free_riders_sum"] <= c["invoked"] * n_states, "cells: free_riders_sum too large")
    need(c["honored_sum"] <= c["allies_sum"], "cells: honored_sum > allies_sum")
    # a consulted trial pledges each member of each covering alliance at most once
    need(c["allies_sum"] <= c["consulted"] * tallies.members.shape[0],
         "cells: allies_sum too large")
    need(_row_sums(tallies.cell_hist) == c["invoked"],
         "cell_hist: the delay histogram does not hold the invoked trials")

    need(a["decided"] + a["deadlock"] + a["veto"] == a["consulted"],
         "alliances: decided + deadlock + veto ≠ consulted")
    need(a["first"] <= a["decided"], "alliances: first > decided")
    need(a["decided"] <= a["rounds_sum"], "alliances: rounds_sum < decided")
    need(a["consulted"] + a["deterred"] == a["covered"],
         "alliances: consulted + deterred ≠ covered")
    need(a["repelled"] <= a["consulted"], "alliances: repelled > consulted")
    need(a["backing_share_sum_fx"] <= a["consulted"] * SHARE_ONE,
         "alliances: backing_share_sum_fx too large")
    need(_row_sums(tallies.alliance_hist) == a["first"],
         "alliance_hist: the delay histogram does not hold the first decisions")
    if sum(a["first"]) != sum(c["invoked"]):
        problems.append("alliances: the first decisions do not add up to the invoked trials")
    if sum(a["delay_sum_fx"]) != sum(c["delay_sum_fx"]):
        problems.append("alliances: delay sums do not add up to the cells' delay sums")
    if not np.array_equal(_column_sums(tallies.alliance_hist),
                          _column_sums(tallies.cell_hist)):
        problems.append("alliance_hist: does not add up to cell_hist bin by bin")

    for name in ("backed", "delivered", "free_rode"):
        need(m[name] <= m["pledged"], f"members: {name} > pledged")
    need(m["backed"] + m["free_rode"] <= m["pledged"], "members: backed + free_rode > pledged")
    need(m["honored"] <= m["backed"], "members: honored > backed")
    need(m["honored"] <= m["delivered"], "members: honored > delivered")
    if sum(m["pledged"]) != sum(c["allies_sum"]):
        problems.append("members: the pledges do not add up to the cells' allies_sum")
    if sum(m["honored"]) != sum(c["honored_sum"]):
        problems.append("members: the honored pledges do not add up to the cells' honored_sum")

    if compiled is not None:
        problems += _scenario_problems(c, a, m, compiled)
    return problems[:MAX_PROBLEMS]


def cell_cover_pairs(compiled: CompiledScenario) -> tuple[np.ndarray, np.ndarray]:
    """(cell, alliance) int64 arrays: every covering alliance of every cell (design §8: the
    alliances of the cell's (aggressor, target) entry, ``entry_cover_ptr/idx``), cells in
    order, each one's alliances ascending."""
    cp = compiled
    ptr = np.asarray(cp.entry_cover_ptr, dtype=np.int64)
    entry = np.asarray(cp.cell_entry, dtype=np.int64)
    starts, counts = ptr[entry], ptr[entry + 1] - ptr[entry]
    cell = np.repeat(np.arange(entry.size, dtype=np.int64), counts)
    # position within each cell's run of pairs, added to the run's start in entry_cover_idx
    offset = np.arange(cell.size, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    alliance = np.asarray(cp.entry_cover_idx, dtype=np.int64)[np.repeat(starts, counts) + offset]
    return cell, alliance


def _scenario_problems(c: dict, a: dict, m: dict, compiled: CompiledScenario) -> list[str]:
    """The relations that need the scenario: cover, veto rules, rounds, members."""
    problems: list[str] = []

    def need(ok, what: str) -> None:
        _need(problems, ok, what)

    cp = compiled
    n_cells, n_alliances = len(cp.cell_target), len(cp.rule)
    pair_cell, pair_alliance = cell_cover_pairs(cp)
    covered_cell = np.bincount(pair_cell, minlength=n_cells) > 0
    vetoing = np.asarray(cp.rule) == RULE_VETO
    veto_possible = np.bincount(pair_cell, weights=vetoing[pair_alliance],
                                minlength=n_cells) > 0
    rounds = np.asarray(cp.max_rounds, dtype=np.int64)
    rounds_cell = np.zeros(n_cells, dtype=np.int64)
    np.maximum.at(rounds_cell, pair_cell, rounds[pair_alliance])
    need(np.where(covered_cell, c["consulted"] == c["attacked"], c["consulted"] == 0),
         "cells: consulted ≠ attacked on covered cells (or ≠ 0 on the others)")
    need(veto_possible | (c["veto"] == 0), "cells: vetoes where no alliance decides by veto")
    need(c["rounds_sum"] <= c["invoked"] * rounds_cell.astype(object),
         "cells: rounds_sum too large")
    expect = {name: np.zeros(n_alliances, dtype=object)
              for name in ("trials", "deterred", "attacked", "repelled")}
    for name, values in expect.items():
        np.add.at(values, pair_alliance, c[name][pair_cell])
    for mine, theirs in (("covered", "trials"), ("deterred", "deterred"),
                         ("consulted", "attacked"), ("repelled", "repelled")):
        need(a[mine] == expect[theirs], f"alliances: {mine} ≠ the cells' {theirs} it covers")
    need(vetoing | (a["veto"] == 0), "alliances: vetoes in an alliance without a veto rule")
    need(a["rounds_sum"] <= a["decided"] * rounds.astype(object),
         "alliances: rounds_sum too large")
    member_ptr = np.asarray(cp.member_ptr, dtype=np.int64)
    members = np.diff(member_ptr)
    need(a["free_riders_sum"] <= a["decided"] * members.astype(object),
         "alliances: free_riders_sum too large")

    # pledges (design §8): in every consulted trial of a cell, each covering alliance's members
    # other than the target and the aggressor pledge once
    aggressor = np.asarray(cp.aggressor_state, dtype=np.int64)[
        np.asarray(cp.cell_aggressor, dtype=np.int64)]
    target = np.asarray(cp.cell_target, dtype=np.int64)
    membership = np.asarray(cp.membership)
    aggressor_member = membership[aggressor[pair_cell], pair_alliance].astype(np.int64)
    per_trial = np.zeros(n_cells, dtype=np.int64)
    np.add.at(per_trial, pair_cell, members[pair_alliance] - 1 - aggressor_member)
    need(c["allies_sum"] == c["consulted"] * per_trial.astype(object),
         "cells: allies_sum is not the pledges of the consulted trials")
    # each membership row pledged in the consulted trials of the cells its alliance covers,
    # except those where the member is the target or the aggressor
    consulted = c["consulted"][pair_cell]
    by_alliance = np.zeros(n_alliances, dtype=object)
    np.add.at(by_alliance, pair_alliance, consulted)
    # consulted trials per (alliance, state) where the state is the target or the aggressor,
    # summed sparsely over the keys alliance · S + state
    n_states = cp.n_states
    keys = np.concatenate([pair_alliance * n_states + target[pair_cell],
                           pair_alliance * n_states + aggressor[pair_cell]])
    uniq, inverse = np.unique(keys, return_inverse=True)
    as_party = np.zeros(uniq.size, dtype=object)
    np.add.at(as_party, inverse, np.concatenate([consulted, consulted]))
    row_alliance = np.repeat(np.arange(n_alliances, dtype=np.int64), members)
    row_key = row_alliance * n_states + np.asarray(cp.member_idx, dtype=np.int64)
    at = np.minimum(np.searchsorted(uniq, row_key), max(uniq.size - 1, 0))
    hit = (uniq[at] == row_key) if uniq.size else np.zeros(row_key.size, dtype=bool)
    party = np.where(hit, as_party[at] if uniq.size else 0, 0).astype(object)
    expected = by_alliance[row_alliance] - party
    need(m["pledged"] == expected, "members: pledged ≠ the consulted trials of the cells its "
                                   "alliance covers (member neither target nor aggressor)")
    free_rode = np.zeros(n_alliances, dtype=object)
    np.add.at(free_rode, row_alliance, m["free_rode"])
    need(free_rode == a["free_riders_sum"], "members: free_rode does not add up to the "
                                            "alliance's free_riders_sum")
    return problems


def record_problems(records: np.ndarray, start: int, done: int,
                    compiled: CompiledScenario) -> list[str]:
    """Saved trial records (float64 (R, N_RECORD_COLUMNS)) of trials ``start …`` of which the
    first ``done`` rows are simulated: those rows name real trials, cells, states, attack
    types, alliances and causes, with 0/1 flags; the rows after them are still zero."""
    problems: list[str] = []
    if records.ndim != 2 or records.shape[1] != N_RECORD_COLUMNS:
        return [f"records: shape {records.shape}"]
    rows, rest = records[:done], records[done:]
    if rest.size and np.any(rest != 0.0):
        problems.append("records: rows of trials not yet simulated are not empty")
    if not np.all(np.isfinite(rows)):
        return problems + ["records: NaN or infinite values"]
    if not rows.size:
        return problems

    def column(index: int, low: float, high: float, integer: bool = True) -> np.ndarray | None:
        values = rows[:, index]
        if np.any(values < low) or np.any(values > high) or (
                integer and np.any(values != np.floor(values))):
            problems.append(f"records: {RECORD_COLUMNS[index]} out of range")
            return None
        return values.astype(np.int64) if integer else values

    if not np.array_equal(rows[:, R_TRIAL], start + np.arange(done, dtype=np.float64)):
        problems.append("records: trial numbers are not the run's first trials")
    cp = compiled
    n_cells = len(cp.cell_target)
    cell = column(R_CELL, 0, n_cells - 1)
    aggressor = column(R_AGGRESSOR, 0, len(cp.aggressor_state) - 1)
    target = column(R_TARGET, 0, cp.n_states - 1)
    attack_type = column(R_ATTACK_TYPE, 0, len(cp.severity) - 1)
    deterred = column(R_DETERRED, 0, 1)
    attacked = column(R_ATTACKED, 0, 1)
    invoked = column(R_INVOKED, 0, 1)
    alliance = column(R_ALLIANCE, -1, len(cp.rule) - 1)
    column(R_ROUNDS, 0, MAX_ROUNDS)
    column(R_FREE_RIDERS, 0, cp.n_states)
    column(R_CAUSE, 0, len(CAUSES) - 1)
    column(R_REPELLED, 0, 1)
    column(R_DELAY, 0, np.inf, integer=False)
    column(R_BACKING_SHARE, 0, 1, integer=False)
    column(R_DELIVERED_SHARE, 0, 1, integer=False)
    if all(x is not None for x in (cell, aggressor, target, attack_type)) and not (
            np.array_equal(np.asarray(cp.cell_aggressor)[cell], aggressor)
            and np.array_equal(np.asarray(cp.cell_target)[cell], target)
            and np.array_equal(np.asarray(cp.cell_attack_type)[cell], attack_type)):
        problems.append("records: aggressor, target or attack type is not the cell's")
    if deterred is not None and attacked is not None and np.any(deterred + attacked != 1):
        problems.append("records: a trial is not either deterred or attacked")
    if invoked is not None and attacked is not None and np.any(invoked > attacked):
        problems.append("records: a trial is invoked but not attacked")
    if invoked is not None and alliance is not None and np.any((alliance >= 0) != (invoked == 1)):
        problems.append("records: invoked trials and their alliance disagree")
    return problems[:MAX_PROBLEMS]


def checkpoint_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array of a checkpoint but ``digest`` (name, dtype, shape, bytes, in
    name order): a checkpoint damaged or edited after it was written no longer matches."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        if name == "digest":
            continue
        value = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        h.update(value.tobytes())
    return h.hexdigest()
