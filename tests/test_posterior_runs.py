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
    # the folder keeps the posterior it ran over and the blocks' own summaries
    assert (out / "posterior.parquet").read_bytes() == post.read_bytes()
    assert pl.read_parquet(out / "blocks.parquet").get_column("block").n_unique() == 40


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


ODD_TRIALS = 31_337  # 32 blocks: 31 of 1,000 trials (the minimum) and a last one of 337


def _files(folder: Path) -> dict[str, bytes]:
    names = ("summary.parquet", "cells.parquet", "members.parquet", "blocks.parquet",
             "trials.parquet")
    return {n: (folder / n).read_bytes() for n in names}


def _tallies(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "tallies.npz") as z:
        return {k: z[k] for k in z.files}


def _same_run(a: Path, b: Path) -> None:
    assert _files(a) == _files(b)
    ta, tb = _tallies(a), _tallies(b)
    assert ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """A whole posterior run (4 draws, a trial count that no shard split aligns with blocks,
    saved trials that span two blocks) that shards, resume and Dask must reproduce."""
    tmp = tmp_path_factory.mktemp("whole")
    post = _posterior(tmp / "p.parquet", commitment_scale=[0.4, 0.8, 1.2, 1.6],
                      **{"aggressors.RUS.resolve": [1.0, 2.5, 1.5, 3.0]})
    run(_scenario(), posterior=post, trials=ODD_TRIALS, save_trials=1500, out=tmp / "run")
    return tmp / "run", post


