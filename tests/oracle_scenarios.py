"""Scenarios and helpers shared by the oracle tests (test_python_loop.py, test_reference.py).

Both files run an oracle (the plain-Python loop or the NumPy reference) and the Numba kernel
on the same hand-built worlds and compare them draw for draw; the worlds are defined here once.
Every builder takes the scenario ``name`` so that each file keeps its own.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from engine.model.compile import compile_scenario
from engine.model.config import scenario_from_dict
from kernels.layout import ALLIANCE_COLUMNS, CELL_COLUMNS


# ---- helpers -------------------------------------------------------------------------------
def compiled(data: dict):
    """Compile a scenario dict (a deep copy, so the caller's dict is left as it was)."""
    return compile_scenario(scenario_from_dict(copy.deepcopy(data)))


def describe_difference(a, b, oracle: str) -> str:
    """Which tally entries of the kernel (``a``) and ``oracle`` (``b``) differ, for a message."""
    lines = []
    for name, x, y, cols in (
        ("cells", a.cells, b.cells, CELL_COLUMNS),
        ("alliances", a.alliances, b.alliances, ALLIANCE_COLUMNS),
    ):
        for r, col in zip(*np.nonzero(x != y), strict=True):
            lines.append(f"{name}[{r}, {cols[col]}]: kernel {x[r, col]} {oracle} {y[r, col]}")
    for name, x, y in (("cell_hist", a.cell_hist, b.cell_hist),
                       ("alliance_hist", a.alliance_hist, b.alliance_hist)):
        diff = np.argwhere(x != y)
        if len(diff):
            lines.append(f"{name}: {len(diff)} bins differ, first {diff[:5].tolist()}")
    return "\n".join(lines[:40])


# ---- scenario builder ----------------------------------------------------------------------
def make_scenario(
    states: dict[str, dict] | None = None,
    alliances: list[dict] | None = None,
    aggressors: list[dict] | None = None,
    attack_types: dict[str, dict] | None = None,
    exposure: dict | None = None,
    *,
    name: str,
    **settings,
) -> dict:
    """A scenario dict: ``states`` maps id → fields (capability, commitment, …).

    The defaults: three members (BIG, MID, SMALL) of one defense alliance ``ALLY`` and an
    aggressor RUS targeting SMALL with a conventional attack; every knob neutral.
    """
    if states is None:
        states = {
            "BIG": {"capability": 0.2, "commitment": 0.6},
            "MID": {"capability": 0.03, "commitment": 0.5},
            "SMALL": {"capability": 0.002, "commitment": 0.9},
            "RUS": {"capability": 0.06, "commitment": 0.0},
        }
    if alliances is None:
        alliances = [{"id": "ALLY", "members": ["BIG", "MID", "SMALL"]}]
    if aggressors is None:
        aggressors = [{"state": "RUS", "targets": {"SMALL": 1.0},
                       "attack_mix": {"conventional": 1.0}}]
    if attack_types is None:
        attack_types = {"conventional": {}}
    data = {
        "scenario": {"name": name, "misperception": 0.8, "outcome_noise": 0.5,
                     "mobilization_days": 10.0, **settings},
        "states": [{"id": sid, **fields} for sid, fields in states.items()],
        "alliances": alliances,
        "aggressors": aggressors,
        "attack_types": attack_types,
    }
    if exposure is not None:
        data["exposure"] = exposure
    return data


# ---- scenarios -----------------------------------------------------------------------------
def all_knobs(*, name: str, member_aggressor: bool = False) -> dict:
    """Every mechanism non-neutral at once; ``member_aggressor`` adds TUR, a NATO attacker."""
    states = {
        "USA": {"capability": 0.15, "commitment": 0.7, "stability": 0.9, "free_riding": 0.3},
        "DEU": {"capability": 0.03, "commitment": 0.5, "stability": 0.7, "free_riding": 0.6},
        "POL": {"capability": 0.01, "commitment": 0.8, "stability": 0.95},
        "HUN": {"capability": 0.004, "commitment": 0.4, "stability": 0.5, "free_riding": 0.8},
        "EST": {"capability": 0.0004, "commitment": 0.9, "stability": 0.8},
    }
    nato = ["USA", "DEU", "POL", "HUN", "EST"]
    if member_aggressor:  # TUR goes before RUS and BLR: the state order fixes the cell order
        states["TUR"] = {"capability": 0.04, "commitment": 0.5, "stability": 0.6,
                         "free_riding": 0.2}
        nato.append("TUR")
    states["RUS"] = {"capability": 0.06, "commitment": 0.0}
    states["BLR"] = {"capability": 0.002, "commitment": 0.0}
    alliances = [
        {"id": "NATO", "members": nato, "decision_rule": "majority", "round_days": 2.0,
         "max_rounds": 6, "integration": 0.6, "bindingness": 0.8, "intel_sharing": 0.4},
        {"id": "JEF", "members": ["DEU", "POL", "EST", "HUN"], "decision_rule": "qualified",
         "quota": 0.7, "round_days": 0.5, "max_rounds": 4, "integration": 0.3,
         "bindingness": 0.6, "intel_sharing": 0.9},
        # a consultation pact: HUN and DEU "share an alliance" with the aggressor RUS
        {"id": "TALKS", "members": ["HUN", "RUS", "DEU"], "obligation": "consultation"},
    ]
    aggressors = [
        {"state": "RUS", "weight": 3.0, "resolve": 1.5,
         "targets": {"EST": 2.0, "POL": 1.0, "HUN": 0.5},
         "attack_mix": {"conventional": 1.0, "hybrid": 2.0, "cyber": 1.0}},
        {"state": "BLR", "weight": 1.0, "resolve": 4.0, "targets": {"POL": 1.0, "EST": 1.0},
         "attack_mix": {"hybrid": 1.0}},
    ]
    if member_aggressor:
        # an aggressor inside the targets' alliance: every NATO member shares it
        aggressors.append({"state": "TUR", "weight": 1.0, "resolve": 2.0,
                           "targets": {"HUN": 1.0, "EST": 1.0},
                           "attack_mix": {"conventional": 1.0, "cyber": 1.0}})
    attack_types = {
        "conventional": {"severity": 1.0, "attribution_days": 0.0},
        "hybrid": {"severity": 0.6, "attribution_days": 9.0, "ambiguity": 0.3},
        "cyber": {"severity": 0.3, "attribution_days": 25.0, "ambiguity": 0.5},
    }
    exposure = {"default": 0.5, "USA.EST": 0.1, "DEU.EST": 0.4, "POL.EST": 1.5, "HUN.POL": 0.9,
                "POL.HUN": 0.2}
    return make_scenario(
        states, alliances, aggressors, attack_types, exposure, name=name,
        mobilization_days=30.0, window_days=40.0, interoperability_bonus=0.5,
        defection_threshold=0.3, conflict_penalty=0.4, threat_weight=0.7,
    )


def edge_cases(*, name: str) -> dict:
    """Degenerate alliances, extreme knobs: p = 0 and 1, zero round length, overflowing delays."""
    states = {
        "T": {"capability": 0.001, "commitment": 1.0},
        "U": {"capability": 0.002, "commitment": 1.0, "stability": 0.0},
        "V": {"capability": 0.05, "commitment": 0.5},
        "W": {"capability": 0.02, "commitment": 0.6, "free_riding": 1.0},
        "X": {"capability": 0.1, "commitment": 0.3},
        "Y": {"capability": 0.04, "commitment": 0.3},
    }
    alliances = [
        {"id": "DUO", "members": ["T", "X"], "round_days": 0.0},  # M = {T} when X attacks
        {"id": "COUNCIL", "members": ["T", "V", "W", "X", "Y"], "decision_rule": "veto",
         "quota": 0.5, "veto_holders": ["X", "V"], "max_rounds": 2, "round_days": 3.0},
        {"id": "PAPER", "members": ["T", "U", "V"], "bindingness": 0.0, "max_rounds": 127},
        {"id": "SURE", "members": ["U", "W", "T"], "decision_rule": "majority", "max_rounds": 1,
         "round_days": 7.0, "integration": 1.0},
    ]
    aggressors = [
        {"state": "X", "weight": 2.0, "targets": {"T": 1.0, "U": 1.0},
         "attack_mix": {"slow": 1.0, "glacial": 1.0, "fast": 1.0}},
        {"state": "Y", "targets": {"T": 1.0, "W": 0.5}, "attack_mix": {"fast": 1.0}},
    ]
    attack_types = {"fast": {}, "slow": {"attribution_days": 400.0, "ambiguity": 1.0},
                    "glacial": {"attribution_days": 30_000.0, "severity": 2.0}}
    return make_scenario(states, alliances, aggressors, attack_types,
                         {"default": 0.0, "W.T": 3.0}, name=name, threat_weight=1.0,
                         window_days=math.inf, interoperability_bonus=2.0,
                         defection_threshold=0.0, misperception=2.0)
