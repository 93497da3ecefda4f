"""Finite-group estimators of answer frequencies, their powers and their logs (THEORY §6, T7, T8, T12).

A GRPO group is ``G`` answers ``z_1..z_G`` (integer answer indices in ``[0, n_answers)``) drawn iid
from the policy's answer marginal ``nu``. The leave-one-out (LOO) count of sample ``i`` is
``C_i = #{j != i : z_j = z_i} ~ Binomial(G - 1, p)`` with ``p = nu(z_i)``; it is independent of the
sample's own draw given its answer, which is what makes the estimators below analysable exactly.

Every *count estimator* here is a table ``f`` of shape ``(G,)``: the estimate for sample ``i`` is
``f[C_i]``. Its mean is ``E f(C) = sum_c f[c] Bin(c; G-1, p)``, a polynomial of degree ``G - 1`` in
``p`` (Bernstein form), which is why (T7) powers ``p^m``, ``m <= G-1``, have unbiased tables and (T8)
``log p`` has none.

Conventions
-----------
* Natural logs. ``log_estimator_table`` estimates ``log p`` (not ``-log p``); its *p-weighted bias* is
  ``b(p) = p * (E f(C) - log p)`` (the bias of a reward term as it enters the policy gradient, which
  weights answer ``z`` by ``nu(z)``). The sign convention does not change ``|b|``, so the plug-in
  ``-log((C+1)/G)`` of ``-log p`` in THEORY T8 has the same worst case as ``log((C+1)/G)`` here.
* Tables returned by cached functions are read-only; copy before modifying.
* AQP tables (T12, ``kind="aqp"``) at the default variance budget ``AQP_DEFAULT_KAPPA`` are shipped
  precomputed in ``dagsim/data/aqp_tables.json`` for G <= ``AQP_SHIPPED_MAX_G`` (regenerate with
  ``python -m dagsim.estimators --regenerate-aqp``); other (G, κ) are solved on first use and cached.
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.polynomial import chebyshev
from scipy.optimize import linprog, minimize_scalar
from scipy.special import betaln, comb, gammaln, xlog1py, xlogy

from dagsim.errors import DomainError, SolverError, ValidationError
from dagsim.registry import lookup

__all__ = [
    "ESTIMATORS",
    "ESTIMATOR_NAMES",
    "LOG_ESTIMATORS",
    "GroupEstimator",
    "group_estimator",
    "LOG_ESTIMATOR_KINDS",
    "POWER_ESTIMATOR_KINDS",
    "LOO_ZERO_COUNT_FLOOR",
    "binomial_pmf",
    "loo_counts",
    "group_counts",
    "plugin_frequency",
    "empo_frequency",
    "loo_frequency",
    "unbiased_power",
    "majority_label",
    "log_estimator_table",
    "power_estimator_table",
    "minimax_log_bias",
    "AQP_DEFAULT_KAPPA",
    "AQP_SHIPPED_MAX_G",
    "integrated_variance_matrix",
    "integrated_variance",
    "aqp_solution",
    "min_variance_log_table",
    "bias_variance_frontier",
    "exact_bias_variance",
    "weighted_bias",
    "worst_case_bias",
]



# ================================================================================================
# The estimator registry: the one source of the ``--estimator`` names
# ================================================================================================
@dataclass(frozen=True)
class GroupEstimator:
    """One ``estimator`` choice of a group reward: which count table estimates ``log p`` and which ``p^a``.

    ``log_kind``: the :func:`log_estimator_table` kind, or None when no count table can estimate ``log p``
    (T8: "unbiased"). ``power_kind``: the :func:`power_estimator_table` kind. The group rewards
    (``dagsim.grpo.rewards``), the simulator, the LLM trainer and the TRL bridge all read the tables
    through this spec (:meth:`log_table`, :meth:`power_table`).
    """

    name: str
    log_kind: str | None
    power_kind: str
    description: str

    def log_table(self, G: int, what: str = "log objectives") -> np.ndarray:
        """The ``(G,)`` table estimating ``log p`` (T8; DomainError when none exists, ``what`` names the use)."""
        if self.log_kind is None:
            raise DomainError(
                f"estimator {self.name!r} is impossible for {what}: no function of the LOO count is unbiased "
                f"for log p (T8); use one of {list(LOG_ESTIMATORS)}"
            )
        return log_estimator_table(G, self.log_kind)

    def power_table(self, G: int, power: float) -> np.ndarray:
        """The ``(G,)`` table estimating ``p^power`` (T7: the U-statistic wherever the kind allows it)."""
        return power_estimator_table(G, power, self.power_kind)


#: Every estimator of the group rewards, by name (T7, T8, T12).
ESTIMATORS: dict[str, GroupEstimator] = {
    e.name: e
    for e in (
        GroupEstimator("plugin", "plugin", "plugin", "self-counting plug-in (C + 1)/G"),
        GroupEstimator("loo", "loo", "loo", "leave-one-out frequency C/(G − 1) (a zero count floored at 1/2)"),
        GroupEstimator("unbiased", None, "unbiased", "T7's U-statistics; impossible for log p (T8)"),
        GroupEstimator("minimax", "minimax", "minimax", "T8's minimax LP table (least bias, noisy past G ≈ 8)"),
        GroupEstimator("minimax_monotone", "minimax_monotone", "minimax_monotone",
                       "the minimax LP restricted to nondecreasing tables"),
        # T12 "augmented": the log part is the AQP table, the polynomial parts keep their U-statistics
        # (the monotone minimax kind is the U-statistic whenever one exists)
        GroupEstimator("aqp", "aqp", "minimax_monotone", "T12's variance-aware log table (κ = 2)"),
    )
}
#: The estimator names, in registry order (``choices=`` of every ``--estimator`` flag).
ESTIMATOR_NAMES = tuple(ESTIMATORS)
#: The estimators that have a ``log p`` table (every reward with a log term accepts only these).
LOG_ESTIMATORS = tuple(name for name, e in ESTIMATORS.items() if e.log_kind is not None)
#: Kinds of ``log p`` tables. "unbiased" is deliberately absent: no count function is unbiased for
#: ``log p`` (T8). "minimax_monotone" is an extension (see ``log_estimator_table``).
LOG_ESTIMATOR_KINDS = tuple(dict.fromkeys(e.log_kind for e in ESTIMATORS.values() if e.log_kind is not None))
#: Kinds of ``p^a`` tables.
POWER_ESTIMATOR_KINDS = tuple(dict.fromkeys(e.power_kind for e in ESTIMATORS.values()))


def group_estimator(name: str, field: str = "estimator") -> GroupEstimator:
    """The registered estimator ``name`` (``UnknownNameError`` naming ``field`` otherwise)."""
    return lookup(ESTIMATORS, name, "estimator", field)


#: The LOO log/negative-power estimators replace a zero LOO count by this many counts, so that
#: ``log(max(C, 1/2) / (G-1))`` stays finite ("half a count", as in the Krichevsky–Trofimov add-1/2
#: rule). Any positive floor gives a finite estimator; 1/2 is the conventional choice.
LOO_ZERO_COUNT_FLOOR = 0.5

# --- LP / exchange-method settings for the minimax tables (T8) -------------------------------------
#: Coarse grid the first LP is posed on: sin^2-spaced (Chebyshev-like, dense at both ends) ...
_LP_GRID_SIZE = 2000
#: ... plus log-spaced points near 0, where p log p is steep (slope log p + 1 -> -inf).
_LP_LOG_GRID = (-14.0, -1.0, 200)
#: Verification grid: much finer than the LP grid, same two families.
_FINE_GRID_SIZE = 40_000
_FINE_LOG_GRID = (-16.0, -1.0, 4000)
#: The exchange loop stops when the verified sup of |b| exceeds the LP's grid sup by at most this
#: relative amount (HiGHS is run with feasibility tolerances well below it).
EXCHANGE_RTOL = 1e-5
_EXCHANGE_MAX_ITER = 30
_HIGHS_TOL = 1e-10
#: A float64 minimax table is returned only if its own worst-case bias (evaluated in float64) is
#: within this relative amount of the exact LP optimum. It fails from G = 44 on: the table entries grow
#: like 2^G (see ``log_estimator_table``); G <= 43 passes, G = 44 is the first refused.
REALIZATION_RTOL = 1e-2
#: Local maxima of |b| on the fine grid within this fraction of the max are refined by a scalar search.
_REFINE_FRACTION = 0.5
_REFINE_XATOL = 1e-15
#: At most this many of the largest local maxima are refined (noisy error curves have thousands).
_MAX_REFINE = 200


# ================================================================================================
# Counts and frequencies
# ================================================================================================
def _as_answers(answers: np.ndarray, name: str = "answers", min_group: int = 1) -> np.ndarray:
    arr = np.asarray(answers)
    if arr.ndim == 0:
        raise ValidationError(f"{name} must have a group axis (shape (..., G)), got a scalar")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValidationError(f"{name} must hold integer answer indices, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
    if arr.shape[-1] < min_group:
        raise ValidationError(f"{name}: group size G = {arr.shape[-1]} must be >= {min_group}")
    if arr.size and arr.min() < 0:
        raise ValidationError(f"{name} must be >= 0 (answer indices), got {arr.min()}")
    return arr.astype(np.int64, copy=False)


def _check_n_answers(arr: np.ndarray, n_answers: int, name: str = "answers") -> None:
    if int(n_answers) != n_answers or n_answers < 1:
        raise ValidationError(f"n_answers must be a positive integer, got {n_answers!r}")
    if arr.size and arr.max() >= n_answers:
        raise ValidationError(f"{name} has index {arr.max()} >= n_answers = {n_answers}")


def binomial_pmf(n: int, p: np.ndarray) -> np.ndarray:
    """``Bin(c; n, p)`` for ``c = 0..n``, computed in log space (stable, exact at p = 0 and p = 1).

    Returns shape ``p.shape + (n + 1,)``.
    """
    if int(n) != n or n < 0:
        raise ValidationError(f"n must be a non-negative integer, got {n!r}")
    p = np.asarray(p, dtype=np.float64)
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise DomainError("p must lie in [0, 1]")
    c = np.arange(n + 1, dtype=np.float64)  # (n+1,)
    log_binom = gammaln(n + 1) - gammaln(c + 1) - gammaln(n - c + 1)  # (n+1,)
    pp = p[..., None]  # (..., 1)
    return np.exp(log_binom + xlogy(c, pp) + xlog1py(n - c, -pp))  # (..., n+1)


#: Largest n_groups × (max answer + 1) for the dense-bincount path of :func:`loo_counts` (~400 MB of int64).
LOO_DENSE_LIMIT = 50_000_000


def loo_counts(answers: np.ndarray) -> np.ndarray:
    """Leave-one-out counts ``C_i = #{j != i : z_j = z_i}`` (THEORY §6); shape ``(..., G)`` -> same.

    O(G) per group (THEORY §7: answer-level rewards need only hashing of the G answers): one bincount
    over (group, answer) keys, or a per-group ``np.unique`` when answer ids are too sparse for that.
    """
    arr = _as_answers(answers)
    flat = arr.reshape(-1, arr.shape[-1])  # (B, G)
    n_groups = flat.shape[0]
    if flat.size == 0:
        return np.zeros(arr.shape, dtype=np.int64)
    span = int(flat.max()) + 1
    if n_groups * span <= LOO_DENSE_LIMIT:
        keys = flat + (np.arange(n_groups, dtype=np.int64) * span)[:, None]  # (B, G)
        counts = np.bincount(keys.ravel(), minlength=n_groups * span)
        out = counts[keys] - 1
    else:
        out = np.empty_like(flat)
        for b in range(n_groups):
            _, inverse, counts = np.unique(flat[b], return_inverse=True, return_counts=True)
            out[b] = counts[inverse] - 1
    return out.reshape(arr.shape)


def group_counts(answers: np.ndarray, n_answers: int) -> np.ndarray:
    """Answer counts ``n(z) = #{i : z_i = z}``; ``(..., G)`` -> ``(..., n_answers)``."""
    arr = _as_answers(answers)
    _check_n_answers(arr, n_answers)
    lead = arr.shape[:-1]
    flat = arr.reshape(-1, arr.shape[-1])  # (B, G)
    offsets = (np.arange(flat.shape[0]) * n_answers)[:, None]  # (B, 1)
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * n_answers)
    return counts.reshape(lead + (n_answers,))


