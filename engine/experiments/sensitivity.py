"""``crisis sensitivity``: rank the knobs by how much they move the headline measures.

Two methods, both with common random numbers (every evaluation runs the same seed and trials):

* ``oat`` (the default), one-at-a-time: every knob is moved down and up by a tenth of its
  natural range (unit-interval knobs ±0.1, clipped to [0, 1]; positive knobs ×0.9 and ×1.1;
  ``commitment_scale`` ×0.9/×1.1 on every commitment), the scenario is rerun on the same trials,
  and the *swing* of each measure — value(up) − value(down) — is reported with the elasticity
  (relative change of the measure per relative change of the knob, where both are non-zero).
  Knobs are ranked by the largest |swing| across measures, each measure scaled by its own
  spread.  Cost: 2 runs per knob, plus the baseline.
* ``sobol``, variance-based: every knob varies at once, uniformly over the same [down, up] range,
  on SALib's Saltelli/Sobol' design (``SALib.sample.sobol``, N base samples, no second-order
  terms) and ``SALib.analyze.sobol`` gives each measure's first-order index S1 (the share of its
  variance a knob explains alone) and total index ST (alone and through interactions), with
  bootstrap confidence intervals.  Cost: N·(k + 2) runs for k knobs.  A knob with ST ≈ 0 can be
  fixed anywhere in its range; ST − S1 is what it does through interactions.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from ..model.config import Scenario
from ..model.parameters import UNIT_KNOBS
from .calibrate import apply_parameter
from .overall import overall_summary
from .sweep import check_runnable, variant

MEASURES = ("deterrence_success_rate", "delay_mean_days", "breakdown_rate")
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
    if key in UNIT_KNOBS:
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


# ---- variance-based (Sobol') -----------------------------------------------------------------
SOBOL_SAMPLES = 256  # default N: base samples of the Saltelli design
SOBOL_MAX_SAMPLES = 1 << 20  # the design holds N·(k + 2) points of k floats in memory
SOBOL_RESAMPLES = 100  # bootstrap resamples behind each confidence interval
SOBOL_CONF_LEVEL = 0.95
SOBOL_COLUMNS = ("knob", "measure", "S1", "S1_conf", "ST", "ST_conf", "low", "high")


def sobol_evaluations(samples: int, knob_count: int) -> int:
    """Engine evaluations of a Saltelli design without second-order terms: N·(k + 2)."""
    return samples * (knob_count + 2)


def check_samples(samples: int) -> None:
    # scrambled Sobol' points keep their balance (and SALib its convergence) only at N = 2^m
    if samples < 4 or samples > SOBOL_MAX_SAMPLES or samples & (samples - 1):
        raise UserError(f"--samples {samples}: must be a power of 2 from 4 to "
                        f"{SOBOL_MAX_SAMPLES:,} (e.g. 64, 128, {SOBOL_SAMPLES})")


def _salib_seeds(seed: int) -> tuple[int, int]:
    """Seeds of the design's scrambling and of the bootstrap, derived from (seed, purpose).
    Both are non-zero: SALib's analyze falls back to NumPy's global generator for a seed of 0."""
    import numpy as np

    streams = np.random.SeedSequence([seed, 0x5AB01]).spawn(2)
    return tuple(int(s.generate_state(1, np.uint64)[0] >> 1) | 1 for s in streams)


def sobol_indices(bounds: list[tuple[str, float, float]],
                  evaluate: Callable[[dict[str, float]], dict], *, samples: int, seed: int,
                  measures=MEASURES, progress: Callable[[int], None] | None = None):
    """First-order and total Sobol' indices of ``evaluate`` over independent uniform inputs.

    ``bounds`` lists (name, low, high) with low < high; ``evaluate`` maps {name: value} to a dict
    holding a number (or None, undefined) per measure.  The design is SALib's scrambled Sobol'
    sequence (seeded: the same seed gives the same points and intervals), N = ``samples`` base
    samples, N·(k + 2) evaluations, no second-order terms.  Returns a polars table (the columns
    of :data:`SOBOL_COLUMNS`, ranked by ST) and a dict: ``evaluations``, ``constant`` (measures
    that never vary: indices undefined) and ``undefined`` (measures undefined at some sample).
    """
    import warnings

    import numpy as np
    import polars as pl
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    check_samples(samples)
    names = [name for name, _, _ in bounds]
    problem = {"num_vars": len(bounds), "names": names,
               "bounds": [[low, high] for _, low, high in bounds]}
    sample_seed, bootstrap_seed = _salib_seeds(seed)
    design = sobol_sample.sample(problem, samples, calc_second_order=False, seed=sample_seed)
    outputs = {m: np.empty(len(design)) for m in measures}
    undefined = set()
    for i, point in enumerate(design):
        row = evaluate(dict(zip(names, (float(x) for x in point), strict=True)))
        for m in measures:
            if m not in row:
                raise UserError(f"--measure {m}: unknown measure")
            if row[m] is None:
                undefined.add(m)
                outputs[m][i] = np.nan
            else:
                outputs[m][i] = row[m]
        if progress is not None:
            progress(1)
    rows, constant = [], []
    for m in measures:
        y = outputs[m]
        indices = None
        if m in undefined:
            pass
        elif np.ptp(y) == 0.0:  # SALib would divide by a zero standard deviation
            constant.append(m)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                indices = sobol_analyze.analyze(problem, y, calc_second_order=False,
                                                num_resamples=SOBOL_RESAMPLES,
                                                conf_level=SOBOL_CONF_LEVEL, seed=bootstrap_seed)
        for j, (name, low, high) in enumerate(bounds):
            values = {key: None if indices is None else float(indices[key][j])
                      for key in ("S1", "S1_conf", "ST", "ST_conf")}
            rows.append({"knob": name, "measure": m, **values, "low": low, "high": high})
    schema = {"knob": pl.String, "measure": pl.String, "S1": pl.Float64, "S1_conf": pl.Float64,
              "ST": pl.Float64, "ST_conf": pl.Float64, "low": pl.Float64, "high": pl.Float64}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    frame = frame.sort(["ST", "knob", "measure"], descending=[True, False, False],
                       nulls_last=True)
    info = {"evaluations": len(design), "constant": constant,
            "undefined": [m for m in measures if m in undefined]}
    return frame, info


def _sobol_knobs(scenario: Scenario, paths, *, trials: int) -> tuple[list, list[str]]:
    """(path, low, high) of the knobs to vary — ``paths`` or every knob — and the knobs left out
    because a move leaves their valid range (as the one-at-a-time method leaves them out)."""
    current = dict(knobs(scenario))
    if paths:
        unknown = [p for p in paths if p not in current]
        if unknown:
            raise UserError(f"--knob {unknown[0]}: not a knob of this scenario; choose from "
                            f"{', '.join(current)}")
        chosen = list(dict.fromkeys(paths))
    else:
        chosen = list(current)
    bounds, skipped = [], []
    for path in chosen:
        low, high = _moves(path, current[path])
        try:
            if low == high:
                raise UserError(f"its range is empty ({low} … {high})")
            for value in (low, high):
                check_runnable(_perturbed(scenario, path, value), trials=trials)
        except UserError as err:
            if paths:
                raise UserError(f"--knob {path}: {err}") from None
            skipped.append(path)
            continue
        bounds.append((path, low, high))
    return bounds, skipped


def sobol_sensitivity(scenario: Scenario, *, seed: int, trials: int,
                      samples: int = SOBOL_SAMPLES, knob_paths=None, measures=MEASURES,
                      progress: Callable[[int], None] | None = None,
                      progress_total: Callable[[int], None] | None = None):
    """Variance-based sensitivity of the scenario's measures to its knobs (``knob_paths``, or all
    of :func:`knobs`), each uniform over its one-at-a-time range [down, up] (:func:`_moves`).

    Every evaluation runs trials ``[0, trials)`` with ``seed`` (common random numbers), so the
    indices measure the knobs, not the Monte Carlo noise between runs.  Returns the table of
    :func:`sobol_indices` and its dict, with ``samples``, ``knobs`` and ``skipped`` added.
    ``progress_total`` hears the number of evaluations before the first; ``progress`` hears
    each one.
    """
    check_samples(samples)
    check_runnable(scenario, trials=trials)
    bounds, skipped = _sobol_knobs(scenario, knob_paths, trials=trials)
    if not bounds:
        raise UserError("no knob of this scenario can move; nothing to analyse")

    def evaluate(values: dict[str, float]) -> dict:
        varied = scenario
        if "commitment_scale" in values:
            varied = apply_parameter(varied, "commitment_scale", values["commitment_scale"])
        paths = {p: v for p, v in values.items() if p != "commitment_scale"}
        if paths:
            varied = variant(varied, paths)
        try:
            check_runnable(varied, trials=trials)  # e.g. delays long enough to overflow the sums
        except UserError as err:
            raise UserError(f"Sobol' sample {values}: {err}") from None
        return overall_summary(varied, seed=seed, trials=trials)

    if progress_total is not None:
        progress_total(sobol_evaluations(samples, len(bounds)))
    frame, info = sobol_indices(bounds, evaluate, samples=samples, seed=seed, measures=measures,
                                progress=progress)
    info.update(samples=samples, knobs=len(bounds), skipped=skipped)
    return frame, info


def format_sobol(frame, info: dict, *, top: int, trials: int) -> str:
    """The terminal report of :func:`sobol_sensitivity`: the ``top`` rows by ST, each index with
    its confidence half-width, then what was run and what could not be estimated."""
    import polars as pl

    def with_conf(rows: pl.DataFrame, index: str) -> list[str]:
        return ["—" if value is None else f"{value:.3f} ± {conf:.3f}"
                for value, conf in zip(rows[index], rows[f"{index}_conf"], strict=True)]

    level = f"{SOBOL_CONF_LEVEL:.0%}"
    rows = frame.head(top)
    shown = rows.select("knob", "low", "high", "measure").with_columns(
        pl.Series(f"S1 ± {level}", with_conf(rows, "S1"), dtype=pl.String),
        pl.Series(f"ST ± {level}", with_conf(rows, "ST"), dtype=pl.String))
    with pl.Config(tbl_rows=top, tbl_cols=-1, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, tbl_width_chars=170, float_precision=4,
                   fmt_str_lengths=60):
        lines = [str(shown)]
    n, k = info["samples"], info["knobs"]
    lines.append(f"Sobol' indices (SALib; Saltelli design, N = {n} base samples, k = {k} knobs, "
                 f"each uniform on [low, high]): {info['evaluations']:,} engine evaluations "
                 f"= N·(k+2), {trials:,} trials each, common random numbers; ranked by ST "
                 f"(total), ± the {level} bootstrap interval")
    if info["skipped"]:
        lines.append(f"left out (a move leaves the valid range): {', '.join(info['skipped'])}")
    if info["constant"]:
        lines.append(f"no variance (indices undefined, shown —): {', '.join(info['constant'])}")
    if info["undefined"]:
        lines.append(f"undefined at some sample (indices undefined, shown —): "
                     f"{', '.join(info['undefined'])}")
    return "\n".join(lines)
