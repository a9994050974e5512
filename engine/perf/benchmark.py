"""``crisis bench``: standard workloads, throughput appended to a tracked history.

Besides trials/s, every kernel workload reports its hash-bound limit (:mod:`.roofline`: the
hashes it needs per trial, counted by the kernel, against this machine's hashes per second
measured in the same run) and the fraction of that limit it reaches; ``scaling`` measures the
cost per member draw for alliances of 8 … 4,096 members, ``campaign`` the cost of a campaign
period against a v1 trial of the same scenario.

Each workload is measured ``repeats`` times with all threads and with one thread; the median
is the figure, the coefficient of variation the noise.  A history entry is one JSON line
per workload: date, commit, machine, versions, threads, trials/s, compile and load time, peak
RSS.  ``--compare`` prints the change against the previous entry of the same machine, workload
and mode and flags a regression beyond the measured noise.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from kernels.layout import C_ATTACKED, C_TRIALS

from ..errors import UserError
from .workloads import WORKLOADS, workload

DEFAULT_HISTORY = Path("bench") / "history.jsonl"
# trials per measurement: (full, quick)
KERNEL_TRIALS = {"small": (8_000_000, 400_000), "nato": (8_000_000, 400_000),
                 "nato-capability": (8_000_000, 400_000), "large": (3_000_000, 150_000)}
REFERENCE_TRIALS = {"small": (400_000, 20_000), "nato": (400_000, 20_000),
                    "nato-capability": (400_000, 20_000), "large": (100_000, 5_000)}
PYTHON_TRIALS = {"small": (20_000, 1_000), "nato": (20_000, 1_000),
                 "nato-capability": (20_000, 1_000), "large": (5_000, 300)}
MIN_REGRESSION = 0.05  # never flag a change smaller than 5%: this machine is noisy (±15–20%)


@dataclass
class Measured:
    median: float
    noise: float


def machine_id() -> str:
    """CPU model and core count: stable across reboots and hostnames."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model} ×{os.cpu_count()}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rate(run, trials: int, repeats: int) -> Measured:
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(trials)
        rates.append(trials / (time.perf_counter() - t0))
    median = statistics.median(rates)
    noise = statistics.stdev(rates) / median if len(rates) > 1 else 0.0  # coefficient of variation
    return Measured(median, noise)


