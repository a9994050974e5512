"""``crisis report RUN_DIR``: one self-contained HTML page of a run.

The page opens with a **reading** of the results in words, every number generated from the
summary and members tables (:func:`reading`), then the **assumptions** (every value the scenario
file marks ``# assumption``, with its rationale, identical ones grouped, and the settings left
at the engine's defaults), the figures of :func:`engine.present.plots.plot_run` embedded as
``data:`` URIs (SVG), the summary tables (overall, per target, alliance, attack type and
aggressor; rates as percentages with their 95% Wilson intervals), the members (per alliance ×
member state, the least reliable first), the posterior's parameters (a calibrated run), the
**sources** (the citation of every dataset in :mod:`engine.data.registry` whose file the
scenario names, and the scenario's own list of sources), the manifest and the scenario file.
States and alliances are shown by name (:class:`engine.present.plots.Names`).  The page needs no
other file and loads nothing from the network; ``tests/test_report_browser.py`` opens it in
chromium.

Bounded size: a table shows at most :data:`MAX_TABLE_ROWS` rows (the ones with the most trials),
then one row saying how many are left out and where they are (``summary.parquet``); the figures
are bounded the same way (:mod:`engine.present.plots`), and the scenario file is shown up to
:data:`MAX_SCENARIO_CHARS` characters.  Names are HTML-escaped, control characters shown as
escapes (:func:`engine.present.sanitize.terminal_safe`).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ..core.tables import members_by_reliability
from ..data.registry import DATASETS, Dataset
from ..errors import UserError
from ..runs.folder import MEMBERS, SCENARIO, RunData
from ..runs.io import atomic_write
from .plots import (
    CAMPAIGN_FIGURES,
    RUN_FIGURES,
    Names,
    campaign_tables,
    plot_run,
    read_run,
    scenario_names,
)
from .sanitize import terminal_safe
from .terminal import evenly_spaced, member_label

# the most rows of one summary table (the rest: one row pointing to summary.parquet)
MAX_TABLE_ROWS = 50
# the most characters of the scenario file shown on the page
MAX_SCENARIO_CHARS = 200_000

# (scope, heading) in page order
SECTIONS = (
    (("overall", "covered_targets", "uncovered_targets"), "Overall"),
    (("target",), "By target"),
    (("alliance",), "By alliance"),
    (("attack_type",), "By attack type"),
    (("aggressor",), "By aggressor"),
)
SCOPE_LABELS = {"overall": "overall", "covered_targets": "covered targets",
                "uncovered_targets": "uncovered targets (no-alliance baseline)"}
FIGURE_CAPTIONS = {
    "deterrence_by_target": "Share of crises deterred per target, with 95% Wilson intervals; "
                            "diamonds: the same trials with the target standing alone.",
    "delay_distribution": "Cumulative distribution of the delay from attack to the alliance's "
                          "response, over invoked trials, per alliance (at most 8 curves, the "
                          "rest pooled as \"other\") and per attack type; the axis ends at the "
                          "99th percentile of all responses.",
    "breakdown_causes": "What became of the attacks: decided and delivered, decided then "
                        "defection, deadlock, veto, or no alliance to consult; a defection "
                        "share is written only where there was one.",
    "member_honor_rates": "Share of the crises each member was pledged to in which it backed "
                          "and delivered (honored), with 95% Wilson intervals; ticks: backed; "
                          "dashed: the alliance as a whole. The least reliable at the top.",
}

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1180px; padding: 0 1rem; color: #1b1b1b; line-height: 1.45; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: .6rem 0 1.2rem; font-size: .88rem; }
th, td { padding: .28rem .6rem; border-bottom: 1px solid #e4e4e4; text-align: right;
         white-space: nowrap; }
th { background: #f4f6f8; position: sticky; top: 0; }
td.key, th.key { text-align: left; font-weight: 600; }
.ci { color: #666; font-size: .8rem; }
.kv td, .kv th { text-align: left; white-space: normal; }
.kv td:first-child { font-weight: 600; }
.reading { font-size: 1.05rem; max-width: 60rem; }
ul.sources li { margin-bottom: .4rem; }
.scroll { overflow-x: auto; }
figure { margin: 1.2rem 0 2rem; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: .9rem; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .8rem;
      max-height: 32rem; }
details summary { cursor: pointer; font-weight: 600; }
"""

# (column heading, measure, kind): kind "rate+ci" shows the Wilson interval, "rate" the rate only
COLUMNS = (
    ("trials", "trials", "count"),
    ("deterred % [95% CI]", "deterrence_success_rate", "rate+ci"),
    ("no-alliance %", "deterrence_rate_no_alliance", "rate"),
    ("lift pp [95% CI]", "deterrence_lift", "rate+ci"),
    ("attacked", "attacked", "count"),
    ("invoked % [95% CI]", "invocation_rate", "rate+ci"),
    ("deadlock %", "deadlock_rate", "rate"),
    ("veto %", "veto_rate", "rate"),
    ("defection %", "defection_rate", "rate"),
    ("breakdown % [95% CI]", "breakdown_rate", "rate+ci"),
    ("honored %", "honor_rate", "rate"),
    ("repelled %", "repelled_rate", "rate"),
    ("delay mean (d)", "delay_mean_days", "days"),
    ("p50 (d)", "delay_p50_days", "days"),
    ("p90 (d)", "delay_p90_days", "days"),
    ("p99 (d)", "delay_p99_days", "days"),
    ("rounds", "rounds_mean", "rounds"),
)


def _finite(x) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)


def pct(x) -> str:
    """A rate as a percentage with one decimal (``-`` when undefined)."""
    return f"{100.0 * x:.1f}" if _finite(x) else "-"


def _cell(rec: dict, measure: str, kind: str) -> str:
    x = rec.get(measure)
    if kind == "count":
        return "-" if x is None else f"{x:,}"
    if kind == "days":
        return f"{x:,.1f}" if _finite(x) else "-"
    if kind == "rounds":
        return f"{x:.2f}" if _finite(x) else "-"
    text = html.escape(pct(x))
    if kind == "rate+ci" and _finite(x):
        lo, hi = rec.get(f"{measure}_low"), rec.get(f"{measure}_high")
        if _finite(lo) and _finite(hi):
            text += f' <span class="ci">[{pct(lo)}–{pct(hi)}]</span>'
    return text


