"""Alliance-portfolio similarity: valued ties, S-score, tau-b, weighted kappa, exposure, CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import aggressor, alliance, scenario, state
from scipy.stats import kendalltau

from engine.cli.similarity import similarity_command
from engine.model.compile import compile_scenario
from engine.model.config import load_scenario, scenario_from_dict
from engine.model.similarity import (
    DEFAULT_MEASURES,
    contingency,
    exposure_from_arrays,
    exposure_from_similarity,
    kappa,
    s_score,
    similarity_matrix,
    similarity_table,
    similarity_to_exposure,
    tau_b,
    tie_matrix,
    ties_from_membership,
)
from kernels.layout import OBLIGATIONS

ROOT = Path(__file__).resolve().parents[1]
NATO = ROOT / "configs" / "nato-baltic-2024.toml"
LEAGUE = ROOT / "configs" / "league-abyssinia-1935.toml"


# ---- a hand-computed world ------------------------------------------------------------------
# States A, B, C, D (capabilities 1, 2, 3, 4) and an aggressor-only state G; alliances
#   X defense {A, B, C}, Y nonaggression {C, D}, Z consultation {A, B} (weaker than X: ignored),
#   W consultation {B, D}.
# Ties over the first four states (G has no alliance, tie 0 with everyone but itself):
#   A: 3 3 3 0 0   B: 3 3 3 1 0   C: 3 3 3 2 0   D: 0 1 2 3 0   G: 0 0 0 0 3
def small_world():
    states = [state("A", 1.0), state("B", 2.0), state("C", 3.0), state("D", 4.0),
              state("G", 5.0, 0.0)]
    alliances = [
        alliance("X", ["A", "B", "C"], obligation="defense"),
        alliance("Y", ["C", "D"], obligation="nonaggression"),
        alliance("Z", ["A", "B"], obligation="consultation"),
        alliance("W", ["B", "D"], obligation="consultation"),
    ]
    aggressors = [aggressor("G", ["A"])]
    return compile_scenario(scenario_from_dict(scenario(states, alliances, aggressors)))


HAND_TIES = np.array([[3, 3, 3, 0], [3, 3, 3, 1], [3, 3, 3, 2], [0, 1, 2, 3]])


def test_tie_matrix_hand():
    c = small_world()
    expected = np.zeros((5, 5), dtype=np.int64)
    expected[:4, :4] = HAND_TIES
    expected[4, 4] = 3
    t = tie_matrix(c)
    assert t.dtype.kind == "i"
    np.testing.assert_array_equal(t, expected)


def test_tie_strength_per_obligation():
    # one pair, one alliance of each obligation in turn; then all at once → strongest
    membership = np.array([[1], [1], [0]], dtype=np.uint8)
    for obligation, tie in {"defense": 3, "collective_security": 3, "neutrality": 2,
                            "nonaggression": 2, "consultation": 1}.items():
        t = ties_from_membership(membership, [OBLIGATIONS.index(obligation)])
        np.testing.assert_array_equal(t, [[3, tie, 0], [tie, 3, 0], [0, 0, 3]])
    every = np.ones((2, len(OBLIGATIONS)), dtype=np.uint8)
    t = ties_from_membership(every, [OBLIGATIONS.index(o) for o in reversed(OBLIGATIONS)])
    np.testing.assert_array_equal(t, [[3, 3], [3, 3]])
    # no alliances at all: only the self-ties
    np.testing.assert_array_equal(
        ties_from_membership(np.zeros((3, 0), dtype=np.uint8), []), 3 * np.eye(3))


def test_s_score_hand():
    s = s_score(HAND_TIES)  # n = 4 states, denominator 3·4 = 12
    expected = {(0, 1): 5 / 6, (0, 2): 2 / 3, (1, 2): 5 / 6,
                (0, 3): -1 / 2, (1, 3): -1 / 3, (2, 3): -1 / 6}
    for (i, j), v in expected.items():
        assert s[i, j] == pytest.approx(v, abs=1e-12)
        assert s[j, i] == s[i, j]
    np.testing.assert_array_equal(np.diag(s), 1.0)


def test_s_weighted_hand():
    s = s_score(HAND_TIES, weights=[1.0, 2.0, 3.0, 4.0])  # Σw = 10, denominator 30
    assert s[0, 1] == pytest.approx(1 - 2 * 4 / 30)  # differ at D only: w_D·1 = 4
    assert s[0, 3] == pytest.approx(1 - 2 * 22 / 30)  # 3·1 + 2·2 + 1·3 + 3·4 = 22
    assert s[2, 3] == pytest.approx(1 - 2 * 14 / 30)  # 3·1 + 2·2 + 1·3 + 1·4 = 14
    # the weights' scale does not matter
    np.testing.assert_allclose(s, s_score(HAND_TIES, weights=[10.0, 20.0, 30.0, 40.0]),
                               atol=1e-14)


def test_scenario_measures_use_capability_weights():
    c = small_world()
    t = tie_matrix(c)
    np.testing.assert_array_equal(similarity_matrix(c, "s"), s_score(t))
    np.testing.assert_array_equal(similarity_matrix(c, "s_score"), s_score(t))
    np.testing.assert_array_equal(similarity_matrix(c, "s_weighted"),
                                  s_score(t, [1.0, 2.0, 3.0, 4.0, 5.0]))
    with pytest.raises(ValueError, match="unknown similarity measure"):
        similarity_matrix(c, "pearson")


def test_tau_b_hand_and_scipy():
    tau = tau_b(HAND_TIES)
    assert tau[0, 1] == pytest.approx(1.0)  # 3 concordant pairs, 3 ties in each row
    assert tau[0, 3] == pytest.approx(-1 / math.sqrt(2))  # −3 / sqrt(3 · 6)
    for i in range(4):
        for j in range(4):
            ref = kendalltau(HAND_TIES[i], HAND_TIES[j], variant="b").statistic
            assert tau[i, j] == pytest.approx(ref, abs=1e-12), (i, j)


def test_kappa_hand():
    kq = kappa(HAND_TIES)
    kl = kappa(HAND_TIES, disagreement="linear")
    # A vs B: observed (1/9)/4 = 1/36, expected 5/18 (quadratic); 1/12 and 1/3 (linear)
    assert kq[0, 1] == pytest.approx(9 / 10)
    assert kl[0, 1] == pytest.approx(3 / 4)
    # A vs D: observed 23/36, expected 14/36 (quadratic)
    assert kq[0, 3] == pytest.approx(-9 / 14)
    np.testing.assert_allclose(np.diag(kq), 1.0)
    with pytest.raises(ValueError, match="quadratic"):
        kappa(HAND_TIES, disagreement="cubic")


def test_contingency_counts():
    table = contingency(HAND_TIES)
    assert table.shape == (4, 4, 4, 4)
    np.testing.assert_array_equal(table.sum(axis=(0, 1)), 4.0)
    # A vs D: (3,0), (3,1), (3,2), (0,3)
    expected = np.zeros((4, 4))
    expected[3, 0] = expected[3, 1] = expected[3, 2] = expected[0, 3] = 1
    np.testing.assert_array_equal(table[:, :, 0, 3], expected)


def test_two_unallied_states_are_opposite():
    t = ties_from_membership(np.zeros((2, 0), dtype=np.uint8), [])  # [[3, 0], [0, 3]]
    for m in (s_score(t), tau_b(t), kappa(t), kappa(t, disagreement="linear")):
        assert m[0, 1] == pytest.approx(-1.0)


def test_kappa_unbalanced_opposites():
    # observed disagreement 1, expected 4/9 + 1/9 = 5/9 → κ = 1 − 9/5 = −4/5
    k = kappa(np.array([[3, 3, 0], [0, 0, 3]]))
    assert k[0, 1] == pytest.approx(-4 / 5)


@pytest.mark.parametrize("seed", range(4))
def test_quadratic_kappa_is_concordance_correlation(seed):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 4, (6, 9))
    k = kappa(t)
    for i in range(6):
        for j in range(6):
            x, y = t[i].astype(float), t[j].astype(float)
            cov = np.mean((x - x.mean()) * (y - y.mean()))
            denom = x.var() + y.var() + (x.mean() - y.mean()) ** 2
            if denom == 0:
                assert np.isnan(k[i, j])
            else:
                assert k[i, j] == pytest.approx(2 * cov / denom, abs=1e-12)


def test_constant_rows_are_nan():
    # everyone in one defense pact: every row is constant 3
    t = ties_from_membership(np.ones((4, 1), dtype=np.uint8), [0])
    assert np.all(t == 3)
    assert np.all(np.isnan(tau_b(t)))
    assert np.all(np.isnan(kappa(t)))
    np.testing.assert_array_equal(s_score(t), 1.0)
    # one constant row against a non-constant one: tau-b undefined, kappa defined
    rows = np.array([[3, 3, 3], [3, 0, 1]])
    assert np.isnan(tau_b(rows)[0, 1])
    assert np.isnan(kendalltau(rows[0], rows[1]).statistic)
    assert np.isfinite(kappa(rows)[0, 1])


def test_bad_input():
    with pytest.raises(ValueError, match="0..3"):
        s_score(np.array([[3, 4], [4, 3]]))
    with pytest.raises(ValueError, match="weights"):
        s_score(HAND_TIES, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="weights"):
        s_score(HAND_TIES, weights=[0.0, 0.0, 0.0, 0.0])


# ---- reference implementations (plain loops, straight from the definitions) -------------------

def s_reference(t, w):
    n = len(t)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = 1 - 2 * sum(w[k] * abs(t[i, k] - t[j, k]) for k in range(t.shape[1])) / (
                3 * sum(w))
    return out


def kappa_reference(x, y, quadratic=True):
    n = len(x)
    p = np.zeros((4, 4))
    for a, b in zip(x, y, strict=True):
        p[a, b] += 1 / n
    pa, pb = p.sum(axis=1), p.sum(axis=0)
    observed = expected = 0.0
    for a in range(4):
        for b in range(4):
            w = (a - b) ** 2 / 9 if quadratic else abs(a - b) / 3
            observed += w * p[a, b]
            expected += w * pa[a] * pb[b]
    return math.nan if expected == 0 else 1 - observed / expected


def random_ties(seed, n_states=12, n_alliances=5, density=0.35):
    rng = np.random.default_rng(seed)
    membership = (rng.random((n_states, n_alliances)) < density).astype(np.uint8)
    obligation = rng.integers(0, len(OBLIGATIONS), n_alliances)
    return ties_from_membership(membership, obligation), rng.uniform(0.01, 1.0, n_states)


@pytest.mark.parametrize("seed", range(8))
def test_random_properties_and_references(seed):
    t, cap = random_ties(seed)
    n = len(t)
    s = s_score(t)
    sw = s_score(t, cap)
    tau = tau_b(t)
    kq = kappa(t)
    kl = kappa(t, disagreement="linear")
    for m in (s, sw, tau, kq, kl):
        assert m.shape == (n, n)
        np.testing.assert_array_equal(m, m.T)  # exactly symmetric (NaN-aware)
    for m in (s, sw):
        np.testing.assert_array_equal(np.diag(m), 1.0)
        assert np.all((m >= -1) & (m <= 1))
    finite = tau[np.isfinite(tau)]
    assert np.all((finite >= -1) & (finite <= 1))
    assert np.all(kq[np.isfinite(kq)] <= 1) and np.all(kl[np.isfinite(kl)] <= 1)
    assert np.all(kq[np.isfinite(kq)] >= -1 - 1e-12)  # Lin's concordance correlation
    # against the definitions
    np.testing.assert_allclose(s, s_reference(t, np.ones(n)), atol=1e-12)
    np.testing.assert_allclose(sw, s_reference(t, cap), atol=1e-12)
    for i in range(n):
        for j in range(n):
            ref = kendalltau(t[i], t[j], variant="b").statistic
            if np.isnan(ref):
                assert np.isnan(tau[i, j])
            else:
                assert tau[i, j] == pytest.approx(ref, abs=1e-12), (i, j)
            for mat, quad in ((kq, True), (kl, False)):
                ref = kappa_reference(t[i], t[j], quad)
                if np.isnan(ref):
                    assert np.isnan(mat[i, j])
                else:
                    assert mat[i, j] == pytest.approx(ref, abs=1e-12), (i, j)


def test_identical_portfolios_score_one():
    # P and Q: members of the same defense pact and the same consultation pact → identical rows
    membership = np.array([[1, 1, 0], [1, 1, 0], [0, 1, 1], [0, 0, 1], [0, 0, 0]], np.uint8)
    t = ties_from_membership(membership, [0, 1, 2])
    np.testing.assert_array_equal(t[0], t[1])
    assert s_score(t)[0, 1] == 1.0
    assert s_score(t, [5.0, 1.0, 2.0, 3.0, 4.0])[0, 1] == 1.0
    assert tau_b(t)[0, 1] == pytest.approx(1.0)
    assert kappa(t)[0, 1] == pytest.approx(1.0)
    # two states outside every alliance are *not* identical: each has its own self-tie
    assert s_score(ties_from_membership(np.zeros((3, 0), np.uint8), []))[0, 1] == pytest.approx(
        1 - 2 * 6 / 9)


# ---- shipped scenario --------------------------------------------------------------------

def test_nato_baltic_2024():
    """32 NATO members in one defense pact, plus RUS and UKR outside it (34 states).

    Every member's row is 3 on the 32 members and 0 on RUS and UKR, so all member pairs have
    identical portfolios: S = S_weighted = tau-b = kappa = 1.  RUS and UKR are *not* identical:
    their rows differ in their two self-ties, S = 1 − 2·6/(3·34) = 15/17.  A member against RUS
    differs by 3 on the 32 members and on RUS: S = 1 − 2·99/102 = −16/17; tau-b: P = 0,
    Q = 32, 497 and 528 tied pairs of 561 → −32/sqrt(64·33) = −4/sqrt(33).
    """
    c = compile_scenario(load_scenario(NATO))
    ids = list(c.state_ids)
    assert c.n_states == 34 and c.n_alliances == 1
    members = np.flatnonzero(c.membership[:, 0])
    rus, ukr = ids.index("RUS"), ids.index("UKR")
    assert len(members) == 32 and rus not in members and ukr not in members

    s, sw, tau, kq = (similarity_matrix(c, m) for m in ("s", "s_weighted", "tau_b", "kappa"))
    block = np.ix_(members, members)
    for m in (s, sw, tau, kq):
        np.testing.assert_allclose(m[block], 1.0, atol=1e-12)
    assert s[rus, ukr] == pytest.approx(15 / 17)
    for i in members:
        assert s[i, rus] == pytest.approx(-16 / 17) and s[i, ukr] == pytest.approx(-16 / 17)
        assert tau[i, rus] == pytest.approx(-4 / math.sqrt(33))
    cap = c.capability
    assert sw[members[0], rus] == pytest.approx(
        1 - 2 * (cap[members].sum() + cap[rus]) / cap.sum())

    table = similarity_table(c)
    assert table.columns == ["state_a", "state_b", *DEFAULT_MEASURES]
    assert table.height == 34 * 33 // 2
    in_nato = set(np.array(ids)[members])
    nato_pairs = table.filter(pl.col("state_a").is_in(in_nato) & pl.col("state_b").is_in(in_nato))
    assert nato_pairs.height == 32 * 31 // 2
    assert (nato_pairs["s"] == 1.0).all()

    # exposure from the S-score: 1 among members, (1 − 16/17)/2 = 1/34 between a member and UKR
    e = exposure_from_similarity(c, "s_score")
    np.testing.assert_allclose(e[block], 1.0)
    assert e[members[0], ukr] == pytest.approx(1 / 34)
    np.testing.assert_array_equal(np.diag(e), 1.0)


def test_league_everyone_allied_tau_undefined():
    # every state is a League member in one defense pact: constant portfolios
    c = compile_scenario(load_scenario(LEAGUE))
    assert c.membership.all()
    table = similarity_table(c)
    assert (table["s"] == 1.0).all() and (table["s_weighted"] == 1.0).all()
    assert table["tau_b"].is_nan().all() and table["kappa"].is_nan().all()
    # identical portfolios: undefined measures map to full exposure
    for m in ("tau_b", "kappa"):
        np.testing.assert_array_equal(exposure_from_similarity(c, m), 1.0)


# ---- table and exposure --------------------------------------------------------------------

def test_similarity_table_layout():
    c = small_world()
    t = similarity_table(c, ("s_score", "kappa", "s", "kappa_linear"))
    assert t.columns == ["state_a", "state_b", "s", "kappa", "kappa_linear"]
    assert t.height == 10
    assert t.row(0)[:2] == ("A", "B")
    a_d = t.filter((pl.col("state_a") == "A") & (pl.col("state_b") == "D"))["s"][0]
    assert a_d == pytest.approx(s_score(tie_matrix(c))[0, 3])
    assert t.schema["s"] == pl.Float64
    ordered = similarity_table(c, ("s",), ordered=True)
    assert ordered.height == 20
    back = ordered.filter((pl.col("state_a") == "D") & (pl.col("state_b") == "A"))["s"][0]
    assert back == t.filter((pl.col("state_a") == "A") & (pl.col("state_b") == "D"))["s"][0]
    with pytest.raises(ValueError):
        similarity_table(c, ())


@pytest.mark.parametrize("measure", ["s_score", "s_weighted", "tau_b", "kappa"])
def test_exposure_from_similarity(measure):
    c = small_world()
    e = exposure_from_similarity(c, measure)
    assert e.shape == (c.n_states, c.n_states)
    assert np.all((e >= 0) & (e <= 1)) and not np.isnan(e).any()
    np.testing.assert_array_equal(e, e.T)
    np.testing.assert_allclose(np.diag(e), 1.0)
    sim = similarity_matrix(c, measure)
    ok = np.isfinite(sim)
    np.testing.assert_allclose(e[ok], np.clip((sim[ok] + 1) / 2, 0, 1))
    np.testing.assert_array_equal(
        e, exposure_from_arrays(c.membership, c.obligation, c.capability, measure))


def test_similarity_to_exposure_edges():
    ties = np.array([[3, 3, 0], [3, 3, 0], [0, 0, 3]])
    sim = np.array([[1.0, np.nan, -1.8], [np.nan, 1.0, np.nan], [-1.8, np.nan, 1.0]])
    e = similarity_to_exposure(sim, ties)
    # clipped below; NaN → 1 for identical rows (0, 1), 0.5 otherwise (1, 2)
    np.testing.assert_array_equal(e, [[1.0, 1.0, 0.0], [1.0, 1.0, 0.5], [0.0, 0.5, 1.0]])


def test_s_score_scales():
    t, cap = random_ties(99, n_states=300, n_alliances=40, density=0.05)
    s = s_score(t, cap)
    assert s.shape == (300, 300)
    np.testing.assert_array_equal(np.diag(s), 1.0)
    tau = tau_b(t)
    assert tau.shape == (300, 300)


# ---- CLI --------------------------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(similarity_command, [str(a) for a in args])


def test_cli_table_default():
    r = invoke(NATO)
    assert r.exit_code == 0, r.output
    header = r.output.splitlines()[1]
    for name in ("state_a", "state_b", *DEFAULT_MEASURES):
        assert name in header
    assert "RUS" in r.output and "UKR" in r.output


def test_cli_csv_matches_library():
    r = invoke(NATO, "--format", "csv", "--measure", "s_score", "--measure", "tau_b")
    assert r.exit_code == 0, r.output
    import io

    got = pl.read_csv(io.StringIO(r.stdout))
    want = similarity_table(compile_scenario(load_scenario(NATO)), ("s", "tau_b"))
    assert got.columns == ["state_a", "state_b", "s", "tau_b"]
    assert got["state_a"].to_list() == want["state_a"].to_list()
    np.testing.assert_allclose(got["s"].to_numpy(), want["s"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(got["tau_b"].to_numpy(), want["tau_b"].to_numpy(), atol=1e-12)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_out(tmp_path, suffix):
    out = tmp_path / f"sim{suffix}"
    r = invoke(NATO, "--out", out)
    assert r.exit_code == 0, r.output
    frame = pl.read_parquet(out) if suffix == ".parquet" else pl.read_csv(out)
    want = similarity_table(compile_scenario(load_scenario(NATO)))
    assert frame.columns == want.columns and frame.height == want.height
    np.testing.assert_allclose(frame["s_weighted"].to_numpy(), want["s_weighted"].to_numpy(),
                               atol=1e-12)
    assert r.stdout == ""  # the confirmation goes to stderr
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_cli_user_errors(tmp_path):
    r = invoke(NATO, "--out", tmp_path / "sim.json")
    assert r.exit_code == 2 and ".parquet or .csv" in r.output
    r = invoke(NATO, "--out", tmp_path / "missing" / "sim.csv")
    assert r.exit_code == 2 and "does not exist" in r.output
    r = invoke(tmp_path / "nope.toml")
    assert r.exit_code == 2 and "file not found" in r.output
    r = invoke(NATO, "--measure", "pearson")
    assert r.exit_code == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nname = "x"\nbogus = 1\n')
    r = invoke(bad)
    assert r.exit_code == 2 and "error:" in r.output


def test_cli_ordered():
    r = invoke(LEAGUE, "--format", "csv", "--measure", "s", "--ordered")
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 1 + 24 * 23
