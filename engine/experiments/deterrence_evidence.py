"""Deterrence evidence (issue 13, item 2): does a defense pact that covers a potential target
lower the chance that a challenger starts a dispute against it?  Leeds (2003) and Johnson & Leeds
(2011) find that it does.  This module computes that relative risk from the data and the
engine's counterpart on the same worlds, side by side.

Unit
    A directed dyad-year (challenger ``A``, target ``B``, year ``Y``) of the world the engine
    imports for ``Y`` (:func:`engine.data.atop.import_world`: every state with a capability row
    in ``Y``, ATOP alliances in force, CINC capabilities, commitment 0.5), for ``Y`` in
    ``first … last`` every ``step`` years (default 1816–2010, the years of the GML MID data).

Covered (the treatment)
    The engine's own coverage of the entry (A, B) (design §8, ``entry_cover_*`` of the compiled
    world) is not empty: ``B`` is protected by a defense alliance in force in ``Y`` that ``A``
    does not belong to and that has a member other than ``A`` and ``B``.  The data and the
    engine therefore use the same treatment on the same dyads; only the outcome differs.
    (ATOP's member-level ``defense`` flag is a member's pledge, not its addressee, so an
    asymmetric pact counts for every member the importer lists as protected.)

Observed outcome
    ``A`` originated a militarized interstate dispute against ``B`` that began in ``Y``: a GML
    MID dyad-year row (``ccode1 = A``, ``ccode2 = B``, ``year = Y``) with ``sidea1 = 1`` and
    ``sidea2 = 0`` (``A`` on the side that took the first militarized action), ``orig1 = 1``
    (an originator, not a joiner) and ``midonset = 1`` (the dispute's first year).  Several
    such disputes in one dyad-year count once.

Engine outcome
    ``P(A attacks B | an opportunity) = 1 − P(deterred)`` of the cell (A, B, conventional) with
    resolve 1 and severity 1 (the importer's defaults), in the imported world's deterrence mode
    (``capability``: ATOP worlds carry no decision-rule data), after an optional transform of the
    scenario (the backtest passes its fitted ``commitment_scale``).  Each directed dyad-year is
    taken as one opportunity: the engine has no dispute rate, so only ratios of its
    probabilities are compared with the data.  ``engine_without_alliances`` is the same cell's
    no-alliance baseline (``P(deterred)`` with ``R = cap_B``); on the covered dyads the ratio
    engine / engine_without_alliances is the effect of cover the model implies, which the data
    cannot show directly.

Estimates, per period (``all``; ``train`` = years ≤ split; ``test`` = later)
    * ``crude``: ``RR = (Σ y | covered / n_covered) / (Σ y | not covered / n_not_covered)``; for
      the observed outcome with a Katz (log) 95% interval.
    * ``adjusted``: ``exp(β_covered)`` of a Poisson regression with a log link and robust (HC0)
      errors (Zou 2004's "modified Poisson", a relative risk for a binary outcome), covariates:
      log capability of ``A`` and of ``B``, ``A`` and ``B`` a COW major power, ``A``–``B`` a
      Thompson–Dreyer strategic rivalry in ``Y``, ``A`` and ``B`` in a common alliance of any
      kind, and decade dummies.  For the engine the same regression with its probabilities as
      the outcome (quasi-Poisson; no interval: the engine's probabilities are exact, the
      interval would be a regression artefact).
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..core.simulate import deterrence_tables
from ..core.tables import covered_cells
from ..errors import UserError
from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import Scenario, scenario_from_dict

FIRST_YEAR, LAST_YEAR = 1816, 2010  # the GML MID dyad-years
SOURCES = ("observed", "engine", "engine_without_alliances")
PERIODS = ("all", "train", "test")
ESTIMATES = ("crude", "adjusted")
COLUMNS = ("source", "period", "estimate", "dyad_years", "covered", "events_covered",
           "events_not_covered", "rate_covered", "rate_not_covered", "relative_risk", "ci_low",
           "ci_high")
DYAD_COLUMNS = ("year", "challenger", "target", "covered", "observed", "engine",
                "engine_without_alliances", "log_capability_challenger",
                "log_capability_target", "major_challenger", "major_target", "rivalry",
                "shared_alliance")
CONTROLS = ("log_capability_challenger", "log_capability_target", "major_challenger",
            "major_target", "rivalry", "shared_alliance")
CITATIONS = (
    "Leeds (2003), Do alliances deter aggression?, American Journal of Political Science 47(3).",
    "Johnson & Leeds (2011), Defense pacts: a prescription for peace?, Foreign Policy Analysis "
    "7(1).",
    "GML MID 2.03: Gibler, Miller & Little (2016), International Studies Quarterly 60(4).",
    "Zou (2004), A modified Poisson regression approach to prospective studies with binary "
    "data, American Journal of Epidemiology 159(7).",
)


@dataclass
class World:
    """One imported year: the scenario with every state attacking every other, and per cell
    (= directed dyad) the challenger, the target and whether the target is covered."""

    year: int
    scenario: Scenario
    compiled: CompiledScenario
    challenger: np.ndarray  # int64 COW codes, per cell
    target: np.ndarray
    covered: np.ndarray  # bool
    log_capability_challenger: np.ndarray
    log_capability_target: np.ndarray
    shared_alliance: np.ndarray  # bool


def _all_pairs(world: dict) -> dict:
    """The imported world with every state an aggressor (weight 1, resolve 1) against every
    other state (weight 1), one conventional attack type (severity 1, no attribution delay)."""
    data = dict(world)
    ids = [s["id"] for s in world["states"]]
    data["aggressors"] = [{"state": a, "weight": 1.0, "resolve": 1.0,
                           "targets": {b: 1.0 for b in ids if b != a},
                           "attack_mix": {"conventional": 1.0}} for a in ids]
    data["attack_types"] = {"conventional": {"severity": 1.0, "attribution_days": 0.0,
                                             "ambiguity": 0.0}}
    return data


def build_worlds(paths: dict[str, object], years: list[int], abbreviations: dict[int, str],
                 progress: Callable[[str], None] | None = None) -> list[World]:
    """Import the world of each year (``paths``: ``alliances``, ``members``, ``capabilities``
    CSVs) and lay out its directed dyads."""
    from ..data.atop import import_world

    code_of = {abb: code for code, abb in abbreviations.items()}
    cinc = pl.read_csv(paths["capabilities"], infer_schema_length=100_000,
                       null_values=["", "NA"]).select(
        pl.col("stateabb"), pl.col("year").cast(pl.Int64), pl.col("cinc").cast(pl.Float64))
    worlds = []
    for year in years:
        first = (cinc.filter((pl.col("year") == year) & pl.col("cinc").is_not_null())
                 .sort("cinc", descending=True)["stateabb"])
        if first.is_empty():
            raise UserError(f"{paths['capabilities']}: no capability row in {year}")
        imported = import_world(year, paths["alliances"], paths["members"],
                                paths["capabilities"], aggressors=[first[0]])
        scenario = scenario_from_dict(_all_pairs(tomllib.loads(imported.toml)),
                                      f"<world {year}>")
        c = compile_scenario(scenario)
        state_code = np.array([code_of[s] for s in c.state_ids], dtype=np.int64)
        a_state = c.aggressor_state[c.cell_aggressor]
        t_state = c.cell_target
        log_cap = np.log(c.capability)
        worlds.append(World(year, scenario, c, state_code[a_state], state_code[t_state],
                            covered_cells(c), log_cap[a_state], log_cap[t_state],
                            c.shares_alliance[a_state, t_state] == 1))
        if progress and (year % 25 == 0 or year == years[-1]):
            progress(f"deterrence evidence: world {year} ({c.n_states} states, "
                     f"{c.n_cells} directed dyads)")
    return worlds


def engine_attack(worlds: list[World], transform: Callable[[Scenario], Scenario] | None = None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The engine's ``1 − P(deterred)`` and its no-alliance baseline for every directed dyad of
    ``worlds`` (concatenated in order), after ``transform`` of each scenario."""
    with_all, without = [], []
    for w in worlds:
        compiled = w.compiled if transform is None else compile_scenario(transform(w.scenario))
        tables = deterrence_tables(compiled, seed)
        with_all.append(1.0 - tables.p_deterred)
        without.append(1.0 - tables.p_deterred_no_alliance)
    return np.concatenate(with_all), np.concatenate(without)


