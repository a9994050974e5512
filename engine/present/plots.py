"""Figures of a run folder and of a parameter sweep (matplotlib, Agg backend; PNG and SVG).

``plot_run(run_dir, out_dir)`` writes four figures, each as ``NAME.png`` (130 dpi) and
``NAME.svg``:

``deterrence_by_target``
    deterrence success per target with its 95% Wilson interval, sorted, with the no-alliance
    baseline (``deterrence_rate_no_alliance``, same trials, target alone) marked per target.
``delay_distribution``
    cumulative distribution of the response delay (days from attack to the deciding alliance's
    response) per alliance (from ``alliance_hist``, trials where it decided first) and per attack
    type (from ``cell_hist``), each with its median and 99th percentile; the days axis ends at
    the 99th percentile of all responses (:data:`DELAY_AXIS_QUANTILE`), so a long tail does not
    squash the curves; log-scaled when the range is wide; legends below the panels.
``breakdown_causes``
    what became of attacks, per target and per attack type: decided and delivered, decided then
    defection, deadlock, veto, no alliance consulted — shares of attacked trials, stacked to 100%;
    a row's defection share is written only where it is not zero ("no defection after any
    invocation" once in the panel title when none is).
``member_honor_rates``
    per alliance × member state (``members.parquet``): the share of the crises it was pledged to
    in which it backed and delivered (honored), with its 95% Wilson interval, and its backing
    rate; one panel per alliance (the alliance's own honor rate as a dashed line), members
    sorted, the least reliable at the top; named "Estonia (EST)".

``plot_sweep(frame, x, measures, hue=None, out_stem=...)`` draws sweep curves (one panel per
measure) with their ``_low``/``_high`` Wilson bands.

Names, not codes (:class:`Names`): states as "Estonia (EST)" (the scenario's names), imported
``ATOP<id>`` alliances by their curated name (:mod:`engine.data.names`) or their members.  Titles
are questions in words; colours are Okabe–Ito (:data:`PALETTE`), the pooled "other" grey.  Every
figure uses constrained layout (sizes grow with the rows; no "tight layout not applied").

Bounded size: a panel shows at most :data:`MAX_BARS` bars and :data:`MAX_CURVES` curves, the
largest (most trials, attacks or responses); the rest are pooled into one "other (N …)" bar or
curve, so a 5,000-target or 20,000-alliance run draws figures of the usual size.  The member
figure shows at most :data:`MAX_MEMBER_PANELS` alliances (the most pledged) and
:data:`MAX_MEMBER_ROWS` members in all (the least reliable of each), and says what it leaves
out.  Names are drawn literally (:func:`engine.present.sanitize.plot_safe`: ``$`` is not
mathtext, control characters are shown as escapes) and never go through LaTeX.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..core.statistics import wilson_interval
from ..core.tables import members_by_reliability
from ..data.names import alliance_name
from ..errors import UserError
from ..runs.folder import CAMPAIGN_TABLES, RunData, RunFolder
from .sanitize import plot_safe
from .terminal import member_label

DPI = 130
# Okabe–Ito colours: distinguishable with the common colour-vision deficiencies.
# Pale yellow last: it is the hardest to see as a line on white.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000",
           "#F0E442")
# the pooled "other" curve or bar: grey, so it does not read as one more named series
OTHER_COLOR = "#8C8C8C"
OUTCOME_COLORS = {
    "decided, delivered": "#009E73",
    "decided, then defection": "#F0E442",
    "deadlock": "#D55E00",
    "veto": "#CC79A7",
    "no alliance consulted": "#BBBBBB",
}
RUN_FIGURES = ("deterrence_by_target", "delay_distribution", "breakdown_causes",
               "member_honor_rates")
# the most bars (targets, attack types) and curves (alliances, attack types) in one panel, the
# "other" bar or curve included
MAX_BARS = 30
MAX_CURVES = len(PALETTE)
# the member figure: at most this many alliance panels (the most pledged) and member rows in all
MAX_MEMBER_PANELS = 6
MAX_MEMBER_ROWS = 60

# Human names of the summary measures (axis labels of sweep plots); rates are shown in %.
MEASURE_LABELS = {
    "deterrence_success_rate": "deterrence success",
    "deterrence_rate_no_alliance": "deterrence without alliances",
    "deterrence_lift": "deterrence lift",
    "attack_rate": "attack rate",
    "invocation_rate": "invocation (of attacks)",
    "deadlock_rate": "deadlock (of attacks)",
    "veto_rate": "veto (of attacks)",
    "defection_rate": "defection (of invocations)",
    "breakdown_rate": "breakdown (of attacks)",
    "repelled_rate": "repelled (of attacks)",
    "aggression_success_rate": "aggression success (of attacks)",
    "honor_rate": "commitments honored",
    "delay_mean_days": "mean response delay",
    "delay_p50_days": "median response delay",
    "delay_p90_days": "response delay p90",
    "delay_p99_days": "response delay p99",
    "rounds_mean": "consultation rounds (mean)",
    "backing_share_mean": "share of allies backing (mean, consulted crises)",
    "free_riders_mean": "free riders per invoked crisis (mean)",
    "delivered_share_mean": "share of backers delivering (mean)",
    "trials": "trials",
    "deterred": "deterred trials",
    "deterred_no_alliance": "deterred trials without alliances",
    "attacked": "attacks",
    "consulted": "consulted crises",
    "invoked": "invoked crises",
    "deadlock": "deadlocks",
    "veto": "vetoes",
    "defection": "defections",
    "repelled": "attacks repelled",
    "succeeded": "successful aggressions",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 10.5,
        "axes.titlesize": 12,
        "axes.labelsize": 10.5,
        "legend.fontsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "svg.fonttype": "none",  # text stays text in SVG (searchable, smaller)
        "svg.hashsalt": "crisis-engine",  # deterministic ids in SVG output
        "text.usetex": False,  # names never go through LaTeX (a matplotlibrc may say otherwise)
        # constrained layout sizes every panel around its labels, titles and outside legends
        # (tight_layout could not, and warned "tight layout not applied")
        "figure.constrained_layout.use": True,
    })
    return plt


def _save(fig, out_dir: Path, name: str) -> list[Path]:
    """Write ``name.png`` and ``name.svg`` atomically; close the figure."""
    from ..runs.io import atomic_write

    plt = _pyplot()
    paths = []
    try:
        for ext in ("png", "svg"):
            path = out_dir / f"{name}.{ext}"
            atomic_write(path, lambda tmp, ext=ext: fig.savefig(
                tmp, format=ext, dpi=DPI, bbox_inches="tight",
                metadata={"Date": None} if ext == "svg" else None))
            paths.append(path)
    finally:
        plt.close(fig)
    return paths


# ---- reading a run folder ----------------------------------------------------------------


def read_run(run_dir: Path) -> RunData:
    """A complete run folder with its cells table and tallies (:meth:`RunFolder.load`)."""
    run = RunFolder(run_dir).load()
    run.require("cells", "tallies")
    if run.alliance_ids is None or len(run.alliance_ids) != run.tallies.alliance_hist.shape[0]:
        # labels only: without the scenario, alliances are A1, A2, … in tally order
        run.alliance_ids = [f"A{i + 1}" for i in range(run.tallies.alliance_hist.shape[0])]
    return run


def campaign_tables(run: RunData) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None:
    """A campaign run's tables (periods, alliance × period, successes per trajectory), or None
    for a run without ``[campaign]``; a :class:`UserError` naming the run when its manifest says
    campaign but a table could not be read."""
    if not isinstance(run.manifest.get("campaign"), dict):
        return None
    missing = [name for name in CAMPAIGN_TABLES if name not in run.campaign]
    if missing:
        why = "; ".join(run.notes) or "missing"
        raise UserError(f"{run.path}: a campaign run, but cannot read its "
                        f"{', '.join(missing)}: {why}")
    periods, alliance_periods, successes = (run.campaign[name] for name in CAMPAIGN_TABLES)
    return periods, alliance_periods, successes


# ---- names, not codes ----------------------------------------------------------------------

# an imported alliance: ATOP<id>, or ATOP<id>-<part> for the pledgers of one kind
# (engine/data/atop.py)
_ATOP_ID = re.compile(r"ATOP(\d+)(?:-(\w+))?")
_ATOP_PARTS = {"mutual": "mutual defense", "neutral": "neutrality", "nonagg": "non-aggression",
               "consul": "consultation"}
# the longest alliance label (legends and panel titles stay one line) and member name used in it
MAX_LABEL_CHARS = 60
MAX_MEMBER_NAME_CHARS = 16


@dataclass(frozen=True)
class Names:
    """Readable labels of a run's states (``Estonia (EST)``) and alliances (``NATO``,
    ``China–North Korea (ATOP 3445)``); an id the scenario gives no name stays as it is."""

    states: dict[str, str] = field(default_factory=dict)
    alliances: dict[str, str] = field(default_factory=dict)

    def state(self, state_id: str) -> str:
        return self.states.get(state_id, state_id)

    def alliance(self, alliance_id: str) -> str:
        return self.alliances.get(alliance_id, alliance_id)

    def key(self, scope: str, key: str) -> str:
        """The label of a summary row's ``key`` in ``scope``."""
        if scope in ("target", "aggressor"):
            return self.state(key)
        return self.alliance(key) if scope == "alliance" else key


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(" ,;–") + "…"


