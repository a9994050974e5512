"""Campaigns (design §7, issue 15): the plain-Python contract ``engine.oracles.campaign_loop``
against v1 (neutral knobs), against closed forms, and its mechanisms one by one."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from engine.core.simulate import deterrence_tables
from engine.oracles.campaign_loop import simulate_campaign_python
from engine.oracles.python_loop import simulate_python
from kernels.layout import (
    AP_ACTIVE,
    AP_ALIVE,
    AP_EXITS,
    AP_JOINS,
    C_ATTACKED,
    C_DETERRED,
    C_TRIALS,
    M_PLEDGED,
    P_DISSOLVED,
    P_JOINS,
    P_REPUTATION_SUM,
    P_RESOLVE_SUM,
    RESOLVE_SCALE,
    SHARE_SCALE,
)
from tests.oracle_scenarios import V2_SCENARIOS, all_knobs, compiled, make_scenario

Z = 4.5  # two-sided normal tail 6.8e-6 per check; ≤ 40 checks per test: false failure < 3e-4


def _campaign(data: dict, **campaign) -> dict:
    data = copy.deepcopy(data)
    data["campaign"] = campaign
    return data


@pytest.mark.parametrize("name", sorted(V2_SCENARIOS))
def test_one_neutral_period_is_a_v1_run(name):
    """``steps = 1`` with neutral knobs: every v1 tally equal to the v1 plain-Python loop's,
    bit for bit (period 0 uses the v1 trial keys and the v1 step-2 tables)."""
    data = V2_SCENARIOS[name](name=name)
    v1 = compiled(data)
    c = compiled(_campaign(data, steps=1))
    tables = deterrence_tables(v1, 11)
    ref = simulate_python(v1, 11, 0, 400, deterrence=tables)
    got = simulate_campaign_python(c, 11, 0, 400, deterrence=tables)
    for part in ("cells", "cell_hist", "alliances", "alliance_hist"):
        assert np.array_equal(getattr(got, part), getattr(ref, part)), part
    assert np.array_equal(got.members[:v1.n_memberships], ref.members)
    assert np.array_equal(got.period_cells[0], ref.cells.sum(axis=0))
    assert np.array_equal(got.period_hist[0], ref.cell_hist.sum(axis=0))


def test_neutral_periods_are_independent_v1_crises():
    """Neutral knobs over 6 periods: period 0 is exactly the v1 run of those trials; every
    later period, drawn with its own keys, has v1's deterrence rate within Z standard errors
    (exact rate from the v1 tables: one cell per aggressor and target here)."""
    data = all_knobs(name="neutral-periods")
    v1 = compiled(data)
    c = compiled(_campaign(data, steps=6))
    tables = deterrence_tables(v1, 3)
    n = 1500
    got = simulate_campaign_python(c, 3, 0, n, deterrence=tables)
    ref = simulate_python(v1, 3, 0, n, deterrence=tables)
    assert np.array_equal(got.period_cells[0], ref.cells.sum(axis=0))
    # the exact per-crisis deterrence chance: Σ over cells of P(cell) · P(deterred | cell)
    weights = ref.cells[:, C_TRIALS] / n  # empirical cell shares are not exact: use the law
    p_cell = _cell_probabilities(v1)
    p = float(np.dot(p_cell, tables.p_deterred))
    assert abs(weights.sum() - 1.0) < 1e-12
    for s in range(6):
        rate = got.period_cells[s, C_DETERRED] / n
        assert abs(rate - p) < Z * math.sqrt(p * (1 - p) / n), (s, rate, p)
    assert got.periods[:, P_REPUTATION_SUM].tolist() == [n * int(SHARE_SCALE)] * 6


def _cell_probabilities(c) -> np.ndarray:
    """P(cell) of a v1 crisis draw from the compiled weights."""
    p = np.zeros(c.n_cells)
    agg_w = np.diff(np.concatenate([[0.0], c.aggressor_cum_weight]))
    for j in range(len(c.aggressor_state)):
        lo, hi = c.target_ptr[j], c.target_ptr[j + 1]
        t_w = np.diff(np.concatenate([[0.0], c.target_cum_weight[lo:hi]]))
        mlo, mhi = c.mix_ptr[j], c.mix_ptr[j + 1]
        k_w = np.diff(np.concatenate([[0.0], c.mix_cum_weight[mlo:mhi]]))
        for ti in range(lo, hi):
            for ki in range(mlo, mhi):
                cell = c.target_cell_base[ti] + (ki - mlo)
                p[cell] = agg_w[j] * t_w[ti - lo] * k_w[ki - mlo]
    return p


# ---- one ally: the reputation chain, exactly ------------------------------------------------
CAP_T, CAP_B, CAP_A = 0.05, 0.6, 0.3
COMMIT, BIND, ROUNDS, SIGMA = 0.3, 0.8, 3, 0.5


def _duo(resolve: float, **campaign) -> dict:
    states = {"T": {"capability": CAP_T, "commitment": 0.0},
              "B": {"capability": CAP_B, "commitment": COMMIT},
              "AGG": {"capability": CAP_A, "commitment": 0.0}}
    alliances = [{"id": "PACT", "members": ["T", "B"], "bindingness": BIND,
                  "max_rounds": ROUNDS}]
    aggressors = [{"state": "AGG", "resolve": resolve, "targets": {"T": 1.0},
                   "attack_mix": {"conventional": 1.0}}]
    data = make_scenario(states, alliances, aggressors, name="duo", misperception=SIGMA,
                         outcome_noise=0.3, mobilization_days=0.0)
    return _campaign(data, **campaign)


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _chain(resolve: float, lam: float, steps: int):
    """The exact law of B's reputation over the periods: each period the aggressor is deterred
    with p(r) (nothing changes), else B honors with h = 1 − (1 − c·b)^R (r + λ(1 − r)) or not
    (r · (1 − λ·b)).  Returns per period the deterrence rate and the mean and variance of the
    roster's mean reputation (T, the target, keeps 1)."""
    h = 1.0 - (1.0 - COMMIT * BIND) ** ROUNDS

    def p_det(r):
        response = CAP_T + (COMMIT * BIND) * r * CAP_B
        return _phi((math.log(response) - math.log(CAP_A * resolve)) / SIGMA)

    law = {1.0: 1.0}
    rates, means, variances = [], [], []
    for _ in range(steps):
        rates.append(sum(q * p_det(r) for r, q in law.items()))
        nxt: dict[float, float] = {}
        for r, q in law.items():
            d = p_det(r)
            for value, w in ((r, d), (r + lam * (1 - r), (1 - d) * h),
                             (r * (1 - lam * BIND), (1 - d) * (1 - h))):
                nxt[value] = nxt.get(value, 0.0) + q * w
        law = nxt
        mean = sum(q * (1 + r) / 2 for r, q in law.items())
        means.append(mean)
        variances.append(sum(q * ((1 + r) / 2) ** 2 for r, q in law.items()) - mean ** 2)
    return rates, means, variances


