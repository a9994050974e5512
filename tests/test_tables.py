"""Tables from tallies: histogram quantiles, Wilson intervals, cells/summary/records tables."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from engine.core.simulate import Tallies, simulate
from engine.core.statistics import histogram_quantiles, wilson_interval
from engine.core.tables import (
    CELLS_COLUMNS,
    COUNT_COLUMNS,
    RATE_COLUMNS,
    SUMMARY_COLUMNS,
    cells_table,
    records_table,
    summary_table,
)
from engine.model.compile import compile_scenario
from engine.model.config import scenario_from_dict
from engine.present.terminal import format_summary
from kernels.histogram import delay_bin
from kernels.layout import (
    CAUSES,
    CELL_COLUMNS,
    DELAY_SCALE,
    HIST_FINE_LIMIT,
    HIST_OVERFLOW,
    N_HIST_BINS,
    RECORD_COLUMNS,
    SHARE_SCALE,
    histogram_edges,
)

# ---- histogram quantiles ---------------------------------------------------------------------


def _hist_of(values) -> np.ndarray:
    h = np.zeros(N_HIST_BINS, np.int64)
    for v in values:
        h[delay_bin(float(v))] += 1
    return h


def test_quantiles_fine_grid_within_one_bin():
    # 0.05, 0.15, …: one value in the middle of each 0.1-day bin on [0, 100)
    values = np.arange(1000) * 0.1 + 0.05
    h = _hist_of(values)
    qs = [0.0, 0.1, 0.5, 0.9, 0.99, 1.0]
    got = histogram_quantiles(h, qs)
    exact = np.quantile(values, qs)
    assert got.shape == (len(qs),)
    assert np.all(np.abs(got - exact) <= 0.1 + 1e-9)
    # the interpolation is exact for a uniform spread: the q-quantile is 100·q days
    np.testing.assert_allclose(got, np.array(qs) * 100.0, atol=1e-9)


def test_quantiles_interpolate_within_bin_and_single_value():
    h = np.zeros(N_HIST_BINS, np.int64)
    h[delay_bin(3.04)] = 4  # bin [3.0, 3.1)
    got = histogram_quantiles(h, [0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(got, [3.0, 3.025, 3.05, 3.1], atol=1e-12)


def test_quantiles_beyond_fine_range():
    rng = np.random.default_rng(1)
    values = rng.uniform(200.0, 5000.0, size=20_000)
    h = _hist_of(values)
    got = histogram_quantiles(h, [0.5, 0.9, 0.99])
    exact = np.quantile(values, [0.5, 0.9, 0.99])
    # bins are ≤ 1/64 of their lower edge wide above 128 days; sampling adds a little
    assert np.all(np.abs(got - exact) / exact < 0.02)
    edges = histogram_edges()
    assert got[0] > HIST_FINE_LIMIT and np.all(np.diff(got) > 0)
    assert np.all(got < edges[HIST_OVERFLOW])


def test_quantiles_overflow_returns_lower_edge():
    edges = histogram_edges()
    h = np.zeros(N_HIST_BINS, np.int64)
    h[HIST_OVERFLOW] = 3
    assert delay_bin(1e9) == HIST_OVERFLOW
    np.testing.assert_array_equal(histogram_quantiles(h, [0.5, 0.99]), edges[HIST_OVERFLOW])


def test_quantiles_empty_and_vectorized():
    h = np.zeros((2, 3, N_HIST_BINS), np.int64)
    h[0, 1, 10] = 5  # [1.0, 1.1)
    h[1, 2, 1500] = 1
    got = histogram_quantiles(h, [0.5, 0.9])
    assert got.shape == (2, 3, 2)
    assert np.isnan(got[0, 0]).all() and np.isnan(got[1, 0]).all()
    np.testing.assert_allclose(got[0, 1], [1.05, 1.09])
    one = histogram_quantiles(h[1, 2], [0.5, 0.9])
    np.testing.assert_array_equal(got[1, 2], one)
    with pytest.raises(ValueError):
        histogram_quantiles(h, [1.5])
    with pytest.raises(ValueError):
        histogram_quantiles(np.zeros(10), [0.5])


# ---- Wilson interval -------------------------------------------------------------------------


def _wilson_closed_form(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z / d * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return c - h, c + h


def test_wilson_known_cases():
    low, high = wilson_interval([0, 5, 10, 3], [10, 10, 10, 7])
    # hand-computed with z = 1.96: 0/10 → [0, 0.2775], 5/10 → [0.2366, 0.7634], 10/10 → [0.7225, 1]
    np.testing.assert_allclose(low[:3], [0.0, 0.2366, 0.7225], atol=1e-4)
    np.testing.assert_allclose(high[:3], [0.2775, 0.7634, 1.0], atol=1e-4)
    for i, (k, n) in enumerate([(0, 10), (5, 10), (10, 10), (3, 7)]):
        lo, hi = _wilson_closed_form(k, n)
        assert low[i] == pytest.approx(max(lo, 0.0), abs=1e-12)
        assert high[i] == pytest.approx(min(hi, 1.0), abs=1e-12)
    assert low[0] == 0.0 and high[2] == 1.0


def test_wilson_matches_statsmodels_formula_via_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    k = np.array([1, 17, 250, 999])
    n = np.array([3, 40, 1000, 1000])
    low, high = wilson_interval(k, n)
    for i in range(k.size):
        ci = scipy_stats.binomtest(int(k[i]), int(n[i])).proportion_ci(0.95, method="wilson")
        assert low[i] == pytest.approx(ci.low, abs=1e-9)
        assert high[i] == pytest.approx(ci.high, abs=1e-9)


def test_wilson_empty_and_scalar():
    low, high = wilson_interval(np.array([0, 2]), np.array([0, 4]))
    assert np.isnan(low[0]) and np.isnan(high[0])
    assert 0 < low[1] < 0.5 < high[1] < 1
    lo, hi = wilson_interval(3, 4)
    assert np.ndim(lo) == 0 and 0 < lo < 0.75 < hi <= 1


# ---- tables from a real run --------------------------------------------------------------------

SCENARIO = {
    "scenario": {"name": "tables test", "seed": 7, "misperception": 0.6, "outcome_noise": 0.4,
                 "mobilization_days": 5.0, "defection_threshold": 0.4},
    "states": [
        {"id": "RUS", "capability": 1.0, "commitment": 0.5},
        {"id": "EST", "capability": 0.05, "commitment": 0.9},
        {"id": "LAT", "capability": 0.08, "commitment": 0.9},
        {"id": "USA", "capability": 1.2, "commitment": 0.6, "stability": 0.7},
        {"id": "GER", "capability": 0.4, "commitment": 0.3, "stability": 0.8},
        {"id": "FIN", "capability": 0.1, "commitment": 0.8},
        {"id": "SWE", "capability": 0.1, "commitment": 0.7},
    ],
    "alliances": [
        {"id": "NATO", "members": ["USA", "GER", "EST", "LAT"], "round_days": 2.0,
         "max_rounds": 3, "integration": 0.5},
        {"id": "NORD", "members": ["FIN", "SWE", "EST"], "decision_rule": "majority",
         "round_days": 1.0, "max_rounds": 2},
        {"id": "UNSC", "members": ["USA", "RUS", "GER"], "obligation": "consultation"},
    ],
    "aggressors": [
        {"state": "RUS", "weight": 1.0, "resolve": 1.0,
         "targets": {"EST": 1.0, "LAT": 1.0, "FIN": 0.5},
         "attack_mix": {"conventional": 1.0, "hybrid": 1.0}},
        {"state": "GER", "weight": 0.3, "resolve": 2.0, "targets": {"SWE": 1.0},
         "attack_mix": {"cyber": 1.0}},
    ],
    "attack_types": {
        "conventional": {"severity": 1.0},
        "hybrid": {"severity": 0.6, "attribution_days": 10.0},
        "cyber": {"severity": 0.3, "attribution_days": 2.0},
    },
}
N_TRIALS = 60_000
N_SAVED = 500


@pytest.fixture(scope="module")
def run():
    compiled = compile_scenario(scenario_from_dict(SCENARIO))
    tallies, records = simulate(compiled, 7, 0, N_TRIALS, save_trials=N_SAVED)
    return compiled, tallies, records


@pytest.fixture(scope="module")
def cells(run):
    compiled, tallies, _ = run
    return cells_table(compiled, tallies)


@pytest.fixture(scope="module")
def summary(run):
    compiled, tallies, _ = run
    return summary_table(compiled, tallies)


def test_cells_shape_ids_and_types(run, cells):
    compiled, tallies, _ = run
    assert tuple(cells.columns) == CELLS_COLUMNS
    assert cells.height == compiled.n_cells
    assert cells.select("aggressor", "target", "attack_type").rows() == [
        ("RUS", "EST", "conventional"), ("RUS", "EST", "hybrid"),
        ("RUS", "LAT", "conventional"), ("RUS", "LAT", "hybrid"),
        ("RUS", "FIN", "conventional"), ("RUS", "FIN", "hybrid"),
        ("GER", "SWE", "cyber"),
    ]
    # FIN and SWE are members of NORD (defense); every target here is covered
    assert cells["covered"].to_list() == [True] * 7
    for name in COUNT_COLUMNS:
        assert cells.schema[name] == pl.Int64
        np.testing.assert_array_equal(cells[name].to_numpy(),
                                      tallies.cells[:, CELL_COLUMNS.index(name)])
    assert cells.schema["delay_p90_days"] == pl.Float64
    assert cells["trials"].sum() == N_TRIALS


def test_cells_counts_add_up(cells):
    c = cells
    assert (c["deterred"] + c["attacked"] == c["trials"]).all()
    assert (c["repelled"] + c["succeeded"] == c["attacked"]).all()
    assert (c["invoked"] + c["deadlock"] + c["veto"] == c["consulted"]).all()
    assert (c["deterred_no_alliance"] <= c["deterred"]).all()
    assert (c["consulted"] == c["attacked"]).all()  # all targets covered
    assert c["invoked"].sum() > 0 and c["deadlock"].sum() > 0 and c["defection"].sum() > 0


def test_cells_means(run, cells):
    compiled, tallies, _ = run
    t = tallies.cells
    col = {name: t[:, i] for i, name in enumerate(CELL_COLUMNS)}
    inv = col["invoked"]
    np.testing.assert_allclose(cells["delay_mean_days"].to_numpy(),
                               col["delay_sum_fx"] / DELAY_SCALE / inv)
    np.testing.assert_allclose(cells["rounds_mean"].to_numpy(), col["rounds_sum"] / inv)
    np.testing.assert_allclose(cells["backing_share_mean"].to_numpy(),
                               col["backing_share_sum_fx"] / SHARE_SCALE / col["consulted"])
    q = histogram_quantiles(tallies.cell_hist, [0.5, 0.9, 0.99])
    np.testing.assert_allclose(cells["delay_p50_days"].to_numpy(), q[:, 0])
    assert (cells["delay_p50_days"] <= cells["delay_p90_days"]).all()
    assert (cells["delay_p90_days"] <= cells["delay_p99_days"]).all()
    # delay ≥ rounds·round_days + mobilization·(1 − integration) ≥ 1 day here
    assert (cells["delay_mean_days"] >= 1.0).all()
    shares = cells["delivered_share_mean"].drop_nulls()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_cells_nulls_when_no_denominator():
    compiled = compile_scenario(scenario_from_dict(SCENARIO))
    tallies = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    tallies.cells[0, CELL_COLUMNS.index("trials")] = 3
    tallies.cells[0, CELL_COLUMNS.index("deterred")] = 3
    t = cells_table(compiled, tallies)
    for name in ("delay_mean_days", "delay_p50_days", "rounds_mean", "backing_share_mean",
                 "free_riders_mean", "delivered_share_mean"):
        assert t[name].null_count() == t.height
        assert t[name].is_nan().sum() == 0
    s = summary_table(compiled, tallies)
    overall = s.filter(pl.col("scope") == "overall").row(0, named=True)
    assert overall["deterrence_success_rate"] == 1.0
    assert overall["invocation_rate"] is None and overall["invocation_rate_low"] is None
    alliance_rows = s.filter(pl.col("scope") == "alliance")
    assert alliance_rows["deterrence_success_rate"].null_count() == 2
    assert alliance_rows["honor_rate"].null_count() == 2  # no member pledged
    assert "-" in format_summary(s)


def test_summary_overall_equals_cell_sums(cells, summary):
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    overall = summary.filter(pl.col("scope") == "overall")
    assert overall.height == 1 and overall["key"][0] == "all"
    for name in COUNT_COLUMNS:
        assert overall[name][0] == cells[name].sum(), name
    inv = cells["invoked"].sum()
    assert overall["delay_mean_days"][0] == pytest.approx(
        cells["delay_sum_fx"].sum() / DELAY_SCALE / inv, rel=1e-12)
    assert overall["rounds_mean"][0] == pytest.approx(cells["rounds_sum"].sum() / inv, rel=1e-12)


@pytest.mark.parametrize("scope", ["target", "attack_type", "aggressor"])
def test_summary_scopes_sum_to_overall(summary, scope):
    part = summary.filter(pl.col("scope") == scope)
    overall = summary.filter(pl.col("scope") == "overall")
    for name in COUNT_COLUMNS:
        assert part[name].sum() == overall[name][0], (scope, name)


def test_summary_keys(summary):
    keys = {s: summary.filter(pl.col("scope") == s)["key"].to_list()
            for s in summary["scope"].unique()}
    assert keys["target"] == ["EST", "LAT", "FIN", "SWE"]
    assert keys["attack_type"] == ["conventional", "hybrid", "cyber"]
    assert keys["aggressor"] == ["RUS", "GER"]
    assert keys["alliance"] == ["NATO", "NORD"]  # the consultation pact covers nobody
    assert keys["covered_targets"] == ["all"]
    assert "uncovered_targets" not in keys  # every target is covered: row left out


def test_summary_alliance_rows(run, summary):
    compiled, tallies, _ = run
    al = summary.filter(pl.col("scope") == "alliance")
    a = tallies.alliances
    nato = al.filter(pl.col("key") == "NATO").row(0, named=True)
    assert nato["trials"] == a[0, 0] > 0
    assert nato["attacked"] == nato["consulted"]
    assert nato["invoked"] + nato["deadlock"] + nato["veto"] == nato["consulted"]
    assert nato["repelled"] + nato["succeeded"] == nato["attacked"]
    assert nato["defection"] is None and nato["deterrence_lift"] is None
    assert nato["delivered_share_mean"] is None
    assert nato["delay_p50_days"] is not None and nato["rounds_mean"] >= 1.0
    # NATO covers EST and LAT; NORD covers EST, FIN and SWE
    by_target = summary.filter(pl.col("scope") == "target")
    tr = dict(zip(by_target["key"], by_target["trials"], strict=True))
    assert nato["trials"] == tr["EST"] + tr["LAT"]
    nord = al.filter(pl.col("key") == "NORD").row(0, named=True)
    assert nord["trials"] == tr["EST"] + tr["FIN"] + tr["SWE"]


def test_summary_rates_and_intervals(summary):
    for rate in RATE_COLUMNS:
        r, lo, hi = summary[rate], summary[f"{rate}_low"], summary[f"{rate}_high"]
        ok = r.is_not_null()
        assert (lo.is_not_null() == ok).all() and (hi.is_not_null() == ok).all()
        assert ((lo <= r) & (r <= hi)).filter(ok).all(), rate
        assert ((lo >= 0) & (hi <= 1)).filter(ok).all(), rate
    s = summary
    np.testing.assert_allclose(s["deterrence_success_rate"].to_numpy(),
                               (s["deterred"] / s["trials"]).to_numpy())
    cells_rows = s.filter(pl.col("scope") != "alliance")
    lift = (cells_rows["deterred"] - cells_rows["deterred_no_alliance"]) / cells_rows["trials"]
    np.testing.assert_allclose(cells_rows["deterrence_lift"].to_numpy(), lift.to_numpy())
    assert (cells_rows["deterrence_lift"] > 0).all()
    br = (cells_rows["deadlock"] + cells_rows["veto"] + cells_rows["defection"]) / cells_rows[
        "attacked"]
    np.testing.assert_allclose(cells_rows["breakdown_rate"].to_numpy(), br.to_numpy())
    assert s.schema["trials"] == pl.Int64 and s.schema["veto_rate"] == pl.Float64


def test_summary_uncovered_baseline():
    data = {**SCENARIO, "alliances": [SCENARIO["alliances"][0]]}  # only NATO: FIN, SWE uncovered
    compiled = compile_scenario(scenario_from_dict(data))
    tallies, _ = simulate(compiled, 3, 0, 20_000)
    s = summary_table(compiled, tallies)
    cov = s.filter(pl.col("scope") == "covered_targets").row(0, named=True)
    unc = s.filter(pl.col("scope") == "uncovered_targets").row(0, named=True)
    overall = s.filter(pl.col("scope") == "overall").row(0, named=True)
    for name in COUNT_COLUMNS:
        assert cov[name] + unc[name] == overall[name]
    # no alliance: deterrence is the no-alliance baseline, no consultation at all
    assert unc["deterred"] == unc["deterred_no_alliance"] and unc["deterrence_lift"] == 0.0
    assert unc["consulted"] == 0 and unc["invocation_rate"] == 0.0
    assert unc["delay_mean_days"] is None
    assert cov["deterrence_lift"] > 0
    c = cells_table(compiled, tallies)
    assert c["covered"].to_list() == [True] * 4 + [False] * 3


def test_records_table(run):
    compiled, tallies, records = run
    r = records_table(compiled, records)
    assert tuple(r.columns) == RECORD_COLUMNS
    assert r.height == N_SAVED
    assert r["trial"].to_list() == list(range(N_SAVED))
    for name in ("trial", "cell", "deterred", "attacked", "invoked", "rounds", "free_riders",
                 "repelled"):
        assert r.schema[name] == pl.Int64
    for name in ("aggressor", "target", "attack_type", "alliance", "cause"):
        assert r.schema[name] == pl.String
    assert set(r["aggressor"].unique()) <= {"RUS", "GER"}
    assert set(r["cause"].unique()) <= set(CAUSES)
    assert (r["deterred"] + r["attacked"] == 1).all()
    # the alliance is set exactly when invoked
    assert (r["alliance"].is_not_null() == (r["invoked"] == 1)).all()
    assert set(r["alliance"].drop_nulls().unique()) <= {"NATO", "NORD"}
    # records agree with the cells table's ids
    cells = cells_table(compiled, tallies)
    joined = r.join(cells.with_row_index("cell").with_columns(pl.col("cell").cast(pl.Int64))
                    .select("cell", pl.col("target").alias("cell_target")), on="cell")
    assert (joined["target"] == joined["cell_target"]).all()
    empty = records_table(compiled, np.zeros((0, len(RECORD_COLUMNS))))
    assert empty.height == 0 and tuple(empty.columns) == RECORD_COLUMNS


def test_format_summary(summary):
    text = format_summary(summary)
    lines = text.splitlines()
    assert lines[0].split()[0] == "trials"
    assert lines[2].startswith("overall")
    assert "covered targets" in text
    for key in ("EST", "LAT", "FIN", "SWE", "NATO", "NORD", "conventional"):
        assert key in text
    assert text.index("target:") < text.index("alliance:")
    assert f"{N_TRIALS:,}" in lines[2]
    # fixed width: every data line is no wider than the header rule
    width = len(lines[1])
    assert all(len(line) <= width for line in lines)
