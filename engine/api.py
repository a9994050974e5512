"""The Python API: what notebooks, scripts and the ``crisis`` commands call.

>>> from engine import load_scenario, run
>>> nato = load_scenario("configs/nato-baltic-2024.toml")
>>> result = run(nato, trials=200_000, seed=7)           # in memory: nothing is written
>>> result.summary                                       # Polars DataFrames
>>> result.members                                       # per alliance × member state
>>> majority = nato.with_values({"alliances.NATO.decision_rule": "majority"})
>>> run(majority, trials=200_000, seed=7).save("results/nato-majority")

A run with ``out=`` writes its run folder as it goes (checkpoints, resume, shards) exactly like
``crisis run``; without it the results stay in memory until :meth:`Result.save`.  Either way the
tables are the same, byte for byte, as the command line's for the same scenario and seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .core.simulate import DEFAULT_BLOCK_SIZE
from .errors import ConfigError, UserError
from .model.config import Scenario
from .model.config import load_scenario as _load_scenario
from .runs.folder import RunData, RunFolder
from .runs.merge import merge_run
from .runs.runner import RunResult, resume_run, run_in_memory, run_to_folder

Result = RunResult

__all__ = ["ConfigError", "Result", "RunData", "Scenario", "UserError", "backtest",
           "calibrate_mcmc", "load_scenario", "merge", "open_run", "resume", "run"]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; every problem is reported at once, naming the file and
    the key (:class:`ConfigError`).  Edit the result with :meth:`Scenario.with_values`."""
    return _load_scenario(path)


def run(
    scenario: Scenario | str | Path,
    *,
    trials: int | None = None,
    seed: int | None = None,
    threads: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    save_trials: int = 0,
    out: str | Path | None = None,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    executor: str = "local",
    scheduler_address: str | None = None,
    dask_workers: int = 2,
    progress: Callable[[int], None] | None = None,
    progress_total: Callable[[int], None] | None = None,
    posterior: str | Path | None = None,
) -> Result:
    """Simulate ``scenario`` (a :class:`Scenario` or a scenario file).

    ``posterior`` (a ``posterior.parquet`` of :func:`calibrate_mcmc`) gives each block of
    trials its parameters from a posterior draw (:mod:`engine.runs.posterior`): point
    estimates are posterior means and every summary interval holds parameter and Monte Carlo
    uncertainty together; the run folder keeps a copy of the posterior and the blocks' own
    summaries (``blocks.parquet``), so shards, Dask and resume give the same tables.

    ``trials`` and ``seed`` default to the scenario's; ``threads`` to all cores.  Without
    ``out`` the results stay in memory; with it they go to that run folder (refused when it is
    not empty unless ``force``).  ``shard=(i, k)`` runs shard ``i`` of ``k`` into
    ``out/shards/`` (merge with :func:`merge`).  ``executor="dask"`` runs the blocks on a Dask
    cluster (``scheduler_address``, or a local cluster of ``dask_workers`` processes).
    ``progress(n)`` is called as trials finish, after ``progress_total(total)``.
    """
    scenario = _scenario(scenario)
    if executor not in ("local", "dask"):
        raise UserError(f"executor must be 'local' or 'dask', got {executor!r}")
    execute = None
    if executor == "dask":
        if shard is not None:
            raise UserError("--executor dask runs whole runs; it does not combine with --shard "
                            "or --resume")
        from .scale.distributed import dask_executor

        execute = dask_executor(address=scheduler_address, workers=dask_workers,
                                threads=threads)
    options = dict(trials=trials, seed=seed, threads=threads, block_size=block_size,
                   save_trials=save_trials, progress=progress, progress_total=progress_total,
                   executor=execute)
    if posterior is not None:
        from .runs.posterior import read_posterior

        options["posterior"] = read_posterior(posterior)
    if out is None and shard is None:
        return run_in_memory(scenario, **options)
    return run_to_folder(scenario, out_dir=out, force=force, shard=shard, **options)


