"""``crisis backtest``: predict the coded alliance commitments of Berkemeier & Fuhrmann (2018) out
of sample (issue 13, item 1).

Unit.  One row of the alliance-wars file with an honor/violate coding (``honorBF``/``violateBF``
or the ``LLM`` pair) is one *commitment*: an ATOP alliance (``atopid``) × a war.  The file has no
member column (its ``cowid`` is a COW alliance number, constant per ``atopid``), so the members
who owed help are derived from the war data as below.

War, year, split
    ``cowwarid`` = ``warnum`` of the COW Inter-State War data; the start year is the war's first
    year with ``cowinteronset = 1`` (its first year when none is flagged).  Wars without a COW id
    take the year from their name (``"Bizerte1961"``) or from ``WAR_START_YEARS`` of
    :mod:`.calibrate` for the world wars.  ``train`` = wars starting ≤ ``split`` (default 1944),
    ``test`` = later.

Crisis (one aggressor, one target, one attack type "conventional")
    Sides: the war's initiators (``initiator1 = 1``) form side A; the COW dyads are between
    enemies, so side B is every state at war with side A, side A again every state at war with
    side B, and so on (a 2-colouring from the initiators).  The *target* is a member of the ATOP
    alliance in force in the start year (:func:`engine.data.atop.alliances_in_force`: phases and
    same-day successions as in the importer) that fought on side B — the one at war with an
    initiator earliest, then with side A earliest, then the lowest COW code.  The *aggressor* is the
    most capable (CINC of the year) initiator at war with the target; failing that, the most
    capable side-A state at war with it (e.g. Japan against the United States in World War II).
    Wars without a COW id get their initiator and attacked side from :data:`NON_COW_WARS` (two
    unambiguous cases, documented there); Bizerte 1961 (who started it is contested) is not
    predicted.  The *pledgers* are the alliance's other members (neither target nor aggressor).

Engine probability
    The world of the start year is imported once per (war, world year)
    (:func:`engine.data.atop.import_world`, defaults: commitment 0.5, CINC capabilities); the
    world year is the start year, or for a pact signed during the war (most World War II pacts)
    the first war year in which it is in force (``world_year`` in the predictions).  Its
    aggressors are replaced by the one crisis (severity 1, resolve :data:`ATTACK_RESOLVE`: the war
    happened, so every trial is an attack and the probability is conditional on it, as the coding
    is); every distinct crisis is compiled once and simulated with the same seed and trials
    (common random numbers).  The probability is Σ honored / Σ pledged
    over the member rows of ``ATOP<id>`` and its split parts (``ATOP<id>-mutual``,
    ``ATOP<id>-<kind>``) in the members table (design §8): the pooled honor rate of the members
    who were pledged — exactly one member for a bilateral pact.  A commitment the engine cannot
    price is listed in ``unpredicted.parquet`` with its reason (alliance not in the world, not a
    covering obligation, no pledger, no consulted crisis…); none is dropped silently.

Fit (train only, frozen for test)
    ``commitment_scale`` (every state's commitment × θ, capped at 1; :func:`.calibrate.
    apply_parameter`) is bisected so that the engine's *mean* predicted probability over the
    predicted train commitments equals their observed rate.  ``base_rate`` is that train rate.
    ``logit`` is a statsmodels logistic regression fitted on the predicted train commitments with
    the covariates the engine sees: the five obligation dummies of the file, alliance size
    (members in force), log(Σ CINC of pledgers / CINC of aggressor), era (start year), whether a
    pledger is a COW major power and whether a pledger is a strategic rival of the aggressor
    (Thompson & Dreyer) in the start year.  Covariates constant on train are dropped; covariates
    are standardised with train means and deviations; if the maximum-likelihood fit fails
    (separation, singular design) a ridge-penalised fit (``alpha`` :data:`RIDGE_ALPHA`) is used
    and the output says so.

Scores (per model × split): Brier score, log loss (probabilities clipped to [1e-6, 1 − 1e-6]) and
the ROC AUC (Mann–Whitney, ties counted one half; null when a split has one class only).

Deterrence (issue 13, item 2): with ``deterrence_step`` > 0 the backtest also compares the
relative risk that a challenger starts a dispute against a target covered by a defense pact in
the GML MID data with the engine's, at the fitted ``commitment_scale``, on the worlds of every
``deterrence_step``-th year 1816–2010 (:mod:`.deterrence_evidence`; ``deterrence.parquet``,
``deterrence_dyads.parquet`` and the ``deterrence`` section of ``backtest.json``).
"""

