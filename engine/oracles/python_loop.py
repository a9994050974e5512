"""The model in plain Python, one trial at a time: the "agent-free, plain Python" baseline.

:func:`simulate_python` runs design §2 steps 1–8, with the v2 core of design §8, trial by trial
with Python scalars, lists and the :mod:`math` module only — no NumPy inside the trial loop — and
returns the same :class:`engine.core.simulate.Tallies` as :func:`engine.core.simulate.simulate`,
draw for draw:

* the counter-based generator of :mod:`kernels.rng` (SplitMix64) on Python ints masked to 64 bits,
  with the trials' keys and the pilot's keys (:func:`pilot_key`);
* the covering alliances of every (aggressor, target) entry (design §8: a ``defense`` pact does
  not act against a member, ``collective_security`` does; an alliance with nobody but the target
  and the aggressor is not invoked), derived here and checked against the compiler;
* deterrence per cell (:func:`cell_deterrence`): ``capability`` (v1) or ``expected_response``, its
  ``E_cell`` exact where a closed form exists and otherwise a keyed pilot that runs steps 3–8 of
  the cell with this loop's own :func:`respond` (the conditional estimate with one unanimity
  alliance, :func:`pilot`);
* the same per-cell constants as :mod:`kernels.prepare`, computed with the same float operations
  in the same order;
* the consultation scheme of :mod:`kernels.consultation` (one uniform per member, backing in the
  first round with ``u < 1 − S(r)``), the trial logic and the cell, alliance and per-member
  tallies of :mod:`kernels.trial`.

NumPy is used only to read the :class:`~engine.model.compile.CompiledScenario` arrays (converted to
Python lists up front) and to build the returned arrays at the end.  The benchmark compares the
Numba kernel's throughput against this loop.
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
    DETERRENCE_CAPABILITY,
    E_EXACT,
    E_PILOT,
    HIST_FINE_BINS,
    HIST_FINE_LIMIT,
    HIST_OCTAVES,
    HIST_OVERFLOW,
    HIST_SUB_BINS,
    M_BACKED,
    M_DELIVERED,
    M_FREE_RODE,
    M_HONORED,
    M_PLEDGED,
    N_ALLIANCE_COLUMNS,
    N_CELL_COLUMNS,
    N_HIST_BINS,
    N_MEMBER_COLUMNS,
    OBLIGATION_DEFENSE,
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

from .reference import CellDeterrence

__all__ = [
    "cell_deterrence",
    "covering_alliances",
    "delay_bin",
    "pilot_estimate",
    "pilot_key",
    "seed_base",
    "simulate_python",
    "trial_key",
    "uniform",
]

# ---- counter-based generator (kernels/rng.py) on Python ints -------------------------------
MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
SEED_SALT = 0x5851F42D4C957F2D
PILOT_SALT = 0xD1B54A32D192ED03
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


def pilot_key(base: int, cell: int, sample: int) -> int:
    """Key of sample ``sample`` of the pilot of cell ``cell``: a stream of its own (design §8)."""
    cell_base = mix64(((base ^ PILOT_SALT) + (cell + 1) * GOLDEN) & MASK64)
    return mix64((cell_base + (sample + 1) * GOLDEN) & MASK64)


def uniform(key: int, slot: int) -> float:
    """Uniform in [0, 1) of draw ``slot``: the top 53 bits of the hash (exact int → float)."""
    return (mix64((key + (slot + 1) * GOLDEN) & MASK64) >> 11) * TO_UNIT


# ---- scalar helpers ------------------------------------------------------------------------
def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x * 0.7071067811865476)


def log_or_minus_inf(x: float) -> float:
    """``math.log`` with ``log(0) = −inf``, as in the kernels (an expected response underflows
    to 0 only when every delay is thousands of windows long)."""
    return math.log(x) if x > 0.0 else -math.inf


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


# ---- coverage (design §8) -------------------------------------------------------------------
def covering_alliances(c: CompiledScenario) -> list[list[int]]:
    """The alliances that cover each (aggressor, target) entry's crisis, ascending.

    Those protecting the target (``cover_ptr/cover_idx``), less a ``defense`` alliance the
    aggressor belongs to and less any alliance with no member besides the target and the
    aggressor; checked against the compiler's ``entry_cover_ptr/idx``.
    """
    member_ptr = c.member_ptr.tolist()
    member_idx = c.member_idx.tolist()
    obligation = c.obligation.tolist()
    cover_ptr = c.cover_ptr.tolist()
    cover_idx = c.cover_idx.tolist()
    target_ptr = c.target_ptr.tolist()
    target_state = c.target_state.tolist()
    cover = []
    for j, a in enumerate(c.aggressor_state.tolist()):
        for ti in range(target_ptr[j], target_ptr[j + 1]):
            t = target_state[ti]
            entry = []
            for al in cover_idx[cover_ptr[t]:cover_ptr[t + 1]]:
                members = member_idx[member_ptr[al]:member_ptr[al + 1]]
                if obligation[al] == OBLIGATION_DEFENSE and a in members:
                    continue  # a pact against outside attack
                if all(i == t or i == a for i in members):
                    continue  # nobody to consult
                entry.append(al)
            cover.append(entry)
    entry_ptr = c.entry_cover_ptr.tolist()
    entry_idx = c.entry_cover_idx.tolist()
    for ti, entry in enumerate(cover):
        if entry != entry_idx[entry_ptr[ti]:entry_ptr[ti + 1]]:
            raise AssertionError(f"covering alliances of entry {ti}: the compiler has "
                                 f"{entry_idx[entry_ptr[ti]:entry_ptr[ti + 1]]}, design §8 "
                                 f"gives {entry}")
    return cover


# ---- per-run constants (outside the trial loop) --------------------------------------------
class Member:
    """One member ``i`` of ``M_A`` in one consultation: the trial-independent parts of ``p_i``."""

    __slots__ = ("state", "row", "units", "free_riding", "base", "theta", "static", "veto")

    def __init__(self, state, row, units, free_riding, base, theta, static, veto):
        self.state = state
        self.row = row  # row of the per-member tallies (index into the member CSR)
        self.units = units
        self.free_riding = free_riding
        self.base = base  # ((commitment · bindingness) · (1 − ambiguity)) · conflict
        self.theta = theta  # θ before round 1
        self.static = static  # base · ((1 − w) + w · θ)
        self.veto = veto  # a veto holder under a veto rule


class Consultation:
    """One covering alliance of one cell (kernels/prepare.py)."""

    __slots__ = ("alliance", "members", "need", "units_members", "riding", "max_rounds",
                 "intel", "moving_threat", "vetoing", "unanimity", "slot0", "round_days",
                 "integration", "mobilization")

    def __init__(self, **fields):
        for name, value in fields.items():
            setattr(self, name, value)


class Cell:
    """One aggressor × target × attack type, with its covering alliances' consultations."""

    __slots__ = ("aggressor", "ti", "target", "attack_type", "consultations")

    def __init__(self, aggressor, ti, target, attack_type, consultations):
        self.aggressor = aggressor  # aggressor entry j
        self.ti = ti  # (aggressor, target) entry
        self.target = target
        self.attack_type = attack_type
        self.consultations = consultations


