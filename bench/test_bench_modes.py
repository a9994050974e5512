"""Deterrence modes at the same work: NATO in ``capability`` mode and in ``expected_response``
mode with Russia's resolve set (by bisection, common random numbers) so that the same share of
trials is attacked.  The mode changes only step 2's precomputed P(deterred) per cell, so any gap
in trials/s at equal attacked share is the composition of the attacks, not a per-trial cost; the
pilot is once per run and timed apart (``deterrence_s``).  Ratios go into ``extra_info``.
"""

from __future__ import annotations

import time

import pytest

from engine.core.simulate import deterrence_tables, simulate
from engine.model.compile import compile_scenario
from engine.perf.workloads import workload_scenario
from kernels.layout import C_ATTACKED

PROBE = 400_000
TRIALS = 4_000_000


def attacked_share(compiled) -> float:
    tallies, _ = simulate(compiled, 1, 0, PROBE)
    return tallies.cells[:, C_ATTACKED].sum() / PROBE


@pytest.fixture(scope="module")
def modes():
    base = workload_scenario("nato")
    capability = compile_scenario(base.with_values({"scenario.deterrence": "capability"}))
    target = attacked_share(capability)
    lo, hi = 0.05, 3.0
    for _ in range(25):
        mid = (lo * hi) ** 0.5
        expected = compile_scenario(base.with_values({"scenario.deterrence": "expected_response",
                                                      "aggressors.RUS.resolve": mid}))
        share = attacked_share(expected)
        lo, hi = (mid, hi) if share < target else (lo, mid)
    t0 = time.perf_counter()
    step2 = deterrence_tables(expected, 1, cache=False)
    pilot_s = time.perf_counter() - t0
    return {"capability": (capability, deterrence_tables(capability, 1), target, 0.0),
            "expected_response": (expected, step2, share, pilot_s)}


@pytest.mark.parametrize("mode", ["capability", "expected_response"])
def test_same_work(benchmark, modes, mode, rates):
    compiled, step2, share, pilot_s = modes[mode]
    benchmark.pedantic(simulate, args=(compiled, 1, 0, TRIALS), kwargs={"deterrence": step2},
                       rounds=3, iterations=1)
    rate = TRIALS / benchmark.stats.stats.median
    rates[("same-work", mode)] = rate
    benchmark.extra_info.update(mode=mode, attacked_share=round(share, 4),
                                trials_per_s=round(rate), deterrence_s=round(pilot_s, 3))
    if mode == "expected_response" and ("same-work", "capability") in rates:
        benchmark.extra_info["ratio_vs_capability"] = round(
            rate / rates[("same-work", "capability")], 3)
