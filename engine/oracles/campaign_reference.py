"""Campaigns (design §7) vectorized with NumPy over trajectories: the slow, readable reference
that agrees with :func:`engine.oracles.campaign_loop.simulate_campaign_python` (and hence the
campaign kernel) draw for draw, on every tally array.

Every rule and every float operation is the one :mod:`engine.oracles.campaign_loop` specifies
in its module docstring; this module only changes the loop nesting.  The state of all
trajectories ``[start, stop)`` is held as arrays with a row per trajectory: reputation
``(n, states)``, resolve multipliers ``(n, aggressor entries)``, threat ``(n, states)``, active
roster slots ``(n, slots)``, alliances not dissolved ``(n, alliances)``, "a membership changed"
and the count of successful aggressions ``(n,)``.  Period by period:

1. every trajectory's period key at once (:func:`period_key` on ``uint64`` arrays), the crisis
   draw (``SLOT_CRISIS``) and the quiet periods' threat decay as array operations;
2. the crises of all trajectories at once (:func:`engine.oracles.reference._draw_crises`), then
   the trajectories grouped by cell (aggressor × target × attack type): within a group ``a``,
   ``t`` and ``k`` are fixed and every step runs as masked array operations over the group's
   trajectories, whatever their state — coverage and each consultation's members from the
   active-roster masks, the trust factor and ``θ_i`` from the reputation and threat rows;
3. deterrence: the tables' values where the trajectory is pristine, otherwise step 4 of the
   contract over the non-pristine rows;
4. steps 3–8 of the attacked rows: the consultation of every covering alliance (one uniform
   per member, rounds looped in Python, trajectories that decided frozen by a mask), the
   earliest decision, delivery over the union of the consulted members in ascending state
   order, the outcome; their tallies as array reductions;
5. the updates (reputation, aggressor learning, threat, exit, accession) as masked array
   operations, looping in Python over alliances and roster slots in the contract's order;
6. the end-of-period tallies as reductions over the rows.

Float exactness.  Each float is computed per trajectory with the oracle's operations in the
oracle's order: sums the oracle takes sequentially (reputation, threat and resolve means,
``θ`` means, the trust sums, forces, the deterrence response) are sequential masked adds
column by column (``np.where(mask, total + x, total)``), never ``np.sum`` (pairwise); the oracle's
``sum()`` is plain left-to-right addition on this Python (3.11).  Integer tallies are summed
with ``np.sum`` (exact).  The transcendental functions (``log``, ``exp``, ``erfc``) go through
Python's :mod:`math` (the C library, what the kernel calls) one element at a time, as in
:mod:`engine.oracles.reference`.  Nothing needs a per-trajectory fallback.

``deterrence`` defaults to the NumPy reference's :func:`~engine.oracles.reference.cell_deterrence`
(which agrees with the plain-Python one draw for draw).
"""

from __future__ import annotations

import math

import numpy as np

from engine.core.simulate import CampaignTallies
from engine.model.compile import CompiledScenario
from kernels import layout
from kernels.layout import consult_slot, delivery_slot

from .campaign_loop import PERIOD_SALT
from .python_loop import backers_needed, log_or_minus_inf
from .reference import (
    _GOLDEN,
    _ONE,
    _draw_crises,
    _fixed,
    _hist,
    _log,
    _mix64,
    _phi,
    cell_deterrence,
    delay_bin,
    seed_base,
    trial_key,
    uniform,
)

__all__ = ["period_key", "simulate_campaign_reference"]

_PERIOD_SALT = np.uint64(PERIOD_SALT)


def period_key(keys: np.ndarray, period: int) -> np.ndarray:
    """Keys (uint64) of period ``period`` ≥ 1 of the trajectories whose trial keys are
    ``keys``: ``mix64((key ^ PERIOD_SALT) + (period + 1) · GOLDEN)`` (:mod:`kernels.rng`)."""
    with np.errstate(over="ignore"):
        return _mix64((keys ^ _PERIOD_SALT) + (np.uint64(period) + _ONE) * _GOLDEN)


