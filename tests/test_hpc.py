"""HPC job arrays: rendered SLURM/PBS scripts, status, resubmission, and a real SLURM cluster.

The end-to-end test needs a running SLURM (`.ci/slurm-setup.sh` starts one: slurmctld, slurmd
and munge from Debian's packages); it is skipped, with the reason, where `sinfo` finds none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.simulate import set_threads
from engine.runs.folder import RunFolder
from engine.runs.runner import run_scenario
from engine.scale.hpc import format_ranges

NATO = Path(__file__).parent.parent / "configs" / "nato-baltic-2024.toml"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_array_ranges():
    assert format_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert format_ranges([3]) == "3"
    assert format_ranges([]) == ""


def test_slurm_dry_run_writes_the_scripts(tmp_path):
    run_dir = tmp_path / "run"
    result = invoke("submit", NATO, "--shards", 8, "--trials", 10_000, "--seed", 3, "--out",
                    run_dir, "--partition", "short", "--time", "00:30:00", "--cpus-per-task", 4,
                    "--mem", "2G", "--dry-run")
    assert result.exit_code == 0, result.output
    script = (run_dir / "shards.sbatch").read_text()
    for line in ("#SBATCH --array=0-7", "#SBATCH --cpus-per-task=4", "#SBATCH --partition=short",
                 "#SBATCH --time=00:30:00", "#SBATCH --mem=2G",
                 f'#SBATCH --output="{run_dir.resolve()}/logs/shard-%a.out"',
                 'export NUMBA_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"',
                 'CACHE_ROOT="${SLURM_TMPDIR:-${TMPDIR:-/tmp}}"',
                 'export NUMBA_CACHE_DIR="$CACHE_ROOT/crisis-numba-$(id -u)"',
                 '--shard "$I/8"', "--trials 10000 --seed 3"):
        assert line in script, line
    assert script in result.output  # shown to the user
    merge = (run_dir / "merge.sbatch").read_text()
    assert f"merge {run_dir.resolve()}" in merge
    record = json.loads((run_dir / "submit.json").read_text())
    assert record["shards"] == 8 and record["submissions"][0]["dry_run"] is True
    assert (run_dir / "scenario.toml").read_bytes() == NATO.read_bytes()
    # the script is valid bash
    subprocess.run(["bash", "-n", str(run_dir / "shards.sbatch")], check=True)


def test_pbs_dry_run(tmp_path):
    run_dir = tmp_path / "pbs"
    result = invoke("submit", NATO, "--shards", 3, "--scheduler", "pbs", "--out", run_dir,
                    "--cpus-per-task", 2, "--mem", "4gb", "--time", "01:00:00", "--dry-run")
    assert result.exit_code == 0, result.output
    script = (run_dir / "shards.pbs").read_text()
    for line in ("#PBS -J 0-2", "#PBS -l select=1:ncpus=2:mem=4gb", "#PBS -l walltime=01:00:00",
                 'I="${PBS_ARRAY_INDEX:-0}"', 'export NUMBA_NUM_THREADS="${NCPUS:-1}"'):
        assert line in script, line
    subprocess.run(["bash", "-n", str(run_dir / "shards.pbs")], check=True)


def test_submit_without_scheduler_or_shards_is_a_clear_error(tmp_path, monkeypatch):
    result = invoke("submit", NATO, "--out", tmp_path / "x", "--dry-run")
    assert result.exit_code == 2 and "--shards" in result.output
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch on the PATH
    result = invoke("submit", NATO, "--shards", 2, "--out", tmp_path / "y")
    assert result.exit_code == 2 and "sbatch not found" in result.output


def test_status_and_resubmit_only_what_is_not_done(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    assert invoke("submit", NATO, "--shards", 4, "--trials", 20_000, "--out", run_dir,
                  "--dry-run").exit_code == 0
    run_scenario(run_dir / "scenario.toml", trials=20_000, out_dir=run_dir, shard=(0, 4))
    run_scenario(run_dir / "scenario.toml", trials=20_000, out_dir=run_dir, shard=(3, 4))
    set_threads(None)
    (run_dir / "status").mkdir(exist_ok=True)
    (run_dir / "status" / "shard-1.failed").write_text("1\n")
    result = invoke("status", run_dir)
    assert result.exit_code == 0, result.output
    assert "2 done, 1 failed, 1 missing" in result.output
    assert "failed: 1" in result.output and "missing: 2" in result.output
    doc = json.loads(invoke("status", run_dir, "--format", "json").output)
    assert doc["shards"] == {"0": "done", "1": "failed", "2": "missing", "3": "done"}
    result = invoke("submit", "--resume", run_dir, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "#SBATCH --array=1-2" in (run_dir / "shards.sbatch").read_text()
    assert len(json.loads((run_dir / "submit.json").read_text())["submissions"]) == 2


def _slurm_up() -> str | None:
    if shutil.which("sinfo") is None:
        return "no SLURM client here (.ci/slurm-setup.sh installs and starts one)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0 or not any(s.strip() in ("idle", "mixed", "allocated")
                                       for s in proc.stdout.splitlines()):
        return f"SLURM not running here ({proc.stdout.strip() or proc.stderr.strip()})"
    return None


def _wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(1)
    return False


@pytest.mark.slow
def test_real_slurm_array_merges_to_the_single_run(tmp_path):
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)
    single = tmp_path / "single"
    run_scenario(NATO, trials=400_000, seed=5, out_dir=single, save_trials=20)
    set_threads(None)
    run_dir = (tmp_path / "slurm").resolve()
    result = invoke("submit", NATO, "--shards", 4, "--trials", 400_000, "--seed", 5,
                    "--save-trials", 20, "--out", run_dir)
    assert result.exit_code == 0, result.output
    assert "submitted 4 shards as slurm job" in result.output
    assert _wait_for(run_dir / "manifest.json", 240), (
        subprocess.run(["squeue"], capture_output=True, text=True).stdout,
        sorted(p.name for p in (run_dir / "logs").iterdir()))
    for name in ("cells.parquet", "summary.parquet", "trials.parquet"):
        assert (single / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert "4 done" in invoke("status", run_dir).output
    # a lost shard is resubmitted alone, and the merge runs again after it
    shutil.rmtree(RunFolder(run_dir).shard(2, 4).path)
    (run_dir / "manifest.json").unlink()
    (run_dir / "cells.parquet").unlink()
    result = invoke("submit", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert "submitted 1 shards" in result.output
    assert _wait_for(run_dir / "manifest.json", 240)
    assert (single / "cells.parquet").read_bytes() == (run_dir / "cells.parquet").read_bytes()
