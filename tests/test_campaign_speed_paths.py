"""The campaign kernel's fast paths (``kernels.campaign``) against the plain-Python oracle, draw
for draw: one covering alliance walked directly (deterrence, delivery, the consultation's and
the exit's reputation sums), the end-of-period sums of a lone alliance whose roster is every
roster state, a static willingness equal to ``base`` at ``threat_weight = 0``, and the branch-free
consultation rounds — on the flagship campaign (34 states, one 32-member alliance) and variants
that switch each path on or off."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest

from engine.core.simulate import deterrence_tables, simulate_campaign
from engine.oracles.campaign_loop import simulate_campaign_python
from kernels.layout import AP_EXITS, AP_JOINS, C_INVOKED, P_DISSOLVED
from tests.oracle_scenarios import compiled
from tests.test_campaign_kernel import _same

FLAGSHIP = Path(__file__).resolve().parent.parent / "configs" / "nato-hybrid-campaign-2024.toml"


def _flagship(**changes) -> dict:
    """The flagship scenario with ``section__key = value`` changes (``nato__`` for its alliance);
    six periods unless changed, to keep the oracle quick."""
    data = copy.deepcopy(tomllib.loads(FLAGSHIP.read_text()))
    data["campaign"]["steps"] = 6
    for name, value in changes.items():
        section, key = name.split("__")
        if section == "nato":
            data["alliances"][0][key] = value
        else:
            data.setdefault(section, {})[key] = value
    return data


def _with_candidate(data: dict) -> dict:
    """A candidate state that accedes under threat: the lone roster keeps an inactive slot."""
    data = copy.deepcopy(data)
    data["states"].append({"id": "SWE", "capability": 0.006, "commitment": 0.7,
                           "stability": 0.9, "free_riding": 0.1})
    data["alliances"][0]["candidates"] = ["SWE"]
    return data


CASES = {
    # expected response, exits and dissolution, free riding, unanimity: the benchmark's paths
    "flagship": lambda: _flagship(campaign__crisis_rate=0.9, campaign__steps=12,
                                  campaign__reputation_learning=0.35,
                                  campaign__exit_threshold=0.45),
    "flagship_capability": lambda: _flagship(scenario__deterrence="capability",
                                             campaign__exit_threshold=0.4),
    # threat_weight > 0: θ read, moving with intel sharing, a candidate joining
    "flagship_moving": lambda: _with_candidate(_flagship(
        scenario__threat_weight=0.6, nato__intel_sharing=0.5, exposure__default=0.4,
        campaign__threat_shock=0.5, campaign__join_threshold=0.3)),
    "flagship_static_theta": lambda: _flagship(scenario__threat_weight=0.4,
                                               exposure__default=0.3),
    "flagship_veto": lambda: _flagship(nato__decision_rule="veto",
                                       nato__veto_holders=["USA", "FRN", "TUR"],
                                       campaign__exit_threshold=0.0),
    "flagship_majority": lambda: _flagship(nato__decision_rule="majority",
                                           scenario__interoperability_bonus=0.3,
                                           scenario__defection_threshold=0.2),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fast_paths_agree_with_the_oracle_draw_for_draw(case):
    c = compiled(CASES[case]())
    tables = deterrence_tables(c, 23)
    kernel = simulate_campaign(c, 23, 40, 160, deterrence=tables, block_size=16)
    oracle = simulate_campaign_python(c, 23, 40, 160, deterrence=tables)
    _same(kernel, oracle)


def test_the_paths_fire_in_the_compared_runs():
    """Exits, dissolutions, joins and invoked consultations happen in those runs."""
    got = {name: simulate_campaign(compiled(CASES[name]()), 23, 40, 160)
           for name in ("flagship", "flagship_moving", "flagship_majority")}
    assert got["flagship"].alliance_periods[:, :, AP_EXITS].sum() > 0
    assert got["flagship"].periods[:, P_DISSOLVED].sum() > 0
    assert got["flagship_moving"].alliance_periods[:, :, AP_JOINS].sum() > 0
    assert got["flagship_majority"].cells[:, C_INVOKED].sum() > 0