def test_one_ally_reputation_chain_and_deterrence_by_period():
    """One ally, no trust effect, no aggressor learning: the per-period deterrence rate and
    mean reputation match the exact law of the chain (:func:`_chain`) within Z standard
    errors (binomial for the rate; the law's own variance for the mean)."""
    steps, n, lam, resolve = 8, 3000, 0.5, 0.5
    c = compiled(_duo(resolve, steps=steps, reputation_learning=lam))
    got = simulate_campaign_python(c, 5, 0, n)
    rates, means, variances = _chain(resolve, lam, steps)
    # reputation erodes and deterrence with it: 0.70 → 0.54, four tolerances (0.04) apart
    assert rates[-1] < rates[0] - 0.15
    for s in range(steps):
        rate = got.period_cells[s, C_DETERRED] / n
        assert abs(rate - rates[s]) < Z * math.sqrt(rates[s] * (1 - rates[s]) / n), s
        mean = got.periods[s, P_REPUTATION_SUM] / SHARE_SCALE / n
        assert abs(mean - means[s]) < Z * math.sqrt(variances[s] / n) + 1e-6, s


def test_aggressor_learning_closed_form():
    """No deterrence possible (resolve 10⁶) and no reputation effect: each period the aggressor
    is repelled with the fixed q = h·Φ(ln((cap_T+cap_B)/cap_A)/σ_o) + (1−h)·Φ(ln(cap_T/cap_A)/σ_o),
    so E[m after period s] = (q·e^−ρ + (1−q)·e^ρ)^(s+1) (variance from the second moment);
    the successes per trajectory are Binomial(steps, 1 − q)."""
    steps, n, rho = 6, 3000, 0.15
    c = compiled(_duo(1e6, steps=steps, resolve_learning=rho))
    got = simulate_campaign_python(c, 9, 0, n)
    h = 1.0 - (1.0 - COMMIT * BIND) ** ROUNDS
    q = h * _phi(math.log((CAP_T + CAP_B) / CAP_A) / 0.3) + (1 - h) * _phi(
        math.log(CAP_T / CAP_A) / 0.3)
    assert got.period_cells[:, C_ATTACKED].tolist() == [n] * steps
    for s in range(steps):
        m1 = (q * math.exp(-rho) + (1 - q) * math.exp(rho)) ** (s + 1)
        m2 = (q * math.exp(-2 * rho) + (1 - q) * math.exp(2 * rho)) ** (s + 1)
        mean = got.periods[s, P_RESOLVE_SUM] / RESOLVE_SCALE / n
        assert abs(mean - m1) < Z * math.sqrt((m2 - m1 ** 2) / n) + 1e-5, s
    expected = np.array([math.comb(steps, k) * (1 - q) ** k * q ** (steps - k)
                         for k in range(steps + 1)])
    shares = got.successes / n
    assert np.all(np.abs(shares - expected) < Z * np.sqrt(expected * (1 - expected) / n) + 1e-9)


