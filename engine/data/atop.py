"""Build a scenario of a real year from ATOP alliances, COW capabilities and GML disputes.

``crisis import atop --year Y`` (or ``--date YYYY-MM-DD``; see :mod:`engine.cli.importing`)
calls :func:`import_world`, which reads the public datasets from user-given paths and writes an
ordinary, editable scenario file (design §4).  Every rule below is also written into the
generated file's header.

States (COW National Material Capabilities, ``cinc-polity.csv``)
    Every state with a row for ``Y``.  A year past the file's last year (CINC ends in 2012) is
    an error naming that limit: ``--capabilities`` then takes a user CSV with rows for the
    later years and the same columns (``stateabb``, ``ccode``, ``year`` and the measure's
    columns: ``cinc``, or ``milex`` / ``milper``).  ``id`` is the COW abbreviation
    ``stateabb``; ATOP's COW codes map to it through the ``ccode`` ↔ ``stateabb`` pairs of the
    same file; ``name`` is the COW state name where :mod:`engine.data.names` has it, else the
    abbreviation.  ``capability`` follows ``--capability``: ``cinc`` (default; it counts
    population, so China outweighs Japan in 1939), ``milex`` or ``milper`` (the state's share
    of that year's total over all states of the file) or ``military`` (the mean of the milex
    and milper shares; where one is missing, the other).  A missing or zero value gets the
    floor :data:`CINC_FLOOR` (the engine needs capability > 0).  A ``cinc`` that is not a
    share in [0, 1] (negative, above 1, inf, NaN), a negative ``milex``/``milper`` and a
    ``stateabb`` that cannot be a state id (1–64 letters, digits, ``_`` or ``-``) are errors
    naming the file, row and column, as is any whole-number column holding a fraction, text or
    a number beyond ±2^53.  ``commitment`` = 0.5, ``stability`` = 1, ``free_riding`` = 0 are
    assumptions.

Membership (ATOP v4.01 member level, phases respected)
    An alliance is in force in ``Y`` when ``begyr ≤ Y`` and (``endyr`` = 0 or ``endyr ≥ Y``); a
    member row when ``yrent ≤ Y`` and (``yrexit`` = 0 or ``yrexit ≥ Y``).  Each row belongs to
    one ``phase`` (membership and obligations change between phases); when two phases of one
    member both touch ``Y`` the later phase wins, so obligations are those of the phase in force
    at the end of its overlap.

    Same-day succession: when, in one alliance, member X leaves on the day member Z enters, and X
    leaves the state system in ``Y`` (a CINC row for ``Y`` but none for ``Y + 1``), X is taken as
    merged into Z (GFR and GDR into GMY and YAR and YPR into YEM, all 1990): X is dropped from the
    world of ``Y`` and from all its alliances, so united Germany is not counted twice.  Without
    this rule NATO would have 17 members in 1990.

    ``--date YYYY-MM-DD`` (in year ``Y``) narrows the member rows to those in force that day:
    entry day ≤ date and (``yrexit`` = 0 or exit day ≥ date; the exit day itself counts).  A
    missing (0) entry month or day counts as January / the 1st, a missing exit month or day as
    December / the 31st, so a row dated only by its years is in force throughout them, as
    under the year rule.  The Anglo-Polish alliance (ATOP 2440) thus enters on 6 April 1939 and
    is in force on 1 September, not in January.  A same-day succession applies only from its
    day on.

    Members without a CINC row in the CINC year (not a COW state then, or unknown code) are
    dropped; alliances left with fewer than 2 members are dropped.  Both are listed in the header.

Obligation (one per alliance in the scenario)
    Each member row has 0/1 columns ``defense offense neutral nonagg consul``: the promises that
    member makes to the others.  A member's kind is the strongest it holds:
    ``defense`` > ``neutrality`` (neutral) > ``nonaggression`` (nonagg) > ``consultation``
    (consul); an offense-only pledge maps to ``consultation`` (an offensive pact does not cover a
    target, design §2 step 2); no obligation at all makes the member a pure beneficiary.

    No ATOP alliance is ``collective_security``: ATOP codes defense, offense, neutrality,
    non-aggression and consultation pledges, and the League of Nations and the United Nations
    are not ATOP alliances (write them by hand, as ``configs/league-abyssinia-1935.toml`` and
    ``configs/unsc-veto.toml`` do).  Defense pacts are imported as ``defense``, a pact against
    outside attack: the compiler, not the importer, leaves a defense pact out of a crisis whose
    aggressor is one of its members (design §8), so a dispute target inside the aggressor's own
    pact (e.g. the Warsaw Pact) is kept as a target but meets no consultation of that pact.

Asymmetric pacts (member kinds differ, ATOP ``asymm``/``obvary``)
    ``ATOP<id>`` gets the strongest kind K and *all* members in force: the pledgers and the
    members they pledge to (an ATOP member-level obligation is owed to the other members).
    When K is defense the pledge stays directed: ``protected`` lists the members that hold no
    defense pledge themselves, so only they are covered by ``ATOP<id>``; several pledgers also
    defend each other through ``ATOP<id>-mutual``.  The members holding only a weaker kind k are
    in addition kept among themselves as ``ATOP<id>-<k>`` when there are at least two of them.
    Kept: who defends whom (e.g. US–Japan 1951: the US defends Japan, not the reverse).  Lost:
    when a protected member is attacked, the other protected members still sit in the
    consultation (and count as allies in deterrence); the direction of non-defense kinds.

Names
    Well-known alliances get their common name (NATO, Warsaw Pact, Anglo-Polish alliance, …;
    :data:`engine.data.names.ALLIANCE_NAMES`, by ATOP id) as a comment above them; their ids
    stay ``ATOP<id>`` (the scenario schema has no alliance name field).

integration (ATOP alliance level; missing values count as 0)
    mean of five treaty-design components, in [0, 1]:
    ``intcom`` (integrated military command, 0/1), ``milcon / 3`` (military contact 0–3),
    ``base > 0`` (bases / troop placement), ``organ1 > 0`` (formal organization),
    ``subord > 0`` (subordination of forces).

bindingness (ATOP alliance level)
    ``clip(1 − 0.3·conditio − 0.2·[renounce > 0], 0.1, 1)``: conditional obligations (limited to a
    location, adversary or circumstance, e.g. NATO's North Atlantic area) apply to only part of
    the crises the engine draws; a treaty that names conditions for renouncing it has an escape
    clause.  The weights are assumptions.

Decision and timing
    ``unanimity``, ``round_days`` 2.0, ``max_rounds`` 5, ``intel_sharing`` 0 (assumptions).

Aggressors
    ``--aggressor CODE`` (COW abbreviations): weight 1, resolve 1, targets the 10 most capable
    states that share no alliance (of any kind) with it, weight 1 each.  With a disputes file
    (GML MID dyad-years) and no ``--aggressor``: the 10 states that originated the most
    militarized disputes in ``Y−10 … Y−1`` (distinct ``dispnum`` where the state is an originator
    on side A: ``sidea1 = 1``, ``orig1 = 1``), weight = that count, each targeting the originators
    of side B of those disputes (``sidea2 = 0``, ``orig2 = 1``) weighted by the number of
    disputes.  With both, the named aggressors keep weight 1 and take their dispute targets
    (falling back to the 10 most capable non-allies).  After the last dispute year the window is
    the last ten years with data.  ``attack_mix = {conventional = 1.0}``, severity 1.

    ``--aggressor`` and ``--target`` take COW abbreviations or numeric COW codes.  ``--target``
    restricts every aggressor's targets to the named states (aggressors left without one are
    dropped); named aggressors with named targets attack exactly those, weight 1 each.

    ``--dyads disputes|rivalries|all`` (the default without it is the rule above) takes the
    aggressor → target pairs of the ``--window`` years before ``Y`` (default 10): the directed
    GML MID disputes, side A (the side whose state took the first militarized action: the
    challenger; ``revstate`` is not used) → side B, weight = distinct disputes of the pair; or
    the Thompson & Dreyer strategic rivalries active in the window, both directions, weight 1
    each; ``all`` sums both.  Every state with a pair is an aggressor, weight = the sum of its
    pairs' weights; ``--aggressor`` / ``--target`` restrict them (a named aggressor without
    pairs falls back as above).  See :func:`read_dyads`.
"""

