"""Model v2 core (design §8): anticipatory deterrence, collective security vs defense.

Stochastic checks compare a frequency with its closed form within 4.5 binomial standard errors
(a two-sided false-failure rate of about 7e-6 per comparison) plus, where ``E_cell`` comes from a
pilot, 4.5 of the pilot's own standard errors on ``P(deterred)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from engine.core.simulate import deterrence_tables, simulate
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario, scenario_from_dict
from kernels.layout import C_DETERRED, C_DETERRED_NO_ALLIANCE, C_INVOKED, C_TRIALS, E_EXACT, E_PILOT

Z = 4.5


def one_ally(*, commitment=0.6, stability=0.9, rule="unanimity", max_rounds=4, round_days=2.0,
             integration=0.3, mobilization_days=20.0, window_days=30.0, ambiguity=0.0,
             attribution_days=0.0, severity=1.0, free_riding=0.0, resolve=1.0,
             mode="expected_response", misperception=0.5, bonus=0.0):
    """Target T and ally B in one defense pact; aggressor A outside it."""
    return scenario_from_dict({
        "scenario": {"name": "one ally", "misperception": misperception,
                     "mobilization_days": mobilization_days, "window_days": window_days,
                     "interoperability_bonus": bonus, "deterrence": mode,
                     "pilot_samples": 1 << 16},
        "states": [
            {"id": "T", "capability": 0.1, "commitment": 1.0},
            {"id": "B", "capability": 0.5, "commitment": commitment, "stability": stability,
             "free_riding": free_riding},
            {"id": "A", "capability": 0.3, "commitment": 0.0},
        ],
        "alliances": [{"id": "P", "members": ["T", "B"], "decision_rule": rule,
                       "max_rounds": max_rounds, "round_days": round_days,
                       "integration": integration}],
        "aggressors": [{"state": "A", "resolve": resolve, "targets": {"T": 1.0},
                        "attack_mix": {"k": 1.0}}],
        "attack_types": {"k": {"severity": severity, "ambiguity": ambiguity,
                               "attribution_days": attribution_days}},
    }, "<one ally>")


def design_closed_form(*, commitment, stability, max_rounds, round_days, integration,
                       mobilization_days, window_days, ambiguity=0.0, attribution_days=0.0,
                       free_share=0.0, cap_t=0.1, cap_b=0.5, bonus=0.0, **_):
    """Design §8's one-ally form (p = commitment · (1 − ambiguity) · (1 − ρ·share)), times the
    attribution factor E[exp(−D_att / window)] = 1 / (1 + mean / window)."""
    p = commitment * (1.0 - ambiguity) * (1.0 - free_share)
    force = (cap_t + stability * cap_b) * (1.0 + integration * bonus)
    total = sum(p * (1 - p) ** (r - 1) * force
                * math.exp(-(r * round_days + mobilization_days * (1 - integration)) / window_days)
                for r in range(1, max_rounds + 1))
    total += (1 - p) ** max_rounds * cap_t
    return total / (1.0 + attribution_days / window_days)


PARAMETER_SETS = [
    {},
    {"commitment": 0.2, "max_rounds": 6, "window_days": 10.0},
    {"commitment": 0.9, "stability": 0.5, "integration": 0.8, "bonus": 0.4},
    {"ambiguity": 0.5, "attribution_days": 12.0, "severity": 0.4},  # a hybrid attack
    {"ambiguity": 0.8, "attribution_days": 40.0, "severity": 0.2, "window_days": 60.0},  # cyber
    {"window_days": math.inf, "commitment": 0.35, "resolve": 2.0},
]


@pytest.mark.parametrize("params", PARAMETER_SETS)
def test_one_ally_closed_form(params):
    scenario = one_ally(**params)
    compiled = compile_scenario(scenario)
    tables = deterrence_tables(compiled, seed=5)
    expected = design_closed_form(**{**dict(commitment=0.6, stability=0.9, max_rounds=4,
                                            round_days=2.0, integration=0.3,
                                            mobilization_days=20.0, window_days=30.0),
                                     **params})
    assert tables.how[0] == E_EXACT
    assert tables.expected[0] == pytest.approx(expected, rel=1e-12)
    threat = 0.3 * params.get("resolve", 1.0) * params.get("severity", 1.0)
    p = norm.cdf((math.log(expected) - math.log(threat)) / 0.5)
    assert tables.p_deterred[0] == pytest.approx(p, rel=1e-12, abs=1e-15)
    # and the trials deter at that rate
    n = 400_000
    tallies, _ = simulate(compiled, 11, 0, n)
    share = tallies.cells[0, C_DETERRED] / n
    assert abs(share - p) <= Z * math.sqrt(p * (1 - p) / n) + 1e-12


@pytest.mark.parametrize("params", [{}, {"ambiguity": 0.5, "attribution_days": 12.0},
                                    {"commitment": 0.15, "window_days": math.inf}])
def test_pilot_meets_the_closed_form(params):
    """Majority of {T, B} needs both, so the cell has the one-ally closed form, but a majority
    cell goes through the plain pilot; free riding keeps B's p constant (share = cap_T / (cap_T +
    cap_B) while B waits) and goes through the pilot's conditional estimate."""
    base = dict(commitment=0.6, stability=0.9, max_rounds=4, round_days=2.0, integration=0.3,
                mobilization_days=20.0, window_days=30.0)
    for extra, free_share in (({"rule": "majority"}, 0.0),
                              ({"free_riding": 0.5}, 0.5 * 0.1 / 0.6)):
        scenario = one_ally(**params, **extra)
        tables = deterrence_tables(compile_scenario(scenario), seed=3)
        exact = design_closed_form(**{**base, **params}, free_share=free_share)
        assert tables.how[0] == E_PILOT
        assert abs(tables.expected[0] - exact) <= Z * tables.standard_error[0] + 1e-15, extra
        info = tables.manifest()
        assert info["cells_pilot"] == 1 and info["pilot_samples"] == 1 << 16


