"""Campaigns (design §7) in plain Python, one trajectory at a time: the executable contract that
the campaign kernel must match draw for draw.

A campaign trial is a trajectory of ``steps`` periods.  Its state: reputation ``r_i`` of every
state (1 at the start), the resolve multiplier ``m_j`` of every aggressor entry (1), threat
``h_i`` of every state (0), and which roster slots of each alliance are active (its members at
the start; candidates accede) and whether it is dissolved.

Period ``s`` of trial ``g`` draws with ``key_s = trial_key(base, g)`` for ``s = 0`` (exactly a v1
trial's key) and ``period_key(trial_key(base, g), s)`` after (:mod:`kernels.rng`):

1. **Crisis or quiet.**  With ``crisis_rate < 1`` there is a crisis iff
   ``uniform(key_s, SLOT_CRISIS) < crisis_rate`` (no draw at 1).  A quiet period only decays
   threat, ``h_i ← (1 − δ)·h_i``.
2. **The crisis**: aggressor entry ``j``, target entry and attack type as a v1 trial draws
   them (same slots).
3. **Coverage**, now of the trajectory's alliances: an alliance covers the crisis when it is not
   dissolved and ``collective_security`` with the target active, or ``defense`` with the target
   in an active *protected* slot and the aggressor not active in it; and it has an active member
   other than the target and the aggressor.  At the start this is exactly the compiler's
   coverage (design §8).
4. **Deterrence.**  While the trajectory is *pristine* (every ``r_i`` and ``m_j`` equal to 1, no
   membership change yet) P(deterred) and its no-alliance baseline are the v1 tables'.
   Otherwise, ``capability`` mode: ``R = cap_t + Σ_i cred_i·cap_i`` over the allies in
   ascending state order, ``cred_i = max_A(commitment_i · bindingness_A) · r_i`` over the
   covering alliances ``A`` in which ``i`` is active, threat ``cap_a · (resolve_j · m_j)``;
   ``expected_response`` mode: ``E = cap_t + (E_cell − cap_t) · r̄`` with ``r̄`` the
   capability-weighted mean reputation of those allies (``Σ cap_i·r_i / Σ cap_i``, ascending;
   1 with none) and threat ``(cap_a · (resolve_j · m_j)) · severity_k``;
   ``P = Φ((ln R − ln threat)/σ)``, the baseline with ``R = cap_t`` (times the attribution factor
   in ``expected_response`` mode).  One uniform ``SLOT_DETERRENCE`` decides both.
5. **Response** (attacked): v1 steps 3–8 over the covering alliances' active members (the
   aggressor out), each member's ``base = (((commitment · bindingness) · (1 − ambiguity)) ·
   conflict) · (1 − ω + ω·r̄_{A,i})`` (the factor is 1 when ``ω = 0``), ``r̄_{A,i}`` the mean
   reputation of ``A``'s active members other than ``i``, the target and the aggressor:
   ``(S − r_i) / (n − 1)`` with ``S`` and ``n`` the ascending sum and count over the active
   members other than the target and the aggressor (``S / n`` for the target; 1 with none), and
   ``θ_i = min(1, exposure(i, t) · severity_k + h_i)``; the quorum and the free-riding shares
   count the active members.  At neutral knobs every one of these floats is the v1 value
   exactly (``x · 1.0``, ``x + 0.0``).
6. **Updates** after a crisis, in order: *reputation* — every covering alliance that consulted
   (ascending), every active member ``i`` but the target: honored (backed there and delivered)
   ``r_i ← r_i + λ(1 − r_i)``, else ``r_i ← r_i · (1 − λ · bindingness_A)``; *aggressor
   learning* — repelled ``m_j ← m_j · e^(−ρ)``, succeeded ``m_j ← m_j · e^ρ``; *threat* —
   ``h_i ← min(1, (1 − δ)·h_i + κ · exposure(i, t))`` for every state; *exit* (when
   ``exit_threshold > 0``) — alliances ascending, their active members but the target ascending,
   each leaving when ``r̄_{A,i} < exit_threshold`` (``S`` and ``n`` lose each leaver as it
   leaves); an
   alliance left with fewer than two active members by an exit is dissolved (its last member
   is a member no more); *accession* (when
   ``join_threshold`` is finite) — every candidate slot not active, of an alliance not
   dissolved, with ``h_j ≥ join_threshold`` becomes active.

Tallies: the v1 cell, alliance and per-member tallies summed over every crisis of every
period (a covering alliance's ``A_COVERED``/``A_DETERRED`` counted per crisis, since coverage
moves), plus per period the same cell columns summed over cells, the delay histogram, the
:data:`~kernels.layout.PERIOD_COLUMNS` and, per alliance and period, the
:data:`~kernels.layout.ALLIANCE_PERIOD_COLUMNS`; and the number of trajectories by their count
of successful aggressions.  The per-member tallies have a row per roster slot (members first in
the member CSR's order, then the candidates: ``roster_row``).
"""

