"""Scenarios and helpers shared by the oracle tests (test_python_loop.py, test_reference.py,
test_oracles_v2.py).

test_python_loop.py and test_reference.py run an oracle (the plain-Python loop or the NumPy
reference) and the Numba kernel on the same hand-built worlds and compare them draw for draw;
test_oracles_v2.py compares the two oracles with each other.  The worlds are defined here once.
Every builder takes the scenario ``name`` so that each file keeps its own; :data:`V2_SCENARIOS`
lists the worlds of the model v2 core (design §8) that every oracle test runs.
"""

from __future__ import annotations

import copy
import math

import numpy as np

from engine.model.compile import compile_scenario
from engine.model.config import scenario_from_dict
from kernels.layout import ALLIANCE_COLUMNS, CELL_COLUMNS, MEMBER_COLUMNS


# ---- helpers -------------------------------------------------------------------------------
def compiled(data: dict):
    """Compile a scenario dict (a deep copy, so the caller's dict is left as it was)."""
    return compile_scenario(scenario_from_dict(copy.deepcopy(data)))


def describe_difference(a, b, oracle: str, first: str = "kernel") -> str:
    """Which tally entries of ``first`` (``a``, the kernel by default) and ``oracle`` (``b``)
    differ, for a message."""
    lines = []
    for name, x, y, cols in (
        ("cells", a.cells, b.cells, CELL_COLUMNS),
        ("alliances", a.alliances, b.alliances, ALLIANCE_COLUMNS),
        ("members", a.members, b.members, MEMBER_COLUMNS),
    ):
        for r, col in zip(*np.nonzero(x != y), strict=True):
            lines.append(f"{name}[{r}, {cols[col]}]: {first} {x[r, col]} {oracle} {y[r, col]}")
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
    """Degenerate alliances, extreme knobs: p = 0 and 1, zero round length, overflowing delays,
    an alliance with nobody to consult, an aggressor holding a veto in a collective-security
    council it belongs to."""
    states = {
        "T": {"capability": 0.001, "commitment": 1.0},
        "U": {"capability": 0.002, "commitment": 1.0, "stability": 0.0},
        "V": {"capability": 0.05, "commitment": 0.5},
        "W": {"capability": 0.02, "commitment": 0.6, "free_riding": 1.0},
        "X": {"capability": 0.1, "commitment": 0.3},
        "Y": {"capability": 0.04, "commitment": 0.3},
    }
    alliances = [
        # X attacking T: nobody but the target to consult, not invoked; Y attacking T: M = {T, X}
        {"id": "DUO", "members": ["T", "X"], "round_days": 0.0},
        # covers its members against its members (design §8): X and Y attack from inside,
        # X holding a veto it never casts (the aggressor does not consult)
        {"id": "COUNCIL", "members": ["T", "V", "W", "X", "Y"], "decision_rule": "veto",
         "quota": 0.5, "veto_holders": ["X", "V"], "max_rounds": 2, "round_days": 3.0,
         "obligation": "collective_security"},
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
                         {"default": 0.0, "W.T": 3.0, "X.T": 1.0}, name=name, threat_weight=1.0,
                         window_days=math.inf, interoperability_bonus=2.0,
                         defection_threshold=0.0, misperception=2.0)


def thresholds(*, name: str) -> dict:
    """all_knobs (with an aggressor inside NATO) without free riding, so every consultation runs
    by thresholds (the kernel's one pass per member): majority and qualified rules, a veto rule
    with a veto-holding target, unanimity, θ moving with intel sharing, several covering
    alliances, stability < 1 and the pact shared with the aggressor."""
    data = all_knobs(name=name, member_aggressor=True)
    for state in data["states"]:
        state.pop("free_riding", None)
    data["alliances"][1].update(decision_rule="veto", quota=0.5, veto_holders=["EST", "DEU"])
    data["alliances"].append({"id": "CORE", "members": ["USA", "POL", "EST", "HUN"],
                              "round_days": 1.0, "max_rounds": 9, "intel_sharing": 0.5})
    return data


