"""HPC job arrays: rendered SLURM/PBS scripts, status, resubmission, and a real SLURM cluster.

The end-to-end tests need a running SLURM (`.ci/slurm-setup.sh` starts one: slurmctld, slurmd
and munge from Debian's packages); they are skipped, with the reason, where `sinfo` finds none.
"""

from __future__ import annotations

import json
import re
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
from engine.scale.hpc import format_ranges, load_record

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
                 'NUMBA_CACHE_DIR="$(mktemp -d "${SLURM_TMPDIR:-${TMPDIR:-/tmp}}/crisis-numba.'
                 'XXXXXXXXXX")" || failed 1',
                 "trap 'rm -rf -- \"$NUMBA_CACHE_DIR\"' EXIT",
                 f'-m engine.scale.hpc cache-copy {run_dir.resolve()} "$NUMBA_CACHE_DIR" || echo',
                 "numba cache: $WRITTEN files written by this shard",
                 '--shard "$I/8"', "--trials 10000 --seed 3"):
        assert line in script, line
    assert script in result.output  # shown to the user
    merge = (run_dir / "merge.sbatch").read_text()
    assert f"merge {run_dir.resolve()}" in merge
    # the compile job: one CPU, the shards' partition, time and memory, its own fresh cache
    compile_job = (run_dir / "compile.sbatch").read_text()
    for line in ("#SBATCH --job-name=crisis-baltic-crisis-2024-compile",
                 "#SBATCH --cpus-per-task=1", "#SBATCH --partition=short",
                 "#SBATCH --time=00:30:00", "#SBATCH --mem=2G",
                 f'#SBATCH --output="{run_dir.resolve()}/logs/compile.out"',
                 "export NUMBA_NUM_THREADS=1",
                 'NUMBA_CACHE_DIR="$(mktemp -d "${SLURM_TMPDIR:-${TMPDIR:-/tmp}}/crisis-numba.'
                 'XXXXXXXXXX")" || exit 1', f"-m engine.scale.hpc warm {run_dir.resolve()}\n"):
        assert line in compile_job, line
    assert "compile.sbatch" in result.output
    record = json.loads((run_dir / "submit.json").read_text())
    assert record["shards"] == 8 and record["submissions"][0]["dry_run"] is True
    assert record["submissions"][0]["compile_script"] == "compile.sbatch"
    assert (run_dir / "scenario.toml").read_bytes() == NATO.read_bytes()
    # the scripts are valid bash
    for name in ("shards.sbatch", "compile.sbatch", "merge.sbatch"):
        subprocess.run(["bash", "-n", str(run_dir / name)], check=True)