def plugin_frequency(answers: np.ndarray, n_answers: int) -> np.ndarray:
    """Plug-in answer distribution ``nu_hat(z) = n(z) / G``; ``(..., G)`` -> ``(..., n_answers)``."""
    arr = _as_answers(answers)
    return group_counts(arr, n_answers) / arr.shape[-1]


def empo_frequency(answers: np.ndarray) -> np.ndarray:
    """EMPO's self-counting frequency ``(C_i + 1) / G`` of each sample's own answer (T7).

    Biased: ``E[(C+1)/G] = 1/G + (G-1) p / G`` (affine in p).
    """
    arr = _as_answers(answers)
    return (loo_counts(arr) + 1) / arr.shape[-1]


def loo_frequency(answers: np.ndarray) -> np.ndarray:
    """Leave-one-out frequency ``C_i / (G - 1)``: unbiased for ``p = nu(z_i)`` (T7, m = 1). Needs G >= 2."""
    arr = _as_answers(answers, min_group=2)
    return loo_counts(arr) / (arr.shape[-1] - 1)


def unbiased_power(C: np.ndarray, G: int, m: int) -> np.ndarray:
    """T7: ``binom(C, m) / binom(G-1, m)`` is unbiased for ``p^m`` when ``C ~ Bin(G-1, p)``, ``m <= G-1``.

    (It is the U-statistic: the fraction of m-subsets of the other G-1 samples that all equal z_i.)
    """
    _check_group_size(G)
    if int(m) != m or m < 0:
        raise DomainError(f"m must be a non-negative integer, got {m!r}")
    if m > G - 1:
        raise DomainError(f"m = {m} exceeds G - 1 = {G - 1}: no unbiased count estimator of p^m exists")
    C = np.asarray(C)
    if np.any((C < 0) | (C > G - 1)):
        raise ValidationError(f"C must lie in [0, G-1] = [0, {G - 1}]")
    return comb(C, int(m)) / comb(G - 1, int(m))


