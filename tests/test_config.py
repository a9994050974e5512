"""Scenario files: every error path names the file, the key path and the problem."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest

from engine.errors import ConfigError
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario, scenario_from_dict, scenario_hash

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.toml"))

BASE = {
    "scenario": {"name": "t", "seed": 3, "trials": 1000},
    "states": [
        {"id": "A", "capability": 1.0, "commitment": 0.5},
        {"id": "B", "capability": 0.2, "commitment": 0.6},
        {"id": "C", "capability": 0.3, "commitment": 0.7},
        {"id": "R", "capability": 1.0, "commitment": 0.5},
    ],
    "alliances": [{"id": "X", "members": ["A", "B", "C"]}],
    "aggressors": [{"state": "R", "targets": {"B": 1.0}, "attack_mix": {"conv": 1.0}}],
    "attack_types": {"conv": {"severity": 1.0}},
}


def problems_of(mutate) -> list[tuple[str, str]]:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ConfigError) as info:
        scenario_from_dict(data, "scenario.toml")
    err = info.value
    assert err.path == "scenario.toml"
    assert str(err).startswith("scenario.toml")
    return err.problems


def only_problem(mutate) -> tuple[str, str]:
    problems = problems_of(mutate)
    assert len(problems) == 1, problems
    return problems[0]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_scenarios_validate(path):
    scenario = load_scenario(path)
    compiled = compile_scenario(scenario)
    assert compiled.n_cells > 0


def test_there_are_shipped_scenarios():
    names = {p.stem for p in CONFIGS}
    assert {"nato-baltic-2024", "seato-laos-1961", "league-abyssinia-1935", "unsc-veto",
            "baseline-no-alliance"} <= names


def test_valid_base_compiles_to_arrays():
    c = compile_scenario(scenario_from_dict(copy.deepcopy(BASE)))
    assert c.state_ids == ("A", "B", "C", "R")
    assert c.membership.shape == (4, 1)
    assert c.membership[:, 0].tolist() == [1, 1, 1, 0]
    assert c.member_idx.tolist() == [0, 1, 2]
    assert c.cover_idx[c.cover_ptr[1]:c.cover_ptr[2]].tolist() == [0]
    assert c.cover_ptr[3] == c.cover_ptr[4]  # R is in no alliance
    assert c.exposure.shape == (4, 4) and np.all(c.exposure == 1.0)
    assert c.n_cells == 1 and c.cell_target.tolist() == [1]
    assert c.aggressor_cum_weight[-1] == 1.0
    assert math.isinf(c.window_days)


@pytest.mark.parametrize(
    ("mutate", "key", "words"),
    [
        (lambda d: d["scenario"].update(bogus=1), "scenario.bogus", "unknown key"),
        (lambda d: d["states"][0].update(colour="red"), "states[A].colour", "unknown key"),
        (lambda d: d.update(extra={}), "extra", "unknown key"),
        (lambda d: d["scenario"].pop("name"), "scenario.name", "missing"),
        (lambda d: d["states"][1].update(capability=0.0), "states[B].capability", "greater than 0"),
        (lambda d: d["states"][1].update(capability=-1), "states[B].capability", "greater than 0"),
        (lambda d: d["states"][1].update(capability=math.nan), "states[B].capability", "finite"),
        (lambda d: d["states"][1].update(capability="big"), "states[B].capability", "number"),
        (lambda d: d["states"][1].update(capability=True), "states[B].capability", "boolean"),
        (lambda d: d["states"][2].update(commitment=1.5), "states[C].commitment", "less than"),
        (lambda d: d["states"][2].update(stability=-0.1), "states[C].stability", "greater than"),
        (lambda d: d["scenario"].update(misperception=0), "scenario.misperception", "greater"),
        (lambda d: d["scenario"].update(window_days=math.nan), "scenario.window_days", "nan"),
        (lambda d: d["scenario"].update(trials=2.5), "scenario.trials", "integer"),
        (lambda d: d["scenario"].update(seed=-1), "scenario.seed", "greater"),
        (lambda d: d["alliances"][0].update(members=[]), "alliances[X].members", "at least 1"),
        (lambda d: d["alliances"][0].update(decision_rule="consensus"),
         "alliances[X].decision_rule", "unanimity"),
        (lambda d: d["alliances"][0].update(obligation="offense"),
         "alliances[X].obligation", "defense"),
        (lambda d: d["alliances"][0].update(max_rounds=0), "alliances[X].max_rounds", "greater"),
        (lambda d: d["alliances"][0].update(max_rounds=10**6), "alliances[X].max_rounds", "less"),
        (lambda d: d["alliances"][0].update(quota=0.0), "alliances[X].quota", "greater than 0"),
        (lambda d: d["alliances"][0].update(members=["A", "B", "Z"]),
         "alliances[X].members", "unknown state id 'Z'"),
        (lambda d: d["alliances"][0].update(members=["A", "B", "B"]),
         "alliances[X].members", "listed twice"),
        (lambda d: d["alliances"].append({"id": "X", "members": ["A"]}),
         "alliances[X].id", "duplicate alliance id"),
        (lambda d: d["states"].append({"id": "A", "capability": 1.0, "commitment": 0.1}),
         "states[A].id", "duplicate state id"),
        (lambda d: d["alliances"][0].update(decision_rule="veto"),
         "alliances[X].veto_holders", "needs veto holders"),
        (lambda d: d["alliances"][0].update(decision_rule="veto", veto_holders=["R"]),
         "alliances[X].veto_holders", "not a member"),
        (lambda d: d["alliances"][0].update(veto_holders=["A"]),
         "alliances[X].veto_holders", "decision_rule"),
        (lambda d: d["aggressors"][0].update(state="Q"), "aggressors[Q].state", "unknown state"),
        (lambda d: d["aggressors"][0].update(targets={"R": 1.0}),
         "aggressors[R].targets.R", "cannot target itself"),
        (lambda d: d["aggressors"][0].update(targets={"Z": 1.0}),
         "aggressors[R].targets.Z", "unknown state id"),
        (lambda d: d["aggressors"][0].update(targets={}), "aggressors[R].targets", "at least 1"),
        (lambda d: d["aggressors"][0].update(targets={"B": 0.0}),
         "aggressors[R].targets.B", "greater than 0"),
        (lambda d: d["aggressors"][0].update(attack_mix={"cyber": 1.0}),
         "aggressors[R].attack_mix.cyber", "not defined"),
        (lambda d: d["aggressors"].append(copy.deepcopy(d["aggressors"][0])),
         "aggressors[R].state", "aggressor twice"),
        (lambda d: d.update(aggressors=[]), "aggressors", "at least 1"),
        (lambda d: d["attack_types"]["conv"].update(ambiguity=2), "attack_types.conv.ambiguity",
         "less than"),
        (lambda d: d.update(exposure={"A.Z": 0.5}), "exposure.A.Z", "unknown state id 'Z'"),
        (lambda d: d.update(exposure={"AB": 0.5}), "exposure.AB", "MEMBER.TARGET"),
        (lambda d: d.update(exposure={"A.B": -1.0}), "exposure.A.B", "≥ 0"),
        (lambda d: d.update(exposure={"default": -1.0}), "exposure.default", "greater"),
    ],
)
def test_error_names_key_and_problem(mutate, key, words):
    problems = problems_of(mutate)
    assert any(k == key and words in msg for k, msg in problems), problems


def test_all_problems_reported_at_once():
    def mutate(d):
        d["scenario"]["bogus"] = 1
        d["states"][0]["commitment"] = 7
        d["aggressors"][0]["targets"] = {"R": 1.0}

    problems = problems_of(mutate)
    keys = {k for k, _ in problems}
    # the cross checks run only once the structure is valid, so two structural problems show
    assert {"scenario.bogus", "states[A].commitment"} <= keys


def test_load_scenario_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[scenario\nname = 1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: invalid TOML"):
        load_scenario(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_scenario(binary)
    with pytest.raises(ConfigError, match="folder"):
        load_scenario(tmp_path)


def test_exposure_pairs_quoted_or_dotted(tmp_path):
    base = """
