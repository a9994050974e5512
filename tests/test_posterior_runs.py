"""Runs with parameters from a posterior (issue 14, item 2): ``crisis run --posterior``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from engine.api import run
from engine.cli.main import main
from engine.errors import UserError
from engine.model.compile import compile_scenario
from engine.model.config import scenario_from_dict
from engine.model.parameters import apply_values
from engine.runs.posterior import blocks, draw_of_block, read_posterior, trials_per_draw
from engine.runs.runner import run_in_memory
from tests.oracle_scenarios import make_scenario

TRIALS = 40_000


def _scenario():
    states = {"BIG": {"capability": 0.2, "commitment": 0.6, "stability": 0.9},
              "MID": {"capability": 0.03, "commitment": 0.5, "stability": 0.8},
              "SMALL": {"capability": 0.002, "commitment": 0.9},
              "LONE": {"capability": 0.004, "commitment": 0.5},
              "RUS": {"capability": 0.06, "commitment": 0.0}}
    aggressors = [{"state": "RUS", "resolve": 1.5, "targets": {"SMALL": 2.0, "LONE": 1.0},
                   "attack_mix": {"conventional": 1.0}}]
    return scenario_from_dict(make_scenario(states, None, aggressors, name="posterior",
                                            seed=7, trials=TRIALS))


def _posterior(path: Path, **columns) -> Path:
    frame = pl.DataFrame({**columns, "walker": np.zeros(len(next(iter(columns.values()))),
                                                        dtype=np.int64)})
    frame.write_parquet(path)
    return path


def test_one_draw_is_a_plain_run_at_those_values(tmp_path):
    """A posterior of one draw: every block runs the same scenario, so the tallies are those of
    one plain run of the scenario at the draw's values, bit for bit."""
    s = _scenario()
    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.7],
                      **{"aggressors.RUS.resolve": [2.0]})
    with_posterior = run(s, posterior=post)
    plain = run_in_memory(apply_values(s, {"commitment_scale": 0.7,
                                           "aggressors.RUS.resolve": 2.0}))
    assert with_posterior.tallies.equals(plain.tallies)
    point = [c for c in plain.summary.columns if not c.endswith(("_low", "_high"))]
    assert with_posterior.summary.select(point).equals(plain.summary.select(point))
    m = with_posterior.manifest["posterior"]
    assert m["draws"] == 1 and m["parameters"] == ["commitment_scale", "aggressors.RUS.resolve"]
    assert m["blocks"] == TRIALS // trials_per_draw(TRIALS)
    assert m["sha256"] == read_posterior(post).sha256


def test_same_tables_whatever_threads_and_block_size(tmp_path):
    s = _scenario()
    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.4, 0.8, 1.2, 1.6])
    a = run(s, posterior=post, threads=1, block_size=512)
    b = run(s, posterior=post, threads=2, block_size=4096)
    assert a.tallies.equals(b.tallies)
    assert a.summary.equals(b.summary) and a.cells.equals(b.cells)


def test_blocks_take_their_draws_and_sum_exactly(tmp_path):
    """An independent reconstruction: each block simulated on its own at its draw's values and
    summed gives the run's tallies; the draws are used about equally (40 blocks over 2 draws:
    Binomial(40, ½), sd 3.2; ±15 blocks is 4.7 sd: false failure ≈ 3e-6)."""
    from engine.core.simulate import Tallies, simulate

    s = _scenario()
    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.5, 1.5])
    result = run(s, posterior=post)
    c0 = compile_scenario(s)
    total = Tallies.zeros(c0.n_cells, c0.n_alliances, c0.n_memberships)
    used = [0, 0]
    for block, lo, hi in blocks(0, TRIALS, TRIALS):
        d = draw_of_block(7, block, 2)
        used[d] += 1
        part, _ = simulate(compile_scenario(apply_values(s, {"commitment_scale": [0.5, 1.5][d]})),
                           7, lo, hi)
        total.add(part)
    assert result.tallies.equals(total)
    assert abs(used[0] - 20) <= 15 and used[0] + used[1] == 40


def test_intervals_hold_parameter_uncertainty(tmp_path):
    """Draws spread over a wide range of commitments: the deterrence interval must be much
    wider than the Monte Carlo interval of a plain run, and contain the point estimate."""
    s = _scenario()
    post = _posterior(tmp_path / "p.parquet",
                      commitment_scale=list(np.linspace(0.3, 1.7, 50)))
    wide = run(s, posterior=post).summary.row(0, named=True)
    plain = run_in_memory(s).summary.row(0, named=True)
    key = "deterrence_success_rate"
    assert wide[f"{key}_low"] <= wide[key] <= wide[f"{key}_high"]
    assert (wide[f"{key}_high"] - wide[f"{key}_low"]) > 4 * (plain[f"{key}_high"]
                                                            - plain[f"{key}_low"])


