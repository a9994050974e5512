"""Property-based hardening of ``crisis submit`` / ``crisis status`` and their job scripts.

Hostile values — control characters, newlines, ``;``, ``$()``, backticks, quotes, a leading
``-``, Unicode, huge numbers, wrong types — for every ``submit`` option, every argument of the
renderers and every key of ``submit.json``.  Each case ends in one of two ways:

* a clean refusal: exit 2 (or :class:`UserError`) with a message that names the option or the
  key (and, for ``submit.json``, the file), never a traceback; or
* rendered scripts (the array, the merge and the compile job) in which every line is an
  expected directive (read the way sbatch reads #SBATCH lines; each value exactly the one given)
  or the fixed body (same line count, ``bash -n`` clean), which, run with ``bash`` against a
  stub engine, call the engine with exactly the expected argument words and never run anything
  else (no marker file appears).

Two tiers, like ``test_fuzz.py``: a fast default (a few hundred cases) and a ``slow`` tier with
thousands.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from test_security_hpc import (
    NATO,
    fake_scheduler,
    make_stub,
    plan_for,
    run_script,
    sbatch_directives,
    stub_calls,
    stubbed_python,
)

import engine.scale.hpc as hpc
from engine.cli.main import main
from engine.errors import UserError

FAST_RENDER = settings(max_examples=200, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.too_slow,
                                              HealthCheck.data_too_large])
FAST_CLI = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# slow tier: 2,000 renderer cases, 800 `crisis submit` and 800 submit.json cases
SLOW_RENDER = 2_000
SLOW_CLI = 800
SLOW_JSON = 800


def slow(n: int) -> settings:
    return settings(max_examples=n, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


_TMP = Path(tempfile.mkdtemp(prefix="crisis-fuzz-hpc-"))
MARKER = _TMP / "INJECTED"
SCRATCH = _TMP / "scratch"
SCRATCH.mkdir()
STUB, LOG = make_stub(_TMP / "stub")

# ---- hostile values ---------------------------------------------------------------------------
PIECES = [
    "\n", "\r", "\r\n", "\t", "\x00", "\x0b", "\x1b[2J", "\x7f", "\u2028", "\u0085", "\u00a0",
    ";", "&&", "||", "|", "&", ">", "<", "#", "%", "%j", "%a", "*", "?", "~", "!", "=", ",", ":",
    "'", '"', "\\", "`", "$", "$(", ")", "${", "}", " ", "-", "--", "--me", "-x",
    f"$(touch {MARKER})", f"`touch {MARKER}`", f"\ntouch {MARKER} #", f"; touch {MARKER} #",
    f"' ; touch {MARKER} #", f'" ; touch {MARKER} #', f"\n#SBATCH --wrap='touch {MARKER}'",
    f"\n#PBS -S /bin/sh\ntouch {MARKER}", "packjob", "hetjob",
    "\uff12", "\u0663", "é", "\U0001f600", "1e3", "0x10", "1_000", "99999999999999999999999",
]
hostile_text = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)),
                        max_size=5).map("".join)


def spoiled(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Hostile text alone, or stuck before or after a valid value."""
    return st.one_of(hostile_text, st.tuples(valid, hostile_text).map("".join),
                     st.tuples(hostile_text, valid).map("".join))


# a folder name: hostile, but one path component ('/' becomes a look-alike)
folder_names = st.one_of(st.just("run"), spoiled(st.just("my run"))).map(
    lambda s: s.replace("/", "\u2215")).filter(lambda s: s not in ("", ".", ".."))


VALID_TEXT = {
    "slurm": {"mem": ["2G", "500M", "2048", "1T", "16g", "0"],
              "time": ["30", "30:00", "00:30:00", "1-12", "2-00:00", "1-00:00:00", "INFINITE"],
              "partition": ["short", "long,short", "gpu_a100", "q.1", "a-b"]},
    "pbs": {"mem": ["2gb", "500mb", "4GB", "1024", "8kw"],
            "time": ["01:00:00", "100:00:00", "00:00:59"],
            "partition": ["workq", "gpu_a100", "q.1"]},
}
int_text = st.one_of(st.integers(-3, 3000).map(str),
                     st.sampled_from([str(2**31), str(2**62), str(2**63 - 1), str(2**63),
                                      str(10**30), "1e3", "0x10", "\u0663", " 7", "+5", "-0",
                                      "1_000", "2.0", "nan", ""]),
                     hostile_text)
