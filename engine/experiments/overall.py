"""The one path every experiment takes from a scenario to its overall summary.

Sweeps, sensitivity and calibration evaluate many variants of one scenario with the same seed and
trial range (common random numbers): compile → simulate → the ``overall`` row of the summary.

A campaign scenario (design §7) runs its trajectories; its row holds the v1 measures over every
crisis of every period and the campaign measures: the last period's rates and means
(:data:`FINAL_MEASURES` as ``final_<name>``, e.g. ``final_deterrence_success_rate``), each
alliance's survival to the end (``<ALLIANCE>_survival_rate``) and its active members then
(``<ALLIANCE>_members_mean``), and the mean number of successful aggressions per trajectory
(``successes_mean``).
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
    if compiled.campaign is not None:
        return _campaign_row(compiled, seed, trials, block_size)
    tallies, _ = simulate(compiled, seed, 0, trials, block_size=block_size)
    row = summary_table(compiled, tallies).row(0, named=True)
    row.pop("scope")
    row.pop("key")
    return row


# the last period's measures a campaign row carries, as final_<name>
FINAL_MEASURES = ("crises", "attacked", "deterrence_success_rate", "aggression_success_rate",
                  "breakdown_rate", "invocation_rate", "honor_rate", "repelled_rate",
                  "reputation_mean", "resolve_multiplier_mean", "threat_mean")


def _campaign_row(compiled: CompiledScenario, seed: int, trials: int, block_size: int) -> dict:
    """The overall row of a campaign (module docstring)."""
    from ..core.simulate import simulate_campaign
    from ..core.tables import alliance_periods_table, periods_table

    tallies = simulate_campaign(compiled, seed, 0, trials, block_size=block_size)
    row = summary_table(compiled, tallies).row(0, named=True)
    row.pop("scope")
    row.pop("key")
    last = periods_table(compiled, tallies, trials).row(-1, named=True)
    for name in FINAL_MEASURES:
        row[f"final_{name}"] = last.get(name)
    alliances = alliance_periods_table(compiled, tallies, trials)
    final = alliances.filter(alliances["period"] == compiled.campaign.steps - 1)
    for alliance, survival, members in final.select(
            "alliance", "survival", "active_members_mean").iter_rows():
        row[f"{alliance}_survival_rate"] = survival
        row[f"{alliance}_members_mean"] = members
    steps = tallies.successes.shape[0]
    row["successes_mean"] = float((tallies.successes * range(steps)).sum() / trials)
    return row
