"""Hardening: absurd requests are refused up front, a folder has one writer at a time, write
failures leave nothing half-written, and a run killed at any moment leaves either no result or
a complete one (which `--resume` turns into the uninterrupted result)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.simulate import set_threads
from engine.errors import UserError
from engine.model.config import scenario_from_dict
from engine.model.limits import check_request, check_scenario_size
from engine.runs.folder import RunFolder
from engine.runs.runner import run_scenario

NATO = Path(__file__).parent.parent / "configs" / "nato-baltic-2024.toml"
TABLES = ("cells.parquet", "summary.parquet", "trials.parquet")


def invoke(*args, env=None):
    return CliRunner(env=env).invoke(main, [str(a) for a in args], catch_exceptions=False)


def small_world(**changes):
    data = {
        "scenario": {"name": "w"},
        "states": [{"id": f"S{i}", "capability": 1.0, "commitment": 0.5} for i in range(3)],
        "alliances": [{"id": "A", "members": ["S0", "S1"]}],
        "aggressors": [{"state": "S2", "targets": {"S0": 1.0}, "attack_mix": {"c": 1.0}}],
        "attack_types": {"c": {}},
    }
    for key, value in changes.items():
        data[key] = value
    return data


def test_absurd_requests_are_refused_with_the_reason(tmp_path):
    result = invoke("run", NATO, "--trials", 10**15, "--out", tmp_path / "a")
    assert result.exit_code == 2 and "--shard" in result.output and "days" in result.output
    assert not (tmp_path / "a" / "manifest.json").exists()
    result = invoke("run", NATO, "--trials", 1000, "--save-trials", 10**8, "--out", tmp_path / "b")
    assert result.exit_code == 2 and "save-trials" in result.output
    result = invoke("run", NATO, "--trials", 1000, "--out", tmp_path / "c",
                    env={"CRISIS_MEMORY_LIMIT_GB": "0.0001"})
    assert result.exit_code == 2 and "CRISIS_MEMORY_LIMIT_GB" in result.output
    assert "B of memory" in result.output or "GiB" in result.output  # MiB or GiB
    # a million states would need terabytes of state × state matrices: refused before any
    big = scenario_from_dict(small_world(states=[
        {"id": f"S{i}", "capability": 1.0, "commitment": 0.5} for i in range(5001)]))
    with pytest.raises(UserError, match="5,001 states"):
        check_scenario_size(big)
    # delays so long that the exact fixed-point delay sums could overflow int64
    slow = scenario_from_dict(small_world(attack_types={"c": {"attribution_days": 1e9}}))
    with pytest.raises(UserError, match="overflow"):
        check_request(slow, trials_in_process=10**6, total_trials=10**6, threads=1,
                      save_trials=0)
    check_request(slow, trials_in_process=1000, total_trials=1000, threads=1, save_trials=0)


def test_one_writer_per_folder(tmp_path):
    out = tmp_path / "run"
    with RunFolder(out).lock():
        result = invoke("run", NATO, "--trials", 1000, "--out", out)
        assert result.exit_code == 2 and "another run is writing there" in result.output
        assert f"pid {os.getpid()}" in result.output
    result = invoke("run", NATO, "--trials", 1000, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


@pytest.mark.skipif(sys.platform != "linux", reason="uses ulimit -f (Linux)")
def test_disk_full_gives_a_clear_error_and_no_partial_files(tmp_path):
    # RLIMIT_FSIZE makes every write past 30 KiB fail with EFBIG, like a full disk (SIGXFSZ
    # ignored so the write returns the error instead of killing the process)
    out = tmp_path / "full"
    cmd = (f"trap '' XFSZ; ulimit -f 30; exec {sys.executable} -m engine run {NATO} "
           f"--trials 40000 --save-trials 30000 --out {out} -q")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cannot write" in proc.stderr and "Traceback" not in proc.stderr
    assert not (out / "manifest.json").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_run_killed_at_random_moments_leaves_no_or_a_complete_result(tmp_path):
    trials = 24_000_000
    whole = tmp_path / "whole"
    run_scenario(NATO, trials=trials, seed=8, out_dir=whole, save_trials=30)
    set_threads(None)
    env = {**os.environ, "CRISIS_CHECKPOINT_SECONDS": "0"}
    rng = random.Random(20241126)  # fixed: the kill moments are reproducible
    outcomes = []
    for attempt in range(5):
        out = tmp_path / f"killed-{attempt}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "run", str(NATO), "--trials", str(trials),
             "--seed", "8", "--threads", "1", "--save-trials", "30", "--out", str(out), "-q"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.2, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "manifest.json").exists():  # finished before the kill: complete and right
            outcomes.append("complete")
        else:  # no result: nothing claims to be complete, and --resume finishes the run
            outcomes.append("resumed")
            refused = invoke("summarize", out)
            assert refused.exit_code == 2 and "not a complete run" in refused.output
            if not (out / "run.json").exists():  # killed before the run began: start over
                assert invoke("run", NATO, "--trials", trials, "--seed", 8, "--save-trials", 30,
                              "--out", out, "--force", "-q").exit_code == 0
            else:
                result = invoke("run", "--resume", out, "-q")
                assert result.exit_code == 0, result.output
        for name in TABLES:
            assert (out / name).read_bytes() == (whole / name).read_bytes(), (attempt, name)
        assert json.loads((out / "manifest.json").read_text())["trials"] == trials
    assert "resumed" in outcomes, outcomes


def test_exit_codes_are_documented():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "`0` success, `2` user error" in readme and "`1` internal error" in readme
