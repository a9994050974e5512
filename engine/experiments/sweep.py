"""``crisis sweep``: a grid of scenario variants, run in one process with common random numbers.

A parameter path names one value of the scenario file: ``scenario.mobilization_days``,
``alliances.NATO.decision_rule``, ``states.EST.commitment``, ``aggressors.RUS.resolve``,
``attack_types.cyber.ambiguity``, ``exposure.default``.  Values are a comma list
(``unanimity,majority``) or a range ``FROM:TO:STEP`` (both ends included).  Membership is
edited with ``alliances.NATO.members-=SWD`` and ``alliances.NATO.members+=SWD`` (one point per
state; an empty item, ``members-=,SWD``, is the "as is" point; in a ``[grid]`` file
``"alliances.NATO.members-" = ["SWD", ["SWD", "FIN"]]`` removes one state, then two); their
points are labelled ``NATO −SWD`` / ``NATO +SWD`` (:mod:`engine.model.paths`).  Every grid
point is validated like a scenario file (an error names the point), then simulated with the
same seed and trial range, so differences between points are not noise: they are the effect of
the parameters on the very same random draws.  The compiled kernels are reused across points.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import ConfigError, UserError
from ..model.config import Scenario
from ..model.paths import membership_edit, value_label
from .overall import overall_summary


def parse_values(text: str, where: str) -> list:
    """``a,b,c`` or ``FROM:TO:STEP`` → a list of TOML-typed values."""
    if ":" in text and "," not in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise UserError(f"{where}: a range is FROM:TO:STEP, got {text!r}")
        try:
            lo, hi, step = (float(p) for p in parts)
        except ValueError:
            raise UserError(f"{where}: range bounds must be numbers, got {text!r}") from None
        if step <= 0 or hi < lo:
            raise UserError(f"{where}: need FROM ≤ TO and STEP > 0, got {text!r}")
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if n > 10_000:
            raise UserError(f"{where}: {n} values is too many for one parameter")
        return [round(lo + i * step, 12) for i in range(n)]
    return [_literal(v.strip()) for v in text.split(",") if v.strip()]


def _literal(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word: a string (an id or a rule name)


def parse_set(option: str) -> tuple[str, list]:
    path, eq, values = option.partition("=")
    if not eq or not path or not values:
        raise UserError(f"--set {option!r}: expected PATH=VALUES")
    parsed = _path_values(path.strip(), values, f"--set {path}")
    if not parsed:
        raise UserError(f"--set {option!r}: no values")
    return path.strip(), parsed


def _path_values(path: str, text: str, where: str) -> list:
    """The values of one path written as text: state ids, verbatim, for a membership edit
    (``SWD,FIN``; an empty item is the "as is" point), else :func:`parse_values`."""
    if membership_edit(path) is not None:
        items = [v.strip() for v in text.split(",")]
        return [] if not any(items) else items
    return parse_values(text, where)


def read_grid(path: Path) -> list[tuple[str, list]]:
    """``[grid]`` table of a TOML file: ``"PATH" = [values]``, ``"PATH" = "FROM:TO:STEP"`` or
    ``"PATH" = {from = 0, to = 1, step = 0.1}``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"{path}: cannot read the grid ({err})") from None
    grid = data.get("grid")
    if not isinstance(grid, dict) or not grid:
        raise UserError(f"{path}: needs a non-empty [grid] table")
    out = []
    for key, spec in _flatten(grid).items():
        where = f"{path}: grid.{key}"
        if isinstance(spec, list):
            values = spec
        elif isinstance(spec, str):
            values = _path_values(key, spec, where)
        elif isinstance(spec, dict) and set(spec) == {"from", "to", "step"}:
            values = parse_values(f"{spec['from']}:{spec['to']}:{spec['step']}", where)
        else:
            raise UserError(f"{where}: a list, \"FROM:TO:STEP\" or {{from, to, step}}")
        out.append((key, values))
    return out


def _flatten(table: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and not set(value) <= {"from", "to", "step"}:
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def grid_points(params: list[tuple[str, list]]) -> list[dict]:
    names = [p for p, _ in params]
    if len(set(names)) != len(names):
        raise UserError("a parameter is set twice")
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(values for _, values in params))]


def point_label(point: dict) -> str:
    """``alliances.NATO.decision_rule=majority, NATO −SWD``: how messages name a point."""
    return ", ".join(value_label(k, v) for k, v in point.items())


def variant(base: Scenario, point: dict) -> Scenario:
    try:
        return base.with_values(point, source=f"<sweep point {point_label(point)}>")
    except ConfigError as err:
        raise UserError(str(err)) from None


def check_runnable(scenario: Scenario, *, trials: int, block_size: int = 4096,
                   label: str = "") -> None:
    """Refuse, before anything runs, a scenario too large or a run too long for this process
    (the limits of ``crisis run``, :func:`engine.model.limits.check_request`); ``label`` names
    the variant in the message."""
    import numba

    from ..model.limits import check_request

    try:
        check_request(scenario, trials_in_process=trials, total_trials=trials,
                      threads=numba.get_num_threads(), save_trials=0, block_size=block_size)
    except UserError as err:
        raise UserError(f"{label}: {err}" if label else str(err)) from None


def run_sweep(base: Scenario, params: list[tuple[str, list]], *, seed: int, trials: int,
              block_size: int = 4096, progress: Callable[[int], None] | None = None,
              posterior=None):
    """Simulate every grid point with the same seed and trials; one row per point.  With
    ``posterior`` (a ``posterior.parquet`` path or :class:`~engine.runs.posterior.Posterior`)
    every point is a run over the posterior (:mod:`engine.runs.posterior`): its intervals hold
    parameter and Monte Carlo uncertainty together."""
    import polars as pl

    if posterior is not None:
        from ..runs.posterior import Posterior, read_posterior

        if not isinstance(posterior, Posterior):
            posterior = read_posterior(posterior)
        both = sorted(set(posterior.names) & {p for p, _ in params})
        if both:
            raise UserError(f"--set {both[0]}: also a parameter of the posterior "
                            f"{posterior.source}; sweep another path")
    points = grid_points(params)
    scenarios = [variant(base, p) for p in points]  # validate the whole grid first
    for point, scenario in zip(points, scenarios, strict=True):
        check_runnable(scenario, trials=trials, block_size=block_size,
                       label=f"sweep point {point_label(point)}")
    rows = []
    for point, scenario in zip(points, scenarios, strict=True):
        if posterior is None:
            overall = overall_summary(scenario, seed=seed, trials=trials,
                                      block_size=block_size)
        else:
            from ..runs.runner import run_in_memory

            overall = run_in_memory(scenario, trials=trials, seed=seed, block_size=block_size,
                                    posterior=posterior).summary.row(0, named=True)
            overall.pop("scope")
            overall.pop("key")
        rows.append({**{k: _cell(k, v) for k, v in point.items()}, **overall})
        if progress is not None:
            progress(1)
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame, [p for p, _ in params]


def _cell(path: str, value):
    """A point's value as its parameter column shows it (membership edits by their label)."""
    if membership_edit(path) is not None:
        return value_label(path, value)
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    return str(value)