from __future__ import annotations

import math

from engine.core.simulate import CampaignTallies
from engine.model.compile import CompiledScenario
from kernels.layout import (
    A_COVERED,
    A_DETERRED,
    AP_ACTIVE,
    AP_ALIVE,
    AP_EXITS,
    AP_JOINS,
    AP_REPUTATION_SUM,
    C_ATTACKED,
    C_DETERRED,
    C_DETERRED_NO_ALLIANCE,
    C_TRIALS,
    DETERRENCE_CAPABILITY,
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
    RULE_UNANIMITY,
    RULE_VETO,
    SHARE_SCALE,
    SLOT_AGGRESSOR,
    SLOT_ATTACK_TYPE,
    SLOT_CONSULT_BASE,
    SLOT_CRISIS,
    SLOT_DETERRENCE,
    SLOT_TARGET,
)

from .python_loop import (
    GOLDEN,
    MASK64,
    Cell,
    Consultation,
    Member,
    World,
    backers_needed,
    cell_deterrence,
    fixed,
    log_or_minus_inf,
    mix64,
    normal_cdf,
    outcome,
    pick,
    respond,
    seed_base,
    tally_attacked,
    trial_key,
    uniform,
)

PERIOD_SALT = 0x2545F4914F6CDD1D


def period_key(key: int, period: int) -> int:
    """``kernels.rng.period_key`` on Python ints."""
    return mix64(((key ^ PERIOD_SALT) + (period + 1) * GOLDEN) & MASK64)


class _Static:
    """The compiled scenario as Python lists, read by every period."""

    def __init__(self, c: CompiledScenario):
        cp = c.campaign
        self.c = c
        self.cp = cp
        self.world = World(c)
        for name in ("capability", "commitment", "stability", "free_riding", "bindingness",
                     "obligation", "rule", "quota", "max_rounds", "intel_sharing", "round_days",
                     "integration", "aggressor_state", "aggressor_cum_weight", "resolve",
                     "target_ptr", "target_state", "target_cum_weight", "target_cell_base",
                     "mix_ptr", "mix_type", "mix_cum_weight", "severity", "ambiguity",
                     "attribution_days", "capability_units", "veto", "shares_alliance",
                     "exposure"):
            setattr(self, name, getattr(c, name).tolist())
        self.roster = [list(range(cp.roster_ptr[a], cp.roster_ptr[a + 1]))
                       for a in range(c.n_alliances)]
        self.slot_state = cp.roster_idx.tolist()
        self.slot_initial = [bool(x) for x in cp.roster_initial.tolist()]
        self.slot_protected = [bool(x) for x in cp.roster_protected.tolist()]
        self.slot_row = cp.roster_row.tolist()
        self.roster_states = sorted(set(self.slot_state))


def _others(st: _Static, active: list[bool], rep: list[float], al: int, t: int,
            a: int) -> tuple[float, int]:
    """Sum (ascending) and count of the reputations of ``al``'s active members other than the
    target and the aggressor."""
    total = 0.0
    count = 0
    for slot in st.roster[al]:
        i = st.slot_state[slot]
        if active[slot] and i != t and i != a:
            total += rep[i]
            count += 1
    return total, count


def _mean_without(total: float, count: int, rep_i: float, counted: bool) -> float:
    """``r̄_{A,i}``: the mean of the others' reputations, ``(total − r_i) / (count − 1)`` when
    ``i`` is among them, else ``total / count``; 1 with nobody."""
    if counted:
        total, count = total - rep_i, count - 1
    return total / count if count > 0 else 1.0


