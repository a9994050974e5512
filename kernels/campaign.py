"""Campaign trajectories (design §7): each trial is ``steps`` periods whose reputation, resolve,
threat and membership carry over.

The contract, draw for draw, is the plain-Python ``engine.oracles.campaign_loop`` (its module
docstring states every rule and every float operation); this kernel runs it one trajectory at a
time per thread.  Unlike the v1 trial kernel (:mod:`kernels.trial`), which groups the attacked
trials of a batch by cell, a trajectory's crises depend on its own state, so each crisis is
simulated on its own: coverage, P(deterred) away from the pristine state, consultation over the
active members, delivery, outcome and the tallies.

Trajectories are independent and every draw is keyed by (seed, trial, period, slot), so the
tallies do not depend on the thread count, the block size or how a run is split.  Outputs have
a leading thread axis and are summed by the caller.
"""

import math

import numpy as np
from numba import njit

from .consultation import backers_needed
from .deterrence import below_normal_cdf, phi_table
from .histogram import delay_bin
from .layout import (
    A_BACKING_SHARE_SUM,
    A_CONSULTED,
    A_COVERED,
    A_DEADLOCK,
    A_DECIDED,
    A_DELAY_SUM,
    A_DETERRED,
    A_FIRST,
    A_FREE_RIDERS_SUM,
    A_REPELLED,
    A_ROUNDS_SUM,
    A_VETO,
    AP_ACTIVE,
    AP_ALIVE,
    AP_EXITS,
    AP_JOINS,
    AP_REPUTATION_SUM,
    C_ALLIES_SUM,
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
    C_HONORED_SUM,
    C_INVOKED,
    C_REPELLED,
    C_REPELLED_INVOKED,
    C_ROUNDS_SUM,
    C_SUCCEEDED,
    C_TRIALS,
    C_VETO,
    C_WITH_ALLIED_BACKERS,
    COUNT_KEYS,
    COUNT_MEMBER_DRAWS,
    COUNT_UNIFORMS,
    DELAY_SCALE,
    DETERRENCE_CAPABILITY,
    M_BACKED,
    M_DELIVERED,
    M_FREE_RODE,
    M_HONORED,
    M_PLEDGED,
    N_MEMBER_COLUMNS,
    OBLIGATION_COLLECTIVE_SECURITY,
    OBLIGATION_DEFENSE,
    P_DISSOLVED,
    P_EXITS,
    P_JOINS,
    P_REPUTATION_SUM,
    P_RESOLVE_SUM,
    P_THREAT_SUM,
    RESOLVE_CAP,
    RESOLVE_SCALE,
    RULE_VETO,
    SHARE_SCALE,
    SLOT_AGGRESSOR,
    SLOT_ATTACK_TYPE,
    SLOT_ATTRIBUTION,
    SLOT_CONSULT_BASE,
    SLOT_CRISIS,
    SLOT_DETERRENCE,
    SLOT_OUTCOME,
    SLOT_TARGET,
)
from .rng import period_key, seed_base, trial_key, uniform
from .threads import run_blocks
from .trial import BACKED_ANY, DELIVERED, IN_COVER, IN_DECIDING, RESPONDS, delivers, fixed, pick


@njit(cache=True)
def _mean_without(total, count, rep_i, counted):
    """``r̄_{A,i}``: ``(total − r_i) / (count − 1)`` when ``i`` is counted, else ``total /
    count``; 1 with nobody (the oracle's rule)."""
    if counted:
        total = total - rep_i
        count = count - 1
    if count > 0:
        return total / count
    return 1.0


@njit(cache=True)
def _ascending_rosters(roster_ptr, roster_idx):
    """Whether every alliance's roster lists its states in strictly ascending order (the
    compiler's CSR does): then one alliance's members, in roster order, are the union's
    ascending state order and the delivery and deterrence sums can walk them directly."""
    for al in range(roster_ptr.shape[0] - 1):
        for slot in range(roster_ptr[al] + 1, roster_ptr[al + 1]):
            if roster_idx[slot] <= roster_idx[slot - 1]:
                return False
    return True


