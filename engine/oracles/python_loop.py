"""The model in plain Python, one trial at a time: the "agent-free, plain Python" baseline.

:func:`simulate_python` runs design §2 steps 1–8 trial by trial with Python scalars, lists and
the :mod:`math` module only — no NumPy inside the trial loop — and returns the same
:class:`engine.core.simulate.Tallies` as :func:`engine.core.simulate.simulate`, draw for draw:

* the counter-based generator of :mod:`kernels.rng` (SplitMix64) on Python ints masked to 64 bits;
* the same per-cell constants as :mod:`kernels.prepare` and :mod:`kernels.deterrence`, computed
  with the same float operations in the same order;
* the consultation scheme of :mod:`kernels.consultation` (one uniform per member, backing in the
  first round with ``u < 1 − S(r)``), the trial logic and tallies of :mod:`kernels.trial`.

NumPy is used only to read the :class:`~engine.model.compile.CompiledScenario` arrays (converted to
Python lists up front) and to build the returned tally arrays at the end.  The benchmark compares
the Numba kernel's throughput against this loop.
"""

from __future__ import annotations

import math

import numpy as np

from engine.core.simulate import Tallies
from engine.model.compile import CompiledScenario
from kernels.layout import (
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
    HIST_FINE_BINS,
    HIST_FINE_LIMIT,
    HIST_OCTAVES,
    HIST_OVERFLOW,
    HIST_SUB_BINS,
    N_ALLIANCE_COLUMNS,
    N_CELL_COLUMNS,
    N_HIST_BINS,
    QUOTA_EPSILON,
    RULE_MAJORITY,
    RULE_UNANIMITY,
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

__all__ = ["simulate_python", "seed_base", "trial_key", "uniform", "delay_bin"]

# ---- counter-based generator (kernels/rng.py) on Python ints -------------------------------
MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
SEED_SALT = 0x5851F42D4C957F2D
TO_UNIT = 1.0 / 9007199254740992.0  # 2^-53


def mix64(z: int) -> int:
    """SplitMix64 finalizer of a 64-bit unsigned ``z``."""
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def seed_base(seed: int) -> int:
    return mix64((seed * SEED_SALT + GOLDEN) & MASK64)


def trial_key(base: int, trial: int) -> int:
    return mix64((base + (trial + 1) * GOLDEN) & MASK64)


def uniform(key: int, slot: int) -> float:
    """Uniform in [0, 1) of draw ``slot``: the top 53 bits of the hash (exact int → float)."""
    return (mix64((key + (slot + 1) * GOLDEN) & MASK64) >> 11) * TO_UNIT


# ---- scalar helpers ------------------------------------------------------------------------
def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x * 0.7071067811865476)


def fixed(x: float, scale: float) -> int:
    """Fixed point ``int(x · scale + 0.5)`` of ``x ≥ 0``."""
    return int(x * scale + 0.5)


def delay_bin(delay: float) -> int:
    """Histogram bin of a delay ≥ 0 (kernels/histogram.py)."""
    if delay < HIST_FINE_LIMIT:
        return min(int(delay * 10.0), HIST_FINE_BINS - 1)
    mant, expo = math.frexp(delay / HIST_FINE_LIMIT)
    octave = expo - 1
    if octave >= HIST_OCTAVES:
        return HIST_OVERFLOW
    return HIST_FINE_BINS + octave * HIST_SUB_BINS + int((2.0 * mant - 1.0) * HIST_SUB_BINS)


def pick(cum_weight: list[float], lo: int, hi: int, u: float) -> int:
    """First index ``i`` in ``[lo, hi)`` with ``u < cum_weight[i]`` (the last one if none)."""
    for i in range(lo, hi - 1):
        if u < cum_weight[i]:
            return i
    return hi - 1


def backers_needed(rule: int, quota: float, m: int) -> int:
    if rule == RULE_UNANIMITY:
        return m
    if rule == RULE_MAJORITY:
        return m // 2 + 1
    return max(1, int(math.ceil(quota * m - QUOTA_EPSILON)))