def _covering(st: _Static, active: list[bool], alive: list[bool], a: int, t: int) -> list[int]:
    """The alliances covering a crisis of ``a`` against ``t`` now (module docstring, 3)."""
    out = []
    for al in range(st.c.n_alliances):
        if not alive[al]:
            continue
        kind = st.obligation[al]
        if kind not in (OBLIGATION_DEFENSE, OBLIGATION_COLLECTIVE_SECURITY):
            continue
        target_ok = aggressor_in = False
        others = 0
        for slot in st.roster[al]:
            if not active[slot]:
                continue
            i = st.slot_state[slot]
            if i == t:
                target_ok = kind == OBLIGATION_COLLECTIVE_SECURITY or st.slot_protected[slot]
            elif i == a:
                aggressor_in = True
            else:
                others += 1
        if not target_ok or others < 1 or a == t:
            continue
        if kind == OBLIGATION_DEFENSE and aggressor_in:
            continue
        out.append(al)
    return out


def _cell(st: _Static, cover: list[int], active: list[bool], rep: list[float],
          threat: list[float], j: int, ti: int, a: int, t: int, k: int) -> Cell:
    """The crisis's cell with consultations over the active members (module docstring, 5)."""
    c = st.c
    w = c.threat_weight
    omega = st.cp.trust_weight
    consultations = []
    for al in cover:
        members = []
        riding = False
        total, count = _others(st, active, rep, al, t, a)
        for slot in st.roster[al]:
            i = st.slot_state[slot]
            if not active[slot] or i == a:
                continue
            conflict = 1.0 - c.conflict_penalty if st.shares_alliance[i][a] else 1.0
            trust = 1.0
            if omega > 0.0:
                trust = 1.0 - omega + omega * _mean_without(total, count, rep[i], i != t)
            base = (((st.commitment[i] * st.bindingness[al]) * (1.0 - st.ambiguity[k]))
                    * conflict) * trust
            theta = min(1.0, st.exposure[i][t] * st.severity[k] + threat[i])
            members.append(Member(i, st.slot_row[slot], st.capability_units[i],
                                  st.free_riding[i], base, theta,
                                  base * ((1.0 - w) + w * theta),
                                  st.rule[al] == RULE_VETO and st.veto[i][al] != 0))
            if i != t and st.free_riding[i] > 0.0:
                riding = True
        consultations.append(Consultation(
            alliance=al, members=members,
            need=backers_needed(st.rule[al], st.quota[al], len(members)),
            units_members=sum(m.units for m in members), riding=riding,
            max_rounds=st.max_rounds[al], intel=st.intel_sharing[al],
            moving_threat=st.intel_sharing[al] > 0.0 and w > 0.0,
            vetoing=st.rule[al] == RULE_VETO, unanimity=st.rule[al] == RULE_UNANIMITY,
            slot0=SLOT_CONSULT_BASE + (al << 20), round_days=st.round_days[al],
            integration=st.integration[al],
            mobilization=c.mobilization_days * (1.0 - st.integration[al])))
    return Cell(j, ti, t, k, consultations)


def _deterrence(st: _Static, cell: Cell, expected: list[float], rep: list[float],
                mult: list[float], j: int, a: int, t: int, k: int,
                number: int) -> tuple[float, float]:
    """P(deterred) and its no-alliance baseline away from the pristine state (docstring, 4)."""
    c = st.c
    cap = st.capability
    sigma = c.misperception
    allies: dict[int, float] = {}  # ally → max commitment · bindingness over covering alliances
    for cons in cell.consultations:
        for mem in cons.members:
            i = mem.state
            if i == t:
                continue
            value = st.commitment[i] * st.bindingness[cons.alliance]
            allies[i] = max(allies.get(i, 0.0), value)
    if c.deterrence == DETERRENCE_CAPABILITY:
        log_threat = math.log(cap[a] * (st.resolve[j] * mult[j]))
        response = cap[t]
        for i in sorted(allies):
            cred = allies[i] * rep[i]
            if cred > 0.0:
                response = response + cred * cap[i]
        alone = cap[t]
    else:
        log_threat = math.log((cap[a] * (st.resolve[j] * mult[j])) * st.severity[k])
        att = 1.0 / (1.0 + st.attribution_days[k] / c.window_days)
        alone = cap[t] * att
        weight = total = 0.0
        for i in sorted(allies):
            weight += cap[i]
            total += cap[i] * rep[i]
        r_bar = total / weight if weight > 0.0 else 1.0
        response = cap[t] + (expected[number] - cap[t]) * r_bar
    return (normal_cdf((log_or_minus_inf(response) - log_threat) / sigma),
            normal_cdf((log_or_minus_inf(alone) - log_threat) / sigma))


