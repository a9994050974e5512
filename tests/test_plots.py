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
    for target in TARGETS:
        assert f'<td class="key">{target}</td>' in page
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
