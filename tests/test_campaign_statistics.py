"""Campaigns (design §7, issue 15 item 4): the campaign kernel against a small independent
simulation of §7 (tests/campaign_independent.py: NumPy's generator, literal per-round draws,
read from the scenario dict), in distribution, period by period; monotone effects of the knobs
(common random numbers: one seed); and knob neutrality (a knob set to its neutral value is the
knob absent, tally for tally)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from scipy.stats import norm

from engine.core.simulate import deterrence_tables, simulate_campaign
from kernels.layout import (
    AP_ALIVE,
    C_ATTACKED,
    C_DETERRED,
    C_SUCCEEDED,
    P_EXITS,
    P_JOINS,
    P_REPUTATION_SUM,
    P_RESOLVE_SUM,
    RESOLVE_SCALE,
    SHARE_SCALE,
)
from tests import campaign_independent
from tests.oracle_scenarios import compiled, make_scenario

# Every comparison is a two-sample z-test, |kernel − independent| < Z · SE, SE² the sum of both
# means' squared standard errors: the independent run's from its 5,000 trajectories, the
# kernel's from the spread of 20 batch means of 1,000.  Z = 4.8 is a two-sided normal tail of
# 1.6e-6; the kernel's error carries a fifth of SE² and is estimated with 19 degrees of freedom,
# which raises the tail to 2.1e-6 per check (E over χ²₁₉ of the normal tail).  The agreement
# tests make 219 checks and assert at most CHECKS, so Bonferroni bounds the family-wise
# false-failure rate by CHECKS · 2.1e-6 < 1e-3 (the normal approximation of rare counts, such as
# early dissolutions, aside).  A tiny absolute slack covers the kernel's fixed-point sums (2^-24
# of a share, 2^-20 of a multiplier).  The monotone tests compare effects of ≥ 10 standard errors
# against a bound of Z, so they add nothing measurable.
Z = 4.8
PER_CHECK_FALSE_FAILURE = 2.1e-6
CHECKS = 450
assert CHECKS * PER_CHECK_FALSE_FAILURE < 1e-3
assert 2.0 * norm.sf(Z) < PER_CHECK_FALSE_FAILURE

KERNEL_TRAJECTORIES = 20_000
KERNEL_BATCHES = 20  # the kernel's standard errors come from the spread of its batch means
INDEPENDENT_TRAJECTORIES = 5_000
SLACK = 1e-6


# ---- scenarios ----------------------------------------------------------------------------------
# State ids are listed in alphabetical order, so "id order" (design §7's exit order) and the
# state order coincide.
def _states(**fields: dict) -> dict[str, dict]:
    return {sid: dict(x) for sid, x in fields.items()}


def _campaign_scenario(name: str, world: tuple, noise: tuple[float, float], **campaign) -> dict:
    """``world`` = (states, alliances, aggressors, attack_types, exposure) for
    :func:`make_scenario`; ``noise`` = (misperception, outcome_noise); ``campaign`` the table."""
    data = make_scenario(*world, name=name, misperception=noise[0], outcome_noise=noise[1])
    data["campaign"] = campaign
    return data


def pact_unanimity() -> dict:
    """One alliance under unanimity, an unreliable big ally (BRA), a candidate (ECH) that joins
    under threat; two attack types; crises in 3 periods of 4."""
    states = _states(ALF={"capability": 0.02, "commitment": 0.0},
                     BRA={"capability": 0.25, "commitment": 0.45, "stability": 0.7},
                     CHA={"capability": 0.08, "commitment": 0.9, "stability": 0.95},
                     DEL={"capability": 0.04, "commitment": 0.6},
                     ECH={"capability": 0.05, "commitment": 0.8},
                     RUS={"capability": 0.2, "commitment": 0.0})
    alliances = [{"id": "PACT", "members": ["ALF", "BRA", "CHA", "DEL"], "bindingness": 0.8,
                  "max_rounds": 3, "candidates": ["ECH"]}]
    aggressors = [{"state": "RUS", "resolve": 1.0, "targets": {"ALF": 1.0},
                   "attack_mix": {"conventional": 2.0, "hybrid": 1.0}}]
    attack_types = {"conventional": {}, "hybrid": {"severity": 0.6, "ambiguity": 0.3}}
    world = (states, alliances, aggressors, attack_types, {"default": 1.0, "ECH.ALF": 0.8})
    return _campaign_scenario(
        "pact-unanimity", world, (0.5, 0.4), steps=8, crisis_rate=0.75,
        reputation_learning=0.35, trust_weight=0.7, resolve_learning=0.1, threat_shock=0.3,
        threat_decay=0.15, exit_threshold=0.6, join_threshold=0.55)


def two_alliances() -> dict:
    """NATO (majority) and NORD (unanimity, loose): two targets, DEL in both alliances (two
    covering alliances with shared members when DEL is attacked), NORD not covering ALF so its
    members leave it on reputations lost in NATO and it dissolves; FOX, a NORD member, is
    NATO's candidate."""
    states = _states(ALF={"capability": 0.01, "commitment": 0.0},
                     BRA={"capability": 0.2, "commitment": 0.5, "stability": 0.8},
                     CHA={"capability": 0.06, "commitment": 0.7, "stability": 0.6},
                     DEL={"capability": 0.03, "commitment": 0.8},
                     ECH={"capability": 0.02, "commitment": 0.4, "stability": 0.9},
                     FOX={"capability": 0.04, "commitment": 0.9},
                     RUS={"capability": 0.12, "commitment": 0.0})
    alliances = [{"id": "NATO", "members": ["ALF", "BRA", "CHA", "DEL", "ECH"],
                  "decision_rule": "majority", "bindingness": 0.9, "max_rounds": 4,
                  "candidates": ["FOX"]},
                 {"id": "NORD", "members": ["BRA", "CHA", "DEL", "FOX"], "bindingness": 0.5,
                  "max_rounds": 2}]
    aggressors = [{"state": "RUS", "resolve": 1.2, "targets": {"ALF": 2.0, "DEL": 1.0},
                   "attack_mix": {"conventional": 1.0}}]
    world = (states, alliances, aggressors, {"conventional": {}},
             {"default": 0.9, "FOX.ALF": 0.5})
    return _campaign_scenario(
        "two-alliances", world, (0.6, 0.5), steps=8, crisis_rate=0.8, reputation_learning=0.4,
        trust_weight=0.5, resolve_learning=0.1, threat_shock=0.25, threat_decay=0.1,
        exit_threshold=0.55, join_threshold=0.6)