def alliance_label(alliance_id: str, members: Sequence[str], short_names: dict[str, str],
                   capability: dict[str, float]) -> str:
    """An imported ``ATOP<id>[-part]`` alliance in words: its common name where
    :mod:`engine.data.names` has one (``NATO (North Atlantic Treaty; ATOP 3180)``), else its
    members, the most capable first (``China–North Korea (ATOP 3445)``, ``USA, Brazil and 31
    more (ATOP 3150)``); any other id is the scenario's own name for the alliance and stays."""
    match = _ATOP_ID.fullmatch(alliance_id)
    if match is None:
        return alliance_id
    atopid, part = int(match[1]), match[2]
    tag = f"ATOP {atopid}" + (f", {_ATOP_PARTS.get(part, part)}" if part else "")
    base = alliance_name(atopid)
    if base is None:
        ranked = sorted(members, key=lambda s: -capability.get(s, 0.0))
        names = [short_names.get(s, s) for s in ranked]
        base = ("–".join(names) if len(names) <= 3
                else f"{', '.join(names[:2])} and {len(names) - 2} more")
    room = MAX_LABEL_CHARS - len(tag) - 3
    if base.endswith(")"):  # "NATO (North Atlantic Treaty)" -> "NATO (North Atlantic Treaty; …)"
        return f"{_shorten(base[:-1], room)}; {tag})"
    return f"{_shorten(base, room)} ({tag})"


def scenario_names(scenario) -> Names:
    """The :class:`Names` of a :class:`~engine.model.config.Scenario`."""
    states = {s.id: member_label(s.name, s.id) for s in scenario.states}
    short = {s.id: s.name if s.name and len(s.name) <= MAX_MEMBER_NAME_CHARS else s.id
             for s in scenario.states}
    capability = {s.id: float(s.capability) for s in scenario.states}
    alliances = {al.id: alliance_label(al.id, al.members, short, capability)
                 for al in scenario.alliances}
    return Names(states, alliances)


def run_names(run: RunData) -> Names:
    """The :class:`Names` of a run (ids only when its scenario file cannot be read)."""
    try:
        return scenario_names(run.folder.read_scenario(run.manifest))
    except UserError:
        return Names()


def _scope(summary: pl.DataFrame, scope: str) -> pl.DataFrame:
    return summary.filter(pl.col("scope") == scope)


def _val(x) -> float:
    return float("nan") if x is None else float(x)


def _count(rows: pl.DataFrame, name: str) -> np.ndarray:
    return np.array([0 if v is None else v for v in rows[name]], dtype=np.int64)


def _largest(rows: pl.DataFrame, weight: str, limit: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the ``limit − 1`` rows with the largest ``weight``, in their order, and the others) when
    there are more than ``limit`` rows; else (all rows, no rows)."""
    if rows.height <= limit:
        return rows, rows.head(0)
    order = np.argsort(-_count(rows, weight), kind="stable")[: limit - 1]
    keep = np.zeros(rows.height, dtype=bool)
    keep[order] = True
    return rows.filter(pl.Series(keep)), rows.filter(pl.Series(~keep))


def _other_label(n: int, what: str) -> str:
    return f"other ({n:,} {what})"


# ---- (a) deterrence by target ------------------------------------------------------------


def _plot_deterrence(run: RunData, names: Names, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    summary, manifest = run.summary, run.manifest
    shown, rest = _largest(_scope(summary, "target"), "trials", MAX_BARS)
    rows = shown.sort("deterrence_success_rate", nulls_last=True)
    keys = [plot_safe(names.state(k)) for k in rows["key"].to_list()]
    if rest.height:  # the other targets as one bar, at the bottom
        trials_rest = int(_count(rest, "trials").sum())
        other = {"trials": trials_rest}
        for rate, count in (("deterrence_success_rate", "deterred"),
                            ("deterrence_rate_no_alliance", "deterred_no_alliance")):
            k = int(_count(rest, count).sum())
            lo, hi = wilson_interval(np.array([k]), np.array([trials_rest]))
            value = k / trials_rest if trials_rest else None
            other[rate] = value
            other[f"{rate}_low"] = float(lo[0]) if trials_rest else None
            other[f"{rate}_high"] = float(hi[0]) if trials_rest else None
        columns = list(other)
        rows = pl.concat([pl.DataFrame([other]).cast({c: rows.schema[c] for c in columns}),
                          rows.select(columns)])
        keys = [_other_label(rest.height, "targets")] + keys
    n = len(keys)
    fig, ax = plt.subplots(figsize=(8.0, max(2.6, 0.36 * n + 1.8)))
    if n == 0:
        ax.text(0.5, 0.5, "no targets in this run", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, out_dir, "deterrence_by_target")
    y = np.arange(n)
    rate = 100 * np.array([_val(v) for v in rows["deterrence_success_rate"]])
    low = 100 * np.array([_val(v) for v in rows["deterrence_success_rate_low"]])
    high = 100 * np.array([_val(v) for v in rows["deterrence_success_rate_high"]])
    base = 100 * np.array([_val(v) for v in rows["deterrence_rate_no_alliance"]])
    trials = rows["trials"].to_list()
    ax.barh(y, rate, height=0.62, color=PALETTE[0], alpha=0.85, label="with alliances")
    err = np.vstack([np.clip(rate - low, 0, None), np.clip(high - rate, 0, None)])
    ax.errorbar(rate, y, xerr=err, fmt="none", ecolor="black", elinewidth=1.2, capsize=4,
                label="95% Wilson interval")
    if np.isfinite(base).any():
        ax.scatter(base, y, marker="D", s=38, color=PALETTE[1], edgecolor="black", zorder=3,
                   clip_on=False, label="same target alone (no-alliance baseline)")
    # values in a column right of the axes: never collide with bars or intervals
    ax.text(1.02, 1.0, "deterred [95% CI]   trials", transform=ax.transAxes, fontsize=8.5,
            va="bottom", color="0.35")
    for yi, r, lo_, hi_, t in zip(y, rate, low, high, trials, strict=True):
        text = "-" if not math.isfinite(r) else f"{r:.1f}% [{lo_:.1f}–{hi_:.1f}]   {t:,}"
        ax.text(1.02, yi, text, transform=ax.get_yaxis_transform(), va="center", fontsize=9)
    ax.set_yticks(y, keys)
    ax.set_xlim(0, 100)
    ax.set_xticks(np.arange(0, 101, 20))
    ax.set_xlabel("crises deterred (% of trials)")
    ax.set_ylabel("target")
    ax.grid(axis="x", alpha=0.3)
    ax.set_ylim(-0.7, n - 0.3)
    fig.suptitle(f"How often is an attack deterred? By target — "
                 f"{plot_safe(manifest.get('scenario', ''))}", x=0.01, ha="left",
                 fontsize=12.5)
    handles, labels = ax.get_legend_handles_labels()
    order = [labels.index(lab) for lab in ("with alliances", "95% Wilson interval",
                                            "same target alone (no-alliance baseline)")
             if lab in labels]
    fig.legend([handles[i] for i in order], [labels[i] for i in order],
               loc="outside lower center", ncol=3, frameon=False)
    return _save(fig, out_dir, "deterrence_by_target")


# ---- (b) delay distributions -------------------------------------------------------------


# the delay axis ends at this quantile of all responses (a few slow ones must not squash the rest)
DELAY_AXIS_QUANTILE = 0.99


def _cdf_curve(hist: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(x = finite upper bin edges, cumulative share, overflow share) of one histogram."""
    total = hist.sum()
    cum = np.cumsum(hist[:-1]) / total
    return upper[:-1], cum, hist[-1] / total


