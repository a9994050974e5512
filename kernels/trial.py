"""The trial loop: design §2 steps 1–8 for a range of global trial indices, tallied in-kernel.

Trials ``start … stop − 1`` are split into blocks of ``block_size``; blocks run in ``prange`` and
each thread adds into its own slice of the tally arrays (``numba.get_thread_id()``).  Every tally
is an integer, so the totals are the same whatever the thread count or block size, and every
random number is keyed by the global trial index (:mod:`kernels.rng`).

Within a block, trials go in batches of at most ``BATCH``: first every trial's crisis and
deterrence; then the attacked trials, grouped by cell, consult as a batch (vectorized over trials,
:func:`kernels.consultation.consult_batch`) and finish one by one.  Grouping changes the order in
which trials are tallied, never a result.
"""

import math

import numpy as np
from numba import get_thread_id, njit, prange

from .deterrence import normal_cdf
from .histogram import delay_bin
from .layout import (
    A_BACKING_SHARE_SUM,
    A_CONSULTED,
    A_DEADLOCK,
    A_DECIDED,
    A_DELAY_SUM,
    A_FIRST,
    A_FREE_RIDERS_SUM,
    A_REPELLED,
    A_ROUNDS_SUM,
    A_VETO,
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
    CAUSE_DEADLOCK,
    CAUSE_DEFECTION,
    CAUSE_NONE,
    CAUSE_VETO,
    DELAY_SCALE,
    R_AGGRESSOR,
    R_ALLIANCE,
    R_ATTACK_TYPE,
    R_ATTACKED,
    R_BACKING_SHARE,
    R_CAUSE,
    R_CELL,
    R_DELAY,
    R_DELIVERED_SHARE,
    R_DETERRED,
    R_FORCE,
    R_FREE_RIDERS,
    R_INVOKED,
    R_REPELLED,
    R_ROUNDS,
    R_TARGET,
    R_TRIAL,
    RULE_VETO,
    SHARE_SCALE,
    SLOT_AGGRESSOR,
    SLOT_ATTACK_TYPE,
    SLOT_ATTRIBUTION,
    SLOT_CONSULT_BASE,
    SLOT_DELIVERY_BASE,
    SLOT_DETERRENCE,
    SLOT_OUTCOME,
    SLOT_TARGET,
)
from .rng import seed_base, trial_key, uniform

BATCH = 2048  # trials per batch within a block (bounds the scratch memory)

# bits of the per-state mark used while a trial runs
IN_COVER = 1  # in M_A of some covering alliance
BACKED_ANY = 2  # backed in some covering alliance
IN_DECIDING = 4  # in M_A of some deciding alliance
RESPONDS = 8  # backed in some deciding alliance (and is not the target)


@njit(cache=True)
def pick(cum_weight, lo, hi, u):
    """First index ``i`` in ``[lo, hi)`` with ``u < cum_weight[i]`` (the last entry is 1.0)."""
    for i in range(lo, hi - 1):
        if u < cum_weight[i]:
            return i
    return hi - 1


@njit(cache=True)
def delivers(key, state, stability):
    """Step 7: whether backer ``state`` delivers its forces (``u < 1`` always holds, so
    stability 1 needs no draw)."""
    return stability[state] >= 1.0 or uniform(key, SLOT_DELIVERY_BASE + state) < stability[state]


@njit(cache=True)
def fixed(x, scale):
    return np.int64(x * scale + 0.5)