# ---- per-run constants (outside the trial loop) --------------------------------------------
class Member:
    """One member ``i`` of ``M_A`` in one consultation: the trial-independent parts of ``p_i``."""

    __slots__ = ("state", "units", "free_riding", "base", "theta", "static", "veto")

    def __init__(self, state, units, free_riding, base, theta, static, veto):
        self.state = state
        self.units = units
        self.free_riding = free_riding
        self.base = base  # ((commitment · bindingness) · (1 − ambiguity)) · conflict
        self.theta = theta  # θ before round 1
        self.static = static  # base · ((1 − w) + w · θ)
        self.veto = veto  # a veto holder under a veto rule


class Consultation:
    """One covering alliance of one cell (kernels/prepare.py)."""

    __slots__ = ("alliance", "members", "need", "units_members", "riding", "max_rounds",
                 "intel", "moving_threat", "vetoing", "slot0", "round_days", "mobilization")

    def __init__(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)


class Cell:
    """One aggressor × target × attack type."""

    __slots__ = ("aggressor", "target", "attack_type", "consultations")

    def __init__(self, aggressor, target, attack_type, consultations):
        self.aggressor = aggressor
        self.target = target
        self.attack_type = attack_type
        self.consultations = consultations


def deterrence_table(c: CompiledScenario) -> tuple[list[float], list[float]]:
    """P(deterred) with and without alliances per target entry (kernels/deterrence.py)."""
    capability = c.capability.tolist()
    commitment = c.commitment.tolist()
    bindingness = c.bindingness.tolist()
    membership = c.membership.tolist()
    cover_ptr = c.cover_ptr.tolist()
    cover_idx = c.cover_idx.tolist()
    target_ptr = c.target_ptr.tolist()
    target_state = c.target_state.tolist()
    resolve = c.resolve.tolist()
    p_det = [0.0] * len(target_state)
    p_det0 = [0.0] * len(target_state)
    for j, a in enumerate(c.aggressor_state.tolist()):
        log_threat = math.log(capability[a] * resolve[j])
        for ti in range(target_ptr[j], target_ptr[j + 1]):
            t = target_state[ti]
            covering = cover_idx[cover_ptr[t]:cover_ptr[t + 1]]
            response = capability[t]
            for i in range(c.n_states):
                if i == t or i == a:
                    continue
                cred = 0.0
                for al in covering:
                    if membership[i][al]:
                        cred = max(cred, commitment[i] * bindingness[al])
                if cred > 0.0:
                    response = response + cred * capability[i]
            p_det[ti] = normal_cdf((math.log(response) - log_threat) / c.misperception)
            p_det0[ti] = normal_cdf((math.log(capability[t]) - log_threat) / c.misperception)
    return p_det, p_det0


def cell_table(c: CompiledScenario) -> list[Cell]:
    """Every cell with its consultations (members in ascending state order, aggressor out)."""
    units = c.capability_units.tolist()
    commitment = c.commitment.tolist()
    free_riding = c.free_riding.tolist()
    bindingness = c.bindingness.tolist()
    member_ptr = c.member_ptr.tolist()
    member_idx = c.member_idx.tolist()
    rule = c.rule.tolist()
    quota = c.quota.tolist()
    veto = c.veto.tolist()
    shares = c.shares_alliance.tolist()
    exposure = c.exposure.tolist()
    severity = c.severity.tolist()
    ambiguity = c.ambiguity.tolist()
    cover_ptr = c.cover_ptr.tolist()
    cover_idx = c.cover_idx.tolist()
    max_rounds = c.max_rounds.tolist()
    intel_sharing = c.intel_sharing.tolist()
    round_days = c.round_days.tolist()
    integration = c.integration.tolist()
    aggressor_state = c.aggressor_state.tolist()
    w = c.threat_weight
    cells = []
    for j, t, k in zip(c.cell_aggressor.tolist(), c.cell_target.tolist(),
                       c.cell_attack_type.tolist(), strict=True):
        a = aggressor_state[j]
        consultations = []
        for al in cover_idx[cover_ptr[t]:cover_ptr[t + 1]]:
            members = []
            riding = False
            for i in member_idx[member_ptr[al]:member_ptr[al + 1]]:
                if i == a:
                    continue
                conflict = 1.0 - c.conflict_penalty if shares[i][a] else 1.0
                base = ((commitment[i] * bindingness[al]) * (1.0 - ambiguity[k])) * conflict
                theta = min(1.0, exposure[i][t] * severity[k])
                members.append(Member(i, units[i], free_riding[i], base, theta,
                                      base * ((1.0 - w) + w * theta),
                                      rule[al] == RULE_VETO and veto[i][al] != 0))
                if i != t and free_riding[i] > 0.0:
                    riding = True
            consultations.append(Consultation(
                alliance=al, members=members,
                need=backers_needed(rule[al], quota[al], len(members)),
                units_members=sum(m.units for m in members), riding=riding,
                max_rounds=max_rounds[al], intel=intel_sharing[al],
                moving_threat=intel_sharing[al] > 0.0 and w > 0.0,
                vetoing=rule[al] == RULE_VETO, slot0=SLOT_CONSULT_BASE + (al << 20),
                round_days=round_days[al],
                mobilization=c.mobilization_days * (1.0 - integration[al]),
            ))
        cells.append(Cell(j, t, k, consultations))
    return cells


