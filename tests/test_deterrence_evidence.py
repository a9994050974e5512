"""The deterrence relative risk of the backtest (issue 13, item 2) on the real public files of
../shared/data: every part re-derived independently of :mod:`engine.experiments.
deterrence_evidence` (coverage from the scenario text, originations from the raw MID rows, the
engine's probability from design §2's closed form, the relative risks from the dyad table)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from engine.experiments import backtest as bt
from engine.experiments.deterrence_evidence import (
    COLUMNS,
    DYAD_COLUMNS,
    adjusted,
    crude,
    deterrence_evidence,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
MIDS = DATA / "gml-ddy-disputes-2.03.csv"
YEARS = [1913, 1939, 1990]

pytestmark = pytest.mark.skipif(not MIDS.is_file(), reason="../shared/data not present")


@pytest.fixture(scope="module")
def evidence():
    _cinc, majors, rivals = bt._year_tables(DATA)
    paths = {k: bt._path(DATA, k) for k in ("alliances", "members", "capabilities", "disputes")}
    return deterrence_evidence(paths, bt._abbreviations(DATA), majors, rivals, split=1944,
                               years=YEARS)


@pytest.fixture(scope="module")
def worlds():
    """Per year: the imported world's scenario as plain data (re-imported here)."""
    import tomllib

    from engine.data.atop import import_world

    out = {}
    for year in YEARS:
        w = import_world(year, DATA / "atop-alliance-level.csv",
                         DATA / "atop-member-level.csv", DATA / "cinc-polity.csv",
                         aggressors=["USA"] if year != 1913 else ["UKG"])
        out[year] = tomllib.loads(w.toml)
    return out


def _codes() -> dict[str, int]:
    with open(DATA / "cinc-polity.csv", newline="") as fh:
        return {r["stateabb"]: int(r["ccode"]) for r in csv.DictReader(fh)}


def test_every_directed_pair_of_every_world_once(evidence, worlds):
    d = evidence.dyads
    assert tuple(d.columns) == DYAD_COLUMNS
    assert d.select("year", "challenger", "target").is_unique().all()
    for year, world in worlds.items():
        n = len(world["states"])
        assert d.filter(pl.col("year") == year).height == n * (n - 1)
    assert (d["challenger"] != d["target"]).all()


def test_covered_rederived_from_the_scenario_text(evidence, worlds):
    codes = _codes()
    expected = set()
    for year, world in worlds.items():
        for al in world["alliances"]:
            members = set(al["members"])
            if al.get("obligation", "defense") == "defense":
                protected = set(al.get("protected") or members)
            elif al["obligation"] == "collective_security":
                protected = members
            else:
                continue
            for t in protected:
                for st in world["states"]:
                    a = st["id"]
                    if a == t or (al.get("obligation", "defense") == "defense" and a in members):
                        continue
                    if members - {a, t}:
                        expected.add((year, codes[a], codes[t]))
    got = set(evidence.dyads.filter(pl.col("covered") == 1)
              .select("year", "challenger", "target").iter_rows())
    assert got == expected
    assert 0 < len(got) < evidence.dyads.height


def test_observed_originations_rederived_from_the_raw_rows(evidence, worlds):
    codes = _codes()
    expected = set()
    with open(MIDS, newline="") as fh:
        for r in csv.DictReader(fh):
            y = int(r["year"])
            if (y in worlds and r["sidea1"] == "1" and r["sidea2"] == "0"
                    and r["orig1"] == "1" and r["midonset"] == "1"):
                expected.add((y, int(r["ccode1"]), int(r["ccode2"])))
    in_world = {(y, a, b) for y, a, b in expected
                if {a, b} <= {codes[s["id"]] for s in worlds[y]["states"]}}
    got = set(evidence.dyads.filter(pl.col("observed") == 1)
              .select("year", "challenger", "target").iter_rows())
    assert got == in_world
    assert evidence.info["events"] == len(in_world)
    assert evidence.info["events_outside_worlds"] == len(expected) - len(in_world)


