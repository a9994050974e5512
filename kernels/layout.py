"""The shared vocabulary between kernels, the reference implementation and the engine.

Everything here is a plain constant so that kernels, the NumPy reference and the table builders
agree on what each tally column and each random-draw slot means.

Random-draw slots
-----------------
Every uniform of trial ``g`` is ``uniform(trial_key(seed_base(seed), g), slot)``
(see :mod:`kernels.rng`).
The slot names the draw's purpose, so a draw never depends on the order in which other draws
were made, on the block size or on the thread count.

=============================  ==========================================================
slot                           purpose
=============================  ==========================================================
``SLOT_AGGRESSOR``             which aggressor (by ``weight``)
``SLOT_TARGET``                which target (by the aggressor's ``targets`` weights)
``SLOT_ATTACK_TYPE``           which attack type (by the aggressor's ``attack_mix``)
``SLOT_DETERRENCE``            deterred iff ``u < Φ((ln R − ln(cap_a·resolve_a)) / σ)``
``SLOT_ATTRIBUTION``           ``D_att = −mean · log(1 − u)``
``SLOT_OUTCOME``               repelled iff ``u < Φ((ln F − ln(cap_a·sev_k) − delay/window)/σ_o)``
``SLOT_CRISIS``                campaigns: a crisis in the period iff ``u < crisis_rate`` (< 1)
``delivery_slot(s)``           state ``s`` delivers iff ``u < stability_s``
``consult_slot(A, s)``         state ``s``'s backing uniform in alliance ``A`` (see below)
``round_slot(A, s, r)``        one uniform per round; used only by the literal reference
=============================  ==========================================================

Consultation draws.  Design §2 step 4 draws ``U_r`` per round and backs iff ``U_r < p_{i,r}``.
The engine draws *one* uniform ``u_i`` per member and alliance and lets ``i`` back in the first
round ``r`` with ``u_i < 1 − S_i(r)``, where ``S_i(r) = Π_{s ≤ r} (1 − p_{i,s})`` is updated by
repeated multiplication.  Conditional on not having backed by round ``r − 1`` the chance of
backing in round ``r`` is ``(S(r−1) − S(r)) / S(r−1) = p_{i,r}``, exactly the per-round law, and
``p_{i,r}`` only depends on the other members' draws and on ``i`` not having backed yet, so the
two schemes have the same joint distribution (tests check it against the literal scheme).

Fixed-point sums
----------------
Float measures are summed as integers (``round(x · scale)``) so that every tally is an integer
and sums do not depend on how the trial range was split.  ``DELAY_SCALE`` resolves 1/1024 day
per trial; ``SHARE_SCALE`` resolves shares to 2^-24.  int64 holds 9e18: at 10^5 days per trial
the delay sum overflows only after 9·10^10 trials in one cell.
"""

import numpy as np

# ---- random-draw slots -------------------------------------------------------------------
SLOT_AGGRESSOR = 0
SLOT_TARGET = 1
SLOT_ATTACK_TYPE = 2
SLOT_DETERRENCE = 3
SLOT_ATTRIBUTION = 4
SLOT_OUTCOME = 5
SLOT_CRISIS = 6  # campaigns (design §7): a crisis in the period iff u < crisis_rate (< 1)
SLOT_DELIVERY_BASE = 1 << 24  # + state index
SLOT_CONSULT_BASE = 1 << 40  # + alliance index << 20 + state index
SLOT_ROUND_BASE = 1 << 56  # + round << 40 + alliance index << 20 + state index
MAX_STATES = 1 << 20
MAX_ALLIANCES = 1 << 20
MAX_ROUNDS = (1 << 7) - 1  # round_slot keeps r < 2^7 below bit 63; the engine enforces it


def delivery_slot(state):
    return SLOT_DELIVERY_BASE + state


def consult_slot(alliance, state):
    return SLOT_CONSULT_BASE + (alliance << 20) + state


def round_slot(alliance, state, round_number):
    return SLOT_ROUND_BASE + (round_number << 40) + (alliance << 20) + state


# ---- enumerations ------------------------------------------------------------------------
# ``collective_security`` (League Covenant Arts. 10 and 16, UN Charter Ch. VII) covers every member
# against anyone, members included; ``defense`` covers members against outside attack (design §8)
OBLIGATIONS = ("defense", "consultation", "neutrality", "nonaggression", "collective_security")
OBLIGATION_DEFENSE = 0
OBLIGATION_COLLECTIVE_SECURITY = 4
# step 2: ``capability`` is v1 (R from capabilities and commitments); ``expected_response`` weighs
# E_cell = E[F · exp(−delay / window_days)] over the cell's steps 3–8 (design §8)
DETERRENCE_MODES = ("capability", "expected_response")
DETERRENCE_CAPABILITY = 0
DETERRENCE_EXPECTED_RESPONSE = 1
# how E_cell was obtained, per cell
E_EXACT = 0  # closed form
E_PILOT = 1  # keyed pilot simulation of the cell's response
DECISION_RULES = ("unanimity", "majority", "qualified", "veto")
RULE_UNANIMITY = 0
RULE_MAJORITY = 1
RULE_QUALIFIED = 2
RULE_VETO = 3