def rare_crises() -> dict:
    """Crises in 2 periods of 5, a strong aggressor that mostly succeeds (its resolve grows),
    cyber attacks (ambiguous), majority rule, two candidates that join under threat and may
    leave again."""
    states = _states(ALF={"capability": 0.01, "commitment": 0.0},
                     BRA={"capability": 0.1, "commitment": 0.6, "stability": 0.5},
                     CHA={"capability": 0.05, "commitment": 0.5},
                     DEL={"capability": 0.02, "commitment": 0.9, "stability": 0.8},
                     ECH={"capability": 0.03, "commitment": 0.3},
                     FOX={"capability": 0.01, "commitment": 0.95},
                     RUS={"capability": 0.3, "commitment": 0.0})
    alliances = [{"id": "GUARD", "members": ["ALF", "BRA", "CHA", "DEL"],
                  "decision_rule": "majority", "bindingness": 0.7, "max_rounds": 2,
                  "candidates": ["ECH", "FOX"]}]
    aggressors = [{"state": "RUS", "resolve": 0.8, "targets": {"ALF": 1.0},
                   "attack_mix": {"cyber": 1.0, "conventional": 1.0}}]
    attack_types = {"cyber": {"severity": 0.3, "ambiguity": 0.5}, "conventional": {}}
    world = (states, alliances, aggressors, attack_types, {"default": 0.7, "ECH.ALF": 1.0})
    return _campaign_scenario(
        "rare-crises", world, (0.7, 0.6), steps=10, crisis_rate=0.4, reputation_learning=0.5,
        trust_weight=0.3, resolve_learning=0.25, threat_shock=0.5, threat_decay=0.3,
        exit_threshold=0.7, join_threshold=0.4)


