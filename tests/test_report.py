"""The report people read (issue 17, item 3): the reading in words from the numbers, the
assumptions table, the engine defaults, the sources, names instead of codes, and the order of
the page (engine.present.report)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.present.report import (
    cited_datasets,
    default_assumptions,
    marked_assumptions,
    scenario_sources,
    write_report,
)

NATO = Path(__file__).resolve().parents[1] / "configs" / "nato-baltic-2024.toml"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _run(config: Path, out: Path, trials: int) -> Path:
    from engine import api

    api.run(config, trials=trials, seed=7, out=out)  # threads: all, the default
    return out


@pytest.fixture(scope="module")
def nato_page(tmp_path_factory) -> tuple[Path, str]:
    run = _run(NATO, tmp_path_factory.mktemp("report") / "run", 60_000)
    return run, write_report(run).read_text(encoding="utf-8")


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<h2 id="{anchor}">')
    end = page.find("<h2", start + 5)
    return page[start:end]


def test_the_page_opens_with_the_reading_then_assumptions_figures_and_sources(nato_page):
    _, page = nato_page
    order = [page.index(f'<h2 id="{a}">') for a in
             ("reading", "assumptions", "figures", "results", "members", "sources")]
    assert order == sorted(order)
    assert page.index('<h2 id="reading">') < page.index("<table")  # words before any table


def test_the_reading_says_the_summary_numbers(nato_page):
    run, page = nato_page
    summary = pl.read_parquet(run / "summary.parquet")
    overall = summary.filter(pl.col("scope") == "overall").row(0, named=True)
    reading = " ".join(_text(_section(page, "reading")).split())

    def pct(x):
        return f"{100 * x:.1f}"

    rate, lo, hi = (pct(overall[f"deterrence_success_rate{s}"]) for s in ("", "_low", "_high"))
    assert f"Across 60,000 trials, aggression was deterred in {rate}% [{lo}–{hi}]" in reading
    assert f"alliances add {pct(overall['deterrence_lift'])} percentage points" in reading
    assert f"Of the {overall['attacked']:,} attacks, " in reading
    assert f"{pct(overall['deadlock_rate'])}% ended in deadlock" in reading
    targets = summary.filter(pl.col("scope") == "target").sort("deterrence_success_rate")
    lowest, highest = targets.row(0, named=True), targets.row(-1, named=True)
    assert f"lowest for Ukraine (UKR), at {pct(lowest['deterrence_success_rate'])}%" in reading
    assert f"({highest['key']}), at {pct(highest['deterrence_success_rate'])}%" in reading
    assert f"median, and within {overall['delay_p90_days']:.1f} days" in reading
    assert "95% Wilson intervals" in reading


def test_every_marked_assumption_is_in_the_table_with_its_rationale(nato_page):
    _, page = nato_page
    table = _text(_section(page, "assumptions"))
    lines = [ln for ln in NATO.read_text().splitlines()
             if re.match(r"^\s*\w+\s*=.*#\s*assumption", ln)]
    assert len(lines) > 50
    for line in lines:
        key = line.split("=")[0].strip()
        rationale = re.split(r"#\s*assumption:?", line, maxsplit=1)[1].strip()
        assert key in table
        assert " ".join(rationale.split()) in " ".join(table.split()), rationale
    assert "United States (USA)" in table  # where, by name


def test_marked_assumptions_group_identical_values():
    text = """
[scenario]
name = "x"
misperception = 0.7   # assumption: hazy intelligence
[[states]]
id = "A"
commitment = 0.5      # assumption: default guess
[[states]]
id = "B"
commitment = 0.5      # assumption: default guess
[[states]]
id = "C"
commitment = 0.9      # assumption: treaty core
capability = 1.0      # CINC 2012 (data, not an assumption)
[attack_types.cyber]
severity = 0.2        # assumption
"""
    got = [(a.section, a.key, a.value, a.rationale, a.places) for a in marked_assumptions(text)]
    assert got == [("scenario", "misperception", "0.7", "hazy intelligence", []),
                   ("states", "commitment", "0.5", "default guess", ["A", "B"]),
                   ("states", "commitment", "0.9", "treaty core", ["C"]),
                   ("attack_types", "severity", "0.2", "", ["cyber"])]


def test_unset_settings_are_listed_as_engine_defaults(tmp_path):
    import tomli_w

    from engine.model.config import load_scenario

    path = tmp_path / "defaults.toml"
    path.write_text(tomli_w.dumps({
        "scenario": {"name": "defaults", "misperception": 0.4},
        "states": [{"id": "A", "capability": 1.0, "commitment": 0.5},
                   {"id": "B", "capability": 2.0, "commitment": 0.5, "stability": 0.9},
                   {"id": "X", "capability": 3.0, "commitment": 0.5}],
        "alliances": [{"id": "AB", "members": ["A", "B"]}],
        "aggressors": [{"state": "X", "targets": {"A": 1.0}, "attack_mix": {"c": 1.0}}],
        "attack_types": {"c": {}}}))
    found = {(a.section, a.key): a for a in default_assumptions(load_scenario(path))}
    assert ("scenario", "misperception") not in found  # set in the file
    assert found[("scenario", "outcome_noise")].value == "0.3"
    assert found[("states", "stability")].places == ["A", "X"]  # B sets it
    assert found[("alliances", "decision_rule")].value == '"unanimity"'
    page = write_report(_run(path, tmp_path / "run", 5_000)).read_text(encoding="utf-8")
    defaults = _text(page.split("Left at the engine's defaults")[1].split("<h2")[0])
    assert "outcome_noise" in defaults and "decision_rule" in defaults
    assert "marks no value" in page  # this file marks no assumption


def test_sources_cite_the_datasets_the_scenario_names(nato_page):
    from engine.data.registry import BY_NAME

    _, page = nato_page
    sources = _section(page, "sources")
    assert html.escape(BY_NAME["cinc"].citation) in sources
    assert html.escape(BY_NAME["atop-alliances"].citation) not in sources  # not used by NATO
    own = scenario_sources(NATO.read_text())
    assert own and own[0].startswith("Capabilities: CINC 2012")
    assert all(html.escape(s) in sources for s in own)
    text = "# Files read: alliances atop-alliance-level.csv and atop-member-level.csv"
    assert [d.name for d in cited_datasets(text)] == ["atop-alliances", "atop-members"]


@pytest.mark.skipif(not (DATA / "atop-alliance-level.csv").is_file(),
                    reason=f"public datasets not found in {DATA}")
def test_report_of_an_imported_world_names_alliances_and_cites_atop(tmp_path):
    from engine.cli import main
    from engine.data.registry import BY_NAME

    world = tmp_path / "w2012.toml"
    result = CliRunner().invoke(main, ["import", "atop", "--year", "2012", "--data", str(DATA),
                                       "--dyads", "disputes", "--capability", "military",
                                       "--out", str(world)])
    assert result.exit_code == 0, result.output
    page = write_report(_run(world, tmp_path / "run", 20_000)).read_text(encoding="utf-8")
    sources = _section(page, "sources")
    for name in ("atop-alliances", "cinc", "gml-mids"):
        assert html.escape(BY_NAME[name].citation) in sources, name
    assert "NATO (North Atlantic Treaty; ATOP 3180)" in page
    # table keys are names, not bare codes
    assert not re.search(r'<td class="key">ATOP\d+', page)
    assert "every one of the 333 alliances" in _text(_section(page, "assumptions"))
