"""The campaign kernel (``kernels.campaign`` via ``engine.core.simulate.simulate_campaign``)
against its contract, the plain-Python ``engine.oracles.campaign_loop``, draw for draw; and
exactness across threads and block sizes (issue 15, item 2)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from engine.core.simulate import deterrence_tables, set_threads, simulate, simulate_campaign
from engine.oracles.campaign_loop import simulate_campaign_python
from kernels.layout import AP_EXITS, AP_JOINS, P_DISSOLVED
from tests.oracle_scenarios import V2_SCENARIOS, all_knobs, compiled, describe_difference
from tests.test_campaign_oracle import _duo

KNOBS = dict(steps=6, crisis_rate=0.8, reputation_learning=0.3, trust_weight=0.5,
             resolve_learning=0.2, threat_shock=0.3, threat_decay=0.1, exit_threshold=0.6,
             join_threshold=0.5)


def _with(data: dict, **campaign) -> dict:
    data = copy.deepcopy(data)
    data["campaign"] = campaign
    return data


def _with_candidates(data: dict) -> dict:
    """``all_knobs`` with a candidate for NATO and one for JEF (both can join under threat)."""
    data = copy.deepcopy(data)
    data["states"].append({"id": "SWE", "capability": 0.006, "commitment": 0.7,
                           "stability": 0.9})
    data["states"].append({"id": "FIN", "capability": 0.004, "commitment": 0.8})
    for al in data["alliances"]:
        if al["id"] == "NATO":
            al["candidates"] = ["SWE", "FIN"]
        if al["id"] == "JEF":
            al["candidates"] = ["SWE"]
    return data


CASES = {
    **{name: (lambda build=build, name=name: _with(build(name=name), **KNOBS))
       for name, build in V2_SCENARIOS.items()},
    "candidates": lambda: _with(_with_candidates(all_knobs(name="cand")), **KNOBS),
    "candidates_neutral": lambda: _with(_with_candidates(all_knobs(name="cand")), steps=3),
    "duo_learning": lambda: _duo(0.5, steps=8, reputation_learning=0.5,
                                 resolve_learning=0.1),
}


def _same(kernel, oracle) -> None:
    names = ("cells", "cell_hist", "alliances", "alliance_hist", "members", "period_cells",
             "period_hist", "periods", "alliance_periods", "successes")
    for name, x, y in zip(names, kernel.arrays(), oracle.arrays(), strict=True):
        assert np.array_equal(x, y), f"{name} differs\n" + (
            describe_difference(kernel, oracle, "oracle") if name in
            ("cells", "alliances", "members") else "")


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_agrees_with_the_oracle_draw_for_draw(case):
    c = compiled(CASES[case]())
    tables = deterrence_tables(c, 17)
    kernel = simulate_campaign(c, 17, 100, 400, deterrence=tables)
    oracle = simulate_campaign_python(c, 17, 100, 400, deterrence=tables)
    _same(kernel, oracle)


def test_the_mechanisms_fire_in_the_compared_runs():
    """The draw-for-draw comparison means something only if exits, joins and dissolutions
    happen there."""
    c = compiled(CASES["candidates"]())
    got = simulate_campaign(c, 17, 0, 400)
    assert got.alliance_periods[:, :, AP_EXITS].sum() > 0
    assert got.alliance_periods[:, :, AP_JOINS].sum() > 0
    assert got.periods[:, P_DISSOLVED].sum() > 0


def test_same_tallies_for_any_threads_block_size_and_split():
    c = compiled(CASES["candidates"]())
    tables = deterrence_tables(c, 5)
    set_threads(1)
    one = simulate_campaign(c, 5, 0, 3000, block_size=1, deterrence=tables)
    set_threads(2)
    two = simulate_campaign(c, 5, 0, 3000, block_size=97, deterrence=tables)
    parts = simulate_campaign(c, 5, 0, 1234, deterrence=tables)
    parts.add(simulate_campaign(c, 5, 1234, 3000, block_size=4096, deterrence=tables))
    set_threads(None)
    assert one.equals(two) and one.equals(parts)


def test_one_neutral_period_is_the_v1_kernel_run():
    """``steps = 1``, neutral knobs: the campaign kernel's v1 tallies are the v1 kernel's."""
    data = all_knobs(name="v1", member_aggressor=True)
    v1 = compiled(data)
    c = compiled(_with(data, steps=1))
    tables = deterrence_tables(v1, 8)
    ref, _ = simulate(v1, 8, 0, 20_000, deterrence=tables)
    got = simulate_campaign(c, 8, 0, 20_000, deterrence=tables)
    for name in ("cells", "cell_hist", "alliances", "alliance_hist"):
        assert np.array_equal(getattr(got, name), getattr(ref, name)), name
    assert np.array_equal(got.members, ref.members)


@pytest.mark.parametrize("case", ["candidates", "all_knobs_expected", "thresholds"])
def test_work_counters_are_the_oracles_draws(case, monkeypatch):
    """The campaign kernel's work counters (the roofline of ``crisis bench --workload
    campaign``) equal the hashes the plain-Python campaign loop makes: every ``uniform`` call
    (its own and those of the v1 helpers it shares), the members' backing draws among them, and
    every trial and period key."""
    from engine.oracles import campaign_loop, python_loop
    from kernels.layout import (
        COUNT_KEYS,
        COUNT_MEMBER_DRAWS,
        COUNT_UNIFORMS,
        N_COUNTERS,
        SLOT_CONSULT_BASE,
        SLOT_ROUND_BASE,
    )

    c = compiled(CASES[case]())
    tables = deterrence_tables(c, 17)
    made = {"uniforms": 0, "members": 0, "keys": 0}
    uniform = python_loop.uniform
    trial_key, period_key = campaign_loop.trial_key, campaign_loop.period_key

    def counted_uniform(key, slot):
        made["uniforms"] += 1
        made["members"] += SLOT_CONSULT_BASE <= slot < SLOT_ROUND_BASE
        return uniform(key, slot)

    def counted(function):
        def wrapper(*args):
            made["keys"] += 1
            return function(*args)
        return wrapper

    monkeypatch.setattr(python_loop, "uniform", counted_uniform)
    monkeypatch.setattr(campaign_loop, "uniform", counted_uniform)
    monkeypatch.setattr(campaign_loop, "trial_key", counted(trial_key))
    monkeypatch.setattr(campaign_loop, "period_key", counted(period_key))
    oracle = simulate_campaign_python(c, 17, 100, 400, deterrence=tables)
    counters = np.zeros(N_COUNTERS, np.int64)
    kernel = simulate_campaign(c, 17, 100, 400, deterrence=tables, counters=counters)
    _same(kernel, oracle)
    assert made["members"] > 0 and made["uniforms"] > made["members"]
    assert counters[COUNT_UNIFORMS] == made["uniforms"]
    assert counters[COUNT_MEMBER_DRAWS] == made["members"]
    assert counters[COUNT_KEYS] == made["keys"] == 300 * c.campaign.steps
