"""``crisis run``: scenario → simulation → a run folder (:mod:`engine.runs.folder`) and a summary.

While a run goes, its folder's checkpoint holds the tallies of the trials finished so far;
``crisis run --resume`` continues from it and ends with the same tables as an uninterrupted run.

A shard (``--shard I/K``) runs trials ``[⌊I·N/K⌋, ⌊(I+1)·N/K⌋)`` into
``RUN_DIR/shards/shard-I-of-K/`` (tallies, manifest, records); ``crisis merge RUN_DIR`` combines
them (:mod:`engine.runs.merge`).
"""

from __future__ import annotations

import math
import os
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

from kernels.layout import DETERRENCE_MODES, N_RECORD_COLUMNS

from ..core.simulate import (
    DEFAULT_BLOCK_SIZE,
    DeterrenceTables,
    Tallies,
    deterrence_tables,
    set_threads,
    simulate,
)
from ..core.tables import cells_table, members_table, records_table, summary_table
from ..errors import UserError
from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import Scenario, load_scenario, scenario_hash
from ..model.limits import check_request, check_scenario_size
from ..version import __version__
from .folder import (
    CHECKPOINT,
    CHECKPOINT_BLOCKS,
    MANIFEST,
    POSTERIOR,
    RUN_JSON,
    RunFolder,
    default_out_dir,
)
from .options import MAX_BLOCK_SIZE, MAX_SEED, RunOptions, options_json, parse_options
from .posterior import Posterior

# seconds between checkpoints of a running run (CRISIS_CHECKPOINT_SECONDS overrides)
CHECKPOINT_EVERY_S = 10.0


def _checkpoint_every() -> float:
    """Seconds between checkpoints: CRISIS_CHECKPOINT_SECONDS, else CHECKPOINT_EVERY_S."""
    return float(os.environ.get("CRISIS_CHECKPOINT_SECONDS", CHECKPOINT_EVERY_S))


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
    """The results of a run: ``summary``, ``cells`` and ``members`` (Polars DataFrames, the
    run folder's ``summary.parquet``, ``cells.parquet`` and ``members.parquet``; None for a
    shard), ``records`` (``trials.parquet``'s rows with ``save_trials``), the exact integer
    ``tallies`` and the ``manifest``.  ``out_dir`` is the run folder, None for a run kept in
    memory until :meth:`save` writes one."""

    out_dir: Path | None
    manifest: dict
    tallies: Tallies
    cells: pl.DataFrame | None = None
    summary: pl.DataFrame | None = None
    records: pl.DataFrame | None = None
    members: pl.DataFrame | None = None
    scenario: Scenario | None = None
    options: dict | None = None  # what run.json records
    blocks: pl.DataFrame | None = None  # blocks.parquet of a run over a posterior
    posterior: Posterior | None = None
    # a campaign run's tables (periods, alliance_periods, successes), by file name
    campaign: dict[str, pl.DataFrame] | None = None

    def save(self, folder: str | Path, *, force: bool = False) -> Path:
        """Write the run folder (``cells.parquet``, ``summary.parquet``, ``members.parquet``,
        ``tallies.npz``,
        ``scenario.toml``, ``run.json``, ``manifest.json``, ``trials.parquet`` with saved
        trials) — the same tables, byte for byte, as ``crisis run`` writes; returns the folder.
        An existing non-empty folder is refused unless ``force``."""
        if self.scenario is None or self.options is None or self.summary is None:
            raise UserError("only the result of a whole run can be saved (shards are merged "
                            "with `crisis merge`)")
        return save_run(self, folder, force=force).path


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


def _threads_for(threads: int | None) -> int:
    if threads is not None:
        return threads
    return int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1))


def run_scenario(
    config_path: str | Path,
    **options,
) -> RunResult:
    """Run a scenario file (or one shard of it) and write its results (see :func:`run_to_folder`;
    the folder keeps the file's bytes as ``scenario.toml``)."""
    return run_to_folder(load_scenario(config_path), **options)