def observed_initiations(disputes_csv) -> pl.DataFrame:
    """Directed dispute originations (module docstring): ``year``, ``challenger``, ``target``."""
    frame = pl.read_csv(disputes_csv, infer_schema_length=100_000, null_values=["", "NA"])
    need = ("ccode1", "ccode2", "year", "sidea1", "sidea2", "orig1", "midonset")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise UserError(f"{disputes_csv}: missing column(s) {', '.join(missing)} "
                        f"(GML MID dyad-years)")
    return (frame.filter((pl.col("sidea1") == 1) & (pl.col("sidea2") == 0)
                         & (pl.col("orig1") == 1) & (pl.col("midonset") == 1))
            .select(pl.col("year").cast(pl.Int64), pl.col("ccode1").cast(pl.Int64)
                    .alias("challenger"), pl.col("ccode2").cast(pl.Int64).alias("target"))
            .unique())


def dyad_frame(worlds: list[World], engine: tuple[np.ndarray, np.ndarray],
               initiations: pl.DataFrame, majors: pl.DataFrame,
               rivals: pl.DataFrame) -> pl.DataFrame:
    """One row per directed dyad-year: :data:`DYAD_COLUMNS` (``initiations``:
    :func:`observed_initiations`)."""
    year = np.concatenate([np.full(len(w.challenger), w.year, np.int64) for w in worlds])
    frame = pl.DataFrame({
        "year": year,
        "challenger": np.concatenate([w.challenger for w in worlds]),
        "target": np.concatenate([w.target for w in worlds]),
        "covered": np.concatenate([w.covered for w in worlds]).astype(np.int64),
        "engine": engine[0], "engine_without_alliances": engine[1],
        "log_capability_challenger": np.concatenate([w.log_capability_challenger
                                                     for w in worlds]),
        "log_capability_target": np.concatenate([w.log_capability_target for w in worlds]),
        "shared_alliance": np.concatenate([w.shared_alliance for w in worlds]).astype(np.int64),
    })
    events = initiations.with_columns(pl.lit(1, pl.Int64).alias("observed"))
    frame = frame.join(events, on=["year", "challenger", "target"], how="left")
    years = frame.select("year").unique()
    major = (years.join(majors, how="cross")
             .filter((pl.col("styear") <= pl.col("year")) & (pl.col("endyear") >= pl.col("year")))
             .select("year", "ccode").unique().with_columns(pl.lit(1, pl.Int64).alias("m")))
    frame = (frame
             .join(major.rename({"ccode": "challenger", "m": "major_challenger"}),
                   on=["year", "challenger"], how="left")
             .join(major.rename({"ccode": "target", "m": "major_target"}),
                   on=["year", "target"], how="left"))
    both = pl.concat([rivals, rivals.select(pl.col("ccode2").alias("ccode1"),
                                            pl.col("ccode1").alias("ccode2"), "styear",
                                            "endyear")])
    rival = (years.join(both, how="cross")
             .filter((pl.col("styear") <= pl.col("year")) & (pl.col("endyear") >= pl.col("year")))
             .select("year", pl.col("ccode1").alias("challenger"),
                     pl.col("ccode2").alias("target")).unique()
             .with_columns(pl.lit(1, pl.Int64).alias("rivalry")))
    frame = frame.join(rival, on=["year", "challenger", "target"], how="left")
    return (frame.with_columns(pl.col("observed", "major_challenger", "major_target", "rivalry")
                               .fill_null(0))
            .select(DYAD_COLUMNS))