def cell_table(c: CompiledScenario, cover: list[list[int]] | None = None) -> list[Cell]:
    """Every cell, in cell order, with the consultations of its covering alliances (members in
    ascending state order, aggressor out); ``cover`` from :func:`covering_alliances`."""
    if cover is None:
        cover = covering_alliances(c)
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
    max_rounds = c.max_rounds.tolist()
    intel_sharing = c.intel_sharing.tolist()
    round_days = c.round_days.tolist()
    integration = c.integration.tolist()
    aggressor_state = c.aggressor_state.tolist()
    target_ptr = c.target_ptr.tolist()
    target_state = c.target_state.tolist()
    target_cell_base = c.target_cell_base.tolist()
    mix_ptr = c.mix_ptr.tolist()
    mix_type = c.mix_type.tolist()
    w = c.threat_weight
    cells: list[Cell | None] = [None] * c.n_cells
    for j, a in enumerate(aggressor_state):
        for ti in range(target_ptr[j], target_ptr[j + 1]):
            t = target_state[ti]
            for ki in range(mix_ptr[j], mix_ptr[j + 1]):
                k = mix_type[ki]
                consultations = []
                for al in cover[ti]:
                    members = []
                    riding = False
                    for row in range(member_ptr[al], member_ptr[al + 1]):
                        i = member_idx[row]
                        if i == a:
                            continue
                        conflict = 1.0 - c.conflict_penalty if shares[i][a] else 1.0
                        base = ((commitment[i] * bindingness[al]) * (1.0 - ambiguity[k])) * conflict
                        theta = min(1.0, exposure[i][t] * severity[k])
                        members.append(Member(i, row, units[i], free_riding[i], base, theta,
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
                        vetoing=rule[al] == RULE_VETO, unanimity=rule[al] == RULE_UNANIMITY,
                        slot0=SLOT_CONSULT_BASE + (al << 20), round_days=round_days[al],
                        integration=integration[al],
                        mobilization=c.mobilization_days * (1.0 - integration[al]),
                    ))
                cells[target_cell_base[ti] + (ki - mix_ptr[j])] = Cell(j, ti, t, k,
                                                                       consultations)
    return cells  # type: ignore[return-value]