# ---- step 4–5: one covering alliance consults ----------------------------------------------
def consult(cons: Consultation, t: int, key: int, w: float):
    """Returns ``(decided, rounds_used, backed, n_backers, vetoed)``; ``backed`` is a list of
    bools over ``cons.members``."""
    members = cons.members
    m = len(members)
    backed = [False] * m
    draw = [0.0] * m
    survival = [1.0] * m
    n_back = 0
    units_back = 0
    veto_left = 0
    for p, mem in enumerate(members):
        if mem.state == t:  # the target backs action from the start
            backed[p] = True
            n_back += 1
            units_back = mem.units
        else:
            draw[p] = uniform(key, cons.slot0 + mem.state)
            veto_left += mem.veto
    need = cons.need
    moving = cons.moving_threat
    if moving:
        theta = [mem.theta for mem in members]
        intel = cons.intel
    for r in range(1, cons.max_rounds + 1):
        if moving and r > 1:
            total = 0.0
            for x in theta:
                total += x
            mean = total / m
            theta = [x + intel * (mean - x) for x in theta]
        share = units_back / cons.units_members if cons.riding else 0.0
        new_back = 0
        new_units = 0
        new_veto = 0
        for p, mem in enumerate(members):
            if backed[p]:
                continue
            if moving:
                prob = (mem.base * ((1.0 - w) + w * theta[p])) * (1.0 - mem.free_riding * share)
            else:
                prob = mem.static * (1.0 - mem.free_riding * share)
            s_next = survival[p] * (1.0 - prob)
            survival[p] = s_next
            if draw[p] < 1.0 - s_next:
                backed[p] = True
                new_back += 1
                new_units += mem.units
                new_veto += mem.veto
        n_back += new_back
        units_back += new_units
        veto_left -= new_veto
        if n_back >= need and veto_left == 0:
            return True, r, backed, n_back, False
    return False, 0, backed, n_back, cons.vetoing and n_back >= need