@pytest.mark.parametrize("count", [7, 40])
def test_shards_merge_to_the_whole_run_byte_for_byte(whole, tmp_path, count):
    """7 shards cut blocks at their edges; 40 shards are smaller than a block (several shards
    per block, most owning none): either way merge gives the whole run's files exactly."""
    from engine.api import merge

    ref, post = whole
    for i in range(count):
        run(_scenario(), posterior=post, trials=ODD_TRIALS, save_trials=1500,
            out=tmp_path / "sh", shard=(i, count))
    merged = merge(tmp_path / "sh")
    _same_run(ref, tmp_path / "sh")
    assert merged.manifest["posterior"]["blocks"] == -(-ODD_TRIALS // 1000)
    assert (tmp_path / "sh" / "posterior.parquet").read_bytes() == post.read_bytes()


def test_merge_refuses_damaged_blocks_and_another_posterior(whole, tmp_path):
    from engine.api import merge

    ref, post = whole
    for i in range(3):
        run(_scenario(), posterior=post, trials=ODD_TRIALS, out=tmp_path / "sh", shard=(i, 3))
    blocks = tmp_path / "sh" / "shards" / "shard-0001-of-0003" / "blocks.parquet"
    good = blocks.read_bytes()
    frame = pl.read_parquet(blocks)
    frame.with_columns(pl.col("deterred") + 1).write_parquet(blocks)
    with pytest.raises(UserError, match="blocks.parquet"):
        merge(tmp_path / "sh")
    blocks.write_bytes(good)
    other = _posterior(tmp_path / "other.parquet", commitment_scale=[0.1, 0.2, 0.3, 0.4])
    copy = tmp_path / "sh" / "posterior.parquet"
    copy.write_bytes(other.read_bytes())
    with pytest.raises(UserError, match="posterior.parquet.*not the posterior"):
        merge(tmp_path / "sh")
    copy.write_bytes(post.read_bytes())
    merge(tmp_path / "sh")  # restored: merges
    run(_scenario(), trials=ODD_TRIALS, out=tmp_path / "sh", shard=(2, 3), force=True)
    with pytest.raises(UserError, match="another posterior"):
        merge(tmp_path / "sh")


def test_resume_from_a_checkpoint_between_blocks(whole, tmp_path, monkeypatch):
    """Stopped after its third block (a checkpoint after each), then resumed: the same files
    as the uninterrupted run; a damaged checkpoint-blocks.parquet is refused by name."""
    from engine.api import resume

    ref, post = whole

    class Stop(Exception):
        pass

    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 4:
            raise Stop

    monkeypatch.setenv("CRISIS_CHECKPOINT_SECONDS", "0")
    out = tmp_path / "run"
    with pytest.raises(Stop):
        run(_scenario(), posterior=post, trials=ODD_TRIALS, save_trials=1500, out=out,
            progress=progress, progress_total=lambda n: None)
    assert (out / "checkpoint-blocks.parquet").is_file() and not (out / "manifest.json").exists()
    assert pl.read_parquet(out / "checkpoint-blocks.parquet").get_column("block").unique(
        ).sort().to_list() == [0, 1, 2]
    saved = (out / "checkpoint-blocks.parquet").read_bytes()
    pl.read_parquet(out / "checkpoint-blocks.parquet").with_columns(
        pl.col("trials") * 2).write_parquet(out / "checkpoint-blocks.parquet")
    with pytest.raises(UserError, match="checkpoint-blocks.parquet"):
        resume(out)
    (out / "checkpoint-blocks.parquet").write_bytes(saved)
    copy = out / "posterior.parquet"
    copy.unlink()
    os.symlink(post, copy)  # the same bytes, through a link: refused, never followed
    with pytest.raises(UserError, match="symbolic link"):
        resume(out)
    copy.unlink()
    copy.write_bytes(post.read_bytes()[:-1] + b"\0")
    with pytest.raises(UserError, match="not the posterior the run was started with"):
        resume(out)
    copy.write_bytes(post.read_bytes())
    result = resume(out)
    assert result.manifest["resumed_at"] == 3000
    _same_run(ref, out)
    assert not (out / "checkpoint-blocks.parquet").exists()


def test_dask_gives_the_whole_run(whole, tmp_path):
    pytest.importorskip("dask.distributed")
    ref, post = whole
    run(_scenario(), posterior=post, trials=ODD_TRIALS, save_trials=1500, out=tmp_path / "d",
        executor="dask", dask_workers=2, threads=1)
    _same_run(ref, tmp_path / "d")


def test_blocks_give_the_intervals(whole):
    """An independent reading of blocks.parquet: each summary interval is the 2.5–97.5%
    quantile (linear) of that row's measure over the blocks, computed here with numpy; every
    block's draw is the keyed draw of design (draw_of_block)."""
    ref, post = whole
    blocks_frame = pl.read_parquet(ref / "blocks.parquet")
    summary = pl.read_parquet(ref / "summary.parquet")
    n_draws = read_posterior(post).n_draws
    for block, draw in blocks_frame.select("block", "draw").unique().rows():
        assert draw == draw_of_block(7, block, n_draws)
    checked = 0
    for row in summary.iter_rows(named=True):
        sub = blocks_frame.filter((pl.col("scope") == row["scope"]) & (pl.col("key") == row["key"]))
        for measure in ("deterrence_success_rate", "attack_rate", "honor_rate"):
            values = sub.get_column(measure).drop_nulls().to_numpy()
            if len(values) == 0:
                continue
            assert row[f"{measure}_low"] == pytest.approx(np.quantile(values, 0.025), abs=1e-12)
            assert row[f"{measure}_high"] == pytest.approx(np.quantile(values, 0.975), abs=1e-12)
            checked += 1
    assert checked >= 10


def test_cli_shards_and_merge_with_a_posterior(whole, tmp_path):
    ref, post = whole
    config = tmp_path / "s.toml"
    config.write_text(_scenario().to_toml(), encoding="utf-8")
    for i in range(2):
        res = CliRunner().invoke(main, ["run", str(config), "--posterior", str(post), "--trials",
                                        str(ODD_TRIALS), "--save-trials", "1500", "--shard",
                                        f"{i}/2", "--out", str(tmp_path / "sh"), "-q"])
        assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["merge", str(tmp_path / "sh")])
    assert res.exit_code == 0, res.output
    _same_run(ref, tmp_path / "sh")


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
    assert any("A ran over a posterior" in n and "Monte Carlo error only" in n for n in notes)
    # both over posteriors but with different block counts: not paired, said so
    run(_scenario(), posterior=post, trials=TRIALS // 2, out=tmp_path / "c")
    frame, notes = compare_runs_with_notes(tmp_path / "a", tmp_path / "c")
    assert any("cannot be paired" in n for n in notes)
    assert "posterior_paired" not in frame.get_column("test").to_list()


def test_compare_pairs_posterior_runs_block_by_block(tmp_path):
    """Two runs over one posterior and seed, B with a much more resolute aggressor: each
    summary row's interval is the 2.5–97.5% quantile of the blocks' paired differences,
    recomputed here from the two blocks.parquet files with numpy; deterrence falls in every
    block, so its interval lies below 0 and is flagged.  A run compared with itself gives
    differences of exactly 0 everywhere and flags nothing."""
    from engine.experiments.compare import compare_runs

    s = _scenario()
    post = _posterior(tmp_path / "p.parquet", commitment_scale=list(np.linspace(0.4, 1.6, 9)))
    run(s, posterior=post, out=tmp_path / "a")
    run(apply_values(s, {"aggressors.RUS.resolve": 6.0}), posterior=post, out=tmp_path / "b")
    frame = compare_runs(tmp_path / "a", tmp_path / "b")
    summary_rows = frame.filter(pl.col("scope") != "member")
    assert set(summary_rows.get_column("test").unique()) <= {"posterior_paired", "none"}
    row = frame.filter((pl.col("scope") == "overall")
                       & (pl.col("measure") == "deterrence_success_rate")).row(0, named=True)
    ba = pl.read_parquet(tmp_path / "a" / "blocks.parquet").filter(pl.col("scope") == "overall")
    bb = pl.read_parquet(tmp_path / "b" / "blocks.parquet").filter(pl.col("scope") == "overall")
    d = (bb.get_column("deterrence_success_rate").to_numpy()
         - ba.get_column("deterrence_success_rate").to_numpy())
    assert row["test"] == "posterior_paired" and row["p_value"] is None
    assert row["diff_low"] == pytest.approx(np.quantile(d, 0.025), abs=1e-12)
    assert row["diff_high"] == pytest.approx(np.quantile(d, 0.975), abs=1e-12)
    assert row["statistic"] == pytest.approx(np.mean(d > 0) + 0.5 * np.mean(d == 0))
    assert row["diff_high"] < 0 and row["significant"]
    same = compare_runs(tmp_path / "a", tmp_path / "a").filter(
        pl.col("test") == "posterior_paired")
    assert same.height > 20
    assert (same.get_column("diff_low") == 0).all() and (same.get_column("diff_high") == 0).all()
    assert not same.get_column("significant").any()
    res = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "P(B>A)=" in res.output and "paired block by block" in res.output


def test_submit_with_a_posterior_dry_run_and_shard_states(whole, tmp_path):
    """`crisis submit --posterior`: the run folder keeps the posterior (its SHA-256 in the plan),
    every shard runs over that copy, and a shard counts as done only when it ran over it."""
    import subprocess

    from engine.scale.hpc import job_shard_state, load_record

    ref, post = whole
    config = tmp_path / "s.toml"
    config.write_text(_scenario().to_toml(), encoding="utf-8")
    run_dir = (tmp_path / "sub").resolve()
    res = CliRunner().invoke(main, ["submit", str(config), "--shards", "3", "--trials",
                                    str(ODD_TRIALS), "--save-trials", "1500", "--posterior",
                                    str(post), "--out", str(run_dir), "--dry-run"])
    assert res.exit_code == 0, res.output
    sha = read_posterior(post).sha256
    assert load_record(run_dir)["posterior_sha256"] == sha
    assert (run_dir / "posterior.parquet").read_bytes() == post.read_bytes()
    script = (run_dir / "shards.sbatch").read_text()
    assert f"--posterior {run_dir / 'posterior.parquet'}" in script and sha in script
    subprocess.run(["bash", "-n", str(run_dir / "shards.sbatch")], check=True)
    # what the job's shard command does, run here: then the shard is done for this plan only
    args = ["shard-state", str(run_dir), "1", "3", str(ODD_TRIALS), "7", "4096", "1500"]
    digest = load_record(run_dir)["scenario_hash"]
    assert job_shard_state([*args, digest, sha]) == "run"
    for i in range(3):
        res = CliRunner().invoke(main, [
            "run", str(run_dir / "scenario.toml"), "--trials", str(ODD_TRIALS), "--seed", "7",
            "--save-trials", "1500", "--shard", f"{i}/3", "--posterior",
            str(run_dir / "posterior.parquet"), "--out", str(run_dir), "--force", "--quiet"])
        assert res.exit_code == 0, res.output
    assert job_shard_state([*args, digest, sha]) == "done"
    assert job_shard_state([*args, digest]) == "superseded"  # the plan has a posterior
    assert CliRunner().invoke(main, ["merge", str(run_dir)]).exit_code == 0
    _same_run(ref, run_dir)
    res = CliRunner().invoke(main, ["submit", "--resume", str(run_dir), "--posterior",
                                    str(post)])
    assert res.exit_code == 2 and "--posterior" in res.output
