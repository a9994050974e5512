"""``crisis submit`` / ``crisis status``: shard a run over an HPC job array (SLURM or PBS).

``submit`` writes the job-array script into the run folder (array index → shard; Numba threads
from the CPU allocation; one log per task) and submits it after a small compile job, then
submits a merge job that runs after the whole array succeeded (``--dependency=afterok``), and
records the plan and the job ids in ``submit.json``.

Compile once per cluster: the compile job runs the scenario on one trial with a fresh Numba
cache on node-local scratch and publishes a checked copy of it as ``numba-cache/`` in the run
folder (:mod:`engine.scale.kernel_cache`: ``cache.json`` lists every file with its size and
SHA-256, and the kernel sources, Numba and Python it was compiled with). The array starts after
it (``afterany``: a compile job that failed or was cancelled only means that each shard compiles
for itself). Each shard copies the published cache into a fresh private folder on node-local
scratch (``mktemp -d``, removed when the task ends) and runs with that one, so no two tasks ever
write one cache; the copy reads without following links and takes only files of ours that no one
else can write and whose digest matches, else nothing (the shard then compiles, still correct).
The shard's log says how many cache files the run wrote: 0 means every kernel came from the
compile job. ``--resume`` submits a compile job again only when the published cache does not fit
the installed kernels.

``status`` shows which shards are done, running, pending, failed, stale or missing; ``submit
--resume`` resubmits only the shards that are not done.

Nothing a user or a file supplies reaches a job script unchecked: every option and every key of
``submit.json`` is validated (the run options with the bounds of :mod:`engine.runs.options`,
scheduler values against the scheduler's own formats, job ids against strict patterns), paths
are shell-quoted in the script body and quoted (SLURM) or refused (PBS) in directive lines.  A
shard counts as done only when its manifest matches the plan, both here and in the job script,
which asks ``python -m engine.scale.hpc shard-state`` before it skips a shard.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import UserError
from ..model.config import load_scenario, scenario_hash
from ..model.limits import MAX_TRIALS_PER_RUN, check_request
from ..runs.folder import (
    LOCK,
    POSTERIOR,
    SHARD_NAME,
    SHARDS,
    SUBMIT_JSON,
    RunFolder,
    default_out_dir,
    shard_range,
    slugify,
)
from ..runs.io import write_bytes
from ..runs.options import (
    MAX_SHARDS,
    BlockSize,
    SaveTrials,
    ScenarioHash,
    Seed,
    Sha256,
    ShardCount,
    Trials,
)
from ..version import __version__
from .kernel_cache import cache_problem, copy_cache, publish_cache

SCHEDULERS = ("slurm", "pbs")
MAX_CPUS_PER_TASK = 4096
MAX_PATH_CHARS = 4000

# ---- the formats of the values that go into job scripts ----------------------------------------
# Python ``re`` with fullmatch and explicit ASCII classes: no trailing newline, no Unicode digits.
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}"  # a partition / queue name (no leading '-')
_FORMATS = {
    "partition": {
        "slurm": (re.compile(rf"{_NAME}(?:,{_NAME}){{0,31}}"),
                  "a SLURM partition name (letters, digits, _ . -), or a comma list of them"),
        "pbs": (re.compile(_NAME), "a PBS queue name (letters, digits, _ . -)"),
    },
    "time": {
        "slurm": (re.compile(r"[0-9]{1,7}(?::[0-9]{1,2}){0,2}"
                             r"|[0-9]{1,5}-[0-9]{1,2}(?::[0-9]{1,2}){0,2}|INFINITE|UNLIMITED"),
                  "a SLURM time limit: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"),
        "pbs": (re.compile(r"[0-9]{1,5}:[0-5][0-9]:[0-5][0-9]"), "a PBS walltime, HH:MM:SS"),
    },
    "mem": {
        "slurm": (re.compile(r"[0-9]{1,15}[KMGTkmgt]?"),
                  "a SLURM memory size, like 2G, 500M or 2048 (MB)"),
        "pbs": (re.compile(r"[0-9]{1,15}(?:[KMGTPkmgtp]?[BWbw])?"),
                "a PBS memory size, like 2gb or 500mb"),
    },
}
_JOB_IDS = {
    "slurm": (re.compile(r"[0-9]{1,20}"), "a SLURM job id (digits)"),
    "pbs": (re.compile(r"[0-9]{1,20}(?:\[\])?(?:\.[A-Za-z0-9_-]{1,64}){0,8}"),
            "a PBS job id like 123.server or 123[].server"),
}
_PBS_PATH = re.compile(r"[A-Za-z0-9_./+-]+")
# sbatch before 20.02 blanks "packjob" anywhere in a #SBATCH line (a job-component separator)
_SBATCH_WORDS = ("packjob", "hetjob")

# ---- the plan and submit.json: one schema with the run options' bounds -------------------------
CpusPerTask = Annotated[int, Field(ge=1, le=MAX_CPUS_PER_TASK, strict=True)]
ShardIndex = Annotated[int, Field(ge=0, lt=MAX_SHARDS, strict=True)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,59}$")]
JobValue = Annotated[str, Field(max_length=200)]  # checked against the scheduler's format after
JobId = Annotated[str, Field(max_length=200)]  # likewise
Date = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+Z-]{1,30}$")]
PathText = Annotated[str, Field(max_length=MAX_PATH_CHARS,
                                pattern=r"^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Plan(_Strict):
    """What a submission runs: the run options, the scheduler's resources and the job name."""

    scheduler: Literal["slurm", "pbs"]
    shards: ShardCount
    trials: Trials
    seed: Seed
    block_size: BlockSize
    save_trials: SaveTrials
    partition: JobValue | None
    time: JobValue | None
    cpus_per_task: CpusPerTask
    mem: JobValue | None
    slug: Slug
    scenario_hash: ScenarioHash
    # a run over a posterior (engine.runs.posterior): the SHA-256 of the run folder's copy
    posterior_sha256: Sha256 | None = None


