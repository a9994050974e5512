"""HPC job scripts are safe to run: hostile options, tampered ``submit.json``, planted caches.

* Every value that reaches a job script is checked (scheduler formats for ``--mem``, ``--time``,
  ``--partition``; the run options' bounds; printable, directive-safe run folder paths); a bad one
  is exit 2 naming the option, and no script is written.
* ``submit.json`` is validated whole before ``--resume`` or ``status`` use it: exit 2 naming the
  file and the key; a job id reaches ``scancel`` only as digits.
* The Numba cache folder a job uses is a fresh one of ours that no one else can write
  (``NUMBA_CACHE_DIR`` holds pickled index files), removed when the job ends; the compile job's
  published cache reaches it only as a checked copy (no links followed, only files of ours that
  no one else can write, each with the digest ``cache.json`` lists), else not at all.
* A shard counts as done only when its manifest matches the plan (status, ``--resume`` and the
  job script); ``submit`` holds the run folder's lock while it writes.

Job scripts are run for real with ``bash``; the engine they call is replaced by a stub (a bash
script that logs its arguments, its ``NUMBA_CACHE_DIR`` and the files in it), so a test takes
milliseconds.
The helpers here are shared with ``test_fuzz_hpc.py``.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine.scale.hpc as hpc
from engine.cli.main import main
from engine.core.simulate import set_threads
from engine.errors import UserError
from engine.runs.folder import RunFolder
from engine.runs.runner import run_scenario
from engine.scale import kernel_cache

ROOT = Path(__file__).parent.parent
NATO = ROOT / "configs" / "nato-baltic-2024.toml"
OTHER = ROOT / "configs" / "unsc-veto.toml"
C_BLANKS = " \t\n\v\f\r"  # C's isspace() in the C locale


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_refusal(result, *names: str) -> None:
    """Exit 2 with a message naming one of ``names``; never a traceback or internal error."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output, \
        result.output
    assert any(name in result.output for name in names), (names, result.output)


# ---- how sbatch reads #SBATCH lines (a port of slurm 22.05 src/sbatch/opt.c) ------------------
def sbatch_words(text: str) -> list[str]:
    """The arguments sbatch takes from the rest of one ``#SBATCH`` line: blank-separated,
    ``"…"`` / ``'…'`` group, ``\\`` escapes, an unquoted ``#`` starts a comment."""
    words, i, n = [], 0, len(text)
    while True:
        while i < n and text[i] in C_BLANKS:
            i += 1
        word, quoted, quote, escaped = [], False, "", False
        while i < n and (quoted or text[i] not in C_BLANKS) and text[i] != "\n":
            c = text[i]
            if escaped:
                escaped = False
            elif c == "\\":
                escaped, i = True, i + 1
                continue
            elif quoted:
                if c == quote:
                    quoted, i = False, i + 1
                    continue
            elif c in "\"'":
                quoted, quote, i = True, c, i + 1
                continue
            elif c == "#":
                break
            word.append(c)
            i += 1
        if quoted:
            raise ValueError(f"sbatch: unmatched {quote} in {text!r}")
        if not word:
            return words
        words.append("".join(word))


def sbatch_directives(script: str) -> list[str]:
    """Every argument of the script's #SBATCH lines, as sbatch reads them."""
    words = []
    for line in script.split("\n")[1:]:
        if line.startswith("#SBATCH"):
            words += sbatch_words(line[len("#SBATCH"):])
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        else:
            break
    return words


# ---- running job scripts with a stub engine ---------------------------------------------------
STUB = r"""#!/bin/bash
# stands in for the Python interpreter of a job script: logs each call, answers shard-state
{ printf '%s\0' CALL "$@"
  printf '%s\0' CACHE "${NUMBA_CACHE_DIR:-}" \
      "$(stat -c '%u %a' -- "${NUMBA_CACHE_DIR:-/nonexistent}" 2>/dev/null)" \
      "$(cd -- "${NUMBA_CACHE_DIR:-/nonexistent}" 2>/dev/null && find . -type f | LC_ALL=C sort)"
} >> @LOG@
if [ -n "${STUB_WRITES_CACHE:-}" ] && [ "${2:-}" = engine ]; then  # as a compiling run does
    mkdir -p "$NUMBA_CACHE_DIR/kernels_x" && echo new > "$NUMBA_CACHE_DIR/kernels_x/k-1.py3.nbi"
fi
if [ -n "${STUB_FAIL_RESUME:-}" ] && [ "${3:-}" = run ] && [ "${4:-}" = --resume ]; then
    exit 1
fi
if [ "${2:-}" = engine.scale.hpc ]; then
    if [ -n "${STUB_REAL_CHECK:-}" ]; then
        exec @PYTHON@ "$@"
    fi
    echo "${STUB_STATE:-run}"
fi
exit 0
"""


def make_stub(folder: Path) -> tuple[Path, Path]:
    """A stub interpreter in ``folder`` and the log it appends to."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "stub.log"
    stub = folder / "stub-python"
    stub.write_text(STUB.replace("@LOG@", shlex.quote(str(log)))
                    .replace("@PYTHON@", shlex.quote(sys.executable)))
    stub.chmod(0o755)
    return stub, log


@contextmanager
def stubbed_python(stub: Path):
    """Job scripts rendered inside call ``stub`` instead of this interpreter."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hpc, "python_command",
                   lambda module="engine": f"{shlex.quote(str(stub))} -m {module}")
        yield


