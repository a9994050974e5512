"""Membership in sweeps: ``alliances.NATO.members-=SWD`` / ``members+=SWD`` (issue 12 item 4).

Every edit must change the scenario exactly as a hand edit of the file would (compared through
``to_toml_dict``), sweep points must equal individual runs of the hand-edited scenario (same
draws), labels read ``NATO −SWD``, and every mistake is a user error naming the path and state.
"""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.simulate import simulate
from engine.core.tables import summary_table
from engine.errors import ConfigError, UserError
from engine.experiments.sweep import parse_set, point_label, read_grid, run_sweep
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario, scenario_from_dict
from engine.model.paths import membership_edit, value_label

CONFIGS = Path(__file__).parent.parent / "configs"
NATO = CONFIGS / "nato-baltic-2024.toml"
UNSC = CONFIGS / "unsc-veto.toml"
MINUS = "\u2212"  # the label's minus sign


def alliance(data: dict, aid: str) -> dict:
    return next(a for a in data["alliances"] if a["id"] == aid)


def hand_edited(scenario, aid: str, edit) -> dict:
    """``scenario.to_toml_dict()`` with ``edit(alliance_dict)`` applied to alliance ``aid``."""
    data = copy.deepcopy(scenario.to_toml_dict())
    edit(alliance(data, aid))
    return scenario_from_dict(data).to_toml_dict()


def nato_capability():
    # membership runs do not depend on the deterrence mode; pin v1 so that these tests check
    # the sweep machinery, not the expected-response kernel
    return load_scenario(NATO).with_values({"scenario.deterrence": "capability"})


# ---- spelling and labels --------------------------------------------------------------------

def test_paths_and_labels():
    assert membership_edit("alliances.NATO.members-") == ("NATO", "members-")
    assert membership_edit("alliances.NATO.members+") == ("NATO", "members+")
    assert membership_edit("alliances.NATO.members") is None
    assert membership_edit("states.SWD.members-") is None
    assert value_label("alliances.NATO.members-", "SWD") == f"NATO {MINUS}SWD"
    assert value_label("alliances.NATO.members+", "SWD") == "NATO +SWD"
    assert value_label("alliances.NATO.members-", ["SWD", "FIN"]) == f"NATO {MINUS}SWD {MINUS}FIN"
    assert value_label("alliances.NATO.members-", "") == "NATO (as is)"
    assert value_label("alliances.NATO.members+", []) == "NATO (as is)"
    # other paths keep their labels
    assert value_label("alliances.NATO.decision_rule", "majority") == \
        "alliances.NATO.decision_rule=majority"
    assert point_label({"alliances.NATO.decision_rule": "majority",
                        "alliances.NATO.members-": "SWD"}) == \
        f"alliances.NATO.decision_rule=majority, NATO {MINUS}SWD"


def test_set_option_spelling():
    assert parse_set("alliances.NATO.members-=SWD") == ("alliances.NATO.members-", ["SWD"])
    assert parse_set("alliances.NATO.members-=SWD,FIN") == ("alliances.NATO.members-",
                                                            ["SWD", "FIN"])
    # an empty item is the "as is" point; ids stay text even when they look like numbers
    assert parse_set("alliances.NATO.members+=,UKR") == ("alliances.NATO.members+", ["", "UKR"])
    assert parse_set("alliances.X.members-=365") == ("alliances.X.members-", ["365"])
    with pytest.raises(UserError, match="no values"):
        parse_set("alliances.NATO.members-=,")


# ---- the edits themselves ---------------------------------------------------------------------

def test_removal_is_exactly_a_hand_edit():
    base = load_scenario(NATO)
    removed = base.with_values({"alliances.NATO.members-": "SWD"})
    expected = hand_edited(base, "NATO", lambda a: a["members"].remove("SWD"))
    assert removed.to_toml_dict() == expected
    assert "SWD" not in alliance(removed.to_toml_dict(), "NATO")["members"]
    # several at once, in one point
    both = base.with_values({"alliances.NATO.members-": ["SWD", "FIN"]})
    assert both.to_toml_dict() == hand_edited(
        base, "NATO", lambda a: a.update(members=[m for m in a["members"]
                                                  if m not in ("SWD", "FIN")]))
    # an empty edit changes nothing
    assert base.with_values({"alliances.NATO.members-": ""}) == base
    assert base.with_values({"alliances.NATO.members+": []}) == base