from __future__ import annotations

import datetime
import json
import math
import textwrap
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from ..errors import ConfigError, UserError
from ..model.config import scenario_from_dict
from .names import alliance_name, state_name

CINC_FLOOR = 1e-6
# COW abbreviations become state ids (engine.model.config.Identifier)
STATE_ABBREVIATION = r"^[A-Za-z0-9_-]{1,64}$"
# whole numbers read from the files must be exact in float64 (years, codes, ids)
LARGEST_WHOLE_NUMBER = 2**53
DEFAULT_COMMITMENT = 0.5
ROUND_DAYS = 2.0
MAX_ROUNDS = 5
TOP_TARGETS = 10
TOP_INITIATORS = 10
DISPUTE_WINDOW_YEARS = 10
CONDITIO_WEIGHT = 0.3
RENOUNCE_WEIGHT = 0.2
BINDINGNESS_FLOOR = 0.1

# Strongest first; the rank is what member rows are compared by (0 = no obligation).
OBLIGATION_KINDS = ("defense", "neutrality", "nonaggression", "consultation")
_RANK = {"defense": 4, "neutrality": 3, "nonaggression": 2, "consultation": 1, "none": 0}
_KIND_OF_RANK = {rank: kind for kind, rank in _RANK.items()}
OBLIGATION_COLUMNS = ("defense", "offense", "neutral", "nonagg", "consul")

ALLIANCE_COLUMNS = ("atopid", "begyr", "endyr", "conditio", "renounce", "intcom", "milcon",
                    "base", "organ1", "subord")
MEMBER_COLUMNS = ("atopid", "member", "yrent", "moent", "dayent", "yrexit", "moexit", "dayexit",
                  "phase", *OBLIGATION_COLUMNS)
CINC_COLUMNS = ("stateabb", "ccode", "year", "cinc")
DISPUTE_COLUMNS = ("dispnum", "ccode1", "ccode2", "year", "sidea1", "sidea2", "orig1", "orig2")
DYAD_DISPUTE_COLUMNS = ("dispnum", "ccode1", "ccode2", "year", "sidea1", "sidea2")
RIVALRY_COLUMNS = ("ccode1", "ccode2", "styear", "endyear")
# --capability: the capability-file columns each measure reads
CAPABILITY_MEASURES = {"cinc": ("cinc",), "milex": ("milex",), "milper": ("milper",),
                       "military": ("milex", "milper")}
DYAD_SOURCES = ("disputes", "rivalries", "all")

CITATIONS = (
    "ATOP v4.01: Leeds, Ritter, Mitchell & Long (2002), Alliance Treaty Obligations and "
    "Provisions, 1815-1944, International Interactions 28(3): 237-260.",
    "COW National Material Capabilities (CINC): Singer, Bremer & Stuckey (1972), Capability "
    "Distribution, Uncertainty, and Major Power War, 1820-1965.",
    "GML MID 2.03: Gibler, Miller & Little (2016), An Analysis of the Militarized Interstate "
    "Dispute (MID) Dataset, 1816-2001, International Studies Quarterly 60(4): 719-730.",
)
RIVALRY_CITATION = ("Strategic rivalries: Thompson & Dreyer (2012), Handbook of International "
                    "Rivalries, 1494-2010, CQ Press.")


# ---- reading ---------------------------------------------------------------------------------

def _read_csv(path: str | Path, columns: Sequence[str], what: str) -> pl.DataFrame:
    """All columns as strings (``NA``/empty = null); every needed column must be there."""
    path = Path(path)
    try:
        frame = pl.read_csv(path, infer_schema_length=0, null_values=["", "NA"])
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (the {what} file)") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not the {what} file") from None
    except (OSError, UnicodeDecodeError, ValueError, pl.exceptions.PolarsError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{path}: cannot read the {what} file: {first}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)} "
                        f"(is this the {what} file?)")
    return frame


def _integers(frame: pl.DataFrame, path: Path, required: Iterable[str],
              optional: Iterable[str] = ()) -> pl.DataFrame:
    """Cast columns to Int64.  ``required`` must hold an integer in every row; ``optional``
    columns may be empty (→ null) but must not hold text."""
    exprs = []
    for name, must in [(c, True) for c in required] + [(c, False) for c in optional]:
        raw = frame[name]
        number = raw.cast(pl.Float64, strict=False)
        bad = (raw.is_not_null() & (number.is_null() | ~number.is_finite()
                                    | (number.abs() >= LARGEST_WHOLE_NUMBER)
                                    | (number.round(0) != number))).fill_null(True)
        if must:
            bad = bad | raw.is_null()
        if bad.any():
            row = int(bad.arg_max())
            value = raw[row]
            raise UserError(f"{path}: row {row + 2}, column {name!r}: needs a whole number "
                            f"(below 2^53 in size), got "
                            f"{'nothing' if value is None else repr(value)}")
        exprs.append(number.cast(pl.Int64).alias(name))
    return frame.with_columns(exprs)


@dataclass(frozen=True)
class Sources:
    """The datasets, read and typed."""

    alliances_path: Path
    members_path: Path
    capabilities_path: Path
    alliances: pl.DataFrame
    members: pl.DataFrame
    cinc: pl.DataFrame
    abbreviations: dict[int, str]
    cinc_first: int
    cinc_last: int
    atop_first: int
    atop_last: int
    measure: str = "cinc"

    def cinc_year(self, year: int) -> int:
        """The capability year of ``year`` (itself); a UserError outside the data, naming the
        limit (CINC ends in 2012: a later year needs a user CSV with its rows)."""
        if year < self.cinc_first:
            raise UserError(f"{self.capabilities_path}: year {year} is not covered: CINC starts "
                            f"in {self.cinc_first}")
        if year > self.cinc_last:
            raise UserError(
                f"{self.capabilities_path}: year {year} is past the capability data, which "
                f"ends in {self.cinc_last} (COW CINC ends in 2012); give --capabilities a CSV "
                f"with rows for {year} (columns stateabb, ccode, year and "
                f"{' and '.join(CAPABILITY_MEASURES[self.measure])})")
        if self.cinc.filter(pl.col("year") == year).is_empty():
            raise UserError(f"{self.capabilities_path}: no CINC rows for year {year}")
        return year

    def check_atop_year(self, year: int) -> None:
        if not self.atop_first <= year <= self.atop_last:
            raise UserError(f"{self.members_path}: year {year} is not covered: ATOP codes "
                            f"alliances from {self.atop_first} to {self.atop_last}")