def _delay_quantile(hist: np.ndarray, upper: np.ndarray, q: float) -> float:
    """The upper edge of the bin holding quantile ``q`` of a delay histogram (the last finite
    edge when it lies in the overflow bin)."""
    cum = np.cumsum(hist) / hist.sum()
    k = min(int(np.searchsorted(cum, q - 1e-12)), len(upper) - 2)
    return float(upper[k])


def _delay_range(curves: list[tuple[str, np.ndarray]], upper: np.ndarray) -> tuple[float, float]:
    """(first day with a response, :data:`DELAY_AXIS_QUANTILE` of all responses) over curves."""
    pooled = np.sum([h for _, h in curves], axis=0)
    first = int(np.argmax(pooled > 0))
    lo = float(upper[first - 1]) if first > 0 else 0.0
    return lo, _delay_quantile(pooled, upper, DELAY_AXIS_QUANTILE)


def _delay_panel(ax, curves: list[tuple[str, np.ndarray]], upper: np.ndarray, title: str):
    """Step CDFs of several histograms, each labelled with its size, median and p99."""
    for i, (label, hist) in enumerate(curves):
        x, cdf, over = _cdf_curve(hist, upper)
        p50 = _delay_quantile(hist, upper, 0.5)
        p99 = _delay_quantile(hist, upper, 0.99)
        name = f"{label} (n={int(hist.sum()):,}, p50 ≈ {p50:.1f} d, p99 ≈ {p99:.0f} d)"
        if over > 0:
            name += f", {100 * over:.1f}% > {x[-1]:.0f} d"
        color = OTHER_COLOR if label.startswith("other (") else PALETTE[i % len(PALETTE)]
        ax.step(x, 100 * cdf, where="post", color=color, lw=1.8, label=name)
    ax.set_title(title, loc="left")
    ax.set_ylabel("responses by then (% of invoked)")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)


def _fewest_curves(curves: list[tuple[str, np.ndarray]], what: str
                   ) -> list[tuple[str, np.ndarray]]:
    """At most :data:`MAX_CURVES` curves: the ones with the most responses, in their order, and
    the sum of the others as one "other" curve (their histograms add: one response each)."""
    if len(curves) <= MAX_CURVES:
        return curves
    sizes = np.array([int(h.sum()) for _, h in curves])
    keep = set(np.argsort(-sizes, kind="stable")[: MAX_CURVES - 1].tolist())
    rest = [h for i, (_, h) in enumerate(curves) if i not in keep]
    return ([c for i, c in enumerate(curves) if i in keep]
            + [(_other_label(len(rest), what), np.sum(rest, axis=0))])


def _plot_delay(run: RunData, names: Names, out_dir: Path) -> list[Path]:
    from matplotlib.ticker import FuncFormatter

    from kernels.layout import histogram_edges

    plt = _pyplot()
    edges = histogram_edges()
    upper = edges[1:]
    cells = run.cells
    ahist = run.tallies.alliance_hist
    alliance_curves = _fewest_curves(
        [(plot_safe(names.alliance(aid)), ahist[i]) for i, aid in enumerate(run.alliance_ids)
         if ahist[i].sum() > 0], "alliances")
    chist = run.tallies.cell_hist
    type_curves = []
    if chist.shape[0] == cells.height and "attack_type" in cells.columns:
        kinds = cells["attack_type"].to_list()
        rows_of: dict[str, list[int]] = {}
        for i, k in enumerate(kinds):
            rows_of.setdefault(k, []).append(i)
        for kind, rows in rows_of.items():
            h = chist[rows].sum(axis=0)
            if h.sum() > 0:
                type_curves.append((plot_safe(kind), h))
        type_curves = _fewest_curves(type_curves, "attack types")
    panels = [(c, t) for c, t in ((alliance_curves, "by alliance (its decision came first)"),
                                  (type_curves, "by attack type")) if c]
    scenario = plot_safe(run.manifest.get("scenario", ""))
    if not panels:
        fig, ax = plt.subplots(figsize=(8.0, 3.0))
        ax.text(0.5, 0.5, "no invoked responses: no delay to show", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        fig.suptitle(f"How long until the alliance responds? — {scenario}", x=0.02, ha="left")
        return _save(fig, out_dir, "delay_distribution")
    entries = max(len(c) for c, _ in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4 + 0.24 * entries),
                             sharey=True, squeeze=False)
    for ax, (curves, title) in zip(axes[0], panels, strict=True):
        _delay_panel(ax, curves, upper, title)
    lo, hi = _delay_range(panels[0][0], upper)
    lo = max(lo, 0.1)
    log = hi / lo > 40
    for ax in axes[0]:
        if log:
            ax.set_xscale("log")
            ax.set_xlim(lo * 0.8, hi * 1.1)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        else:
            ax.set_xlim(0, hi * 1.05)
        ax.set_xlabel(f"days from attack to response ({'log scale, ' if log else ''}axis to the "
                      f"{100 * DELAY_AXIS_QUANTILE:.0f}th percentile: {hi:.0f} d)")
        # below the panel: never over the curves, however many and however long the names
        ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), frameon=False, fontsize=8.5)
    for ax in axes[0][1:]:
        ax.set_ylabel("")
    fig.suptitle(f"How long until the alliance responds? Share of responses within so many "
                 f"days — {scenario}", x=0.01, ha="left", fontsize=12.5)
    return _save(fig, out_dir, "delay_distribution")


# ---- (c) breakdown causes ----------------------------------------------------------------


