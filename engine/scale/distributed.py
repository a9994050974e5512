"""``crisis run --executor dask``: spread a run's trial range over a Dask cluster.

The range is cut into tasks of whole blocks; each task simulates its trials on a worker
(``engine.core.simulate.simulate``) and returns integer tallies, which are summed in task order.
Random numbers are keyed by the global trial index, so the result equals a single-process run
exactly, whatever the number of workers or tasks.  Without ``--scheduler-address`` a
``LocalCluster`` of worker processes is started; on HPC pass the address of a
``dask-jobqueue`` cluster.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from kernels.layout import N_RECORD_COLUMNS

from ..errors import UserError

TASKS_PER_WORKER = 4


def simulate_task(compiled, seed: int, start: int, stop: int, block_size: int,
                  save_trials: int, threads: int | None, deterrence=None):
    """One task: trials ``[start, stop)`` on a worker; returns (tallies arrays, records), the
    arrays in :class:`~engine.core.simulate.Tallies` field order.  ``deterrence`` is step 2,
    computed once by the client (a pilot per cell is not repeated per task)."""
    from ..core.simulate import set_threads, simulate, simulate_campaign

    set_threads(threads)
    if compiled.campaign is not None:  # a campaign: trajectories, no records
        tallies = simulate_campaign(compiled, seed, start, stop, block_size=block_size,
                                    deterrence=deterrence)
        return tallies.arrays(), np.zeros((0, N_RECORD_COLUMNS))
    tallies, records = simulate(compiled, seed, start, stop, block_size=block_size,
                                save_trials=max(0, min(save_trials - start, stop - start)),
                                deterrence=deterrence)
    return tallies.arrays(), records


def task_ranges(trials: int, block_size: int, n_tasks: int) -> list[tuple[int, int]]:
    """Split ``[0, trials)`` into at most ``n_tasks`` ranges of whole blocks."""
    blocks = -(-trials // block_size)
    per = max(1, -(-blocks // n_tasks))
    return [(lo * block_size, min(trials, (lo + per) * block_size))
            for lo in range(0, blocks, per)]


def posterior_task(compiled, deterrence, seed: int, job, block_size: int, n_records: int,
                   threads: int | None):
    """One block of a run over a posterior (:class:`engine.runs.posterior.BlockJob`) at its
    draw's compiled scenario and step 2: (tallies arrays of its range, the whole block's
    tallies arrays when the job owns the block, else None, records of its first trials)."""
    from ..core.simulate import set_threads
    from ..runs.posterior import run_job

    set_threads(threads)
    records = np.zeros((n_records, N_RECORD_COLUMNS))
    part, own, records = run_job(compiled, deterrence, seed, job, block_size=block_size,
                                 records=records, record_start=job.lo)
    return part.arrays(), None if own is None else own.arrays(), records


def dask_executor(*, address: str | None = None, workers: int = 2, threads: int | None = None):
    """An executor for :func:`engine.runs.runner.run_to_folder` that runs the blocks of a run as
    tasks on a Dask cluster: ``address`` (a running scheduler) or a LocalCluster of ``workers``
    worker processes, each simulating with ``threads`` Numba threads.  ``executor.blocks`` runs
    the blocks of a run over a posterior, one task per block."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UserError("--executor dask needs Dask: pip install 'crisis-engine[dask]'") from None

    @contextmanager
    def connected():
        cluster = None
        if address is None:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            try:
                client = Client(address, timeout="30s")
            except OSError as err:
                raise UserError(f"--scheduler-address {address}: cannot connect ({err})") from None
        try:
            yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def gather(client, futures, sizes, progress):
        """The results in task order, ``progress(n)`` as each task finishes."""
        if progress is not None:
            size_of = {f.key: n for f, n in zip(futures, sizes, strict=True)}
            for done in as_completed(futures):
                progress(size_of[done.key])
        return client.gather(futures)

    def execute(compiled, seed, trials, block_size, save_trials, progress, deterrence=None):
        with connected() as client:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or workers)
            ranges = task_ranges(trials, block_size, n_workers * TASKS_PER_WORKER)
            shared = client.scatter(compiled, broadcast=True)
            step2 = client.scatter(deterrence, broadcast=True) if deterrence is not None else None
            futures = [client.submit(simulate_task, shared, seed, lo, hi, block_size,
                                     save_trials, threads, step2, pure=False)
                       for lo, hi in ranges]
            results = gather(client, futures, [hi - lo for lo, hi in ranges], progress)
        if compiled.campaign is not None:
            from ..core.simulate import CampaignTallies

            total = CampaignTallies.zeros(compiled)
            for arrays, _ in results:
                total.add(CampaignTallies(*arrays))
            return total, np.zeros((0, N_RECORD_COLUMNS))
        return combine(results, compiled.n_cells, compiled.n_alliances, compiled.n_memberships,
                       save_trials)

    def execute_blocks(payload, progress):
        """``payload``: (compiled, step 2, seed, job, block size, records) per block job;
        returns (tallies, block tallies or None, records) per job, in order."""
        from ..core.simulate import Tallies

        with connected() as client:
            shared: dict[int, tuple] = {}  # each draw's scenario and step 2, sent once
            futures = []
            for compiled, step2, *rest in payload:
                if id(compiled) not in shared:
                    shared[id(compiled)] = (client.scatter(compiled, broadcast=True),
                                            client.scatter(step2, broadcast=True))
                futures.append(client.submit(posterior_task, *shared[id(compiled)], *rest,
                                             threads, pure=False))
            results = gather(client, futures, [item[3].hi - item[3].lo for item in payload],
                             progress)
        return [(Tallies(*part), None if own is None else Tallies(*own), recs)
                for part, own, recs in results]

    execute.blocks = execute_blocks
    return execute


def combine(results, n_cells: int, n_alliances: int, n_memberships: int, save_trials: int):
    """Sum task tallies in order (per-member tallies included) and stack the records of the
    first tasks."""
    from ..core.simulate import Tallies

    total = Tallies.zeros(n_cells, n_alliances, n_memberships)
    records = []
    for arrays, recs in results:
        total.add(Tallies(*arrays))
        if len(recs):
            records.append(recs)
    stacked = np.concatenate(records)[:save_trials] if records else np.zeros((0, N_RECORD_COLUMNS))
    return total, stacked