def test_pilot_is_keyed_by_seed_and_cell_only():
    scenario = one_ally(rule="majority")
    compiled = compile_scenario(scenario)
    a = deterrence_tables(compiled, seed=3)
    b = deterrence_tables(compiled, seed=3)
    c = deterrence_tables(compiled, seed=4)
    assert np.array_equal(a.expected, b.expected)
    assert not np.array_equal(a.expected, c.expected)
    # the trials of any range use the same p_deterred: splitting the range changes nothing
    whole, _ = simulate(compiled, 3, 0, 60_000, block_size=4096)
    first, _ = simulate(compiled, 3, 0, 25_000, block_size=1000)
    second, _ = simulate(compiled, 3, 25_000, 60_000, block_size=333)
    first.add(second)
    assert whole.equals(first)


def nato(**values):
    scenario = load_scenario("configs/nato-baltic-2024.toml")
    return scenario.with_values({"scenario.trials": 1000, **values})


def deterred_share(scenario, n=200_000, seed=9):
    tallies, _ = simulate(compile_scenario(scenario), seed, 0, n)
    return tallies.cells[:, C_DETERRED].sum() / n, tallies


def test_capability_mode_ignores_procedure_expected_response_does_not():
    for mode in ("capability", "expected_response"):
        base = nato(**{"scenario.deterrence": mode})
        majority = base.with_values({"alliances.NATO.decision_rule": "majority"})
        d_base, _ = deterred_share(base)
        d_major, _ = deterred_share(majority)
        if mode == "capability":
            assert d_base == d_major  # same uniforms, same p: identical to the last trial
        else:
            # majority decides faster and more often: far more deterrence (the difference is
            # many standard errors: common random numbers make it sharper still)
            assert d_major > d_base + 0.05


@pytest.mark.parametrize("path, low, high", [
    ("alliances.NATO.max_rounds", 2, 8),  # more rounds: more decisions
    ("alliances.NATO.round_days", 10.0, 1.0),  # faster rounds: earlier response
    ("alliances.NATO.integration", 0.0, 0.9),  # less mobilization, interoperability bonus
    ("attack_types.hybrid.ambiguity", 0.8, 0.0),  # a clear attack is answered
])
def test_procedure_moves_expected_response_deterrence(path, low, high):
    """In expected_response mode each of these raises E_cell; under a finite window every one
    then raises P(deterred) in some cell and lowers it in none (checked on the exact tables,
    not on noisy trials; the pilot's keys are the same at both points, so their errors are
    common)."""
    values = {"scenario.deterrence": "expected_response", "scenario.window_days": 60.0,
              "scenario.interoperability_bonus": 0.3}  # a bonus, so integration counts twice
    lo = deterrence_tables(compile_scenario(nato(**values, **{path: low})), 1)
    hi = deterrence_tables(compile_scenario(nato(**values, **{path: high})), 1)
    tolerance = Z * np.hypot(lo.standard_error, hi.standard_error)
    assert np.all(hi.expected >= lo.expected - tolerance)
    assert np.any(hi.p_deterred > lo.p_deterred + 0.01)