def run_options(scenario: Scenario, *, trials: int, seed: int, block_size: int,
                save_trials: int, shard: tuple[int, int] | None = None,
                posterior: Posterior | None = None) -> RunOptions:
    """What ``run.json`` records of a run: enough to resume it and to tie it to its scenario
    (validated by the same rules that check ``run.json`` on ``--resume``)."""
    data = {
        "trials": trials, "seed": seed, "block_size": block_size, "save_trials": save_trials,
        "shard": list(shard) if shard else None, "scenario_hash": scenario_hash(scenario),
        "scenario_file": scenario.source_file, "engine": __version__,
    }
    if posterior is not None:
        data["posterior_sha256"] = posterior.sha256
    return parse_options(data, "the run's options (--trials, --seed, --block-size, "
                               "--save-trials, --shard)")


def check_posterior(scenario: Scenario, posterior: Posterior | None) -> None:
    """Every parameter of a posterior must apply to the scenario (checked on the first draw)."""
    if posterior is None:
        return
    if scenario.campaign is not None:
        raise UserError("--posterior: campaigns ([campaign]) do not run over a posterior yet")
    from ..model.parameters import apply_values

    try:
        apply_values(scenario, posterior.values(0))
    except UserError as err:
        raise UserError(f"{posterior.source}: {err}") from None


def run_in_memory(
    scenario: Scenario,
    *,
    trials: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    save_trials: int = 0,
    progress: Callable[[int], None] | None = None,
    progress_total: Callable[[int], None] | None = None,
    executor: Callable | None = None,
    posterior: Posterior | None = None,
) -> RunResult:
    """Run a validated scenario and keep its results in memory: the same tallies, tables and
    manifest as :func:`run_to_folder`, nothing written (no checkpoints either)."""
    seed, trials = check_options(scenario, trials=trials, seed=seed, block_size=block_size,
                                 save_trials=save_trials)
    check_posterior(scenario, posterior)
    check_request(scenario, trials_in_process=trials, total_trials=trials,
                  threads=_threads_for(threads), save_trials=save_trials, block_size=block_size)
    options = run_options(scenario, trials=trials, seed=seed, block_size=block_size,
                          save_trials=save_trials, posterior=posterior)
    return _execute(None, scenario, options, threads=threads, progress=progress,
                    progress_total=progress_total, executor=executor, posterior=posterior)


def save_run(result: RunResult, folder: str | Path, *, force: bool = False) -> RunFolder:
    """Write an in-memory result as a complete run folder (the files :func:`run_to_folder`
    writes, byte for byte the same tables)."""
    target = RunFolder(folder)
    with target.lock():
        target.prepare(force)
        target.write_scenario(result.scenario.source_text())
        if result.posterior is not None:
            target.write_posterior(result.posterior.data)
        target.write_options(result.options)
        target.write_results(result.tallies, result.cells, result.summary, result.members,
                             result.records, result.manifest, result.blocks, result.campaign)
    result.out_dir = target.path
    return target


def run_to_folder(
    scenario: Scenario,
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
    posterior: Posterior | None = None,
) -> RunResult:
    """Run a validated scenario (or one shard of it) and write its run folder, checkpointing as
    it goes (with a ``posterior``, parameters per trial block from its draws; no checkpoints).
    The folder's ``scenario.toml`` is :meth:`Scenario.source_text`.

    ``executor(compiled, seed, trials, block_size, save_trials, progress, deterrence) ->
    (tallies, records)`` replaces the in-process simulation of the whole range (the Dask
    backend); ``deterrence`` is step 2, computed once (:func:`deterrence_tables`)."""
    seed, trials = check_options(scenario, trials=trials, seed=seed, block_size=block_size,
                                 save_trials=save_trials)
    check_posterior(scenario, posterior)
    options = run_options(scenario, trials=trials, seed=seed, block_size=block_size,
                          save_trials=save_trials, shard=shard, posterior=posterior)
    run_dir = RunFolder(out_dir if out_dir is not None
                        else default_out_dir(scenario.scenario.name, seed))
    target = run_dir.shard(*shard) if shard else run_dir
    start, stop = options.trial_range
    check_request(scenario, trials_in_process=stop - start, total_trials=trials,
                  threads=_threads_for(threads), save_trials=save_trials, block_size=block_size)
    with target.lock():
        target.prepare(force)
        scenario_text = scenario.source_text()
        target.write_scenario(scenario_text)
        if shard and not run_dir.scenario_path.exists():
            run_dir.write_scenario(scenario_text)
        if posterior is not None:
            target.write_posterior(posterior.data)
            if shard and not os.path.lexists(run_dir / POSTERIOR):
                run_dir.write_posterior(posterior.data)
        target.write_options(options)
        return _execute(target, scenario, options, threads=threads, progress=progress,
                        progress_total=progress_total, executor=executor, posterior=posterior)


