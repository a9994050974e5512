"""Campaign runs (design §7) through the command line: `crisis run` prints the table by period and
a campaign line, `crisis plot` draws the campaign figures, `crisis report` has the campaign
section, `crisis summarize` prints the campaign tables — and a run without ``[campaign]`` shows
none of it."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from polars.testing import assert_frame_equal

from engine.cli.main import main
from engine.present.terminal import evenly_spaced, format_periods
from engine.runs.folder import ALLIANCE_PERIODS, PERIODS, SUCCESSES

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "nato-baltic-2024.toml"
STEPS = 5
TRAJECTORIES = 3000
SEED = 31
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CAMPAIGN_FIGURES = ("campaign_rates", "campaign_survival", "campaign_reputation",
                    "campaign_successes")
# the period table's columns, as format_periods prints them
PERIOD_HEADER = ("period", "crises", "deterred % [95% CI]", "aggression success %",
                 "breakdown %", "reputation", "resolve ×", "threat", "exits", "joins",
                 "dissolved")
# a percentage printed with one decimal, a mean with three: the printed value is within half a
# unit of the last digit of the stored one (plus float slack)
PCT_SLACK = 0.05 + 1e-9
MEAN_SLACK = 0.0005 + 1e-12


def _scenario_text(campaign: bool) -> str:
    """The Baltic scenario in capability mode (no pilot: quick), as a campaign with every
    mechanism at work (exits, accession of Ukraine, threat, resolve) or as a v1 scenario."""
    text = CONFIG.read_text(encoding="utf-8")
    text = text.replace('deterrence = "expected_response"', 'deterrence = "capability"', 1)
    assert 'deterrence = "capability"' in text
    # some allies defect after a decision to act: breakdown is more than deadlock
    text = text.replace("defection_threshold = 1.0 ", "defection_threshold = 0.02 ", 1)
    assert "defection_threshold = 0.02 " in text
    if campaign:
        text = text.replace('id = "NATO"\n', 'id = "NATO"\ncandidates = ["UKR"]\n', 1)
        assert 'candidates = ["UKR"]' in text
        text += (f"\n[campaign]\nsteps = {STEPS}\nreputation_learning = 0.3\n"
                 "trust_weight = 0.5\nresolve_learning = 0.1\nthreat_shock = 0.1\n"
                 "threat_decay = 0.1\nexit_threshold = 0.75\njoin_threshold = 0.5\n")
    return text


def invoke(*args, code: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def _config(folder: Path, campaign: bool) -> Path:
    path = folder / ("campaign.toml" if campaign else "plain.toml")
    path.write_text(_scenario_text(campaign), encoding="utf-8")
    return path


def _whole_run(folder: Path, campaign: bool) -> tuple[Path, str]:
    """(run folder, what `crisis run` printed) of the small scenario."""
    out = folder / "run"
    result = invoke("run", _config(folder, campaign), "--trials", TRAJECTORIES, "--seed", SEED,
                    "--threads", 2, "--out", out)
    return out, result.output


@pytest.fixture(scope="module")
def campaign_run(tmp_path_factory):
    return _whole_run(tmp_path_factory.mktemp("campaign-cli"), campaign=True)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    """The same scenario without [campaign]."""
    return _whole_run(tmp_path_factory.mktemp("plain-cli"), campaign=False)


def _period_rows(output: str) -> list[list[str]]:
    """The rows of the period table in ``output``, split into their 11 cells."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.split() and line.split()[0] == "period" and "deterred %" in line)
    assert re.split(r"\s{2,}", lines[start].strip()) == list(PERIOD_HEADER)
    assert set(lines[start + 1].replace(" ", "")) == {"-"}
    rows = []
    for line in lines[start + 2:]:
        if not line.strip() or line.startswith("…"):
            break
        cells = re.split(r"\s{2,}", line.strip())
        assert len(cells) == len(PERIOD_HEADER), line
        rows.append(cells)
    return rows


def _count(text: str) -> int:
    return int(text.replace(",", ""))


