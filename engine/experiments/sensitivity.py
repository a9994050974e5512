"""``crisis sensitivity``: rank the knobs by how much they move the headline measures.

One-at-a-time, with common random numbers: every knob is moved down and up by a tenth of its
natural range (unit-interval knobs ±0.1, clipped to [0, 1]; positive knobs ×0.9 and ×1.1;
``commitment_scale`` ×0.9/×1.1 on every commitment), the scenario is rerun on the same trials,
and the *swing* of each measure — value(up) − value(down) — is reported with the elasticity
(relative change of the measure per relative change of the knob, where both are non-zero).
Knobs are ranked by the largest |swing| across measures, each measure scaled by its own spread.
A variance-based (Sobol) analysis is not implemented: one-at-a-time swings cost 2 runs per knob.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from ..model.config import Scenario
from .calibrate import apply_parameter
from .overall import overall_summary
from .sweep import check_runnable, variant

MEASURES = ("deterrence_success_rate", "delay_mean_days", "breakdown_rate")
UNIT = {"commitment", "stability", "free_riding", "integration", "bindingness", "intel_sharing",
        "ambiguity", "defection_threshold", "conflict_penalty", "threat_weight"}
SCENARIO_KNOBS = ("misperception", "outcome_noise", "mobilization_days", "window_days",
                  "interoperability_bonus", "defection_threshold", "conflict_penalty",
                  "threat_weight")
ALLIANCE_KNOBS = ("integration", "bindingness", "round_days", "intel_sharing")
ATTACK_KNOBS = ("severity", "attribution_days", "ambiguity")


def knobs(scenario: Scenario) -> list[tuple[str, float]]:
    """(path, current value) of every continuous knob of the scenario."""
    out = [("commitment_scale", 1.0)]
    data = scenario.to_toml_dict()
    for key in SCENARIO_KNOBS:
        value = data["scenario"][key]
        if value != float("inf"):
            out.append((f"scenario.{key}", float(value)))
    for al in data["alliances"]:
        if al["obligation"] in ("defense", "collective_security"):  # the ones that consult
            out += [(f"alliances.{al['id']}.{k}", float(al[k])) for k in ALLIANCE_KNOBS]
    for name, spec in data["attack_types"].items():
        out += [(f"attack_types.{name}.{k}", float(spec[k])) for k in ATTACK_KNOBS]
    for ag in data["aggressors"]:
        out.append((f"aggressors.{ag['state']}.resolve", float(ag["resolve"])))
    return out


def _moves(path: str, value: float) -> tuple[float, float]:
    key = path.rsplit(".", 1)[-1]
    if key in UNIT:
        return max(0.0, value - 0.1), min(1.0, value + 0.1)
    if value == 0.0:  # a positive knob at its neutral 0 (days, bonus): move up only
        return 0.0, 1.0
    return value * 0.9, value * 1.1


def _perturbed(scenario: Scenario, path: str, value: float) -> Scenario:
    if path == "commitment_scale":
        return apply_parameter(scenario, "commitment_scale", value)
    return variant(scenario, {path: value})


def sensitivity(scenario: Scenario, *, seed: int, trials: int, measures=MEASURES,
                progress: Callable[[int], None] | None = None):
    """A polars table: knob, low, high, and per measure its swing and elasticity; ranked."""
    import polars as pl

    def overall(s: Scenario) -> dict:
        return overall_summary(s, seed=seed, trials=trials)

    check_runnable(scenario, trials=trials)
    base = overall(scenario)
    for m in measures:
        if m not in base:
            raise UserError(f"--measure {m}: unknown measure")
    rows = []
    for path, value in knobs(scenario):
        lo, hi = _moves(path, value)
        if lo == hi:
            continue
        try:
            moved = _perturbed(scenario, path, lo), _perturbed(scenario, path, hi)
            for variant_scenario in moved:  # e.g. delays long enough to overflow the sums
                check_runnable(variant_scenario, trials=trials)
            down, up = overall(moved[0]), overall(moved[1])
        except UserError:
            continue  # a move outside the knob's valid range (e.g. window_days)
        row = {"knob": path, "value": value, "low": lo, "high": hi}
        for m in measures:
            a, b, c = down[m], up[m], base[m]
            swing = None if a is None or b is None else b - a
            row[f"{m}_swing"] = swing
            elasticity = None
            if swing is not None and c and value:
                elasticity = (swing / c) / ((hi - lo) / value)
            row[f"{m}_elasticity"] = elasticity
        rows.append(row)
        if progress is not None:
            progress(1)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    # rank: the largest swing across measures, each measure scaled by its largest swing
    scores = []
    for m in measures:
        col = frame[f"{m}_swing"].abs().fill_null(0.0)
        top = col.max() or 1.0
        scores.append(col / top)
    frame = frame.with_columns(pl.max_horizontal(scores).alias("rank_score"))
    return frame.sort("rank_score", descending=True), base
