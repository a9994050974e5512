"""``crisis run``: scenario file → simulation → Parquet tables, manifest and a summary.

Files in the run folder (design §5): ``cells.parquet``, ``summary.parquet``, ``manifest.json``,
plus ``tallies.npz`` (the exact integer tallies and histograms, for merging),
``scenario.toml`` (the input, byte for byte) and ``trials.parquet`` with ``--save-trials``.
Each file is written atomically; ``manifest.json`` is written last, so a folder with a manifest
is a complete run.
"""

from __future__ import annotations

import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from . import __version__
from .compile import CompiledScenario, compile_scenario
from .config import Scenario, load_scenario, scenario_hash
from .errors import UserError
from .io import write_bytes, write_json, write_npz, write_parquet
from .simulate import DEFAULT_BLOCK_SIZE, Tallies, set_threads, simulate

MANIFEST = "manifest.json"
RUN_FILES = ("cells.parquet", "summary.parquet", "tallies.npz", "scenario.toml",
             "trials.parquet", MANIFEST)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:60] or "scenario"


def default_out_dir(scenario: Scenario, seed: int) -> Path:
    return Path("results") / f"{slugify(scenario.scenario.name)}-{seed}"


@dataclass
class RunResult:
    out_dir: Path
    manifest: dict
    cells: pl.DataFrame
    summary: pl.DataFrame
    tallies: Tallies
    records: pl.DataFrame | None


def versions() -> dict[str, str]:
    import numba

    return {
        "engine": __version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "polars": pl.__version__,
        "python": platform.python_version(),
    }


def prepare_out_dir(out_dir: Path, force: bool) -> None:
    """Refuse to overwrite a folder that holds anything but our own run files unless forced."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir():
        existing = [p.name for p in out_dir.iterdir()]
        if existing and not force:
            raise UserError(
                f"{out_dir}: folder is not empty ({', '.join(sorted(existing)[:4])}"
                f"{', …' if len(existing) > 4 else ''}); pass --force to overwrite the run there"
            )
        if force:
            for name in RUN_FILES:
                (out_dir / name).unlink(missing_ok=True)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out_dir}: cannot create the output folder: {err.strerror}") from None


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
    progress: Callable[[int], None] | None = None,
    progress_total: Callable[[int], None] | None = None,
) -> RunResult:
    """Run a scenario file and write its results; returns what was written."""
    from .tables import cells_table, records_table, summary_table

    config_path = Path(config_path)
    scenario = load_scenario(config_path)
    seed = scenario.scenario.seed if seed is None else seed
    trials = scenario.scenario.trials if trials is None else trials
    if trials < 1:
        raise UserError(f"--trials must be ≥ 1, got {trials}")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed must be in [0, 2^63), got {seed}")
    if block_size < 1:
        raise UserError(f"--block-size must be ≥ 1, got {block_size}")
    if save_trials < 0:
        raise UserError(f"--save-trials must be ≥ 0, got {save_trials}")
    out = Path(out_dir) if out_dir is not None else default_out_dir(scenario, seed)
    prepare_out_dir(out, force)

    compiled = compile_scenario(scenario)
    n_threads = set_threads(threads)
    if progress_total is not None:
        progress_total(trials)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    simulate(compiled, seed, 0, 1)  # compile, or load from Numba's cache, before timing
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tallies, records = simulate(compiled, seed, 0, trials, block_size=block_size,
                                save_trials=save_trials, progress=progress)
    wall = time.perf_counter() - t0

    cells = cells_table(compiled, tallies)
    summary = summary_table(compiled, tallies)
    record_frame = records_table(compiled, records) if save_trials else None
    manifest = {
        "scenario": scenario.scenario.name,
        "scenario_file": str(config_path),
        "scenario_hash": scenario_hash(scenario),
        "seed": seed,
        "trials": trials,
        "trial_range": [0, trials],
        "threads": n_threads,
        "block_size": block_size,
        "save_trials": save_trials,
        "wall_time_s": round(wall, 3),
        "compile_s": round(compile_s, 3),
        "trials_per_s": round(trials / wall, 1) if wall > 0 else None,
        "started_utc": started.isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "command": sys.argv,
    }
    write_parquet(out / "cells.parquet", cells)
    write_parquet(out / "summary.parquet", summary)
    write_npz(out / "tallies.npz", tallies_arrays(tallies))
    write_bytes(out / "scenario.toml", config_path.read_bytes())
    if record_frame is not None:
        write_parquet(out / "trials.parquet", record_frame)
    write_json(out / MANIFEST, manifest)
    return RunResult(out, manifest, cells, summary, tallies, record_frame)


def tallies_arrays(t: Tallies) -> dict[str, np.ndarray]:
    return {"cells": t.cells, "cell_hist": t.cell_hist, "alliances": t.alliances,
            "alliance_hist": t.alliance_hist}


def compiled_for(scenario: Scenario) -> CompiledScenario:
    return compile_scenario(scenario)
