"""Campaign figures (engine.present.plots.plot_campaign) and the campaign section of the report
(engine.present.report.campaign_section), on campaigns of the pure-Python oracle (design §7)."""

from __future__ import annotations

import re
import tomllib
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from engine.core.tables import alliance_periods_table, periods_table, successes_table
from engine.model.config import scenario_from_dict
from engine.oracles.campaign_loop import simulate_campaign_python
from engine.present.plots import (
    CAMPAIGN_FIGURES,
    MAX_CURVES,
    OTHER_COLOR,
    PALETTE,
    Names,
    plot_campaign,
    scenario_names,
)
from engine.present.report import campaign_reading, campaign_section, pct
from tests.oracle_scenarios import compiled, make_scenario
from tests.test_plots import _legend_texts

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "nato-baltic-2024.toml"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 12
TRIALS = 200


def _tables(data: dict, trials: int, seed: int = 5):
    c = compiled(data)
    ct = simulate_campaign_python(c, seed, 0, trials)
    return (periods_table(c, ct, trials), alliance_periods_table(c, ct, trials),
            successes_table(ct, trials))


def _nato() -> dict:
    """The Baltic scenario as a campaign: capability mode (no pilot), Ukraine a candidate of
    NATO, a second, smaller alliance, and every campaign mechanism at work."""
    d = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    d["scenario"]["deterrence"] = "capability"
    d["alliances"][0]["candidates"] = ["UKR"]
    d["alliances"].append({"id": "JEF", "members": ["UKG", "NOR", "DEN", "EST", "LAT", "LIT",
                                                    "FIN", "SWD"], "decision_rule": "majority"})
    d["campaign"] = {"steps": STEPS, "reputation_learning": 0.3, "trust_weight": 0.5,
                     "resolve_learning": 0.1, "threat_shock": 0.1, "threat_decay": 0.1,
                     "exit_threshold": 0.75, "join_threshold": 0.5}
    return d


@pytest.fixture(scope="module")
def nato():
    data = _nato()
    return (*_tables(data, TRIALS), scenario_names(scenario_from_dict(data)))


def _plot(tables, out: Path, monkeypatch, names=None, title="Baltic campaign") -> dict:
    """plot_campaign with every warning an error; returns {figure name: its figure}."""
    from engine.present import plots

    figures, save = {}, plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, folder, name: (
        figures.__setitem__(name, fig), save(fig, folder, name))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "tight layout not applied" and any other warning
        paths = plot_campaign(*tables, out, title=title, names=names)
    assert [p.name for p in paths] == [f"{n}.{e}" for n in CAMPAIGN_FIGURES
                                       for e in ("png", "svg")]
    assert list(figures) == list(CAMPAIGN_FIGURES)
    return figures


def test_the_campaign_moves(nato):
    """The figures below would show flat lines otherwise."""
    periods, alliances, successes = nato[:3]
    assert periods["exits"].sum() > 0 and periods["joins"].sum() > 0
    assert alliances["survival"].min() < 1.0
    assert periods["deterrence_success_rate"][0] != periods["deterrence_success_rate"][-1]
    assert (successes["trajectories"] > 0).sum() > 2