def stub_calls(log: Path) -> list[dict]:
    """The stub's calls: ``argv`` (after the interpreter), ``cache``, ``cache_stat`` and
    ``cache_files`` (the files in the cache folder when it was called)."""
    if not log.exists():
        return []
    parts = log.read_bytes().decode().split("\0")
    calls, i = [], 0
    while i < len(parts) - 1:
        assert parts[i] == "CALL", parts[i:i + 3]
        j = parts.index("CACHE", i)
        calls.append({"argv": parts[i + 1:j], "cache": parts[j + 1],
                      "cache_stat": parts[j + 2], "cache_files": parts[j + 3].split()})
        i = j + 4
    return calls


def run_script(script: Path, scheduler: str, scratch: Path, index: int = 0,
               **env: str) -> subprocess.CompletedProcess:
    """Run a rendered array script with bash as array task ``index`` (scratch = TMPDIR)."""
    task = ({"SLURM_ARRAY_TASK_ID": str(index), "SLURM_CPUS_PER_TASK": "1"}
            if scheduler == "slurm" else {"PBS_ARRAY_INDEX": str(index), "NCPUS": "1"})
    full = {"PATH": os.environ["PATH"], "HOME": str(scratch), "TMPDIR": str(scratch),
            "LC_ALL": "C", **task, **env}
    return subprocess.run(["bash", str(script)], env=full, cwd=scratch, capture_output=True,
                          text=True, timeout=120)


def plan_for(scheduler: str, **values) -> dict:
    """A valid plan (what render_slurm / render_pbs take), with ``values`` replacing keys."""
    plan = {"scheduler": scheduler, "shards": 2, "trials": 2000, "seed": 7, "block_size": 4096,
            "save_trials": 0, "partition": None, "time": None, "cpus_per_task": 1, "mem": None,
            "slug": "test", "scenario_hash": "ab" * 32}
    plan.update(values)
    return plan


def script_name(scheduler: str) -> str:
    return "shards.sbatch" if scheduler == "slurm" else "shards.pbs"


# ---- 1. shell lines injected into job scripts -------------------------------------------------
VALID = {"slurm": {"--mem": "2G", "--time": "00:30:00", "--partition": "short"},
         "pbs": {"--mem": "2gb", "--time": "01:00:00", "--partition": "workq"}}
PAYLOADS = ["{v}\ntouch {m}", "{v}; touch {m}", "{v}$(touch {m})", "{v}`touch {m}`",
            "{v} && touch {m}", "{v}\rtouch {m}", "{v}\x00", "{v} #", "-{v}", "'{v}'", '{v}"',
            "{v}\u2028touch {m}", "\uff12G", ""]


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("flag", ["--mem", "--time", "--partition"])
@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_hostile_job_values_are_refused(scheduler, flag, payload, tmp_path):
    marker = tmp_path / "INJECTED"
    run_dir = tmp_path / "run"
    value = payload.format(v=VALID[scheduler][flag], m=marker)
    result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--scheduler", scheduler,
                    "--out", run_dir, flag, value, "--dry-run")
    assert_clean_refusal(result, flag)
    assert not (run_dir / script_name(scheduler)).exists()
    assert not marker.exists()


HOSTILE_PLAN_VALUES = {  # each ends the shell line (#) so that the injected command runs alone
    "mem": "2G\ntouch {m} #", "time": "1:00:00\ntouch {m} #", "partition": "short\ntouch {m} #",
    "cpus_per_task": "1\ntouch {m} #", "slug": "x\ntouch {m} #", "trials": "2000 ; touch {m} #",
    "seed": "$(touch {m})", "block_size": "`touch {m}`", "save_trials": "0;touch {m} #",
    "shards": "2\ntouch {m} #", "scenario_hash": "$(touch {m})",
}


@pytest.mark.parametrize("key", sorted(HOSTILE_PLAN_VALUES))
@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_renderers_never_put_a_command_into_a_script(scheduler, key, tmp_path):
    """Called directly, a renderer refuses a hostile plan value; were a script written, running
    it must not run the injected command."""
    marker = tmp_path / "INJECTED"
    stub, log = make_stub(tmp_path / "stub")
    run_dir = tmp_path / "run"
    render = hpc.render_slurm if scheduler == "slurm" else hpc.render_pbs
    plan = plan_for(scheduler, **{key: HOSTILE_PLAN_VALUES[key].format(m=marker)})
    with stubbed_python(stub):
        try:
            array, merge = render(run_dir, plan, [0, 1])
        except UserError as err:
            assert key in str(err) or key.replace("_", "-") in str(err), str(err)
            return
    run_dir.mkdir()
    (run_dir / "shards.sh").write_text(array)
    (run_dir / "merge.sh").write_text(merge)
    run_script(run_dir / "shards.sh", scheduler, tmp_path)
    subprocess.run(["bash", str(run_dir / "merge.sh")], cwd=tmp_path, capture_output=True,
                   timeout=60)
    assert not marker.exists(), f"{key}: the script ran the injected command"


