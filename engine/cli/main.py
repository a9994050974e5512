"""The ``crisis`` command line (thin: the library does the work).

Exit codes: 0 success, 2 user error (bad scenario, bad option, refused output folder),
1 internal error (a short message; ``--debug`` shows the traceback).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import click

from ..errors import UserError
from ..runs.folder import PERIODS, default_out_dir
from ..runs.options import MAX_BLOCK_SIZE, MAX_SEED
from .base import CrisisGroup

# option types with the bounds that run.json and submit.json are validated against
SEED = click.IntRange(0, MAX_SEED)
BLOCK_SIZE = click.IntRange(1, MAX_BLOCK_SIZE)
# a campaign run's tables (design §7) as `crisis summarize --table` names them, in the order
# of engine.runs.folder.CAMPAIGN_TABLES
CAMPAIGN_TABLE_NAMES = ("periods", "alliance_periods", "successes")

@click.group(cls=CrisisGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crisis-engine", prog_name="crisis")
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Monte Carlo engine for collective-security crises in military alliances."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--trials", type=click.IntRange(min=1), help="Trials to run (default: the file's).")
@click.option("--seed", type=SEED, help="Seed (default: the file's).")
@click.option("--threads", type=click.IntRange(min=1), help="Numba threads (default: all cores).")
@click.option("--block-size", type=BLOCK_SIZE, default=4096, show_default=True,
              help="Trials per parallel block (results do not depend on it).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: results/<scenario>-<seed>/).")
@click.option("--save-trials", type=click.IntRange(min=0), default=0, show_default=True,
              help="Keep per-trial records of the first K trials in trials.parquet.")
@click.option("--shard", help="Run only shard I of K (I/K, 0-based) into OUT/shards/.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Continue the interrupted run in this folder (no CONFIG).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local",
              show_default=True, help="Run blocks in this process or on a Dask cluster.")
@click.option("--scheduler-address", help="Dask scheduler (default: a LocalCluster).")
@click.option("--dask-workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes of the LocalCluster.")
@click.option("--posterior", type=click.Path(dir_okay=False, path_type=Path),
              help="posterior.parquet of `crisis calibrate --method mcmc`: each block of trials "
                   "takes its parameters from a posterior draw; intervals then hold parameter "
                   "and Monte Carlo uncertainty together.")
@click.option("--force", is_flag=True, help="Overwrite a non-empty output folder.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary table.")
def run(config, trials, seed, threads, block_size, out_dir, save_trials, shard, resume_dir,
        executor, scheduler_address, dask_workers, posterior, force, quiet):
    """Run the scenario CONFIG and write cells.parquet, summary.parquet and manifest.json."""
    if threads is not None and threads > int(os.environ.get("NUMBA_NUM_THREADS", "0") or 0):
        # Numba reads its thread ceiling at import; raise it before the first import.
        if "numba" not in sys.modules:
            os.environ["NUMBA_NUM_THREADS"] = str(max(threads, os.cpu_count() or 1))
    from .. import api
    from ..runs.runner import parse_shard

    if resume_dir is not None and config is not None:
        raise UserError("give either CONFIG or --resume RUN_DIR, not both")
    if resume_dir is None and config is None:
        raise UserError("missing CONFIG (a scenario file), or --resume RUN_DIR")
    if executor == "dask" and (shard or resume_dir):
        raise UserError("--executor dask runs whole runs; it does not combine with --shard "
                        "or --resume")
    if posterior is not None and resume_dir is not None:
        raise UserError("--posterior starts a run; it does not combine with --resume")
    bar = _progress_bar(quiet)
    try:
        if resume_dir is not None:
            result = api.resume(resume_dir, threads=threads, progress=bar.advance,
                                progress_total=bar.start)
        else:
            scenario = api.load_scenario(config)
            seed = scenario.scenario.seed if seed is None else seed
            result = api.run(scenario, trials=trials, seed=seed, threads=threads,
                             block_size=block_size, save_trials=save_trials,
                             out=out_dir if out_dir is not None
                             else default_out_dir(scenario.scenario.name, seed),
                             force=force, shard=parse_shard(shard) if shard else None,
                             executor=executor, scheduler_address=scheduler_address,
                             dask_workers=dask_workers, progress=bar.advance,
                             progress_total=bar.start, posterior=posterior)
    finally:
        bar.close()
    m = result.manifest
    post = m.get("posterior")
    if not quiet and result.summary is not None:
        from ..present.terminal import format_summary

        if post:
            click.echo(f"intervals: parameter and Monte Carlo uncertainty together — 2.5–97.5% "
                       f"over {post['blocks']} blocks of {post['trials_per_draw']:,} trials, "
                       f"each at a draw of {post['file']} ({post['draws_used']} of "
                       f"{post['draws']:,} draws used)")
        click.echo(format_summary(result.summary))
        click.echo("")
        if result.campaign:
            _echo_periods(result.campaign[PERIODS])
    lo, hi = m["trial_range"]
    what = f"trials {lo:,}–{hi:,} of {m['trials']:,}" if m.get("shard") else f"{hi - lo:,} trials"
    rate = f" ({m['trials_per_s'] / 1e6:.2f} M trials/s)" if m.get("trials_per_s") else ""
    where = "on Dask" if m["threads"] == "dask" else f"{m['threads']} threads"
    click.echo(f"{what}, seed {m['seed']}, {where}, {m['wall_time_s']:.2f} s{rate} → "
               f"{result.out_dir}")
    if result.campaign and isinstance(m.get("campaign"), dict):
        from ..present.terminal import format_campaign_line

        click.echo(format_campaign_line(m["campaign"]))
    step2 = m.get("deterrence") or {}
    if post:
        click.echo(f"parameters from the posterior {post['file']} (sha256 {post['sha256'][:12]}…): "
                   f"{', '.join(post['parameters'])}; step 2 computed per draw in "
                   f"{step2.get('seconds', 0.0):.2f} s")
    elif step2.get("mode") == "expected_response":
        piloted = step2.get("cells_pilot", 0)
        how = (f"{piloted} of {piloted + step2.get('cells_exact', 0)} cells by a pilot of "
               f"{step2.get('pilot_samples', 0):,} samples (largest error on P(deterred) "
               f"±{step2.get('pilot_max_probability_error', 0.0):.4f}), the rest exact"
               if piloted else "every cell exact")
        click.echo(f"deterrence: expected response, {how}; {step2.get('seconds', 0.0):.2f} s "
                   f"once per run")


def _echo_periods(periods, max_rows: int | None = None) -> None:
    """Print a campaign run's table by period (``periods.parquet``), at most ``max_rows``
    periods (default :data:`~engine.present.terminal.PERIOD_ROWS`)."""
    from ..present.terminal import PERIOD_ROWS, format_periods

    click.echo("by period (the table above counts every crisis of every period):")
    click.echo(format_periods(periods, max(2, max_rows or PERIOD_ROWS), more_hint=(
        "; all of them: crisis summarize RUN_DIR --table periods")))
    click.echo("")


class _progress_bar:
    """A tqdm bar on a terminal; nothing otherwise."""

    def __init__(self, quiet: bool):
        self.show = not quiet and _stderr_is_tty()
        self.bar = None

    def start(self, total: int) -> None:
        if self.show:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit=" trials", unit_scale=True, file=sys.stderr,
                            desc="simulating", dynamic_ncols=True)

    def advance(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--quiet", "-q", is_flag=True, help="No summary table.")
def merge(run_dir, quiet):
    """Merge the shards in RUN_DIR/shards into the tables a single run gives."""
    from .. import api
    from ..present.terminal import format_summary

    result = api.merge(run_dir)
    if not quiet:
        click.echo(format_summary(result.summary))
        click.echo("")
        if result.campaign:
            from ..runs.folder import PERIODS

            _echo_periods(result.campaign[PERIODS])
    m = result.manifest
    click.echo(f"merged {m['shards']} shards: {m['trials']:,} trials, seed {m['seed']} "
               f"→ {run_dir}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
def validate(config):
    """Check the scenario CONFIG; every problem names the file, the key and what is wrong."""
    from ..model.compile import compile_scenario
    from ..model.config import load_scenario
    from ..model.limits import check_scenario_size

    scenario = load_scenario(config)
    check_scenario_size(scenario, str(config))
    compiled = compile_scenario(scenario)
    click.echo(
        f"{config}: ok — {compiled.n_states} states, {compiled.n_alliances} alliances, "
        f"{len(scenario.aggressors)} aggressors, {compiled.n_cells} cells; deterrence "
        f"{scenario.scenario.deterrence}"
    )


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
              show_default=True)
@click.option("--table", "which",
              type=click.Choice(["summary", "members", "cells", *CAMPAIGN_TABLE_NAMES]),
              default="summary", show_default=True,
              help="With --format csv: the table to print (members: one row per alliance × "
                   "member state; periods, alliance_periods, successes: a campaign run's tables "
                   "by period, by alliance × period and of successful aggressions per "
                   "trajectory). With --format table, periods shows every period.")
def summarize(run_dir, fmt, which):
    """Print the results of the run in RUN_DIR (json is for scripts).

    The table format ends with the members, the least reliable first (lowest share of
    commitments honored); a campaign run's table by period comes before them.  json holds every
    table (summary, cells, members, and a campaign run's periods, alliance_periods and
    successes)."""
    from .. import api
    from ..present.sanitize import csv_safe_frame, terminal_safe
    from ..present.terminal import format_campaign_line, format_members, format_summary

    run = api.open_run(run_dir)
    run.require("cells")
    manifest, summary, cells, members = run.manifest, run.summary, run.cells, run.members
    campaign = _campaign_tables(run, run_dir, which)
    if fmt == "json":
        doc = {"manifest": manifest, "summary": summary.to_dicts(), "cells": cells.to_dicts(),
               "members": None if members is None else members.to_dicts()}
        if campaign:
            doc["campaign"] = {name: frame.to_dicts() for name, frame in campaign.items()}
        click.echo(json.dumps(_finite(doc), indent=2, default=str, allow_nan=False))
    elif fmt == "csv":
        if which == "members":
            run.require("members")
        tables = {"summary": summary, "cells": cells, "members": members, **(campaign or {})}
        table = tables[which]
        click.echo(csv_safe_frame(table).write_csv(), nl=False)
    else:
        click.echo(f"{terminal_safe(manifest['scenario'])} — {manifest['trials']:,} trials, "
                   f"seed {manifest['seed']}, scenario {manifest['scenario_hash'][:12]}")
        if campaign:
            click.echo(format_campaign_line(manifest["campaign"]))
        click.echo(format_summary(summary))
        if campaign:
            click.echo("")
            periods = campaign["periods"]
            _echo_periods(periods, periods.height if which == "periods" else None)
        click.echo("\nmembers, the least reliable first (% of the crises each was pledged to):")
        if members is None:
            click.echo("  none: this run has no members.parquet (a run of an older engine?)")
        else:
            click.echo(format_members(members, more_hint=" (all of them: crisis summarize "
                                      "RUN_DIR --format csv --table members)"))


def _campaign_tables(run, run_dir: Path, which: str) -> dict | None:
    """A campaign run's tables by their ``--table`` names (None for a run without campaign); a
    user error naming the run when ``which`` asks for a campaign table it does not have."""
    from ..present.plots import campaign_tables

    tables = campaign_tables(run)
    if tables is None:
        if which in CAMPAIGN_TABLE_NAMES:
            raise UserError(f"{run_dir}: not a campaign run (its scenario has no [campaign] "
                            f"table), so it has no {which} table")
        return None
    return dict(zip(CAMPAIGN_TABLE_NAMES, tables, strict=True))


@main.command()
# paths stay text here: click.Path stats them first and fails on a NUL byte (exit 1); the
# library refuses any path a job script cannot carry, naming the option
@click.argument("config", required=False)
@click.option("--shards", type=click.IntRange(min=1), help="Number of shards (array tasks).")
@click.option("--scheduler", type=click.Choice(["slurm", "pbs"]), default="slurm",
              show_default=True)
@click.option("--partition", help="SLURM partition (PBS: queue).")
@click.option("--time", "walltime", help="Wall-time limit per task, e.g. 01:00:00.")
@click.option("--cpus-per-task", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPUs per task; the shard runs that many Numba threads.")
@click.option("--mem", help="Memory per task, e.g. 2G.")
@click.option("--trials", type=click.IntRange(min=1), help="Trials (default: the file's).")
@click.option("--seed", type=SEED, help="Seed (default: the file's).")
@click.option("--block-size", type=BLOCK_SIZE, default=4096, show_default=True)
@click.option("--save-trials", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--out", "out_dir", metavar="DIRECTORY",
              help="Run folder (default: results/<scenario>-<seed>/).")
@click.option("--resume", "resume_dir", metavar="RUN_DIR",
              help="Resubmit the failed, missing or stale shards of this run folder.")
@click.option("--posterior", type=click.Path(dir_okay=False, path_type=Path),
              help="posterior.parquet: every shard runs over it (copied into the run folder, "
                   "tied to the plan by its SHA-256).")
@click.option("--dry-run", is_flag=True, help="Write the scripts and show them; submit nothing.")
@click.option("--force", is_flag=True, help="Reuse a non-empty run folder.")
def submit(config, shards, scheduler, partition, walltime, cpus_per_task, mem, trials, seed,
           block_size, save_trials, out_dir, resume_dir, posterior, dry_run, force):
    """Shard CONFIG over an HPC job array, after one compile job, with a merge job after it."""
    from ..scale.hpc import resubmit
    from ..scale.hpc import submit as do_submit

    if resume_dir is not None:
        if config is not None:
            raise UserError("give either CONFIG or --resume RUN_DIR, not both")
        if posterior is not None:
            raise UserError("--posterior starts a submission; --resume keeps the plan's")
        record = resubmit(resume_dir, dry_run=dry_run)
    else:
        if config is None:
            raise UserError("missing CONFIG (a scenario file), or --resume RUN_DIR")
        if shards is None:
            raise UserError("--shards K is required")
        record = do_submit(config, shards=shards, scheduler=scheduler, out_dir=out_dir,
                           trials=trials, seed=seed, block_size=block_size,
                           save_trials=save_trials, partition=partition, time=walltime,
                           cpus_per_task=cpus_per_task, mem=mem, dry_run=dry_run, force=force,
                           posterior=posterior)
    run_dir = Path(record["run_dir"])
    entry = record["submissions"][-1]
    if entry.get("cleared"):
        click.echo(f"removed {len(entry['cleared'])} stale shard folders (made with another "
                   f"plan): {', '.join(entry['cleared'][:8])}"
                   f"{', …' if len(entry['cleared']) > 8 else ''}", err=True)
    if dry_run:
        click.echo((run_dir / entry["array_script"]).read_text())
        scripts = [entry[k] for k in ("compile_script", "array_script", "merge_script")
                   if entry.get(k)]
        click.echo(f"(dry run) scripts written to {', '.join(str(run_dir / s) for s in scripts)}"
                   "; nothing submitted")
    else:
        click.echo(f"submitted {len(entry['shards'])} shards as {record['scheduler']} job "
                   f"{entry['array_job']}, merge job {entry['merge_job']} → {run_dir}; "
                   + (f"compile job {entry['compile_job']} first" if entry.get("compile_job")
                      else "kernels from its numba-cache/"))


@main.command()
@click.argument("run_dir")  # text: click.Path would stat it and fail on a NUL byte
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def status(run_dir, fmt):
    """Show which shards of a submitted run are done, running, pending, failed, stale (made
    with another plan) or missing."""
    from collections import Counter

    from ..scale.hpc import format_ranges, merged_state, shard_states

    record, states = shard_states(run_dir)
    merged = merged_state(run_dir, record)
    if fmt == "json":
        click.echo(json.dumps({"shards": {str(i): s for i, s in states.items()},
                               "merged": merged == "yes", "merged_state": merged,
                               "submissions": record["submissions"]}, indent=2))
        return
    counts = Counter(states.values())
    click.echo(f"{run_dir}: {record['shards']} shards on {record['scheduler']} — "
               + ", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    for state in sorted(counts):
        if state != "done":
            click.echo(f"  {state}: {format_ranges([i for i, s in states.items() if s == state])}")
    click.echo({"yes": "  merged: yes", "no": "  merged: not yet",
                "stale": "  merged: stale (made with another plan)"}[merged])


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["oat", "sobol"]), default="oat", show_default=True,
              help="oat: one-at-a-time swings (2 runs per knob); sobol: variance-based "
                   "first-order and total indices (N·(k+2) runs).")
@click.option("--trials", type=click.IntRange(min=1000), default=200_000, show_default=True,
              help="Trials per run (the same trials for every run).")
@click.option("--seed", type=SEED, help="Seed (default: the file's).")
@click.option("--samples", type=int,
              help="sobol: base samples N, a power of 2 [default: 256].")
@click.option("--knob", "knob_paths", multiple=True,
              help="sobol: vary only this knob (repeat; default: every knob).")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full table (Parquet or CSV).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def sensitivity(config, method, trials, seed, samples, knob_paths, top, out, quiet):
    """Rank the knobs of CONFIG by how much they move deterrence, delay and breakdowns."""
    import polars as pl

    from ..experiments.sensitivity import MEASURES, knobs
    from ..experiments.sensitivity import sensitivity as analyse
    from ..model.config import load_scenario
    from ..present.sanitize import csv_safe_frame, terminal_safe_frame
    from ..runs.io import atomic_write, write_parquet

    if method == "oat" and (samples is not None or knob_paths):
        raise UserError("--samples and --knob apply to --method sobol only")
    scenario = load_scenario(config)
    seed = scenario.scenario.seed if seed is None else seed
    bar = _progress_bar(quiet)
    if method == "sobol":
        from ..experiments.sensitivity import SOBOL_SAMPLES, format_sobol, sobol_sensitivity

        def start(evaluations: int) -> None:
            if not quiet:
                click.echo(f"sobol: {evaluations:,} engine evaluations of {trials:,} trials "
                           f"(restrict with --knob, --samples)", err=True)
            bar.start(evaluations)

        try:
            frame, info = sobol_sensitivity(
                scenario, seed=seed, trials=trials,
                samples=SOBOL_SAMPLES if samples is None else samples,
                knob_paths=knob_paths, progress=bar.advance, progress_total=start)
        finally:
            bar.close()
        click.echo(format_sobol(terminal_safe_frame(frame), info, top=top, trials=trials))
    else:
        bar.start(len(knobs(scenario)))
        try:
            frame, base = analyse(scenario, seed=seed, trials=trials, progress=bar.advance)
        finally:
            bar.close()
        click.echo("baseline: " + ", ".join(f"{m} = {base[m]:.4g}" for m in MEASURES
                                            if base[m] is not None))
        shown = ["knob", "value", "low", "high"] + [f"{m}_swing" for m in MEASURES]
        with pl.Config(tbl_rows=top, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                       tbl_hide_column_data_types=True, tbl_width_chars=170, float_precision=4):
            click.echo(terminal_safe_frame(frame.select(shown).head(top)))
        click.echo(f"one-at-a-time swings (down → up), {trials:,} trials per run, common random "
                   f"numbers; ranked by the largest scaled swing")
    if out is not None:
        if out.suffix == ".csv":
            atomic_write(out, lambda tmp: csv_safe_frame(frame).write_csv(tmp))
        else:
            write_parquet(out, frame)
        click.echo(f"→ {out}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "sets", multiple=True,
              help="PATH=V1,V2,… or PATH=FROM:TO:STEP, e.g. alliances.NATO.decision_rule="
                   "unanimity,majority (repeat for a grid); membership: alliances.NATO."
                   "members-=SWD,FIN or members+=SWD (a leading comma adds the as-is point).")
@click.option("--grid", "grid_file", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file with a [grid] table of the same paths.")
@click.option("--trials", type=click.IntRange(min=1), help="Trials per point (default: file's).")
@click.option("--seed", type=SEED, help="Seed (default: the file's).")
@click.option("--threads", type=click.IntRange(min=1), help="Numba threads.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Parquet file (default: results/<scenario>-sweep-<seed>.parquet).")
@click.option("--posterior", type=click.Path(dir_okay=False, path_type=Path),
              help="posterior.parquet: every point runs over the posterior (its *_low/*_high "
                   "columns then hold parameter and Monte Carlo uncertainty).")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table.")
def sweep(config, sets, grid_file, trials, seed, threads, posterior, out, force, quiet):
    """Run CONFIG over a grid of parameter values (common random numbers) into one Parquet."""
    import polars as pl

    from ..core.simulate import set_threads
    from ..experiments.sweep import grid_points, parse_set, read_grid, run_sweep
    from ..model.config import load_scenario
    from ..present.sanitize import terminal_safe_frame
    from ..runs.folder import slugify
    from ..runs.io import write_parquet

    params = [parse_set(s) for s in sets] + (read_grid(grid_file) if grid_file else [])
    if not params:
        raise UserError("nothing to sweep: give --set PATH=VALUES or --grid FILE")
    scenario = load_scenario(config)
    seed = scenario.scenario.seed if seed is None else seed
    trials = scenario.scenario.trials if trials is None else trials
    out = out or Path("results") / f"{slugify(scenario.scenario.name)}-sweep-{seed}.parquet"
    if out.exists() and not force:
        raise UserError(f"{out}: exists; pass --force to overwrite")
    set_threads(threads)
    bar = _progress_bar(quiet)
    bar.start(len(grid_points(params)))
    try:
        frame, names = run_sweep(scenario, params, seed=seed, trials=trials,
                                 progress=bar.advance, posterior=posterior)
    finally:
        bar.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(out, frame)
    if not quiet:
        shown = [*names, "deterrence_success_rate", "invocation_rate", "breakdown_rate",
                 "honor_rate", "free_riders_mean", "delay_p50_days", "delay_p90_days"]
        short = {n: n.rsplit(".", 1)[-1] for n in names}
        if len(set(short.values())) < len(short):
            short = {n: n for n in names}
        short.update({"deterrence_success_rate": "deterred", "invocation_rate": "invoked",
                      "breakdown_rate": "breakdown", "honor_rate": "honored",
                      "free_riders_mean": "free riders",
                      "delay_p50_days": "delay p50", "delay_p90_days": "delay p90"})
        if scenario.campaign is not None:  # the last period, survival, successes (design §7)
            survival = [c for c in frame.columns if c.endswith("_survival_rate")][:3]
            shown = [*names, "deterrence_success_rate", "final_deterrence_success_rate",
                     "final_aggression_success_rate", "final_reputation_mean",
                     "final_resolve_multiplier_mean", *survival,
                     *(c.replace("_survival_rate", "_members_mean") for c in survival),
                     "successes_mean"]
            short.update({"deterrence_success_rate": "deterred (all)",
                          "final_deterrence_success_rate": "deterred (last)",
                          "final_aggression_success_rate": "succeeded (last)",
                          "final_reputation_mean": "reputation (last)",
                          "final_resolve_multiplier_mean": "resolve × (last)",
                          "successes_mean": "successes"})
            short.update({c: f"{c.removesuffix('_survival_rate')} survives" for c in survival})
            short.update({c.replace("_survival_rate", "_members_mean"):
                          f"{c.removesuffix('_survival_rate')} members" for c in survival})
        with pl.Config(tbl_rows=50, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                       tbl_hide_column_data_types=True, tbl_width_chars=160,
                       float_precision=4):
            table = frame.select([c for c in shown if c in frame.columns])
            table = table.rename({k: v for k, v in short.items() if k in table.columns})
            click.echo(terminal_safe_frame(table))
    click.echo(f"{frame.height} points × {trials:,} trials, seed {seed} (common random "
               f"numbers) → {out}")


@main.command()
@click.argument("configs", nargs=-1, required=True,
                type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", "target_texts", required=True, multiple=True,
              help="bisect: MEASURE=VALUE or MEASURE=observed (--observations). mcmc "
                   "(repeatable): [N@]MEASURE=VALUE:SE or [N@]honor_rate=observed[:FROM-TO]"
                   "[:OBLIGATION]; N = the scenario's position (default: every scenario).")
@click.option("--fit", "parameter", default="commitment_scale", show_default=True,
              help="commitment_scale, resolve_scale, bindingness_scale[:<obligation>], "
                   "misperception or a path (states.EST.commitment); mcmc: several, "
                   "comma-separated.")
@click.option("--method", type=click.Choice(["bisect", "mcmc"]), default="bisect",
              show_default=True,
              help="bisect: one parameter to one target; mcmc: joint Bayesian calibration.")
@click.option("--observations", type=click.Path(dir_okay=False, path_type=Path),
              help="Alliance-wars file for MEASURE=observed (Berkemeier & Fuhrmann 2018; "
                   "default: the one of --data DIR, else of the `crisis data` cache).")
@click.option("--data", "data_folder", type=click.Path(file_okay=False, exists=True,
                                                       path_type=Path),
              help="Folder holding the dataset files under their usual names (default: the "
                   "`crisis data` cache): the alliance-wars file when --observations is "
                   "omitted.")
@click.option("--era", help="bisect: filter observations by war start year, e.g. 1816-1944.")
@click.option("--obligation", type=click.Choice(["defense", "offense", "neutrality",
                                                  "nonaggression", "consultation"]),
              help="bisect: filter observations by obligation kind.")
@click.option("--coding", type=click.Choice(["BF", "LLM"]), default="BF", show_default=True,
              help="Berkemeier–Fuhrmann or Leeds–Long–Mitchell honor coding.")
@click.option("--trials", type=click.IntRange(min=1000), default=None,
              help="Trials per evaluation, the same trials every time [bisect: 200000; "
                   "mcmc: 20000].")
@click.option("--seed", type=SEED, help="Seed (default: the first file's).")
@click.option("--bounds", default="0:4", show_default=True, help="bisect: search interval LO:HI.")
@click.option("--prior", "prior_texts", multiple=True,
              help="mcmc: NAME=lognormal:MEDIAN:SIGMA|beta:A:B|uniform:LO:HI (repeatable).")
@click.option("--walkers", type=click.IntRange(min=2), help="mcmc: walkers [max(8, 4 × k)].")
@click.option("--steps", type=click.IntRange(min=10), default=400, show_default=True,
              help="mcmc: steps per walker.")
@click.option("--burn", type=click.IntRange(min=0), help="mcmc: burn-in steps [steps / 3].")
@click.option("--out", type=click.Path(path_type=Path),
              help="bisect: the calibrated scenario (FILE); mcmc: a folder for the posterior, "
                   "calibrated scenario(s), diagnostics and figures (required).")
@click.option("--force", is_flag=True, help="Overwrite --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def calibrate(configs, target_texts, parameter, method, observations, data_folder, era,
              obligation, coding, trials, seed, bounds, prior_texts, walkers, steps, burn, out,
              force, quiet):
    """Fit parameters of CONFIG so that simulated measures match targets: one by bisection, or
    several jointly by MCMC (posterior draws, diagnostics, figures)."""
    from ..experiments.calibrate import calibrate as fit_parameter
    from ..experiments.calibrate import observed_honor_rate, write_calibrated
    from ..model.config import load_scenario

    if observations is None and any("=observed" in t for t in target_texts):
        from ..data.registry import data_files

        try:
            observations = data_files(data_folder, {"alliance-wars": None})["alliance-wars"]
        except UserError as err:
            raise UserError(f"--target …=observed needs the alliance-wars file "
                            f"(--observations FILE or --data DIR): {err}") from None
    elif data_folder is not None and observations is not None:
        raise UserError("give --observations FILE or --data DIR, not both")

    if method == "mcmc":
        _calibrate_mcmc(configs, target_texts, parameter, observations, coding, trials, seed,
                        prior_texts, walkers, steps, burn, out, force, quiet)
        return
    if len(configs) != 1 or len(target_texts) != 1 or "," in parameter:
        raise UserError("--method bisect fits one parameter of one CONFIG to one --target; "
                        "use --method mcmc for several")
    if prior_texts or walkers or burn is not None:
        raise UserError("--prior, --walkers and --burn apply to --method mcmc only")
    config, target_text = configs[0], target_texts[0]
    trials = 200_000 if trials is None else trials
    measure, eq, value = target_text.partition("=")
    if not eq:
        raise UserError(f"--target {target_text!r}: expected MEASURE=VALUE")
    observed = None
    if value == "observed":
        if observations is None:
            raise UserError("--target MEASURE=observed needs --observations FILE")
        if measure != "honor_rate":
            raise UserError("observations give honor_rate only")
        span = None
        if era:
            lo_text, _, hi_text = era.partition("-")
            try:
                span = (int(lo_text), int(hi_text))
            except ValueError:
                raise UserError(f"--era {era!r}: expected FROM-TO years") from None
        observed = observed_honor_rate(observations, era=span, obligation=obligation,
                                       coding=coding)
        target = observed.rate
    else:
        try:
            target = float(value)
        except ValueError:
            raise UserError(f"--target {target_text!r}: {value!r} is not a number") from None
    try:
        lo, hi = (float(x) for x in bounds.split(":"))
    except ValueError:
        raise UserError(f"--bounds {bounds!r}: expected LO:HI") from None
    if out is not None and out.exists() and not force:
        raise UserError(f"{out}: exists; pass --force to overwrite")
    scenario = load_scenario(config)
    seed = scenario.scenario.seed if seed is None else seed
    fit = fit_parameter(scenario, measure=measure, target=target, parameter=parameter,
                        seed=seed, trials=trials, bounds=(lo, hi), observed=observed)
    low, high = fit.interval
    if observed:
        click.echo(f"target {measure} = {target:.4f} ± {observed.se:.4f} "
                   f"(observed: {observed.source}, n = {observed.n})")
    click.echo(f"{fit.parameter} = {fit.value:.5f} ± {fit.se:.5f} (95% interval {low:.5f} … "
               f"{high:.5f}); {measure} = {fit.achieved:.4f} ± {fit.se_measure:.4f} at the fit "
               f"({fit.evaluations} evaluations of {trials:,} trials, common random numbers)")
    if out is not None:
        write_calibrated(scenario, fit, config, out)
        click.echo(f"calibrated scenario → {out}")


def _calibrate_mcmc(configs, target_texts, parameter, observations, coding, trials, seed,
                    prior_texts, walkers, steps, burn, out, force, quiet):
    from .. import api
    from ..experiments.bayes import format_calibration

    if out is None:
        raise UserError("--method mcmc needs --out DIR")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UserError(f"{out}: exists; pass --force to overwrite")
    names = [n.strip() for n in parameter.split(",") if n.strip()]
    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(total=steps, unit="step", desc="mcmc", file=sys.stderr)
    try:
        result = api.calibrate_mcmc(
            list(configs), target_texts, names, observations=observations, coding=coding,
            trials=20_000 if trials is None else trials, seed=seed, priors=prior_texts,
            walkers=walkers, steps=steps, burn=burn, out=out,
            progress=None if bar is None else (lambda i: bar.update(i - bar.n)))
    finally:
        if bar is not None:
            bar.close()
    click.echo(format_calibration(result))
    click.echo(f"wrote {', '.join(p.name for p in result.written)} → {out}")


@main.command()
@click.option("--data", "data_dir", required=False, default=None,
              type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder with the ATOP, COW, alliance-wars, rivalry and major-power CSVs "
                   "(default: the `crisis data` cache).")
@click.option("--coding", type=click.Choice(["BF", "LLM"]), default="BF", show_default=True,
              help="Berkemeier–Fuhrmann or Leeds–Long–Mitchell honor coding.")
@click.option("--split", type=int, default=1944, show_default=True,
              help="Train on wars starting up to this year, test on later ones.")
@click.option("--trials", type=click.IntRange(min=100), default=20_000, show_default=True,
              help="Trials per crisis (the same trials for every crisis and fit step).")
@click.option("--seed", type=SEED, default=2018, show_default=True)
@click.option("--no-fit", is_flag=True, help="Leave commitment_scale at 1 (engine uncalibrated).")
@click.option("--deterrence-step", type=click.IntRange(min=0), default=1, show_default=True,
              help="Compare the deterrence relative risk on the worlds of every N-th year "
                   "1816-2010 (0: skip it).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for predictions, scores and figures.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def backtest(data_dir, coding, split, trials, seed, no_fit, deterrence_step, out_dir, quiet):
    """Predict the coded alliance commitments of Berkemeier & Fuhrmann (2018) out of sample,
    and compare the deterrence relative risk of defense pacts with the MID data."""
    from .. import api
    from ..data.registry import data_dir as resolve_data_dir
    from ..experiments.backtest import format_scores
    from ..experiments.deterrence_evidence import format_relative_risks
    from ..present.plots import plot_relative_risk, plot_reliability, plot_roc

    say = None if quiet else (lambda text: click.echo(text, err=True))
    data_dir = resolve_data_dir(data_dir)  # --data, else the verified `crisis data` cache
    result = api.backtest(data_dir, coding=coding, split=split, trials=trials, seed=seed,
                          fit=not no_fit, deterrence_step=deterrence_step, progress=say)
    written = result.save(out_dir)
    written += plot_reliability(result.predictions, out_dir)
    written += plot_roc(result.predictions, out_dir)
    if result.deterrence is not None:
        written += plot_relative_risk(result.deterrence, out_dir)
    click.echo(format_scores(result.scores, result.info))
    if result.deterrence is not None:
        click.echo("")
        click.echo(format_relative_risks(result.deterrence, result.info["deterrence"]))
    click.echo(f"wrote {', '.join(p.name for p in written)} → {out_dir}")


@main.command()
@click.option("--quick", is_flag=True, help="Small trial counts: a smoke test, not a measurement.")
@click.option("--compare", "do_compare", is_flag=True,
              help="Compare with the previous entry of this machine; flag regressions.")
@click.option("--plot", "do_plot", is_flag=True, help="Draw the history (PNG and SVG).")
@click.option("--workload", "names", multiple=True,
              type=click.Choice(["small", "nato-capability", "nato", "large", "scaling",
                                 "campaign"]),
              help="Workloads to run (default: small, nato, large, scaling, campaign). Repeat "
                   "the option for several.")
@click.option("--history", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench/history.jsonl"), show_default=True,
              help="JSON-lines history file to append to.")
@click.option("--no-record", is_flag=True, help="Measure and print, but do not append.")
@click.option("--no-baselines", is_flag=True,
              help="Skip the NumPy reference and pure-Python loop baselines.")
@click.option("--repeats", type=click.IntRange(min=1), help="Repeats per measurement.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when --compare flags one.")
@click.option("--plot-out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench/history.png"), show_default=True)
@click.option("--scaling-out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench/scaling.png"), show_default=True,
              help="Where the scaling workload draws its cost per member draw (PNG and SVG).")
def bench(quick, do_compare, do_plot, names, history, no_record, no_baselines, repeats,
          fail_on_regression, plot_out, scaling_out):
    """Run the standard workloads and append their throughput to the history: trials/s, the
    fraction of the hash-bound limit, the cost per member draw from 8 to 4,096 members
    (``scaling``) and a campaign period against a v1 trial (``campaign``)."""
    from ..perf.benchmark import append_history, compare, plot_history, read_history, run_benchmarks
    from ..perf.roofline import plot_scaling

    past = read_history(history)
    entries = []
    if not (do_plot and not names and not do_compare and not quick and past):
        entries = run_benchmarks(names or ("small", "nato", "large", "scaling", "campaign"),
                                 quick=quick, repeats=repeats, baselines=not no_baselines,
                                 echo=click.echo)
    scaling = [e for e in entries if e["workload"].startswith("scaling-")]
    if scaling:
        click.echo(f"scaling plot → {plot_scaling(scaling, scaling_out)} (and .svg)")
    regressed = False
    if do_compare and entries:
        lines, regressed = compare(past, entries)
        click.echo("\n".join(lines))
    if entries and not no_record:
        append_history(history, entries)
        click.echo(f"appended {len(entries)} entries to {history}")
    if do_plot:
        png = plot_history(past + entries, plot_out)
        click.echo(f"plot → {png} (and .svg)")
    if regressed and fail_on_regression:
        raise click.exceptions.Exit(1)


@main.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell):
    """Print the shell completion script for `crisis` (click's): e.g.
    `crisis completion bash > ~/.local/share/bash-completion/completions/crisis`."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    click.echo(cls(main, {}, "crisis", "_CRISIS_COMPLETE").source())


def _register_commands() -> None:
    """Commands that live in their own modules (each imports its library lazily)."""
    from .compare import check_command, compare_command
    from .data import data_group
    from .importing import import_group
    from .plot import plot_command, report_command
    from .similarity import similarity_command

    main.add_command(similarity_command, "similarity")
    main.add_command(import_group, "import")
    main.add_command(compare_command, "compare")
    main.add_command(check_command, "check")
    main.add_command(plot_command, "plot")
    main.add_command(report_command, "report")
    main.add_command(data_group, "data")


_register_commands()


def _finite(value):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    main()
