"""Tallies → Polars tables (design §5, §8): cells, summary, members and saved trial records.

Every table is computed from the exact integer tallies of :mod:`engine.core.simulate`; aggregates
(overall, per target, …) sum the integer tallies and histograms *before* any division, so a summary
row is exactly what one big cell would have given and merged shards give identical tables.

Conventions
-----------
* Means and rates whose denominator is 0 are **null** (not NaN); so are their interval bounds.
* Rates carry 95% Wilson score intervals (``<rate>_low`` / ``<rate>_high``).
* Delay quantiles come from the fixed-bin delay histogram (:func:`kernels.layout.histogram_edges`),
  linearly interpolated within a bin; they are exact to within one bin (0.1 day below 128 days,
  ≤ 1.6 % above).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import polars as pl

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
    AP_ACTIVE,
    AP_ALIVE,
    AP_EXITS,
    AP_JOINS,
    AP_REPUTATION_SUM,
    C_TRIALS,
    CAUSES,
    CELL_COLUMNS,
    DELAY_SCALE,
    M_HONORED,
    M_PLEDGED,
    MEMBER_COLUMNS,
    N_ALLIANCE_PERIOD_COLUMNS,
    N_MEMBER_COLUMNS,
    N_PERIOD_COLUMNS,
    N_RECORD_COLUMNS,
    OBLIGATION_COLLECTIVE_SECURITY,
    OBLIGATION_DEFENSE,
    P_DISSOLVED,
    P_EXITS,
    P_JOINS,
    P_REPUTATION_SUM,
    P_RESOLVE_SUM,
    P_THREAT_SUM,
    R_AGGRESSOR,
    R_ALLIANCE,
    R_ATTACK_TYPE,
    R_CAUSE,
    R_TARGET,
    RECORD_COLUMNS,
    RESOLVE_SCALE,
    SHARE_SCALE,
)

from ..model.compile import CompiledScenario
from .simulate import Tallies
from .statistics import histogram_quantiles, wilson_interval

DELAY_QUANTILES = (0.5, 0.9, 0.99)

# ---- column names (public, so that readers and tests agree with writers) -------------------
CELL_ID_COLUMNS = ("aggressor", "target", "attack_type", "covered")
COUNT_COLUMNS = (
    "trials",
    "deterred",
    "deterred_no_alliance",
    "attacked",
    "consulted",
    "invoked",
    "deadlock",
    "veto",
    "defection",
    "repelled",
    "succeeded",
)
MEAN_COLUMNS = (
    "delay_mean_days",
    "delay_p50_days",
    "delay_p90_days",
    "delay_p99_days",
    "rounds_mean",
    "backing_share_mean",
    "free_riders_mean",
    "delivered_share_mean",
)
# raw sums kept at the end of the cells table so that tables can be merged exactly
CELL_SUM_COLUMNS = (
    "with_allied_backers",
    "repelled_invoked",
    "rounds_sum",
    "delay_sum_fx",
    "backing_share_sum_fx",
    "free_riders_sum",
    "delivered_share_sum_fx",
    "allies_sum",
    "honored_sum",
)
CELLS_COLUMNS = CELL_ID_COLUMNS + COUNT_COLUMNS + MEAN_COLUMNS + CELL_SUM_COLUMNS

# rate name → (numerator, denominator) in terms of the count columns
RATE_COLUMNS = (
    "deterrence_success_rate",  # deterred / trials
    "deterrence_rate_no_alliance",  # deterred_no_alliance / trials
    "deterrence_lift",  # (deterred − deterred_no_alliance) / trials, paired (common random numbers)
    "attack_rate",  # attacked / trials
    "invocation_rate",  # invoked / attacked
    "deadlock_rate",  # deadlock / attacked
    "veto_rate",  # veto / attacked
    "defection_rate",  # defection / invoked
    "breakdown_rate",  # (deadlock + veto + defection) / attacked
    "repelled_rate",  # repelled / attacked
    "aggression_success_rate",  # succeeded / attacked
    "honor_rate",  # allies that backed and delivered / allies pledged, over consulted crises
)
SCOPES = (
    "overall",
    "covered_targets",
    "uncovered_targets",
    "target",
    "alliance",
    "attack_type",
    "aggressor",
)
SUMMARY_COLUMNS = (
    ("scope", "key")
    + COUNT_COLUMNS
    + tuple(c for r in RATE_COLUMNS for c in (r, f"{r}_low", f"{r}_high"))
    + MEAN_COLUMNS
)

# members.parquet (design §8): one row per alliance × member state
MEMBER_ID_COLUMNS = ("alliance", "state", "name")
MEMBER_COUNT_COLUMNS = MEMBER_COLUMNS  # pledged, backed, delivered, honored, free_rode (Int64)
# rate name → its numerator (a column of MEMBER_COUNT_COLUMNS); every denominator is ``pledged``
MEMBER_RATES = {
    "backing_rate": "backed",
    "delivery_rate": "delivered",
    "honor_rate": "honored",
    "free_riding_rate": "free_rode",
}
MEMBER_RATE_COLUMNS = tuple(MEMBER_RATES)
MEMBERS_COLUMNS = (
    MEMBER_ID_COLUMNS
    + MEMBER_COUNT_COLUMNS
    + tuple(c for r in MEMBER_RATE_COLUMNS for c in (r, f"{r}_low", f"{r}_high"))
)
# the obligations whose alliances cover crises (and get an ``alliance`` row in the summary)
COVERING_OBLIGATIONS = (OBLIGATION_DEFENSE, OBLIGATION_COLLECTIVE_SECURITY)


def _ratio(num, den, scale: float = 1.0) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / scale / den, np.nan)


# ---- table builders ------------------------------------------------------------------------


def _float_series(name: str, values) -> pl.Series:
    return pl.Series(name, np.asarray(values, dtype=np.float64), dtype=pl.Float64,
                     nan_to_null=True)


def _measures(counts: dict[str, np.ndarray | None], sums: dict[str, np.ndarray | None],
              hist: np.ndarray, n_rows: int) -> dict[str, pl.Series]:
    """Counts, rates with Wilson bounds and means for aggregated rows.

    ``counts`` maps every name in :data:`COUNT_COLUMNS` to int64 ``(n_rows,)`` or None (not
    tallied → null); ``sums`` holds the raw sums and their denominators: ``delay_sum_fx`` and
    ``delay_n`` (delay mean), ``rounds_sum``/``rounds_n``, ``free_riders_sum``/``free_riders_n``,
    ``backing_share_sum_fx`` (over consulted), ``delivered_share_sum_fx``/``with_allied_backers``.
    ``hist`` is the delay histogram ``(n_rows, N_HIST_BINS)`` over ``delay_n`` trials.
    """
    out: dict[str, pl.Series] = {}
    for name in COUNT_COLUMNS:
        v = counts[name]
        out[name] = (pl.Series(name, [None] * n_rows, dtype=pl.Int64) if v is None
                     else pl.Series(name, np.asarray(v, dtype=np.int64), dtype=pl.Int64))

    def rate(name: str, num, den) -> None:
        if num is None or den is None:
            for col in (name, f"{name}_low", f"{name}_high"):
                out[col] = pl.Series(col, [None] * n_rows, dtype=pl.Float64)
            return
        low, high = wilson_interval(num, den)
        out[name] = _float_series(name, _ratio(num, den))
        out[f"{name}_low"] = _float_series(f"{name}_low", low)
        out[f"{name}_high"] = _float_series(f"{name}_high", high)

    c = counts
    trials, attacked, invoked = c["trials"], c["attacked"], c["invoked"]
    lift = None
    if c["deterred"] is not None and c["deterred_no_alliance"] is not None:
        lift = c["deterred"] - c["deterred_no_alliance"]
    breakdown = None
    if c["deadlock"] is not None and c["veto"] is not None:
        breakdown = c["deadlock"] + c["veto"]
        if c["defection"] is not None:
            breakdown = breakdown + c["defection"]
    rate("deterrence_success_rate", c["deterred"], trials)
    rate("deterrence_rate_no_alliance", c["deterred_no_alliance"], trials)
    rate("deterrence_lift", lift, trials)
    rate("attack_rate", attacked, trials)
    rate("invocation_rate", invoked, attacked)
    rate("deadlock_rate", c["deadlock"], attacked)
    rate("veto_rate", c["veto"], attacked)
    rate("defection_rate", c["defection"], invoked)
    rate("breakdown_rate", breakdown, attacked)
    rate("repelled_rate", c["repelled"], attacked)
    rate("aggression_success_rate", c["succeeded"], attacked)
    rate("honor_rate", sums.get("honored_sum"), sums.get("allies_sum"))

    def mean(name: str, num, den, scale: float = 1.0) -> None:
        if num is None or den is None:
            out[name] = pl.Series(name, [None] * n_rows, dtype=pl.Float64)
        else:
            out[name] = _float_series(name, _ratio(num, den, scale))

    s = sums
    mean("delay_mean_days", s["delay_sum_fx"], s["delay_n"], DELAY_SCALE)
    quantiles = histogram_quantiles(hist, DELAY_QUANTILES).reshape(n_rows, len(DELAY_QUANTILES))
    for i, name in enumerate(("delay_p50_days", "delay_p90_days", "delay_p99_days")):
        out[name] = _float_series(name, quantiles[:, i])
    mean("rounds_mean", s["rounds_sum"], s["rounds_n"])
    mean("backing_share_mean", s["backing_share_sum_fx"], c["consulted"], SHARE_SCALE)
    mean("free_riders_mean", s["free_riders_sum"], s["free_riders_n"])
    mean("delivered_share_mean", s["delivered_share_sum_fx"], s["with_allied_backers"],
         SHARE_SCALE)
    return out


def _cell_measures(cells: np.ndarray, hist: np.ndarray) -> dict[str, pl.Series]:
    """:func:`_measures` of rows of per-cell tally columns (cells or sums of cells)."""
    col = {name: cells[:, i] for i, name in enumerate(CELL_COLUMNS)}
    counts = {name: col[name] for name in COUNT_COLUMNS}
    sums = {
        "delay_sum_fx": col["delay_sum_fx"],
        "delay_n": col["invoked"],
        "rounds_sum": col["rounds_sum"],
        "rounds_n": col["invoked"],
        "free_riders_sum": col["free_riders_sum"],
        "free_riders_n": col["invoked"],
        "backing_share_sum_fx": col["backing_share_sum_fx"],
        "delivered_share_sum_fx": col["delivered_share_sum_fx"],
        "with_allied_backers": col["with_allied_backers"],
        "allies_sum": col["allies_sum"],
        "honored_sum": col["honored_sum"],
    }
    return _measures(counts, sums, hist, cells.shape[0])


def covered_cells(compiled: CompiledScenario) -> np.ndarray:
    """bool (C,): the cell's (aggressor, target) entry has at least one covering alliance
    (design §8: one that protects the target, is not a defense pact of the aggressor and has a
    member other than the target and the aggressor), so its attacked trials are consulted."""
    c = compiled
    return (np.diff(np.asarray(c.entry_cover_ptr, dtype=np.int64)) > 0)[
        np.asarray(c.cell_entry, dtype=np.int64)]


def membership_alliance(compiled: CompiledScenario) -> np.ndarray:
    """int64 (memberships,): the alliance of each row of the member CSR (``member_ptr``)."""
    ptr = np.asarray(compiled.member_ptr, dtype=np.int64)
    return np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr))


def alliance_member_sums(compiled: CompiledScenario, members: np.ndarray) -> np.ndarray:
    """int64 (A, N_MEMBER_COLUMNS): the per-member tallies summed over each alliance's rows."""
    ptr = np.asarray(compiled.member_ptr, dtype=np.int64)
    m = np.asarray(members, dtype=np.int64).reshape(-1, N_MEMBER_COLUMNS)
    cum = np.zeros((m.shape[0] + 1, N_MEMBER_COLUMNS), dtype=np.int64)
    np.cumsum(m, axis=0, out=cum[1:])
    return cum[ptr[1:]] - cum[ptr[:-1]]


