"""Shared helpers for the statistical tests: build small scenario dicts and run them."""

from __future__ import annotations

import copy
import math

import numpy as np
from scipy.stats import binom, norm

from engine.core.simulate import simulate
from engine.model.compile import compile_scenario
from engine.model.config import scenario_from_dict

# Tolerance of every statistical check, in standard errors of the estimate (computed from the
# closed-form p and n).  4.5 σ → two-sided false-failure rate ALPHA = 6.8e-6 per check under the
# normal approximation, used when n·p·(1 − p) ≥ 1e3 (skewness ≤ 0.03, so the approximation is
# tight); rarer events use the exact binomial interval with the same ALPHA.
Z = 4.5
ALPHA = 2.0 * norm.sf(Z)


def state(sid, capability=1.0, commitment=1.0, **extra):
    """One ``[[states]]`` entry."""
    return {"id": sid, "capability": capability, "commitment": commitment, **extra}


def alliance(aid, members, **extra):
    """One ``[[alliances]]`` entry (config defaults: defense, unanimity, 1-day rounds, 5)."""
    return {"id": aid, "members": list(members), **extra}


def aggressor(sid, targets, attack_mix=None, **extra):
    """One ``[[aggressors]]`` entry; ``targets`` a dict or a list (equal weights)."""
    if not isinstance(targets, dict):
        targets = {t: 1.0 for t in targets}
    return {"state": sid, "targets": targets, "attack_mix": attack_mix or {"conv": 1.0}, **extra}


def scenario(states, alliances=(), aggressors=(), attack_types=None, exposure=None, **settings):
    """A scenario dict; ``settings`` go into ``[scenario]``; default attack type ``conv``."""
    data = {
        "scenario": {"name": "test", **settings},
        "states": [dict(s) for s in states],
        "alliances": [dict(a) for a in alliances],
        "aggressors": [dict(a) for a in aggressors],
        "attack_types": copy.deepcopy(attack_types) if attack_types else {"conv": {}},
    }
    if exposure is not None:
        data["exposure"] = dict(exposure)
    return data


# A standard world for consultation tests: aggressor AGG with capability 1e6 and resolve 1e6
# (P(deterred) = Φ(ln(R / 1e12)/0.5) < 1e-40, so every trial is attacked), target T, and
# members M1..Mn of one defense alliance "A" together with T.
BIG = 1e6


def members_world(commitments, rule="unanimity", max_rounds=5, round_days=1.0, caps=None,
                  state_extra=None, alliance_extra=None, target_extra=None, attack=None,
                  exposure=None, **settings):
    """Scenario dict: T (capability 1) plus members M1..Mn (``commitments``, capabilities ``caps``,
    default 1) in alliance A; AGG attacks T only with attack type ``conv`` (``attack`` keys)."""
    state_extra = state_extra or {}
    caps = caps or [1.0] * len(commitments)
    states = [state("T", 1.0, 1.0, **(target_extra or {}))]
    names = []
    for i, (c, cap) in enumerate(zip(commitments, caps, strict=True), start=1):
        name = f"M{i}"
        names.append(name)
        states.append(state(name, cap, c, **state_extra.get(name, {})))
    states.append(state("AGG", BIG, 0.0))
    al = alliance("A", ["T", *names], decision_rule=rule, max_rounds=max_rounds,
                  round_days=round_days, **(alliance_extra or {}))
    return scenario(states, [al], [aggressor("AGG", ["T"], resolve=BIG)],
                    attack_types={"conv": dict(attack or {})}, exposure=exposure, **settings)


def run(data, trials, seed=12345, save_trials=0):
    """Compile and simulate ``trials`` trials from 0; returns (Tallies, records)."""
    compiled = compile_scenario(scenario_from_dict(data))
    return simulate(compiled, seed, 0, trials, save_trials=save_trials)


def check_proportion(k, n, p, z=Z, what=""):
    """Assert |k/n − p| ≤ z·sqrt(p(1 − p)/n) (binomial standard error at the closed-form p).

    When n·p·(1 − p) < 1e3 the normal approximation is too skewed for a 4.5 σ tail, so the check
    is the exact binomial interval instead: P(K < lo) + P(K > hi) ≤ 2·norm.sf(z)."""
    n = int(n)
    assert n > 0, f"{what}: no trials"
    if n * p * (1.0 - p) < 1e3:
        alpha = 2.0 * norm.sf(z)
        lo, hi = binom.ppf(alpha / 2, n, p), binom.isf(alpha / 2, n, p)
        assert lo <= k <= hi, (
            f"{what}: count {k} of n={n} outside the exact binomial interval [{lo:.0f}, {hi:.0f}]"
            f" at closed form p={p:.3g}"
        )
        return
    se = math.sqrt(p * (1.0 - p) / n)
    est = k / n
    assert abs(est - p) <= z * se, (
        f"{what}: estimate {est:.6f} (k={k}, n={n}) vs closed form {p:.6f}; "
        f"|diff| = {abs(est - p):.3g} > {z}·se = {z * se:.3g}"
    )


def check_mean(total, n, mean, var, z=Z, slack=0.0, what=""):
    """Assert |total/n − mean| ≤ z·sqrt(var/n) + slack (slack: deterministic rounding)."""
    n = int(n)
    assert n > 0, f"{what}: no trials"
    est = total / n
    tol = z * math.sqrt(var / n) + slack
    assert abs(est - mean) <= tol, (
        f"{what}: estimate {est:.6f} (n={n}) vs closed form {mean:.6f}; "
        f"|diff| = {abs(est - mean):.3g} > tol {tol:.3g}"
    )


def tallies_equal(a, b):
    """Exact equality of every tally array."""
    return all(np.array_equal(x, y) for x, y in (
        (a.cells, b.cells), (a.cell_hist, b.cell_hist),
        (a.alliances, b.alliances), (a.alliance_hist, b.alliance_hist)))


def unanimity_cdf(p):
    """P(unanimity reached by round r), r = 1..R, for per-member per-round backing chances
    ``p`` of shape (N, R) (members besides the target): Π_i (1 − Π_{s ≤ r} (1 − p[i, s]))."""
    p = np.atleast_2d(np.asarray(p, dtype=np.float64))
    return np.prod(1.0 - np.cumprod(1.0 - p, axis=1), axis=0)