from __future__ import annotations

import math
import tomllib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from ..core.simulate import simulate
from ..core.tables import members_table
from ..data.atop import alliances_in_force, import_world
from ..errors import UserError
from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import scenario_from_dict
from ..runs.io import write_json, write_parquet
from .calibrate import WAR_START_YEARS, apply_parameter
from .deterrence_evidence import FIRST_YEAR, LAST_YEAR, deterrence_evidence

FILES = {
    "alliances": "atop-alliance-level.csv",
    "members": "atop-member-level.csv",
    "capabilities": "cinc-polity.csv",
    "alliance_wars": "berkemeier-fuhrmann-2018-alliance-wars.csv",
    "wars": "cow-war-inter-4.0.csv",
    "rivalries": "td-strategic-rivalries.csv",
    "major_powers": "cow-major-powers-2016.csv",
    "disputes": "gml-ddy-disputes-2.03.csv",
}
# Wars of the alliance-wars file without a COW war number: (initiators, attacked states), COW
# codes.  Italy invaded Albania in April 1939; Indonesia's "Konfrontasi" (1963–66) was waged
# against Malaysia.  Bizerte 1961 (France vs Tunisia: a Tunisian blockade, then a French assault)
# is left out: its initiator is contested.
NON_COW_WARS = {"Italy-Albania1939": ((325,), (339,)), "Malaysia_1963-1966": ((850,), (820,))}
OBLIGATIONS = ("defense", "offense", "neutral", "nonagg", "consul")
COVARIATES = (*OBLIGATIONS, "alliance_size", "log_capability_ratio", "era", "major_power",
              "rivalry")
MODELS = ("engine", "base_rate", "logit")
PREDICTION_COLUMNS = ("war", "cowwarid", "year", "world_year", "atopid", "member", "pledgers",
                      "aggressor", "target", "split", "observed", "engine", "base_rate", "logit",
                      "pledged_trials", *COVARIATES)
UNPREDICTED_COLUMNS = ("war", "cowwarid", "year", "atopid", "split", "observed", "reason")
SCORE_COLUMNS = ("model", "split", "n", "brier", "log_loss", "auc")
CLIP = 1e-6
# the war happened: the aggressor's resolve is so high that every trial is an attack, so the
# probability is conditional on the attack, as the coding is
ATTACK_RESOLVE = 1e9
RIDGE_ALPHA = 1.0
CINC_FLOOR = 1e-6
DEFAULT_TRIALS = 20_000
DEFAULT_SEED = 2018
DEFAULT_SPLIT = 1944
FIT_BOUNDS = (0.0, 2.0)  # commitment 0.5 × 2 = 1: the scale's whole useful range
FIT_TOLERANCE = 1e-3
CITATIONS = (
    "Berkemeier & Fuhrmann (2018), Reassessing the fulfillment of alliance commitments in war, "
    "Research & Politics 5(2).",
    "ATOP v4.01: Leeds, Ritter, Mitchell & Long (2002), International Interactions 28(3).",
    "COW Inter-State War v4.0: Sarkees & Wayman (2010), Resort to War.",
    "COW National Material Capabilities: Singer, Bremer & Stuckey (1972).",
    "Thompson & Dreyer (2012), Handbook of International Rivalries.",
    "COW State System membership (major powers), 2016.",
)


# ---- reading -------------------------------------------------------------------------------

def _path(data_dir: Path, key: str) -> Path:
    path = Path(data_dir) / FILES[key]
    if not path.is_file():
        raise UserError(f"{path}: file not found (--data must hold {FILES[key]})")
    return path