# ---- estimates ----------------------------------------------------------------------------

def crude(frame: pl.DataFrame, outcome: str, interval: bool) -> dict:
    """Crude relative risk of ``outcome`` (0/1 or a probability), covered vs not covered."""
    cov = frame.filter(pl.col("covered") == 1)[outcome].to_numpy().astype(np.float64)
    unc = frame.filter(pl.col("covered") == 0)[outcome].to_numpy().astype(np.float64)
    out = {"dyad_years": frame.height, "covered": int(cov.size),
           "events_covered": float(cov.sum()), "events_not_covered": float(unc.sum()),
           "rate_covered": None, "rate_not_covered": None, "relative_risk": None,
           "ci_low": None, "ci_high": None}
    if cov.size == 0 or unc.size == 0:
        return out
    r1, r0 = cov.mean(), unc.mean()
    out.update(rate_covered=float(r1), rate_not_covered=float(r0))
    if r0 > 0 and r1 > 0:
        rr = r1 / r0
        out["relative_risk"] = float(rr)
        if interval:
            se = math.sqrt(1 / cov.sum() - 1 / cov.size + 1 / unc.sum() - 1 / unc.size)
            out.update(ci_low=float(math.exp(math.log(rr) - 1.959964 * se)),
                       ci_high=float(math.exp(math.log(rr) + 1.959964 * se)))
    return out