def test_engine_probability_is_design_closed_form(evidence, worlds):
    """1 − P(deterred) = 1 − Φ((ln R − ln cap_a) / σ), R = cap_t + Σ allies cred_i · cap_i
    (design §2 step 2, resolve 1), recomputed for a sample of dyads of every year."""
    codes = _codes()
    rng = np.random.default_rng(5)
    for year, world in worlds.items():
        state = {s["id"]: s for s in world["states"]}
        by_code = {codes[k]: k for k in state}
        sigma = world["scenario"]["misperception"]
        part = evidence.dyads.filter(pl.col("year") == year)
        for i in rng.choice(part.height, size=40, replace=False):
            row = part.row(int(i), named=True)
            a, t = by_code[row["challenger"]], by_code[row["target"]]
            cred: dict[str, float] = {}
            for al in world["alliances"]:
                members = set(al["members"])
                if (al.get("obligation", "defense") != "defense" or a in members
                        or t not in set(al.get("protected") or members) or not members - {a, t}):
                    continue
                for m in members - {a, t}:
                    cred[m] = max(cred.get(m, 0.0),
                                  state[m]["commitment"] * al.get("bindingness", 1.0))
            r = state[t]["capability"] + sum(c * state[m]["capability"] for m, c in cred.items())
            p_attack = 1 - norm.cdf((math.log(r) - math.log(state[a]["capability"])) / sigma)
            assert row["engine"] == pytest.approx(p_attack, rel=1e-9, abs=1e-12)
            assert bool(row["covered"]) == bool(cred)
            base = 1 - norm.cdf((math.log(state[t]["capability"])
                                 - math.log(state[a]["capability"])) / sigma)
            assert row["engine_without_alliances"] == pytest.approx(base, rel=1e-9, abs=1e-12)


def test_table_recomputed_from_the_dyads(evidence):
    table, d = evidence.table, evidence.dyads
    assert tuple(table.columns) == COLUMNS
    assert table.height == 15  # 3 sources × 3 periods × 2 estimates, less 3 (no adjusted
    # estimate without alliances)
    for row in table.filter(pl.col("estimate") == "crude").iter_rows(named=True):
        part = {"all": d, "train": d.filter(pl.col("year") <= 1944),
                "test": d.filter(pl.col("year") > 1944)}[row["period"]]
        cov = part.filter(pl.col("covered") == 1)[row["source"]]
        unc = part.filter(pl.col("covered") == 0)[row["source"]]
        assert row["dyad_years"] == part.height and row["covered"] == cov.len()
        assert row["relative_risk"] == pytest.approx(cov.mean() / unc.mean(), rel=1e-12)
        if row["source"] == "observed":
            a, n1, c, n0 = cov.sum(), cov.len(), unc.sum(), unc.len()
            se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
            assert row["ci_low"] == pytest.approx(row["relative_risk"] * math.exp(-1.959964 * se))
            assert row["ci_high"] == pytest.approx(row["relative_risk"] * math.exp(1.959964 * se))
        else:
            assert row["ci_low"] is None  # the engine's probabilities are exact
    assert "Reading" in evidence.info["reading"]


def _synthetic(n: int, rr: float, confounded: bool, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    covered = (rng.random(n) < (1 / (1 + np.exp(-2 * x)) if confounded else 0.5)).astype(int)
    p = 0.02 * np.exp(0.8 * x * confounded) * rr ** covered
    y = (rng.random(n) < np.minimum(p, 1)).astype(int)
    zeros = np.zeros(n, dtype=np.int64)
    return pl.DataFrame({"year": np.full(n, 1950), "covered": covered, "observed": y,
                         "log_capability_challenger": x, "log_capability_target": zeros,
                         "major_challenger": zeros, "major_target": zeros, "rivalry": zeros,
                         "shared_alliance": zeros})


def test_adjusted_is_the_crude_ratio_without_controls():
    """With every control constant and one decade the Poisson fit's exp(β) is the crude ratio
    exactly (the score equations of a saturated two-group model)."""
    frame = _synthetic(50_000, 0.6, confounded=False, seed=1).with_columns(
        pl.lit(0.0).alias("log_capability_challenger"))
    assert adjusted(frame, "observed", True)["relative_risk"] == pytest.approx(
        crude(frame, "observed", True)["relative_risk"], rel=1e-7)


def test_adjusted_removes_confounding_that_the_crude_ratio_keeps():
    """True relative risk 0.6; coverage rises with x and so does the risk.  With 400,000 rows
    (≈ 8,000 events) the standard error of ln RR is ≈ 0.025, so a tolerance of 0.12 on ln RR is
    ≈ 5 standard errors (false-failure rate ≈ 1e-6); the crude ratio is biased far above it."""
    frame = _synthetic(400_000, 0.6, confounded=True, seed=2)
    adj = adjusted(frame, "observed", True)
    assert abs(math.log(adj["relative_risk"]) - math.log(0.6)) < 0.12
    assert adj["ci_low"] < 0.6 < adj["ci_high"]
    assert abs(math.log(crude(frame, "observed", True)["relative_risk"]) - math.log(0.6)) > 0.3


def test_years_outside_the_mid_data_are_a_clear_error():
    from engine.errors import UserError

    with pytest.raises(UserError, match="outside the MID data"):
        deterrence_evidence({}, {}, pl.DataFrame(), pl.DataFrame(), split=1944, years=[2011])