def test_run_folder_with_blanks_and_percent_works_on_slurm(tmp_path):
    """SLURM: a run folder with blanks, %, # and quotes reaches sbatch as one path (quoted, %
    doubled so that sbatch's filename patterns keep it) and the shard command as one word."""
    stub, log = make_stub(tmp_path / "stub")
    run_dir = tmp_path / "my runs 50%x #1 'q'"
    with stubbed_python(stub):
        result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", run_dir,
                        "--dry-run")
    assert result.exit_code == 0, result.output
    escaped = str(run_dir.resolve()).replace("%", "%%")
    words = sbatch_directives((run_dir / "shards.sbatch").read_text())
    assert f"--output={escaped}/logs/shard-%a.out" in words, words
    assert f"--error={escaped}/logs/shard-%a.err" in words, words
    assert all(w.startswith("--") for w in words), words
    merge_words = sbatch_directives((run_dir / "merge.sbatch").read_text())
    assert f"--output={escaped}/logs/merge.out" in merge_words, merge_words
    proc = run_script(run_dir / "shards.sbatch", "slurm", tmp_path, index=1)
    assert proc.returncode == 0, proc.stderr
    run_call = stub_calls(log)[-1]["argv"]
    assert run_call[:3] == ["-m", "engine", "run"], run_call
    assert run_call[run_call.index("--out") + 1] == str(run_dir.resolve())
    assert run_call[3] == str(run_dir.resolve() / "scenario.toml")
    assert run_call[run_call.index("--shard") + 1] == "1/2"


@pytest.mark.parametrize("scheduler,name", [
    ("slurm", 'a"b'), ("slurm", "a\\b"), ("slurm", "a\tb"), ("slurm", "a\nb"),
    ("slurm", "a\x1b[2Jb"), ("slurm", "x-hetjob"), ("pbs", "a b"), ("pbs", "a%b"),
    ("pbs", "a:b"), ("pbs", "a'b"), ("pbs", "a\nb"), ("pbs", "a$(id)b"),
])
def test_run_folder_a_directive_cannot_carry_is_refused(scheduler, name, tmp_path):
    run_dir = tmp_path / name
    result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--scheduler", scheduler,
                    "--out", run_dir, "--dry-run")
    assert_clean_refusal(result, "--out")
    assert not (run_dir / script_name(scheduler)).exists()


def _slurm_down() -> str | None:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return "no SLURM client here (.ci/slurm-setup.sh installs and starts one)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                          timeout=30)
    if proc.returncode != 0 or not any(s.strip() in ("idle", "mixed", "allocated")
                                       for s in proc.stdout.splitlines()):
        return "SLURM not running here"
    return None


