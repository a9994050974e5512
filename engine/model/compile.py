"""Compile a validated :class:`~engine.model.config.Scenario` into the arrays the kernels read.

Index conventions: states, alliances, aggressors and attack types are numbered in file order.
Ragged lists (members of an alliance, targets of an aggressor, …) are CSR pairs
``ptr`` (length n + 1) and ``idx``: the entries of row ``i`` are ``idx[ptr[i]:ptr[i + 1]]``.
Cumulative weights are normalised so the last entry of each row is exactly 1.0.

A *cell* is one (aggressor, target, attack type) combination the scenario can draw; cell ``c`` of
aggressor entry ``j``'s target entry ``ti`` (global index into ``target_state``) and attack-mix
entry ``ki`` (global index into ``mix_type``) is ``target_cell_base[ti] + (ki − mix_ptr[j])``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from kernels.layout import (
    DECISION_RULES,
    DETERRENCE_MODES,
    OBLIGATION_COLLECTIVE_SECURITY,
    OBLIGATION_DEFENSE,
    OBLIGATIONS,
)

from .config import Scenario


@dataclass(frozen=True)
class CompiledCampaign:
    """``[campaign]`` (design §7) as the campaign simulation reads it.

    Each alliance's *roster* is its members and its candidates, in ascending state order (CSR
    ``roster_ptr``/``roster_idx``); ``roster_initial`` marks the members (active at the start),
    ``roster_protected`` the slots a ``defense`` alliance covers when active (every member
    unless ``protected`` is set; a candidate only when ``protected`` is not set), and
    ``roster_row`` the row of the per-member tallies: a member's row of the member CSR, a
    candidate's ``n_memberships + k`` (candidates numbered in alliance, then state order)."""

    steps: int
    crisis_rate: float
    reputation_learning: float
    trust_weight: float
    resolve_learning: float
    threat_shock: float
    threat_decay: float
    exit_threshold: float
    join_threshold: float
    roster_ptr: np.ndarray  # int64 (A + 1,)
    roster_idx: np.ndarray  # int64: states, ascending within an alliance
    roster_initial: np.ndarray  # uint8: a member at the start
    roster_protected: np.ndarray  # uint8: covered by its defense alliance when active
    roster_row: np.ndarray  # int64: row of the per-member tallies
    n_candidates: int