json_junk = st.one_of(
    hostile_text, st.integers(-2**70, 2**70), st.sampled_from([10**30, -1, 0, 2**63]),
    st.floats(allow_nan=False), st.booleans(), st.none(),
    st.lists(st.one_of(st.integers(-3, 10), hostile_text), max_size=3),
    st.dictionaries(hostile_text, st.integers(), max_size=2))
int_junk = st.one_of(st.integers(-3, 3000), st.integers(-2**70, 2**70),
                     st.sampled_from([2**63, 10**30, True, False, 2.0, math.inf, None]),
                     hostile_text)


def new_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="case-", dir=_TMP))


# ---- what a well-formed script looks like, derived independently of the renderer ---------------
def ranges(indices: list[int]) -> str:
    parts, run = [], []
    for i in sorted(indices) + [None]:
        if run and (i is None or i != run[-1] + 1):
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        if i is not None:
            run.append(i)
    return ",".join(parts)


def _body_lines(scheduler: str) -> tuple[int, int, int]:
    run_dir = _TMP / "reference"
    array, merge = (hpc.render_slurm if scheduler == "slurm" else hpc.render_pbs)(
        run_dir, plan_for(scheduler), [0, 1])
    compile_job = hpc.render_compile(run_dir, plan_for(scheduler))
    prefix = "#SBATCH" if scheduler == "slurm" else "#PBS"
    return tuple(sum(1 for line in text.split("\n")[1:] if not line.startswith(prefix))
                 for text in (array, merge, compile_job))


BODY_LINES = {s: _body_lines(s) for s in ("slurm", "pbs")}


def expected_directives(run_dir: Path, plan: dict, indices: list[int]) -> tuple[list, list,
                                                                                list]:
    """The directives the array, merge and compile scripts of ``plan`` may hold: sbatch
    words, or #PBS lines."""
    logs = str(run_dir / "logs")
    given = {k: plan[k] for k in ("partition", "time", "mem") if plan[k] is not None}
    if plan["scheduler"] == "slurm":
        esc = logs.replace("%", "%%")
        array = [f"--job-name=crisis-{plan['slug']}", f"--array={ranges(indices)}",
                 f"--cpus-per-task={plan['cpus_per_task']}", f"--output={esc}/shard-%a.out",
                 f"--error={esc}/shard-%a.err"] + [f"--{k}={v}" for k, v in given.items()]
        merge = [f"--job-name=crisis-{plan['slug']}-merge", "--cpus-per-task=1",
                 f"--output={esc}/merge.out", f"--error={esc}/merge.err"] + (
            [f"--partition={given['partition']}"] if "partition" in given else [])
        compile_job = [f"--job-name=crisis-{plan['slug']}-compile", "--cpus-per-task=1",
                       f"--output={esc}/compile.out", f"--error={esc}/compile.err"] + [
            f"--{k}={v}" for k, v in given.items()]
        return sorted(array), sorted(merge), sorted(compile_job)
    lo, hi = min(indices), max(indices)
    select = f"select=1:ncpus={plan['cpus_per_task']}" + (
        f":mem={given['mem']}" if "mem" in given else "")
    array = [f"#PBS -N crisis-{plan['slug'][:8]}", f"#PBS -l {select}", f"#PBS -o {logs}/",
             "#PBS -j oe"] + ([f"#PBS -J {lo}-{hi}"] if hi > lo else []) + (
        [f"#PBS -l walltime={given['time']}"] if "time" in given else []) + (
        [f"#PBS -q {given['partition']}"] if "partition" in given else [])
    merge = ["#PBS -N crisis-merge", "#PBS -l select=1:ncpus=1", f"#PBS -o {logs}/merge.out",
             "#PBS -j oe"]
    compile_job = ["#PBS -N crisis-compile", "#PBS -l select=1:ncpus=1" + (
        f":mem={given['mem']}" if "mem" in given else ""), f"#PBS -o {logs}/compile.out",
        "#PBS -j oe"] + ([f"#PBS -l walltime={given['time']}"] if "time" in given else []) + (
        [f"#PBS -q {given['partition']}"] if "partition" in given else [])
    return sorted(array), sorted(merge), sorted(compile_job)