def _log_or_minus_inf(x: np.ndarray) -> np.ndarray:
    return np.fromiter(map(log_or_minus_inf, x.tolist()), np.float64, count=x.size)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, default: float) -> np.ndarray:
    """``numerator / denominator`` where the denominator is positive, else ``default``."""
    positive = denominator > 0
    return np.where(positive, numerator / np.where(positive, denominator, 1), default)


class _State:
    """The state of every trajectory of the range, a row per trajectory, and the counters of
    the current period."""

    def __init__(self, c: CompiledScenario, n: int):
        cp = c.campaign
        self.rep = np.ones((n, c.n_states))
        self.mult = np.ones((n, len(c.aggressor_state)))
        self.threat = np.zeros((n, c.n_states))
        self.active = np.tile(cp.roster_initial.astype(bool), (n, 1))
        self.alive = np.ones((n, c.n_alliances), bool)
        self.moved = np.zeros(n, bool)
        self.successes = np.zeros(n, np.int64)
        self.new_period()

    def new_period(self) -> None:
        n, n_alliances = self.alive.shape
        self.exits_of = np.zeros((n, n_alliances), np.int64)
        self.joins_of = np.zeros((n, n_alliances), np.int64)
        self.dissolved = np.zeros(n, np.int64)


class _Consultation:
    """One alliance's consultation in one cell over the group's rows: its members (the active
    roster slots but the aggressor's) and, once consulted, its outcome."""

    def __init__(self, alliance: int, slots: list[int], states: list[int], covers: np.ndarray,
                 member: np.ndarray):
        self.alliance = alliance
        self.slots = slots  # roster slots other than the aggressor's, ascending
        self.states = states
        self.covers = covers  # bool (n,): the alliance covers the row's crisis
        self.member = member  # bool (n, len(slots)): an active member, in covering rows

    def take(self, rows: np.ndarray) -> _Consultation:
        return _Consultation(self.alliance, self.slots, self.states, self.covers[rows],
                             self.member[rows])


# ---- coverage and the consultations' members ------------------------------------------------
def _consultations(c: CompiledScenario, st: _State, rows: np.ndarray, a: int,
                   t: int) -> list[_Consultation]:
    """The alliances covering some row's crisis (contract, 3), ascending, with their members."""
    cp = c.campaign
    out = []
    for al in range(c.n_alliances):
        kind = int(c.obligation[al])
        if a == t or kind not in (layout.OBLIGATION_DEFENSE, layout.OBLIGATION_COLLECTIVE_SECURITY):
            continue
        slots = list(range(cp.roster_ptr[al], cp.roster_ptr[al + 1]))
        active = st.active[np.ix_(rows, slots)]
        target_ok = np.zeros(len(rows), bool)
        aggressor_in = np.zeros(len(rows), bool)
        others = np.zeros(len(rows), np.int64)
        for column, slot in enumerate(slots):
            i = int(cp.roster_idx[slot])
            if i == t:
                if kind == layout.OBLIGATION_COLLECTIVE_SECURITY or cp.roster_protected[slot]:
                    target_ok = active[:, column]
            elif i == a:
                aggressor_in = active[:, column]
            else:
                others += active[:, column]
        covers = st.alive[rows, al] & target_ok & (others >= 1)
        if kind == layout.OBLIGATION_DEFENSE:
            covers &= ~aggressor_in
        if not covers.any():
            continue
        keep = [column for column, slot in enumerate(slots) if cp.roster_idx[slot] != a]
        member = active[:, keep] & covers[:, None]
        out.append(_Consultation(al, [slots[x] for x in keep],
                                 [int(cp.roster_idx[slots[x]]) for x in keep], covers, member))
    return out


