"""The trial loop: design §2 steps 1–8 for a range of global trial indices, tallied in-kernel.

Trials ``run.start … run.stop − 1`` are split into blocks of ``run.block_size``; workers on
threads take ranges of blocks as they come (:mod:`kernels.threads`: the kernel releases the GIL;
a plain ``@njit`` function compiles several times faster than a ``parallel=True`` one), and each
adds into its own slice of the tally arrays and works in its own scratch.  Every tally
is an integer, so the totals are the same whatever the thread count or block size, and every
random number is keyed by the global trial index and the draw's slot (:mod:`kernels.rng`,
:mod:`kernels.layout`), so the order in which draws are made never matters.

Within a block, trials go in batches of at most ``BATCH`` (fewer for large alliances:
:func:`batch_size`): first every trial's crisis and deterrence (steps 1–2); then the attacked
trials, grouped by cell, consult as a group (steps 4–5, written inline and vectorized over the
group's trials: state is member × trial) and finish one by one (steps 3 and 6–8).  Grouping
changes the order in which trials are tallied, never a result.

An alliance without free riding is consulted *by thresholds*: its members' chances do not depend
on the trial, so ``1 − Π_{s≤r}(1 − p_s)`` is computed once per member and round, each member's
one draw gives the round in which it would back, and the rule's deciding round follows from
those rounds: one pass per member instead of one per member and round, with the round loop's
own floating-point operations, so every tally is the same.  Step 8 decides ``u < Φ(z)`` from a
table of Φ unless ``u`` is within a step of ``Φ(z)`` (:func:`kernels.deterrence.below_normal_cdf`).
The kernel counts the uniforms it draws and the keys it derives (``counters``), for the
roofline of ``crisis bench``.

The kernel is private: :func:`engine.core.simulate.simulate` builds its inputs
(:mod:`kernels.args`), allocates the outputs and sums the per-thread slices.

Legend of the short names
-------------------------
==================  ============================================================================
``b``, ``tid``      block index, worker (the row of the outputs it adds into)
``g``, ``key``      global trial index and its RNG key (:func:`kernels.rng.trial_key`)
``j``, ``a``        aggressor index (into :class:`kernels.args.Crises`) and its state
``ti``, ``t``       (aggressor, target) entry and the target state
``ki``, ``k``       attack-mix entry and the attack type
``cell``            aggressor × target × attack type (:class:`kernels.args.Cells`)
``ct``, ``ch``      this thread's cell tallies (C, N_CELL_COLUMNS) and delay histogram (C, bins)
``at``, ``ah``      this thread's alliance tallies (A, N_ALLIANCE_COLUMNS) and histogram (A, bins)
``cc``              a consultation: the cell × one covering alliance of its target;
                    ``cc_lo`` the cell's first, ``c`` the position among its ``n_cover``
``cc_*``            per-consultation constants (:class:`kernels.args.Consultations`)
``e_*``             per-entry constants (:class:`kernels.args.Entries`); an entry is a member of
                    ``M_A`` in one consultation: entries ``lo … lo + m − 1``, position ``p``
``al``, ``i``       an alliance index, a state index
``n``, ``q``        trials in the cell's group of attacked trials, position of one in the group
``idx``             the group's positions in the batch (``att_*[idx[q]]``)
``r``               consultation round, 1 … ``max_rounds``
``bk``              ``backed[c]`` (member p, trial q): has backed
``dc``, ``rd``      ``decided[c]``, ``rounds_of[c]`` (trial q): decided, in that round
``nb``, ``vt``      ``n_back_of[c]``: backers so far (target included); ``vetoed[c]``: undecided
                    because a veto holder never backed
``draw``            member × trial: the member's one backing uniform ``u_i`` in the alliance
``survival``        member × trial: ``S_i(r) = Π_{s ≤ r} (1 − p_{i,s})``; backs once u < 1 − S
``mark``            per state, bits ``IN_COVER`` … ``RESPONDS`` while one trial's union is counted
``u_*``, ``d_att``  uniforms; the attribution delay in days
==================  ============================================================================
"""

import math

import numpy as np
from numba import njit

from .deterrence import attribution_factor, below_normal_cdf, decided_force, phi_table
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
    COUNT_KEYS,
    COUNT_MEMBER_DRAWS,
    COUNT_UNIFORMS,
    DELAY_SCALE,
    M_BACKED,
    M_DELIVERED,
    M_FREE_RODE,
    M_HONORED,
    M_PLEDGED,
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
from .rng import pilot_key, seed_base, trial_key, uniform
from .threads import run_blocks

