"""Scale-out (issue 4): shards merged, Dask-distributed and resumed runs equal a single run,
byte for byte (Parquet contents and files)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.simulate import set_threads
from engine.runs.folder import shard_range
from engine.runs.runner import run_scenario

NATO = Path(__file__).parent.parent / "configs" / "nato-baltic-2024.toml"
TABLES = ("cells.parquet", "summary.parquet")


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result


def assert_same_tables(a: Path, b: Path, names=TABLES):
    for name in names:
        fa, fb = pl.read_parquet(a / name), pl.read_parquet(b / name)
        assert fa.equals(fb, null_equal=True), name
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "run"
    run_scenario(NATO, trials=200_003, seed=9, out_dir=out, save_trials=50)
    set_threads(None)
    return out


def test_shard_ranges_partition_the_trials():
    for trials, k in [(10, 3), (7, 7), (5, 8), (1_000_003, 16)]:
        ranges = [shard_range(trials, i, k) for i in range(k)]
        assert ranges[0][0] == 0 and ranges[-1][1] == trials
        assert all(ranges[i][1] == ranges[i + 1][0] for i in range(k - 1))


def test_shards_merge_to_the_single_run(single, tmp_path):
    run_dir = tmp_path / "sharded"
    for i in (2, 0, 3, 1):  # any order, different threads and blocks
        result = invoke("run", NATO, "--trials", 200_003, "--seed", 9, "--out", run_dir,
                        "--shard", f"{i}/4", "--save-trials", 50, "--threads", 1 + i % 2,
                        "--block-size", 1000 + 77 * i, "-q")
        assert result.exit_code == 0, result.output
        assert "of 200,003" in result.output
    assert not (run_dir / "cells.parquet").exists()
    result = invoke("merge", run_dir, "-q")
    assert result.exit_code == 0, result.output
    assert_same_tables(single, run_dir, TABLES + ("trials.parquet",))
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["shards"] == 4 and manifest["trial_range"] == [0, 200_003]


def test_merge_refuses_partial_or_inconsistent_shards(tmp_path):
    run_dir = tmp_path / "partial"
    for i in (0, 2):
        assert invoke("run", NATO, "--trials", 40_000, "--seed", 1, "--out", run_dir,
                      "--shard", f"{i}/3", "-q").exit_code == 0
    result = invoke("merge", run_dir)
    assert result.exit_code == 2
    assert "missing or unfinished shards (1 of 3): shard-0001-of-0003" in result.output
    assert not (run_dir / "cells.parquet").exists()
    # a shard from another seed is named, and nothing is merged
    assert invoke("run", NATO, "--trials", 40_000, "--seed", 2, "--out", run_dir,
                  "--shard", "1/3", "-q").exit_code == 0
    result = invoke("merge", run_dir)
    assert result.exit_code == 2
    assert "shard-0001-of-0003: seed 2 differs" in result.output
    assert not (run_dir / "cells.parquet").exists()
    result = invoke("merge", tmp_path / "nothing")
    assert result.exit_code == 2 and "no shards/ folder" in result.output


def test_bad_shard_option(tmp_path):
    for text in ("4/4", "x", "1/0", "-1/2"):
        result = invoke("run", NATO, "--shard", text, "--out", tmp_path / "s")
        assert result.exit_code == 2, text
        assert "--shard" in result.output


def test_resume_after_kill_equals_uninterrupted(single, tmp_path):
    run_dir = tmp_path / "killed"
    env = {**os.environ, "CRISIS_CHECKPOINT_SECONDS": "0"}
    trials = 40_000_000
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "run", str(NATO), "--trials", str(trials), "--seed",
         "9", "--out", str(run_dir), "--save-trials", "50", "--threads", "1", "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    checkpoint = run_dir / "checkpoint.npz"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (run_dir / "manifest.json").exists()
    # an interrupted folder is not overwritten by accident
    refused = invoke("run", NATO, "--out", run_dir)
    assert refused.exit_code == 2 and "--resume" in refused.output
    result = invoke("run", "--resume", run_dir, "-q")
    assert result.exit_code == 0, result.output
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert 0 < manifest["resumed_at"] < trials
    assert not checkpoint.exists()
    uninterrupted = tmp_path / "whole"
    run_scenario(NATO, trials=trials, seed=9, out_dir=uninterrupted, save_trials=50)
    set_threads(None)
    assert_same_tables(uninterrupted, run_dir, TABLES + ("trials.parquet",))
    again = invoke("run", "--resume", run_dir)
    assert again.exit_code == 2 and "already complete" in again.output


def test_dask_local_cluster_equals_single_run(single, tmp_path):
    pytest.importorskip("dask.distributed")
    out = tmp_path / "dask"
    result = invoke("run", NATO, "--trials", 200_003, "--seed", 9, "--out", out,
                    "--save-trials", 50, "--executor", "dask", "--dask-workers", 2,
                    "--block-size", 3000, "-q")
    assert result.exit_code == 0, result.output
    assert "on Dask" in result.output
    assert_same_tables(single, out, TABLES + ("trials.parquet",))