def _others(c: CompiledScenario, active: np.ndarray, rep: np.ndarray, al: int, t: int,
            a: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum (ascending, sequential) and count of the reputations of ``al``'s active members
    other than the target and the aggressor, per row (``active``, ``rep``: the rows' state)."""
    cp = c.campaign
    total = np.zeros(len(rep))
    count = np.zeros(len(rep), np.int64)
    for slot in range(cp.roster_ptr[al], cp.roster_ptr[al + 1]):
        i = int(cp.roster_idx[slot])
        if i != t and i != a:
            on = active[:, slot]
            total = np.where(on, total + rep[:, i], total)
            count += on
    return total, count


def _mean_without(total: np.ndarray, count: np.ndarray, rep_i: np.ndarray,
                  counted: bool) -> np.ndarray:
    """``r̄_{A,i}`` per row (campaign_loop's ``_mean_without``)."""
    if counted:
        total, count = total - rep_i, count - 1
    return _ratio(total, count, 1.0)


# ---- step 4 (deterrence) away from the pristine state ---------------------------------------
def _deterrence(c: CompiledScenario, cons: list[_Consultation], rep: np.ndarray,
                mult: np.ndarray, expected: float, j: int, a: int, t: int,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """P(deterred) and its no-alliance baseline per row (contract, 4)."""
    n = len(rep)
    value: dict[int, np.ndarray] = {}  # ally → max commitment · bindingness over covering A
    is_ally: dict[int, np.ndarray] = {}
    for con in cons:
        binding = c.bindingness[con.alliance]
        for column, i in enumerate(con.states):
            if i == t:
                continue
            on = con.member[:, column]
            old = value.get(i, np.zeros(n))
            value[i] = np.where(on, np.maximum(old, c.commitment[i] * binding), old)
            is_ally[i] = is_ally.get(i, np.zeros(n, bool)) | on
    cap = c.capability
    cap_t = float(cap[t])
    resolve = c.resolve[j] * mult[:, j]
    if c.deterrence == layout.DETERRENCE_CAPABILITY:
        log_threat = _log(cap[a] * resolve)
        response = np.full(n, cap_t)
        for i in sorted(value):
            cred = value[i] * rep[:, i]
            response = np.where(is_ally[i] & (cred > 0.0), response + cred * cap[i], response)
        alone = np.full(n, cap_t)
    else:
        log_threat = _log((cap[a] * resolve) * c.severity[k])
        att = 1.0 / (1.0 + c.attribution_days[k] / c.window_days)
        alone = np.full(n, cap_t * att)
        weight = np.zeros(n)
        total = np.zeros(n)
        for i in sorted(value):
            weight = np.where(is_ally[i], weight + cap[i], weight)
            total = np.where(is_ally[i], total + cap[i] * rep[:, i], total)
        r_bar = _ratio(total, weight, 1.0)
        response = cap_t + (expected - cap_t) * r_bar
    sigma = c.misperception
    return (_phi((_log_or_minus_inf(response) - log_threat) / sigma),
            _phi((_log_or_minus_inf(alone) - log_threat) / sigma))


# ---- step 5: one alliance consults, over the attacked rows ----------------------------------
def _consult(c: CompiledScenario, con: _Consultation, keys: np.ndarray, rep: np.ndarray,
             threat: np.ndarray, a: int, t: int, k: int, active: np.ndarray) -> None:
    """python_loop's ``consult`` with the campaign's member parameters (contract, 5), every
    row at once; sets ``backed`` (m, n), ``decided``, ``rounds``, ``vetoed``, ``n_back`` and
    ``size`` (the members, m per row) on ``con``."""
    al = con.alliance
    n = len(keys)
    w = c.threat_weight
    omega = c.campaign.trust_weight
    member = con.member
    size = member.sum(axis=1)
    if omega > 0.0:
        total, count = _others(c, active, rep, al, t, a)
    base, theta, draw, units, riding_of, veto_of = [], [], [], [], [], []
    vetoing = int(c.rule[al]) == layout.RULE_VETO
    for i in con.states:
        conflict = 1.0 - c.conflict_penalty if c.shares_alliance[i, a] else 1.0
        trust = 1.0
        if omega > 0.0:
            trust = 1.0 - omega + omega * _mean_without(total, count, rep[:, i], i != t)
        base.append((((c.commitment[i] * c.bindingness[al]) * (1.0 - c.ambiguity[k]))
                     * conflict) * trust * np.ones(n))
        theta.append(np.minimum(1.0, c.exposure[i, t] * c.severity[k] + threat[:, i]))
        draw.append(uniform(keys, consult_slot(al, i)))
        units.append(int(c.capability_units[i]))
        riding_of.append(i != t and c.free_riding[i] > 0.0)
        veto_of.append(vetoing and c.veto[i, al] != 0)
    riding = np.zeros(n, bool)
    units_members = np.zeros(n, np.int64)
    for column in range(len(con.states)):
        riding |= member[:, column] & riding_of[column]
        units_members += member[:, column] * units[column]
    need = np.zeros(n, np.int64)
    for m in np.unique(size[con.covers]):
        need[size == m] = backers_needed(int(c.rule[al]), float(c.quota[al]), int(m))

    m = len(con.states)
    backed = np.zeros((m, n), bool)
    survival = np.ones((m, n))
    n_back = np.zeros(n, np.int64)
    units_back = np.zeros(n, np.int64)
    veto_left = np.zeros(n, np.int64)
    for column, i in enumerate(con.states):
        if i == t:  # the target backs action from the start
            backed[column] = member[:, column]
            n_back += member[:, column]
            units_back = np.where(member[:, column], units[column], units_back)
        else:
            veto_left += member[:, column] & veto_of[column]
    moving = c.intel_sharing[al] > 0.0 and w > 0.0
    intel = float(c.intel_sharing[al])
    free_riding = [float(c.free_riding[i]) for i in con.states]
    static = [base[p] * ((1.0 - w) + w * theta[p]) for p in range(m)]
    decided = np.zeros(n, bool)
    rounds = np.zeros(n, np.int64)
    undecided = con.covers.copy()
    for r in range(1, int(c.max_rounds[al]) + 1):
        if not undecided.any():
            break
        if moving and r > 1:
            total_theta = np.zeros(n)
            for p in range(m):
                total_theta = np.where(member[:, p], total_theta + theta[p], total_theta)
            mean = _ratio(total_theta, size, 0.0)
            theta = [x + intel * (mean - x) for x in theta]
        share = np.where(riding, _ratio(units_back, units_members, 0.0), 0.0)
        new_back = np.zeros(n, np.int64)
        new_units = np.zeros(n, np.int64)
        new_veto = np.zeros(n, np.int64)
        for p in range(m):
            waiting = undecided & member[:, p] & ~backed[p]
            if moving:
                prob = (base[p] * ((1.0 - w) + w * theta[p])) * (1.0 - free_riding[p] * share)
            else:
                prob = static[p] * (1.0 - free_riding[p] * share)
            s_next = survival[p] * (1.0 - prob)
            survival[p] = np.where(waiting, s_next, survival[p])
            newly = waiting & (draw[p] < 1.0 - s_next)
            backed[p] |= newly
            new_back += newly
            new_units += newly * units[p]
            new_veto += newly & veto_of[p]
        n_back += new_back
        units_back += new_units
        veto_left -= new_veto
        now = undecided & (n_back >= need) & (veto_left == 0)
        decided |= now
        rounds[now] = r
        undecided &= ~now
    con.backed, con.decided, con.rounds, con.n_back, con.size = backed, decided, rounds, \
        n_back, size
    con.vetoed = (con.covers & ~decided & (n_back >= need) if vetoing
                  else np.zeros(n, bool))


# ---- steps 3–8 of the attacked rows of one cell, and their tallies --------------------------
class _Response:
    """Steps 3–8 over the attacked rows: what the tallies and the updates read."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def _respond(c: CompiledScenario, cons: list[_Consultation], keys: np.ndarray, rep, threat,
             active, a: int, t: int, k: int) -> _Response:
    n = len(keys)
    d_att = np.zeros(n)
    if c.attribution_days[k] > 0.0:
        d_att = -c.attribution_days[k] * _log(1.0 - uniform(keys, layout.SLOT_ATTRIBUTION))
    for con in cons:
        _consult(c, con, keys, rep, threat, a, t, k, active)
    first = np.full(n, -1, np.int64)  # the deciding alliance (not its position)
    first_time = np.zeros(n)
    first_mob = np.zeros(n)
    rounds_first = np.zeros(n, np.int64)
    for con in cons:
        al = con.alliance
        when = con.rounds * c.round_days[al]
        mob = c.mobilization_days * (1.0 - c.integration[al])
        better = con.decided & ((first < 0) | (when < first_time)
                                | ((when == first_time) & (mob < first_mob)))
        first = np.where(better, al, first)
        first_time = np.where(better, when, first_time)
        first_mob = np.where(better, mob, first_mob)
        rounds_first = np.where(better, con.rounds, rounds_first)

    # delivery over the union of the consulted members, ascending state order
    union = sorted({i for con in cons for i in con.states})
    force = np.full(n, float(c.capability[t]))
    n_resp = np.zeros(n, np.int64)
    n_failed = np.zeros(n, np.int64)
    n_free = np.zeros(n, np.int64)
    n_union = np.zeros(n, np.int64)
    n_union_back = np.zeros(n, np.int64)
    delivered: dict[int, np.ndarray] = {}
    for i in union:
        in_union = np.zeros(n, bool)
        backed_any = np.zeros(n, bool)
        in_deciding = np.zeros(n, bool)
        backed_deciding = np.zeros(n, bool)
        for con in cons:
            if i in con.states:
                p = con.states.index(i)
                on = con.member[:, p]
                in_union |= on
                backed_any |= con.backed[p]
                in_deciding |= on & con.decided
                backed_deciding |= con.backed[p] & con.decided
        n_union += in_union
        n_union_back += backed_any
        if i == t:
            continue
        delivers = backed_deciding & (uniform(keys, delivery_slot(i)) < c.stability[i])
        delivered[i] = delivers
        force = np.where(delivers, force + c.capability[i], force)
        n_resp += backed_deciding
        n_failed += backed_deciding & ~delivers
        n_free += ~backed_deciding & in_deciding
    invoked = first >= 0
    round_days = np.zeros(n)
    mobilization = np.zeros(n)
    bonus = np.zeros(n)
    for con in cons:
        here = first == con.alliance
        al = con.alliance
        round_days[here] = c.round_days[al]
        mobilization[here] = c.mobilization_days * (1.0 - c.integration[al])
        bonus[here] = c.integration[al] * c.interoperability_bonus
    delay = np.where(invoked, (d_att + rounds_first * round_days) + mobilization, d_att)
    force = np.where(invoked, force * (1.0 + bonus), force)

    # step 8: the outcome
    defection = invoked & (n_resp > 0) & (_ratio(n_failed, n_resp, 0.0) > c.defection_threshold)
    z = ((_log(force) - math.log(c.capability[a] * float(c.severity[k])))
         - delay / c.window_days) / c.outcome_noise
    repelled = uniform(keys, layout.SLOT_OUTCOME) < _phi(z)
    return _Response(first=first, invoked=invoked, rounds_first=rounds_first, delay=delay,
                     delivered=delivered, n_resp=n_resp, n_failed=n_failed, n_free=n_free,
                     n_union=n_union, n_union_back=n_union_back, defection=defection,
                     repelled=repelled)


def _tally_attacked(c: CompiledScenario, out: CampaignTallies, cons: list[_Consultation],
                    resp: _Response, t: int, rows: list) -> None:
    """python_loop's ``tally_attacked`` as reductions over the attacked rows."""
    cp = c.campaign
    n = len(resp.first)
    none = np.zeros(n, bool)
    honored = np.zeros(n, np.int64)
    pledges = np.zeros(n, np.int64)
    for con in cons:
        pledges += np.where(con.covers, con.size - 1, 0)
        for p, (slot, i) in enumerate(zip(con.slots, con.states, strict=True)):
            if i == t:
                continue
            on = con.member[:, p]
            backed = con.backed[p]
            delivered = resp.delivered.get(i, none) & on
            row = out.members[cp.roster_row[slot]]
            row[layout.M_PLEDGED] += on.sum()
            row[layout.M_BACKED] += backed.sum()
            row[layout.M_FREE_RODE] += (on & ~backed & con.decided).sum()
            row[layout.M_DELIVERED] += delivered.sum()
            row[layout.M_HONORED] += (backed & delivered).sum()
            honored += backed & delivered

    invoked, repelled = resp.invoked, resp.repelled
    consulted = resp.n_union > 0
    any_veto = np.zeros(n, bool)
    for con in cons:
        any_veto |= con.vetoed
    delay_fx = _fixed(resp.delay, layout.DELAY_SCALE)
    bins = delay_bin(resp.delay)
    with_backers = invoked & (resp.n_resp > 0)
    backing_share_fx = _fixed(_ratio(resp.n_union_back, resp.n_union, 0.0), layout.SHARE_SCALE)
    delivered_share_fx = _fixed(_ratio(resp.n_resp - resp.n_failed, resp.n_resp, 0.0),
                                layout.SHARE_SCALE)
    for tally, hist in rows:
        tally[layout.C_REPELLED] += repelled.sum()
        tally[layout.C_SUCCEEDED] += (~repelled).sum()
        tally[layout.C_CONSULTED] += consulted.sum()
        tally[layout.C_BACKING_SHARE_SUM] += backing_share_fx[consulted].sum()
        tally[layout.C_ALLIES_SUM] += pledges[consulted].sum()
        tally[layout.C_HONORED_SUM] += honored[consulted].sum()
        tally[layout.C_VETO] += (consulted & ~invoked & any_veto).sum()
        tally[layout.C_DEADLOCK] += (consulted & ~invoked & ~any_veto).sum()
        tally[layout.C_INVOKED] += invoked.sum()
        tally[layout.C_ROUNDS_SUM] += resp.rounds_first[invoked].sum()
        tally[layout.C_DELAY_SUM] += delay_fx[invoked].sum()
        hist += _hist(bins[invoked])
        tally[layout.C_FREE_RIDERS_SUM] += resp.n_free[invoked].sum()
        tally[layout.C_WITH_ALLIED_BACKERS] += with_backers.sum()
        tally[layout.C_DELIVERED_SHARE_SUM] += delivered_share_fx[with_backers].sum()
        tally[layout.C_DEFECTION] += resp.defection.sum()
        tally[layout.C_REPELLED_INVOKED] += (invoked & repelled).sum()

    for con in cons:
        al = con.alliance
        row = out.alliances[al]
        on, decided = con.covers, con.decided
        row[layout.A_CONSULTED] += on.sum()
        row[layout.A_BACKING_SHARE_SUM] += _fixed(_ratio(con.n_back, con.size, 0.0),
                                           layout.SHARE_SCALE)[on].sum()
        row[layout.A_REPELLED] += (on & repelled).sum()
        row[layout.A_DECIDED] += decided.sum()
        row[layout.A_ROUNDS_SUM] += con.rounds[decided].sum()
        row[layout.A_FREE_RIDERS_SUM] += (con.size - con.n_back)[decided].sum()
        row[layout.A_VETO] += con.vetoed.sum()
        row[layout.A_DEADLOCK] += (on & ~decided & ~con.vetoed).sum()
        is_first = resp.first == al
        row[layout.A_FIRST] += is_first.sum()
        row[layout.A_DELAY_SUM] += delay_fx[is_first].sum()
        out.alliance_hist[al] += _hist(bins[is_first])


# ---- one cell's crises of one period ---------------------------------------------------------
def _cell_crises(c: CompiledScenario, st: _State, out: CampaignTallies, s: int,
                 rows: np.ndarray, keys: np.ndarray, number: int, j: int, t: int, k: int,
                 tables) -> None:
    """The crises of cell ``number`` in period ``s`` of trajectories ``rows`` (keys ``keys``):
    deterrence, response, tallies and the updates of the contract's step 6."""
    cp = c.campaign
    a = int(c.aggressor_state[j])
    p_det, p_det0, expected = tables
    cons = _consultations(c, st, rows, a, t)
    rep, mult = st.rep[rows], st.mult[rows]

    # deterrence: the tables where pristine, else the contract's step 4
    pristine = ~st.moved[rows] & (rep == 1.0).all(axis=1) & (mult == 1.0).all(axis=1)
    p = np.full(len(rows), p_det[number])
    p0 = np.full(len(rows), p_det0[number])
    if not pristine.all():
        off = np.flatnonzero(~pristine)
        p[off], p0[off] = _deterrence(c, [con.take(off) for con in cons], rep[off], mult[off],
                                      expected[number], j, a, t, k)
    u_det = uniform(keys, layout.SLOT_DETERRENCE)
    deterred = u_det < p
    tallies = ((out.cells[number], out.cell_hist[number]),
               (out.period_cells[s], out.period_hist[s]))
    for tally, _ in tallies:
        tally[layout.C_TRIALS] += len(rows)
        tally[layout.C_DETERRED_NO_ALLIANCE] += (u_det < p0).sum()
        tally[layout.C_DETERRED] += deterred.sum()
        tally[layout.C_ATTACKED] += (~deterred).sum()
    for con in cons:
        out.alliances[con.alliance, layout.A_COVERED] += con.covers.sum()
        out.alliances[con.alliance, layout.A_DETERRED] += (con.covers & deterred).sum()

    attacked = np.flatnonzero(~deterred)
    if len(attacked):
        hit = rows[attacked]
        cons_hit = [con.take(attacked) for con in cons]
        resp = _respond(c, cons_hit, keys[attacked], st.rep[hit], st.threat[hit],
                        st.active[hit], a, t, k)
        _tally_attacked(c, out, cons_hit, resp, t, list(tallies))
        # reputation: covering alliances ascending, their active members but the target
        lam = cp.reputation_learning
        rep_hit = st.rep[hit]
        none = np.zeros(len(hit), bool)
        for con in cons_hit:
            binding = c.bindingness[con.alliance]
            for p, i in enumerate(con.states):
                if i == t:
                    continue
                on = con.member[:, p]
                honored = con.backed[p] & resp.delivered.get(i, none)
                r = rep_hit[:, i]
                rep_hit[:, i] = np.where(on & honored, r + lam * (1.0 - r),
                                         np.where(on, r * (1.0 - lam * binding), r))
        st.rep[hit] = rep_hit
        # aggressor learning
        rho = cp.resolve_learning
        m_j = st.mult[hit, j]
        st.mult[hit, j] = np.where(resp.repelled, m_j * math.exp(-rho), m_j * math.exp(rho))
        st.successes[hit] += ~resp.repelled

    # threat, for every state
    st.threat[rows] = np.minimum(
        1.0, (1.0 - cp.threat_decay) * st.threat[rows] + cp.threat_shock * c.exposure[:, t])
    if cp.exit_threshold > 0.0:
        _exits(c, st, rows, a, t)
    if math.isfinite(cp.join_threshold):
        _accessions(c, st, rows)


def _exits(c: CompiledScenario, st: _State, rows: np.ndarray, a: int, t: int) -> None:
    cp = c.campaign
    active, rep = st.active[rows], st.rep[rows]
    alive = st.alive[rows]
    for al in range(c.n_alliances):
        slots = list(range(cp.roster_ptr[al], cp.roster_ptr[al + 1]))
        total, count = _others(c, active, rep, al, t, a)
        left = np.zeros(len(rows), np.int64)
        for slot in slots:
            i = int(cp.roster_idx[slot])
            if i == t:
                continue
            leaves = (alive[:, al] & active[:, slot]
                      & (_mean_without(total, count, rep[:, i], i != a) < cp.exit_threshold))
            active[:, slot] &= ~leaves
            left += leaves
            if i != a:
                total = np.where(leaves, total - rep[:, i], total)
                count -= leaves
        st.exits_of[rows, al] += left
        has_left = left > 0
        st.moved[rows] |= has_left
        dissolve = has_left & (active[:, slots].sum(axis=1) < 2)
        alive[dissolve, al] = False
        active[np.ix_(np.flatnonzero(dissolve), slots)] = False
        st.dissolved[rows] += dissolve
    st.active[rows] = active
    st.alive[rows] = alive


def _accessions(c: CompiledScenario, st: _State, rows: np.ndarray) -> None:
    cp = c.campaign
    active = st.active[rows]
    threat = st.threat[rows]
    for al in range(c.n_alliances):
        for slot in range(cp.roster_ptr[al], cp.roster_ptr[al + 1]):
            if cp.roster_initial[slot]:
                continue
            joins = (st.alive[rows, al] & ~active[:, slot]
                     & (threat[:, cp.roster_idx[slot]] >= cp.join_threshold))
            active[:, slot] |= joins
            st.joins_of[rows, al] += joins
            st.moved[rows] |= joins
    st.active[rows] = active


# ---- the end of a period ---------------------------------------------------------------------
def _sequential_sum(columns: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Row sums of ``columns`` (n, m) added left to right (Python's ``sum`` on 3.11), over the
    columns where ``mask`` (n, m) holds when given."""
    total = np.zeros(len(columns))
    for x in range(columns.shape[1]):
        total = (total + columns[:, x] if mask is None
                 else np.where(mask[:, x], total + columns[:, x], total))
    return total


def _end_of_period(c: CompiledScenario, st: _State, out: CampaignTallies, s: int,
                   roster_states: np.ndarray) -> None:
    cp = c.campaign
    row = out.periods[s]
    if len(roster_states):
        reputation = _sequential_sum(st.rep[:, roster_states]) / len(roster_states)
    else:
        reputation = np.ones(len(st.rep))
    row[layout.P_REPUTATION_SUM] += _fixed(reputation, layout.SHARE_SCALE).sum()
    resolve = np.minimum(layout.RESOLVE_CAP, _sequential_sum(st.mult) / st.mult.shape[1])
    row[layout.P_RESOLVE_SUM] += _fixed(resolve, layout.RESOLVE_SCALE).sum()
    threat = _sequential_sum(st.threat) / c.n_states
    row[layout.P_THREAT_SUM] += _fixed(threat, layout.SHARE_SCALE).sum()
    row[layout.P_EXITS] += st.exits_of.sum()
    row[layout.P_JOINS] += st.joins_of.sum()
    row[layout.P_DISSOLVED] += st.dissolved.sum()
    for al in range(c.n_alliances):
        slots = np.arange(cp.roster_ptr[al], cp.roster_ptr[al + 1])
        ap = out.alliance_periods[al, s]
        on = st.active[:, slots]
        members = on.sum(axis=1)
        ap[layout.AP_ACTIVE] += members.sum()
        total = _sequential_sum(st.rep[:, cp.roster_idx[slots]], on)
        mean = _fixed(_ratio(total, members, 0.0), layout.SHARE_SCALE)
        ap[layout.AP_REPUTATION_SUM] += mean[members > 0].sum()
        ap[layout.AP_EXITS] += st.exits_of[:, al].sum()
        ap[layout.AP_JOINS] += st.joins_of[:, al].sum()
        ap[layout.AP_ALIVE] += st.alive[:, al].sum()


# ---- driver --------------------------------------------------------------------------------
def simulate_campaign_reference(compiled: CompiledScenario, seed: int, start: int, stop: int, *,
                                deterrence=None) -> CampaignTallies:
    """Trajectories ``[start, stop)`` of a campaign scenario, vectorized over trajectories; the
    same tallies as :func:`~engine.oracles.campaign_loop.simulate_campaign_python`.
    ``deterrence``: step 2 of every cell at the start (the reference's
    :func:`~engine.oracles.reference.cell_deterrence` unless given; the engine's
    ``DeterrenceTables`` also serve)."""
    c = compiled
    cp = c.campaign
    if cp is None:
        raise ValueError("not a campaign scenario (no [campaign] table)")
    tables = cell_deterrence(c, seed) if deterrence is None else deterrence
    expected = getattr(tables, "expected_response", getattr(tables, "expected", None))
    expected = np.full(c.n_cells, np.nan) if expected is None else np.asarray(expected)
    step2 = (np.asarray(tables.p_deterred), np.asarray(tables.p_deterred_no_alliance), expected)
    out = CampaignTallies.zeros(c)
    n = max(0, stop - start)
    st = _State(c, n)
    roster_states = np.unique(cp.roster_idx)
    trial = trial_key(seed_base(seed), np.arange(start, start + n, dtype=np.int64))
    for s in range(cp.steps):
        keys = trial if s == 0 else period_key(trial, s)
        st.new_period()
        if cp.crisis_rate < 1.0:
            crisis = uniform(keys, layout.SLOT_CRISIS) < cp.crisis_rate
            st.threat[~crisis] = (1.0 - cp.threat_decay) * st.threat[~crisis]
        else:
            crisis = np.ones(n, bool)
        rows = np.flatnonzero(crisis)
        if len(rows):
            j, ti, ki = _draw_crises(c, keys[rows])
            cell = c.target_cell_base[ti] + (ki - c.mix_ptr[j])
            for number in np.unique(cell):
                here = np.flatnonzero(cell == number)
                first = here[0]
                _cell_crises(c, st, out, s, rows[here], keys[rows[here]], int(number),
                             int(j[first]), int(c.target_state[ti[first]]),
                             int(c.mix_type[ki[first]]), step2)
        _end_of_period(c, st, out, s, roster_states)
    out.successes += np.bincount(st.successes, minlength=cp.steps + 1)
    return out