# ---- model v2 core (design §8) -------------------------------------------------------------
PILOT_SAMPLES = 1024  # the smallest pilot: keeps the plain-Python oracle fast


def expected_response(data: dict, pilot_samples: int = PILOT_SAMPLES) -> dict:
    """A copy of scenario ``data`` with anticipatory deterrence (``expected_response``)."""
    data = copy.deepcopy(data)
    data["scenario"].update(deterrence="expected_response", pilot_samples=pilot_samples)
    return data


def coverage(*, name: str) -> dict:
    """Who covers whom (design §8), every knob else mostly neutral.

    * LEAGUE, collective security: covers its members against anyone, members included (X
      attacks T and C from inside; X never consults);
    * PACT, defense: covers T and U against Z, not against its own member X;
    * DUO, collective security {T, X}: nobody to consult when X attacks T (not invoked); with Z
      attacking T, X is an ally;
    * GUARANTEE, defense with ``protected = [U]``: covers U only, against X and Z;
    * Z attacking T: LEAGUE, PACT and DUO overlap; Z attacking U: PACT and GUARANTEE; LONE is in
      no alliance.
    """
    states = {
        "A": {"capability": 0.1, "commitment": 0.6, "stability": 0.8},
        "B": {"capability": 0.05, "commitment": 0.5, "free_riding": 0.4},
        "C": {"capability": 0.02, "commitment": 0.7, "stability": 0.6},
        "T": {"capability": 0.002, "commitment": 1.0},
        "U": {"capability": 0.004, "commitment": 0.8},
        "LONE": {"capability": 0.01, "commitment": 0.5},
        "X": {"capability": 0.08, "commitment": 0.4, "stability": 0.7},
        "Z": {"capability": 0.07, "commitment": 0.0},
    }
    alliances = [
        {"id": "LEAGUE", "members": ["A", "B", "C", "T", "X"], "obligation": "collective_security",
         "decision_rule": "majority", "max_rounds": 4, "round_days": 2.0, "integration": 0.2},
        {"id": "PACT", "members": ["B", "T", "U", "X"], "max_rounds": 5, "round_days": 1.0,
         "integration": 0.5},
        {"id": "DUO", "members": ["T", "X"], "obligation": "collective_security",
         "round_days": 0.5},
        {"id": "GUARANTEE", "members": ["A", "U", "C"], "protected": ["U"], "max_rounds": 3,
         "round_days": 4.0, "bindingness": 0.7},
    ]
    aggressors = [
        {"state": "X", "weight": 2.0, "resolve": 1.5, "targets": {"T": 1.0, "U": 1.0, "C": 0.5},
         "attack_mix": {"conv": 1.0, "hybrid": 1.0}},
        {"state": "Z", "resolve": 2.0, "targets": {"T": 2.0, "U": 1.0, "A": 0.5, "LONE": 0.5},
         "attack_mix": {"conv": 2.0, "hybrid": 1.0}},
    ]
    attack_types = {"conv": {}, "hybrid": {"severity": 0.7, "attribution_days": 5.0,
                                          "ambiguity": 0.2}}
    return make_scenario(states, alliances, aggressors, attack_types, name=name,
                         misperception=0.6, window_days=60.0, interoperability_bonus=0.3,
                         conflict_penalty=0.2)