def simulate_campaign_python(compiled: CompiledScenario, seed: int, start: int, stop: int, *,
                             deterrence=None) -> CampaignTallies:
    """Trajectories ``[start, stop)`` of a campaign scenario, one period at a time.
    ``deterrence``: step 2 of every cell as :func:`~engine.oracles.python_loop.cell_deterrence`
    gives it (computed here unless given; the engine's ``DeterrenceTables`` also serve)."""
    c = compiled
    cp = c.campaign
    if cp is None:
        raise ValueError("not a campaign scenario (no [campaign] table)")
    st = _Static(c)
    steps = cp.steps
    tables = cell_deterrence(c, seed) if deterrence is None else deterrence
    p_det = tables.p_deterred.tolist()
    p_det0 = tables.p_deterred_no_alliance.tolist()
    expected = getattr(tables, "expected_response", getattr(tables, "expected", None))
    expected = [math.nan] * c.n_cells if expected is None else list(expected)
    n_states = c.n_states
    n_aggressors = len(st.aggressor_state)
    out = CampaignTallies.zeros(c)
    lam, rho = cp.reputation_learning, cp.resolve_learning
    kappa, delta = cp.threat_shock, cp.threat_decay
    base_key = seed_base(seed)
    for g in range(start, stop):
        rep = [1.0] * n_states
        mult = [1.0] * n_aggressors
        threat = [0.0] * n_states
        active = list(st.slot_initial)
        alive = [True] * c.n_alliances
        moved = False  # a membership changed
        successes = 0
        trial = trial_key(base_key, g)
        for s in range(steps):
            key = trial if s == 0 else period_key(trial, s)
            exits = joins = dissolved = 0
            exits_of = [0] * c.n_alliances
            joins_of = [0] * c.n_alliances
            if cp.crisis_rate < 1.0 and not uniform(key, SLOT_CRISIS) < cp.crisis_rate:
                threat = [(1.0 - delta) * h for h in threat]
            else:
                result = _crisis(st, out, key, s, rep, mult, threat, active, alive, moved,
                                 p_det, p_det0, expected)
                t, a, j, cell, response, repelled, deterred = result
                # updates, in order: reputation, aggressor learning, threat, exit, accession
                if not deterred:
                    for cons, (_, _, backed, _, _) in zip(cell.consultations, response.results,
                                                          strict=True):
                        binding = st.bindingness[cons.alliance]
                        for mem, b in zip(cons.members, backed, strict=True):
                            i = mem.state
                            if i == t:
                                continue
                            if b and i in response.delivered:
                                rep[i] = rep[i] + lam * (1.0 - rep[i])
                            else:
                                rep[i] = rep[i] * (1.0 - lam * binding)
                    if repelled:
                        mult[j] = mult[j] * math.exp(-rho)
                    else:
                        mult[j] = mult[j] * math.exp(rho)
                        successes += 1
                threat = [min(1.0, (1.0 - delta) * h + kappa * st.exposure[i][t])
                          for i, h in enumerate(threat)]
                if cp.exit_threshold > 0.0:
                    for al in range(c.n_alliances):
                        if not alive[al]:
                            continue
                        left = 0
                        total, count = _others(st, active, rep, al, t, a)
                        for slot in st.roster[al]:
                            i = st.slot_state[slot]
                            if not active[slot] or i == t:
                                continue
                            if _mean_without(total, count, rep[i], i != a) < cp.exit_threshold:
                                active[slot] = False
                                left += 1
                                if i != a:
                                    total, count = total - rep[i], count - 1
                        if left:
                            exits += left
                            exits_of[al] += left
                            moved = True
                            if sum(active[x] for x in st.roster[al]) < 2:
                                alive[al] = False  # dissolved: nobody is a member any more
                                dissolved += 1
                                for x in st.roster[al]:
                                    active[x] = False
                if math.isfinite(cp.join_threshold):
                    for al in range(c.n_alliances):
                        if not alive[al]:
                            continue
                        for slot in st.roster[al]:
                            if (not active[slot] and not st.slot_initial[slot]
                                    and threat[st.slot_state[slot]] >= cp.join_threshold):
                                active[slot] = True
                                joins += 1
                                joins_of[al] += 1
                                moved = True
            # the state at the end of the period
            row = out.periods[s]
            row[P_REPUTATION_SUM] += fixed(
                sum(rep[i] for i in st.roster_states) / len(st.roster_states)
                if st.roster_states else 1.0, SHARE_SCALE)
            row[P_RESOLVE_SUM] += fixed(min(RESOLVE_CAP, sum(mult) / n_aggressors),
                                        RESOLVE_SCALE)
            row[P_THREAT_SUM] += fixed(sum(threat) / n_states, SHARE_SCALE)
            row[P_EXITS] += exits
            row[P_JOINS] += joins
            row[P_DISSOLVED] += dissolved
            for al in range(c.n_alliances):
                ap = out.alliance_periods[al, s]
                members = [st.slot_state[x] for x in st.roster[al] if active[x]]
                ap[AP_ACTIVE] += len(members)
                if members:
                    ap[AP_REPUTATION_SUM] += fixed(sum(rep[i] for i in members) / len(members),
                                                   SHARE_SCALE)
                ap[AP_EXITS] += exits_of[al]
                ap[AP_JOINS] += joins_of[al]
                ap[AP_ALIVE] += alive[al]
        out.successes[successes] += 1
    return out


