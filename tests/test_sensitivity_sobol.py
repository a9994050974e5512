"""`crisis sensitivity --method sobol`: SALib's Sobol' indices over the one-at-a-time ranges.

The design is SALib's scrambled Sobol' sequence with a seed derived from the run's seed, so every
check here is deterministic: the same points and bootstrap draws on every run (no false-failure
rate to state).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from click.testing import CliRunner

from engine.cli.main import main
from engine.experiments.sensitivity import (
    SOBOL_COLUMNS,
    _moves,
    knobs,
    sobol_evaluations,
    sobol_indices,
    sobol_sensitivity,
)
from engine.model.config import load_scenario

CONFIGS = Path(__file__).parent.parent / "configs"
UNSC = CONFIGS / "unsc-veto.toml"  # the smallest shipped scenario with an alliance


def test_additive_linear_model_has_its_closed_form_indices():
    # y = Σ a_i x_i, x_i ~ U(low_i, high_i) independent: Var = Σ a_i² (high_i − low_i)² / 12 and
    # S1_i = ST_i = a_i² (high_i − low_i)² / Σ_j a_j² (high_j − low_j)² (no interactions)
    coefficient = {"x1": 1.0, "x2": 2.0, "x3": 0.0, "x4": 0.5}
    bounds = [("x1", 0.0, 1.0), ("x2", -1.0, 0.0), ("x3", 0.0, 5.0), ("x4", 0.0, 2.0)]

    def evaluate(values):
        return {"y": sum(coefficient[name] * values[name] for name in coefficient)}

    frame, info = sobol_indices(bounds, evaluate, samples=1024, seed=3, measures=("y",))
    assert info["evaluations"] == sobol_evaluations(1024, 4) == 1024 * 6
    assert tuple(frame.columns) == SOBOL_COLUMNS
    weight = {name: (coefficient[name] * (high - low)) ** 2 for name, low, high in bounds}
    row = {r["knob"]: r for r in frame.iter_rows(named=True)}
    for name, w in weight.items():
        expected = w / sum(weight.values())  # 1/6, 2/3, 0, 1/6
        # deterministic (seeded design); at N = 1024 the estimates are within 1e-4 of the closed
        # form, so 0.01 leaves room for another SALib/SciPy version's scrambling
        assert abs(row[name]["S1"] - expected) < 0.01, (name, row[name])
        assert abs(row[name]["ST"] - expected) < 0.01, (name, row[name])
        assert row[name]["S1_conf"] < 0.1 and row[name]["ST_conf"] < 0.1
    # x3 has no effect: A and AB_3 give bit-identical outputs, so its indices are exactly 0
    assert row["x3"]["S1"] == row["x3"]["ST"] == 0.0
    assert frame["knob"][0] == "x2" and frame["knob"][-1] == "x3"
    assert frame["ST"].to_list() == sorted(frame["ST"].to_list(), reverse=True)
    # the same seed gives the same design and intervals
    again, _ = sobol_indices(bounds, evaluate, samples=1024, seed=3, measures=("y",))
    assert again.equals(frame)


def test_pure_interaction_shows_in_total_not_first_order():
    # y = x1·x2 on U(−1, 1)²: E[y | x_i] = 0, so S1 = 0 and ST = 1 for both
    frame, _ = sobol_indices([("x1", -1.0, 1.0), ("x2", -1.0, 1.0)],
                             lambda v: {"y": v["x1"] * v["x2"]}, samples=1024, seed=5,
                             measures=("y",))
    for r in frame.iter_rows(named=True):
        assert abs(r["S1"]) < 0.05 and abs(r["ST"] - 1.0) < 0.05, r


def test_constant_or_undefined_measure_has_no_indices():
    frame, info = sobol_indices([("x", 0.0, 1.0)], lambda v: {"flat": 2.0, "gap": None},
                                samples=4, seed=1, measures=("flat", "gap"))
    assert info["constant"] == ["flat"] and info["undefined"] == ["gap"]
    assert frame["ST"].null_count() == 2


def test_a_knob_that_cannot_move_a_measure_gets_zero_total_index():
    # capability deterrence (v1) for speed. Neither knob below can change whether the aggressor
    # is deterred: outcome_noise is battlefield luck in step 8, after the aggressor has decided,
    # and in capability mode deterrence ignores procedure (round_days). With common random
    # numbers, the runs A and AB_i of SALib's design that differ only in such a knob have the
    # same deterrence rate bit for bit, so S1 and ST are exactly 0, not just small.
    scenario = load_scenario(UNSC).with_values({"scenario.deterrence": "capability"})
    paths = ["scenario.outcome_noise", "alliances.UNSC.round_days", "aggressors.AGG.resolve",
             "commitment_scale"]
    totals, steps = [], []
    frame, info = sobol_sensitivity(scenario, seed=11, trials=2000, samples=8, knob_paths=paths,
                                    progress=steps.append, progress_total=totals.append)
    assert totals == [sobol_evaluations(8, 4)] == [info["evaluations"]] == [len(steps)]
    assert info["knobs"] == 4 and info["skipped"] == []
    assert tuple(frame.columns) == SOBOL_COLUMNS and frame.height == 4 * 3
    row = {(r["knob"], r["measure"]): r for r in frame.iter_rows(named=True)}
    for knob in ("scenario.outcome_noise", "alliances.UNSC.round_days"):
        r = row[(knob, "deterrence_success_rate")]
        assert r["ST"] == 0.0 and r["S1"] == 0.0, r
    assert row[("aggressors.AGG.resolve", "deterrence_success_rate")]["ST"] > 0.1
    current = dict(knobs(scenario))
    for (knob, _), r in row.items():  # the ranges are the one-at-a-time moves
        assert (r["low"], r["high"]) == _moves(knob, current[knob])


def test_cli_writes_the_parquet(tmp_path):
    out = tmp_path / "sobol.parquet"
    result = CliRunner().invoke(main, ["sensitivity", str(UNSC), "--method", "sobol",
                                       "--trials", "1000", "--samples", "4",
                                       "--knob", "aggressors.AGG.resolve",
                                       "--knob", "scenario.outcome_noise",
                                       "--out", str(out), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "16 engine evaluations = N·(k+2)" in result.output
    assert "aggressors.AGG.resolve" in result.output and "ST ± 95%" in result.output
    frame = pl.read_parquet(out)
    assert tuple(frame.columns) == SOBOL_COLUMNS and frame.height == 2 * 3


def test_cli_bad_input_is_a_user_error():
    runner = CliRunner()
    for args, message in [(["--knob", "alliances.NOPE.integration"],
                           "--knob alliances.NOPE.integration: not a knob of this scenario"),
                          (["--samples", "100"], "--samples 100: must be a power of 2"),
                          (["--samples", "0"], "--samples 0: must be a power of 2")]:
        result = runner.invoke(main, ["sensitivity", str(UNSC), "--method", "sobol", "-q",
                                      *args])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    result = runner.invoke(main, ["sensitivity", str(UNSC), "--samples", "8", "-q"])
    assert result.exit_code == 2 and "apply to --method sobol only" in result.output


def test_cli_oat_is_the_default(tmp_path):
    outputs = []
    for extra in ([], ["--method", "oat"]):
        out = tmp_path / f"oat{len(outputs)}.csv"
        result = CliRunner().invoke(main, ["sensitivity", str(UNSC), "--trials", "1000",
                                           "--out", str(out), "-q", *extra],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        outputs.append((result.output.replace(str(out), "OUT"), out.read_bytes()))
    assert outputs[0] == outputs[1]
    assert "one-at-a-time swings" in outputs[0][0]
