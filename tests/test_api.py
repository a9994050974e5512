"""The Python API (engine.api): in-memory runs, saving, editing scenarios in Python, and the CLI
as a thin layer over it (byte-identical run folders)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import tomli_w
from click.testing import CliRunner

import engine
from engine import ConfigError, UserError, load_scenario, open_run, run
from engine.cli import main
from engine.model.config import _toml_ready, scenario_hash

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
NATO = CONFIGS / "nato-baltic-2024.toml"
TABLES = ("cells.parquet", "summary.parquet", "tallies.npz", "scenario.toml")


@pytest.fixture(scope="module")
def nato():
    return load_scenario(NATO)


def test_run_in_memory_writes_nothing(nato, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(nato, trials=20_000, seed=5, threads=1)
    assert list(tmp_path.iterdir()) == []  # no results/ folder, no checkpoint
    assert result.out_dir is None
    assert isinstance(result.summary, pl.DataFrame) and isinstance(result.cells, pl.DataFrame)
    overall = result.summary.row(0, named=True)
    assert (overall["scope"], overall["trials"]) == ("overall", 20_000)
    assert result.cells.get_column("trials").sum() == 20_000
    assert result.manifest["seed"] == 5 and result.manifest["trials"] == 20_000
    assert result.manifest["scenario_hash"] == scenario_hash(nato)
    # the defaults are the scenario's own
    default = run(NATO, trials=1_000, threads=1)
    assert default.manifest["seed"] == nato.scenario.seed


def test_to_pandas(nato):
    result = run(nato, trials=5_000, seed=1, threads=1)
    frame = result.summary.to_pandas()
    assert frame.shape == result.summary.shape
    assert list(frame.columns) == result.summary.columns
    assert result.cells.to_pandas()["trials"].sum() == 5_000


def test_cli_run_equals_api_run_byte_for_byte(nato, tmp_path):
    cli_dir, saved_dir, out_dir = tmp_path / "cli", tmp_path / "saved", tmp_path / "out"
    cli = CliRunner().invoke(main, ["run", str(NATO), "--trials", "60000", "--seed", "11",
                                    "--threads", "2", "--out", str(cli_dir), "--quiet"])
    assert cli.exit_code == 0, cli.output
    result = run(nato, trials=60_000, seed=11, threads=1, block_size=1000)
    assert result.save(saved_dir) == saved_dir
    run(nato, trials=60_000, seed=11, threads=2, out=out_dir)
    for name in TABLES:
        reference = (cli_dir / name).read_bytes()
        assert (saved_dir / name).read_bytes() == reference, name
        assert (out_dir / name).read_bytes() == reference, name
    assert (saved_dir / "scenario.toml").read_bytes() == NATO.read_bytes()
    back = open_run(saved_dir)
    assert back.summary.equals(result.summary) and back.cells.equals(result.cells)
    assert back.tallies.equals(result.tallies)
    # the CLI reads the saved folder like its own
    shown = CliRunner().invoke(main, ["summarize", str(saved_dir), "--format", "csv"])
    assert shown.exit_code == 0 and shown.output == result.summary.write_csv()


def test_save_refuses_a_non_empty_folder(nato, tmp_path):
    result = run(nato, trials=2_000, seed=3, threads=1)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        result.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    result.save(tmp_path, force=True)
    assert (tmp_path / "manifest.json").is_file() and (tmp_path / "keep.txt").is_file()


def test_with_values_equals_an_edited_file(nato, tmp_path):
    edited = nato.with_values({"alliances.NATO.decision_rule": "majority",
                               "states.EST.commitment": 0.7, "scenario.mobilization_days": 20.0})
    assert edited.alliances[0].decision_rule == "majority"
    assert nato.alliances[0].decision_rule != "majority"  # the original is unchanged
    text = NATO.read_text()
    path = tmp_path / "edited.toml"
    path.write_text(edited.to_toml())
    from_file = load_scenario(path)
    assert from_file == edited and scenario_hash(from_file) == scenario_hash(edited)
    # an edited scenario keeps no file bytes: its folder gets the full TOML
    assert edited.source_text() == edited.to_toml().encode()
    assert nato.source_text().decode() == text
    # and it runs like the file
    a = run(edited, trials=20_000, seed=2, threads=1)
    b = run(path, trials=20_000, seed=2, threads=1)
    assert a.tallies.equals(b.tallies) and a.summary.equals(b.summary)


def test_with_values_validates_like_a_file(nato, tmp_path):
    bad = {"alliances.NATO.decision_rule": "plurality", "states.EST.commitment": 2}
    with pytest.raises(ConfigError) as in_python:
        nato.with_values(bad, source="edited")
    # the same edit written into a file gives the same problems
    data = nato.to_toml_dict()
    data["alliances"][0]["decision_rule"] = "plurality"
    next(s for s in data["states"] if s["id"] == "EST")["commitment"] = 2
    path = tmp_path / "edited.toml"
    path.write_text(tomli_w.dumps(_toml_ready(data)))
    with pytest.raises(ConfigError) as in_file:
        load_scenario(path)
    assert in_python.value.problems and in_python.value.problems == in_file.value.problems
    assert str(in_python.value).startswith("edited: 2 problems")
    with pytest.raises(UserError, match=r"alliances\.NOPE\.decision_rule: no alliance"):
        nato.with_values({"alliances.NOPE.decision_rule": "majority"})


def test_to_toml_round_trips(nato, tmp_path):
    path = tmp_path / "round.toml"
    path.write_text(nato.to_toml())
    again = load_scenario(path)
    assert again == nato and scenario_hash(again) == scenario_hash(nato)


def test_run_options_are_checked(nato):
    with pytest.raises(UserError, match="--trials must be ≥ 1"):
        run(nato, trials=0)
    with pytest.raises(UserError, match="executor"):
        run(nato, trials=10, executor="mpi")
    with pytest.raises(UserError, match="expected a Scenario"):
        run(42)


def test_top_level_names_are_lazy():
    assert engine.run is engine.api.run and engine.load_scenario is engine.api.load_scenario
    assert engine.Result is engine.api.Result
    with pytest.raises(AttributeError):
        engine.no_such_name  # noqa: B018


def test_checkpoint_env_does_not_write_in_memory(nato, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRISIS_CHECKPOINT_SECONDS", "0")
    result = run(nato, trials=30_000, seed=4, threads=1)
    assert list(tmp_path.iterdir()) == [] and result.summary is not None
    assert np.all(result.tallies.cells[:, 0] >= 0) and os.listdir(tmp_path) == []