def check_options(scenario: Scenario, *, trials: int | None, seed: int | None, block_size: int,
                  save_trials: int) -> tuple[int, int]:
    """The run's seed and trials (the scenario's unless given), each checked; a bad value is a
    :class:`UserError` naming the option."""
    seed = scenario.scenario.seed if seed is None else seed
    trials = scenario.scenario.trials if trials is None else trials
    if trials < 1:
        raise UserError(f"--trials must be ≥ 1, got {trials}")
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed must be in [0, 2^63), got {seed}")
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise UserError(f"--block-size must be in [1, 2^62], got {block_size}")
    if save_trials < 0:
        raise UserError(f"--save-trials must be ≥ 0, got {save_trials}")
    return seed, trials


def resume_run(run_dir: str | Path, *, threads: int | None = None,
               progress: Callable[[int], None] | None = None,
               progress_total: Callable[[int], None] | None = None) -> RunResult:
    """Continue an interrupted run (or shard) from its checkpoint.

    Nothing in the folder is trusted: ``run.json`` must pass the command line's rules and the
    limits (:func:`~engine.model.limits.check_request`), ``scenario.toml`` must have the hash
    ``run.json`` records, and the checkpoint must belong to this run and hold the tallies and
    records of a real run (:meth:`RunFolder.read_checkpoint`); anything else is a
    :class:`UserError` naming the file."""
    folder = RunFolder(run_dir)
    folder.check_links()
    if not folder.has_options:
        raise UserError(f"{run_dir}: not a run folder (no {RUN_JSON}); nothing to resume")
    if folder.is_complete:
        raise UserError(f"{run_dir}: the run is already complete ({MANIFEST} exists)")
    with folder.lock():
        if folder.is_complete:
            raise UserError(f"{run_dir}: the run is already complete ({MANIFEST} exists)")
        options = folder.read_options()
        run_json = folder / RUN_JSON
        if options.engine != __version__:
            raise UserError(f"{run_json}: the run was started with engine {options.engine}, "
                            f"this is {__version__}; results would not be comparable")
        scenario = folder.read_scenario()
        check_scenario_size(scenario, str(folder.scenario_path))
        if scenario_hash(scenario) != options.scenario_hash:
            raise UserError(f"{folder.scenario_path}: does not match the scenario hash in "
                            f"{run_json}")
        if not folder.fits_shard(options.shard):
            where = (f"shard {options.shard[0]}/{options.shard[1]}" if options.shard
                     else "a whole run")
            raise UserError(f"{run_json}: describes {where}, which does not belong in "
                            f"{folder.path}")
        start, stop = options.trial_range
        try:
            check_request(scenario, trials_in_process=stop - start,
                          total_trials=options.trials, threads=_threads_for(threads),
                          save_trials=options.save_trials, block_size=options.block_size)
        except UserError as err:
            raise UserError(f"{run_json}: {err}") from None
        posterior = None
        if options.posterior_sha256 is not None:
            posterior = folder.read_posterior(options.posterior_sha256)
            check_posterior(scenario, posterior)
        return _execute(folder, scenario, options, threads=threads, progress=progress,
                        progress_total=progress_total, resume=True, posterior=posterior)


def _load_kernels(compiled: CompiledScenario, seed: int, start: int, stop: int) -> float:
    """Compile (or load from the cache) the trial kernel on one trial of the range, so that the
    run's wall time is the simulation's; returns the seconds it took."""
    t0 = time.perf_counter()
    simulate(compiled, seed, start, start + 1 if start < stop else start,
             deterrence=DeterrenceTables("capability", np.zeros(compiled.n_cells),
                                         np.zeros(compiled.n_cells)))
    return time.perf_counter() - t0