class Submission(_Strict):
    date: Date
    shards: Annotated[list[ShardIndex], Field(min_length=1, max_length=MAX_SHARDS)]
    array_script: Literal["shards.sbatch", "shards.pbs"]
    merge_script: Literal["merge.sbatch", "merge.pbs"]
    # None: the run folder's numba-cache/ fitted, no compile job (and older submit.json files)
    compile_script: Literal["compile.sbatch", "compile.pbs"] | None = None
    dry_run: bool
    compile_job: JobId | None = None
    array_job: JobId | None = None
    merge_job: JobId | None = None
    cleared: Annotated[list[Annotated[str, Field(pattern=r"^shard-[0-9]+-of-[0-9]+$")]],
                       Field(max_length=MAX_SHARDS)] | None = None


class SubmitRecord(Plan):
    """``submit.json``: the plan, the run folder and every submission's job ids."""

    run_dir: PathText
    submissions: Annotated[list[Submission], Field(min_length=1, max_length=100_000)]


# the plan keys a shard's results depend on (a shard made with other values is stale)
RESULT_KEYS = ("shards", "trials", "seed", "block_size", "save_trials", "scenario_hash",
               "posterior_sha256")
OPTION_FLAGS = {"scheduler": "--scheduler", "shards": "--shards", "trials": "--trials",
                "seed": "--seed", "block_size": "--block-size", "save_trials": "--save-trials",
                "partition": "--partition", "time": "--time", "cpus_per_task": "--cpus-per-task",
                "mem": "--mem"}


def _show(value: object, limit: int = 60) -> str:
    """A value for an error message: escaped (no control characters reach the terminal)."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _path(path: str | Path) -> str:
    """A path for a message: as it is when printable, else escaped."""
    text = str(path)
    return text if text.isprintable() else _show(text, 200)


def _key(loc: tuple) -> str:
    parts = [str(p) if re.fullmatch(r"[A-Za-z0-9_]{1,40}", str(p)) else _show(str(p), 40)
             for p in loc]
    return ".".join(parts) or "(file)"


def _problems(err: ValidationError, names: dict[str, str] | None = None) -> list[str]:
    """``key: problem`` for each pydantic error; keys escaped, values never echoed raw."""
    out = []
    for e in err.errors(include_url=False, include_input=False):
        key = _key(e["loc"])
        if names and e["loc"] and e["loc"][0] in names:
            key = names[e["loc"][0]]
        out.append(f"{key}: {e['msg']}")
    return out


def _fail(where: str, problems: list[str]) -> UserError:
    shown = problems[:10] + ([f"… and {len(problems) - 10} more"] if len(problems) > 10 else [])
    return UserError(f"{where}: " + "; ".join(shown))


def job_value_problems(scheduler: str, values: dict) -> list[tuple[str, str]]:
    """(key, problem) for each of partition / time / mem that is not in the scheduler's format."""
    problems = []
    for key, formats in _FORMATS.items():
        value = values.get(key)
        if value is None:
            continue
        pattern, what = formats[scheduler]
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append((key, f"{_show(value)} is not {what}"))
    return problems


def _job_id_problem(scheduler: str, job: object) -> str | None:
    pattern, what = _JOB_IDS[scheduler]
    if isinstance(job, str) and pattern.fullmatch(job):
        return None
    return f"{_show(job)} is not {what}"


def directive_path_problem(path: str, scheduler: str) -> str | None:
    """Why ``path`` cannot go into a #SBATCH / #PBS line (None when it can).

    SLURM: sbatch splits directives on blanks and honours quotes and backslashes (no shell), so a
    path goes in double quotes with ``%`` doubled (sbatch's filename patterns); control
    characters, ``"`` and ``\\`` are refused.  PBS: directive quoting differs between PBS
    versions, so only ASCII letters, digits and ``/ . _ - +`` are accepted (no blanks)."""
    if len(path) > MAX_PATH_CHARS:
        return f"is longer than {MAX_PATH_CHARS} characters"
    if scheduler == "slurm":
        bad = sorted({c for c in path if (not c.isprintable() and c != " ") or c in '"\\'})
        if bad:
            return (f"holds {', '.join(_show(c) for c in bad)}, which a #SBATCH line cannot "
                    "carry")
        lowered = path.lower()
        for word in _SBATCH_WORDS:
            if word in lowered:
                return f"contains {word!r}, which sbatch reads as a job separator"
        return None
    bad = sorted({c for c in path if not _PBS_PATH.fullmatch(c)})
    if bad:
        return (f"holds {', '.join(_show(c) for c in bad)}: a #PBS line takes only paths of "
                "ASCII letters, digits and / . _ - +")
    return None