def test_figures_are_written_named_and_fitted(nato, tmp_path, monkeypatch):
    periods, alliances, successes, names = nato
    figures = _plot((periods, alliances, successes), tmp_path, monkeypatch, names)
    for name in CAMPAIGN_FIGURES:
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png[:8] == PNG_MAGIC and len(png) > 10_000, name
        svg = (tmp_path / f"{name}.svg").read_text()
        assert "<svg" in svg and "Baltic campaign" in svg, name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    svgs = {n: (tmp_path / f"{n}.svg").read_text() for n in CAMPAIGN_FIGURES}
    for alliance in ("NATO", "JEF"):
        assert alliance in svgs["campaign_survival"] and alliance in svgs["campaign_reputation"]
    assert "95% Wilson interval" in svgs["campaign_rates"]

    steps = periods.height
    for name in ("campaign_rates", "campaign_survival", "campaign_reputation"):
        for ax in figures[name].axes:
            lo, hi = ax.get_xlim()
            assert lo < 0 and steps - 1 < hi < steps, (name, lo, hi)

    # every rate and band drawn lies inside the rate axis
    (ax,) = figures["campaign_rates"].axes
    top = ax.get_ylim()[1]
    highest = max(100 * periods[f"{m}_high"].drop_nulls().max()
                  for m in ("deterrence_success_rate", "aggression_success_rate",
                            "breakdown_rate"))
    assert ax.get_ylim()[0] == 0 and highest <= top
    assert top <= (102 if highest >= 95 else highest * 1.1 + 2 + 1e-9)  # no empty headroom

    left, right = figures["campaign_survival"].axes
    low = 100 * alliances["survival_low"].min()
    assert left.get_ylim()[0] <= low and left.get_ylim()[1] >= 100
    assert left.get_ylim()[0] >= low - 12  # not squashed against a 0–100 axis
    active = 100 * (alliances["active_members_mean"] / alliances["members_at_start"])
    assert right.get_ylim()[0] <= active.min() and right.get_ylim()[1] >= active.max()

    rep_ax, res_ax, thr_ax = figures["campaign_reputation"].axes
    for ax, column in ((res_ax, "resolve_multiplier_mean"), (thr_ax, "threat_mean"),
                       (rep_ax, "reputation_mean")):
        values = periods[column].to_numpy()
        assert ax.get_ylim()[0] <= values.min() and values.max() <= ax.get_ylim()[1], column

    (ax,) = figures["campaign_successes"].axes
    assert ax.get_xlim()[0] < 0 and steps < ax.get_xlim()[1] < steps + 1
    assert 100 * successes["share_high"].max() <= ax.get_ylim()[1]
    labels = _legend_texts(figures["campaign_successes"])
    mean = float((successes["successful_aggressions"] * successes["trajectories"]).sum()
                 / successes["trajectories"].sum())
    assert f"mean: {mean:.2f} successful aggressions per trajectory" in labels


def test_many_alliances_are_capped_and_pooled(tmp_path, monkeypatch):
    """Nine alliances: the MAX_CURVES − 1 that change most drawn by name, the rest pooled in
    one grey "other" curve; Okabe–Ito colours only."""
    from matplotlib.colors import to_hex

    states = {f"S{i}": {"capability": 0.01 * (i + 1), "commitment": 0.6, "stability": 0.6}
              for i in range(10)}
    states["RUS"] = {"capability": 0.3, "commitment": 0.0}
    alliances = [{"id": f"A{i}", "members": [f"S{i}", f"S{i + 1}", "S0"] if i else
                  ["S0", "S1", "S2"]} for i in range(9)]
    d = make_scenario(states, alliances=alliances,
                      aggressors=[{"state": "RUS", "targets": {"S0": 0.5, "S3": 0.5},
                                   "attack_mix": {"conventional": 1.0}}], name="many")
    d["campaign"] = {"steps": 5, "reputation_learning": 0.5, "exit_threshold": 0.8}
    tables = _tables(d, 150)
    figures = _plot(tables, tmp_path, monkeypatch)
    legend = _legend_texts(figures["campaign_survival"])
    assert len(legend) == MAX_CURVES
    assert legend[-1] == "other (2 alliances), mean"
    colours = {to_hex(line.get_color()) for ax in figures["campaign_survival"].axes
               for line in ax.get_lines()}
    assert colours <= {c.lower() for c in PALETTE} | {OTHER_COLOR.lower(), "#999999"}
    assert OTHER_COLOR.lower() in colours
    # the pooled curve is the mean survival of the alliances left out
    shown = {t for t in legend if not t.startswith("other")}
    rest = tables[1].filter(~pl.col("alliance").is_in(list(shown)))
    pooled = rest.group_by("period").agg(pl.col("survival").mean()).sort("period")
    (line,) = [ln for ln in figures["campaign_survival"].axes[0].get_lines()
               if ln.get_label().startswith("other")]
    np.testing.assert_allclose(line.get_ydata(), 100 * pooled["survival"].to_numpy())


def test_a_single_period_campaign(tmp_path, monkeypatch):
    d = make_scenario(name="one")
    d["campaign"] = {"steps": 1}
    figures = _plot(_tables(d, 100), tmp_path, monkeypatch)
    titles = " ".join(t.get_text() for t in [figures["campaign_survival"]._suptitle])
    assert "no alliance lost or gained a member or dissolved" in titles