def _rate_with_ci(text: str) -> tuple[float, float, float]:
    match = re.fullmatch(r"([\d.]+) \[([\d.]+)–([\d.]+)\]", text)
    assert match, text
    return float(match[1]), float(match[2]), float(match[3])


def _check_row(cells: list[str], rec: dict) -> None:
    """One printed row against its periods.parquet record, every number."""
    assert int(cells[0]) == rec["period"]
    assert _count(cells[1]) == rec["crises"]
    det, low, high = _rate_with_ci(cells[2])
    for printed, stored in ((det, rec["deterrence_success_rate"]),
                            (low, rec["deterrence_success_rate_low"]),
                            (high, rec["deterrence_success_rate_high"]),
                            (float(cells[3]), rec["aggression_success_rate"]),
                            (float(cells[4]), rec["breakdown_rate"])):
        assert abs(printed - 100.0 * stored) <= PCT_SLACK, (cells, rec)
    for printed, name in ((cells[5], "reputation_mean"), (cells[6], "resolve_multiplier_mean"),
                          (cells[7], "threat_mean")):
        assert abs(float(printed) - rec[name]) <= MEAN_SLACK, (name, printed, rec[name])
    assert [_count(c) for c in cells[8:]] == [rec["exits"], rec["joins"], rec["dissolved"]]


# ---- crisis run -------------------------------------------------------------------------------


def test_run_prints_the_period_table_of_periods_parquet(campaign_run):
    out, output = campaign_run
    periods = pl.read_parquet(out / PERIODS).sort("period")
    assert periods.height == STEPS
    # the scenario's mechanisms are at work, so the state columns are not trivially zero
    assert periods["exits"].sum() > 0 and periods["threat_mean"].max() > 0
    assert periods["resolve_multiplier_mean"].to_list() != [1.0] * STEPS
    assert (periods["breakdown_rate"] > periods["deadlock_rate"]).all()
    rows = _period_rows(output)
    assert len(rows) == STEPS  # 5 periods: every one shown, no note
    assert "periods not shown" not in output
    for cells, rec in zip(rows, periods.iter_rows(named=True), strict=True):
        _check_row(cells, rec)
    # the table comes after the usual summary, which counts every crisis of every period
    assert output.index("overall") < output.index("by period")
    overall = next(line for line in output.splitlines() if line.startswith("overall"))
    assert _count(overall.split()[1]) == periods["crises"].sum()


def test_run_prints_the_campaign_line(campaign_run):
    out, output = campaign_run
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    crises = int(pl.read_parquet(out / PERIODS)["crises"].sum())
    assert manifest["campaign"]["crises"] == crises
    line = next(line for line in output.splitlines() if line.startswith("campaign:"))
    match = re.fullmatch(r"campaign: (\d+) periods, ([\d,]+) crises, ([\d.]+) M "
                         r"trial-periods/s", line)
    assert match, line
    assert int(match[1]) == STEPS and _count(match[2]) == crises
    rate = manifest["campaign"]["trial_periods_per_s"]
    assert abs(float(match[3]) - rate / 1e6) <= 0.005 + 1e-9
    # after the line that says how many trajectories ran
    assert output.index(f"{TRAJECTORIES:,} trials") < output.index("campaign:")


def test_run_quiet_prints_the_campaign_line_only(tmp_path):
    output = invoke("run", _config(tmp_path, campaign=True), "--trials", 500, "--seed", SEED,
                    "--out", tmp_path / "q", "--quiet").output
    assert "by period" not in output and "deterred %" not in output
    assert re.search(r"^campaign: 5 periods, [\d,]+ crises", output, re.M)


def test_a_shard_prints_nothing_of_the_campaign(tmp_path):
    output = invoke("run", _config(tmp_path, campaign=True), "--trials", 1000, "--seed", SEED,
                    "--out", tmp_path / "s", "--shard", "0/2").output
    assert "by period" not in output and "campaign:" not in output
    assert "trials 0–500 of 1,000" in output