# ---- step 4–5: one covering alliance consults ----------------------------------------------
# ---- step 4–5: one covering alliance consults ----------------------------------------------
def consult(cons: Consultation, t: int, key: int, w: float, chances: list | None = None):
    """Returns ``(decided, rounds_used, backed, n_backers, vetoed)``; ``backed`` is a list of
    bools over ``cons.members``.  ``chances``, if given, receives ``π_r`` for every round run:
    the chance that every member waiting at the round's start backs in it (the pilot's
    conditional estimate)."""
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
        all_back = 1.0  # π_r
        for p, mem in enumerate(members):
            if backed[p]:
                continue
            if moving:
                prob = (mem.base * ((1.0 - w) + w * theta[p])) * (1.0 - mem.free_riding * share)
            else:
                prob = mem.static * (1.0 - mem.free_riding * share)
            all_back = all_back * prob
            s_next = survival[p] * (1.0 - prob)
            survival[p] = s_next
            if draw[p] < 1.0 - s_next:
                backed[p] = True
                new_back += 1
                new_units += mem.units
                new_veto += mem.veto
        if chances is not None:
            chances.append(all_back)
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
    n_union_back, delivered)``, the force before the interoperability bonus and ``delivered`` the
    set of responders that delivered.  Members are visited in ascending state order (the
    delivery draws are keyed by state, the order only fixes the float sum of the force).
    """
    t = cell.target
    force = capability[t]
    delivered: set[int] = set()
    if not results:
        return force, 0, 0, 0, 0, 0, delivered
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
                delivered.add(i)
            else:
                n_failed += 1
        elif in_deciding:
            n_free += 1
    return force, n_resp, n_failed, n_free, len(union), n_union_back, delivered


# ---- steps 3–8: the response to one attacked trial (or pilot sample) -----------------------
class World:
    """The per-state and scenario values steps 3–8 read, as Python lists and floats."""

    __slots__ = ("capability", "stability", "attribution_days", "threat_weight",
                 "interoperability_bonus", "window_days")

    def __init__(self, c: CompiledScenario):
        self.capability = c.capability.tolist()
        self.stability = c.stability.tolist()
        self.attribution_days = c.attribution_days.tolist()
        self.threat_weight = c.threat_weight
        self.interoperability_bonus = c.interoperability_bonus
        self.window_days = c.window_days


class Response:
    """Steps 3–8 of one attacked trial: what the tallies and the pilot read."""

    __slots__ = ("results", "first", "delay", "force", "n_resp", "n_failed", "n_free",
                 "n_union", "n_union_back", "delivered")

    def __init__(self, results, first, delay, force, n_resp, n_failed, n_free, n_union,
                 n_union_back, delivered):
        self.results = results  # per consultation: (decided, rounds, backed, n_back, vetoed)
        self.first = first  # position of the earliest deciding consultation, −1 if none
        self.delay = delay  # days: D_att, plus rounds and mobilization when invoked
        self.force = force  # F after the integration bonus (cap_t with no decision)
        self.n_resp = n_resp
        self.n_failed = n_failed
        self.n_free = n_free
        self.n_union = n_union
        self.n_union_back = n_union_back
        self.delivered = delivered  # responders (states) that delivered


def respond(world: World, cell: Cell, key: int, chances: list | None = None) -> Response:
    """Steps 3–8 of cell ``cell`` under ``key`` (all but the outcome draw): the trials' code and
    the pilot's.  ``chances`` receives ``π_r`` of the first consultation (see :func:`consult`)."""
    k = cell.attack_type

    # 3. attribution
    d_att = 0.0
    if world.attribution_days[k] > 0.0:
        d_att = -world.attribution_days[k] * math.log(1.0 - uniform(key, SLOT_ATTRIBUTION))

    # 4–5. consultation in every covering alliance; the earliest decision counts
    results = [consult(cons, cell.target, key, world.threat_weight,
                       chances if number == 0 else None)
               for number, cons in enumerate(cell.consultations)]
    first = -1
    first_time = first_mob = 0.0
    for pos, (cons, (decided, r, _, _, _)) in enumerate(
            zip(cell.consultations, results, strict=True)):
        if decided:
            when = r * cons.round_days
            mob = cons.mobilization
            if first < 0 or when < first_time or (when == first_time and mob < first_mob):
                first, first_time, first_mob = pos, when, mob

    # 6–7. delay, delivery, free riders, backing; 8. the force with the integration bonus
    force, n_resp, n_failed, n_free, n_union, n_union_back, delivered = deliver(
        cell, results, key, world.capability, world.stability)
    delay = d_att
    if first >= 0:
        cons = cell.consultations[first]
        delay = (d_att + results[first][1] * cons.round_days) + cons.mobilization
        force = force * (1.0 + cons.integration * world.interoperability_bonus)
    return Response(results, first, delay, force, n_resp, n_failed, n_free, n_union,
                    n_union_back, delivered)