SCENARIOS = {"pact_unanimity": pact_unanimity, "two_alliances": two_alliances,
             "rare_crises": rare_crises}


# ---- the kernel's per-period measures, with standard errors from batch means ----------------
def _measures(t, n: int) -> dict[str, np.ndarray]:
    """Per-trajectory means of every compared measure from one run's tallies: each an array over
    periods (``alive``: periods × alliances; ``successes``: 0..steps)."""
    return {
        "deterred": t.period_cells[:, C_DETERRED] / n,
        "succeeded": t.period_cells[:, C_SUCCEEDED] / n,
        "reputation": t.periods[:, P_REPUTATION_SUM] / SHARE_SCALE / n,
        "resolve": t.periods[:, P_RESOLVE_SUM] / RESOLVE_SCALE / n,
        "exits": t.periods[:, P_EXITS] / n,
        "joins": t.periods[:, P_JOINS] / n,
        "alive": t.alliance_periods[:, :, AP_ALIVE].T / n,
        "successes": t.successes / n,
    }


def kernel_batches(data: dict, seed: int, n: int, batches: int) -> list[dict]:
    """The measures of ``batches`` equal, consecutive batches of ``n`` kernel trajectories."""
    c = compiled(data)
    tables = deterrence_tables(c, seed)
    size = n // batches
    return [_measures(simulate_campaign(c, seed, b * size, (b + 1) * size, deterrence=tables),
                      size) for b in range(batches)]


def _mean_and_error(batch_means: list) -> tuple[np.ndarray, np.ndarray]:
    """The overall mean and its standard error from i.i.d. batch means (trajectories are
    independent, so batch means are too)."""
    x = np.asarray(batch_means, dtype=float)
    return x.mean(axis=0), x.std(axis=0, ddof=1) / math.sqrt(len(x))


def kernel_estimates(data: dict, seed: int, n: int = KERNEL_TRAJECTORIES,
                     batches: int = KERNEL_BATCHES):
    """Means and their standard errors of every measure over ``n`` kernel trajectories."""
    parts = kernel_batches(data, seed, n, batches)
    pairs = {k: _mean_and_error([p[k] for p in parts]) for k in parts[0]}
    return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}


def independent_estimates(data: dict, seed: int, n: int = INDEPENDENT_TRAJECTORIES):
    paths = campaign_independent.simulate(data, n, seed)
    steps = paths.deterred.shape[1]
    successes = np.stack([paths.successes == k for k in range(steps + 1)], axis=1)
    values = {"deterred": paths.deterred, "succeeded": paths.succeeded,
              "reputation": paths.reputation, "resolve": paths.resolve, "exits": paths.exits,
              "joins": paths.joins, "alive": paths.alive, "successes": successes}
    mean = {k: v.mean(axis=0) for k, v in values.items()}
    se = {k: v.std(axis=0, ddof=1) / math.sqrt(n) for k, v in values.items()}
    return mean, se


def compare(kernel, independent) -> tuple[int, list[str]]:
    """The number of checks and the failures of the z-tests over every measure and period."""
    (km, ks), (im, is_) = kernel, independent
    checks, failures = 0, []
    for name in km:
        diff = np.abs(km[name] - im[name])
        bound = Z * np.sqrt(ks[name] ** 2 + is_[name] ** 2) + SLACK
        checks += diff.size
        for index in zip(*np.nonzero(diff > bound), strict=True):
            failures.append(f"{name}{list(map(int, index))}: kernel {km[name][index]:.5f} "
                            f"independent {im[name][index]:.5f} (bound {bound[index]:.5f})")
    return checks, failures


