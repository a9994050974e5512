"""``crisis calibrate``: fit a scenario parameter so a simulated rate matches a target.

One named parameter is fitted to one target measure (a 1-D search; the measures in use rise
monotonically in the parameters offered, so bisection on a bracket is robust):

* ``commitment_scale`` — every state's commitment × θ (capped at 1);
* ``bindingness_scale`` or ``bindingness_scale:<obligation>`` — every alliance's (of that
  obligation kind's) bindingness × θ (capped at 1).

Every evaluation uses the same seed and trial range — common random numbers — so the simulated
measure is a deterministic, monotone step function of θ and the search cannot be fooled by noise.
The reported uncertainty combines the Monte Carlo error of the simulated measure and, for a
target computed from observations, the binomial error of the observed rate, divided by the
slope dmeasure/dθ at the fit (delta method).

Targets are numbers (``honor_rate=0.5``) or ``observed`` (``honor_rate=observed``), computed from
an observation file such as Berkemeier & Fuhrmann (2018)'s alliance-wars data: the share of
applicable commitments honored, optionally filtered by era (war start year) and obligation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..core.statistics import Z_95
from ..errors import UserError
from ..model.compile import CompiledScenario
from ..model.config import Scenario
from ..model.parameters import PARAMETERS, apply_values  # noqa: F401 (re-exported)
from ..runs.io import write_bytes
from .overall import overall_summary

# start years of the wars whose names carry none (COW inter-state wars 106 and 139)
WAR_START_YEARS = {"WorldWarI": 1914, "WorldWarII": 1939}


@dataclass
class Observed:
    rate: float
    n: int
    source: str

    @property
    def se(self) -> float:
        return math.sqrt(max(self.rate * (1 - self.rate), 1e-12) / self.n)


def observed_honor_rate(path: str | Path, *, era: tuple[int, int] | None = None,
                        obligation: str | None = None, coding: str = "BF") -> Observed:
    """Share of applicable commitments honored in an alliance-wars file (Berkemeier & Fuhrmann
    2018 layout: ``honorBF``/``violateBF`` or ``honorLLM``/``violateLLM`` 1 when coded, the war's
    start year in ``warname``, obligations as 0/1 columns)."""
    import polars as pl

    path = Path(path)
    honor, violate = f"honor{coding}", f"violate{coding}"
    try:
        df = pl.read_csv(path, infer_schema_length=100_000)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{path}: cannot read observations ({err})") from None
    for col in (honor, violate, "warname"):
        if col not in df.columns:
            raise UserError(f"{path}: no column {col!r} (coding {coding!r})")
    df = df.filter(pl.col(honor).is_not_null() | pl.col(violate).is_not_null())
    # the start year is in the war's name ("Austro-Sardinian1848-1849"), but for the world wars
    year = (df["warname"].str.extract(r"(\d{4})").cast(pl.Int64)
            .fill_null(df["warname"].replace_strict(WAR_START_YEARS, default=None,
                                                    return_dtype=pl.Int64)))
    df = df.with_columns(year.alias("_year"))
    where = []
    if era is not None:
        df = df.filter((pl.col("_year") >= era[0]) & (pl.col("_year") <= era[1]))
        where.append(f"wars starting {era[0]}–{era[1]}")
    if obligation is not None:
        column = {"defense": "defense", "offense": "offense", "neutrality": "neutral",
                  "nonaggression": "nonagg", "consultation": "consul"}.get(obligation)
        if column is None or column not in df.columns:
            raise UserError(f"{path}: unknown obligation {obligation!r}")
        df = df.filter(pl.col(column) == 1)
        where.append(f"{obligation} commitments")
    if df.height == 0:
        raise UserError(f"{path}: no coded commitments match ({', '.join(where) or 'all'})")
    honored = int(df[honor].fill_null(0).sum())
    return Observed(honored / df.height, df.height,
                    f"{path.name}, {coding} coding" + (f", {', '.join(where)}" if where else ""))


def apply_parameter(scenario: Scenario, name: str, value: float) -> Scenario:
    """A copy of the scenario with parameter ``name`` set to ``value``."""
    return apply_values(scenario, {name: value})


def measure_of(scenario: Scenario, measure: str, seed: int, trials: int,
               compiled: CompiledScenario | None = None) -> tuple[float, int]:
    """The overall value of a summary rate and its denominator (common random numbers: the same
    seed and trial range every time); ``compiled``: the scenario compiled, if at hand."""
    row = overall_summary(scenario, seed=seed, trials=trials, compiled=compiled)
    if measure not in row or not measure.endswith("_rate"):
        rates = sorted(k for k in row if k.endswith("_rate"))
        raise UserError(f"--target {measure}: unknown measure; choose from {', '.join(rates)}")
    value = row[measure]
    if value is None:
        raise UserError(f"--target {measure}: undefined in this scenario (no trials reach it)")
    # the effective sample size of the rate's Monte Carlo error; honor_rate pools the allies of a
    # crisis, which are not independent, so its unit is the consulted crisis (conservative)
    denominators = {"honor_rate": int(row["consulted"]), "deterrence_success_rate": trials,
                    "deterrence_lift": trials, "attack_rate": trials,
                    "defection_rate": int(row["invoked"])}
    if measure.startswith("final_"):  # a campaign's last period (its crises, its attacks)
        n = row["final_crises"] if measure == "final_deterrence_success_rate" else \
            row["final_attacked"]
        return float(value), int(n)
    if measure.endswith("_survival_rate"):  # a campaign's trajectories
        return float(value), trials
    return float(value), denominators.get(measure, int(row["attacked"]))


@dataclass
class Fit:
    parameter: str
    value: float
    se: float
    measure: str
    target: float
    achieved: float
    se_measure: float
    evaluations: int
    observed: Observed | None = None
    path: list[tuple[float, float]] = field(default_factory=list)

    @property
    def interval(self) -> tuple[float, float]:
        return self.value - Z_95 * self.se, self.value + Z_95 * self.se


def calibrate(scenario: Scenario, *, measure: str, target: float, parameter: str,
              seed: int, trials: int, bounds: tuple[float, float] = (0.0, 4.0),
              tolerance: float = 1e-4, observed: Observed | None = None) -> Fit:
    """Bisection for θ with measure(θ) = target, then the delta-method uncertainty."""
    if not 0.0 <= target <= 1.0:
        raise UserError(f"--target {measure}={target}: a rate lies in [0, 1]")
    lo, hi = bounds
    path = []

    def f(theta: float) -> float:
        value, _ = measure_of(apply_parameter(scenario, parameter, theta), measure, seed, trials)
        path.append((theta, value))
        return value

    f_lo, f_hi = f(lo), f(hi)
    increasing = f_hi >= f_lo
    reach = sorted((f_lo, f_hi))
    if not reach[0] <= target <= reach[1]:
        raise UserError(f"--target {measure}={target}: out of reach — {parameter} in "
                        f"[{lo}, {hi}] gives {f_lo:.4f} … {f_hi:.4f}")
    while hi - lo > tolerance:
        mid = 0.5 * (lo + hi)
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    theta = 0.5 * (lo + hi)
    achieved, n = measure_of(apply_parameter(scenario, parameter, theta), measure, seed, trials)
    # slope from a symmetric difference wide enough to see through the CRN step function
    h = max(0.02 * max(abs(theta), 0.1), 10 * tolerance)
    up = f(theta + h)
    down = f(max(bounds[0], theta - h))
    slope = (up - down) / (theta + h - max(bounds[0], theta - h))
    se_measure = math.sqrt(max(achieved * (1 - achieved), 1e-12) / max(n, 1))
    se_total = math.hypot(se_measure, observed.se if observed else 0.0)
    se = se_total / abs(slope) if slope else math.inf
    return Fit(parameter, theta, se, measure, target, achieved, se_measure, len(path),
               observed, path)


def write_calibrated(scenario: Scenario, fit: Fit, source: Path, out: Path) -> None:
    calibrated = apply_parameter(scenario, fit.parameter, fit.value)
    lo, hi = fit.interval
    header = [
        f"# Calibrated from {source}: {fit.parameter} = {fit.value:.5f} "
        f"(95% interval {lo:.5f} … {hi:.5f})",
        f"# so that {fit.measure} = {fit.achieved:.4f} (target {fit.target:.4f}"
        + (f", observed in {fit.observed.source}, n = {fit.observed.n}" if fit.observed else "")
        + ")",
        "# Written by `crisis calibrate`; the parameter is applied to the values below.",
        "",
    ]
    text = "\n".join(header) + calibrated.to_toml()
    write_bytes(out, text.encode())
