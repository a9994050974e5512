"""What the kernel could reach, and how its cost grows: the hashing roofline, the scaling
workload and the campaign's cost per period.

* **Roofline.** Every random number of the engine is one SplitMix64 hash of a key and a slot
  (:mod:`kernels.rng`); the trial kernel counts what it hashes (``counters`` of
  :func:`engine.core.simulate.simulate`).  :func:`hash_rate` measures, on this machine and with
  the run's threads, how many hashes per second the kernel's own pattern (draws written to a
  row, keys gathered by index) sustains with nothing else to do.  A workload that needs ``h``
  hashes per trial can therefore not exceed ``hash_rate / h`` trials/s: the *hash-bound limit*;
  the fraction achieved is the measured rate over that limit.
* **Scaling.** One alliance of ``N`` members (unanimity, 5 rounds, one aggressor, P(deterred)
  ≈ 3% at every N): cost per trial against the number of member draws per trial, for N = 8 …
  4,096.
* **Campaigns.** A 20-period campaign (design §7) against v1 trials of the same scenario
  (its ``[campaign]`` table removed), measured in the same run: the cost of a period over the
  cost of a trial.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from numba import get_num_threads, get_thread_id, njit, prange

from kernels.rng import seed_base, trial_key, uniform

SCALING_MEMBERS = (8, 32, 128, 512, 2048, 4096)
SCALING_DRAWS = (200_000_000, 10_000_000)  # member draws per measurement: (full, quick)
HASH_DRAWS = (1 << 28, 1 << 24)
ROW = 256  # draws per row in the hash measurement (the kernel's rows are up to BATCH long)


@njit(cache=True, parallel=True)
def _hash_rows(n_rows, slots, out):
    """``n_rows`` rows of ``ROW`` trials, each trial drawing ``slots`` uniforms into its row of
    ``out`` (T, ROW) the way the kernel fills a member's draws; returns a checksum."""
    base = seed_base(1)
    keys = np.empty(ROW, dtype=np.uint64)
    for q in range(ROW):
        keys[q] = trial_key(base, q)
    for b in prange(n_rows):
        row = out[get_thread_id()]
        for slot in range(slots):
            for q in range(ROW):
                row[q] = uniform(keys[q], b * slots + slot)
    total = 0.0
    for t in range(out.shape[0]):
        for q in range(ROW):
            total += out[t, q]
    return total


def hash_rate(quick: bool = False, repeats: int = 3) -> float:
    """Hashes (uniforms) per second on this machine with every Numba thread (the median of
    ``repeats``)."""
    draws = HASH_DRAWS[1 if quick else 0]
    slots = 64
    n_rows = draws // (ROW * slots)
    out = np.zeros((get_num_threads(), ROW), np.float64)
    _hash_rows(2, slots, out)  # compiled and warm
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _hash_rows(n_rows, slots, out)
        rates.append(n_rows * slots * ROW / (time.perf_counter() - t0))
    return float(np.median(rates))


def roofline(entry: dict, counters: np.ndarray, trials: int, rate: float) -> dict:
    """The hash-bound fields of a history entry: hashes and member draws per trial (from the
    kernel's counters over ``trials`` trials), the limit in trials/s and the fraction of it
    that ``entry['trials_per_s']`` reaches."""
    from kernels.layout import COUNT_KEYS, COUNT_MEMBER_DRAWS, COUNT_UNIFORMS

    hashes = float(counters[COUNT_UNIFORMS] + counters[COUNT_KEYS]) / trials
    limit = rate / hashes
    return {
        "hashes_per_trial": round(hashes, 3),
        "uniforms_per_trial": round(float(counters[COUNT_UNIFORMS]) / trials, 3),
        "member_draws_per_trial": round(float(counters[COUNT_MEMBER_DRAWS]) / trials, 3),
        "hash_ns": round(1e9 / rate, 3),
        "hash_limit_trials_per_s": round(limit),
        "roofline_fraction": round(entry["trials_per_s"] / limit, 3),
    }


