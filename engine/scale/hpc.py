"""``crisis submit`` / ``crisis status``: shard a run over an HPC job array (SLURM or PBS).

``submit`` writes the job-array script into the run folder (array index → shard; Numba threads
from the CPU allocation; a node-local Numba cache; one log per task), submits it, then submits
a merge job that runs after the whole array succeeded (``--dependency=afterok``), and records
the job ids in ``submit.json``.  ``status`` shows which shards are done, running, pending,
failed or missing; ``submit --resume`` resubmits only the shards that are not done.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from ..errors import UserError
from ..model.config import load_scenario, scenario_hash
from ..runs.folder import (
    CHECKPOINT,
    MANIFEST,
    SHARD_NAME,
    SHARDS,
    SUBMIT_JSON,
    RunFolder,
    default_out_dir,
    slugify,
)
from ..runs.io import write_bytes

SCHEDULERS = ("slurm", "pbs")


def python_command() -> str:
    """How a job calls this engine: this interpreter (a cluster shares the software tree)."""
    return f"{shlex.quote(sys.executable)} -m engine"


def format_ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] → '0-2,5,7-8' (the array syntax of SLURM and PBS)."""
    parts = []
    start = prev = None
    for i in sorted(indices):
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ",".join(parts)


def _shard_body(run_dir: Path, plan: dict, index_expr: str, threads_expr: str,
                scratch_expr: str) -> str:
    q = shlex.quote
    k = plan["shards"]
    folder = RunFolder(run_dir)
    run = (f"{python_command()} run {q(str(folder.scenario_path))} --trials {plan['trials']}"
           f" --seed {plan['seed']} --block-size {plan['block_size']}"
           f" --save-trials {plan['save_trials']} --shard \"$I/{k}\" --out {q(str(run_dir))}"
           f" --force --quiet")
    return f"""set -uo pipefail
I="{index_expr}"
export NUMBA_NUM_THREADS="{threads_expr}"
export NUMBA_CACHE_DIR="{scratch_expr}/crisis-numba-$(id -u)"
mkdir -p "$NUMBA_CACHE_DIR"
SHARD_DIR={q(str(run_dir / SHARDS))}/"$(printf '{SHARD_NAME}' "$I" {k})"
STATUS={q(str(folder.status_dir))}
mkdir -p "$STATUS"
rm -f "$STATUS/shard-$I.failed"
echo "shard $I/{k} on $(hostname) with $NUMBA_NUM_THREADS threads"
if [ -f "$SHARD_DIR/{MANIFEST}" ]; then
    echo "shard $I is already done"
    exit 0
fi
if [ -f "$SHARD_DIR/{CHECKPOINT}" ] && [ ! -f "$SHARD_DIR/{MANIFEST}" ]; then
    {python_command()} run --resume "$SHARD_DIR" --quiet
else
    {run}
fi
rc=$?
if [ "$rc" -ne 0 ]; then
    echo "$rc" > "$STATUS/shard-$I.failed"
    exit "$rc"
fi
"""


def render_slurm(run_dir: Path, plan: dict, indices: list[int]) -> tuple[str, str]:
    """The job-array script and the merge script for SLURM."""
    logs = RunFolder(run_dir).logs_dir
    lines = ["#!/bin/bash", f"#SBATCH --job-name=crisis-{plan['slug']}",
             f"#SBATCH --array={format_ranges(indices)}",
             f"#SBATCH --cpus-per-task={plan['cpus_per_task']}",
             f"#SBATCH --output={logs}/shard-%a.out", f"#SBATCH --error={logs}/shard-%a.err"]
    for key, flag in (("partition", "partition"), ("time", "time"), ("mem", "mem")):
        if plan.get(key):
            lines.append(f"#SBATCH --{flag}={plan[key]}")
    array = "\n".join(lines) + "\n" + _shard_body(
        run_dir, plan, "${SLURM_ARRAY_TASK_ID}", "${SLURM_CPUS_PER_TASK:-1}",
        "${SLURM_TMPDIR:-${TMPDIR:-/tmp}}")
    merge = "\n".join(["#!/bin/bash", f"#SBATCH --job-name=crisis-{plan['slug']}-merge",
                       "#SBATCH --cpus-per-task=1", f"#SBATCH --output={logs}/merge.out",
                       f"#SBATCH --error={logs}/merge.err"]
                      + ([f"#SBATCH --partition={plan['partition']}"]
                         if plan.get("partition") else [])
                      + ["set -euo pipefail",
                         f"{python_command()} merge {shlex.quote(str(run_dir))} --quiet", ""])
    return array, merge