BATCH = 2048  # trials per batch within a block (bounds the scratch memory)
# members × trials of one batch's member-by-trial scratch at most: a batch of an alliance of L
# members holds min(BATCH, MEMBER_TRIALS // L) trials (at least MIN_BATCH), so the scratch of a
# batch stays bounded however large the alliance (2,048 trials of 4,096 members would be 64 MB
# per float64 array).  Measured on one thread at 512 and 4,096 members: 2^18 was best; 2^14
# (batches of 16 trials at 4,096 members) cost 1.9× as much per member draw.
MEMBER_TRIALS = 1 << 18
MIN_BATCH = 64
SCRATCH_PAD = 64  # unused elements (≥ 64 bytes) after each thread's scratch: no false sharing

# bits of the per-state mark used while a trial runs
IN_COVER = 1  # in M_A of some covering alliance
BACKED_ANY = 2  # backed in some covering alliance
IN_DECIDING = 4  # in M_A of some deciding alliance
RESPONDS = 8  # backed in some deciding alliance (and is not the target)
DELIVERED = 16  # responded and delivered its forces


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
def move_threat(theta, factor, e_base, lo, m, intel, w, r):
    """Before round ``r``: θ of the ``m`` members moves toward their mean (from round 2 on,
    alike for every trial: intel sharing ``intel``), and each member's factor follows,
    ``base · ((1 − w) + w · θ)`` (``e_base[lo + p]``)."""
    if r > 1:
        total = 0.0
        for p in range(m):
            total += theta[p]
        mean = total / m
        for p in range(m):
            theta[p] = theta[p] + intel * (mean - theta[p])
    for p in range(m):
        factor[p] = e_base[lo + p] * ((1.0 - w) + w * theta[p])


@njit(cache=True)
def fixed(x, scale):
    """``x ≥ 0`` in fixed point: ``round(x · scale)`` as int64 (see layout's fixed-point sums)."""
    return np.int64(x * scale + 0.5)