def cells_table(compiled: CompiledScenario, tallies: Tallies) -> pl.DataFrame:
    """One row per aggressor × target × attack type cell, in cell index order (design §5).

    Columns: :data:`CELLS_COLUMNS` — ids ``aggressor`` (the aggressor's state id), ``target``,
    ``attack_type`` and ``covered`` (some alliance covers this aggressor's attack on this target,
    :func:`covered_cells`); Int64
    counts :data:`COUNT_COLUMNS`; Float64 means :data:`MEAN_COLUMNS` (delay and rounds and free
    riders over invoked trials, backing share over consulted trials, delivered share over invoked
    trials with allied backers; null when there are none); and the raw Int64 sums
    :data:`CELL_SUM_COLUMNS` (``*_fx`` are fixed point, see :mod:`kernels.layout`).
    """
    c = compiled
    cells = np.asarray(tallies.cells, dtype=np.int64)
    ids = {
        "aggressor": pl.Series("aggressor", [c.state_ids[c.aggressor_state[j]]
                                             for j in c.cell_aggressor], dtype=pl.String),
        "target": pl.Series("target", [c.state_ids[t] for t in c.cell_target], dtype=pl.String),
        "attack_type": pl.Series("attack_type", [c.attack_type_ids[k]
                                                 for k in c.cell_attack_type], dtype=pl.String),
        "covered": pl.Series("covered", covered_cells(c), dtype=pl.Boolean),
    }
    measures = _cell_measures(cells, tallies.cell_hist)
    raw = {name: pl.Series(name, cells[:, CELL_COLUMNS.index(name)], dtype=pl.Int64)
           for name in CELL_SUM_COLUMNS}
    columns = {**ids, **measures, **raw}
    return pl.DataFrame([columns[name] for name in CELLS_COLUMNS])