def read_sources(alliances_csv: str | Path, members_csv: str | Path,
                 capabilities_csv: str | Path, *, capability: str = "cinc") -> Sources:
    """Read the ATOP alliance- and member-level files and ``cinc-polity.csv``.

    ``capability`` (see :data:`CAPABILITY_MEASURES`) picks the columns the capabilities file
    must have and adds a column ``capability``: ``cinc`` as is; ``milex`` / ``milper`` as shares
    of the year's total over all states of the file; ``military`` the mean of the two shares
    (the one available where the other is missing).  Missing values stay missing (null)."""
    if capability not in CAPABILITY_MEASURES:
        raise UserError(f"capability must be one of {', '.join(CAPABILITY_MEASURES)}, "
                        f"got {capability!r}")
    a_path, m_path, c_path = Path(alliances_csv), Path(members_csv), Path(capabilities_csv)
    alliances = _integers(_read_csv(a_path, ALLIANCE_COLUMNS, "ATOP alliance-level"), a_path,
                          ("atopid", "begyr", "endyr"),
                          ("conditio", "renounce", "intcom", "milcon", "base", "organ1", "subord"))
    members = _integers(_read_csv(m_path, MEMBER_COLUMNS, "ATOP member-level"), m_path,
                        ("atopid", "member", "yrent", "yrexit", "phase"),
                        ("moent", "dayent", "moexit", "dayexit", *OBLIGATION_COLUMNS))
    members = members.with_columns(pl.col(*OBLIGATION_COLUMNS, "moent", "dayent", "moexit",
                                          "dayexit").fill_null(0))
    needed = ("stateabb", "ccode", "year", *CAPABILITY_MEASURES[capability])
    cinc = _read_csv(c_path, needed, "COW capabilities (cinc-polity.csv)")
    cinc = _integers(cinc, c_path, ("ccode", "year"))
    for column in ("cinc", "milex", "milper"):
        if column not in cinc.columns:
            cinc = cinc.with_columns(pl.lit(None, dtype=pl.Float64).alias(column))
            continue
        raw = cinc[column]
        number = raw.cast(pl.Float64, strict=False)
        top = 1 if column == "cinc" else math.inf
        bad = (raw.is_not_null() & (number.is_null() | ~number.is_finite() | (number < 0)
                                    | (number > top))).fill_null(True)
        if bad.any():
            row = int(bad.arg_max())
            want = ("a share of world capability in [0, 1]" if column == "cinc"
                    else "a finite number >= 0")
            raise UserError(f"{c_path}: row {row + 2}, column {column!r}: needs {want} "
                            f"(0 or empty when missing), got {raw[row]!r}")
        cinc = cinc.with_columns(number.alias(column))
    cinc = cinc.with_columns(_capability_expr(capability).alias("capability"))
    if cinc.is_empty() or alliances.is_empty() or members.is_empty():
        empty = c_path if cinc.is_empty() else a_path if alliances.is_empty() else m_path
        raise UserError(f"{empty}: the file has no data rows")
    if cinc["stateabb"].is_null().any():
        row = int(cinc["stateabb"].is_null().arg_max())
        raise UserError(f"{c_path}: column 'stateabb' is empty in row {row + 2}")
    odd = ~cinc["stateabb"].str.contains(STATE_ABBREVIATION)
    if odd.any():
        row = int(odd.arg_max())
        raise UserError(f"{c_path}: row {row + 2}, column 'stateabb': {cinc['stateabb'][row]!r} "
                        f"cannot be a state id (1-64 letters, digits, '_' or '-')")
    abbreviations: dict[int, str] = {}
    for code, abb in cinc.select("ccode", "stateabb").unique(maintain_order=True).iter_rows():
        if code in abbreviations and abbreviations[code] != abb:
            raise UserError(f"{c_path}: COW code {code} has two abbreviations "
                            f"({abbreviations[code]!r}, {abb!r})")
        abbreviations[code] = abb
    atop_years = [alliances["begyr"].min(), members["yrent"].min()]
    atop_last = max(alliances["begyr"].max(), alliances["endyr"].max(), members["yrent"].max(),
                    members["yrexit"].max())
    return Sources(a_path, m_path, c_path, alliances, members, cinc, abbreviations,
                   int(cinc["year"].min()), int(cinc["year"].max()), int(min(atop_years)),
                   int(atop_last), capability)


def _capability_expr(measure: str) -> pl.Expr:
    """The capability of a state-year under ``measure``; null where its data are missing."""
    def share(column: str) -> pl.Expr:
        value = pl.col(column).fill_null(0.0)
        total = value.sum().over("year")
        return pl.when(pl.col(column).is_null() | (total <= 0)).then(None) \
            .otherwise(value / total)
    if measure == "cinc":
        return pl.col("cinc")
    if measure in ("milex", "milper"):
        return share(measure)
    return pl.mean_horizontal(share("milex"), share("milper"))  # nulls are skipped


# ---- mappings --------------------------------------------------------------------------------

def obligation_rank_expr() -> pl.Expr:
    """Rank of a member row's strongest obligation (4 defense … 1 consultation, 0 none)."""
    return (pl.when(pl.col("defense") == 1).then(4)
            .when(pl.col("neutral") == 1).then(3)
            .when(pl.col("nonagg") == 1).then(2)
            .when((pl.col("consul") == 1) | (pl.col("offense") == 1)).then(1)
            .otherwise(0))


def strongest_obligation(defense: int = 0, offense: int = 0, neutral: int = 0, nonagg: int = 0,
                         consul: int = 0) -> str:
    """The scenario obligation for one set of ATOP 0/1 obligations ("none" if there are none)."""
    if defense:
        return "defense"
    if neutral:
        return "neutrality"
    if nonagg:
        return "nonaggression"
    if consul or offense:
        return "consultation"
    return "none"


def _num(value) -> float:
    return 0.0 if value is None or (isinstance(value, float) and math.isnan(value)) else value


def integration_from_design(intcom=0, milcon=0, base=0, organ1=0, subord=0) -> float:
    """mean(intcom, milcon/3, [base > 0], [organ1 > 0], [subord > 0]) in [0, 1]; None = 0."""
    parts = (min(max(_num(intcom), 0), 1), min(max(_num(milcon), 0), 3) / 3.0,
             float(_num(base) > 0), float(_num(organ1) > 0), float(_num(subord) > 0))
    return min(1.0, max(0.0, sum(parts) / len(parts)))


def bindingness_from_design(conditio=0, renounce=0) -> float:
    """clip(1 − 0.3·conditio − 0.2·[renounce > 0], 0.1, 1); None = 0."""
    value = (1.0 - CONDITIO_WEIGHT * float(_num(conditio) > 0)
             - RENOUNCE_WEIGHT * float(_num(renounce) > 0))
    return min(1.0, max(BINDINGNESS_FLOOR, value))


def alliance_design(sources: Sources) -> pl.DataFrame:
    """Per ``atopid``: the treaty-design fields and the derived integration and bindingness."""
    rows = []
    for r in sources.alliances.iter_rows(named=True):
        rows.append({
            "atopid": r["atopid"], "begyr": r["begyr"], "endyr": r["endyr"],
            "conditio": r["conditio"], "renounce": r["renounce"], "intcom": r["intcom"],
            "milcon": r["milcon"], "base": r["base"], "organ1": r["organ1"],
            "subord": r["subord"],
            "integration": integration_from_design(r["intcom"], r["milcon"], r["base"],
                                                   r["organ1"], r["subord"]),
            "bindingness": bindingness_from_design(r["conditio"], r["renounce"]),
        })
    return pl.DataFrame(rows).unique("atopid", keep="first", maintain_order=True)


# ---- membership ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Membership:
    """Member rows in force in a year, and the states merged away that year."""

    rows: pl.DataFrame
    merged: dict[str, str]  # predecessor abbreviation -> successor abbreviation


def _day_key(year: pl.Expr, month: pl.Expr, day: pl.Expr, missing_month: int,
             missing_day: int) -> pl.Expr:
    """``year·10000 + month·100 + day`` with 0 (missing) month/day replaced."""
    month = pl.when(month <= 0).then(missing_month).otherwise(month)
    day = pl.when(day <= 0).then(missing_day).otherwise(day)
    return year * 10000 + month * 100 + day