@pytest.mark.slow
def test_real_sbatch_reads_quoted_paths(tmp_path):
    """Real sbatch writes the logs of a run folder with blanks and % where the folder is."""
    reason = _slurm_down()
    if reason:
        pytest.skip(reason)
    import time

    stub, log = make_stub(tmp_path / "stub")
    run_dir = tmp_path / "a run 100%j"
    with stubbed_python(stub):
        result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", run_dir)
    assert result.exit_code == 0, result.output
    logs = run_dir / "logs"
    wanted = [logs / "compile.out", logs / "shard-0.out", logs / "shard-1.out",
              logs / "merge.out"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(p.exists() for p in wanted):
        time.sleep(1)
    assert all(p.exists() for p in wanted), sorted(p.name for p in logs.iterdir())
    assert "shard 1/2" in (logs / "shard-1.out").read_text()
    assert "compiling the kernels on" in (logs / "compile.out").read_text()
    assert sorted(p.name for p in logs.iterdir()) == sorted(
        ["compile.out", "compile.err", "shard-0.out", "shard-0.err", "shard-1.out",
         "shard-1.err", "merge.out", "merge.err"])


# ---- 2. submit.json is validated whole --------------------------------------------------------
def submitted(tmp_path: Path, scheduler: str = "slurm") -> Path:
    run_dir = (tmp_path / "run").resolve()
    result = invoke("submit", NATO, "--shards", 4, "--trials", 2000, "--scheduler", scheduler,
                    "--out", run_dir, "--dry-run")
    assert result.exit_code == 0, result.output
    return run_dir


def tamper(run_dir: Path, path: tuple, value) -> None:
    record = json.loads((run_dir / "submit.json").read_text())
    target = record
    for key in path[:-1]:
        target = target[key]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    (run_dir / "submit.json").write_text(json.dumps(record))


DELETE = object()
TAMPERED = [
    (("trials",), "2000 ; touch {m}"), (("seed",), "$(touch {m})"), (("slug",), "x\ntouch {m}"),
    (("cpus_per_task",), "1\ntouch {m}"), (("cpus_per_task",), True), (("shards",), 0),
    (("shards",), 10**30), (("shards",), 4.0), (("shards",), 5000), (("trials",), -1),
    (("block_size",), None), (("save_trials",), "0"), (("scenario_hash",), "zz"),
    (("scheduler",), "bash"), (("partition",), "a\ntouch {m}"), (("time",), "1:00;touch {m}"),
    (("mem",), "2G\ntouch {m}"), (("mem",), "2gb"), (("run_dir",), "/x\ntouch {m}"),
    (("evil",), 1), (("trials",), DELETE), (("submissions",), []), (("submissions",), "x"),
    (("submissions", 0, "shards"), [99]), (("submissions", 0, "shards"), [0, 0]),
    (("submissions", 0, "merge_job"), "--me"), (("submissions", 0, "array_job"), "1;touch {m}"),
    (("submissions", 0, "compile_job"), "1;touch {m}"), (("submissions", 0, "compile_job"), 7),
    (("submissions", 0, "compile_job"), "12.server"),  # a PBS id in a SLURM record
    (("submissions", 0, "compile_script"), "compile.pbs"),
    (("submissions", 0, "compile_script"), "../compile.sbatch"),
    (("submissions", 0, "merge_job"), 123), (("submissions", 0, "merge_job"), "12\n34"),
    (("submissions", 0, "dry_run"), "yes"), (("submissions", 0, "date"), "x\ny"),
    (("submissions", 0, "array_script"), "../../x.sbatch"), (("submissions", 0, "extra"), 1),
]


@pytest.mark.parametrize("path,value", TAMPERED, ids=[".".join(map(str, p)) + f"={v!r}"[:30]
                                                      for p, v in TAMPERED])
def test_tampered_submit_json_is_a_clean_error(path, value, tmp_path):
    marker = tmp_path / "INJECTED"
    run_dir = submitted(tmp_path)
    script = (run_dir / "shards.sbatch").read_bytes()
    if isinstance(value, str):
        value = value.format(m=marker)
    tamper(run_dir, path, value)
    key = str(path[-1])
    for args in (["submit", "--resume", run_dir, "--dry-run"], ["status", run_dir]):
        result = invoke(*args)
        assert_clean_refusal(result, key)
        assert "submit.json" in result.output, result.output
    assert (run_dir / "shards.sbatch").read_bytes() == script
    assert not marker.exists()


@pytest.mark.parametrize("text", ["[]", "not json", "", '{"a": ', "[" * 100_000, "null",
                                  '{"shards": NaN}'])
def test_unreadable_submit_json_is_a_clean_error(text, tmp_path):
    run_dir = submitted(tmp_path)
    (run_dir / "submit.json").write_text(text)
    for args in (["submit", "--resume", run_dir, "--dry-run"], ["status", run_dir]):
        assert_clean_refusal(invoke(*args), "submit.json")


def fake_scheduler(bin_dir: Path, log: Path, job_id: str = "4242") -> None:
    """sbatch and qsub printing ``job_id``, scancel and squeue that log their arguments."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, out in (("sbatch", job_id), ("qsub", job_id), ("scancel", ""), ("squeue", "")):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/bash\nprintf '{name}' >> {shlex.quote(str(log))}\n"
                        f"printf ' [%s]' \"$@\" >> {shlex.quote(str(log))}\n"
                        f"echo >> {shlex.quote(str(log))}\n"
                        + (f"printf '%s\\n' {shlex.quote(out)}\n" if out else ""))
        tool.chmod(0o755)


def test_merge_job_reaches_scancel_only_as_a_job_id(tmp_path, monkeypatch):
    bin_dir, log = tmp_path / "bin", tmp_path / "scheduler.log"
    fake_scheduler(bin_dir, log)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run_dir = (tmp_path / "run").resolve()
    result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", run_dir)
    assert result.exit_code == 0, result.output
    record = json.loads((run_dir / "submit.json").read_text())
    assert record["submissions"][0]["array_job"] == "4242"
    tamper(run_dir, ("submissions", 0, "merge_job"), "--me")
    log.unlink()
    assert_clean_refusal(invoke("submit", "--resume", run_dir), "merge_job")
    assert not log.exists() or "scancel" not in log.read_text()
    tamper(run_dir, ("submissions", 0, "merge_job"), "77")
    result = invoke("submit", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert "scancel [77]\n" in log.read_text()


@pytest.mark.parametrize("printed", ["--me", "12;x\n--me", "", "12 13", "ab"])
def test_submit_refuses_a_job_id_that_is_not_one(printed, tmp_path, monkeypatch):
    bin_dir, log = tmp_path / "bin", tmp_path / "scheduler.log"
    fake_scheduler(bin_dir, log, job_id=printed)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", tmp_path / "run")
    assert_clean_refusal(result, "sbatch printed")
    assert "--dependency=afterok:--me" not in log.read_text()


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_compile_job_first_then_the_array_then_the_merge(scheduler, tmp_path, monkeypatch):
    """The array waits for the compile job to end (``afterany``: a failed one leaves each
    shard to compile), the merge for the array to succeed; ``--resume`` submits a compile job
    again only while the run folder holds no cache that fits."""
    bin_dir, log = tmp_path / "bin", tmp_path / "scheduler.log"
    fake_scheduler(bin_dir, log)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    run_dir = (tmp_path / "run").resolve()
    result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--scheduler", scheduler,
                    "--out", run_dir)
    assert result.exit_code == 0, result.output
    assert "compile job 4242 first" in result.output
    suffix = "sbatch" if scheduler == "slurm" else "pbs"
    after = ((lambda kind: f"[--dependency={kind}:4242]") if scheduler == "slurm"
             else (lambda kind: f"[-W] [depend={kind}:4242]"))
    submit = "sbatch [--parsable]" if scheduler == "slurm" else "qsub"
    expected = [f"{submit} [{run_dir}/compile.{suffix}]",
                f"{submit} {after('afterany')} [{run_dir}/shards.{suffix}]",
                f"{submit} {after('afterok')} [{run_dir}/merge.{suffix}]"]
    assert log.read_text().splitlines() == expected
    entry = json.loads((run_dir / "submit.json").read_text())["submissions"][0]
    assert (entry["compile_job"], entry["compile_script"]) == ("4242", f"compile.{suffix}")
    assert hpc.load_record(run_dir)["submissions"][0]["compile_job"] == "4242"
    # the compile job never ran: --resume submits it again
    log.unlink()
    assert invoke("submit", "--resume", run_dir).exit_code == 0
    assert [line.split()[-1] for line in log.read_text().splitlines()
            if line.startswith(("sbatch", "qsub"))] == [
        f"[{run_dir}/{name}.{suffix}]" for name in ("compile", "shards", "merge")]
    # with a published cache that fits, no compile job: the array goes first
    (tmp_path / "compiled").mkdir(mode=0o700)  # as mktemp -d makes it
    source = tmp_path / "compiled" / "kernels_ab12"
    source.mkdir()
    (source / "k-1.py311.nbi").write_bytes(b"index")
    kernel_cache.publish_cache(source.parent, run_dir, hpc.load_record(run_dir)["scenario_hash"])
    log.unlink()
    result = invoke("submit", "--resume", run_dir)
    assert result.exit_code == 0, result.output
    assert "kernels from its numba-cache/" in result.output
    assert [line for line in log.read_text().splitlines()
            if line.startswith(("sbatch", "qsub"))] \
        == [f"{submit} [{run_dir}/shards.{suffix}]",
            f"{submit} {after('afterok')} [{run_dir}/merge.{suffix}]"]
    last = hpc.load_record(run_dir)["submissions"][-1]
    assert last["compile_job"] is None and last["compile_script"] is None


# ---- 3. a fresh private Numba cache per job, seeded only with a checked copy -------------------
def _planted(scratch: Path, kind: str, tmp_path: Path) -> Path:
    planted = scratch / f"crisis-numba-{os.getuid()}"  # the per-user folder jobs once shared
    if kind == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("making a folder owned by someone else needs root")
        nobody = pwd.getpwnam("nobody")
        planted.mkdir(mode=0o755)
        (planted / "evil.nbi").write_text("planted")
        os.chown(planted / "evil.nbi", nobody.pw_uid, nobody.pw_gid)
        os.chown(planted, nobody.pw_uid, nobody.pw_gid)
    elif kind == "world-writable":
        planted.mkdir()
        planted.chmod(0o777)
        (planted / "evil.nbi").write_text("planted")
    elif kind == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        planted.symlink_to(elsewhere)
    elif kind == "file":
        planted.write_text("planted")
    return planted


@pytest.mark.parametrize("kind", ["other-owner", "world-writable", "symlink", "file"])
@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_each_job_compiles_into_a_fresh_private_folder(scheduler, kind, tmp_path):
    """Shard tasks and the compile job each get a new ``mktemp -d`` folder (private, not one
    planted in scratch), removed when the job ends; no two tasks share one."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    scratch.chmod(0o1777)  # like /tmp
    planted = _planted(scratch, kind, tmp_path)
    stub, log = make_stub(tmp_path / "stub")
    run_dir = tmp_path / "run"
    with stubbed_python(stub):
        result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--scheduler",
                        scheduler, "--out", run_dir, "--dry-run")
    assert result.exit_code == 0, result.output
    suffix = "sbatch" if scheduler == "slurm" else "pbs"
    for index in (0, 1):
        proc = run_script(run_dir / script_name(scheduler), scheduler, scratch, index=index)
        assert proc.returncode == 0, proc.stderr
    proc = run_script(run_dir / f"compile.{suffix}", scheduler, scratch)
    assert proc.returncode == 0, proc.stderr
    calls = stub_calls(log)
    assert [c["argv"][2] for c in calls] == ["shard-state", "cache-copy", "run"] * 2 + ["warm"]
    caches = [c["cache"] for c in calls if c["argv"][2] in ("cache-copy", "warm")]
    assert len(set(caches)) == 3, caches  # one per job
    for call in calls[1:3] + calls[4:]:
        cache = Path(call["cache"])
        assert cache.parent == scratch and cache.name.startswith("crisis-numba."), cache
        assert call["cache_stat"] == f"{os.getuid()} 700", call  # ours, private
        assert not cache.exists()  # removed when the job ended
    assert all(c["argv"][-1] == c["cache"] for c in calls if c["argv"][2] == "cache-copy")
    assert os.path.lexists(planted)  # left alone, never used