def _crisis(st, out, key, s, rep, mult, threat, active, alive, moved, p_det, p_det0, expected):
    """One crisis of one period: draws, deterrence, response, tallies; returns (target,
    aggressor, entry j, cell, response or None, repelled, deterred)."""
    c = st.c
    j = 0
    n_aggressors = len(st.aggressor_state)
    if n_aggressors > 1:
        j = pick(st.aggressor_cum_weight, 0, n_aggressors, uniform(key, SLOT_AGGRESSOR))
    ti = st.target_ptr[j]
    if st.target_ptr[j + 1] - ti > 1:
        ti = pick(st.target_cum_weight, ti, st.target_ptr[j + 1], uniform(key, SLOT_TARGET))
    ki = st.mix_ptr[j]
    if st.mix_ptr[j + 1] - ki > 1:
        ki = pick(st.mix_cum_weight, ki, st.mix_ptr[j + 1], uniform(key, SLOT_ATTACK_TYPE))
    a = st.aggressor_state[j]
    t = st.target_state[ti]
    k = st.mix_type[ki]
    number = st.target_cell_base[ti] + (ki - st.mix_ptr[j])
    cover = _covering(st, active, alive, a, t)
    cell = _cell(st, cover, active, rep, threat, j, ti, a, t, k)
    pristine = (not moved and all(x == 1.0 for x in rep) and all(x == 1.0 for x in mult))
    if pristine:
        p, p0 = p_det[number], p_det0[number]
    else:
        p, p0 = _deterrence(st, cell, expected, rep, mult, j, a, t, k, number)
    tallies = (out.cells[number], out.period_cells[s])
    u_det = uniform(key, SLOT_DETERRENCE)
    deterred = u_det < p
    for tally in tallies:
        tally[C_TRIALS] += 1
        if u_det < p0:
            tally[C_DETERRED_NO_ALLIANCE] += 1
    for cons in cell.consultations:
        out.alliances[cons.alliance, A_COVERED] += 1
        if deterred:
            out.alliances[cons.alliance, A_DETERRED] += 1
    if deterred:
        for tally in tallies:
            tally[C_DETERRED] += 1
        return t, a, j, cell, None, False, True
    for tally in tallies:
        tally[C_ATTACKED] += 1
    response = respond(st.world, cell, key)
    repelled, defection = outcome(c, st.world, response, key, a, k)
    tally_attacked(cell, response, repelled, defection,
                   [(out.cells[number], out.cell_hist[number]),
                    (out.period_cells[s], out.period_hist[s])],
                   out.alliances, out.alliance_hist, out.members)
    return t, a, j, cell, response, repelled, False
