"""The two oracles of the model v2 core (design §8) against each other and against closed forms.

The NumPy reference (engine/oracles/reference.py) and the plain-Python loop
(engine/oracles/python_loop.py) are written independently of the Numba kernel and of each other;
here they must agree draw for draw (every tally, per-member tallies included, and every cell's
deterrence), and their v2 pieces are checked on their own: coverage by obligation, the exact
forms of E_cell, the keyed pilot, the per-member tallies' bookkeeping.  The comparisons with the
kernel are in test_reference.py and test_python_loop.py (same worlds: oracle_scenarios.py).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import numpy as np
import oracle_scenarios
import pytest
from oracle_scenarios import V2_SCENARIOS, compiled, describe_difference, expected_response

from engine.model.compile import compile_scenario
from engine.model.config import load_scenario
from engine.oracles import python_loop, reference
from kernels.layout import (
    A_CONSULTED,
    A_COVERED,
    A_DECIDED,
    A_FREE_RIDERS_SUM,
    C_ALLIES_SUM,
    C_CONSULTED,
    C_HONORED_SUM,
    C_TRIALS,
    E_EXACT,
    E_PILOT,
    M_BACKED,
    M_DELIVERED,
    M_FREE_RODE,
    M_HONORED,
    M_PLEDGED,
)

ROOT = Path(__file__).resolve().parent.parent
NAME = "oracles v2 test"  # the scenario name of every dict built here
make_scenario = partial(oracle_scenarios.make_scenario, name=NAME)

# Tolerance of the statistical checks, in standard errors: two-sided false-failure rate
# 2·(1 − Φ(4.5)) ≈ 6.8e-6 per comparison under the normal approximation (the pilot means below
# average 65,536 bounded values, so the approximation is tight).
Z = 4.5


def assert_oracles_agree(c, *, seed: int, start: int, n: int):
    """Both oracles on trials ``[start, start + n)``: the same tallies and cell deterrence."""
    ref, _ = reference.simulate_reference(c, seed, start, start + n, chunk=1777)
    loop = python_loop.simulate_python(c, seed, start, start + n)
    assert ref.equals(loop), describe_difference(ref, loop, "python loop", first="reference")
    det_ref = reference.cell_deterrence(c, seed)
    det_loop = python_loop.cell_deterrence(c, seed)
    for field, x, y in zip(det_ref._fields, det_ref, det_loop, strict=True):
        np.testing.assert_array_equal(x, y, err_msg=field)  # NaN == NaN here
    return ref, det_ref


def member_alliance(c) -> np.ndarray:
    """The alliance of every row of the per-member tallies (member CSR)."""
    return np.repeat(np.arange(c.n_alliances), np.diff(c.member_ptr))


def check_member_bookkeeping(c, tallies):
    """The per-member tallies against the cell and alliance tallies they must add up to."""
    m = tallies.members
    assert (m >= 0).all()
    assert (m[:, M_BACKED] <= m[:, M_PLEDGED]).all()
    assert (m[:, M_HONORED] <= np.minimum(m[:, M_BACKED], m[:, M_DELIVERED])).all()
    assert (m[:, M_FREE_RODE] <= m[:, M_PLEDGED] - m[:, M_BACKED]).all()
    # the cell's pledges and honored pledges are the same sums (the honor rate is one number)
    assert m[:, M_PLEDGED].sum() == tallies.cells[:, C_ALLIES_SUM].sum()
    assert m[:, M_HONORED].sum() == tallies.cells[:, C_HONORED_SUM].sum()
    # an alliance's free riders over its decisions are its members' free rides
    free_rode = np.bincount(member_alliance(c), m[:, M_FREE_RODE], c.n_alliances)
    np.testing.assert_array_equal(free_rode, tallies.alliances[:, A_FREE_RIDERS_SUM])
    # an alliance that never consulted has no pledges
    pledged = np.bincount(member_alliance(c), m[:, M_PLEDGED], c.n_alliances)
    assert (pledged[tallies.alliances[:, A_CONSULTED] == 0] == 0).all()


# ---- the oracles agree draw for draw ------------------------------------------------------
@pytest.mark.parametrize("which", sorted(V2_SCENARIOS))
def test_oracles_agree(which):
    c = compiled(V2_SCENARIOS[which](name=NAME))
    tallies, deterrence = assert_oracles_agree(c, seed=2718, start=10_000, n=3000)
    check_member_bookkeeping(c, tallies)
    assert tallies.members[:, M_HONORED].sum() > 0 and tallies.members[:, M_FREE_RODE].sum() > 0
    if c.deterrence == 0:  # capability: alike for every attack type of an entry, no E_cell
        assert (deterrence.how == -1).all() and np.isnan(deterrence.expected_response).all()
    else:
        assert (deterrence.expected_response > 0).all()
        assert set(deterrence.how.tolist()) <= {E_EXACT, E_PILOT}


def test_oracles_agree_on_a_config_file():
    """A real scenario (many states, several alliances) in anticipatory mode, few trials."""
    scenario = load_scenario(ROOT / "configs" / "nato-baltic-2024.toml").with_values(
        {"scenario.pilot_samples": 1024, "scenario.deterrence": "expected_response"})
    c = compile_scenario(scenario)
    tallies, _ = assert_oracles_agree(c, seed=5, start=0, n=400)
    check_member_bookkeeping(c, tallies)


def test_pilot_keys_agree():
    """The pilot's keys (design §8) in both oracles, and in the kernels when they have them."""
    from kernels import rng

    for seed in (0, 1, 2**62 + 7):
        base_loop = python_loop.seed_base(seed)
        base_ref = reference.seed_base(seed)
        for cell in (0, 1, 17, 2**31):
            samples = np.array([0, 1, 2, 1023, 2**24 - 1], dtype=np.int64)
            keys = reference.pilot_key(base_ref, cell, samples)
            assert keys.dtype == np.uint64
            assert keys.tolist() == [python_loop.pilot_key(base_loop, cell, s)
                                     for s in samples.tolist()]
            if hasattr(rng, "pilot_key"):
                assert keys.tolist() == [int(rng.pilot_key(base_ref, np.int64(cell), s))
                                         for s in samples]
    # never a trial's key: the pilot of cell 0 is not the run's first trials
    base = python_loop.seed_base(3)
    pilot = {python_loop.pilot_key(base, cell, s) for cell in range(4) for s in range(256)}
    assert not pilot & {python_loop.trial_key(base, g) for g in range(4096)}