def test_quiet_periods_and_crisis_rate():
    """crisis_rate 0.3: the crises of each period are Binomial(n, 0.3)."""
    steps, n = 5, 2000
    c = compiled(_duo(1.0, steps=steps, crisis_rate=0.3))
    got = simulate_campaign_python(c, 2, 0, n)
    for s in range(steps):
        crises = got.period_cells[s, C_TRIALS]
        assert abs(crises / n - 0.3) < Z * math.sqrt(0.21 / n), s


def test_exit_dissolution_and_accession_step_by_step():
    """A deterministic trajectory (never deterred, λ = 1, bindingness 1).  Period 0: PACT
    (T, B, C; C never backs, so PACT never decides) consults and B and C violate: r_B = r_C =
    0.  Exits, alliances in order: in PACT B sees r̄ = r_C = 0 and leaves, C sees nobody
    (factor 1) and stays; in ALT (B, C, E, not covering T) B and C see (0 + 1)/2 = 0.5, not
    below 0.5, and stay, E sees 0 and leaves.  Period 1: in ALT B sees r_C = 0 and leaves, C
    then sees nobody and stays: ALT is left with one member and is dissolved.  Threat: κ = 1
    and exposure 1 put every threat at 1 after the first crisis, so the candidate D joins JOIN
    (F, G) in period 0."""
    data = _duo(1e6, steps=4, reputation_learning=1.0, exit_threshold=0.5, threat_shock=1.0,
                join_threshold=0.9)
    data["states"] += [{"id": s, "capability": 0.05, "commitment": x}
                       for s, x in (("C", 0.0), ("D", 0.5), ("E", 0.5), ("F", 0.5),
                                    ("G", 0.5))]
    data["alliances"][0].update(members=["T", "B", "C"], bindingness=1.0)
    data["alliances"] += [{"id": "ALT", "members": ["B", "C", "E"]},
                          {"id": "JOIN", "members": ["F", "G"], "candidates": ["D"]}]
    n = 100
    got = simulate_campaign_python(compiled(data), 4, 0, n)
    pact, alt, join = 0, 1, 2
    ap = got.alliance_periods
    assert ap[pact, :, AP_EXITS].tolist() == [n, 0, 0, 0]
    assert ap[alt, :, AP_EXITS].tolist() == [n, n, 0, 0]
    assert ap[alt, :, AP_ALIVE].tolist() == [n, 0, 0, 0]
    assert ap[pact, :, AP_ALIVE].tolist() == [n] * 4
    assert ap[join, :, AP_JOINS].tolist() == [n, 0, 0, 0]
    assert ap[join, :, AP_ACTIVE].tolist() == [3 * n] * 4
    assert got.periods[:, P_DISSOLVED].tolist() == [0, n, 0, 0]
    assert got.periods[:, P_JOINS].tolist() == [n, 0, 0, 0]
    # a dissolved alliance covers nobody and a left member is no longer consulted: after
    # period 0 PACT consults T and C only, so B pledges in period 0 only
    b_row = c_row = None
    c = compiled(data)
    for slot in range(c.campaign.roster_ptr[pact], c.campaign.roster_ptr[pact + 1]):
        state = c.state_ids[c.campaign.roster_idx[slot]]
        if state == "B":
            b_row = c.campaign.roster_row[slot]
        if state == "C":
            c_row = c.campaign.roster_row[slot]
    assert got.members[b_row, M_PLEDGED] == n and got.members[c_row, M_PLEDGED] == 4 * n