def _slurm_path(folder: Path, name: str) -> str:
    """``folder/name`` for a #SBATCH line: double-quoted, the folder's ``%`` doubled (``name``
    keeps its filename pattern, e.g. ``%a``); the folder was checked by directive_path_problem."""
    return '"' + str(folder).replace("%", "%%") + "/" + name + '"'


def _resolve(path: str | Path, what: str) -> Path:
    """``path`` resolved; refused (naming ``what``) when it holds control characters."""
    text = str(path)
    if not text or any(not c.isprintable() and c != " " for c in text):
        raise UserError(f"{what} {_show(text)}: a run folder path needs printable characters")
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 for part in Path(text).parts):
        raise UserError(f"{what} {_show(text)}: a folder name is longer than 255 bytes")
    try:
        return Path(text).resolve()
    except (OSError, RuntimeError, ValueError, UnicodeError) as err:
        raise UserError(f"{what} {_show(text)}: {err}") from None


def _check_directive_path(run_dir: Path, scheduler: str, what: str) -> None:
    problem = directive_path_problem(str(run_dir), scheduler)
    if problem:
        raise UserError(f"{what} {_show(str(run_dir), 200)}: the run folder path {problem}; "
                        "choose another folder")


def check_plan(plan: dict, names: dict[str, str] | None = None, where: str = "plan") -> dict:
    """Validate a plan (the ``Plan`` schema and the scheduler's formats); the validated copy.
    ``names`` maps keys to what the user typed (``mem`` → ``--mem``) for the messages."""
    names = names or {}
    try:
        checked = Plan.model_validate({k: plan.get(k) for k in Plan.model_fields}).model_dump()
    except ValidationError as err:
        raise _fail(where, _problems(err, names)) from None
    problems = [f"{names.get(key, key)}: {msg}"
                for key, msg in job_value_problems(checked["scheduler"], checked)]
    if checked["shards"] > checked["trials"]:
        problems.append(f"{names.get('shards', 'shards')}: {checked['shards']} shards is more "
                        f"than {names.get('trials', 'trials')} {checked['trials']}")
    if problems:
        raise _fail(where, problems)
    return checked


def load_record(run_dir: str | Path) -> dict:
    """``submit.json``, validated whole: a :class:`UserError` naming the file and each key."""
    folder = RunFolder(run_dir)
    path = folder.submit_path
    if not path.is_file():
        raise UserError(f"{_path(run_dir)}: no {SUBMIT_JSON}; was it made by `crisis submit`?")
    try:
        data = folder.read_submission()
    except RecursionError:
        raise UserError(f"{path}: unreadable {SUBMIT_JSON} (nested too deeply)") from None
    try:
        record = SubmitRecord.model_validate(data).model_dump(exclude_none=False)
    except ValidationError as err:
        raise _fail(str(path), _problems(err)) from None
    scheduler, count = record["scheduler"], record["shards"]
    problems = [f"{key}: {msg}" for key, msg in job_value_problems(scheduler, record)]
    if count > record["trials"]:
        problems.append(f"shards: {count} shards is more than trials {record['trials']}")
    for n, entry in enumerate(record["submissions"]):
        where = f"submissions.{n}"
        if any(i >= count for i in entry["shards"]):
            problems.append(f"{where}.shards: a shard index is not below {count}")
        if len(set(entry["shards"])) != len(entry["shards"]):
            problems.append(f"{where}.shards: a shard index appears twice")
        for key in ("compile_job", "array_job", "merge_job"):
            if entry[key] is not None and (msg := _job_id_problem(scheduler, entry[key])):
                problems.append(f"{where}.{key}: {msg}")
        if entry["compile_job"] is not None and entry["compile_script"] is None:
            problems.append(f"{where}.compile_job: a compile job without a compile_script")
        suffix = "sbatch" if scheduler == "slurm" else "pbs"
        for key in ("array_script", "merge_script", "compile_script"):
            if entry[key] is not None and not entry[key].endswith("." + suffix):
                problems.append(f"{where}.{key}: not a script for scheduler {scheduler!r}")
    if problems:
        raise _fail(str(path), problems)
    return record


# ---- shard state: done only when the shard's manifest matches the plan --------------------------
def _same(value: object, expected: object) -> bool:
    """Equal and of the same JSON type (``true`` is not ``1``)."""
    if isinstance(expected, list):
        return (isinstance(value, list) and len(value) == len(expected)
                and all(_same(v, e) for v, e in zip(value, expected, strict=True)))
    return type(value) is type(expected) and value == expected


def _expected(plan: dict, index: int) -> dict:
    return {"scenario_hash": plan["scenario_hash"], "seed": plan["seed"],
            "trials": plan["trials"], "block_size": plan["block_size"],
            "save_trials": plan["save_trials"], "shard": [index, plan["shards"]]}


def _manifest_matches(manifest: dict, plan: dict, index: int) -> bool:
    expected = _expected(plan, index)
    expected["trial_range"] = list(shard_range(plan["trials"], index, plan["shards"]))
    versions = manifest.get("versions")
    post = manifest.get("posterior")
    return (all(_same(manifest.get(k), v) for k, v in expected.items())
            and isinstance(versions, dict) and versions.get("engine") == __version__
            and (post.get("sha256") if isinstance(post, dict) else None)
            == plan.get("posterior_sha256"))