def test_pilot_estimates_agree():
    """Both oracles' pilots of one cell, draw for draw: an exact-form cell and a pilot cell."""
    c = compiled(V2_SCENARIOS["exact_cases_expected"](name=NAME))
    for cell in (0, 5):
        assert reference.pilot_estimate(c, 9, cell) == python_loop.pilot_estimate(c, 9, cell)


# ---- coverage by obligation (design §8) ---------------------------------------------------
def test_coverage():
    """Collective security covers against members, a defense pact does not; an alliance with
    nobody but the target and the aggressor is not invoked; overlapping covers; the aggressor
    never consults."""
    c = compiled(V2_SCENARIOS["coverage"](name=NAME))
    ids = c.alliance_ids
    cover = [[ids[A] for A in entry] for entry in reference.covering_alliances(c)]
    assert cover == [
        ["LEAGUE"],  # X → T: LEAGUE (X inside); not PACT (X a member), not DUO (nobody else)
        ["GUARANTEE"],  # X → U: not PACT (X a member)
        ["LEAGUE"],  # X → C: GUARANTEE protects U only
        ["LEAGUE", "PACT", "DUO"],  # Z → T
        ["PACT", "GUARANTEE"],  # Z → U
        ["LEAGUE"],  # Z → A
        [],  # Z → LONE
    ]
    assert python_loop.covering_alliances(c) == reference.covering_alliances(c)
    tallies, _ = reference.simulate_reference(c, 4, 0, 20_000)
    state = {s: i for i, s in enumerate(c.state_ids)}

    def row(alliance, member):
        A = ids.index(alliance)
        members = c.member_idx[c.member_ptr[A]:c.member_ptr[A + 1]].tolist()
        return c.member_ptr[A] + members.index(state[member])

    cells = tallies.cells
    # X pledges in LEAGUE only when Z attacks T (cells 6, 7) or A (cells 10, 11)
    assert tallies.members[row("LEAGUE", "X"), M_PLEDGED] == cells[[6, 7, 10, 11],
                                                                   C_CONSULTED].sum() > 0
    # DUO consults only against Z, and X is its ally there
    assert tallies.members[row("DUO", "X"), M_PLEDGED] == cells[[6, 7], C_CONSULTED].sum()
    assert tallies.alliances[ids.index("DUO"), A_COVERED] == cells[[6, 7], C_TRIALS].sum()
    assert tallies.alliances[ids.index("DUO"), A_DECIDED] > 0
    assert tallies.members[row("PACT", "X"), M_PLEDGED] > 0  # an ally when Z attacks T or U
    assert tallies.members[row("GUARANTEE", "A"), M_PLEDGED] == cells[[2, 3, 8, 9],
                                                                      C_CONSULTED].sum()
    assert cells[[12, 13], C_CONSULTED].sum() == 0  # LONE
    check_member_bookkeeping(c, tallies)