def test_cli_run_with_posterior_and_the_files_it_writes(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(_scenario().to_toml(), encoding="utf-8")
    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.6, 0.9])
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", str(config), "--posterior", str(post), "--out",
                                    str(out)])
    assert res.exit_code == 0, res.output
    assert "intervals: parameter and Monte Carlo uncertainty together" in res.output
    options = json.loads((out / "run.json").read_text())
    assert options["posterior_sha256"] == read_posterior(post).sha256
    assert json.loads((out / "manifest.json").read_text())["posterior"]["draws"] == 2
    # a plain run's run.json is what it always was: no posterior key
    plain = tmp_path / "plain"
    assert CliRunner().invoke(main, ["run", str(config), "--out", str(plain), "-q"]).exit_code == 0
    assert "posterior_sha256" not in json.loads((plain / "run.json").read_text())
    # an interrupted posterior run is not resumed as a plain one
    (out / "manifest.json").unlink()
    res = CliRunner().invoke(main, ["run", "--resume", str(out)])
    assert res.exit_code == 2 and "cannot be resumed" in res.output


@pytest.mark.parametrize("case,message", [
    ("nan", "non-finite"), ("text", "not numeric"), ("none", "no parameter column"),
    ("unknown", "unknown parameter"), ("link", "symbolic link"), ("garbage", "Parquet"),
])
def test_bad_posteriors_are_clear_errors(tmp_path, case, message):
    config = tmp_path / "s.toml"
    config.write_text(_scenario().to_toml(), encoding="utf-8")
    path = tmp_path / "p.parquet"
    if case == "nan":
        _posterior(path, commitment_scale=[1.0, float("nan")])
    elif case == "text":
        pl.DataFrame({"commitment_scale": ["a"]}).write_parquet(path)
    elif case == "none":
        pl.DataFrame({"walker": [0], "step": [1]}).write_parquet(path)
    elif case == "unknown":
        _posterior(path, commitment_scael=[1.0])
    elif case == "link":
        _posterior(tmp_path / "real.parquet", commitment_scale=[1.0])
        os.symlink(tmp_path / "real.parquet", path)
    else:
        path.write_bytes(b"not parquet")
    res = CliRunner().invoke(main, ["run", str(config), "--posterior", str(path), "--out",
                                    str(tmp_path / "o"), "-q"])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_not_yet_with_shards_or_saved_trials(tmp_path):
    post = _posterior(tmp_path / "p.parquet", commitment_scale=[1.0])
    with pytest.raises(UserError, match="shards"):
        run(_scenario(), posterior=post, shard=(0, 2), out=tmp_path / "r")
    with pytest.raises(UserError, match="save-trials"):
        run(_scenario(), posterior=post, save_trials=10)


def test_report_says_the_intervals_hold_parameter_uncertainty(tmp_path):
    from engine.present.report import write_report

    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.6, 0.9])
    run(_scenario(), posterior=post, out=tmp_path / "run")
    page = write_report(tmp_path / "run").read_text(encoding="utf-8")
    assert "Parameters from a posterior" in page
    assert "parameter and Monte Carlo uncertainty together" in page
    plain = run(_scenario(), out=tmp_path / "plain")
    assert plain.manifest.get("posterior") is None
    assert "Parameters from a posterior" not in write_report(tmp_path / "plain").read_text(
        encoding="utf-8")


def test_sweep_points_run_over_the_posterior(tmp_path):
    from engine.experiments.sweep import run_sweep

    s = _scenario()
    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.5, 1.0, 1.5])
    frame, names = run_sweep(s, [("aggressors.RUS.resolve", [1.0, 3.0])], seed=7,
                             trials=TRIALS, posterior=post)
    assert names == ["aggressors.RUS.resolve"] and frame.height == 2
    for row in frame.iter_rows(named=True):
        direct = run(apply_values(s, {"aggressors.RUS.resolve": row["aggressors.RUS.resolve"]}),
                     posterior=post).summary.row(0, named=True)
        for key in ("deterrence_success_rate", "deterrence_success_rate_low",
                    "deterrence_success_rate_high"):
            assert row[key] == direct[key]
    with pytest.raises(UserError, match="also a parameter of the posterior"):
        run_sweep(s, [("commitment_scale", [1.0])], seed=7, trials=TRIALS, posterior=post)


def test_compare_says_what_its_tests_hold(tmp_path):
    from engine.experiments.compare import compare_runs_with_notes

    post = _posterior(tmp_path / "p.parquet", commitment_scale=[0.6, 0.9])
    run(_scenario(), posterior=post, out=tmp_path / "a")
    run(_scenario(), out=tmp_path / "b")
    _, notes = compare_runs_with_notes(tmp_path / "a", tmp_path / "b")
    assert any("A ran over a posterior" in n for n in notes)

