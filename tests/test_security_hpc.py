"""HPC job scripts are safe to run: hostile options, tampered ``submit.json``, planted caches.

* Every value that reaches a job script is checked (scheduler formats for ``--mem``, ``--time``,
  ``--partition``; the run options' bounds; printable, directive-safe run folder paths); a bad one
  is exit 2 naming the option, and no script is written.
* ``submit.json`` is validated whole before ``--resume`` or ``status`` use it: exit 2 naming the
  file and the key; a job id reaches ``scancel`` only as digits.
* The Numba cache folder a job uses is one of ours that no one else can write (``NUMBA_CACHE_DIR``
  holds pickled index files).
* A shard counts as done only when its manifest matches the plan (status, ``--resume`` and the
  job script); ``submit`` holds the run folder's lock while it writes.

Job scripts are run for real with ``bash``; the engine they call is replaced by a stub (a bash
script that logs its arguments and its ``NUMBA_CACHE_DIR``), so a test takes milliseconds.
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
      "$(stat -c '%u %a' -- "${NUMBA_CACHE_DIR:-/nonexistent}" 2>/dev/null)"
} >> @LOG@
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
    """The stub's calls: ``argv`` (after the interpreter), ``cache`` and ``cache_stat``."""
    if not log.exists():
        return []
    parts = log.read_bytes().decode().split("\0")
    calls, i = [], 0
    while i < len(parts) - 1:
        assert parts[i] == "CALL", parts[i:i + 3]
        j = parts.index("CACHE", i)
        calls.append({"argv": parts[i + 1:j], "cache": parts[j + 1],
                      "cache_stat": parts[j + 2]})
        i = j + 3
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
    wanted = [logs / "shard-0.out", logs / "shard-1.out", logs / "merge.out"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(p.exists() for p in wanted):
        time.sleep(1)
    assert all(p.exists() for p in wanted), sorted(p.name for p in logs.iterdir())
    assert "shard 1/2" in (logs / "shard-1.out").read_text()
    assert sorted(p.name for p in logs.iterdir()) == sorted(
        ["shard-0.out", "shard-0.err", "shard-1.out", "shard-1.err", "merge.out", "merge.err"])


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
    """sbatch printing ``job_id``, scancel and squeue that log their arguments."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, out in (("sbatch", job_id), ("scancel", ""), ("squeue", "")):
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


# ---- 3. a private Numba cache folder ----------------------------------------------------------
def _planted(scratch: Path, kind: str, tmp_path: Path) -> Path:
    planted = scratch / f"crisis-numba-{os.getuid()}"
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
    elif kind == "group-writable":
        planted.mkdir()
        planted.chmod(0o770)
    elif kind == "symlink":
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        planted.symlink_to(elsewhere)
    elif kind == "file":
        planted.write_text("planted")
    return planted


@pytest.mark.parametrize("kind", ["other-owner", "world-writable", "group-writable", "symlink",
                                  "file"])
@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_planted_numba_cache_folder_is_not_used(scheduler, kind, tmp_path):
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
    proc = run_script(run_dir / script_name(scheduler), scheduler, scratch)
    assert proc.returncode == 0, proc.stderr
    caches = {(c["cache"], c["cache_stat"]) for c in stub_calls(log)}
    assert len(caches) == 1, caches
    cache, cache_stat = caches.pop()
    assert cache and Path(cache) != planted and not cache.startswith(f"{planted}/"), cache
    assert Path(cache).parent == scratch, cache
    assert cache_stat == f"{os.getuid()} 700", cache_stat  # ours, private
    assert "not a private folder" in proc.stderr
    assert not Path(cache).exists()  # a fresh folder is removed when the job ends


@pytest.mark.parametrize("scheduler", ["slurm", "pbs"])
def test_private_numba_cache_folder_is_made_and_reused(scheduler, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    stub, log = make_stub(tmp_path / "stub")
    run_dir = tmp_path / "run"
    with stubbed_python(stub):
        assert invoke("submit", NATO, "--shards", 2, "--trials", 2000, "--scheduler",
                      scheduler, "--out", run_dir, "--dry-run").exit_code == 0
    for index in (0, 1):  # a second task on the node reuses the compiled kernels
        proc = run_script(run_dir / script_name(scheduler), scheduler, scratch, index=index)
        assert proc.returncode == 0, proc.stderr
        assert "not a private folder" not in proc.stderr
    expected = scratch / f"crisis-numba-{os.getuid()}"
    assert {(c["cache"], c["cache_stat"]) for c in stub_calls(log)} == {
        (str(expected), f"{os.getuid()} 700")}
    assert expected.is_dir()


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
    assert calls == [["shard-state", str(run_dir)], ["run", "--resume"]] + (
        [["run", str(run_dir / "scenario.toml")]] if fails else [])
    assert stub_calls(log)[1]["argv"][4] == shard_dir


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