def cold_compile_seconds() -> float:
    """Seconds to compile the kernels from scratch, in a fresh process with an empty cache."""
    code = ("import time; t=time.perf_counter();"
            "from engine.perf.workloads import workload; from engine.core.simulate import simulate;"
            "simulate(workload('small'), 1, 0, 10); print(time.perf_counter()-t)")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=900, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_benchmarks(names=WORKLOADS, *, quick: bool = False, repeats: int | None = None,
                   baselines: bool = True, cold_compile: bool | None = None,
                   echo=print) -> list[dict]:
    """Measure every workload; returns one history entry per workload."""
    import numba

    from kernels.layout import N_COUNTERS

    from ..core.simulate import deterrence_tables, set_threads, simulate
    from ..oracles.reference import simulate_reference
    from .roofline import hash_rate, measure_campaign, measure_scaling, roofline

    repeats = repeats or (2 if quick else 5)
    pick = 1 if quick else 0
    threads = set_threads(None)
    compile_s = None
    if cold_compile if cold_compile is not None else not quick:
        echo("compiling the kernels from scratch (fresh process, empty cache)…")
        compile_s = round(cold_compile_seconds(), 2)
    entries = []
    base = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "machine": machine_id(),
        "versions": {"numba": numba.__version__, "python": platform.python_version(),
                     "engine": _engine_version()},
        "quick": quick,
        "repeats": repeats,
    }
    hashes_per_s = hash_rate(quick)
    echo(f"hashing: {hashes_per_s / 1e6:.0f} M hashes/s on {threads} threads "
         f"({1e9 / hashes_per_s:.2f} ns each)")
    for name in names:
        if name == "scaling":
            entries += measure_scaling({**base, "threads": threads}, quick=quick,
                                       repeats=repeats, hashes_per_s=hashes_per_s, echo=echo)
            continue
        if name == "campaign":
            entries.append(measure_campaign({**base, "threads": threads}, quick=quick,
                                            repeats=min(repeats, 3),
                                            hashes_per_s=hashes_per_s, echo=echo))
            continue
        compiled = workload(name)
        t0 = time.perf_counter()
        simulate(compiled, 1, 0, 10)  # load from the cache (or compile) before timing
        load_s = time.perf_counter() - t0
        n = KERNEL_TRIALS[name][pick]
        # step 2 is computed once per run (the pilot of expected-response deterrence is per
        # cell, not per trial): timed apart, then every measurement reuses it
        t0 = time.perf_counter()
        step2 = deterrence_tables(compiled, 1, cache=False)
        pilot_s = time.perf_counter() - t0
        # the share of trials that reach the consultation (the costly part of a trial): the
        # deterrence mode changes it, so trials/s of two modes compare different work
        counters = np.zeros(N_COUNTERS, np.int64)
        probe, _ = simulate(compiled, 1, 0, 200_000, deterrence=step2, counters=counters)
        attacked = float(probe.cells[:, C_ATTACKED].sum() / probe.cells[:, C_TRIALS].sum())

        def kernel(trials, compiled=compiled, step2=step2):
            simulate(compiled, 1, 0, trials, deterrence=step2)

        full = _rate(kernel, n, repeats)
        set_threads(1)
        single = _rate(kernel, n // max(1, threads), repeats)
        set_threads(None)
        entry = {
            **base,
            "workload": name,
            "deterrence": step2.mode,
            "deterrence_s": round(pilot_s, 3),
            "attacked_share": round(attacked, 4),
            "cells": compiled.n_cells,
            "threads": threads,
            "trials": n,
            "trials_per_s": round(full.median),
            "noise": round(full.noise, 4),
            "trials_per_s_1_thread": round(single.median),
            "thread_scaling": round(full.median / single.median, 3),
            "load_s": round(load_s, 3),
            "compile_s": compile_s,
        }
        if baselines:
            ref = _rate(lambda k, c=compiled, d=step2: simulate_reference(c, 1, 0, k, deterrence=d),
                        REFERENCE_TRIALS[name][pick], max(1, repeats // 2))
            entry["reference_trials_per_s"] = round(ref.median)
            entry["speedup_vs_reference"] = round(full.median / ref.median, 2)
            from ..oracles.python_loop import simulate_python

            loop = _rate(lambda k, c=compiled, d=step2: simulate_python(c, 1, 0, k, deterrence=d),
                         PYTHON_TRIALS[name][pick], 1)
            entry["python_loop_trials_per_s"] = round(loop.median)
            entry["speedup_vs_python_loop"] = round(full.median / loop.median, 1)
        entry["attacked_trials_per_s"] = round(full.median * attacked)
        entry.update(roofline(entry, counters, 200_000, hashes_per_s))
        entry["peak_rss_mb"] = round(peak_rss_mb(), 1)
        entries.append(entry)
        echo(_line(entry))
    by_name = {e["workload"]: e for e in entries}
    if "nato" in by_name and "nato-capability" in by_name:
        # the same scenario in its two deterrence modes, measured in this run
        nato, cap = by_name["nato"], by_name["nato-capability"]
        ratio = nato["trials_per_s"] / cap["trials_per_s"]
        per_attack = nato["attacked_trials_per_s"] / cap["attacked_trials_per_s"]
        nato["ratio_vs_capability"] = round(ratio, 3)
        nato["attacked_ratio_vs_capability"] = round(per_attack, 3)
        echo(f"  nato ({nato['deterrence']}) / nato-capability: ×{ratio:.3f} trials/s, "
             f"×{per_attack:.3f} attacked trials/s (attacked {nato['attacked_share']:.1%} vs "
             f"{cap['attacked_share']:.1%})")
    return entries


def _engine_version() -> str:
    from ..version import __version__

    return __version__


def _line(e: dict) -> str:
    text = (f"{e['workload']:>6}: {e['trials_per_s'] / 1e6:7.2f} M trials/s on {e['threads']} "
            f"threads (cv {e['noise'] * 100:.0f}%), "
            f"{e['trials_per_s_1_thread'] / 1e6:.2f} M/s on 1 (×{e['thread_scaling']:.2f})")
    if "deterrence" in e:
        text += f"; deterrence {e['deterrence']} ({e['deterrence_s']:.2f} s once per run)"
    if "roofline_fraction" in e:
        text += (f"; {e['hashes_per_trial']:.1f} hashes per trial: "
                 f"{e['roofline_fraction']:.2f} of the hash-bound limit "
                 f"({e['hash_limit_trials_per_s'] / 1e6:.1f} M/s)")
    if "speedup_vs_reference" in e:
        text += (f"; reference {e['reference_trials_per_s'] / 1e6:.2f} M/s "
                 f"(×{e['speedup_vs_reference']:.1f}), python loop "
                 f"{e['python_loop_trials_per_s'] / 1e3:.1f} k/s "
                 f"(×{e['speedup_vs_python_loop']:.0f})")
    return text


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not a JSON line ({err.msg})") from None
    return entries


def append_history(path: Path, entries: list[dict]) -> None:
    """Append entries as JSON lines (one write, flushed and synced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
        fh.flush()
        os.fsync(fh.fileno())


def compare(history: list[dict], entries: list[dict]) -> tuple[list[str], bool]:
    """Lines comparing each entry with the previous one of the same machine, workload, mode and
    threads; and whether any is a regression: a drop beyond max(5%, 3σ), σ the two entries'
    coefficients of variation combined (√(cv₁² + cv₂²))."""
    lines = []
    regressed = False
    for e in entries:
        same = [h for h in history if h.get("machine") == e["machine"]
                and h.get("workload") == e["workload"] and h.get("quick") == e["quick"]
                and h.get("threads") == e["threads"]
                and h.get("deterrence", "capability") == e.get("deterrence", "capability")]
        if not same:
            lines.append(f"{e['workload']:>6}: no earlier entry for this machine and mode")
            continue
        prev = same[-1]
        change = e["trials_per_s"] / prev["trials_per_s"] - 1.0
        sigma = math.hypot(e.get("noise", 0.0), prev.get("noise", 0.0))
        tolerance = max(MIN_REGRESSION, 3.0 * sigma)
        flag = ""
        if change < -tolerance:
            flag = "  REGRESSION"
            regressed = True
        elif change > tolerance:
            flag = "  faster"
        lines.append(
            f"{e['workload']:>6}: {prev['trials_per_s'] / 1e6:.2f} → {e['trials_per_s'] / 1e6:.2f}"
            f" M trials/s ({change * 100:+.1f}%, noise threshold ±{tolerance * 100:.0f}%; "
            f"previous {prev.get('date', '?')} {prev.get('commit') or ''}){flag}"
        )
    return lines, regressed


def plot_history(history: list[dict], out: Path, machine: str | None = None) -> Path:
    """Trials/s over time per workload (full runs; one machine) as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    machine = machine or machine_id()
    # the standard workloads (scaling has its own figure; a campaign counts trajectories)
    history = [h for h in history if not h.get("workload", "").startswith("scaling-")
               and h.get("workload") != "campaign"]
    rows = [h for h in history if h.get("machine") == machine and not h.get("quick")]
    if not rows:
        rows = [h for h in history if h.get("machine") == machine]
    if not rows:
        raise UserError(f"no history entries for machine {machine!r} to plot")
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    for name in sorted({h["workload"] for h in rows}):
        pts = [h for h in rows if h["workload"] == name]
        dates = [datetime.fromisoformat(h["date"]) for h in pts]
        rate = [h["trials_per_s"] / 1e6 for h in pts]
        err = [h["trials_per_s"] * h.get("noise", 0.0) / 2e6 for h in pts]
        ax.errorbar(dates, rate, yerr=err, marker="o", capsize=3, label=name)
    all_dates = [datetime.fromisoformat(h["date"]) for h in rows]
    if max(all_dates) - min(all_dates) < timedelta(days=1):
        ax.set_xlim(min(all_dates) - timedelta(hours=12), max(all_dates) + timedelta(hours=12))
    ax.set_ylabel("million trials / s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"crisis-engine throughput — {machine}", fontsize=10)
    ax.legend(title="workload")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return save_figure(fig, out)


def save_figure(fig, out: Path) -> Path:
    """Save a benchmark figure as ``out`` .png and .svg (folders made), close it; the PNG's
    path."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=120)
    fig.savefig(out.with_suffix(".svg"))
    plt.close(fig)
    return out.with_suffix(".png")