FAKE_CACHE = {"kernels_ab12/trial._run_trials-244.py311.nbi": b"index",
              "kernels_ab12/trial._run_trials-244.py311.1.nbc": b"code" * 100,
              "kernels_ab12/rng.mix64-31.py311.nbi": b"index 2"}


def published(tmp_path: Path, files: dict | None = None) -> Path:
    """A dry-run submission whose ``numba-cache/`` holds ``files`` (as a compile job leaves it:
    a private Numba cache published with the installed kernels' stamps)."""
    run_dir = submitted(tmp_path)
    source = tmp_path / "compiled"
    source.mkdir(mode=0o700)  # as mktemp -d makes it
    for name, data in (files or FAKE_CACHE).items():
        (source / name).parent.mkdir(exist_ok=True)
        (source / name).write_bytes(data)
    (source / "kernels_ab12" / "not-a-cache-file.txt").write_text("left out")
    record = json.loads((run_dir / "submit.json").read_text())
    files = files or FAKE_CACHE
    assert kernel_cache.publish_cache(source, run_dir, record["scenario_hash"]) == len(files)
    return run_dir


def private_folder(tmp_path: Path) -> Path:
    dest = Path(tempfile.mkdtemp(dir=tmp_path))
    assert oct(dest.stat().st_mode & 0o777) == "0o700"
    return dest


