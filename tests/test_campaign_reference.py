"""The NumPy campaign reference (``engine.oracles.campaign_reference``) against the plain-Python
campaign loop, draw for draw on every tally array (issue 15, item 2)."""

from __future__ import annotations

import pytest

from engine.core.simulate import deterrence_tables
from engine.oracles.campaign_loop import simulate_campaign_python
from engine.oracles.campaign_reference import simulate_campaign_reference
from kernels.layout import P_DISSOLVED, P_EXITS, P_JOINS
from tests.oracle_scenarios import all_knobs, compiled, expected_response
from tests.test_campaign_kernel import CASES, KNOBS, _same, _with, _with_candidates

MORE_CASES = {
    "quiet_periods": lambda: _with(_with_candidates(all_knobs(name="quiet")),
                                   **{**KNOBS, "crisis_rate": 0.4, "steps": 8}),
    "candidates_expected": lambda: expected_response(
        _with(_with_candidates(all_knobs(name="cand_expected")), **KNOBS)),
}


@pytest.mark.parametrize("case", sorted(CASES) + sorted(MORE_CASES))
def test_reference_agrees_with_the_python_loop_draw_for_draw(case):
    c = compiled({**CASES, **MORE_CASES}[case]())
    tables = deterrence_tables(c, 23)
    reference = simulate_campaign_reference(c, 23, 50, 250, deterrence=tables)
    loop = simulate_campaign_python(c, 23, 50, 250, deterrence=tables)
    _same(reference, loop)


def test_the_expected_case_leaves_the_pristine_state():
    """The expected-response comparison exercises the reputation-weighted response only if
    reputations move and members come and go there."""
    c = compiled(MORE_CASES["candidates_expected"]())
    assert c.campaign.steps > 1 and c.campaign.reputation_learning > 0.0
    got = simulate_campaign_reference(c, 23, 0, 200, deterrence=deterrence_tables(c, 23))
    for column in (P_EXITS, P_JOINS, P_DISSOLVED):
        assert got.periods[:, column].sum() > 0, column
