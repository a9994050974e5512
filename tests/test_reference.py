"""The NumPy reference (engine/reference.py) against the Numba kernel (engine/simulate.py).

Every case must agree *exactly*: same integer tallies, same histograms, same saved records.
The literal per-round consultation is compared statistically to the default scheme.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import oracle_scenarios
import pytest
from oracle_scenarios import V2_SCENARIOS, all_knobs, compiled, describe_difference, edge_cases

from engine.core.simulate import deterrence_tables, simulate
from engine.oracles.reference import (
    cell_deterrence,
    delay_bin,
    seed_base,
    simulate_reference,
    trial_key,
    uniform,
)
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
    C_ROUNDS_SUM,
    C_VETO,
    HIST_FINE_BINS,
    HIST_FINE_LIMIT,
    HIST_OVERFLOW,
    M_PLEDGED,
    N_HIST_BINS,
    R_INVOKED,
    R_ROUNDS,
    RECORD_COLUMNS,
    histogram_edges,
)

N_TRIALS = 30_000


# ---- helpers (the scenarios shared with test_python_loop.py are in oracle_scenarios.py) -----
NAME = "reference test"  # the scenario name of every dict built here
make_scenario = partial(oracle_scenarios.make_scenario, name=NAME)


def assert_same(data: dict, *, seed: int = 12345, start: int = 0, n: int = N_TRIALS,
                save: int = 2000) -> tuple:
    c = compiled(data)
    kt, kr = simulate(c, seed, start, start + n, save_trials=save, block_size=1000)
    rt, rr = simulate_reference(c, seed, start, start + n, save_trials=save, chunk=7919)
    assert kt.equals(rt), describe_difference(kt, rt, "reference")
    assert kr.shape == rr.shape
    bad = np.argwhere(~((kr == rr) | (np.isnan(kr) & np.isnan(rr))))
    assert not len(bad), "records differ: " + "; ".join(
        f"trial row {r} {RECORD_COLUMNS[col]}: kernel {kr[r, col]!r} reference {rr[r, col]!r}"
        for r, col in bad[:10]
    )
    return kt, kr


def assert_same_deterrence(c, *, seed: int):
    """Step 2 per cell (design §8): the kernel's P(deterred), baseline, E_cell and how it was
    obtained, exactly."""
    kernel = deterrence_tables(c, seed)
    oracle = cell_deterrence(c, seed)
    np.testing.assert_array_equal(kernel.p_deterred, oracle.p_deterred)
    np.testing.assert_array_equal(kernel.p_deterred_no_alliance, oracle.p_deterred_no_alliance)
    if kernel.how is not None:  # expected_response mode
        np.testing.assert_array_equal(kernel.how, oracle.how)
        np.testing.assert_array_equal(kernel.expected, oracle.expected_response)


# ---- exact agreement -----------------------------------------------------------------------
def test_default_knobs():
    tallies, _ = assert_same(make_scenario())
    assert tallies.cells[0, C_INVOKED] > 0 and tallies.cells[0, C_DEADLOCK] > 0


def test_every_knob_non_neutral():
    tallies, _ = assert_same(all_knobs(name=NAME), seed=7, save=12_000)  # records span chunks
    cells = tallies.cells
    assert cells[:, C_DEFECTION].sum() > 0  # the defection path is exercised
    assert cells[:, C_INVOKED].sum() > 0 and cells[:, C_DEADLOCK].sum() > 0


@pytest.mark.parametrize("rule", ["unanimity", "majority", "qualified", "veto"])
def test_decision_rules(rule):
    states = {
        "A": {"capability": 0.1, "commitment": 0.3},
        "B": {"capability": 0.05, "commitment": 0.5, "free_riding": 0.5},
        "C": {"capability": 0.02, "commitment": 0.7},
        "D": {"capability": 0.01, "commitment": 0.2},
        "E": {"capability": 0.005, "commitment": 0.9},
        "T": {"capability": 0.001, "commitment": 1.0},
        "X": {"capability": 0.08, "commitment": 0.0},
    }
    alliance = {"id": "PACT", "members": ["A", "B", "C", "D", "E", "T"], "decision_rule": rule,
                "max_rounds": 3, "round_days": 1.5}
    if rule in ("qualified", "veto"):
        alliance["quota"] = 0.6
    if rule == "veto":
        alliance["veto_holders"] = ["A", "D"]
    data = make_scenario(states, [alliance],
                         [{"state": "X", "targets": {"T": 1.0}, "attack_mix": {"c": 1.0}}],
                         {"c": {}}, misperception=0.3)
    tallies, _ = assert_same(data, seed=99)
    if rule == "veto":
        assert tallies.cells[0, C_VETO] > 0


def test_several_covering_alliances_with_different_round_days():
    states = {s: {"capability": cap, "commitment": com} for s, cap, com in (
        ("P", 0.1, 0.5), ("Q", 0.05, 0.4), ("R", 0.02, 0.6), ("S", 0.01, 0.3),
        ("T", 0.001, 1.0), ("X", 0.07, 0.0))}
    alliances = [
        {"id": "SLOW", "members": ["P", "Q", "T"], "round_days": 5.0, "max_rounds": 4},
        {"id": "FAST", "members": ["R", "S", "T"], "round_days": 1.0, "max_rounds": 8,
         "integration": 0.5},
        {"id": "MID", "members": ["P", "S", "T"], "round_days": 2.5, "max_rounds": 3,
         "decision_rule": "majority", "integration": 0.2},
        {"id": "OTHER", "members": ["P", "Q"], "round_days": 1.0},  # does not cover T
        # same timing and integration as SLOW: ties go to the lower position (SLOW)
        {"id": "TWIN", "members": ["Q", "R", "T"], "round_days": 5.0, "max_rounds": 4},
    ]
    data = make_scenario(states, alliances,
                         [{"state": "X", "targets": {"T": 1.0}, "attack_mix": {"c": 1.0}}],
                         {"c": {"attribution_days": 3.0}}, misperception=0.4,
                         mobilization_days=12.0)
    tallies, _ = assert_same(data, seed=3)
    alliances_t = tallies.alliances
    assert alliances_t[:3, A_FIRST].min() > 0  # each covering alliance is sometimes the first
    assert alliances_t[3, A_COVERED] == 0  # OTHER never covers the target
    assert alliances_t[4, A_DECIDED] > alliances_t[4, A_FIRST] > 0


def test_target_outside_every_alliance():
    data = make_scenario(aggressors=[{"state": "RUS", "targets": {"SMALL": 1.0, "LONE": 2.0},
                                      "attack_mix": {"conventional": 1.0}}],
                         states={"BIG": {"capability": 0.2, "commitment": 0.6},
                                 "MID": {"capability": 0.03, "commitment": 0.5},
                                 "SMALL": {"capability": 0.002, "commitment": 0.9},
                                 "LONE": {"capability": 0.01, "commitment": 0.5},
                                 "RUS": {"capability": 0.06, "commitment": 0.0}})
    tallies, _ = assert_same(data, seed=5)
    lone = 1  # cell of (RUS, LONE, conventional)
    assert tallies.cells[lone, C_ATTACKED] > 0 and tallies.cells[lone, C_CONSULTED] == 0


@pytest.mark.parametrize("obligation", ["defense", "collective_security"])
def test_aggressor_inside_the_targets_alliance(obligation):
    """A defense pact does not act against its own member; collective security does, without
    the aggressor in the consultation (design §8)."""
    states = {
        "BIG": {"capability": 0.2, "commitment": 0.6},
        "MID": {"capability": 0.03, "commitment": 0.5},
        "SMALL": {"capability": 0.002, "commitment": 0.9},
        "TUR": {"capability": 0.04, "commitment": 0.5},
    }
    alliances = [{"id": "ALLY", "members": ["BIG", "MID", "SMALL", "TUR"],
                  "decision_rule": "unanimity", "max_rounds": 4, "obligation": obligation}]
    aggressors = [{"state": "TUR", "targets": {"SMALL": 1.0, "MID": 1.0},
                   "attack_mix": {"conventional": 1.0}}]
    tallies, _ = assert_same(make_scenario(states, alliances, aggressors, conflict_penalty=0.5),
                             seed=11)
    consulted = tallies.cells[:, C_CONSULTED].sum()
    assert consulted == 0 if obligation == "defense" else consulted > 0
    assert tallies.members[3, M_PLEDGED] == 0  # TUR (row 3: BIG, MID, SMALL, TUR) never pledges


@pytest.mark.parametrize("which", sorted(V2_SCENARIOS))
def test_model_v2(which):
    """The model v2 core (design §8): coverage by obligation, anticipatory deterrence (exact and
    pilot E_cell), per-member tallies."""
    data = V2_SCENARIOS[which](name=NAME)
    tallies, _ = assert_same(data, seed=41, start=500, n=12_000)
    assert tallies.members[:, M_PLEDGED].sum() == tallies.cells[:, C_ALLIES_SUM].sum() > 0
    assert_same_deterrence(compiled(data), seed=41)


def test_edge_cases():
    """Degenerate alliances and extreme knobs: an alliance with nobody but the target to consult
    (not invoked), an aggressor holding a veto in a collective-security council, p = 0 and
    p = 1, zero round length, delays in the coarse and overflow bins."""
    data = edge_cases(name=NAME)
    tallies, _ = assert_same(data, seed=31, save=5000)
    hist = tallies.cell_hist.sum(axis=0)
    assert hist[HIST_FINE_BINS:HIST_OVERFLOW].sum() > 0 and hist[HIST_OVERFLOW] > 0


def test_offset_trial_range():
    assert_same(all_knobs(name=NAME), seed=2024, start=1_234_567, n=20_000, save=777)


def test_save_more_than_range_and_zero():
    c = compiled(make_scenario())
    kt, kr = simulate(c, 1, 10, 60, save_trials=500)
    rt, rr = simulate_reference(c, 1, 10, 60, save_trials=500)
    assert kt.equals(rt) and rr.shape == (50, len(RECORD_COLUMNS))
    np.testing.assert_array_equal(kr, rr)
    _, rr0 = simulate_reference(c, 1, 10, 60)
    assert rr0.shape == (0, len(RECORD_COLUMNS))


def test_chunking_does_not_matter():
    c = compiled(all_knobs(name=NAME))
    a, ra = simulate_reference(c, 8, 100, 5100, save_trials=300, chunk=5000)
    b, rb = simulate_reference(c, 8, 100, 5100, save_trials=300, chunk=333)
    assert a.equals(b)
    np.testing.assert_array_equal(ra, rb)


# ---- pieces --------------------------------------------------------------------------------
def test_rng_matches_kernel():
    from kernels import rng

    base = seed_base(2**63 - 5)
    assert base == rng.seed_base(2**63 - 5)
    trials = np.array([0, 1, 2**40, 2**62], dtype=np.int64)
    keys = trial_key(base, trials)
    for g, key in zip(trials, keys, strict=True):
        assert key == rng.trial_key(base, g)
        for slot in (0, 5, 1 << 24, (1 << 40) + (3 << 20) + 7, (1 << 56) + (126 << 40)):
            assert uniform(np.array([key]), slot)[0] == rng.uniform(key, slot)


def test_delay_bin_matches_edges():
    edges = histogram_edges()
    d = np.concatenate([edges[:-1], np.nextafter(edges[1:-1], 0), [0.05, 127.99, 1e6, 1e300]])
    bins = delay_bin(d)
    expected = np.searchsorted(edges, d, side="right") - 1
    fine = d < HIST_FINE_LIMIT
    # 0.1-day edges are not exact doubles: the fine bins are int(10·d) by definition
    np.testing.assert_array_equal(bins[fine], np.minimum((d[fine] * 10.0).astype(int), 1279))
    np.testing.assert_array_equal(bins[~fine], np.minimum(expected[~fine], N_HIST_BINS - 1))


# ---- literal consultation: same distribution ------------------------------------------------
def _z(x1: int, n1: int, x2: int, n2: int) -> float:
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1.0 - p) * (1.0 / n1 + 1.0 / n2))
    return 0.0 if se == 0.0 else (x1 / n1 - x2 / n2) / se


@pytest.mark.slow
def test_literal_rounds_same_distribution():
    """The engine's one-uniform-per-member consultation has the law of design §2 step 4.

    Free riding and intel sharing (with threat weight and unequal exposure) make p_i vary from
    round to round, so the S_i = Π(1 − p) construction is really exercised.  Independent seeds
    make the two runs independent samples.  Each comparison is a two-sample test at 4.5 σ:
    two-sided false-failure probability 2·(1 − Φ(4.5)) ≈ 6.8e-6 per comparison (≈ 3e-5 for
    the four comparisons together).
    """
    states = {
        "A": {"capability": 0.1, "commitment": 0.35, "free_riding": 0.9},
        "B": {"capability": 0.05, "commitment": 0.3, "free_riding": 0.7},
        "C": {"capability": 0.03, "commitment": 0.4, "free_riding": 0.5},
        "D": {"capability": 0.01, "commitment": 0.25},
        "T": {"capability": 0.002, "commitment": 1.0},
        "X": {"capability": 0.12, "commitment": 0.0},
    }
    alliances = [{"id": "PACT", "members": ["A", "B", "C", "D", "T"], "max_rounds": 6,
                  "intel_sharing": 0.6}]
    data = make_scenario(states, alliances,
                         [{"state": "X", "targets": {"T": 1.0}, "attack_mix": {"c": 1.0}}],
                         {"c": {}}, {"default": 0.2, "A.T": 1.0, "D.T": 0.9},
                         threat_weight=0.8, misperception=1.0)
    c = compiled(data)
    n = 200_000
    default, rec_d = simulate_reference(c, 1, 0, n, save_trials=n)
    literal, rec_l = simulate_reference(c, 2, 0, n, save_trials=n, literal_rounds=True)
    d, l = default.cells[0], literal.cells[0]
    assert 0.5 * n < d[C_ATTACKED] < 0.9 * n and 0.05 < d[C_INVOKED] / d[C_ATTACKED] < 0.95
    assert abs(_z(d[C_ATTACKED], n, l[C_ATTACKED], n)) < 4.5
    assert abs(_z(d[C_INVOKED], d[C_ATTACKED], l[C_INVOKED], l[C_ATTACKED])) < 4.5
    assert abs(_z(d[C_DEADLOCK], d[C_ATTACKED], l[C_DEADLOCK], l[C_ATTACKED])) < 4.5
    # mean rounds over invoked trials: Welch z-test with the rounds' sample variance estimated
    # from both runs (rounds ∈ 1..6, so the normal approximation is excellent at this size).
    rd = rec_d[rec_d[:, R_INVOKED] == 1, R_ROUNDS]
    rl = rec_l[rec_l[:, R_INVOKED] == 1, R_ROUNDS]
    assert rd.sum() == d[C_ROUNDS_SUM] and rl.sum() == l[C_ROUNDS_SUM]
    z = (rd.mean() - rl.mean()) / math.sqrt(rd.var(ddof=1) / len(rd) + rl.var(ddof=1) / len(rl))
    assert abs(z) < 4.5
