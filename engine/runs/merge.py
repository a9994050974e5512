"""``crisis merge RUN_DIR``: combine shard tallies into the tables a single run gives.

Every shard's manifest is checked first — valid, same scenario hash, seed, total trials, engine
version and shard count; shard ranges complete and non-overlapping; the SHA-256 of each shard's
files recorded — and nothing is merged from a partial or inconsistent set.  Then each shard's
tallies must match the SHA-256 and totals its manifest records, have the scenario's shapes and
satisfy the kernel's relations over the shard's range (:mod:`engine.runs.integrity`), and its
saved trial records must be the first trials of its range.  Tallies (per-member tallies
included) are integers, summed in shard order (an overflow is refused), so the merged
``cells.parquet`` / ``summary.parquet`` / ``members.parquet`` equal a single run's, byte for
byte.  Shards written by an older engine (tallies without per-member arrays) are refused with a
message that says so.

A run over a posterior (:mod:`engine.runs.posterior`): every shard must name the same
posterior, the run folder's copy of it must have that SHA-256, and each shard's
``blocks.parquet`` must hold exactly the blocks that start in its range, with their draws; the
merged ``blocks.parquet`` and summary intervals are then the single run's, byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from kernels.layout import N_RECORD_COLUMNS

from ..core.simulate import CampaignTallies, Tallies
from ..core.tables import records_table
from ..errors import UserError
from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import scenario_hash
from ..model.limits import check_scenario_size
from ..version import __version__
from .folder import BLOCKS, MANIFEST, POSTERIOR, SHARDS, TALLIES, TRIALS, RunFolder, shard_range
from .posterior import check_blocks, owned_blocks, plan
from .runner import (
    RUN_MANIFEST_KEYS,
    RunResult,
    add_tables,
    block_template,
    campaign_tables,
    posterior_intervals,
    posterior_manifest,
    stack_blocks,
)


def _folder(run_dir: str | Path | RunFolder) -> RunFolder:
    return run_dir if isinstance(run_dir, RunFolder) else RunFolder(run_dir)


def shard_manifests(run_dir: RunFolder) -> list[tuple[RunFolder, dict]]:
    """The finished shards (those with a manifest) and their validated manifests, in shard
    order."""
    return [(folder, folder.read_manifest()) for folder in run_dir.shard_folders()
            if folder.is_complete]


def check_shards(run_dir: str | Path | RunFolder) -> tuple[dict, list[tuple[RunFolder, dict]]]:
    """Validate the shard set; return the reference manifest and the shards in order."""
    run_dir = _folder(run_dir)
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
        if _posterior_sha(m) != _posterior_sha(first):
            problems.append(f"{folder.path.name}: ran over another posterior (or none)")
        if m["versions"]["engine"] != first["versions"]["engine"]:
            problems.append(f"{folder.path.name}: engine version differs")
        if not m.get("shard") or m["shard"][1] != (first.get("shard") or [0, 0])[1]:
            problems.append(f"{folder.path.name}: shard count differs ({m.get('shard')})")
        if not isinstance(m["threads"], int):
            problems.append(f"{folder.path.name}: threads {str(m['threads'])[:40]} is not a "
                            f"shard's")
        files = m.get("files") or {}
        wanted = ((TALLIES, TRIALS) if m["save_trials"] else (TALLIES,)) + (
            (BLOCKS, POSTERIOR) if _posterior_sha(m) else ())
        if any(name not in files for name in wanted) or m.get("totals") is None:
            problems.append(f"{folder.path.name}: its {MANIFEST} records no SHA-256 of its "
                            f"files (written by an older engine?); run the shard again")
    if first["versions"]["engine"] != __version__:
        problems.append(f"shards were made by engine {first['versions']['engine']}, "
                        f"this is {__version__}")
    if problems:
        raise UserError(f"{run_dir}: inconsistent shards:\n  " + "\n  ".join(problems))
    count = first["shard"][1]
    by_index = {}
    for folder, m in shards:
        index = m["shard"][0]
        expected = shard_range(first["trials"], index, count)
        if folder.path.name != run_dir.shard(index, count).path.name:
            problems.append(f"{folder.path.name}: holds shard {index}/{count}")
        if list(expected) != list(m["trial_range"]):
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


def _posterior_sha(manifest: dict) -> str | None:
    post = manifest.get("posterior")
    return post.get("sha256") if isinstance(post, dict) else None


def _add_exactly(total: Tallies, part: Tallies, where: Path) -> None:
    """``total += part``, refusing an int64 overflow (both hold only non-negative counts)."""
    for mine, theirs in zip(total.arrays(), part.arrays(), strict=True):
        mine += theirs
        if np.any(mine < theirs):
            raise UserError(f"{where}: the merged tallies would overflow")


def _shard_records(folder: RunFolder, manifest: dict, save: int,
                   expected: pl.Schema) -> pl.DataFrame:
    """A shard's ``trials.parquet``: its SHA-256 as recorded, the table's schema, and one row
    per trial for the first ``min(save, trials in range)`` trials of its range."""
    records = folder.read_records(manifest)
    path = folder / TRIALS
    if records is None:
        raise UserError(f"{path}: missing (the run saves {save} trials)")
    low, high = manifest["trial_range"]
    rows = max(0, min(save, high - low))
    if records.schema != expected:
        raise UserError(f"{path}: not a table of saved trials (columns or types differ)")
    if records.height != rows or not records.get_column("trial").to_list() == list(
            range(low, low + rows)):
        raise UserError(f"{path}: does not hold trials {low}…{low + rows - 1} of its shard")
    return records


def merge_run(run_dir: str | Path | RunFolder) -> RunResult:
    run_dir = _folder(run_dir)
    if not run_dir.has_shards:
        raise UserError(f"{run_dir}: no {SHARDS}/ folder to merge")
    with run_dir.lock():
        first, shards = check_shards(run_dir)
        scenario = run_dir.read_scenario()
        check_scenario_size(scenario, str(run_dir.scenario_path))
        if scenario_hash(scenario) != first["scenario_hash"]:
            raise UserError(f"{run_dir.scenario_path}: does not match the shards' scenario "
                            f"hash")
        compiled = compile_scenario(scenario)
        total = _merged_tallies(run_dir, shards, compiled)
        result = RunResult(run_dir.path, {}, total)
        save = first["save_trials"]
        if save:
            expected = records_table(compiled, np.zeros((0, N_RECORD_COLUMNS))).schema
            parts = [_shard_records(folder, m, save, expected) for folder, m in shards]
            result.records = pl.concat(parts).sort("trial").head(save)
        add_tables(result, compiled, scenario)
        campaign = None
        if compiled.campaign is not None:
            campaign = campaign_tables(compiled, total, first["trials"])
        blocks = None
        if _posterior_sha(first):
            blocks, info = _merged_blocks(run_dir, shards, compiled, first)
            result.summary = posterior_intervals(result.summary, blocks)
        manifest = {key: first[key] for key in RUN_MANIFEST_KEYS if key in first}
        if blocks is not None:
            manifest["posterior"] = info
        manifest.update({
            "trial_range": [0, first["trials"]],
            "shards": len(shards),
            "merged_from": [str(folder.path.relative_to(run_dir.path)) for folder, _ in shards],
            "wall_time_s": round(sum(m["wall_time_s"] for _, m in shards), 3),
            "threads": sorted({m["threads"] for _, m in shards}),
        })
        result.manifest = manifest
        if campaign is not None:
            manifest["campaign"] = {**(first.get("campaign") or {}),
                                    "crises": int(total.cells[:, 0].sum())}
            manifest["campaign"].pop("trial_periods_per_s", None)
        run_dir.write_results(total, result.cells, result.summary, result.members,
                              result.records, manifest, blocks, campaign)
        result.campaign = campaign
    result.blocks = blocks
    return result


def _merged_blocks(run_dir: RunFolder, shards: list[tuple[RunFolder, dict]],
                   compiled: CompiledScenario, first: dict) -> tuple[pl.DataFrame, dict]:
    """The block summaries of a posterior run's shards, each checked (the blocks that start in
    its range, at their draws of the run folder's posterior), stacked in block order; and the
    merged manifest's ``posterior`` section."""
    posterior = run_dir.read_posterior(_posterior_sha(first))
    if posterior.n_draws != first["posterior"]["draws"]:
        raise UserError(f"{run_dir / POSTERIOR}: {posterior.n_draws} draws where the shards "
                        f"say {first['posterior']['draws']}")
    template = block_template(compiled)
    parts = []
    for folder, m in shards:
        low, high = m["trial_range"]
        expected = owned_blocks(plan(first["seed"], low, high, first["trials"],
                                     posterior.n_draws))
        frame = folder.read_blocks(m)
        if frame is None:
            raise UserError(f"{folder / BLOCKS}: missing (the shard ran over a posterior)")
        parts.append(check_blocks(frame, expected, template.columns[2:],
                                  str(folder / BLOCKS)))
    blocks = stack_blocks(parts, template)
    return blocks, posterior_manifest(posterior, first["trials"], blocks)


def _merged_tallies(run_dir: RunFolder, shards: list[tuple[RunFolder, dict]],
                    compiled: CompiledScenario) -> Tallies:
    """Each shard's tallies checked against its manifest and the scenario, summed in shard
    order (integer sums are exact in any order anyway)."""
    total = (CampaignTallies.zeros(compiled) if compiled.campaign is not None else
             Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships))
    for folder, manifest in shards:
        _add_exactly(total, folder.read_tallies(manifest, compiled), folder / TALLIES)
    trials = int(total.successes.sum() if compiled.campaign is not None
                 else total.cells[:, 0].sum())
    if trials != shards[0][1]["trials"]:
        raise UserError(f"{run_dir}: shard tallies hold {trials} trials, expected "
                        f"{shards[0][1]['trials']}")
    return total