# ---- step 2: deterrence, per cell ----------------------------------------------------------
def single_unanimity(cell: Cell) -> bool:
    """One covering alliance, under unanimity: it decides in round ``r`` exactly when every
    member still waiting backs in it."""
    return len(cell.consultations) == 1 and cell.consultations[0].unanimity


def integer_power(x: float, r: int) -> float:
    """``x ** r`` for an integer ``r ≥ 0`` as Numba compiles it: binary exponentiation, lowest
    bit first (not C's ``pow``, which Python's ``**`` calls)."""
    result = 1.0
    while r:
        if r & 1:
            result = result * x
        r >>= 1
        x = x * x
    return result


def decided_force(world: World, cell: Cell) -> float:
    """``E[F | decided]`` under unanimity: ``(cap_t + Σ_i stability_i · cap_i) · (1 +
    integration · bonus)`` over the allies in ascending order."""
    cons = cell.consultations[0]
    t = cell.target
    force = world.capability[t]
    for mem in cons.members:
        if mem.state != t:
            force = force + world.stability[mem.state] * world.capability[mem.state]
    return force * (1.0 + cons.integration * world.interoperability_bonus)


def pilot(world: World, cell: Cell, cell_number: int, base: int, samples: int,
          conditional: bool | None = None) -> tuple[float, float]:
    """E_cell by the keyed pilot: mean and standard error of the values ``v`` of ``samples``
    runs of :func:`respond` keyed by :func:`pilot_key`, summed in sample order.

    ``v = F · exp(−delay / window_days)``; the conditional estimate (the default with one
    covering alliance under unanimity) is ``att_k · (Σ_r π_r · F_dec · exp(−(r · round_days +
    mob) / window) + (1 − π_R) · cap_t)`` over the rounds run while undecided, the last term
    only when round ``R = max_rounds`` was run (:func:`consult`'s ``π_r``).
    """
    if conditional is None:
        conditional = single_unanimity(cell)
    if conditional and not single_unanimity(cell):
        raise ValueError("the conditional estimate needs one covering alliance under unanimity")
    window = world.window_days
    if conditional:
        cons = cell.consultations[0]
        force = decided_force(world, cell)
        weights = [force * math.exp(-(r * cons.round_days + cons.mobilization) / window)
                   for r in range(1, cons.max_rounds + 1)]
        cap_t = world.capability[cell.target]
        att = 1.0 / (1.0 + world.attribution_days[cell.attack_type] / window)
    total = 0.0
    total_sq = 0.0
    for s in range(samples):
        key = pilot_key(base, cell_number, s)
        if conditional:
            chances: list[float] = []
            respond(world, cell, key, chances)
            decided_sum = 0.0
            for chance, weight in zip(chances, weights, strict=False):
                decided_sum += chance * weight
            tail = 1.0 - chances[-1] if len(chances) == cons.max_rounds else 0.0
            v = att * (decided_sum + tail * cap_t)
        else:
            response = respond(world, cell, key)
            v = response.force * math.exp(-response.delay / window)
        total += v
        total_sq += v * v
    mean = total / samples
    return mean, math.sqrt(max(0.0, total_sq / samples - mean * mean) / (samples - 1))