def test_removal_also_leaves_veto_holders_and_protected():
    unsc = load_scenario(UNSC)
    removed = unsc.with_values({"alliances.UNSC.members-": "RUS"})
    assert removed.to_toml_dict() == hand_edited(
        unsc, "UNSC", lambda a: (a["members"].remove("RUS"), a["veto_holders"].remove("RUS")))
    assert alliance(removed.to_toml_dict(), "UNSC")["veto_holders"] == ["USA", "UKG", "FRN",
                                                                        "CHN"]
    # a directed defense pledge: the removed member is no longer protected either
    directed = load_scenario(NATO).with_values(
        {"alliances.NATO.protected": ["EST", "LAT", "LIT", "SWD"]})
    removed = directed.with_values({"alliances.NATO.members-": "SWD"})
    assert removed.to_toml_dict() == hand_edited(
        directed, "NATO", lambda a: (a["members"].remove("SWD"), a["protected"].remove("SWD")))
    assert alliance(removed.to_toml_dict(), "NATO")["protected"] == ["EST", "LAT", "LIT"]


def test_addition_is_exactly_a_hand_edit_and_covers_the_new_member():
    base = load_scenario(NATO)
    added = base.with_values({"alliances.NATO.members+": "UKR"})
    assert added.to_toml_dict() == hand_edited(base, "NATO", lambda a: a["members"].append("UKR"))
    compiled = compile_scenario(added)
    ukr = compiled.state_ids.index("UKR")
    nato = compiled.alliance_ids.index("NATO")
    assert nato in compiled.cover_idx[compiled.cover_ptr[ukr]:compiled.cover_ptr[ukr + 1]]
    # removing and adding in one point (applied in the order given)
    swapped = base.with_values({"alliances.NATO.members-": "SWD",
                                "alliances.NATO.members+": ["UKR"]})
    assert swapped.to_toml_dict() == hand_edited(
        base, "NATO", lambda a: (a["members"].remove("SWD"), a["members"].append("UKR")))


def test_setting_the_whole_member_list_still_works():
    base = load_scenario(NATO)
    members = ["USA", "EST", "LAT", "LIT", "POL", "FIN"]
    edited = base.with_values({"alliances.NATO.members": members})
    assert alliance(edited.to_toml_dict(), "NATO")["members"] == members
    assert edited.to_toml_dict() == hand_edited(base, "NATO", lambda a: a.update(members=members))


def test_mistakes_are_user_errors_naming_path_and_state():
    base = load_scenario(NATO)
    cases = [
        ({"alliances.NATO.members-": "UKR"}, "members-=UKR: 'UKR' is not a member of NATO"),
        ({"alliances.NATO.members+": "SWD"}, "members\\+=SWD: 'SWD' is already a member of NATO"),
        ({"alliances.NATO.members+": "XYZ"}, "members\\+=XYZ: unknown state id 'XYZ'"),
        ({"alliances.NATO.members-": ["SWD", "SWD"]}, "'SWD' is named twice"),
        ({"alliances.NATO.members-": 3}, "expected a state id or a list of state ids"),
        ({"alliances.OTAN.members-": "SWD"}, "no alliance with id 'OTAN'"),
        ({"states.EST.commitment-": 0.1}, "only remove or add alliance members"),
    ]
    for values, message in cases:
        with pytest.raises(UserError, match=message):
            base.with_values(values)
    every = alliance(base.to_toml_dict(), "NATO")["members"]
    with pytest.raises(UserError, match="would leave NATO with no member"):
        base.with_values({"alliances.NATO.members-": every})
    # what is left must still be a valid scenario: the validator names the key
    with pytest.raises(ConfigError, match="veto_holders"):
        load_scenario(UNSC).with_values(
            {"alliances.UNSC.members-": ["USA", "UKG", "FRN", "RUS", "CHN"]})
    with pytest.raises(ConfigError, match="protected: must list at least one member"):
        base.with_values({"alliances.NATO.protected": ["SWD"]}).with_values(
            {"alliances.NATO.members-": "SWD"})


# ---- sweeps: real runs ------------------------------------------------------------------------

def single_run(data: dict, seed: int, trials: int) -> dict:
    compiled = compile_scenario(scenario_from_dict(data))
    tallies, _ = simulate(compiled, seed, 0, trials)
    return summary_table(compiled, tallies).row(0, named=True)


def test_sweep_points_equal_runs_of_the_hand_edited_scenarios():
    base = nato_capability()
    path = "alliances.NATO.members-"
    frame, names = run_sweep(base, [(path, ["", "SWD", ["SWD", "FIN"]])], seed=3,
                             trials=20_000)
    assert names == [path]
    labels = frame[path].to_list()
    assert labels == ["NATO (as is)", f"NATO {MINUS}SWD", f"NATO {MINUS}SWD {MINUS}FIN"]
    removed = {"NATO (as is)": (), labels[1]: ("SWD",), labels[2]: ("SWD", "FIN")}
    for row in frame.iter_rows(named=True):
        data = copy.deepcopy(base.to_toml_dict())
        nato = alliance(data, "NATO")
        nato["members"] = [m for m in nato["members"] if m not in removed[row[path]]]
        single = single_run(data, 3, 20_000)
        for key in ("deterred", "invoked", "deadlock", "repelled", "invocation_rate",
                    "delay_p50_days", "honor_rate"):
            assert row[key] == single[key], (row[path], key)
    # same draws: without Finland every cell's deterrence can only fall (FIN is uncovered and
    # its capability no longer backs the others)
    deterred = dict(zip(labels, frame["deterred"].to_list(), strict=True))
    assert deterred[labels[2]] < deterred[labels[1]] <= deterred["NATO (as is)"]


