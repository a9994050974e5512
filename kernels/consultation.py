"""Steps 4–5 of the model: decision rules.

The consultation itself runs inside the trial loop (:func:`kernels.trial._run_trials`, step
4–5), batched over the attacked trials of one cell with the per-cell constants of
:mod:`kernels.prepare`; it calls nothing per member or per round.  A rule holds after a round
when the backers (target included) reach :func:`backers_needed` and, for ``veto``, no veto
holder of ``M_A`` is left out.
"""

import math

from numba import njit

from .layout import QUOTA_EPSILON, RULE_MAJORITY, RULE_UNANIMITY


@njit(cache=True)
def backers_needed(rule, quota, m):
    """Backers the rule needs among ``m`` members (for veto: before the veto check)."""
    if rule == RULE_UNANIMITY:
        return m
    if rule == RULE_MAJORITY:
        return m // 2 + 1
    return max(1, int(math.ceil(quota * m - QUOTA_EPSILON)))