def _read(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema_length=100_000, null_values=["", "NA"])
    except (OSError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None


def coded_commitments(data_dir: Path, coding: str = "BF",
                      split: int = DEFAULT_SPLIT) -> pl.DataFrame:
    """The coded rows of the alliance-wars file with ``war``, ``warid``, ``cowwarid``, ``year``,
    ``atopid``, ``split``, ``observed`` (1 honored, 0 violated) and the obligation dummies."""
    path = _path(data_dir, "alliance_wars")
    honor, violate = f"honor{coding}", f"violate{coding}"
    df = _read(path)
    need = (honor, violate, "warname", "warid", "atopid", "cowwarid", *OBLIGATIONS)
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} (coding {coding!r})")
    df = df.filter(pl.col(honor).is_not_null() | pl.col(violate).is_not_null())
    wars = _read(_path(data_dir, "wars"))
    onset = (wars.group_by("warnum")
             .agg(pl.col("year").filter(pl.col("cowinteronset") == 1).min().alias("onset"),
                  pl.col("year").min().alias("first"))
             .select(pl.col("warnum").alias("cowwarid"),
                     pl.coalesce("onset", "first").alias("cow_year")))
    df = (df.with_columns(pl.col("cowwarid").cast(pl.Int64), pl.col("atopid").cast(pl.Int64),
                          pl.col("warid").cast(pl.Int64),
                          *(pl.col(c).fill_null(0).cast(pl.Int64) for c in OBLIGATIONS))
          .join(onset, on="cowwarid", how="left"))
    name_year = (df["warname"].str.extract(r"(\d{4})").cast(pl.Int64)
                 .fill_null(df["warname"].replace_strict(WAR_START_YEARS, default=None,
                                                         return_dtype=pl.Int64)))
    df = df.with_columns(pl.coalesce("cow_year", name_year).alias("year"))
    if df["year"].is_null().any():
        bad = df.filter(pl.col("year").is_null())["warname"][0]
        raise UserError(f"{path}: no start year for war {bad!r}")
    return (df.with_columns(
        pl.col("warname").alias("war"),
        pl.when(pl.col("year") <= split).then(pl.lit("train")).otherwise(pl.lit("test"))
        .alias("split"),
        (pl.col(honor).fill_null(0) == 1).cast(pl.Int64).alias("observed"))
        .select("war", "warid", "cowwarid", "year", "atopid", "split", "observed", *OBLIGATIONS)
        .with_row_index("row"))


@dataclass
class War:
    initiators: set[int]
    side_a: set[int]
    side_b: set[int]
    first_fight: dict[tuple[int, int], int]  # (state, enemy) -> first year at war


def read_wars(data_dir: Path) -> dict[int, War]:
    frame = _read(_path(data_dir, "wars"))
    wars: dict[int, War] = {}
    for (num,), g in frame.group_by("warnum"):
        initiators = set(g.filter(pl.col("initiator1") == 1)["ccode1"].to_list())
        wars[int(num)] = _sides(initiators, g.select("ccode1", "ccode2", "year").rows())
    return wars


def _sides(initiators: set[int], dyads: list[tuple[int, int, int]]) -> War:
    enemies: dict[int, set[int]] = {}
    first: dict[tuple[int, int], int] = {}
    for a, b, year in dyads:
        enemies.setdefault(a, set()).add(b)
        enemies.setdefault(b, set()).add(a)
        for key in ((a, b), (b, a)):
            first[key] = min(first.get(key, year), year)
    side = {s: 0 for s in initiators}
    frontier = list(initiators)
    while frontier:
        s = frontier.pop()
        for e in sorted(enemies.get(s, ())):
            if e not in side:
                side[e] = 1 - side[s]
                frontier.append(e)
    return War(set(initiators), {s for s, k in side.items() if k == 0},
               {s for s, k in side.items() if k == 1}, first)


# ---- crises --------------------------------------------------------------------------------

@dataclass
class Crisis:
    aggressor: int
    target: int
    pledgers: list[int]
    size: int


def choose_crisis(war: War, members: set[int], cinc: dict[int, float]) -> Crisis | str:
    """The crisis of one commitment (module docstring), or the reason there is none."""
    if not members:
        return "the alliance has no member in force in ATOP in any year of the war"
    targets = sorted(members & war.side_b)
    if not targets:
        where = ("an initiator is a member" if members & war.initiators
                 else "no member fought on the side the initiator attacked")
        return f"no member of the alliance was attacked ({where}): the engine prices defense only"
    inf = 10**9

    def attacked(t: int, by: set[int]) -> int:
        return min((war.first_fight.get((t, a), inf) for a in by), default=inf)

    target = min(targets, key=lambda t: (attacked(t, war.initiators), attacked(t, war.side_a), t))
    fought = [a for a in sorted(war.initiators) if (target, a) in war.first_fight]
    if not fought:
        fought = [a for a in sorted(war.side_a) if (target, a) in war.first_fight]
    aggressor = max(fought, key=lambda a: (cinc.get(a, 0.0), -a))
    pledgers = sorted(members - {target, aggressor})
    if not pledgers:
        return "no member other than the target and the aggressor"
    return Crisis(aggressor, target, pledgers, len(members))


@dataclass
class Prepared:
    """One commitment that has a crisis, with everything the models need."""

    row: dict
    crisis: Crisis
    key: tuple[str, int, int, int]  # (war, year, aggressor, target)
    covariates: dict[str, float]


