"""``crisis merge RUN_DIR``: combine shard tallies into the tables a single run gives.

Every shard's manifest is checked first — same scenario hash, seed, total trials, engine
version and shard count; shard ranges complete and non-overlapping — and nothing is merged from
a partial or inconsistent set.  Tallies are integers, summed in shard order, so the merged
``cells.parquet`` / ``summary.parquet`` equal a single run's, byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..core.simulate import Tallies
from ..errors import UserError
from ..model.compile import compile_scenario
from ..model.config import load_scenario, scenario_hash
from .io import write_json, write_npz, write_parquet
from .runner import MANIFEST, RunResult, load_tallies, shard_dir, shard_range, tallies_arrays


def shard_manifests(run_dir: Path) -> list[tuple[Path, dict]]:
    found = []
    for folder in sorted((run_dir / "shards").glob("shard-*-of-*")):
        path = folder / MANIFEST
        if path.is_file():
            try:
                found.append((folder, json.loads(path.read_text())))
            except ValueError as err:
                raise UserError(f"{path}: unreadable manifest ({err})") from None
    return found


def check_shards(run_dir: Path) -> tuple[dict, list[tuple[Path, dict]]]:
    """Validate the shard set; return the reference manifest and the shards in order."""
    run_dir = Path(run_dir)
    if not (run_dir / "shards").is_dir():
        raise UserError(f"{run_dir}: no shards/ folder to merge")
    shards = shard_manifests(run_dir)
    if not shards:
        raise UserError(f"{run_dir}/shards: no finished shard (no manifest.json in any shard)")
    first = shards[0][1]
    keys = ("scenario_hash", "seed", "trials", "save_trials")
    problems = []
    for folder, m in shards:
        for key in keys:
            if m.get(key) != first.get(key):
                problems.append(f"{folder.name}: {key} {m.get(key)!r} differs from "
                                f"{shards[0][0].name}'s {first.get(key)!r}")
        if m.get("versions", {}).get("engine") != first.get("versions", {}).get("engine"):
            problems.append(f"{folder.name}: engine version differs")
        if not m.get("shard") or m["shard"][1] != first["shard"][1]:
            problems.append(f"{folder.name}: shard count differs ({m.get('shard')})")
    if first.get("versions", {}).get("engine") != __version__:
        problems.append(f"shards were made by engine {first['versions'].get('engine')}, "
                        f"this is {__version__}")
    if problems:
        raise UserError(f"{run_dir}: inconsistent shards:\n  " + "\n  ".join(problems))
    count = first["shard"][1]
    by_index = {}
    for folder, m in shards:
        index = m["shard"][0]
        expected = shard_range(first["trials"], index, count)
        if list(expected) != m["trial_range"]:
            problems.append(f"{folder.name}: trial range {m['trial_range']} is not shard "
                            f"{index}/{count}'s {list(expected)}")
        if index in by_index:
            problems.append(f"{folder.name}: shard {index} appears twice")
        by_index[index] = (folder, m)
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        names = ", ".join(shard_dir(run_dir, i, count).name for i in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        problems.append(f"missing or unfinished shards ({len(missing)} of {count}): "
                        f"{names}{more}")
    if problems:
        raise UserError(f"{run_dir}: cannot merge:\n  " + "\n  ".join(problems))
    return first, [by_index[i] for i in range(count)]


def merge_run(run_dir: str | Path) -> RunResult:
    import polars as pl

    from ..core.tables import cells_table, summary_table

    run_dir = Path(run_dir)
    first, shards = check_shards(run_dir)
    scenario = load_scenario(run_dir / "scenario.toml")
    if scenario_hash(scenario) != first["scenario_hash"]:
        raise UserError(f"{run_dir}/scenario.toml: does not match the shards' scenario hash")
    compiled = compile_scenario(scenario)
    total = Tallies.zeros(compiled.n_cells, compiled.n_alliances)
    for folder, _ in shards:  # in shard order; integer sums are exact in any order anyway
        total.add(load_tallies(folder / "tallies.npz"))
    if total.cells[:, 0].sum() != first["trials"]:
        raise UserError(f"{run_dir}: shard tallies hold {total.cells[:, 0].sum()} trials, "
                        f"expected {first['trials']}")
    result = RunResult(run_dir, {}, total)
    save = first["save_trials"]
    if save:
        parts = [pl.read_parquet(folder / "trials.parquet") for folder, _ in shards
                 if (folder / "trials.parquet").exists()]
        result.records = pl.concat(parts).sort("trial").head(save)
        write_parquet(run_dir / "trials.parquet", result.records)
    result.cells = cells_table(compiled, total)
    result.summary = summary_table(compiled, total)
    write_npz(run_dir / "tallies.npz", tallies_arrays(total))
    write_parquet(run_dir / "cells.parquet", result.cells)
    write_parquet(run_dir / "summary.parquet", result.summary)
    manifest = {
        key: first[key] for key in ("scenario", "scenario_file", "scenario_hash", "seed",
                                    "trials", "block_size", "save_trials", "versions")
    }
    manifest.update({
        "trial_range": [0, first["trials"]],
        "shards": len(shards),
        "merged_from": [str(folder.relative_to(run_dir)) for folder, _ in shards],
        "wall_time_s": round(sum(m["wall_time_s"] for _, m in shards), 3),
        "threads": sorted({m["threads"] for _, m in shards}),
    })
    result.manifest = manifest
    write_json(run_dir / MANIFEST, manifest)
    return result
