"""`crisis bench` as a smoke test: it runs, records history, compares and plots.

Timings are never asserted here (speed is measured in bench/, not in unit tests).
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine.cli.main import main
from engine.perf.benchmark import compare


def test_bench_quick_records_compares_and_plots(tmp_path):
    history = tmp_path / "history.jsonl"
    args = ["bench", "--quick", "--workload", "small", "--repeats", "1", "--no-baselines",
            "--history", str(history)]
    runner = CliRunner()
    first = runner.invoke(main, args, catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "M trials/s" in first.output
    second = runner.invoke(main, [*args, "--compare", "--plot", "--plot-out",
                                  str(tmp_path / "plot.png")], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "→" in second.output  # compared with the first entry
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(entries) == 2
    for e in entries:
        assert e["workload"] == "small" and e["quick"] is True
        assert e["trials_per_s"] > 0 and e["peak_rss_mb"] > 0
        assert {"date", "commit", "machine", "versions", "threads", "load_s"} <= set(e)
    assert (tmp_path / "plot.png").stat().st_size > 10_000
    assert (tmp_path / "plot.svg").exists()


def test_compare_flags_only_drops_beyond_noise():
    old = {"machine": "m", "workload": "nato", "quick": False, "threads": 2,
           "trials_per_s": 10_000_000, "noise": 0.02}
    steady = {**old, "trials_per_s": 9_300_000}  # −7%: inside 3σ = 3·√2·2% = 8.5%
    slower = {**old, "trials_per_s": 8_000_000}  # −20%
    faster = {**old, "trials_per_s": 12_000_000}
    assert compare([old], [steady])[1] is False
    lines, regressed = compare([old], [slower])
    assert regressed and "REGRESSION" in lines[0]
    lines, regressed = compare([old], [faster])
    assert not regressed and "faster" in lines[0]
    other_machine = {**slower, "machine": "elsewhere"}
    lines, regressed = compare([old], [other_machine])
    assert not regressed and "no earlier entry" in lines[0]


def test_bench_scaling_and_campaign_record_the_roofline(tmp_path):
    """The scaling and campaign workloads (quick): one entry per alliance size with the kernel's
    own counts (a trial of N members draws N − 1 member uniforms when attacked: the target
    backs without a draw), the hash-bound limit and the fraction reached, the plot of the cost
    per member draw; the campaign's period against a v1 trial."""
    history = tmp_path / "history.jsonl"
    out = tmp_path / "scaling.png"
    result = CliRunner().invoke(main, [
        "bench", "--quick", "--workload", "scaling", "--workload", "campaign", "--repeats", "1",
        "--history", str(history), "--scaling-out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    entries = [json.loads(line) for line in history.read_text().splitlines()]
    scaling = [e for e in entries if e["workload"].startswith("scaling-")]
    assert [e["members"] for e in scaling] == [8, 32, 128, 512, 2048, 4096]
    for e in scaling:
        n = e["members"]
        expected = (n - 1) * e["attacked_share"]
        assert abs(e["member_draws_per_trial"] - expected) <= 1e-3 * expected + 1e-3
        # keys (1) + deterrence (1) + members, and an outcome per attacked trial (rounded to
        # 3 decimals in the entry)
        assert e["hashes_per_trial"] == pytest.approx(
            2 + e["member_draws_per_trial"] + e["attacked_share"], abs=2e-3)
        assert e["roofline_fraction"] == pytest.approx(
            e["trials_per_s"] / e["hash_limit_trials_per_s"], abs=2e-3)
        assert e["roofline_fraction"] > 0
        assert 0.95 < e["attacked_share"] < 0.99  # P(deterred) ≈ 3% at every N
        assert e["scaling_spread"] >= 1.0 and e["ns_per_member_draw"] > 0
    assert out.stat().st_size > 10_000 and out.with_suffix(".svg").exists()
    (campaign,) = [e for e in entries if e["workload"] == "campaign"]
    assert campaign["steps"] == 20 and campaign["periods_per_s"] > 0
    # 20 keys and at least a crisis draw per period and trajectory, per the kernel's count
    assert campaign["hashes_per_trial"] >= 40 and campaign["member_draws_per_trial"] > 0
    assert campaign["roofline_fraction"] == pytest.approx(
        campaign["trials_per_s"] / campaign["hash_limit_trials_per_s"], abs=2e-3)
    assert campaign["period_cost_vs_v1_trial"] == pytest.approx(
        campaign["v1_trials_per_s"] / campaign["periods_per_s"], abs=2e-3)