def test_format_periods_shows_evenly_spaced_rows_with_first_and_last(campaign_run):
    out, _ = campaign_run
    periods = pl.read_parquet(out / PERIODS)
    text = format_periods(periods, max_rows=3, more_hint="; see periods.parquet")
    rows = _period_rows(text)
    assert [int(r[0]) for r in rows] == [0, 2, 4]
    recs = {r["period"]: r for r in periods.iter_rows(named=True)}
    for cells in rows:
        _check_row(cells, recs[int(cells[0])])
    assert text.splitlines()[-1] == "… 2 of 5 periods not shown (evenly spaced rows); see " \
                                    "periods.parquet"
    # the whole table when it fits
    assert len(_period_rows(format_periods(periods))) == STEPS


def test_evenly_spaced():
    assert evenly_spaced(5, 12) == [0, 1, 2, 3, 4]
    picked = evenly_spaced(20, 12)
    assert len(picked) == 12 and picked[0] == 0 and picked[-1] == 19
    assert picked == sorted(set(picked))
    assert max(b - a for a, b in zip(picked, picked[1:], strict=False)) == 2
    assert evenly_spaced(0, 4) == []
    with pytest.raises(ValueError, match="at least 2"):
        evenly_spaced(10, 1)


# ---- crisis plot ------------------------------------------------------------------------------


def test_plot_writes_the_campaign_figures(campaign_run, tmp_path):
    out, _ = campaign_run
    folder = tmp_path / "figures"
    printed = invoke("plot", out, "--out", folder).output.split()
    for name in CAMPAIGN_FIGURES:
        png, svg = folder / f"{name}.png", folder / f"{name}.svg"
        assert str(png) in printed and str(svg) in printed
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert svg.read_text(encoding="utf-8").lstrip().startswith("<?xml")
    # the v1 figures are still there, first
    assert printed[0] == str(folder / "deterrence_by_target.png")


def test_plot_of_a_plain_run_draws_no_campaign_figure(plain_run, tmp_path):
    out, _ = plain_run
    folder = tmp_path / "figures"
    printed = invoke("plot", out, "--out", folder).output.split()
    assert len(printed) == 8  # the four v1 figures, PNG and SVG
    assert not any("campaign_" in p for p in printed)
    assert not list(folder.glob("campaign_*"))