def _outcome_shares(rows: pl.DataFrame, label) -> tuple[list, dict, list, list]:
    """Per row: its label (``label(key)``), shares (%) of attacked trials in each outcome, and
    defection % of invoked."""
    keys = [plot_safe(label(k)) for k in rows["key"].to_list()]

    def col(name):
        return np.array([0 if v is None else v for v in rows[name]], dtype=np.float64)

    attacked, consulted, invoked = col("attacked"), col("consulted"), col("invoked")
    deadlock, veto, defection = col("deadlock"), col("veto"), col("defection")
    with np.errstate(invalid="ignore", divide="ignore"):
        share = {
            "decided, delivered": invoked - defection,
            "decided, then defection": defection,
            "deadlock": deadlock,
            "veto": veto,
            "no alliance consulted": np.clip(attacked - consulted, 0, None),
        }
        share = {k: np.where(attacked > 0, 100 * v / attacked, 0.0) for k, v in share.items()}
        defect_of_invoked = [100 * d / i if i > 0 else None
                             for d, i in zip(defection, invoked, strict=True)]
    return keys, share, [a > 0 for a in attacked], defect_of_invoked


_OUTCOME_COUNTS = ("attacked", "consulted", "invoked", "deadlock", "veto", "defection")


def _fewest_rows(rows: pl.DataFrame, what: str) -> pl.DataFrame:
    """At most :data:`MAX_BARS` rows: the most attacked, and the others pooled (their counts
    add: one row per trial) into a last "other" row."""
    shown, rest = _largest(rows, "attacked", MAX_BARS)
    if rest.height == 0:
        return rows
    other = {"key": _other_label(rest.height, what),
             **{c: int(_count(rest, c).sum()) for c in _OUTCOME_COUNTS}}
    columns = ["key", *_OUTCOME_COUNTS]
    return pl.concat([shown.select(columns),
                      pl.DataFrame([other]).cast({c: shown.schema[c] for c in columns})])


def _breakdown_notes(has_attacks: list[bool], defect: list) -> tuple[list[str], str]:
    """(the note right of each bar, the note for the whole panel): a row's defection share only
    where it is not zero, so that "defection: 0.0%" is said once, not on every row."""
    notes = ["no attacks" if not ok else
             "" if d is None or d < 0.05 else f"defection: {d:.1f}% of invoked"
             for ok, d in zip(has_attacks, defect, strict=True)]
    invoked = [d for d in defect if d is not None]
    if invoked and all(d < 0.05 for d in invoked):
        return notes, "no defection after any invocation"
    return notes, ""


def _plot_breakdown(run: RunData, names: Names, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    summary = run.summary
    groups = [(scope, title) for scope, title in (("target", "by target"),
                                                  ("attack_type", "by attack type"))
              if _scope(summary, scope).height]
    scenario = plot_safe(run.manifest.get("scenario", ""))
    if not groups:
        fig, ax = plt.subplots(figsize=(8.0, 3.0))
        ax.text(0.5, 0.5, "no rows to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _save(fig, out_dir, "breakdown_causes")
    what = {"target": "targets", "attack_type": "attack types"}
    parts = [_fewest_rows(_scope(summary, s), what[s]) for s, _ in groups]
    sizes = [p.height for p in parts]
    fig, axes = plt.subplots(len(groups), 1,
                             figsize=(10.0, 0.36 * sum(sizes) + 1.5 * len(groups) + 1.0),
                             gridspec_kw={"height_ratios": [s + 1.2 for s in sizes]},
                             squeeze=False)
    for ax, part, (scope, title) in zip(axes[:, 0], parts, groups, strict=True):
        keys, share, has_attacks, defect = _outcome_shares(
            part, lambda k, scope=scope: names.key(scope, k))
        y = np.arange(len(keys))[::-1]
        left = np.zeros(len(keys))
        for name, values in share.items():
            ax.barh(y, values, left=left, height=0.66, color=OUTCOME_COLORS[name],
                    edgecolor="white", linewidth=0.6, label=name)
            for yi, lft, v in zip(y, left, values, strict=True):
                if v >= 7:
                    ax.text(lft + v / 2, yi, f"{v:.0f}%", ha="center", va="center", fontsize=8.5,
                            color="black" if name != "veto" else "white")
            left += values
        notes, panel_note = _breakdown_notes(has_attacks, defect)
        for yi, note in zip(y, notes, strict=True):
            if note:
                ax.text(101.5, yi, note, va="center", fontsize=8.5)
        ax.set_yticks(y, keys)
        ax.set_xlim(0, 100)
        ax.set_xticks(np.arange(0, 101, 20))
        ax.set_title(f"{title}" + (f" ({panel_note})" if panel_note else ""), loc="left")
        ax.set_xlabel("share of attacked trials (%)")
        ax.set_ylim(-0.6, len(keys) - 0.4)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), frameon=False,
               fontsize=8.8)
    fig.suptitle(f"What happened after an attack? — {scenario}", x=0.01, ha="left",
                 fontsize=12.5)
    return _save(fig, out_dir, "breakdown_causes")


# ---- (d) per-member honor rates ----------------------------------------------------------


def _no_members_figure(out_dir: Path, text: str) -> list[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 2.6))
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    fig.suptitle("Commitments honored per member", x=0.02, ha="left")
    return _save(fig, out_dir, "member_honor_rates")


def _plot_members(run: RunData, names: Names, out_dir: Path) -> list[Path]:
    plt = _pyplot()
    if run.members is None:
        return _no_members_figure(out_dir, "no per-member results in this run "
                                           "(members.parquet is missing: an older engine?)")
    ranked = members_by_reliability(run.members)
    if ranked.height == 0:
        return _no_members_figure(out_dir, "no member pledged in any consulted crisis")
    totals = (ranked.group_by("alliance", maintain_order=True)
              .agg(pl.col("pledged").sum(), pl.col("honored").sum(), pl.len().alias("n")))
    order = np.argsort(-totals["pledged"].to_numpy(), kind="stable")
    totals = totals[order.tolist()]
    left_out = totals.height - MAX_MEMBER_PANELS
    totals = totals.head(MAX_MEMBER_PANELS)
    per_panel = max(8, MAX_MEMBER_ROWS // max(totals.height, 1))
    panels = []
    for rec in totals.iter_rows(named=True):
        rows = ranked.filter(pl.col("alliance") == rec["alliance"]).head(per_panel)
        panels.append((rec, rows))
    heights = [rows.height + 2.2 for _, rows in panels]
    fig_height = 0.3 * sum(heights) + 1.4
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.6, fig_height),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for i, (ax, (rec, rows)) in enumerate(zip(axes[:, 0], panels, strict=True)):
        color = PALETTE[i % len(PALETTE)]
        n = rows.height
        y = np.arange(n)[::-1]  # the least reliable at the top
        rate = 100 * np.array([_val(v) for v in rows["honor_rate"]])
        low = 100 * np.array([_val(v) for v in rows["honor_rate_low"]])
        high = 100 * np.array([_val(v) for v in rows["honor_rate_high"]])
        backed = 100 * np.array([_val(v) for v in rows["backing_rate"]])
        err = np.vstack([np.clip(rate - low, 0, None), np.clip(high - rate, 0, None)])
        ax.errorbar(rate, y, xerr=err, fmt="o", color=color, ecolor=color, ms=5.5,
                    elinewidth=1.4, capsize=3, label="honored (backed and delivered), "
                                                     "95% Wilson interval")
        ax.scatter(backed, y, marker="|", s=90, color="0.35", zorder=3, label="backed")
        overall = 100 * rec["honored"] / rec["pledged"]
        ax.axvline(overall, color=color, ls="--", lw=1.1, alpha=0.8,
                   label="the alliance (all its members)")
        labels = [plot_safe(member_label(nm, st))
                  for nm, st in zip(rows["name"], rows["state"], strict=True)]
        ax.set_yticks(y, labels)
        ax.set_xlim(0, 100)
        ax.set_xticks(np.arange(0, 101, 20))
        ax.set_ylim(-0.7, n - 0.3)
        ax.grid(axis="x", alpha=0.3)
        shown = (f"the {n} least reliable of {rec['n']:,} members" if rec["n"] > n
                 else f"{n} members")
        ax.set_title(f"{plot_safe(names.alliance(rec['alliance']))}\n{overall:.1f}% of "
                     f"{rec['pledged']:,} pledges honored; {shown}", loc="left", fontsize=10.5,
                     pad=14)
        ax.text(1.04, 1.0, "honored [95% CI]   pledged", transform=ax.transAxes, fontsize=8.5,
                va="bottom", color="0.35")
        for yi, r, lo_, hi_, k in zip(y, rate, low, high, rows["pledged"], strict=True):
            ax.text(1.04, yi, f"{r:.1f}% [{lo_:.1f}–{hi_:.1f}]   {k:,}",
                    transform=ax.get_yaxis_transform(), va="center", fontsize=8.5)
    axes[-1, 0].set_xlabel("share of the crises pledged to (%)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda k: not labels[k].startswith("honored"))
    fig.legend([handles[k] for k in order], [labels[k] for k in order],
               loc="outside lower center", ncol=3, frameon=False, fontsize=8.5)
    title = (f"Who keeps its word? Commitments honored per member — "
             f"{plot_safe(run.manifest.get('scenario', ''))}")
    if left_out > 0:
        title += f"\n({left_out:,} more alliances with fewer pledges: see members.parquet)"
    fig.suptitle(title, x=0.01, ha="left", fontsize=12.5)
    return _save(fig, out_dir, "member_honor_rates")


# ---- public API --------------------------------------------------------------------------


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write the figures of the run in ``run_dir`` into ``out_dir`` (default RUN_DIR/plots).

    Returns the written paths (PNG and SVG of each figure in :data:`RUN_FIGURES`, then, for a
    campaign run, of each in :data:`CAMPAIGN_FIGURES`: :func:`plot_campaign`)."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "plots"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out}: cannot create the plot folder: {err.strerror}") from None
    names = run_names(run)
    paths: list[Path] = []
    paths += _plot_deterrence(run, names, out)
    paths += _plot_delay(run, names, out)
    paths += _plot_breakdown(run, names, out)
    paths += _plot_members(run, names, out)
    tables = campaign_tables(run)
    if tables is not None:
        paths += plot_campaign(*tables, out, title=run.manifest.get("scenario", ""),
                               names=names)
    return paths