def test_shard_runs_on_a_copy_of_the_published_cache(tmp_path):
    run_dir = published(tmp_path)
    cache = run_dir / "numba-cache"
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file()) == \
        sorted([*FAKE_CACHE, "cache.json"])
    stub, log = make_stub(tmp_path / "stub")
    with stubbed_python(stub):
        assert invoke("submit", "--resume", run_dir, "--dry-run").exit_code == 0
    proc = run_script(run_dir / "shards.sbatch", "slurm", tmp_path, index=1,
                      STUB_REAL_CHECK="1")
    assert proc.returncode == 0, proc.stderr
    assert f"copied 3 compiled kernel files from {cache}" in proc.stdout, proc.stdout
    assert "numba cache: 0 files written by this shard" in proc.stdout, proc.stdout
    run = stub_calls(log)[-1]
    assert run["argv"][2] == "run" and run["cache"] != str(cache)
    assert run["cache_files"] == sorted(f"./{name}" for name in FAKE_CACHE)  # the copy
    # a run that compiles (Numba writes to its cache) says so in the shard's log
    proc = run_script(run_dir / "shards.sbatch", "slurm", tmp_path, index=1,
                      STUB_REAL_CHECK="1", STUB_WRITES_CACHE="1")
    assert proc.returncode == 0, proc.stderr
    assert "numba cache: 1 files written by this shard" in proc.stdout, proc.stdout
    assert cache.is_dir() and not (cache / "kernels_x").exists()  # the shared one: untouched


def _spoil(cache: Path, kind: str, tmp_path: Path) -> None:
    index = cache / "kernels_ab12" / "rng.mix64-31.py311.nbi"
    listing = cache / "cache.json"
    record = json.loads(listing.read_text())
    if kind == "link-folder":
        moved = tmp_path / "moved"
        cache.rename(moved)
        cache.symlink_to(moved)
    elif kind == "link-file":
        target = tmp_path / "elsewhere.nbi"
        target.write_bytes(index.read_bytes())
        index.unlink()
        index.symlink_to(target)
    elif kind == "link-subfolder":
        sub = cache / "kernels_ab12"
        sub.rename(tmp_path / "sub")
        sub.symlink_to(tmp_path / "sub")
    elif kind == "group-writable":
        index.chmod(0o664)
    elif kind == "world-writable-folder":
        cache.chmod(0o777)
    elif kind == "other-owner":
        if os.geteuid() != 0:
            pytest.skip("making a file owned by someone else needs root")
        nobody = pwd.getpwnam("nobody")
        os.chown(index, nobody.pw_uid, nobody.pw_gid)
    elif kind == "fifo":
        index.unlink()
        os.mkfifo(index, 0o600)
    elif kind == "changed-byte":
        data = bytearray(index.read_bytes())
        data[0] ^= 1
        index.write_bytes(bytes(data))
    elif kind == "missing-file":
        index.unlink()
    elif kind == "missing-listing":
        listing.unlink()
    elif kind in ("traversal", "absolute", "extra-key", "other-numba", "kernels-changed"):
        if kind == "traversal":
            record["files"][0]["path"] = "../../x.nbi"
        elif kind == "absolute":
            record["files"][0]["path"] = "/etc/passwd.nbi"
        elif kind == "extra-key":
            record["evil"] = 1
        elif kind == "other-numba":
            record["numba"] = "0.1.0"
        else:
            record["sources"][0]["mtime_ns"] += 1
        listing.write_text(json.dumps(record))
    else:
        raise AssertionError(kind)


SPOILED = ["link-folder", "link-file", "link-subfolder", "group-writable",
           "world-writable-folder", "other-owner", "fifo", "changed-byte", "missing-file",
           "missing-listing", "traversal", "absolute", "extra-key", "other-numba",
           "kernels-changed"]


@pytest.mark.parametrize("kind", SPOILED)
def test_a_spoiled_published_cache_is_not_copied(kind, tmp_path):
    """Anything wrong with ``numba-cache/``: nothing is copied (the shard compiles for itself,
    still correct), the job says why and goes on, and ``--resume`` submits a compile job."""
    run_dir = published(tmp_path)
    dest = private_folder(tmp_path)
    assert kernel_cache.copy_cache(run_dir, dest) == 3  # as published: copied
    _clear_folder(dest)
    _spoil(run_dir / "numba-cache", kind, tmp_path)
    with pytest.raises(UserError) as err:
        kernel_cache.copy_cache(run_dir, dest)
    assert list(dest.iterdir()) == [], kind
    assert "Traceback" not in str(err.value)
    record = json.loads((run_dir / "submit.json").read_text())
    assert kernel_cache.cache_problem(run_dir, record["scenario_hash"]) is not None
    stub, log = make_stub(tmp_path / "stub")
    with stubbed_python(stub):
        assert invoke("submit", "--resume", run_dir, "--dry-run").exit_code == 0
    entry = json.loads((run_dir / "submit.json").read_text())["submissions"][-1]
    assert entry["compile_script"] == "compile.sbatch", entry
    proc = run_script(run_dir / "shards.sbatch", "slurm", tmp_path, index=0,
                      STUB_REAL_CHECK="1")
    assert proc.returncode == 0, proc.stderr
    assert "cache-copy:" in proc.stderr and "shard 0: compiling here" in proc.stderr
    assert stub_calls(log)[-1]["argv"][2] == "run"
    assert stub_calls(log)[-1]["cache_files"] == []


def _clear_folder(folder: Path) -> None:
    for child in folder.iterdir():
        shutil.rmtree(child)


@pytest.mark.parametrize("kind", ["link", "group-writable", "not-empty"])
def test_cache_is_copied_only_into_an_empty_private_folder(kind, tmp_path):
    run_dir = published(tmp_path)
    dest = private_folder(tmp_path)
    if kind == "link":
        link = tmp_path / "link"
        link.symlink_to(dest)
        dest = link
    elif kind == "group-writable":
        dest.chmod(0o770)
    else:
        (dest / "x").write_text("x")
    with pytest.raises(UserError):
        kernel_cache.copy_cache(run_dir, dest)
    assert not (Path(os.path.realpath(dest)) / "kernels_ab12").exists()


