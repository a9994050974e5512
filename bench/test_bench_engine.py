"""Kernel vs baselines on the named workloads, measured in the same run.

Throughput (trials/s) and ratios go into each benchmark's ``extra_info``; compile time is
measured apart (a fresh process with an empty Numba cache), never mixed into warm throughput.
Test order matters for the ratios: kernels first, then the baselines that divide by them.
"""

from __future__ import annotations

import numba
import pytest

from engine.core.simulate import deterrence_tables, set_threads, simulate
from engine.oracles.python_loop import simulate_python
from engine.oracles.reference import simulate_reference
from engine.perf.benchmark import (
    KERNEL_TRIALS,
    PYTHON_TRIALS,
    REFERENCE_TRIALS,
    cold_compile_seconds,
)


def test_compile_time(benchmark):
    seconds = benchmark.pedantic(cold_compile_seconds, rounds=1, iterations=1)
    benchmark.extra_info["compile_s"] = round(seconds, 2)


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel(benchmark, world, threads, rates):
    name, compiled = world
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"only {numba.config.NUMBA_NUM_THREADS} Numba threads here")
    set_threads(threads)
    try:
        simulate(compiled, 1, 0, 1000)  # compiled and warm
        trials = KERNEL_TRIALS[name][0] // 2
        # step 2 is once per run (expected-response deterrence: a pilot per cell, not per trial)
        step2 = deterrence_tables(compiled, 1)
        benchmark.pedantic(simulate, args=(compiled, 1, 0, trials),
                           kwargs={"deterrence": step2}, rounds=3, iterations=1)
    finally:
        set_threads(None)
    rate = trials / benchmark.stats.stats.median
    rates[(name, threads)] = rate
    benchmark.extra_info.update(workload=name, threads=threads, trials_per_s=round(rate))
    if (name, 1) in rates and threads > 1:
        benchmark.extra_info["thread_scaling"] = round(rate / rates[(name, 1)], 2)


def _ratios(benchmark, name, rate, rates):
    benchmark.extra_info.update(workload=name, trials_per_s=round(rate))
    for threads in (1, 2):
        if (name, threads) in rates:
            benchmark.extra_info[f"kernel_{threads}_thread_speedup"] = round(
                rates[(name, threads)] / rate, 1)


def test_reference(benchmark, world, rates):
    name, compiled = world
    trials = REFERENCE_TRIALS[name][0] // 2
    benchmark.pedantic(simulate_reference, args=(compiled, 1, 0, trials),
                       kwargs={"deterrence": deterrence_tables(compiled, 1)}, rounds=2,
                       iterations=1)
    _ratios(benchmark, name, trials / benchmark.stats.stats.median, rates)


def test_python_loop(benchmark, world, rates):
    name, compiled = world
    trials = PYTHON_TRIALS[name][0] // 4
    benchmark.pedantic(simulate_python, args=(compiled, 1, 0, trials),
                       kwargs={"deterrence": deterrence_tables(compiled, 1)}, rounds=1,
                       iterations=1)
    _ratios(benchmark, name, trials / benchmark.stats.stats.median, rates)