# quota · |M_A| is rounded up after subtracting this, so that 0.1 · 30 = 3.0000000000000004
# needs 3 backers, not 4.
QUOTA_EPSILON = 1e-9

# breakdown cause of a trial (saved trial records)
CAUSE_NONE = 0
CAUSE_DEADLOCK = 1
CAUSE_VETO = 2
CAUSE_DEFECTION = 3
CAUSES = ("none", "deadlock", "veto", "defection")

# ---- fixed point -------------------------------------------------------------------------
DELAY_SCALE = 1024.0
SHARE_SCALE = float(1 << 24)

# ---- campaigns (design §7) -------------------------------------------------------------------
# per period, summed over trajectories at the end of the period (fixed point where noted)
P_REPUTATION_SUM = 0  # mean reputation of the roster states (members and candidates), SHARE_SCALE
P_RESOLVE_SUM = 1  # mean resolve multiplier of the aggressors, RESOLVE_SCALE, each ≤ RESOLVE_CAP
P_THREAT_SUM = 2  # mean threat of every state, SHARE_SCALE
P_EXITS = 3  # members that left an alliance in the period
P_JOINS = 4  # candidates that acceded in the period
P_DISSOLVED = 5  # alliances dissolved in the period
N_PERIOD_COLUMNS = 6
PERIOD_COLUMNS = ("reputation_sum_fx", "resolve_sum_fx", "threat_sum_fx", "exits", "joins",
                  "dissolved")
RESOLVE_SCALE = float(1 << 20)
RESOLVE_CAP = float(1 << 30)  # a multiplier is summed as at most this (int64 stays exact)
# per alliance × period, summed over trajectories at the end of the period
AP_ACTIVE = 0  # active members
AP_REPUTATION_SUM = 1  # mean reputation of its active members (0 when none), SHARE_SCALE
AP_EXITS = 2
AP_JOINS = 3
AP_ALIVE = 4  # trajectories in which it is not dissolved
N_ALLIANCE_PERIOD_COLUMNS = 5
ALLIANCE_PERIOD_COLUMNS = ("active_sum", "reputation_sum_fx", "exits", "joins", "alive")

# ---- per-cell tally columns (int64) --------------------------------------------------------
# A cell is one aggressor × target × attack type.
C_TRIALS = 0
C_DETERRED = 1
C_DETERRED_NO_ALLIANCE = 2  # same uniform, R = cap_t (common random numbers)
C_ATTACKED = 3
C_CONSULTED = 4  # attacked and at least one covering alliance
C_INVOKED = 5  # some covering alliance decided
C_DEADLOCK = 6
C_VETO = 7
C_DEFECTION = 8
C_REPELLED = 9
C_SUCCEEDED = 10
C_ROUNDS_SUM = 11  # over invoked trials (rounds of the earliest deciding alliance)
C_DELAY_SUM = 12  # fixed point, over invoked trials
C_BACKING_SHARE_SUM = 13  # fixed point, over consulted trials
C_FREE_RIDERS_SUM = 14  # over invoked trials
C_DELIVERED_SHARE_SUM = 15  # fixed point, over invoked trials with allied backers
C_WITH_ALLIED_BACKERS = 16  # invoked trials with at least one backer besides the target
C_REPELLED_INVOKED = 17
# honoring commitments (Berkemeier & Fuhrmann's unit: an ally × a crisis it was pledged to):
# pledges are counted per consulting alliance × member (a member of two consulting alliances
# pledged twice), so Σ over members of M_HONORED / M_PLEDGED is the same rate exactly:
C_ALLIES_SUM = 18  # Σ over consulted trials of the pledges (M_A minus target, per alliance)
C_HONORED_SUM = 19  # Σ over invoked trials of the pledges honored (backed there and delivered)
N_CELL_COLUMNS = 20
CELL_COLUMNS = (
    "trials",
    "deterred",
    "deterred_no_alliance",
    "attacked",
    "consulted",
    "invoked",
    "deadlock",
    "veto",
    "defection",
    "repelled",
    "succeeded",
    "rounds_sum",
    "delay_sum_fx",
    "backing_share_sum_fx",
    "free_riders_sum",
    "delivered_share_sum_fx",
    "with_allied_backers",
    "repelled_invoked",
    "allies_sum",
    "honored_sum",
)

