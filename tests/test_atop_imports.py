"""`crisis import atop` options an analyst needs: --date, --target, --dyads, --capability,
names, and the capabilities limit (real files in the shared data folder; skipped without them).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.data.atop import import_world, read_dyads, read_sources
from engine.errors import UserError

DATA = Path(__file__).parent.parent.parent / "shared" / "data"
ALLIANCES = DATA / "atop-alliance-level.csv"
MEMBERS = DATA / "atop-member-level.csv"
CINC = DATA / "cinc-polity.csv"
DISPUTES = DATA / "gml-ddy-disputes-2.03.csv"
RIVALRIES = DATA / "td-strategic-rivalries.csv"

pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in (ALLIANCES, MEMBERS, CINC, DISPUTES, RIVALRIES)),
    reason=f"public datasets not found in {DATA} (ATOP, cinc-polity, GML MID, rivalries CSVs)",
)

ANGLO_POLISH = "ATOP2440"            # ATOP: UKG and POL enter 1939-04-06 (phase 1), 08-25 (2)
GERMAN_POLISH_1934 = "ATOP2325"      # nonaggression; both leave 1939-04-28
FILES = ["--alliances", ALLIANCES, "--members", MEMBERS, "--capabilities", CINC]


def invoke(*args):
    return CliRunner().invoke(main, list(map(str, args)), catch_exceptions=False)


def parsed(world):
    return tomllib.loads(world.toml)


def alliances_of(data, state):
    return {a["id"] for a in data["alliances"] if state in a["members"]}


def test_germany_poland_1939_09_01_imports_and_runs(tmp_path):
    out = tmp_path / "germany-poland.toml"
    result = invoke("import", "atop", "--date", "1939-09-01", "--aggressor", "GMY",
                    "--target", "POL", *FILES, "--out", out)
    assert result.exit_code == 0, result.output
    assert "(ATOP 1939-09-01)" in result.output
    data = tomllib.loads(out.read_text())
    states = {s["id"] for s in data["states"]}
    assert {"GMY", "POL"} <= states
    assert data["aggressors"] == [{"state": "GMY", "weight": 1.0, "resolve": 1.0,
                                   "attack_mix": {"conventional": 1.0},
                                   "targets": {"POL": 1.0}}]
    assert data["scenario"]["name"] == "World 1939-09-01 (ATOP/COW)"
    pact = next(a for a in data["alliances"] if a["id"] == ANGLO_POLISH)
    assert sorted(pact["members"]) == ["POL", "UKG"] and pact["obligation"] == "defense"
    assert "# Anglo-Polish alliance (1939)" in out.read_text()
    run = invoke("run", out, "--trials", 2000, "--out", tmp_path / "run", "--quiet")
    assert run.exit_code == 0, run.output
    cells = pl.read_parquet(tmp_path / "run" / "cells.parquet")
    assert cells.height >= 1


def test_date_picks_members_by_day():
    january = parsed(import_world(1939, ALLIANCES, MEMBERS, CINC, aggressors=["GMY"],
                                  targets=["POL"], date="1939-01-15"))
    september = parsed(import_world(1939, ALLIANCES, MEMBERS, CINC, aggressors=["255"],
                                    targets=["290"], date="1939-09-01"))
    # The Anglo-Polish pact enters on 6 April 1939; the German-Polish non-aggression pact of
    # 1934 ends on 28 April 1939; Molotov-Ribbentrop (ATOP 2470) enters on 23 August.
    assert ANGLO_POLISH not in alliances_of(january, "POL")
    assert GERMAN_POLISH_1934 in alliances_of(january, "POL")
    assert ANGLO_POLISH in alliances_of(september, "POL")
    assert GERMAN_POLISH_1934 not in alliances_of(september, "POL")
    assert "ATOP2470" in alliances_of(september, "RUS")
    assert "ATOP2470" not in alliances_of(january, "RUS")
    # the year rule mixes January and August: both pacts at once
    year = parsed(import_world(1939, ALLIANCES, MEMBERS, CINC, aggressors=["GMY"]))
    assert {ANGLO_POLISH, GERMAN_POLISH_1934} <= alliances_of(year, "POL")
    with pytest.raises(UserError, match="not in year 1938"):
        import_world(1938, ALLIANCES, MEMBERS, CINC, aggressors=["GMY"], date="1939-09-01")
    with pytest.raises(UserError, match="YYYY-MM-DD"):
        import_world(1939, ALLIANCES, MEMBERS, CINC, aggressors=["GMY"], date="1939-9-1")


def test_target_restricts_the_dispute_aggressors():
    data = parsed(import_world(1914, ALLIANCES, MEMBERS, CINC, DISPUTES, targets=["CHN"]))
    assert data["aggressors"]
    assert all(list(a["targets"]) == ["CHN"] for a in data["aggressors"])
    assert "RUS" in {a["state"] for a in data["aggressors"]}
    with pytest.raises(UserError, match="--target XYZ: no such state"):
        import_world(1914, ALLIANCES, MEMBERS, CINC, DISPUTES, targets=["XYZ"])


def test_dyads_rivalries_gives_rivalry_pairs():
    sources = read_sources(ALLIANCES, MEMBERS, CINC)
    record = read_dyads("rivalries", 1939, sources.abbreviations, rivalries_csv=RIVALRIES)
    assert (record.first_year, record.last_year) == (1929, 1938)
    riv = pl.read_csv(RIVALRIES).filter((pl.col("styear") <= 1938) & (pl.col("endyear") >= 1929))
    abb = sources.abbreviations
    expected = {(abb[a], abb[b]) for a, b in riv.select("ccode1", "ccode2").iter_rows()}
    expected |= {(b, a) for a, b in expected}
    got = {(a, t) for a, ts in record.pairs.items() for t in ts}
    assert got == expected
    assert ("JPN", "CHN") in got and ("CHN", "JPN") in got and ("GMY", "POL") in got
    data = parsed(import_world(1939, ALLIANCES, MEMBERS, CINC, dyads="rivalries",
                               rivalries_csv=RIVALRIES))
    pairs = {(a["state"], t) for a in data["aggressors"] for t in a["targets"]}
    assert pairs <= expected and ("JPN", "CHN") in pairs
    for a in data["aggressors"]:
        assert a["weight"] == sum(a["targets"].values())
    head = import_world(1939, ALLIANCES, MEMBERS, CINC, dyads="rivalries",
                        rivalries_csv=RIVALRIES).toml.split("[scenario]")[0]
    assert "Thompson & Dreyer (2012)" in head
    with pytest.raises(UserError, match="--dyads rivalries needs --rivalries"):
        import_world(1939, ALLIANCES, MEMBERS, CINC, dyads="rivalries")


def test_dyads_disputes_counts_side_a_against_side_b():
    sources = read_sources(ALLIANCES, MEMBERS, CINC)
    record = read_dyads("disputes", 1914, sources.abbreviations, disputes_csv=DISPUTES,
                        window=5)
    d = pl.read_csv(DISPUTES, infer_schema_length=0).with_columns(
        pl.all().cast(pl.Int64, strict=False))
    sel = d.filter(pl.col("year").is_between(1909, 1913) & (pl.col("sidea1") == 1)
                   & (pl.col("sidea2") == 0) & (pl.col("ccode1") == 365)
                   & (pl.col("ccode2") == 710))
    assert record.pairs["RUS"]["CHN"] == sel["dispnum"].n_unique() > 0
    both = read_dyads("all", 1914, sources.abbreviations, disputes_csv=DISPUTES,
                      rivalries_csv=RIVALRIES, window=5)
    assert both.pairs["RUS"]["CHN"] >= record.pairs["RUS"]["CHN"]


def test_capability_military_changes_chinas_share():
    def caps(measure):
        data = parsed(import_world(1939, ALLIANCES, MEMBERS, CINC, aggressors=["JPN"],
                                   capability=measure))
        return {s["id"]: s["capability"] for s in data["states"]}
    cinc, military = caps("cinc"), caps("military")
    milex, milper = caps("milex"), caps("milper")
    assert cinc["CHN"] > 1.5 * cinc["JPN"]          # CINC counts China's population
    assert military["CHN"] < 0.75 * cinc["CHN"]
    assert military["CHN"] == pytest.approx((milex["CHN"] + milper["CHN"]) / 2)
    assert sum(milex.values()) == pytest.approx(1.0, abs=1e-4)
    assert milex["CHN"] < milex["JPN"]


def test_years_past_the_capability_data_exit_2_naming_the_limit(tmp_path):
    result = invoke("import", "atop", "--year", 2014, "--aggressor", "RUS", *FILES,
                    "--out", tmp_path / "w.toml")
    assert result.exit_code == 2
    assert "past the capability data, which ends in 2012" in result.output
    assert not (tmp_path / "w.toml").exists()
    both = invoke("import", "atop", "--year", 1939, "--date", "1939-09-01", *FILES,
                  "--out", tmp_path / "w.toml")
    assert both.exit_code == 2 and "exactly one of --year" in both.output


def test_names_for_states_and_alliances():
    world = import_world(1955, ALLIANCES, MEMBERS, CINC, aggressors=["RUS"])
    data = parsed(world)
    names = {s["id"]: s["name"] for s in data["states"]}
    assert names["USA"] == "United States of America" and names["RUS"] == "Russia"
    assert names["GFR"] == "German Federal Republic"
    for label, aid in (("NATO", "ATOP3180"), ("Warsaw Pact", "ATOP3285"),
                       ("Rio Pact", "ATOP3075"), ("SEATO", "ATOP3260"), ("ANZUS", "ATOP3215")):
        block = world.toml.split(f'id = "{aid}"')[0].rsplit("[[alliances]]", 1)[0]
        assert label in block.rsplit("\n\n", 1)[-1], label