def check_script(array: str, merge: str, run_dir: Path, plan: dict, indices: list[int],
                 compile_job: str | None = None) -> None:
    """Every line an expected directive or the fixed body; run, each calls only the engine
    with exactly the expected words."""
    scheduler = plan["scheduler"]
    prefix = "#SBATCH" if scheduler == "slurm" else "#PBS"
    want_array, want_merge, want_compile = expected_directives(run_dir, plan, indices)
    scripts = [(array, want_array, BODY_LINES[scheduler][0]),
               (merge, want_merge, BODY_LINES[scheduler][1])]
    if compile_job is not None:
        scripts.append((compile_job, want_compile, BODY_LINES[scheduler][2]))
    for text, want, body in scripts:
        lines = text.split("\n")
        assert lines[0] == "#!/bin/bash"
        ours = [line for line in lines[1:] if line.startswith(prefix)]
        assert len(lines) - 1 - len(ours) == body, text  # no line beyond the fixed body
        got = sorted(sbatch_directives(text)) if scheduler == "slurm" else sorted(ours)
        assert got == want, (got, want)
        assert "\r" not in text and "\x00" not in text
    for name, text in (("array.sh", array), ("merge.sh", merge), ("compile.sh", compile_job)):
        if text is None:
            continue
        (run_dir / name).write_text(text)
        proc = subprocess.run(["bash", "-n", str(run_dir / name)], capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    LOG.unlink(missing_ok=True)
    index = indices[0]
    proc = run_script(run_dir / "array.sh", scheduler, SCRATCH, index=index, STUB_STATE="run")
    assert proc.returncode == 0, proc.stderr
    k = plan["shards"]
    ints = [str(plan[key]) for key in ("trials", "seed", "block_size", "save_trials")]
    check = ["-m", "engine.scale.hpc", "shard-state", str(run_dir), str(index), str(k),
             *ints, plan["scenario_hash"]]
    run = ["-m", "engine", "run", str(run_dir / "scenario.toml"), "--trials", ints[0],
           "--seed", ints[1], "--block-size", ints[2], "--save-trials", ints[3], "--shard",
           f"{index}/{k}", "--out", str(run_dir), "--force", "--quiet"]
    copy = ["-m", "engine.scale.hpc", "cache-copy", str(run_dir), stub_calls(LOG)[-1]["cache"]]
    assert [c["argv"] for c in stub_calls(LOG)] == [check, copy, run]
    if compile_job is not None:
        LOG.unlink()
        proc = run_script(run_dir / "compile.sh", scheduler, SCRATCH)
        assert proc.returncode == 0, proc.stderr
        assert [c["argv"] for c in stub_calls(LOG)] == [
            ["-m", "engine.scale.hpc", "warm", str(run_dir)]]
    subprocess.run(["bash", str(run_dir / "merge.sh")], capture_output=True, timeout=30,
                   cwd=SCRATCH)
    assert not MARKER.exists(), "a job script ran an injected command"


# ---- the renderers ----------------------------------------------------------------------------
INT_KEYS = ("shards", "trials", "seed", "block_size", "save_trials", "cpus_per_task")


@st.composite
def render_cases(draw):
    """A valid plan with up to three keys (or the folder, or the indices) spoiled."""
    scheduler = draw(st.sampled_from(["slurm", "pbs"]))
    valid = VALID_TEXT[scheduler]
    plan = plan_for(scheduler, shards=draw(st.integers(1, 8)),
                    trials=draw(st.integers(8, 10**6)), seed=draw(st.integers(0, 2**63 - 1)),
                    cpus_per_task=draw(st.integers(1, 64)))
    for key in ("partition", "time", "mem"):
        plan[key] = draw(st.one_of(st.none(), st.sampled_from(valid[key])))
    name, indices = "run", draw(st.lists(st.integers(0, plan["shards"] - 1), min_size=1,
                                         max_size=4, unique=True))
    spoilable = [key for key in plan if key != "scheduler"]  # the renderer sets that one
    for key in draw(st.lists(st.sampled_from([*spoilable, "folder", "indices"]), max_size=3)):
        if key == "folder":
            name = draw(folder_names)
        elif key == "indices":
            indices = draw(st.lists(st.one_of(st.integers(-3, 10), int_junk), max_size=3))
        elif key in INT_KEYS:
            plan[key] = draw(int_junk)
        else:
            good = st.sampled_from(valid.get(key) or [str(plan[key])])
            plan[key] = draw(st.one_of(spoiled(good), json_junk))
    return scheduler, plan, name, indices


def _render_case(case) -> None:
    scheduler, plan, name, indices = case
    run_dir = new_folder() / name
    render = hpc.render_slurm if scheduler == "slurm" else hpc.render_pbs
    with stubbed_python(STUB):
        try:
            array, merge = render(run_dir, plan, indices)
            compile_job = hpc.render_compile(run_dir, plan)
        except UserError as err:
            event("renderer: refused")
            message = str(err)
            assert "Traceback" not in message
            assert any(key in message for key in (*plan, "run folder", "shard indices")), \
                message
            return
        event("renderer: rendered and ran")
        run_dir.mkdir(parents=True, exist_ok=True)
        check_script(array, merge, run_dir, plan, indices, compile_job)


@FAST_RENDER
@given(render_cases())
@example(("slurm", plan_for("slurm", mem=f"2G\ntouch {MARKER}"), "run", [0]))
@example(("pbs", plan_for("pbs", partition=f"q; touch {MARKER} #"), "run", [0, 1]))
@example(("slurm", plan_for("slurm"), "a b 100% #x 'q'", [1]))
def test_renderers_fuzz(case):
    _render_case(case)


# ---- `crisis submit` --------------------------------------------------------------------------
OPTION_KEYS = {"--partition": "partition", "--time": "time", "--mem": "mem"}


INT_FLAGS = {"--shards": st.integers(1, 6), "--trials": st.integers(6, 5000),
             "--seed": st.integers(0, 2**63 - 1), "--block-size": st.integers(1, 10**6),
             "--save-trials": st.integers(0, 100), "--cpus-per-task": st.integers(1, 64)}


@st.composite
def submit_arguments(draw):
    """Valid options with up to two of them (or --scheduler, or --out) spoiled; the spoiled
    flags are the ones an error may name."""
    bad = draw(st.lists(st.sampled_from(["--scheduler", "--out", *OPTION_KEYS, *INT_FLAGS]),
                        max_size=2, unique=True))
    scheduler = draw(st.sampled_from(["slurm", "pbs"]))
    valid = VALID_TEXT[scheduler]
    args = ["--scheduler", draw(hostile_text) if "--scheduler" in bad else scheduler]
    for flag, key in OPTION_KEYS.items():
        good = st.sampled_from(valid[key])
        if flag in bad:
            args += [flag, draw(spoiled(good))]
        elif draw(st.booleans()):
            args += [flag, draw(good)]
    for flag, good in INT_FLAGS.items():
        if flag in bad:
            args += [flag, draw(int_text)]
        elif flag in ("--shards", "--trials") or draw(st.booleans()):
            args += [flag, str(draw(good))]
    name = draw(folder_names) if "--out" in bad else "run"
    return args, name, bad


def _submit_case(args: list[str], name: str, drawn: list[str]) -> None:
    out = f"{new_folder()}/{name}"
    full = ["submit", str(NATO), *args, "--out", str(out), "--dry-run", "--force"]
    with stubbed_python(STUB):
        result = CliRunner().invoke(main, full)
    assert result.exit_code in (0, 2), (full, result.output, result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output, \
        (full, result.output)
    assert not MARKER.exists()
    event(f"submit: exit {result.exit_code}")
    if result.exit_code == 2:
        assert any(flag in result.output for flag in drawn), (full, result.output)
        return
    assert result.exit_code == 0, (full, result.output)
    run_dir = Path(out).resolve()
    record = hpc.load_record(run_dir)  # what was written validates
    scheduler = record["scheduler"]
    given = dict(zip(args[::2], args[1::2], strict=True))
    for flag, key in OPTION_KEYS.items():
        assert record[key] == given.get(flag), (flag, record[key], given.get(flag))
    for flag in ("--shards", "--trials", "--seed", "--block-size", "--save-trials",
                 "--cpus-per-task"):
        if flag in given:  # click reads integers with int()
            assert record[flag[2:].replace("-", "_")] == int(given[flag])
    suffix = "sbatch" if scheduler == "slurm" else "pbs"
    assert record["submissions"][0]["compile_script"] == f"compile.{suffix}"
    check_script((run_dir / f"shards.{suffix}").read_text(),
                 (run_dir / f"merge.{suffix}").read_text(), run_dir, record,
                 list(range(record["shards"])), (run_dir / f"compile.{suffix}").read_text())


@FAST_CLI
@given(submit_arguments())
@example((["--scheduler", "slurm", "--mem", "2G\ntouch X", "--shards", "2", "--trials", "10"],
          "run", ["--mem"]))
@example((["--scheduler", "slurm", "--shards", "2", "--trials", "10"], "run", []))
@example((["--scheduler", "pbs", "--shards", "2", "--trials", "10"], "a b", ["--out"]))
@example((["--scheduler", "slurm", "--shards", "2", "--trials", "10"], "a\nb", ["--out"]))
@example((["--scheduler", "slurm", "--shards", "\u0663", "--trials", "1_000"], "r", ["--shards"]))
def test_submit_options_fuzz(case):
    _submit_case(*case)


# ---- submit.json ------------------------------------------------------------------------------
def _template() -> Path:
    run_dir = _TMP / "template"
    result = CliRunner().invoke(main, ["submit", str(NATO), "--shards", "3", "--trials", "3000",
                                       "--out", str(run_dir), "--dry-run"])
    assert result.exit_code == 0, result.output
    record = json.loads((run_dir / "submit.json").read_text())
    record["submissions"][0].update(compile_job="10", array_job="11", merge_job="12",
                                    dry_run=False)
    (run_dir / "submit.json").write_text(json.dumps(record))
    return run_dir


TEMPLATE = _template()
RECORD = json.loads((TEMPLATE / "submit.json").read_text())
ENTRY_KEYS = sorted(RECORD["submissions"][0]) + ["cleared"]
DELETE = "<delete>"
VALID_CHANGES = {  # values a hand edit may legitimately give (the record must still render)
    "seed": st.integers(0, 2**63 - 1), "trials": st.integers(3, 10**6),
    "block_size": st.integers(1, 10**6), "save_trials": st.integers(0, 100),
    "cpus_per_task": st.integers(1, 64), "partition": st.sampled_from(["short", "a,b"]),
    "time": st.sampled_from(["30", "1-00:00:00"]), "mem": st.sampled_from(["2G", "100"]),
    "slug": st.sampled_from(["x", "a-b-1"]), "date": st.just("2024-01-02T03:04:05+00:00"),
    "array_job": st.integers(1, 10**9).map(str), "merge_job": st.integers(1, 10**9).map(str),
    "compile_job": st.integers(1, 10**9).map(str),
}


@st.composite
def tampered_records(draw):
    record = json.loads(json.dumps(RECORD))
    touched = []
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        where = draw(st.sampled_from(["top"] * 3 + ["entry"] * 2 + ["extra", "entry-extra"]))
        if where == "top":
            key = draw(st.sampled_from(sorted(RECORD)))
            target = record
        else:
            entries = record.get("submissions")
            if where.startswith("entry") and not (isinstance(entries, list) and entries
                                                  and isinstance(entries[0], dict)):
                continue
            if where == "entry":
                key = draw(st.sampled_from(ENTRY_KEYS))
            else:
                key = draw(st.one_of(st.sampled_from(["evil", "x", "__class__"]), hostile_text))
            target = record if where == "extra" else entries[0]
        choices = [json_junk, st.just(DELETE), spoiled(st.just(str(target.get(key, ""))))]
        if key in VALID_CHANGES:
            choices += [VALID_CHANGES[key]] * 6
        value = draw(st.one_of(*choices))
        if value == DELETE:
            target.pop(key, None)
        elif isinstance(target, dict):
            target[key] = value
        touched.append(key)
    return record, touched


@st.composite
def edited_records(draw):
    """Hand edits that keep the record valid: it must still render a clean script."""
    record = json.loads(json.dumps(RECORD))
    for key in draw(st.lists(st.sampled_from(sorted(VALID_CHANGES)), max_size=3)):
        target = record["submissions"][0] if key.endswith("_job") or key == "date" else record
        target[key] = draw(VALID_CHANGES[key])
    return record, []


records = st.one_of(tampered_records(), edited_records())


def _json_case(record: dict, touched: list[str]) -> None:
    run_dir = new_folder() / "run"
    shutil.copytree(TEMPLATE, run_dir)
    try:
        (run_dir / "submit.json").write_text(json.dumps(record))
    except (UnicodeEncodeError, ValueError):
        return
    names = ["submit.json"] + [str(k) for k in touched] + [ascii(str(k))[:20] for k in touched]
    bin_dir, log = _TMP / "bin", _TMP / "scheduler.log"
    log.unlink(missing_ok=True)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    outcomes = []
    with stubbed_python(STUB):
        for args in (["status", str(run_dir)], ["submit", "--resume", str(run_dir)]):
            result = CliRunner().invoke(main, args, env=env)
            assert result.exit_code in (0, 2), (args, result.output, result.exception)
            assert "Traceback" not in result.output and "internal error" not in result.output
            if result.exit_code == 2:
                assert "submit.json" in result.output and any(
                    n in result.output for n in names), (touched, result.output)
            outcomes.append(result.exit_code)
    event(f"submit.json: exits {outcomes}")
    assert not MARKER.exists()
    if log.exists():  # scancel and sbatch only ever saw job ids made of digits and our paths
        for line in log.read_text().splitlines():
            words = re.findall(r"\[(.*?)\]", line)
            if line.startswith("scancel"):
                assert len(words) == 1 and re.fullmatch(r"[0-9]+", words[0]), line
            elif line.startswith("sbatch"):
                assert words[0] == "--parsable" and words[-1].startswith(str(run_dir)), line
    if not touched:
        assert outcomes == [0, 0]
    if outcomes[1] == 0:
        record = hpc.load_record(run_dir)
        last = record["submissions"][-1]
        check_script((run_dir / last["array_script"]).read_text(),
                     (run_dir / last["merge_script"]).read_text(), run_dir, record,
                     last["shards"], last["compile_script"]
                     and (run_dir / last["compile_script"]).read_text())


fake_scheduler(_TMP / "bin", _TMP / "scheduler.log", job_id="4242")


@FAST_CLI
@given(records)
@example(({**RECORD, "trials": "2000 ; touch X"}, ["trials"]))
@example(({**RECORD, "submissions": [{**RECORD["submissions"][0], "merge_job": "--me"}]},
          ["merge_job"]))
@example(({**RECORD, "seed": 5}, ["seed"]))  # a valid change renders a clean script
def test_submit_json_fuzz(case):
    _json_case(*case)


# ---- slow tier --------------------------------------------------------------------------------
@pytest.mark.slow
@slow(SLOW_RENDER)
@given(render_cases())
def test_slow_renderers_fuzz(case):
    _render_case(case)


@pytest.mark.slow
@slow(SLOW_CLI)
@given(submit_arguments())
def test_slow_submit_options_fuzz(case):
    _submit_case(*case)


@pytest.mark.slow
@slow(SLOW_JSON)
@given(records)
def test_slow_submit_json_fuzz(case):
    _json_case(*case)
