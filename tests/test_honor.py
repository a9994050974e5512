"""The honor rate (allies that backed and delivered / allies pledged) against its closed form."""

from __future__ import annotations

from conftest import check_mean, members_world, run

from kernels.layout import C_ALLIES_SUM, C_CONSULTED, C_HONORED_SUM


def test_honor_rate_unanimity_closed_form():
    # 4 allies besides the target, commitment p, R rounds, stability s: a consulted crisis
    # honors H = D · Binomial(4, s) commitments, D ~ Bernoulli(P_dec), P_dec = (1 − (1 − p)^R)^4.
    p, rounds, s, n_allies = 0.6, 3, 0.8, 4
    data = members_world([p] * n_allies, max_rounds=rounds,
                         state_extra={f"M{i}": {"stability": s} for i in range(1, 5)})
    tallies, _ = run(data, 400_000, seed=77)
    cells = tallies.cells[0]
    n = int(cells[C_CONSULTED])
    assert cells[C_ALLIES_SUM] == n_allies * n  # every consulted crisis pledges all four allies
    p_dec = (1 - (1 - p) ** rounds) ** n_allies
    mean = p_dec * n_allies * s
    second = p_dec * (n_allies * s * (1 - s) + (n_allies * s) ** 2)
    # 4.5 σ of the mean of H: two-sided false-failure rate ≈ 7e-6 (see conftest.Z)
    check_mean(int(cells[C_HONORED_SUM]), n, mean, second - mean**2, what="honored per crisis")


def test_no_alliance_means_no_pledged_allies():
    data = members_world([0.9, 0.9])
    data["aggressors"][0]["targets"] = {"M1": 1.0}
    data["alliances"] = []
    data["states"][1]["commitment"] = 0.9
    tallies, _ = run(data, 20_000)
    assert tallies.cells[0, C_ALLIES_SUM] == 0 and tallies.cells[0, C_HONORED_SUM] == 0
