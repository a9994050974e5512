"""``crisis report RUN_DIR``: one self-contained HTML page of a run.

The page holds the scenario (name, hash, seed, trials and the scenario file itself), the manifest,
the summary tables (overall, per target, alliance, attack type and aggressor; rates as percentages
with their 95% Wilson intervals), the members (per alliance × member state, the least reliable
first) and the figures of :func:`engine.present.plots.plot_run`, embedded as ``data:`` URIs
(SVG), so the page needs no other file and loads nothing from the network.

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
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from ..core.tables import members_by_reliability
from ..errors import UserError
from ..runs.folder import MEMBERS, SCENARIO
from ..runs.io import atomic_write
from .plots import RUN_FIGURES, plot_run, read_run
from .sanitize import terminal_safe
from .terminal import member_label

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
                          "response, over invoked trials.",
    "breakdown_causes": "What became of the attacks: decided and delivered, decided then "
                        "defection, deadlock, veto, or no alliance to consult.",
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
.kv td { text-align: left; white-space: normal; } .kv td:first-child { font-weight: 600; }
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


def summary_html(summary: pl.DataFrame, scopes: tuple[str, ...]) -> str:
    """The rows of ``scopes`` as an HTML table (columns without any value are left out)."""
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
                 else terminal_safe(rec["key"]))
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


def members_html(members: pl.DataFrame | None) -> str:
    """The members (``members.parquet``) as an HTML table, the least reliable first (lowest
    honor rate, ties by more pledges), at most :data:`MAX_TABLE_ROWS` rows."""
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
        rows.append(f'<tr><td class="key">{esc(terminal_safe(rec["alliance"]))}</td>'
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


def _figures_html(run_dir: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="crisis-report-") as tmp:
        paths = plot_run(run_dir, tmp)
        parts = []
        for name in RUN_FIGURES:
            svg = next((p for p in paths if p.name == f"{name}.svg"), None)
            if svg is not None:
                parts.append(_svg_figure(svg, name, FIGURE_CAPTIONS.get(name, name)))
    return "\n".join(parts)


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


def render_report(run_dir: str | Path) -> str:
    """The HTML page of the run in ``run_dir``."""
    run_dir = Path(run_dir)
    if is_backtest_folder(run_dir) and not (run_dir / "manifest.json").is_file():
        return render_backtest(run_dir)
    run = read_run(run_dir)
    m, summary = run.manifest, run.summary
    scenario_text = run.folder.read_scenario_text()
    if scenario_text is None:
        scenario_text = f"({SCENARIO} is missing)"
    elif len(scenario_text) > MAX_SCENARIO_CHARS:
        scenario_text = (scenario_text[:MAX_SCENARIO_CHARS]
                         + f"\n… ({len(scenario_text) - MAX_SCENARIO_CHARS:,} more characters: "
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
    body = [
        f"<h1>{esc(name)}</h1>",
        f'<p class="sub">{esc(f"{trials:,}" if isinstance(trials, int) else str(trials))} '
        f"trials · seed {esc(str(m.get('seed')))} · scenario "
        f"{esc(str(m.get('scenario_hash', ''))[:12])} · engine "
        f"{esc(str((m.get('versions') or {}).get('engine', '?')))}</p>",
        "<h2>Scenario</h2>", _kv_table(facts),
        "<h2>Results</h2>",
        '<p class="sub">Rates are percentages: deterrence and lift of all trials; invocation, '
        "deadlock, veto, breakdown and repelled of attacked trials; defection of invoked trials; "
        "honored of the allies' commitments in consulted crises. Brackets: "
        + ("2.5–97.5% over the posterior: parameter and Monte Carlo uncertainty together. "
           if isinstance(m.get("posterior"), dict) else "95% Wilson intervals. ")
        + "Delays (days) are over invoked trials.</p>",
    ]
    post = m.get("posterior")
    if isinstance(post, dict):
        body.insert(-2, "<h2>Parameters from a posterior</h2>")
        body.insert(-2, _kv_table([
            ("posterior file", post.get("file")), ("SHA-256", post.get("sha256")),
            ("parameters", ", ".join(map(str, post.get("parameters") or []))),
            ("draws (used)", f"{post.get('draws')} ({post.get('draws_used')})"),
            ("trials per draw", post.get("trials_per_draw")),
            ("intervals", post.get("interval"))]))
    for scopes, heading in SECTIONS:
        if summary.filter(pl.col("scope").is_in(list(scopes))).height:
            body += [f"<h3>{esc(heading)}</h3>", summary_html(summary, scopes)]
    body += ["<h3>By member, the least reliable first</h3>",
             '<p class="sub">Per alliance and member state, over the crises the alliance was '
             "consulted in with the member as an ally (neither target nor aggressor): backed in "
             "the alliance's consultation, delivered its forces, honored (both), free rode (the "
             "alliance acted, the member never backed).</p>",
             members_html(run.members)]
    body += ["<h2>Figures</h2>", _figures_html(run_dir)]
    body += ["<h2>Manifest</h2>", _kv_table(list(m.items())),
             "<h2>Scenario file</h2>",
             f"<details open><summary>{SCENARIO}</summary><pre>{esc(scenario_text)}</pre>"
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