# the tables of a scenario whose rows a parameter path names by id ("alliances.NATO.round_days")
_PARAMETER_TABLES = {"alliances": "", "states": "", "aggressors": "aggressor ",
                     "attack_types": ""}
_MEMBERSHIP_EDITS = {"members-": "members taken out of", "members+": "members added to"}


def parameter_label(path: str) -> str:
    """A swept parameter's path in words: ``alliances.NATO.round_days`` → ``round days
    (NATO)``, ``scenario.window_days`` → ``window days``, ``alliances.NATO.members-`` →
    ``members taken out of NATO``; any other column name with ``_`` as spaces."""
    parts = path.split(".")
    if len(parts) >= 3 and parts[0] in _PARAMETER_TABLES:
        owner = _PARAMETER_TABLES[parts[0]] + ".".join(parts[1:-1])
        if parts[-1] in _MEMBERSHIP_EDITS:
            return f"{_MEMBERSHIP_EDITS[parts[-1]]} {owner}"
        return f"{parts[-1].replace('_', ' ')} ({owner})"
    if len(parts) == 2 and parts[0] in ("scenario", "exposure"):
        return parts[1].replace("_", " ")
    return path.replace("_", " ")


def _is_rate(measure: str) -> bool:
    return measure.endswith("_rate") or measure == "deterrence_lift"


def _measure_label(measure: str) -> str:
    label = MEASURE_LABELS.get(measure, measure.replace("_", " "))
    if _is_rate(measure):
        return f"{label} (%)"
    if measure.endswith("_days"):
        return f"{label} (days)"
    return label


def plot_sweep(frame: pl.DataFrame, x: str, measures: Sequence[str], hue: str | None = None,
               out_stem: str | Path = "sweep", title: str | None = None) -> list[Path]:
    """Sweep curves: one panel per measure against parameter column ``x``.

    ``hue`` (optional) is a second parameter column: one curve per value.  A measure with
    ``MEASURE_low``/``MEASURE_high`` columns gets a shaded 95% band.  Rates (``*_rate``,
    ``deterrence_lift``) are drawn in %.  Writes ``out_stem.png`` and ``out_stem.svg``."""
    plt = _pyplot()
    if isinstance(measures, str):
        measures = [measures]
    measures = list(measures)
    missing = [c for c in [x, *measures, *([hue] if hue else [])] if c not in frame.columns]
    if missing:
        raise UserError(f"sweep: no column {', '.join(map(repr, missing))} "
                        f"(columns: {', '.join(frame.columns)})")
    if not measures:
        raise UserError("sweep: no measure to plot")
    if frame.height == 0:
        raise UserError("sweep: the table has no rows")
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    n = len(measures)
    ncols = 1 if n == 1 else 2
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.4 * ncols, 3.9 * nrows + 0.5),
                             squeeze=False)
    groups = ([(None, frame)] if hue is None else
              [(k[0], g) for k, g in frame.sort(hue).group_by(hue, maintain_order=True)])
    numeric_x = frame.schema[x].is_numeric()
    categories = (None if numeric_x else
                  list(dict.fromkeys(str(v) for v in frame[x].to_list())))
    # other swept parameters vary at one (x, hue): points with their intervals, no lines (a
    # line through them would zig-zag up and down at each x)
    repeated = any(g[x].n_unique() < g.height for _, g in groups)
    for idx, measure in enumerate(measures):
        ax = axes[idx // ncols, idx % ncols]
        scale = 100.0 if _is_rate(measure) else 1.0
        for gi, (value, g) in enumerate(groups):
            g = g.sort(x) if numeric_x else g
            xs = (g[x].cast(pl.Float64).to_numpy() if numeric_x else
                  np.array([categories.index(str(v)) for v in g[x].to_list()], dtype=float))
            ys = g[measure].cast(pl.Float64).to_numpy() * scale
            color = PALETTE[gi % len(PALETTE)]
            label = None if hue is None else plot_safe(f"{parameter_label(hue)} = {value}")
            ax.plot(xs, ys, marker="o", ms=4, lw=0 if repeated else 1.8, color=color,
                    label=label)
            lo_c, hi_c = f"{measure}_low", f"{measure}_high"
            if lo_c in g.columns and hi_c in g.columns:
                lo = g[lo_c].cast(pl.Float64).to_numpy() * scale
                hi = g[hi_c].cast(pl.Float64).to_numpy() * scale
                band = None if idx or gi else "95% interval"
                if repeated:
                    ax.vlines(xs, lo, hi, color=color, alpha=0.5, lw=3, label=band)
                else:
                    ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0, label=band)
        if not numeric_x:
            ax.set_xticks(range(len(categories)), [plot_safe(c) for c in categories],
                          rotation=30, ha="right")
        ax.set_xlabel(plot_safe(parameter_label(x)))
        ax.set_ylabel(plot_safe(_measure_label(measure)))
        ax.set_title(plot_safe(MEASURE_LABELS.get(measure, measure)), loc="left")
        ax.grid(alpha=0.3)
        if _is_rate(measure) and measure != "deterrence_lift":
            top = np.nanmax(np.append(frame[measure].cast(pl.Float64).to_numpy(), 0)) * 100
            ax.set_ylim(0, min(100, top * 1.1 + 2) if top < 95 else 102)
    for idx in range(n, nrows * ncols):
        axes[idx // ncols, idx % ncols].set_axis_off()
    handles, labels = axes[0, 0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == "95% interval")
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    if labels:
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 5),
                   frameon=False)
    over = parameter_label(x) + (f" and {parameter_label(hue)}" if hue else "")
    heading = plot_safe(title or f"Sweep over {over}")
    if repeated:
        heading += "\n(other swept parameters vary: one point per combination)"
    fig.suptitle(heading, x=0.01,
                 ha="left", fontsize=12.5)
    return _save(fig, out_stem.parent, out_stem.name)


