"""``crisis run``: scenario file → simulation → Parquet tables, manifest and a summary.

Files in a run folder (design §5): ``cells.parquet``, ``summary.parquet``, ``manifest.json``,
plus ``tallies.npz`` (the exact integer tallies and histograms, for merging), ``scenario.toml``
(the input, byte for byte), ``run.json`` (the options, so the run can be resumed) and
``trials.parquet`` with ``--save-trials``.  Each file is written atomically; ``manifest.json`` is
written last, so a folder with a manifest is a complete run.  While a run goes,
``checkpoint.npz`` holds the tallies of the trials finished so far; ``crisis run --resume``
continues from it and ends with the same tables as an uninterrupted run.

A shard (``--shard I/K``) runs trials ``[⌊I·N/K⌋, ⌊(I+1)·N/K⌋)`` into
``RUN_DIR/shards/shard-I-of-K/`` (tallies, manifest, records); ``crisis merge RUN_DIR`` combines
them (:mod:`engine.runs.merge`).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from kernels.layout import N_RECORD_COLUMNS

from .. import __version__
from ..core.simulate import DEFAULT_BLOCK_SIZE, Tallies, set_threads, simulate
from ..errors import UserError
from ..model.compile import compile_scenario
from ..model.config import Scenario, load_scenario, scenario_hash
from ..model.limits import check_request, check_scenario_size
from .io import write_bytes, write_json, write_npz, write_parquet

MANIFEST = "manifest.json"
RUN_JSON = "run.json"
CHECKPOINT = "checkpoint.npz"
LOCK = ".lock"
RUN_FILES = ("cells.parquet", "summary.parquet", "tallies.npz", "scenario.toml",
             "trials.parquet", MANIFEST, RUN_JSON, CHECKPOINT)
# seconds between checkpoints of a running run (CRISIS_CHECKPOINT_SECONDS overrides)
CHECKPOINT_EVERY_S = 10.0


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "scenario"


def default_out_dir(scenario: Scenario, seed: int) -> Path:
    return Path("results") / f"{slugify(scenario.scenario.name)}-{seed}"


def shard_range(trials: int, index: int, count: int) -> tuple[int, int]:
    """Trials of shard ``index`` of ``count``: a contiguous, complete, non-overlapping split."""
    return trials * index // count, trials * (index + 1) // count


def shard_dir(run_dir: Path, index: int, count: int) -> Path:
    return Path(run_dir) / "shards" / f"shard-{index:04d}-of-{count:04d}"


def parse_shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UserError(f"--shard must look like I/K (e.g. 0/4), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 0 <= index < count:
        raise UserError(f"--shard {text}: need 0 ≤ I < K")
    return index, count


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    tallies: Tallies
    cells: object | None = None  # pl.DataFrame (None for a shard)
    summary: object | None = None
    records: object | None = None


def versions() -> dict[str, str]:
    import numba
    import polars as pl

    return {
        "engine": __version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "polars": pl.__version__,
        "python": platform.python_version(),
    }


def prepare_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse to overwrite a folder that holds anything unless forced; then clear our files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        existing = sorted(p.name for p in out_dir.iterdir() if p.name != LOCK)
        if existing and not force:
            hint = ("; `crisis run --resume` continues it" if CHECKPOINT in existing
                    and MANIFEST not in existing else "")
            raise UserError(
                f"{out_dir}: folder is not empty ({', '.join(existing[:4])}"
                f"{', …' if len(existing) > 4 else ''}); pass --force to overwrite the run there"
                f"{hint}"
            )
        if force:
            for name in RUN_FILES:
                (out_dir / name).unlink(missing_ok=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out_dir}: cannot create the output folder: {err.strerror}") from None


def _threads_for(threads: int | None) -> int:
    if threads is not None:
        return threads
    return int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))


@contextmanager
def run_lock(folder: Path):
    """Hold an exclusive lock on ``folder/.lock`` while a run writes there: a second run
    aimed at the same folder stops at once with a clear error (the lock dies with the
    process, so a killed run never leaves a stale lock behind)."""
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK, "a+")  # noqa: SIM115 - held for the whole run
    except OSError as err:
        raise UserError(f"{folder}: cannot create the output folder: "
                        f"{err.strerror or err}") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise UserError(f"{folder}: another run is writing there ({owner}); wait for it "
                            f"or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield
        (folder / LOCK).unlink(missing_ok=True)  # a finished run leaves only its results
    finally:
        handle.close()


def tallies_arrays(t: Tallies) -> dict[str, np.ndarray]:
    return {"cells": t.cells, "cell_hist": t.cell_hist, "alliances": t.alliances,
            "alliance_hist": t.alliance_hist}


def load_tallies(path: Path) -> Tallies:
    with np.load(path) as data:
        return Tallies(data["cells"], data["cell_hist"], data["alliances"],
                       data["alliance_hist"])


def run_scenario(
    config_path: str | Path,
    *,
    trials: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    out_dir: str | Path | None = None,
    save_trials: int = 0,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
    progress_total: Callable[[int], None] | None = None,
    executor: Callable | None = None,
) -> RunResult:
    """Run a scenario file (or one shard of it) and write its results.

    ``executor(compiled, seed, trials, block_size, save_trials, progress) -> (tallies,
    records)`` replaces the in-process simulation of the whole range (the Dask backend)."""
    config_path = Path(config_path)
    scenario = load_scenario(config_path)
    seed = scenario.scenario.seed if seed is None else seed
    trials = scenario.scenario.trials if trials is None else trials
    if trials < 1:
        raise UserError(f"--trials must be ≥ 1, got {trials}")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed must be in [0, 2^63), got {seed}")
    if not 1 <= block_size <= 2**62:
        raise UserError(f"--block-size must be in [1, 2^62], got {block_size}")
    if save_trials < 0:
        raise UserError(f"--save-trials must be ≥ 0, got {save_trials}")
    run_dir = Path(out_dir) if out_dir is not None else default_out_dir(scenario, seed)
    target = shard_dir(run_dir, *shard) if shard else run_dir
    start, stop = shard_range(trials, *shard) if shard else (0, trials)
    check_request(scenario, trials_in_process=stop - start, total_trials=trials,
                  threads=_threads_for(threads), save_trials=save_trials)
    with run_lock(target):
        prepare_out_dir(target, force)
        return _start(target, run_dir, scenario, config_path, trials, seed, block_size,
                      save_trials, shard, threads, progress, progress_total, executor)


def _start(target, run_dir, scenario, config_path, trials, seed, block_size, save_trials,
           shard, threads, progress, progress_total, executor) -> RunResult:
    text = config_path.read_bytes()
    options = {
        "trials": trials, "seed": seed, "block_size": block_size, "save_trials": save_trials,
        "shard": list(shard) if shard else None, "scenario_hash": scenario_hash(scenario),
        "scenario_file": str(config_path), "engine": __version__,
    }
    write_bytes(target / "scenario.toml", text)
    if shard and not (run_dir / "scenario.toml").exists():
        write_bytes(run_dir / "scenario.toml", text)
    write_json(target / RUN_JSON, options)
    return _execute(target, scenario, options, threads=threads, progress=progress,
                    progress_total=progress_total, executor=executor)


def resume_run(run_dir: str | Path, *, threads: int | None = None,
               progress: Callable[[int], None] | None = None,
               progress_total: Callable[[int], None] | None = None) -> RunResult:
    """Continue an interrupted run (or shard) from its checkpoint."""
    run_dir = Path(run_dir)
    if not (run_dir / RUN_JSON).is_file():
        raise UserError(f"{run_dir}: not a run folder (no {RUN_JSON}); nothing to resume")
    if (run_dir / MANIFEST).is_file():
        raise UserError(f"{run_dir}: the run is already complete ({MANIFEST} exists)")
    try:
        options = json.loads((run_dir / RUN_JSON).read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{run_dir / RUN_JSON}: unreadable ({err})") from None
    scenario = load_scenario(run_dir / "scenario.toml")
    check_scenario_size(scenario)
    if scenario_hash(scenario) != options.get("scenario_hash"):
        raise UserError(f"{run_dir}/scenario.toml: does not match the run's scenario hash")
    if options.get("engine") != __version__:
        raise UserError(f"{run_dir}: started with engine {options.get('engine')}, this is "
                        f"{__version__}; results would not be comparable")
    with run_lock(run_dir):
        if (run_dir / MANIFEST).is_file():
            raise UserError(f"{run_dir}: the run is already complete ({MANIFEST} exists)")
        return _execute(run_dir, scenario, options, threads=threads, progress=progress,
                        progress_total=progress_total, resume=True)


def _execute(target: Path, scenario: Scenario, options: dict, *, threads, progress,
             progress_total, resume: bool = False, executor=None) -> RunResult:
    from ..core.tables import cells_table, records_table, summary_table

    trials, seed = options["trials"], options["seed"]
    shard = tuple(options["shard"]) if options.get("shard") else None
    start, stop = shard_range(trials, *shard) if shard else (0, trials)
    compiled = compile_scenario(scenario)
    n_threads = set_threads(threads)

    done = Tallies.zeros(compiled.n_cells, compiled.n_alliances)
    position = start
    records = None
    if resume and (target / CHECKPOINT).is_file():
        with np.load(target / CHECKPOINT) as ck:
            position = int(ck["position"])
            done = Tallies(ck["cells"], ck["cell_hist"], ck["alliances"], ck["alliance_hist"])
            records = ck["records"]
        if not start <= position <= stop:
            raise UserError(f"{target / CHECKPOINT}: position {position} outside the run")
    if records is None:
        records = np.zeros((max(0, min(options["save_trials"], stop - start)), N_RECORD_COLUMNS))
    if progress_total is not None:
        progress_total(stop - start)
        if progress is not None and position > start:
            progress(position - start)

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    if executor is None:
        simulate(compiled, seed, start, start + 1 if start < stop else start)  # compile/load
    compile_s = time.perf_counter() - t0
    last_checkpoint = time.perf_counter()

    def checkpoint(pos: int, snapshot: Callable[[], Tallies], recs: np.ndarray) -> None:
        nonlocal last_checkpoint
        every = float(os.environ.get("CRISIS_CHECKPOINT_SECONDS", CHECKPOINT_EVERY_S))
        if pos >= stop or time.perf_counter() - last_checkpoint < every:
            return
        partial = snapshot()
        partial.add(done)
        write_npz(target / CHECKPOINT, {**tallies_arrays(partial), "position": np.int64(pos),
                                        "records": recs})
        last_checkpoint = time.perf_counter()

    t0 = time.perf_counter()
    if executor is not None:
        new, records = executor(compiled, seed, trials, options["block_size"],
                                options["save_trials"], progress)
        n_threads = "dask"
    else:
        new, records = simulate(compiled, seed, position, stop,
                                block_size=options["block_size"], progress=progress,
                                records=records, record_start=start, on_wave=checkpoint)
    wall = time.perf_counter() - t0
    new.add(done)
    tallies = new

    manifest = {
        "scenario": scenario.scenario.name,
        "scenario_file": options.get("scenario_file"),
        "scenario_hash": options["scenario_hash"],
        "seed": seed,
        "trials": trials,
        "trial_range": [start, stop],
        "shard": list(shard) if shard else None,
        "threads": n_threads,
        "block_size": options["block_size"],
        "save_trials": options["save_trials"],
        "resumed_at": position if resume else None,
        "wall_time_s": round(wall, 3),
        "compile_s": round(compile_s, 3),
        "trials_per_s": round((stop - position) / wall, 1) if wall > 0 else None,
        "started_utc": started.isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "command": sys.argv,
    }
    result = RunResult(target, manifest, tallies)
    write_npz(target / "tallies.npz", tallies_arrays(tallies))
    if options["save_trials"]:
        result.records = records_table(compiled, records)
        write_parquet(target / "trials.parquet", result.records)
    if not shard:
        result.cells = cells_table(compiled, tallies)
        result.summary = summary_table(compiled, tallies)
        write_parquet(target / "cells.parquet", result.cells)
        write_parquet(target / "summary.parquet", result.summary)
    write_json(target / MANIFEST, manifest)
    (target / CHECKPOINT).unlink(missing_ok=True)
    return result