# ---- per-alliance tally columns (int64) ----------------------------------------------------
A_COVERED = 0  # trials whose target is a member of this defense alliance
A_DETERRED = 1
A_CONSULTED = 2  # attacked covered trials: the alliance consulted
A_DECIDED = 3
A_DEADLOCK = 4
A_VETO = 5
A_FIRST = 6  # the alliance's decision was the one that counted (earliest)
A_ROUNDS_SUM = 7  # over decided
A_BACKING_SHARE_SUM = 8  # fixed point, share of M_A backing at the end, over consulted
A_FREE_RIDERS_SUM = 9  # members of M_A (not the target) that never backed, over decided
A_DELAY_SUM = 10  # fixed point, over FIRST
A_REPELLED = 11  # over consulted
N_ALLIANCE_COLUMNS = 12
ALLIANCE_COLUMNS = (
    "covered",
    "deterred",
    "consulted",
    "decided",
    "deadlock",
    "veto",
    "first",
    "rounds_sum",
    "backing_share_sum_fx",
    "free_riders_sum",
    "delay_sum_fx",
    "repelled",
)

# ---- per-member tally columns (int64), one row per membership (alliance × member) ---------
# Rows follow the compiled membership CSR: row r is state member_idx[r] of the alliance whose
# member_ptr range holds r.  Counted over consulted crises in which the member is neither the
# target nor the aggressor (design §8: an alliance's honor rate is its members' honored / pledged).
M_PLEDGED = 0  # the alliance consulted and the member is not the target (nor the aggressor)
M_BACKED = 1  # it backed in this alliance's consultation
M_DELIVERED = 2  # it responded (backed in a deciding alliance) and delivered its forces
M_HONORED = 3  # backed in this alliance and delivered (the honor unit)
M_FREE_RODE = 4  # this alliance decided and the member never backed in it
N_MEMBER_COLUMNS = 5
MEMBER_COLUMNS = ("pledged", "backed", "delivered", "honored", "free_rode")

# ---- saved per-trial records (float64 columns) --------------------------------------------
R_TRIAL = 0
R_CELL = 1
R_AGGRESSOR = 2  # aggressor entry index
R_TARGET = 3  # state index
R_ATTACK_TYPE = 4  # attack type index
R_DETERRED = 5
R_ATTACKED = 6
R_INVOKED = 7
R_ALLIANCE = 8  # earliest deciding alliance, −1 if none
R_ROUNDS = 9
R_DELAY = 10
R_BACKING_SHARE = 11
R_FREE_RIDERS = 12
R_CAUSE = 13
R_DELIVERED_SHARE = 14
R_FORCE = 15
R_REPELLED = 16
N_RECORD_COLUMNS = 17

# ---- work counters of the trial kernel (``counters``: what it hashed, for the roofline) ------
COUNT_UNIFORMS = 0  # uniforms drawn (each one SplitMix64 hash)
COUNT_KEYS = 1  # trial and pilot keys derived (one hash each; a pilot key is two)
COUNT_MEMBER_DRAWS = 2  # of the uniforms, the members' backing draws (step 4)
N_COUNTERS = 3
RECORD_COLUMNS = (
    "trial",
    "cell",
    "aggressor",
    "target",
    "attack_type",
    "deterred",
    "attacked",
    "invoked",
    "alliance",
    "rounds",
    "delay_days",
    "backing_share",
    "free_riders",
    "cause",
    "delivered_share",
    "force",
    "repelled",
)

# ---- delay histogram ----------------------------------------------------------------------
# Bins of 0.1 day on [0, 128) days, then 64 equal bins per octave [128·2^e, 128·2^(e+1)) for
# e = 0..9 (≤ 1.6% wide), then one overflow bin from 131072 days (359 years) on.
HIST_FINE_WIDTH = 0.1
HIST_FINE_BINS = 1280
HIST_FINE_LIMIT = 128.0
HIST_SUB_BINS = 64
HIST_OCTAVES = 10
HIST_OVERFLOW = HIST_FINE_BINS + HIST_SUB_BINS * HIST_OCTAVES
N_HIST_BINS = HIST_OVERFLOW + 1


def histogram_edges():
    """Lower edges of every bin and the overflow bin's upper edge: shape (N_HIST_BINS + 1,).

    The overflow bin's upper edge is ``inf``.
    """
    fine = np.arange(HIST_FINE_BINS, dtype=np.float64) * HIST_FINE_WIDTH
    coarse = [
        HIST_FINE_LIMIT * 2.0**e * (1.0 + j / HIST_SUB_BINS)
        for e in range(HIST_OCTAVES)
        for j in range(HIST_SUB_BINS)
    ]
    top = HIST_FINE_LIMIT * 2.0**HIST_OCTAVES
    return np.concatenate([fine, np.array(coarse), [top, np.inf]])
