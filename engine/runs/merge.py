"""``crisis merge RUN_DIR``: combine shard tallies into the tables a single run gives.

Every shard's manifest is checked first — same scenario hash, seed, total trials, engine
version and shard count; shard ranges complete and non-overlapping — and nothing is merged from
a partial or inconsistent set.  Tallies are integers, summed in shard order, so the merged
``cells.parquet`` / ``summary.parquet`` equal a single run's, byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..core.simulate import Tallies
from ..core.tables import cells_table, summary_table
from ..errors import UserError
from ..model.compile import compile_scenario
from ..model.config import load_scenario, scenario_hash
from ..version import __version__
from .folder import MANIFEST, SHARDS, RunFolder, shard_range
from .runner import RunResult


def shard_manifests(run_dir: RunFolder) -> list[tuple[RunFolder, dict]]:
    """The finished shards (those with a manifest) and their manifests, in shard order."""
    return [(folder, folder.read_manifest()) for folder in run_dir.shard_folders()
            if folder.is_complete]


def check_shards(run_dir: str | Path) -> tuple[dict, list[tuple[RunFolder, dict]]]:
    """Validate the shard set; return the reference manifest and the shards in order."""
    run_dir = RunFolder(run_dir)
    if not run_dir.has_shards:
        raise UserError(f"{run_dir}: no {SHARDS}/ folder to merge")
    shards = shard_manifests(run_dir)
    if not shards:
        raise UserError(f"{run_dir}/{SHARDS}: no finished shard (no {MANIFEST} in any shard)")
    first = shards[0][1]
    keys = ("scenario_hash", "seed", "trials", "save_trials")
    problems = []
    for folder, m in shards:
        for key in keys:
            if m.get(key) != first.get(key):
                problems.append(f"{folder.path.name}: {key} {m.get(key)!r} differs from "
                                f"{shards[0][0].path.name}'s {first.get(key)!r}")
        if m.get("versions", {}).get("engine") != first.get("versions", {}).get("engine"):
            problems.append(f"{folder.path.name}: engine version differs")
        if not m.get("shard") or m["shard"][1] != first["shard"][1]:
            problems.append(f"{folder.path.name}: shard count differs ({m.get('shard')})")
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
            problems.append(f"{folder.path.name}: trial range {m['trial_range']} is not shard "
                            f"{index}/{count}'s {list(expected)}")
        if index in by_index:
            problems.append(f"{folder.path.name}: shard {index} appears twice")
        by_index[index] = (folder, m)
    missing = [i for i in range(count) if i not in by_index]
    if missing:
        names = ", ".join(run_dir.shard(i, count).path.name for i in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        problems.append(f"missing or unfinished shards ({len(missing)} of {count}): "
                        f"{names}{more}")
    if problems:
        raise UserError(f"{run_dir}: cannot merge:\n  " + "\n  ".join(problems))
    return first, [by_index[i] for i in range(count)]


def merge_run(run_dir: str | Path) -> RunResult:
    run_dir = RunFolder(run_dir)
    first, shards = check_shards(run_dir)
    scenario = load_scenario(run_dir.scenario_path)
    if scenario_hash(scenario) != first["scenario_hash"]:
        raise UserError(f"{run_dir.scenario_path}: does not match the shards' scenario hash")
    compiled = compile_scenario(scenario)
    total = Tallies.zeros(compiled.n_cells, compiled.n_alliances)
    for folder, _ in shards:  # in shard order; integer sums are exact in any order anyway
        total.add(folder.read_tallies())
    if total.cells[:, 0].sum() != first["trials"]:
        raise UserError(f"{run_dir}: shard tallies hold {total.cells[:, 0].sum()} trials, "
                        f"expected {first['trials']}")
    result = RunResult(run_dir.path, {}, total)
    save = first["save_trials"]
    if save:
        parts = [part for folder, _ in shards if (part := folder.read_records()) is not None]
        result.records = pl.concat(parts).sort("trial").head(save)
        run_dir.write_records(result.records)
    result.cells = cells_table(compiled, total)
    result.summary = summary_table(compiled, total)
    run_dir.write_tallies(total)
    run_dir.write_tables(result.cells, result.summary)
    manifest = {
        key: first[key] for key in ("scenario", "scenario_file", "scenario_hash", "seed",
                                    "trials", "block_size", "save_trials", "versions")
    }
    manifest.update({
        "trial_range": [0, first["trials"]],
        "shards": len(shards),
        "merged_from": [str(folder.path.relative_to(run_dir.path)) for folder, _ in shards],
        "wall_time_s": round(sum(m["wall_time_s"] for _, m in shards), 3),
        "threads": sorted({m["threads"] for _, m in shards}),
    })
    result.manifest = manifest
    run_dir.write_manifest(manifest)
    return result