@dataclass(frozen=True)
class CompiledScenario:
    # states, shape (S,)
    state_ids: tuple[str, ...]
    capability: np.ndarray  # float64
    # capability in integer units (2^52 for the whole scenario): sums of units are exact in any
    # order, so free riding's "capability of backers / capability of M_A" is order-free
    capability_units: np.ndarray  # int64
    commitment: np.ndarray  # float64
    stability: np.ndarray  # float64
    free_riding: np.ndarray  # float64
    # alliances, shape (A,) unless noted
    alliance_ids: tuple[str, ...]
    membership: np.ndarray  # uint8 (S, A): 1 when state s is a member of alliance A
    member_ptr: np.ndarray  # int64 (A + 1,) CSR over member_idx
    member_idx: np.ndarray  # int64: member state indices, ascending within an alliance
    obligation: np.ndarray  # int64, index into OBLIGATIONS
    rule: np.ndarray  # int64, index into DECISION_RULES
    quota: np.ndarray  # float64
    veto: np.ndarray  # uint8 (S, A): 1 when state s holds a veto in alliance A
    round_days: np.ndarray  # float64
    max_rounds: np.ndarray  # int64
    integration: np.ndarray  # float64
    bindingness: np.ndarray  # float64
    intel_sharing: np.ndarray  # float64
    # alliances that protect each state: the defense alliances that list it as protected (every
    # member unless `protected` is set) and the collective-security alliances it belongs to; CSR
    # over state index
    cover_ptr: np.ndarray  # int64 (S + 1,)
    cover_idx: np.ndarray  # int64: alliance indices, ascending
    # shares_alliance[i, j] = 1 when i and j are both members of some alliance (any obligation)
    shares_alliance: np.ndarray  # uint8 (S, S)
    exposure: np.ndarray  # float64 (S, S): exposure[member, target]
    # aggressors, shape (G,)
    aggressor_state: np.ndarray  # int64
    aggressor_cum_weight: np.ndarray  # float64, cumulative, last = 1
    resolve: np.ndarray  # float64
    target_ptr: np.ndarray  # int64 (G + 1,)
    target_state: np.ndarray  # int64
    target_cum_weight: np.ndarray  # float64, cumulative within each aggressor, last = 1
    target_cell_base: np.ndarray  # int64: first cell of each (aggressor, target) entry
    # covering alliances of each (aggressor a, target t) entry (design §8): the alliances that
    # protect t, less a defense alliance that a belongs to (a pact against outside attack) and
    # any alliance with no member other than t and a; CSR over entry index, ascending
    entry_cover_ptr: np.ndarray  # int64 (E + 1,)
    entry_cover_idx: np.ndarray  # int64
    mix_ptr: np.ndarray  # int64 (G + 1,)
    mix_type: np.ndarray  # int64
    mix_cum_weight: np.ndarray  # float64, cumulative within each aggressor, last = 1
    # attack types, shape (K,)
    attack_type_ids: tuple[str, ...]
    severity: np.ndarray  # float64
    attribution_days: np.ndarray  # float64
    ambiguity: np.ndarray  # float64
    # cells, shape (C,)
    cell_aggressor: np.ndarray  # int64: aggressor entry index
    cell_target: np.ndarray  # int64: state index
    cell_attack_type: np.ndarray  # int64: attack type index
    cell_entry: np.ndarray  # int64: (aggressor, target) entry index
    # scenario scalars
    misperception: float
    outcome_noise: float
    mobilization_days: float
    window_days: float
    interoperability_bonus: float
    defection_threshold: float
    conflict_penalty: float
    threat_weight: float
    deterrence: int  # index into DETERRENCE_MODES
    pilot_samples: int
    campaign: CompiledCampaign | None = None  # None: every trial is one v1 crisis

    @property
    def n_states(self) -> int:
        return len(self.state_ids)

    @property
    def n_alliances(self) -> int:
        return len(self.alliance_ids)

    @property
    def n_memberships(self) -> int:
        """Rows of the per-member tallies: one per (alliance, member) of the member CSR."""
        return len(self.member_idx)

    @property
    def n_cells(self) -> int:
        return len(self.cell_target)

    def arrays(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _cumulative(weights: list[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    cum = np.cumsum(w) / w.sum()
    cum[-1] = 1.0
    return cum


def capability_units(capabilities: list[float]) -> np.ndarray:
    """Capabilities as int64 units, 2^52 units for the sum over all states (each at least 1).

    A unit is 2^-52 of the scenario's total capability, so a share computed from units differs
    from the exact share by less than 10^-15 of the total, and any sum of units stays < 2^53.
    """
    cap = np.asarray(capabilities, dtype=np.float64)
    return np.maximum(np.rint(cap / cap.sum() * 2.0**52), 1.0).astype(np.int64)


def shared_alliance_matrix(n_states: int, member_ptr: np.ndarray,
                           member_idx: np.ndarray) -> np.ndarray:
    """uint8 (S, S): 1 where states i and j are both members of some alliance (i = j: a member
    of any alliance), from the alliances' members in CSR form (``member_ptr``, ``member_idx``).

    The same matrix as ``(M @ M.T) > 0`` for the 0/1 membership matrix ``M`` (S, A), without
    its S² × A integer products (477 s at 5,000 states and 20,000 alliances): each alliance's
    members become a row of bits, and row i of the result is the OR of the rows of i's
    alliances — S/8 bytes per membership, under a second at 5,000 states and 20,000 alliances.
    """
    n_alliances = len(member_ptr) - 1
    n_bytes = (n_states + 7) // 8
    alliance_of = np.repeat(np.arange(n_alliances, dtype=np.int64), np.diff(member_ptr))
    # bit (7 − s mod 8) of byte s // 8 of row A: state s is a member of A (np.packbits' order)
    members_bits = np.zeros((n_alliances, n_bytes), dtype=np.uint8)
    np.bitwise_or.at(members_bits, (alliance_of, member_idx >> 3),
                     (128 >> (member_idx & 7)).astype(np.uint8))
    # the alliances of each state, grouped by state
    by_state = np.argsort(member_idx, kind="stable")
    alliances_of = alliance_of[by_state]
    state_ptr = np.zeros(n_states + 1, dtype=np.int64)
    state_ptr[1:] = np.cumsum(np.bincount(member_idx, minlength=n_states))
    shared_bits = np.zeros((n_states, n_bytes), dtype=np.uint8)
    for i in np.flatnonzero(np.diff(state_ptr)):
        rows = alliances_of[state_ptr[i]:state_ptr[i + 1]]
        np.bitwise_or.reduce(members_bits[rows], axis=0, out=shared_bits[i])
    return np.unpackbits(shared_bits, axis=1, count=n_states)


def compile_scenario(s: Scenario) -> CompiledScenario:
    state_ids = tuple(st.id for st in s.states)
    sindex = {sid: i for i, sid in enumerate(state_ids)}
    n_states = len(state_ids)
    alliance_ids = tuple(al.id for al in s.alliances)
    n_alliances = len(alliance_ids)

    membership = np.zeros((n_states, n_alliances), dtype=np.uint8)
    veto = np.zeros((n_states, n_alliances), dtype=np.uint8)
    member_ptr = np.zeros(n_alliances + 1, dtype=np.int64)
    member_list: list[int] = []
    for a, al in enumerate(s.alliances):
        members = sorted(sindex[m] for m in al.members)
        membership[members, a] = 1
        veto[[sindex[v] for v in al.veto_holders], a] = 1
        member_list.extend(members)
        member_ptr[a + 1] = len(member_list)
    member_idx = np.asarray(member_list, dtype=np.int64)

    # a defense alliance protects its protected members (all members unless `protected` is
    # set), a collective-security alliance all its members; alliances are visited in order, so
    # each state's list is ascending
    obligation = [OBLIGATIONS.index(al.obligation) for al in s.alliances]
    covering: list[list[int]] = [[] for _ in range(n_states)]
    for a, al in enumerate(s.alliances):
        if obligation[a] == OBLIGATION_DEFENSE:
            protected = al.members if al.protected is None else dict.fromkeys(al.protected)
        elif obligation[a] == OBLIGATION_COLLECTIVE_SECURITY:
            protected = al.members
        else:
            continue
        for p in protected:
            covering[sindex[p]].append(a)
    cover_ptr = np.zeros(n_states + 1, dtype=np.int64)
    cover_ptr[1:] = np.cumsum([len(c) for c in covering])
    cover_idx = [a for c in covering for a in c]

    shares_alliance = shared_alliance_matrix(n_states, member_ptr, member_idx)

    if s.exposure.from_ is not None:
        from .similarity import exposure_from_arrays

        exposure = exposure_from_arrays(
            membership, [OBLIGATIONS.index(al.obligation) for al in s.alliances],
            [st.capability for st in s.states], s.exposure.from_)
    else:
        exposure = np.full((n_states, n_states), s.exposure.default, dtype=np.float64)
    for key, value in s.exposure.pairs.items():
        member, _, target = key.partition(".")
        exposure[sindex[member], sindex[target]] = float(value)

    type_ids = tuple(s.attack_types)
    tindex = {k: i for i, k in enumerate(type_ids)}

    target_ptr = [0]
    target_state: list[int] = []
    target_cum: list[float] = []
    target_cell_base: list[int] = []
    mix_ptr = [0]
    mix_type: list[int] = []
    mix_cum: list[float] = []
    cell_aggressor: list[int] = []
    cell_target: list[int] = []
    cell_type: list[int] = []
    cell_entry: list[int] = []
    entry_cover_ptr = [0]
    entry_cover_idx: list[int] = []
    sizes = np.diff(member_ptr)
    for j, ag in enumerate(s.aggressors):
        a = sindex[ag.state]
        types = [tindex[k] for k in ag.attack_mix]
        mix_type.extend(types)
        mix_cum.extend(_cumulative(list(ag.attack_mix.values())))
        mix_ptr.append(len(mix_type))
        target_cum.extend(_cumulative(list(ag.targets.values())))
        for t in ag.targets:
            entry = len(target_state)
            target_state.append(sindex[t])
            target_cell_base.append(len(cell_target))
            ti = sindex[t]
            for al in covering[ti]:
                aggressor_member = int(membership[a, al])
                if obligation[al] == OBLIGATION_DEFENSE and aggressor_member:
                    continue  # a defense pact does not cover a member against a member
                if sizes[al] - 1 - aggressor_member < 1 or a == ti:
                    continue  # no member other than the target and the aggressor
                entry_cover_idx.append(al)
            entry_cover_ptr.append(len(entry_cover_idx))
            for k in types:
                cell_entry.append(entry)
                cell_aggressor.append(j)
                cell_target.append(sindex[t])
                cell_type.append(k)
        target_ptr.append(len(target_state))

    def i64(x):
        return np.asarray(x, dtype=np.int64)

    def f64(x):
        return np.asarray(x, dtype=np.float64)

    sc = s.scenario
    campaign = None
    if s.campaign is not None:
        campaign = _compile_campaign(s, sindex, member_ptr, member_idx)
    return CompiledScenario(
        state_ids=state_ids,
        capability=f64([st.capability for st in s.states]),
        capability_units=capability_units([st.capability for st in s.states]),
        commitment=f64([st.commitment for st in s.states]),
        stability=f64([st.stability for st in s.states]),
        free_riding=f64([st.free_riding for st in s.states]),
        alliance_ids=alliance_ids,
        membership=membership,
        member_ptr=member_ptr,
        member_idx=i64(member_idx),
        obligation=i64(obligation),
        rule=i64([DECISION_RULES.index(al.decision_rule) for al in s.alliances]),
        quota=f64([al.quota for al in s.alliances]),
        veto=veto,
        round_days=f64([al.round_days for al in s.alliances]),
        max_rounds=i64([al.max_rounds for al in s.alliances]),
        integration=f64([al.integration for al in s.alliances]),
        bindingness=f64([al.bindingness for al in s.alliances]),
        intel_sharing=f64([al.intel_sharing for al in s.alliances]),
        cover_ptr=cover_ptr,
        cover_idx=i64(cover_idx),
        shares_alliance=shares_alliance,
        exposure=exposure,
        aggressor_state=i64([sindex[ag.state] for ag in s.aggressors]),
        aggressor_cum_weight=_cumulative([ag.weight for ag in s.aggressors]),
        resolve=f64([ag.resolve for ag in s.aggressors]),
        target_ptr=i64(target_ptr),
        target_state=i64(target_state),
        target_cum_weight=f64(target_cum),
        target_cell_base=i64(target_cell_base),
        entry_cover_ptr=i64(entry_cover_ptr),
        entry_cover_idx=i64(entry_cover_idx),
        mix_ptr=i64(mix_ptr),
        mix_type=i64(mix_type),
        mix_cum_weight=f64(mix_cum),
        attack_type_ids=type_ids,
        severity=f64([s.attack_types[k].severity for k in type_ids]),
        attribution_days=f64([s.attack_types[k].attribution_days for k in type_ids]),
        ambiguity=f64([s.attack_types[k].ambiguity for k in type_ids]),
        cell_aggressor=i64(cell_aggressor),
        cell_target=i64(cell_target),
        cell_attack_type=i64(cell_type),
        cell_entry=i64(cell_entry),
        misperception=float(sc.misperception),
        outcome_noise=float(sc.outcome_noise),
        mobilization_days=float(sc.mobilization_days),
        window_days=float(sc.window_days),
        interoperability_bonus=float(sc.interoperability_bonus),
        defection_threshold=float(sc.defection_threshold),
        conflict_penalty=float(sc.conflict_penalty),
        threat_weight=float(sc.threat_weight),
        deterrence=DETERRENCE_MODES.index(sc.deterrence),
        pilot_samples=int(sc.pilot_samples),
        campaign=campaign,
    )


def _compile_campaign(s: Scenario, sindex: dict[str, int], member_ptr: np.ndarray,
                      member_idx: np.ndarray) -> CompiledCampaign:
    """The rosters (members and candidates) and the knobs of ``[campaign]``."""
    cp = s.campaign
    ptr = [0]
    idx: list[int] = []
    initial: list[int] = []
    protected: list[int] = []
    row: list[int] = []
    n_candidates = 0
    n_memberships = len(member_idx)
    for a, al in enumerate(s.alliances):
        member_rows = {int(member_idx[r]): r for r in range(member_ptr[a], member_ptr[a + 1])}
        candidate_rows = {}
        for state in sorted(sindex[c] for c in al.candidates):
            candidate_rows[state] = n_memberships + n_candidates
            n_candidates += 1
        shielded = (None if al.protected is None
                    else {sindex[p] for p in al.protected})
        for state in sorted({**member_rows, **candidate_rows}):
            idx.append(state)
            is_member = state in member_rows
            initial.append(1 if is_member else 0)
            protected.append(1 if (shielded is None or state in shielded) else 0)
            row.append(member_rows[state] if is_member else candidate_rows[state])
        ptr.append(len(idx))
    return CompiledCampaign(
        steps=int(cp.steps), crisis_rate=float(cp.crisis_rate),
        reputation_learning=float(cp.reputation_learning),
        trust_weight=float(cp.trust_weight), resolve_learning=float(cp.resolve_learning),
        threat_shock=float(cp.threat_shock), threat_decay=float(cp.threat_decay),
        exit_threshold=float(cp.exit_threshold), join_threshold=float(cp.join_threshold),
        roster_ptr=np.asarray(ptr, dtype=np.int64), roster_idx=np.asarray(idx, dtype=np.int64),
        roster_initial=np.asarray(initial, dtype=np.uint8),
        roster_protected=np.asarray(protected, dtype=np.uint8),
        roster_row=np.asarray(row, dtype=np.int64), n_candidates=n_candidates)
