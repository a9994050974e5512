"""Named benchmark workloads: small (3 members), NATO-32 (the shipped Baltic scenario, in its
``expected_response`` deterrence mode, and ``nato-capability``: the same in v1's mode) and large
(a synthetic 150-state, 40-alliance world).  Shared by ``bench/`` and ``crisis bench``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import Scenario, load_scenario, scenario_from_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
WORKLOADS = ("small", "nato-capability", "nato", "large")


def small_world() -> dict:
    """Three allies and an aggressor, every knob neutral but mobilization."""
    return {
        "scenario": {"name": "small", "seed": 1, "mobilization_days": 10.0},
        "states": [
            {"id": "BIG", "capability": 0.30, "commitment": 0.7},
            {"id": "MID", "capability": 0.10, "commitment": 0.8},
            {"id": "SMALL", "capability": 0.02, "commitment": 0.9},
            {"id": "AGG", "capability": 0.25, "commitment": 0.5},
        ],
        "alliances": [{"id": "ALLY", "members": ["BIG", "MID", "SMALL"], "round_days": 2.0,
                       "max_rounds": 5}],
        "aggressors": [{"state": "AGG", "resolve": 2.0, "targets": {"SMALL": 2.0, "MID": 1.0},
                        "attack_mix": {"conventional": 1.0}}],
        "attack_types": {"conventional": {"severity": 1.0}},
    }


def large_world(n_states: int = 150, n_alliances: int = 40, n_aggressors: int = 10,
                seed: int = 2024) -> dict:
    """A synthetic world: lognormal capabilities, overlapping alliances of 2–30 members with
    mixed rules and obligations, aggressors targeting 15 states each with three attack types.

    Deterministic for a given ``seed``; every knob of the model is exercised.
    """
    rng = np.random.default_rng(seed)
    ids = [f"S{i:03d}" for i in range(n_states)]
    cap = rng.lognormal(mean=0.0, sigma=1.5, size=n_states)
    cap = cap / cap.sum()
    states = [
        {"id": s, "capability": float(c), "commitment": float(rng.uniform(0.3, 0.95)),
         "stability": float(rng.uniform(0.8, 1.0)), "free_riding": float(rng.uniform(0, 0.3))}
        for s, c in zip(ids, cap, strict=True)
    ]
    rules = ["unanimity", "majority", "qualified", "veto"]
    obligations = ["defense", "defense", "defense", "consultation", "neutrality", "nonaggression"]
    alliances = []
    for a in range(n_alliances):
        size = int(rng.integers(2, 31))
        members = sorted(rng.choice(n_states, size=size, replace=False).tolist())
        rule = rules[int(rng.integers(0, 4))] if size > 2 else "unanimity"
        alliance = {
            "id": f"A{a:02d}", "members": [ids[m] for m in members],
            "obligation": obligations[int(rng.integers(0, len(obligations)))],
            "decision_rule": rule, "quota": float(rng.choice([0.5, 0.6, 2 / 3])),
            "round_days": float(rng.uniform(0.5, 7.0)), "max_rounds": int(rng.integers(2, 8)),
            "integration": float(rng.uniform(0, 0.9)), "bindingness": float(rng.uniform(0.5, 1)),
            "intel_sharing": float(rng.uniform(0, 0.5)),
        }
        if rule == "veto":
            alliance["veto_holders"] = [ids[m] for m in members[: max(1, size // 5)]]
        alliances.append(alliance)
    aggressor_states = rng.choice(n_states, size=n_aggressors, replace=False)
    aggressors = []
    for g in aggressor_states:
        others = [i for i in range(n_states) if i != g]
        targets = rng.choice(others, size=15, replace=False)
        aggressors.append({
            "state": ids[g], "weight": float(rng.uniform(0.5, 2.0)),
            "resolve": float(rng.uniform(0.5, 20.0)),
            "targets": {ids[t]: float(rng.uniform(0.1, 1.0)) for t in targets},
            "attack_mix": {"conventional": 0.5, "hybrid": 0.3, "cyber": 0.2},
        })
    return {
        "scenario": {"name": "large", "seed": 7, "misperception": 0.6, "outcome_noise": 0.4,
                     "mobilization_days": 20.0, "window_days": 120.0,
                     "interoperability_bonus": 0.2, "defection_threshold": 0.5,
                     "conflict_penalty": 0.3, "threat_weight": 0.5},
        "states": states,
        "alliances": alliances,
        "aggressors": aggressors,
        "attack_types": {
            "conventional": {"severity": 1.0, "attribution_days": 0.5, "ambiguity": 0.0},
            "hybrid": {"severity": 0.5, "attribution_days": 10.0, "ambiguity": 0.3},
            "cyber": {"severity": 0.3, "attribution_days": 30.0, "ambiguity": 0.5},
        },
        "exposure": {"default": 0.7},
    }


def workload_scenario(name: str) -> Scenario:
    if name == "small":
        return scenario_from_dict(small_world(), "<workload small>")
    if name == "nato":
        return load_scenario(CONFIGS / "nato-baltic-2024.toml")
    if name == "nato-capability":  # the same scenario in v1's deterrence mode
        return load_scenario(CONFIGS / "nato-baltic-2024.toml").with_values(
            {"scenario.deterrence": "capability"})
    if name == "large":
        return scenario_from_dict(large_world(), "<workload large>")
    raise ValueError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")


def workload(name: str) -> CompiledScenario:
    return compile_scenario(workload_scenario(name))