def _in_force_on(day: datetime.date) -> pl.Expr:
    """Member rows in force on ``day``: entered on or before it and (still a member, or left
    on or after it).  A missing entry month/day counts as January / the 1st, a missing exit
    month/day as December / the 31st, so a row with dates known only to the year is in force
    on every day of its years, as under the year rule."""
    key = day.year * 10000 + day.month * 100 + day.day
    entry = _day_key(pl.col("yrent"), pl.col("moent"), pl.col("dayent"), 1, 1)
    leave = _day_key(pl.col("yrexit"), pl.col("moexit"), pl.col("dayexit"), 12, 31)
    return (entry <= key) & ((pl.col("yrexit") == 0) | (leave >= key))


def _membership(year: int, sources: Sources, date: datetime.date | None = None) -> Membership:
    sources.check_atop_year(year)
    al = sources.alliances.filter(
        (pl.col("begyr") <= year) & ((pl.col("endyr") == 0) | (pl.col("endyr") >= year))
    ).select("atopid").unique()
    touching = (sources.members
                .filter((pl.col("yrent") <= year)
                        & ((pl.col("yrexit") == 0) | (pl.col("yrexit") >= year)))
                .join(al, on="atopid", how="semi"))
    in_force = touching if date is None else touching.filter(_in_force_on(date))
    rows = (in_force.sort("atopid", "member", "phase", "yrent", "moent", "dayent")
            .unique(["atopid", "member"], keep="last", maintain_order=True))

    # Same-day succession (see the module docstring).
    in_year = set(sources.cinc.filter(pl.col("year") == year)["ccode"].to_list())
    next_year = (set(sources.cinc.filter(pl.col("year") == year + 1)["ccode"].to_list())
                 if year + 1 <= sources.cinc_last else None)
    merged: dict[str, str] = {}
    drop_codes: set[int] = set()
    if next_year is not None:
        # Every row touching the year (before the later phase wins): a successor may enter
        # in one phase and continue in the next within the same year (GMY in ATOP 3740).
        leaving = touching.filter(pl.col("yrexit") == year).select(
            "atopid", pl.col("member").alias("predecessor"), pl.col("yrexit").alias("y"),
            pl.col("moexit").alias("m"), pl.col("dayexit").alias("d"))
        entering = touching.select("atopid", pl.col("member").alias("successor"),
                                   pl.col("yrent").alias("y"), pl.col("moent").alias("m"),
                                   pl.col("dayent").alias("d"))
        # A member that also leaves on that day is only changing phase, not succeeding.
        continuing = leaving.rename({"predecessor": "successor"})
        pairs = (leaving.join(entering, on=["atopid", "y", "m", "d"])
                 .filter(pl.col("predecessor") != pl.col("successor"))
                 .join(continuing, on=["atopid", "successor", "y", "m", "d"], how="anti")
                 .sort("predecessor", "successor"))
        if date is not None:  # before the succession day both states stay
            key = date.year * 10000 + date.month * 100 + date.day
            pairs = pairs.filter(pl.col("y") * 10000 + pl.col("m") * 100 + pl.col("d") <= key)
        for pred, succ in pairs.select("predecessor", "successor").iter_rows():
            if pred in in_year and pred not in next_year:
                drop_codes.add(pred)
                merged.setdefault(sources.abbreviations.get(pred, str(pred)),
                                  sources.abbreviations.get(succ, str(succ)))
    rows = rows.filter(~pl.col("member").is_in(list(drop_codes)))

    abb = pl.DataFrame({"member": list(sources.abbreviations),
                        "stateabb": list(sources.abbreviations.values())},
                       schema={"member": pl.Int64, "stateabb": pl.String})
    rank = obligation_rank_expr()
    rows = (rows.join(abb, on="member", how="left")
            .with_columns(rank.alias("rank"))
            .with_columns(pl.col("rank").replace_strict(_KIND_OF_RANK, return_dtype=pl.String)
                          .alias("obligation"))
            .select("atopid", "member", "stateabb", "phase", "yrent", "yrexit",
                    *OBLIGATION_COLUMNS, "obligation", "rank")
            .sort("atopid", "member"))
    return Membership(rows, merged)


def alliances_in_force(year: int, alliances_csv: str | Path, members_csv: str | Path,
                       capabilities_csv: str | Path) -> pl.DataFrame:
    """ATOP member rows in force in ``year``, one per (alliance, member).

    Columns: ``atopid``, ``member`` (COW code), ``stateabb`` (null if the code has no
    abbreviation), ``phase``, ``yrent``, ``yrexit``, the 0/1 obligations ``defense offense
    neutral nonagg consul``, ``obligation`` (the member's strongest kind, or "none") and its
    ``rank``.  Same-day successions are applied (module docstring); members are not filtered by
    the CINC year.
    """
    sources = read_sources(alliances_csv, members_csv, capabilities_csv)
    return _membership(year, sources).rows


# ---- disputes --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DisputeRecord:
    """Who originated how many disputes against whom in a window of years."""

    first_year: int
    last_year: int
    note: str
    initiators: dict[str, int]               # abbreviation -> distinct disputes originated
    targets: dict[str, dict[str, int]]       # abbreviation -> target abbreviation -> disputes


def read_disputes(disputes_csv: str | Path, year: int, abbreviations: dict[int, str],
                  world: set[str] | None = None) -> DisputeRecord:
    """Originators (side A) and their side-B targets in ``year − 10 … year − 1`` (see module
    docstring).  ``world`` restricts both to these abbreviations."""
    path = Path(disputes_csv)
    frame = _read_csv(path, DISPUTE_COLUMNS, "GML MID dyad-year disputes")
    frame = _integers(frame, path, ("dispnum", "ccode1", "ccode2", "year"),
                      ("sidea1", "sidea2", "orig1", "orig2"))
    if frame.is_empty():
        raise UserError(f"{path}: the file has no data rows")
    data_first, data_last = int(frame["year"].min()), int(frame["year"].max())
    end = min(year, data_last + 1)
    first, last = end - DISPUTE_WINDOW_YEARS, end - 1
    note = ""
    if end != year:
        note = (f"the disputes file ends in {data_last}: aggressors come from {first}-{last}, "
                f"the last ten years with data, not {year - DISPUTE_WINDOW_YEARS}-{year - 1}")
    sel = frame.filter(pl.col("year").is_between(first, last) & (pl.col("sidea1") == 1)
                       & (pl.col("orig1") == 1) & (pl.col("sidea2") == 0)
                       & (pl.col("orig2") == 1) & (pl.col("ccode1") != pl.col("ccode2")))
    if first > data_last or last < data_first or sel.is_empty():
        raise UserError(f"{path}: no militarized disputes originated in {first}-{last}; "
                        f"name aggressors with --aggressor instead")
    initiators: dict[str, int] = {}
    targets: dict[str, dict[str, int]] = {}
    pairs = sel.select("dispnum", "ccode1", "ccode2").unique()
    for code1, group in pairs.group_by("ccode1"):
        a = abbreviations.get(int(code1[0]))
        if a is None or (world is not None and a not in world):
            continue
        initiators[a] = group["dispnum"].n_unique()
        counts: dict[str, int] = {}
        for code2, n in group.group_by("ccode2").agg(pl.col("dispnum").n_unique()).iter_rows():
            t = abbreviations.get(int(code2))
            if t is None or t == a or (world is not None and t not in world):
                continue
            counts[t] = counts.get(t, 0) + int(n)
        targets[a] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return DisputeRecord(first, last, note, initiators, targets)


