"""Figures (engine.present.plots), the HTML report (engine.present.report) and their commands
(engine.cli.plot)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.plot import plot_command, report_command
from engine.errors import UserError
from engine.present.plots import RUN_FIGURES, plot_run, plot_sweep
from engine.present.report import pct, write_report

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "nato-baltic-2024.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TARGETS = ("EST", "LAT", "LIT", "POL", "FIN", "UKR")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from engine.core.simulate import set_threads
    from engine.runs.runner import run_scenario

    out = tmp_path_factory.mktemp("plots") / "run"
    try:
        run_scenario(CONFIG, trials=100_000, seed=1, out_dir=out)
    finally:
        set_threads(None)
    return out


@pytest.fixture(scope="module")
def figures(run_dir) -> list[Path]:
    return plot_run(run_dir, run_dir / "figs")


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 10_000, f"{path}: only {len(data)} bytes"


def test_plot_run_writes_png_and_svg(figures, run_dir):
    names = sorted(p.name for p in figures)
    assert names == sorted(f"{n}.{e}" for n in RUN_FIGURES for e in ("png", "svg"))
    for path in figures:
        assert path.parent == run_dir / "figs" and path.is_file()
        if path.suffix == ".png":
            _check_png(path)
        else:
            text = path.read_text()
            assert "<svg" in text and len(text) > 5_000
    # no temporary files left behind by the atomic writes
    assert not [p for p in (run_dir / "figs").iterdir() if p.name.startswith(".")]


def test_svg_contents_name_targets_and_groups(figures):
    svgs = {p.stem: p.read_text() for p in figures if p.suffix == ".svg"}
    for target in TARGETS:
        assert target in svgs["deterrence_by_target"], target
        assert target in svgs["breakdown_causes"], target
    assert "no-alliance baseline" in svgs["deterrence_by_target"]
    assert "95% Wilson interval" in svgs["deterrence_by_target"]
    assert "NATO" in svgs["delay_distribution"]
    for kind in ("conventional", "hybrid", "cyber"):
        assert kind in svgs["delay_distribution"]
        assert kind in svgs["breakdown_causes"]
    assert "days from attack to response" in svgs["delay_distribution"]
    for outcome in ("deadlock", "veto", "decided, then defection", "no alliance consulted"):
        assert outcome in svgs["breakdown_causes"]


def test_plot_run_default_folder_and_overwrite(run_dir):
    first = plot_run(run_dir)
    assert all(p.parent == run_dir / "plots" for p in first)
    second = plot_run(run_dir)  # again: replaces the files
    assert [p.name for p in first] == [p.name for p in second]


def test_report_is_self_contained(run_dir):
    import json

    out = write_report(run_dir, run_dir / "out" / "page.html")
    assert out == run_dir / "out" / "page.html"
    page = out.read_text()
    summary = pl.read_parquet(run_dir / "summary.parquet")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    overall = summary.filter(pl.col("scope") == "overall").row(0, named=True)
    assert page.startswith("<!DOCTYPE html>")
    assert "Baltic crisis, 2024" in page
    assert manifest["scenario_hash"] in page
    assert "100,000" in page
    # overall deterrence with its Wilson interval, formatted as in the table
    rate = pct(overall["deterrence_success_rate"])
    lo = pct(overall["deterrence_success_rate_low"])
    hi = pct(overall["deterrence_success_rate_high"])
    assert f'{rate} <span class="ci">[{lo}–{hi}]</span>' in page
    assert re.fullmatch(r"\d+\.\d", rate) and 0.0 < float(rate) < 100.0
    for target in TARGETS:  # by name: "Estonia (EST)"
        assert re.search(rf'<td class="key">[A-Z][a-z]+ \({target}\)</td>', page), target
    assert '<td class="key">NATO</td>' in page
    # every figure embedded; nothing loaded from elsewhere
    assert page.count('src="data:image/svg+xml;base64,') == len(RUN_FIGURES)
    srcs = re.findall(r'(?:src|href)\s*=\s*["\']?([^"\' >]+)', page, flags=re.I)
    assert srcs and all(s.startswith("data:") for s in srcs), srcs
    assert "<script" not in page.lower() and "<link" not in page.lower()
    # the scenario file is shown escaped
    assert "<pre>" in page and "[[alliances]]" in page
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


def test_report_escapes_html(run_dir, tmp_path):
    import json
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("figs", "plots", "out"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["scenario"] = "<b>A & B</b>"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    page = write_report(copy).read_text()
    assert (copy / "report.html").is_file()
    assert "<b>A & B</b>" not in page
    assert "&lt;b&gt;A &amp; B&lt;/b&gt;" in page


def _sweep_frame(hue: bool) -> pl.DataFrame:
    rows = []
    for rule in (["unanimity", "majority"] if hue else ["unanimity"]):
        for k, commitment in enumerate(np.linspace(0.1, 1.0, 7)):
            p = 0.2 + 0.6 * commitment * (0.8 if rule == "unanimity" else 1.0)
            half = 0.02 + 0.005 * k
            rows.append({"commitment": float(commitment), "rule": rule,
                         "deterrence_success_rate": p,
                         "deterrence_success_rate_low": p - half,
                         "deterrence_success_rate_high": p + half,
                         "delay_p50_days": 30.0 - 10 * commitment})
    frame = pl.DataFrame(rows)
    return frame if hue else frame.drop("rule")


@pytest.mark.parametrize("hue", [False, True])
def test_plot_sweep(tmp_path, hue):
    frame = _sweep_frame(hue)
    paths = plot_sweep(frame, "commitment", ["deterrence_success_rate", "delay_p50_days"],
                       hue="rule" if hue else None, out_stem=tmp_path / "sub" / "sweep")
    assert sorted(p.name for p in paths) == ["sweep.png", "sweep.svg"]
    _check_png(tmp_path / "sub" / "sweep.png")
    svg = (tmp_path / "sub" / "sweep.svg").read_text()
    assert "commitment" in svg and "deterrence success" in svg and "(days)" in svg
    if hue:
        assert "rule = majority" in svg and "rule = unanimity" in svg


def test_plot_sweep_missing_column(tmp_path):
    with pytest.raises(UserError, match="no column 'nope'"):
        plot_sweep(_sweep_frame(False), "commitment", ["nope"], out_stem=tmp_path / "s")


def test_cli_plot_and_report(run_dir, tmp_path):
    runner = CliRunner()
    res = runner.invoke(plot_command, [str(run_dir), "--out", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p" / "breakdown_causes.png").is_file()
    res = runner.invoke(report_command, [str(run_dir), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert "Baltic crisis, 2024" in (tmp_path / "r.html").read_text()


def test_cli_plot_sweep_file(tmp_path):
    path = tmp_path / "sweep.parquet"
    _sweep_frame(True).write_parquet(path)
    res = CliRunner().invoke(plot_command, [str(path)])
    assert res.exit_code == 0, res.output
    _check_png(tmp_path / "sweep-plots" / "sweep.png")
    assert "rule = majority" in (tmp_path / "sweep-plots" / "sweep.svg").read_text()


def test_cli_errors(tmp_path):
    runner = CliRunner()
    (tmp_path / "empty").mkdir()
    for command in (plot_command, report_command):
        res = runner.invoke(command, [str(tmp_path / "empty")])
        assert res.exit_code == 2, res.output
        assert "error:" in res.output and "manifest.json" in res.output
        res = runner.invoke(command, [str(tmp_path / "missing")])
        assert res.exit_code == 2 and "error:" in res.output
    assert not (tmp_path / "empty" / "report.html").exists()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    res = runner.invoke(plot_command, [str(bad)])
    assert res.exit_code == 2 and "cannot read the sweep" in res.output


def test_every_summary_measure_has_a_title_in_words():
    """Issue 17, item 2 (titles in words): every measure of the overall summary that a sweep
    figure can plot has a label, so no panel is titled with a column name."""
    from engine.experiments.overall import overall_summary
    from engine.model.config import load_scenario
    from engine.present.plots import MEASURE_LABELS

    config = Path(__file__).resolve().parent.parent / "configs" / "seato-laos-1961.toml"
    row = overall_summary(load_scenario(config), seed=1, trials=2000)
    missing = [k for k in row if not k.endswith(("_low", "_high")) and k not in MEASURE_LABELS]
    assert missing == []
    assert all("_" not in label for label in MEASURE_LABELS.values())


# ---- issue 17, item 2: figures that scale and speak ------------------------------------------

def _atop_world() -> dict:
    """An imported-looking world: 14 ATOP alliances (one with a curated name, NATO's 3180;
    one two-member pact of named states; one directed part), all attacked and invoked."""
    states = [{"id": f"S{i}", "capability": 1.0, "commitment": 0.6} for i in range(30)]
    states[0]["capability"] = 50.0  # the aggressor: too strong to be deterred
    states[1]["name"], states[2]["name"] = "France", "Russia"
    states[2]["capability"] = 2.0  # the more capable member is named first
    alliances = [{"id": "ATOP3180", "members": ["S3", "S4", "S5"]},
                 {"id": "ATOP9001", "members": ["S1", "S2"]},
                 {"id": "ATOP9002-mutual", "members": ["S6", "S7"]}]
    alliances += [{"id": f"ATOP{9100 + k}", "members": [f"S{8 + k}", f"S{9 + k}"]}
                  for k in range(11)]
    for al in alliances:
        al["round_days"] = 2.0
    targets = sorted({m for al in alliances for m in al["members"]})
    return {"scenario": {"name": "imported-like"}, "states": states, "alliances": alliances,
            "aggressors": [{"state": "S0", "targets": {t: 1.0 for t in targets},
                            "attack_mix": {"conventional": 1.0}}],
            "attack_types": {"conventional": {"attribution_days": 3.0}}}


@pytest.fixture(scope="module")
def atop_run(tmp_path_factory) -> Path:
    from engine.core.simulate import set_threads
    from engine.model.config import scenario_from_dict
    from engine.runs.runner import run_to_folder

    out = tmp_path_factory.mktemp("atop") / "run"
    try:
        run_to_folder(scenario_from_dict(_atop_world()), trials=40_000, seed=3, out_dir=out)
    finally:
        set_threads(None)
    return out


def _plot_capturing(run: Path, out: Path, monkeypatch) -> dict:
    """plot_run with every warning an error; returns {figure name: its matplotlib figure}."""
    import warnings

    from engine.present import plots

    figures = {}
    save = plots._save

    def capture(fig, out_dir, name):
        figures[name] = fig
        return save(fig, out_dir, name)

    monkeypatch.setattr(plots, "_save", capture)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "tight layout not applied" and any other warning
        paths = plot_run(run, out)
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in RUN_FIGURES
                                                    for e in ("png", "svg"))
    for path in paths:
        if path.suffix == ".png":
            _check_png(path)
    return figures


def _legend_texts(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes] + list(fig.legends)
    return [t.get_text() for lg in legends if lg is not None for t in lg.get_texts()]


def test_imported_alliances_are_named_and_curves_capped(atop_run, tmp_path, monkeypatch):
    from engine.present.plots import MAX_CURVES

    figures = _plot_capturing(atop_run, tmp_path, monkeypatch)
    legend = _legend_texts(figures["delay_distribution"])
    alliance_entries = [t for t in legend if "ATOP" in t or t.startswith("other (")]
    assert len(alliance_entries) == MAX_CURVES  # 14 alliances: 7 named + "other (7 …)"
    assert any(t.startswith("other (7 alliances)") for t in alliance_entries)
    # names, not codes: no legend entry or tick is a bare ATOP id
    svgs = " ".join(p.read_text() for p in tmp_path.glob("*.svg"))
    assert not re.search(r">ATOP\d+", svgs)
    text = " ".join(legend)
    assert "NATO (North Atlantic Treaty; ATOP 3180)" in text
    assert "Russia–France (ATOP 9001)" in text
    assert "(ATOP 9002, mutual defense)" in text
    ticks = [t.get_text() for ax in figures["deterrence_by_target"].axes
             for t in ax.get_yticklabels()]
    assert "France (S1)" in ticks and "Russia (S2)" in ticks


def test_delay_axis_fits_the_bulk_of_the_data(run_dir, tmp_path, monkeypatch):
    """The delay axis ends near the 99th percentile of the responses, not at the slowest one
    (NATO's cyber attacks have a long tail that squashed every curve)."""
    from engine.present.plots import DELAY_AXIS_QUANTILE
    from engine.runs.folder import RunFolder
    from kernels.layout import histogram_edges

    figures = _plot_capturing(run_dir, tmp_path, monkeypatch)
    pooled = RunFolder(run_dir).load().tallies.alliance_hist.sum(axis=0)
    upper = histogram_edges()[1:]
    cum = np.cumsum(pooled) / pooled.sum()
    p99 = upper[np.searchsorted(cum, DELAY_AXIS_QUANTILE)]
    slowest = upper[np.flatnonzero(pooled)[-1]]
    assert slowest > 2 * p99  # the tail the old axis ran to
    for ax in figures["delay_distribution"].axes:
        lo, hi = ax.get_xlim()
        assert p99 <= hi <= 1.15 * p99, (hi, p99)


def test_breakdown_says_zero_defection_once(run_dir, atop_run, tmp_path, monkeypatch):
    for k, run in enumerate((run_dir, atop_run)):
        figures = _plot_capturing(run, tmp_path / str(k), monkeypatch)
        fig = figures["breakdown_causes"]
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        assert not [t for t in texts if re.fullmatch(r"defection: 0\.0% of invoked", t)]
        summary = pl.read_parquet(run / "summary.parquet").filter(pl.col("scope") == "target")
        any_defection = (summary["defection"].fill_null(0) > 0).any()
        titles = [ax.get_title(loc="left") for ax in fig.axes]
        assert any("no defection" in t for t in titles) == (not any_defection)
        if any_defection:  # then the rows with defection say how much
            assert [t for t in texts if t.startswith("defection: ")]


def test_figures_use_a_colour_blind_safe_palette(atop_run, tmp_path, monkeypatch):
    from matplotlib.colors import to_hex

    from engine.present.plots import OTHER_COLOR, PALETTE

    okabe_ito = {"#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442",
                 "#000000"}
    assert {c.lower() for c in PALETTE} <= okabe_ito
    figures = _plot_capturing(atop_run, tmp_path, monkeypatch)
    colours = {to_hex(line.get_color()) for ax in figures["delay_distribution"].axes
               for line in ax.get_lines()}
    assert colours <= okabe_ito | {OTHER_COLOR.lower()}


DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.mark.skipif(not (DATA / "atop-alliance-level.csv").is_file(),
                    reason=f"public datasets not found in {DATA}")
def test_figures_of_the_imported_2012_world(tmp_path, monkeypatch):
    """The real 2012 world (333 alliances, 81 aggressors): no warning, at most MAX_CURVES
    curves per delay panel, at most MAX_BARS bars, alliances by name."""
    from engine.cli import main
    from engine.core.simulate import set_threads
    from engine.present.plots import MAX_BARS, MAX_CURVES
    from engine.runs.runner import run_scenario

    world = tmp_path / "w2012.toml"
    result = CliRunner().invoke(main, ["import", "atop", "--year", "2012", "--data", str(DATA),
                                       "--dyads", "disputes", "--capability", "military",
                                       "--out", str(world)])
    assert result.exit_code == 0, result.output
    try:
        run_scenario(world, trials=20_000, seed=1, out_dir=tmp_path / "run")
    finally:
        set_threads(None)
    figures = _plot_capturing(tmp_path / "run", tmp_path / "figs", monkeypatch)
    for ax in figures["delay_distribution"].axes:
        entries = ax.get_legend().get_texts()
        assert 1 <= len(entries) <= MAX_CURVES
        assert not [t for t in entries if re.match(r"ATOP\d", t.get_text())]
    for name in ("deterrence_by_target", "breakdown_causes"):
        for ax in figures[name].axes:
            assert len(ax.get_yticks()) <= MAX_BARS
    titles = " ".join(ax.get_title(loc="left") for ax in figures["member_honor_rates"].axes)
    assert "(ATOP " in titles and not re.search(r"(^|\n)ATOP\d", titles)


@pytest.mark.parametrize(("path", "words"), [
    ("alliances.NATO.round_days", "round days (NATO)"),
    ("scenario.window_days", "window days"),
    ("alliances.NATO.members-", "members taken out of NATO"),
    ("aggressors.RUS.resolve", "resolve (aggressor RUS)"),
    ("commitment", "commitment"),
])
def test_parameter_paths_in_words(path, words):
    from engine.present.plots import parameter_label

    assert parameter_label(path) == words


def test_sweep_figure_speaks_words_without_warnings(tmp_path):
    import warnings

    frame = _sweep_frame(True).rename({"commitment": "alliances.NATO.round_days"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plot_sweep(frame, "alliances.NATO.round_days", ["deterrence_success_rate"], hue="rule",
                   out_stem=tmp_path / "s")
    svg = (tmp_path / "s.svg").read_text()
    assert "round days (NATO)" in svg and "Sweep over round days (NATO) and rule" in svg
    assert "round_days" not in svg


def test_sweep_with_a_third_parameter_draws_points_not_zigzags(tmp_path, monkeypatch):
    from engine.present import plots

    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, d, n: figures.append(fig) or save(fig, d, n))
    frame = pl.concat([_sweep_frame(True).with_columns(pl.lit(v).alias("integration"))
                       for v in (0.0, 0.5)])
    plot_sweep(frame, "commitment", ["deterrence_success_rate"], hue="rule",
               out_stem=tmp_path / "s")
    (fig,) = figures
    lines = [ln for ax in fig.axes for ln in ax.get_lines()]
    assert lines and all(ln.get_linewidth() == 0 for ln in lines)
    assert "other swept parameters vary" in fig.get_suptitle()
    figures.clear()
    plot_sweep(_sweep_frame(True), "commitment", ["deterrence_success_rate"], hue="rule",
               out_stem=tmp_path / "t")
    assert all(ln.get_linewidth() > 0 for ax in figures[0].axes for ln in ax.get_lines())
