"""The plain-Python per-trial loop (engine/python_loop.py) against the Numba kernel.

The loop is the benchmark's "plain Python" baseline; it must reproduce
:func:`engine.core.simulate.simulate` draw for draw, so every case compares the integer tallies and
histograms exactly.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import oracle_scenarios
import pytest
from oracle_scenarios import V2_SCENARIOS, all_knobs, compiled, describe_difference, edge_cases

from engine.core.simulate import deterrence_tables, simulate
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario
from engine.oracles import python_loop
from engine.oracles.reference import delay_bin as reference_delay_bin
from engine.oracles.reference import seed_base as reference_seed_base
from engine.oracles.reference import trial_key as reference_trial_key
from engine.oracles.reference import uniform as reference_uniform
from kernels.layout import (
    A_COVERED,
    A_DECIDED,
    A_FIRST,
    C_ALLIES_SUM,
    C_ATTACKED,
    C_CONSULTED,
    C_DEADLOCK,
    C_DEFECTION,
    C_INVOKED,
    C_VETO,
    COUNT_KEYS,
    COUNT_MEMBER_DRAWS,
    COUNT_UNIFORMS,
    HIST_FINE_BINS,
    HIST_OVERFLOW,
    M_PLEDGED,
    N_COUNTERS,
    SLOT_CONSULT_BASE,
    SLOT_DELIVERY_BASE,
    SLOT_OUTCOME,
    SLOT_ROUND_BASE,
)

ROOT = Path(__file__).resolve().parent.parent
simulate_python = python_loop.simulate_python


# ---- helpers (the scenarios shared with test_reference.py are in oracle_scenarios.py) --------
NAME = "python loop test"  # the scenario name of every dict built here
make_scenario = partial(oracle_scenarios.make_scenario, name=NAME)


def assert_same(c, *, seed: int, start: int = 0, n: int = 5000):
    kernel, _ = simulate(c, seed, start, start + n, block_size=777)
    python = simulate_python(c, seed, start, start + n)
    assert kernel.equals(python), describe_difference(kernel, python, "python")
    return python


def assert_same_deterrence(c, *, seed: int):
    """Step 2 per cell (design §8): the kernel's P(deterred), baseline, E_cell and how it was
    obtained, exactly."""
    kernel = deterrence_tables(c, seed)
    oracle = python_loop.cell_deterrence(c, seed)
    np.testing.assert_array_equal(kernel.p_deterred, oracle.p_deterred)
    np.testing.assert_array_equal(kernel.p_deterred_no_alliance, oracle.p_deterred_no_alliance)
    if kernel.how is not None:  # expected_response mode
        np.testing.assert_array_equal(kernel.how, oracle.how)
        np.testing.assert_array_equal(kernel.expected, oracle.expected_response)


def nato_baltic():
    """The flagship config with the smallest pilot (its anticipatory deterrence runs a pilot
    per cell; 2^16 samples a cell would take the plain-Python loop minutes)."""
    scenario = load_scenario(ROOT / "configs" / "nato-baltic-2024.toml")
    return compile_scenario(scenario.with_values({"scenario.pilot_samples": 1024}))


# ---- the generator and the histogram -------------------------------------------------------
def test_rng_matches_reference():
    for seed in (0, 1, 12345, 2**62 + 7):
        base = python_loop.seed_base(seed)
        assert base == int(reference_seed_base(seed))
        trials = np.array([0, 1, 999, 2**40 + 3], dtype=np.int64)
        keys = reference_trial_key(reference_seed_base(seed), trials)
        for g, key in zip(trials.tolist(), keys.tolist(), strict=True):
            assert python_loop.trial_key(base, g) == key
            for slot in (0, 3, SLOT_OUTCOME, SLOT_DELIVERY_BASE + 17,
                         SLOT_CONSULT_BASE + (5 << 20) + 9):
                expected = reference_uniform(np.array([key], dtype=np.uint64), slot)[0]
                assert python_loop.uniform(key, slot) == expected


def test_delay_bin_matches_reference():
    delays = np.concatenate([
        np.array([0.0, 0.05, 0.1, 0.3, 12.7, 127.99999, 128.0, 129.0, 255.9, 256.0,
                  131071.9, 131072.0, 1e9]),
        np.random.default_rng(1).exponential(300.0, 2000),
    ])
    expected = reference_delay_bin(delays)
    assert [python_loop.delay_bin(d) for d in delays.tolist()] == expected.tolist()


# ---- exact agreement with the kernel -------------------------------------------------------
def test_default_knobs():
    data = make_scenario()
    tallies = assert_same(compiled(data), seed=12345, n=6000)
    assert tallies.cells[0, C_INVOKED] > 0 and tallies.cells[0, C_DEADLOCK] > 0


def test_every_knob_non_neutral():
    """Free riding, moving θ (threat_weight, intel_sharing, exposure pairs), conflict penalty
    (a consultation pact with the aggressor, and an aggressor inside a covering alliance),
    ambiguity, attribution, integration with an interoperability bonus, defection with
    unstable members, a finite window, two covering alliances with different rules."""
    data = all_knobs(name=NAME, member_aggressor=True)
    tallies = assert_same(compiled(data), seed=7, start=1_234_567, n=8000)
    cells = tallies.cells
    assert cells[:, C_DEFECTION].sum() > 0
    assert cells[:, C_INVOKED].sum() > 0 and cells[:, C_DEADLOCK].sum() > 0
    assert tallies.alliances[:2, A_FIRST].min() > 0  # both covering alliances sometimes count
    assert tallies.alliances[2, A_COVERED] == 0  # the consultation pact covers nobody


def test_veto_rule_and_target_outside_every_alliance():
    states = {
        "A": {"capability": 0.1, "commitment": 0.3},
        "B": {"capability": 0.05, "commitment": 0.5, "free_riding": 0.5},
        "C": {"capability": 0.02, "commitment": 0.7, "stability": 0.5},
        "D": {"capability": 0.01, "commitment": 0.2},
        "E": {"capability": 0.005, "commitment": 0.9},
        "T": {"capability": 0.001, "commitment": 1.0},
        "LONE": {"capability": 0.01, "commitment": 0.5},
        "X": {"capability": 0.08, "commitment": 0.0},
    }
    alliances = [{"id": "COUNCIL", "members": ["A", "B", "C", "D", "E", "T"],
                  "decision_rule": "veto", "quota": 0.6, "veto_holders": ["A", "D"],
                  "max_rounds": 3, "round_days": 1.5}]
    aggressors = [{"state": "X", "targets": {"T": 2.0, "LONE": 1.0},
                   "attack_mix": {"c": 1.0, "h": 1.0}}]
    attack_types = {"c": {}, "h": {"attribution_days": 4.0, "ambiguity": 0.2}}
    data = make_scenario(states, alliances, aggressors, attack_types, misperception=0.3,
                         defection_threshold=0.0)
    tallies = assert_same(compiled(data), seed=99, n=6000)
    cells = tallies.cells
    assert cells[:2, C_VETO].sum() > 0 and cells[:2, C_INVOKED].sum() > 0
    lone = [2, 3]  # cells of (X, LONE, c) and (X, LONE, h)
    assert cells[lone, C_ATTACKED].min() > 0 and cells[lone, C_CONSULTED].sum() == 0


def test_edge_cases():
    """An alliance with nobody but the target to consult (not invoked), an aggressor holding a
    veto in a collective-security council, p = 0 and p = 1, zero round length, delays in the
    coarse and overflow histogram bins, four covering alliances."""
    data = edge_cases(name=NAME)
    tallies = assert_same(compiled(data), seed=31, n=6000)
    hist = tallies.cell_hist.sum(axis=0)
    assert hist[HIST_FINE_BINS:HIST_OVERFLOW].sum() > 0 and hist[HIST_OVERFLOW] > 0
    assert tallies.alliances[[0, 3], A_DECIDED].min() > 0  # DUO (M = {T, X}) and SURE decide


@pytest.mark.parametrize("which", sorted(V2_SCENARIOS))
def test_model_v2(which):
    """The model v2 core (design §8): coverage by obligation, anticipatory deterrence (exact and
    pilot E_cell, 1024 pilot samples), per-member tallies."""
    c = compiled(V2_SCENARIOS[which](name=NAME))
    tallies = assert_same(c, seed=41, start=500, n=3000)
    assert tallies.members[:, M_PLEDGED].sum() == tallies.cells[:, C_ALLIES_SUM].sum() > 0
    assert_same_deterrence(c, seed=41)


@pytest.mark.parametrize("which", ["all_knobs", "edge_cases", "thresholds", "nato"])
def test_work_counters_are_the_oracles_draws(which, monkeypatch):
    """The kernel's work counters (what ``crisis bench`` sets against the hashing limit) equal
    the hashes the plain-Python loop makes for the same trials: every ``uniform`` call, the
    members' backing draws among them (consultation slots), and every trial key."""
    if which == "nato":
        c = compile_scenario(load_scenario(ROOT / "configs" / "nato-baltic-2024.toml")
                             .with_values({"scenario.deterrence": "capability"}))
    elif which == "thresholds":
        c = compiled(oracle_scenarios.thresholds(name=NAME))
    else:
        c = compiled({"all_knobs": all_knobs, "edge_cases": edge_cases}[which](name=NAME))
    assert c.deterrence == 0  # capability: the oracle hashes nothing outside the trials
    made = {"uniforms": 0, "members": 0, "keys": 0}
    uniform, trial_key = python_loop.uniform, python_loop.trial_key

    def counted_uniform(key, slot):
        made["uniforms"] += 1
        made["members"] += SLOT_CONSULT_BASE <= slot < SLOT_ROUND_BASE
        return uniform(key, slot)

    def counted_key(base, trial):
        made["keys"] += 1
        return trial_key(base, trial)

    monkeypatch.setattr(python_loop, "uniform", counted_uniform)
    monkeypatch.setattr(python_loop, "trial_key", counted_key)
    python = simulate_python(c, 5, 100, 2100)
    counters = np.zeros(N_COUNTERS, np.int64)
    kernel, _ = simulate(c, 5, 100, 2100, block_size=333, counters=counters)
    assert kernel.equals(python)
    assert made["members"] > 0 and made["uniforms"] > made["members"]
    assert counters[COUNT_UNIFORMS] == made["uniforms"]
    assert counters[COUNT_MEMBER_DRAWS] == made["members"]
    assert counters[COUNT_KEYS] == made["keys"] == 2000


def test_nato_baltic_config_with_offset():
    c = nato_baltic()
    tallies = assert_same(c, seed=20240411, start=1000, n=3000)
    assert tallies.cells[:, C_INVOKED].sum() > 0


@pytest.mark.parametrize("start, stop", [(5, 5), (10, 11)])
def test_empty_and_single_trial_ranges(start, stop):
    c = nato_baltic()
    kernel, _ = simulate(c, 3, start, stop)
    assert kernel.equals(simulate_python(c, 3, start, stop))