def test_publishing_replaces_the_cache_and_never_follows_a_link(tmp_path):
    run_dir = published(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("keep")
    shutil.rmtree(run_dir / "numba-cache")
    (run_dir / "numba-cache").symlink_to(elsewhere)
    record = json.loads((run_dir / "submit.json").read_text())
    source = tmp_path / "compiled"
    assert kernel_cache.publish_cache(source, run_dir, record["scenario_hash"]) == 3
    assert not (run_dir / "numba-cache").is_symlink()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep"]
    # published again over a real folder: replaced whole, nothing left beside it
    (source / "kernels_ab12" / "rng.mix64-31.py311.nbi").unlink()
    assert kernel_cache.publish_cache(source, run_dir, record["scenario_hash"]) == 2
    assert sorted(p.name for p in run_dir.iterdir() if "numba" in p.name) == ["numba-cache"]
    dest = private_folder(tmp_path)
    assert kernel_cache.copy_cache(run_dir, dest) == 2
    # a link in the compile job's own cache stops the publishing
    (source / "kernels_ab12" / "evil.nbi").symlink_to(elsewhere / "keep")
    with pytest.raises(UserError, match="evil.nbi"):
        kernel_cache.publish_cache(source, run_dir, record["scenario_hash"])
    # the last one still stands
    assert kernel_cache.copy_cache(run_dir, private_folder(tmp_path)) == 2


def test_publishing_under_umask_002_gives_a_private_cache(tmp_path):
    """Numba writes group-writable files under a umask of 002 (common on clusters): inside the
    compile job's private folder that is harmless, and what is published is private anyway."""
    run_dir = submitted(tmp_path)
    source = tmp_path / "compiled"
    source.mkdir(mode=0o700)
    old = os.umask(0o002)
    try:
        (source / "kernels_ab12").mkdir(mode=0o775)
        (source / "kernels_ab12" / "k-1.py311.nbi").write_bytes(b"index")
        os.chmod(source / "kernels_ab12" / "k-1.py311.nbi", 0o664)
        record = hpc.load_record(run_dir)
        assert kernel_cache.publish_cache(source, run_dir, record["scenario_hash"]) == 1
    finally:
        os.umask(old)
    cache = run_dir / "numba-cache"
    modes = {str(p.relative_to(cache)): oct(p.stat().st_mode & 0o777) for p in cache.rglob("*")}
    assert modes == {"kernels_ab12": "0o700", "kernels_ab12/k-1.py311.nbi": "0o600",
                     "cache.json": "0o600"}, modes
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    assert kernel_cache.copy_cache(run_dir, private_folder(tmp_path)) == 1
    source.chmod(0o750)  # but the compile job's own folder must be private
    with pytest.raises(UserError, match="only we can read"):
        kernel_cache.publish_cache(source, run_dir, record["scenario_hash"])


def test_job_steps_fail_cleanly_without_a_traceback(tmp_path):
    run_dir = submitted(tmp_path)
    dest = private_folder(tmp_path)
    for argv, code in ((["cache-copy", str(run_dir), str(dest)], 1),
                       (["warm", str(run_dir)], 1), (["cache-copy", str(run_dir)], 2),
                       (["warm"], 2)):
        proc = subprocess.run([sys.executable, "-m", "engine.scale.hpc", *argv],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "NUMBA_CACHE_DIR": ""}, cwd=ROOT)
        assert proc.returncode == code, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.startswith(argv[0]), proc.stderr
    assert list(dest.iterdir()) == []
    assert not (run_dir / "numba-cache").exists()


# ---- 7. stale shards and the folder lock ------------------------------------------------------
def run_shards(run_dir: Path, *, trials: int, seed: int, count: int, indices) -> None:
    for index in indices:
        run_scenario(run_dir / "scenario.toml", trials=trials, seed=seed, out_dir=run_dir,
                     shard=(index, count), force=True)
    set_threads(None)