# ---- backtest (crisis backtest) ------------------------------------------------------------

BACKTEST_MODELS = ("engine", "base_rate", "logit")


def plot_reliability(predictions: pl.DataFrame, out_dir: str | Path, *,
                     bins: int = 5) -> list[Path]:
    """Reliability diagram of the backtest's test split: per model, the observed honor rate
    (with its 95% Wilson interval) against the mean predicted probability in ``bins`` equal-width
    probability bins; the diagonal is perfect calibration.  ``reliability.png/.svg``."""
    plt = _pyplot()
    out = Path(out_dir)
    test = predictions.filter(pl.col("split") == "test")
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect calibration")
    edges = np.linspace(0.0, 1.0, bins + 1)
    for k, model in enumerate(BACKTEST_MODELS):
        p = test[model].to_numpy().astype(np.float64)
        y = test["observed"].to_numpy().astype(np.int64)
        which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
        xs, ys, lo, hi = [], [], [], []
        for b in range(bins):
            sel = which == b
            if not sel.any():
                continue
            n, x = int(sel.sum()), int(y[sel].sum())
            low, high = wilson_interval(np.array([x]), np.array([n]))
            xs.append(float(p[sel].mean()))
            ys.append(x / n)
            lo.append(x / n - float(low[0]))
            hi.append(float(high[0]) - x / n)
        ax.errorbar(np.array(xs) + (k - 1) * 0.008, ys, yerr=[lo, hi], marker="o", capsize=3,
                    lw=1.2, label=f"{model} (n = {test.height})")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("predicted probability of honoring")
    ax.set_ylabel("observed share honored (95% Wilson)")
    ax.set_title("Backtest reliability, test split")
    ax.legend(loc="upper left")
    return _save(fig, out, "reliability")


def plot_roc(predictions: pl.DataFrame, out_dir: str | Path) -> list[Path]:
    """ROC curves of the backtest's test split, one per model, with the AUC in the legend.
    ``roc.png/.svg``."""
    plt = _pyplot()
    out = Path(out_dir)
    test = predictions.filter(pl.col("split") == "test")
    y = test["observed"].to_numpy().astype(np.int64)
    fig, ax = plt.subplots(figsize=(5.6, 5.0))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="chance")
    positives, negatives = int(y.sum()), int((1 - y).sum())
    for model in BACKTEST_MODELS:
        p = test[model].to_numpy().astype(np.float64)
        if positives == 0 or negatives == 0:
            break
        thresholds = np.unique(p)[::-1]
        tpr = [0.0] + [float((p[y == 1] >= t).sum()) / positives for t in thresholds]
        fpr = [0.0] + [float((p[y == 0] >= t).sum()) / negatives for t in thresholds]
        area = float(np.trapezoid(tpr, fpr))
        ax.plot(fpr, tpr, marker=".", lw=1.4, label=f"{model} (AUC {area:.2f})")
    ax.set_xlabel("false positive rate (violations predicted honored)")
    ax.set_ylabel("true positive rate (honors predicted honored)")
    ax.set_title(f"Backtest ROC, test split (n = {test.height})")
    ax.legend(loc="lower right")
    return _save(fig, out, "roc")


def plot_relative_risk(table: pl.DataFrame, out_dir: str | Path) -> list[Path]:
    """The deterrence relative risk of a covering defense pact: observed (MID data, with its 95%
    interval) and the engine's, per period and estimate, on a log axis with 1 (no effect)
    marked.  ``relative_risk.png/.svg``."""
    plt = _pyplot()
    from matplotlib.ticker import FixedLocator, NullLocator

    out = Path(out_dir)
    rows = [r for r in table.iter_rows(named=True) if r["relative_risk"] is not None]
    fig, ax = plt.subplots(figsize=(7.0, 0.36 * max(len(rows), 4) + 1.4))
    colours = {"observed": "#0072B2", "engine": "#D55E00",
               "engine_without_alliances": "#999999"}
    labels, seen = [], set()
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        colour = colours.get(r["source"], "#000000")
        label = r["source"].replace("_", " ") if r["source"] not in seen else None
        seen.add(r["source"])
        if r["ci_low"] is not None:
            ax.plot([r["ci_low"], r["ci_high"]], [y, y], color=colour, lw=2)
        ax.plot([r["relative_risk"]], [y], "o", color=colour, label=label)
        labels.append(f"{r['source'].replace('_', ' ')} · {r['period']} · {r['estimate']}")
    ax.axvline(1.0, color="0.5", lw=1, ls="--")
    ax.set_xscale("log")
    values = [v for r in rows for v in (r["relative_risk"], r["ci_low"], r["ci_high"])
              if v is not None]
    lo, hi = min(values + [1.0]) / 1.25, max(values + [1.0]) * 1.25
    ax.set_xlim(lo, hi)
    ticks = [t for t in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
             if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels[::-1], fontsize=8)
    ax.set_xlabel("relative risk of a dispute against a covered target (log scale; 1 = no effect)")
    ax.set_title("Do defense pacts deter? Data and engine, same dyad-years", fontsize=11)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=8,
              frameon=False)
    return _save(fig, out, "relative_risk")


# ---- calibration (crisis calibrate --method mcmc) -----------------------------------------

def plot_trace(posterior: pl.DataFrame, names: list[str], out_dir: str | Path) -> list[Path]:
    """Per parameter: every walker's path over the kept steps (left) and the pooled marginal
    histogram (right).  ``trace.png/.svg``."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(names), 2, figsize=(9.0, 2.2 * len(names) + 0.6),
                             squeeze=False, gridspec_kw={"width_ratios": [3, 1]})
    for j, name in enumerate(names):
        left, right = axes[j]
        for _, walker in posterior.group_by("walker", maintain_order=True):
            left.plot(walker["step"].to_numpy(), walker[name].to_numpy(), lw=0.5, alpha=0.6)
        left.set_ylabel(plot_safe(name), fontsize=9)
        right.hist(posterior[name].to_numpy(), bins=40, color="#0072B2", alpha=0.8,
                   orientation="horizontal")
        right.set_ylim(left.get_ylim())
        right.set_xticks([])
    axes[-1][0].set_xlabel("step (after burn-in)")
    fig.suptitle("Posterior traces, one line per walker", x=0.01, ha="left", fontsize=12)
    return _save(fig, Path(out_dir), "trace")


def plot_corner(posterior: pl.DataFrame, names: list[str], out_dir: str | Path) -> list[Path]:
    """Corner plot: marginal histograms with the median and 95% interval on the diagonal,
    pairwise scatter of the draws below it.  ``corner.png/.svg``."""
    plt = _pyplot()
    k = len(names)
    fig, axes = plt.subplots(k, k, figsize=(2.6 * k + 0.8, 2.6 * k + 0.6), squeeze=False)
    data = {n: posterior[n].to_numpy() for n in names}
    for i, yi in enumerate(names):
        for j, xj in enumerate(names):
            ax = axes[i][j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                x = data[xj]
                ax.hist(x, bins=40, color="#0072B2", alpha=0.8)
                for q, style in ((0.025, ":"), (0.5, "-"), (0.975, ":")):
                    ax.axvline(float(np.quantile(x, q)), color="#D55E00", ls=style, lw=1)
                ax.set_yticks([])
            else:
                ax.scatter(data[xj], data[yi], s=2, alpha=0.25, color="#0072B2",
                           rasterized=True)
            if i == k - 1:
                ax.set_xlabel(plot_safe(xj), fontsize=9)
            if j == 0 and i != j:
                ax.set_ylabel(plot_safe(yi), fontsize=9)
    fig.suptitle("Posterior: marginals (median, 95% interval) and pairs", x=0.01, ha="left",
                 fontsize=12)
    return _save(fig, Path(out_dir), "corner")


# ---- campaigns (design §7) -----------------------------------------------------------------

CAMPAIGN_FIGURES = ("campaign_rates", "campaign_survival", "campaign_reputation",
                    "campaign_successes")
# (measure of periods_table, words, colour) of the rates-over-periods figure
CAMPAIGN_RATES = (
    ("deterrence_success_rate", "deterrence success (of crises)", PALETTE[0]),
    ("aggression_success_rate", "aggression success (of attacks)", PALETTE[3]),
    ("breakdown_rate", "breakdown: deadlock, veto or defection (of attacks)", PALETTE[4]),
)
# periods up to this many are drawn with markers
MAX_MARKED_PERIODS = 40


def _floats(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A column as float64, null as NaN."""
    return frame[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def _period_axis(ax, periods: np.ndarray) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(periods.min() - 0.3, periods.max() + 0.3)
    ax.set_xlabel("period (from 0)")
    ax.grid(alpha=0.3)


def _band(ax, x: np.ndarray, low: np.ndarray, high: np.ndarray, color: str,
          label: str | None = None) -> None:
    """A 95% band; a single period has no area to fill: a bar instead."""
    if x.size > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0, label=label)
    else:
        ax.vlines(x, low, high, color=color, alpha=0.5, lw=4, label=label)


