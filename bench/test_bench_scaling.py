"""Cost per member draw against the alliance size, the hashing limit, and a campaign period
against a v1 trial (issue 16; the same measurements as ``crisis bench --workload scaling
--workload campaign``, here under pytest-benchmark).  Figures go into ``extra_info``; the
ratios are measured in this session, never against stored numbers."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.simulate import deterrence_tables, simulate, simulate_campaign
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario, scenario_from_dict
from engine.perf.roofline import hash_rate, roofline, scaling_world, timed
from engine.perf.workloads import CONFIGS
from kernels.layout import COUNT_MEMBER_DRAWS, N_COUNTERS

MEMBER_DRAWS = 100_000_000


@pytest.fixture(scope="module")
def hashes_per_s():
    return hash_rate()


@pytest.mark.parametrize("members", [8, 128, 2048])
def test_scaling(benchmark, members, hashes_per_s):
    c = compile_scenario(scenario_from_dict(scaling_world(members), "<scaling>"))
    step2 = deterrence_tables(c, 1, cache=False)
    trials = MEMBER_DRAWS // members
    counters = np.zeros(N_COUNTERS, np.int64)
    simulate(c, 1, 0, trials, deterrence=step2, counters=counters)  # warm, and the counts
    benchmark.pedantic(simulate, args=(c, 1, 0, trials), kwargs={"deterrence": step2},
                       rounds=3, iterations=1)
    rate = trials / benchmark.stats.stats.median
    draws = counters[COUNT_MEMBER_DRAWS] / trials
    entry = {"trials_per_s": rate}
    benchmark.extra_info.update(members=members, trials_per_s=round(rate),
                                ns_per_member_draw=round(1e9 / rate / draws, 3),
                                **roofline(entry, counters, trials, hashes_per_s))


def test_campaign_period_against_v1_trial(benchmark):
    scenario = load_scenario(CONFIGS / "nato-hybrid-campaign-2024.toml")
    c = compile_scenario(scenario)
    v1 = compile_scenario(scenario.model_copy(update={"campaign": None}))
    step2, step2_v1 = deterrence_tables(c, 1), deterrence_tables(v1, 1)
    n = 200_000
    simulate_campaign(c, 1, 0, 100, deterrence=step2)
    benchmark.pedantic(simulate_campaign, args=(c, 1, 0, n), kwargs={"deterrence": step2},
                       rounds=3, iterations=1)
    periods = n * c.campaign.steps / benchmark.stats.stats.median
    simulate(v1, 1, 0, 1000, deterrence=step2_v1)
    seconds, _ = timed(lambda: simulate(v1, 1, 0, n * c.campaign.steps, deterrence=step2_v1), 3)
    v1_rate = n * c.campaign.steps / seconds
    benchmark.extra_info.update(periods_per_s=round(periods), v1_trials_per_s=round(v1_rate),
                                period_cost_vs_v1_trial=round(v1_rate / periods, 3))
