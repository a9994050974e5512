"""Per-cell constants of the consultation, computed once per run outside the trial loop.

For every cell (aggressor, target, attack type) and every covering alliance of its target — a
*consultation* ``cc`` — the members ``M_A`` (aggressor excluded, ascending state order) become
*entries* with the parts of ``p_i`` that do not change from trial to trial.
"""


import numpy as np
from numba import njit

from .args import Consultations, Entries
from .consultation import backers_needed
from .layout import RULE_VETO


@njit(cache=True)
def consultation_tables(
    capability_units, commitment, free_riding, member_ptr, member_idx, rule, quota, veto,
    bindingness, entry_cover_ptr, entry_cover_idx, shares_alliance, exposure, aggressor_state,
    cell_aggressor, cell_target, cell_attack_type, cell_entry, severity, ambiguity,
    conflict_penalty, threat_weight,
):
    """Flatten every consultation of every cell into ``(Consultations, Entries)``
    (:mod:`kernels.args`).

    * ``Consultations.ptr`` int64 (C + 1,): consultations of cell ``c`` are
      ``ptr[c] … ptr[c + 1]``: the covering alliances of the cell's (aggressor, target) entry
      ``cell_entry[c]`` (``entry_cover_idx``, ascending; design §8);
    * per consultation (n_cc,): ``alliance`` int64, ``entry_ptr`` int64 (n_cc + 1,), ``need``
      int64 (backers the rule needs), ``units_members`` int64 (capability units of ``M_A``),
      ``free_riding`` uint8 (some member other than the target free-rides);
    * ``max_members`` and ``max_cover`` (int, ≥ 1): the most entries of one consultation and the
      most consultations of one cell (the kernel's scratch sizes);
    * per entry (n_entries,): ``Entries.state`` int64, ``units`` int64 (capability units),
      ``free_riding`` float64, ``base`` float64 =
      ``((commitment · bindingness) · (1 − ambiguity)) · conflict``, ``theta`` float64 =
      ``min(1, exposure · severity)`` (θ before round 1), ``static`` float64 =
      ``base · ((1 − w) + w · θ)`` (``p`` before free riding while θ does not move), and
      ``veto`` uint8 (a veto holder under a ``veto`` rule), ``member`` int64 (the entry's row
      of the per-member tallies: its index ``q`` in ``member_idx``).
    """
    n_cells = cell_target.shape[0]
    cc_ptr = np.zeros(n_cells + 1, dtype=np.int64)
    n_cc = 0
    n_entries = 0
    max_members = 1
    max_cover = 1
    for cell in range(n_cells):
        a = aggressor_state[cell_aggressor[cell]]
        ti = cell_entry[cell]
        max_cover = max(max_cover, entry_cover_ptr[ti + 1] - entry_cover_ptr[ti])
        for c in range(entry_cover_ptr[ti], entry_cover_ptr[ti + 1]):
            al = entry_cover_idx[c]
            n_cc += 1
            m = 0
            for q in range(member_ptr[al], member_ptr[al + 1]):
                if member_idx[q] != a:
                    m += 1
            n_entries += m
            max_members = max(max_members, m)
        cc_ptr[cell + 1] = n_cc

    cc_alliance = np.zeros(n_cc, dtype=np.int64)
    cc_entry_ptr = np.zeros(n_cc + 1, dtype=np.int64)
    cc_need = np.zeros(n_cc, dtype=np.int64)
    cc_units_members = np.zeros(n_cc, dtype=np.int64)
    cc_free_riding = np.zeros(n_cc, dtype=np.uint8)
    e_state = np.zeros(n_entries, dtype=np.int64)
    e_units = np.zeros(n_entries, dtype=np.int64)
    e_free_riding = np.zeros(n_entries, dtype=np.float64)
    e_base = np.zeros(n_entries, dtype=np.float64)
    e_theta = np.zeros(n_entries, dtype=np.float64)
    e_static = np.zeros(n_entries, dtype=np.float64)
    e_veto = np.zeros(n_entries, dtype=np.uint8)
    e_member = np.zeros(n_entries, dtype=np.int64)
    w = threat_weight
    cc = 0
    e = 0
    for cell in range(n_cells):
        t = cell_target[cell]
        a = aggressor_state[cell_aggressor[cell]]
        k = cell_attack_type[cell]
        ti = cell_entry[cell]
        for c in range(entry_cover_ptr[ti], entry_cover_ptr[ti + 1]):
            al = entry_cover_idx[c]
            cc_alliance[cc] = al
            m = 0
            units_members = 0
            for q in range(member_ptr[al], member_ptr[al + 1]):
                i = member_idx[q]
                if i == a:
                    continue
                m += 1
                units_members += capability_units[i]
                conflict = 1.0 - conflict_penalty if shares_alliance[i, a] != 0 else 1.0
                base = ((commitment[i] * bindingness[al]) * (1.0 - ambiguity[k])) * conflict
                theta = min(1.0, exposure[i, t] * severity[k])
                e_state[e] = i
                e_member[e] = q
                e_units[e] = capability_units[i]
                e_free_riding[e] = free_riding[i]
                e_base[e] = base
                e_theta[e] = theta
                e_static[e] = base * ((1.0 - w) + w * theta)
                if rule[al] == RULE_VETO and veto[i, al] != 0:
                    e_veto[e] = 1
                if i != t and free_riding[i] > 0.0:
                    cc_free_riding[cc] = 1
                e += 1
            cc_entry_ptr[cc + 1] = e
            cc_need[cc] = backers_needed(rule[al], quota[al], m)
            cc_units_members[cc] = units_members
            cc += 1
    return (
        Consultations(cc_ptr, cc_alliance, cc_entry_ptr, cc_need, cc_units_members,
                      cc_free_riding, max_members, max_cover),
        Entries(e_state, e_units, e_free_riding, e_base, e_theta, e_static, e_veto, e_member),
    )