def _execute(target: RunFolder | None, scenario: Scenario, options: RunOptions, *, threads,
             progress, progress_total, resume: bool = False, executor=None,
             posterior: Posterior | None = None) -> RunResult:
    """Simulate the run's range and build its tables; with a ``target`` folder, checkpoint as
    it goes and write the results there (``None``: in memory only)."""
    if posterior is not None:
        return _execute_posterior(target, scenario, options, posterior, threads=threads,
                                  progress=progress, progress_total=progress_total,
                                  resume=resume, executor=executor)
    if scenario.campaign is not None:
        return _execute_campaign(target, scenario, options, threads=threads, progress=progress,
                                 progress_total=progress_total, resume=resume,
                                 executor=executor)
    trials, seed, shard = options.trials, options.seed, options.shard
    start, stop = options.trial_range
    compiled = compile_scenario(scenario)
    n_threads = set_threads(threads)

    done = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    position = start
    records = None
    if resume and target is not None and target.has_checkpoint:
        done, position, records, _ = target.read_checkpoint(options, compiled)
    if records is None:
        records = np.zeros((max(0, min(options.save_trials, stop - start)), N_RECORD_COLUMNS))
    if progress_total is not None:
        progress_total(stop - start)
        if progress is not None and position > start:
            progress(position - start)

    started = datetime.now(UTC)
    compile_s = _load_kernels(compiled, seed, start, stop) if executor is None else 0.0
    # step 2 once per run: in expected_response mode a pilot per cell (design §8), keyed by the
    # seed and the cell only, so every shard, resume and thread count gets the same tables
    t0 = time.perf_counter()
    step2 = deterrence_tables(compiled, seed)
    deterrence_s = time.perf_counter() - t0
    last_checkpoint = time.perf_counter()
    every = _checkpoint_every()

    def checkpoint(pos: int, snapshot: Callable[[], Tallies], recs: np.ndarray) -> None:
        nonlocal last_checkpoint
        if target is None or pos >= stop or time.perf_counter() - last_checkpoint < every:
            return
        partial = snapshot()
        partial.add(done)
        target.write_checkpoint(partial, pos, recs, options)
        last_checkpoint = time.perf_counter()

    t0 = time.perf_counter()
    if executor is not None:
        new, records = executor(compiled, seed, trials, options.block_size,
                                options.save_trials, progress, step2)
        n_threads = "dask"
    else:
        new, records = simulate(compiled, seed, position, stop,
                                block_size=options.block_size, progress=progress,
                                records=records, record_start=start, on_wave=checkpoint,
                                deterrence=step2)
    wall = time.perf_counter() - t0
    new.add(done)
    tallies = new

    manifest = run_manifest(scenario, compiled, options, threads=n_threads,
                            resumed_at=position if resume else None, wall_s=wall,
                            compile_s=compile_s, simulated=stop - position, started=started,
                            deterrence={**step2.manifest(), "seconds": round(deterrence_s, 3)})
    result = RunResult(None if target is None else target.path, manifest, tallies,
                       scenario=scenario, options=options_json(options))
    if options.save_trials:
        result.records = records_table(compiled, records)
    if not shard:
        add_tables(result, compiled, scenario)
    if target is not None:
        target.write_results(tallies, result.cells, result.summary, result.members,
                             result.records, manifest)
    return result


