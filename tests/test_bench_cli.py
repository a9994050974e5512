"""`crisis bench` as a smoke test: it runs, records history, compares and plots.

Timings are never asserted here (speed is measured in bench/, not in unit tests).
"""

from __future__ import annotations

import json

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
