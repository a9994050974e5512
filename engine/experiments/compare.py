"""Compare two run folders measure by measure, with tests corrected for multiple comparisons.

``compare_runs(dir_a, dir_b)`` lines up the rows (``scope``, ``key``) present in both
``summary.parquet`` files and, for every measure, gives value A, value B, the difference B − A,
its 95% confidence interval, a p-value, the Holm–Bonferroni adjusted p-value over *all* tests of
the comparison and a significance flag (``p_holm ≤ alpha``).  It is what ``crisis compare`` and
``crisis check`` (result tracking across engine versions) print.

Tests
-----
``two_proportion`` (rates of :data:`engine.core.tables.RATE_COLUMNS`)
    Two-sample z-test of ``x1/n1`` vs ``x2/n2``: pooled standard error for the test, unpooled for
    the 95% interval of the difference; normal tails from :func:`math.erfc`.  Numerators and
    denominators are rebuilt from the summary's integer counts exactly as
    :mod:`engine.core.tables` builds each rate (e.g. ``invocation_rate = invoked / attacked``,
    ``breakdown_rate = (deadlock + veto + defection) / attacked``, ``deterrence_lift =
    (deterred − deterred_no_alliance) / trials``, itself a 0/1 proportion per trial), and checked
    against the stored rate; a rate that cannot be rebuilt is left untested.
``honor_rate``
    ``honored_sum / allies_sum`` counts ally × crisis pairs, which are *not* independent (all the
    allies of one crisis honor together when the alliance acts), so ``allies_sum`` is not the
    sample size.  With ``m`` allies per consulted crisis (constant within a cell; taken from
    ``cells.parquet`` as ``allies_sum / consulted``) the per-crisis share ``y = honored/m`` lies in
    [0, 1], and the variance of the ratio is at most ``R(1 − R) / n_eff`` with ``n_eff =
    allies_sum / max m`` (= the consulted crises when ``m`` is the same for every cell).  The
    z-test uses that effective sample, so it is conservative.  It is skipped (noted) where the
    cells do not allow it (no cells table, ally counts varying within a cell).  Alliance rows
    use their members (``members.parquet``): a consulted crisis gives the alliance at most
    ``members − 1`` pledges, so ``n_eff = pledged / (members − 1)``, conservative the same way.
``two_proportion`` per member (scope ``member``, key ``ALLIANCE/STATE``, measure
``honor_rate``)
    ``honored / pledged`` of one alliance × member state (``members.parquet``): a member pledges
    at most once per trial and alliance, and trials are independent, so its pledges are
    Bernoulli trials and the two-proportion test applies as it is.  Member rows are tested in
    the same Holm family as every other row.
``ks_binned`` (``delay_distribution``)
    Two-sample Kolmogorov–Smirnov test on the invoked-trial delay histograms (``tallies.npz``:
    ``cell_hist`` summed over the cells of the row, ``alliance_hist`` for alliance rows).  ``D``
    is the largest difference of the two empirical CDFs at the bin edges; the p-value is the
    asymptotic Kolmogorov series at ``sqrt(n1·n2/(n1+n2))·D``.  Binning (and ties: many delays are
    whole numbers of consultation rounds) can only lower ``D``, so the test is slightly
    conservative.  The row's ``a``/``b`` are the mean delays.
Means (delay mean and quantiles, rounds, backing share, free riders, delivered share) are shown
without a test (``test = "none"``).
Campaign runs (design §7)
    Besides the summary (totals over every crisis of every period), each period of both
    runs' ``periods.parquet`` is a row (scope ``period``, key the period number) whose rates get
    the same two-proportion tests (denominators the period's crises or attacks, which are
    independent across trajectories), and each alliance's survival to the last period (scope
    ``survival``, key the alliance) a two-proportion test over the trajectories.  All of them are
    in the one Holm family.
``posterior_paired`` (two runs over posteriors, ``crisis run --posterior``)
    Both runs' ``blocks.parquet`` hold one summary per block of trials; with the same number of
    blocks, block ``b`` of A is paired with block ``b`` of B (the same trials' random numbers
    when the seeds agree, the same posterior draw when the posteriors agree too).  For every
    rate and mean of every summary row, ``diff_low``/``diff_high`` are the 2.5% and 97.5%
    quantiles (linear) of the blocks' paired differences B − A, so the interval holds parameter
    and Monte Carlo uncertainty together; ``statistic`` is the share of blocks in which B > A
    (ties count one half); there is no p-value, and ``significant`` means the interval excludes
    0 (a posterior interval, not a test: no multiplicity correction).  ``diff`` is B − A of the
    runs' point estimates (posterior means).  Member rows keep their two-proportion tests,
    which hold Monte Carlo error only (a note says so).

Multiple comparisons: Holm's step-down procedure controls the family-wise error rate at
``alpha`` under any dependence between the tests (the scopes overlap, some rates are complements
of others), so two independent runs of the same scenario are flagged anywhere with probability at
most ``alpha`` (up to the normal / asymptotic approximations of the single tests).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl

from ..core.statistics import Z_95
from ..core.tables import MEAN_COLUMNS, MEMBER_RATES, RATE_COLUMNS
from ..errors import UserError
from ..runs.folder import RunData, RunFolder

DELAY_TEST = "delay_distribution"
POSTERIOR_TEST = "posterior_paired"
COMPARE_COLUMNS = ("scope", "key", "measure", "a", "b", "diff", "diff_low", "diff_high",
                   "statistic", "p_value", "p_holm", "significant", "test")
CELL_SCOPES = ("overall", "covered_targets", "uncovered_targets", "target", "attack_type",
               "aggressor")
# per-member rows: scope MEMBER_SCOPE, key "ALLIANCE/STATE" (ids never hold "/"), one measure
MEMBER_SCOPE = "member"
MEMBER_MEASURES = ("honor_rate",)


def member_key(alliance: str, state: str) -> str:
    """The ``key`` of a member row: ``ALLIANCE/STATE``."""
    return f"{alliance}/{state}"


def split_member_key(key: str) -> tuple[str, str]:
    """(alliance, state) of a member row's ``key``."""
    alliance, _, state = key.rpartition("/")
    return alliance, state


