"""Step 2 of the model: the chance that an aggressor is deterred, per cell (design §2, §8).

* ``capability`` mode (v1): :func:`deterrence_probabilities` per (aggressor, target) entry, from
  capabilities and commitments alone.
* ``expected_response`` mode (§8): the aggressor weighs ``E_cell = E[F · exp(−delay /
  window_days)]`` over the cell's steps 3–8.  :func:`exact_expected_response` gives ``E_cell``
  where a closed form exists and marks the other cells for the keyed pilot simulation
  (:class:`kernels.args.Run`); :func:`expected_response_probabilities` turns ``E_cell`` into
  ``P(deterred)``.
"""

import math

import numpy as np
from numba import njit

from .layout import E_EXACT, E_PILOT, RULE_UNANIMITY

SQRT_HALF = 0.7071067811865476


@njit(cache=True)
def normal_cdf(x):
    """Φ(x) of the standard normal."""
    return 0.5 * math.erfc(-x * SQRT_HALF)


# Φ tabulated on a grid, to decide ``u < Φ(z)`` without erfc whenever u is clear of Φ(z): Φ is
# increasing, so Φ(z) lies between the grid values around z; a uniform below the lower one
# (less a margin far above erfc's rounding, ~1e-16) is below Φ(z), one at or above the upper
# one (plus the margin) is not, and only the rest (≤ 0.4 · step ≈ 0.2% of uniforms) needs erfc.
# The answer is always that of ``u < normal_cdf(z)``.
PHI_LOW = -8.5
PHI_BINS = 4096
PHI_STEP = 17.0 / PHI_BINS
PHI_MARGIN = 1e-12


@njit(cache=True)
def phi_table():
    """``normal_cdf`` at ``PHI_LOW + i · PHI_STEP`` for i = 0 … PHI_BINS (float64)."""
    table = np.empty(PHI_BINS + 1, dtype=np.float64)
    for i in range(PHI_BINS + 1):
        table[i] = normal_cdf(PHI_LOW + i * PHI_STEP)
    return table


@njit(cache=True)
def below_normal_cdf(u, z, table):
    """``u < normal_cdf(z)``, by the table of :func:`phi_table` where it decides (NaN and z
    outside the grid go to erfc)."""
    x = (z - PHI_LOW) / PHI_STEP
    if 0.0 <= x < PHI_BINS:
        i = int(x)
        if u < table[i] - PHI_MARGIN:
            return True
        if u >= table[i + 1] + PHI_MARGIN:
            return False
    return u < normal_cdf(z)


@njit(cache=True)
def deterrence_probabilities(
    capability, commitment, membership, bindingness, entry_cover_ptr, entry_cover_idx,
    aggressor_state, resolve, target_ptr, target_state, misperception,
):
    """``capability`` mode: P(deterred) with and without alliances for every (aggressor, target)
    entry.

    Returns two float64 arrays of shape ``target_state.shape``: ``Φ((ln R − ln(cap_a·resolve))/σ)``
    with ``R = cap_t + Σ_allies cred_i · cap_i`` (allies summed in ascending state order,
    ``cred_i = max over the entry's covering alliances ∋ i of commitment_i · bindingness_A``), and
    the same with ``R = cap_t`` (the no-alliance baseline).
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
                for c in range(entry_cover_ptr[ti], entry_cover_ptr[ti + 1]):
                    al = entry_cover_idx[c]
                    if membership[i, al] != 0:
                        cred = max(cred, commitment[i] * bindingness[al])
                if cred > 0.0:
                    response = response + cred * capability[i]
            p_det[ti] = normal_cdf((math.log(response) - log_threat) / misperception)
            p_det0[ti] = normal_cdf((math.log(capability[t]) - log_threat) / misperception)
    return p_det, p_det0


@njit(cache=True)
def attribution_factor(mean_days, window_days):
    """``E[exp(−D_att / window_days)]`` for ``D_att ~ Exponential(mean_days)`` (1 when there is
    no attribution delay or no window)."""
    if mean_days <= 0.0:
        return 1.0
    return 1.0 / (1.0 + mean_days / window_days)


@njit(cache=True)
def decided_force(t, lo, hi, e_state, capability, stability, integration_al,
                  interoperability_bonus):
    """``E[F | decided]`` of a consultation under unanimity (entries ``lo … hi − 1``): every
    member backs and delivers with its stability, so ``(cap_t + Σ_{i≠t} stability_i · cap_i) ·
    (1 + integration · bonus)``, summed in entry (ascending state) order.  Shared by the closed
    form and the pilot's conditional estimate."""
    force = capability[t]
    for e in range(lo, hi):
        i = e_state[e]
        if i != t:
            force = force + stability[i] * capability[i]
    return force * (1.0 + integration_al * interoperability_bonus)


