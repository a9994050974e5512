"""Blocks of a kernel on threads.

A kernel compiled with ``nogil=True`` releases the GIL while it runs, so Python threads run its
calls in parallel.  :func:`run_blocks` hands out ranges of blocks as workers become free; each
worker adds into its own row of the outputs (leading axis: the worker), so the totals are the
same whatever the thread count or the order in which blocks ran.

Why not ``parallel=True``: lowering a ``prange`` loop around a large body is what makes a cold
compile slow.  The campaign kernel compiled in 162 s with ``parallel=True`` and in 37 s as a plain
``@njit`` function (one cold first call each, this machine).
"""

import threading

CHUNKS_PER_WORKER = 8  # ranges per worker: the last ones balance the load; each call costs
# the unboxing of its arguments (tens of µs), so not many more


def run_blocks(call, n_blocks, n_workers):
    """Call ``call(worker, first, last)`` on ranges ``[first, last)`` that cover blocks
    ``0 … n_blocks − 1`` once each, on ``n_workers`` threads (this one is worker 0).  The first
    exception of any worker stops the others from taking more ranges and is raised here."""
    if n_blocks <= 0:
        return
    n_workers = max(1, min(n_workers, n_blocks))
    if n_workers == 1:
        call(0, 0, n_blocks)
        return
    chunk = max(1, -(-n_blocks // (n_workers * CHUNKS_PER_WORKER)))
    lock = threading.Lock()
    taken = [0]
    errors = []
    stop = threading.Event()

    def work(worker):
        try:
            while not stop.is_set():
                with lock:
                    first = taken[0]
                    if first >= n_blocks:
                        return
                    last = min(n_blocks, first + chunk)
                    taken[0] = last
                call(worker, first, last)
        except BaseException as error:  # noqa: BLE001 (re-raised by the caller's thread)
            errors.append(error)
            stop.set()

    threads = [threading.Thread(target=work, args=(w,), daemon=True, name=f"kernel-{w}")
               for w in range(1, n_workers)]
    for thread in threads:
        thread.start()
    try:
        work(0)
        for thread in threads:
            thread.join()
    finally:
        stop.set()
    if errors:
        raise errors[0]