def _rate_ylim(ax, values: np.ndarray) -> None:
    """0 to a little above the largest value (in %), as the sweep figures do."""
    finite = values[np.isfinite(values)]
    top = float(finite.max()) if finite.size else 0.0
    ax.set_ylim(0, min(100.0, top * 1.1 + 2) if top < 95 else 102)


def _plot_campaign_rates(periods: pl.DataFrame, out_dir: Path, title: str) -> list[Path]:
    plt = _pyplot()
    x = _floats(periods, "period")
    marker = "o" if x.size <= MAX_MARKED_PERIODS else None
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    drawn = []
    for measure, words, color in CAMPAIGN_RATES:
        y = 100 * _floats(periods, measure)
        ax.plot(x, y, color=color, lw=1.8, marker=marker, ms=3.5, label=words)
        low = 100 * _floats(periods, f"{measure}_low")
        high = 100 * _floats(periods, f"{measure}_high")
        _band(ax, x, low, high, color, "95% Wilson interval" if not drawn else None)
        drawn += [y, high]
    base = 100 * _floats(periods, "deterrence_rate_no_alliance")
    if np.isfinite(base).any():
        ax.plot(x, base, color=PALETTE[0], lw=1.2, ls="--", marker=None,
                label="deterrence had every target stood alone (same crises)")
        drawn.append(base)
    _period_axis(ax, x)
    _rate_ylim(ax, np.concatenate(drawn))
    ax.set_ylabel("share (%)")
    crises = _floats(periods, "crisis_rate_observed")
    sub = ""
    if np.nanmin(crises, initial=1.0) < 1.0:
        sub = f"\n(a crisis in {100 * np.nanmean(crises):.0f}% of the periods; rates of those)"
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] == "95% Wilson interval")
    fig.legend([handles[i] for i in order], [labels[i] for i in order],
               loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(f"Does deterrence hold as the crises go on? Rates per period — "
                 f"{plot_safe(title)}{sub}", x=0.01, ha="left", fontsize=12.5)
    return _save(fig, out_dir, "campaign_rates")


def _alliance_change(rows: pl.DataFrame) -> float:
    """How much an alliance changes over the campaign: the larger of the share of trajectories
    in which it dissolved and the largest relative change of its active members."""
    lost = 1.0 - float(np.nanmin(_floats(rows, "survival"), initial=1.0))
    start = max(int(rows["members_at_start"][0]), 1)
    moved = float(np.nanmax(np.abs(_floats(rows, "active_members_mean") / start - 1.0),
                            initial=0.0))
    return max(lost, moved)


def _campaign_alliances(alliance_periods: pl.DataFrame
                        ) -> tuple[list[tuple[str, pl.DataFrame]], list[pl.DataFrame]]:
    """(the alliances shown, each with its rows; the rows of the others): all when there are at
    most :data:`MAX_CURVES`, else the ``MAX_CURVES − 1`` that change most (ties in file order)."""
    groups = [(str(k[0]), g.sort("period"))
              for k, g in alliance_periods.group_by("alliance", maintain_order=True)]
    if len(groups) <= MAX_CURVES:
        return groups, []
    change = np.array([_alliance_change(g) for _, g in groups])
    keep = set(np.argsort(-change, kind="stable")[: MAX_CURVES - 1].tolist())
    return ([g for i, g in enumerate(groups) if i in keep],
            [g for i, (_, g) in enumerate(groups) if i not in keep])


def _plot_campaign_survival(alliance_periods: pl.DataFrame, names: Names, out_dir: Path,
                            title: str) -> list[Path]:
    plt = _pyplot()
    shown, rest = _campaign_alliances(alliance_periods)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.0, 5.0))
    if not shown:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no alliance in this scenario", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set_axis_off()
        fig.suptitle(f"Do the alliances hold? — {plot_safe(title)}", x=0.01, ha="left")
        return _save(fig, out_dir, "campaign_survival")
    x = _floats(shown[0][1], "period")
    marker = "o" if x.size <= MAX_MARKED_PERIODS else None
    lowest = 100.0
    for i, (alliance, rows) in enumerate(shown):
        color = PALETTE[i % len(PALETTE)]
        label = plot_safe(names.alliance(alliance))
        survival = 100 * _floats(rows, "survival")
        low = 100 * _floats(rows, "survival_low")
        left.plot(x, survival, color=color, lw=1.8, marker=marker, ms=3.5, label=label)
        _band(left, x, low, 100 * _floats(rows, "survival_high"), color)
        lowest = min(lowest, float(np.nanmin(low, initial=100.0)))
        start = max(int(rows["members_at_start"][0]), 1)
        right.plot(x, 100 * _floats(rows, "active_members_mean") / start, color=color, lw=1.8,
                   marker=marker, ms=3.5, label=label)
    if rest:
        label = _other_label(len(rest), "alliances")
        survival = np.mean([_floats(g.sort("period"), "survival") for g in rest], axis=0)
        active = np.sum([_floats(g.sort("period"), "active_members_mean") for g in rest], axis=0)
        start = sum(max(int(g["members_at_start"][0]), 1) for g in rest)
        left.plot(x, 100 * survival, color=OTHER_COLOR, lw=1.8, label=f"{label}, mean")
        right.plot(x, 100 * active / start, color=OTHER_COLOR, lw=1.8, label=f"{label}, mean")
        lowest = min(lowest, float(np.nanmin(100 * survival, initial=100.0)))
    for ax in (left, right):
        _period_axis(ax, x)
    if lowest >= 99.95:
        left.set_ylim(0, 102)
    else:
        left.set_ylim(max(0.0, 10 * math.floor(lowest / 10) - 2), 101.5)
    left.set_ylabel("trajectories in which it is not dissolved (%)")
    left.set_title("survival, with 95% Wilson intervals", loc="left")
    right.axhline(100, color="0.6", lw=1, ls=":")
    right.set_ylabel("active members (% of its members at the start, mean)")
    right.set_title("members: exits and accessions", loc="left")
    handles, labels = left.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3),
               frameon=False)
    note = ""
    if rest:
        note = (f"\n(the {len(shown)} alliances that change most; the other {len(rest):,} "
                "pooled)")
    elif all(_alliance_change(g) == 0.0 for _, g in shown):
        note = "\n(no alliance lost or gained a member or dissolved in any trajectory)"
    fig.suptitle(f"Do the alliances hold? Survival and membership per period — "
                 f"{plot_safe(title)}{note}", x=0.01, ha="left", fontsize=12.5)
    return _save(fig, out_dir, "campaign_survival")


