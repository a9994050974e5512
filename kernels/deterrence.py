"""Step 2 of the model: the chance that an aggressor is deterred from a target."""

import math

import numpy as np
from numba import njit

SQRT_HALF = 0.7071067811865476


@njit(cache=True)
def normal_cdf(x):
    """Φ(x) of the standard normal."""
    return 0.5 * math.erfc(-x * SQRT_HALF)


@njit(cache=True)
def deterrence_probabilities(
    capability, commitment, membership, bindingness, cover_ptr, cover_idx,
    aggressor_state, resolve, target_ptr, target_state, misperception,
):
    """P(deterred) with and without alliances for every (aggressor, target) entry.

    Returns two float64 arrays of shape ``target_state.shape``: ``Φ((ln R − ln(cap_a·resolve))/σ)``
    with ``R = cap_t + Σ_allies cred_i · cap_i`` (allies summed in ascending state order,
    ``cred_i = max over covering alliances ∋ i of commitment_i · bindingness_A``), and the same
    with ``R = cap_t`` (the no-alliance baseline).
    """
    n_entries = target_state.shape[0]
    n_states = capability.shape[0]
    p_det = np.empty(n_entries, dtype=np.float64)
    p_det0 = np.empty(n_entries, dtype=np.float64)
    for j in range(aggressor_state.shape[0]):
        a = aggressor_state[j]
        log_threat = math.log(capability[a] * resolve[j])
        for ti in range(target_ptr[j], target_ptr[j + 1]):
            t = target_state[ti]
            response = capability[t]
            for i in range(n_states):
                if i == t or i == a:
                    continue
                cred = 0.0
                for c in range(cover_ptr[t], cover_ptr[t + 1]):
                    al = cover_idx[c]
                    if membership[i, al] != 0:
                        cred = max(cred, commitment[i] * bindingness[al])
                if cred > 0.0:
                    response = response + cred * capability[i]
            p_det[ti] = normal_cdf((math.log(response) - log_threat) / misperception)
            p_det0[ti] = normal_cdf((math.log(capability[t]) - log_threat) / misperception)
    return p_det, p_det0
