"""Scenario-wide parameters that calibration, sensitivity and posterior runs vary: scales of
every commitment, resolve or bindingness, the misperception, or any parameter path."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from ..errors import ConfigError, UserError
from .config import Scenario, scenario_from_dict
from .paths import set_value

PARAMETERS = ("commitment_scale", "resolve_scale", "bindingness_scale", "misperception")
# the knobs (last key of a parameter path) whose values lie in [0, 1]
UNIT_KNOBS = frozenset({"commitment", "stability", "free_riding", "integration", "bindingness",
                        "intel_sharing", "ambiguity", "defection_threshold", "conflict_penalty",
                        "threat_weight", "quota"})


def apply_values(scenario: Scenario, values: Mapping[str, float]) -> Scenario:
    """A copy of the scenario with every parameter of ``values`` applied, in order:
    ``commitment_scale`` (every commitment × θ, capped at 1), ``resolve_scale`` (every
    aggressor's resolve × θ), ``bindingness_scale[:<obligation>]`` (× θ, capped at 1),
    ``misperception`` (set) or a sweep path (``states.EST.commitment``: set)."""
    data = copy.deepcopy(scenario.to_toml_dict())
    for name, value in values.items():
        base, _, kind = name.partition(":")
        if base == "commitment_scale" and not kind:
            for st in data["states"]:
                st["commitment"] = min(1.0, st["commitment"] * value)
        elif base == "resolve_scale" and not kind:
            for ag in data["aggressors"]:
                ag["resolve"] = ag["resolve"] * value
        elif base == "bindingness_scale":
            for al in data["alliances"]:
                if not kind or al["obligation"] == kind:
                    al["bindingness"] = min(1.0, al["bindingness"] * value)
        elif name == "misperception":
            data["scenario"]["misperception"] = value
        elif "." in name:
            set_value(data, name, value, option="--fit")
        else:
            raise UserError(f"--fit {name}: unknown parameter; choose from "
                            f"{', '.join(PARAMETERS)} (bindingness_scale:<obligation> too) or a "
                            f"parameter path such as states.EST.commitment")
    try:
        return scenario_from_dict(data, "<calibrated>")
    except ConfigError as err:
        raise UserError(str(err)) from None