def _options_match(options: dict | BaseModel, plan: dict, index: int) -> bool:
    if isinstance(options, BaseModel):  # RunFolder.read_options gives a validated RunOptions
        options = options.model_dump(mode="json")
    return (all(_same(options.get(k), v) for k, v in _expected(plan, index).items())
            and options.get("engine") == __version__
            and options.get("posterior_sha256") == plan.get("posterior_sha256"))


def shard_state(shard: RunFolder, plan: dict, index: int) -> str:
    """``done`` (a manifest matching the plan), ``resume`` (a checkpoint of this plan),
    ``partial`` (started with this plan, no checkpoint yet), ``stale`` (made with another plan,
    unreadable, or a symlink) or ``empty``."""
    path = shard.path
    if path.is_symlink():
        return "stale"
    if not path.exists():
        return "empty"
    if not path.is_dir():
        return "stale"
    try:
        if shard.is_complete:
            return "done" if _manifest_matches(shard.read_manifest(), plan, index) else "stale"
        if shard.has_options:
            if not _options_match(shard.read_options(), plan, index):
                return "stale"
            return "resume" if shard.has_checkpoint else "partial"
    except (UserError, RecursionError):
        return "stale"
    return "empty"


def _remove_shard(entry: Path) -> None:
    """Remove a stale shard folder, but only while no job writes it (its lock is free)."""
    try:
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()  # a link is removed, never followed
            return
        with RunFolder(entry).lock():
            for child in entry.iterdir():
                if child.name == LOCK:
                    continue
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        entry.rmdir()
    except UserError as err:
        raise UserError(f"cannot clear the stale shard {entry.name}: {err}") from None
    except OSError as err:
        raise UserError(f"{entry}: cannot clear the stale shard ({err.strerror or err})") from None


def clear_stale_shards(folder: RunFolder, plan: dict) -> list[str]:
    """Remove every ``shards/shard-*-of-*`` entry that is not a shard of this plan or was made
    with other options (a running shard stops this with a clear error); their names."""
    shards_dir = folder.path / SHARDS
    if shards_dir.is_symlink():
        raise UserError(f"{shards_dir}: is a symbolic link; a run folder keeps its shards inside")
    if not shards_dir.is_dir():
        return []
    count = plan["shards"]
    ours = {SHARD_NAME % (i, count): i for i in range(count)}
    cleared = []
    for entry in sorted(shards_dir.glob("shard-*-of-*")):
        index = ours.get(entry.name)
        if index is not None and shard_state(RunFolder(entry), plan, index) != "stale":
            continue
        _remove_shard(entry)
        cleared.append(entry.name)
    return cleared


# ---- the compile job ------------------------------------------------------------------------
def warm(run_dir: str | Path) -> int:
    """The compile job: run the run folder's scenario on one trial with the plan's options (so
    Numba compiles every kernel variant the shards use, into the NUMBA_CACHE_DIR the job script
    made) and publish that cache; the number of files published."""
    from ..runs.runner import run_in_memory

    run_dir = Path(run_dir)
    record = load_record(run_dir)
    source = os.environ.get("NUMBA_CACHE_DIR", "")
    if not source:
        raise UserError("warm: NUMBA_CACHE_DIR is not set (the compile job script sets it)")
    scenario = load_scenario(RunFolder(run_dir).scenario_path)
    digest = scenario_hash(scenario)
    if digest != record["scenario_hash"]:
        raise UserError(f"{_path(run_dir)}: scenario.toml is not the scenario of {SUBMIT_JSON}")
    run_in_memory(scenario, trials=1, seed=record["seed"], block_size=record["block_size"],
                  save_trials=min(record["save_trials"], 1))
    return publish_cache(source, run_dir, digest)


# ---- job scripts ------------------------------------------------------------------------------
def python_command(module: str = "engine") -> str:
    """How a job calls this engine: this interpreter (a cluster shares the software tree)."""
    return f"{shlex.quote(sys.executable)} -m {module}"


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


# Numba writes and unpickles its cache: a job uses a fresh folder of its own on node-local scratch
# (mktemp -d: private, never one planted there), removed when the job ends
def _private_cache(scratch_expr: str, fail: str) -> str:
    return f"""NUMBA_CACHE_DIR="$(mktemp -d "{scratch_expr}/crisis-numba.XXXXXXXXXX")" || {fail}
export NUMBA_CACHE_DIR
trap 'rm -rf -- "$NUMBA_CACHE_DIR"' EXIT
cache_files() {{ find "$NUMBA_CACHE_DIR" -type f -printf '%P %s %T@\\n' | LC_ALL=C sort; }}"""


_SCRATCH = {"slurm": "${SLURM_TMPDIR:-${TMPDIR:-/tmp}}", "pbs": "${TMPDIR:-/tmp}"}


