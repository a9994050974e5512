"""Calibration: observed honor rates from the real alliance-wars data, and a fit that hits its
target within the uncertainty it reports."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.experiments.calibrate import apply_parameter, calibrate, measure_of, observed_honor_rate
from engine.model.config import load_scenario

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "berkemeier-fuhrmann-2018-alliance-wars.csv"
NATO = ROOT / "configs" / "nato-baltic-2024.toml"
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is absent")


@needs_data
def test_observed_honor_rates_match_the_published_shares():
    overall = observed_honor_rate(DATA)
    assert overall.n == 139 and round(overall.rate, 3) == 0.496  # "about 50%" (B&F 2018)
    before = observed_honor_rate(DATA, era=(1816, 1944))
    after = observed_honor_rate(DATA, era=(1945, 2003))
    assert before.n + after.n == 139
    assert 0.6 < before.rate < 0.72 and 0.15 < after.rate < 0.25  # two thirds vs a fifth
    defense = observed_honor_rate(DATA, obligation="defense")
    assert 0 < defense.n < 139
    llm = observed_honor_rate(DATA, coding="LLM")
    assert llm.n > 0 and llm.rate != overall.rate


def test_fit_hits_the_target_within_its_reported_uncertainty():
    scenario = load_scenario(NATO)
    fit = calibrate(scenario, measure="honor_rate", target=0.35, parameter="commitment_scale",
                    seed=1, trials=100_000)
    assert fit.interval[0] < fit.value < fit.interval[1] and fit.se > 0
    assert abs(fit.achieved - 0.35) < 3 * fit.se_measure  # bisection reached the target
    # an independent run (another seed) at the fitted value lands within the reported error:
    # the difference of two estimates has sd √2·se; 4.5 of those → false failure ≈ 7e-6
    fresh, _ = measure_of(apply_parameter(scenario, fit.parameter, fit.value), "honor_rate",
                          seed=99, trials=100_000)
    assert abs(fresh - 0.35) <= 4.5 * math.sqrt(2) * fit.se_measure
    # and the fitted scale moves commitments the right way
    base, _ = measure_of(scenario, "honor_rate", seed=1, trials=100_000)
    assert (fit.value > 1) == (base < 0.35)


def test_cli_writes_a_calibrated_scenario(tmp_path):
    out = tmp_path / "calibrated.toml"
    result = CliRunner().invoke(main, ["calibrate", str(NATO), "--target", "honor_rate=0.4",
                                       "--trials", "50000", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "commitment_scale =" in result.output and "95% interval" in result.output
    calibrated = load_scenario(out)
    original = load_scenario(NATO)
    ratios = {a.commitment / b.commitment for a, b in zip(calibrated.states, original.states,
                                                           strict=True)
              if b.commitment > 0 and a.commitment < 1}
    assert len({round(r, 9) for r in ratios}) == 1  # one common scale
    assert out.read_text().startswith("# Calibrated from")


def test_unreachable_target_and_bad_input_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("CRISIS_DATA_DIR", str(tmp_path / "empty-cache"))  # no data here
    runner = CliRunner()
    result = runner.invoke(main, ["calibrate", str(NATO), "--target", "honor_rate=0.99",
                                  "--trials", "20000", "--bounds", "0:0.5"])
    assert result.exit_code == 2 and "out of reach" in result.output
    result = runner.invoke(main, ["calibrate", str(NATO), "--target", "honour=0.5"])
    assert result.exit_code == 2 and "unknown measure" in result.output
    result = runner.invoke(main, ["calibrate", str(NATO), "--target", "honor_rate=observed"])
    assert result.exit_code == 2 and "--observations" in result.output