def render_pbs(run_dir: Path, plan: dict, indices: list[int]) -> tuple[str, str]:
    """The job-array script and the merge script for PBS Pro / OpenPBS."""
    logs = RunFolder(run_dir).logs_dir
    select = f"select=1:ncpus={plan['cpus_per_task']}" + (f":mem={plan['mem']}"
                                                          if plan.get("mem") else "")
    lo, hi = min(indices), max(indices)
    # PBS arrays take one range (lo < hi): shards in between that are done exit at once
    lines = ["#!/bin/bash", f"#PBS -N crisis-{plan['slug'][:8]}", f"#PBS -l {select}",
             f"#PBS -o {logs}/", "#PBS -j oe"]
    if hi > lo:
        lines.insert(2, f"#PBS -J {lo}-{hi}")
    if plan.get("time"):
        lines.append(f"#PBS -l walltime={plan['time']}")
    if plan.get("partition"):
        lines.append(f"#PBS -q {plan['partition']}")
    array = "\n".join(lines) + "\n" + _shard_body(
        run_dir, plan, f"${{PBS_ARRAY_INDEX:-{lo}}}", "${NCPUS:-1}", "${TMPDIR:-/tmp}")
    merge = "\n".join(["#!/bin/bash", "#PBS -N crisis-merge", "#PBS -l select=1:ncpus=1",
                       f"#PBS -o {logs}/merge.out", "#PBS -j oe", "set -euo pipefail",
                       f"{python_command()} merge {shlex.quote(str(run_dir))} --quiet", ""])
    return array, merge


def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        raise UserError(f"{cmd[0]} not found: is this a {cmd[0]} submit host? "
                        "(--dry-run writes the scripts without submitting)")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise UserError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def _submit(run_dir: Path, plan: dict, indices: list[int], dry_run: bool) -> dict:
    scheduler = plan["scheduler"]
    render = render_slurm if scheduler == "slurm" else render_pbs
    array, merge = render(run_dir, plan, indices)
    folder = RunFolder(run_dir)
    array_script = folder.job_script("shards", scheduler)
    merge_script = folder.job_script("merge", scheduler)
    folder.logs_dir.mkdir(parents=True, exist_ok=True)
    write_bytes(array_script, array.encode())
    write_bytes(merge_script, merge.encode())
    entry = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "shards": indices,
             "array_script": array_script.name, "merge_script": merge_script.name,
             "dry_run": dry_run}
    if dry_run:
        return entry
    if scheduler == "slurm":
        array_id = _run(["sbatch", "--parsable", str(array_script)]).split(";")[0]
        merge_id = _run(["sbatch", "--parsable", f"--dependency=afterok:{array_id}",
                         str(merge_script)]).split(";")[0]
    else:
        array_id = _run(["qsub", str(array_script)])
        merge_id = _run(["qsub", "-W", f"depend=afterok:{array_id}", str(merge_script)])
    entry.update(array_job=array_id, merge_job=merge_id)
    return entry


