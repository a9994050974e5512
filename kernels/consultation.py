"""Steps 4–5 of the model: one covering alliance consults its members.

The per-cell constants come from :mod:`kernels.prepare`; scratch arrays are indexed by a member's
position ``p`` within its consultation's entries (ascending state order, aggressor excluded).
Each round visits every member with branch-free arithmetic (whether a member backs is a coin
flip no branch predictor can learn), and the backers' capability is an integer sum (capability
units), so the loop vectorizes and its result does not depend on summation order.
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
def consult(
    cc, t, key, max_rounds, intel, threat_weight, vetoing,
    cc_alliance, cc_entry_ptr, cc_need, cc_units_members, cc_free_riding,
    e_state, e_units, e_free_riding, e_base, e_theta, e_static, e_veto,
    backed, draw, survival, theta,
):
    """Run consultation ``cc`` (one covering alliance of one cell) for the trial with ``key``.

    ``max_rounds``, ``intel`` (``intel_sharing``) and ``vetoing`` (rule is ``veto``) are the
    alliance's.  A member backs in the first round ``r`` with ``draw < 1 − Π_{s≤r}(1 − p_s)``.
    Scratch (length ≥ the consultation's entries): ``backed`` uint8 — on return, who backed;
    ``draw``, ``survival``, ``theta`` float64.
    Returns ``(decided, rounds_used, n_backers, n_members, vetoed)``.
    """
    al = cc_alliance[cc]
    lo = cc_entry_ptr[cc]
    m = cc_entry_ptr[cc + 1] - lo
    n_back = 0
    veto_left = 0
    units_back = 0
    slot0 = SLOT_CONSULT_BASE + (al << 20)
    for p in range(m):
        i = e_state[lo + p]
        if i == t:
            backed[p] = 1  # the target backs action from the start
            n_back += 1
            units_back = e_units[lo + p]
            draw[p] = 0.0
        else:
            backed[p] = 0
            draw[p] = uniform(key, slot0 + i)
            veto_left += e_veto[lo + p]
        survival[p] = 1.0
    need = cc_need[cc]
    moving_threat = intel > 0.0 and threat_weight > 0.0
    if moving_threat:
        for p in range(m):
            theta[p] = e_theta[lo + p]
    riding = cc_free_riding[cc] != 0
    units_members = cc_units_members[cc]
    w = threat_weight
    for r in range(1, max_rounds + 1):
        if moving_threat and r > 1:
            total = 0.0
            for p in range(m):
                total += theta[p]
            mean = total / m
            for p in range(m):
                theta[p] = theta[p] + intel * (mean - theta[p])
        share = units_back / units_members if riding else 0.0
        new_back = 0
        new_units = 0
        new_veto = 0
        for p in range(m):
            e = lo + p
            if moving_threat:
                prob = (e_base[e] * ((1.0 - w) + w * theta[p])) * (1.0 - e_free_riding[e] * share)
            else:
                prob = e_static[e] * (1.0 - e_free_riding[e] * share)
            waiting = backed[p] == 0
            s_next = survival[p] * (1.0 - prob)
            survival[p] = s_next if waiting else survival[p]
            backs = waiting and draw[p] < 1.0 - s_next
            backed[p] = backed[p] | backs
            new_back += backs
            new_units += e_units[e] if backs else 0
            new_veto += e_veto[e] if backs else 0
        n_back += new_back
        units_back += new_units
        veto_left -= new_veto
        if n_back >= need and veto_left == 0:
            return True, r, n_back, m, False
    vetoed = vetoing and n_back >= need
    return False, 0, n_back, m, vetoed