def _shard_body(run_dir: Path, plan: dict, index_expr: str, threads_expr: str,
                scratch_expr: str) -> str:
    q = shlex.quote
    folder = RunFolder(run_dir)
    k = int(plan["shards"])
    trials, seed = int(plan["trials"]), int(plan["seed"])
    block, save = int(plan["block_size"]), int(plan["save_trials"])
    digest = q(plan["scenario_hash"])
    hpc = python_command("engine.scale.hpc")
    posterior = plan.get("posterior_sha256")
    check = (f"{hpc} shard-state {q(str(run_dir))} \"$I\" {k} "
             f"{trials} {seed} {block} {save} {digest}"
             + (f" {q(posterior)}" if posterior else ""))
    run = (f"{python_command()} run {q(str(folder.scenario_path))} --trials {trials}"
           f" --seed {seed} --block-size {block} --save-trials {save} --shard \"$I/{k}\""
           + (f" --posterior {q(str(run_dir / POSTERIOR))}" if posterior else "")
           + f" --out {q(str(run_dir))} --force --quiet")
    return f"""set -uo pipefail
I="{index_expr}"
case "$I" in ''|*[!0-9]*) echo "not an array index: $I" >&2; exit 2 ;; esac
SHARD_DIR={q(str(run_dir / SHARDS))}/"$(printf '{SHARD_NAME}' "$I" {k})"
STATUS={q(str(folder.status_dir))}
mkdir -p "$STATUS"
rm -f "$STATUS/shard-$I.failed"
failed() {{ echo "$1" > "$STATUS/shard-$I.failed"; exit "$1"; }}
export NUMBA_NUM_THREADS="{threads_expr}"
echo "shard $I/{k} on $(hostname) with $NUMBA_NUM_THREADS threads"
STATE="$({check})" || failed 2
case "$STATE" in
    done)
        echo "shard $I is already done"
        exit 0 ;;
    superseded)
        echo "{SUBMIT_JSON} now holds another plan: this job was superseded" >&2
        exit 3 ;;
    resume|run) ;;
    *)
        echo "unexpected shard state: $STATE" >&2
        failed 2 ;;
esac
{_private_cache(scratch_expr, "failed 1")}
# the compile job's kernels, checked and copied in (a missing or bad cache: compile here)
{hpc} cache-copy {q(str(run_dir))} "$NUMBA_CACHE_DIR" || echo "shard $I: compiling here" >&2
BEFORE="$(cache_files)"
if [ "$STATE" = resume ]; then
    {python_command()} run --resume "$SHARD_DIR" --quiet || {{
        echo "shard $I: resuming failed; running it again from the start" >&2
        {run}
    }}
else
    {run}
fi
rc=$?
WRITTEN="$(cache_files | LC_ALL=C comm -13 <(printf '%s\\n' "$BEFORE") - | grep -c .)"
echo "numba cache: $WRITTEN files written by this shard (0: no kernel compiled here)"
if [ "$rc" -ne 0 ]; then
    failed "$rc"
fi
"""


def _compile_body(run_dir: Path, scratch_expr: str) -> str:
    return f"""set -uo pipefail
export NUMBA_NUM_THREADS=1
echo "compiling the kernels on $(hostname)"
{_private_cache(scratch_expr, "exit 1")}
{python_command("engine.scale.hpc")} warm {shlex.quote(str(run_dir))}
rc=$?
echo "numba cache: $(cache_files | grep -c .) files written by the compile job"
exit "$rc"
"""


def _checked(run_dir: Path, plan: dict, indices: list[int]) -> dict:
    """Renderers check again what they put into a script (defence in depth)."""
    plan = {**plan, **check_plan(plan)}
    problem = directive_path_problem(str(run_dir), plan["scheduler"])
    if problem or not run_dir.is_absolute():
        raise UserError(f"{_show(str(run_dir), 200)}: the run folder path "
                        f"{problem or 'is not absolute'}")
    if not indices or any(type(i) is not int or not 0 <= i < plan["shards"] for i in indices):
        raise UserError(f"shard indices must lie in [0, {plan['shards']})")
    return plan


def render_slurm(run_dir: Path, plan: dict, indices: list[int]) -> tuple[str, str]:
    """The job-array script and the merge script for SLURM."""
    plan = _checked(run_dir, {**plan, "scheduler": "slurm"}, indices)
    logs = RunFolder(run_dir).logs_dir
    lines = ["#!/bin/bash", f"#SBATCH --job-name=crisis-{plan['slug']}",
             f"#SBATCH --array={format_ranges(indices)}",
             f"#SBATCH --cpus-per-task={plan['cpus_per_task']}",
             f"#SBATCH --output={_slurm_path(logs, 'shard-%a.out')}",
             f"#SBATCH --error={_slurm_path(logs, 'shard-%a.err')}"]
    for key in ("partition", "time", "mem"):
        if plan[key] is not None:
            lines.append(f"#SBATCH --{key}={plan[key]}")
    array = "\n".join(lines) + "\n" + _shard_body(
        run_dir, plan, "${SLURM_ARRAY_TASK_ID}", "${SLURM_CPUS_PER_TASK:-1}", _SCRATCH["slurm"])
    merge = "\n".join(["#!/bin/bash", f"#SBATCH --job-name=crisis-{plan['slug']}-merge",
                       "#SBATCH --cpus-per-task=1",
                       f"#SBATCH --output={_slurm_path(logs, 'merge.out')}",
                       f"#SBATCH --error={_slurm_path(logs, 'merge.err')}"]
                      + ([f"#SBATCH --partition={plan['partition']}"]
                         if plan["partition"] is not None else [])
                      + ["set -euo pipefail",
                         f"{python_command()} merge {shlex.quote(str(run_dir))} --quiet", ""])
    return array, merge