@pytest.fixture(scope="module")
def check_count():
    counts: list[int] = []
    yield counts
    assert sum(counts) <= CHECKS  # the Bonferroni budget above


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_kernel_agrees_with_an_independent_simulation(name, check_count):
    """Per period: deterrence and aggression-success rates, mean reputation, mean resolve
    multiplier, exits and joins per trajectory, alliance survival; and the distribution of
    successful aggressions per trajectory."""
    data = SCENARIOS[name]()
    kernel = kernel_estimates(data, seed=101)
    independent = independent_estimates(data, seed=202)
    checks, failures = compare(kernel, independent)
    check_count.append(checks)
    assert not failures, "\n".join(failures)
    # the comparison means something only if every mechanism fires
    km = kernel[0]
    assert km["exits"].sum() > 0.05 and km["joins"].sum() > 0.05
    assert km["deterred"].sum() > 0.05 and km["reputation"][-1] < 0.95
    assert abs(km["resolve"][-1] - 1.0) > 0.05


def test_nord_dissolves_often_enough_to_test_survival():
    """NORD's survival curve falls well below 1 (the alive comparison is not trivial)."""
    km, _ = kernel_estimates(two_alliances(), seed=7, n=4000, batches=4)
    assert km["alive"][-1, 1] < 0.85


# ---- monotone effects (the kernel; common random numbers: one seed for both runs) -----------
def _with_knobs(data: dict, **knobs) -> dict:
    data = copy.deepcopy(data)
    data["campaign"].update(knobs)
    return data


def _duo_and_friend(**campaign) -> dict:
    """A target ALF, an unreliable ally BRA (commitment 0.3, stability 0.6) and a reliable one
    CHA in one pact; the aggressor RUS is deterred about half the time at the start."""
    states = _states(ALF={"capability": 0.02, "commitment": 0.0},
                     BRA={"capability": 0.3, "commitment": 0.3, "stability": 0.6},
                     CHA={"capability": 0.1, "commitment": 0.9},
                     RUS={"capability": 0.15, "commitment": 0.0})
    alliances = [{"id": "PACT", "members": ["ALF", "BRA", "CHA"], "max_rounds": 3}]
    aggressors = [{"state": "RUS", "targets": {"ALF": 1.0}, "attack_mix": {"conventional": 1.0}}]
    world = (states, alliances, aggressors, {"conventional": {}}, None)
    return _campaign_scenario("duo-and-friend", world, (0.5, 0.4), **{"steps": 6, **campaign})


def _increasing(values, ses, what: str) -> None:
    """Each value exceeds the previous by Z standard errors of the difference (errors as if the
    runs were independent: common random numbers only shrink them)."""
    for x in range(1, len(values)):
        gap = values[x] - values[x - 1]
        assert gap > Z * math.hypot(ses[x], ses[x - 1]), (what, values, ses)


def _estimate(data: dict, statistic) -> tuple[float, float]:
    """``statistic`` (a function of one batch's measures) over 8000 kernel trajectories of seed
    31 (the same for every knob value): its mean and standard error over 10 batches."""
    mean, se = _mean_and_error([statistic(p) for p in kernel_batches(data, 31, 8000, 10)])
    return float(mean), float(se)


def test_faster_reputation_learning_erodes_reputation_faster():
    """An unreliable ally: the mean reputation after 3 periods falls with λ."""
    values, ses = zip(*(_estimate(_duo_and_friend(reputation_learning=lam),
                                  lambda m: m["reputation"][2]) for lam in (0.6, 0.3, 0.1)),
                      strict=True)
    _increasing(values, ses, "reputation by decreasing λ")


