"""Every knob of design §2: its neutral value makes the mechanism vanish exactly, and a non-neutral
value moves results the right way, by the closed form where there is one.

Tolerances.  Closed-form checks allow Z = 4.5 standard errors of the estimate (computed from the
closed-form value and n): two-sided false-failure rate 6.8e-6 per check (exact binomial interval
with the same rate for rare events, see conftest).  Directional checks
between two runs require the difference of the estimates to exceed 4.5·sqrt(se₁² + se₂²) (the
standard error of a difference of independent estimates; common random numbers only make the
true standard error smaller): every scenario below is sized so that the expected difference is
more than 10 such standard errors, so a correct engine fails a directional check with chance
< 1e-9 (the difference would have to fall 5.5 σ short).  With common random numbers (same
seed) several effects are exact per trial and checked as integer identities.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from conftest import (
    Z,
    aggressor,
    alliance,
    check_mean,
    check_proportion,
    members_world,
    run,
    scenario,
    state,
    tallies_equal,
    unanimity_cdf,
)
from scipy.stats import binom, norm

from kernels.layout import (
    C_ATTACKED,
    C_DEFECTION,
    C_DELAY_SUM,
    C_DELIVERED_SHARE_SUM,
    C_DETERRED,
    C_INVOKED,
    C_REPELLED,
    C_ROUNDS_SUM,
    C_TRIALS,
    C_WITH_ALLIED_BACKERS,
    DELAY_SCALE,
    SHARE_SCALE,
)

N_TRIALS = 300_000


def rate(tallies, col, den=C_ATTACKED, cell=0):
    c = tallies.cells[cell]
    return c[col], c[den]


def check_lower(low, high, what=""):
    """``low`` = (k, n) has a clearly lower rate than ``high``: p̂_high − p̂_low > Z·se_diff."""
    (k1, n1), (k2, n2) = low, high
    p1, p2 = k1 / n1, k2 / n2
    se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    assert p2 - p1 > Z * se, f"{what}: {p1:.5f} is not clearly below {p2:.5f} (se {se:.2g})"


# ---- a scenario with every mechanism switched on --------------------------------------------


def rich():
    states = [
        state("T", 1.0, 0.9, stability=0.8, free_riding=0.3),
        state("M1", 2.0, 0.7, stability=0.8, free_riding=0.3),
        state("M2", 1.5, 0.6, stability=0.7, free_riding=0.4),
        state("M3", 0.8, 0.8, stability=0.9, free_riding=0.2),
        state("M4", 3.0, 0.5, stability=0.6, free_riding=0.5),
        state("U", 0.9, 0.5, stability=0.8, free_riding=0.3),
        state("AGG", 4.0, 0.2, stability=0.8, free_riding=0.3),
    ]
    alliances = [
        alliance("A", ["T", "M1", "M2", "M3"], decision_rule="majority", round_days=2.0,
                 max_rounds=4, integration=0.4, bindingness=0.9, intel_sharing=0.5),
        alliance("B", ["T", "M3", "M4"], round_days=3.0, max_rounds=3, integration=0.2,
                 bindingness=0.7, intel_sharing=0.3),
        # last, so removing it leaves the indices (and random slots) of A and B unchanged
        alliance("C", ["M2", "AGG"], obligation="nonaggression", integration=0.5,
                 bindingness=0.6, intel_sharing=0.2),
    ]
    aggressors = [aggressor("AGG", {"T": 2.0, "M1": 1.0, "U": 1.0},
                            {"conv": 1.0, "hybrid": 1.0}, resolve=1.5)]
    attack_types = {
        "conv": {"severity": 1.0, "attribution_days": 3.0, "ambiguity": 0.2},
        "hybrid": {"severity": 0.6, "attribution_days": 10.0, "ambiguity": 0.4},
    }
    exposure = {"default": 0.7, "M1.T": 0.3, "M4.T": 0.9, "T.M1": 0.4, "M2.M1": 0.2}
    return scenario(states, alliances, aggressors, attack_types, exposure,
                    misperception=0.6, outcome_noise=0.4, mobilization_days=10.0,
                    window_days=50.0, interoperability_bonus=0.3, defection_threshold=0.4,
                    conflict_penalty=0.3, threat_weight=0.5)


def entries(data, where):
    if where == "scenario":
        return [data["scenario"]]
    if where == "attack_types":
        return list(data["attack_types"].values())
    if where == "exposure":
        return [data["exposure"]]
    return data[where]


def with_value(data, where, key, value):
    data = copy.deepcopy(data)
    for e in entries(data, where):
        e[key] = value
    return data


def without(data, where, key):
    data = copy.deepcopy(data)
    for e in entries(data, where):
        e.pop(key, None)
    return data


NEUTRAL = [
    ("scenario", "mobilization_days", 0.0),
    ("scenario", "window_days", math.inf),
    ("scenario", "interoperability_bonus", 0.0),
    ("scenario", "defection_threshold", 1.0),
    ("scenario", "conflict_penalty", 0.0),
    ("scenario", "threat_weight", 0.0),
    ("states", "stability", 1.0),
    ("states", "free_riding", 0.0),
    ("alliances", "integration", 0.0),
    ("alliances", "bindingness", 1.0),
    ("alliances", "intel_sharing", 0.0),
    ("attack_types", "attribution_days", 0.0),
    ("attack_types", "ambiguity", 0.0),
    ("exposure", "default", 1.0),
]

NEUTRAL_TRIALS = 100_000


@pytest.mark.parametrize("where, key, neutral", NEUTRAL, ids=[f"{w}.{k}" for w, k, _ in NEUTRAL])
def test_neutral_value_is_the_default(where, key, neutral):
    """Writing the neutral value gives the same tallies, bit for bit, as omitting the key, in a
    scenario where every other mechanism is on; and the knob does matter there."""
    base = rich()
    t_neutral, _ = run(with_value(base, where, key, neutral), NEUTRAL_TRIALS, seed=7)
    t_omitted, _ = run(without(base, where, key), NEUTRAL_TRIALS, seed=7)
    assert tallies_equal(t_neutral, t_omitted)
    t_base, _ = run(base, NEUTRAL_TRIALS, seed=7)
    assert not tallies_equal(t_base, t_neutral), "the rich scenario does not exercise the knob"


# ---- neutral values make the mechanism vanish (exact, common random numbers) ------------------


def test_threat_weight_zero_makes_exposure_and_intel_irrelevant():
    base = with_value(rich(), "scenario", "threat_weight", 0.0)
    t0, _ = run(base, NEUTRAL_TRIALS, seed=8)
    other = copy.deepcopy(base)
    other["exposure"] = {"default": 0.05, "M3.T": 1.0}
    other = with_value(other, "alliances", "intel_sharing", 0.9)
    t1, _ = run(other, NEUTRAL_TRIALS, seed=8)
    assert tallies_equal(t0, t1)


def test_integration_irrelevant_without_mobilization_and_bonus():
    base = with_value(with_value(rich(), "scenario", "mobilization_days", 0.0),
                      "scenario", "interoperability_bonus", 0.0)
    t0, _ = run(base, NEUTRAL_TRIALS, seed=9)
    t1, _ = run(with_value(base, "alliances", "integration", 0.9), NEUTRAL_TRIALS, seed=9)
    assert tallies_equal(t0, t1)


def test_bonus_irrelevant_without_integration():
    base = without(rich(), "alliances", "integration")
    t0, _ = run(base, NEUTRAL_TRIALS, seed=10)
    t1, _ = run(with_value(base, "scenario", "interoperability_bonus", 2.0), NEUTRAL_TRIALS,
                seed=10)
    assert tallies_equal(t0, t1)


def test_defection_threshold_irrelevant_when_stability_is_one():
    base = without(rich(), "states", "stability")
    t0, _ = run(with_value(base, "scenario", "defection_threshold", 0.0), NEUTRAL_TRIALS, seed=11)
    t1, _ = run(with_value(base, "scenario", "defection_threshold", 1.0), NEUTRAL_TRIALS, seed=11)
    assert tallies_equal(t0, t1)
    assert t0.cells[:, C_DEFECTION].sum() == 0


def test_defection_threshold_one_never_defects():
    # stability < 1 but threshold 1: no defection; and the defection tally is the only thing the
    # threshold changes (the response goes ahead with what was delivered)
    t1, _ = run(rich(), NEUTRAL_TRIALS, seed=12)
    t_never, _ = run(with_value(rich(), "scenario", "defection_threshold", 1.0), NEUTRAL_TRIALS,
                     seed=12)
    assert t_never.cells[:, C_DEFECTION].sum() == 0
    assert t1.cells[:, C_DEFECTION].sum() > 1000
    keep = [c for c in range(t1.cells.shape[1]) if c != C_DEFECTION]
    assert np.array_equal(t1.cells[:, keep], t_never.cells[:, keep])
    assert np.array_equal(t1.cell_hist, t_never.cell_hist)
    assert np.array_equal(t1.alliances, t_never.alliances)


def test_conflict_penalty_irrelevant_when_aggressor_shares_no_alliance():
    base = rich()
    base["alliances"] = base["alliances"][:2]  # drop C, the aggressor's only alliance
    t0, _ = run(with_value(base, "scenario", "conflict_penalty", 0.0), NEUTRAL_TRIALS, seed=13)
    t1, _ = run(with_value(base, "scenario", "conflict_penalty", 0.8), NEUTRAL_TRIALS, seed=13)
    assert tallies_equal(t0, t1)
    # sharing an alliance with the target only: the target backs anyway, so the cells where T is
    # the target (0 and 1) are unchanged (where M1 is the target, T is a member and is penalised)
    base["alliances"].append(alliance("C", ["T", "AGG"], obligation="nonaggression"))
    t2, _ = run(with_value(base, "scenario", "conflict_penalty", 0.0), NEUTRAL_TRIALS, seed=13)
    t3, _ = run(with_value(base, "scenario", "conflict_penalty", 0.8), NEUTRAL_TRIALS, seed=13)
    assert np.array_equal(t2.cells[:2], t3.cells[:2])
    assert np.array_equal(t2.cell_hist[:2], t3.cell_hist[:2])
    assert not np.array_equal(t2.cells[2:4], t3.cells[2:4])


# ---- threat and intel sharing -----------------------------------------------------------------


def test_threat_weight_lowers_invocation():
    c, R, w, sev = 0.8, 3, 0.6, 1.5
    exposure = {"default": 0.5, "M1.T": 0.4, "M2.T": 0.9}
    data = members_world([c] * 3, max_rounds=R, attack={"severity": sev}, exposure=exposure,
                         threat_weight=w)
    t_w, _ = run(data, N_TRIALS, seed=101)
    t_0, _ = run(with_value(data, "scenario", "threat_weight", 0.0), N_TRIALS, seed=101)
    theta = np.minimum(1.0, np.array([0.4, 0.9, 0.5]) * sev)  # M2: 1.35 capped at 1
    p = c * (1.0 - w + w * theta)
    check_proportion(*rate(t_w, C_INVOKED), unanimity_cdf(np.repeat(p[:, None], R, 1))[-1],
                     what="threat_weight 0.6")
    check_proportion(*rate(t_0, C_INVOKED), (1 - (1 - c) ** R) ** 3, what="threat_weight 0")
    check_lower(rate(t_w, C_INVOKED), rate(t_0, C_INVOKED), "threat_weight")


def intel_p(commitment, w, theta_members, theta_target, s, R):
    """Per-round backing chances with intel sharing: θ_i(r) = θ̄ + (1 − s)^(r−1)(θ_i − θ̄), θ̄ the
    mean over M_A (target included), which the update preserves."""
    th = np.asarray(theta_members, dtype=np.float64)
    mean = (th.sum() + theta_target) / (len(th) + 1)
    decay = (1.0 - s) ** np.arange(R)
    theta = mean + decay[None, :] * (th[:, None] - mean)
    return np.asarray(commitment, dtype=np.float64)[:, None] * (1.0 - w + w * theta)


def test_intel_sharing_closed_form():
    c, w, s, R = [0.7, 0.8, 0.6], 0.8, 0.5, 4
    exposure = {"T.T": 0.3, "M1.T": 0.1, "M2.T": 0.5, "M3.T": 1.0}
    data = members_world(c, max_rounds=R, exposure=exposure, threat_weight=w,
                         alliance_extra={"intel_sharing": s})
    tallies, _ = run(data, N_TRIALS, seed=102)
    p = intel_p(c, w, [0.1, 0.5, 1.0], 0.3, s, R)
    check_proportion(*rate(tallies, C_INVOKED), unanimity_cdf(p)[-1], what="intel sharing")


@pytest.mark.parametrize("theta_member, theta_target", [(0.1, 1.0), (1.0, 0.1)])
def test_intel_sharing_moves_toward_the_mean(theta_member, theta_target):
    # one member besides the target: intel pulls its θ toward (θ_M + θ_T)/2, so invocation rises
    # when the member is less exposed than the target and falls when it is more exposed
    c, w, s, R = 0.9, 1.0, 0.5, 2
    exposure = {"T.T": theta_target, "M1.T": theta_member}
    data = members_world([c], max_rounds=R, exposure=exposure, threat_weight=w,
                         alliance_extra={"intel_sharing": s})
    t_s, _ = run(data, N_TRIALS, seed=103)
    t_0, _ = run(with_value(data, "alliances", "intel_sharing", 0.0), N_TRIALS, seed=103)
    p_s = unanimity_cdf(intel_p([c], w, [theta_member], theta_target, s, R))[-1]
    p_0 = 1.0 - (1.0 - c * theta_member) ** R
    check_proportion(*rate(t_s, C_INVOKED), p_s, what="intel on")
    check_proportion(*rate(t_0, C_INVOKED), p_0, what="intel off")
    if theta_member < theta_target:
        check_lower(rate(t_0, C_INVOKED), rate(t_s, C_INVOKED), "intel raises")
    else:
        check_lower(rate(t_s, C_INVOKED), rate(t_0, C_INVOKED), "intel lowers")


# ---- free riding ------------------------------------------------------------------------------


def test_free_riding_one_member():
    # only the target backs until M1 does: share = c_t/(c_t + c_1) in every round, so
    # p = commitment·(1 − f·share) is constant.  The target's own free_riding plays no part.
    c, f, cap, R = 0.7, 0.6, 3.0, 3
    data = members_world([c], max_rounds=R, caps=[cap], state_extra={"M1": {"free_riding": f}},
                         target_extra={"free_riding": 0.9})
    t_f, _ = run(data, N_TRIALS, seed=104)
    t_0, _ = run(without(data, "states", "free_riding"), N_TRIALS, seed=104)
    p = c * (1.0 - f * 1.0 / (1.0 + cap))
    check_proportion(*rate(t_f, C_INVOKED), 1.0 - (1.0 - p) ** R, what="free riding")
    check_proportion(*rate(t_0, C_INVOKED), 1.0 - (1.0 - c) ** R, what="no free riding")
    check_lower(rate(t_f, C_INVOKED), rate(t_0, C_INVOKED), "free riding")


def free_riding_cdf(cap_t, caps, commitment, ride, need, R):
    """P(decided by round r), exactly, by dynamic programming over the set of backers: in a round
    starting with backers B (target included), member i ∉ B backs with chance
    commitment_i·(1 − ride_i·cap(B)/cap(M_A)), independently; decided once |B| ≥ need."""
    n = len(caps)
    cap_m = cap_t + sum(caps)
    undecided = {0: 1.0}
    decided, cdf = 0.0, []
    for _ in range(R):
        nxt: dict[int, float] = {}
        for mask, pm in undecided.items():
            share = (cap_t + sum(caps[i] for i in range(n) if mask >> i & 1)) / cap_m
            out = [i for i in range(n) if not mask >> i & 1]
            p = {i: commitment[i] * (1.0 - ride[i] * share) for i in out}
            for bits in itertools.product((0, 1), repeat=len(out)):
                prob, new = pm, mask
                for i, b in zip(out, bits, strict=True):
                    prob *= p[i] if b else 1.0 - p[i]
                    new |= b << i
                if 1 + bin(new).count("1") >= need:
                    decided += prob
                else:
                    nxt[new] = nxt.get(new, 0.0) + prob
        undecided = nxt
        cdf.append(decided)
    return np.array(cdf)


@pytest.mark.parametrize("rule, need", [("unanimity", 4), ("majority", 3)])
def test_free_riding_several_members(rule, need):
    caps, c, f, R = [2.0, 1.0, 0.5], [0.8, 0.6, 0.7], [0.5, 0.8, 0.3], 4
    extra = {f"M{i + 1}": {"free_riding": f[i]} for i in range(3)}
    data = members_world(c, rule=rule, max_rounds=R, caps=caps, state_extra=extra)
    tallies, _ = run(data, N_TRIALS, seed=105)
    cdf = free_riding_cdf(1.0, caps, c, f, need, R)
    check_proportion(*rate(tallies, C_INVOKED), cdf[-1], what=f"free riding {rule}")
    pmf = np.diff(np.concatenate([[0.0], cdf]))
    for r, pr in enumerate(pmf, start=1):  # round_days 1: bin 10·r holds rounds_used = r
        check_proportion(tallies.cell_hist[0, 10 * r], N_TRIALS, pr,
                         what=f"free riding {rule}: P(rounds = {r})")


# ---- conflict, ambiguity, bindingness ------------------------------------------------------------


@pytest.mark.parametrize("variant", ["nonaggression_pact", "aggressor_in_alliance"])
def test_conflict_penalty(variant):
    c, cp, R = 0.8, 0.5, 2
    data = members_world([c] * 3, max_rounds=R, conflict_penalty=cp)
    if variant == "nonaggression_pact":
        data["alliances"].append(alliance("NA", ["M1", "M2", "AGG"], obligation="nonaggression"))
        p = np.array([c * (1 - cp), c * (1 - cp), c])
    else:  # AGG in A itself: not in M_A, but it shares an alliance with every member (A is
        # collective security: a defense pact would not cover T against its member, §8)
        data["alliances"][0]["members"].append("AGG")
        data["alliances"][0]["obligation"] = "collective_security"
        p = np.full(3, c * (1 - cp))
    t_cp, _ = run(data, N_TRIALS, seed=106)
    t_0, _ = run(with_value(data, "scenario", "conflict_penalty", 0.0), N_TRIALS, seed=106)
    check_proportion(*rate(t_cp, C_INVOKED), unanimity_cdf(np.repeat(p[:, None], R, 1))[-1],
                     what=f"conflict {variant}")
    check_proportion(*rate(t_0, C_INVOKED), (1 - (1 - c) ** R) ** 3, what="no conflict")
    check_lower(rate(t_cp, C_INVOKED), rate(t_0, C_INVOKED), "conflict penalty")


def test_ambiguity_lowers_invocation():
    # two attack types in one run: cell 0 clear (ambiguity 0), cell 1 murky (ambiguity 0.5)
    c, amb, R = 0.8, 0.5, 2
    data = members_world([c] * 3, max_rounds=R)
    data["attack_types"] = {"clear": {}, "murky": {"ambiguity": amb}}
    data["aggressors"][0]["attack_mix"] = {"clear": 1.0, "murky": 1.0}
    tallies, _ = run(data, N_TRIALS, seed=107)
    check_proportion(*rate(tallies, C_INVOKED, cell=0), (1 - (1 - c) ** R) ** 3, what="clear")
    p = c * (1 - amb)
    check_proportion(*rate(tallies, C_INVOKED, cell=1), (1 - (1 - p) ** R) ** 3, what="murky")
    check_lower(rate(tallies, C_INVOKED, cell=1), rate(tallies, C_INVOKED, cell=0), "ambiguity")


def test_bindingness_lowers_deterrence_and_invocation():
    c, R, sigma, threat = 0.8, 2, 0.5, 3.0
    data = members_world([c] * 3, max_rounds=R, misperception=sigma)
    data["states"][-1]["capability"] = threat  # AGG, resolve 1: deterrence is in play
    data["aggressors"][0]["resolve"] = 1.0
    out = {}
    for b in (1.0, 0.5):
        t, _ = run(with_value(data, "alliances", "bindingness", b), N_TRIALS, seed=108)
        p_det = norm.cdf((math.log(1.0 + 3 * c * b * 1.0) - math.log(threat)) / sigma)
        check_proportion(*rate(t, C_DETERRED, C_TRIALS), p_det, what=f"P(deterred), b={b}")
        check_proportion(*rate(t, C_INVOKED), (1 - (1 - c * b) ** R) ** 3, what=f"invoked b={b}")
        out[b] = t
    check_lower(rate(out[0.5], C_DETERRED, C_TRIALS), rate(out[1.0], C_DETERRED, C_TRIALS),
                "bindingness: deterrence")
    check_lower(rate(out[0.5], C_INVOKED), rate(out[1.0], C_INVOKED), "bindingness: invocation")


# ---- delay: integration, mobilization, attribution (common random numbers) -----------------------


def delay_world(**kw):
    return members_world([0.5] * 3, max_rounds=4, round_days=2.0, **kw)


def test_mobilization_and_integration_shift_delay_exactly():
    # consultation does not depend on mobilization or integration, so with the same seed each
    # invoked trial's delay differs by exactly m·(1 − g); the fixed-point sums round each trial's
    # delay to 1/1024 day, so the sums differ by m·(1 − g)·n within n/1024 day.
    runs = {}
    for m, g in ((0.0, 0.0), (10.0, 0.0), (10.0, 0.6), (25.0, 0.3)):
        data = delay_world(mobilization_days=m, alliance_extra={"integration": g},
                           attack={"attribution_days": 4.0})
        runs[m, g], _ = run(data, N_TRIALS, seed=109)
    t0 = runs[0.0, 0.0]
    for (m, g), t in runs.items():
        assert np.array_equal(t.cells[:, [C_INVOKED, C_ROUNDS_SUM, C_REPELLED]],
                              t0.cells[:, [C_INVOKED, C_ROUNDS_SUM, C_REPELLED]])
        n = t.cells[0, C_INVOKED]
        shift = (t.cells[0, C_DELAY_SUM] - t0.cells[0, C_DELAY_SUM]) / DELAY_SCALE
        assert abs(shift - m * (1 - g) * n) <= n / DELAY_SCALE, (m, g, shift / n)
    # integration shortens the delay
    assert runs[10.0, 0.6].cells[0, C_DELAY_SUM] < runs[10.0, 0.0].cells[0, C_DELAY_SUM]


def test_attribution_raises_delay_by_its_mean():
    mu = 6.0
    t0, _ = run(delay_world(), N_TRIALS, seed=110)
    t1, _ = run(delay_world(attack={"attribution_days": mu}), N_TRIALS, seed=110)
    assert np.array_equal(t0.cells[:, [C_INVOKED, C_ROUNDS_SUM, C_REPELLED]],
                          t1.cells[:, [C_INVOKED, C_ROUNDS_SUM, C_REPELLED]])
    # per invoked trial the delay grows by D_att ~ Exp(mean μ) (variance μ²); 4.5 σ + 1/1024 day
    diff = (t1.cells[0, C_DELAY_SUM] - t0.cells[0, C_DELAY_SUM]) / DELAY_SCALE
    check_mean(diff, t0.cells[0, C_INVOKED], mu, mu**2, slack=1.0 / DELAY_SCALE,
               what="attribution delay")


# ---- outcome: integration bonus, window, delivery and defection ----------------------------------


def sure_world(n_members=2, stability=1.0, **kw):
    """Unanimity with commitment 1: every member backs in round 1 (certain invocation)."""
    extra = {f"M{i}": {"stability": stability} for i in range(1, n_members + 1)}
    data = members_world([1.0] * n_members, max_rounds=3, round_days=2.0, state_extra=extra,
                         outcome_noise=0.3, **kw)
    data["states"][-1]["capability"] = 3.0  # AGG; resolve stays 1e6: never deterred
    return data


def test_integration_with_bonus_raises_repelled():
    # delay = 2 + 10(1 − g) is fixed and F·(1 + g·bonus) grows with g, so with the same seed every
    # trial repelled at g = 0 is repelled at g = 0.5 (exact) and the extra count is
    # Binomial(n, Φ(z_g) − Φ(z_0)).
    def z(g):
        return (math.log(3.0 * (1 + g * 0.5)) - math.log(3.0) - (2 + 10 * (1 - g)) / 30.0) / 0.3

    t = {}
    for g in (0.0, 0.5):
        t[g], _ = run(sure_world(mobilization_days=10.0, window_days=30.0,
                                 interoperability_bonus=0.5, alliance_extra={"integration": g}),
                      N_TRIALS, seed=111)
        check_proportion(*rate(t[g], C_REPELLED), norm.cdf(z(g)), what=f"repelled g={g}")
    extra = t[0.5].cells[0, C_REPELLED] - t[0.0].cells[0, C_REPELLED]
    assert extra > 0
    check_proportion(extra, N_TRIALS, norm.cdf(z(0.5)) - norm.cdf(z(0.0)), what="extra repelled")


def test_window_lowers_repelled():
    # delay 2 + 10 days fixed; window W lowers z by 12/W: repelled(W) ⊆ repelled(inf) (exact)
    t = {}
    for w in (math.inf, 15.0):
        t[w], _ = run(sure_world(mobilization_days=10.0, window_days=w), N_TRIALS, seed=112)
    z_inf = math.log(3.0 / 3.0) / 0.3
    z_w = (math.log(3.0 / 3.0) - 12.0 / 15.0) / 0.3
    lost = t[math.inf].cells[0, C_REPELLED] - t[15.0].cells[0, C_REPELLED]
    check_proportion(*rate(t[math.inf], C_REPELLED), norm.cdf(z_inf), what="window inf")
    check_proportion(*rate(t[15.0], C_REPELLED), norm.cdf(z_w), what="window 15")
    check_proportion(lost, N_TRIALS, norm.cdf(z_inf) - norm.cdf(z_w), what="lost to the window")


def test_stability_and_defection():
    # 4 allies back in round 1, each delivers with chance s; defection iff the failed share
    # exceeds the threshold: failures/4 > 0.3 ⟺ failures ≥ 2.  F = 1 + delivered count.
    s, thr, n = 0.7, 0.3, 4
    data = sure_world(n, stability=s, defection_threshold=thr)
    t, _ = run(data, N_TRIALS, seed=113)
    c = t.cells[0]
    assert c[C_INVOKED] == c[C_WITH_ALLIED_BACKERS] == N_TRIALS
    check_proportion(c[C_DEFECTION], N_TRIALS, binom.sf(1, n, 1 - s), what="P(defection)")
    # delivered share = Binomial(4, s)/4: mean s, variance s(1 − s)/4; fixed point is exact here
    check_mean(c[C_DELIVERED_SHARE_SUM] / SHARE_SCALE, N_TRIALS, s, s * (1 - s) / n,
               what="delivered share")
    k = np.arange(n + 1)
    z = (np.log(1.0 + k) - math.log(3.0) - 2.0 / math.inf) / 0.3
    p_rep = float((binom.pmf(k, n, s) * norm.cdf(z)).sum())
    check_proportion(c[C_REPELLED], N_TRIALS, p_rep, what="P(repelled) with partial delivery")
    # stability 1: never defection, even with threshold 0
    t1, _ = run(sure_world(n, stability=1.0, defection_threshold=0.0), N_TRIALS, seed=113)
    assert t1.cells[0, C_DEFECTION] == 0
    assert t1.cells[0, C_DELIVERED_SHARE_SUM] == int(SHARE_SCALE) * N_TRIALS


# ---- noise: misperception and outcome noise ------------------------------------------------------


def two_target_world(**settings):
    """Targets S (strong: cap 4) and W (weak: cap 1) in no alliance; AGG cap 2, resolve 1."""
    return scenario([state("S", 4.0), state("W", 1.0), state("AGG", 2.0)], [],
                    [aggressor("AGG", ["S", "W"])], **settings)


def test_misperception_pushes_deterrence_toward_half():
    t = {}
    for sigma in (0.5, 1.5):
        t[sigma], _ = run(two_target_world(misperception=sigma), N_TRIALS, seed=114)
    for cell, cap in ((0, 4.0), (1, 1.0)):
        x = math.log(cap) - math.log(2.0)
        for sigma, tt in t.items():
            check_proportion(*rate(tt, C_DETERRED, C_TRIALS, cell), norm.cdf(x / sigma),
                             what=f"P(deterred) cap {cap} σ {sigma}")
        # same uniform, threshold Φ(x/σ) moves toward 1/2: the change is exactly the trials
        # with u between the two thresholds, Binomial(n, |Φ(x/1.5) − Φ(x/0.5)|)
        moved = abs(int(t[1.5].cells[cell, C_DETERRED]) - int(t[0.5].cells[cell, C_DETERRED]))
        check_proportion(moved, t[0.5].cells[cell, C_TRIALS],
                         abs(norm.cdf(x / 1.5) - norm.cdf(x / 0.5)), what=f"moved, cap {cap}")
        p_lo, p_hi = (tt.cells[cell, C_DETERRED] / tt.cells[cell, C_TRIALS] for tt in
                      (t[0.5], t[1.5]))
        assert abs(p_hi - 0.5) < abs(p_lo - 0.5)


def test_outcome_noise_pushes_repelled_toward_half():
    t = {}
    for sigma in (0.4, 1.0):
        t[sigma], _ = run(two_target_world(misperception=0.01, outcome_noise=sigma), N_TRIALS,
                          seed=115)
    # misperception 0.01: S (cap 4 > 2) is always deterred, W (cap 1 < 2) always attacked
    assert t[0.4].cells[0, C_ATTACKED] == 0 and t[0.4].cells[1, C_DETERRED] == 0
    x = math.log(1.0) - math.log(2.0)
    for sigma, tt in t.items():
        check_proportion(*rate(tt, C_REPELLED, C_ATTACKED, 1), norm.cdf(x / sigma),
                         what=f"P(repelled) σ_o {sigma}")
    check_lower(rate(t[0.4], C_REPELLED, C_ATTACKED, 1), rate(t[1.0], C_REPELLED, C_ATTACKED, 1),
                "outcome noise")