def status_of(run_dir: Path) -> dict:
    result = invoke("status", run_dir, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_force_with_another_plan_reuses_no_old_shard(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--seed", 1, "--out",
                  run_dir, "--dry-run").exit_code == 0
    run_shards(run_dir, trials=2000, seed=1, count=2, indices=(0, 1))
    assert status_of(run_dir)["shards"] == {"0": "done", "1": "done"}
    result = invoke("submit", NATO, "--shards", 2, "--trials", 3000, "--seed", 2, "--out",
                    run_dir, "--dry-run", "--force")
    assert result.exit_code == 0, result.output
    assert status_of(run_dir)["shards"] == {"0": "missing", "1": "missing"}
    assert not any((run_dir / "shards").iterdir())  # the old seed's shards are gone
    # the same plan again keeps what is done
    run_shards(run_dir, trials=3000, seed=2, count=2, indices=(1,))
    assert invoke("submit", NATO, "--shards", 2, "--trials", 3000, "--seed", 2, "--out",
                  run_dir, "--dry-run", "--force").exit_code == 0
    assert status_of(run_dir)["shards"] == {"0": "missing", "1": "done"}


def test_force_with_another_shard_count_leaves_no_shard_to_mix(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", run_dir,
                  "--dry-run").exit_code == 0
    run_shards(run_dir, trials=2000, seed=20240411, count=2, indices=(0, 1))
    result = invoke("submit", NATO, "--shards", 3, "--trials", 2000, "--out", run_dir,
                    "--dry-run", "--force")
    assert result.exit_code == 0, result.output
    assert "stale shard folders" in result.output
    assert sorted(p.name for p in (run_dir / "shards").iterdir()) == []
    assert status_of(run_dir)["shards"] == {"0": "missing", "1": "missing", "2": "missing"}


def test_a_shard_of_another_plan_is_stale_and_resubmitted(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--seed", 1, "--out",
                  run_dir, "--dry-run").exit_code == 0
    run_shards(run_dir, trials=2000, seed=9, count=2, indices=(0,))  # another seed
    run_shards(run_dir, trials=2000, seed=1, count=2, indices=(1,))
    assert status_of(run_dir)["shards"] == {"0": "stale", "1": "done"}
    result = invoke("submit", "--resume", run_dir, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "#SBATCH --array=0\n" in (run_dir / "shards.sbatch").read_text()
    assert (run_dir / "shards" / "shard-0000-of-0002").is_dir()  # a dry run removes nothing


def test_job_script_redoes_a_stale_shard_and_skips_a_matching_one(tmp_path):
    stub, log = make_stub(tmp_path / "stub")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    run_dir = (tmp_path / "run").resolve()
    with stubbed_python(stub):
        assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--seed", 2, "--out",
                      run_dir, "--dry-run").exit_code == 0
    run_shards(run_dir, trials=2000, seed=1, count=2, indices=(0,))  # stale: seed 1
    run_shards(run_dir, trials=2000, seed=2, count=2, indices=(1,))  # done: seed 2
    script = run_dir / "shards.sbatch"
    proc = run_script(script, "slurm", scratch, index=0, STUB_REAL_CHECK="1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "already done" not in proc.stdout
    run = [c["argv"] for c in stub_calls(log) if c["argv"][1] == "engine"]
    assert len(run) == 1 and run[0][2] == "run", run
    assert run[0][run[0].index("--seed") + 1] == "2" and "--force" in run[0]
    log.unlink()
    proc = run_script(script, "slurm", scratch, index=1, STUB_REAL_CHECK="1")
    assert proc.returncode == 0 and "shard 1 is already done" in proc.stdout, proc.stderr
    assert [c["argv"][1] for c in stub_calls(log)] == ["engine.scale.hpc"]
    # a job of a superseded submission (submit.json now holds another plan) does nothing and
    # marks nothing failed
    old = tmp_path / "old.sbatch"
    shutil.copy(script, old)
    assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--seed", 3, "--out",
                  run_dir, "--dry-run", "--force").exit_code == 0
    log.unlink()
    proc = run_script(old, "slurm", scratch, index=0, STUB_REAL_CHECK="1")
    assert proc.returncode == 3 and "superseded" in proc.stderr, (proc.stdout, proc.stderr)
    assert [c["argv"][1] for c in stub_calls(log)] == ["engine.scale.hpc"]
    assert not (run_dir / "status" / "shard-0.failed").exists()


@pytest.mark.parametrize("fails", [False, True])
def test_job_script_resumes_and_starts_again_when_resuming_fails(fails, tmp_path):
    stub, log = make_stub(tmp_path / "stub")
    run_dir = (tmp_path / "run").resolve()
    with stubbed_python(stub):
        assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", run_dir,
                      "--dry-run").exit_code == 0
    env = {"STUB_STATE": "resume", **({"STUB_FAIL_RESUME": "1"} if fails else {})}
    proc = run_script(run_dir / "shards.sbatch", "slurm", tmp_path, index=1, **env)
    assert proc.returncode == 0, proc.stderr
    calls = [c["argv"][2:4] for c in stub_calls(log)]
    shard_dir = str(RunFolder(run_dir).shard(1, 2).path)
    assert calls == [["shard-state", str(run_dir)], ["cache-copy", str(run_dir)],
                     ["run", "--resume"]] + ([["run", str(run_dir / "scenario.toml")]] if fails
                                             else [])
    assert stub_calls(log)[2]["argv"][4] == shard_dir


@contextmanager
def lock_held_elsewhere(folder: Path):
    """Another process holds ``folder``'s run lock (as a running ``crisis run`` does)."""
    code = ("import sys, time\nfrom engine.runs.folder import RunFolder\n"
            "with RunFolder(sys.argv[1]).lock():\n    print('locked', flush=True)\n"
            "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_submit_does_not_write_while_a_run_holds_the_folder(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--out", run_dir,
                  "--dry-run").exit_code == 0
    scenario = (run_dir / "scenario.toml").read_bytes()
    record = (run_dir / "submit.json").read_bytes()
    with lock_held_elsewhere(run_dir):
        result = invoke("submit", OTHER, "--shards", 2, "--trials", 2000, "--out", run_dir,
                        "--dry-run", "--force")
        assert_clean_refusal(result, "another run is writing there")
        assert_clean_refusal(invoke("submit", "--resume", run_dir, "--dry-run"),
                             "another run is writing there")
    assert (run_dir / "scenario.toml").read_bytes() == scenario
    assert (run_dir / "submit.json").read_bytes() == record


def test_force_does_not_clear_a_shard_a_job_is_writing(tmp_path):
    run_dir = (tmp_path / "run").resolve()
    assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--seed", 1, "--out",
                  run_dir, "--dry-run").exit_code == 0
    run_shards(run_dir, trials=2000, seed=1, count=2, indices=(0,))
    shard = RunFolder(run_dir).shard(0, 2).path
    with lock_held_elsewhere(shard):
        result = invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--seed", 2, "--out",
                        run_dir, "--dry-run", "--force")
        assert_clean_refusal(result, "cannot clear the stale shard")
    assert (shard / "manifest.json").is_file()