def _world_year(atopid: int, start: int, last: int,
                in_force_of: Callable[[int], pl.DataFrame]) -> int:
    """The war's start year, or the first later war year in which the alliance is in force
    (pacts signed during a war, e.g. most World War II alliances); the start year if none."""
    for y in range(start, last + 1):
        try:
            if atopid in set(in_force_of(y)["atopid"].to_list()):
                return y
        except UserError:
            return start
    return start


def _crisis_scenario(world: dict, aggressor: str, target: str) -> dict:
    data = dict(world)
    data["aggressors"] = [{"state": aggressor, "weight": 1.0, "resolve": ATTACK_RESOLVE,
                           "targets": {target: 1.0}, "attack_mix": {"conventional": 1.0}}]
    data["attack_types"] = {"conventional": {"severity": 1.0, "attribution_days": 0.0,
                                             "ambiguity": 0.0}}
    return data


def _honor(compiled: CompiledScenario, seed: int, trials: int,
           atopids: dict[int, list[str]]) -> dict[int, tuple[int, int]]:
    tallies, _ = simulate(compiled, seed, 0, trials)
    m = members_table(compiled, tallies)
    out = {}
    for atopid, states in atopids.items():
        rows = m.filter((pl.col("alliance") == f"ATOP{atopid}")
                        | pl.col("alliance").str.starts_with(f"ATOP{atopid}-"))
        rows = rows.filter(pl.col("state").is_in(states))
        out[atopid] = (int(rows["honored"].sum()), int(rows["pledged"].sum()))
    return out


# ---- scores --------------------------------------------------------------------------------

def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC AUC as the Mann–Whitney probability P(p₁ > p₀) + ½ P(p₁ = p₀); None with one class."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    pos, neg = p[y == 1], p[y == 0]
    if pos.size == 0 or neg.size == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


def score(y, p) -> dict:
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), CLIP, 1 - CLIP)
    if y.size == 0:
        return {"n": 0, "brier": None, "log_loss": None, "auc": None}
    return {"n": int(y.size), "brier": float(np.mean((p - y) ** 2)),
            "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
            "auc": auc(y, p)}


def scores_table(predictions: pl.DataFrame) -> pl.DataFrame:
    rows = []
    for model in MODELS:
        for split in ("train", "test"):
            part = predictions.filter(pl.col("split") == split)
            rows.append({"model": model, "split": split,
                         **score(part["observed"].to_numpy(), part[model].to_numpy())})
    return pl.DataFrame(rows, schema={"model": pl.String, "split": pl.String, "n": pl.Int64,
                                      "brier": pl.Float64, "log_loss": pl.Float64,
                                      "auc": pl.Float64})


# ---- logit ---------------------------------------------------------------------------------

def fit_logit(frame: pl.DataFrame) -> tuple[np.ndarray, dict]:
    """Fit on the ``train`` rows of ``frame``; probabilities for every row and a description."""
    import statsmodels.api as sm

    train = frame["split"].to_numpy() == "train"
    x_all = frame.select(COVARIATES).to_numpy().astype(np.float64)
    y = frame["observed"].to_numpy().astype(np.float64)
    x_train = x_all[train]
    keep = [i for i, _ in enumerate(COVARIATES) if np.ptp(x_train[:, i]) > 0]
    dropped = [c for i, c in enumerate(COVARIATES) if i not in keep]
    mean = x_train[:, keep].mean(axis=0)
    sd = x_train[:, keep].std(axis=0)
    design = np.column_stack([np.ones(len(frame)), (x_all[:, keep] - mean) / sd])
    method = "maximum likelihood"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = sm.Logit(y[train], design[train]).fit(disp=0, maxiter=200)
            params = np.asarray(result.params)
            if not (np.all(np.isfinite(params)) and result.mle_retvals.get("converged", True)):
                raise np.linalg.LinAlgError("no convergence")
        except Exception:  # separation or a singular design: fall back to a ridge fit
            method = f"ridge-penalised (alpha {RIDGE_ALPHA}; maximum likelihood failed)"
            result = sm.GLM(y[train], design[train], family=sm.families.Binomial()
                            ).fit_regularized(alpha=RIDGE_ALPHA / train.sum(), L1_wt=0.0)
            params = np.asarray(result.params)
    prob = 1.0 / (1.0 + np.exp(-(design @ params)))
    names = ["intercept", *(COVARIATES[i] for i in keep)]
    return prob, {"method": method, "covariates": names[1:], "dropped_constant": dropped,
                  "coefficients_standardised": dict(zip(names, map(float, params),
                                                        strict=True)),
                  "n_train": int(train.sum())}