[scenario]
name = "x"
[[states]]
id = "A"
capability = 1.0
commitment = 0.5
[[states]]
id = "B"
capability = 1.0
commitment = 0.5
[[states]]
id = "R"
capability = 1.0
commitment = 0.5
[[alliances]]
id = "X"
members = ["A", "B"]
[[aggressors]]
state = "R"
targets = { A = 1.0 }
attack_mix = { c = 1.0 }
[attack_types.c]
severity = 1.0
[exposure]
default = 0.5
"""
    quoted = tmp_path / "q.toml"
    quoted.write_text(base + '"B.A" = 0.25\n')
    dotted = tmp_path / "d.toml"
    dotted.write_text(base + "B.A = 0.25\n")
    for path in (quoted, dotted):
        c = compile_scenario(load_scenario(path))
        assert c.exposure[1, 0] == 0.25 and c.exposure[0, 1] == 0.5
    assert scenario_hash(load_scenario(quoted)) == scenario_hash(load_scenario(dotted))


def test_hash_ignores_formatting_but_not_values():
    a = scenario_from_dict(copy.deepcopy(BASE))
    data = copy.deepcopy(BASE)
    data["scenario"]["misperception"] = 0.5  # the default, spelled out
    assert scenario_hash(scenario_from_dict(data)) == scenario_hash(a)
    data["scenario"]["misperception"] = 0.6
    assert scenario_hash(scenario_from_dict(data)) != scenario_hash(a)


def test_round_trip_through_dict():
    a = scenario_from_dict(copy.deepcopy(BASE))
    again = scenario_from_dict(a.to_toml_dict())
    assert again == a


def test_exposure_from_similarity():
    data = copy.deepcopy(BASE)
    data["exposure"] = {"from": "s_score", "C.B": 0.9}
    c = compile_scenario(scenario_from_dict(data))
    # A, B and C share the defense alliance X: identical portfolios, S = 1, exposure 1; the
    # outsider R's portfolio is the opposite (S = −1, exposure 0); the pair override is kept
    assert c.exposure[0, 1] == 1.0 and c.exposure[3, 1] == 0.0 and c.exposure[2, 1] == 0.9
    assert any(k == "exposure.default" for k, _ in problems_of(lambda d: d.update(
        exposure={"from": "s_score", "default": 0.3})))
    assert any(k == "exposure.from" for k, _ in problems_of(lambda d: d.update(
        exposure={"from": "closeness"})))


def test_protected_members_make_a_pledge_directed():
    from engine.core.simulate import simulate
    from kernels.layout import C_CONSULTED, C_DETERRED, C_DETERRED_NO_ALLIANCE

    data = copy.deepcopy(BASE)
    data["alliances"] = [{"id": "X", "members": ["A", "B"], "protected": ["B"]}]
    data["aggressors"] = [{"state": "R", "targets": {"A": 1.0, "B": 1.0},
                           "attack_mix": {"conv": 1.0}}]
    c = compile_scenario(scenario_from_dict(data))
    assert c.cover_ptr[1] == c.cover_ptr[0]  # A (the guarantor) is not covered
    assert c.cover_idx[c.cover_ptr[1]:c.cover_ptr[2]].tolist() == [0]  # B is
    tallies, _ = simulate(c, 5, 0, 20_000)
    a, b = tallies.cells[0], tallies.cells[1]  # cells: target A, then B
    assert a[C_CONSULTED] == 0 and a[C_DETERRED] == a[C_DETERRED_NO_ALLIANCE]
    assert b[C_CONSULTED] > 0 and b[C_DETERRED] > b[C_DETERRED_NO_ALLIANCE]
    # without `protected` both are covered: the neutral value is the symmetric v1 alliance
    del data["alliances"][0]["protected"]
    sym = compile_scenario(scenario_from_dict(data))
    assert sym.cover_ptr[1] - sym.cover_ptr[0] == 1


def test_protected_errors():
    assert any(k == "alliances[X].protected" and "not a member" in m for k, m in problems_of(
        lambda d: d["alliances"][0].update(protected=["R"])))
    assert any(k == "alliances[X].protected" and "defense" in m for k, m in problems_of(
        lambda d: d["alliances"][0].update(protected=["A"], obligation="consultation")))
    assert any(k == "alliances[X].protected" and "at least one" in m for k, m in problems_of(
        lambda d: d["alliances"][0].update(protected=[])))