def resume(run_dir: str | Path, *, threads: int | None = None,
           progress: Callable[[int], None] | None = None,
           progress_total: Callable[[int], None] | None = None) -> Result:
    """Continue the interrupted run in ``run_dir`` from its checkpoint; the tables equal those
    of an uninterrupted run."""
    return resume_run(run_dir, threads=threads, progress=progress,
                      progress_total=progress_total)


def merge(run_dir: str | Path) -> Result:
    """Combine the finished shards of ``run_dir`` into the tables a single run gives."""
    return merge_run(run_dir)


def open_run(run_dir: str | Path) -> RunData:
    """Read a complete run folder back: ``.manifest``, ``.summary``, ``.cells``, ``.members``
    (None for a run of an older engine), ``.tallies``."""
    return RunFolder(run_dir).load()


def backtest(data_dir: str | Path, *, coding: str = "BF", split: int = 1944,
             trials: int = 20_000, seed: int = 2018, fit: bool = True,
             deterrence_step: int = 1, out: str | Path | None = None,
             progress: Callable[[str], None] | None = None):
    """Predict the coded commitments of Berkemeier & Fuhrmann (2018) out of sample from the
    public datasets in ``data_dir`` (see :mod:`engine.experiments.backtest`), and compare the
    deterrence relative risk of defense pacts in the MID data with the engine's on the worlds
    of every ``deterrence_step``-th year (0 skips it; :mod:`engine.experiments.
    deterrence_evidence`); with ``out`` the tables are written there too.  Returns a
    ``Backtest`` (``.predictions``, ``.unpredicted``, ``.scores``, ``.info``,
    ``.deterrence``, ``.deterrence_dyads``)."""
    from .experiments.backtest import run_backtest

    result = run_backtest(data_dir, coding=coding, split=split, trials=trials, seed=seed,
                          fit=fit, deterrence_step=deterrence_step, progress=progress)
    if out is not None:
        result.save(out)
    return result


def calibrate_mcmc(configs: list[str | Path], targets: list[str], parameters: list[str], *,
                   observations: str | Path | None = None, coding: str = "BF",
                   trials: int = 20_000, seed: int | None = None, priors: list[str] = (),
                   walkers: int | None = None, steps: int = 400, burn: int | None = None,
                   out: str | Path | None = None,
                   progress: Callable[[int], None] | None = None):
    """Joint Bayesian calibration (:mod:`engine.experiments.bayes`) of ``parameters`` of the
    scenarios in ``configs`` to the ``targets`` (``[N@]MEASURE=VALUE:SE`` or
    ``[N@]honor_rate=observed[:FROM-TO][:OBLIGATION]``).  With ``out`` the posterior,
    calibrated scenarios, diagnostics and trace/corner figures are written there
    (``.written`` lists them).  Returns a ``Calibration`` (``.posterior``, ``.info``)."""
    from .experiments.bayes import calibrate_mcmc as sample
    from .experiments.bayes import parse_prior, parse_target

    scenarios = [_load_scenario(c) for c in configs]
    if seed is None:
        seed = scenarios[0].scenario.seed
    obs = None if observations is None else Path(observations)
    parsed = [t for text in targets for t in parse_target(text, len(scenarios), obs, coding)]
    prior_map = dict(parse_prior(text) for text in priors)
    result = sample(scenarios, parameters, parsed, seed=seed, trials=trials, priors=prior_map,
                    walkers=walkers, steps=steps, burn=burn, progress=progress)
    result.written = []
    if out is not None:
        from .present.plots import plot_corner, plot_trace

        result.written = result.save(Path(out), [Path(c) for c in configs])
        result.written += plot_trace(result.posterior, parameters, out)
        result.written += plot_corner(result.posterior, parameters, out)
    return result


def _scenario(scenario: Scenario | str | Path) -> Scenario:
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, str | Path):
        return _load_scenario(scenario)
    raise UserError(f"expected a Scenario or a scenario file, got {type(scenario).__name__}")