# ---- the backtest --------------------------------------------------------------------------

@dataclass
class Backtest:
    predictions: pl.DataFrame
    unpredicted: pl.DataFrame
    scores: pl.DataFrame
    info: dict
    deterrence: pl.DataFrame | None = None  # relative risks (deterrence_evidence.COLUMNS)
    deterrence_dyads: pl.DataFrame | None = None

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "predictions.parquet", out / "unpredicted.parquet",
                 out / "scores.parquet"]
        write_parquet(paths[0], self.predictions)
        write_parquet(paths[1], self.unpredicted)
        write_parquet(paths[2], self.scores)
        if self.deterrence is not None and self.deterrence_dyads is not None:
            paths += [out / "deterrence.parquet", out / "deterrence_dyads.parquet"]
            write_parquet(paths[-2], self.deterrence)
            write_parquet(paths[-1], self.deterrence_dyads)
        # last: a folder with backtest.json is complete
        paths.append(out / "backtest.json")
        write_json(paths[-1], self.info)
        return paths


def _year_tables(data_dir: Path):
    cinc = _read(_path(data_dir, "capabilities")).select(
        pl.col("ccode").cast(pl.Int64), pl.col("year").cast(pl.Int64),
        pl.col("cinc").cast(pl.Float64))
    majors = _read(_path(data_dir, "major_powers")).select(
        pl.col("ccode").cast(pl.Int64), pl.col("styear").cast(pl.Int64),
        pl.col("endyear").cast(pl.Int64))
    rivals = _read(_path(data_dir, "rivalries")).select(
        pl.col("ccode1").cast(pl.Int64), pl.col("ccode2").cast(pl.Int64),
        pl.col("styear").cast(pl.Int64), pl.col("endyear").cast(pl.Int64))
    return cinc, majors, rivals