def _execute_posterior(target: RunFolder | None, scenario: Scenario, options: RunOptions,
                       posterior: Posterior, *, threads, progress, progress_total,
                       resume: bool = False, executor=None) -> RunResult:
    """A run (or shard) with parameters from ``posterior`` (:mod:`.posterior`): each block's
    trials simulated at its draw's parameters, tallies summed exactly; the blocks the range owns
    give their own summaries (``blocks.parquet``), from which a whole run's intervals come.
    Checkpoints fall between blocks and hold the block summaries made so far; with an
    ``executor`` (Dask) the blocks run as tasks on the cluster."""
    from ..model.parameters import apply_values
    from .posterior import block_frame, check_blocks, owned_blocks, plan, run_job

    seed, trials = options.seed, options.trials
    start, stop = options.trial_range
    compiled = compile_scenario(scenario)
    n_threads = set_threads(threads)
    jobs = plan(seed, start, stop, trials, posterior.n_draws)
    template = block_template(compiled)
    columns = template.columns[2:]
    tallies = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    position, records, parts = start, None, []
    if resume and target is not None and target.has_checkpoint:
        tallies, position, records, done_blocks = target.read_checkpoint(options, compiled)
        where = target / CHECKPOINT
        if position not in {start} | {j.hi for j in jobs}:
            raise UserError(f"{where}: position {position} is not between two blocks")
        parts = [check_blocks(done_blocks, owned_blocks(jobs, position), columns,
                              str(target / CHECKPOINT_BLOCKS))]
    if records is None:
        records = np.zeros((max(0, min(options.save_trials, stop - start)), N_RECORD_COLUMNS))
    if progress_total is not None:
        progress_total(stop - start)
        if progress is not None and position > start:
            progress(position - start)
    todo = [j for j in jobs if j.lo >= position]
    started = datetime.now(UTC)
    compile_s = _load_kernels(compiled, seed, start, stop) if executor is None else 0.0
    draws: dict[int, tuple[CompiledScenario, DeterrenceTables]] = {}
    deterrence_s = 0.0
    for job in todo:  # step 2 per draw used, in the client (a pilot is not repeated per task)
        if job.draw not in draws:
            c = compile_scenario(apply_values(scenario, posterior.values(job.draw)))
            t_step2 = time.perf_counter()
            draws[job.draw] = (c, deterrence_tables(c, seed, cache=False))
            deterrence_s += time.perf_counter() - t_step2
    last_checkpoint = time.perf_counter()
    every = _checkpoint_every()
    t0 = time.perf_counter()
    if executor is not None:
        results = executor.blocks([(*draws[j.draw], seed, j, options.block_size,
                                    max(0, min(options.save_trials - (j.lo - start),
                                               j.hi - j.lo)))
                                   for j in todo], progress)
        for job, (part, own, recs) in zip(todo, results, strict=True):
            tallies.add(part)
            if len(recs):
                records[job.lo - start:job.lo - start + len(recs)] = recs
            if own is not None:
                parts.append(block_frame(summary_table(draws[job.draw][0], own), job.block,
                                         job.draw))
        n_threads = "dask"
    else:
        for job in todo:
            c, step2 = draws[job.draw]
            part, own, records = run_job(c, step2, seed, job, block_size=options.block_size,
                                         progress=progress, records=records,
                                         record_start=start)
            tallies.add(part)
            if own is not None:
                parts.append(block_frame(summary_table(c, own), job.block, job.draw))
            if (target is not None and job.hi < stop
                    and time.perf_counter() - last_checkpoint >= every):
                target.write_checkpoint(tallies, job.hi, records, options,
                                        blocks=stack_blocks(parts, template))
                last_checkpoint = time.perf_counter()
    wall = time.perf_counter() - t0
    block_table = stack_blocks(parts, template)
    manifest = run_manifest(scenario, compiled, options, threads=n_threads,
                            resumed_at=position if resume else None, wall_s=wall,
                            compile_s=compile_s, simulated=stop - position, started=started,
                            deterrence={"mode": DETERRENCE_MODES[compiled.deterrence],
                                        "per_draw": True, "seconds": round(deterrence_s, 3)})
    manifest["posterior"] = posterior_manifest(posterior, trials, block_table)
    result = RunResult(None if target is None else target.path, manifest, tallies,
                       scenario=scenario, options=options_json(options), blocks=block_table,
                       posterior=posterior)
    if options.save_trials:
        result.records = records_table(compiled, records)
    if not options.shard:
        add_tables(result, compiled, scenario)
        result.summary = posterior_intervals(result.summary, block_table)
    if target is not None:
        target.write_results(tallies, result.cells, result.summary, result.members,
                             result.records, manifest, block_table)
    return result


