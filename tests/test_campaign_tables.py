"""Campaign tables (engine.core.tables: periods, alliance × period, successes; design §7),
every value recomputed here from the raw arrays of the pure-Python campaign oracle."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.core.statistics import histogram_quantiles
from engine.core.tables import (
    ALLIANCE_PERIODS_COLUMNS,
    COUNT_COLUMNS,
    PERIODS_COLUMNS,
    RATE_COLUMNS,
    SUCCESSES_COLUMNS,
    alliance_periods_table,
    periods_table,
    successes_table,
    summary_table,
)
from engine.oracles.campaign_loop import simulate_campaign_python
from kernels.layout import (
    AP_ACTIVE,
    AP_ALIVE,
    AP_EXITS,
    AP_JOINS,
    AP_REPUTATION_SUM,
    CELL_COLUMNS,
    DELAY_SCALE,
    P_DISSOLVED,
    P_EXITS,
    P_JOINS,
    P_REPUTATION_SUM,
    P_RESOLVE_SUM,
    P_THREAT_SUM,
    RESOLVE_SCALE,
    SHARE_SCALE,
    histogram_edges,
)
from tests.oracle_scenarios import compiled, make_scenario

TRIALS = 400
SEED = 11
Z = 1.959963984540054


def _wilson(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, written out again (not the engine's vectorized one)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (0.0 if k == 0 else max(0.0, centre - half),
            1.0 if k == n else min(1.0, centre + half))


def _states() -> dict[str, dict]:
    return {"BIG": {"capability": 0.2, "commitment": 0.6, "stability": 0.5},
            "MID": {"capability": 0.03, "commitment": 0.5, "stability": 0.4},
            "SMALL": {"capability": 0.002, "commitment": 0.9},
            "CAND": {"capability": 0.01, "commitment": 0.7},
            "RUS": {"capability": 0.3, "commitment": 0.0}}


def _rich() -> dict:
    """Every mechanism at work: quiet periods, trust, learning, threat, exits, accession."""
    d = make_scenario(
        _states(),
        alliances=[{"id": "ALLY", "members": ["BIG", "MID", "SMALL"], "candidates": ["CAND"],
                    "decision_rule": "majority"},
                   {"id": "PAIR", "members": ["BIG", "MID"]}],
        aggressors=[{"state": "RUS", "targets": {"SMALL": 0.6, "MID": 0.4},
                     "attack_mix": {"conventional": 0.7, "hybrid": 0.3}}],
        attack_types={"conventional": {},
                      "hybrid": {"severity": 0.5, "ambiguity": 0.3, "attribution_days": 3.0}},
        name="campaign-tables")
    d["campaign"] = {"steps": 7, "crisis_rate": 0.7, "reputation_learning": 0.5,
                     "trust_weight": 0.5, "resolve_learning": 0.2, "threat_shock": 0.3,
                     "threat_decay": 0.1, "exit_threshold": 0.75, "join_threshold": 0.4}
    return d


@pytest.fixture(scope="module")
def rich():
    c = compiled(_rich())
    return c, simulate_campaign_python(c, SEED, 0, TRIALS)


def test_the_rich_campaign_exercises_what_the_tables_show(rich):
    """Otherwise the tests below would check zeros."""
    _, ct = rich
    p = ct.periods
    assert p[:, P_EXITS].sum() > 0 and p[:, P_JOINS].sum() > 0 and p[:, P_DISSOLVED].sum() > 0
    crises = ct.period_cells[:, CELL_COLUMNS.index("trials")]
    assert (crises < TRIALS).all() and (crises > 0).all()
    assert ct.period_cells[:, CELL_COLUMNS.index("invoked")].min() > 0
    assert np.count_nonzero(ct.successes) > 2


def test_periods_table_recomputed_from_the_arrays(rich):
    c, ct = rich
    table = periods_table(c, ct, TRIALS)
    assert table.columns == list(PERIODS_COLUMNS)
    assert table["period"].to_list() == list(range(c.campaign.steps))
    col = {name: ct.period_cells[:, i] for i, name in enumerate(CELL_COLUMNS)}
    rates = {
        "deterrence_success_rate": (col["deterred"], col["trials"]),
        "attack_rate": (col["attacked"], col["trials"]),
        "invocation_rate": (col["invoked"], col["attacked"]),
        "defection_rate": (col["defection"], col["invoked"]),
        "breakdown_rate": (col["deadlock"] + col["veto"] + col["defection"], col["attacked"]),
        "aggression_success_rate": (col["succeeded"], col["attacked"]),
        "honor_rate": (col["honored_sum"], col["allies_sum"]),
        "crisis_rate_observed": (col["trials"], np.full(len(col["trials"]), TRIALS)),
    }
    for s, row in enumerate(table.iter_rows(named=True)):
        assert row["crises"] == col["trials"][s]
        for name in COUNT_COLUMNS[1:]:
            assert row[name] == col[name][s], (s, name)
        for name, (num, den) in rates.items():
            k, n = int(num[s]), int(den[s])
            lo, hi = _wilson(k, n)
            assert row[name] == pytest.approx(k / n, abs=1e-12), (s, name)
            assert row[f"{name}_low"] == pytest.approx(lo, abs=1e-12), (s, name)
            assert row[f"{name}_high"] == pytest.approx(hi, abs=1e-12), (s, name)
        invoked = int(col["invoked"][s])
        assert row["delay_mean_days"] == pytest.approx(
            col["delay_sum_fx"][s] / DELAY_SCALE / invoked, rel=1e-12)
        assert row["rounds_mean"] == pytest.approx(col["rounds_sum"][s] / invoked, rel=1e-12)
        p50, p90, p99 = histogram_quantiles(ct.period_hist[s], (0.5, 0.9, 0.99))
        assert (row["delay_p50_days"], row["delay_p90_days"], row["delay_p99_days"]) == (
            pytest.approx(p50), pytest.approx(p90), pytest.approx(p99))
        # the median lies in the bin where the period's delay histogram passes half its count
        cum = np.cumsum(ct.period_hist[s])
        assert cum[-1] == invoked
        edges = histogram_edges()
        b = int(np.searchsorted(cum, invoked / 2))
        assert edges[b] <= row["delay_p50_days"] <= edges[b + 1]
        p = ct.periods[s]
        assert row["reputation_mean"] == pytest.approx(
            p[P_REPUTATION_SUM] / SHARE_SCALE / TRIALS, rel=1e-12)
        assert row["resolve_multiplier_mean"] == pytest.approx(
            p[P_RESOLVE_SUM] / RESOLVE_SCALE / TRIALS, rel=1e-12)
        assert row["threat_mean"] == pytest.approx(p[P_THREAT_SUM] / SHARE_SCALE / TRIALS,
                                                   rel=1e-12)
        assert (row["exits"], row["joins"], row["dissolved"]) == (
            p[P_EXITS], p[P_JOINS], p[P_DISSOLVED])
    # means of the state lie where the model keeps them
    assert ((table["reputation_mean"] > 0) & (table["reputation_mean"] <= 1)).all()
    assert ((table["threat_mean"] >= 0) & (table["threat_mean"] <= 1)).all()
    assert table["threat_mean"][0] > 0  # threat_shock > 0 and a crisis in most trajectories


def test_periods_add_up_to_the_totals(rich):
    """Σ over periods of the period tallies is the cells' tallies summed, and the periods
    table's counts add up to the summary's overall row."""
    c, ct = rich
    np.testing.assert_array_equal(ct.period_cells.sum(axis=0), ct.cells.sum(axis=0))
    np.testing.assert_array_equal(ct.period_hist.sum(axis=0), ct.cell_hist.sum(axis=0))
    table = periods_table(c, ct, TRIALS)
    overall = summary_table(c, ct).filter(pl.col("scope") == "overall").row(0, named=True)
    assert table["crises"].sum() == overall["trials"]
    for name in COUNT_COLUMNS[1:]:
        assert table[name].sum() == overall[name], name
    # the successes distribution counts the same successful aggressions
    assert (np.arange(ct.successes.size) * ct.successes).sum() == overall["succeeded"]


def test_one_period_is_the_overall_summary_row():
    """steps = 1: row 0 is exactly summary_table's overall row (``trials`` named ``crises``)."""
    d = make_scenario(name="campaign-one-period")
    d["campaign"] = {"steps": 1}
    c = compiled(d)
    ct = simulate_campaign_python(c, SEED, 0, 300)
    row = periods_table(c, ct, 300).row(0, named=True)
    overall = summary_table(c, ct).filter(pl.col("scope") == "overall").row(0, named=True)
    assert row["crises"] == overall["trials"] == 300
    assert row["crisis_rate_observed"] == 1.0
    shared = [name for name in PERIODS_COLUMNS if name in overall]
    assert len(shared) >= len(COUNT_COLUMNS) - 1 + 3 * len(RATE_COLUMNS)
    for name in shared:
        assert row[name] == overall[name], name
    assert row["reputation_mean"] == 1.0 and row["resolve_multiplier_mean"] == 1.0
    assert row["threat_mean"] == 0.0


