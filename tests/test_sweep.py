"""`crisis sweep`: grid points equal individual runs of the same variants (common draws)."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.core.simulate import simulate
from engine.core.tables import summary_table
from engine.errors import UserError
from engine.experiments.sweep import parse_values, read_grid, run_sweep
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario, scenario_from_dict
from engine.model.paths import set_value

NATO = Path(__file__).parent.parent / "configs" / "nato-baltic-2024.toml"


def nato_capability(tmp_path: Path | None = None):
    """The NATO scenario in v1 ``capability`` deterrence (the shipped file uses
    ``expected_response``): there the rule and the mobilization leave deterrence alone, so the
    same trials are attacked at every point and the exact comparisons below hold.  With
    ``tmp_path``, a copy of the file written there instead."""
    if tmp_path is None:
        return load_scenario(NATO).with_values({"scenario.deterrence": "capability"})
    text = NATO.read_text()
    assert text.count('deterrence = "expected_response"') == 1
    path = tmp_path / "nato-capability.toml"
    path.write_text(text.replace('deterrence = "expected_response"', 'deterrence = "capability"'))
    return path


def test_values_and_ranges():
    assert parse_values("unanimity,majority", "x") == ["unanimity", "majority"]
    assert parse_values("0:1:0.25", "x") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_values("0:1:0.1", "x")[-1] == 1.0  # the end is included despite rounding
    assert parse_values("3,5", "x") == [3, 5] and parse_values("0.5", "x") == [0.5]
    for bad in ("1:0:0.1", "0:1:0", "0:1", "a:b:c"):
        with pytest.raises(UserError):
            parse_values(bad, "x")


def test_points_equal_individual_runs():
    base = nato_capability()
    params = [("alliances.NATO.decision_rule", ["unanimity", "majority"]),
              ("states.EST.commitment", [0.5, 1.0])]
    frame, names = run_sweep(base, params, seed=3, trials=30_000)
    assert frame.height == 4 and names == [p for p, _ in params]
    for row in frame.iter_rows(named=True):
        data = copy.deepcopy(base.to_toml_dict())
        next(a for a in data["alliances"] if a["id"] == "NATO")["decision_rule"] = \
            row["alliances.NATO.decision_rule"]
        next(s for s in data["states"] if s["id"] == "EST")["commitment"] = \
            row["states.EST.commitment"]
        compiled = compile_scenario(scenario_from_dict(data))
        tallies, _ = simulate(compiled, 3, 0, 30_000)
        single = summary_table(compiled, tallies).row(0, named=True)
        for key in ("invoked", "deadlock", "deterred", "repelled", "invocation_rate",
                    "delay_p50_days", "honor_rate"):
            assert row[key] == single[key], key
    # common random numbers: majority never invokes less often than unanimity here
    by_rule = {r["alliances.NATO.decision_rule"]: r["invoked"]
               for r in frame.filter(pl.col("states.EST.commitment") == 1.0).iter_rows(named=True)}
    assert by_rule["majority"] >= by_rule["unanimity"]


def test_bad_paths_and_points_are_named():
    data = load_scenario(NATO).to_toml_dict()
    with pytest.raises(UserError, match="no alliance with id 'OTAN'"):
        set_value(data, "alliances.OTAN.integration", 0.5)
    with pytest.raises(UserError, match="unknown path"):
        set_value(data, "nations.X.y", 1)
    with pytest.raises(UserError, match="integration"):
        run_sweep(load_scenario(NATO), [("alliances.NATO.integration", [0.5, 2.0])], seed=1,
                  trials=100)


def test_grid_file_and_cli(tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\n"alliances.NATO.decision_rule" = ["unanimity", "majority"]\n'
                    '"scenario.mobilization_days" = {from = 0, to = 20, step = 10}\n')
    assert [len(v) for _, v in read_grid(grid)] == [2, 3]
    out = tmp_path / "sweep.parquet"
    nato = nato_capability(tmp_path)
    result = CliRunner().invoke(main, ["sweep", str(nato), "--grid", str(grid), "--trials",
                                       "20000", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame.height == 6 and "scenario.mobilization_days" in frame.columns
    # the delay rises by exactly the mobilization with the same draws (integration 0.8 in NATO)
    rows = frame.filter(pl.col("alliances.NATO.decision_rule") == "unanimity").sort(
        "scenario.mobilization_days")
    delays = rows["delay_mean_days"].to_list()
    assert abs((delays[1] - delays[0]) - 10 * (1 - 0.8)) < 1e-3
    again = CliRunner().invoke(main, ["sweep", str(NATO), "--grid", str(grid), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    nothing = CliRunner().invoke(main, ["sweep", str(NATO)])
    assert nothing.exit_code == 2 and "nothing to sweep" in nothing.output