def three_states(obligation, members, aggressor_member=True):
    return scenario_from_dict({
        "scenario": {"name": "intra-pact"},
        "states": [{"id": "T", "capability": 0.1, "commitment": 1.0},
                   {"id": "B", "capability": 0.5, "commitment": 0.8},
                   {"id": "A", "capability": 0.3, "commitment": 0.5}],
        "alliances": [{"id": "P", "members": members, "obligation": obligation}],
        "aggressors": [{"state": "A", "targets": {"T": 1.0}, "attack_mix": {"k": 1.0}}],
        "attack_types": {"k": {}},
    }, "<intra-pact>")


def test_defense_pact_does_not_cover_a_member_against_a_member():
    compiled = compile_scenario(three_states("defense", ["T", "B", "A"]))
    assert compiled.entry_cover_ptr[-1] == 0
    tallies, _ = simulate(compiled, 1, 0, 50_000)
    assert tallies.cells[0, C_INVOKED] == 0
    assert tallies.cells[0, C_DETERRED] == tallies.cells[0, C_DETERRED_NO_ALLIANCE]
    assert tallies.members[:, 0].sum() == 0  # nobody pledged


def test_collective_security_covers_a_member_against_a_member():
    compiled = compile_scenario(three_states("collective_security", ["T", "B", "A"]))
    assert compiled.entry_cover_idx.tolist() == [0]
    tallies, _ = simulate(compiled, 1, 0, 50_000)
    attacked = tallies.cells[0, C_TRIALS] - tallies.cells[0, C_DETERRED]
    assert tallies.cells[0, C_INVOKED] > 0
    # only B pledges: A (the aggressor) never consults, T is the target
    rows = {compiled.state_ids[s]: r for r, s in enumerate(compiled.member_idx)}
    assert tallies.members[rows["B"], 0] == attacked
    assert tallies.members[rows["A"]].sum() == 0 and tallies.members[rows["T"]].sum() == 0


@pytest.mark.parametrize("obligation", ["defense", "collective_security"])
def test_alliance_of_target_and_aggressor_only_is_not_invoked(obligation):
    compiled = compile_scenario(three_states(obligation, ["T", "A"]))
    assert compiled.entry_cover_ptr[-1] == 0
    tallies, _ = simulate(compiled, 1, 0, 20_000)
    assert tallies.cells[0, C_INVOKED] == 0


def test_members_add_up_to_the_honor_rate():
    tallies = deterred_share(nato(**{"scenario.deterrence": "expected_response"}), 100_000)[1]
    from kernels.layout import C_ALLIES_SUM, C_HONORED_SUM, M_HONORED, M_PLEDGED

    assert tallies.members[:, M_PLEDGED].sum() == tallies.cells[:, C_ALLIES_SUM].sum()
    assert tallies.members[:, M_HONORED].sum() == tallies.cells[:, C_HONORED_SUM].sum()


# sha256 of (cells, cell_hist, alliances, records[:50]) of 300,000 trials at seed 7, computed by
# the v1 engine (commit e2f2e02, before model v2): capability mode must keep them bit for bit
V1_DIGESTS = {
    "nato-baltic-2024": "133a17d89837c30a03a1488faddd53427e8b04b883a871e411f908a85a63866a",
    "seato-laos-1961": "8e77274c39624eddf56dbf699fa4c8e4749ad7a85cc4e8c071a4fbe1c261d6a3",
}


@pytest.mark.parametrize("name", sorted(V1_DIGESTS))
def test_capability_mode_keeps_v1_results_bit_for_bit(name):
    import hashlib

    scenario = load_scenario(f"configs/{name}.toml").with_values(
        {"scenario.deterrence": "capability", "scenario.window_days": math.inf})
    tallies, records = simulate(compile_scenario(scenario), 7, 0, 300_000, save_trials=50)
    digest = hashlib.sha256()
    for array in (tallies.cells, tallies.cell_hist, tallies.alliances, records):
        digest.update(np.ascontiguousarray(array).tobytes())
    assert digest.hexdigest() == V1_DIGESTS[name]