def _plot_campaign_reputation(periods: pl.DataFrame, alliance_periods: pl.DataFrame,
                              names: Names, out_dir: Path, title: str) -> list[Path]:
    plt = _pyplot()
    x = _floats(periods, "period")
    marker = "o" if x.size <= MAX_MARKED_PERIODS else None
    fig, (rep_ax, res_ax, thr_ax) = plt.subplots(1, 3, figsize=(14.0, 4.8))
    rep = _floats(periods, "reputation_mean")
    rep_ax.plot(x, rep, color=PALETTE[6], lw=2.2, marker=marker, ms=3.5,
                label="every state in an alliance's roster")
    values = [rep]
    shown, _ = _campaign_alliances(alliance_periods)
    for i, (alliance, rows) in enumerate(shown):
        y = _floats(rows, "reputation_mean")
        rep_ax.plot(_floats(rows, "period"), y, color=PALETTE[i % (len(PALETTE) - 2)], lw=1.3,
                    ls="--", label=f"{plot_safe(names.alliance(alliance))}: its active members")
        values.append(y)
    top = max(1.0, float(np.nanmax(np.concatenate(values), initial=1.0)))
    rep_ax.set_ylim(0, top * 1.03)
    rep_ax.set_ylabel("mean reputation (1 at the start)")
    rep_ax.set_title("reputation of the allies", loc="left")
    rep_ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), frameon=False, fontsize=8.5)
    resolve = _floats(periods, "resolve_multiplier_mean")
    res_ax.plot(x, resolve, color=PALETTE[3], lw=2.0, marker=marker, ms=3.5)
    res_ax.axhline(1.0, color="0.6", lw=1, ls=":")
    finite = resolve[np.isfinite(resolve) & (resolve > 0)]
    if finite.size and finite.max() / finite.min() > 4:
        res_ax.set_yscale("log")
    else:
        lo = min(1.0, float(finite.min())) if finite.size else 1.0
        hi = max(1.0, float(finite.max())) if finite.size else 1.0
        pad = max(0.05, 0.08 * (hi - lo))
        res_ax.set_ylim(max(0.0, lo - pad), hi + pad)
    res_ax.set_ylabel("mean resolve multiplier (1 at the start)")
    res_ax.set_title("aggressors' resolve (learning)", loc="left")
    threat = _floats(periods, "threat_mean")
    thr_ax.plot(x, threat, color=PALETTE[1], lw=2.0, marker=marker, ms=3.5)
    thr_ax.set_ylim(0, 1.03)
    thr_ax.set_ylabel("mean threat level of every state (0–1)")
    thr_ax.set_title("perceived threat", loc="left")
    for ax in (rep_ax, res_ax, thr_ax):
        _period_axis(ax, x)
    fig.suptitle(f"How do trust, resolve and threat move? — {plot_safe(title)}\n(means over "
                 "the trajectories at the end of each period)", x=0.01, ha="left",
                 fontsize=12.5)
    return _save(fig, out_dir, "campaign_reputation")


def _plot_campaign_successes(successes: pl.DataFrame, out_dir: Path, title: str) -> list[Path]:
    plt = _pyplot()
    k = _floats(successes, "successful_aggressions")
    share = 100 * _floats(successes, "share")
    low = 100 * _floats(successes, "share_low")
    high = 100 * _floats(successes, "share_high")
    counts = _floats(successes, "trajectories")
    fig, ax = plt.subplots(figsize=(max(7.0, min(14.0, 0.35 * k.size + 4.0)), 4.6))
    ax.bar(k, share, width=0.7, color=PALETTE[3], alpha=0.85, label="share of trajectories")
    err = np.vstack([np.clip(share - low, 0, None), np.clip(high - share, 0, None)])
    ax.errorbar(k, share, yerr=err, fmt="none", ecolor="black", elinewidth=1.1, capsize=3,
                label="95% Wilson interval")
    labelled = k.size <= 25
    if labelled:  # above the interval, where no whisker runs
        for ki, s, hi in zip(k, share, high, strict=True):
            ax.text(ki, hi, f"{s:.1f}%", ha="center", va="bottom", fontsize=8)
    total = counts.sum()
    mean = float((k * counts).sum() / total) if total > 0 else float("nan")
    if math.isfinite(mean):
        ax.axvline(mean, color=PALETTE[6], ls="--", lw=1.2,
                   label=f"mean: {mean:.2f} successful aggressions per trajectory")
    from matplotlib.ticker import MaxNLocator

    if labelled:
        ax.set_xticks(k, [f"{int(v)}" for v in k])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(k.min() - 0.6, k.max() + 0.6)
    ax.set_ylim(0, min(100.0, float(np.nanmax(high, initial=0.0)) * 1.15 + 1))
    ax.set_xlabel(f"successful aggressions in a trajectory of {k.size - 1} periods")
    ax.set_ylabel("trajectories (%)")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    fig.suptitle(f"How many aggressions succeed in a campaign? — {plot_safe(title)}", x=0.01,
                 ha="left", fontsize=12.5)
    return _save(fig, out_dir, "campaign_successes")


def plot_campaign(periods: pl.DataFrame, alliance_periods: pl.DataFrame,
                  successes: pl.DataFrame, out_dir: str | Path, title: str = "",
                  names: Names | None = None) -> list[Path]:
    """The figures of a campaign run (design §7) from its tables
    (:func:`engine.core.tables.periods_table`, :func:`~engine.core.tables.alliance_periods_table`,
    :func:`~engine.core.tables.successes_table`), each as PNG and SVG in ``out_dir``:

    ``campaign_rates``
        deterrence success (of crises), aggression success and breakdown (of attacks) per
        period with their 95% Wilson bands, and deterrence had every target stood alone.
    ``campaign_survival``
        per alliance, the share of trajectories in which it is not dissolved (Wilson bands) and
        its active members as a share of its members at the start; at most :data:`MAX_CURVES`
        curves: the alliances that change most, the others pooled as one grey mean.
    ``campaign_reputation``
        the mean reputation (of the roster states, and of each shown alliance's active
        members), the aggressors' mean resolve multiplier and the states' mean threat per period
        (means over trajectories: the tallies keep no spread, so no band).
    ``campaign_successes``
        the distribution of successful aggressions per trajectory, with Wilson intervals and the
        mean.

    ``title`` names the scenario; ``names`` (:class:`Names`) the alliances.  Returns the paths
    written, in the order of :data:`CAMPAIGN_FIGURES`."""
    names = names or Names()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{out}: cannot create the plot folder: {err.strerror}") from None
    if periods.height == 0:
        raise UserError("campaign figures: the periods table has no rows")
    paths: list[Path] = []
    paths += _plot_campaign_rates(periods, out, title)
    paths += _plot_campaign_survival(alliance_periods, names, out, title)
    paths += _plot_campaign_reputation(periods, alliance_periods, names, out, title)
    paths += _plot_campaign_successes(successes, out, title)
    return paths