@njit(cache=True, nogil=True)
def _campaign_blocks(
    tid, first_block, last_block, phi,
    seed, start, stop, block_size,
    # states
    capability, capability_units, commitment, stability, free_riding, exposure,
    shares_alliance,
    # alliances
    obligation, rule, quota, max_rounds, round_days, integration, intel_sharing, bindingness,
    veto,
    # crises
    aggressor_state, aggressor_cum_weight, resolve, target_ptr, target_state,
    target_cum_weight, target_cell_base, mix_ptr, mix_type, mix_cum_weight,
    # attack types
    severity, attribution_days, ambiguity,
    # step 2 tables and settings
    p_deterred, p_deterred_no_alliance, expected, deterrence_mode, misperception,
    outcome_noise, mobilization_days, window_days, interoperability_bonus,
    defection_threshold, conflict_penalty, threat_weight,
    # campaign
    steps, crisis_rate, reputation_learning, trust_weight, resolve_learning, threat_shock,
    threat_decay, exit_threshold, join_threshold, roster_ptr, roster_idx, roster_initial,
    roster_protected, roster_row, roster_states,
    # outputs (leading axis: thread)
    cell_tallies, cell_hist, alliance_tallies, alliance_hist, member_tallies,
    period_cells, period_hist, periods, alliance_periods, successes, counters,
):
    """Simulate the trajectories of blocks ``[first_block, last_block)`` of ``[start, stop)``
    (block ``b``: trajectories ``start + b · block_size …``) and add their tallies into row
    ``tid`` of the outputs (see ``engine.oracles.campaign_loop.CampaignTallies`` for every
    output's meaning); ``counters`` (T, N_COUNTERS) receives the work as the trial kernel's does
    (uniforms, keys, members' draws); ``phi`` is :func:`kernels.deterrence.phi_table` (u < Φ(z)
    without erfc for nearly every draw).  Releases the GIL: :func:`run_campaigns` runs workers on
    threads.

    Every float is the oracle's, operation for operation; what is hoisted out of the loops is
    a value computed from the same operands (``commitment_i · bindingness_A`` per roster slot,
    ``1 − δ``, ``e^{±ρ}``, ``exposure`` transposed), and what is skipped is provably a no-op
    (the pristine test reads running counts of ``r_i ≠ 1`` and ``m_j ≠ 1``; the end-of-period
    means are recomputed only after a period that changed reputation, resolve or membership).
    """
    base_key = seed_base(seed)
    n_states = capability.shape[0]
    n_alliances = obligation.shape[0]
    n_aggressors = aggressor_state.shape[0]
    n_slots = roster_idx.shape[0]
    n_roster = roster_states.shape[0]
    joins_on = not math.isinf(join_threshold)
    ascending = _ascending_rosters(roster_ptr, roster_idx)
    # loop invariants: the same operands, the same operation, hence the same floats
    keep_threat = 1.0 - threat_decay
    boldened = math.exp(resolve_learning)
    chastened = math.exp(-resolve_learning)
    trust_rest = 1.0 - trust_weight
    in_conflict = 1.0 - conflict_penalty
    exposure_to = np.ascontiguousarray(exposure.T)  # exposure_to[t, i] = exposure[i, t]
    slot_cb = np.empty(n_slots)  # commitment_i · bindingness_A of every roster slot
    slot_veto = np.zeros(n_slots, dtype=np.int64)
    for e_al in range(n_alliances):
        for e_slot in range(roster_ptr[e_al], roster_ptr[e_al + 1]):
            e_i = roster_idx[e_slot]
            slot_cb[e_slot] = commitment[e_i] * bindingness[e_al]
            slot_veto[e_slot] = 1 if veto[e_i, e_al] != 0 else 0
    # θ = min(1, exposure · severity + h) is finite when these are (h ∈ [0, 1] then)
    theta_finite = math.isfinite(threat_shock) and math.isfinite(threat_decay)
    for e_i in range(exposure.shape[0]):
        for e_t in range(exposure.shape[1]):
            theta_finite = theta_finite and math.isfinite(exposure[e_i, e_t])
    for e_k in range(severity.shape[0]):
        theta_finite = theta_finite and math.isfinite(severity[e_k])
    # one alliance whose roster is roster_states: the end-of-period sums share one walk
    one_roster = n_alliances == 1 and n_slots == n_roster
    if one_roster:
        for e_slot in range(n_slots):
            one_roster = one_roster and roster_idx[e_slot] == roster_states[e_slot]
    # per cell: ln of the no-alliance response and ln(cap_a · severity_k) of the outcome
    n_cells = p_deterred.shape[0]
    cell_log_alone = np.zeros(n_cells)
    cell_log_attack = np.zeros(n_cells)
    for e_j in range(n_aggressors):
        for e_t in range(target_ptr[e_j], target_ptr[e_j + 1]):
            t_state = target_state[e_t]
            for e_k in range(mix_ptr[e_j], mix_ptr[e_j + 1]):
                k_type = mix_type[e_k]
                e_cell = target_cell_base[e_t] + (e_k - mix_ptr[e_j])
                if deterrence_mode == DETERRENCE_CAPABILITY:
                    alone = capability[t_state]
                else:
                    alone = capability[t_state] * (
                        1.0 / (1.0 + attribution_days[k_type] / window_days))
                cell_log_alone[e_cell] = math.log(alone) if alone > 0.0 else -math.inf
                cell_log_attack[e_cell] = math.log(capability[aggressor_state[e_j]]
                                                   * severity[k_type])
    # this call's scratch (one worker's: each call allocates its own)
    rep = np.ones(n_states)
    threat = np.zeros(n_states)
    cred = np.zeros(n_states)
    mark = np.zeros(n_states, dtype=np.int64)
    mult = np.ones(n_aggressors)
    active = np.zeros(n_slots, dtype=np.uint8)
    alive = np.zeros(n_alliances, dtype=np.uint8)
    exits_of = np.zeros(n_alliances, dtype=np.int64)
    joins_of = np.zeros(n_alliances, dtype=np.int64)
    ap_count = np.zeros(n_alliances, dtype=np.int64)
    ap_rep = np.zeros(n_alliances, dtype=np.int64)
    cover = np.zeros(n_alliances, dtype=np.int64)
    off = np.zeros(n_alliances + 1, dtype=np.int64)
    decided = np.zeros(n_alliances, dtype=np.int64)  # rounds, 0 = undecided
    nback = np.zeros(n_alliances, dtype=np.int64)
    vetoed = np.zeros(n_alliances, dtype=np.uint8)
    mstate = np.zeros(n_slots, dtype=np.int64)
    mslot = np.zeros(n_slots, dtype=np.int64)
    mbase = np.zeros(n_slots)
    mtheta = np.zeros(n_slots)
    mstatic = np.zeros(n_slots)
    mdraw = np.zeros(n_slots)
    msurv = np.zeros(n_slots)
    mfr = np.zeros(n_slots)
    munits = np.zeros(n_slots, dtype=np.int64)
    mveto = np.zeros(n_slots, dtype=np.int64)
    mbacked = np.zeros(n_slots, dtype=np.int64)
    mdeliv = np.zeros(n_slots, dtype=np.int64)
    # the per-member tallies of a block, per roster slot and column (added into member_tallies
    # at the block's end: integer sums, so the same totals), and one crisis's pledges per slot
    acc = np.zeros((N_MEMBER_COLUMNS, n_slots), dtype=np.int64)
    acc_pledged = acc[M_PLEDGED]
    acc_backed = acc[M_BACKED]
    acc_delivered = acc[M_DELIVERED]
    acc_honored = acc[M_HONORED]
    acc_rode = acc[M_FREE_RODE]
    slot_on = np.zeros(n_slots, dtype=np.int64)
    slot_bk = np.zeros(n_slots, dtype=np.int64)
    slot_dl = np.zeros(n_slots, dtype=np.int64)

    for b in range(first_block, last_block):
        n_uniforms = 0  # this block's work (counters, as the trial kernel's)
        n_keys = 0
        n_member_draws = 0
        ct = cell_tallies[tid]
        ch = cell_hist[tid]
        at = alliance_tallies[tid]
        ah = alliance_hist[tid]
        mt = member_tallies[tid]
        pc = period_cells[tid]
        ph = period_hist[tid]
        pt = periods[tid]
        apt = alliance_periods[tid]
        sx = successes[tid]
        first_g = start + b * block_size
        last_g = min(stop, first_g + block_size)
        for g in range(first_g, last_g):
            for i in range(n_states):
                rep[i] = 1.0
                threat[i] = 0.0
            for jj in range(n_aggressors):
                mult[jj] = 1.0
            for slot in range(n_slots):
                active[slot] = roster_initial[slot]
            for al in range(n_alliances):
                alive[al] = 1
            moved = False
            n_rep_moved = 0  # states with r_i ≠ 1
            n_mult_moved = 0  # aggressor entries with m_j ≠ 1
            threat_zero = True  # every h_i is 0
            threat_total = 0.0  # Σ h_i, ascending
            changed = True  # reputation, resolve or membership changed since the last means
            rep_fx = 0
            resolve_fx = 0
            n_successes = 0
            trial = trial_key(base_key, g)
            n_keys += steps  # the trial's key, then a period key per later period
            for s in range(steps):
                key = trial if s == 0 else period_key(trial, s)
                n_exits = 0
                n_joins = 0
                n_dissolved = 0
                for al in range(n_alliances):
                    exits_of[al] = 0
                    joins_of[al] = 0
                crisis = crisis_rate >= 1.0 or uniform(key, SLOT_CRISIS) < crisis_rate
                if crisis_rate < 1.0:
                    n_uniforms += 1
                if not crisis:
                    if not threat_zero:  # (1 − δ)·0 = 0: nothing to decay otherwise
                        threat_total = 0.0
                        for i in range(n_states):
                            h = keep_threat * threat[i]
                            threat[i] = h
                            threat_total += h
                else:
                    # ---- the crisis (v1 draws) ----------------------------------------------
                    j = 0
                    if n_aggressors > 1:
                        j = pick(aggressor_cum_weight, 0, n_aggressors,
                                 uniform(key, SLOT_AGGRESSOR))
                        n_uniforms += 1
                    ti = target_ptr[j]
                    if target_ptr[j + 1] - ti > 1:
                        ti = pick(target_cum_weight, ti, target_ptr[j + 1],
                                  uniform(key, SLOT_TARGET))
                        n_uniforms += 1
                    ki = mix_ptr[j]
                    if mix_ptr[j + 1] - ki > 1:
                        ki = pick(mix_cum_weight, ki, mix_ptr[j + 1],
                                  uniform(key, SLOT_ATTACK_TYPE))
                        n_uniforms += 1
                    a = aggressor_state[j]
                    t = target_state[ti]
                    k = mix_type[ki]
                    cell = target_cell_base[ti] + (ki - mix_ptr[j])

                    # ---- coverage and the consultations' members ----------------------------
                    # one pass per alliance: its active members but the aggressor are written
                    # after the ones kept so far and kept only when the alliance covers
                    n_cover = 0
                    n_mem = 0
                    for al in range(n_alliances):
                        if alive[al] == 0:
                            continue
                        kind = obligation[al]
                        if kind != OBLIGATION_DEFENSE and kind != OBLIGATION_COLLECTIVE_SECURITY:
                            continue
                        collective = kind == OBLIGATION_COLLECTIVE_SECURITY
                        target_ok = False
                        aggressor_in = False
                        others = 0
                        q = n_mem
                        for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                            i = roster_idx[slot]
                            on = active[slot] != 0
                            if on and i == t:
                                target_ok = collective or roster_protected[slot] != 0
                            aggressor_in = aggressor_in | (on & (i == a))
                            others += int(on & (i != t) & (i != a))
                            mstate[q] = i
                            mslot[q] = slot
                            q += int(on & (i != a))
                        if not target_ok or others < 1 or a == t:
                            continue
                        if not collective and aggressor_in:
                            continue
                        cover[n_cover] = al
                        off[n_cover] = n_mem
                        n_mem = q
                        n_cover += 1
                    off[n_cover] = n_mem
                    single = n_cover == 1 and ascending

                    # ---- deterrence -------------------------------------------------------
                    # a single covering alliance's walk also sums S and n, the reputations of
                    # its members but the target (ascending), which its consultation reads
                    walked = False
                    walk_sum = 0.0
                    walk_n = 0
                    u_det = uniform(key, SLOT_DETERRENCE)
                    n_uniforms += 1
                    if not moved and n_rep_moved == 0 and n_mult_moved == 0:  # pristine
                        deterred = u_det < p_deterred[cell]
                        deterred_alone = u_det < p_deterred_no_alliance[cell]
                    else:
                        threat_j = capability[a] * (resolve[j] * mult[j])
                        if deterrence_mode == DETERRENCE_CAPABILITY:
                            log_threat = math.log(threat_j)
                            response = capability[t]
                            if single:  # the members are the allies, ascending, once each
                                for q in range(n_mem):
                                    i = mstate[q]
                                    if i != t:
                                        r_i = rep[i]
                                        walk_sum += r_i
                                        walk_n += 1
                                        cr = slot_cb[mslot[q]] * r_i
                                        if cr > 0.0:
                                            response = response + cr * capability[i]
                                walked = True
                            else:
                                for c in range(n_cover):
                                    for q in range(off[c], off[c + 1]):
                                        i = mstate[q]
                                        if i == t:
                                            continue
                                        value = slot_cb[mslot[q]]
                                        if mark[i] == 0:
                                            mark[i] = 1
                                            cred[i] = value
                                        else:
                                            cred[i] = max(cred[i], value)
                                for i in range(n_states):
                                    if mark[i] != 0:
                                        mark[i] = 0
                                        cr = cred[i] * rep[i]
                                        if cr > 0.0:
                                            response = response + cr * capability[i]
                        else:
                            log_threat = math.log(threat_j * severity[k])
                            weight = 0.0
                            total = 0.0
                            if single:
                                for q in range(n_mem):
                                    i = mstate[q]
                                    if i != t:
                                        r_i = rep[i]
                                        walk_sum += r_i
                                        walk_n += 1
                                        weight += capability[i]
                                        total += capability[i] * r_i
                                walked = True
                            else:
                                for c in range(n_cover):
                                    for q in range(off[c], off[c + 1]):
                                        i = mstate[q]
                                        if i != t:
                                            mark[i] = 1
                                for i in range(n_states):
                                    if mark[i] != 0:
                                        mark[i] = 0
                                        weight += capability[i]
                                        total += capability[i] * rep[i]
                            r_bar = total / weight if weight > 0.0 else 1.0
                            response = capability[t] + (expected[cell] - capability[t]) * r_bar
                        log_response = math.log(response) if response > 0.0 else -math.inf
                        # u < Φ(z) decided by the table of Φ where it can (the same answers)
                        deterred = below_normal_cdf(
                            u_det, (log_response - log_threat) / misperception, phi)
                        deterred_alone = below_normal_cdf(
                            u_det, (cell_log_alone[cell] - log_threat) / misperception, phi)
                    ct[cell, C_TRIALS] += 1
                    pc[s, C_TRIALS] += 1
                    if deterred_alone:
                        ct[cell, C_DETERRED_NO_ALLIANCE] += 1
                        pc[s, C_DETERRED_NO_ALLIANCE] += 1
                    for c in range(n_cover):
                        at[cover[c], A_COVERED] += 1
                        if deterred:
                            at[cover[c], A_DETERRED] += 1
                    repelled = False
                    exit_al = -1  # the alliance whose exit S and n are exit_sum, exit_n
                    exit_sum = 0.0
                    exit_n = 0
                    if deterred:
                        ct[cell, C_DETERRED] += 1
                        pc[s, C_DETERRED] += 1
                    else:
                        ct[cell, C_ATTACKED] += 1
                        pc[s, C_ATTACKED] += 1
                        # ---- 3. attribution ---------------------------------------------------
                        d_att = 0.0
                        if attribution_days[k] > 0.0:
                            d_att = -attribution_days[k] * math.log(
                                1.0 - uniform(key, SLOT_ATTRIBUTION))
                            n_uniforms += 1
                        # ---- 4–5. consultation in every covering alliance ---------------------
                        w = threat_weight
                        keep_w = 1.0 - w
                        static_is_base = w == 0.0 and theta_finite
                        clear = 1.0 - ambiguity[k]
                        sev = severity[k]
                        exp_t = exposure_to[t]
                        for c in range(n_cover):
                            al = cover[c]
                            lo = off[c]
                            hi = off[c + 1]
                            m = hi - lo
                            # the alliance's members as zero-based views: loops over range(m)
                            # need no negative-index checks and vectorize
                            c_state = mstate[lo:hi]
                            c_slot = mslot[lo:hi]
                            c_base = mbase[lo:hi]
                            c_theta = mtheta[lo:hi]
                            c_static = mstatic[lo:hi]
                            c_draw = mdraw[lo:hi]
                            c_surv = msurv[lo:hi]
                            c_fr = mfr[lo:hi]
                            c_units = munits[lo:hi]
                            c_veto = mveto[lo:hi]
                            c_backed = mbacked[lo:hi]
                            # S and n: the members but the target (the aggressor is not one)
                            if walked:  # single: c = 0, the members the walk summed
                                others_sum = walk_sum
                                others_n = walk_n
                            else:
                                others_sum = 0.0
                                others_n = 0
                                for q in range(m):
                                    i = c_state[q]
                                    if i != t:
                                        others_sum += rep[i]
                                        others_n += 1
                            vetoing = rule[al] == RULE_VETO
                            moving = intel_sharing[al] > 0.0 and w > 0.0
                            slot0 = SLOT_CONSULT_BASE + (al << 20)
                            units_members = 0
                            riding = False
                            n_back = 0
                            units_back = 0
                            veto_left = 0
                            for q in range(m):
                                i = c_state[q]
                                slot = c_slot[q]
                                is_t = i == t
                                conflict = in_conflict if shares_alliance[i, a] != 0 else 1.0
                                trust = 1.0
                                if trust_weight > 0.0:
                                    trust = trust_rest + trust_weight * _mean_without(
                                        others_sum, others_n, rep[i], not is_t)
                                base = ((slot_cb[slot] * clear) * conflict) * trust
                                if static_is_base:  # base · ((1 − 0) + 0 · θ), θ finite
                                    c_static[q] = base
                                else:
                                    theta = min(1.0, exp_t[i] * sev + threat[i])
                                    if moving:  # base and θ move from round to round
                                        c_base[q] = base
                                        c_theta[q] = theta
                                    else:
                                        c_static[q] = base * (keep_w + w * theta)
                                units = capability_units[i]
                                c_units[q] = units
                                units_members += units
                                fr = free_riding[i]
                                c_fr[q] = fr
                                riding = riding or (not is_t and fr > 0.0)
                                vq = slot_veto[slot] if vetoing and not is_t else 0
                                c_veto[q] = vq
                                veto_left += vq
                                c_surv[q] = 1.0
                                c_backed[q] = 1 if is_t else 0
                                c_draw[q] = 0.0 if is_t else uniform(key, slot0 + i)
                                if is_t:
                                    n_back += 1
                                    units_back = units
                            n_member_draws += m - n_back  # all but the target draw
                            need = backers_needed(rule[al], quota[al], m)
                            sharing = intel_sharing[al]
                            rounds = 0
                            for r in range(1, max_rounds[al] + 1):
                                share = units_back / units_members if riding else 0.0
                                new_back = 0
                                new_units = 0
                                new_veto = 0
                                # every member, backed or not, computes; only the waiting ones
                                # (not backed yet) can back, and only theirs is ever read again
                                if moving:
                                    if r > 1:
                                        total = 0.0
                                        for q in range(m):
                                            total += c_theta[q]
                                        mean = total / m
                                        for q in range(m):
                                            c_theta[q] = c_theta[q] + sharing * (
                                                mean - c_theta[q])
                                    for q in range(m):  # this round's factor
                                        c_static[q] = c_base[q] * (keep_w + w * c_theta[q])
                                for q in range(m):
                                    waiting = c_backed[q] == 0
                                    prob = c_static[q] * (1.0 - c_fr[q] * share)
                                    s_next = c_surv[q] * (1.0 - prob)
                                    c_surv[q] = s_next
                                    backs = waiting & (c_draw[q] < 1.0 - s_next)
                                    c_backed[q] = c_backed[q] | backs
                                    new_back += backs
                                    new_units += c_units[q] if backs else 0
                                    new_veto += c_veto[q] if backs else 0
                                n_back += new_back
                                units_back += new_units
                                veto_left -= new_veto
                                if n_back >= need and veto_left == 0:
                                    rounds = r
                                    break
                            decided[c] = rounds
                            nback[c] = n_back
                            vetoed[c] = 1 if (rounds == 0 and vetoing and n_back >= need) else 0
                        # ---- 6. the earliest decision, the delay ----------------------------
                        first = -1
                        first_time = 0.0
                        first_mob = 0.0
                        for c in range(n_cover):
                            if decided[c] > 0:
                                al = cover[c]
                                when = decided[c] * round_days[al]
                                mob = mobilization_days * (1.0 - integration[al])
                                if (first < 0 or when < first_time
                                        or (when == first_time and mob < first_mob)):
                                    first = c
                                    first_time = when
                                    first_mob = mob
                        invoked = first >= 0
                        # ---- 7. delivery over the union, in ascending state order -------------
                        force = capability[t]
                        n_resp = 0
                        n_failed = 0
                        n_free = 0
                        n_union = 0
                        n_union_back = 0
                        if single:  # the union is the one alliance's members, ascending
                            n_union = off[1]
                            n_union_back = nback[0]
                            if invoked:  # then this alliance decided (else mdeliv is unread)
                                for q in range(n_mem):
                                    mdeliv[q] = 0
                                for q in range(n_mem):
                                    i = mstate[q]
                                    if i == t:
                                        continue
                                    if mbacked[q] != 0:
                                        n_resp += 1
                                        n_uniforms += stability[i] < 1.0  # delivers() draws
                                        if delivers(key, i, stability):
                                            force = force + capability[i]
                                            mdeliv[q] = 1
                                        else:
                                            n_failed += 1
                                    else:
                                        n_free += 1
                        else:
                            for c in range(n_cover):
                                for q in range(off[c], off[c + 1]):
                                    i = mstate[q]
                                    mark[i] |= IN_COVER
                                    if mbacked[q] != 0:
                                        mark[i] |= BACKED_ANY
                                    if decided[c] > 0:
                                        mark[i] |= IN_DECIDING
                                        if mbacked[q] != 0 and i != t:
                                            mark[i] |= RESPONDS
                            for i in range(n_states):
                                mk = mark[i]
                                if mk == 0:
                                    continue
                                n_union += 1
                                if mk & BACKED_ANY:
                                    n_union_back += 1
                                if i == t:
                                    mark[i] = 0
                                    continue
                                if mk & RESPONDS:
                                    n_resp += 1
                                    n_uniforms += stability[i] < 1.0  # delivers() draws
                                    if delivers(key, i, stability):
                                        force = force + capability[i]
                                        mark[i] = DELIVERED
                                    else:
                                        n_failed += 1
                                        mark[i] = 0
                                else:
                                    if mk & IN_DECIDING:
                                        n_free += 1
                                    mark[i] = 0
                            for q in range(0, n_mem):
                                mdeliv[q] = 1 if mark[mstate[q]] == DELIVERED else 0
                            for q in range(0, n_mem):
                                mark[mstate[q]] = 0
                        delay = d_att
                        if invoked:
                            first_al = cover[first]
                            delay = (d_att + decided[first] * round_days[first_al]) + (
                                mobilization_days * (1.0 - integration[first_al]))
                            force = force * (1.0 + integration[first_al]
                                             * interoperability_bonus)
                        defection = invoked and n_resp > 0 and (
                            n_failed / n_resp > defection_threshold)
                        # ---- 8. outcome -----------------------------------------------------
                        z = (math.log(force) - cell_log_attack[cell]
                             - delay / window_days) / outcome_noise
                        repelled = below_normal_cdf(uniform(key, SLOT_OUTCOME), z, phi)
                        n_uniforms += 1
                        # ---- tallies: members, cells and period, alliances ------------------
                        # per roster slot of each covering alliance: on (a member but the
                        # target), backed, delivered; then the five columns over the slots at
                        # once (no per-member row lookups)
                        honored = 0
                        pledges = 0
                        for c in range(n_cover):
                            lo = off[c]
                            hi = off[c + 1]
                            pledges += hi - lo - 1
                            lo_r = roster_ptr[cover[c]]
                            n_r = roster_ptr[cover[c] + 1] - lo_r
                            on_r = slot_on[lo_r:lo_r + n_r]
                            bk_r = slot_bk[lo_r:lo_r + n_r]
                            dl_r = slot_dl[lo_r:lo_r + n_r]
                            for x in range(n_r):
                                on_r[x] = 0
                                bk_r[x] = 0
                                dl_r[x] = 0
                            for q in range(lo, hi):
                                x = mslot[q] - lo_r
                                on_r[x] = 0 if mstate[q] == t else 1
                                bk_r[x] = mbacked[q]
                                dl_r[x] = mdeliv[q]
                            a_pl = acc_pledged[lo_r:lo_r + n_r]
                            a_bk = acc_backed[lo_r:lo_r + n_r]
                            if invoked:
                                dec = 1 if decided[c] > 0 else 0
                                a_dl = acc_delivered[lo_r:lo_r + n_r]
                                a_ho = acc_honored[lo_r:lo_r + n_r]
                                a_fr = acc_rode[lo_r:lo_r + n_r]
                                for x in range(n_r):
                                    o = on_r[x]
                                    bk = bk_r[x] & o
                                    dl = dl_r[x] & o
                                    a_pl[x] += o
                                    a_bk[x] += bk
                                    a_fr[x] += dec & o & (bk ^ 1)
                                    a_dl[x] += dl
                                    a_ho[x] += dl & bk
                                    honored += dl & bk
                            else:  # nobody decided, so nobody free rode, responded, delivered
                                for x in range(n_r):
                                    o = on_r[x]
                                    a_pl[x] += o
                                    a_bk[x] += bk_r[x] & o
                        delay_fx = fixed(delay, DELAY_SCALE) if invoked else 0
                        bin_no = delay_bin(delay) if invoked else 0
                        any_vetoed = False
                        for c in range(n_cover):
                            any_vetoed = any_vetoed or vetoed[c] != 0
                        backing_fx = fixed(n_union_back / n_union, SHARE_SCALE) \
                            if n_cover > 0 else 0
                        delivered_fx = fixed((n_resp - n_failed) / n_resp, SHARE_SCALE) \
                            if invoked and n_resp > 0 else 0
                        for which in range(2):
                            tl = ct[cell] if which == 0 else pc[s]
                            hist = ch[cell] if which == 0 else ph[s]
                            if repelled:
                                tl[C_REPELLED] += 1
                            else:
                                tl[C_SUCCEEDED] += 1
                            if n_cover > 0:
                                tl[C_CONSULTED] += 1
                                tl[C_BACKING_SHARE_SUM] += backing_fx
                                tl[C_ALLIES_SUM] += pledges
                                tl[C_HONORED_SUM] += honored
                                if not invoked:
                                    if any_vetoed:
                                        tl[C_VETO] += 1
                                    else:
                                        tl[C_DEADLOCK] += 1
                            if invoked:
                                tl[C_INVOKED] += 1
                                tl[C_ROUNDS_SUM] += decided[first]
                                tl[C_DELAY_SUM] += delay_fx
                                hist[bin_no] += 1
                                tl[C_FREE_RIDERS_SUM] += n_free
                                if n_resp > 0:
                                    tl[C_WITH_ALLIED_BACKERS] += 1
                                    tl[C_DELIVERED_SHARE_SUM] += delivered_fx
                                if defection:
                                    tl[C_DEFECTION] += 1
                                if repelled:
                                    tl[C_REPELLED_INVOKED] += 1
                        for c in range(n_cover):
                            al = cover[c]
                            m = off[c + 1] - off[c]
                            at[al, A_CONSULTED] += 1
                            at[al, A_BACKING_SHARE_SUM] += fixed(nback[c] / m, SHARE_SCALE)
                            if repelled:
                                at[al, A_REPELLED] += 1
                            if decided[c] > 0:
                                at[al, A_DECIDED] += 1
                                at[al, A_ROUNDS_SUM] += decided[c]
                                at[al, A_FREE_RIDERS_SUM] += m - nback[c]
                            elif vetoed[c] != 0:
                                at[al, A_VETO] += 1
                            else:
                                at[al, A_DEADLOCK] += 1
                            if c == first:
                                at[al, A_FIRST] += 1
                                at[al, A_DELAY_SUM] += delay_fx
                                ah[al, bin_no] += 1
                        # ---- updates: reputation, aggressor learning --------------------------
                        # one covering alliance: its members but the target are the exit's
                        # active slots but the target and the aggressor, in the same order, and
                        # nothing else changes their reputations before the exit: S and n there
                        # are the sum and count of the new reputations here
                        for c in range(n_cover):
                            keep_rep = 1.0 - reputation_learning * bindingness[cover[c]]
                            c_state = mstate[off[c]:off[c + 1]]
                            c_backed = mbacked[off[c]:off[c + 1]]
                            c_deliv = mdeliv[off[c]:off[c + 1]]
                            for q in range(c_state.shape[0]):  # nobody honored unless invoked
                                i = c_state[q]
                                if i == t:
                                    continue
                                old = rep[i]
                                if invoked and (c_backed[q] & c_deliv[q]) != 0:
                                    new = old + reputation_learning * (1.0 - old)
                                else:
                                    new = old * keep_rep
                                rep[i] = new
                                n_rep_moved += int(new != 1.0) - int(old != 1.0)
                                exit_sum += new
                                exit_n += 1
                        if n_cover == 1:
                            exit_al = cover[0]
                        old = mult[j]
                        if repelled:
                            new = old * chastened
                        else:
                            new = old * boldened
                            n_successes += 1
                        mult[j] = new
                        n_mult_moved += int(new != 1.0) - int(old != 1.0)
                        changed = True
                    # ---- threat, exit, accession ---------------------------------------------
                    if not (threat_zero and threat_shock == 0.0):  # else 0 stays 0
                        threat_total = 0.0
                        nonzero = False
                        exp_t = exposure_to[t]
                        for i in range(n_states):
                            h = min(1.0, keep_threat * threat[i] + threat_shock * exp_t[i])
                            threat[i] = h
                            threat_total += h
                            nonzero = nonzero or h != 0.0
                        threat_zero = not nonzero
                    if exit_threshold > 0.0:
                        for al in range(n_alliances):
                            if alive[al] == 0:
                                continue
                            lo_r = roster_ptr[al]
                            hi_r = roster_ptr[al + 1]
                            r_idx = roster_idx[lo_r:hi_r]
                            r_active = active[lo_r:hi_r]
                            left = 0
                            if al == exit_al:
                                others_sum = exit_sum
                                others_n = exit_n
                            else:
                                others_sum = 0.0  # _others, over the zero-based views
                                others_n = 0
                                for x in range(hi_r - lo_r):
                                    i = r_idx[x]
                                    if r_active[x] != 0 and i != t and i != a:
                                        others_sum += rep[i]
                                        others_n += 1
                            for x in range(hi_r - lo_r):
                                i = r_idx[x]
                                if r_active[x] == 0 or i == t:
                                    continue
                                if _mean_without(others_sum, others_n, rep[i],
                                                 i != a) < exit_threshold:
                                    r_active[x] = 0
                                    left += 1
                                    if i != a:
                                        others_sum = others_sum - rep[i]
                                        others_n -= 1
                            if left > 0:
                                n_exits += left
                                exits_of[al] += left
                                moved = True
                                changed = True
                                still = 0
                                for slot in range(lo_r, hi_r):
                                    still += active[slot]
                                if still < 2:  # dissolved: nobody is a member any more
                                    alive[al] = 0
                                    n_dissolved += 1
                                    for slot in range(lo_r, hi_r):
                                        active[slot] = 0
                    if joins_on:
                        for al in range(n_alliances):
                            if alive[al] == 0:
                                continue
                            for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                                if (active[slot] == 0 and roster_initial[slot] == 0
                                        and threat[roster_idx[slot]] >= join_threshold):
                                    active[slot] = 1
                                    n_joins += 1
                                    joins_of[al] += 1
                                    moved = True
                                    changed = True
                # ---- the state at the end of the period -------------------------------------
                if changed and one_roster and n_roster > 0:
                    # the roster's and the alliance's sums in one walk, each ascending
                    changed = False
                    total = 0.0
                    count = 0
                    total_al = 0.0
                    for x in range(n_roster):
                        r_x = rep[roster_states[x]]
                        total += r_x
                        if active[x] != 0:
                            count += 1
                            total_al += r_x
                    rep_fx = fixed(total / n_roster, SHARE_SCALE)
                    total = 0.0
                    for jj in range(n_aggressors):
                        total += mult[jj]
                    resolve_fx = fixed(min(RESOLVE_CAP, total / n_aggressors), RESOLVE_SCALE)
                    ap_count[0] = count
                    ap_rep[0] = fixed(total_al / count, SHARE_SCALE) if count > 0 else 0
                if changed:  # else the means of the last period, unchanged
                    changed = False
                    if n_roster > 0:
                        total = 0.0
                        for x in range(n_roster):
                            total += rep[roster_states[x]]
                        mean_rep = total / n_roster
                    else:
                        mean_rep = 1.0
                    rep_fx = fixed(mean_rep, SHARE_SCALE)
                    total = 0.0
                    for jj in range(n_aggressors):
                        total += mult[jj]
                    resolve_fx = fixed(min(RESOLVE_CAP, total / n_aggressors), RESOLVE_SCALE)
                    for al in range(n_alliances):
                        r_idx = roster_idx[roster_ptr[al]:roster_ptr[al + 1]]
                        r_active = active[roster_ptr[al]:roster_ptr[al + 1]]
                        count = 0
                        total = 0.0
                        for x in range(r_idx.shape[0]):
                            if r_active[x] != 0:
                                count += 1
                                total += rep[r_idx[x]]
                        ap_count[al] = count
                        ap_rep[al] = fixed(total / count, SHARE_SCALE) if count > 0 else 0
                pt[s, P_REPUTATION_SUM] += rep_fx
                pt[s, P_RESOLVE_SUM] += resolve_fx
                pt[s, P_THREAT_SUM] += fixed(threat_total / n_states, SHARE_SCALE)
                pt[s, P_EXITS] += n_exits
                pt[s, P_JOINS] += n_joins
                pt[s, P_DISSOLVED] += n_dissolved
                for al in range(n_alliances):
                    apt[al, s, AP_ACTIVE] += ap_count[al]
                    apt[al, s, AP_REPUTATION_SUM] += ap_rep[al]
                    apt[al, s, AP_EXITS] += exits_of[al]
                    apt[al, s, AP_JOINS] += joins_of[al]
                    apt[al, s, AP_ALIVE] += alive[al]
            sx[n_successes] += 1
        for slot in range(n_slots):  # the block's per-member tallies into their rows
            row = roster_row[slot]
            for col in range(N_MEMBER_COLUMNS):
                mt[row, col] += acc[col, slot]
                acc[col, slot] = 0
        counters[tid, COUNT_UNIFORMS] += n_uniforms + n_member_draws
        counters[tid, COUNT_KEYS] += n_keys
        counters[tid, COUNT_MEMBER_DRAWS] += n_member_draws


def run_campaigns(seed, start, stop, block_size, *arrays):
    """Simulate trajectories ``[start, stop)`` on every worker and add their tallies into the
    outputs, whose leading axis is the worker (``arrays``: :func:`_campaign_blocks`'s arguments
    after ``block_size``, the outputs last).  Blocks are shared among the workers as they come
    (:func:`kernels.threads.run_blocks`); each worker adds into its own row, so the tallies are
    the same whatever the thread count or the order in which blocks ran."""
    n_workers = arrays[-11].shape[0]  # cell_tallies (T, C, N_CELL_COLUMNS)
    n_blocks = (stop - start + block_size - 1) // block_size
    phi = phi_table()  # once per call, not per range of blocks
    run_blocks(lambda tid, first, last: _campaign_blocks(
        tid, first, last, phi, seed, start, stop, block_size, *arrays), n_blocks, n_workers)
