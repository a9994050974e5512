"""The one path every experiment takes from a scenario to its overall summary.

Sweeps, sensitivity and calibration evaluate many variants of one scenario with the same seed and
trial range (common random numbers): compile → simulate → the ``overall`` row of the summary.
"""

from __future__ import annotations

from ..core.simulate import DEFAULT_BLOCK_SIZE, simulate
from ..core.tables import summary_table
from ..model.compile import CompiledScenario, compile_scenario
from ..model.config import Scenario


def overall_summary(scenario: Scenario, *, seed: int, trials: int,
                    block_size: int = DEFAULT_BLOCK_SIZE,
                    compiled: CompiledScenario | None = None) -> dict:
    """The ``overall`` summary row of trials ``[0, trials)`` (``scope`` and ``key`` dropped);
    ``compiled`` is the scenario compiled, when the caller has it already."""
    if compiled is None:
        compiled = compile_scenario(scenario)
    tallies, _ = simulate(compiled, seed, 0, trials, block_size=block_size)
    row = summary_table(compiled, tallies).row(0, named=True)
    row.pop("scope")
    row.pop("key")
    return row
