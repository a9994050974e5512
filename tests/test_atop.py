"""`crisis import atop`: real ATOP / COW / GML files → a valid, runnable scenario.

The data live in the shared folder next to the project (read-only, never copied here); every
test is skipped with a reason when that folder is absent.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.importing import import_group
from engine.core.simulate import simulate
from engine.data.atop import (
    CINC_FLOOR,
    alliance_design,
    alliances_in_force,
    bindingness_from_design,
    build_world,
    import_world,
    integration_from_design,
    read_disputes,
    read_sources,
    strongest_obligation,
)
from engine.errors import UserError
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario

DATA = Path(__file__).parent.parent.parent / "shared" / "data"
ALLIANCES = DATA / "atop-alliance-level.csv"
MEMBERS = DATA / "atop-member-level.csv"
CINC = DATA / "cinc-polity.csv"
DISPUTES = DATA / "gml-ddy-disputes-2.03.csv"

pytestmark = pytest.mark.skipif(
    not all(p.is_file() for p in (ALLIANCES, MEMBERS, CINC, DISPUTES)),
    reason=f"public datasets not found in {DATA} (ATOP, cinc-polity, GML MID CSVs)",
)

NATO = 3180
TRIPLE_ALLIANCE = 1350      # Germany, Austria-Hungary, Italy (1882; phase 4 from 1913)
FRANCO_RUSSIAN = 1385       # military convention 1893/94 (defense)
FRANCO_RUSSIAN_ENTENTE = 1380  # 1891 consultation agreement
US_JAPAN_1951 = 3220        # security treaty: the US pledges defense, Japan consults only


def in_force(year):
    return alliances_in_force(year, ALLIANCES, MEMBERS, CINC)


def members_of(frame, atopid):
    return sorted(frame.filter(pl.col("atopid") == atopid)["stateabb"].to_list())


@pytest.fixture(scope="module")
def world_1914():
    return import_world(1914, ALLIANCES, MEMBERS, CINC, DISPUTES)


@pytest.fixture(scope="module")
def world_2012():
    return import_world(2012, ALLIANCES, MEMBERS, CINC, DISPUTES, ["RUS"])


def parsed(world):
    return tomllib.loads(world.toml)


def alliance(data, aid):
    return next(a for a in data["alliances"] if a["id"] == aid)


def aggressor(data, state):
    return next(a for a in data["aggressors"] if a["state"] == state)


# ---- membership --------------------------------------------------------------------------------

@pytest.mark.parametrize("year, count, phase", [(1950, 12, 1), (1990, 16, 2), (2012, 28, 2)])
def test_nato_membership_count(year, count, phase):
    nato = in_force(year).filter(pl.col("atopid") == NATO)
    assert nato.height == count
    assert set(nato["phase"].to_list()) == {phase}
    assert nato["obligation"].unique().to_list() == ["defense"]


def test_nato_1990_counts_united_germany_once():
    # ATOP: GFR leaves NATO on 3 Oct 1990, the day GMY enters; CINC has both in 1990 and no GFR
    # in 1991, so GFR is merged into GMY (same-day succession) instead of counted twice.
    nato = members_of(in_force(1990), NATO)
    assert "GMY" in nato and "GFR" not in nato
    assert {"USA", "UKG", "FRN", "TUR", "SPN"} <= set(nato)
    world = import_world(1990, ALLIANCES, MEMBERS, CINC, aggressors=["RUS"])
    ids = {s["id"] for s in parsed(world)["states"]}
    assert "GMY" in ids and "GFR" not in ids and "GDR" not in ids
    assert any("GFR merged into GMY" in n for n in world.notes)


def test_nato_phase_overlap_keeps_the_later_phase():
    # 1951: phase 1 ends and phase 2 begins (June); GRC and TUR sign in October 1951.
    nato = in_force(1951).filter(pl.col("atopid") == NATO)
    assert nato.height == 14
    assert nato.select(pl.col("stateabb").is_unique().all()).item()
    assert set(nato["phase"].to_list()) == {2}


def test_1914_triple_alliance_and_franco_russian_alliance():
    frame = in_force(1914)
    assert members_of(frame, TRIPLE_ALLIANCE) == ["AUH", "GMY", "ITA"]
    assert members_of(frame, FRANCO_RUSSIAN) == ["FRN", "RUS"]
    assert members_of(frame, FRANCO_RUSSIAN_ENTENTE) == ["FRN", "RUS"]
    triple = frame.filter(pl.col("atopid") == TRIPLE_ALLIANCE)
    assert set(triple["phase"].to_list()) == {4}
    fr = frame.filter(pl.col("atopid") == FRANCO_RUSSIAN)
    assert fr["obligation"].to_list() == ["defense", "defense"]
    assert frame.filter(pl.col("atopid") == FRANCO_RUSSIAN_ENTENTE)["obligation"].to_list() \
        == ["consultation", "consultation"]
    # Italy leaves in May 1915: still a member in 1915, gone in 1916.
    assert members_of(in_force(1915), TRIPLE_ALLIANCE) == ["AUH", "GMY", "ITA"]
    assert members_of(in_force(1916), TRIPLE_ALLIANCE) == ["AUH", "GMY"]


def test_member_obligations_and_phases_read_per_member():
    t1914 = in_force(1914).filter(pl.col("atopid") == TRIPLE_ALLIANCE)
    row = {r["stateabb"]: r for r in t1914.iter_rows(named=True)}
    # Phase 4: Germany also pledges offense; all three defense, neutrality, consultation.
    assert (row["GMY"]["offense"], row["AUH"]["offense"], row["ITA"]["offense"]) == (1, 0, 0)
    assert all(row[s]["defense"] == row[s]["neutral"] == row[s]["consul"] == 1 for s in row)
    assert all(row[s]["nonagg"] == 0 for s in row)
    # Phase 1 (1882-1887): nobody pledges offense yet.
    t1885 = in_force(1885).filter(pl.col("atopid") == TRIPLE_ALLIANCE)
    assert set(t1885["phase"].to_list()) == {1}
    assert t1885["offense"].to_list() == [0, 0, 0]
    # Asymmetric: the US pledges defense to Japan, Japan only consults.
    usj = in_force(1955).filter(pl.col("atopid") == US_JAPAN_1951)
    kinds = dict(zip(usj["stateabb"].to_list(), usj["obligation"].to_list(), strict=True))
    assert kinds == {"USA": "defense", "JPN": "consultation"}


def test_strongest_obligation_order():
    assert strongest_obligation(defense=1, neutral=1, consul=1) == "defense"
    assert strongest_obligation(neutral=1, nonagg=1) == "neutrality"
    assert strongest_obligation(nonagg=1, consul=1) == "nonaggression"
    assert strongest_obligation(consul=1) == "consultation"
    assert strongest_obligation(offense=1) == "consultation"   # offense covers no target
    assert strongest_obligation() == "none"


# ---- treaty design → integration / bindingness -------------------------------------------------

def test_integration_and_bindingness_mapping():
    assert integration_from_design() == 0.0
    assert integration_from_design(1, 3, 3, 3, 2) == 1.0
    assert integration_from_design(intcom=1) == pytest.approx(0.2)
    assert integration_from_design(milcon=2) == pytest.approx(2 / 15)
    assert integration_from_design(base=1) == integration_from_design(base=3) == 0.2
    assert integration_from_design(None, None, None, None, None) == 0.0
    assert bindingness_from_design(0, 0) == 1.0
    assert bindingness_from_design(1, 0) == pytest.approx(0.7)
    assert bindingness_from_design(0, 2) == pytest.approx(0.8)
    assert bindingness_from_design(1, 1) == pytest.approx(0.5)


def test_design_of_known_alliances():
    design = alliance_design(read_sources(ALLIANCES, MEMBERS, CINC))
    nato = design.filter(pl.col("atopid") == NATO).row(0, named=True)
    # NATO in ATOP: intcom 0, milcon 0, base 3, organ1 3, subord 0; conditio 1, renounce 0.
    assert (nato["intcom"], nato["milcon"], nato["base"], nato["organ1"], nato["subord"]) \
        == (0, 0, 3, 3, 0)
    assert nato["integration"] == pytest.approx(0.4)
    assert nato["bindingness"] == pytest.approx(0.7)
    triple = design.filter(pl.col("atopid") == TRIPLE_ALLIANCE).row(0, named=True)
    # milcon 2, subord 1, nothing else: (2/3 + 1) / 5.
    assert triple["integration"] == pytest.approx((2 / 3 + 1) / 5)
    assert triple["bindingness"] == pytest.approx(0.7)


# ---- whole worlds ------------------------------------------------------------------------------

def run_short(path):
    compiled = compile_scenario(load_scenario(path))
    tallies, _ = simulate(compiled, 1, 0, 20000)
    assert int(tallies.cells[:, 0].sum()) == 20000
    return compiled, tallies


def test_world_1914_validates_and_runs(world_1914, tmp_path):
    path = tmp_path / "world-1914.toml"
    path.write_text(world_1914.toml)
    scenario = load_scenario(path)
    assert len(scenario.states) == world_1914.states == 45
    assert len(scenario.alliances) == world_1914.alliances
    assert len(scenario.aggressors) == world_1914.aggressors == 10
    ids = [a.id for a in scenario.alliances]
    assert len(ids) == len(set(ids))
    assert all(len(a.members) >= 2 for a in scenario.alliances)
    triple = alliance(parsed(world_1914), f"ATOP{TRIPLE_ALLIANCE}")
    assert sorted(triple["members"]) == ["AUH", "GMY", "ITA"]
    assert triple["obligation"] == "defense" and triple["decision_rule"] == "unanimity"
    assert triple["integration"] == pytest.approx((2 / 3 + 1) / 5, abs=1e-4)
    assert (triple["round_days"], triple["max_rounds"]) == (2.0, 5)
    gmy = next(s for s in scenario.states if s.id == "GMY")
    assert gmy.capability == 0.158201  # CINC 1914, exactly as in the file
    assert (gmy.commitment, gmy.stability, gmy.free_riding) == (0.5, 1.0, 0.0)
    # ATOP1480 (Montenegro-Serbia) loses Montenegro (no CINC row in 1914): dropped, and said so.
    assert "ATOP1480" not in ids and "ATOP1480" in world_1914.toml
    run_short(path)


def test_world_2012_validates_and_runs(world_2012, tmp_path):
    path = tmp_path / "world-2012.toml"
    path.write_text(world_2012.toml)
    scenario = load_scenario(path)
    assert len(scenario.states) == world_2012.states > 190
    nato = alliance(parsed(world_2012), f"ATOP{NATO}")
    assert len(nato["members"]) == 28 and nato["obligation"] == "defense"
    assert nato["integration"] == pytest.approx(0.4) and nato["bindingness"] == pytest.approx(0.7)
    assert 'name = "World 2012 (ATOP/COW)"' in world_2012.toml
    run_short(path)


def test_header_names_sources_rules_and_assumptions(world_1914):
    head = world_1914.toml.split("[scenario]")[0]
    for needle in ("Leeds, Ritter, Mitchell & Long (2002)", "Singer, Bremer & Stuckey (1972)",
                   "Gibler, Miller & Little (2016)", "ATOP v4.01", "1914",
                   "defense > neutrality (neutral) >", "offense-only -> consultation",
                   "integration = mean(intcom, milcon/3", "bindingness = clip(1 - 0.3*conditio",
                   "commitment 0.5", "Assumptions"):
        assert needle in head, needle
    assert "commitment = 0.5   # assumption" in world_1914.toml


def test_asymmetric_pacts_are_split_and_documented(world_1914):
    data = parsed(world_1914)
    # Germany pledges defense to the Ottoman Empire, which pledges offense only (Aug 1914).
    gt = alliance(data, "ATOP2005")
    assert sorted(gt["members"]) == ["GMY", "TUR"] and gt["obligation"] == "defense"
    assert "defense pledged by GMY; TUR holds offense only" in world_1914.toml
    # the defense pledge stays directed: Germany defends the Ottoman Empire, not the reverse
    assert gt["protected"] == ["TUR"]
    compiled = compile_scenario(load_scenario_text(world_1914.toml))
    gmy, tur = compiled.state_ids.index("GMY"), compiled.state_ids.index("TUR")
    a = compiled.alliance_ids.index("ATOP2005")
    covers = lambda i: compiled.cover_idx[compiled.cover_ptr[i]:compiled.cover_ptr[i + 1]]  # noqa: E731
    assert a in covers(tur).tolist() and a not in covers(gmy).tolist()
    # Central American 1907: Honduras pledges neutrality, the others nonaggression only.
    strong, weak = alliance(data, "ATOP1450"), alliance(data, "ATOP1450-nonaggression")
    assert strong["obligation"] == "neutrality"
    assert sorted(strong["members"]) == ["GUA", "HON", "NIC", "SAL"]
    assert weak["obligation"] == "nonaggression" and sorted(weak["members"]) == ["GUA", "NIC",
                                                                                   "SAL"]


def load_scenario_text(text: str):
    from engine.model.config import scenario_from_dict

    return scenario_from_dict(tomllib.loads(text))


def test_us_japan_guarantee_is_directed():
    world = import_world(1960, ALLIANCES, MEMBERS, CINC, aggressors=["RUS"])
    usj = alliance(parsed(world), f"ATOP{US_JAPAN_1951}")
    assert sorted(usj["members"]) == ["JPN", "USA"] and usj["protected"] == ["JPN"]


def test_later_year_needs_capabilities_for_it(tmp_path):
    # CINC ends in 2012: a later year is an error naming the limit (no silent stand-in) ...
    with pytest.raises(UserError, match=r"year 2015 is past the capability data, which ends "
                                        r"in 2012 .*--capabilities"):
        import_world(2015, ALLIANCES, MEMBERS, CINC, aggressors=["CHN"])
    # ... and a user CSV with rows for the later year (same columns) is read as given.
    later = (pl.read_csv(CINC, infer_schema_length=0).filter(pl.col("year") == "2012")
             .select("stateabb", "ccode", pl.lit("2015").alias("year"), "cinc"))
    path = tmp_path / "cinc-2015.csv"
    later.write_csv(path)
    world = import_world(2015, ALLIANCES, MEMBERS, path, aggressors=["CHN"])
    assert (world.year, world.cinc_year) == (2015, 2015)
    data = parsed(world)
    assert data["scenario"]["seed"] == 2015 and data["scenario"]["trials"] == 1_000_000
    cap = {s["id"]: s["capability"] for s in data["states"]}
    assert cap["USA"] == float(later.filter(pl.col("stateabb") == "USA")["cinc"].item())


def test_missing_cinc_gets_a_floor(tmp_path):
    cinc = pl.read_csv(CINC, infer_schema_length=0)
    cinc = cinc.with_columns(
        pl.when((pl.col("stateabb") == "BEL") & (pl.col("year") == "1914")).then(pl.lit("NA"))
        .when((pl.col("stateabb") == "NTH") & (pl.col("year") == "1914")).then(pl.lit("0"))
        .otherwise(pl.col("cinc")).alias("cinc"))
    path = tmp_path / "cinc.csv"
    cinc.write_csv(path)
    world = import_world(1914, ALLIANCES, MEMBERS, path, aggressors=["GMY"])
    cap = {s["id"]: s["capability"] for s in parsed(world)["states"]}
    assert cap["BEL"] == cap["NTH"] == CINC_FLOOR
    assert any("floored" in n and "NTH" in n and "BEL" in n for n in world.notes)


# ---- aggressors --------------------------------------------------------------------------------

def test_dispute_aggressors_1914(world_1914):
    data = parsed(world_1914)
    aggs = data["aggressors"]
    assert len(aggs) == 10
    weights = [a["weight"] for a in aggs]
    assert weights == sorted(weights, reverse=True)
    # Russia originated 10 disputes (side A) in 1904-1913, 3 each against China and Persia.
    rus = aggressor(data, "RUS")
    assert rus["weight"] == 10.0
    assert rus["targets"]["CHN"] == 3.0 and rus["targets"]["IRN"] == 3.0
    for a in aggs:
        assert a["state"] not in a["targets"]
        assert a["attack_mix"] == {"conventional": 1.0}
    assert data["attack_types"]["conventional"]["severity"] == 1.0


def test_dispute_counts_follow_the_documented_rule():
    sources = read_sources(ALLIANCES, MEMBERS, CINC)
    record = read_disputes(DISPUTES, 1914, sources.abbreviations)
    assert (record.first_year, record.last_year) == (1904, 1913)
    d = pl.read_csv(DISPUTES, infer_schema_length=0).with_columns(pl.all().cast(pl.Int64,
                                                                                strict=False))
    usa = d.filter(pl.col("year").is_between(1904, 1913) & (pl.col("ccode1") == 2)
                   & (pl.col("sidea1") == 1) & (pl.col("orig1") == 1)
                   & (pl.col("sidea2") == 0) & (pl.col("orig2") == 1))
    assert record.initiators["USA"] == usa["dispnum"].n_unique() > 0
    # After the last dispute year (2010) the window is the last ten years with data.
    late = read_disputes(DISPUTES, 2012, sources.abbreviations)
    assert (late.first_year, late.last_year) == (2001, 2010) and "ends in 2010" in late.note


def test_named_aggressor_with_disputes_takes_its_dispute_targets(world_2012):
    data = parsed(world_2012)
    assert [a["state"] for a in data["aggressors"]] == ["RUS"]
    rus = aggressor(data, "RUS")
    assert rus["weight"] == 1.0
    # Russia originated 6 disputes against Georgia and 5 against Japan in 2001-2010.
    assert rus["targets"]["GRG"] == 6.0 and rus["targets"]["JPN"] == 5.0
    assert "RUS" not in rus["targets"]


def test_named_aggressor_targets_ten_most_capable_non_allies():
    data = parsed(import_world(2012, ALLIANCES, MEMBERS, CINC, aggressors=["RUS", "RUS"]))
    assert [a["state"] for a in data["aggressors"]] == ["RUS"]
    targets = aggressor(data, "RUS")["targets"]
    allies = {m for a in data["alliances"] if "RUS" in a["members"] for m in a["members"]}
    cap = {s["id"]: s["capability"] for s in data["states"]}
    pool = sorted((s for s in cap if s not in allies and s != "RUS"), key=lambda s: (-cap[s], s))
    assert list(targets) == pool[:10] and set(targets.values()) == {1.0}


def test_bad_inputs_raise_user_errors(tmp_path):
    with pytest.raises(UserError, match=r"year 1700 is not covered"):
        build_world(1700, ALLIANCES, MEMBERS, CINC, aggressors=["UKG"])
    with pytest.raises(UserError, match=r"year 2030 is not covered: ATOP codes"):
        build_world(2030, ALLIANCES, MEMBERS, CINC, aggressors=["UKG"])
    with pytest.raises(UserError, match=r"--aggressor XYZ: no such state"):
        build_world(1914, ALLIANCES, MEMBERS, CINC, aggressors=["XYZ"])
    with pytest.raises(UserError, match=r"no aggressor"):
        build_world(1914, ALLIANCES, MEMBERS, CINC)
    missing = tmp_path / "nope.csv"
    with pytest.raises(UserError, match=rf"{missing}: file not found"):
        build_world(1914, ALLIANCES, missing, CINC, aggressors=["UKG"])
    bad = tmp_path / "cinc.csv"
    pl.read_csv(CINC, infer_schema_length=0).drop("cinc").write_csv(bad)
    with pytest.raises(UserError, match=rf"{bad}: missing column\(s\) cinc"):
        build_world(1914, ALLIANCES, MEMBERS, bad, aggressors=["UKG"])


# ---- CLI ---------------------------------------------------------------------------------------

def cli(*args):
    return CliRunner().invoke(import_group, ["atop", *map(str, args)])


def test_cli_writes_a_scenario_and_refuses_to_overwrite(tmp_path):
    out = tmp_path / "configs" / "world-1914.toml"
    args = ["--year", 1914, "--alliances", ALLIANCES, "--members", MEMBERS,
            "--capabilities", CINC, "--disputes", DISPUTES, "--out", out]
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (f"wrote {out}: 45 states, {import_world_count(1914)} "
                                     f"alliances, 10 aggressors (ATOP 1914)")
    assert load_scenario(out).scenario.name == "World 1914 (ATOP/COW)"
    again = cli(*args)
    assert again.exit_code == 2 and "exists; pass --force" in again.output
    forced = cli(*args, "--force", "--aggressor", "GMY")
    assert forced.exit_code == 0, forced.output
    assert [a.state for a in load_scenario(out).aggressors] == ["GMY"]


def import_world_count(year):
    return import_world(year, ALLIANCES, MEMBERS, CINC, DISPUTES).alliances


def test_cli_bad_year_exits_2_and_names_the_problem(tmp_path):
    out = tmp_path / "w.toml"
    result = cli("--year", 1700, "--alliances", ALLIANCES, "--members", MEMBERS,
                 "--capabilities", CINC, "--aggressor", "UKG", "--out", out)
    assert result.exit_code == 2
    assert "error:" in result.output and "year 1700 is not covered" in result.output
    assert not out.exists()


def test_similarity_of_a_years_world(tmp_path, monkeypatch):
    from engine.cli.main import main
    from engine.data.registry import ENV_DATA_DIR

    out = tmp_path / "sim.parquet"
    result = CliRunner().invoke(main, ["similarity", "--year", "1914", "--alliances",
                                       str(ALLIANCES), "--members", str(MEMBERS),
                                       "--capabilities", str(CINC), "--measure", "s",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(out)
    assert table.height == 45 * 44 // 2  # every pair of the 45 states of 1914
    pair = table.filter((pl.col("state_a") == "FRN") & (pl.col("state_b") == "RUS"))
    neutral = table.filter((pl.col("state_a") == "USA") & (pl.col("state_b") == "RUS"))
    assert pair["s"].item() > neutral["s"].item()  # the Franco-Russian allies are closer
    # no files and an empty data cache: the error says how to get the data
    monkeypatch.setenv(ENV_DATA_DIR, str(tmp_path / "empty-cache"))
    result = CliRunner().invoke(main, ["similarity", "--year", "1914"])
    assert result.exit_code == 2 and "crisis data add DIR" in result.output