def test_campaign_section_reads_the_numbers(nato, tmp_path, monkeypatch):
    periods, alliances, successes, names = nato
    _plot((periods, alliances, successes), tmp_path, monkeypatch, names)
    paths = sorted(tmp_path.glob("campaign_*.*"), reverse=True)  # any order: the page sorts
    page = campaign_section(periods, alliances, successes, paths, names)
    first, last = periods.row(0, named=True), periods.row(periods.height - 1, named=True)
    assert page.startswith('<section id="campaign">') and page.endswith("</section>")
    assert f"Campaign: {STEPS} periods" in page
    # the reading: deterrence in the first and the last period with their intervals
    for rec in (first, last):
        rate = rec["deterrence_success_rate"]
        text = (f"{100 * rate:.1f}% [{100 * rec['deterrence_success_rate_low']:.1f}–"
                f"{100 * rec['deterrence_success_rate_high']:.1f}] in period {rec['period']}")
        assert text in page, text
    moved = ("fell" if last["deterrence_success_rate_high"] < first["deterrence_success_rate_low"]
             else "rose" if last["deterrence_success_rate_low"]
             > first["deterrence_success_rate_high"] else "stayed within Monte Carlo noise")
    assert f"Over {STEPS} periods deterrence {moved}" in page
    # NATO's survival to the end, and its members at the end
    nato_last = alliances.filter((pl.col("alliance") == "NATO")
                                 & (pl.col("period") == STEPS - 1)).row(0, named=True)
    assert f"NATO in {100 * nato_last['survival']:.1f}% [" in page
    assert f"NATO ended with {nato_last['active_members_mean']:.1f} active members" in page
    mean = float((successes["successful_aggressions"] * successes["trajectories"]).sum()
                 / TRIALS)
    assert f"{mean:.2f} successful aggressions on average" in page
    assert f"{last['threat_mean']:.3f}" in page
    # the table by period: one row per period, rates as in the run report
    table = re.search(r'<table class="periods">.*?</table>', page, re.S)[0]
    assert table.count("<tr>") == STEPS + 1
    for rec in (first, last):
        rate = pct(rec["aggression_success_rate"])
        lo, hi = pct(rec["aggression_success_rate_low"]), pct(rec["aggression_success_rate_high"])
        assert f'{rate} <span class="ci">[{lo}–{hi}]</span>' in table
    # every figure embedded as SVG, in order
    ids = re.findall(r'<figure id="fig-(\w+)"><img alt="[^"]*" src="data:image/svg\+xml;base64,',
                     page)
    assert ids == list(CAMPAIGN_FIGURES)


def test_campaign_section_escapes_names_and_needs_no_figures(nato):
    periods, alliances, successes, _ = nato
    names = Names(alliances={"NATO": "NATO <b>&</b>"})
    page = campaign_section(periods, alliances, successes, names=names)
    assert "NATO &lt;b&gt;&amp;&lt;/b&gt;" in page and "<b>" not in page
    assert "<figure" not in page
    assert "data:" not in page


def test_campaign_reading_without_changes():
    """Nothing dissolves, nothing moves: the reading says so instead of naming survival rates."""
    d = make_scenario(name="calm")
    d["campaign"] = {"steps": 4, "crisis_rate": 0.5}
    periods, alliances, successes = _tables(d, 200)
    text = " ".join(campaign_reading(periods, alliances, successes))
    assert "No alliance dissolved in any trajectory by the end of period 3." in text
    observed = periods["crisis_rate_observed"].mean()
    assert f"A crisis broke out in {100 * observed:.1f}% of the periods" in text
    assert f"({periods['crises'].sum():,} crises in all)" in text
    assert "ended with" not in text  # no exits or accessions to report


def test_a_campaign_without_alliances(tmp_path, monkeypatch):
    d = make_scenario(alliances=[], name="alone")
    d["campaign"] = {"steps": 3, "resolve_learning": 0.3}
    tables = _tables(d, 100)
    assert tables[1].height == 0
    figures = _plot(tables, tmp_path, monkeypatch)
    texts = [t.get_text() for ax in figures["campaign_survival"].axes for t in ax.texts]
    assert texts == ["no alliance in this scenario"] * 2
    page = campaign_section(*tables)
    assert "No alliance in this scenario." in page
    assert "resolve multiplier at" in page