def test_grid_combines_with_set_on_the_command_line(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"alliances.NATO.decision_rule" = ["unanimity", "majority"]\n'
                    '"alliances.NATO.members+" = ["", "UKR"]\n')
    assert read_grid(grid) == [("alliances.NATO.decision_rule", ["unanimity", "majority"]),
                               ("alliances.NATO.members+", ["", "UKR"])]
    out = tmp_path / "sweep.parquet"
    # the shipped file, in its own deterrence mode
    result = CliRunner().invoke(main, ["sweep", str(NATO), "--set",
                                       "alliances.NATO.members-=SWD,FIN", "--grid", str(grid),
                                       "--trials", "20000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"NATO {MINUS}SWD" in result.output and "NATO +UKR" in result.output
    frame = pl.read_parquet(out)
    assert frame.height == 2 * 2 * 2
    assert frame.columns[:3] == ["alliances.NATO.members-", "alliances.NATO.decision_rule",
                                 "alliances.NATO.members+"]
    assert sorted(set(frame["alliances.NATO.members-"])) == [f"NATO {MINUS}FIN",
                                                             f"NATO {MINUS}SWD"]
    assert sorted(set(frame["alliances.NATO.members+"])) == ["NATO (as is)", "NATO +UKR"]
    assert sorted(set(frame["alliances.NATO.decision_rule"])) == ["majority", "unanimity"]
    # the same path from --set and from the grid is refused
    twice = tmp_path / "twice.toml"
    twice.write_text('[grid]\n"alliances.NATO.members-" = ["SWD", ["SWD", "FIN"]]\n')
    assert read_grid(twice) == [("alliances.NATO.members-", ["SWD", ["SWD", "FIN"]])]
    again = CliRunner().invoke(main, ["sweep", str(NATO), "--set", "alliances.NATO.members-=FIN",
                                      "--grid", str(twice), "--out", str(tmp_path / "x.parquet")])
    assert again.exit_code == 2 and "set twice" in again.output


def test_grid_string_form_lists_state_ids(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid.alliances.NATO]\n"members-" = ",SWD,FIN"\n')
    assert read_grid(grid) == [("alliances.NATO.members-", ["", "SWD", "FIN"])]


def test_cli_errors_exit_2_and_name_the_problem(tmp_path):
    out = str(tmp_path / "s.parquet")
    for option, message in [("alliances.NATO.members-=UKR", "'UKR' is not a member of NATO"),
                            ("alliances.NATO.members+=SWD", "'SWD' is already a member of NATO"),
                            ("alliances.NATO.members+=XYZ", "unknown state id 'XYZ'"),
                            ("alliances.OTAN.members-=SWD", "no alliance with id 'OTAN'")]:
        result = CliRunner().invoke(main, ["sweep", str(NATO), "--set", option, "--trials",
                                           "100", "--out", out])
        assert result.exit_code == 2, (option, result.output)
        assert message in result.output and option.split("=")[0] in result.output
        assert "Traceback" not in result.output
        assert not Path(out).exists()


def test_target_weights_are_sweep_paths():
    """`aggressors.RUS.targets.SWD` adds or reweights one target; 0 drops it (issue 12 item 4:
    membership *and targets* in sweeps)."""
    from engine.model.config import load_scenario

    base = load_scenario("configs/nato-baltic-2024.toml")
    more = base.with_values({"aggressors.RUS.targets.SWD": 0.5})
    assert more.aggressors[0].targets["SWD"] == 0.5
    assert {k: v for k, v in more.aggressors[0].targets.items() if k != "SWD"} == \
        base.aggressors[0].targets
    fewer = base.with_values({"aggressors.RUS.targets.UKR": 0})
    assert "UKR" not in fewer.aggressors[0].targets
    mix = base.with_values({"aggressors.RUS.attack_mix.cyber": 0})
    assert "cyber" not in mix.aggressors[0].attack_mix
    with pytest.raises(UserError, match="not in targets"):
        base.with_values({"aggressors.RUS.targets.SWD": 0})
    with pytest.raises(ConfigError, match="unknown state id 'XXX'"):
        base.with_values({"aggressors.RUS.targets.XXX": 1.0})
