"""Kernel vs reference on the shipped NATO Baltic scenario, measured in the same run.

Throughput (trials/s) goes into ``extra_info``; compile time is measured apart (the first call
in a fresh process, with whatever Numba cache exists), never mixed into warm throughput.
"""

from __future__ import annotations

import time

import numba
import pytest

from engine.reference import simulate_reference
from engine.simulate import set_threads, simulate

KERNEL_TRIALS = 4_000_000
REFERENCE_TRIALS = 200_000
_rates: dict[str, float] = {}


def test_compile_time(benchmark, nato):
    t0 = time.perf_counter()
    simulate(nato, 1, 0, 100)
    first_call = time.perf_counter() - t0
    benchmark.extra_info["first_call_s"] = round(first_call, 3)
    benchmark.pedantic(simulate, args=(nato, 1, 0, 100), rounds=3, iterations=1)


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_nato(benchmark, nato, threads):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"only {numba.config.NUMBA_NUM_THREADS} Numba threads here")
    set_threads(threads)
    simulate(nato, 1, 0, 1000)  # compiled and warm
    benchmark.pedantic(simulate, args=(nato, 1, 0, KERNEL_TRIALS), rounds=3, iterations=1)
    rate = KERNEL_TRIALS / benchmark.stats.stats.median
    _rates[f"kernel_{threads}"] = rate
    benchmark.extra_info["trials_per_s"] = round(rate)
    benchmark.extra_info["threads"] = threads
    set_threads(None)


def test_reference_nato(benchmark, nato):
    benchmark.pedantic(simulate_reference, args=(nato, 1, 0, REFERENCE_TRIALS), rounds=2,
                       iterations=1)
    rate = REFERENCE_TRIALS / benchmark.stats.stats.median
    _rates["reference"] = rate
    benchmark.extra_info["trials_per_s"] = round(rate)
    for key in ("kernel_1", "kernel_2"):
        if key in _rates:
            benchmark.extra_info[f"{key}_vs_reference"] = round(_rates[key] / rate, 1)