def test_pbs_dry_run(tmp_path):
    run_dir = tmp_path / "pbs"
    result = invoke("submit", NATO, "--shards", 3, "--scheduler", "pbs", "--out", run_dir,
                    "--cpus-per-task", 2, "--mem", "4gb", "--time", "01:00:00", "--dry-run")
    assert result.exit_code == 0, result.output
    script = (run_dir / "shards.pbs").read_text()
    for line in ("#PBS -J 0-2", "#PBS -l select=1:ncpus=2:mem=4gb", "#PBS -l walltime=01:00:00",
                 'I="${PBS_ARRAY_INDEX:-0}"', 'export NUMBA_NUM_THREADS="${NCPUS:-1}"',
                 'NUMBA_CACHE_DIR="$(mktemp -d "${TMPDIR:-/tmp}/crisis-numba.XXXXXXXXXX")"'):
        assert line in script, line
    compile_job = (run_dir / "compile.pbs").read_text()
    for line in ("#PBS -N crisis-compile", "#PBS -l select=1:ncpus=1:mem=4gb",
                 "#PBS -l walltime=01:00:00", f"#PBS -o {run_dir.resolve()}/logs/compile.out",
                 f"-m engine.scale.hpc warm {run_dir.resolve()}\n"):
        assert line in compile_job, line
    for name in ("shards.pbs", "compile.pbs"):
        subprocess.run(["bash", "-n", str(run_dir / name)], check=True)


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
    (run_dir / "compile.sbatch").unlink()
    result = invoke("submit", "--resume", run_dir, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "#SBATCH --array=1-2" in (run_dir / "shards.sbatch").read_text()
    submissions = json.loads((run_dir / "submit.json").read_text())["submissions"]
    assert len(submissions) == 2
    # no compiled kernels in the run folder yet: the resubmission compiles first again
    assert submissions[1]["compile_script"] == "compile.sbatch"
    assert (run_dir / "compile.sbatch").is_file()


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
    assert _wait_for(run_dir / "manifest.json", 420), (
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
    assert load_record(run_dir)["submissions"][-1]["compile_job"] is None  # kernels reused
    assert (single / "cells.parquet").read_bytes() == (run_dir / "cells.parquet").read_bytes()


def _numba_cache_log(text: str) -> tuple[list[str], list[str]]:
    """What Numba itself says (NUMBA_DEBUG_CACHE=1) it loaded from and saved to its cache."""
    loaded = re.findall(r"^\[cache\] data loaded from '([^']+)'$", text, re.M)
    saved = re.findall(r"^\[cache\] (?:data|index) saved to '([^']+)'$", text, re.M)
    return loaded, saved


@pytest.mark.slow
def test_real_slurm_shards_start_without_compiling(tmp_path, monkeypatch):
    """One compile job compiles; the three shards after it compile nothing.  Numba's own cache
    log (sbatch passes NUMBA_DEBUG_CACHE=1 on to the jobs) shows the compile job saving kernels
    and each shard only loading them, from its private copy; the job script's count of cache
    files written during the run agrees (0), and so does each shard's compile time."""
    reason = _slurm_up()
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("NUMBA_DEBUG_CACHE", "1")
    run_dir = (tmp_path / "slurm").resolve()
    result = invoke("submit", NATO, "--shards", 3, "--trials", 30_000, "--seed", 7, "--out",
                    run_dir)
    assert result.exit_code == 0, result.output
    assert "submitted 3 shards" in result.output and "compile job" in result.output
    entry = load_record(run_dir)["submissions"][0]
    assert entry["compile_job"] is not None and entry["compile_job"] != entry["array_job"]
    logs = run_dir / "logs"
    assert _wait_for(run_dir / "manifest.json", 600), (
        subprocess.run(["squeue"], capture_output=True, text=True).stdout,
        {p.name: p.read_text()[-2000:] for p in logs.iterdir()})
    published = json.loads((run_dir / "numba-cache" / "cache.json").read_text())["files"]
    compile_log = (logs / "compile.out").read_text()
    loaded, saved = _numba_cache_log(compile_log)
    assert saved and f"published {len(published)} compiled kernel files" in compile_log, \
        compile_log[-3000:]
    assert f"numba cache: {len(published)} files written by the compile job" in compile_log

    def assert_no_compile(index: int) -> None:
        text = (logs / f"shard-{index}.out").read_text()
        loaded, saved = _numba_cache_log(text)
        assert f"copied {len(published)} compiled kernel files" in text, text[-3000:]
        assert "numba cache: 0 files written by this shard" in text, text[-3000:]
        assert saved == [], saved  # Numba compiled nothing
        assert loaded and not any(p.startswith(str(run_dir)) for p in loaded), loaded
        manifest = json.loads(RunFolder(run_dir).shard(index, 3).manifest_path.read_text())
        assert manifest["compile_s"] < 15, manifest["compile_s"]  # a cold compile: ~40-60 s

    for index in range(3):
        assert_no_compile(index)
    assert "3 done" in invoke("status", run_dir).output
    # --resume of a lost shard: no compile job again, and the shard compiles nothing
    shutil.rmtree(RunFolder(run_dir).shard(1, 3).path)
    (run_dir / "manifest.json").unlink()
    result = invoke("submit", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert "kernels from its numba-cache/" in result.output
    assert load_record(run_dir)["submissions"][-1]["compile_job"] is None
    assert _wait_for(run_dir / "manifest.json", 240)
    assert_no_compile(1)
