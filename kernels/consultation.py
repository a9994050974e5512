"""Step 4–5 of the model: one covering alliance consults its members.

Members are taken in ascending state order, the aggressor excluded (``M_A``).  Scratch arrays
are indexed by position within the alliance's member list (``member_ptr[A]`` …).
"""

import math

from numba import njit

from .layout import (
    QUOTA_EPSILON,
    RULE_MAJORITY,
    RULE_UNANIMITY,
    RULE_VETO,
    SLOT_CONSULT_BASE,
)
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
    al, a, t, k, key,
    capability, commitment, free_riding, member_ptr, member_idx, rule, quota, veto,
    max_rounds, bindingness, intel_sharing, shares_alliance, exposure,
    severity, ambiguity, conflict_penalty, threat_weight,
    active, backed, survival, draw, theta, base,
):
    """Run alliance ``al``'s consultation for a trial (aggressor state ``a``, target ``t``,
    attack type ``k``, trial ``key``).

    Scratch (float64/uint8 arrays at least as long as the largest alliance): ``active`` marks
    members of ``M_A``; on return ``backed`` marks who backed.  Returns
    ``(decided, rounds_used, n_backers, n_members, vetoed)``; ``vetoed`` is True when the rule is
    ``veto``, the quota was met and a veto holder never backed.
    """
    lo = member_ptr[al]
    hi = member_ptr[al + 1]
    n = hi - lo
    m = 0
    cap_members = 0.0
    n_back = 0
    theta_sum = 0.0
    any_free_riding = False
    for p in range(n):
        i = member_idx[lo + p]
        if i == a:
            active[p] = 0
            backed[p] = 0
            continue
        active[p] = 1
        m += 1
        cap_members += capability[i]
        survival[p] = 1.0
        theta[p] = min(1.0, exposure[i, t] * severity[k])
        theta_sum += theta[p]
        conflict = 1.0 - conflict_penalty if shares_alliance[i, a] != 0 else 1.0
        base[p] = ((commitment[i] * bindingness[al]) * (1.0 - ambiguity[k])) * conflict
        if i == t:
            backed[p] = 1
            n_back += 1
        else:
            backed[p] = 0
            draw[p] = uniform(key, SLOT_CONSULT_BASE + (al << 20) + i)
            if free_riding[i] > 0.0:
                any_free_riding = True
    need = backers_needed(rule[al], quota[al], m)
    w = threat_weight
    intel = intel_sharing[al]
    for r in range(1, max_rounds[al] + 1):
        if r > 1 and intel > 0.0:
            mean = theta_sum / m
            theta_sum = 0.0
            for p in range(n):
                if active[p] != 0:
                    theta[p] = theta[p] + intel * (mean - theta[p])
                    theta_sum += theta[p]
        share = 0.0
        if any_free_riding:
            cap_back = 0.0
            for p in range(n):
                if backed[p] != 0:
                    cap_back += capability[member_idx[lo + p]]
            share = cap_back / cap_members
        new_back = 0
        for p in range(n):
            if active[p] == 0 or backed[p] != 0:
                continue
            i = member_idx[lo + p]
            threat = (1.0 - w) + w * theta[p]
            ride = 1.0 - free_riding[i] * share
            prob = ((base[p] * threat) * ride)
            survival[p] = survival[p] * (1.0 - prob)
            if draw[p] < 1.0 - survival[p]:
                backed[p] = 1  # `share` was fixed at the round's start, so order is irrelevant
                new_back += 1
        n_back += new_back
        holds = n_back >= need
        if holds and rule[al] == RULE_VETO:
            for p in range(n):
                if active[p] != 0 and veto[member_idx[lo + p], al] != 0 and backed[p] == 0:
                    holds = False
                    break
        if holds:
            return True, r, n_back, m, False
    vetoed = rule[al] == RULE_VETO and n_back >= need
    return False, 0, n_back, m, vetoed