def summary_html(summary: pl.DataFrame, scopes: tuple[str, ...],
                 names: Names | None = None) -> str:
    """The rows of ``scopes`` as an HTML table (columns without any value are left out); keys
    are shown by their ``names`` (``Estonia (EST)``) where given."""
    names = names or Names()
    part = summary.filter(pl.col("scope").is_in(list(scopes)))
    if part.height == 0:
        return '<p class="sub">no rows</p>'
    recs = sorted(part.iter_rows(named=True), key=lambda r: scopes.index(r["scope"]))
    left_out = 0
    if len(recs) > MAX_TABLE_ROWS:  # the rows with the most trials, in their order
        trials = [r.get("trials") or 0 for r in recs]
        keep = set(sorted(range(len(recs)), key=lambda i: -trials[i])[:MAX_TABLE_ROWS])
        left_out = len(recs) - len(keep)
        recs = [r for i, r in enumerate(recs) if i in keep]
    cols = [c for c in COLUMNS if c[1] in part.columns
            and any(r.get(c[1]) is not None for r in recs)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in cols)
    key_head = "scope" if len(scopes) > 1 else scopes[0].replace("_", " ")
    rows = []
    for rec in recs:
        label = (SCOPE_LABELS.get(rec["scope"], rec["scope"]) if len(scopes) > 1
                 else terminal_safe(names.key(rec["scope"], rec["key"])))
        tds = "".join(f"<td>{_cell(rec, m, k)}</td>" for _, m, k in cols)
        rows.append(f'<tr><td class="key">{html.escape(label)}</td>{tds}</tr>')
    if left_out:
        rows.append(f'<tr><td class="key">other</td><td colspan="{len(cols)}" '
                    f'style="text-align: left">{left_out:,} more rows with fewer trials, not '
                    "shown: every row is in summary.parquet (<code>crisis summarize RUN_DIR "
                    "--format csv</code>)</td></tr>")
    return (f'<div class="scroll"><table><thead><tr><th class="key">{html.escape(key_head)}'
            f"</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


# (column heading, rate) of the members table; every rate is of the crises pledged to
MEMBER_RATE_HEADINGS = (
    ("backed %", "backing_rate"),
    ("delivered %", "delivery_rate"),
    ("honored % [95% CI]", "honor_rate"),
    ("free rode %", "free_riding_rate"),
)


def members_html(members: pl.DataFrame | None, names: Names | None = None) -> str:
    """The members (``members.parquet``) as an HTML table, the least reliable first (lowest
    honor rate, ties by more pledges), at most :data:`MAX_TABLE_ROWS` rows; alliances by their
    ``names`` where given."""
    names = names or Names()
    if members is None:
        return (f'<p class="sub">No per-member results: this run has no {MEMBERS} (a run of an '
                "older engine?).</p>")
    ranked = members_by_reliability(members)
    never = members.height - ranked.height
    if ranked.height == 0:
        return '<p class="sub">No member pledged in any consulted crisis.</p>'
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h, _ in MEMBER_RATE_HEADINGS)
    rows = []
    for rec in ranked.head(MAX_TABLE_ROWS).iter_rows(named=True):
        tds = "".join(f"<td>{_cell(rec, rate, 'rate+ci' if rate == 'honor_rate' else 'rate')}"
                      "</td>" for _, rate in MEMBER_RATE_HEADINGS)
        rows.append(f'<tr><td class="key">{esc(terminal_safe(names.alliance(rec["alliance"])))}'
                    "</td>"
                    f'<td class="key">{esc(terminal_safe(member_label(rec["name"], rec["state"])))}'
                    f'</td><td>{rec["pledged"]:,}</td>{tds}</tr>')
    more = ranked.height - MAX_TABLE_ROWS
    notes = []
    if more > 0:
        notes.append(f"{more:,} more members, more reliable, not shown: every one is in "
                     f"{MEMBERS} (<code>crisis summarize RUN_DIR --format csv --table "
                     "members</code>)")
    if never:
        notes.append(f"{never:,} memberships never pledged (their alliance was never consulted "
                     "with them as an ally) are left out")
    note = "".join(f'<p class="sub">{n}.</p>' for n in notes)
    return (f'<div class="scroll"><table><thead><tr><th class="key">alliance</th>'
            f'<th class="key">member</th><th>pledged</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{note}")


def _kv_table(items: list[tuple[str, object]]) -> str:
    rows = []
    for key, value in items:
        if isinstance(value, dict | list):
            value = json.dumps(value, default=str)
        rows.append(f"<tr><td>{html.escape(terminal_safe(key))}</td>"
                    f"<td>{html.escape(terminal_safe('-' if value is None else value))}</td></tr>")
    return f'<table class="kv"><tbody>{"".join(rows)}</tbody></table>'


def _svg_figure(svg: Path, name: str, caption: str, alt: str | None = None) -> str:
    """One embedded figure: the SVG file inline (base64) with its id, alt text and caption."""
    data = base64.b64encode(svg.read_bytes()).decode("ascii")
    return (f'<figure id="fig-{name}"><img alt="{html.escape(alt or name)}" '
            f'src="data:image/svg+xml;base64,{data}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


def _figures_html(run_dir: Path, run: RunData, names: Names) -> tuple[str, str]:
    """The embedded figures of the run (:func:`plot_run`, drawn once) and, for a campaign run,
    its :func:`campaign_section` with the campaign figures ("" otherwise)."""
    with tempfile.TemporaryDirectory(prefix="crisis-report-") as tmp:
        paths = plot_run(run_dir, tmp)
        parts = []
        for name in RUN_FIGURES:
            svg = next((p for p in paths if p.name == f"{name}.svg"), None)
            if svg is not None:
                parts.append(_svg_figure(svg, name, FIGURE_CAPTIONS.get(name, name)))
        tables = campaign_tables(run)
        campaign = ("" if tables is None else
                    campaign_section(*tables, figures=paths, names=names))
    return "\n".join(parts), campaign


def _frame_html(frame: pl.DataFrame, limit: int = MAX_TABLE_ROWS) -> str:
    esc = html.escape

    def fmt(x) -> str:
        if x is None:
            return "—"
        if isinstance(x, float):
            return f"{x:.3f}" if math.isfinite(x) else "—"
        return terminal_safe(str(x))

    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = ["<tr>" + "".join(f"<td>{esc(fmt(v))}</td>" for v in r) + "</tr>"
            for r in frame.head(limit).iter_rows()]
    note = ("" if frame.height <= limit else
            f'<p class="sub">{frame.height - limit} more rows in the parquet file.</p>')
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{note}")


def is_backtest_folder(folder: Path) -> bool:
    """A ``crisis backtest`` output folder (scores and predictions, no run manifest)."""
    return (folder / "scores.parquet").is_file() and (folder / "predictions.parquet").is_file()


def _deterrence_section(folder: Path, path: Path, info: dict) -> list[str]:
    """The backtest's deterrence comparison: the relative-risk table, its figure and the
    choices behind it."""
    try:
        table = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    out = ["<h2>Deterrence: do defense pacts deter?</h2>",
           '<p class="sub">Relative risk that a challenger originates a militarized dispute '
           "against a target covered by a defense pact, against an uncovered one, on the same "
           "directed dyad-years: observed in the GML MID data, and the engine's probability of "
           "attack (1 − P(deterred)) on the imported world of each year. Adjusted: modified "
           "Poisson regression with capabilities, major-power status, rivalry, shared alliance "
           "and decade controls.</p>", _frame_html(table)]
    if isinstance(info.get("reading"), str):
        out.append(f"<p>{html.escape(info['reading'])}</p>")
    svg = folder / "relative_risk.svg"
    if svg.is_file():
        out.append(_svg_figure(svg, "relative_risk", "Relative risk, data and engine",
                               alt="relative risk"))
    return out


def render_backtest(folder: str | Path) -> str:
    """The HTML page of a ``crisis backtest`` output folder: scores, the reading, the figures,
    the commitments not predicted (by reason) and the predictions."""
    folder = Path(folder)
    esc = html.escape
    try:
        scores = pl.read_parquet(folder / "scores.parquet")
        predictions = pl.read_parquet(folder / "predictions.parquet")
        unpredicted = (pl.read_parquet(folder / "unpredicted.parquet")
                       if (folder / "unpredicted.parquet").is_file() else None)
        info = (json.loads((folder / "backtest.json").read_text(encoding="utf-8"))
                if (folder / "backtest.json").is_file() else {})
    except (OSError, ValueError, pl.exceptions.PolarsError) as err:
        raise UserError(f"{folder}: cannot read the backtest ({err})") from None
    fit = info.get("fit", {})
    facts = [("coding", info.get("coding")), ("split (train ≤)", info.get("split")),
             ("trials per crisis", info.get("trials")), ("seed", info.get("seed")),
             ("coded commitments", info.get("commitments")),
             ("predicted / not", f"{info.get('predicted')} / {info.get('unpredicted')}"),
             ("commitment_scale", f"{fit.get('value')} ({fit.get('how')})"),
             ("logit", (info.get("logit") or {}).get("method")),
             ("logit covariates", (info.get("logit") or {}).get("covariates"))]
    body = ["<h1>Backtest: alliance commitments in war</h1>",
            '<p class="sub">Each coded commitment of Berkemeier &amp; Fuhrmann (2018) predicted by '
            "the engine, the train-split base rate and a logistic regression; fitted on wars up "
            "to the split year, scored on later wars.</p>",
            "<h2>Settings</h2>", _kv_table(facts),
            "<h2>Scores</h2>",
            '<p class="sub">Brier score and log loss: lower is better; AUC: 0.5 is no '
            "discrimination.</p>", _frame_html(scores), "<h2>Figures</h2>"]
    for name, caption in (("reliability", "Reliability diagram, test split"),
                          ("roc", "ROC curves, test split")):
        svg = folder / f"{name}.svg"
        if svg.is_file():
            body.append(_svg_figure(svg, name, caption))
    deterrence = folder / "deterrence.parquet"
    if deterrence.is_file():
        body += _deterrence_section(folder, deterrence, info.get("deterrence") or {})
    if unpredicted is not None and unpredicted.height:
        body += ["<h2>Not predicted, by reason</h2>",
                 _frame_html(unpredicted.group_by("reason", "split").len()
                             .sort("len", "reason", descending=[True, False]))]
    body += ["<h2>Predictions</h2>",
             _frame_html(predictions.select("war", "year", "atopid", "pledgers", "aggressor",
                                            "target", "split", "observed", "engine",
                                            "base_rate", "logit"), limit=500)]
    citations = info.get("citations") or []
    if citations:
        body += ["<h2>Sources</h2><ul>"] + [f"<li>{esc(c)}</li>" for c in citations] + ["</ul>"]
    body.append(f'<p class="sub">Generated {esc(datetime.now(UTC).isoformat(timespec="seconds"))}'
                " by crisis-engine.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>Backtest — crisis-engine report</title>\n<style>{CSS}</style>\n"
            "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


# ---- the reading: the results in words ---------------------------------------------------------

# a member is named the least reliable only with at least this many pledges (fewer: noise)
MIN_PLEDGES_TO_NAME = 30
# rates below this (a fraction) count as zero in the reading
NEGLIGIBLE = 0.0005


def _bracket(rec: dict, measure: str, scale: float = 100.0) -> str:
    lo, hi = rec.get(f"{measure}_low"), rec.get(f"{measure}_high")
    if not (_finite(lo) and _finite(hi)):
        return ""
    return f" [{scale * lo:.1f}–{scale * hi:.1f}]"


def _share(x) -> str:
    return f"{100.0 * x:.1f}%"


def _rows(summary: pl.DataFrame, scope: str) -> list[dict]:
    return [r for r in summary.filter(pl.col("scope") == scope).iter_rows(named=True)
            if (r.get("trials") or 0) > 0]


def _outcome_sentence(rec: dict) -> str | None:
    """What became of the attacks, in one sentence (only the outcomes that happened)."""
    attacked = rec.get("attacked") or 0
    if attacked == 0:
        return "No attack was launched in any trial."
    parts = []
    if _finite(rec.get("invocation_rate")):
        parts.append(f"{_share(rec['invocation_rate'])} brought an alliance to a decision to act")
    for measure, words in (("deadlock_rate", "ended in deadlock"), ("veto_rate", "in a veto")):
        if _finite(rec.get(measure)) and rec[measure] >= NEGLIGIBLE:
            parts.append(f"{_share(rec[measure])} {words}")
    consulted = rec.get("consulted")
    if isinstance(consulted, int) and attacked > consulted:
        parts.append(f"{_share((attacked - consulted) / attacked)} met no alliance at all")
    if not parts:
        return f"{attacked:,} attacks were launched."
    text = f"Of the {attacked:,} attacks, " + ", ".join(parts) + "."
    defection = rec.get("defection_rate")
    if _finite(defection):
        text += (f" After {_share(defection)} of the decisions to act an ally defected."
                 if defection >= NEGLIGIBLE else " No ally defected after a decision to act.")
    return text


def _target_sentences(summary: pl.DataFrame, names: Names) -> list[str]:
    rows = [r for r in _rows(summary, "target") if _finite(r.get("deterrence_success_rate"))]
    if len(rows) < 2:
        return []
    # ties: the target with more trials
    low = min(rows, key=lambda r: (r["deterrence_success_rate"], -r["trials"]))
    high = max(rows, key=lambda r: (r["deterrence_success_rate"], r["trials"]))
    out = [f"Deterrence is highest for {names.state(high['key'])}, at "
           f"{_share(high['deterrence_success_rate'])}, and lowest for "
           f"{names.state(low['key'])}, at {_share(low['deterrence_success_rate'])}."]
    gaps = [(r["deterrence_success_rate"] - r["deterrence_rate_no_alliance"], r) for r in rows
            if _finite(r.get("deterrence_rate_no_alliance"))]
    if gaps:
        gap, rec = max(gaps, key=lambda g: (g[0], g[1]["trials"]))
        if gap >= NEGLIGIBLE:
            out.append(f"The largest gap alliances make is for {names.state(rec['key'])}: "
                       f"{_share(rec['deterrence_success_rate'])} of its crises deterred, against "
                       f"{_share(rec['deterrence_rate_no_alliance'])} standing alone "
                       f"(+{100 * gap:.1f} percentage points).")
    return out


def _member_sentence(members: pl.DataFrame | None, names: Names) -> str | None:
    if members is None:
        return None
    ranked = members_by_reliability(members).filter(pl.col("pledged") >= MIN_PLEDGES_TO_NAME)
    if ranked.height == 0:
        return None
    rec = ranked.row(0, named=True)
    return (f"The least reliable member with at least {MIN_PLEDGES_TO_NAME} pledges is "
            f"{member_label(rec['name'], rec['state'])} in {names.alliance(rec['alliance'])}: it "
            f"honored {_share(rec['honor_rate'])}{_bracket(rec, 'honor_rate')} of its "
            f"{rec['pledged']:,} pledges.")


def reading(run: RunData, names: Names) -> list[str]:
    """The run's results in a few sentences, every number taken from its summary and members
    tables: overall deterrence and what alliances add, what became of the attacks, the targets
    deterred most and least and the largest gap, the response delay and the least reliable
    member."""
    summary, m = run.summary, run.manifest
    overall = next(iter(_rows(summary, "overall")), None)
    if overall is None or not _finite(overall.get("deterrence_success_rate")):
        return ["This run has no trials to read."]
    trials = overall.get("trials") or m.get("trials")
    campaign = m.get("campaign") if isinstance(m.get("campaign"), dict) else None
    first = (f"Across {trials:,} {'trials' if campaign is None else 'crises'}, aggression was "
             "deterred in "
             f"{_share(overall['deterrence_success_rate'])}"
             f"{_bracket(overall, 'deterrence_success_rate')} of crises.")
    alone = overall.get("deterrence_rate_no_alliance")
    if _finite(alone):
        first += f" Had every target stood alone, {_share(alone)} would have been deterred"
        lift = overall.get("deterrence_lift")
        first += (f": alliances add {100 * lift:.1f} percentage points"
                  f"{_bracket(overall, 'deterrence_lift')}." if _finite(lift) else ".")
    out = [_campaign_totals_sentence(campaign, m.get("trials"), trials), first,
           _outcome_sentence(overall)]
    out += _target_sentences(summary, names)
    p50, p90 = overall.get("delay_p50_days"), overall.get("delay_p90_days")
    if _finite(p50) and _finite(p90):
        out.append(f"When an alliance decided to act, its response came {p50:.1f} days after "
                   f"the attack at the median, and within {p90:.1f} days in 90% of cases.")
    out.append(_member_sentence(run.members, names))
    out.append("Brackets: " + ("2.5–97.5% over the posterior draws."
                               if isinstance(m.get("posterior"), dict)
                               else "95% Wilson intervals (Monte Carlo uncertainty only)."))
    return [s for s in out if s]


def _campaign_totals_sentence(campaign: dict | None, trajectories, crises) -> str | None:
    """For a campaign run: what the run's totals count (every crisis of every period)."""
    if campaign is None:
        return None
    steps = campaign.get("steps")
    return (f"This run is a campaign: {trajectories:,} trajectories of {steps:,} periods each. "
            f"Its totals — this reading, the figures and the tables after the campaign section "
            f"— are over every crisis of every period ({crises:,} crises); the campaign "
            "section shows them period by period."
            if isinstance(trajectories, int) and isinstance(steps, int)
            else "This run is a campaign: its totals are over every crisis of every period; "
                 "the campaign section shows them period by period.")


# ---- the assumptions: values the scenario marks `# assumption`, and the defaults it left -------

_TABLE_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]#]+?)\s*\]\]?\s*(?:#.*)?$")
_MARKED = re.compile(r"^\s*([A-Za-z0-9_\"'.-]+)\s*=\s*(.*?)\s*#\s*assumption\b[\s:;,.-]*(.*)$",
                     re.IGNORECASE)
_BLOCK_KEY = {"states": "id", "alliances": "id", "aggressors": "state"}
# "where" lists at most this many members of a group, then says how many more
MAX_WHERE_NAMES = 4


@dataclass
class Assumption:
    """One assumed value (or engine default) and every place it holds: ``section`` (states,
    alliances, scenario, …), ``places`` (ids of the blocks; empty for a single table)."""

    section: str
    key: str
    value: str
    rationale: str
    places: list[str] = field(default_factory=list)


def marked_assumptions(text: str) -> list[Assumption]:
    """Every ``key = value  # assumption[: rationale]`` line of a scenario file, identical
    ones (same section, key, value and rationale) grouped with the ids of their blocks, in the
    order of the file."""
    section, place = "", ""
    pending: list[tuple[str, str, str]] = []  # the current block's, until its id is known
    groups: dict[tuple[str, str, str, str], Assumption] = {}

    def flush():
        for key, value, why in pending:
            group = groups.setdefault((section, key, value, why),
                                      Assumption(section, key, value, why))
            if place:
                group.places.append(place)
        pending.clear()

    for line in text.splitlines():
        header = _TABLE_HEADER.match(line)
        if header:
            flush()
            section = header[2].strip()
            place = ""
            if header[1] == "[" and "." in section:  # [attack_types.cyber]
                section, place = section.split(".", 1)
                place = place.strip("\"'")
            continue
        block_key = _BLOCK_KEY.get(section)
        if block_key and not place:
            ident = re.match(rf'^\s*{block_key}\s*=\s*"([^"]*)"', line)
            if ident:
                place = ident[1]
        marked = _MARKED.match(line)
        if marked:
            pending.append((marked[1].strip("\"'"), marked[2], marked[3].strip()))
    flush()
    return list(groups.values())


def default_assumptions(scenario) -> list[Assumption]:
    """The settings a scenario leaves unset: the engine's defaults, grouped like
    :func:`marked_assumptions`."""
    groups: dict[tuple[str, str], Assumption] = {}

    def unset(section: str, obj, place: str) -> None:
        for key, info in type(obj).model_fields.items():
            if key in obj.model_fields_set or key in ("id", "name") or info.is_required():
                continue
            default = info.get_default(call_default_factory=True)
            value = "not set" if default is None else json.dumps(default, default=str)
            group = groups.setdefault((section, key), Assumption(section, key, value,
                                                                 "engine default"))
            if place:
                group.places.append(place)

    unset("scenario", scenario.scenario, "")
    for state in scenario.states:
        unset("states", state, state.id)
    for alliance in scenario.alliances:
        unset("alliances", alliance, alliance.id)
    for aggressor in scenario.aggressors:
        unset("aggressors", aggressor, aggressor.state)
    for kind, attack in scenario.attack_types.items():
        unset("attack_types", attack, kind)
    return list(groups.values())


def _where(item: Assumption, totals: dict[str, int], label) -> str:
    section = item.section.replace("_", " ")
    if not item.places:
        return section
    n = len(item.places)
    if n == totals.get(item.section, -1) and n > 1:
        return f"every one of the {n:,} {section}"
    shown = ", ".join(label(item.section, p) for p in item.places[:MAX_WHERE_NAMES])
    more = f" and {n - MAX_WHERE_NAMES:,} more" if n > MAX_WHERE_NAMES else ""
    return f"{section}: {shown}{more}"


def assumptions_html(text: str | None, scenario, names: Names) -> str:
    """The assumptions table (values marked ``# assumption`` in the scenario file, with their
    rationale) and the table of the engine defaults the scenario left unset."""
    esc = html.escape
    totals = {}
    if scenario is not None:
        totals = {"states": len(scenario.states), "alliances": len(scenario.alliances),
                  "aggressors": len(scenario.aggressors),
                  "attack_types": len(scenario.attack_types)}

    def label(section: str, place: str) -> str:
        if section in ("states", "aggressors"):
            return names.state(place)
        return names.alliance(place) if section == "alliances" else place

    def table(items: list[Assumption], rationale: bool) -> str:
        head = "<th>where</th><th>setting</th><th>value</th>" + (
            "<th>rationale</th>" if rationale else "")
        rows = []
        for item in items:
            cells = [_where(item, totals, label), item.key, item.value] + (
                [item.rationale or "—"] if rationale else [])
            rows.append("<tr>" + "".join(f"<td>{esc(terminal_safe(c))}</td>" for c in cells)
                        + "</tr>")
        return (f'<div class="scroll"><table class="kv assumptions"><thead><tr>{head}</tr>'
                f"</thead><tbody>{''.join(rows)}</tbody></table></div>")

    out = []
    marked = marked_assumptions(text or "")
    if marked:
        out += ['<p class="sub">Every value the scenario file marks <code># assumption</code>: '
                "a modelling choice, not taken from data, with the rationale the file gives.</p>",
                table(marked, rationale=True)]
    else:
        out.append('<p class="sub">The scenario file marks no value <code># assumption</code>; '
                   "its values are listed in the scenario file below.</p>")
    defaults = default_assumptions(scenario) if scenario is not None else []
    if defaults:
        out += ["<h3>Left at the engine's defaults</h3>",
                '<p class="sub">Settings the scenario file does not set: the engine uses its '
                "default (see the model documentation), also an assumption.</p>",
                table(defaults, rationale=False)]
    return "\n".join(out)


# ---- the sources: citations of every dataset the scenario names -----------------------------

def cited_datasets(text: str | None) -> list[Dataset]:
    """The datasets of :mod:`engine.data.registry` whose file the scenario file names (an
    imported scenario lists the files it read; a curated one where its numbers come from)."""
    text = text or ""
    return [d for d in DATASETS if d.file in text]


def scenario_sources(text: str | None) -> list[str]:
    """The scenario file's own list of sources: the comment lines after a ``# Sources`` line,
    up to the next empty comment line (continuation lines joined)."""
    items: list[str] = []
    inside = False
    for line in (text or "").splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            if inside:
                break
            continue
        body = stripped.lstrip("#").strip()
        if re.match(r"sources\b", body, re.IGNORECASE):
            inside = True
            continue
        if not inside:
            continue
        if not body:
            break
        if body.startswith("- "):
            items.append(body[2:])
        elif items:
            items[-1] += " " + body
        else:
            items.append(body)
    return items


def sources_html(text: str | None) -> str:
    esc = html.escape
    out = []
    datasets = cited_datasets(text)
    if datasets:
        seen = set()
        rows = []
        for d in datasets:
            if d.citation in seen:
                continue
            seen.add(d.citation)
            rows.append(f"<li>{esc(d.citation)} <span class=\"ci\">({esc(d.title)}; "
                        f"{esc(d.file)}; terms: {esc(d.terms)})</span></li>")
        out += ["<h3>Datasets</h3>", f'<ul class="sources">{"".join(rows)}</ul>']
    own = scenario_sources(text)
    if own:
        out += ["<h3>As the scenario file gives them</h3>",
                '<ul class="sources">' + "".join(f"<li>{esc(terminal_safe(s))}</li>"
                                                 for s in own) + "</ul>"]
    if not out:
        out.append('<p class="sub">The scenario file names no dataset or source.</p>')
    return "\n".join(out)


def _scenario_of(run: RunData):
    """The run's scenario (None when its file cannot be read: the page says less)."""
    try:
        return run.folder.read_scenario(run.manifest)
    except UserError:
        return None


def render_report(run_dir: str | Path) -> str:
    """The HTML page of the run in ``run_dir``: a reading of the results in words, the
    assumptions, a campaign run's :func:`campaign_section` (by period, over all of its periods'
    crises otherwise), the figures, the results and members tables, the posterior's parameters
    (a calibrated run), the sources cited, then the manifest and the scenario file."""
    run_dir = Path(run_dir)
    if is_backtest_folder(run_dir) and not (run_dir / "manifest.json").is_file():
        return render_backtest(run_dir)
    run = read_run(run_dir)
    m, summary = run.manifest, run.summary
    scenario = _scenario_of(run)
    names = scenario_names(scenario) if scenario is not None else Names()
    scenario_text = run.folder.read_scenario_text()
    shown_text = scenario_text
    if shown_text is None:
        shown_text = f"({SCENARIO} is missing)"
    elif len(shown_text) > MAX_SCENARIO_CHARS:
        shown_text = (shown_text[:MAX_SCENARIO_CHARS]
                      + f"\n… ({len(shown_text) - MAX_SCENARIO_CHARS:,} more characters: "
                        f"the whole file is {SCENARIO} in the run folder)\n")
    name = terminal_safe(m.get("scenario", run_dir.name))
    trials = m.get("trials")
    facts = [
        ("scenario", name),
        ("scenario hash", m.get("scenario_hash")),
        ("seed", m.get("seed")),
        ("trials", f"{trials:,}" if isinstance(trials, int) else trials),
        ("scenario file", m.get("scenario_file")),
        ("run folder", str(run_dir)),
    ]
    esc = html.escape
    figures, campaign = _figures_html(run_dir, run, names)
    body = [
        f"<h1>{esc(name)}</h1>",
        f'<p class="sub">{esc(f"{trials:,}" if isinstance(trials, int) else str(trials))} '
        f"trials · seed {esc(str(m.get('seed')))} · scenario "
        f"{esc(str(m.get('scenario_hash', ''))[:12])} · engine "
        f"{esc(str((m.get('versions') or {}).get('engine', '?')))}</p>",
        '<h2 id="reading">Reading</h2>',
        '<div class="reading">' + "".join(f"<p>{esc(terminal_safe(s))}</p>"
                                          for s in reading(run, names)) + "</div>",
        '<h2 id="assumptions">Assumptions</h2>',
        assumptions_html(scenario_text, scenario, names),
        *([campaign] if campaign else []),
        '<h2 id="figures">Figures</h2>', figures,
        '<h2 id="results">Results</h2>',
        '<p class="sub">' + ("Every crisis of every period of the campaign counts once. "
                             if campaign else "")
        + 'Rates are percentages: deterrence and lift of all trials; invocation, '
        "deadlock, veto, breakdown and repelled of attacked trials; defection of invoked trials; "
        "honored of the allies' commitments in consulted crises. Brackets: "
        + ("2.5–97.5% over the posterior: parameter and Monte Carlo uncertainty together. "
           if isinstance(m.get("posterior"), dict) else "95% Wilson intervals. ")
        + "Delays (days) are over invoked trials.</p>",
    ]
    for scopes, heading in SECTIONS:
        if summary.filter(pl.col("scope").is_in(list(scopes))).height:
            body += [f"<h3>{esc(heading)}</h3>", summary_html(summary, scopes, names)]
    body += ['<h2 id="members">By member, the least reliable first</h2>',
             '<p class="sub">Per alliance and member state, over the crises the alliance was '
             "consulted in with the member as an ally (neither target nor aggressor): backed in "
             "the alliance's consultation, delivered its forces, honored (both), free rode (the "
             "alliance acted, the member never backed).</p>",
             members_html(run.members, names)]
    post = m.get("posterior")
    if isinstance(post, dict):
        body += ['<h2 id="calibration">Parameters from a posterior</h2>', _kv_table([
            ("posterior file", post.get("file")), ("SHA-256", post.get("sha256")),
            ("parameters", ", ".join(map(str, post.get("parameters") or []))),
            ("draws (used)", f"{post.get('draws')} ({post.get('draws_used')})"),
            ("trials per draw", post.get("trials_per_draw")),
            ("intervals", post.get("interval"))])]
    body += ['<h2 id="sources">Sources</h2>', sources_html(scenario_text),
             "<h2>Scenario</h2>", _kv_table(facts),
             "<h2>Manifest</h2>", _kv_table(list(m.items())),
             "<h2>Scenario file</h2>",
             f"<details><summary>{SCENARIO}</summary><pre>{esc(shown_text)}</pre>"
             "</details>",
             f'<p class="sub">Generated {esc(datetime.now(UTC).isoformat(timespec="seconds"))}'
             " by crisis-engine.</p>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{esc(name)} — crisis-engine report</title>\n<style>{CSS}</style>\n"
            "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(run_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write the report of the run in ``run_dir`` to ``out_path`` (default RUN_DIR/report.html),
    atomically; returns the path."""
    run_dir = Path(run_dir)
    out = Path(out_path) if out_path is not None else run_dir / "report.html"
    page = render_report(run_dir)
    if out.parent and not out.parent.is_dir():
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"{out.parent}: cannot create the folder: {err.strerror}") from None
    atomic_write(out, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return out


# ---- campaigns (design §7): the reading, the table by period and the figures ----------------

CAMPAIGN_CAPTIONS = {
    "campaign_rates": "Per period: the share of crises deterred, and of the attacks the share "
                      "that succeeded and that broke down (deadlock, veto or defection), with "
                      "95% Wilson bands; dashed: deterrence had every target stood alone.",
    "campaign_survival": "Per alliance: the share of trajectories in which it is not yet "
                         "dissolved after each period (95% Wilson bands), and its active "
                         "members as a share of its members at the start (exits and "
                         "accessions); the alliances that change most, the others pooled.",
    "campaign_reputation": "Means over the trajectories at the end of each period: reputation "
                           "of the allies (all roster states, and each alliance's active "
                           "members), the aggressors' resolve multiplier and the threat level.",
    "campaign_successes": "How many of its crises an aggressor won in one trajectory: the share "
                          "of trajectories by their number of successful aggressions, with 95% "
                          "Wilson intervals; dashed: the mean.",
}
# (column heading, measure, kind) of the table by period; kinds as in COLUMNS, and "mean"
PERIOD_TABLE_COLUMNS = (
    ("period", "period", "count"),
    ("crises", "crises", "count"),
    ("deterred % [95% CI]", "deterrence_success_rate", "rate+ci"),
    ("no-alliance %", "deterrence_rate_no_alliance", "rate"),
    ("attacked", "attacked", "count"),
    ("aggression success % [95% CI]", "aggression_success_rate", "rate+ci"),
    ("breakdown % [95% CI]", "breakdown_rate", "rate+ci"),
    ("honored %", "honor_rate", "rate"),
    ("delay p50 (d)", "delay_p50_days", "days"),
    ("reputation", "reputation_mean", "mean"),
    ("resolve ×", "resolve_multiplier_mean", "mean"),
    ("threat", "threat_mean", "mean"),
    ("exits", "exits", "count"),
    ("joins", "joins", "count"),
    ("dissolved", "dissolved", "count"),
)
# the reading names at most this many alliances
MAX_CAMPAIGN_ALLIANCES_NAMED = 3


def _campaign_cell(rec: dict, measure: str, kind: str) -> str:
    if kind == "mean":
        x = rec.get(measure)
        return f"{x:.3f}" if _finite(x) else "-"
    return _cell(rec, measure, kind)


def _no_overlap(first: dict, last: dict, measure: str) -> int:
    """+1 / −1 when ``last``'s Wilson interval lies wholly above / below ``first``'s, else 0."""
    lo0, hi0 = first.get(f"{measure}_low"), first.get(f"{measure}_high")
    lo1, hi1 = last.get(f"{measure}_low"), last.get(f"{measure}_high")
    if not all(_finite(x) for x in (lo0, hi0, lo1, hi1)):
        return 0
    return 1 if lo1 > hi0 else -1 if hi1 < lo0 else 0


def _trend_sentence(first: dict, last: dict, measure: str, what: str) -> str | None:
    """How ``measure`` moved from the first period to the last, in words ("fell" / "rose" only
    when the two 95% intervals do not overlap)."""
    a, b = first.get(measure), last.get(measure)
    if not (_finite(a) and _finite(b)):
        return None
    p0, p1 = first["period"], last["period"]
    then = f"{_share(a)}{_bracket(first, measure)} in period {p0}"
    now = f"{_share(b)}{_bracket(last, measure)} in period {p1}"
    move = _no_overlap(first, last, measure)
    if move < 0:
        return f"{what} fell from {then} to {now}."
    if move > 0:
        return f"{what} rose from {then} to {now}."
    return f"{what} stayed within Monte Carlo noise: {then}, {now}."


def _alliance_rows(alliance_periods: pl.DataFrame) -> list[tuple[str, dict, dict]]:
    """(alliance id, its first period's row, its last period's row), the alliances that change
    most first (lowest survival at the end, then the largest change in active members)."""
    out = []
    for key, rows in alliance_periods.group_by("alliance", maintain_order=True):
        rows = rows.sort("period")
        out.append((str(key[0]), rows.row(0, named=True), rows.row(rows.height - 1, named=True)))

    def change(item):
        last = item[2]
        survival = last["survival"] if _finite(last.get("survival")) else 1.0
        start = max(last["members_at_start"] or 1, 1)
        moved = abs((last["active_members_mean"] or 0.0) / start - 1.0)
        return (survival, -moved)

    return sorted(out, key=change)


def campaign_reading(periods: pl.DataFrame, alliance_periods: pl.DataFrame,
                     successes: pl.DataFrame, names: Names | None = None) -> list[str]:
    """A campaign run's results in a few sentences, every number from its tables: how
    deterrence and aggression success moved from the first period to the last, how often a
    crisis broke out, which alliances survived and how their membership changed, where
    reputation, resolve and threat ended, and how many aggressions a trajectory saw succeed."""
    names = names or Names()
    if periods.height == 0:
        return ["This campaign has no periods to read."]
    rows = periods.sort("period")
    first, last = rows.row(0, named=True), rows.row(rows.height - 1, named=True)
    steps = rows.height
    out: list[str] = []
    if steps == 1:
        out.append(f"In its single period, aggression was deterred in "
                   f"{_share(first['deterrence_success_rate'])}"
                   f"{_bracket(first, 'deterrence_success_rate')} of crises."
                   if _finite(first.get("deterrence_success_rate"))
                   else "No crisis broke out in its single period.")
    else:
        trend = _trend_sentence(first, last, "deterrence_success_rate", "deterrence")
        out.append(f"Over {steps} periods {trend[0].lower()}{trend[1:]}" if trend else
                   f"Over {steps} periods no deterrence rate can be compared (no crises).")
        trend = _trend_sentence(first, last, "aggression_success_rate",
                                "The share of attacks that succeeded")
        if trend:
            out.append(trend)
    observed = [r for r in rows["crisis_rate_observed"].to_list() if _finite(r)]
    if observed and min(observed) < 1.0:
        crises = int(rows["crises"].sum())
        out.append(f"A crisis broke out in {_share(sum(observed) / len(observed))} of the "
                   f"periods ({crises:,} crises in all).")
    out += _campaign_alliance_sentences(alliance_periods, names, last["period"])
    rep, res, thr = (last.get(m) for m in ("reputation_mean", "resolve_multiplier_mean",
                                           "threat_mean"))
    if _finite(rep) and _finite(res) and _finite(thr):
        out.append(f"At the end of period {last['period']} the mean reputation of the "
                   f"alliances' members and candidates stood at {rep:.3f} (1 at the start), "
                   f"the aggressors' mean resolve multiplier at {res:.3f} (1 at the start) and "
                   f"the mean threat level of the states at {thr:.3f} (0 at the start).")
    out.append(_successes_sentence(successes))
    out.append("Brackets: 95% Wilson intervals (Monte Carlo uncertainty only); \"fell\" and "
               "\"rose\" only where the first and last periods' intervals do not overlap.")
    return [s for s in out if s]


def _campaign_alliance_sentences(alliance_periods: pl.DataFrame, names: Names,
                                 period: int) -> list[str]:
    items = _alliance_rows(alliance_periods)
    if not items:
        return []
    if all(_finite(last.get("survival")) and last["survival"] >= 1.0 for _, _, last in items):
        text = f"No alliance dissolved in any trajectory by the end of period {period}."
    else:
        parts = []
        for alliance, _, last in items[:MAX_CAMPAIGN_ALLIANCES_NAMED]:
            parts.append(f"{names.alliance(alliance)} in {_share(last['survival'])}"
                         f"{_bracket(last, 'survival')}")
        more = len(items) - MAX_CAMPAIGN_ALLIANCES_NAMED
        text = (f"Alliances survived to the end of period {period} (not dissolved): "
                + "; ".join(parts) + " of trajectories"
                + (f" ({more:,} more alliances in the table)." if more > 0 else "."))
    out = [text]
    for alliance, _, last in items[:MAX_CAMPAIGN_ALLIANCES_NAMED]:
        exits = int(alliance_periods.filter(pl.col("alliance") == alliance)["exits"].sum())
        joins = int(alliance_periods.filter(pl.col("alliance") == alliance)["joins"].sum())
        if exits or joins:
            out.append(f"{names.alliance(alliance)} ended with "
                       f"{last['active_members_mean']:.1f} active members per trajectory on "
                       f"average, against {last['members_at_start']:,} at the start "
                       f"({exits:,} exits and {joins:,} accessions over all trajectories).")
    return out


def _successes_sentence(successes: pl.DataFrame) -> str | None:
    total = int(successes["trajectories"].sum())
    if total == 0:
        return None
    k = successes["successful_aggressions"].to_numpy()
    n = successes["trajectories"].to_numpy()
    mean = float((k * n).sum() / total)
    none = float(n[k == 0].sum() / total)
    steps = int(k.max())
    half = float(n[2 * k >= steps].sum() / total) if steps > 0 else 0.0
    return (f"A trajectory saw {mean:.2f} successful aggressions on average; none in "
            f"{_share(none)} of trajectories, and in {_share(half)} at least half of its "
            f"{steps} periods ({math.ceil(steps / 2)} or more) ended in a successful "
            "aggression.")


def _periods_rows(periods: pl.DataFrame) -> tuple[list[dict], int]:
    """The periods shown (all up to :data:`MAX_TABLE_ROWS`, else evenly spread ones with the
    first and the last) and how many are left out."""
    rows = periods.sort("period")
    keep = evenly_spaced(rows.height, MAX_TABLE_ROWS)
    return [rows.row(i, named=True) for i in keep], rows.height - len(keep)


def periods_html(periods: pl.DataFrame) -> str:
    """The table by period (``periods.parquet``): crises, rates with 95% Wilson intervals, the
    mean state at the end of each period, exits, joins and dissolutions."""
    recs, left_out = _periods_rows(periods)
    if not recs:
        return '<p class="sub">no periods</p>'
    cols = [c for c in PERIOD_TABLE_COLUMNS if c[1] in periods.columns]
    head = "".join(f"<th>{html.escape(h)}</th>" for h, _, _ in cols)
    body = "".join("<tr>" + "".join(f"<td>{_campaign_cell(r, m, k)}</td>" for _, m, k in cols)
                   + "</tr>" for r in recs)
    note = ("" if not left_out else
            f'<p class="sub">{left_out:,} more periods, not shown: every period is in '
            "periods.parquet.</p>")
    return (f'<div class="scroll"><table class="periods"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{note}")


def campaign_alliances_html(alliance_periods: pl.DataFrame, names: Names | None = None) -> str:
    """Per alliance at the end of the campaign, the most changed first: survival with its 95%
    Wilson interval, active members at the end against the start, exits and accessions."""
    names = names or Names()
    items = _alliance_rows(alliance_periods)
    if not items:
        return '<p class="sub">No alliance in this scenario.</p>'
    totals = alliance_periods.group_by("alliance").agg(pl.col("exits").sum(),
                                                       pl.col("joins").sum())
    sums = {r["alliance"]: r for r in totals.iter_rows(named=True)}
    rows = []
    for alliance, _, last in items[:MAX_TABLE_ROWS]:
        label = html.escape(terminal_safe(names.alliance(alliance)))
        rows.append(f'<tr><td class="key">{label}</td><td>{_cell(last, "survival", "rate+ci")}'
                    f"</td><td>{last['members_at_start']:,}</td>"
                    f"<td>{last['active_members_mean']:.2f}</td>"
                    f"<td>{_campaign_cell(last, 'reputation_mean', 'mean')}</td>"
                    f"<td>{sums[alliance]['exits']:,}</td><td>{sums[alliance]['joins']:,}</td>"
                    "</tr>")
    note = ("" if len(items) <= MAX_TABLE_ROWS else
            f'<p class="sub">{len(items) - MAX_TABLE_ROWS:,} more alliances, less changed, not '
            "shown: every one is in alliance_periods.parquet.</p>")
    return ('<div class="scroll"><table><thead><tr><th class="key">alliance</th>'
            "<th>survived % [95% CI]</th><th>members at the start</th>"
            "<th>active members at the end (mean)</th><th>reputation at the end</th>"
            "<th>exits</th><th>joins</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>{note}")


def campaign_section(periods: pl.DataFrame, alliance_periods: pl.DataFrame,
                     successes: pl.DataFrame, figures: Sequence[Path] = (),
                     names: Names | None = None) -> str:
    """The HTML section of a campaign run (design §7): the reading in words
    (:func:`campaign_reading`), the figures of :func:`engine.present.plots.plot_campaign`
    (``figures``: the paths it returned; their SVGs are embedded in the order of
    :data:`~engine.present.plots.CAMPAIGN_FIGURES`), the table by period and the alliances at
    the end.  ``names`` shows alliances by name."""
    names = names or Names()
    esc = html.escape
    steps = periods.height
    body = [f'<section id="campaign"><h2>Campaign: {steps:,} period{"s" * (steps != 1)}</h2>',
            '<div class="reading">' + "".join(
                f"<p>{esc(terminal_safe(s))}</p>"
                for s in campaign_reading(periods, alliance_periods, successes, names))
            + "</div>"]
    svgs = {Path(p).stem: Path(p) for p in figures if Path(p).suffix == ".svg"}
    for name in CAMPAIGN_FIGURES:
        if name in svgs:
            body.append(_svg_figure(svgs[name], name, CAMPAIGN_CAPTIONS[name]))
    body += ["<h3>By period</h3>",
             '<p class="sub">Rates are percentages: deterrence of the period\'s crises; '
             "aggression success and breakdown of its attacks; honored of the allies' "
             "commitments in consulted crises. Reputation, resolve multiplier and threat are "
             "means over the trajectories at the end of the period; exits, joins and "
             "dissolutions are counted over all trajectories.</p>",
             periods_html(periods),
             "<h3>Alliances at the end</h3>", campaign_alliances_html(alliance_periods, names),
             "</section>"]
    return "\n".join(body)
