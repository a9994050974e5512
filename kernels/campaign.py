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
from numba import get_thread_id, njit, prange

from .consultation import backers_needed
from .deterrence import normal_cdf
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
    DELAY_SCALE,
    DETERRENCE_CAPABILITY,
    M_BACKED,
    M_DELIVERED,
    M_FREE_RODE,
    M_HONORED,
    M_PLEDGED,
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
from .trial import BACKED_ANY, DELIVERED, IN_COVER, IN_DECIDING, RESPONDS, delivers, fixed, pick


@njit(cache=True)
def _others(lo, hi, roster_idx, active, rep, t, a):
    """Sum (ascending) and count of the reputations of the active roster slots ``lo … hi − 1``
    other than the target and the aggressor."""
    total = 0.0
    count = 0
    for slot in range(lo, hi):
        i = roster_idx[slot]
        if active[slot] != 0 and i != t and i != a:
            total += rep[i]
            count += 1
    return total, count


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


@njit(cache=True, parallel=True)
def run_campaigns(
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
    period_cells, period_hist, periods, alliance_periods, successes,
):
    """Simulate trajectories ``[start, stop)`` and add their tallies into the outputs (see
    ``engine.oracles.campaign_loop.CampaignTallies`` for every output's meaning)."""
    base_key = seed_base(seed)
    n_states = capability.shape[0]
    n_alliances = obligation.shape[0]
    n_aggressors = aggressor_state.shape[0]
    n_slots = roster_idx.shape[0]
    n_blocks = (stop - start + block_size - 1) // block_size
    n_threads = cell_tallies.shape[0]
    joins_on = not math.isinf(join_threshold)
    # per-thread scratch
    s_rep = np.ones((n_threads, n_states))
    s_threat = np.zeros((n_threads, n_states))
    s_cred = np.zeros((n_threads, n_states))
    s_mark = np.zeros((n_threads, n_states), dtype=np.int64)
    s_mult = np.ones((n_threads, n_aggressors))
    s_active = np.zeros((n_threads, n_slots), dtype=np.uint8)
    s_alive = np.zeros((n_threads, n_alliances), dtype=np.uint8)
    s_exits = np.zeros((n_threads, n_alliances), dtype=np.int64)
    s_joins = np.zeros((n_threads, n_alliances), dtype=np.int64)
    s_cover = np.zeros((n_threads, n_alliances), dtype=np.int64)
    s_off = np.zeros((n_threads, n_alliances + 1), dtype=np.int64)
    s_decided = np.zeros((n_threads, n_alliances), dtype=np.int64)  # rounds, 0 = undecided
    s_nback = np.zeros((n_threads, n_alliances), dtype=np.int64)
    s_vetoed = np.zeros((n_threads, n_alliances), dtype=np.uint8)
    s_mstate = np.zeros((n_threads, n_slots), dtype=np.int64)
    s_mslot = np.zeros((n_threads, n_slots), dtype=np.int64)
    s_base = np.zeros((n_threads, n_slots))
    s_theta = np.zeros((n_threads, n_slots))
    s_static = np.zeros((n_threads, n_slots))
    s_draw = np.zeros((n_threads, n_slots))
    s_surv = np.zeros((n_threads, n_slots))
    s_backed = np.zeros((n_threads, n_slots), dtype=np.uint8)

    for b in prange(n_blocks):
        tid = get_thread_id()
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
        rep = s_rep[tid]
        threat = s_threat[tid]
        cred = s_cred[tid]
        mark = s_mark[tid]
        mult = s_mult[tid]
        active = s_active[tid]
        alive = s_alive[tid]
        exits_of = s_exits[tid]
        joins_of = s_joins[tid]
        cover = s_cover[tid]
        off = s_off[tid]
        decided = s_decided[tid]
        nback = s_nback[tid]
        vetoed = s_vetoed[tid]
        mstate = s_mstate[tid]
        mslot = s_mslot[tid]
        mbase = s_base[tid]
        mtheta = s_theta[tid]
        mstatic = s_static[tid]
        mdraw = s_draw[tid]
        msurv = s_surv[tid]
        mbacked = s_backed[tid]
        first_g = start + b * block_size
        last_g = min(stop, first_g + block_size)
        for g in range(first_g, last_g):
            for i in range(n_states):
                rep[i] = 1.0
                threat[i] = 0.0
            for j in range(n_aggressors):
                mult[j] = 1.0
            for slot in range(n_slots):
                active[slot] = roster_initial[slot]
            for al in range(n_alliances):
                alive[al] = 1
            moved = False
            n_successes = 0
            trial = trial_key(base_key, g)
            for s in range(steps):
                key = trial if s == 0 else period_key(trial, s)
                n_exits = 0
                n_joins = 0
                n_dissolved = 0
                for al in range(n_alliances):
                    exits_of[al] = 0
                    joins_of[al] = 0
                crisis = crisis_rate >= 1.0 or uniform(key, SLOT_CRISIS) < crisis_rate
                if not crisis:
                    for i in range(n_states):
                        threat[i] = (1.0 - threat_decay) * threat[i]
                else:
                    # ---- the crisis (v1 draws) ----------------------------------------------
                    j = 0
                    if n_aggressors > 1:
                        j = pick(aggressor_cum_weight, 0, n_aggressors,
                                 uniform(key, SLOT_AGGRESSOR))
                    ti = target_ptr[j]
                    if target_ptr[j + 1] - ti > 1:
                        ti = pick(target_cum_weight, ti, target_ptr[j + 1],
                                  uniform(key, SLOT_TARGET))
                    ki = mix_ptr[j]
                    if mix_ptr[j + 1] - ki > 1:
                        ki = pick(mix_cum_weight, ki, mix_ptr[j + 1],
                                  uniform(key, SLOT_ATTACK_TYPE))
                    a = aggressor_state[j]
                    t = target_state[ti]
                    k = mix_type[ki]
                    cell = target_cell_base[ti] + (ki - mix_ptr[j])

                    # ---- coverage and the consultations' members ----------------------------
                    n_cover = 0
                    n_mem = 0
                    for al in range(n_alliances):
                        if alive[al] == 0:
                            continue
                        kind = obligation[al]
                        if kind != OBLIGATION_DEFENSE and kind != OBLIGATION_COLLECTIVE_SECURITY:
                            continue
                        target_ok = False
                        aggressor_in = False
                        others = 0
                        for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                            if active[slot] == 0:
                                continue
                            i = roster_idx[slot]
                            if i == t:
                                target_ok = (kind == OBLIGATION_COLLECTIVE_SECURITY
                                             or roster_protected[slot] != 0)
                            elif i == a:
                                aggressor_in = True
                            else:
                                others += 1
                        if not target_ok or others < 1 or a == t:
                            continue
                        if kind == OBLIGATION_DEFENSE and aggressor_in:
                            continue
                        cover[n_cover] = al
                        off[n_cover] = n_mem
                        for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                            i = roster_idx[slot]
                            if active[slot] == 0 or i == a:
                                continue
                            mstate[n_mem] = i
                            mslot[n_mem] = slot
                            n_mem += 1
                        n_cover += 1
                    off[n_cover] = n_mem

                    # ---- deterrence -------------------------------------------------------
                    pristine = not moved
                    if pristine:
                        for i in range(n_states):
                            if rep[i] != 1.0:
                                pristine = False
                                break
                    if pristine:
                        for jj in range(n_aggressors):
                            if mult[jj] != 1.0:
                                pristine = False
                                break
                    if pristine:
                        p = p_deterred[cell]
                        p0 = p_deterred_no_alliance[cell]
                    else:
                        for c in range(n_cover):
                            al = cover[c]
                            for q in range(off[c], off[c + 1]):
                                i = mstate[q]
                                if i == t:
                                    continue
                                value = commitment[i] * bindingness[al]
                                if mark[i] == 0:
                                    mark[i] = 1
                                    cred[i] = value
                                else:
                                    cred[i] = max(cred[i], value)
                        if deterrence_mode == DETERRENCE_CAPABILITY:
                            log_threat = math.log(capability[a] * (resolve[j] * mult[j]))
                            response = capability[t]
                            for i in range(n_states):
                                if mark[i] != 0:
                                    cr = cred[i] * rep[i]
                                    if cr > 0.0:
                                        response = response + cr * capability[i]
                            alone = capability[t]
                        else:
                            log_threat = math.log((capability[a] * (resolve[j] * mult[j]))
                                                  * severity[k])
                            att = 1.0 / (1.0 + attribution_days[k] / window_days)
                            alone = capability[t] * att
                            weight = 0.0
                            total = 0.0
                            for i in range(n_states):
                                if mark[i] != 0:
                                    weight += capability[i]
                                    total += capability[i] * rep[i]
                            r_bar = total / weight if weight > 0.0 else 1.0
                            response = capability[t] + (expected[cell] - capability[t]) * r_bar
                        for i in range(n_states):
                            mark[i] = 0
                        log_response = math.log(response) if response > 0.0 else -math.inf
                        log_alone = math.log(alone) if alone > 0.0 else -math.inf
                        p = normal_cdf((log_response - log_threat) / misperception)
                        p0 = normal_cdf((log_alone - log_threat) / misperception)
                    u_det = uniform(key, SLOT_DETERRENCE)
                    deterred = u_det < p
                    ct[cell, C_TRIALS] += 1
                    pc[s, C_TRIALS] += 1
                    if u_det < p0:
                        ct[cell, C_DETERRED_NO_ALLIANCE] += 1
                        pc[s, C_DETERRED_NO_ALLIANCE] += 1
                    for c in range(n_cover):
                        at[cover[c], A_COVERED] += 1
                        if deterred:
                            at[cover[c], A_DETERRED] += 1
                    repelled = False
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
                        # ---- 4–5. consultation in every covering alliance ---------------------
                        w = threat_weight
                        for c in range(n_cover):
                            al = cover[c]
                            lo = off[c]
                            hi = off[c + 1]
                            m = hi - lo
                            units_members = 0
                            riding = False
                            others_sum, others_n = _others(roster_ptr[al], roster_ptr[al + 1],
                                                           roster_idx, active, rep, t, a)
                            for q in range(lo, hi):
                                i = mstate[q]
                                conflict = 1.0 - conflict_penalty if shares_alliance[i, a] != 0 \
                                    else 1.0
                                trust = 1.0
                                if trust_weight > 0.0:
                                    trust = 1.0 - trust_weight + trust_weight * _mean_without(
                                        others_sum, others_n, rep[i], i != t)
                                base = (((commitment[i] * bindingness[al])
                                         * (1.0 - ambiguity[k])) * conflict) * trust
                                mbase[q] = base
                                mtheta[q] = min(1.0, exposure[i, t] * severity[k] + threat[i])
                                mstatic[q] = base * ((1.0 - w) + w * mtheta[q])
                                units_members += capability_units[i]
                                if i != t and free_riding[i] > 0.0:
                                    riding = True
                            need = backers_needed(rule[al], quota[al], m)
                            vetoing = rule[al] == RULE_VETO
                            n_back = 0
                            units_back = 0
                            veto_left = 0
                            slot0 = SLOT_CONSULT_BASE + (al << 20)
                            for q in range(lo, hi):
                                i = mstate[q]
                                msurv[q] = 1.0
                                if i == t:
                                    mbacked[q] = 1
                                    mdraw[q] = 0.0
                                    n_back += 1
                                    units_back = capability_units[i]
                                else:
                                    mbacked[q] = 0
                                    mdraw[q] = uniform(key, slot0 + i)
                                    if vetoing and veto[i, al] != 0:
                                        veto_left += 1
                            moving = intel_sharing[al] > 0.0 and w > 0.0
                            rounds = 0
                            for r in range(1, max_rounds[al] + 1):
                                if moving and r > 1:
                                    total = 0.0
                                    for q in range(lo, hi):
                                        total += mtheta[q]
                                    mean = total / m
                                    for q in range(lo, hi):
                                        mtheta[q] = mtheta[q] + intel_sharing[al] * (
                                            mean - mtheta[q])
                                share = units_back / units_members if riding else 0.0
                                new_back = 0
                                new_units = 0
                                new_veto = 0
                                for q in range(lo, hi):
                                    if mbacked[q] != 0:
                                        continue
                                    i = mstate[q]
                                    if moving:
                                        prob = (mbase[q] * ((1.0 - w) + w * mtheta[q])) * (
                                            1.0 - free_riding[i] * share)
                                    else:
                                        prob = mstatic[q] * (1.0 - free_riding[i] * share)
                                    s_next = msurv[q] * (1.0 - prob)
                                    msurv[q] = s_next
                                    if mdraw[q] < 1.0 - s_next:
                                        mbacked[q] = 1
                                        new_back += 1
                                        new_units += capability_units[i]
                                        if vetoing and veto[i, al] != 0:
                                            new_veto += 1
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
                        z = (math.log(force) - math.log(capability[a] * severity[k])
                             - delay / window_days) / outcome_noise
                        repelled = uniform(key, SLOT_OUTCOME) < normal_cdf(z)
                        # ---- tallies: members, cells and period, alliances ------------------
                        honored = 0
                        pledges = 0
                        for c in range(n_cover):
                            pledges += off[c + 1] - off[c] - 1
                            for q in range(off[c], off[c + 1]):
                                i = mstate[q]
                                if i == t:
                                    continue
                                row = roster_row[mslot[q]]
                                mt[row, M_PLEDGED] += 1
                                if mbacked[q] != 0:
                                    mt[row, M_BACKED] += 1
                                elif decided[c] > 0:
                                    mt[row, M_FREE_RODE] += 1
                                if mark[i] == DELIVERED:
                                    mt[row, M_DELIVERED] += 1
                                    if mbacked[q] != 0:
                                        mt[row, M_HONORED] += 1
                                        honored += 1
                        delay_fx = fixed(delay, DELAY_SCALE) if invoked else 0
                        bin_no = delay_bin(delay) if invoked else 0
                        any_vetoed = False
                        for c in range(n_cover):
                            any_vetoed = any_vetoed or vetoed[c] != 0
                        for which in range(2):
                            tl = ct[cell] if which == 0 else pc[s]
                            hist = ch[cell] if which == 0 else ph[s]
                            if repelled:
                                tl[C_REPELLED] += 1
                            else:
                                tl[C_SUCCEEDED] += 1
                            if n_cover > 0:
                                tl[C_CONSULTED] += 1
                                tl[C_BACKING_SHARE_SUM] += fixed(n_union_back / n_union,
                                                                 SHARE_SCALE)
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
                                    tl[C_DELIVERED_SHARE_SUM] += fixed(
                                        (n_resp - n_failed) / n_resp, SHARE_SCALE)
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
                        for c in range(n_cover):
                            binding = bindingness[cover[c]]
                            for q in range(off[c], off[c + 1]):
                                i = mstate[q]
                                if i == t:
                                    continue
                                if mbacked[q] != 0 and mark[i] == DELIVERED:
                                    rep[i] = rep[i] + reputation_learning * (1.0 - rep[i])
                                else:
                                    rep[i] = rep[i] * (1.0 - reputation_learning * binding)
                        for i in range(n_states):
                            mark[i] = 0
                        if repelled:
                            mult[j] = mult[j] * math.exp(-resolve_learning)
                        else:
                            mult[j] = mult[j] * math.exp(resolve_learning)
                            n_successes += 1
                    # ---- threat, exit, accession ---------------------------------------------
                    for i in range(n_states):
                        threat[i] = min(1.0, (1.0 - threat_decay) * threat[i]
                                        + threat_shock * exposure[i, t])
                    if exit_threshold > 0.0:
                        for al in range(n_alliances):
                            if alive[al] == 0:
                                continue
                            left = 0
                            others_sum, others_n = _others(roster_ptr[al], roster_ptr[al + 1],
                                                           roster_idx, active, rep, t, a)
                            for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                                i = roster_idx[slot]
                                if active[slot] == 0 or i == t:
                                    continue
                                if _mean_without(others_sum, others_n, rep[i],
                                                 i != a) < exit_threshold:
                                    active[slot] = 0
                                    left += 1
                                    if i != a:
                                        others_sum = others_sum - rep[i]
                                        others_n -= 1
                            if left > 0:
                                n_exits += left
                                exits_of[al] += left
                                moved = True
                                still = 0
                                for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                                    still += active[slot]
                                if still < 2:  # dissolved: nobody is a member any more
                                    alive[al] = 0
                                    n_dissolved += 1
                                    for slot in range(roster_ptr[al], roster_ptr[al + 1]):
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
                # ---- the state at the end of the period -------------------------------------
                n_roster = roster_states.shape[0]
                if n_roster > 0:
                    total = 0.0
                    for x in range(n_roster):
                        total += rep[roster_states[x]]
                    mean_rep = total / n_roster
                else:
                    mean_rep = 1.0
                pt[s, P_REPUTATION_SUM] += fixed(mean_rep, SHARE_SCALE)
                total = 0.0
                for jj in range(n_aggressors):
                    total += mult[jj]
                pt[s, P_RESOLVE_SUM] += fixed(min(RESOLVE_CAP, total / n_aggressors),
                                              RESOLVE_SCALE)
                total = 0.0
                for i in range(n_states):
                    total += threat[i]
                pt[s, P_THREAT_SUM] += fixed(total / n_states, SHARE_SCALE)
                pt[s, P_EXITS] += n_exits
                pt[s, P_JOINS] += n_joins
                pt[s, P_DISSOLVED] += n_dissolved
                for al in range(n_alliances):
                    count = 0
                    total = 0.0
                    for slot in range(roster_ptr[al], roster_ptr[al + 1]):
                        if active[slot] != 0:
                            count += 1
                            total += rep[roster_idx[slot]]
                    apt[al, s, AP_ACTIVE] += count
                    if count > 0:
                        apt[al, s, AP_REPUTATION_SUM] += fixed(total / count, SHARE_SCALE)
                    apt[al, s, AP_EXITS] += exits_of[al]
                    apt[al, s, AP_JOINS] += joins_of[al]
                    apt[al, s, AP_ALIVE] += alive[al]
            sx[n_successes] += 1