@njit(cache=True, parallel=True)
def run_trials(
    seed, start, stop, block_size,
    # states
    capability, stability,
    # alliances
    rule, round_days, max_rounds, integration, intel_sharing,
    # aggressors, attack types, cells
    aggressor_state, aggressor_cum_weight, target_ptr, target_state,
    target_cum_weight, target_cell_base, mix_ptr, mix_type, mix_cum_weight,
    severity, attribution_days, cell_aggressor, cell_target, cell_attack_type,
    # precomputed: kernels.deterrence.deterrence_probabilities
    p_deterred, p_deterred_no_alliance,
    # precomputed: kernels.prepare.consultation_tables
    cc_ptr, cc_alliance, cc_entry_ptr, cc_need, cc_units_members, cc_free_riding,
    e_state, e_units, e_free_riding, e_base, e_theta, e_static, e_veto,
    # scenario scalars
    outcome_noise, mobilization_days, window_days, interoperability_bonus,
    defection_threshold, threat_weight,
    # outputs
    cell_tallies, cell_hist, alliance_tallies, alliance_hist, records, record_start,
):
    """Simulate trials ``[start, stop)`` and add their tallies into the outputs.

    Outputs (int64 unless noted; the leading axis is the thread id < ``numba.get_num_threads()``):
    ``cell_tallies`` (T, C, N_CELL_COLUMNS), ``cell_hist`` (T, C, N_HIST_BINS),
    ``alliance_tallies`` (T, A, N_ALLIANCE_COLUMNS), ``alliance_hist`` (T, A, N_HIST_BINS).
    ``A_COVERED`` and ``A_DETERRED`` are left to the caller (they follow from the cell tallies).
    ``records`` float64 (K, N_RECORD_COLUMNS) receives trial ``g`` in row ``g − record_start``
    when ``0 ≤ g − record_start < K``.
    """
    base_key = seed_base(seed)
    n_states = capability.shape[0]
    n_cells = cc_ptr.shape[0] - 1
    largest = 1
    for cc in range(cc_entry_ptr.shape[0] - 1):
        largest = max(largest, cc_entry_ptr[cc + 1] - cc_entry_ptr[cc])
    max_cover = 1
    for cell in range(n_cells):
        max_cover = max(max_cover, cc_ptr[cell + 1] - cc_ptr[cell])
    n_records = records.shape[0]
    n_aggressors = aggressor_cum_weight.shape[0]
    n_blocks = (stop - start + block_size - 1) // block_size
    batch = min(block_size, BATCH)

    for b in prange(n_blocks):
        tid = get_thread_id()
        ct = cell_tallies[tid]
        ch = cell_hist[tid]
        at = alliance_tallies[tid]
        ah = alliance_hist[tid]
        # per-block scratch: no allocation inside the trial loop
        att_g = np.empty(batch, dtype=np.int64)
        att_key = np.empty(batch, dtype=np.uint64)
        att_cell = np.empty(batch, dtype=np.int64)
        order = np.empty(batch, dtype=np.int64)
        cells_seen = np.empty(batch, dtype=np.int64)
        cell_count = np.zeros(n_cells, dtype=np.int64)
        cell_fill = np.zeros(n_cells, dtype=np.int64)
        backed = np.zeros((max_cover, largest, batch), dtype=np.uint8)
        draw = np.empty((largest, batch), dtype=np.float64)
        survival = np.empty((largest, batch), dtype=np.float64)
        theta = np.empty(largest, dtype=np.float64)
        factor = np.empty(largest, dtype=np.float64)
        share = np.empty(batch, dtype=np.float64)
        units_back = np.empty(batch, dtype=np.int64)
        veto_left = np.empty(batch, dtype=np.int64)
        new_back = np.empty(batch, dtype=np.int64)
        new_units = np.empty(batch, dtype=np.int64)
        new_veto = np.empty(batch, dtype=np.int64)
        decided = np.zeros((max_cover, batch), dtype=np.uint8)
        rounds_of = np.zeros((max_cover, batch), dtype=np.int64)
        n_back_of = np.zeros((max_cover, batch), dtype=np.int64)
        vetoed = np.zeros((max_cover, batch), dtype=np.uint8)
        n_mem_of = np.zeros(max_cover, dtype=np.int64)
        mark = np.zeros(n_states, dtype=np.uint8)

        block_first = start + b * block_size
        block_last = min(stop, block_first + block_size)
        for batch_first in range(block_first, block_last, batch):
            batch_last = min(block_last, batch_first + batch)
            # 1–2. every trial's crisis and deterrence; attacked trials are kept for later
            n_att = 0
            n_seen = 0
            for g in range(batch_first, batch_last):
                key = trial_key(base_key, g)
                j = 0  # a single choice needs no draw
                if n_aggressors > 1:
                    j = pick(aggressor_cum_weight, 0, n_aggressors, uniform(key, SLOT_AGGRESSOR))
                ti = target_ptr[j]
                if target_ptr[j + 1] - ti > 1:
                    ti = pick(target_cum_weight, ti, target_ptr[j + 1], uniform(key, SLOT_TARGET))
                ki = mix_ptr[j]
                if mix_ptr[j + 1] - ki > 1:
                    ki = pick(mix_cum_weight, ki, mix_ptr[j + 1],
                              uniform(key, SLOT_ATTACK_TYPE))
                cell = target_cell_base[ti] + (ki - mix_ptr[j])
                # R depends only on the aggressor-target pair: P(deterred) is precomputed
                u_det = uniform(key, SLOT_DETERRENCE)
                deterred = u_det < p_deterred[ti]
                ct[cell, C_TRIALS] += 1
                if u_det < p_deterred_no_alliance[ti]:
                    ct[cell, C_DETERRED_NO_ALLIANCE] += 1
                rec = g - record_start
                if 0 <= rec < n_records:
                    records[rec, R_TRIAL] = g
                    records[rec, R_CELL] = cell
                    records[rec, R_AGGRESSOR] = j
                    records[rec, R_TARGET] = target_state[ti]
                    records[rec, R_ATTACK_TYPE] = mix_type[ki]
                    records[rec, R_DETERRED] = 1.0 if deterred else 0.0
                    records[rec, R_ATTACKED] = 0.0 if deterred else 1.0
                    records[rec, R_ALLIANCE] = -1.0
                    for col in range(R_INVOKED, records.shape[1]):
                        if col != R_ALLIANCE:
                            records[rec, col] = 0.0
                if deterred:
                    ct[cell, C_DETERRED] += 1
                    continue
                ct[cell, C_ATTACKED] += 1
                att_g[n_att] = g
                att_key[n_att] = key
                att_cell[n_att] = cell
                n_att += 1
                if cell_count[cell] == 0:
                    cells_seen[n_seen] = cell
                    n_seen += 1
                cell_count[cell] += 1
            # group the attacked trials by cell (any order of cells gives the same tallies)
            offset = 0
            for s in range(n_seen):
                cell = cells_seen[s]
                cell_fill[cell] = offset
                offset += cell_count[cell]
            for q in range(n_att):
                cell = att_cell[q]
                order[cell_fill[cell]] = q
                cell_fill[cell] += 1
            group_end = 0
            for s in range(n_seen):
                cell = cells_seen[s]
                n = cell_count[cell]
                cell_count[cell] = 0
                group_start = group_end
                group_end += n
                idx = order[group_start:group_end]
                a = aggressor_state[cell_aggressor[cell]]
                t = cell_target[cell]
                k = cell_attack_type[cell]
                cc_lo = cc_ptr[cell]
                n_cover = cc_ptr[cell + 1] - cc_lo
                # 4–5. consultation in every covering alliance, for the whole group at once.
                # State is member × trial and the inner loops run over trials: no dependency
                # from one trial to the next, no unpredictable branch, so they vectorize. A
                # member backs in the first round r with draw < 1 − Π_{s≤r}(1 − p_s); a trial
                # whose alliance has decided is frozen (masked). (Written inline: a call with
                # this many arrays costs more than the consultation of a small group.)
                for c in range(n_cover):
                    cc = cc_lo + c
                    al = cc_alliance[cc]
                    max_rounds_al = max_rounds[al]
                    intel_al = intel_sharing[al]
                    vetoing_al = rule[al] == RULE_VETO
                    bk = backed[c]
                    dc = decided[c]
                    rd = rounds_of[c]
                    nb = n_back_of[c]
                    vt = vetoed[c]
                    lo = cc_entry_ptr[cc]
                    m = cc_entry_ptr[cc + 1] - lo
                    slot0 = SLOT_CONSULT_BASE + (al << 20)
                    for q in range(n):
                        units_back[q] = 0
                        nb[q] = 0
                        veto_left[q] = 0
                        dc[q] = 0
                        rd[q] = 0
                    for p in range(m):
                        i = e_state[lo + p]
                        b_row = bk[p]
                        d_row = draw[p]
                        s_row = survival[p]
                        if i == t:  # the target backs action from the start
                            for q in range(n):
                                b_row[q] = 1
                                d_row[q] = 0.0
                                s_row[q] = 1.0
                                nb[q] += 1
                                units_back[q] += e_units[lo + p]
                        else:
                            vp = e_veto[lo + p]
                            for q in range(n):
                                b_row[q] = 0
                                d_row[q] = uniform(att_key[idx[q]], slot0 + i)
                                s_row[q] = 1.0
                                veto_left[q] += vp
                        theta[p] = e_theta[lo + p]
                        factor[p] = e_static[lo + p]
                    need = cc_need[cc]
                    moving_threat = intel_al > 0.0 and threat_weight > 0.0
                    riding = cc_free_riding[cc] != 0
                    units_members = cc_units_members[cc]
                    w = threat_weight
                    active = n
                    for r in range(1, max_rounds_al + 1):
                        if moving_threat:
                            if r > 1:  # θ moves toward the alliance mean, alike for all trials
                                total = 0.0
                                for p in range(m):
                                    total += theta[p]
                                mean = total / m
                                for p in range(m):
                                    theta[p] = theta[p] + intel_al * (mean - theta[p])
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
                            b_row = bk[p]
                            d_row = draw[p]
                            s_row = survival[p]
                            for q in range(n):
                                waiting = (b_row[q] == 0) & (dc[q] == 0)
                                prob = f * (1.0 - rho * share[q])
                                s_next = s_row[q] * (1.0 - prob)
                                s_row[q] = s_next if waiting else s_row[q]
                                backs = waiting & (d_row[q] < 1.0 - s_next)
                                b_row[q] = b_row[q] | backs
                                new_back[q] += backs
                                new_units[q] += u_p if backs else 0
                                new_veto[q] += v_p if backs else 0
                        for q in range(n):
                            if dc[q] == 0:
                                nb[q] += new_back[q]
                                units_back[q] += new_units[q]
                                veto_left[q] -= new_veto[q]
                                if nb[q] >= need and veto_left[q] == 0:
                                    dc[q] = 1
                                    rd[q] = r
                                    active -= 1
                        if active == 0:
                            break
                    for q in range(n):
                        vt[q] = 1 if vetoing_al and dc[q] == 0 and nb[q] >= need else 0
                    n_mem_of[c] = m
                for q in range(n):
                    g = att_g[idx[q]]
                    key = att_key[idx[q]]
                    # 3. attribution
                    d_att = 0.0
                    if attribution_days[k] > 0.0:
                        u_att = uniform(key, SLOT_ATTRIBUTION)
                        d_att = -attribution_days[k] * math.log(1.0 - u_att)
                    # 5. the earliest deciding alliance (ties: less mobilization, then position)
                    first = -1
                    first_time = 0.0
                    first_mob = 0.0
                    any_vetoed = False
                    for c in range(n_cover):
                        any_vetoed = any_vetoed or vetoed[c, q] != 0
                        if decided[c, q] != 0:
                            al = cc_alliance[cc_lo + c]
                            when = rounds_of[c, q] * round_days[al]
                            mob = mobilization_days * (1.0 - integration[al])
                            if (first < 0 or when < first_time
                                    or (when == first_time and mob < first_mob)):
                                first = c
                                first_time = when
                                first_mob = mob
                    # 6–7. delivery by the responders, free riders, the trial's backing share
                    invoked = first >= 0
                    force = capability[t]
                    n_resp = 0
                    n_failed = 0
                    n_free = 0
                    n_union = 0
                    n_union_back = 0
                    if n_cover == 1:
                        # one alliance: its members are the union, in ascending state order already
                        n_union = n_mem_of[0]
                        n_union_back = n_back_of[0, q]
                        if invoked:
                            n_free = n_mem_of[0] - n_back_of[0, q]
                            lo = cc_entry_ptr[cc_lo]
                            for p in range(n_mem_of[0]):
                                i = e_state[lo + p]
                                if backed[0, p, q] == 0 or i == t:
                                    continue
                                n_resp += 1
                                if delivers(key, i, stability):
                                    force = force + capability[i]
                                else:
                                    n_failed += 1
                    elif n_cover > 1:
                        for c in range(n_cover):
                            lo = cc_entry_ptr[cc_lo + c]
                            for p in range(n_mem_of[c]):
                                i = e_state[lo + p]
                                mark[i] |= IN_COVER
                                if backed[c, p, q] != 0:
                                    mark[i] |= BACKED_ANY
                                if decided[c, q] != 0:
                                    mark[i] |= IN_DECIDING
                                    if backed[c, p, q] != 0 and i != t:
                                        mark[i] |= RESPONDS
                        for i in range(n_states):
                            mk = mark[i]
                            if mk == 0:
                                continue
                            n_union += 1
                            if mk & BACKED_ANY:
                                n_union_back += 1
                            if mk & RESPONDS:
                                n_resp += 1
                                if delivers(key, i, stability):
                                    force = force + capability[i]
                                else:
                                    n_failed += 1
                            elif (mk & IN_DECIDING) and i != t:
                                n_free += 1
                            mark[i] = 0
                    delay = d_att
                    defection = False
                    first_al = -1
                    rounds_first = 0
                    if invoked:
                        first_al = cc_alliance[cc_lo + first]
                        rounds_first = rounds_of[first, q]
                        delay = (d_att + rounds_first * round_days[first_al]) + (
                            mobilization_days * (1.0 - integration[first_al]))
                        force = force * (1.0 + integration[first_al] * interoperability_bonus)
                        if n_resp > 0:
                            defection = n_failed / n_resp > defection_threshold

                    # 8. outcome
                    threat = capability[a] * severity[k]
                    z = (math.log(force) - math.log(threat) - delay / window_days) / outcome_noise
                    repelled = uniform(key, SLOT_OUTCOME) < normal_cdf(z)

                    # tallies
                    if repelled:
                        ct[cell, C_REPELLED] += 1
                    else:
                        ct[cell, C_SUCCEEDED] += 1
                    cause = CAUSE_NONE
                    backing_share = 0.0
                    if n_cover > 0:
                        ct[cell, C_CONSULTED] += 1
                        backing_share = n_union_back / n_union
                        ct[cell, C_BACKING_SHARE_SUM] += fixed(backing_share, SHARE_SCALE)
                        ct[cell, C_ALLIES_SUM] += n_union - 1
                        ct[cell, C_HONORED_SUM] += n_resp - n_failed  # 0 unless invoked
                        if not invoked:
                            if any_vetoed:
                                ct[cell, C_VETO] += 1
                                cause = CAUSE_VETO
                            else:
                                ct[cell, C_DEADLOCK] += 1
                                cause = CAUSE_DEADLOCK
                    delivered_share = 0.0
                    if invoked:
                        ct[cell, C_INVOKED] += 1
                        ct[cell, C_ROUNDS_SUM] += rounds_first
                        ct[cell, C_DELAY_SUM] += fixed(delay, DELAY_SCALE)
                        ch[cell, delay_bin(delay)] += 1
                        ct[cell, C_FREE_RIDERS_SUM] += n_free
                        if n_resp > 0:
                            delivered_share = (n_resp - n_failed) / n_resp
                            ct[cell, C_WITH_ALLIED_BACKERS] += 1
                            ct[cell, C_DELIVERED_SHARE_SUM] += fixed(delivered_share, SHARE_SCALE)
                        if defection:
                            ct[cell, C_DEFECTION] += 1
                            cause = CAUSE_DEFECTION
                        if repelled:
                            ct[cell, C_REPELLED_INVOKED] += 1
                    for c in range(n_cover):
                        al = cc_alliance[cc_lo + c]
                        at[al, A_CONSULTED] += 1
                        share_c = n_back_of[c, q] / n_mem_of[c]
                        at[al, A_BACKING_SHARE_SUM] += fixed(share_c, SHARE_SCALE)
                        if repelled:
                            at[al, A_REPELLED] += 1
                        if decided[c, q] != 0:
                            at[al, A_DECIDED] += 1
                            at[al, A_ROUNDS_SUM] += rounds_of[c, q]
                            at[al, A_FREE_RIDERS_SUM] += n_mem_of[c] - n_back_of[c, q]
                        elif vetoed[c, q] != 0:
                            at[al, A_VETO] += 1
                        else:
                            at[al, A_DEADLOCK] += 1
                        if c == first:
                            at[al, A_FIRST] += 1
                            at[al, A_DELAY_SUM] += fixed(delay, DELAY_SCALE)
                            ah[al, delay_bin(delay)] += 1
                    rec = g - record_start
                    if 0 <= rec < records.shape[0]:
                        records[rec, R_INVOKED] = 1.0 if invoked else 0.0
                        records[rec, R_ALLIANCE] = first_al
                        records[rec, R_ROUNDS] = rounds_first
                        records[rec, R_DELAY] = delay
                        records[rec, R_BACKING_SHARE] = backing_share
                        records[rec, R_FREE_RIDERS] = n_free
                        records[rec, R_CAUSE] = cause
                        records[rec, R_DELIVERED_SHARE] = delivered_share
                        records[rec, R_FORCE] = force
                        records[rec, R_REPELLED] = 1.0 if repelled else 0.0

