"""The trial kernel on large alliances and off its fast path, against the plain-Python loop.

The kernel consults an alliance without free riding by thresholds (one pass per member: the
round in which each member would back follows from its draw and the thresholds
1 − Π(1 − p_s), computed once per member and round) and sizes its batches by the largest
alliance (``kernels.trial.batch_size``).  Both must leave every tally as the round-by-round
oracle has it, draw for draw.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle_scenarios import compiled, describe_difference, make_scenario

from engine.core.simulate import simulate
from engine.oracles.python_loop import simulate_python
from kernels.layout import C_DEADLOCK, C_INVOKED, C_VETO, N_COUNTERS
from kernels.trial import BATCH, MIN_BATCH, batch_size

NAME = "kernel scaling test"


def large_alliance(n: int, rule: str = "unanimity", **alliance) -> dict:
    """One alliance of ``n`` members and one aggressor with three targets in it (commitments
    from 0.8 under unanimity, so that some trials decide, else from 0.3)."""
    rng = np.random.default_rng(n)
    low = 0.8 if rule == "unanimity" else 0.3
    states = {f"M{i:04d}": {"capability": float(c), "commitment": float(p)}
              for i, (c, p) in enumerate(zip(rng.uniform(0.1, 1.0, n) / n,
                                             rng.uniform(low, 1.0, n), strict=True))}
    states["AGG"] = {"capability": 0.5, "commitment": 0.2}
    members = [s for s in states if s != "AGG"]
    alliances = [{"id": "BIG", "members": members, "decision_rule": rule, "max_rounds": 4,
                  **alliance}]
    aggressors = [{"state": "AGG", "resolve": 8.0,
                   "targets": {members[0]: 1.0, members[n // 2]: 1.0, members[-1]: 2.0},
                   "attack_mix": {"conventional": 1.0}}]
    return make_scenario(states, alliances, aggressors, name=NAME)


def assert_same(c, *, seed: int, start: int, n: int, block_sizes=(4096, 97)):
    python = simulate_python(c, seed, start, start + n)
    for block_size in block_sizes:
        kernel, _ = simulate(c, seed, start, start + n, block_size=block_size)
        assert kernel.equals(python), describe_difference(kernel, python, "python")
    return python


def test_batch_size_bounds_the_member_trial_scratch():
    assert batch_size(4096, 8) == BATCH
    assert batch_size(100, 8) == 100  # never more than the block
    assert batch_size(4096, 300) * 300 <= 1 << 18 < (batch_size(4096, 300) + 1) * 300
    assert batch_size(4096, 100_000) == MIN_BATCH


@pytest.mark.parametrize("rule, extra", [
    ("unanimity", {}),
    ("majority", {}),
    ("veto", {"quota": 0.4, "veto_holders": ["M0000", "M0007", "M0123"]}),
])
def test_a_large_alliance_agrees_with_the_oracle(rule, extra):
    """300 members (batches of 873 trials, fewer than BATCH): unanimity decided by the last
    backer, majority and a veto rule by the rounds' counts; any block size."""
    c = compiled(large_alliance(300, rule, **extra))
    assert batch_size(4096, 300) < BATCH
    tallies = assert_same(c, seed=11, start=40, n=400)
    cells = tallies.cells
    assert cells[:, C_INVOKED].sum() > 0
    if rule != "majority":  # some undecided trials too
        assert cells[:, C_DEADLOCK].sum() + cells[:, C_VETO].sum() > 0


def test_thresholds_that_are_not_monotone_fall_back_to_the_round_loop():
    """A backing chance above 1 (impossible from a validated scenario; forced here into the
    compiled arrays) makes 1 − Π(1 − p_s) oscillate: the kernel must notice and consult round
    by round, as the oracle does."""
    data = large_alliance(12, "majority")
    c = compiled(data)
    c.commitment[:] = np.where(c.commitment > 0.5, 1.7, c.commitment)
    tallies = assert_same(c, seed=3, start=0, n=2000)
    assert tallies.cells[:, C_INVOKED].sum() > 0
    # the same world with validated chances takes the threshold path and differs
    kernel, _ = simulate(compiled(data), 3, 0, 2000)
    assert not kernel.equals(tallies)


def test_work_counters_do_not_depend_on_block_size_or_threads():
    import numba

    c = compiled(large_alliance(300))
    runs = []
    for block_size, threads in ((4096, None), (97, 1)):
        before = numba.get_num_threads()
        if threads:
            numba.set_num_threads(threads)
        try:
            counters = np.zeros(N_COUNTERS, np.int64)
            simulate(c, 5, 0, 3000, block_size=block_size, counters=counters)
        finally:
            numba.set_num_threads(before)
        runs.append(counters)
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].min() > 0


def test_the_tabulated_normal_cdf_answers_as_erfc_does():
    """Step 8's ``u < Φ(z)`` decided from a table of Φ (erfc only near the boundary) gives the
    answer of ``u < normal_cdf(z)`` for every pair tried: z dense and random over and beyond the
    grid (grid points and their neighbouring doubles, ±inf, NaN), u random, at Φ(z) and at the
    doubles next to it, and at the table's values and margins."""
    from numba import njit

    from kernels.deterrence import (
        PHI_BINS,
        PHI_LOW,
        PHI_MARGIN,
        PHI_STEP,
        below_normal_cdf,
        normal_cdf,
        phi_table,
    )

    table = phi_table()

    @njit
    def mismatches(zs, us, table):
        bad = 0
        for z in zs:
            phi = normal_cdf(z)
            for u in us:
                if below_normal_cdf(u, z, table) != (u < phi):
                    bad += 1
            for u in (phi, np.nextafter(phi, 0.0), np.nextafter(phi, 1.0)):
                if 0.0 <= u < 1.0 and below_normal_cdf(u, z, table) != (u < phi):
                    bad += 1
        return bad

    rng = np.random.default_rng(16)
    grid = PHI_LOW + np.arange(PHI_BINS + 1) * PHI_STEP
    zs = np.concatenate([grid, np.nextafter(grid, -np.inf), np.nextafter(grid, np.inf),
                         rng.uniform(-10.0, 10.0, 200_000), rng.normal(0.0, 2.0, 200_000),
                         [np.inf, -np.inf, np.nan, 0.0, -0.0]])
    us = np.concatenate([rng.random(8), table[::512] - PHI_MARGIN, table[::512] + PHI_MARGIN])
    us = us[(us >= 0.0) & (us < 1.0)]
    assert mismatches(zs, us, table) == 0
    # and the table decides nearly always: erfc is needed for a sliver of uniforms only
    assert np.max(np.diff(table)) < 0.4 * PHI_STEP + 2 * PHI_MARGIN