def test_alliance_periods_table_recomputed_from_the_arrays(rich):
    c, ct = rich
    table = alliance_periods_table(c, ct, TRIALS)
    steps = c.campaign.steps
    assert table.columns == list(ALLIANCE_PERIODS_COLUMNS)
    assert table.height == c.n_alliances * steps
    assert table["alliance"].to_list() == [a for a in ("ALLY", "PAIR") for _ in range(steps)]
    start = {"ALLY": 3, "PAIR": 2}
    for row in table.iter_rows(named=True):
        a, s = c.alliance_ids.index(row["alliance"]), row["period"]
        ap = ct.alliance_periods[a, s]
        assert row["members_at_start"] == start[row["alliance"]]
        assert row["active_members_mean"] == pytest.approx(ap[AP_ACTIVE] / TRIALS, rel=1e-12)
        assert (row["exits"], row["joins"], row["alive"]) == (ap[AP_EXITS], ap[AP_JOINS],
                                                              ap[AP_ALIVE])
        lo, hi = _wilson(int(ap[AP_ALIVE]), TRIALS)
        assert row["survival"] == pytest.approx(ap[AP_ALIVE] / TRIALS, abs=1e-12)
        assert row["survival_low"] == pytest.approx(lo, abs=1e-12)
        assert row["survival_high"] == pytest.approx(hi, abs=1e-12)
        if ap[AP_ALIVE]:
            assert row["reputation_mean"] == pytest.approx(
                ap[AP_REPUTATION_SUM] / SHARE_SCALE / ap[AP_ALIVE], rel=1e-12)
        else:
            assert row["reputation_mean"] is None
    # active members move by joins − exits, from the members at the start, less at most one
    # last member per dissolution (a dissolved alliance has no members left)
    for _, rows in table.group_by("alliance", maintain_order=True):
        active = np.rint(rows["active_members_mean"].to_numpy() * TRIALS).astype(np.int64)
        before = np.concatenate([[rows["members_at_start"][0] * TRIALS], active[:-1]])
        alive = rows["alive"].to_numpy()
        dissolved = np.concatenate([[TRIALS], alive[:-1]]) - alive
        moved = rows["joins"].to_numpy() - rows["exits"].to_numpy()
        assert np.all(active - before <= moved) and np.all(active - before >= moved - dissolved)
    assert table.filter(pl.col("alliance") == "ALLY")["joins"].sum() > 0


