"""Per-member results (issue 12 item 3, design §8): ``members.parquet``, the alliance honor rate
of the summary, their integrity relations, shards and resume, and the members sections of
``summarize``, ``report``, ``plot`` and ``compare``.

The tests on synthetic tallies need no kernel; those on real runs (fixtures ``nato_run``,
``nato_other``, ``sharded``) need the kernel to fill ``Tallies.members``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from interrupted import interrupted_run

from engine import api
from engine.cli.main import main
from engine.core.simulate import Tallies, set_threads
from engine.core.statistics import wilson_interval
from engine.core.tables import (
    MEMBER_RATES,
    MEMBERS_COLUMNS,
    members_by_reliability,
    members_table,
    summary_table,
)
from engine.errors import UserError
from engine.model.compile import compile_scenario
from engine.model.config import scenario_from_dict
from engine.present.terminal import format_members
from engine.runs.folder import RunFolder, tallies_arrays
from engine.runs.integrity import checkpoint_digest, tally_problems
from engine.runs.io import write_npz
from engine.scale.distributed import combine
from kernels.layout import CELL_COLUMNS, MEMBER_COLUMNS, N_MEMBER_COLUMNS, N_RECORD_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
NATO = ROOT / "configs" / "nato-baltic-2024.toml"
TRIALS = 20_000

# ---- a small world: NATO (defense, 4 members), NORD (defense), UNSC (consultation) ----------

WORLD = {
    "scenario": {"name": "members test", "seed": 5},
    "states": [
        {"id": "RUS", "capability": 1.0, "commitment": 0.5, "name": "Russia"},
        {"id": "EST", "capability": 0.05, "commitment": 0.9, "name": "Estonia"},
        {"id": "USA", "capability": 1.2, "commitment": 0.6, "name": "United States"},
        {"id": "GER", "capability": 0.4, "commitment": 0.3},
        {"id": "FIN", "capability": 0.1, "commitment": 0.8, "name": "Finland"},
    ],
    "alliances": [
        {"id": "NATO", "members": ["USA", "GER", "EST"]},
        {"id": "NORD", "members": ["FIN", "EST"]},
        {"id": "UNSC", "members": ["USA", "RUS"], "obligation": "consultation"},
    ],
    "aggressors": [{"state": "RUS", "targets": {"EST": 1.0, "FIN": 1.0},
                    "attack_mix": {"conventional": 1.0}}],
    "attack_types": {"conventional": {"severity": 1.0}},
}


@pytest.fixture(scope="module")
def world():
    scenario = scenario_from_dict(WORLD)
    return scenario, compile_scenario(scenario)


def _names(scenario) -> list[str | None]:
    return [s.name for s in scenario.states]


def _synthetic(compiled, rows: dict[tuple[str, str], tuple[int, int, int, int, int]]) -> Tallies:
    """Zero tallies with the given per-member counts (alliance id, state id) → 5 counts."""
    t = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    for (aid, sid), counts in rows.items():
        a = compiled.alliance_ids.index(aid)
        s = compiled.state_ids.index(sid)
        lo, hi = compiled.member_ptr[a], compiled.member_ptr[a + 1]
        r = lo + int(np.flatnonzero(compiled.member_idx[lo:hi] == s)[0])
        t.members[r] = counts
    return t


# ---- members_table on synthetic tallies (no kernel) ------------------------------------------


def test_members_table_rows_ids_and_schema(world):
    scenario, compiled = world
    table = members_table(compiled, Tallies.zeros(compiled.n_cells, compiled.n_alliances,
                                                  compiled.n_memberships), _names(scenario))
    assert tuple(table.columns) == MEMBERS_COLUMNS
    # member CSR order: alliances in file order, members in state (file) order
    assert table.select("alliance", "state").rows() == [
        ("NATO", "EST"), ("NATO", "USA"), ("NATO", "GER"),
        ("NORD", "EST"), ("NORD", "FIN"),
        ("UNSC", "RUS"), ("UNSC", "USA"),
    ]
    assert table["name"].to_list() == ["Estonia", "United States", None, "Estonia", "Finland",
                                       "Russia", "United States"]
    for name in ("alliance", "state", "name"):
        assert table.schema[name] == pl.String
    for name in MEMBER_COLUMNS:
        assert table.schema[name] == pl.Int64
    for rate in MEMBER_RATES:
        for col in (rate, f"{rate}_low", f"{rate}_high"):
            assert table.schema[col] == pl.Float64
            assert table[col].null_count() == table.height  # nothing pledged: all null
            assert table[col].is_nan().sum() == 0
    # without names the column is there, all null
    assert members_table(compiled, Tallies.zeros(compiled.n_cells, compiled.n_alliances,
                                                 compiled.n_memberships))["name"].null_count() == 7


def test_members_table_rates_and_wilson_intervals(world):
    scenario, compiled = world
    t = _synthetic(compiled, {("NATO", "USA"): (40, 30, 25, 20, 6),
                              ("NATO", "GER"): (40, 0, 0, 0, 40),
                              ("NORD", "FIN"): (7, 7, 7, 7, 0)})
    table = members_table(compiled, t, _names(scenario))
    usa = table.filter((pl.col("alliance") == "NATO") & (pl.col("state") == "USA")).row(
        0, named=True)
    assert (usa["pledged"], usa["backed"], usa["delivered"], usa["honored"],
            usa["free_rode"]) == (40, 30, 25, 20, 6)
    assert usa["backing_rate"] == 30 / 40 and usa["delivery_rate"] == 25 / 40
    assert usa["honor_rate"] == 20 / 40 and usa["free_riding_rate"] == 6 / 40
    for rate, numerator in MEMBER_RATES.items():
        lo, hi = wilson_interval(usa[numerator], 40)
        assert usa[f"{rate}_low"] == pytest.approx(float(lo), abs=0, rel=1e-15)
        assert usa[f"{rate}_high"] == pytest.approx(float(hi), abs=0, rel=1e-15)
        assert usa[f"{rate}_low"] < usa[rate] < usa[f"{rate}_high"]
    ger = table.filter(pl.col("state") == "GER").row(0, named=True)
    assert ger["honor_rate"] == 0.0 and ger["honor_rate_low"] == 0.0 and ger["honor_rate_high"] > 0
    assert ger["free_riding_rate"] == 1.0 and ger["free_riding_rate_high"] == 1.0
    fin = table.filter(pl.col("state") == "FIN").row(0, named=True)
    assert fin["honor_rate"] == 1.0 and fin["honor_rate_high"] == 1.0 and fin["name"] == "Finland"
    # rows that never pledged: null rates and bounds
    est = table.filter((pl.col("alliance") == "NATO") & (pl.col("state") == "EST")).row(
        0, named=True)
    assert est["pledged"] == 0
    assert all(est[c] is None for r in MEMBER_RATES for c in (r, f"{r}_low", f"{r}_high"))


def test_members_table_refuses_mismatched_shapes(world):
    scenario, compiled = world
    t = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships + 1)
    with pytest.raises(ValueError, match="memberships"):
        members_table(compiled, t)
    good = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    with pytest.raises(ValueError, match="state names"):
        members_table(compiled, good, ["x"])


def test_summary_alliance_honor_rate_is_its_members(world):
    scenario, compiled = world
    t = _synthetic(compiled, {("NATO", "USA"): (40, 30, 25, 20, 6),
                              ("NATO", "GER"): (40, 10, 10, 5, 30),
                              ("NORD", "FIN"): (7, 7, 7, 7, 0)})
    summary = summary_table(compiled, t)
    rows = {r["key"]: r for r in summary.filter(pl.col("scope") == "alliance")
            .iter_rows(named=True)}
    assert set(rows) == {"NATO", "NORD"}  # the consultation pact covers nobody: no row
    assert rows["NATO"]["honor_rate"] == 25 / 80
    lo, hi = wilson_interval(25, 80)
    assert rows["NATO"]["honor_rate_low"] == float(lo)
    assert rows["NATO"]["honor_rate_high"] == float(hi)
    assert rows["NORD"]["honor_rate"] == 1.0


def test_members_by_reliability_and_terminal_view(world):
    scenario, compiled = world
    t = _synthetic(compiled, {("NATO", "USA"): (40, 30, 25, 20, 6),
                              ("NATO", "GER"): (10, 5, 5, 5, 0),  # same rate, fewer pledges
                              ("NORD", "EST"): (90, 90, 90, 90, 0),
                              ("NORD", "FIN"): (7, 1, 0, 0, 6)})
    table = members_table(compiled, t, _names(scenario))
    ranked = members_by_reliability(table)
    assert ranked.select("alliance", "state").rows() == [
        ("NORD", "FIN"), ("NATO", "USA"), ("NATO", "GER"), ("NORD", "EST")]
    text = format_members(table, limit=2, more_hint=" (see members.parquet)")
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["alliance", "member"]
    assert "Finland (FIN)" in lines[2] and "United States (USA)" in lines[3]
    assert "… 2 more members (see members.parquet)" in text
    assert "3 memberships never pledged" in text
    assert "GER" not in text  # beyond the limit
    assert "0.0 [0.0–" in lines[2]  # FIN honored 0 of 7 with its interval
    empty = members_table(compiled, Tallies.zeros(compiled.n_cells, compiled.n_alliances,
                                                  compiled.n_memberships))
    assert "no member pledged" in format_members(empty)


def test_member_names_are_escaped_in_the_terminal(world):
    scenario, compiled = world
    data = json.loads(json.dumps(WORLD))
    data["states"][2]["name"] = "Evil\x1b]0;pwned\x07"
    scen = scenario_from_dict(data)
    c = compile_scenario(scen)
    t = _synthetic(c, {("NATO", "USA"): (4, 1, 1, 1, 0)})
    text = format_members(members_table(c, t, _names(scen)))
    assert "\x1b" not in text and "\\x1b" in text


# ---- integrity relations (no kernel) ---------------------------------------------------------


def test_member_invariants_are_checked(world):
    _, compiled = world
    t = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    assert tally_problems(t, 0) == [] and tally_problems(t, 0, compiled) == []
    cases = {
        (3, 4, 0, 0, 0): "members: backed > pledged",
        (3, 3, 0, 1, 0): "members: honored > delivered",
        (3, 1, 3, 2, 0): "members: honored > backed",
        (3, 2, 0, 0, 2): "members: backed + free_rode > pledged",
        (3, 0, 4, 0, 0): "members: delivered > pledged",
    }
    for counts, problem in cases.items():
        bad = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
        bad.members[1] = counts
        found = tally_problems(bad, 0)
        assert any(p.startswith(problem) for p in found), (counts, found)
        # a pledge that no cell counted never adds up
        assert "members: the pledges do not add up to the cells' allies_sum" in found
    negative = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    negative.members[0, 2] = -1
    assert tally_problems(negative, 0) == ["members: negative counts"]
    # with the scenario, a row's pledges are fixed by the cells it covers
    t.members[1, 0] = 1
    t.cells[0, CELL_COLUMNS.index("allies_sum")] = 1
    found = tally_problems(t, 0, compiled)
    assert any(p.startswith("members: pledged ≠") for p in found), found


def test_dask_combine_sums_member_tallies(world):
    _, compiled = world
    shape = (compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    parts = []
    for k in range(3):
        t = Tallies.zeros(*shape)
        t.members[:] = k + np.arange(t.members.size).reshape(t.members.shape)
        parts.append((t.arrays(), np.zeros((0, N_RECORD_COLUMNS))))
    total, records = combine(parts, *shape, 0)
    assert total.members.shape == (compiled.n_memberships, N_MEMBER_COLUMNS)
    np.testing.assert_array_equal(total.members, sum(p[0][-1] for p in parts))
    assert records.shape == (0, N_RECORD_COLUMNS)


# ---- tallies of an older engine (needs only kernel imports) ----------------------------------


def test_old_checkpoint_without_members_is_refused_clearly(tmp_path, world):
    """A checkpoint written before per-member tallies: resume says so (no KeyError)."""
    scenario, compiled = world
    from engine.runs.runner import run_options

    folder = RunFolder(tmp_path / "old")
    folder.prepare(force=False)
    folder.write_scenario(scenario.source_text())
    options = run_options(scenario, trials=1000, seed=1, block_size=256, save_trials=0)
    folder.write_options(options)
    t = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    arrays = {k: v for k, v in tallies_arrays(t).items() if k != "members"}
    arrays.update({"position": np.int64(0), "records": np.zeros((0, N_RECORD_COLUMNS)),
                   "scenario_hash": np.array(options.scenario_hash), "seed": np.int64(1),
                   "trials": np.int64(1000), "trial_range": np.array([0, 1000]),
                   "save_trials": np.int64(0)})
    arrays["digest"] = np.array(checkpoint_digest(arrays))
    write_npz(folder / "checkpoint.npz", arrays)
    with pytest.raises(UserError, match="older engine.*members.*start the run again"):
        api.resume(folder.path, threads=1)
    set_threads(None)
    result = CliRunner().invoke(main, ["run", "--resume", str(folder.path), "-q"])
    assert result.exit_code == 2 and "older engine" in result.output, result.output


def test_old_tallies_without_members_are_refused_clearly(tmp_path, world):
    _, compiled = world
    folder = RunFolder(tmp_path / "old")
    folder.path.mkdir()
    t = Tallies.zeros(compiled.n_cells, compiled.n_alliances, compiled.n_memberships)
    write_npz(folder / "tallies.npz",
              {k: v for k, v in tallies_arrays(t).items() if k != "members"})
    with pytest.raises(UserError, match="older engine.*members.*run it again"):
        folder.read_tallies(compiled=compiled)


# ---- real runs (need the kernel to fill Tallies.members) -------------------------------------


@pytest.fixture(scope="module")
def nato_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("members") / "nato"
    result = CliRunner().invoke(main, ["run", str(NATO), "--trials", str(TRIALS), "--seed", "3",
                                       "--out", str(out), "-q"])
    set_threads(None)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def nato_other(tmp_path_factory) -> Path:
    """NATO with majority voting, another seed: members honor differently."""
    tmp = tmp_path_factory.mktemp("members-b")
    text = NATO.read_text()
    config = tmp / "majority.toml"
    config.write_text(text.replace('decision_rule = "unanimity"', 'decision_rule = "majority"'))
    out = tmp / "run"
    api.run(config, trials=TRIALS, seed=4, out=out)
    set_threads(None)
    return out


def test_overlapping_and_collective_security_pledges():
    """EST is covered by NATO and NORD (a member pledges once per covering alliance), LEAGUE
    (collective security) covers EST and FIN against its own member RUS, which never pledges."""
    from engine.core.simulate import simulate

    data = json.loads(json.dumps(WORLD))
    data["alliances"].append({"id": "LEAGUE", "members": ["RUS", "EST", "USA", "FIN"],
                              "obligation": "collective_security"})
    scenario = scenario_from_dict(data)
    compiled = compile_scenario(scenario)
    tallies, _ = simulate(compiled, 9, 0, 40_000)
    set_threads(None)
    assert tally_problems(tallies, 40_000, compiled) == []
    members = members_table(compiled, tallies, _names(scenario))
    summary = summary_table(compiled, tallies)
    cells = {r["key"]: r for r in summary.filter(pl.col("scope") == "target")
             .iter_rows(named=True)}

    def row(aid, sid):
        return members.filter((pl.col("alliance") == aid) & (pl.col("state") == sid)).row(
            0, named=True)

    assert row("LEAGUE", "RUS")["pledged"] == 0  # the aggressor never consults
    assert row("UNSC", "USA")["pledged"] == 0  # a consultation pact covers nobody
    # USA pledges in NATO (EST attacked) and in LEAGUE (EST and FIN attacked)
    assert row("NATO", "USA")["pledged"] == cells["EST"]["consulted"]
    assert row("LEAGUE", "USA")["pledged"] == cells["EST"]["consulted"] + cells["FIN"][
        "consulted"]
    assert row("NORD", "EST")["pledged"] == cells["FIN"]["consulted"]
    overall = summary.filter(pl.col("scope") == "overall").row(0, named=True)
    assert overall["honor_rate"] == members["honored"].sum() / members["pledged"].sum()
    alliances = {r["key"]: r for r in summary.filter(pl.col("scope") == "alliance")
                 .iter_rows(named=True)}
    assert set(alliances) == {"NATO", "NORD", "LEAGUE"}
    for aid, rec in alliances.items():
        part = members.filter(pl.col("alliance") == aid)
        assert rec["honor_rate"] == part["honored"].sum() / part["pledged"].sum(), aid


def test_run_folder_holds_members_parquet(nato_run):
    members = pl.read_parquet(nato_run / "members.parquet")
    manifest = json.loads((nato_run / "manifest.json").read_text())
    assert "members.parquet" in manifest["files"]
    import hashlib

    assert manifest["files"]["members.parquet"] == hashlib.sha256(
        (nato_run / "members.parquet").read_bytes()).hexdigest()
    assert tuple(members.columns) == MEMBERS_COLUMNS
    assert set(members["alliance"].unique()) == {"NATO"}
    assert members.height == 32 and members["state"].n_unique() == 32
    assert "Estonia" in members["name"].to_list()
    m = members
    assert (m["backed"] <= m["pledged"]).all() and (m["honored"] <= m["backed"]).all()
    assert (m["honored"] <= m["delivered"]).all() and (m["free_rode"] <= m["pledged"]).all()
    assert m["pledged"].sum() > 0 and m["honored"].sum() > 0
    # the tallies behind it
    run = api.open_run(nato_run)
    assert run.members is not None and run.members.equals(members)
    np.testing.assert_array_equal(run.tallies.members,
                                  members.select(MEMBER_COLUMNS).to_numpy())


def test_honor_rates_add_up_exactly(nato_run):
    """Σ honored / Σ pledged over all member rows is the overall honor rate, exactly; an
    alliance's honor rate is its members' (design §8)."""
    members = pl.read_parquet(nato_run / "members.parquet")
    summary = pl.read_parquet(nato_run / "summary.parquet")
    cells = pl.read_parquet(nato_run / "cells.parquet")
    honored, pledged = int(members["honored"].sum()), int(members["pledged"].sum())
    assert honored == cells["honored_sum"].sum() and pledged == cells["allies_sum"].sum()
    overall = summary.filter(pl.col("scope") == "overall").row(0, named=True)
    assert overall["honor_rate"] == honored / pledged
    nato = summary.filter((pl.col("scope") == "alliance") & (pl.col("key") == "NATO")).row(
        0, named=True)
    assert nato["honor_rate"] == honored / pledged
    lo, hi = wilson_interval(honored, pledged)
    assert (nato["honor_rate_low"], nato["honor_rate_high"]) == (float(lo), float(hi))


def test_in_memory_result_has_members(nato_run):
    result = api.run(NATO, trials=TRIALS, seed=3)
    set_threads(None)
    assert result.members is not None
    assert result.members.equals(pl.read_parquet(nato_run / "members.parquet"))


def test_shards_merge_members_exactly(nato_run, tmp_path):
    out = tmp_path / "sharded"
    for i in range(3):
        api.run(NATO, trials=TRIALS, seed=3, out=out, shard=(i, 3))
    merged = api.merge(out)
    set_threads(None)
    assert (out / "members.parquet").read_bytes() == (nato_run / "members.parquet").read_bytes()
    assert merged.members.equals(pl.read_parquet(nato_run / "members.parquet"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert "members.parquet" in manifest["files"]


def test_merge_refuses_a_shard_of_an_older_engine(tmp_path):
    import hashlib

    out = tmp_path / "sharded"
    for i in range(2):
        api.run(NATO, trials=4000, seed=3, out=out, shard=(i, 2))
    set_threads(None)
    shard = RunFolder(out).shard(1, 2)
    with np.load(shard / "tallies.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "members"}
    write_npz(shard / "tallies.npz", arrays)
    manifest = json.loads((shard / "manifest.json").read_text())
    manifest["files"]["tallies.npz"] = hashlib.sha256(
        (shard / "tallies.npz").read_bytes()).hexdigest()
    (shard / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="older engine"):
        api.merge(out)
    result = CliRunner().invoke(main, ["merge", str(out)])
    assert result.exit_code == 2 and "older engine" in result.output, result.output
    assert not (out / "members.parquet").exists()


def test_resume_gives_the_uninterrupted_members(tmp_path):
    reference = api.run(NATO, trials=6000, seed=1, save_trials=40, threads=1)
    folder = interrupted_run(tmp_path / "run", config=NATO)
    checkpoint = RunFolder(folder).read_checkpoint(
        RunFolder(folder).read_options(),
        compile_scenario(api.load_scenario(NATO)))[0]
    assert checkpoint.members.sum() > 0  # the checkpoint carries member tallies
    api.resume(folder, threads=1)
    set_threads(None)
    assert pl.read_parquet(folder / "members.parquet").equals(reference.members)


def test_summarize_shows_members(nato_run):
    runner = CliRunner()
    table = runner.invoke(main, ["summarize", str(nato_run)])
    assert table.exit_code == 0, table.output
    text = table.output
    assert "the least reliable first" in text
    section = text[text.index("the least reliable first"):]
    assert "alliance" in section and "honored % [95% CI]" in section
    assert "… 12 more members" in section  # 32 members, 20 shown
    assert "NATO" in section and "(" in section  # names with ids, e.g. "Estonia (EST)"
    # the first member listed has the lowest honor rate
    members = members_by_reliability(pl.read_parquet(nato_run / "members.parquet"))
    first = members.row(0, named=True)
    first_line = section.splitlines()[3]
    assert first["state"] in first_line
    doc = json.loads(runner.invoke(main, ["summarize", str(nato_run), "--format",
                                          "json"]).output)
    assert len(doc["members"]) == 32
    assert set(doc["members"][0]) == set(MEMBERS_COLUMNS)
    csv = runner.invoke(main, ["summarize", str(nato_run), "--format", "csv", "--table",
                               "members"])
    assert csv.exit_code == 0, csv.output
    back = pl.read_csv(csv.output.encode())
    assert back.columns == list(MEMBERS_COLUMNS) and back.height == 32
    assert back["pledged"].to_list() == pl.read_parquet(
        nato_run / "members.parquet")["pledged"].to_list()
    default = runner.invoke(main, ["summarize", str(nato_run), "--format", "csv"])
    assert default.output.splitlines()[0].startswith("scope,key,")


def test_summarize_a_run_without_members_parquet(nato_run, tmp_path):
    copy = tmp_path / "old"
    shutil.copytree(nato_run, copy, ignore=shutil.ignore_patterns("plots", "*.html"))
    (copy / "members.parquet").unlink()
    result = CliRunner().invoke(main, ["summarize", str(copy)])
    assert result.exit_code == 0, result.output
    assert "no members.parquet" in result.output
    assert api.open_run(copy).members is None


def test_plot_and_report_show_members(nato_run, tmp_path):
    from engine.present.plots import RUN_FIGURES, plot_run
    from engine.present.report import write_report

    assert "member_honor_rates" in RUN_FIGURES
    paths = plot_run(nato_run, tmp_path / "figs")
    names = {p.name for p in paths}
    assert {"member_honor_rates.png", "member_honor_rates.svg"} <= names
    svg = (tmp_path / "figs" / "member_honor_rates.svg").read_text()
    assert "Estonia (EST)" in svg and "NATO" in svg and "95% Wilson interval" in svg
    page = write_report(nato_run, tmp_path / "report.html").read_text()
    assert "By member, the least reliable first" in page
    assert 'id="fig-member_honor_rates"' in page
    assert "Estonia (EST)" in page
    result = CliRunner().invoke(main, ["plot", str(nato_run), "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p" / "member_honor_rates.png").is_file()


def test_member_figure_of_a_run_without_members(nato_run, tmp_path):
    from engine.present.plots import plot_run

    copy = tmp_path / "old"
    shutil.copytree(nato_run, copy, ignore=shutil.ignore_patterns("plots", "*.html"))
    (copy / "members.parquet").unlink()
    paths = plot_run(copy, tmp_path / "figs")
    svg = next(p for p in paths if p.name == "member_honor_rates.svg").read_text()
    assert "no per-member results" in svg


def test_compare_has_member_rows(nato_run, nato_other):
    from engine.experiments.compare import MEMBER_SCOPE, compare_runs_with_notes

    frame, notes = compare_runs_with_notes(nato_run, nato_other)
    part = frame.filter(pl.col("scope") == MEMBER_SCOPE)
    assert part.height == 32 and set(part["measure"]) == {"honor_rate"}
    members_a = pl.read_parquet(nato_run / "members.parquet")
    members_b = pl.read_parquet(nato_other / "members.parquet")
    row = part.filter(pl.col("key") == "NATO/EST").row(0, named=True)
    a = members_a.filter(pl.col("state") == "EST").row(0, named=True)
    b = members_b.filter(pl.col("state") == "EST").row(0, named=True)
    assert row["a"] == a["honor_rate"] and row["b"] == b["honor_rate"]
    assert row["test"] == "two_proportion" and row["p_value"] is not None
    assert row["diff"] == pytest.approx(b["honor_rate"] - a["honor_rate"], rel=1e-12)
    # the alliance honor rate is tested now (from its members)
    nato = frame.filter((pl.col("scope") == "alliance") & (pl.col("measure") == "honor_rate"))
    assert nato.height == 1 and nato["test"][0] == "two_proportion"
    runner = CliRunner()
    doc = json.loads(runner.invoke(main, ["compare", str(nato_run), str(nato_other),
                                          "--format", "json"]).output)
    assert len(doc["members"]) == 32
    est = next(r for r in doc["members"] if r["state"] == "EST")
    assert est["alliance"] == "NATO" and est["measure"] == "honor_rate"
    assert est["p_holm"] is not None
    csv = runner.invoke(main, ["compare", str(nato_run), str(nato_other), "--format", "csv"])
    back = pl.read_csv(csv.stdout.encode())
    assert back.filter(pl.col("scope") == "member").height == 32
    table = runner.invoke(main, ["compare", str(nato_run), str(nato_other)])
    assert table.exit_code == 0, table.output
    assert "members: honor rate, the largest changes first" in table.output
    assert "… 17 more members" in table.output  # 32 members, 15 shown
    assert "NATO/" in table.output


def test_compare_with_a_run_without_members(nato_run, tmp_path):
    from engine.experiments.compare import compare_runs_with_notes

    copy = tmp_path / "old"
    shutil.copytree(nato_run, copy, ignore=shutil.ignore_patterns("plots", "*.html"))
    (copy / "members.parquet").unlink()
    frame, notes = compare_runs_with_notes(nato_run, copy)
    assert frame.filter(pl.col("scope") == "member").height == 0
    assert any("per-member rows not compared: B has no members.parquet" in n for n in notes)


def test_checkpoint_round_trip_keeps_members(tmp_path):
    from engine.core.simulate import simulate
    from engine.runs.runner import run_options

    scenario = api.load_scenario(NATO)
    compiled = compile_scenario(scenario)
    tallies, records = simulate(compiled, 2, 0, 3000, save_trials=0)
    set_threads(None)
    options = run_options(scenario, trials=6000, seed=2, block_size=4096, save_trials=0)
    folder = RunFolder(tmp_path / "cp")
    folder.path.mkdir()
    folder.write_checkpoint(tallies, 3000, records, options)
    back, position, _, _ = folder.read_checkpoint(options, compiled)
    assert position == 3000 and back.equals(tallies) and back.members.sum() > 0
    # a forged pledge count is caught by the member relations
    with np.load(folder / "checkpoint.npz") as data:
        arrays = {k: data[k] for k in data.files}
    arrays["members"] = arrays["members"].copy()
    arrays["members"][0, 0] += 1
    arrays["digest"] = np.array(checkpoint_digest(arrays))
    write_npz(folder / "checkpoint.npz", arrays)
    with pytest.raises(UserError, match="impossible checkpoint.*members"):
        folder.read_checkpoint(options, compiled)
