"""Steps 4–5 of the model: one covering alliance consults its members, for a batch of trials.

All trials of a batch share a cell (aggressor, target, attack type), so they share the
consultation's constants (:mod:`kernels.prepare`).  State is laid out member × trial, and the
inner loop runs over trials: no dependency from one trial to the next, no unpredictable branch,
so it vectorizes.  Each member backs in the first round ``r`` with
``draw < 1 − Π_{s≤r}(1 − p_s)``; a trial whose alliance has decided is frozen (masked).
The backers' capability is an integer sum (capability units), exact in any order.
"""

import math

from numba import njit

from .layout import QUOTA_EPSILON, RULE_MAJORITY, RULE_UNANIMITY, SLOT_CONSULT_BASE
from .rng import uniform


@njit(cache=True)
def backers_needed(rule, quota, m):
    """Backers the rule needs among ``m`` members (for veto: before the veto check)."""
    if rule == RULE_UNANIMITY:
        return m
    if rule == RULE_MAJORITY:
        return m // 2 + 1
    return max(1, int(math.ceil(quota * m - QUOTA_EPSILON)))


@njit(cache=True)
def consult_batch(
    cc, t, keys, idx, n, max_rounds, intel, threat_weight, vetoing,
    cc_alliance, cc_entry_ptr, cc_need, cc_units_members, cc_free_riding,
    e_state, e_units, e_free_riding, e_base, e_theta, e_static, e_veto,
    backed, draw, survival, theta, factor, share, units_back, veto_left,
    new_back, new_units, new_veto,
    decided, rounds, n_back, vetoed,
):
    """Run consultation ``cc`` for ``n`` trials of one cell; trial ``q`` has key ``keys[idx[q]]``.

    Scratch (float64 unless noted): ``backed`` uint8 (≥ m, ≥ n) — on return, who backed;
    ``draw``, ``survival`` (≥ m, ≥ n); ``theta``, ``factor`` (≥ m); ``share`` (≥ n);
    ``units_back``, ``veto_left``, ``new_back``, ``new_units``, ``new_veto`` int64 (≥ n).
    Outputs per trial (≥ n): ``decided`` uint8, ``rounds`` int64 (0 if not decided),
    ``n_back`` int64 (backers, target included), ``vetoed`` uint8 (rule ``veto``, quota met, a
    veto holder never backed).  Returns the number of members ``m``.
    """
    al = cc_alliance[cc]
    lo = cc_entry_ptr[cc]
    m = cc_entry_ptr[cc + 1] - lo
    slot0 = SLOT_CONSULT_BASE + (al << 20)
    for q in range(n):
        units_back[q] = 0
        n_back[q] = 0
        veto_left[q] = 0
        decided[q] = 0
        rounds[q] = 0
    for p in range(m):
        i = e_state[lo + p]
        b_row = backed[p]
        d_row = draw[p]
        s_row = survival[p]
        if i == t:  # the target backs action from the start
            for q in range(n):
                b_row[q] = 1
                d_row[q] = 0.0
                s_row[q] = 1.0
                n_back[q] += 1
                units_back[q] += e_units[lo + p]
        else:
            vp = e_veto[lo + p]
            for q in range(n):
                b_row[q] = 0
                d_row[q] = uniform(keys[idx[q]], slot0 + i)
                s_row[q] = 1.0
                veto_left[q] += vp
        theta[p] = e_theta[lo + p]
        factor[p] = e_static[lo + p]
    need = cc_need[cc]
    moving_threat = intel > 0.0 and threat_weight > 0.0
    riding = cc_free_riding[cc] != 0
    units_members = cc_units_members[cc]
    w = threat_weight
    active = n
    for r in range(1, max_rounds + 1):
        if moving_threat:
            if r > 1:  # θ moves toward the alliance mean: the same for every trial of the cell
                total = 0.0
                for p in range(m):
                    total += theta[p]
                mean = total / m
                for p in range(m):
                    theta[p] = theta[p] + intel * (mean - theta[p])
            for p in range(m):
                factor[p] = e_base[lo + p] * ((1.0 - w) + w * theta[p])
        for q in range(n):
            share[q] = units_back[q] / units_members if riding else 0.0
            new_back[q] = 0
            new_units[q] = 0
            new_veto[q] = 0
        for p in range(m):
            f = factor[p]
            rho = e_free_riding[lo + p]
            u_p = e_units[lo + p]
            v_p = e_veto[lo + p]
            b_row = backed[p]
            d_row = draw[p]
            s_row = survival[p]
            for q in range(n):
                waiting = (b_row[q] == 0) & (decided[q] == 0)
                prob = f * (1.0 - rho * share[q])
                s_next = s_row[q] * (1.0 - prob)
                s_row[q] = s_next if waiting else s_row[q]
                backs = waiting & (d_row[q] < 1.0 - s_next)
                b_row[q] = b_row[q] | backs
                new_back[q] += backs
                new_units[q] += u_p if backs else 0
                new_veto[q] += v_p if backs else 0
        for q in range(n):
            if decided[q] == 0:
                n_back[q] += new_back[q]
                units_back[q] += new_units[q]
                veto_left[q] -= new_veto[q]
                if n_back[q] >= need and veto_left[q] == 0:
                    decided[q] = 1
                    rounds[q] = r
                    active -= 1
        if active == 0:
            break
    for q in range(n):
        vetoed[q] = 1 if vetoing and decided[q] == 0 and n_back[q] >= need else 0
    return m