def render_pbs(run_dir: Path, plan: dict, indices: list[int]) -> tuple[str, str]:
    """The job-array script and the merge script for PBS Pro / OpenPBS."""
    plan = _checked(run_dir, {**plan, "scheduler": "pbs"}, indices)
    logs = RunFolder(run_dir).logs_dir
    select = f"select=1:ncpus={plan['cpus_per_task']}" + (f":mem={plan['mem']}"
                                                          if plan["mem"] is not None else "")
    lo, hi = min(indices), max(indices)
    # PBS arrays take one range (lo < hi): shards in between that are done exit at once
    lines = ["#!/bin/bash", f"#PBS -N crisis-{plan['slug'][:8]}", f"#PBS -l {select}",
             f"#PBS -o {logs}/", "#PBS -j oe"]
    if hi > lo:
        lines.insert(2, f"#PBS -J {lo}-{hi}")
    if plan["time"] is not None:
        lines.append(f"#PBS -l walltime={plan['time']}")
    if plan["partition"] is not None:
        lines.append(f"#PBS -q {plan['partition']}")
    array = "\n".join(lines) + "\n" + _shard_body(
        run_dir, plan, f"${{PBS_ARRAY_INDEX:-{lo}}}", "${NCPUS:-1}", _SCRATCH["pbs"])
    merge = "\n".join(["#!/bin/bash", "#PBS -N crisis-merge", "#PBS -l select=1:ncpus=1",
                       f"#PBS -o {logs}/merge.out", "#PBS -j oe", "set -euo pipefail",
                       f"{python_command()} merge {shlex.quote(str(run_dir))} --quiet", ""])
    return array, merge


def render_compile(run_dir: Path, plan: dict) -> str:
    """The compile job's script for ``plan["scheduler"]``: one CPU, the shards' partition, time
    and memory (it does what each shard did before it, once)."""
    scheduler = plan.get("scheduler")
    plan = _checked(run_dir, plan, [0])
    logs = RunFolder(run_dir).logs_dir
    given = [(key, plan[key]) for key in ("partition", "time", "mem") if plan[key] is not None]
    if scheduler == "slurm":
        lines = ["#!/bin/bash", f"#SBATCH --job-name=crisis-{plan['slug']}-compile",
                 "#SBATCH --cpus-per-task=1",
                 f"#SBATCH --output={_slurm_path(logs, 'compile.out')}",
                 f"#SBATCH --error={_slurm_path(logs, 'compile.err')}"]
        lines += [f"#SBATCH --{key}={value}" for key, value in given]
    else:
        values = dict(given)
        lines = ["#!/bin/bash", "#PBS -N crisis-compile",
                 "#PBS -l select=1:ncpus=1" + (f":mem={values['mem']}" if "mem" in values
                                               else ""),
                 f"#PBS -o {logs}/compile.out", "#PBS -j oe"]
        if "time" in values:
            lines.append(f"#PBS -l walltime={values['time']}")
        if "partition" in values:
            lines.append(f"#PBS -q {values['partition']}")
    return "\n".join(lines) + "\n" + _compile_body(run_dir, _SCRATCH[plan["scheduler"]])


# ---- submitting -------------------------------------------------------------------------------
def _run(cmd: list[str]) -> str:
    if shutil.which(cmd[0]) is None:
        raise UserError(f"{cmd[0]} not found: is this a {cmd[0]} submit host? "
                        "(--dry-run writes the scripts without submitting)")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UserError(f"{cmd[0]} failed: {err}") from None
    if proc.returncode != 0:
        raise UserError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def _job_id(output: str, scheduler: str, command: str) -> str:
    """The job id a submit command printed, checked (``sbatch --parsable``: ``ID[;cluster]``)."""
    text = output.strip()
    match = re.fullmatch(r"([^;]*)(?:;[A-Za-z0-9_.-]{1,64})?", text) if scheduler == "slurm" \
        else None
    job = match[1] if match else text
    if _job_id_problem(scheduler, job):
        raise UserError(f"{command} printed {_show(output)}, not {_JOB_IDS[scheduler][1]}; "
                        "check the queue for what was submitted")
    return job


def _enqueue(scheduler: str, script: Path, after: tuple[str, str] | None = None) -> str:
    """Submit ``script``, to start once job ``after[1]`` ended (``after[0]``: ``afterok`` or
    ``afterany``); its checked job id."""
    if scheduler == "slurm":
        cmd = ["sbatch", "--parsable"] + ([f"--dependency={after[0]}:{after[1]}"] if after
                                           else [])
    else:
        cmd = ["qsub"] + (["-W", f"depend={after[0]}:{after[1]}"] if after else [])
    return _job_id(_run([*cmd, str(script)]), scheduler, cmd[0])


def _submit(run_dir: Path, plan: dict, indices: list[int], dry_run: bool,
            compile_first: bool) -> dict:
    """Write the scripts and submit them: the compile job (when ``compile_first``), the array
    after it has ended however it ended (a failed compile job leaves each shard to compile for
    itself), and the merge after the whole array succeeded."""
    scheduler = plan["scheduler"]
    render = render_slurm if scheduler == "slurm" else render_pbs
    array, merge = render(run_dir, plan, indices)
    folder = RunFolder(run_dir)
    scripts = {"array_script": (folder.job_script("shards", scheduler), array),
               "merge_script": (folder.job_script("merge", scheduler), merge)}
    if compile_first:
        scripts["compile_script"] = (folder.job_script("compile", scheduler),
                                     render_compile(run_dir, plan))
    folder.logs_dir.mkdir(parents=True, exist_ok=True)
    for path, text in scripts.values():
        write_bytes(path, text.encode())
    entry = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "shards": indices,
             **{key: path.name for key, (path, _) in scripts.items()}, "dry_run": dry_run}
    if dry_run:
        return entry
    compile_id = (_enqueue(scheduler, scripts["compile_script"][0]) if compile_first
                  else None)
    array_id = _enqueue(scheduler, scripts["array_script"][0],
                        ("afterany", compile_id) if compile_id else None)
    merge_id = _enqueue(scheduler, scripts["merge_script"][0], ("afterok", array_id))
    entry.update(compile_job=compile_id, array_job=array_id, merge_job=merge_id)
    return entry