def pilot_estimate(c: CompiledScenario, seed: int, cell: int, samples: int | None = None,
                   conditional: bool | None = None) -> tuple[float, float]:
    """The pilot's ``(E_cell, standard error)`` for cell ``cell`` with ``samples`` samples
    (default ``c.pilot_samples``), whichever case of E_cell the cell falls in; ``conditional``
    picks the estimate (default: as :func:`cell_deterrence` would, see :func:`pilot`)."""
    return pilot(World(c), cell_table(c)[cell], cell, seed_base(seed),
                 c.pilot_samples if samples is None else samples, conditional)


def exact_single_unanimity(world: World, cell: Cell, att: float) -> float:
    """E_cell with one unanimity alliance whose members back with fixed chances ``p_i``:
    ``att_k · (Σ_r (P_r − P_{r−1}) · F_dec · exp(−(r · round_days + mob) / window) + (1 − P_R)
    · cap_t)``, ``P_r = Π_i (1 − (1 − p_i)^r)`` (:func:`integer_power`), ``F_dec`` of
    :func:`decided_force`."""
    cons = cell.consultations[0]
    t = cell.target
    allies = [mem for mem in cons.members if mem.state != t]
    cap_t = world.capability[t]
    force = decided_force(world, cell)
    decided_before = 0.0  # P_{r−1}
    total = 0.0
    for r in range(1, cons.max_rounds + 1):
        decided_by = 1.0  # P_r
        for mem in allies:
            decided_by = decided_by * (1.0 - integer_power(1.0 - mem.static, r))
        discount = math.exp(-(r * cons.round_days + cons.mobilization) / world.window_days)
        total = total + ((decided_by - decided_before) * force) * discount
        decided_before = decided_by
    return att * (total + (1.0 - decided_before) * cap_t)