@dataclass(frozen=True)
class DyadRecord:
    """Directed aggressor → target pairs of a window of years, weighted by count."""

    first_year: int
    last_year: int
    source: str                               # disputes | rivalries | all
    notes: tuple[str, ...]
    pairs: dict[str, dict[str, float]]        # aggressor -> target -> weight
    detail: dict[tuple[str, str], str]        # (aggressor, target) -> "2 dispute(s), 1 rivalry"


def read_dyads(source: str, year: int, abbreviations: dict[int, str], *,
               disputes_csv: str | Path | None = None, rivalries_csv: str | Path | None = None,
               window: int = DISPUTE_WINDOW_YEARS,
               world: set[str] | None = None) -> DyadRecord:
    """Directed pairs of ``year − window … year − 1`` (``--dyads``, see the module docstring).

    ``disputes``: every GML MID dyad-year with ``sidea1 = 1`` and ``sidea2 = 0``: side A (the
    side whose state took the first militarized action, the challenger) → side B, originators
    and joiners alike; the weight of a pair is its number of distinct disputes (``dispnum``).
    ``revstate`` is not used: a revisionist can sit on side B.  ``rivalries``: every
    Thompson–Dreyer strategic rivalry active in the window (``styear ≤ year − 1`` and
    ``endyear ≥ year − window``; 2010 = ongoing, so it stays active later), both directions,
    weight 1 per rivalry.  ``all``: the sum of both weights."""
    if source not in DYAD_SOURCES:
        raise UserError(f"dyads must be one of {', '.join(DYAD_SOURCES)}, got {source!r}")
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise UserError(f"--window must be a whole number of years >= 1, got {window!r}")
    first, last = year - window, year - 1
    counts: dict[tuple[str, str], list[int]] = {}   # pair -> [disputes, rivalries]
    notes: list[str] = []

    def add(c1: int, c2: int, slot: int, n: int) -> None:
        a, t = abbreviations.get(int(c1)), abbreviations.get(int(c2))
        if a is None or t is None or a == t:
            return
        if world is not None and (a not in world or t not in world):
            return
        counts.setdefault((a, t), [0, 0])[slot] += n

    if source in ("disputes", "all"):
        if disputes_csv is None:
            raise UserError(f"--dyads {source} needs --disputes FILE (GML MID dyad-years)")
        path = Path(disputes_csv)
        frame = _integers(_read_csv(path, DYAD_DISPUTE_COLUMNS, "GML MID dyad-year disputes"),
                          path, ("dispnum", "ccode1", "ccode2", "year"), ("sidea1", "sidea2"))
        if frame.is_empty():
            raise UserError(f"{path}: the file has no data rows")
        data_last = int(frame["year"].max())
        if last > data_last:
            notes.append(f"the disputes file ends in {data_last}: dispute pairs cover "
                         f"{first}-{data_last} only")
        sel = (frame.filter(pl.col("year").is_between(first, last) & (pl.col("sidea1") == 1)
                            & (pl.col("sidea2") == 0))
               .group_by("ccode1", "ccode2").agg(pl.col("dispnum").n_unique().alias("n"))
               .sort("ccode1", "ccode2"))
        for c1, c2, n in sel.iter_rows():
            add(c1, c2, 0, int(n))
    if source in ("rivalries", "all"):
        if rivalries_csv is None:
            raise UserError(f"--dyads {source} needs --rivalries FILE "
                            f"(Thompson & Dreyer strategic rivalries)")
        path = Path(rivalries_csv)
        frame = _integers(_read_csv(path, RIVALRY_COLUMNS, "strategic rivalries"), path,
                          RIVALRY_COLUMNS)
        if frame.is_empty():
            raise UserError(f"{path}: the file has no data rows")
        data_last = int(frame["endyear"].max())
        ongoing = pl.when(pl.col("endyear") >= data_last).then(10**6) \
            .otherwise(pl.col("endyear"))
        active = frame.filter((pl.col("styear") <= last) & (ongoing >= first))
        for c1, c2 in active.select("ccode1", "ccode2").iter_rows():
            add(c1, c2, 1, 1)
            add(c2, c1, 1, 1)
    if not counts:
        raise UserError(f"no {source} pairs in {first}-{last} among the states of this world; "
                        f"name aggressors and targets with --aggressor and --target instead")
    pairs: dict[str, dict[str, float]] = {}
    detail: dict[tuple[str, str], str] = {}
    for (a, t), (nd, nr) in sorted(counts.items()):
        pairs.setdefault(a, {})[t] = float(nd + nr)
        parts = ([f"{nd} dispute(s)"] if nd else []) + ([f"{nr} rivalry"] if nr else [])
        detail[(a, t)] = ", ".join(parts)
    pairs = {a: dict(sorted(ts.items(), key=lambda kv: (-kv[1], kv[0])))
             for a, ts in pairs.items()}
    return DyadRecord(first, last, source, tuple(notes), pairs, detail)


# ---- the world -------------------------------------------------------------------------------

@dataclass
class _Alliance:
    id: str
    atopid: int
    obligation: str
    members: list[str]
    integration: float
    bindingness: float
    comment: list[str] = field(default_factory=list)
    protected: list[str] | None = None  # directed defense pledge: who is covered