def test_coverage_agrees_with_the_compiler_on_every_config():
    for path in sorted((ROOT / "configs").glob("*.toml")):
        c = compile_scenario(load_scenario(path))
        assert reference.covering_alliances(c) == python_loop.covering_alliances(c), path.name


# ---- E_cell --------------------------------------------------------------------------------
def test_expected_response_cases():
    """Which cells are exact and which need the pilot; case 1 is the target alone after the
    attribution delay, so its deterrence equals the no-alliance baseline."""
    c = compiled(V2_SCENARIOS["exact_cases_expected"](name=NAME))
    d = reference.cell_deterrence(c, 1)
    exact, pilot = E_EXACT, E_PILOT
    # targets T (ONE), T2 (RIDE), T3 (MOVE), T4 (MAJ), T5 (ONE and MAJ), LONE, T6 (LONG);
    # attack types conv, slow
    assert d.how.tolist() == [exact, exact] + [pilot] * 8 + [exact] * 4
    lone = c.state_ids.index("LONE")
    slow = c.attack_type_ids.index("slow")
    att = 1.0 / (1.0 + c.attribution_days[slow] / c.window_days)
    assert d.expected_response[10] == c.capability[lone]  # conv: no attribution delay
    assert d.expected_response[11] == c.capability[lone] * att
    np.testing.assert_array_equal(d.p_deterred[10:12], d.p_deterred_no_alliance[10:12])
    alliance = np.r_[0:10, 12:14]
    assert (d.p_deterred[alliance] > d.p_deterred_no_alliance[alliance]).all()
    # the pilot depends on the seed (its own keys), an exact form does not
    d2 = reference.cell_deterrence(c, 2)
    assert (d2.expected_response[d.how == exact] == d.expected_response[d.how == exact]).all()
    assert (d2.expected_response[d.how == pilot] != d.expected_response[d.how == pilot]).all()
    # the coverage world: X → U (GUARANTEE, unanimity, no free rider) is exact, LONE too
    d = reference.cell_deterrence(compiled(V2_SCENARIOS["coverage_expected"](name=NAME)), 1)
    assert d.how.tolist() == [pilot] * 2 + [exact] * 2 + [pilot] * 8 + [exact] * 2


@pytest.mark.parametrize("oracle", [reference, python_loop])
def test_exact_form_is_the_design_example(oracle):
    """Design §8's closed form: one ally B (commitment·bindingness p, stability s), unanimity,
    ``max_rounds = R``, no attribution delay, bonus 0:
    ``E = Σ_{r=1..R} p(1−p)^{r−1} (cap_t + s·cap_B) exp(−(r·round_days + mob·(1 − integration))
    / window) + (1 − p)^R cap_t``; also deterrence ``Φ((ln E − ln(cap_a·resolve·severity))/σ)``.
    """
    states = {"B": {"capability": 0.3, "commitment": 0.35, "stability": 0.8},
              "T": {"capability": 0.01, "commitment": 1.0},
              "X": {"capability": 0.2, "commitment": 0.0}}
    alliances = [{"id": "PAIR", "members": ["B", "T"], "max_rounds": 7, "round_days": 4.0,
                  "integration": 0.25, "bindingness": 0.8}]
    aggressors = [{"state": "X", "resolve": 1.3, "targets": {"T": 1.0},
                   "attack_mix": {"c": 1.0}}]
    data = expected_response(make_scenario(states, alliances, aggressors, {"c": {"severity": 0.9}},
                                           mobilization_days=12.0, window_days=25.0,
                                           misperception=0.7))
    c = compiled(data)
    d = oracle.cell_deterrence(c, 1)
    assert d.how.tolist() == [E_EXACT]
    p, s, R = 0.35 * 0.8, 0.8, 7
    expected = sum(p * (1 - p) ** (r - 1) * (0.01 + s * 0.3)
                   * math.exp(-(r * 4.0 + 12.0 * 0.75) / 25.0) for r in range(1, R + 1))
    expected += (1 - p) ** R * 0.01
    assert d.expected_response[0] == pytest.approx(expected, rel=1e-13)
    phi = 0.5 * math.erfc(-(math.log(expected) - math.log(0.2 * 1.3 * 0.9)) / 0.7 / math.sqrt(2))
    assert d.p_deterred[0] == pytest.approx(phi, rel=1e-12)


