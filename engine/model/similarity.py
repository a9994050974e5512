"""Alliance-portfolio similarity of states, computed from the membership matrix.

Valued alliance ties
--------------------
For a dyad (i, j) the tie ``t_ij`` is the strongest obligation of any alliance both belong to::

    3  defense pact
    2  neutrality or nonaggression pact
    1  entente / consultation pact
    0  no shared alliance

and ``t_ii = 3`` for every state, alliances or not (the usual coding of a state's tie with itself,
as in Bueno de Mesquita 1975 and Signorino & Ritter 1999).  Row ``i`` of the tie matrix is state
i's *alliance portfolio*; every measure below compares two rows over all states ``k`` of the system
(the pair's own entries ``k = i`` and ``k = j`` included).

Measures (each an (S, S) float64 matrix, symmetric)
---------------------------------------------------
``s`` (alias ``s_score``) — Signorino & Ritter's S, unweighted::

    S_ij = 1 − 2 · Σ_k w_k |t_ik − t_jk| / (d_max · Σ_k w_k),   w_k = 1,   d_max = 3

``s_weighted`` — the same with ``w_k = capability_k`` (scale-free: only shares matter).
``S_ii = 1``; ``S_ij`` lies in [−1, 1] and is 1 exactly when the two portfolios are identical
(on the states of positive weight).

``tau_b`` — Kendall's τ_b between rows i and j (Bueno de Mesquita 1975), with the usual tie
correction: ``(P − Q) / sqrt((n0 − n1)(n0 − n2))``, ``n0 = n(n − 1)/2`` pairs of states,
``P`` / ``Q`` concordant / discordant pairs, ``n1`` / ``n2`` pairs tied in row i / row j.
It is **NaN when either row is constant** (only possible when a state has a defense pact with
every state of the system, since ``t_ii = 3``: a one-state world, or the League scenario where all
states are members of one pact): the correlation is undefined there, as in
``scipy.stats.kendalltau``.

``kappa`` — Cohen's weighted κ between rows i and j (Häge 2011) over the 4 categories 0–3 with
**quadratic** disagreement weights ``w_ab = (a − b)² / 9``;  ``kappa_linear`` uses linear weights
``|a − b| / 3``::

    κ_w = 1 − Σ_ab w_ab p_ab / Σ_ab w_ab p_a· p_·b

with ``p_ab`` the share of states k with ``t_ik = a`` and ``t_jk = b``.  κ ≤ 1, = 1 for identical
rows.  With quadratic weights κ_w is Lin's concordance correlation of the two rows,
``2·cov / (var_i + var_j + (mean_i − mean_j)²)``, hence ≥ −1 (−1 e.g. for rows (3, 0) and (0, 3));
linear κ_w need not have that bound in general (it held in every case we tried).  κ is **NaN when
the expected disagreement is 0**, i.e. both rows are constant with the same value.

All measures are computed from (S, S) matrix products — no Python loops over states: the S-score
through the threshold indicators ``[t ≥ c]``, c = 1..3 (|x − y| = Σ_c |[x ≥ c] − [y ≥ c]|), τ_b
and κ through the 4 × 4 contingency table of every pair (16 products of one-hot indicator matrices,
O(16·S³) flops, 16·S² floats of memory: 5 MB at 200 states).

Exposure
--------
:func:`exposure_from_similarity` maps a similarity ``m`` in [−1, 1] to an exposure
``(m + 1) / 2`` in [0, 1] (clipped to [0, 1] as a safeguard), for the scenario option
``[exposure] from = "s_score"``.  Undefined values (NaN) become 1 for identical portfolios and 0.5
(no measurable association) otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from kernels.layout import OBLIGATIONS

if TYPE_CHECKING:
    import polars as pl


class Portfolios(Protocol):
    """What the similarity measures read of a compiled scenario (structurally, so that this
    module stays below :mod:`engine.model.config` and :mod:`engine.model.compile`, which use it)."""

    n_states: int
    state_ids: Sequence[str]
    capability: np.ndarray  # float64 (S,)
    membership: np.ndarray  # uint8 (S, A)
    obligation: np.ndarray  # int64 (A,)

D_MAX = 3  # range of the tie scale 0..3
N_CATEGORIES = D_MAX + 1

# tie strength of each obligation, in OBLIGATIONS order
TIE_STRENGTH = {"defense": 3, "collective_security": 3, "neutrality": 2, "nonaggression": 2,
                "consultation": 1}
OBLIGATION_TIE = np.array([TIE_STRENGTH[o] for o in OBLIGATIONS], dtype=np.int64)

MEASURES = ("s", "s_weighted", "tau_b", "kappa", "kappa_linear")
DEFAULT_MEASURES = ("s", "s_weighted", "tau_b", "kappa")
ALIASES = {"s_score": "s", "kappa_quadratic": "kappa"}
# names accepted by `[exposure] from = …` (and by --measure)
EXPOSURE_MEASURES = ("s_score", "s_weighted", "tau_b", "kappa")


def canonical_measure(name: str) -> str:
    """The canonical name of a measure (``s_score`` → ``s``); ValueError for unknown names."""
    canon = ALIASES.get(name, name)
    if canon not in MEASURES:
        known = ", ".join(sorted({*MEASURES, *ALIASES}))
        raise ValueError(f"unknown similarity measure {name!r} (known: {known})")
    return canon


# ---- ties -------------------------------------------------------------------------------------

def ties_from_membership(membership: np.ndarray, obligation: np.ndarray) -> np.ndarray:
    """(S, S) int64 valued ties from a (S, A) 0/1 membership matrix and per-alliance obligation
    indices (into ``OBLIGATIONS``): the strongest shared obligation, 3 on the diagonal."""
    m = np.asarray(membership).astype(bool)
    obligation = np.asarray(obligation, dtype=np.int64)
    n_states, n_alliances = m.shape
    if obligation.shape != (n_alliances,):
        raise ValueError(f"obligation has shape {obligation.shape}, expected ({n_alliances},)")
    strength = OBLIGATION_TIE[obligation]
    ties = np.zeros((n_states, n_states), dtype=np.int64)
    for level in np.unique(strength):
        cols = m[:, strength == level].astype(np.float64)
        shared = (cols @ cols.T) > 0.5
        ties[shared] = np.maximum(ties[shared], level)
    np.fill_diagonal(ties, D_MAX)
    return ties


def tie_matrix(compiled: Portfolios) -> np.ndarray:
    """(S, S) int64 valued alliance ties of a compiled scenario (see the module docstring)."""
    return ties_from_membership(compiled.membership, compiled.obligation)


def _check_ties(ties: np.ndarray) -> np.ndarray:
    t = np.asarray(ties)
    if t.ndim != 2:
        raise ValueError(f"ties must be a 2-d array (states × states), got shape {t.shape}")
    if t.size and (not np.all(np.isin(t, np.arange(N_CATEGORIES)))):
        raise ValueError("ties must be integers in 0..3")
    return t.astype(np.int64)


def _check_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights have shape {w.shape}, expected ({n},)")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be finite, ≥ 0 and not all 0")
    return w


def _symmetrize(x: np.ndarray) -> np.ndarray:
    # products A @ B.T and B @ A.T may round differently; make the result exactly symmetric
    return 0.5 * (x + x.T) if x.shape[0] == x.shape[1] else x


# ---- S-score ----------------------------------------------------------------------------------

def s_score(ties: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Signorino & Ritter's S between every pair of rows of ``ties`` (n, K), weights over the K
    columns (default 1): ``1 − 2·Σ_k w_k|t_ik − t_jk| / (3·Σ_k w_k)``.  (n, n), diagonal 1 for a
    square tie matrix, values in [−1, 1]."""
    t = _check_ties(ties)
    n, k = t.shape
    w = _check_weights(weights, k)
    dist = np.zeros((n, n), dtype=np.float64)
    for c in range(1, N_CATEGORIES):
        b = (t >= c).astype(np.float64)  # (n, K)
        r = b @ w  # weighted count of [t ≥ c] per row
        # Σ_k w_k |b_ik − b_jk| = r_i + r_j − 2 Σ_k w_k b_ik b_jk
        dist += r[:, None] + r[None, :] - 2.0 * ((b * w) @ b.T)
    dist = _symmetrize(dist)
    s = 1.0 - 2.0 * dist / (D_MAX * w.sum())
    np.clip(s, -1.0, 1.0, out=s)
    if n == k:
        np.fill_diagonal(s, 1.0)
    return s