# ---- steps 6–7: responders, free riders, delivery ------------------------------------------
def deliver(cell: Cell, results, key: int, capability, stability):
    """Force of the response and its counts over the union of the covering alliances' members.

    Responders are the members other than the target that backed in some deciding alliance;
    each delivers with probability ``stability``.  Free riders are the members of a deciding
    alliance that never backed in one.  Returns ``(force, n_resp, n_failed, n_free, n_union,
    n_union_back)``, the force before the interoperability bonus.  Members are visited in
    ascending state order (the delivery draws are keyed by state, the order only fixes the float
    sum of the force).
    """
    t = cell.target
    force = capability[t]
    if not results:
        return force, 0, 0, 0, 0, 0
    if len(results) == 1:
        # one alliance: its members are the union, ascending already
        ((decided, _, backed, _, _),) = results
        members = cell.consultations[0].members
        union = [(mem.state, b, decided, decided and b)
                 for mem, b in zip(members, backed, strict=True)]
    else:
        # state -> [backed in some alliance, in a deciding one, backed in a deciding one]
        flags = {}
        for cons, (decided, _, backed, _, _) in zip(cell.consultations, results, strict=True):
            for mem, b in zip(cons.members, backed, strict=True):
                f = flags.setdefault(mem.state, [False, False, False])
                f[0] = f[0] or b
                f[1] = f[1] or decided
                f[2] = f[2] or (decided and b)
        union = [(i, *flags[i]) for i in sorted(flags)]
    n_resp = n_failed = n_free = n_union_back = 0
    for i, backed_any, in_deciding, backed_deciding in union:
        n_union_back += backed_any
        if i == t:
            continue
        if backed_deciding:
            n_resp += 1
            # u < 1 always holds, so stability 1 needs no draw
            if stability[i] >= 1.0 or uniform(key, SLOT_DELIVERY_BASE + i) < stability[i]:
                force = force + capability[i]
            else:
                n_failed += 1
        elif in_deciding:
            n_free += 1
    return force, n_resp, n_failed, n_free, len(union), n_union_back