def _group_sum(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact integer sums of ``values`` rows grouped by ``keys``; groups in ascending key order."""
    uniq, inverse = np.unique(keys, return_inverse=True)
    out = np.zeros((uniq.size,) + values.shape[1:], dtype=np.int64)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(uniq.size))
    if values.shape[0]:
        out[:] = np.add.reduceat(values[order], bounds, axis=0)
    return uniq, out


def _scope_frame(scope: str, keys: list[str], measures: dict[str, pl.Series]) -> pl.DataFrame:
    n = len(keys)
    columns = {
        "scope": pl.Series("scope", [scope] * n, dtype=pl.String),
        "key": pl.Series("key", keys, dtype=pl.String),
        **measures,
    }
    return pl.DataFrame([columns[name] for name in SUMMARY_COLUMNS])


def _alliance_measures(compiled: CompiledScenario, tallies: Tallies,
                       rows: np.ndarray) -> dict[str, pl.Series]:
    a = np.asarray(tallies.alliances, dtype=np.int64)[rows]
    m = alliance_member_sums(compiled, tallies.members)[rows]
    consulted = a[:, A_CONSULTED]
    counts = {
        "trials": a[:, A_COVERED],
        "deterred": a[:, A_DETERRED],
        "deterred_no_alliance": None,
        "attacked": consulted,
        "consulted": consulted,
        "invoked": a[:, A_DECIDED],
        "deadlock": a[:, A_DEADLOCK],
        "veto": a[:, A_VETO],
        "defection": None,
        "repelled": a[:, A_REPELLED],
        "succeeded": consulted - a[:, A_REPELLED],
    }
    sums = {
        "delay_sum_fx": a[:, A_DELAY_SUM],
        "delay_n": a[:, A_FIRST],
        "rounds_sum": a[:, A_ROUNDS_SUM],
        "rounds_n": a[:, A_DECIDED],
        "free_riders_sum": a[:, A_FREE_RIDERS_SUM],
        "free_riders_n": a[:, A_DECIDED],
        "backing_share_sum_fx": a[:, A_BACKING_SHARE_SUM],
        "delivered_share_sum_fx": None,
        "with_allied_backers": None,
        # the alliance's honor rate: its members' honored over pledged (design §8)
        "allies_sum": m[:, M_PLEDGED],
        "honored_sum": m[:, M_HONORED],
    }
    return _measures(counts, sums, np.asarray(tallies.alliance_hist)[rows], rows.size)


def summary_table(compiled: CompiledScenario, tallies: Tallies) -> pl.DataFrame:
    """The measures of :func:`cells_table` overall and per scope, with rates and 95% Wilson bounds.

    One row per (``scope``, ``key``), scopes in the order of :data:`SCOPES`:

    ``overall`` (key ``"all"``)
        every cell.
    ``covered_targets`` / ``uncovered_targets`` (key ``"all"``)
        cells that some alliance covers / that none covers (:func:`covered_cells`: coverage is
        per aggressor and target, design §8).  The uncovered row is the **no-alliance
        baseline**: there the expected response is the target alone.  A row is left out when it
        has no trials.
    ``target``, ``attack_type``, ``aggressor`` (key: the state / attack type id)
        sums of the cells with that target, attack type or aggressor, in file order.
    ``alliance`` (key: the alliance id; defense and collective-security alliances, in file
    order)
        from the per-alliance tallies: ``trials`` = trials the alliance covers,
        ``attacked`` = ``consulted`` = those that were attacked, ``invoked`` = the alliance decided
        (whether or not its decision was the earliest), ``deadlock``/``veto`` = it failed to decide,
        ``succeeded`` = ``consulted − repelled``.  The delay (mean, quantiles) is over the trials
        in which its decision was the one that counted (the earliest); rounds and free riders are
        over its decisions; ``backing_share_mean`` is the share of *its* members backing at the
        end.  ``breakdown_rate`` counts its own decision failures (deadlock + veto) since
        defection is not tallied per alliance; ``defection``, ``deterred_no_alliance``,
        ``deterrence_lift`` and ``delivered_share_mean`` are null.  ``honor_rate`` is its
        members' Σ honored / Σ pledged (:func:`members_table`); over every alliance and member
        these add up to the cells' ``honored_sum`` / ``allies_sum``, so the overall honor rate
        is the same ratio exactly.

    Counts (Int64) are :data:`COUNT_COLUMNS`; every rate of :data:`RATE_COLUMNS` comes with
    ``_low``/``_high`` Wilson bounds; means are :data:`MEAN_COLUMNS`.  Rates:
    ``deterrence_success_rate`` = deterred/trials, ``attack_rate`` = attacked/trials,
    ``invocation_rate`` = invoked/attacked, ``deadlock_rate``, ``veto_rate`` = …/attacked,
    ``defection_rate`` = defection/invoked, ``breakdown_rate`` = (deadlock+veto+defection)/attacked,
    ``repelled_rate`` and ``aggression_success_rate`` = repelled, succeeded / attacked.

    Deterrence lift.  ``deterrence_rate_no_alliance`` is the share of trials that would have been
    deterred had the target stood alone (R = cap_t), judged with the *same* deterrence uniform as
    the actual trial (common random numbers).  Because cap_t ≤ R, a trial deterred without the
    alliance is also deterred with it, so the per-trial difference is 0 or 1 and
    ``deterrence_lift`` = (deterred − deterred_no_alliance)/trials is itself a proportion: its
    Wilson interval is the paired-difference interval, much narrower than the difference of two
    independent rates.  Comparing the ``covered_targets`` row with the ``uncovered_targets`` row
    contrasts different targets (different capabilities); the paired lift within a row is the
    causal effect of the alliances on those targets, and it is exactly 0 on uncovered targets.
    """
    c = compiled
    cells = np.asarray(tallies.cells, dtype=np.int64)
    hist = np.asarray(tallies.cell_hist, dtype=np.int64)
    frames: list[pl.DataFrame] = []

    def add(scope: str, keys: list[str], agg_cells: np.ndarray, agg_hist: np.ndarray) -> None:
        frames.append(_scope_frame(scope, keys, _cell_measures(agg_cells, agg_hist)))

    add("overall", ["all"], cells.sum(axis=0, keepdims=True), hist.sum(axis=0, keepdims=True))
    covered = covered_cells(c)
    for scope, mask in (("covered_targets", covered), ("uncovered_targets", ~covered)):
        sub = cells[mask].sum(axis=0, keepdims=True)
        if sub[0, C_TRIALS] > 0:
            add(scope, ["all"], sub, hist[mask].sum(axis=0, keepdims=True))

    uniq, agg = _group_sum(c.cell_target, cells)
    _, agg_h = _group_sum(c.cell_target, hist)
    add("target", [c.state_ids[t] for t in uniq], agg, agg_h)

    covering = np.flatnonzero(np.isin(np.asarray(c.obligation), COVERING_OBLIGATIONS))
    frames.append(_scope_frame("alliance", [c.alliance_ids[a] for a in covering],
                               _alliance_measures(c, tallies, covering)))

    uniq, agg = _group_sum(c.cell_attack_type, cells)
    _, agg_h = _group_sum(c.cell_attack_type, hist)
    add("attack_type", [c.attack_type_ids[k] for k in uniq], agg, agg_h)

    uniq, agg = _group_sum(c.cell_aggressor, cells)
    _, agg_h = _group_sum(c.cell_aggressor, hist)
    add("aggressor", [c.state_ids[c.aggressor_state[j]] for j in uniq], agg, agg_h)

    return pl.concat(frames, how="vertical")


def members_table(compiled: CompiledScenario, tallies: Tallies,
                  state_names: Sequence[str | None] | None = None) -> pl.DataFrame:
    """One row per alliance × member state (design §8), in the order of the compiled member CSR:
    alliances in file order, each one's members in state (file) order; a campaign's candidates
    (design §7) follow, in alliance then state order.

    Columns :data:`MEMBERS_COLUMNS`: String ``alliance`` and ``state`` (ids) and ``name`` (the
    state's name from ``state_names``, indexed like the scenario's states; null when it has
    none); Int64 counts over the crises the alliance was consulted in with this member neither
    the target nor the aggressor — ``pledged``, ``backed`` (it backed in this alliance's
    consultation), ``delivered`` (it responded and delivered its forces), ``honored`` (backed in
    this alliance and delivered: the Berkemeier–Fuhrmann unit), ``free_rode`` (this alliance
    decided and the member never backed) — and Float64 rates of ``pledged`` with 95% Wilson
    bounds (``_low``/``_high``): ``backing_rate``, ``delivery_rate``, ``honor_rate``,
    ``free_riding_rate`` (null when ``pledged`` is 0, e.g. alliances that cover no crisis).

    Counts are exact integers, so the table of merged shards equals a single run's; Σ honored /
    Σ pledged over all rows equals the overall honor rate of :func:`summary_table` exactly.
    """
    c = compiled
    m = np.asarray(tallies.members, dtype=np.int64).reshape(-1, N_MEMBER_COLUMNS)
    alliance = membership_alliance(c)
    state = np.asarray(c.member_idx, dtype=np.int64)
    if c.campaign is not None and c.campaign.n_candidates:
        # a campaign's candidates follow the members (design §7: roster_row)
        cp = c.campaign
        slot_alliance = np.repeat(np.arange(c.n_alliances), np.diff(cp.roster_ptr))
        candidate = np.flatnonzero(cp.roster_initial == 0)
        order = np.argsort(cp.roster_row[candidate], kind="stable")
        alliance = np.concatenate([alliance, slot_alliance[candidate][order]])
        state = np.concatenate([state, cp.roster_idx[candidate][order]])
    if m.shape[0] != len(state):
        raise ValueError(f"members tallies have {m.shape[0]} rows, the scenario "
                         f"{len(state)} memberships")
    names = [None] * c.n_states if state_names is None else list(state_names)
    if len(names) != c.n_states:
        raise ValueError(f"{len(names)} state names for {c.n_states} states")
    columns: dict[str, pl.Series] = {
        "alliance": pl.Series("alliance", [c.alliance_ids[a] for a in alliance],
                              dtype=pl.String),
        "state": pl.Series("state", [c.state_ids[i] for i in state], dtype=pl.String),
        "name": pl.Series("name", [names[i] for i in state], dtype=pl.String),
    }
    for i, name in enumerate(MEMBER_COUNT_COLUMNS):
        columns[name] = pl.Series(name, m[:, i], dtype=pl.Int64)
    pledged = m[:, M_PLEDGED]
    for rate, numerator in MEMBER_RATES.items():
        x = m[:, MEMBER_COLUMNS.index(numerator)]
        low, high = wilson_interval(x, pledged)
        columns[rate] = _float_series(rate, _ratio(x, pledged))
        columns[f"{rate}_low"] = _float_series(f"{rate}_low", low)
        columns[f"{rate}_high"] = _float_series(f"{rate}_high", high)
    return pl.DataFrame([columns[name] for name in MEMBERS_COLUMNS])


def members_by_reliability(members: pl.DataFrame) -> pl.DataFrame:
    """The rows of a :func:`members_table` that pledged at least once, the least reliable
    first: lowest ``honor_rate``, ties by more ``pledged``, then alliance and state id (a total
    order, so every view lists them alike)."""
    return (members.filter(pl.col("pledged") > 0)
            .sort(["honor_rate", "pledged", "alliance", "state"],
                  descending=[False, True, False, False], nulls_last=True))


_RECORD_INTEGER = ("trial", "cell", "deterred", "attacked", "invoked", "rounds", "free_riders",
                   "repelled")


def records_table(compiled: CompiledScenario, records: np.ndarray) -> pl.DataFrame:
    """Saved per-trial records (``--save-trials``) as a table, one row per trial in trial order.

    Columns are :data:`kernels.layout.RECORD_COLUMNS`: Int64 ``trial``, ``cell``, ``deterred``,
    ``attacked``, ``invoked``, ``rounds``, ``free_riders``, ``repelled`` (flags are 0/1);
    String ids ``aggressor`` (state id), ``target``, ``attack_type``, ``alliance`` (the earliest
    deciding alliance, null when none decided) and ``cause`` (one of
    :data:`kernels.layout.CAUSES`); Float64 ``delay_days``, ``backing_share``,
    ``delivered_share``, ``force``.
    """
    c = compiled
    r = np.asarray(records, dtype=np.float64).reshape(-1, N_RECORD_COLUMNS)
    state_ids = np.asarray(c.state_ids, dtype=object)
    columns: dict[str, pl.Series] = {}
    for i, name in enumerate(RECORD_COLUMNS):
        if name in _RECORD_INTEGER:
            columns[name] = pl.Series(name, np.rint(r[:, i]).astype(np.int64), dtype=pl.Int64)
        else:
            columns[name] = pl.Series(name, r[:, i], dtype=pl.Float64)
    agg_entry = r[:, R_AGGRESSOR].astype(np.int64)
    columns["aggressor"] = pl.Series(
        "aggressor", state_ids[np.asarray(c.aggressor_state)[agg_entry]].tolist(), dtype=pl.String)
    columns["target"] = pl.Series(
        "target", state_ids[r[:, R_TARGET].astype(np.int64)].tolist(), dtype=pl.String)
    columns["attack_type"] = pl.Series(
        "attack_type", [c.attack_type_ids[k] for k in r[:, R_ATTACK_TYPE].astype(np.int64)],
        dtype=pl.String)
    columns["alliance"] = pl.Series(
        "alliance", [c.alliance_ids[a] if a >= 0 else None
                     for a in r[:, R_ALLIANCE].astype(np.int64)], dtype=pl.String)
    columns["cause"] = pl.Series(
        "cause", [CAUSES[k] for k in r[:, R_CAUSE].astype(np.int64)], dtype=pl.String)
    return pl.DataFrame([columns[name] for name in RECORD_COLUMNS])


# ---- campaigns (design §7) ---------------------------------------------------------------------


class CampaignArrays(Protocol):
    """The per-period tallies of a campaign run (``CampaignTallies`` of the simulation; int64)."""

    period_cells: np.ndarray  # (steps, N_CELL_COLUMNS): the cell columns summed over cells
    period_hist: np.ndarray  # (steps, N_HIST_BINS): the delay histogram summed over cells
    periods: np.ndarray  # (steps, N_PERIOD_COLUMNS)
    alliance_periods: np.ndarray  # (A, steps, N_ALLIANCE_PERIOD_COLUMNS)
    successes: np.ndarray  # (steps + 1,): trajectories by their successful aggressions


# periods.parquet: one row per period; the v1 measures of the period's crises (the overall row of
# summary_table over them; their ``trials`` count is ``crises``) and the state at its end
PERIOD_STATE_COLUMNS = ("reputation_mean", "resolve_multiplier_mean", "threat_mean", "exits",
                        "joins", "dissolved")
PERIODS_COLUMNS = (
    ("period", "crises")
    + COUNT_COLUMNS[1:]
    + tuple(c for r in RATE_COLUMNS for c in (r, f"{r}_low", f"{r}_high"))
    + MEAN_COLUMNS
    + ("crisis_rate_observed", "crisis_rate_observed_low", "crisis_rate_observed_high")
    + PERIOD_STATE_COLUMNS
)
# alliance_periods.parquet: one row per alliance × period
ALLIANCE_PERIODS_COLUMNS = ("alliance", "period", "members_at_start", "active_members_mean",
                            "reputation_mean", "exits", "joins", "alive", "survival",
                            "survival_low", "survival_high")
# successes.parquet: trajectories by their number of successful aggressions
SUCCESSES_COLUMNS = ("successful_aggressions", "trajectories", "share", "share_low",
                     "share_high")


def _trajectories(ct: CampaignArrays, trials: int) -> int:
    """``trials``, checked against the tallies (every trajectory has a count of successes)."""
    counted = int(np.asarray(ct.successes, dtype=np.int64).sum())
    if counted != trials:
        raise ValueError(f"the campaign tallies count {counted:,} trajectories, not {trials:,}")
    return trials


def _rate_series(name: str, num, den) -> dict[str, pl.Series]:
    low, high = wilson_interval(num, den)
    return {name: _float_series(name, _ratio(num, den)),
            f"{name}_low": _float_series(f"{name}_low", low),
            f"{name}_high": _float_series(f"{name}_high", high)}


def periods_table(compiled: CompiledScenario, ct: CampaignArrays, trials: int) -> pl.DataFrame:
    """One row per period of a campaign run (design §7), ``period`` from 0.

    Columns :data:`PERIODS_COLUMNS`:

    * ``crises`` (Int64): the period's crises over every trajectory (``trials`` of the period's
      cells; fewer than the trajectories when ``crisis_rate < 1``);
    * the other :data:`COUNT_COLUMNS`, every rate of :data:`RATE_COLUMNS` with its 95% Wilson
      bounds and the :data:`MEAN_COLUMNS`, computed from the period's tallies summed over cells
      exactly as :func:`summary_table` computes its ``overall`` row (so with ``steps = 1`` row 0
      *is* the overall row, ``trials`` renamed ``crises``);
    * ``crisis_rate_observed`` = crises / trajectories, with its Wilson bounds;
    * the state at the end of the period, means over the trajectories (fixed-point sums / scale /
      trials): ``reputation_mean`` (mean reputation of the states in some alliance's roster,
      members and candidates), ``resolve_multiplier_mean`` (mean over the aggressors of ``m_j``,
      each capped at :data:`kernels.layout.RESOLVE_CAP`), ``threat_mean`` (mean threat of every
      state); and the Int64 counts over all trajectories of the period's ``exits``, ``joins``
      and ``dissolved`` alliances.

    ``trials`` is the number of trajectories (checked against ``ct.successes``).
    """
    n = _trajectories(ct, trials)
    cells = np.asarray(ct.period_cells, dtype=np.int64)
    steps = cells.shape[0]
    if compiled.campaign is not None and compiled.campaign.steps != steps:
        raise ValueError(f"the tallies have {steps} periods, the scenario "
                         f"{compiled.campaign.steps}")
    measures = _cell_measures(cells, np.asarray(ct.period_hist, dtype=np.int64))
    crises = cells[:, C_TRIALS]
    p = np.asarray(ct.periods, dtype=np.int64).reshape(steps, N_PERIOD_COLUMNS)
    trajectories = np.full(steps, n, dtype=np.int64)
    columns: dict[str, pl.Series] = {
        "period": pl.Series("period", np.arange(steps, dtype=np.int64), dtype=pl.Int64),
        "crises": pl.Series("crises", crises, dtype=pl.Int64),
        **measures,
        **_rate_series("crisis_rate_observed", crises, trajectories),
        "reputation_mean": _float_series("reputation_mean",
                                         _ratio(p[:, P_REPUTATION_SUM], trajectories,
                                                SHARE_SCALE)),
        "resolve_multiplier_mean": _float_series("resolve_multiplier_mean",
                                                 _ratio(p[:, P_RESOLVE_SUM], trajectories,
                                                        RESOLVE_SCALE)),
        "threat_mean": _float_series("threat_mean",
                                     _ratio(p[:, P_THREAT_SUM], trajectories, SHARE_SCALE)),
    }
    for name, col in (("exits", P_EXITS), ("joins", P_JOINS), ("dissolved", P_DISSOLVED)):
        columns[name] = pl.Series(name, p[:, col], dtype=pl.Int64)
    return pl.DataFrame([columns[name] for name in PERIODS_COLUMNS])


def alliance_periods_table(compiled: CompiledScenario, ct: CampaignArrays,
                           trials: int) -> pl.DataFrame:
    """One row per alliance × period of a campaign run (design §7): alliances in file order,
    each one's periods from 0.

    Columns :data:`ALLIANCE_PERIODS_COLUMNS`: String ``alliance`` (id); Int64 ``period`` and
    ``members_at_start`` (the scenario's members); at the end of the period, over all
    ``trials`` trajectories: ``active_members_mean`` (active members per trajectory; none once
    dissolved), Int64 ``exits`` and ``joins`` in the period, ``alive`` (trajectories in which the
    alliance is not dissolved) and ``survival`` = alive / trials with its 95% Wilson bounds
    (non-increasing: a dissolved alliance stays dissolved).

    ``reputation_mean`` is the mean reputation of the alliance's active members: the per
    trajectory means (``AP_REPUTATION_SUM``, tallied in trajectories where it has any active
    member) summed and divided by **``alive``** (``AP_ALIVE``), the trajectories in which it is
    not dissolved (null when there are none).  An alliance that is not dissolved has active
    members, so this is the mean over the alive trajectories as long as the tallies add nothing
    for dissolved ones — and a dissolved alliance has no active member left (design §7 as the
    campaign kernel and its oracle implement it).
    """
    c = compiled
    n = _trajectories(ct, trials)
    ap = np.asarray(ct.alliance_periods, dtype=np.int64)
    n_alliances, steps = ap.shape[0], ap.shape[1]
    if n_alliances != c.n_alliances:
        raise ValueError(f"the tallies have {n_alliances} alliances, the scenario "
                         f"{c.n_alliances}")
    ap = ap.reshape(n_alliances * steps, N_ALLIANCE_PERIOD_COLUMNS)
    at_start = np.diff(np.asarray(c.member_ptr, dtype=np.int64))
    trajectories = np.full(ap.shape[0], n, dtype=np.int64)
    alive = ap[:, AP_ALIVE]
    columns: dict[str, pl.Series] = {
        "alliance": pl.Series("alliance", [c.alliance_ids[a] for a in range(n_alliances)
                                           for _ in range(steps)], dtype=pl.String),
        "period": pl.Series("period", np.tile(np.arange(steps, dtype=np.int64), n_alliances),
                            dtype=pl.Int64),
        "members_at_start": pl.Series("members_at_start", np.repeat(at_start, steps),
                                      dtype=pl.Int64),
        "active_members_mean": _float_series("active_members_mean",
                                             _ratio(ap[:, AP_ACTIVE], trajectories)),
        "reputation_mean": _float_series("reputation_mean",
                                         _ratio(ap[:, AP_REPUTATION_SUM], alive, SHARE_SCALE)),
        "exits": pl.Series("exits", ap[:, AP_EXITS], dtype=pl.Int64),
        "joins": pl.Series("joins", ap[:, AP_JOINS], dtype=pl.Int64),
        "alive": pl.Series("alive", alive, dtype=pl.Int64),
        **_rate_series("survival", alive, trajectories),
    }
    return pl.DataFrame([columns[name] for name in ALLIANCE_PERIODS_COLUMNS])


def successes_table(ct: CampaignArrays, trials: int) -> pl.DataFrame:
    """The distribution of successful aggressions per trajectory of a campaign run: one row per
    count 0 … steps (Int64 ``successful_aggressions``), the Int64 ``trajectories`` with that
    many and their ``share`` of all ``trials`` with its 95% Wilson bounds (shares add up to 1)."""
    n = _trajectories(ct, trials)
    counts = np.asarray(ct.successes, dtype=np.int64)
    return pl.DataFrame([
        pl.Series("successful_aggressions", np.arange(counts.size, dtype=np.int64),
                  dtype=pl.Int64),
        pl.Series("trajectories", counts, dtype=pl.Int64),
        *_rate_series("share", counts, np.full(counts.size, n, dtype=np.int64)).values(),
    ])


# ---- terminal view ---------------------------------------------------------------------------