@dataclass
class _Aggressor:
    state: str
    weight: float
    targets: dict[str, float]
    comment: str
    target_notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportedWorld:
    """The scenario text and what went into it."""

    toml: str
    year: int
    cinc_year: int
    states: int
    alliances: int
    aggressors: int
    notes: tuple[str, ...]
    date: str | None = None        # YYYY-MM-DD when members were taken in force on that day
    capability: str = "cinc"       # the --capability measure

    def summary(self) -> str:
        cinc = "" if self.cinc_year == self.year else f", CINC {self.cinc_year}"
        measure = "" if self.capability == "cinc" else f", capability {self.capability}"
        return (f"{self.states} states, {self.alliances} alliances, {self.aggressors} aggressors "
                f"(ATOP {self.date or self.year}{cinc}{measure})")


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML escapes)."""
    return json.dumps(text, ensure_ascii=False)


def _f(value: float) -> str:
    value = float(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        raise ValueError("nan has no place in a scenario")
    return repr(value)


def _wrap(bullet: str, text: str, width: int = 98) -> list[str]:
    """``text`` as comment lines of at most ``width`` characters (long words stay whole)."""
    lines = textwrap.wrap(text, width=width, initial_indent=f"# {bullet}",
                          subsequent_indent="#   " if bullet else "#   ",
                          break_long_words=False, break_on_hyphens=False)
    return lines or ["#"]


def _held(row: dict) -> str:
    """What one member row pledges, in words (offense-only is called out)."""
    if row["rank"] == 1 and not row["consul"] and row["offense"]:
        return "offense only (-> consultation)"
    if row["rank"] == 0:
        return "no obligation (beneficiary)"
    return _KIND_OF_RANK[row["rank"]]


def _most_capable_non_allies(aggressor: str, capability: dict[str, float],
                             allied: dict[str, set[str]], n: int) -> list[str]:
    friends = allied.get(aggressor, set())
    pool = [s for s in capability if s != aggressor and s not in friends]
    pool.sort(key=lambda s: (-capability[s], s))
    return pool[:n]


_MEASURE_LABEL = {"cinc": "CINC", "milex": "milex share", "milper": "milper share",
                  "military": "military index"}


def parse_date(text: str) -> datetime.date:
    """``YYYY-MM-DD`` → a date; a UserError otherwise."""
    try:
        if len(text) != 10:
            raise ValueError
        return datetime.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise UserError(f"--date {text!r}: needs a day as YYYY-MM-DD, e.g. 1939-09-01") from None


def _resolve_codes(codes: Sequence[str], option: str, year: int, sources: Sources,
                   world: dict[str, float]) -> list[str]:
    """COW abbreviations or numeric COW codes → abbreviations of states in the world, once
    each, in the order given."""
    out: list[str] = []
    for raw in codes:
        code = str(raw).strip()
        if code.isdigit() and int(code) in sources.abbreviations:
            code = sources.abbreviations[int(code)]
        if code not in world:
            known = "" if code in sources.abbreviations.values() else " (not a COW abbreviation)"
            raise UserError(f"{option} {raw}: no such state in the {year} world"
                            f"{known}; ids are COW abbreviations such as USA, RUS, GMY "
                            f"or COW codes such as 2, 365, 255")
        if code not in out:
            out.append(code)
    return out


def _dyad_aggressors(record: DyadRecord, aggressors: list[str], targets: list[str],
                     capability: dict[str, float],
                     allied: dict[str, set[str]]) -> list[_Aggressor]:
    """Aggressors from ``--dyads`` pairs, restricted to the named aggressors and targets."""
    what = {"disputes": "directed disputes (GML MID, side A -> side B)",
            "rivalries": "strategic rivalries (Thompson & Dreyer)",
            "all": "directed disputes (GML MID, side A -> side B) and strategic rivalries"}
    window = f"{record.first_year}-{record.last_year}"
    chosen: list[_Aggressor] = []
    pool = aggressors or list(record.pairs)
    for a in pool:
        hits = {t: w for t, w in record.pairs.get(a, {}).items() if not targets or t in targets}
        if hits:
            chosen.append(_Aggressor(
                a, float(sum(hits.values())), hits,
                f"{what[record.source]} in {window}: weight = the count of its pairs"
                + ("" if not aggressors else " (named with --aggressor)")
                + ("" if not targets else "; targets restricted by --target"),
                {t: record.detail[(a, t)] for t in hits}))
        elif aggressors:
            chosen.append(_fallback_aggressor(a, targets, capability, allied,
                                              f" (no {record.source} pair in {window})"))
    if not aggressors:
        chosen.sort(key=lambda ag: (-ag.weight, ag.state))
    return chosen


def _fallback_aggressor(a: str, targets: list[str], capability: dict[str, float],
                        allied: dict[str, set[str]], why: str = "") -> _Aggressor:
    """A named aggressor without data pairs: the named targets, else the most capable
    non-allies, weight 1 each."""
    named = [t for t in targets if t != a]
    if targets and not named:
        raise UserError(f"--aggressor {a}: its only --target is itself")
    if named:
        return _Aggressor(a, 1.0, {t: 1.0 for t in named},
                          "named with --aggressor; targets named with --target, weight 1 each"
                          + why)
    pool = _most_capable_non_allies(a, capability, allied, TOP_TARGETS)
    if not pool:
        raise UserError(f"--aggressor {a}: every other state is allied to it; no target")
    return _Aggressor(a, 1.0, {t: 1.0 for t in pool},
                      f"named with --aggressor; targets: the {TOP_TARGETS} most capable states "
                      f"sharing no alliance with it, weight 1 each" + why)


def _default_aggressors(year, sources, disputes_csv, aggressors, targets, capability, allied,
                        notes) -> list[_Aggressor]:
    """The rule without ``--dyads`` (module docstring, Aggressors)."""
    chosen: list[_Aggressor] = []
    disputes = None
    if disputes_csv is not None:
        disputes = read_disputes(disputes_csv, year, sources.abbreviations, set(capability))
        if disputes.note:
            notes.append(disputes.note)
    window = (f"{disputes.first_year}-{disputes.last_year}" if disputes else "")
    for code in aggressors:
        hits = disputes.targets.get(code, {}) if disputes else {}
        if targets:
            chosen.append(_fallback_aggressor(code, targets, capability, allied))
            continue
        if hits:
            chosen.append(_Aggressor(
                code, 1.0, {t: float(n) for t, n in hits.items()},
                f"named with --aggressor; targets: the states it originated disputes against "
                f"in {window} (weight = disputes)",
                {t: f"{n} dispute(s)" for t, n in hits.items()}))
            continue
        chosen.append(_fallback_aggressor(
            code, [], capability, allied,
            f" (it originated no dispute in {window})" if disputes else ""))
    if not aggressors and disputes is not None:
        ranked = sorted(((a, n) for a, n in disputes.initiators.items() if disputes.targets[a]),
                        key=lambda kv: (-kv[1], kv[0]))[:TOP_INITIATORS]
        for a, n in ranked:
            hits = {t: k for t, k in disputes.targets[a].items() if not targets or t in targets}
            if not hits:
                continue
            chosen.append(_Aggressor(
                a, float(n), {t: float(k) for t, k in hits.items()},
                f"originated {n} militarized dispute(s) in {window} (GML MID, side A); "
                f"weight = that count; targets weighted by disputes against them"
                + ("; targets restricted by --target" if targets else ""),
                {t: f"{k} dispute(s)" for t, k in hits.items()}))
    return chosen


def import_world(year: int, alliances_csv: str | Path, members_csv: str | Path,
                 capabilities_csv: str | Path, disputes_csv: str | Path | None = None,
                 aggressors: Sequence[str] = (), *, seed: int | None = None,
                 date: datetime.date | str | None = None, targets: Sequence[str] = (),
                 dyads: str | None = None, rivalries_csv: str | Path | None = None,
                 window: int = DISPUTE_WINDOW_YEARS,
                 capability: str = "cinc") -> ImportedWorld:
    """Build the scenario of ``year`` (see the module docstring); raises UserError on bad input.

    ``date`` (a :class:`datetime.date` or ``YYYY-MM-DD`` in ``year``) takes the members in
    force that day; ``targets`` restricts or names the targets; ``dyads`` (disputes, rivalries,
    all) takes aggressor → target pairs from :func:`read_dyads` over ``window`` years;
    ``capability`` picks the measure (:data:`CAPABILITY_MEASURES`)."""
    if isinstance(year, bool) or not isinstance(year, int):
        raise UserError(f"year must be a whole number, got {year!r}")
    if isinstance(date, str):
        date = parse_date(date)
    if date is not None and date.year != year:
        raise UserError(f"date {date.isoformat()} is not in year {year}")
    if dyads is not None and dyads not in DYAD_SOURCES:
        raise UserError(f"dyads must be one of {', '.join(DYAD_SOURCES)}, got {dyads!r}")
    measure = capability  # the name `capability` is the states' values below
    sources = read_sources(alliances_csv, members_csv, capabilities_csv, capability=measure)
    sources.check_atop_year(year)
    cinc_year = sources.cinc_year(year)
    membership = _membership(year, sources, date)
    notes: list[str] = []

    # States.
    cinc_rows = sources.cinc.filter(pl.col("year") == cinc_year).sort("ccode")
    capability: dict[str, float] = {}
    ccode_of: dict[str, int] = {}
    floored: list[str] = []
    for abb, code, value in cinc_rows.select("stateabb", "ccode", "capability").iter_rows():
        if abb in membership.merged:
            continue
        if abb in capability:
            raise UserError(f"{sources.capabilities_path}: {abb} has two rows in {cinc_year}")
        if value is None or value == 0:  # read_sources refused anything else outside (0, 1]
            floored.append(abb)
            value = CINC_FLOOR
        capability[abb] = float(value)
        ccode_of[abb] = int(code)
    if membership.merged:
        notes.append("same-day succession in " + str(year) + ": " + ", ".join(
            f"{p} merged into {s}" for p, s in sorted(membership.merged.items()))
            + " (predecessors dropped from the world and its alliances)")
    if floored:
        notes.append(f"{_MEASURE_LABEL[measure]} missing or 0 in {cinc_year}, capability "
                     f"floored at "
                     f"{_f(CINC_FLOOR)}: " + ", ".join(floored))

    # Alliances.
    design = {r["atopid"]: r for r in alliance_design(sources).iter_rows(named=True)}
    rows = membership.rows
    unknown = rows.filter(pl.col("stateabb").is_null())["member"].unique().sort().to_list()
    outside = (rows.filter(pl.col("stateabb").is_not_null()
                           & ~pl.col("stateabb").is_in(list(capability)))
               ["stateabb"].unique().sort().to_list())
    if unknown:
        notes.append("ATOP members with a COW code unknown to the capabilities file, dropped: "
                     + ", ".join(str(c) for c in unknown))
    if outside:
        notes.append(f"ATOP members without a CINC row in {cinc_year}, dropped: "
                     + ", ".join(outside))
    rows = rows.filter(pl.col("stateabb").is_in(list(capability)))

    alliances: list[_Alliance] = []
    dropped: list[str] = []
    for (atopid,), group in rows.sort("atopid", "member").group_by("atopid", maintain_order=True):
        atopid = int(atopid)
        d = design[atopid]
        members = group["stateabb"].to_list()
        if len(members) < 2:
            dropped.append(f"ATOP{atopid}")
            continue
        ranks = dict(zip(members, group["rank"].to_list(), strict=True))
        held = {r["stateabb"]: _held(r) for r in group.iter_rows(named=True)}
        phases = sorted(set(group["phase"].to_list()))
        strongest = max(ranks.values())
        kind = _KIND_OF_RANK[strongest] if strongest > 0 else "consultation"
        head = (f"ATOP {atopid}, phase {'/'.join(map(str, phases))}, in force "
                f"{d['begyr']}-{d['endyr'] or 'data end'}; "
                f"members {len(members)}; obligation {kind}")
        integ = (f"integration = mean(intcom={d['intcom']}, milcon={d['milcon']}/3, "
                 f"base={d['base']}>0, organ1={d['organ1']}>0, subord={d['subord']}>0)")
        bind = (f"bindingness = 1 - 0.3*conditio({d['conditio']}) "
                f"- 0.2*[renounce({d['renounce']})>0]")
        main = _Alliance(f"ATOP{atopid}", atopid, kind, members,
                         round(d["integration"], 4), round(d["bindingness"], 4),
                         [head, integ, bind])
        weaker = {s: r for s, r in ranks.items() if r < strongest}
        extra: list[_Alliance] = []
        if weaker:
            pledgers = [s for s in members if ranks[s] == strongest]
            if kind == "defense":
                # directed: the pledgers defend the others; they defend each other through
                # ATOP<id>-mutual when there are several of them
                main.protected = [s for s in members if s not in pledgers]
                direction = (f"kept: direction — only {', '.join(main.protected)} "
                             f"protected here")
                if len(pledgers) >= 2:
                    extra.append(_Alliance(f"ATOP{atopid}-mutual", atopid, "defense", pledgers,
                                           main.integration, main.bindingness,
                                           [f"ATOP {atopid}: the pledgers defend each other"]))
            else:
                direction = "lost: direction (only defense pledges can be directed)"
            main.comment.append(
                f"asymmetric: {kind} pledged by {', '.join(pledgers)}; "
                + "; ".join(f"{s} holds {held[s]}" for s in weaker) + f" ({direction})")
            for rank in sorted(set(weaker.values()), reverse=True):
                holders = [s for s in members if weaker.get(s) == rank]
                if rank == 0:
                    continue
                sub = _KIND_OF_RANK[rank]
                if len(holders) < 2:
                    main.comment.append(f"{sub} of {holders[0]} alone is not a separate "
                                        f"alliance (fewer than 2 members)")
                    continue
                extra.append(_Alliance(f"ATOP{atopid}-{sub}", atopid, sub, holders,
                                       main.integration, main.bindingness,
                                       [f"ATOP {atopid}: the members holding only {sub}"]))
        alliances.append(main)
        alliances.extend(extra)
    if dropped:
        notes.append(f"ATOP alliances in force in {year} with fewer than 2 members in this "
                     f"world, dropped: " + ", ".join(dropped))

    allied: dict[str, set[str]] = {}
    for al in alliances:
        for m in al.members:
            allied.setdefault(m, set()).update(x for x in al.members if x != m)

    # Aggressors.
    aggressors = _resolve_codes(aggressors, "--aggressor", year, sources, capability)
    targets = _resolve_codes(targets, "--target", year, sources, capability)
    if dyads is not None:
        record = read_dyads(dyads, year, sources.abbreviations, disputes_csv=disputes_csv,
                            rivalries_csv=rivalries_csv, window=window, world=set(capability))
        notes.extend(record.notes)
        chosen = _dyad_aggressors(record, aggressors, targets, capability, allied)
    else:
        chosen = _default_aggressors(year, sources, disputes_csv, aggressors, targets,
                                     capability, allied, notes)
    if not chosen:
        if targets:
            raise UserError(f"no aggressor with a pair against --target "
                            f"{', '.join(targets)}; name one with --aggressor CODE")
        raise UserError("no aggressor: name one with --aggressor CODE or give --disputes FILE")

    text = _render(year, cinc_year, sources, disputes_csv, capability, ccode_of, alliances,
                   chosen, notes, seed if seed is not None else year, date=date,
                   disputes_used=dyads != "rivalries",
                   measure=measure, rivalries_csv=rivalries_csv if dyads in ("rivalries", "all")
                   else None)
    try:
        scenario_from_dict(tomllib.loads(text), f"<world {year}>")
    except (ConfigError, tomllib.TOMLDecodeError) as err:  # a bug here, not a user mistake
        raise RuntimeError(f"the generated world {year} does not validate: {err}") from err
    return ImportedWorld(text, year, cinc_year, len(capability), len(alliances), len(chosen),
                         tuple(notes), date.isoformat() if date is not None else None, measure)


def build_world(year: int, alliances_csv: str | Path, members_csv: str | Path,
                capabilities_csv: str | Path, disputes_csv: str | Path | None = None,
                aggressors: Sequence[str] = ()) -> str:
    """The scenario TOML text of ``year`` (see :func:`import_world`)."""
    return import_world(year, alliances_csv, members_csv, capabilities_csv, disputes_csv,
                        aggressors).toml


# ---- rendering -------------------------------------------------------------------------------

_MEASURE_RULE = {
    "cinc": "CINC (COW composite index: military, industry, population)",
    "milex": "military expenditure share (milex / all states' milex that year)",
    "milper": "military personnel share (milper / all states' milper that year)",
    "military": "military index = mean of milex share and milper share (each over all states "
                "of that year; the one available where the other is missing)",
}


def _render(year, cinc_year, sources, disputes_csv, capability, ccode_of, alliances, chosen,
            notes, seed, *, date=None, measure="cinc", rivalries_csv=None,
            disputes_used=True) -> str:
    out: list[str] = []
    w = out.append
    label = date.isoformat() if date is not None else str(year)
    when = f"on {label}" if date is not None else f"in {year}"
    option = f"--date {label}" if date is not None else f"--year {year}"
    for text in (
        f"World {label} (ATOP/COW): every state of the {cinc_year} COW state system and every "
        f"ATOP alliance in force {when}. Generated by `crisis import atop {option}` "
        "(engine/data/atop.py); an ordinary scenario file: edit it freely.",
    ):
        out.extend(_wrap("", text))
    w("#")
    w("# Sources (cite them in any output that uses this file):")
    for c in CITATIONS + ((RIVALRY_CITATION,) if rivalries_csv is not None else ()):
        out.extend(_wrap("- ", c))
    files = (f"Files read: alliances {sources.alliances_path.name} and "
             f"{sources.members_path.name}; capabilities {sources.capabilities_path.name}"
             + (f"; disputes {Path(disputes_csv).name}"
                if disputes_csv is not None and disputes_used else "")
             + (f"; rivalries {Path(rivalries_csv).name}" if rivalries_csv is not None else "")
             + ".")
    out.extend(_wrap("", files))
    w("#")
    if date is not None:
        out.extend(_wrap("", f"Date: members in force on {label} (ATOP member-level entry and "
                             f"exit days, the exit day included; a missing month or day counts "
                             f"as January / the 1st on entry and December / the 31st on exit); "
                             f"capabilities of {cinc_year}."))
    else:
        w(f"# Year: alliances in force in {year}; capabilities of {cinc_year}.")
    out.extend(_wrap("", f"Capability: {_MEASURE_RULE[measure]}."))
    w("#")
    w("# Mapping rules (details in the engine/data/atop.py docstring):")
    for line in (
        "- states: every state with a row in the capability year; id = COW abbreviation",
        "  (stateabb, mapped from ATOP's COW codes through cinc-polity.csv); name = COW state",
        "  name where engine/data/names.py has it, else the abbreviation; capability = the",
        f"  measure above, floored at {_f(CINC_FLOOR)} where it is missing or 0.",
        "- membership: alliance begyr <= Y and (endyr = 0 or endyr >= Y); member row yrent <= Y",
        "  and (yrexit = 0 or yrexit >= Y); the later phase wins where two phases touch Y; a",
        "  member leaving on the day another enters, and leaving the state system in Y, is",
        "  merged into it (e.g. GFR -> GMY 1990). Members without a CINC row are dropped, and",
        "  so are alliances left with fewer than 2 members.",
        "- obligation: a member's strongest ATOP pledge: defense > neutrality (neutral) >",
        "  nonaggression (nonagg) > consultation (consul); offense-only -> consultation (an",
        "  offensive pact covers no target). The alliance takes its strongest member's kind.",
        "- no ATOP alliance is collective_security: ATOP codes defense, offense, neutrality,",
        "  non-aggression and consultation pledges, and the League of Nations and the UN are not",
        "  ATOP alliances. A defense pact covers its members against outsiders only: an aggressor",
        "  that belongs to the target's pact meets no consultation of that pact (design §8).",
        "- asymmetric pacts (member kinds differ): ATOP<id> holds the strongest kind and all",
        "  members (pledgers and those they pledge to); a defense pledge stays directed:",
        "  `protected` lists who is covered (the non-pledgers), and several pledgers defend each",
        "  other through ATOP<id>-mutual. Members holding only a weaker kind k are also kept among",
        "  themselves as ATOP<id>-<k> when there are 2 or more.",
        "- integration = mean(intcom, milcon/3, [base > 0], [organ1 > 0], [subord > 0]),",
        "  ATOP alliance level, missing = 0.",
        "- bindingness = clip(1 - 0.3*conditio - 0.2*[renounce > 0], 0.1, 1); the weights are",
        "  an assumption (conditional pledges apply to part of the crises; renounce = escape).",
        "- known data caveat, not corrected: ATOP dates the entry of later NATO members at the",
        "  signature of the accession protocol, not at accession (e.g. GRC/TUR 1951, not 1952).",
    ):
        w("# " + line)
    w("#")
    w("# Assumptions (`# assumption`, not from data; change them in sweeps): commitment 0.5,")
    w("# stability 1, free_riding 0 for every state; unanimity, round_days 2.0, max_rounds 5,")
    w("# intel_sharing 0 for every alliance; aggressor resolve 1 and the target rule noted at")
    w("# each aggressor; one conventional attack type of severity 1; misperception 0.5 and")
    w("# outcome_noise 0.3. Every other knob is neutral; note that integration only acts when")
    w("# mobilization_days or interoperability_bonus is non-zero.")
    if notes:
        w("#")
        w("# Notes:")
        for note in notes:
            out.extend(_wrap("- ", note))
    w("")
    w("[scenario]")
    w(f"name = {_q(f'World {label} (ATOP/COW)')}")
    w(f"seed = {int(seed)}")
    w("trials = 1_000_000")
    w("misperception = 0.5          # assumption")
    w("outcome_noise = 0.3          # assumption")
    w("mobilization_days = 0.0      # neutral")
    w("window_days = inf            # neutral")
    w("interoperability_bonus = 0.0 # neutral")
    w("defection_threshold = 1.0    # neutral")
    w("conflict_penalty = 0.0       # neutral")
    w("threat_weight = 0.0          # neutral")
    w('deterrence = "capability"    # neutral (v1): decision rules and timings here are '
      'assumptions, not data')
    w("")
    w("# " + "-" * 94)
    w(f"# States ({len(capability)}): capability = {_MEASURE_LABEL[measure]} {cinc_year} "
      f"(COW NMC).")
    w("# " + "-" * 94)
    for abb, cap in capability.items():
        w("")
        w("[[states]]")
        w(f"id = {_q(abb)}")
        w(f"name = {_q(state_name(abb))}                # COW code {ccode_of[abb]}")
        note = ("  # missing or 0: floor" if cap == CINC_FLOOR else "")
        w(f"capability = {_f(cap)}{note}")
        w(f"commitment = {_f(DEFAULT_COMMITMENT)}   # assumption")
        w("stability = 1.0    # assumption")
        w("free_riding = 0.0  # assumption")
    w("")
    w("# " + "-" * 94)
    w(f"# Alliances ({len(alliances)}): ATOP v4.01, in force {when}.")
    w("# " + "-" * 94)
    for al in alliances:
        w("")
        known = alliance_name(al.atopid)
        if known is not None:
            w(f"# {known}")
        for c in al.comment:
            out.extend(_wrap("", c))
        w("[[alliances]]")
        w(f"id = {_q(al.id)}")
        w("members = [")
        for i in range(0, len(al.members), 10):
            w("    " + ", ".join(_q(m) for m in al.members[i:i + 10]) + ",")
        w("]")
        w(f"obligation = {_q(al.obligation)}")
        w('decision_rule = "unanimity"  # assumption')
        w("quota = 0.5                  # unused by unanimity")
        w("veto_holders = []")
        w(f"round_days = {_f(ROUND_DAYS)}             # assumption")
        w(f"max_rounds = {MAX_ROUNDS}               # assumption")
        w(f"integration = {_f(al.integration)}")
        w(f"bindingness = {_f(al.bindingness)}")
        w("intel_sharing = 0.0          # assumption (neutral)")
        if al.protected is not None:
            w("protected = [" + ", ".join(_q(m) for m in al.protected) + "]"
              "  # directed pledge: only these are covered")
    w("")
    w("# " + "-" * 94)
    w(f"# Aggressors ({len(chosen)})")
    w("# " + "-" * 94)
    for ag in chosen:
        w("")
        out.extend(_wrap("", ag.comment))
        w("[[aggressors]]")
        w(f"state = {_q(ag.state)}")
        w(f"weight = {_f(ag.weight)}")
        w("resolve = 1.0                # assumption")
        w("attack_mix = { conventional = 1.0 }  # assumption")
        w("")
        w("[aggressors.targets]")
        for t, v in ag.targets.items():
            extra = ag.target_notes.get(t)
            w(f"{_q(t)} = {_f(v)}" + (f"  # {extra}" if extra else ""))
    w("")
    w("[attack_types.conventional]")
    w("severity = 1.0               # assumption: reference scale")
    w("attribution_days = 0.0       # assumption")
    w("ambiguity = 0.0              # assumption (neutral)")
    return "\n".join(out) + "\n"
