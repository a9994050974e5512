"""Simulated estimates against the closed forms of design §2 (reference model v1).

Every statistical check allows Z = 4.5 standard errors of the estimate, the standard error
computed from the closed-form value and the number of trials it is estimated from: a two-sided
false-failure rate of 6.8e-6 per check (normal approximation, used when n·p·(1 − p) ≥ 1e3; rarer
events are checked against the exact binomial interval with the same rate, see conftest).  With
about 120 checks in this file the chance that a correct engine fails any of them on a given seed
is ≈ 1e-3; the seeds are fixed, so a pass is reproducible.  Checks that are exact (integer
identities) say so.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import (
    BIG,
    Z,
    aggressor,
    alliance,
    check_mean,
    check_proportion,
    members_world,
    run,
    scenario,
    state,
    unanimity_cdf,
)
from scipy import integrate
from scipy.stats import binom, norm

from kernels.layout import (
    A_DECIDED,
    A_DELAY_SUM,
    A_FIRST,
    C_ATTACKED,
    C_BACKING_SHARE_SUM,
    C_CONSULTED,
    C_DEADLOCK,
    C_DEFECTION,
    C_DELAY_SUM,
    C_DELIVERED_SHARE_SUM,
    C_DETERRED,
    C_DETERRED_NO_ALLIANCE,
    C_FREE_RIDERS_SUM,
    C_INVOKED,
    C_REPELLED,
    C_ROUNDS_SUM,
    C_TRIALS,
    C_VETO,
    C_WITH_ALLIED_BACKERS,
    DELAY_SCALE,
    SHARE_SCALE,
)

N_TRIALS = 400_000


# ---- helpers --------------------------------------------------------------------------------


def rounds_pmf(cdf):
    """P(rounds_used = r), r = 1..R, from P(decided by r)."""
    cdf = np.asarray(cdf, dtype=np.float64)
    return np.diff(np.concatenate([[0.0], cdf]))


def check_consultation(tallies, cdf, cell=0, what=""):
    """Check P(invoked | attacked), P(deadlock | attacked) (when no veto rule) and the rounds
    distribution against the closed-form ``cdf`` = P(decided by round r), r = 1..R.

    The world must use round_days = 1, no mobilization and no attribution, so that every invoked
    trial's delay is exactly ``rounds_used`` days and falls in histogram bin ``10 · r``: the
    histogram then gives the full rounds distribution.
    """
    c = tallies.cells[cell]
    hist = tallies.cell_hist[cell]
    n = c[C_ATTACKED]
    pmf = rounds_pmf(cdf)
    p_inv = cdf[-1]
    check_proportion(c[C_INVOKED], n, p_inv, what=f"{what} P(invoked | attacked)")
    # each rounds value: a binomial count out of the attacked trials (4.5 σ each)
    for r, pr in enumerate(pmf, start=1):
        check_proportion(hist[10 * r], n, pr, what=f"{what} P(rounds = {r} | attacked)")
    # exact: every invoked trial lands in one of the bins 10·r, and the sums agree
    assert hist.sum() == c[C_INVOKED]
    assert sum(hist[10 * r] for r in range(1, len(cdf) + 1)) == c[C_INVOKED]
    assert sum(r * hist[10 * r] for r in range(1, len(cdf) + 1)) == c[C_ROUNDS_SUM]
    assert c[C_DELAY_SUM] == int(DELAY_SCALE) * c[C_ROUNDS_SUM]
    # mean rounds among invoked: SE from the closed-form conditional variance (4.5 σ)
    r = np.arange(1, len(cdf) + 1)
    cond = pmf / p_inv
    mean = float((r * cond).sum())
    var = float((r * r * cond).sum()) - mean**2
    check_mean(c[C_ROUNDS_SUM], c[C_INVOKED], mean, var, what=f"{what} E[rounds | invoked]")
    return mean


# ---- 2. deterrence --------------------------------------------------------------------------


def deterrence_world(misperception=0.8):
    """T is covered by A1 (bindingness 0.8: T, X, Y) and A2 (bindingness 0.5: T, Y, Z, AGG);
    W shares only a consultation alliance with T (not an ally); U is in no alliance.
    Aggressors: AGG (weight 1, resolve 2) → T, U; AG2 (weight 3, resolve 1.5) → T."""
    states = [
        state("T", 1.0, 0.3),
        state("X", 2.0, 0.6),
        state("Y", 1.5, 0.8),
        state("Z", 3.0, 0.5),
        state("W", 5.0, 0.9),
        state("U", 0.7, 0.4),
        state("AGG", 2.0, 0.7),
        state("AG2", 3.0, 0.2),
    ]
    alliances = [
        alliance("A1", ["T", "X", "Y"], bindingness=0.8),
        alliance("A2", ["T", "Y", "Z", "AGG"], bindingness=0.5),
        alliance("A3", ["T", "W"], obligation="consultation"),
    ]
    aggressors = [aggressor("AGG", {"T": 1.0, "U": 1.0}, resolve=2.0),
                  aggressor("AG2", {"T": 1.0}, resolve=1.5, weight=3.0)]
    return scenario(states, alliances, aggressors, misperception=misperception)


@pytest.mark.parametrize("sigma", [0.8, 1.5])
def test_deterrence(sigma):
    n = 2_000_000
    tallies, _ = run(deterrence_world(sigma), n, seed=11)
    # cells: AGG→T, AGG→U, AG2→T
    cT, cU, c2 = tallies.cells
    # allies of T against AGG: X and Y (A1) only — A2 is a defense pact AGG belongs to, and a
    # defense pact does not cover a member against a member (design §8); W (consultation only)
    # is no ally.
    R = 1.0 + 0.6 * 0.8 * 2.0 + 0.8 * 0.8 * 1.5
    # against AG2 both pacts cover T: Y's cred = max(0.8·0.8, 0.8·0.5), Z (A2) and AGG (a
    # member of A2) are allies too: cred 0.5 · 0.5 and 0.7 · 0.5
    R2 = 1.0 + 0.6 * 0.8 * 2.0 + max(0.8 * 0.8, 0.8 * 0.5) * 1.5 + 0.5 * 0.5 * 3.0 + \
        0.7 * 0.5 * 2.0
    for c, resp, threat, what in ((cT, R, 2.0 * 2.0, "AGG→T"), (cU, 0.7, 2.0 * 2.0, "AGG→U"),
                                  (c2, R2, 3.0 * 1.5, "AG2→T")):
        check_proportion(c[C_DETERRED], c[C_TRIALS],
                         norm.cdf((math.log(resp) - math.log(threat)) / sigma),
                         what=f"P(deterred), {what}")
        cap_t = 0.7 if c is cU else 1.0
        check_proportion(c[C_DETERRED_NO_ALLIANCE], c[C_TRIALS],
                         norm.cdf((math.log(cap_t) - math.log(threat)) / sigma),
                         what=f"P(deterred without alliance), {what}")
        assert c[C_DETERRED] + c[C_ATTACKED] == c[C_TRIALS]  # exact
        # exact: same uniform and R ≥ cap_t, so deterred without alliance ⇒ deterred with it
        assert c[C_DETERRED] >= c[C_DETERRED_NO_ALLIANCE]
    # exact: a target outside every alliance has deterred == deterred_no_alliance
    assert cU[C_DETERRED] == cU[C_DETERRED_NO_ALLIANCE]
    # the draw of the crisis: aggressors by weight 1:3, AGG's targets 1:1 (4.5 σ each)
    check_proportion(c2[C_TRIALS], n, 0.75, what="P(aggressor = AG2)")
    check_proportion(cT[C_TRIALS], cT[C_TRIALS] + cU[C_TRIALS], 0.5, what="P(T | AGG)")


# ---- 4. consultation: unanimity ---------------------------------------------------------------


def test_unanimity_homogeneous():
    N, p, R = 5, 0.4, 3
    tallies, _ = run(members_world([p] * N, max_rounds=R), N_TRIALS, seed=21)
    assert tallies.cells[0, C_ATTACKED] == N_TRIALS  # exact: nobody is deterred
    cdf = np.array([(1.0 - (1.0 - p) ** r) ** N for r in range(1, R + 1)])
    check_consultation(tallies, cdf, what="unanimity N=5 p=0.4 R=3")
    c = tallies.cells[0]
    assert c[C_DEADLOCK] + c[C_INVOKED] == c[C_ATTACKED]  # exact
    assert c[C_VETO] == 0


def test_unanimity_heterogeneous():
    ps, R = [0.2, 0.5, 0.7, 0.9], 4
    tallies, _ = run(members_world(ps, max_rounds=R), N_TRIALS, seed=22)
    cdf = unanimity_cdf(np.repeat(np.array(ps)[:, None], R, axis=1))
    check_consultation(tallies, cdf, what="unanimity heterogeneous")
    assert tallies.cells[0, C_DEADLOCK] == N_TRIALS - tallies.cells[0, C_INVOKED]


def test_alliance_of_the_target_alone_is_not_invoked():
    # design §8: an alliance consults only when it has a member other than the target and the
    # aggressor (v1 let the target "decide" alone in round 1); exact
    data = scenario([state("T"), state("AGG", BIG)], [alliance("A", ["T"], round_days=1.0)],
                    [aggressor("AGG", ["T"], resolve=BIG)])
    tallies, _ = run(data, 10_000)
    c = tallies.cells[0]
    assert c[C_ATTACKED] == 10_000
    assert c[C_CONSULTED] == c[C_INVOKED] == c[C_ROUNDS_SUM] == c[C_WITH_ALLIED_BACKERS] == 0


# ---- 4. consultation: majority and qualified --------------------------------------------------


def binomial_rule_cdf(N, p, R, need):
    """P(decided by r) when N members besides the target back independently with chance p per
    round: backers by round r ~ 1 + Binomial(N, q_r), q_r = 1 − (1 − p)^r, and backing is
    monotone, so decided by r ⟺ 1 + Binomial(N, q_r) ≥ need."""
    q = 1.0 - (1.0 - p) ** np.arange(1, R + 1)
    return binom.sf(need - 2, N, q)  # P(X ≥ need − 1)


@pytest.mark.parametrize(
    "rule, N, p, R, quota, need, aggressor_member",
    [
        ("majority", 6, 0.3, 4, 0.5, 4, False),  # |M| = 7 → > 3.5 → 4
        ("majority", 5, 0.25, 5, 0.5, 4, False),  # |M| = 6 → > 3 → 4
        # AGG is a member of a collective-security alliance but not in M_A: |M_A| = 6 (a defense
        # pact would not cover T against its own member at all, design §8)
        ("majority", 5, 0.25, 5, 0.5, 4, True),
        ("qualified", 9, 0.2, 5, 0.6, 6, False),  # ceil(0.6 · 10) = 6
        ("qualified", 6, 0.35, 4, 2.0 / 3.0, 5, False),  # ceil(4.67) = 5
        ("qualified", 6, 0.35, 4, 0.1, 1, False),  # ceil(0.7) = 1: the target alone suffices
    ],
)
def test_majority_qualified(rule, N, p, R, quota, need, aggressor_member):
    data = members_world([p] * N, rule=rule, max_rounds=R, alliance_extra={"quota": quota})
    if aggressor_member:
        data["alliances"][0]["members"].append("AGG")
        data["alliances"][0]["obligation"] = "collective_security"
    tallies, _ = run(data, N_TRIALS, seed=31 + N + R)
    cdf = binomial_rule_cdf(N, p, R, need)
    if need <= 1:
        assert np.all(cdf == 1.0)
        c = tallies.cells[0]
        assert c[C_INVOKED] == c[C_ROUNDS_SUM] == N_TRIALS  # exact: decided in round 1
        return
    check_consultation(tallies, cdf, what=f"{rule} N={N} p={p} R={R} need={need}")
    c = tallies.cells[0]
    assert c[C_DEADLOCK] + c[C_INVOKED] == c[C_ATTACKED] and c[C_VETO] == 0


# ---- 4–5. consultation: veto -------------------------------------------------------------------


def veto_closed_form(n_veto, p_v, n_other, p_o, R, need):
    """(P(decided by r) for r = 1..R, P(veto failure)).

    Condition on the number j of veto holders (besides the target) backing by round r,
    j ~ Binomial(n_veto, q_r(p_v)); the others X ~ Binomial(n_other, q_r(p_o)); backers 1 + j + X.
    Decided by r ⟺ j = n_veto and 1 + n_veto + X ≥ need.  Veto failure: at round R the quota is
    met (1 + j + X ≥ need) but j < n_veto.
    """
    rounds = np.arange(1, R + 1)
    qv = 1.0 - (1.0 - p_v) ** rounds
    qo = 1.0 - (1.0 - p_o) ** rounds
    cdf = qv**n_veto * binom.sf(need - 2 - n_veto, n_other, qo)
    veto = sum(binom.pmf(j, n_veto, qv[-1]) * binom.sf(need - 2 - j, n_other, qo[-1])
               for j in range(n_veto))
    return cdf, float(veto)


@pytest.mark.parametrize(
    "n_veto, p_v, n_other, p_o, R, quota, variant",
    [
        (2, 0.6, 5, 0.5, 3, 0.6, "plain"),  # |M| = 8, need ceil(4.8) = 5
        (3, 0.4, 6, 0.6, 4, 0.6, "plain"),  # |M| = 10, need 6
        (2, 0.6, 5, 0.5, 3, 0.6, "target_veto"),  # T also holds a veto: it always backs
        # AGG holds a veto in a collective-security alliance but is not in M_A
        (2, 0.6, 5, 0.5, 3, 0.6, "aggressor_veto"),
    ],
)
def test_veto(n_veto, p_v, n_other, p_o, R, quota, variant):
    commitments = [p_v] * n_veto + [p_o] * n_other
    holders = [f"M{i}" for i in range(1, n_veto + 1)]
    data = members_world(commitments, rule="veto", max_rounds=R,
                         alliance_extra={"quota": quota, "veto_holders": list(holders)})
    al = data["alliances"][0]
    if variant == "target_veto":
        al["veto_holders"].append("T")
    if variant == "aggressor_veto":
        al["members"].append("AGG")
        al["veto_holders"].append("AGG")
        al["obligation"] = "collective_security"  # a defense pact would not cover T (§8)
    m = 1 + n_veto + n_other
    need = math.ceil(quota * m - 1e-9)
    tallies, _ = run(data, N_TRIALS, seed=41 + n_veto + R)
    cdf, p_veto = veto_closed_form(n_veto, p_v, n_other, p_o, R, need)
    assert 0.05 < p_veto < 0.5  # the scenario does exercise the veto breakdown
    check_consultation(tallies, cdf, what=f"veto {variant}")
    c = tallies.cells[0]
    check_proportion(c[C_VETO], c[C_ATTACKED], p_veto, what=f"veto {variant}: P(veto failure)")
    check_proportion(c[C_DEADLOCK], c[C_ATTACKED], 1.0 - cdf[-1] - p_veto,
                     what=f"veto {variant}: P(deadlock)")
    assert c[C_VETO] + c[C_DEADLOCK] + c[C_INVOKED] == c[C_ATTACKED]  # exact


# ---- 6. delay -----------------------------------------------------------------------------------


def test_mean_delay_and_quantiles():
    N, p, R = 3, 0.5, 4
    mu, d, m, g = 5.0, 2.0, 10.0, 0.3
    data = members_world([p] * N, max_rounds=R, round_days=d, mobilization_days=m,
                         alliance_extra={"integration": g}, attack={"attribution_days": mu})
    tallies, _ = run(data, N_TRIALS, seed=51)
    c = tallies.cells[0]
    cdf = unanimity_cdf(np.full((N, R), p))
    pmf = rounds_pmf(cdf)
    check_proportion(c[C_INVOKED], c[C_ATTACKED], cdf[-1], what="P(invoked)")
    cond = pmf / cdf[-1]
    r = np.arange(1, R + 1)
    e_rounds = float((r * cond).sum())
    v_rounds = float((r * r * cond).sum()) - e_rounds**2
    check_mean(c[C_ROUNDS_SUM], c[C_INVOKED], e_rounds, v_rounds, what="E[rounds | invoked]")
    # E[delay | invoked] = μ + d·E[rounds | invoked] + m(1 − g); D_att is independent of the
    # consultation, so Var = μ² + d²·Var(rounds).  4.5 σ plus 1/1024 day of fixed-point rounding.
    mean = mu + d * e_rounds + m * (1.0 - g)
    var = mu**2 + d**2 * v_rounds
    check_mean(c[C_DELAY_SUM] / DELAY_SCALE, c[C_INVOKED], mean, var, slack=1.0 / DELAY_SCALE,
               what="E[delay | invoked]")
    # delay distribution from the histogram: P(delay < x | invoked) =
    # Σ_r P(r | invoked) · (1 − exp(−(x − c_r)/μ))₊ with c_r = r·d + m(1 − g); bins are 0.1 day
    # wide below 128 days, so bins [0, 10x) hold exactly the delays < x (x a multiple of 0.1).
    hist = tallies.cell_hist[0]
    assert hist.sum() == c[C_INVOKED]
    offsets = r * d + m * (1.0 - g)
    for x in (12.0, 15.0, 20.0, 30.0, 60.0):
        p_below = float((cond * np.clip(1.0 - np.exp(-(x - offsets) / mu), 0.0, None)).sum())
        check_proportion(hist[: int(round(10 * x))].sum(), c[C_INVOKED], p_below,
                         what=f"P(delay < {x} | invoked)")


def test_delay_histogram_without_attribution():
    # no attribution: every invoked delay is exactly r·d + m(1 − g) = 2r + 7.5 (exact in binary)
    N, p, R = 3, 0.5, 4
    d, m, g = 2.0, 10.0, 0.25
    data = members_world([p] * N, max_rounds=R, round_days=d, mobilization_days=m,
                         alliance_extra={"integration": g})
    tallies, _ = run(data, N_TRIALS, seed=52)
    c = tallies.cells[0]
    hist = tallies.cell_hist[0]
    bins = [int(10 * (r * d + m * (1.0 - g))) for r in range(1, R + 1)]  # 95, 115, 135, 155
    assert sum(hist[b] for b in bins) == hist.sum() == c[C_INVOKED]  # exact
    pmf = rounds_pmf(unanimity_cdf(np.full((N, R), p)))
    for b, pr in zip(bins, pmf, strict=True):
        check_proportion(hist[b], c[C_ATTACKED], pr, what=f"P(delay bin {b})")
    # exact: each delay is a multiple of 1/1024, so the fixed-point sum has no rounding
    assert c[C_DELAY_SUM] == int(DELAY_SCALE) * (2 * c[C_ROUNDS_SUM]) + int(7.5 * DELAY_SCALE) * c[
        C_INVOKED]


# ---- 8. outcome ----------------------------------------------------------------------------------


def repel_world():
    """T (cap 1) with M1 (cap 2) and M2 (cap 1.5), commitment 1, stability 1, unanimity:
    invocation is certain in round 1.  U (cap 1.3) is in no alliance.  Two attack types:
    conv (severity 1, attribution 0) and slow (severity 0.8, attribution mean 8 days)."""
    states = [state("T", 1.0), state("M1", 2.0, stability=1.0), state("M2", 1.5),
              state("U", 1.3), state("AGG", 3.0)]
    al = alliance("A", ["T", "M1", "M2"], round_days=3.0, integration=0.4)
    return scenario(
        states, [al],
        [aggressor("AGG", ["T", "U"], {"conv": 1.0, "slow": 1.0}, resolve=BIG)],
        attack_types={"conv": {"severity": 1.0},
                      "slow": {"severity": 0.8, "attribution_days": 8.0}},
        mobilization_days=10.0, window_days=20.0, interoperability_bonus=0.5, outcome_noise=0.3,
    )


def p_repel(log_ratio, fixed_delay, window, sigma, mu=0.0):
    """P(repelled) = E Φ((log_ratio − (D + fixed_delay)/window)/σ), D ~ Exp(mean μ) (0 if μ = 0)."""
    if mu == 0.0:
        return norm.cdf((log_ratio - fixed_delay / window) / sigma)

    def f(x):
        return norm.cdf((log_ratio - (x + fixed_delay) / window) / sigma) * math.exp(-x / mu) / mu

    value, err = integrate.quad(f, 0.0, np.inf, epsabs=1e-13, epsrel=1e-12)
    assert err < 1e-9
    return value


def test_repelled():
    tallies, _ = run(repel_world(), 1_000_000, seed=61)
    cells = {(t, k): tallies.cells[i] for i, (t, k) in
             enumerate([("T", "conv"), ("T", "slow"), ("U", "conv"), ("U", "slow")])}
    F = (1.0 + 2.0 + 1.5) * (1.0 + 0.4 * 0.5)
    fixed_delay = 1 * 3.0 + 10.0 * (1.0 - 0.4)  # round 1, mobilization · (1 − integration)
    for k, sev, mu in (("conv", 1.0, 0.0), ("slow", 0.8, 8.0)):
        c = cells[("T", k)]
        # exact: invocation in round 1 with both allies backing and delivering
        assert c[C_INVOKED] == c[C_ATTACKED] == c[C_ROUNDS_SUM] == c[C_WITH_ALLIED_BACKERS]
        assert c[C_DELIVERED_SHARE_SUM] == int(SHARE_SCALE) * c[C_INVOKED]
        assert c[C_DEFECTION] == 0
        p = p_repel(math.log(F) - math.log(3.0 * sev), fixed_delay, 20.0, 0.3, mu)
        check_proportion(c[C_REPELLED], c[C_ATTACKED], p, what=f"P(repelled), T, {k}")
        # no alliance: F = cap_t, delay = D_att
        c = cells[("U", k)]
        assert c[C_INVOKED] == 0
        p = p_repel(math.log(1.3) - math.log(3.0 * sev), 0.0, 20.0, 0.3, mu)
        check_proportion(c[C_REPELLED], c[C_ATTACKED], p, what=f"P(repelled), U, {k}")


def test_repelled_no_alliance_window_inf():
    # the no-alliance baseline: P(repelled | attacked) = Φ((ln cap_t − ln(cap_a·sev))/σ_o)
    data = scenario([state("U", 1.3), state("AGG", 2.0)], [],
                    [aggressor("AGG", ["U"], resolve=BIG)],
                    attack_types={"conv": {"severity": 0.9}}, outcome_noise=0.45)
    tallies, _ = run(data, N_TRIALS, seed=62)
    c = tallies.cells[0]
    assert c[C_ATTACKED] == N_TRIALS
    check_proportion(c[C_REPELLED], c[C_ATTACKED],
                     norm.cdf((math.log(1.3) - math.log(2.0 * 0.9)) / 0.45),
                     what="P(repelled), no alliance")


# ---- 4/6/7. free riders and backing share --------------------------------------------------------


def end_of_consultation(N, p, R, need):
    """Joint law of (decided, backers besides the target at the end) for N members with chance p
    per round: returns a list of (probability, decided, k).  Decided in round r with k backers:
    X_{r−1} = j < need − 1 ≤ k = X_r, a trinomial over (backed by r − 1, newly in r, not yet)."""
    q = np.concatenate([[0.0], 1.0 - (1.0 - p) ** np.arange(1, R + 1)])
    out = []
    for r in range(1, R + 1):
        for j in range(0, min(N, need - 2) + 1):
            for k in range(max(j, need - 1), N + 1):
                pr = (math.comb(N, j) * math.comb(N - j, k - j) * q[r - 1] ** j
                      * (q[r] - q[r - 1]) ** (k - j) * (1.0 - q[r]) ** (N - k))
                out.append((pr, True, k))
    for k in range(0, need - 1):
        out.append((binom.pmf(k, N, q[R]), False, k))
    return out


def test_free_riders_and_backing_share():
    # majority, N = 6 besides the target, |M| = 7, need 4: members that had not backed when the
    # alliance decided are free riders; the backing share is (1 + backers)/7 at the end
    N, p, R, need = 6, 0.3, 4, 4
    tallies, _ = run(members_world([p] * N, rule="majority", max_rounds=R), N_TRIALS, seed=71)
    c = tallies.cells[0]
    law = end_of_consultation(N, p, R, need)
    assert abs(sum(pr for pr, _, _ in law) - 1.0) < 1e-12
    p_inv = sum(pr for pr, dec, _ in law if dec)
    check_proportion(c[C_INVOKED], c[C_ATTACKED], p_inv, what="P(invoked)")
    fr = [(pr / p_inv, N - k) for pr, dec, k in law if dec]
    mean = sum(w * x for w, x in fr)
    var = sum(w * x * x for w, x in fr) - mean**2
    check_mean(c[C_FREE_RIDERS_SUM], c[C_INVOKED], mean, var, what="E[free riders | invoked]")
    share = [(pr, (1 + k) / (N + 1)) for pr, _, k in law]
    mean = sum(w * x for w, x in share)
    var = sum(w * x * x for w, x in share) - mean**2
    assert c[C_CONSULTED] == c[C_ATTACKED]
    # 4.5 σ plus 2^-24 of fixed-point rounding per trial
    check_mean(c[C_BACKING_SHARE_SUM] / SHARE_SCALE, c[C_CONSULTED], mean, var,
               slack=1.0 / SHARE_SCALE, what="E[backing share]")


# ---- 6–8. several covering alliances: the earliest decision counts -------------------------------


def test_two_alliances_earliest_decision():
    # A (T, M1, M2: round_days 1) and B (T, M3, M4: round_days 1.6) consult independently
    # (each member draws per alliance); unanimity, p = 0.5, 3 rounds each.  Decision times:
    # A at 1, 2, 3 days, B at 1.6, 3.2, 4.8 (no ties); the first decision τ = min(τ_A, τ_B)
    # gives the delay (no mobilization, no attribution).
    p, R = 0.5, 3
    states = [state("T"), *(state(f"M{i}", 1.0, p) for i in range(1, 5)), state("AGG", BIG)]
    alliances = [alliance("A", ["T", "M1", "M2"], round_days=1.0, max_rounds=R),
                 alliance("B", ["T", "M3", "M4"], round_days=1.6, max_rounds=R)]
    data = scenario(states, alliances, [aggressor("AGG", ["T"], resolve=BIG)])
    tallies, _ = run(data, N_TRIALS, seed=81)
    c, hist = tallies.cells[0], tallies.cell_hist[0]
    F = np.concatenate([[0.0], (1.0 - (1.0 - p) ** np.arange(1, R + 1)) ** 2])  # F[r], r = 0..R
    days = {"A": 1.0, "B": 1.6}

    def cdf(name, t):  # P(alliance decided by time t)
        return F[min(R, int(math.floor(t / days[name] + 1e-9)))]

    times = sorted({r * d for d in days.values() for r in range(1, R + 1)})
    for t in times:
        before = t - 1e-6
        g = 1 - (1 - cdf("A", t)) * (1 - cdf("B", t))
        g_before = 1 - (1 - cdf("A", before)) * (1 - cdf("B", before))
        check_proportion(hist[int(t * 10)], N_TRIALS, g - g_before, what=f"P(delay = {t})")
    assert hist.sum() == c[C_INVOKED]
    assert sum(hist[int(t * 10)] for t in times) == c[C_INVOKED]  # exact
    check_proportion(c[C_INVOKED], N_TRIALS, 1 - (1 - F[R]) ** 2, what="P(invoked)")
    # each alliance decides with chance F[R]; A's decision is the first one iff τ_A < τ_B
    p_a_first = sum((F[r] - F[r - 1]) * (1 - cdf("B", r * 1.0)) for r in range(1, R + 1))
    for i in (0, 1):
        check_proportion(tallies.alliances[i, A_DECIDED], N_TRIALS, F[R], what=f"decided {i}")
    check_proportion(tallies.alliances[0, A_FIRST], N_TRIALS, p_a_first, what="A first")
    check_proportion(tallies.alliances[1, A_FIRST], N_TRIALS, 1 - (1 - F[R]) ** 2 - p_a_first,
                     what="B first")
    assert tallies.alliances[:, A_FIRST].sum() == c[C_INVOKED]  # exact


def test_two_alliances_outcome():
    # both alliances decide in round 1 (commitment 1); A (1 day) decides before B (2 days), so
    # the delay uses A's integration: 1 + 10·(1 − 0.2) = 9 days, and the bonus too; the backers
    # of both deciding alliances respond: F = (1 + 2 + 1.5)·(1 + 0.2·0.5).
    states = [state("T"), state("M1", 2.0), state("M2", 1.5), state("AGG", 4.0)]
    alliances = [alliance("A", ["T", "M1"], round_days=1.0, integration=0.2),
                 alliance("B", ["T", "M2"], round_days=2.0, integration=0.8)]
    data = scenario(states, alliances, [aggressor("AGG", ["T"], resolve=BIG)],
                    mobilization_days=10.0, interoperability_bonus=0.5, window_days=40.0,
                    outcome_noise=0.25)
    tallies, _ = run(data, N_TRIALS, seed=82)
    c = tallies.cells[0]
    n = N_TRIALS
    assert c[C_INVOKED] == c[C_ROUNDS_SUM] == c[C_WITH_ALLIED_BACKERS] == n  # exact
    assert c[C_DELAY_SUM] == round(9.0 * DELAY_SCALE) * n
    assert tallies.alliances[0, A_FIRST] == n and tallies.alliances[1, A_FIRST] == 0
    assert tallies.alliances[0, A_DELAY_SUM] == c[C_DELAY_SUM]
    assert c[C_DELIVERED_SHARE_SUM] == int(SHARE_SCALE) * n and c[C_FREE_RIDERS_SUM] == 0
    F = 4.5 * (1.0 + 0.2 * 0.5)
    p = norm.cdf((math.log(F) - math.log(4.0) - 9.0 / 40.0) / 0.25)
    check_proportion(c[C_REPELLED], n, p, what="P(repelled), two alliances")


def test_z_is_what_the_tolerance_says():
    assert Z == 4.5 and abs(2 * norm.sf(Z) - 6.8e-6) < 1e-7