@njit(cache=True)
def unanimity_expected_response(
    cc, t, capability, stability, round_days, max_rounds, integration, cc_alliance,
    cc_entry_ptr, e_state, e_static, mobilization_days, window_days, interoperability_bonus,
):
    """``E[F · exp(−(delay − D_att) / window_days)]`` of consultation ``cc`` under unanimity with
    fixed per-round probabilities ``p_i = e_static`` (no free riding, θ fixed).

    Member ``i`` has backed by round ``r`` with probability ``1 − (1 − p_i)^r``, independently,
    so the alliance has decided by round ``r`` with ``P_r = Π_i (1 − (1 − p_i)^r)``; then every
    member backs and delivers with its stability: ``E[F | decided] = (cap_t + Σ stability_i ·
    cap_i) · (1 + integration · bonus)``, and the result is ``Σ_r (P_r − P_{r−1}) · E[F | decided]
    · exp(−(r · round_days + mobilization_days · (1 − integration)) / window) + (1 − P_R) ·
    cap_t``.
    """
    al = cc_alliance[cc]
    lo = cc_entry_ptr[cc]
    hi = cc_entry_ptr[cc + 1]
    force = decided_force(t, lo, hi, e_state, capability, stability, integration[al],
                          interoperability_bonus)
    mobilization = mobilization_days * (1.0 - integration[al])
    decided_before = 0.0
    total = 0.0
    for r in range(1, max_rounds[al] + 1):
        decided_by = 1.0
        for e in range(lo, hi):
            if e_state[e] != t:
                decided_by *= 1.0 - (1.0 - e_static[e]) ** r
        delay = r * round_days[al] + mobilization
        total += (decided_by - decided_before) * force * math.exp(-delay / window_days)
        decided_before = decided_by
    return total + (1.0 - decided_before) * capability[t]


@njit(cache=True)
def exact_expected_response(
    capability, stability, rule, round_days, max_rounds, integration, intel_sharing,
    cc_ptr, cc_alliance, cc_entry_ptr, cc_free_riding, e_state, e_static,
    cell_target, cell_attack_type, attribution_days,
    mobilization_days, window_days, interoperability_bonus, threat_weight,
):
    """``E_cell`` where a closed form exists (design §8); returns ``(expected, how, hazard)``,
    float64, int64 and uint8 (C,).  ``how`` is ``E_EXACT`` or ``E_PILOT`` (``expected`` is 0
    there: a pilot must estimate it).  ``hazard`` is 1 for a pilot cell with one covering
    alliance under unanimity (free riding or a moving θ): its pilot uses the conditional
    estimate of :class:`kernels.args.Run`.

    Closed forms, with ``att = E[exp(−D_att / window)]`` (independent of the rest):

    * no covering alliance: ``E = cap_t · att``;
    * one covering alliance under unanimity whose per-round probabilities do not move (no
      member other than the target free-rides; θ fixed):
      ``E = att · unanimity_expected_response(…)``.
    """
    n_cells = cell_target.shape[0]
    expected = np.zeros(n_cells, dtype=np.float64)
    hazard = np.zeros(n_cells, dtype=np.uint8)
    how = np.full(n_cells, E_PILOT, dtype=np.int64)
    moving_threat = threat_weight > 0.0
    for cell in range(n_cells):
        t = cell_target[cell]
        att = attribution_factor(attribution_days[cell_attack_type[cell]], window_days)
        n_cover = cc_ptr[cell + 1] - cc_ptr[cell]
        if n_cover == 0:
            expected[cell] = capability[t] * att
            how[cell] = E_EXACT
            continue
        if n_cover > 1:
            continue
        cc = cc_ptr[cell]
        al = cc_alliance[cc]
        if rule[al] != RULE_UNANIMITY:
            continue
        if cc_free_riding[cc] != 0 or (moving_threat and intel_sharing[al] > 0.0):
            hazard[cell] = 1
            continue
        expected[cell] = att * unanimity_expected_response(
            cc, t, capability, stability, round_days, max_rounds, integration, cc_alliance,
            cc_entry_ptr, e_state, e_static, mobilization_days, window_days,
            interoperability_bonus)
        how[cell] = E_EXACT
    return expected, how, hazard


@njit(cache=True)
def expected_response_probabilities(
    expected, capability, aggressor_state, resolve, severity, attribution_days, cell_aggressor,
    cell_target, cell_attack_type, window_days, misperception,
):
    """``expected_response`` mode: ``P(deterred) = Φ((ln E_cell − ln(cap_a · resolve_a ·
    severity_k)) / σ)`` per cell, and the no-alliance baseline with ``E = cap_t · att`` (float64
    (C,) each)."""
    n_cells = cell_target.shape[0]
    p_det = np.empty(n_cells, dtype=np.float64)
    p_det0 = np.empty(n_cells, dtype=np.float64)
    for cell in range(n_cells):
        j = cell_aggressor[cell]
        t = cell_target[cell]
        k = cell_attack_type[cell]
        log_threat = math.log(capability[aggressor_state[j]] * resolve[j] * severity[k])
        alone = capability[t] * attribution_factor(attribution_days[k], window_days)
        p_det[cell] = normal_cdf((math.log(expected[cell]) - log_threat) / misperception)
        p_det0[cell] = normal_cdf((math.log(alone) - log_threat) / misperception)
    return p_det, p_det0