def scaling_world(n: int) -> dict:
    """One alliance of ``n`` members with equal capabilities (summing to 1) and commitment 0.5,
    unanimity, 5 rounds of 2 days; one aggressor of capability 1 and resolve 3.2 attacking the
    first member conventionally, so P(deterred) = Φ(ln(0.5 + 0.5/n) − ln 3.2) ≈ 3% whatever
    ``n`` (v1's capability deterrence, misperception 1)."""
    states = [{"id": f"M{i:04d}", "capability": 1.0 / n, "commitment": 0.5} for i in range(n)]
    states.append({"id": "AGG", "capability": 1.0, "commitment": 0.5})
    return {
        "scenario": {"name": f"scaling-{n}", "seed": 1, "deterrence": "capability",
                     "misperception": 1.0},
        "states": states,
        "alliances": [{"id": "ALLY", "members": [s["id"] for s in states[:-1]],
                       "decision_rule": "unanimity", "round_days": 2.0, "max_rounds": 5}],
        "aggressors": [{"state": "AGG", "resolve": 3.2, "targets": {"M0000": 1.0},
                        "attack_mix": {"conventional": 1.0}}],
        "attack_types": {"conventional": {"severity": 1.0}},
    }


def timed(run, repeats: int) -> tuple[float, float]:
    """The median seconds of ``repeats`` calls of ``run()`` and their coefficient of
    variation."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    noise = float(np.std(times, ddof=1) / median) if len(times) > 1 else 0.0
    return median, noise


def measure_scaling(base: dict, *, quick: bool, repeats: int, hashes_per_s: float,
                    members=SCALING_MEMBERS, echo=print) -> list[dict]:
    """One history entry per alliance size: trials/s, member draws per trial, wall-clock ns
    per member draw, the roofline; the last entry also holds the spread of the cost per member
    draw over every size (``scaling_spread``: largest over smallest)."""
    from kernels.layout import C_ATTACKED, C_TRIALS, COUNT_MEMBER_DRAWS, N_COUNTERS

    from ..core.simulate import deterrence_tables, simulate
    from ..model.compile import compile_scenario
    from ..model.config import scenario_from_dict

    draws = SCALING_DRAWS[1 if quick else 0]
    entries = []
    for n in members:
        c = compile_scenario(scenario_from_dict(scaling_world(n), f"<workload scaling-{n}>"))
        step2 = deterrence_tables(c, 1, cache=False)
        simulate(c, 1, 0, 1000, deterrence=step2)  # compiled and warm
        trials = max(20_000, draws // n)
        # the timed runs count their own work (a few integer additions per trial)
        counters = np.zeros(N_COUNTERS, np.int64)
        last = {}

        def run(c=c, step2=step2, trials=trials, counters=counters, last=last):
            last["tallies"], _ = simulate(c, 1, 0, trials, deterrence=step2, counters=counters)

        seconds, noise = timed(run, repeats)
        tallies = last["tallies"]
        rate = trials / seconds
        member_draws = float(counters[COUNT_MEMBER_DRAWS]) / (trials * repeats)
        entry = {**base, "workload": f"scaling-{n}", "members": n, "deterrence": "capability",
                 "trials": trials, "trials_per_s": round(rate), "noise": round(noise, 4),
                 "attacked_share": round(float(tallies.cells[:, C_ATTACKED].sum()
                                               / tallies.cells[:, C_TRIALS].sum()), 4),
                 "ns_per_member_draw": round(1e9 / rate / member_draws, 3)}
        entry.update(roofline(entry, counters, trials * repeats, hashes_per_s))
        entries.append(entry)
        echo(f"scaling-{n:>4}: {rate / 1e6:8.3f} M trials/s, {member_draws:7.1f} member draws "
             f"per trial, {entry['ns_per_member_draw']:.2f} ns per member draw, "
             f"{entry['roofline_fraction']:.2f} of the hash-bound limit")
    costs = [e["ns_per_member_draw"] for e in entries]
    spread = max(costs) / min(costs)
    # the cost that does not grow with N: fit cost per trial = a + b · member draws
    x = np.array([e["member_draws_per_trial"] for e in entries])
    y = np.array([1e9 / e["trials_per_s"] for e in entries])
    b, a = np.polyfit(x, y, 1)
    for e in entries:
        e["scaling_spread"] = round(spread, 3)
        e["fixed_ns_per_trial"] = round(float(a), 2)
        e["marginal_ns_per_member_draw"] = round(float(b), 3)
    echo(f"scaling: cost per member draw from {min(costs):.2f} to {max(costs):.2f} ns "
         f"(×{spread:.2f} over N = {members[0]} … {members[-1]}); fitted per trial "
         f"{a:.1f} ns + {b:.2f} ns per member draw")
    return entries


def plot_scaling(entries: list[dict], out: Path) -> Path:
    """Cost per member draw (wall-clock ns, all threads) against the alliance size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [e["members"] for e in entries]
    cost = [e["ns_per_member_draw"] for e in entries]
    limit = [e["hash_ns"] * e["hashes_per_trial"] / e["member_draws_per_trial"]
             for e in entries]
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    ax.plot(n, cost, marker="o", color="#0072B2", label="measured")
    ax.plot(n, limit, ls="--", color="#D55E00", label="hash-bound limit")
    ax.set_xscale("log", base=2)
    ax.set_ylim(bottom=0, top=max(cost) * 1.2)
    ax.set_xlabel("members of the alliance (N)")
    ax.set_ylabel("ns per member draw (wall clock)")
    ax.set_title(f"cost per member draw, N = {n[0]} … {n[-1]} "
                 f"(spread ×{entries[-1]['scaling_spread']:.2f})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    from .benchmark import save_figure

    return save_figure(fig, out)


CAMPAIGN_TRAJECTORIES = (1_000_000, 50_000)


def measure_campaign(base: dict, *, quick: bool, repeats: int, hashes_per_s: float,
                     echo=print) -> dict:
    """The shipped 20-quarter NATO campaign (configs/nato-hybrid-campaign-2024.toml) against
    v1 trials of the same scenario without its ``[campaign]`` table, in the same run; the
    roofline per trajectory (20 periods)."""
    from kernels.layout import N_COUNTERS

    from ..core.simulate import deterrence_tables, simulate, simulate_campaign
    from ..model.compile import compile_scenario
    from ..model.config import load_scenario
    from .workloads import CONFIGS

    scenario = load_scenario(CONFIGS / "nato-hybrid-campaign-2024.toml")
    seed = scenario.scenario.seed
    c = compile_scenario(scenario)
    v1 = compile_scenario(scenario.model_copy(update={"campaign": None}))
    step2 = deterrence_tables(c, seed)
    step2_v1 = deterrence_tables(v1, seed)
    simulate_campaign(c, seed, 0, 100, deterrence=step2)
    simulate(v1, seed, 0, 1000, deterrence=step2_v1)
    n = CAMPAIGN_TRAJECTORIES[1 if quick else 0]
    steps = c.campaign.steps
    counters = np.zeros(N_COUNTERS, np.int64)  # counted by the timed runs
    seconds, noise = timed(
        lambda: simulate_campaign(c, seed, 0, n, deterrence=step2, counters=counters), repeats)
    v1_trials = n * steps
    v1_seconds, v1_noise = timed(lambda: simulate(v1, seed, 0, v1_trials, deterrence=step2_v1),
                                 repeats)
    periods = n * steps / seconds
    v1_rate = v1_trials / v1_seconds
    entry = {**base, "workload": "campaign", "deterrence": step2.mode, "trials": n,
             "steps": steps, "trials_per_s": round(n / seconds),
             "periods_per_s": round(periods), "noise": round(noise, 4),
             "campaign_s": round(seconds, 3), "v1_trials_per_s": round(v1_rate),
             "v1_noise": round(v1_noise, 4),
             "period_cost_vs_v1_trial": round(v1_rate / periods, 3)}
    entry.update(roofline(entry, counters, n * repeats, hashes_per_s))
    echo(f"campaign: {n:,} trajectories × {steps} periods in {seconds:.1f} s = "
         f"{periods / 1e6:.2f} M trial-periods/s; v1 trials of the same scenario "
         f"{v1_rate / 1e6:.2f} M/s: a period costs ×{entry['period_cost_vs_v1_trial']:.2f} "
         f"a trial; {entry['hashes_per_trial']:.1f} hashes per trajectory, "
         f"{entry['roofline_fraction']:.2f} of the hash-bound limit")
    return entry