# ---- tests -----------------------------------------------------------------------------------


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (same shape; NaN entries stay NaN, are not counted).

    With the ``m`` valid p-values sorted ascending, ``p_(i)`` becomes
    ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``; rejecting where the adjusted value is ≤ alpha
    controls the family-wise error rate at alpha.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    flat = p.reshape(-1)
    valid = np.flatnonzero(~np.isnan(flat))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(flat[valid], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * flat[order])
    adjusted = np.maximum.accumulate(scaled)
    res = out.reshape(-1)
    res[order] = adjusted
    return res.reshape(p.shape)


def normal_two_sided(z: float) -> float:
    """P(|Z| ≥ |z|) for a standard normal Z."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def two_proportion(x1, n1, x2, n2, z_ci: float = Z_95) -> dict[str, float]:
    """Two-sample z-test of proportions ``x1/n1`` (A) and ``x2/n2`` (B).

    Returns ``diff = p2 − p1``, its interval ``low``/``high`` (unpooled SE, ``z_ci`` = 95%), the
    statistic ``z = diff / sqrt(p̄(1 − p̄)(1/n1 + 1/n2))`` with the pooled ``p̄ = (x1+x2)/(n1+n2)``
    and the two-sided ``p``.  Where the pooled variance is 0 (both 0 % or both 100 %) ``z = 0``,
    ``p = 1``.  Needs ``n1, n2 > 0``.
    """
    x1, n1, x2, n2 = float(x1), float(n1), float(x2), float(n2)
    if not (n1 > 0 and n2 > 0):
        raise ValueError(f"two_proportion needs positive denominators, got {n1}, {n2}")
    p1, p2 = x1 / n1, x2 / n2
    diff = p2 - p1
    se = math.sqrt(max(p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2, 0.0))
    pooled = (x1 + x2) / (n1 + n2)
    se0 = math.sqrt(max(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2), 0.0))
    if se0 > 0:
        z = diff / se0
        p = normal_two_sided(z)
    else:
        z, p = 0.0, 1.0
    return {"diff": diff, "low": diff - z_ci * se, "high": diff + z_ci * se, "z": z, "p": p}


def kolmogorov_sf(lam: float) -> float:
    """P(K > λ) of the Kolmogorov distribution: ``2 Σ_{k≥1} (−1)^(k−1) exp(−2k²λ²)``."""
    if lam < 0.2:  # the series converges slowly here and the value is 1 to 1e-20
        return 1.0
    total = 0.0
    for k in range(1, 201):
        term = math.exp(-2.0 * k * k * lam * lam)
        total += term if k % 2 else -term
        if term < 1e-18:
            break
    return min(1.0, max(0.0, 2.0 * total))


def ks_binned(hist1, hist2) -> dict[str, float]:
    """Two-sample Kolmogorov–Smirnov test on two histograms over the same bins.

    ``D = max |F1 − F2|`` over the bin edges, ``p = kolmogorov_sf(sqrt(n_eff)·D)`` with
    ``n_eff = n1·n2/(n1 + n2)``.  Binning hides differences within a bin, so ``D`` is at most the
    unbinned statistic and the test is slightly conservative.  Returns ``d``, ``p``, ``n1``,
    ``n2``; needs non-empty histograms.
    """
    h1 = np.asarray(hist1, dtype=np.float64)
    h2 = np.asarray(hist2, dtype=np.float64)
    if h1.shape != h2.shape or h1.ndim != 1:
        raise ValueError(f"histograms must be 1-d of one shape, got {h1.shape} and {h2.shape}")
    n1, n2 = float(h1.sum()), float(h2.sum())
    if not (n1 > 0 and n2 > 0):
        raise ValueError("ks_binned needs non-empty histograms")
    d = float(np.max(np.abs(np.cumsum(h1) / n1 - np.cumsum(h2) / n2)))
    n_eff = n1 * n2 / (n1 + n2)
    return {"d": d, "p": kolmogorov_sf(math.sqrt(n_eff) * d), "n1": n1, "n2": n2}


# ---- reading runs -----------------------------------------------------------------------------


def load_run(path: str | Path) -> RunData:
    """Read a complete run folder (:meth:`RunFolder.load`); :class:`UserError` when it is missing
    or incomplete.  Unreadable or inconsistent cells and tallies leave notes, not errors: the
    tests that need them are skipped."""
    return RunFolder(path).load()


def _cell_mask(cells: pl.DataFrame, scope: str, key: str) -> np.ndarray | None:
    n = cells.height
    if scope == "overall":
        return np.ones(n, dtype=bool)
    if scope in ("covered_targets", "uncovered_targets"):
        covered = cells.get_column("covered").to_numpy().astype(bool)
        return covered if scope == "covered_targets" else ~covered
    if scope in ("target", "attack_type", "aggressor"):
        return (cells.get_column(scope) == key).to_numpy()
    return None


def _delay_hist(run: RunData, scope: str, key: str) -> np.ndarray | None:
    if scope == "alliance":
        row = run.alliance_rows.get(key)
        if run.alliance_hist is None or row is None or row >= run.alliance_hist.shape[0]:
            return None
        return run.alliance_hist[row]
    if run.cells is None or run.cell_hist is None or scope not in CELL_SCOPES:
        return None
    mask = _cell_mask(run.cells, scope, key)
    return None if mask is None else run.cell_hist[mask].sum(axis=0)


def _alliance_honor_counts(run: RunData, key: str, rate) -> tuple[float, float] | None:
    """(x_eff, n_eff) of an alliance's honor_rate from its members: at most ``members − 1``
    pledges per consulted crisis, so n_eff = pledged / (members − 1); None when unavailable."""
    members = run.members
    if rate is None or members is None or not {"alliance", "pledged", "honored"} <= set(
            members.columns):
        return None
    rows = members.filter(pl.col("alliance") == key)
    m_max = rows.height - 1
    pledged, honored = int(rows.get_column("pledged").sum()), int(
        rows.get_column("honored").sum())
    if m_max < 1 or pledged == 0 or not math.isclose(honored / pledged, rate, rel_tol=1e-9,
                                                     abs_tol=1e-12):
        return None
    return honored / m_max, pledged / m_max


def _honor_counts(run: RunData, scope: str, key: str, rate) -> tuple[float, float] | None:
    """(x_eff, n_eff) of honor_rate with n_eff = allies_sum / max allies per crisis, or None."""
    if scope == "alliance":
        return _alliance_honor_counts(run, key, rate)
    cells = run.cells
    if rate is None or cells is None or scope not in CELL_SCOPES:
        return None
    if not {"allies_sum", "honored_sum", "consulted"} <= set(cells.columns):
        return None
    mask = _cell_mask(cells, scope, key)
    allies = cells.get_column("allies_sum").to_numpy()[mask].astype(np.int64)
    honored = cells.get_column("honored_sum").to_numpy()[mask].astype(np.int64)
    consulted = cells.get_column("consulted").to_numpy()[mask].astype(np.int64)
    some = consulted > 0
    if not some.any() or np.any(allies[some] % consulted[some]):
        return None  # ally count varies within a cell: no bound on the clustering
    m_max = int((allies[some] // consulted[some]).max())
    total_allies, total_honored = int(allies.sum()), int(honored.sum())
    if m_max == 0 or total_allies == 0 or not math.isclose(total_honored / total_allies, rate,
                                                           rel_tol=1e-9, abs_tol=1e-12):
        return None
    return total_honored / m_max, total_allies / m_max


def _rate_counts(row: dict) -> dict[str, tuple[int, int]]:
    """Numerator and denominator of each rate of a summary row, from its integer counts."""

    def g(name):
        return row.get(name)

    spec = {
        "deterrence_success_rate": (g("deterred"), g("trials")),
        "deterrence_rate_no_alliance": (g("deterred_no_alliance"), g("trials")),
        "deterrence_lift": (None if g("deterred") is None or g("deterred_no_alliance") is None
                            else g("deterred") - g("deterred_no_alliance"), g("trials")),
        "attack_rate": (g("attacked"), g("trials")),
        "invocation_rate": (g("invoked"), g("attacked")),
        "deadlock_rate": (g("deadlock"), g("attacked")),
        "veto_rate": (g("veto"), g("attacked")),
        "defection_rate": (g("defection"), g("invoked")),
        "breakdown_rate": (None if g("deadlock") is None or g("veto") is None
                           else g("deadlock") + g("veto") + (g("defection") or 0), g("attacked")),
        "repelled_rate": (g("repelled"), g("attacked")),
        "aggression_success_rate": (g("succeeded"), g("attacked")),
    }
    out = {}
    for rate, (x, n) in spec.items():
        value = row.get(rate)
        if x is None or n is None or value is None or n <= 0:
            continue
        if math.isclose(x / n, value, rel_tol=1e-9, abs_tol=1e-12):
            out[rate] = (x, n)
    return out


# ---- the comparison ---------------------------------------------------------------------------


def _f(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _manifest_notes(a: RunData, b: RunData) -> list[str]:
    ma, mb = a.manifest, b.manifest
    notes = []
    if ma.get("scenario_hash") != mb.get("scenario_hash"):
        notes.append(f"different scenarios: A is {ma.get('scenario')!r} "
                     f"({str(ma.get('scenario_hash'))[:12]}), B is {mb.get('scenario')!r} "
                     f"({str(mb.get('scenario_hash'))[:12]})")
    elif ma.get("seed") == mb.get("seed"):
        notes.append("same scenario and seed: the runs share their random numbers, so they are "
                     "not independent samples and the tests are conservative")
    va = (ma.get("versions") or {}).get("engine")
    vb = (mb.get("versions") or {}).get("engine")
    if va != vb:
        notes.append(f"engine versions differ: A {va}, B {vb}")
    with_posterior = [name for name, m in (("A", ma), ("B", mb))
                      if isinstance(m.get("posterior"), dict)]
    if with_posterior and _paired_blocks(a, b) is None:
        why = ("" if len(with_posterior) == 1 else
               " (their blocks cannot be paired: block counts differ or a blocks.parquet is "
               "missing)")
        notes.append(f"{' and '.join(with_posterior)} ran over a posterior{why}: the "
                     "differences and tests here hold Monte Carlo error only (the runs' "
                     "summaries carry the intervals with parameter uncertainty)")
    elif with_posterior:
        n = a.blocks.get_column("block").n_unique()
        notes.append(f"A and B ran over posteriors: the summary rows' differences are paired "
                     f"block by block over {n} blocks (test posterior_paired: 2.5–97.5% of the "
                     f"blocks' differences, parameter and Monte Carlo uncertainty together; "
                     f"statistic = share of blocks with B > A; significant = the interval "
                     f"excludes 0, not a test); member rows hold Monte Carlo error only")
    return notes


def _paired_blocks(a: RunData, b: RunData) -> pl.DataFrame | None:
    """Both runs' block summaries joined on (block, scope, key) — columns ``X`` (A) and
    ``X_b`` (B) — when both ran over posteriors with the same number of blocks; else None."""
    if a.blocks is None or b.blocks is None:
        return None
    for run in (a, b):
        schema = run.blocks.schema
        if (schema.get("block") != pl.Int64 or schema.get("scope") != pl.String
                or schema.get("key") != pl.String):
            raise UserError(f"{run.path}/blocks.parquet: not a table of block summaries")
    ids_a = a.blocks.get_column("block").unique().sort()
    ids_b = b.blocks.get_column("block").unique().sort()
    if not ids_a.equals(ids_b):
        return None
    measures = [m for m in (*RATE_COLUMNS, *MEAN_COLUMNS)
                if m in a.blocks.columns and m in b.blocks.columns
                and a.blocks.schema[m].is_numeric() and b.blocks.schema[m].is_numeric()]
    keys = ["block", "scope", "key"]
    return a.blocks.select(*keys, *measures).join(
        b.blocks.select(*keys, *measures), on=keys, how="inner", suffix="_b")


def _posterior_paired(pairs: pl.DataFrame, scope: str, key: str, measure: str
                      ) -> dict[str, float] | None:
    """The paired posterior interval of B − A for one row and measure (module docstring);
    None when no block has both values."""
    if measure not in pairs.columns:
        return None
    sub = pairs.filter((pl.col("scope") == scope) & (pl.col("key") == key)).select(
        (pl.col(f"{measure}_b") - pl.col(measure)).alias("d")).drop_nulls()
    d = sub.get_column("d").to_numpy().astype(np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return None
    share = (np.count_nonzero(d > 0) + 0.5 * np.count_nonzero(d == 0)) / len(d)
    return {"low": float(np.quantile(d, 0.025)), "high": float(np.quantile(d, 0.975)),
            "share": float(share)}


def _member_rows(a: RunData, b: RunData, add) -> list[str]:
    """Add a row per alliance × member state in both runs' ``members.parquet`` and measure of
    :data:`MEMBER_MEASURES` (two-proportion test where both pledged); return notes."""
    if a.members is None or b.members is None:
        which = " and ".join(name for name, run in (("A", a), ("B", b)) if run.members is None)
        return [f"per-member rows not compared: {which} has no members.parquet"]
    notes = []

    def by_key(frame: pl.DataFrame) -> dict[tuple[str, str], dict]:
        return {(r["alliance"], r["state"]): r for r in frame.iter_rows(named=True)}

    rows_a, rows_b = by_key(a.members), by_key(b.members)
    only = [k for k in rows_a if k not in rows_b] + [k for k in rows_b if k not in rows_a]
    if only:
        shown = ", ".join(member_key(*k) for k in only[:10])
        notes.append(f"members in one run only (not compared): {shown}"
                     + (f" and {len(only) - 10} more" if len(only) > 10 else ""))
    for k, ra in rows_a.items():
        rb = rows_b.get(k)
        if rb is None:
            continue
        for rate in MEMBER_MEASURES:
            va, vb = ra.get(rate), rb.get(rate)
            if va is None and vb is None:
                continue
            x = MEMBER_RATES[rate]
            na, nb = ra.get("pledged") or 0, rb.get("pledged") or 0
            if na > 0 and nb > 0:
                t = two_proportion(ra[x], na, rb[x], nb)
                add(MEMBER_SCOPE, member_key(*k), rate, va, vb, "two_proportion", t["diff"],
                    t["low"], t["high"], t["z"], t["p"])
            else:
                add(MEMBER_SCOPE, member_key(*k), rate, va, vb)
    return notes


def _campaign_rows(a: RunData, b: RunData, add) -> list[str]:
    """Per-period rates and final survival of two campaign runs (module docstring)."""
    from ..runs.folder import ALLIANCE_PERIODS, PERIODS

    pa, pb = a.campaign.get(PERIODS), b.campaign.get(PERIODS)
    if pa is None and pb is None:
        return []
    if pa is None or pb is None:
        return ["one run is a campaign and the other is not: no per-period rows"]
    notes = []
    if pa.height != pb.height:
        notes.append(f"campaigns of {pa.height} and {pb.height} periods: periods compared up "
                     f"to the shorter")
    for ra, rb in zip(pa.iter_rows(named=True), pb.iter_rows(named=True), strict=False):
        key = str(ra["period"])
        ca = _rate_counts({**ra, "trials": ra["crises"]})
        cb = _rate_counts({**rb, "trials": rb["crises"]})
        for rate in RATE_COLUMNS:
            va, vb = ra.get(rate), rb.get(rate)
            if va is None and vb is None:
                continue
            if rate in ca and rate in cb:
                t = two_proportion(*ca[rate], *cb[rate])
                add("period", key, rate, va, vb, "two_proportion", t["diff"], t["low"],
                    t["high"], t["z"], t["p"])
            else:
                add("period", key, rate, va, vb)
    aa, ab = a.campaign.get(ALLIANCE_PERIODS), b.campaign.get(ALLIANCE_PERIODS)
    trials_a, trials_b = a.manifest.get("trials"), b.manifest.get("trials")
    if aa is not None and ab is not None and trials_a and trials_b:
        last_a = {r["alliance"]: r for r in aa.filter(
            aa["period"] == aa["period"].max()).iter_rows(named=True)}
        last_b = {r["alliance"]: r for r in ab.filter(
            ab["period"] == ab["period"].max()).iter_rows(named=True)}
        for alliance, ra in last_a.items():
            rb = last_b.get(alliance)
            if rb is None:
                continue
            t = two_proportion(ra["alive"], trials_a, rb["alive"], trials_b)
            add("survival", alliance, "survival_rate", ra["survival"], rb["survival"],
                "two_proportion", t["diff"], t["low"], t["high"], t["z"], t["p"])
    return notes


def compare_runs_with_notes(dir_a, dir_b, alpha: float = 0.05) -> tuple[pl.DataFrame, list[str]]:
    """:func:`compare_runs` and the notes about the comparison (scenario mismatch, skipped
    tests, rows in one run only)."""
    if not 0.0 < alpha < 1.0:
        raise UserError(f"--alpha must lie in (0, 1), got {alpha}")
    a, b = load_run(dir_a), load_run(dir_b)
    notes = _manifest_notes(a, b) + a.notes + b.notes
    rows_a = {(r["scope"], r["key"]): r for r in a.summary.iter_rows(named=True)}
    rows_b = {(r["scope"], r["key"]): r for r in b.summary.iter_rows(named=True)}
    only = [k for k in rows_a if k not in rows_b] + [k for k in rows_b if k not in rows_a]
    if only:
        notes.append("rows in one run only (not compared): "
                     + ", ".join(f"{s}/{k}" for s, k in only))
    honor_skipped: list[str] = []
    pairs = _paired_blocks(a, b)

    records: list[dict] = []

    def add(scope, key, measure, va, vb, test="none", diff=None, low=None, high=None,
            stat=None, p=None):
        va, vb = _f(va), _f(vb)
        if diff is None and va is not None and vb is not None:
            diff = vb - va
        records.append({"scope": scope, "key": key, "measure": measure, "a": va, "b": vb,
                        "diff": _f(diff), "diff_low": _f(low), "diff_high": _f(high),
                        "statistic": _f(stat), "p_value": _f(p), "test": test})

    for sk, ra in rows_a.items():
        if sk not in rows_b:
            continue
        rb = rows_b[sk]
        scope, key = sk
        if pairs is not None:
            for measure in (*RATE_COLUMNS, *MEAN_COLUMNS):
                va, vb = ra.get(measure), rb.get(measure)
                if va is None and vb is None:
                    continue
                t = _posterior_paired(pairs, scope, key, measure)
                if t is None:
                    add(scope, key, measure, va, vb)
                else:
                    add(scope, key, measure, va, vb, POSTERIOR_TEST, low=t["low"],
                        high=t["high"], stat=t["share"])
            continue
        ca, cb = _rate_counts(ra), _rate_counts(rb)
        for rate in RATE_COLUMNS:
            va, vb = ra.get(rate), rb.get(rate)
            if va is None and vb is None:
                continue
            if rate == "honor_rate":
                xa, xb = _honor_counts(a, scope, key, va), _honor_counts(b, scope, key, vb)
                if xa is not None and xb is not None:
                    ca[rate], cb[rate] = xa, xb
                elif va is not None and vb is not None:
                    honor_skipped.append(f"{scope}/{key}")
            if rate in ca and rate in cb:
                t = two_proportion(*ca[rate], *cb[rate])
                add(scope, key, rate, va, vb, "two_proportion", t["diff"], t["low"], t["high"],
                    t["z"], t["p"])
            else:
                add(scope, key, rate, va, vb)
        ha, hb = _delay_hist(a, scope, key), _delay_hist(b, scope, key)
        if ha is not None and hb is not None and ha.sum() > 0 and hb.sum() > 0:
            t = ks_binned(ha, hb)
            add(scope, key, DELAY_TEST, ra.get("delay_mean_days"), rb.get("delay_mean_days"),
                "ks_binned", stat=t["d"], p=t["p"])
        for mean in MEAN_COLUMNS:
            if ra.get(mean) is not None or rb.get(mean) is not None:
                add(scope, key, mean, ra.get(mean), rb.get(mean))
    if honor_skipped:
        notes.append("honor_rate not tested (ally counts per crisis not recoverable from "
                     "cells.parquet or members.parquet) for: " + ", ".join(honor_skipped))
    notes += _member_rows(a, b, add)
    notes += _campaign_rows(a, b, add)

    schema = {"scope": pl.String, "key": pl.String, "measure": pl.String, "a": pl.Float64,
              "b": pl.Float64, "diff": pl.Float64, "diff_low": pl.Float64,
              "diff_high": pl.Float64, "statistic": pl.Float64, "p_value": pl.Float64,
              "test": pl.String}
    frame = pl.DataFrame(records, schema=schema, orient="row") if records else pl.DataFrame(
        schema=schema)
    p = frame.get_column("p_value").to_numpy().astype(np.float64)
    adjusted = holm(p)
    excludes_zero = ((pl.col("diff_low") > 0) | (pl.col("diff_high") < 0)).fill_null(False)
    frame = frame.with_columns(
        pl.Series("p_holm", adjusted, dtype=pl.Float64, nan_to_null=True),
        pl.Series("significant", np.nan_to_num(adjusted, nan=2.0) <= alpha, dtype=pl.Boolean),
    ).with_columns(pl.when(pl.col("test") == POSTERIOR_TEST).then(excludes_zero)
                   .otherwise(pl.col("significant")).alias("significant"))
    return frame.select(COMPARE_COLUMNS), notes


def compare_runs(dir_a, dir_b, alpha: float = 0.05) -> pl.DataFrame:
    """Every measure of the rows (scope, key) present in both runs' summaries, side by side,
    then the per-member rows (scope ``member``, key ``ALLIANCE/STATE``, the members in both
    runs' ``members.parquet``).

    Columns :data:`COMPARE_COLUMNS`: ``scope``, ``key``, ``measure``, ``a``, ``b``, ``diff``
    (B − A), ``diff_low``/``diff_high`` (95% interval of the difference; rates only),
    ``statistic`` (z, or the KS distance D), ``p_value``, ``p_holm`` (Holm-adjusted over every
    test of the comparison), ``significant`` (``p_holm ≤ alpha``) and ``test``
    (``two_proportion``, ``ks_binned`` or ``none``).  Measures without a test have null p-values
    and are never significant.  :class:`UserError` for a missing or incomplete run folder; runs of
    different scenarios are compared too (see :func:`compare_runs_with_notes` for the note).
    """
    return compare_runs_with_notes(dir_a, dir_b, alpha)[0]