def submit(config_path, *, shards: int, scheduler: str = "slurm", out_dir=None, trials=None,
           seed=None, block_size: int = 4096, save_trials: int = 0, partition=None, time=None,
           cpus_per_task: int = 1, mem=None, dry_run: bool = False, force: bool = False,
           posterior=None) -> dict:
    """Write the job scripts into the run folder (under its lock), submit them unless
    ``dry_run``, and record the plan and job ids in ``submit.json``.  ``force`` reuses a
    non-empty folder: its shards made with another plan are removed first.  ``posterior`` (a
    ``posterior.parquet``): every shard runs over it from the run folder's copy, tied to the
    plan by its SHA-256 (engine.runs.posterior)."""
    if "\x00" in str(config_path):
        raise UserError(f"CONFIG {_show(str(config_path))}: a path cannot hold a NUL byte")
    config_path = Path(config_path)
    scenario = load_scenario(config_path)
    seed = scenario.scenario.seed if seed is None else seed
    trials = scenario.scenario.trials if trials is None else trials
    post = None
    if posterior is not None:
        from ..runs.posterior import read_posterior
        from ..runs.runner import check_posterior

        post = read_posterior(posterior)
        check_posterior(scenario, post)
    plan = check_plan({"scheduler": scheduler, "shards": shards, "trials": trials, "seed": seed,
                       "block_size": block_size, "save_trials": save_trials,
                       "partition": partition, "time": time, "cpus_per_task": cpus_per_task,
                       "mem": mem, "slug": slugify(scenario.scenario.name)[:40],
                       "scenario_hash": scenario_hash(scenario),
                       "posterior_sha256": post.sha256 if post else None},
                      names=OPTION_FLAGS, where="crisis submit")
    per_shard = -(-plan["trials"] // plan["shards"])
    if per_shard > MAX_TRIALS_PER_RUN:
        raise UserError(f"--trials {plan['trials']:,} over --shards {plan['shards']:,} is "
                        f"{per_shard:,} trials per shard, more than one process runs "
                        f"({MAX_TRIALS_PER_RUN:.0e}); use more --shards")
    try:
        check_request(scenario, trials_in_process=per_shard, total_trials=plan["trials"],
                      threads=plan["cpus_per_task"], save_trials=plan["save_trials"],
                      block_size=plan["block_size"])
    except UserError as err:
        raise UserError(f"one shard of --trials {plan['trials']:,} over --shards "
                        f"{plan['shards']:,} ({per_shard:,} trials, --cpus-per-task "
                        f"{plan['cpus_per_task']}, --block-size {plan['block_size']}): "
                        f"{err}") from None
    run_dir = _resolve(out_dir if out_dir is not None
                       else default_out_dir(scenario.scenario.name, plan["seed"]), "--out")
    _check_directive_path(run_dir, plan["scheduler"], "--out")
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: exists and is not a folder")
    folder = RunFolder(run_dir)
    with folder.lock():
        existing = sorted(p.name for p in run_dir.iterdir() if p.name != LOCK)
        if existing and not force:
            raise UserError(f"{run_dir}: folder is not empty; pass --force to reuse it, or "
                            "`crisis submit --resume` to resubmit its unfinished shards")
        folder.prepare(force=True)  # clears an earlier run's (or merge's) result files
        cleared = clear_stale_shards(folder, plan)
        for marker in folder.status_dir.glob("shard-*.failed"):
            marker.unlink(missing_ok=True)
        folder.write_scenario(scenario.source_text())  # the bytes that were hashed
        if post is not None:
            folder.write_posterior(post.data)  # the bytes that were hashed
        entry = _submit(run_dir, plan, list(range(plan["shards"])), dry_run,
                        compile_first=cache_problem(run_dir, plan["scenario_hash"]) is not None)
        if cleared:
            entry["cleared"] = cleared
        record = {**plan, "run_dir": str(run_dir), "submissions": [entry]}
        folder.write_submission(record)
    return record


# ---- status and resubmission ------------------------------------------------------------------
def _queue_states(record: dict) -> dict[int, str]:
    """Array index → scheduler state for tasks still known to the scheduler (best effort)."""
    if record["scheduler"] != "slurm" or shutil.which("squeue") is None:
        return {}
    jobs = [str(int(s["array_job"])) for s in record["submissions"] if s.get("array_job")]
    if not jobs:
        return {}
    proc = subprocess.run(["squeue", "-h", "-r", "-j", ",".join(jobs), "-o", "%i %T"],
                          capture_output=True, text=True, timeout=60)
    states = {}
    for line in proc.stdout.splitlines():
        match = re.fullmatch(r"\s*[0-9]+_([0-9]+)\s+(\S+)\s*", line)
        if match:
            states[int(match[1])] = match[2].lower()
    return states


def shard_states(run_dir: str | Path) -> tuple[dict, dict[int, str]]:
    """The validated ``submit.json`` and each shard's state: ``done`` (its manifest matches the
    plan), the scheduler's state while queued, ``stale`` (made with another plan), ``failed``
    or ``missing``."""
    folder = RunFolder(run_dir)
    record = load_record(run_dir)
    queue = _queue_states(record)
    states = {}
    for i in range(record["shards"]):
        state = shard_state(folder.shard(i, record["shards"]), record, i)
        if state == "done":
            states[i] = "done"
        elif i in queue:
            states[i] = queue[i]
        elif state == "stale":
            states[i] = "stale"
        elif folder.failed_marker(i).is_file():
            states[i] = "failed"
        else:
            states[i] = "missing"
    return record, states


def merged_state(run_dir: str | Path, record: dict) -> str:
    """``yes`` (a merged manifest of this plan), ``no``, or ``stale`` (merged from another)."""
    folder = RunFolder(run_dir)
    if not folder.is_complete:
        return "no"
    try:
        manifest = folder.read_manifest()
    except (UserError, RecursionError):
        return "stale"
    expected = {k: record[k] for k in ("scenario_hash", "seed", "trials", "block_size",
                                       "save_trials", "shards")}
    return "yes" if all(_same(manifest.get(k), v) for k, v in expected.items()) else "stale"


def resubmit(run_dir, *, dry_run: bool = False) -> dict:
    """Resubmit the shards that are neither done nor still queued or running (under the run
    folder's lock); without ``dry_run``, shards made with another plan are removed first."""
    run_dir = _resolve(run_dir, "--resume")
    _check_directive_path(run_dir, load_record(run_dir)["scheduler"], "--resume")
    folder = RunFolder(run_dir)
    with folder.lock():
        record = load_record(run_dir)  # as it is now that we hold the folder
        cleared = [] if dry_run else clear_stale_shards(folder, record)
        record, states = shard_states(run_dir)
        todo = [i for i, s in states.items() if s in ("failed", "missing", "stale")]
        if not todo:
            busy = [i for i, s in states.items() if s != "done"]
            raise UserError(f"{run_dir}: nothing to resubmit ("
                            + (f"{len(busy)} shards still queued or running" if busy
                               else "every shard is done; run `crisis merge`") + ")")
        last = record["submissions"][-1]
        if not dry_run and record["scheduler"] == "slurm" and last["merge_job"] and \
                shutil.which("scancel"):
            # a validated job id (digits): never an option
            subprocess.run(["scancel", str(int(last["merge_job"]))], capture_output=True,
                           timeout=60)
        entry = _submit(run_dir, record, todo, dry_run,
                        compile_first=cache_problem(run_dir, record["scenario_hash"]) is not None)
        if cleared:
            entry["cleared"] = cleared
        record["submissions"].append(entry)
        record["run_dir"] = str(run_dir)
        folder.write_submission(record)
    return record


# ---- the job script's question: is this shard done with this plan? ----------------------------
_USAGE = ("usage: python -m engine.scale.hpc shard-state RUN_DIR INDEX SHARDS TRIALS SEED "
          "BLOCK_SIZE SAVE_TRIALS SCENARIO_HASH [POSTERIOR_SHA256] | warm RUN_DIR | "
          "cache-copy RUN_DIR CACHE_DIR")


def job_shard_state(argv: list[str]) -> str:
    """What a job does with its shard: ``done``, ``resume``, ``run`` (a fresh run with --force,
    which also replaces a stale shard) or ``superseded`` (submit.json holds another plan)."""
    if len(argv) not in (9, 10) or argv[0] != "shard-state" or not all(
            re.fullmatch(r"[0-9]{1,20}", a) for a in argv[2:8]) or (
            len(argv) == 10 and not re.fullmatch(r"[0-9a-f]{64}", argv[9])):
        raise UserError(_USAGE)
    run_dir = Path(argv[1])
    index, count, trials, seed, block_size, save_trials = (int(a) for a in argv[2:8])
    plan = {"shards": count, "trials": trials, "seed": seed, "block_size": block_size,
            "save_trials": save_trials, "scenario_hash": argv[8],
            "posterior_sha256": argv[9] if len(argv) == 10 else None}
    record = load_record(run_dir)
    if any(not _same(record[k], plan[k]) for k in RESULT_KEYS) or index >= count:
        return "superseded"
    state = shard_state(RunFolder(run_dir).shard(index, count), record, index)
    return state if state in ("done", "resume") else "run"


def _job_step(argv: list[str]) -> str:
    """A compile job's ``warm`` or a shard's ``cache-copy``: what to log."""
    if argv[:1] == ["warm"] and len(argv) == 2:
        count = warm(argv[1])
        return f"published {count} compiled kernel files to {RunFolder(argv[1]).numba_cache_dir}"
    if argv[:1] == ["cache-copy"] and len(argv) == 3:
        count = copy_cache(argv[1], argv[2])
        return (f"copied {count} compiled kernel files from "
                f"{RunFolder(argv[1]).numba_cache_dir}")
    raise UserError(_USAGE)


def _main(argv: list[str]) -> int:
    if argv[:1] in (["warm"], ["cache-copy"]):
        try:
            print(_job_step(argv), flush=True)
        except UserError as err:
            print(f"{argv[0]}: {err}", file=sys.stderr)
            return 2 if str(err) == _USAGE else 1
        return 0
    try:
        print(job_shard_state(argv))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