def run_backtest(data_dir: str | Path, *, coding: str = "BF", split: int = DEFAULT_SPLIT,
                 trials: int = DEFAULT_TRIALS, seed: int = DEFAULT_SEED,
                 fit: bool = True, deterrence_step: int = 1,
                 progress: Callable[[str], None] | None = None) -> Backtest:
    """The backtest of the module docstring, in memory; with ``deterrence_step`` > 0 also the
    deterrence relative risk (:mod:`.deterrence_evidence`) on the worlds of every
    ``deterrence_step``-th year of the MID data, with the fitted engine (0 skips it)."""
    data_dir = Path(data_dir)
    if coding not in ("BF", "LLM"):
        raise UserError(f"--coding {coding!r}: choose BF or LLM")
    if isinstance(deterrence_step, bool) or not isinstance(deterrence_step, int) \
            or deterrence_step < 0:
        raise UserError(f"--deterrence-step must be a whole number >= 0, got {deterrence_step!r}")
    if deterrence_step:
        _path(data_dir, "disputes")  # fail before any work when the MID file is missing
    say = progress or (lambda _text: None)
    commitments = coded_commitments(data_dir, coding, split)
    wars = read_wars(data_dir)
    cinc, majors, rivals = _year_tables(data_dir)
    paths = {k: _path(data_dir, k) for k in ("alliances", "members", "capabilities")}

    unpredicted: list[dict] = []
    prepared: list[Prepared] = []

    def miss(row: dict, reason: str) -> None:
        unpredicted.append({**{k: row[k] for k in UNPREDICTED_COLUMNS if k != "reason"},
                            "reason": reason})

    in_force_cache: dict[int, pl.DataFrame] = {}

    def in_force_of(y: int) -> pl.DataFrame:
        if y not in in_force_cache:
            in_force_cache[y] = alliances_in_force(y, *paths.values())
        return in_force_cache[y]

    def _price(war_name: str, world_year: int, war: War, rows: list[dict]) -> None:
        """Import the world of ``world_year`` once and prepare every crisis of ``rows``."""
        try:
            in_force = in_force_of(world_year)
        except UserError as err:
            for row in rows:
                miss(row, f"ATOP: {err}")
            return
        caps = dict(cinc.filter(pl.col("year") == world_year).select("ccode", "cinc").iter_rows())
        caps = {k: (v if v and v > 0 else CINC_FLOOR) for k, v in caps.items()}
        crises: list[tuple[dict, Crisis]] = []
        for row in rows:
            members = set(in_force.filter(pl.col("atopid") == row["atopid"])["member"].to_list())
            crisis = choose_crisis(war, members, caps)
            if isinstance(crisis, str):
                miss(row, crisis)
            else:
                crises.append((row, crisis))
        if not crises:
            return
        # one import per war; the aggressor passed only satisfies the importer
        world = None
        error = ""
        abbreviations: dict[int, str] = {}
        for aggressor in sorted({c.aggressor for _, c in crises}):
            try:
                imported = import_world(world_year, *paths.values(), aggressors=[_abb(aggressor,
                                                                                 data_dir)])
            except UserError as err:
                error = str(err)
                continue
            world = tomllib.loads(imported.toml)
            break
        if world is None:
            for row, _ in crises:
                miss(row, f"the world of {world_year} cannot be imported: {error}")
            return
        ids = {st["id"] for st in world["states"]}
        for code in {c for _, cr in crises for c in (cr.aggressor, cr.target, *cr.pledgers)}:
            if _abb(code, data_dir) in ids:
                abbreviations[code] = _abb(code, data_dir)
        alliance_ids = {a["id"]: a for a in world["alliances"]}
        for row, crisis in crises:
            abb_a = abbreviations.get(crisis.aggressor)
            abb_t = abbreviations.get(crisis.target)
            present = [p for p in crisis.pledgers if p in abbreviations]
            if abb_a is None or abb_t is None or not present:
                who = "aggressor" if abb_a is None else "target" if abb_t is None else "pledgers"
                miss(row, f"the {who} has no CINC row in {world_year} (not in the imported world)")
                continue
            main_id = f"ATOP{row['atopid']}"
            if main_id not in alliance_ids:
                miss(row, f"{main_id} is not in the imported world (fewer than 2 members with "
                          f"a CINC row)")
                continue
            kinds = {a["obligation"] for i, a in alliance_ids.items()
                     if i == main_id or i.startswith(main_id + "-")}
            if not kinds & {"defense", "collective_security"}:
                miss(row, f"{main_id} is imported as {'/'.join(sorted(kinds))}: only defense "
                          f"pacts cover a target in the engine")
                continue
            key = (war_name, world_year, crisis.aggressor, crisis.target)
            pledger_caps = sum(caps.get(p, CINC_FLOOR) for p in present)
            major = majors.filter((pl.col("styear") <= world_year)
                                  & (pl.col("endyear") >= world_year)
                                  & pl.col("ccode").is_in(present)).height > 0
            rival = rivals.filter(
                (pl.col("styear") <= world_year) & (pl.col("endyear") >= world_year)
                & (((pl.col("ccode1") == crisis.aggressor) & pl.col("ccode2").is_in(present))
                   | ((pl.col("ccode2") == crisis.aggressor) & pl.col("ccode1").is_in(present)))
            ).height > 0
            covariates = {**{c: float(row[c]) for c in OBLIGATIONS},
                          "alliance_size": float(crisis.size),
                          "log_capability_ratio": math.log(
                              pledger_caps / caps.get(crisis.aggressor, CINC_FLOOR)),
                          "era": float(year), "major_power": float(major),
                          "rivalry": float(rival)}
            prepared.append(Prepared({**row, "_world": world, "_abb": (abb_a, abb_t),
                                      "_present": [abbreviations[p] for p in present],
                                      "_present_codes": present,
                                      "world_year": world_year}, crisis, key, covariates))


    groups = commitments.group_by("war", "year", maintain_order=True)
    for (war_name, year), group in groups:
        rows = group.to_dicts()
        cow = rows[0]["cowwarid"]
        if cow is not None and cow in wars:
            war = wars[cow]
        elif war_name in NON_COW_WARS:
            init, attacked = NON_COW_WARS[war_name]
            war = _sides(set(init), [(a, t, year) for a in init for t in attacked])
        else:
            for row in rows:
                miss(row, "no COW war number and no documented initiator (NON_COW_WARS)")
            continue
        say(f"{war_name} ({year}): {len(rows)} commitment(s)")
        last_year = max((y for y in war.first_fight.values()), default=year)
        by_year: dict[int, list[dict]] = {}
        for row in rows:
            by_year.setdefault(_world_year(row["atopid"], year, last_year, in_force_of), []
                               ).append(row)
        for world_year, year_rows in sorted(by_year.items()):
            _price(war_name, world_year, war, year_rows)

    # one compiled scenario per distinct crisis
    say(f"{len(prepared)} commitments priced in "
        f"{len({p.key for p in prepared})} crises; fitting on train")
    crisis_worlds: dict[tuple, dict] = {}
    for p in prepared:
        crisis_worlds.setdefault(p.key, _crisis_scenario(p.row["_world"], *p.row["_abb"]))
    wanted: dict[tuple, dict[int, list[str]]] = {}
    for p in prepared:
        wanted.setdefault(p.key, {}).setdefault(p.row["atopid"], [])
        wanted[p.key][p.row["atopid"]] = sorted(set(wanted[p.key][p.row["atopid"]])
                                                | set(p.row["_present"]))
    base = {k: scenario_from_dict(d, "<backtest>") for k, d in crisis_worlds.items()}

    def evaluate(theta: float, keys) -> dict[tuple, dict[int, tuple[int, int]]]:
        out = {}
        for k in keys:
            scenario = base[k] if theta == 1.0 else apply_parameter(base[k], "commitment_scale",
                                                                      theta)
            out[k] = _honor(compile_scenario(scenario), seed, trials, wanted[k])
        return out

    def probabilities(results) -> list[float | None]:
        probs = []
        for p in prepared:
            r = results.get(p.key)
            if r is None:
                probs.append(None)
                continue
            honored, pledged = r[p.row["atopid"]]
            probs.append(honored / pledged if pledged else None)
        return probs

    def pledged_trials(results) -> list[int]:
        return [results[p.key][p.row["atopid"]][1] for p in prepared]

    train_keys = sorted({p.key for p in prepared if p.row["split"] == "train"})
    all_keys = sorted({p.key for p in prepared})
    first = probabilities(evaluate(1.0, all_keys))
    keep = [i for i, v in enumerate(first) if v is not None]
    for i, v in enumerate(first):
        if v is None:
            miss(prepared[i].row, "engine: no consulted crisis (the aggressor is a member of the "
                                  "defense pact, or the target is not among its protected)")
    prepared = [prepared[i] for i in keep]
    train_rows = [i for i, p in enumerate(prepared) if p.row["split"] == "train"]
    if not train_rows:
        raise UserError(f"no predictable commitment in wars starting up to {split}")
    base_rate = float(np.mean([prepared[i].row["observed"] for i in train_rows]))

    fit_info: dict = {"parameter": "commitment_scale", "target_train_rate": base_rate}
    theta = 1.0
    if fit:
        # only the train crises are simulated while fitting
        def f(t: float) -> float:
            r = evaluate(t, train_keys)
            probs = probabilities(r)
            return float(np.mean([probs[i] for i in train_rows if probs[i] is not None]))

        lo, hi = FIT_BOUNDS
        f_lo, f_hi = f(lo), f(hi)
        path = [(lo, f_lo), (hi, f_hi)]
        if base_rate <= f_lo:
            theta, note = lo, "target below reach: the lower bound"
        elif base_rate >= f_hi:
            theta, note = hi, "target above reach: the upper bound"
        else:
            while hi - lo > FIT_TOLERANCE:
                mid = 0.5 * (lo + hi)
                value = f(mid)
                path.append((mid, value))
                if value < base_rate:
                    lo = mid
                else:
                    hi = mid
            theta, note = 0.5 * (lo + hi), "bisection"
        fit_info.update(value=theta, how=note, evaluations=len(path),
                        path=[list(x) for x in path])
    else:
        fit_info.update(value=1.0, how="engine uncalibrated (--no-fit)")
    say(f"commitment_scale = {theta:.4f}; predicting every commitment")
    results = evaluate(theta, all_keys)
    final = probabilities(results)

    rows = []
    for p, prob, pledged in zip(prepared, final, pledged_trials(results), strict=True):
        if prob is None:
            miss(p.row, "engine: no consulted crisis at the fitted commitment_scale")
            continue
        codes = p.row["_present_codes"]
        rows.append({
            "war": p.row["war"], "cowwarid": p.row["cowwarid"], "year": p.row["year"],
            "world_year": p.row["world_year"],
            "atopid": p.row["atopid"], "member": codes[0] if len(codes) == 1 else None,
            "pledgers": ",".join(map(str, codes)), "aggressor": p.crisis.aggressor,
            "target": p.crisis.target, "split": p.row["split"],
            "observed": p.row["observed"], "engine": prob, "base_rate": base_rate,
            "logit": None, "pledged_trials": pledged, **p.covariates, "_row": p.row["row"]})
    frame = pl.DataFrame(rows, infer_schema_length=None).sort("_row")
    logit, logit_info = fit_logit(frame)
    frame = frame.with_columns(pl.Series("logit", logit, dtype=pl.Float64)).drop("_row")
    frame = frame.with_columns(pl.col("member", "cowwarid", "aggressor", "target")
                               .cast(pl.Int64)).select(PREDICTION_COLUMNS)
    missing = pl.DataFrame(unpredicted, schema={
        "war": pl.String, "cowwarid": pl.Int64, "year": pl.Int64, "atopid": pl.Int64,
        "split": pl.String, "observed": pl.Int64, "reason": pl.String})
    scores = scores_table(frame)
    evidence = None
    if deterrence_step:
        say(f"deterrence evidence: worlds {FIRST_YEAR}-{LAST_YEAR} every {deterrence_step} "
            f"year(s), the engine at commitment_scale = {theta:.4f}")
        evidence = deterrence_evidence(
            {**paths, "disputes": _path(data_dir, "disputes")},
            _abbreviations(data_dir), majors, rivals, split=split,
            years=list(range(FIRST_YEAR, LAST_YEAR + 1, deterrence_step)),
            transform=(None if theta == 1.0 else
                       (lambda s: apply_parameter(s, "commitment_scale", theta))),
            seed=seed, progress=say)
    info = {"coding": coding, "split": split, "trials": trials, "seed": seed,
            "commitments": commitments.height,
            "per_split": {s: int((commitments["split"] == s).sum()) for s in ("train", "test")},
            "predicted": frame.height, "unpredicted": missing.height,
            "crises": len(all_keys), "fit": fit_info, "logit": logit_info,
            "citations": list(CITATIONS)}
    if evidence is None:
        return Backtest(frame, missing, scores, info)
    info["deterrence"] = evidence.info
    info["citations"] += [c for c in evidence.info["citations"] if c not in info["citations"]]
    return Backtest(frame, missing, scores, info, evidence.table, evidence.dyads)