def adjusted(frame: pl.DataFrame, outcome: str, interval: bool) -> dict:
    """``exp(β_covered)`` of the modified Poisson regression of the module docstring."""
    import statsmodels.api as sm

    out = crude(frame, outcome, interval=False)
    out.update(relative_risk=None, ci_low=None, ci_high=None)
    y = frame[outcome].to_numpy().astype(np.float64)
    if y.sum() <= 0 or frame["covered"].n_unique() < 2:
        return out
    decade = (frame["year"] // 10).to_numpy()
    levels = np.unique(decade)[1:]  # the first decade is the reference
    columns = [np.ones(frame.height), frame["covered"].to_numpy().astype(np.float64)]
    for name in CONTROLS:
        x = frame[name].to_numpy().astype(np.float64)
        if np.ptp(x) > 0:
            columns.append(x)
    columns += [(decade == d).astype(np.float64) for d in levels]
    design = np.column_stack(columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GLM(y, design, family=sm.families.Poisson()).fit(cov_type="HC0")
        except (ValueError, np.linalg.LinAlgError):
            return out
    beta, se = float(fit.params[1]), float(fit.bse[1])
    if not math.isfinite(beta):
        return out
    out["relative_risk"] = math.exp(beta)
    if interval and math.isfinite(se):
        out.update(ci_low=math.exp(beta - 1.959964 * se), ci_high=math.exp(beta + 1.959964 * se))
    return out


def relative_risks(frame: pl.DataFrame, split: int) -> pl.DataFrame:
    """The table of :data:`COLUMNS`: every source × period × estimate."""
    periods = {"all": frame, "train": frame.filter(pl.col("year") <= split),
               "test": frame.filter(pl.col("year") > split)}
    rows = []
    for source in SOURCES:
        for period, part in periods.items():
            for estimate in ESTIMATES:
                if source == "engine_without_alliances" and estimate == "adjusted":
                    continue
                how = crude if estimate == "crude" else adjusted
                rows.append({"source": source, "period": period, "estimate": estimate,
                             **how(part, source, interval=source == "observed")})
    return pl.DataFrame(rows, schema={
        "source": pl.String, "period": pl.String, "estimate": pl.String,
        "dyad_years": pl.Int64, "covered": pl.Int64, "events_covered": pl.Float64,
        "events_not_covered": pl.Float64, "rate_covered": pl.Float64,
        "rate_not_covered": pl.Float64, "relative_risk": pl.Float64, "ci_low": pl.Float64,
        "ci_high": pl.Float64})


def implied_effect(frame: pl.DataFrame) -> float | None:
    """On the covered dyads, the engine's mean P(attack) over the same with no alliances."""
    cov = frame.filter(pl.col("covered") == 1)
    if cov.is_empty() or cov["engine_without_alliances"].sum() <= 0:
        return None
    return float(cov["engine"].sum() / cov["engine_without_alliances"].sum())


@dataclass
class DeterrenceEvidence:
    dyads: pl.DataFrame
    table: pl.DataFrame
    info: dict


def deterrence_evidence(paths: dict[str, object], abbreviations: dict[int, str],
                        majors: pl.DataFrame, rivals: pl.DataFrame, *, split: int,
                        years: list[int], transform: Callable[[Scenario], Scenario] | None = None,
                        seed: int = 0,
                        progress: Callable[[str], None] | None = None) -> DeterrenceEvidence:
    """The module's comparison over ``years`` (``paths`` adds ``disputes``)."""
    if not years:
        raise UserError("deterrence evidence: no year to compare")
    bad = [y for y in years if not FIRST_YEAR <= y <= LAST_YEAR]
    if bad:
        raise UserError(f"deterrence evidence: year {bad[0]} is outside the MID data "
                        f"({FIRST_YEAR}-{LAST_YEAR})")
    worlds = build_worlds(paths, years, abbreviations, progress)
    engine = engine_attack(worlds, transform, seed)
    initiations = observed_initiations(paths["disputes"]).filter(pl.col("year").is_in(years))
    dyads = dyad_frame(worlds, engine, initiations, majors, rivals)
    table = relative_risks(dyads, split)
    info = {"years": [min(years), max(years)], "step": (years[1] - years[0]
                                                        if len(years) > 1 else None),
            "worlds": len(years), "dyad_years": dyads.height,
            "covered_dyad_years": int(dyads["covered"].sum()),
            "events": int(dyads["observed"].sum()),
            "events_outside_worlds": int(initiations.height - dyads["observed"].sum()),
            "engine_implied_effect_of_cover": implied_effect(dyads),
            "split": split, "citations": list(CITATIONS)}
    info["reading"] = reading(table, info)
    return DeterrenceEvidence(dyads, table, info)


def format_relative_risks(table: pl.DataFrame, info: dict) -> str:
    """The comparison as terminal lines, with a plain reading."""

    rr = _rr_text
    lines = [f"Deterrence: relative risk that a challenger starts a dispute against a target "
             f"covered by a defense pact ({info['dyad_years']:,} directed dyad-years, "
             f"{info['years'][0]}-{info['years'][1]}, {info['events']:,} observed originations)",
             f"{'source':<26} {'period':<6} {'crude':>20} {'adjusted':>20}"]
    rows = {(r["source"], r["period"], r["estimate"]): r for r in table.iter_rows(named=True)}
    for source in SOURCES:
        for period in PERIODS:
            c = rows.get((source, period, "crude"))
            a = rows.get((source, period, "adjusted"))
            if c is None:
                continue
            lines.append(f"{source:<26} {period:<6} {rr(c):>20} "
                         f"{rr(a) if a else '':>20}")
    text = info.get("reading") or reading(table, info)
    if text:
        lines.append(text)
    return "\n".join(lines)


def _rr_text(row: dict) -> str:
    if row["relative_risk"] is None:
        return "—"
    text = f"{row['relative_risk']:.2f}"
    if row["ci_low"] is not None:
        text += f" [{row['ci_low']:.2f}–{row['ci_high']:.2f}]"
    return text


def reading(table: pl.DataFrame, info: dict) -> str:
    """One plain paragraph generated from the numbers (empty when they are missing)."""
    rows = {(r["source"], r["period"], r["estimate"]): r for r in table.iter_rows(named=True)}
    effect = info.get("engine_implied_effect_of_cover")
    obs = rows.get(("observed", "all", "adjusted"))
    eng = rows.get(("engine", "all", "adjusted"))
    if effect is None or not obs or not eng or obs["relative_risk"] is None \
            or eng["relative_risk"] is None:
        return ""
    if obs["ci_low"] is not None and obs["ci_high"] < 1:
        data = "lower risk for covered targets: the data show deterrence"
    elif obs["ci_low"] is not None and obs["ci_low"] > 1:
        data = "higher risk for covered targets: the data show no deterrence"
    else:
        data = "an interval that includes 1: the data cannot tell a deterrent effect from none"
    agree = (obs["ci_low"] is not None and obs["ci_low"] <= eng["relative_risk"] <= obs["ci_high"])
    return (f"Reading: after controls the data give a relative risk of {_rr_text(obs)} "
            f"({data}); the engine gives {eng['relative_risk']:.2f}, "
            f"{'inside' if agree else 'outside'} the data's interval. On the covered dyads "
            f"the engine's probability of attack is {effect:.2f} of what it would be without "
            f"alliances. Observed disputes are rare and the engine's probabilities are per "
            f"opportunity: compare ratios, not rates.")
