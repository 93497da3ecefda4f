"""T12 (AQP: variance-aware log tables).

The tables come from ``dagsim.estimators`` (the SOCP of T12, shipped at κ = 2); everything they are judged
by is computed here independently: the worst-case p-weighted bias by an explicit Bernstein sum with
``scipy.stats.binom`` weights on a fine grid refined by bounded scalar searches, and the integrated variance
``∫₀¹ p² Var_p f(C) dp`` by Gauss–Legendre quadrature of the two-pass variance (dagsim uses Beta integrals).
E*_32 is dagsim's Chebyshev-basis LP; the control poses the LP on the table entries (Bernstein basis).

Controls (both must miss; the control "passes" only if one of them reproduces T12): (1) κ = 1 in place of
κ = 2 misses (a); (2) an LP on the table entries misses E*_32 = 3.1739e-4.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linprog, minimize_scalar
from scipy.special import xlogy
from scipy.stats import binom

from dagsim.estimators import (
    aqp_solution,
    log_estimator_table,
    min_variance_log_table,
    minimax_log_bias,
)
from dagsim.tolerances import T12_QUOTED
from proofs_check.checks._subclaims import SubClaim, combine, json_float
from proofs_check.registry import Context, Evidence, check

#: The κ = 1 control solves its tables (not shipped): two group sizes suffice to miss (a).
CONTROL_KAPPA_GROUPS = (8, 16)
#: T12(a): B at κ = 2.
T12_A = {8: 7.313e-3, 16: 2.728e-3, 32: 1.0896e-3, 64: 4.568e-4}
#: T12(a): G·ln G·B ∈ [0.119, 0.124] over G = 8 … 128 (full run; quick: the shipped G ≤ 64).
T12_A_RANGE = (0.119, 0.124)
T12_A_GROUPS = ((8, 12, 16, 24, 32, 48, 64, 96, 128), (8, 16, 32, 64))
#: T12(b): min ∫p²Var s.t. B ≤ m·E*_G, for m = 4 and 2.
T12_B = {(8, 4): 0.0247, (16, 4): 0.01246, (32, 4): 0.00725, (8, 2): 0.0323, (16, 2): 0.0290, (32, 2): 4.62}
#: T12(c): AQP's B at the monotone minimax table's variance, and that table's B.
T12_C = {8: 8.41e-3, 16: 3.12e-3, 32: 1.242e-3}
T12_C_MONOTONE = {8: 9.004e-3, 16: 4.084e-3, 32: 1.955e-3}
#: T12(d): ∫p²Var of the T8 minimax table.
T12_D = {8: 0.437, 16: 935.0, 32: 1.60e11}
#: E*_32 (T8), which an LP posed directly on the table entries misses.
E_STAR_32 = 3.1739e-4
#: (d) ε → 0: at B ≤ (1 + ε)E*_8 the least variance approaches the minimax table's from below.
EPSILON_D = 1e-3
TOL_EPSILON_D = 0.02
#: The variance budget is met up to the SOCP's feasibility tolerance (relative).
TOL_BUDGET = 1e-6
#: Gauss–Legendre nodes: exact for the degree-(2G) integrand p²·Var_p f(C) when G ≤ 128.
QUADRATURE_NODES = 400
#: Fine grid (sin²-spaced + log-spaced near 0) and the number of peaks refined by scalar searches.
GRID_SIN2 = (60_000, 20_000)
GRID_LOG = (-16.0, -1.0, 3000)


def _grid(n: int) -> np.ndarray:
    k = np.arange(n + 1)
    return np.unique(np.concatenate([np.sin(np.pi * k / (2 * n)) ** 2, np.logspace(*GRID_LOG[:2], int(GRID_LOG[2]))]))


def _bias(table: np.ndarray, p: np.ndarray) -> np.ndarray:
    """b(p) = p·E f(C) − p log p, C ~ Bin(G−1, p), with scipy.stats.binom weights."""
    n = table.size - 1
    pmf = binom.pmf(np.arange(n + 1)[None, :], n, np.asarray(p)[:, None])  # (n_p, G)
    return p * (pmf @ table) - xlogy(p, p)


def worst_bias(table: np.ndarray, grid: np.ndarray) -> float:
    e = np.abs(_bias(table, grid))
    peaks = np.flatnonzero((e[1:-1] >= e[:-2]) & (e[1:-1] >= e[2:])) + 1
    peaks = np.append(peaks[np.argsort(e[peaks])[::-1][: 2 * table.size]], int(np.argmax(e)))
    best = float(e.max())
    for i in peaks:
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, e.size - 1)]
        if hi > lo:
            res = minimize_scalar(lambda x: -abs(float(_bias(table, np.array([x]))[0])), bounds=(lo, hi),
                                  method="bounded", options={"xatol": 1e-15})
            best = max(best, -float(res.fun))
    return best


def quadrature_variance(table: np.ndarray) -> float:
    """∫₀¹ p² Var_p f(C) dp by Gauss–Legendre, the variance in two passes (no E f² − (E f)² cancellation)."""
    n = table.size - 1
    x, w = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    p, w = 0.5 * (x + 1.0), 0.5 * w
    pmf = binom.pmf(np.arange(n + 1)[None, :], n, p[:, None])  # (nodes, G)
    mean = pmf @ table
    var = np.einsum("pc,pc->p", pmf, (table[None, :] - mean[:, None]) ** 2)
    return float(w @ (p**2 * var))


def lp_on_entries(G: int, grid: np.ndarray) -> float:
    """The control's minimax value: the LP min_f max_grid |b_f| posed on the table entries (Bernstein
    basis, HiGHS), evaluated by its true sup. Ill conditioned from G ~ 24 on: it stalls above E*_G."""
    design = grid[:, None] * binom.pmf(np.arange(G)[None, :], G - 1, grid[:, None])  # (n, G)
    target = xlogy(grid, grid)
    ones = np.ones((grid.size, 1))
    res = linprog(np.r_[np.zeros(G), 1.0], A_ub=np.block([[design, -ones], [-design, -ones]]),
                  b_ub=np.r_[target, -target], bounds=[(None, None)] * (G + 1), method="highs")
    if res.status != 0:
        return math.inf
    return worst_bias(res.x[:G], _grid(GRID_SIN2[1]))


def _t12(ctx: Context, *, kappa: float = 2.0, entries_lp: bool = False, groups: tuple | None = None) -> Evidence:
    subs = {
        "a_values": SubClaim("(a) κ = 2: B = 7.313e-3, 2.728e-3, 1.0896e-3, 4.568e-4 at G = 8, 16, 32, 64 "
                             "(relative error)", T12_QUOTED),
        "a_rate": SubClaim("(a) G·ln G·B ∈ [0.119, 0.124] for G = 8 … 128 (distance outside, relative)", T12_QUOTED),
        "budget": SubClaim("the table meets its variance budget ∫p²Var ≤ κ/(6(G−1)) (quadrature; relative "
                           "excess)", TOL_BUDGET),
        "b_frontier": SubClaim("(b) min ∫p²Var s.t. B ≤ 4E*: 0.0247, 0.01246, 0.00725; s.t. B ≤ 2E*: 0.0323, "
                               "0.0290, 4.62 (relative)", T12_QUOTED),
        "c_monotone_variance": SubClaim("(c) at the monotone minimax table's variance AQP reaches B = 8.41e-3, "
                                        "3.12e-3, 1.242e-3; that table's B = 9.004e-3, 4.084e-3, 1.955e-3",
                                        T12_QUOTED),
        "d_minimax_variance": SubClaim("(d) the T8 table's ∫p²Var = 0.437, 935, 1.60e11 (relative)", T12_QUOTED),
        "d_limit": SubClaim("(d) ε → 0: at B ≤ (1+1e-3)E*_8 the least ∫p²Var is within 2 % below 0.437",
                            TOL_EPSILON_D),
        "e_star_32": SubClaim("T8's E*_32 = 3.1739e-4 (well-conditioned basis; relative)", T12_QUOTED),
    }
    grid = _grid(ctx.n(*GRID_SIN2))
    rows = []
    for G in groups or T12_A_GROUPS[1 if ctx.quick else 0]:
        table = np.asarray(log_estimator_table(G, "aqp", kappa=kappa))
        B = worst_bias(table, grid)
        var = quadrature_variance(table)
        budget = kappa / (6.0 * (G - 1))
        subs["budget"].record(max(0.0, var / budget - 1.0))
        lo, hi = T12_A_RANGE
        scaled = G * math.log(G) * B
        subs["a_rate"].record(max(0.0, lo - scaled, scaled - hi) / lo)
        row = {"G": G, "worst_case_bias": B, "G_lnG_B": scaled, "integrated_variance": var, "budget": budget}
        if G in T12_A:
            subs["a_values"].record(abs(B - T12_A[G]) / T12_A[G])
            row["theory"] = T12_A[G]
        rows.append({k: json_float(v) if isinstance(v, float) else v for k, v in row.items()})
    frontier = []
    for (G, m), want in T12_B.items():
        if ctx.quick and G > 16:
            continue
        sol = min_variance_log_table(G, m * minimax_log_bias(G))
        var = quadrature_variance(np.asarray(sol["table"]))
        subs["b_frontier"].record(abs(var - want) / want)
        frontier.append({"G": G, "bound": f"{m}E*", "integrated_variance": var, "theory": want,
                         "worst_case_bias": worst_bias(np.asarray(sol["table"]), grid)})
    monotone = []
    for G, want in T12_C.items():
        if ctx.quick and G > 16:
            continue
        mono = np.asarray(log_estimator_table(G, "minimax_monotone"))
        b_mono, v_mono = worst_bias(mono, grid), quadrature_variance(mono)
        sol = aqp_solution(G, v_mono * 6.0 * (G - 1))
        b_aqp = worst_bias(np.asarray(sol["table"]), grid)
        subs["c_monotone_variance"].record(max(abs(b_aqp - want) / want,
                                               abs(b_mono - T12_C_MONOTONE[G]) / T12_C_MONOTONE[G]))
        monotone.append({"G": G, "monotone_B": b_mono, "monotone_variance": v_mono, "aqp_B": b_aqp,
                         "theory_aqp_B": want})
    for G, want in T12_D.items():
        var = quadrature_variance(np.asarray(log_estimator_table(G, "minimax")))
        subs["d_minimax_variance"].record(abs(var - want) / want)
    near = min_variance_log_table(8, (1.0 + EPSILON_D) * minimax_log_bias(8))
    v_near = quadrature_variance(np.asarray(near["table"]))
    v_star = quadrature_variance(np.asarray(log_estimator_table(8, "minimax")))
    subs["d_limit"].record((v_star - v_near) / v_star if v_near <= v_star * (1 + TOL_BUDGET) else math.inf)
    e32 = lp_on_entries(32, _grid(2000)) if entries_lp else minimax_log_bias(32)
    subs["e_star_32"].record(abs(e32 - E_STAR_32) / E_STAR_32)
    extra = {"kappa": kappa, "minimax_value_source": "LP on table entries" if entries_lp else "Chebyshev LP",
             "E_star_32": json_float(e32), "aqp_table": rows, "frontier": frontier,
             "at_monotone_variance": monotone, "d_near_limit_variance": v_near,
             "e_measured": "sampled GRPO (T12(e)) is measured, not checked: bench/experiments_aqp.py -> "
                           "results/aqp_experiments.json"}
    return combine(subs, extra)


def _t12_controls(ctx: Context) -> Evidence:
    """Both wrong variants; the control passes (i.e. fails to fail) if either reproduces T12."""
    wrong_kappa = _t12(ctx, kappa=1.0, groups=CONTROL_KAPPA_GROUPS)
    wrong_lp = _t12(ctx, entries_lp=True)
    worst = min(wrong_kappa.max_error, wrong_lp.max_error)
    return Evidence(min(wrong_kappa.instances, wrong_lp.instances), worst, 1.0,
                    {"kappa_1": wrong_kappa.max_error, "lp_on_entries": wrong_lp.max_error})


check("T12", "AQP tables: least worst-case bias under ∫p²Var ≤ κ/(6(G−1)); THEORY's values (a)–(d)",
      control=_t12_controls,
      control_description="κ = 1 in place of κ = 2 (misses (a)); and, separately, an LP on the table entries "
                          "for E*_32 (misses 3.1739e-4); the control fails only if both miss")(_t12)