def cell_deterrence(c: CompiledScenario, seed: int,
                    cells: list[Cell] | None = None) -> CellDeterrence:
    """P(deterred) with and without alliances per cell (step 2), and E_cell with how it was
    obtained (``expected_response`` mode; NaN and −1 in ``capability`` mode)."""
    if cells is None:
        cells = cell_table(c)
    world = World(c)
    capability = world.capability
    commitment = c.commitment.tolist()
    bindingness = c.bindingness.tolist()
    membership = c.membership.tolist()
    resolve = c.resolve.tolist()
    severity = c.severity.tolist()
    aggressor_state = c.aggressor_state.tolist()
    sigma = c.misperception
    base = seed_base(seed)
    p_det = [0.0] * len(cells)
    p_det0 = [0.0] * len(cells)
    expected = [math.nan] * len(cells)
    how = [-1] * len(cells)
    for number, cell in enumerate(cells):
        j, t, k = cell.aggressor, cell.target, cell.attack_type
        a = aggressor_state[j]
        if c.deterrence == DETERRENCE_CAPABILITY:
            # v1: R = cap_t + Σ cred_i · cap_i over the allies in ascending order
            log_threat = math.log(capability[a] * resolve[j])
            response = capability[t]
            for i in range(c.n_states):
                if i == t or i == a:
                    continue
                cred = 0.0
                for cons in cell.consultations:
                    if membership[i][cons.alliance]:
                        cred = max(cred, commitment[i] * bindingness[cons.alliance])
                if cred > 0.0:
                    response = response + cred * capability[i]
            alone = capability[t]
        else:
            log_threat = math.log((capability[a] * resolve[j]) * severity[k])
            att = 1.0 / (1.0 + world.attribution_days[k] / c.window_days)
            alone = capability[t] * att
            cons = cell.consultations
            if not cons:  # case 1: the target alone, after the attribution delay
                response, how[number] = alone, E_EXACT
            elif (single_unanimity(cell) and not cons[0].riding
                  and not cons[0].moving_threat):  # case 2: fixed chances, unanimity
                response = exact_single_unanimity(world, cell, att)
                how[number] = E_EXACT
            else:  # case 3
                response = pilot(world, cell, number, base, c.pilot_samples)[0]
                how[number] = E_PILOT
            expected[number] = response
        p_det[number] = normal_cdf((log_or_minus_inf(response) - log_threat) / sigma)
        p_det0[number] = normal_cdf((log_or_minus_inf(alone) - log_threat) / sigma)
    return CellDeterrence(np.array(p_det, np.float64), np.array(p_det0, np.float64),
                          np.array(expected, np.float64), np.array(how, np.int64))


def outcome(c: CompiledScenario, world: World, response: Response, key: int, a: int,
            k: int) -> tuple[bool, bool]:
    """Step 8 of an attacked trial (repelled) and whether its allies defected."""
    first = response.first
    n_resp, n_failed = response.n_resp, response.n_failed
    defection = first >= 0 and n_resp > 0 and n_failed / n_resp > c.defection_threshold
    threat = world.capability[a] * float(c.severity[k])
    z = (math.log(response.force) - math.log(threat) - response.delay / c.window_days
         ) / c.outcome_noise
    return uniform(key, SLOT_OUTCOME) < normal_cdf(z), defection


# ---- tallies of an attacked trial ------------------------------------------------------------
def tally_attacked(cell: Cell, response: Response, repelled: bool, defection: bool,
                   rows: list, at, ah, mt) -> None:
    """Steps 3–8's tallies of one attacked trial: the per-member rows ``mt``, the alliance rows
    ``at``/``ah``, and every (cell-like tally row, delay histogram) of ``rows`` (a campaign also
    adds the period's row)."""
    t = cell.target
    results = response.results
    first = response.first
    invoked = first >= 0
    delay = response.delay
    n_resp, n_failed = response.n_resp, response.n_failed
    # per-member tallies: every consultation × every member of M_A but the target
    honored = 0
    pledges = 0
    for cons, (decided, _, backed, _, _) in zip(cell.consultations, results, strict=True):
        pledges += len(cons.members) - 1
        for mem, b in zip(cons.members, backed, strict=True):
            if mem.state == t:
                continue
            row = mt[mem.row]
            row[M_PLEDGED] += 1
            delivered = mem.state in response.delivered  # a responder, so invoked
            if b:
                row[M_BACKED] += 1
            elif decided:
                row[M_FREE_RODE] += 1
            if delivered:
                row[M_DELIVERED] += 1
                if b:
                    row[M_HONORED] += 1
                    honored += 1

    # cell tallies
    delay_fx = fixed(delay, DELAY_SCALE) if invoked else 0
    bin_no = delay_bin(delay) if invoked else 0
    for tally, hist in rows:
        tally[C_REPELLED if repelled else C_SUCCEEDED] += 1
        if results:
            tally[C_CONSULTED] += 1
            tally[C_BACKING_SHARE_SUM] += fixed(response.n_union_back / response.n_union,
                                                SHARE_SCALE)
            tally[C_ALLIES_SUM] += pledges
            tally[C_HONORED_SUM] += honored
            if not invoked:
                if any(res[4] for res in results):
                    tally[C_VETO] += 1
                else:
                    tally[C_DEADLOCK] += 1
        if invoked:
            tally[C_INVOKED] += 1
            tally[C_ROUNDS_SUM] += results[first][1]
            tally[C_DELAY_SUM] += delay_fx
            hist[bin_no] += 1
            tally[C_FREE_RIDERS_SUM] += response.n_free
            if n_resp > 0:
                tally[C_WITH_ALLIED_BACKERS] += 1
                tally[C_DELIVERED_SHARE_SUM] += fixed((n_resp - n_failed) / n_resp, SHARE_SCALE)
            if defection:
                tally[C_DEFECTION] += 1
            if repelled:
                tally[C_REPELLED_INVOKED] += 1

    # alliance tallies
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


