"""The kernels' worker threads (kernels/threads.py): every block exactly once, each worker in its
own row, errors raised in the caller, and kernels that really release the GIL."""

import threading
import time

import pytest

from kernels.threads import run_blocks


def _ranges(n_blocks, n_workers, pause=0.0):
    seen = []
    lock = threading.Lock()

    def call(worker, first, last):
        if pause:
            time.sleep(pause)  # releases the GIL, as a nogil kernel does
        with lock:
            seen.append((worker, first, last))

    run_blocks(call, n_blocks, n_workers)
    return seen


@pytest.mark.parametrize("n_blocks", [0, 1, 2, 7, 100, 1001])
@pytest.mark.parametrize("n_workers", [1, 2, 3, 8])
def test_every_block_runs_exactly_once(n_blocks, n_workers):
    seen = _ranges(n_blocks, n_workers)
    blocks = sorted(b for _, first, last in seen for b in range(first, last))
    assert blocks == list(range(n_blocks))
    assert all(0 <= worker < max(1, min(n_workers, n_blocks)) for worker, _, _ in seen)
    assert all(first < last for _, first, last in seen)


def test_workers_share_the_blocks():
    seen = _ranges(64, 2, pause=0.002)
    workers = {worker for worker, _, _ in seen}
    assert workers == {0, 1}, seen


def test_a_worker_error_is_raised_and_stops_the_others():
    calls = []
    lock = threading.Lock()

    def call(worker, first, last):
        with lock:
            calls.append(first)
        if first == 0:
            raise ValueError("boom")
        time.sleep(0.001)

    with pytest.raises(ValueError, match="boom"):
        run_blocks(call, 10_000, 2)
    # 2 workers × 8 ranges each; the error stops them long before all 16 ranges ran
    assert len(calls) < 16


def test_kernels_release_the_gil():
    from kernels.campaign import _campaign_blocks
    from kernels.trial import _trial_blocks

    assert _trial_blocks.targetoptions.get("nogil") is True
    assert _campaign_blocks.targetoptions.get("nogil") is True
    assert not _trial_blocks.targetoptions.get("parallel")
    assert not _campaign_blocks.targetoptions.get("parallel")