# ---- driver --------------------------------------------------------------------------------
def simulate_python(compiled: CompiledScenario, seed: int, start: int, stop: int) -> Tallies:
    """Simulate global trials ``[start, stop)`` one at a time; same tallies as
    :func:`engine.core.simulate.simulate` (records are not kept)."""
    c = compiled
    capability = c.capability.tolist()
    stability = c.stability.tolist()
    aggressor_state = c.aggressor_state.tolist()
    aggressor_cum = c.aggressor_cum_weight.tolist()
    target_ptr = c.target_ptr.tolist()
    target_state = c.target_state.tolist()
    target_cum = c.target_cum_weight.tolist()
    target_cell_base = c.target_cell_base.tolist()
    mix_ptr = c.mix_ptr.tolist()
    mix_type = c.mix_type.tolist()
    mix_cum = c.mix_cum_weight.tolist()
    severity = c.severity.tolist()
    attribution_days = c.attribution_days.tolist()
    integration = c.integration.tolist()
    w = c.threat_weight
    p_det, p_det0 = deterrence_table(c)
    cells = cell_table(c)
    n_aggressors = len(aggressor_state)

    ct = [[0] * N_CELL_COLUMNS for _ in range(c.n_cells)]
    ch = [[0] * N_HIST_BINS for _ in range(c.n_cells)]
    at = [[0] * N_ALLIANCE_COLUMNS for _ in range(c.n_alliances)]
    ah = [[0] * N_HIST_BINS for _ in range(c.n_alliances)]

    base_key = seed_base(seed)
    for g in range(start, stop):
        key = trial_key(base_key, g)

        # 1. the crisis (a single choice needs no draw)
        j = 0
        if n_aggressors > 1:
            j = pick(aggressor_cum, 0, n_aggressors, uniform(key, SLOT_AGGRESSOR))
        ti = target_ptr[j]
        if target_ptr[j + 1] - ti > 1:
            ti = pick(target_cum, ti, target_ptr[j + 1], uniform(key, SLOT_TARGET))
        ki = mix_ptr[j]
        if mix_ptr[j + 1] - ki > 1:
            ki = pick(mix_cum, ki, mix_ptr[j + 1], uniform(key, SLOT_ATTACK_TYPE))
        a = aggressor_state[j]
        t = target_state[ti]
        k = mix_type[ki]
        cell_no = target_cell_base[ti] + (ki - mix_ptr[j])
        cell = cells[cell_no]
        tally = ct[cell_no]

        # 2. deterrence
        u_det = uniform(key, SLOT_DETERRENCE)
        deterred = u_det < p_det[ti]
        tally[C_TRIALS] += 1
        if u_det < p_det0[ti]:
            tally[C_DETERRED_NO_ALLIANCE] += 1
        for cons in cell.consultations:
            at[cons.alliance][A_COVERED] += 1
            if deterred:
                at[cons.alliance][A_DETERRED] += 1
        if deterred:
            tally[C_DETERRED] += 1
            continue
        tally[C_ATTACKED] += 1

        # 3. attribution
        d_att = 0.0
        if attribution_days[k] > 0.0:
            d_att = -attribution_days[k] * math.log(1.0 - uniform(key, SLOT_ATTRIBUTION))

        # 4–5. consultation in every covering alliance; the earliest decision counts
        results = [consult(cons, t, key, w) for cons in cell.consultations]
        first = -1
        first_time = first_mob = 0.0
        for pos, (cons, (decided, r, _, _, _)) in enumerate(
                zip(cell.consultations, results, strict=True)):
            if decided:
                when = r * cons.round_days
                mob = cons.mobilization
                if first < 0 or when < first_time or (when == first_time and mob < first_mob):
                    first, first_time, first_mob = pos, when, mob
        invoked = first >= 0

        # 6–7. delivery, free riders, backing share
        force, n_resp, n_failed, n_free, n_union, n_union_back = deliver(
            cell, results, key, capability, stability)
        delay = d_att
        defection = False
        if invoked:
            cons = cell.consultations[first]
            al = cons.alliance
            delay = (d_att + results[first][1] * cons.round_days) + cons.mobilization
            force = force * (1.0 + integration[al] * c.interoperability_bonus)
            if n_resp > 0:
                defection = n_failed / n_resp > c.defection_threshold

        # 8. outcome
        threat = capability[a] * severity[k]
        z = (math.log(force) - math.log(threat) - delay / c.window_days) / c.outcome_noise
        repelled = uniform(key, SLOT_OUTCOME) < normal_cdf(z)

        # tallies
        tally[C_REPELLED if repelled else C_SUCCEEDED] += 1
        if results:
            tally[C_CONSULTED] += 1
            tally[C_BACKING_SHARE_SUM] += fixed(n_union_back / n_union, SHARE_SCALE)
            tally[C_ALLIES_SUM] += n_union - 1
            if invoked:
                tally[C_HONORED_SUM] += n_resp - n_failed
            if not invoked:
                if any(res[4] for res in results):
                    tally[C_VETO] += 1
                else:
                    tally[C_DEADLOCK] += 1
        if invoked:
            delay_fx = fixed(delay, DELAY_SCALE)
            bin_no = delay_bin(delay)
            tally[C_INVOKED] += 1
            tally[C_ROUNDS_SUM] += results[first][1]
            tally[C_DELAY_SUM] += delay_fx
            ch[cell_no][bin_no] += 1
            tally[C_FREE_RIDERS_SUM] += n_free
            if n_resp > 0:
                tally[C_WITH_ALLIED_BACKERS] += 1
                tally[C_DELIVERED_SHARE_SUM] += fixed((n_resp - n_failed) / n_resp, SHARE_SCALE)
            if defection:
                tally[C_DEFECTION] += 1
            if repelled:
                tally[C_REPELLED_INVOKED] += 1
        for pos, (cons, (decided, r, _, n_back, vetoed)) in enumerate(
                zip(cell.consultations, results, strict=True)):
            row = at[cons.alliance]
            m = len(cons.members)
            row[A_CONSULTED] += 1
            row[A_BACKING_SHARE_SUM] += fixed(n_back / m, SHARE_SCALE)
            if repelled:
                row[A_REPELLED] += 1
            if decided:
                row[A_DECIDED] += 1
                row[A_ROUNDS_SUM] += r
                row[A_FREE_RIDERS_SUM] += m - n_back
            elif vetoed:
                row[A_VETO] += 1
            else:
                row[A_DEADLOCK] += 1
            if pos == first:
                row[A_FIRST] += 1
                row[A_DELAY_SUM] += delay_fx
                ah[cons.alliance][bin_no] += 1

    return Tallies(
        np.array(ct, dtype=np.int64).reshape(c.n_cells, N_CELL_COLUMNS),
        np.array(ch, dtype=np.int64).reshape(c.n_cells, N_HIST_BINS),
        np.array(at, dtype=np.int64).reshape(c.n_alliances, N_ALLIANCE_COLUMNS),
        np.array(ah, dtype=np.int64).reshape(c.n_alliances, N_HIST_BINS),
    )
