"""Names are shown as data, never run as code (issue 11, items 10, 12 and 13): a `$` in a name
does not start mathtext in `plot`/`report`; CSV cells that a spreadsheet would read as a formula
get a leading `'`; control characters and newlines in names reach no terminal raw; and a
closed pipe (`crisis summarize … | head -1`) ends the command quietly."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
import tomli_w
from click.testing import CliRunner

from engine.cli.main import main
from engine.model.config import scenario_from_dict
from engine.present.sanitize import (
    FORMULA_STARTS,
    csv_safe_frame,
    plot_safe,
    terminal_safe,
)

# names a scenario file may hold: attack types are free TOML keys, the scenario name free text
MATH = ["$x^{$", "$\\frac{1}{", "cost $5 and $", "$$"]
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A9)",
            "\tTAB", "\rCR"]
CONTROL = ["red\x1b[31mALERT\x1b[0m", "line\nFAKE: ok", "title\x1b]0;pwned\x07", "osc8\x1b]8;;"
           "http://evil.example\x1b\\link\x1b]8;;\x1b\\", "bell\x07\x9b2J\x7f", "rtl\u202eevil"]
ESCAPE_CHARS = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e", "\r")


def world(attack_types: list[str], name: str, targets=("S0", "S1", "-S3")) -> dict:
    states = [{"id": sid, "capability": 1.0, "commitment": 0.8} for sid in
              ("S0", "S1", "S2", "-S3")]
    states[2]["capability"] = 3.0
    return {
        "scenario": {"name": name},
        "states": states,
        "alliances": [{"id": "A", "members": ["S0", "S1", "-S3"], "round_days": 2.0},
                      {"id": "-B", "members": ["S0", "-S3"]}],
        "aggressors": [{"state": "S2", "targets": {t: 1.0 for t in targets},
                        "attack_mix": {k: 1.0 for k in attack_types}}],
        "attack_types": {k: {"attribution_days": 1.0} for k in attack_types},
    }


def make_run(tmp: Path, data: dict, trials: int = 20_000) -> Path:
    from engine.core.simulate import set_threads
    from engine.runs.runner import run_to_folder

    config = tmp / "scenario.toml"
    config.write_text(tomli_w.dumps(data))
    out = tmp / "run"
    try:
        run_to_folder(scenario_from_dict(data), trials=trials, seed=4, out_dir=out)
    finally:
        set_threads(None)
    return out


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def math_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("math"), world(MATH, "Budget $x^{$ and 100$"))


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("hostile"),
                    world(FORMULAS + CONTROL, "Evil\x1b]0;owned\x07\nFAKE LINE\x1b[2J"))


# ---- item 10: `$` in names ------------------------------------------------------------------

def test_dollar_names_plot_and_report(math_run, tmp_path):
    from engine.present.plots import plot_run
    from engine.present.report import write_report

    paths = plot_run(math_run, tmp_path / "figs")
    svgs = "".join(p.read_text() for p in paths if p.suffix == ".svg")
    for name in MATH[:3]:  # drawn literally (text stays text in the SVG)
        assert name.replace("&", "&amp;").replace("<", "&lt;") in svgs, name
    page = write_report(math_run, tmp_path / "r.html").read_text()
    assert "Budget $x^{$ and 100$" in page
    result = CliRunner().invoke(main, ["plot", str(math_run), "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output


def test_names_never_go_through_latex(math_run, tmp_path):
    import matplotlib

    with matplotlib.rc_context({"text.usetex": True}):  # e.g. from a user's matplotlibrc
        from engine.present.plots import plot_run

        plot_run(math_run, tmp_path)
    assert (tmp_path / "delay_distribution.svg").is_file()


def test_sweep_plot_with_dollar_columns_and_values(tmp_path):
    from engine.present.plots import plot_sweep

    frame = pl.DataFrame({"attack_types.$x^{$.severity": [0.5, 1.0, 1.5] * 2,
                          "rule": ["$a", "$a", "$a", "b$^", "b$^", "b$^"],
                          "deterrence_success_rate": [0.1, 0.2, 0.3, 0.2, 0.3, 0.4]})
    plot_sweep(frame, "attack_types.$x^{$.severity", ["deterrence_success_rate"], hue="rule",
               out_stem=tmp_path / "s", title="$broken{")
    assert "rule = b$^" in (tmp_path / "s.svg").read_text()


def test_figures_with_control_characters_are_valid_svg(hostile_run, tmp_path):
    from engine.present.plots import plot_run

    for path in plot_run(hostile_run, tmp_path):
        if path.suffix == ".svg":
            text = path.read_text()
            ET.fromstring(text)  # XML forbids raw control characters
            assert not any(c in text for c in ESCAPE_CHARS)
    assert "red\\x1b[31mALERT" in (tmp_path / "breakdown_causes.svg").read_text()


# ---- item 12: CSV cells -------------------------------------------------------------------------

def _risky_cells(text: str) -> list[str]:
    """Cells a spreadsheet would run: start with a formula character and are not numbers."""
    risky = []
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            if cell.startswith(FORMULA_STARTS):
                try:
                    float(cell)
                except ValueError:
                    risky.append(cell)
    return risky


def test_summarize_csv_neutralises_formulas(hostile_run):
    result = invoke("summarize", hostile_run, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert _risky_cells(result.output) == []
    keys = pl.read_csv(io.StringIO(result.output))["key"].to_list()
    for name in FORMULAS:
        assert "'" + name in keys, name
    assert "'-S3" in keys and "'-B" in keys  # ids may start with "-" too
    # numbers are never touched: a negative lift stays a number
    summary = pl.read_parquet(hostile_run / "summary.parquet")
    assert csv_safe_frame(summary).select(pl.selectors.numeric()).equals(
        summary.select(pl.selectors.numeric()))


def test_compare_and_similarity_csv_neutralise_formulas(hostile_run, tmp_path):
    result = invoke("compare", hostile_run, hostile_run, "--format", "csv", "--all")
    assert result.exit_code == 0, result.output
    assert "'=HYPERLINK" in result.output and _risky_cells(result.output) == []
    config = tmp_path / "s.toml"
    config.write_text(tomli_w.dumps(world(["c"], "sim")))
    result = invoke("similarity", config, "--format", "csv")
    assert result.exit_code == 0 and "'-S3" in result.output
    assert _risky_cells(result.output) == []
    out = tmp_path / "sim.csv"
    assert invoke("similarity", config, "--out", out).exit_code == 0
    assert _risky_cells(out.read_text()) == [] and "'-S3" in out.read_text()


def test_sensitivity_csv_and_table_are_safe(tmp_path):
    config = tmp_path / "s.toml"
    config.write_text(tomli_w.dumps(world(["x\x1b[31mred", "=1+1"], "sens")))
    out = tmp_path / "sens.csv"
    result = invoke("sensitivity", config, "--trials", 1000, "--top", 200, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "x\\x1b[31mred" in result.output
    assert _risky_cells(out.read_text()) == []


def test_csv_safe_frame_prefixes_only_text_starting_with_formula_characters():
    frame = pl.DataFrame({"name": ["=1", "+a", "-b", "@c", "\td", "\re", "ok", "a=b", None],
                          "value": [-1.0, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]})
    safe = csv_safe_frame(frame)
    assert safe["name"].to_list() == ["'=1", "'+a", "'-b", "'@c", "'\td", "'\re", "ok", "a=b",
                                      None]
    assert safe["value"].equals(frame["value"])


# ---- item 12: terminals -----------------------------------------------------------------------

def test_summarize_table_escapes_control_characters(hostile_run):
    result = invoke("summarize", hostile_run)
    assert result.exit_code == 0, result.output
    assert not any(c in result.output for c in ESCAPE_CHARS)
    assert "Evil\\x1b]0;owned\\x07\\nFAKE LINE\\x1b[2J" in result.output
    assert "line\\nFAKE: ok" in result.output
    assert not any(line.startswith("FAKE") for line in result.output.splitlines())
    assert "rtl\\u202eevil" in result.output


def test_compare_table_escapes_control_characters(hostile_run):
    result = invoke("compare", hostile_run, hostile_run, "--all")
    assert result.exit_code == 0, result.output
    assert not any(c in result.output for c in ESCAPE_CHARS)
    assert "red\\x1b[31mALERT" in result.output


def test_error_messages_escape_names(tmp_path):
    data = world(["ok"], "bad")
    data["aggressors"][0]["attack_mix"]["ev\x1b[2Jil\nFAKE"] = 1.0
    config = tmp_path / "bad.toml"
    config.write_text(tomli_w.dumps(data))
    result = invoke("validate", config)
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "ev\\x1b[2Jil\\nFAKE" in result.output
    assert not any(line.startswith("FAKE") for line in result.output.splitlines())


def test_terminal_safe_escapes_every_control_character():
    every = "".join(chr(c) for c in (*range(0x20), 0x7f, *range(0x80, 0xa0)))
    shown = terminal_safe("a" + every + "\u2028\u2029\u202a\u202e\u2066\u2069b")
    assert shown.isprintable() and shown.startswith("a\\x00") and shown.endswith("\\u2069b")
    assert terminal_safe("NATO-2024 Ünïcode ok") == "NATO-2024 Ünïcode ok"
    assert plot_safe("$x$") == "\\$x\\$"


# ---- item 13: a closed pipe -------------------------------------------------------------------

@pytest.fixture(scope="module")
def long_run(tmp_path_factory) -> Path:
    """A run whose summary is far longer than a pipe's buffer (64 KiB)."""
    n = 300
    data = {
        "scenario": {"name": "long"},
        "states": [{"id": f"S{i}", "capability": 1.0, "commitment": 0.5} for i in range(n)],
        "alliances": [{"id": f"A{i}", "members": [f"S{i}", f"S{i + 1}"]}
                      for i in range(1, n - 1)],
        "aggressors": [{"state": "S0", "targets": {f"S{i}": 1.0 for i in range(1, n)},
                        "attack_mix": {"c": 1.0}}],
        "attack_types": {"c": {}},
    }
    return make_run(tmp_path_factory.mktemp("long"), data, trials=3000)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX shell and head")
@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_summarize_into_head_ends_quietly(long_run, fmt):
    command = (f"{sys.executable} -m engine summarize {long_run} --format {fmt} | head -1; "
               f"exit ${{PIPESTATUS[0]}}")
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONUNBUFFERED": ""})
    assert proc.returncode == 141, (proc.returncode, proc.stderr)
    assert proc.stderr == "", proc.stderr
    assert len(proc.stdout.splitlines()) == 1


@pytest.mark.parametrize("args", [["validate", "a\x00b.toml"], ["summarize", "run\x00dir"],
                                  ["run", str(Path(__file__).resolve().parent.parent / "configs"
                                              / "nato-baltic-2024.toml"), "--out", "o\x00ut",
                                   "--trials", "10"],
                                  ["merge", "x\x00"], ["report", "r\x00"]])
def test_a_nul_byte_in_a_path_is_a_user_error(args):
    """os.stat and open raise ValueError on a NUL byte: that is the user's input, exit 2."""
    from click.testing import CliRunner

    from engine.cli import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "NUL byte" in result.output and "Traceback" not in result.output