def exact_cases(*, name: str) -> dict:
    """Anticipatory deterrence with E_cell in each of its three cases (design §8):

    * exact, no covering alliance: LONE;
    * exact, one fixed-chance unanimity alliance: T in ONE (non-neutral θ through threat_weight
      and exposure with intel sharing 0; the target itself free-rides, which does not matter;
      a conflict penalty, integration, a bonus, stability < 1, attribution, a finite window),
      T6 in LONG (90 rounds);
    * pilot: T2 in RIDE (a free-riding ally) and T3 in MOVE (θ moves: intel sharing and threat
      weight), both with the conditional estimate of one unanimity alliance; T4 in MAJ
      (majority rule) and T5 in ONE and MAJ (two covering alliances), with the plain one.
    """
    states = {
        "P": {"capability": 0.05, "commitment": 0.4, "stability": 0.7},
        "Q": {"capability": 0.02, "commitment": 0.7, "stability": 0.9},
        "R": {"capability": 0.01, "commitment": 0.5, "free_riding": 0.5},
        "S": {"capability": 0.03, "commitment": 0.3},
        "T": {"capability": 0.003, "commitment": 1.0, "free_riding": 0.9},
        "T2": {"capability": 0.002, "commitment": 1.0},
        "T3": {"capability": 0.004, "commitment": 1.0},
        "T4": {"capability": 0.001, "commitment": 1.0},
        "T5": {"capability": 0.002, "commitment": 1.0},
        "LONE": {"capability": 0.01, "commitment": 0.5},
        "T6": {"capability": 0.003, "commitment": 1.0},
        "L1": {"capability": 0.04, "commitment": 0.05, "stability": 0.9},
        "L2": {"capability": 0.01, "commitment": 0.1},
        "X": {"capability": 0.06, "commitment": 0.0},
    }
    alliances = [
        {"id": "ONE", "members": ["P", "Q", "T", "T5"], "max_rounds": 6, "round_days": 3.0,
         "integration": 0.4, "bindingness": 0.9},
        {"id": "RIDE", "members": ["P", "R", "T2"], "max_rounds": 4, "round_days": 2.0},
        {"id": "MOVE", "members": ["Q", "S", "T3"], "max_rounds": 5, "round_days": 1.0,
         "intel_sharing": 0.5},
        {"id": "MAJ", "members": ["P", "S", "Q", "T4", "T5"], "decision_rule": "majority",
         "max_rounds": 3, "round_days": 2.5, "integration": 0.7},
        # P "shares an alliance" with X: its backing chance carries the conflict penalty
        {"id": "TALKS", "members": ["P", "X"], "obligation": "consultation"},
        # many rounds of small chances: (1 − p)^r up to r = 90
        {"id": "LONG", "members": ["L1", "L2", "T6"], "max_rounds": 90, "round_days": 0.25},
    ]
    aggressors = [
        {"state": "X", "resolve": 1.2,
         "targets": {"T": 2.0, "T2": 1.0, "T3": 1.0, "T4": 1.0, "T5": 1.0, "LONE": 1.0,
                     "T6": 1.0},
         "attack_mix": {"conv": 1.0, "slow": 1.0}},
    ]
    attack_types = {"conv": {}, "slow": {"severity": 0.8, "attribution_days": 6.0,
                                        "ambiguity": 0.3}}
    exposure = {"default": 0.4, "P.T": 1.0, "Q.T": 0.2, "S.T3": 0.9}
    return expected_response(make_scenario(
        states, alliances, aggressors, attack_types, exposure, name=name, misperception=0.7,
        mobilization_days=8.0, window_days=30.0, interoperability_bonus=0.5,
        conflict_penalty=0.3, threat_weight=0.6, defection_threshold=0.4))


# The model v2 worlds that every oracle test runs (kernel vs oracle, oracle vs oracle): name →
# builder(name=…) of a scenario dict.  Cell numbers of exact_cases: X's targets in order T, T2,
# T3, T4, T5, LONE, T6, each with the attack types conv, slow.
V2_SCENARIOS = {
    "coverage": coverage,
    "thresholds": thresholds,
    "thresholds_expected": lambda *, name: expected_response(thresholds(name=name)),
    "coverage_expected": lambda *, name: expected_response(coverage(name=name)),
    "exact_cases_expected": exact_cases,
    "all_knobs_expected": lambda *, name: expected_response(all_knobs(name=name,
                                                                      member_aggressor=True)),
    "edge_cases_expected": lambda *, name: expected_response(edge_cases(name=name)),
}