# ---- contingency tables ---------------------------------------------------------------------

def contingency(ties: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(4, 4, n, n) float64: ``N[a, b, i, j] = Σ_k w_k [t_ik = a][t_jk = b]`` (counts when
    unweighted; exact integers in float64)."""
    t = _check_ties(ties)
    n, k = t.shape
    w = _check_weights(weights, k)
    onehot = np.stack([(t == a).astype(np.float64) for a in range(N_CATEGORIES)])  # (4, n, K)
    weighted = onehot * w
    return np.einsum("aik,bjk->abij", weighted, onehot, optimize=True)


def _pairs_above(table: np.ndarray) -> np.ndarray:
    """``U[a, b] = Σ_{a' > a, b' > b} table[a', b']`` over the first two axes."""
    cum = table[::-1, ::-1].cumsum(axis=0).cumsum(axis=1)[::-1, ::-1]  # Σ_{a' ≥ a, b' ≥ b}
    out = np.zeros_like(table)
    out[:-1, :-1] = cum[1:, 1:]
    return out


def _pairs_above_below(table: np.ndarray) -> np.ndarray:
    """``L[a, b] = Σ_{a' > a, b' < b} table[a', b']`` over the first two axes."""
    cum = table[::-1].cumsum(axis=0)[::-1].cumsum(axis=1)  # Σ_{a' ≥ a, b' ≤ b}
    out = np.zeros_like(table)
    out[:-1, 1:] = cum[1:, :-1]
    return out


def tau_b(ties: np.ndarray) -> np.ndarray:
    """Kendall's τ_b between every pair of rows of ``ties`` (n, K); NaN where a row is constant."""
    n_obs = np.asarray(ties).shape[1]
    table = contingency(ties)
    concordant = np.einsum("abij,abij->ij", table, _pairs_above(table))
    discordant = np.einsum("abij,abij->ij", table, _pairs_above_below(table))
    rows = table.sum(axis=1)  # (4, n, n): marginal of row i
    cols = table.sum(axis=0)  # (4, n, n): marginal of row j
    n0 = n_obs * (n_obs - 1) / 2.0
    tied_i = (rows * (rows - 1.0) / 2.0).sum(axis=0)
    tied_j = (cols * (cols - 1.0) / 2.0).sum(axis=0)
    denom = (n0 - tied_i) * (n0 - tied_j)  # exact integers
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = np.where(denom > 0, (concordant - discordant) / np.sqrt(denom), np.nan)
    tau = _symmetrize(tau)
    return np.clip(tau, -1.0, 1.0)


def disagreement_weights(kind: str = "quadratic") -> np.ndarray:
    """4 × 4 disagreement weights: quadratic ``(a − b)²/9`` or linear ``|a − b|/3``."""
    a = np.arange(N_CATEGORIES, dtype=np.float64)
    diff = np.abs(a[:, None] - a[None, :]) / D_MAX
    if kind == "quadratic":
        return diff**2
    if kind == "linear":
        return diff
    raise ValueError(f"disagreement weights are 'quadratic' or 'linear', got {kind!r}")


def kappa(ties: np.ndarray, weights: np.ndarray | None = None,
          disagreement: str = "quadratic") -> np.ndarray:
    """Cohen's weighted κ between every pair of rows of ``ties`` (n, K), optionally weighting the
    K observations (``weights``, default 1); NaN where the expected disagreement is 0."""
    wd = disagreement_weights(disagreement)
    table = contingency(ties, weights)
    total = table.sum(axis=(0, 1))  # (n, n), Σ_k w_k
    p = table / total
    pa = p.sum(axis=1)  # (4, n, n)
    pb = p.sum(axis=0)
    observed = np.einsum("ab,abij->ij", wd, p)
    expected = np.einsum("ab,aij,bij->ij", wd, pa, pb)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(expected > 0.0, 1.0 - observed / expected, np.nan)
    k = _symmetrize(k)
    return np.minimum(k, 1.0)


# ---- scenario-level API -------------------------------------------------------------------

def _measure_from_arrays(ties: np.ndarray, capability: np.ndarray, measure: str) -> np.ndarray:
    canon = canonical_measure(measure)
    if canon == "s":
        return s_score(ties)
    if canon == "s_weighted":
        return s_score(ties, capability)
    if canon == "tau_b":
        return tau_b(ties)
    if canon == "kappa":
        return kappa(ties, disagreement="quadratic")
    return kappa(ties, disagreement="linear")


def similarity_matrix(compiled: Portfolios, measure: str = "s") -> np.ndarray:
    """(S, S) similarity of every pair of states of ``compiled`` by ``measure`` (one of
    ``MEASURES`` or an alias such as ``s_score``)."""
    return _measure_from_arrays(tie_matrix(compiled), compiled.capability, measure)


def similarity_table(compiled: Portfolios, measures: Sequence[str] = DEFAULT_MEASURES,
                     ordered: bool = False) -> pl.DataFrame:
    """One row per pair of states: ``state_a``, ``state_b`` (ids) and one float64 column per
    measure, named by its canonical name (``s_score`` → ``s``; duplicates dropped).

    Pairs are unordered, ``a < b`` in scenario (file) order, S·(S − 1)/2 rows, since every measure
    is symmetric; ``ordered=True`` gives all ordered pairs ``a ≠ b`` instead.  Undefined values
    (τ_b / κ of constant rows) are NaN.
    """
    import polars as pl

    names = list(dict.fromkeys(canonical_measure(m) for m in measures))
    if not names:
        raise ValueError("no similarity measure requested")
    n = compiled.n_states
    if ordered:
        ia, ib = np.nonzero(~np.eye(n, dtype=bool))
    else:
        ia, ib = np.triu_indices(n, k=1)
    ids = np.array(compiled.state_ids, dtype=object)
    ties = tie_matrix(compiled)
    columns: dict[str, pl.Series] = {
        "state_a": pl.Series("state_a", ids[ia].tolist(), dtype=pl.String),
        "state_b": pl.Series("state_b", ids[ib].tolist(), dtype=pl.String),
    }
    for name in names:
        values = _measure_from_arrays(ties, compiled.capability, name)[ia, ib]
        columns[name] = pl.Series(name, values, dtype=pl.Float64, nan_to_null=False)
    return pl.DataFrame(list(columns.values()))


def similarity_to_exposure(similarity: np.ndarray, ties: np.ndarray) -> np.ndarray:
    """Map similarities in [−1, 1] to exposures ``(m + 1)/2`` in [0, 1] (clipped); NaN → 1 for
    identical rows of ``ties``, else 0.5."""
    sim = np.asarray(similarity, dtype=np.float64)
    undefined = np.isnan(sim)
    if undefined.any():
        t = np.asarray(ties)
        ia, ib = np.nonzero(undefined)
        identical = np.all(t[ia] == t[ib], axis=1)
        sim = sim.copy()
        sim[ia, ib] = np.where(identical, 1.0, 0.0)
    return np.clip((sim + 1.0) / 2.0, 0.0, 1.0)


def exposure_from_arrays(membership: np.ndarray, obligation: Iterable[int],
                         capability: np.ndarray, measure: str = "s_score") -> np.ndarray:
    """Exposure matrix (S, S) float64 from raw arrays — what ``compile_scenario`` can call before
    it builds the compiled scenario (see :func:`exposure_from_similarity`)."""
    ties = ties_from_membership(membership, np.asarray(list(obligation), dtype=np.int64))
    sim = _measure_from_arrays(ties, np.asarray(capability, dtype=np.float64), measure)
    return similarity_to_exposure(sim, ties)


def exposure_from_similarity(compiled: Portfolios, measure: str = "s_score") -> np.ndarray:
    """Exposure ``exposure[member, target] = (m + 1)/2`` in [0, 1] from the portfolio similarity
    ``m`` of member and target (``measure``: ``s_score``, ``s_weighted``, ``tau_b``, ``kappa``;
    also ``kappa_linear``).  Symmetric, diagonal 1; values outside [−1, 1] are clipped; undefined
    similarities (NaN) give 1 for identical portfolios, 0.5 otherwise."""
    return exposure_from_arrays(compiled.membership, compiled.obligation, compiled.capability,
                                measure)
