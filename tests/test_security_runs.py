"""Security and integrity of run folders (issue 11): the lock never writes through links and is
never held twice; `--resume` trusts neither run.json nor checkpoint.npz; `crisis merge` ties
every shard's files to its manifest; symlinked shard folders are refused; readers never follow
a link inside a run folder and check the SHA-256 the manifest records."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from interrupted import interrupted_run as interrupted_run_of

from engine import api
from engine.cli.main import main
from engine.core.simulate import set_threads, simulate
from engine.errors import UserError
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario
from engine.runs.folder import RunFolder
from engine.runs.integrity import record_problems, tally_problems

ROOT = Path(__file__).parent.parent
NATO = ROOT / "configs" / "nato-baltic-2024.toml"
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))
TABLES = ("cells.parquet", "summary.parquet", "trials.parquet")


interrupted_run = functools.partial(interrupted_run_of, config=NATO)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def engine_process(*args, timeout=300):
    """`python -m engine …` in its own process: a crash (exit 134) cannot take pytest down."""
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def whole_run(out: Path, *, config=NATO, trials=6000, seed=1, save_trials=40) -> Path:
    api.run(config, trials=trials, seed=seed, save_trials=save_trials, out=out, threads=1)
    set_threads(None)
    return out


def checkpoint_arrays(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "checkpoint.npz") as data:
        return {key: data[key] for key in data.files}


def save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """The uninterrupted run every resumed one must equal."""
    return whole_run(tmp_path_factory.mktemp("reference") / "run")


# ---- item 4: the lock ----------------------------------------------------------------------
def test_lock_symlink_is_never_written_through(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "lk"
    out.mkdir()
    (out / ".lock").symlink_to(Path("..") / "outside" / "victim")
    result = invoke("run", NATO, "--trials", 1000, "--out", out, "-q")
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.output and ".lock" in result.output
    assert victim.read_text() == "precious\n"
    assert not (out / "manifest.json").exists()


def test_lock_hard_link_is_never_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "lk"
    out.mkdir()
    os.link(victim, out / ".lock")
    result = invoke("run", NATO, "--trials", 1000, "--out", out, "-q")
    assert result.exit_code == 2 and "hard link" in result.output, result.output
    assert victim.read_text() == "precious\n"


def test_a_lock_file_removed_while_waiting_is_not_held_twice(tmp_path, monkeypatch):
    """B opens .lock while A holds it; before B locks, A finishes (removing the file) and C
    takes a new .lock.  B's lock then succeeds on the removed file: B must notice and retry
    (and meet C), never run alongside C."""
    folder = RunFolder(tmp_path / "run")
    first = folder.lock()
    first.__enter__()
    real_flock = fcntl.flock
    third = []

    def flock(fd, operation):
        if not third:  # B has opened A's .lock and is about to lock it
            third.append(None)
            first.__exit__(None, None, None)
            holder = folder.lock()
            holder.__enter__()
            third.append(holder)
        return real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock)
    try:
        with pytest.raises(UserError, match="another run is writing there"), folder.lock():
            pass
    finally:
        if len(third) == 2:
            third[1].__exit__(None, None, None)
    assert not (tmp_path / "run" / ".lock").exists()


def test_lock_is_released_and_removed_after_a_refused_run(tmp_path):
    out = tmp_path / "run"
    (out / "keep").mkdir(parents=True)
    assert invoke("run", NATO, "--trials", 1000, "--out", out).exit_code == 2
    assert sorted(p.name for p in out.iterdir()) == ["keep"]


# ---- item 5: run.json and checkpoint.npz on --resume -----------------------------------------
@pytest.mark.parametrize("key,value,why", [
    ("trials", -5, "greater than or equal to 1"),
    ("trials", 10**15, "days"),  # the per-process limit, which --resume used to skip
    ("block_size", 0, "greater than or equal to 1"),
    ("shard", [0, 0], "shard"),
    ("seed", "7", "integer"),
    ("save_trials", 10**8, "save_trials"),
    ("extra", 1, "extra"),
])
def test_resume_checks_run_json_like_the_command_line(tmp_path, key, value, why):
    folder = interrupted_run(tmp_path / "run")
    (folder / "checkpoint.npz").unlink()  # from the start: run.json alone decides
    options = json.loads((folder / "run.json").read_text())
    options[key] = value
    (folder / "run.json").write_text(json.dumps(options))
    result = invoke("run", "--resume", folder, "-q")
    assert result.exit_code == 2, result.output
    assert "run.json" in result.output and why in result.output, result.output
    assert not (folder / "manifest.json").exists()


def test_resume_with_a_valid_checkpoint_equals_the_uninterrupted_run(tmp_path, reference):
    folder = interrupted_run(tmp_path / "run")
    result = invoke("run", "--resume", folder, "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "manifest.json").read_text())["resumed_at"] == 1024
    for name in TABLES:
        assert (folder / name).read_bytes() == (reference / name).read_bytes(), name


@pytest.mark.parametrize("change", ["records_columns", "records_rows", "cells_rows",
                                    "cells_columns"])
def test_resume_refuses_arrays_of_the_wrong_shape(tmp_path, change):
    """Records of the wrong shape made the kernel write out of bounds (exit 134); a cells array
    of the wrong shape was broadcast silently."""
    folder = interrupted_run(tmp_path / "run")
    arrays = checkpoint_arrays(folder)
    records, cells = arrays["records"], arrays["cells"]
    arrays.update({
        "records_columns": {"records": np.zeros((records.shape[0], 3))},
        "records_rows": {"records": np.zeros((5, records.shape[1]))},
        "cells_rows": {"cells": cells[:1]},
        "cells_columns": {"cells": cells[:, :-1]},
    }[change])
    save_npz(folder / "checkpoint.npz", arrays)
    proc = engine_process("run", "--resume", folder, "-q")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "checkpoint.npz" in proc.stderr and "Traceback" not in proc.stderr
    assert not (folder / "manifest.json").exists()


def test_resume_refuses_a_checkpoint_of_another_seed(tmp_path):
    mine = interrupted_run(tmp_path / "mine", seed=1)
    other = interrupted_run(tmp_path / "other", seed=2)
    shutil.copy(other / "checkpoint.npz", mine / "checkpoint.npz")
    result = invoke("run", "--resume", mine, "-q")
    assert result.exit_code == 2, result.output
    assert "checkpoint.npz" in result.output and "seed" in result.output


@pytest.mark.parametrize("change", ["negative", "position", "object", "extra", "missing",
                                    "truncated", "nan_records"])
def test_resume_refuses_impossible_or_malformed_checkpoints(tmp_path, change):
    folder = interrupted_run(tmp_path / "run")
    path = folder / "checkpoint.npz"
    arrays = checkpoint_arrays(folder)
    if change == "negative":
        arrays["cells"] = arrays["cells"].copy()
        arrays["cells"][0, 5] = -10**12  # invoked
    elif change == "position":
        arrays["position"] = np.int64(3000)
    elif change == "object":
        arrays["records"] = arrays["records"].astype(object)
    elif change == "extra":
        arrays["surprise"] = np.zeros(3)
    elif change == "missing":
        del arrays["cell_hist"]
    elif change == "nan_records":
        arrays["records"] = arrays["records"].copy()
        arrays["records"][0, 10] = np.nan
    if change == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    else:
        save_npz(path, arrays)
    result = invoke("run", "--resume", folder, "-q")
    assert result.exit_code == 2, result.output
    assert "checkpoint.npz" in result.output


def test_resume_refuses_a_scenario_that_is_not_the_runs(tmp_path):
    folder = interrupted_run(tmp_path / "run")
    options = json.loads((folder / "run.json").read_text())
    options["scenario_hash"] = "0" * 64
    (folder / "run.json").write_text(json.dumps(options))
    result = invoke("run", "--resume", folder, "-q")
    assert result.exit_code == 2, result.output
    assert "scenario.toml" in result.output and "run.json" in result.output


# ---- item 6: merge ties tallies to their manifest --------------------------------------------
@pytest.fixture
def sharded(tmp_path) -> Path:
    run_dir = tmp_path / "sharded"
    for i in range(2):
        assert invoke("run", NATO, "--trials", 20_000, "--seed", 3, "--save-trials", 10,
                      "--out", run_dir, "--shard", f"{i}/2", "-q").exit_code == 0
    return run_dir


def shard_dir(run_dir: Path, i: int) -> Path:
    return RunFolder(run_dir).shard(i, 2).path


def assert_merge_refused(run_dir: Path, *needles: str) -> None:
    result = invoke("merge", run_dir, "-q")
    assert result.exit_code == 2, result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert not (run_dir / "manifest.json").exists()


def test_merge_refuses_another_shards_tallies(sharded):
    shutil.copy(shard_dir(sharded, 1) / "tallies.npz", shard_dir(sharded, 0) / "tallies.npz")
    assert_merge_refused(sharded, "shard-0000-of-0002", "tallies.npz", "SHA-256")


def test_merge_refuses_another_seeds_tallies(sharded, tmp_path):
    other = tmp_path / "other"
    assert invoke("run", NATO, "--trials", 20_000, "--seed", 4, "--out", other, "--shard", "0/2",
                  "-q").exit_code == 0
    shutil.copy(shard_dir(other, 0) / "tallies.npz", shard_dir(sharded, 0) / "tallies.npz")
    assert_merge_refused(sharded, "shard-0000-of-0002", "tallies.npz")


def rewrite_tallies(shard: Path, change) -> None:
    """Edit a shard's tallies and record the new file's SHA-256 in its manifest (a forger who
    knows the format)."""
    with np.load(shard / "tallies.npz") as data:
        arrays = {key: data[key].copy() for key in data.files}
    change(arrays)
    save_npz(shard / "tallies.npz", arrays)
    manifest = json.loads((shard / "manifest.json").read_text())
    if "files" in manifest:
        manifest["files"]["tallies.npz"] = hashlib.sha256(
            (shard / "tallies.npz").read_bytes()).hexdigest()
    (shard / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("forgery", ["invoked_negative", "invoked_above_attacked",
                                     "trials_moved", "hist_dropped"])
def test_merge_refuses_impossible_tallies(sharded, forgery):
    def change(arrays):
        cells = arrays["cells"]
        if forgery == "invoked_negative":
            cells[0, 5] = -10**12
        elif forgery == "invoked_above_attacked":
            cells[0, 5] = cells[0, 3] + 1
        elif forgery == "trials_moved":  # same total, but deterred + attacked ≠ trials
            cells[0, 0] += 1
            cells[1, 0] -= 1
        else:
            arrays["cell_hist"][:] = 0
    rewrite_tallies(shard_dir(sharded, 0), change)
    assert_merge_refused(sharded, "shard-0000-of-0002", "tallies.npz", "impossible tallies")


def test_merge_refuses_truncated_and_malformed_files(sharded):
    tallies = shard_dir(sharded, 1) / "tallies.npz"
    saved = tallies.read_bytes()
    tallies.write_bytes(saved[: len(saved) // 2])
    assert_merge_refused(sharded, "shard-0001-of-0002", "tallies.npz")
    tallies.write_bytes(saved)
    manifest_path = shard_dir(sharded, 1) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for key, value in (("wall_time_s", "fast"), ("threads", [1, 2]), ("shard", "1/2"),
                       ("trial_range", [0, 10**6]), ("versions", [])):
        manifest_path.write_text(json.dumps({**manifest, key: value}))
        assert_merge_refused(sharded, "shard-0001-of-0002")
    manifest_path.write_text("{not json")
    assert_merge_refused(sharded, "shard-0001-of-0002", "manifest.json")
    manifest_path.write_text(json.dumps(manifest))
    assert invoke("merge", sharded, "-q").exit_code == 0


def test_merge_refuses_changed_saved_trials(sharded):
    path = shard_dir(sharded, 1) / "trials.parquet"
    frame = pl.read_parquet(path)
    frame.with_columns(pl.col("deterred") * 0).write_parquet(path)
    assert_merge_refused(sharded, "shard-0001-of-0002", "trials.parquet")


def test_manifest_records_hashes_and_totals_that_readers_check(tmp_path):
    out = tmp_path / "run"
    assert invoke("run", NATO, "--trials", 20_000, "--seed", 3, "--save-trials", 5, "--out", out,
                  "-q").exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"cells.parquet", "summary.parquet", "members.parquet",
                                      "tallies.npz", "trials.parquet", "scenario.toml"}
    assert manifest["deterrence"]["mode"] == "expected_response"  # the file's mode
    assert manifest["deterrence"]["cells_exact"] + manifest["deterrence"]["cells_pilot"] == 18
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert manifest["totals"]["trials"] == 20_000
    assert manifest["totals"]["deterred"] + manifest["totals"]["attacked"] == 20_000
    # another run's summary in its place: summarize names the file
    other = tmp_path / "other"
    assert invoke("run", NATO, "--trials", 20_000, "--seed", 4, "--out", other,
                  "-q").exit_code == 0
    shutil.copy(other / "summary.parquet", out / "summary.parquet")
    result = invoke("summarize", out)
    assert result.exit_code == 2 and "summary.parquet" in result.output, result.output
    assert "SHA-256" in result.output
    shutil.copy(other / "cells.parquet", out / "cells.parquet")
    manifest_other = json.loads((other / "manifest.json").read_text())
    manifest["files"]["summary.parquet"] = manifest_other["files"]["summary.parquet"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("summarize", out)
    assert result.exit_code == 2 and "cells.parquet" in result.output, result.output
    # an edited scenario.toml: the run still loads, unlabelled, and says why
    (out / "scenario.toml").write_text((out / "scenario.toml").read_text() + "\n# edited\n")
    run = api.open_run(other)
    assert run.alliance_ids and run.notes == []
    shutil.copy(out / "scenario.toml", other / "scenario.toml")
    run = api.open_run(other)
    assert run.alliance_ids is None and "scenario.toml" in " ".join(run.notes)


# ---- item 8: symbolic links in and around shard folders -----------------------------------------
def victims(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: f"victim {name}\n" for name in ("cells.parquet", "manifest.json",
                                                   "tallies.npz", "run.json")}
    for name, text in files.items():
        (folder / name).write_text(text)
    return files


@pytest.mark.parametrize("link", ["shard", "shards"])
def test_symlinked_shard_folders_are_refused_even_with_force(tmp_path, link):
    outside = tmp_path / "outside"
    files = victims(outside)
    run_dir = tmp_path / "run"
    (run_dir / "shards").mkdir(parents=True)
    if link == "shard":
        (run_dir / "shards" / "shard-0000-of-0002").symlink_to(outside)
    else:
        (run_dir / "shards").rmdir()
        (run_dir / "shards").symlink_to(outside)
    result = invoke("run", NATO, "--trials", 2000, "--out", run_dir, "--shard", "0/2",
                    "--force", "-q")
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output
    assert {p.name: p.read_text() for p in outside.iterdir()} == files


def test_merge_and_resume_refuse_symlinked_shard_folders(tmp_path, sharded):
    moved = tmp_path / "elsewhere"
    shutil.move(shard_dir(sharded, 1), moved)
    shard_dir(sharded, 1).symlink_to(moved)
    assert_merge_refused(sharded, "symbolic link")
    result = invoke("run", "--resume", shard_dir(sharded, 1), "-q")
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output


# ---- readers never follow a link inside a run folder --------------------------------------------
def test_readers_refuse_symlinked_run_files(tmp_path, sharded):
    out = whole_run(tmp_path / "run", trials=2000)
    (tmp_path / "manifest.json").write_bytes((out / "manifest.json").read_bytes())
    (out / "manifest.json").unlink()
    (out / "manifest.json").symlink_to(tmp_path / "manifest.json")
    result = invoke("summarize", out)
    assert result.exit_code == 2 and "symbolic link" in result.output, result.output

    folder = interrupted_run(tmp_path / "resumable")
    for name in ("run.json", "checkpoint.npz"):
        shutil.move(folder / name, tmp_path / name)
        (folder / name).symlink_to(tmp_path / name)
        result = invoke("run", "--resume", folder, "-q")
        assert result.exit_code == 2 and "symbolic link" in result.output, (name, result.output)
        (folder / name).unlink()
        shutil.move(tmp_path / name, folder / name)

    tallies = shard_dir(sharded, 0) / "tallies.npz"
    shutil.move(tallies, tmp_path / "tallies.npz")
    tallies.symlink_to(tmp_path / "tallies.npz")
    assert_merge_refused(sharded, "tallies.npz", "symbolic link")


def test_writes_replace_links_instead_of_following_them(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "cells.parquet").symlink_to(victim)
    assert invoke("run", NATO, "--trials", 1000, "--out", out, "--force", "-q").exit_code == 0
    assert victim.read_text() == "precious\n"
    assert not (out / "cells.parquet").is_symlink()


# ---- the integrity relations hold for real runs of every shipped configuration --------------
@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_tally_relations_hold_for_every_shipped_config(config, tmp_path):
    compiled = compile_scenario(load_scenario(config))
    save: list = ["--save-trials", 7]
    if compiled.campaign is not None:  # trajectories of periods, no per-trial records
        from engine.core.simulate import simulate_campaign

        save = []
        for seed, (start, stop) in ((1, (0, 20_000)), (9, (7_001, 12_345))):
            tallies = simulate_campaign(compiled, seed, start, stop)
            assert tally_problems(tallies, stop - start, compiled) == []
    for seed, (start, stop) in ((1, (0, 150_000)), (9, (70_001, 123_457))):
        tallies, records = simulate(compiled, seed, start, stop, save_trials=300)
        assert tally_problems(tallies, stop - start, compiled) == []
        assert record_problems(records, start, len(records), compiled) == []
    # and through the files: shards (with saved trials) merge, and the run loads
    run_dir = tmp_path / "run"
    for i in range(3):
        assert invoke("run", config, "--trials", 30_001, "--seed", 2, *save,
                      "--out", run_dir, "--shard", f"{i}/3", "-q").exit_code == 0
    assert invoke("merge", run_dir, "-q").exit_code == 0
    run = api.open_run(run_dir)
    assert run.notes == [] and run.tallies is not None


def test_npz_reader_checks_headers_before_loading(tmp_path):
    from engine.runs.io import read_npz

    buffer = io.BytesIO()
    np.savez(buffer, cells=np.zeros((3, 4), dtype=np.int64), extra=np.zeros(2))
    spec = {"cells": ("<i8", ("C", 4))}
    with pytest.raises(UserError, match="unexpected 'extra'"):
        read_npz(buffer.getvalue(), tmp_path / "x.npz", "tallies", spec)
    buffer = io.BytesIO()
    np.savez(buffer, cells=np.zeros((3, 4), dtype=np.int32))
    with pytest.raises(UserError, match="dtype <i4"):
        read_npz(buffer.getvalue(), tmp_path / "x.npz", "tallies", spec)
    buffer = io.BytesIO()
    np.savez(buffer, cells=np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(UserError, match="axis 0 should be 5"):
        read_npz(buffer.getvalue(), tmp_path / "x.npz", "tallies", spec, {"C": 5})
    arrays = read_npz(buffer.getvalue(), tmp_path / "x.npz", "tallies", spec)
    assert arrays["cells"].shape == (3, 4)