def test_survival_and_membership_changes_agree_with_the_period_counts(rich):
    c, ct = rich
    table = alliance_periods_table(c, ct, TRIALS)
    periods = periods_table(c, ct, TRIALS)
    dissolved = np.zeros(c.campaign.steps, dtype=np.int64)
    for alliance, rows in table.group_by("alliance", maintain_order=True):
        survival = rows["survival"].to_numpy()
        assert (np.diff(survival) <= 0).all(), alliance  # a dissolved alliance stays so
        alive = rows["alive"].to_numpy()
        dissolved += -np.diff(alive, prepend=TRIALS)
    assert table.filter(pl.col("alliance") == "PAIR")["survival"][-1] < 1.0
    np.testing.assert_array_equal(periods["dissolved"].to_numpy(), dissolved)
    by_period = table.group_by("period").agg(pl.col("exits").sum(),
                                             pl.col("joins").sum()).sort("period")
    assert by_period["exits"].to_list() == periods["exits"].to_list()
    assert by_period["joins"].to_list() == periods["joins"].to_list()


def test_alliance_reputation_is_a_mean_of_reputations(rich):
    c, ct = rich
    table = alliance_periods_table(c, ct, TRIALS)
    rep = table["reputation_mean"].drop_nulls()
    assert ((rep > 0) & (rep <= 1)).all(), table.select("alliance", "period",
                                                       "reputation_mean", "alive")


def test_successes_table(rich):
    c, ct = rich
    table = successes_table(ct, TRIALS)
    assert table.columns == list(SUCCESSES_COLUMNS)
    assert table["successful_aggressions"].to_list() == list(range(c.campaign.steps + 1))
    assert table["trajectories"].to_list() == ct.successes.tolist()
    assert table["trajectories"].sum() == TRIALS
    assert table["share"].sum() == pytest.approx(1.0, abs=1e-12)
    for row in table.iter_rows(named=True):
        lo, hi = _wilson(row["trajectories"], TRIALS)
        assert row["share"] == pytest.approx(row["trajectories"] / TRIALS, abs=1e-15)
        assert (row["share_low"], row["share_high"]) == (pytest.approx(lo, abs=1e-12),
                                                        pytest.approx(hi, abs=1e-12))


def test_a_wrong_number_of_trajectories_is_refused(rich):
    c, ct = rich
    for build in (lambda: periods_table(c, ct, TRIALS + 1),
                  lambda: alliance_periods_table(c, ct, TRIALS - 1),
                  lambda: successes_table(ct, 2 * TRIALS)):
        with pytest.raises(ValueError, match="trajectories"):
            build()