def _execute_campaign(target: RunFolder | None, scenario: Scenario, options: RunOptions, *,
                      threads, progress, progress_total, resume: bool = False,
                      executor=None) -> RunResult:
    """A campaign run (design §7): trajectories in waves through the campaign kernel, with
    checkpoints between waves; the tables of every crisis plus the campaign's own."""
    from ..core.simulate import CampaignTallies, simulate_campaign

    if options.save_trials:
        raise UserError("--save-trials: a campaign run keeps no per-trial records (its tables "
                        "are by period: periods.parquet, alliance_periods.parquet)")
    seed = options.seed
    start, stop = options.trial_range
    compiled = compile_scenario(scenario)
    n_threads = set_threads(threads)
    tallies = CampaignTallies.zeros(compiled)
    position = start
    if resume and target is not None and target.has_checkpoint:
        tallies, position, _, _ = target.read_checkpoint(options, compiled)
    resumed_at = position
    if progress_total is not None:
        progress_total(stop - start)
        if progress is not None and position > start:
            progress(position - start)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    step2 = deterrence_tables(compiled, seed)
    deterrence_s = time.perf_counter() - t0
    compile_s = 0.0
    if executor is None:
        t0 = time.perf_counter()
        simulate_campaign(compiled, seed, start, start + 1 if start < stop else start,
                          block_size=options.block_size, deterrence=step2)
        compile_s = time.perf_counter() - t0
    no_records = np.zeros((0, N_RECORD_COLUMNS))
    t0 = time.perf_counter()
    if executor is not None:
        new, _ = executor(compiled, seed, options.trials, options.block_size, 0, progress,
                          step2)
        tallies.add(new)
        n_threads = "dask"
    else:
        wave = _campaign_wave(options.block_size, n_threads, compiled.campaign.steps)
        last_checkpoint = time.perf_counter()
        every = _checkpoint_every()
        while position < stop:
            end = min(stop, position + wave)
            tallies.add(simulate_campaign(compiled, seed, position, end,
                                          block_size=options.block_size, deterrence=step2))
            if progress is not None:
                progress(end - position)
            position = end
            if (target is not None and position < stop
                    and time.perf_counter() - last_checkpoint >= every):
                target.write_checkpoint(tallies, position, no_records, options)
                last_checkpoint = time.perf_counter()
    wall = time.perf_counter() - t0
    simulated = stop - resumed_at
    manifest = run_manifest(scenario, compiled, options, threads=n_threads,
                            resumed_at=resumed_at if resume else None, wall_s=wall,
                            compile_s=compile_s, simulated=simulated, started=started,
                            deterrence={**step2.manifest(), "seconds": round(deterrence_s, 3)})
    cp = compiled.campaign
    manifest["campaign"] = {
        "steps": cp.steps, "crisis_rate": cp.crisis_rate,
        "reputation_learning": cp.reputation_learning, "trust_weight": cp.trust_weight,
        "resolve_learning": cp.resolve_learning, "threat_shock": cp.threat_shock,
        "threat_decay": cp.threat_decay, "exit_threshold": cp.exit_threshold,
        "join_threshold": cp.join_threshold if math.isfinite(cp.join_threshold) else "inf",
        "candidates": cp.n_candidates,
        "crises": int(tallies.cells[:, 0].sum()),
        "trial_periods_per_s": (round(simulated * cp.steps / wall, 1) if wall > 0 else None),
    }
    result = RunResult(None if target is None else target.path, manifest, tallies,
                       scenario=scenario, options=options_json(options))
    tables = None
    if not options.shard:
        add_tables(result, compiled, scenario)
        tables = campaign_tables(compiled, tallies, options.trials)
        result.campaign = tables
    if target is not None:
        target.write_results(tallies, result.cells, result.summary, result.members, None,
                             manifest, campaign=tables)
    return result