def majority_label(answers: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray | int:
    """Most frequent answer of each group; ``(G,)`` -> int, ``(n_groups, G)`` -> ``(n_groups,)``.

    Ties: with ``rng=None`` the lowest tied answer index (deterministic); otherwise uniform among the
    tied answers, drawn from ``rng``. (The group *rewards* do not use this rule: they split credit
    between tied modes, which equals the expectation over uniform tie-breaking; see ``grpo.rewards``.)
    """
    arr = _as_answers(answers)
    n_answers = int(arr.max()) + 1 if arr.size else 1
    counts = group_counts(arr, n_answers)  # (..., n_answers)
    if rng is None:
        labels = counts.argmax(axis=-1)
    else:
        is_mode = counts == counts.max(axis=-1, keepdims=True)  # (..., n_answers)
        keys = np.where(is_mode, rng.random(counts.shape), -1.0)
        labels = keys.argmax(axis=-1)
    return int(labels) if labels.ndim == 0 else labels


# ================================================================================================
# Count tables: plug-in, LOO, unbiased, minimax (LP)
# ================================================================================================
def _check_group_size(G: int) -> None:
    if int(G) != G or G < 2:
        raise DomainError(
            f"group size G must be an integer >= 2 (a LOO count needs another sample), got {G!r}"
        )


def _target_weighted(target: tuple, p: np.ndarray) -> np.ndarray:
    """``p * t(p)`` for the estimated quantity ``t`` ("log": log p; ("power", a): p^a), 0 at p = 0."""
    if target[0] == "log":
        return xlogy(p, p)
    a = target[1]
    return np.power(p, a + 1.0)  # a > -1 is enforced, so p^(a+1) -> 0 at p = 0


def _target_value(target: tuple, p: np.ndarray) -> np.ndarray:
    if target[0] == "log":
        with np.errstate(divide="ignore"):
            return np.log(p)
    with np.errstate(divide="ignore"):
        return np.power(p, target[1])


def _lp_grid(size: int, log_grid: tuple) -> np.ndarray:
    k = np.arange(size + 1)
    lo, hi, n = log_grid
    return np.unique(np.concatenate([np.sin(np.pi * k / (2 * size)) ** 2, np.logspace(lo, hi, int(n))]))


def _bernstein_design(G: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: binomial_pmf(G - 1, p)  # (len(p), G)


def _chebyshev_design(G: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: chebyshev.chebvander(2.0 * np.asarray(p) - 1.0, G - 1)  # (len(p), G)


def _sup_abs(err_fn: Callable[[np.ndarray], np.ndarray], fine: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Sup of |err| on [0, 1]: max over ``fine`` refined by bounded scalar searches around local maxima.

    Returns (sup, argmax p, the fine-grid local-maximum abscissae used for refinement).
    """
    e = np.abs(err_fn(fine))  # (n_fine,)
    interior = np.nonzero((e[1:-1] >= e[:-2]) & (e[1:-1] >= e[2:]))[0] + 1
    peaks = np.concatenate([interior, [int(np.argmax(e))]])
    peaks = np.unique(peaks[e[peaks] >= _REFINE_FRACTION * e.max()])
    peaks = peaks[np.argsort(e[peaks])[::-1][:_MAX_REFINE]]  # a best approximation has ~G+1 extrema
    best, best_p = float(e.max()), float(fine[int(np.argmax(e))])
    for k in peaks:
        lo, hi = fine[max(k - 1, 0)], fine[min(k + 1, len(fine) - 1)]
        if hi <= lo:
            continue
        res = minimize_scalar(
            lambda x: -float(np.abs(err_fn(np.array([x])))[0]),
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": _REFINE_XATOL},
        )
        if -res.fun > best:
            best, best_p = float(-res.fun), float(res.x)
    return best, best_p, fine[peaks]


def _solve_minimax_lp(G: int, target: tuple, monotone: int) -> tuple[np.ndarray, float, str]:
    """Exchange method for ``min_coef sup_p |p * (basis(p) @ coef) - p t(p)|`` (T8).

    The free problem is posed in the Chebyshev basis (well conditioned; the Bernstein coefficients of
    the optimum grow like 2^G and make a Bernstein-basis LP stall short of the optimum from G ~ 24 on).
    The monotone variant constrains the Bernstein coefficients (the table) directly: ``monotone = +1``
    nondecreasing, ``-1`` nonincreasing. Returns (coef, verified sup, basis name).
    """
    basis = "bernstein" if monotone else "chebyshev"
    design = _bernstein_design(G) if monotone else _chebyshev_design(G)
    grid = _lp_grid(_LP_GRID_SIZE, _LP_LOG_GRID)
    fine = _lp_grid(_FINE_GRID_SIZE, _FINE_LOG_GRID)
    cost = np.zeros(G + 1)
    cost[-1] = 1.0  # variables: (coef_0..coef_{G-1}, t); minimize t
    a_mono, b_mono = None, None
    if monotone:
        a_mono = np.zeros((G - 1, G + 1))  # rows: monotone * (coef_c - coef_{c+1}) <= 0
        idx = np.arange(G - 1)
        a_mono[idx, idx] = monotone
        a_mono[idx, idx + 1] = -monotone
        b_mono = np.zeros(G - 1)
    for _ in range(_EXCHANGE_MAX_ITER):
        w = grid[:, None] * design(grid)  # (n_grid, G)
        tw = _target_weighted(target, grid)  # (n_grid,)
        ones = np.ones((len(grid), 1))
        a_ub = np.block([[w, -ones], [-w, -ones]])  # |w @ coef - tw| <= t
        b_ub = np.concatenate([tw, -tw])
        if monotone:
            a_ub = np.vstack([a_ub, a_mono])
            b_ub = np.concatenate([b_ub, b_mono])
        res = linprog(
            cost,
            A_ub=a_ub,
            b_ub=b_ub,
            bounds=[(None, None)] * (G + 1),
            method="highs",
            options={"primal_feasibility_tolerance": _HIGHS_TOL, "dual_feasibility_tolerance": _HIGHS_TOL},
        )
        if res.status != 0:
            raise SolverError(
                f"minimax LP (G={G}, target={target}) failed: status {res.status}: {res.message}"
            )
        coef, t_grid = res.x[:G], float(res.x[-1])

        def err(p: np.ndarray, coef: np.ndarray = coef) -> np.ndarray:
            return p * (design(p) @ coef) - _target_weighted(target, p)

        sup, _, peaks = _sup_abs(err, fine)
        if sup <= t_grid * (1.0 + EXCHANGE_RTOL) + _HIGHS_TOL:
            return coef, sup, basis
        grid = np.unique(np.concatenate([grid, peaks]))
    raise SolverError(
        f"minimax LP exchange (G={G}, target={target}) did not converge in {_EXCHANGE_MAX_ITER} "
        f"iterations: verified sup {sup:.10g} vs grid sup {t_grid:.10g}"
    )


def _chebyshev_to_bernstein(coef: np.ndarray) -> np.ndarray:
    """Bernstein coefficients (degree n = len(coef)-1) of ``sum_k coef_k T_k(2p - 1)``, exactly.

    ``T_k(2p-1) = sum_j (-1)^(k-j) C(2k,2j)/C(k,j) b_{j,k}(p)``; elevating to degree n gives the
    coefficient ``N[k, c] / C(n, c)`` with the integer ``N[k, c] = sum_j (-1)^(k-j) C(2k,2j) C(n-k, c-j)``.
    The sums are exact (integers and the float64 LP coefficients as exact dyadic fractions); the result
    is rounded once to float64.
    """
    n = len(coef) - 1
    exact = [Fraction(float(ck)) for ck in coef]
    out = []
    for c in range(n + 1):
        total = Fraction(0)
        for k, ck in enumerate(exact):
            if ck == 0:
                continue
            n_kc = sum(
                (-1) ** (k - j) * math.comb(2 * k, 2 * j) * math.comb(n - k, c - j)
                for j in range(max(0, c - (n - k)), min(k, c) + 1)
            )
            total += ck * n_kc
        out.append(float(total / math.comb(n, c)))
    return np.array(out)


@functools.cache
def _minimax_solution(G: int, target: tuple, monotone: int) -> tuple[tuple[float, ...], float, str]:
    """Cached pure wrapper: (coefficients, verified sup of the p-weighted bias, basis)."""
    coef, sup, basis = _solve_minimax_lp(G, target, monotone)
    return tuple(float(x) for x in coef), sup, basis


@functools.cache
def _minimax_table(G: int, target: tuple, monotone: int) -> np.ndarray:
    coef, sup, basis = _minimax_solution(G, target, monotone)
    table = np.asarray(coef) if basis == "bernstein" else _chebyshev_to_bernstein(np.asarray(coef))  # (G,)
    fine = _lp_grid(_FINE_GRID_SIZE, _FINE_LOG_GRID)
    realized, _, _ = _sup_abs(
        lambda p: p * (binomial_pmf(G - 1, p) @ table) - _target_weighted(target, p), fine
    )
    if realized > sup * (1.0 + REALIZATION_RTOL):
        raise DomainError(
            f"group size G = {G}: the float64 minimax table cannot realize its bias "
            f"(worst case {realized:.3g} "
            f"in float64 vs {sup:.3g} exactly; entries reach {np.abs(table).max():.2g}). Use a smaller G, "
            f"'minimax_monotone' or 'plugin'."
        )
    table.setflags(write=False)
    return table


def minimax_log_bias(G: int, monotone: bool = False) -> float:
    """T8: the optimal worst-case p-weighted bias ``min_f sup_p |p (E f(C) - log p)|`` (LP value, verified).

    This is the bias of the exact-arithmetic minimax table, available for any G (the LP is posed in a
    well-conditioned basis) even where the float64 table itself is refused.
    """
    _check_group_size(G)
    return _minimax_solution(int(G), ("log",), 1 if monotone else 0)[1]


def log_estimator_table(G: int, kind: str, *, kappa: float | None = None) -> np.ndarray:
    """Count table ``f`` (shape ``(G,)``) estimating ``log p`` from a LOO count ``C ~ Bin(G-1, p)`` (T8).

    kind
      * ``"plugin"``: ``f(C) = log((C + 1) / G)`` (self-counting plug-in; worst p-weighted bias ~ 0.5/G).
      * ``"loo"``: ``f(C) = log(max(C, 1/2) / (G - 1))`` — the LOO frequency, with a zero count floored at
        ``LOO_ZERO_COUNT_FLOOR`` = 1/2 so the estimate is finite.
      * ``"minimax"``: the table minimizing ``sup_{p in [0,1]} |p (E f(C) - log p)|``, computed by an LP
        (HiGHS) with an exchange loop until the sup verified on a fine grid (+ scalar refinement) matches
        the LP's grid sup within ``EXCHANGE_RTOL``. Worst case ~ 0.32/G^2 (T8). **Warning:** the table
        entries alternate in sign and grow like 2^G (max |f| ~ 3, 4.5, 1.4e2, 2e6 at G = 4, 8, 16, 32), so
        the estimator's standard deviation does too (max over p ~ 1.4, 2.5, 1.1e2, 1.6e6) — unbiased
        enough for exact effective-reward computations, but far too noisy for sampled training beyond
        G ~ 8. Refused (DomainError) from G = 44 on, where float64 cannot even store it accurately.
      * ``"minimax_monotone"`` (extension): the same LP restricted to nondecreasing tables. Worst case
        ~ 0.06/G (about 7-9x below the plug-in for G = 8..64), standard deviation <= ~1.6 for all G.
      * ``"aqp"`` (T12): the least worst-case bias under the variance budget
        ``∫₀¹ p² Var_p f(C) dp <= kappa / (6 (G-1))`` (``kappa`` times the integrated Cramér–Rao floor;
        default ``AQP_DEFAULT_KAPPA`` = 2), a convex SOCP (:func:`aqp_solution`). Worst case ≈ 0.12/(G ln G)
        at κ = 2 (7.3e-3, 2.7e-3, 1.1e-3, 4.6e-4 at G = 8, 16, 32, 64) with bounded entries: the
        variance-aware choice for sampled training. At the default κ and G <= ``AQP_SHIPPED_MAX_G`` the
        table is read from the shipped package data (no solve); otherwise solved once and cached.

    ``kappa`` is accepted only with ``kind="aqp"``.

    No ``"unbiased"`` kind exists: ``E f(C)`` is a polynomial, bounded on [0, 1], while ``log p`` is not.
    """
    _check_group_size(G)
    G = int(G)
    if kappa is not None and kind != "aqp":
        raise ValidationError(f"kappa applies to kind 'aqp' only, got kind {kind!r}")
    c = np.arange(G, dtype=np.float64)  # (G,)
    if kind == "aqp":
        return _aqp_table(G, AQP_DEFAULT_KAPPA if kappa is None else _check_kappa(kappa))
    if kind == "plugin":
        table = np.log((c + 1.0) / G)
    elif kind == "loo":
        table = np.log(np.maximum(c, LOO_ZERO_COUNT_FLOOR) / (G - 1))
    elif kind == "minimax":
        return _minimax_table(G, ("log",), 0)
    elif kind == "minimax_monotone":
        return _minimax_table(G, ("log",), 1)
    elif kind == "unbiased":
        raise DomainError("estimator 'unbiased' does not exist for log p: no count function is unbiased (T8)")
    else:
        raise ValidationError(f"kind must be one of {LOG_ESTIMATOR_KINDS}, got {kind!r}")
    table.setflags(write=False)
    return table


def power_estimator_table(G: int, power: float, kind: str) -> np.ndarray:
    """Count table ``f`` (shape ``(G,)``) estimating ``p^a`` (``a = power > -1``) from ``C ~ Bin(G-1, p)``.

    kind
      * ``"plugin"``: ``((C + 1) / G)^a`` (self-counting; biased).
      * ``"loo"``: ``(C / (G-1))^a`` for ``a > 0``; for ``a <= 0`` a zero count is floored at 1/2 as in
        ``log_estimator_table``. Biased unless a = 1.
      * ``"unbiased"``: T7's U-statistic ``binom(C, a) / binom(G-1, a)``; exists only for integer
        ``0 <= a <= G-1`` (otherwise DomainError: ``E f(C)`` is a degree-(G-1) polynomial).
      * ``"minimax"``: the U-statistic when it exists (bias 0), else the LP table minimizing
        ``sup_p |p (E f(C) - p^a)|`` (same machinery and variance warning as for log).
      * ``"minimax_monotone"``: the U-statistic when it exists (it is monotone), else the LP restricted to
        tables monotone in the direction of ``p^a``.
    """
    _check_group_size(G)
    G = int(G)
    a = float(power)
    if not np.isfinite(a) or a <= -1.0:
        raise DomainError(f"power must be finite and > -1 (so that p * p^power -> 0), got {power!r}")
    c = np.arange(G, dtype=np.float64)  # (G,)
    integer_ok = a == round(a) and 0 <= a <= G - 1
    if kind == "plugin":
        table = ((c + 1.0) / G) ** a
    elif kind == "loo":
        counts = c if a > 0 else np.maximum(c, LOO_ZERO_COUNT_FLOOR)
        table = (counts / (G - 1)) ** a
    elif kind in ("unbiased", "minimax", "minimax_monotone"):
        if integer_ok:
            table = unbiased_power(c.astype(np.int64), G, int(round(a))).astype(np.float64)
        elif kind == "unbiased":
            raise DomainError(
                f"power = {power!r}: an unbiased count estimator of p^a exists only for integer "
                f"0 <= a <= G-1 = {G - 1}"
            )
        else:
            monotone = 0 if kind == "minimax" else (1 if a > 0 else -1)
            return _minimax_table(G, ("power", a), monotone)
    else:
        raise ValidationError(f"kind must be one of {POWER_ESTIMATOR_KINDS}, got {kind!r}")
    table.setflags(write=False)
    return table


# ================================================================================================
# AQP: variance-aware log tables (T12)
# ================================================================================================
#: T12's default variance budget: κ times the integrated Cramér–Rao floor ∫ p²·p(1−p)/(G−1) dp = 1/(6(G−1)).
AQP_DEFAULT_KAPPA = 2.0
#: Tables at the default κ are shipped for 2 <= G <= this (``dagsim/data/aqp_tables.json``).
AQP_SHIPPED_MAX_G = 64
#: The shipped tables' file and format tag.
AQP_DATA_PATH = Path(__file__).parent / "data" / "aqp_tables.json"
AQP_DATA_FORMAT = "dagsim/aqp-tables/v1"
AQP_REGENERATE_COMMAND = "python -m dagsim.estimators --regenerate-aqp"
#: The SOCP's exchange loop stops when the fine-grid sup of |b| exceeds the grid optimum by at most this
#: relative amount (Clarabel's interior-point tolerances are ~1e-8 absolute against B ~ 1e-3..1e-4).
AQP_EXCHANGE_RTOL = 1e-4
#: Clarabel tolerances (absolute/relative gap and feasibility), tried in order until the status is optimal
#: (1e-8 is Clarabel's default); anything but "optimal" after the last raises SolverError.
_CLARABEL_TOLS = (1e-10, 1e-8)
#: Typical AQP bias is ≈ this / (G ln G) (T12(a)); used only to scale the SOCP's rows.
_AQP_BIAS_SCALE = 0.12
#: Eigenvalues of the (PSD) integrated-variance matrix below this times the largest are rounding: clipped.
_PSD_CLIP_RTOL = 1e-15


def _check_kappa(kappa: float) -> float:
    k = float(kappa)
    if not np.isfinite(k) or k <= 0:
        raise DomainError(f"kappa (the AQP variance budget in Cramér–Rao units) must be finite and > 0, got {kappa!r}")
    return k


@functools.cache
def integrated_variance_matrix(G: int) -> np.ndarray:
    """T12: the PSD matrix ``Q`` (``(G, G)``) with ``∫₀¹ p² Var_p f(C) dp = fᵀ Q f``, ``C ~ Bin(G−1, p)``.

    With ``b_c(p) = C(n, c) p^c (1−p)^(n−c)``, ``n = G−1``:
    ``∫ p² E f² = Σ_c f_c² C(n,c) B(c+3, n−c+1)`` and
    ``∫ p² (E f)² = Σ_{c,d} f_c f_d C(n,c) C(n,d) B(c+d+3, 2n−c−d+1)`` (Beta integrals), so
    ``Q = diag(D) − M``. Read-only, cached.
    """
    _check_group_size(G)
    n = int(G) - 1
    c = np.arange(n + 1, dtype=np.float64)  # (G,)
    log_binom = gammaln(n + 1) - gammaln(c + 1) - gammaln(n - c + 1)  # (G,)
    diag = np.exp(log_binom + betaln(c + 3.0, n - c + 1.0))  # (G,)
    cc = c[:, None] + c[None, :]  # (G, G)
    gram = np.exp(log_binom[:, None] + log_binom[None, :] + betaln(cc + 3.0, 2 * n - cc + 1.0))  # (G, G)
    q = np.diag(diag) - gram
    q = 0.5 * (q + q.T)
    q.setflags(write=False)
    return q


@functools.cache
def _variance_factor(G: int) -> np.ndarray:
    """``L`` with ``LᵀL = Q`` (eigen-decomposition; rounding-level negative eigenvalues clipped), (G, G)."""
    w, v = np.linalg.eigh(integrated_variance_matrix(G))
    w = np.where(w > _PSD_CLIP_RTOL * w.max(), w, 0.0)
    out = np.sqrt(w)[:, None] * v.T
    out.setflags(write=False)
    return out


def integrated_variance(table_or_kind: np.ndarray | str, G: int) -> float:
    """T12: ``∫₀¹ p² Var_p f(C) dp`` of a log table (or a ``log_estimator_table`` kind), exactly (Beta integrals).

    The plug-in's is ≈ 1/(6(G−1)) times a constant; the minimax table's explodes (0.437, 935, 1.6e11 at
    G = 8, 16, 32, T8). Computed as ``‖L f‖²`` (``LᵀL = Q``), which is non-negative by construction.
    """
    _check_group_size(G)
    table = _resolve_table(table_or_kind, int(G))
    return float(np.sum((_variance_factor(int(G)) @ table) ** 2))


def _p_weighted_error(G: int, table: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: p * (binomial_pmf(G - 1, p) @ table) - xlogy(p, p)


def _solve_socp(G: int, *, variance_budget: float | None = None, bias_bound: float | None = None
                ) -> tuple[np.ndarray, float, float]:
    """T12's SOCP with an exchange loop on the p-grid, verified on the fine grid.

    Exactly one of: ``variance_budget`` — minimize ``B(f)`` s.t. ``‖L f‖² <= budget``; ``bias_bound`` —
    minimize ``‖L f‖²`` s.t. ``|b_f(p)| <= bound`` on the grid. Variables are the table entries
    (Bernstein coefficients); the variance budget keeps them bounded, so the basis is well conditioned
    enough (the verified sup is computed from the float64 table itself). Returns (table, verified sup of
    ``|b_f|``, ``∫p²Var``). Raises SolverError on a non-optimal status or a non-converging exchange.
    """
    import cvxpy as cp

    L = _variance_factor(G)
    grid = _lp_grid(_LP_GRID_SIZE, _LP_LOG_GRID)
    fine = _lp_grid(_FINE_GRID_SIZE, _FINE_LOG_GRID)
    # Conditioning: the bias rows are divided by a typical bias (the bound, or T12's ≈ 0.12/(G ln G) scale)
    # and the variance by its budget, so every constraint is O(1) (unscaled, Clarabel reports "inaccurate"
    # at G = 32, bias bound 2E*). The optimum does not depend on these scales.
    bias_scale = float(bias_bound) if bias_bound is not None else _AQP_BIAS_SCALE / (G * math.log(G))
    for _ in range(_EXCHANGE_MAX_ITER):
        design = grid[:, None] * binomial_pmf(G - 1, grid) / bias_scale  # (n_grid, G)
        target = xlogy(grid, grid) / bias_scale  # (n_grid,)
        f = cp.Variable(G)
        if variance_budget is not None:
            t = cp.Variable()
            problem = cp.Problem(cp.Minimize(t), [cp.abs(design @ f - target) <= t,
                                                  cp.norm(L @ f / math.sqrt(variance_budget), 2) <= 1.0])
        else:
            t = cp.Variable()
            problem = cp.Problem(cp.Minimize(t), [cp.abs(design @ f - target) <= 1.0, cp.norm(L @ f, 2) <= t])
        for tol in _CLARABEL_TOLS:  # tight first; Clarabel's defaults if it reports an inaccurate optimum
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # cvxpy's "may be inaccurate": status checked
                    problem.solve(solver="CLARABEL", tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol)
            except cp.error.SolverError as exc:
                raise SolverError(f"AQP SOCP (G={G}) failed in Clarabel: {exc}") from None
            if problem.status == cp.OPTIMAL:
                break
        if problem.status != cp.OPTIMAL:
            raise SolverError(f"AQP SOCP (G={G}, variance budget {variance_budget}, bias bound {bias_bound}) "
                              f"ended with status {problem.status!r}")
        table = np.asarray(f.value, dtype=np.float64)
        grid_sup = float(t.value) * bias_scale if variance_budget is not None else float(bias_bound)
        sup, _, peaks = _sup_abs(_p_weighted_error(G, table), fine)
        if sup <= grid_sup * (1.0 + AQP_EXCHANGE_RTOL):
            return table, sup, float(np.sum((L @ table) ** 2))
        grid = np.unique(np.concatenate([grid, peaks]))
    raise SolverError(f"AQP exchange (G={G}) did not converge in {_EXCHANGE_MAX_ITER} iterations: verified "
                      f"sup {sup:.10g} vs grid sup {grid_sup:.10g}")


@functools.cache
def _aqp_solved(G: int, kappa: float) -> tuple[tuple[float, ...], float, float]:
    table, sup, var = _solve_socp(G, variance_budget=kappa / (6.0 * (G - 1)))
    return tuple(float(x) for x in table), sup, var


@functools.cache
def _shipped_aqp() -> dict:
    """The shipped AQP tables at ``AQP_DEFAULT_KAPPA`` ({G: entry}); empty if the data file is absent."""
    if not AQP_DATA_PATH.exists():
        return {}
    data = json.loads(AQP_DATA_PATH.read_text(encoding="utf-8"))
    if data.get("format") != AQP_DATA_FORMAT or float(data.get("kappa", -1)) != AQP_DEFAULT_KAPPA:
        raise ValidationError(f"{AQP_DATA_PATH}: expected format {AQP_DATA_FORMAT!r} at kappa {AQP_DEFAULT_KAPPA}; "
                              f"regenerate with `{AQP_REGENERATE_COMMAND}`")
    return {int(g): entry for g, entry in data["tables"].items()}


def aqp_solution(G: int, kappa: float = AQP_DEFAULT_KAPPA, *, use_shipped: bool = True) -> dict:
    """T12: ``AQP_κ(G) = argmin_f B(f) s.t. ∫₀¹ p² Var_p f(C) dp <= κ/(6(G−1))``, ``C ~ Bin(G−1, p)``.

    Returns ``{"table": (G,) read-only, "worst_case_bias": B (verified on the fine grid),
    "integrated_variance": ∫p²Var, "variance_budget": κ/(6(G−1)), "kappa": κ, "source": "shipped" | "solved"}``.
    ``use_shipped=False`` forces the solve (the regeneration and the test that compares them use it).
    """
    _check_group_size(G)
    G, kappa = int(G), _check_kappa(kappa)
    shipped = _shipped_aqp() if use_shipped and kappa == AQP_DEFAULT_KAPPA else {}
    if G in shipped:
        entry = shipped[G]
        table, sup, var, source = entry["table"], entry["worst_case_bias"], entry["integrated_variance"], "shipped"
    else:
        table, sup, var = _aqp_solved(G, kappa)
        source = "solved"
    arr = np.array(table, dtype=np.float64)
    arr.setflags(write=False)
    return {"table": arr, "worst_case_bias": float(sup), "integrated_variance": float(var),
            "variance_budget": kappa / (6.0 * (G - 1)), "kappa": kappa, "source": source}


@functools.cache
def _aqp_table(G: int, kappa: float) -> np.ndarray:
    return aqp_solution(G, kappa)["table"]


@functools.cache
def _min_variance_solved(G: int, bias_bound: float) -> tuple[tuple[float, ...], float, float]:
    table, sup, var = _solve_socp(G, bias_bound=bias_bound)
    return tuple(float(x) for x in table), sup, var


def min_variance_log_table(G: int, bias_bound: float) -> dict:
    """T12's other parametrization: the least ``∫p²Var`` among tables with ``B(f) <= bias_bound``.

    ``bias_bound`` must exceed the minimax value ``E*_G`` (T8): at ``(1+ε)E*_G`` with ε → 0 the table tends
    to the unique minimax table (T12(d)); ε → 0 needs ever larger entries, and the Bernstein-basis solve
    stalls for G ≳ 16 (use the T8 table itself there). Returns the same keys as :func:`aqp_solution`
    (``kappa`` = the κ this variance corresponds to).
    """
    _check_group_size(G)
    G = int(G)
    bound = float(bias_bound)
    floor = minimax_log_bias(G)
    if not np.isfinite(bound) or bound <= floor:
        raise DomainError(f"bias_bound {bias_bound!r} must exceed the minimax value E*_{G} = {floor:.6g} (T8)")
    table, sup, var = _min_variance_solved(G, bound)
    arr = np.array(table)
    arr.setflags(write=False)
    return {"table": arr, "worst_case_bias": sup, "integrated_variance": var, "variance_budget": var,
            "kappa": var * 6.0 * (G - 1), "bias_bound": bound, "source": "solved"}


def bias_variance_frontier(G: int, kappas: Sequence[float]) -> list[dict]:
    """T12's frontier at group size G: ``{"kappa", "worst_case_bias", "integrated_variance"}`` per κ."""
    rows = []
    for k in kappas:
        sol = aqp_solution(G, k)
        rows.append({"kappa": sol["kappa"], "worst_case_bias": sol["worst_case_bias"],
                     "integrated_variance": sol["integrated_variance"]})
    return rows


def regenerate_aqp_tables(path: str | os.PathLike = AQP_DATA_PATH, max_g: int = AQP_SHIPPED_MAX_G) -> dict:
    """Solve the AQP tables for G = 2..``max_g`` at ``AQP_DEFAULT_KAPPA`` and write them atomically with provenance."""
    import platform

    import clarabel
    import cvxpy
    import scipy

    tables = {}
    for G in range(2, int(max_g) + 1):
        table, sup, var = _aqp_solved(G, AQP_DEFAULT_KAPPA)
        tables[str(G)] = {"table": list(table), "worst_case_bias": sup, "integrated_variance": var,
                          "variance_budget": AQP_DEFAULT_KAPPA / (6.0 * (G - 1))}
    data = {
        "format": AQP_DATA_FORMAT,
        "claim": "THEORY T12: argmin_f sup_p |p (E f(C) - log p)| s.t. int_0^1 p^2 Var_p f(C) dp <= kappa/(6(G-1)), "
                 "C ~ Bin(G-1, p)",
        "kappa": AQP_DEFAULT_KAPPA,
        "command": AQP_REGENERATE_COMMAND,
        "solver": "cvxpy + CLARABEL (SOCP), exchange on a p-grid, sup verified on a fine grid",
        "exchange_rtol": AQP_EXCHANGE_RTOL,
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
                     "cvxpy": cvxpy.__version__, "clarabel": getattr(clarabel, "__version__", "unknown")},
        "tables": tables,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    _shipped_aqp.cache_clear()
    _aqp_table.cache_clear()
    return data


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dagsim.estimators", description="estimator tables (T8, T12)")
    ap.add_argument("--regenerate-aqp", action="store_true",
                    help=f"solve and write the shipped AQP tables (κ = {AQP_DEFAULT_KAPPA}, G = 2..max-g)")
    ap.add_argument("--out", default=str(AQP_DATA_PATH), help="output JSON path")
    ap.add_argument("--max-g", type=int, default=AQP_SHIPPED_MAX_G, help="largest group size")
    args = ap.parse_args(argv)
    if not args.regenerate_aqp:
        ap.print_help()
        return 2
    if args.max_g < 2:
        print("error: --max-g must be >= 2")
        return 2
    data = regenerate_aqp_tables(args.out, args.max_g)
    for g, e in data["tables"].items():
        print(f"G={g:>3}  B={e['worst_case_bias']:.6g}  int_p2Var={e['integrated_variance']:.6g}")
    print(f"wrote {args.out}")
    return 0


# ================================================================================================
# Exact bias and variance by binomial sums
# ================================================================================================
def _resolve_table(table_or_fn: np.ndarray | Callable | str, G: int) -> np.ndarray:
    if isinstance(table_or_fn, str):
        return log_estimator_table(G, table_or_fn)
    if callable(table_or_fn):
        table = np.asarray(table_or_fn(np.arange(G), G), dtype=np.float64)
    else:
        table = np.asarray(table_or_fn, dtype=np.float64)
    if table.shape != (G,):
        raise ValidationError(f"estimator table must have shape (G,) = ({G},), got {table.shape}")
    return table


def _resolve_target(target: str | float) -> tuple:
    if isinstance(target, str):
        if target != "log":
            raise ValidationError(f"target must be 'log' or a power (float), got {target!r}")
        return ("log",)
    return ("power", float(target))


def exact_bias_variance(
    table_or_fn: np.ndarray | Callable | str, G: int, p: np.ndarray, *, target: str | float = "log"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``(bias, variance)`` of a count estimator at each ``p`` (vectorized), by binomial sums.

    ``table_or_fn``: a table of shape ``(G,)``, a function ``fn(C, G) -> values`` (called once on
    ``C = 0..G-1``), or a kind of ``log_estimator_table``. ``target``: ``"log"`` (estimand log p) or a
    float ``a`` (estimand p^a). ``bias = E f(C) - target(p)`` (unweighted; ``-inf``/``inf`` at p = 0 for
    log), ``variance = Var f(C)`` with ``C ~ Bin(G-1, p)``. For the p-weighted bias use ``weighted_bias``.
    """
    _check_group_size(G)
    table = _resolve_table(table_or_fn, int(G))  # (G,)
    tgt = _resolve_target(target)
    p = np.asarray(p, dtype=np.float64)
    pmf = binomial_pmf(int(G) - 1, p)  # (..., G)
    mean = pmf @ table  # (...,)
    centered = table - mean[..., None]  # (..., G)
    variance = np.einsum("...c,...c->...", pmf, centered**2)  # two-pass: no E f^2 - (E f)^2 cancellation
    with np.errstate(invalid="ignore"):
        bias = mean - _target_value(tgt, p)
    return bias, variance


def weighted_bias(
    table_or_fn: np.ndarray | Callable | str, G: int, p: np.ndarray, *, target: str | float = "log"
) -> np.ndarray:
    """p-weighted bias ``p * (E f(C) - t(p))`` (T8's quantity), exact at p = 0 (value 0)."""
    _check_group_size(G)
    table = _resolve_table(table_or_fn, int(G))
    tgt = _resolve_target(target)
    p = np.asarray(p, dtype=np.float64)
    return p * (binomial_pmf(int(G) - 1, p) @ table) - _target_weighted(tgt, p)


def worst_case_bias(kind: str | np.ndarray, G: int, *, target: str | float = "log") -> float:
    """``sup_{p in [0,1]} |p (E f(C) - t(p))|`` on a fine p-grid refined by scalar searches (T8).

    ``kind``: a ``log_estimator_table`` kind or a table. For ``kind="minimax"`` with the log target this
    is the verified LP optimum (the exact-arithmetic table's bias; ``minimax_log_bias``), defined for
    any G; the float64 table, where returned, realizes it within ``REALIZATION_RTOL``.
    """
    _check_group_size(G)
    tgt = _resolve_target(target)
    if isinstance(kind, str) and kind in ("minimax", "minimax_monotone") and tgt == ("log",):
        return minimax_log_bias(int(G), monotone=kind == "minimax_monotone")
    table = _resolve_table(kind, int(G))
    fine = _lp_grid(_FINE_GRID_SIZE, _FINE_LOG_GRID)
    sup, _, _ = _sup_abs(lambda p: p * (binomial_pmf(int(G) - 1, p) @ table) - _target_weighted(tgt, p), fine)
    return sup


if __name__ == "__main__":
    raise SystemExit(_main())
