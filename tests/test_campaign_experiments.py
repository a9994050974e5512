"""Sweeps, calibration and comparisons on campaign measures (issue 15, item 3)."""

from __future__ import annotations

import copy

import pytest
from click.testing import CliRunner

from engine import api
from engine.cli.main import main
from engine.experiments.calibrate import calibrate
from engine.experiments.compare import compare_runs
from engine.experiments.overall import overall_summary
from engine.experiments.sweep import run_sweep
from engine.model.config import scenario_from_dict
from engine.runs.folder import ALLIANCE_PERIODS, PERIODS, SUCCESSES
from tests.test_campaign_oracle import _duo

TRIALS = 4000


def _scenario(**campaign):
    knobs = dict(steps=5, reputation_learning=0.5, exit_threshold=0.4)
    knobs.update(campaign)
    data = _duo(0.5, **knobs)
    data["states"].append({"id": "C", "capability": 0.2, "commitment": 0.4})
    data["alliances"][0]["members"] = ["T", "B", "C"]
    return scenario_from_dict(copy.deepcopy(data))


def test_the_overall_row_holds_the_campaign_measures():
    """The experiments' row of a campaign is the run's: totals over every crisis, and the
    last period's rates, survival and successes from the campaign tables, exactly."""
    s = _scenario()
    row = overall_summary(s, seed=3, trials=TRIALS)
    run = api.run(s, trials=TRIALS, seed=3)
    last = run.campaign[PERIODS].row(-1, named=True)
    assert row["deterrence_success_rate"] == run.summary.row(0, named=True)[
        "deterrence_success_rate"]
    for name in ("deterrence_success_rate", "aggression_success_rate", "reputation_mean"):
        assert row[f"final_{name}"] == last[name]
    alliances = run.campaign[ALLIANCE_PERIODS]
    assert row["PACT_survival_rate"] == alliances.filter(
        alliances["period"] == 4)["survival"].item()
    successes = run.campaign[SUCCESSES]
    assert row["successes_mean"] == pytest.approx(
        (successes["successful_aggressions"] * successes["trajectories"]).sum() / TRIALS)


def test_sweep_a_campaign_knob():
    """Faster reputation learning with an unreliable ally: lower final reputation and fewer
    members left (exits; common random numbers across the points)."""
    frame, names = run_sweep(_scenario(), [("campaign.reputation_learning", [0.1, 0.9])],
                             seed=3, trials=TRIALS)
    assert names == ["campaign.reputation_learning"] and frame.height == 2
    slow, fast = frame.row(0, named=True), frame.row(1, named=True)
    assert fast["final_reputation_mean"] < slow["final_reputation_mean"] - 0.1
    assert fast["PACT_members_mean"] < slow["PACT_members_mean"] - 0.1


def test_calibrate_to_a_final_period_rate():
    """Recover commitment_scale = 1 from the final deterrence rate it produces (same seed and
    trajectories: common random numbers), within the fit's 95% interval."""
    s = _scenario()
    target = overall_summary(s, seed=3, trials=TRIALS)["final_deterrence_success_rate"]
    fit = calibrate(s, measure="final_deterrence_success_rate", target=target,
                    parameter="commitment_scale", seed=3, trials=TRIALS, bounds=(0.2, 3.0))
    low, high = fit.interval
    assert low <= 1.0 <= high and abs(fit.achieved - target) < 0.01


def test_compare_two_campaign_runs(tmp_path):
    api.run(_scenario(), trials=TRIALS, seed=3, out=tmp_path / "a")
    api.run(_scenario(reputation_learning=0.9), trials=TRIALS, seed=3, out=tmp_path / "b")
    frame = compare_runs(tmp_path / "a", tmp_path / "b")
    row = frame.filter((frame["scope"] == "overall")
                       & (frame["measure"] == "deterrence_success_rate")).row(0, named=True)
    assert row["b"] < row["a"] and row["test"] == "two_proportion"
    # each period's rates are compared on the period's own counts, and survival at the end
    periods_a = api.open_run(tmp_path / "a").campaign[PERIODS]
    periods_b = api.open_run(tmp_path / "b").campaign[PERIODS]
    last = frame.filter((frame["scope"] == "period") & (frame["key"] == "4")
                        & (frame["measure"] == "deterrence_success_rate")).row(0, named=True)
    assert last["a"] == periods_a["deterrence_success_rate"][4]
    assert last["b"] == periods_b["deterrence_success_rate"][4]
    x1, n1 = periods_a["deterred"][4], periods_a["crises"][4]
    x2, n2 = periods_b["deterred"][4], periods_b["crises"][4]
    se = (x1 / n1 * (1 - x1 / n1) / n1 + x2 / n2 * (1 - x2 / n2) / n2) ** 0.5
    assert last["diff_low"] == pytest.approx(x2 / n2 - x1 / n1 - 1.959963984540054 * se)
    survival = frame.filter(frame["scope"] == "survival")
    assert survival["key"].to_list() == ["PACT"] and survival["test"][0] == "two_proportion"
    res = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 0 and "period: 4" in res.output and "survival: PACT" in res.output
