"""The CLI through click's CliRunner: exit codes, messages, files."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from engine.cli.main import main

CONFIGS = Path(__file__).parent.parent / "configs"
NATO = str(CONFIGS / "nato-baltic-2024.toml")


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, *args):
    return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_validate_ok(runner):
    result = invoke(runner, "validate", NATO)
    assert result.exit_code == 0, result.output
    assert "ok" in result.output and "34 states" in result.output


def test_validate_reports_file_key_and_problem(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    text = Path(NATO).read_text().replace("misperception = 0.5", "misperception = -0.5", 1)
    text = text.replace("[scenario]", "[scenario]\ncolour = 'red'", 1)
    bad.write_text(text)
    result = invoke(runner, "validate", bad)
    assert result.exit_code == 2
    assert f"{bad}: scenario.misperception: Input should be greater than 0" in result.output
    assert f"{bad}: scenario.colour: unknown key" in result.output
    assert "Traceback" not in result.output


def test_validate_missing_file(runner, tmp_path):
    result = invoke(runner, "validate", tmp_path / "none.toml")
    assert result.exit_code == 2
    assert "file not found" in result.output


def test_run_writes_tables_and_prints_summary(runner, tmp_path):
    out = tmp_path / "run"
    result = invoke(runner, "run", NATO, "--trials", 20000, "--seed", 7, "--threads", 2,
                    "--out", out, "--save-trials", 25)
    assert result.exit_code == 0, result.output
    assert "overall" in result.output and "M trials/s" in result.output
    for name in ("cells.parquet", "summary.parquet", "manifest.json", "tallies.npz",
                 "scenario.toml", "trials.parquet"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["trials"] == 20000
    assert manifest["trial_range"] == [0, 20000]
    assert len(manifest["scenario_hash"]) == 64
    assert {"engine", "numba", "numpy", "polars"} <= set(manifest["versions"])
    cells = pl.read_parquet(out / "cells.parquet")
    assert cells["trials"].sum() == 20000
    trials = pl.read_parquet(out / "trials.parquet")
    assert trials.height == 25 and trials["trial"].to_list() == list(range(25))
    # no temporary files are left behind
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_run_refuses_non_empty_folder_without_force(runner, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = invoke(runner, "run", NATO, "--trials", 1000, "--out", out)
    assert result.exit_code == 2
    assert "not empty" in result.output and "--force" in result.output
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "manifest.json").exists()
    result = invoke(runner, "run", NATO, "--trials", 1000, "--out", out, "--force", "--quiet")
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").exists()


def test_run_bad_scenario_writes_nothing(runner, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(Path(NATO).read_text().replace('state = "RUS"', 'state = "XXX"', 1))
    out = tmp_path / "run"
    result = invoke(runner, "run", bad, "--out", out)
    assert result.exit_code == 2
    assert "aggressors[XXX].state: unknown state id 'XXX'" in result.output
    assert not out.exists()


def test_run_rejects_bad_options(runner, tmp_path):
    result = invoke(runner, "run", NATO, "--trials", 0, "--out", tmp_path / "x")
    assert result.exit_code == 2
    assert "--trials" in result.output


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "nato"
    result = CliRunner().invoke(main, ["run", NATO, "--trials", "30000", "--out", str(out),
                                       "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def test_summarize_table(runner, finished_run):
    result = invoke(runner, "summarize", finished_run)
    assert result.exit_code == 0, result.output
    assert "30,000 trials" in result.output and "overall" in result.output


def test_summarize_json_is_machine_readable(runner, finished_run):
    result = invoke(runner, "summarize", finished_run, "--format", "json")
    assert result.exit_code == 0
    doc = json.loads(result.output)
    overall = [r for r in doc["summary"] if r["scope"] == "overall"][0]
    assert overall["trials"] == 30000
    assert 0.0 <= overall["deterrence_success_rate"] <= 1.0
    assert sum(c["trials"] for c in doc["cells"]) == 30000
    assert doc["manifest"]["trials"] == 30000


def test_summarize_csv(runner, finished_run):
    result = invoke(runner, "summarize", finished_run, "--format", "csv")
    assert result.exit_code == 0
    header = result.output.splitlines()[0].split(",")
    assert "scope" in header and "deterrence_success_rate" in header


def test_summarize_not_a_run(runner, tmp_path):
    result = invoke(runner, "summarize", tmp_path)
    assert result.exit_code == 2
    assert "no manifest.json" in result.output


def test_internal_errors_are_short_unless_debug(runner, tmp_path, monkeypatch):
    import engine.api

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(engine.api, "run", boom)
    result = invoke(runner, "run", NATO, "--out", tmp_path / "x")
    assert result.exit_code == 1
    assert "internal error: RuntimeError: kaboom" in result.output
    assert "--debug" in result.output and "Traceback" not in result.output
    result = invoke(runner, "--debug", "run", NATO, "--out", tmp_path / "x")
    assert result.exit_code == 1
    assert "Traceback" in result.output