# ---- driver --------------------------------------------------------------------------------
def simulate_python(compiled: CompiledScenario, seed: int, start: int, stop: int, *,
                    deterrence: CellDeterrence | None = None) -> Tallies:
    """Simulate global trials ``[start, stop)`` one at a time; same tallies as
    :func:`engine.core.simulate.simulate` (records are not kept).  ``deterrence`` (step 2 of
    every cell) is computed by :func:`cell_deterrence` unless given (e.g. to time the trials
    alone: the pilot of a large scenario takes this loop minutes): anything with float64 (C,)
    ``p_deterred`` and ``p_deterred_no_alliance``, such as the engine's ``DeterrenceTables``."""
    c = compiled
    world = World(c)
    aggressor_state = c.aggressor_state.tolist()
    aggressor_cum = c.aggressor_cum_weight.tolist()
    target_ptr = c.target_ptr.tolist()
    target_cum = c.target_cum_weight.tolist()
    target_cell_base = c.target_cell_base.tolist()
    mix_ptr = c.mix_ptr.tolist()
    mix_type = c.mix_type.tolist()
    mix_cum = c.mix_cum_weight.tolist()
    cells = cell_table(c)
    if deterrence is None:
        deterrence = cell_deterrence(c, seed, cells)
    p_det = deterrence.p_deterred.tolist()
    p_det0 = deterrence.p_deterred_no_alliance.tolist()
    n_aggressors = len(aggressor_state)

    ct = [[0] * N_CELL_COLUMNS for _ in range(c.n_cells)]
    ch = [[0] * N_HIST_BINS for _ in range(c.n_cells)]
    at = [[0] * N_ALLIANCE_COLUMNS for _ in range(c.n_alliances)]
    ah = [[0] * N_HIST_BINS for _ in range(c.n_alliances)]
    mt = [[0] * N_MEMBER_COLUMNS for _ in range(c.n_memberships)]

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
        k = mix_type[ki]
        cell_no = target_cell_base[ti] + (ki - mix_ptr[j])
        cell = cells[cell_no]
        tally = ct[cell_no]

        # 2. deterrence (per cell; the baseline on the same uniform)
        u_det = uniform(key, SLOT_DETERRENCE)
        deterred = u_det < p_det[cell_no]
        tally[C_TRIALS] += 1
        if u_det < p_det0[cell_no]:
            tally[C_DETERRED_NO_ALLIANCE] += 1
        for cons in cell.consultations:
            at[cons.alliance][A_COVERED] += 1
            if deterred:
                at[cons.alliance][A_DETERRED] += 1
        if deterred:
            tally[C_DETERRED] += 1
            continue
        tally[C_ATTACKED] += 1

        # 3–8. attribution, consultation, delay, delivery, outcome
        response = respond(world, cell, key)
        repelled, defection = outcome(c, world, response, key, a, k)
        tally_attacked(cell, response, repelled, defection, [(tally, ch[cell_no])], at, ah,
                       mt)

    return Tallies(
        np.array(ct, dtype=np.int64).reshape(c.n_cells, N_CELL_COLUMNS),
        np.array(ch, dtype=np.int64).reshape(c.n_cells, N_HIST_BINS),
        np.array(at, dtype=np.int64).reshape(c.n_alliances, N_ALLIANCE_COLUMNS),
        np.array(ah, dtype=np.int64).reshape(c.n_alliances, N_HIST_BINS),
        np.array(mt, dtype=np.int64).reshape(c.n_memberships, N_MEMBER_COLUMNS),
    )