_ABBREVIATIONS: dict[Path, dict[int, str]] = {}


def _abbreviations(data_dir: Path) -> dict[int, str]:
    """COW code -> abbreviation, from the capabilities file (read once per process)."""
    path = _path(data_dir, "capabilities")
    if path not in _ABBREVIATIONS:
        frame = _read(path).select(pl.col("ccode").cast(pl.Int64), "stateabb").unique()
        _ABBREVIATIONS[path] = dict(frame.iter_rows())
    return _ABBREVIATIONS[path]


def _abb(code: int, data_dir: Path) -> str:
    return _abbreviations(data_dir).get(code, str(code))


def format_scores(scores: pl.DataFrame, info: dict) -> str:
    """The scores as a terminal table, then a plain reading of the test split."""

    def cell(x) -> str:
        return "—" if x is None else f"{x:.3f}"

    lines = [f"{'model':<10} {'split':<6} {'n':>4} {'brier':>7} {'log_loss':>9} {'auc':>6}"]
    for r in scores.iter_rows(named=True):
        lines.append(f"{r['model']:<10} {r['split']:<6} {r['n']:>4} {cell(r['brier']):>7} "
                     f"{cell(r['log_loss']):>9} {cell(r['auc']):>6}")
    fit = info["fit"]
    per = info["per_split"]
    lines.append("")
    lines.append(f"{info['commitments']} coded commitments ({info['coding']} coding; train "
                 f"{per['train']}, test {per['test']}): {info['predicted']} predicted, "
                 f"{info['unpredicted']} not (reasons in unpredicted.parquet).")
    how = fit.get("how", "")
    lines.append(f"commitment_scale = {fit['value']:.4f} ({how}; train rate "
                 f"{fit['target_train_rate']:.3f}); logit: {info['logit']['method']}.")
    test = {r["model"]: r for r in scores.filter(pl.col("split") == "test").iter_rows(named=True)}
    engine, base, logit = test.get("engine"), test.get("base_rate"), test.get("logit")
    if engine and base and logit and engine["n"]:
        def verdict(a: dict, b: dict, name: str) -> str:
            better = a["brier"] < b["brier"]
            return (f"{'better' if better else 'worse'} than {name} "
                    f"(Brier {a['brier']:.3f} vs {b['brier']:.3f})")

        lines.append(f"Reading (test split, n = {engine['n']}): the engine is "
                     f"{verdict(engine, base, 'the train base rate')} and "
                     f"{verdict(engine, logit, 'the logit')}; its AUC is "
                     f"{cell(engine['auc'])} (0.5 = no discrimination). With this few test "
                     f"commitments differences of a few hundredths are noise.")
    return "\n".join(lines)