def _campaign_wave(block_size: int, threads: int, steps: int) -> int:
    """Trajectories per wave of a campaign run (progress and checkpoints fall between waves):
    about 2²² trial-periods, at least four blocks per thread."""
    return max(block_size * threads * 4, (1 << 22) // max(1, steps))


def campaign_tables(compiled: CompiledScenario, tallies, trials: int) -> dict[str, pl.DataFrame]:
    """A whole campaign run's own tables, by the run folder's file names."""
    from ..core.tables import alliance_periods_table, periods_table, successes_table
    from .folder import ALLIANCE_PERIODS, PERIODS, SUCCESSES

    return {PERIODS: periods_table(compiled, tallies, trials),
            ALLIANCE_PERIODS: alliance_periods_table(compiled, tallies, trials),
            SUCCESSES: successes_table(tallies, trials)}


def block_template(compiled: CompiledScenario) -> pl.DataFrame:
    """An empty ``blocks.parquet`` of this scenario: its columns and types."""
    from .posterior import block_frame

    zeros = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    return block_frame(summary_table(compiled, zeros), 0, 0).clear()


def stack_blocks(parts: list[pl.DataFrame], template: pl.DataFrame) -> pl.DataFrame:
    """Block summaries in block order, with the columns and types of ``template``."""
    if not parts:
        return template
    return pl.concat(parts, how="diagonal_relaxed").select(template.columns).cast(
        template.schema).sort("block", maintain_order=True)


def posterior_manifest(posterior: Posterior, trials: int, blocks: pl.DataFrame) -> dict:
    """The manifest's ``posterior`` section of a run, shard or merged run with these block
    summaries."""
    return {**posterior.manifest(trials),
            "draws_used": blocks.get_column("draw").n_unique(),
            "blocks": blocks.get_column("block").n_unique()}


def posterior_intervals(summary: pl.DataFrame, parts: pl.DataFrame) -> pl.DataFrame:
    """``summary`` with every ``X_low``/``X_high`` pair replaced by the 2.5% and 97.5%
    quantiles (linear interpolation) of ``X`` over the blocks of ``parts`` (one summary per
    block: ``blocks.parquet``), rows matched on ``scope`` and ``key``; null where no block has a
    value."""
    pairs = [c[:-4] for c in summary.columns
             if c.endswith("_low") and f"{c[:-4]}_high" in summary.columns
             and c[:-4] in summary.columns]
    if not pairs:
        return summary
    q = parts.group_by("scope", "key").agg(
        *(pl.col(x).drop_nulls().quantile(0.025, "linear").alias(f"{x}_low") for x in pairs),
        *(pl.col(x).drop_nulls().quantile(0.975, "linear").alias(f"{x}_high") for x in pairs))
    out = summary.drop([f"{x}_{e}" for x in pairs for e in ("low", "high")]).join(
        q, on=["scope", "key"], how="left", maintain_order="left")
    return out.select(summary.columns)


# The manifest fields that describe what was run (not how it was executed): a merged run takes
# them from its first shard (engine.runs.merge), so a field added here reaches merged runs too.
RUN_MANIFEST_KEYS = ("scenario", "scenario_file", "scenario_hash", "seed", "trials",
                     "block_size", "save_trials", "versions", "deterrence")


def run_manifest(scenario: Scenario, compiled: CompiledScenario, options: RunOptions, *,
                 threads: int | str, resumed_at: int | None, wall_s: float, compile_s: float,
                 simulated: int, started: datetime, deterrence: dict | None = None) -> dict:
    """``manifest.json`` of a run or shard (the one place that builds it; the folder adds the
    SHA-256 of its files and the totals when it writes it).  ``simulated`` trials took
    ``wall_s`` seconds (those after ``resumed_at`` for a resumed run).  ``deterrence`` says how
    step 2 was computed (:meth:`DeterrenceTables.manifest`: mode, exact and pilot cells, the
    pilot's samples and largest error on P(deterred), seconds)."""
    start, stop = options.trial_range
    return {
        "scenario": scenario.scenario.name,
        "scenario_file": options.scenario_file,
        "scenario_hash": options.scenario_hash,
        "seed": options.seed,
        "trials": options.trials,
        "trial_range": [start, stop],
        "shard": list(options.shard) if options.shard else None,
        "threads": threads,
        "block_size": options.block_size,
        "save_trials": options.save_trials,
        "resumed_at": resumed_at,
        "wall_time_s": round(wall_s, 3),
        "compile_s": round(compile_s, 3),
        "trials_per_s": round(simulated / wall_s, 1) if wall_s > 0 else None,
        "started_utc": started.isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": {"platform": platform.platform(), "processor": platform.machine()},
        "command": sys.argv,
        "deterrence": deterrence,
    }


def add_tables(result: RunResult, compiled: CompiledScenario, scenario: Scenario) -> None:
    """The tables of a whole run from its tallies: ``cells``, ``summary`` and ``members``."""
    result.cells = cells_table(compiled, result.tallies)
    result.summary = summary_table(compiled, result.tallies)
    result.members = members_table(compiled, result.tallies,
                                   [state.name for state in scenario.states])