def submit(config_path, *, shards: int, scheduler: str = "slurm", out_dir=None, trials=None,
           seed=None, block_size: int = 4096, save_trials: int = 0, partition=None, time=None,
           cpus_per_task: int = 1, mem=None, dry_run: bool = False, force: bool = False) -> dict:
    config_path = Path(config_path)
    scenario = load_scenario(config_path)
    if shards < 1:
        raise UserError(f"--shards must be ≥ 1, got {shards}")
    seed = scenario.scenario.seed if seed is None else seed
    trials = scenario.scenario.trials if trials is None else trials
    if shards > trials:
        raise UserError(f"--shards {shards} is more than the {trials} trials")
    run_dir = (Path(out_dir) if out_dir
               else default_out_dir(scenario.scenario.name, seed)).resolve()
    if run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise UserError(f"{run_dir}: folder is not empty; pass --force to reuse it, or "
                        "`crisis submit --resume` to resubmit its unfinished shards")
    run_dir.mkdir(parents=True, exist_ok=True)
    RunFolder(run_dir).write_scenario(config_path.read_bytes())
    plan = {"scheduler": scheduler, "shards": shards, "trials": trials, "seed": seed,
            "block_size": block_size, "save_trials": save_trials, "partition": partition,
            "time": time, "cpus_per_task": cpus_per_task, "mem": mem,
            "slug": slugify(scenario.scenario.name)[:40],
            "scenario_hash": scenario_hash(scenario)}
    entry = _submit(run_dir, plan, list(range(shards)), dry_run)
    record = {**plan, "run_dir": str(run_dir), "submissions": [entry]}
    RunFolder(run_dir).write_submission(record)
    return record


def _load_record(run_dir: Path) -> dict:
    folder = RunFolder(run_dir)
    if not folder.submit_path.is_file():
        raise UserError(f"{run_dir}: no {SUBMIT_JSON}; was it made by `crisis submit`?")
    return folder.read_submission()


def _queue_states(record: dict) -> dict[int, str]:
    """Array index → scheduler state for tasks still known to the scheduler (best effort)."""
    jobs = [s.get("array_job") for s in record["submissions"] if s.get("array_job")]
    if not jobs or record["scheduler"] != "slurm" or shutil.which("squeue") is None:
        return {}
    proc = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i %T"],
                          capture_output=True, text=True, timeout=60)
    states = {}
    for line in proc.stdout.splitlines():
        match = re.fullmatch(r"\s*\d+_(\d+)\s+(\S+)\s*", line)
        if match:
            states[int(match[1])] = match[2].lower()
    return states


def shard_states(run_dir: Path) -> tuple[dict, dict[int, str]]:
    folder = RunFolder(run_dir)
    record = _load_record(run_dir)
    queue = _queue_states(record)
    states = {}
    for i in range(record["shards"]):
        if folder.shard(i, record["shards"]).is_complete:
            states[i] = "done"
        elif i in queue:
            states[i] = queue[i]
        elif folder.failed_marker(i).is_file():
            states[i] = "failed"
        else:
            states[i] = "missing"
    return record, states


def resubmit(run_dir, *, dry_run: bool = False) -> dict:
    """Resubmit the shards that are neither done nor still queued or running."""
    run_dir = Path(run_dir).resolve()
    record, states = shard_states(run_dir)
    todo = [i for i, s in states.items() if s in ("failed", "missing")]
    if not todo:
        busy = [i for i, s in states.items() if s != "done"]
        raise UserError(f"{run_dir}: nothing to resubmit ("
                        + (f"{len(busy)} shards still queued or running" if busy
                           else "every shard is done; run `crisis merge`") + ")")
    last = record["submissions"][-1]
    if not dry_run and record["scheduler"] == "slurm" and last.get("merge_job") and \
            shutil.which("scancel"):
        subprocess.run(["scancel", last["merge_job"]], capture_output=True, timeout=60)
    entry = _submit(run_dir, record, todo, dry_run)
    record["submissions"].append(entry)
    RunFolder(run_dir).write_submission(record)
    return record