def test_trust_weight_lowers_deterrence_when_reputations_fall():
    """Falling reputations lower the others' backing when trust weighs; fewer honor, reputations
    fall further and deterrence with them (final period)."""
    values, ses = zip(*(_estimate(_duo_and_friend(steps=10, reputation_learning=0.5,
                                                  trust_weight=omega),
                                  lambda m: m["deterred"][-3:].mean())
                        for omega in (1.0, 0.5, 0.0)), strict=True)
    _increasing(values, ses, "deterrence by decreasing ω")


def test_higher_exit_threshold_more_exits():
    """Exits per trajectory over the campaign grow with the threshold."""
    values, ses = zip(*(_estimate(_with_knobs(pact_unanimity(), exit_threshold=threshold),
                                  lambda m: m["exits"].sum()) for threshold in (0.3, 0.6, 0.9)),
                      strict=True)
    _increasing(values, ses, "exits by exit_threshold")


def test_lower_join_threshold_more_joins():
    """Joins per trajectory grow as the threshold falls (no exits: a candidate joins once)."""
    values, ses = zip(*(_estimate(_with_knobs(rare_crises(), join_threshold=threshold,
                                              exit_threshold=0.0),
                                  lambda m: m["joins"].sum()) for threshold in (0.9, 0.6, 0.3)),
                      strict=True)
    _increasing(values, ses, "joins by decreasing join_threshold")


def test_resolve_learning_raises_the_multiplier_when_aggression_succeeds():
    """RUS in rare_crises mostly succeeds: its mean multiplier at the end grows with ρ."""
    data = rare_crises()
    tallies = simulate_campaign(compiled(data), 31, 0, 4000)
    assert tallies.cells[:, C_SUCCEEDED].sum() > 0.9 * tallies.cells[:, C_ATTACKED].sum()
    values, ses = zip(*(_estimate(_with_knobs(data, resolve_learning=rho),
                                  lambda m: m["resolve"][-1]) for rho in (0.0, 0.1, 0.3)),
                      strict=True)
    _increasing(values, ses, "multiplier by ρ")


# ---- knob neutrality -----------------------------------------------------------------------
NEUTRAL = {"crisis_rate": 1.0, "reputation_learning": 0.0, "trust_weight": 0.0,
           "resolve_learning": 0.0, "threat_shock": 0.0, "threat_decay": 0.0,
           "exit_threshold": 0.0, "join_threshold": math.inf}


def _tallies(data: dict):
    return simulate_campaign(compiled(data), 13, 0, 3000)


@pytest.mark.parametrize("knob", sorted(NEUTRAL))
def test_a_knob_at_its_neutral_value_is_the_knob_absent(knob):
    """Every other knob of two_alliances on; this one absent or explicitly neutral: the same
    tallies, every array bit for bit."""
    absent = two_alliances()
    del absent["campaign"][knob]
    explicit = _with_knobs(absent, **{knob: NEUTRAL[knob]})
    assert _tallies(absent).equals(_tallies(explicit))


def test_no_candidates_is_candidates_absent():
    absent = two_alliances()
    del absent["alliances"][0]["candidates"]
    explicit = copy.deepcopy(absent)
    explicit["alliances"][0]["candidates"] = []
    assert _tallies(absent).equals(_tallies(explicit))


def test_exit_and_join_vanish_without_their_drivers():
    """With reputations fixed at 1 (λ = 0) nobody's r̄ falls below an exit threshold ≤ 1, and
    with no threat shock (κ = 0) nobody reaches a positive join threshold: turning exit and
    accession on changes no tally."""
    base = _with_knobs(two_alliances(), reputation_learning=0.0, threat_shock=0.0,
                       exit_threshold=0.0, join_threshold=math.inf)
    on = _with_knobs(base, exit_threshold=1.0, join_threshold=1e-9)
    assert _tallies(base).equals(_tallies(on))