@pytest.mark.parametrize("which, cells", [("exact_cases_expected", (0, 1, 12, 13)),
                                          ("coverage_expected", (2, 3))])
def test_exact_form_agrees_with_the_pilot(which, cells):
    """Case 2's exact E_cell against the plain pilot of the same cell (2^16 samples of ``F ·
    exp(−delay / window)``): within 4.5 pilot standard errors, false-failure rate ≈ 6.8e-6 per
    comparison (six comparisons here).  The pilot runs the trials' code, so this checks the
    closed form against the simulated model: attribution, consultation, delivery, integration
    bonus and window together."""
    c = compiled(V2_SCENARIOS[which](name=NAME))
    d = reference.cell_deterrence(c, 1)
    for cell in cells:
        assert d.how[cell] == E_EXACT
        mean, se = reference.pilot_estimate(c, 11, cell, samples=1 << 16, conditional=False)
        assert se > 0.0
        assert abs(mean - d.expected_response[cell]) < Z * se, (cell, mean, se)


def test_conditional_pilot_agrees_with_the_plain_pilot():
    """The pilot's conditional estimate (one unanimity alliance: free riding in RIDE, a moving θ
    in MOVE, and the fixed chances of ONE) against the plain ``F · exp(−delay / window)`` on
    the same samples: the same mean.  The two are positively correlated (same draws), so
    ``sqrt(se₁² + se₂²)`` overstates the error of the difference: |difference| < 4.5 of it
    fails with probability below 6.8e-6 per comparison (six here)."""
    c = compiled(V2_SCENARIOS["exact_cases_expected"](name=NAME))
    for cell in (0, 1, 2, 3, 4, 5):  # T in ONE, T2 in RIDE, T3 in MOVE; conv and slow
        plain, se_plain = reference.pilot_estimate(c, 5, cell, samples=1 << 16,
                                                   conditional=False)
        smooth, se_smooth = reference.pilot_estimate(c, 5, cell, samples=1 << 16,
                                                     conditional=True)
        assert se_plain > 0.0 and se_smooth > 0.0
        assert abs(plain - smooth) < Z * math.hypot(se_plain, se_smooth), (cell, plain, smooth)
    with pytest.raises(ValueError, match="one covering alliance under unanimity"):
        reference.pilot_estimate(c, 5, 6, conditional=True)  # T4 in MAJ


def test_conditional_pilots_agree():
    """The two oracles' conditional and plain pilots, draw for draw."""
    c = compiled(V2_SCENARIOS["exact_cases_expected"](name=NAME))
    for cell in (2, 5):
        for conditional in (True, False):
            assert (reference.pilot_estimate(c, 9, cell, conditional=conditional)
                    == python_loop.pilot_estimate(c, 9, cell, conditional=conditional))


def test_expected_response_moves_with_the_decision_rule():
    """What v2 adds (design §8): deterrence now depends on the decision rule and the rounds."""
    base = compiled(V2_SCENARIOS["exact_cases_expected"](name=NAME))
    slow = V2_SCENARIOS["exact_cases_expected"](name=NAME)
    slow["alliances"][0]["round_days"] = 30.0  # ONE decides ten times slower
    slow = compiled(slow)
    p_base = reference.cell_deterrence(base, 1).p_deterred
    p_slow = reference.cell_deterrence(slow, 1).p_deterred
    assert (p_slow[:2] < p_base[:2]).all()  # T in ONE: less deterrence
    np.testing.assert_array_equal(p_slow[2:4], p_base[2:4])  # T2 in RIDE: unchanged