# ---- crisis report ----------------------------------------------------------------------------


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_report_has_the_campaign_section_with_its_numbers(campaign_run, tmp_path):
    out, _ = campaign_run
    page_path = tmp_path / "report.html"
    invoke("report", out, "--out", page_path)
    page = page_path.read_text(encoding="utf-8")
    start = page.index('<section id="campaign">')
    end = page.index("</section>", start)
    section = page[start:end]
    # after the reading and the assumptions, before the v1 figures and tables
    assert page.index('id="assumptions"') < start < page.index('id="figures"')
    assert end < page.index('id="results"')
    assert f"Campaign: {STEPS} periods" in section
    for name in CAMPAIGN_FIGURES:
        assert f'id="fig-{name}"' in section
        assert 'src="data:image/svg+xml;base64,' in section
    # the table by period: every row's numbers are periods.parquet's
    periods = pl.read_parquet(out / PERIODS).sort("period")
    table = section[section.index('<table class="periods">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>"):], re.S)
    assert len(rows) == STEPS
    for row, rec in zip(rows, periods.iter_rows(named=True), strict=True):
        cells = [_text(c).split() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        assert int(cells[0][0]) == rec["period"] and _count(cells[1][0]) == rec["crises"]
        det, low, high = _rate_with_ci(" ".join(cells[2]))
        assert abs(det - 100 * rec["deterrence_success_rate"]) <= PCT_SLACK
        assert abs(low - 100 * rec["deterrence_success_rate_low"]) <= PCT_SLACK
        assert abs(high - 100 * rec["deterrence_success_rate_high"]) <= PCT_SLACK
    # the reading says what the totals count
    reading = _text(page[page.index('id="reading"'):page.index('id="assumptions"')])
    crises = int(periods["crises"].sum())
    assert "every crisis of every period" in reading
    assert f"{TRAJECTORIES:,} trajectories of {STEPS} periods" in reading
    assert f"Across {crises:,} crises" in reading


def test_report_of_a_plain_run_has_no_campaign_section(plain_run, tmp_path):
    out, _ = plain_run
    page_path = tmp_path / "report.html"
    invoke("report", out, "--out", page_path)
    page = page_path.read_text(encoding="utf-8")
    assert 'id="campaign"' not in page and "fig-campaign_" not in page
    assert "every crisis of every period" not in page
    assert f"Across {TRAJECTORIES:,} trials" in _text(page)
    for name in ("deterrence_by_target", "delay_distribution", "breakdown_causes",
                 "member_honor_rates"):
        assert f'id="fig-{name}"' in page


# ---- crisis summarize -------------------------------------------------------------------------


@pytest.mark.parametrize("table, file", [("periods", PERIODS),
                                         ("alliance_periods", ALLIANCE_PERIODS),
                                         ("successes", SUCCESSES)])
def test_summarize_csv_prints_each_campaign_table(campaign_run, table, file):
    out, _ = campaign_run
    output = invoke("summarize", out, "--format", "csv", "--table", table).output
    stored = pl.read_parquet(out / file)
    printed = pl.read_csv(output.encode("utf-8"), schema=stored.schema)
    assert_frame_equal(printed, stored, check_exact=False, rel_tol=1e-12, abs_tol=1e-15)


def test_summarize_table_shows_the_periods(campaign_run):
    out, _ = campaign_run
    periods = pl.read_parquet(out / PERIODS).sort("period")
    output = invoke("summarize", out).output
    assert re.search(rf"^campaign: {STEPS} periods, {periods['crises'].sum():,} crises",
                     output, re.M)
    rows = _period_rows(output)
    for cells, rec in zip(rows, periods.iter_rows(named=True), strict=True):
        _check_row(cells, rec)
    assert len(rows) == STEPS
    # the members still end the page
    assert output.index("by period") < output.index("members, the least reliable first")
    # --table periods shows every period (here all five either way)
    assert _period_rows(invoke("summarize", out, "--table", "periods").output) == rows


def test_summarize_json_holds_the_campaign_tables(campaign_run):
    out, _ = campaign_run
    doc = json.loads(invoke("summarize", out, "--format", "json").output)
    assert set(doc["campaign"]) == {"periods", "alliance_periods", "successes"}
    for name, file in (("periods", PERIODS), ("alliance_periods", ALLIANCE_PERIODS),
                       ("successes", SUCCESSES)):
        stored = pl.read_parquet(out / file)
        assert len(doc["campaign"][name]) == stored.height
        first = doc["campaign"][name][0]
        assert list(first) == stored.columns
    assert [r["crises"] for r in doc["campaign"]["periods"]] == \
        pl.read_parquet(out / PERIODS).sort("period")["crises"].to_list()
    assert sum(r["trajectories"] for r in doc["campaign"]["successes"]) == TRAJECTORIES


@pytest.mark.parametrize("table", ["periods", "alliance_periods", "successes"])
def test_summarize_campaign_table_of_a_plain_run_is_a_clear_error(plain_run, table):
    out, _ = plain_run
    result = invoke("summarize", out, "--format", "csv", "--table", table, code=2)
    assert str(out) in result.output
    assert "not a campaign run" in result.output and table in result.output


def test_a_plain_run_prints_and_summarizes_as_before(plain_run):
    out, output = plain_run
    assert "by period" not in output and "campaign:" not in output
    assert not any((out / f).exists() for f in (PERIODS, ALLIANCE_PERIODS, SUCCESSES))
    summary = invoke("summarize", out).output
    assert "by period" not in summary and "campaign:" not in summary
    doc = json.loads(invoke("summarize", out, "--format", "json").output)
    assert set(doc) == {"manifest", "summary", "cells", "members"}