@njit(cache=True)
def batch_size(block_size, max_members):
    """Trials per batch: at most ``BATCH`` and the block, and few enough that the batch's
    member × trial scratch holds ``MEMBER_TRIALS`` elements (never fewer than ``MIN_BATCH``).
    Any batch size gives the same tallies."""
    return min(block_size, BATCH, max(MIN_BATCH, MEMBER_TRIALS // max(1, max_members)))


@njit(cache=True)
def _allocate_scratch(batch, n_cells, n_states, max_members, max_cover, max_rounds):
    """One worker's scratch arrays, allocated once per kernel call: never per block or trial.

    Returns 34 arrays (``B = batch``, ``L = max_members``, ``V = max_cover``,
    ``R = max_rounds``), in this order:

    * the batch's attacked trials: ``att_g`` int64 (B) global index, ``att_key`` uint64
      (B) RNG key, ``att_cell`` int64 (B) cell; ``order`` int64 (B) their positions
      grouped by cell; ``cells_seen`` int64 (B) the cells in order of first appearance;
      ``cell_count`` int64 (C) and ``cell_fill`` int64 (C) (a counting sort);
    * consultation, member × trial: ``backed`` uint8 (V, L, B), ``draw`` float64 (L, B),
      ``survival`` float64 (L, B); per member: ``theta`` float64 (L), ``factor`` float64
      (L); per trial: ``share`` float64 (B), ``units_back``, ``veto_left``, ``new_back``,
      ``new_units``, ``new_veto`` int64 (B);
    * per consultation of the cell × trial: ``decided`` uint8 (V, B), ``rounds_of`` int64
      (V, B), ``n_back_of`` int64 (V, B), ``vetoed`` uint8 (V, B); ``n_mem_of`` int64
      (V);
    * ``mark`` uint8 (S);
    * the pilot's conditional estimate, per trial: ``hazard``, ``hazard_sum``, ``hazard_tail``
      float64 (B);
    * the consultation by thresholds (no free riding): ``threshold`` float64 (L, R) (member
      p backs in the first round r with draw < ``threshold[p, r − 1]``), ``rounds_to_back``
      uint8 (L, B) (that round; 0 for the target, R + 1 for never), ``in_round`` and
      ``veto_in_round`` int64 (R + 2, B) (backers and veto holders by that round), per trial
      ``limit`` and ``latest`` uint8 (B) (uint8 throughout: a uint8 select that mixes in
      an int64 does not vectorize and cost 15× as much);
    * ``group_key`` uint64 (B): the keys of the cell's group of trials, in group order (the
      members' draws read them in order: a gather through ``idx`` made each draw 1.3–1.5× as
      costly).

    Every last axis is ``SCRATCH_PAD`` longer than listed and the kernel never touches the
    padding, so two workers' arrays never share a cache line (without it, 2 threads ran up to
    1.15× slower).  A block needs ``cell_count`` and ``mark`` at zero and leaves them at zero
    (each entry it raises is reset after the batch, after the trial); it writes every other
    array before reading it.  :func:`_run_trials` allocates a worker's scratch once per call
    and worker, never per block: allocating per block made the NATO-32 workload 1.3–1.5× slower.
    """
    len_b = batch + SCRATCH_PAD
    len_c = n_cells + SCRATCH_PAD
    len_l = max_members + SCRATCH_PAD
    len_v = max_cover + SCRATCH_PAD
    len_s = n_states + SCRATCH_PAD
    return (
        np.empty(len_b, dtype=np.int64),  # att_g
        np.empty(len_b, dtype=np.uint64),  # att_key
        np.empty(len_b, dtype=np.int64),  # att_cell
        np.empty(len_b, dtype=np.int64),  # order
        np.empty(len_b, dtype=np.int64),  # cells_seen
        np.zeros(len_c, dtype=np.int64),  # cell_count
        np.zeros(len_c, dtype=np.int64),  # cell_fill
        np.zeros((max_cover, max_members, len_b), dtype=np.uint8),  # backed
        np.empty((max_members, len_b), dtype=np.float64),  # draw
        np.empty((max_members, len_b), dtype=np.float64),  # survival
        np.empty(len_l, dtype=np.float64),  # theta
        np.empty(len_l, dtype=np.float64),  # factor
        np.empty(len_b, dtype=np.float64),  # share
        np.empty(len_b, dtype=np.int64),  # units_back
        np.empty(len_b, dtype=np.int64),  # veto_left
        np.empty(len_b, dtype=np.int64),  # new_back
        np.empty(len_b, dtype=np.int64),  # new_units
        np.empty(len_b, dtype=np.int64),  # new_veto
        np.zeros((max_cover, len_b), dtype=np.uint8),  # decided
        np.zeros((max_cover, len_b), dtype=np.int64),  # rounds_of
        np.zeros((max_cover, len_b), dtype=np.int64),  # n_back_of
        np.zeros((max_cover, len_b), dtype=np.uint8),  # vetoed
        np.zeros(len_v, dtype=np.int64),  # n_mem_of
        np.zeros(len_s, dtype=np.uint8),  # mark
        np.empty(len_b, dtype=np.float64),  # hazard
        np.empty(len_b, dtype=np.float64),  # hazard_sum
        np.empty(len_b, dtype=np.float64),  # hazard_tail
        np.empty((max_members, max_rounds + SCRATCH_PAD), dtype=np.float64),  # threshold
        np.empty((max_members, len_b), dtype=np.uint8),  # rounds_to_back
        np.zeros((max_rounds + 2, len_b), dtype=np.int64),  # in_round
        np.zeros((max_rounds + 2, len_b), dtype=np.int64),  # veto_in_round
        np.empty(len_b, dtype=np.uint8),  # limit
        np.empty(len_b, dtype=np.uint8),  # latest
        np.empty(len_b, dtype=np.uint64),  # group_key
    )


@njit(cache=True, nogil=True)
def _trial_blocks(
    tid, first_block, last_block, scratch, phi,
    run, states, alliances, crises, attack_types, cells, deterrence, consultations, entries,
    settings,
    cell_tallies, cell_hist, alliance_tallies, alliance_hist, member_tallies, records, pilot,
    counters,
):
    """Simulate the trials of blocks ``[first_block, last_block)`` of ``[run.start, run.stop)``
    (block ``b``: trials ``run.start + b · run.block_size …``) and add their tallies into row
    ``tid`` of the outputs, working in ``scratch`` (one worker's :func:`_allocate_scratch`);
    ``phi`` is :func:`kernels.deterrence.phi_table` (step 8 without erfc for nearly every trial).
    Releases the GIL: :func:`_run_trials` runs workers on threads.

    Inputs are the named tuples of :mod:`kernels.args` (each field's dtype and shape is stated
    there): ``run`` :class:`~kernels.args.Run`, ``states`` :class:`~kernels.args.States`,
    ``alliances`` :class:`~kernels.args.Alliances`, ``crises`` :class:`~kernels.args.Crises`,
    ``attack_types`` :class:`~kernels.args.AttackTypes`, ``cells`` :class:`~kernels.args.Cells`,
    ``deterrence`` :class:`~kernels.args.Deterrence`, ``consultations``
    :class:`~kernels.args.Consultations`, ``entries`` :class:`~kernels.args.Entries`,
    ``settings`` :class:`~kernels.args.Settings`.

    Outputs stay plain arrays. They are int64 unless noted, and their leading axis is the
    worker: ``cell_tallies`` (T, C, N_CELL_COLUMNS), ``cell_hist``
    (T, C, N_HIST_BINS), ``alliance_tallies`` (T, A, N_ALLIANCE_COLUMNS), ``alliance_hist``
    (T, A, N_HIST_BINS), ``member_tallies`` (T, memberships, N_MEMBER_COLUMNS) (rows: the
    entries' ``member``).  ``A_COVERED`` and ``A_DETERRED`` are left to the caller (they follow
    from the cell tallies).  ``records`` float64 (K, N_RECORD_COLUMNS) receives trial ``g`` in
    row ``g − run.record_start`` when ``0 ≤ g − run.record_start < K``.  ``pilot`` float64
    (P, 5) receives, for a pilot run (``run.pilot_samples > 0``), the sums of pilot cell ``p``
    in row ``p`` (see :class:`kernels.args.Run`); a pilot run's other outputs are scratch.
    ``counters`` (T, N_COUNTERS) receives the work done (:data:`kernels.layout.COUNT_UNIFORMS`
    …): uniforms drawn, keys derived, members' draws; a handful of integer additions per trial.
    """
    # Every field into a local, here and nowhere else: reading tuple fields inside the loops
    # (or passing the tuples to per-trial helpers) costs reference counting.
    seed = run.seed
    start = run.start
    stop = run.stop
    block_size = run.block_size
    record_start = run.record_start
    pilot_samples = run.pilot_samples
    capability = states.capability
    stability = states.stability
    rule = alliances.rule
    round_days = alliances.round_days
    max_rounds = alliances.max_rounds
    integration = alliances.integration
    intel_sharing = alliances.intel_sharing
    aggressor_state = crises.aggressor_state
    aggressor_cum_weight = crises.aggressor_cum_weight
    target_ptr = crises.target_ptr
    target_state = crises.target_state
    target_cum_weight = crises.target_cum_weight
    target_cell_base = crises.target_cell_base
    mix_ptr = crises.mix_ptr
    mix_type = crises.mix_type
    mix_cum_weight = crises.mix_cum_weight
    severity = attack_types.severity
    attribution_days = attack_types.attribution_days
    cell_aggressor = cells.aggressor
    cell_target = cells.target
    cell_attack_type = cells.attack_type
    p_deterred = deterrence.p_deterred
    p_deterred_no_alliance = deterrence.p_deterred_no_alliance
    pilot_cells = deterrence.pilot_cells
    pilot_hazard = deterrence.pilot_hazard
    cc_ptr = consultations.ptr
    cc_alliance = consultations.alliance
    cc_entry_ptr = consultations.entry_ptr
    cc_need = consultations.need
    cc_units_members = consultations.units_members
    cc_free_riding = consultations.free_riding
    e_state = entries.state
    e_units = entries.units
    e_free_riding = entries.free_riding
    e_base = entries.base
    e_theta = entries.theta
    e_static = entries.static
    e_veto = entries.veto
    e_member = entries.member
    outcome_noise = settings.outcome_noise
    mobilization_days = settings.mobilization_days
    window_days = settings.window_days
    interoperability_bonus = settings.interoperability_bonus
    defection_threshold = settings.defection_threshold
    threat_weight = settings.threat_weight

    base_key = seed_base(seed)
    n_states = capability.shape[0]
    n_records = records.shape[0]
    n_aggressors = aggressor_cum_weight.shape[0]
    batch = batch_size(block_size, consultations.max_members)

    for b in range(first_block, last_block):
        ct = cell_tallies[tid]
        ch = cell_hist[tid]
        at = alliance_tallies[tid]
        ah = alliance_hist[tid]
        mt = member_tallies[tid]
        # this worker's scratch (see _allocate_scratch for every array's dtype and shape)
        (att_g, att_key, att_cell, order, cells_seen, cell_count, cell_fill,
         backed, draw, survival, theta, factor,
         share, units_back, veto_left, new_back, new_units, new_veto,
         decided, rounds_of, n_back_of, vetoed, n_mem_of, mark,
         hazard, hazard_sum, hazard_tail, threshold, rounds_to_back, in_round, veto_in_round,
         limit, latest, group_key) = scratch
        n_uniforms = 0  # this block's work (counters)
        n_keys = 0
        n_member_draws = 0

        block_first = start + b * block_size
        block_last = min(stop, block_first + block_size)
        for batch_first in range(block_first, block_last, batch):
            batch_last = min(block_last, batch_first + batch)
            n_att = 0
            n_seen = 0
            for g in range(batch_first, batch_last):
                if pilot_samples > 0:
                    # ---- pilot: sample g mod n of a pilot cell, always attacked (design §8)
                    pc = g // pilot_samples
                    cell = pilot_cells[pc]
                    key = pilot_key(base_key, cell, g - pc * pilot_samples)
                    n_keys += 2
                else:
                    key = trial_key(base_key, g)
                    n_keys += 1
                    n_uniforms += 1  # deterrence (step 2)

                    # ---- 1. Draw the crisis ------------------------------------------------------
                    # Aggressor j by weight, then its target entry ti and attack-mix entry ki
                    j = 0  # a single choice needs no draw
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
                    cell = target_cell_base[ti] + (ki - mix_ptr[j])

                    # ---- 2. Deterrence -----------------------------------------------------------
                    # P(deterred) is precomputed per cell (kernels.deterrence)
                    u_det = uniform(key, SLOT_DETERRENCE)
                    deterred = u_det < p_deterred[cell]
                    ct[cell, C_TRIALS] += 1
                    if u_det < p_deterred_no_alliance[cell]:  # the same uniform: common numbers
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
                    if deterred:  # the trial ends here
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
                # a pilot of one alliance under unanimity estimates E[F·exp(−delay/window)]
                # conditionally (see Run): Σ_r 1{undecided before r} · π_r · g_r with π_r the
                # chance that every waiting member backs in round r
                hazard_on = pilot_samples > 0 and (
                    pilot_hazard[att_g[idx[0]] // pilot_samples] != 0)
                for q in range(n):
                    group_key[q] = att_key[idx[q]]
                log_threat = math.log(capability[a] * severity[k])  # step 8's threat, per cell

                # ---- 4. Consultation -------------------------------------------------------------
                # In every covering alliance, for the cell's group of attacked trials at once.
                # State is member × trial and the inner loops run over trials: no dependency
                # from one trial to the next, no unpredictable branch, so they vectorize. A
                # member backs in the first round r with draw < 1 − Π_{s≤r}(1 − p_s); a trial
                # whose alliance has decided is frozen (masked). (Written inline: a call with
                # this many arrays costs more than the consultation of a small group.)
                # Without free riding p_s is alike for every trial of the group, so the
                # thresholds 1 − Π(1 − p_s) are computed once per member and round (the same
                # operations as round by round), each member's draw gives the round in which
                # it would back, and the decision follows from those rounds: one pass per
                # member instead of one per member and round, the same numbers.
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
                    riding = cc_free_riding[cc] != 0
                    by_threshold = not riding and not hazard_on  # (and monotone thresholds)
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
                        if i == t:  # the target backs action from the start
                            for q in range(n):
                                b_row[q] = 1
                                d_row[q] = 0.0
                                nb[q] += 1
                                units_back[q] += e_units[lo + p]
                        else:
                            for q in range(n):
                                b_row[q] = 0
                                d_row[q] = uniform(group_key[q], slot0 + i)
                            n_member_draws += n
                            if e_veto[lo + p] != 0:
                                for q in range(n):
                                    veto_left[q] += 1
                    need = cc_need[cc]
                    force_decided = 0.0
                    mobilization_al = 0.0
                    if hazard_on:  # E[F | decided] under unanimity: every member delivers
                        force_decided = decided_force(t, lo, lo + m, e_state, capability,
                                                      stability, integration[al],
                                                      interoperability_bonus)
                        mobilization_al = mobilization_days * (1.0 - integration[al])
                        for q in range(n):
                            hazard_sum[q] = 0.0
                            hazard_tail[q] = 0.0
                    moving_threat = intel_al > 0.0 and threat_weight > 0.0
                    w = threat_weight
                    if by_threshold:
                        top = max_rounds_al
                        # p_{p,r} into threshold[p, r − 1] round by round (θ may move alike for
                        # every trial), then 1 − Π_{s≤r}(1 − p_s) member by member; share is 0
                        # without free riding, so the round loop's p = f · (1 − ρ · 0) is f
                        # exactly (ρ ∈ [0, 1])
                        for p in range(m):
                            theta[p] = e_theta[lo + p]
                            factor[p] = e_static[lo + p]
                        for r in range(1, top + 1):
                            if moving_threat:
                                move_threat(theta, factor, e_base, lo, m, intel_al, w, r)
                            for p in range(m):
                                threshold[p, r - 1] = factor[p]
                        # 1 − S is nondecreasing whenever every p lies in [0, 1] (validated
                        # inputs); if rounding ever broke that, the round loop below decides
                        for p in range(m):
                            surv = 1.0
                            before = 0.0
                            for r in range(top):
                                surv = surv * (1.0 - threshold[p, r])
                                threshold[p, r] = 1.0 - surv
                                by_threshold = by_threshold and threshold[p, r] >= before
                                before = threshold[p, r]
                    if by_threshold:
                        # the round in which each member would back: 1 + the rounds whose
                        # threshold its draw is not below (0: the target; top + 1: never)
                        for p in range(m):
                            k_row = rounds_to_back[p]
                            if e_state[lo + p] == t:
                                for q in range(n):
                                    k_row[q] = 0
                            else:
                                d_row = draw[p]
                                for q in range(n):
                                    k_row[q] = 1
                                for r in range(top):
                                    th = threshold[p, r]
                                    for q in range(n):
                                        k_row[q] += d_row[q] >= th
                        # the rule after each round: the first round whose backers so far meet
                        # it decides (0: none does)
                        if need >= m:  # every member must back: the last one decides
                            for q in range(n):
                                latest[q] = 1
                            for p in range(m):
                                k_row = rounds_to_back[p]
                                for q in range(n):
                                    latest[q] = max(latest[q], k_row[q])
                            for q in range(n):
                                rd[q] = latest[q] if (latest[q] <= top and need == m) else 0
                        else:
                            for p in range(m):
                                k_row = rounds_to_back[p]
                                for q in range(n):
                                    in_round[k_row[q], q] += 1
                                if e_veto[lo + p] != 0 and e_state[lo + p] != t:
                                    for q in range(n):
                                        veto_in_round[k_row[q], q] += 1
                            for q in range(n):
                                got = in_round[0, q]
                                left = veto_left[q]
                                rd[q] = 0
                                for r in range(1, top + 1):
                                    got += in_round[r, q]
                                    left -= veto_in_round[r, q]
                                    if got >= need and left == 0:
                                        rd[q] = r
                                        break
                            for r in range(top + 2):
                                for q in range(n):
                                    in_round[r, q] = 0
                                    veto_in_round[r, q] = 0
                        # backed: by the deciding round, or by the last one when undecided
                        for q in range(n):
                            dc[q] = 1 if rd[q] > 0 else 0
                            limit[q] = rd[q] if rd[q] > 0 else top
                            nb[q] = 0
                        for p in range(m):
                            k_row = rounds_to_back[p]
                            b_row = bk[p]
                            for q in range(n):
                                backs = np.uint8(k_row[q] <= limit[q])
                                b_row[q] = backs
                                nb[q] += backs
                    else:
                        # round by round (free riding, the pilot's conditional estimate, or
                        # thresholds that are not monotone): its own state from the start
                        for p in range(m):
                            theta[p] = e_theta[lo + p]
                            factor[p] = e_static[lo + p]
                            s_row = survival[p]
                            for q in range(n):
                                s_row[q] = 1.0
                        units_members = cc_units_members[cc]
                        active = n
                        for r in range(1, max_rounds_al + 1):
                            if moving_threat:
                                move_threat(theta, factor, e_base, lo, m, intel_al, w, r)
                            for q in range(n):
                                share[q] = units_back[q] / units_members if riding else 0.0
                                new_back[q] = 0
                                new_units[q] = 0
                                new_veto[q] = 0
                            if hazard_on:
                                for q in range(n):
                                    hazard[q] = 1.0
                            for p in range(m):
                                f = factor[p]
                                rho = e_free_riding[lo + p]
                                u_p = e_units[lo + p]
                                v_p = e_veto[lo + p]
                                b_row = bk[p]
                                d_row = draw[p]
                                s_row = survival[p]
                                if hazard_on:  # π_r: every member waiting at the round's start
                                    for q in range(n):
                                        if b_row[q] == 0 and dc[q] == 0:
                                            hazard[q] *= f * (1.0 - rho * share[q])
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
                            if hazard_on:
                                weight = force_decided * math.exp(
                                    -(r * round_days[al] + mobilization_al) / window_days)
                                for q in range(n):
                                    if dc[q] == 0:
                                        hazard_sum[q] += hazard[q] * weight
                                        if r == max_rounds_al:
                                            hazard_tail[q] = 1.0 - hazard[q]
                            for q in range(n):  # the rule, checked after the round
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

                    # ---- 5. Decision failure -----------------------------------------------------
                    # Undecided: veto when the quota was met but a veto holder never backed; any
                    # other undecided trial is a deadlock (the trial's cause is tallied in step 8)
                    for q in range(n):
                        vt[q] = 1 if vetoing_al and dc[q] == 0 and nb[q] >= need else 0
                    n_mem_of[c] = m
                    # each member's pledges in this alliance, over the group at once: pledged,
                    # backed, free rode (the alliance decided without it); delivered and
                    # honored follow per trial in step 7
                    for p in range(m):
                        if e_state[lo + p] == t:
                            continue
                        b_row = bk[p]
                        n_backed = 0
                        n_rode = 0
                        for q in range(n):
                            n_backed += b_row[q]
                            n_rode += dc[q] & (b_row[q] ^ 1)
                        row = e_member[lo + p]
                        mt[row, M_PLEDGED] += n
                        mt[row, M_BACKED] += n_backed
                        mt[row, M_FREE_RODE] += n_rode

                # each trial of the group finishes on its own
                for q in range(n):
                    g = att_g[idx[q]]
                    key = att_key[idx[q]]
                    if hazard_on:  # the pilot's conditional estimate needs no more draws
                        pc = g // pilot_samples
                        value = attribution_factor(attribution_days[k], window_days) * (
                            hazard_sum[q] + hazard_tail[q] * capability[t])
                        pilot[pc, 0] += value
                        pilot[pc, 1] += value * value
                        continue

                    # ---- 3. Attribution ----------------------------------------------------------
                    # (drawn after the consultation: a draw is keyed by its slot, not its order)
                    d_att = 0.0
                    if attribution_days[k] > 0.0:
                        u_att = uniform(key, SLOT_ATTRIBUTION)
                        n_uniforms += 1
                        d_att = -attribution_days[k] * math.log(1.0 - u_att)

                    # ---- 6. Delay ----------------------------------------------------------------
                    # The earliest deciding alliance counts (ties: less mobilization, then
                    # position); any_vetoed collects step 5 over the covering alliances
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
                    invoked = first >= 0
                    delay = d_att  # with no decision
                    first_al = -1
                    rounds_first = 0
                    if invoked:
                        first_al = cc_alliance[cc_lo + first]
                        rounds_first = rounds_of[first, q]
                        delay = (d_att + rounds_first * round_days[first_al]) + (
                            mobilization_days * (1.0 - integration[first_al]))

                    # ---- 7. Delivery -------------------------------------------------------------
                    # By the responders; also the free riders, the trial's backing share and the
                    # pledges delivered and honored (backed in that alliance and delivered)
                    force = capability[t]
                    n_resp = 0
                    n_failed = 0
                    n_free = 0
                    n_union = 0
                    n_union_back = 0
                    n_pledged = 0
                    n_honored = 0
                    if n_cover == 1:
                        # one alliance: its members are the union, in ascending state order already
                        n_union = n_mem_of[0]
                        n_union_back = n_back_of[0, q]
                        n_pledged = n_mem_of[0] - 1
                        if invoked:
                            n_free = n_mem_of[0] - n_back_of[0, q]
                            lo = cc_entry_ptr[cc_lo]
                            for p in range(n_mem_of[0]):
                                i = e_state[lo + p]
                                if backed[0, p, q] == 0 or i == t:
                                    continue
                                n_resp += 1
                                n_uniforms += stability[i] < 1.0  # delivers() draws
                                if delivers(key, i, stability):
                                    force = force + capability[i]
                                    row = e_member[lo + p]
                                    mt[row, M_DELIVERED] += 1
                                    mt[row, M_HONORED] += 1
                                else:
                                    n_failed += 1
                            n_honored = n_resp - n_failed
                    elif n_cover > 1:
                        # several alliances: mark the union of their M_A, then walk the states in
                        # ascending order (the order in which delivered forces are summed)
                        for c in range(n_cover):
                            lo = cc_entry_ptr[cc_lo + c]
                            n_pledged += n_mem_of[c] - 1
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
                            mark[i] = 0
                            if mk & RESPONDS:
                                n_resp += 1
                                n_uniforms += stability[i] < 1.0  # delivers() draws
                                if delivers(key, i, stability):
                                    force = force + capability[i]
                                    mark[i] = DELIVERED  # kept until its pledges are counted
                                else:
                                    n_failed += 1
                            elif (mk & IN_DECIDING) and i != t:
                                n_free += 1
                        if n_resp > n_failed:
                            # the deliverers' pledges: delivered in each alliance, honored where
                            # they backed; then clear their marks
                            for c in range(n_cover):
                                lo = cc_entry_ptr[cc_lo + c]
                                for p in range(n_mem_of[c]):
                                    i = e_state[lo + p]
                                    if mark[i] == 0:
                                        continue
                                    row = e_member[lo + p]
                                    mt[row, M_DELIVERED] += 1
                                    if backed[c, p, q] != 0:
                                        mt[row, M_HONORED] += 1
                                        n_honored += 1
                            for c in range(n_cover):
                                lo = cc_entry_ptr[cc_lo + c]
                                for p in range(n_mem_of[c]):
                                    mark[e_state[lo + p]] = 0
                    defection = False
                    if invoked and n_resp > 0:
                        defection = n_failed / n_resp > defection_threshold

                    # ---- 8. Outcome --------------------------------------------------------------
                    # Repelled iff F · exp(σ_o·Z') > cap_a · severity_k · exp(delay / window_days)
                    if invoked:
                        force = force * (1.0 + integration[first_al] * interoperability_bonus)
                    if pilot_samples > 0:  # the pilot weighs the response; no outcome, no tallies
                        pc = g // pilot_samples
                        value = force * math.exp(-delay / window_days)
                        pilot[pc, 0] += value
                        pilot[pc, 1] += value * value
                        continue
                    z = (math.log(force) - log_threat - delay / window_days) / outcome_noise
                    repelled = below_normal_cdf(uniform(key, SLOT_OUTCOME), z, phi)
                    n_uniforms += 1

                    # tallies of the cell
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
                        ct[cell, C_ALLIES_SUM] += n_pledged
                        ct[cell, C_HONORED_SUM] += n_honored  # 0 unless invoked
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
                    # tallies of each covering alliance
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
                    # the saved record, if this trial has a row
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
        counters[tid, COUNT_UNIFORMS] += n_uniforms + n_member_draws
        counters[tid, COUNT_KEYS] += n_keys
        counters[tid, COUNT_MEMBER_DRAWS] += n_member_draws


def _run_trials(run, states, alliances, crises, attack_types, cells, deterrence, consultations,
                entries, settings, *outputs):
    """Simulate trials ``[run.start, run.stop)`` on every worker and add their tallies into the
    outputs (:func:`_trial_blocks`'s, whose leading axis is the worker).  Blocks are shared among
    the workers as they come (:func:`kernels.threads.run_blocks`); each worker allocates its
    scratch once, on its first range, and adds into its own row, so the tallies are the same
    whatever the thread count or the order in which blocks ran (a pilot cell is one block)."""
    n_workers = outputs[0].shape[0]  # cell_tallies (T, C, N_CELL_COLUMNS)
    n_blocks = (run.stop - run.start + run.block_size - 1) // run.block_size
    batch = batch_size(run.block_size, consultations.max_members)
    longest = max([1, *(int(r) for r in alliances.max_rounds)])
    n_cells = consultations.ptr.shape[0] - 1
    n_states = states.capability.shape[0]
    scratch = [None] * n_workers
    phi = phi_table()  # once per call, not per range of blocks

    def call(tid, first, last):
        if scratch[tid] is None:
            scratch[tid] = _allocate_scratch(batch, n_cells, n_states, consultations.max_members,
                                             consultations.max_cover, longest)
        _trial_blocks(tid, first, last, scratch[tid], phi, run, states, alliances, crises,
                      attack_types, cells, deterrence, consultations, entries, settings,
                      *outputs)

    run_blocks(call, n_blocks, n_workers)
