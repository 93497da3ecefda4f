"""Sharpen, β ≤ τ: the maximum of a convex function over a polytope is at a vertex (T2).

Without constraints the closed form is the table's vertex (``SharpenObjective.closed_form``). With
constraints: an LP when β = τ (exact); for β < τ (convex maximization over a polytope) exact enumeration of
the polytope's O(K²) vertices with one constraint, and with several (NP-hard in general) the best vertex of
successive linear programs (status "vertex"; the note says it is not certified global).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog

from dagsim.errors import DomainError, InfeasibleError, SolverError
from dagsim.objectives.reward import RewardObjective
from dagsim.solvers.common import finish
from dagsim.solvers.common import slack as _slack
from dagsim.solvers.dual import separable_dual
from dagsim.solvers.result import AnswerSolution, constraint_arrays

#: Successive-LP passes for sharpen with β < τ and constraints (each pass can only shrink the face).
MAX_SLP = 50


def _lp_max(c: np.ndarray, H: np.ndarray, b: np.ndarray, is_eq: np.ndarray):
    """max ⟨c, ν⟩ over {ν ∈ Δ, Hν ≤ b (ineq), Hν = b (eq)} by HiGHS; returns (ν, λ) with λ = ∂V/∂b."""
    n_s, n = c.size, b.size
    res = linprog(
        -c,
        A_ub=H[~is_eq] if np.any(~is_eq) else None,
        b_ub=b[~is_eq] if np.any(~is_eq) else None,
        A_eq=np.vstack([np.ones((1, n_s)), H[is_eq]]),
        b_eq=np.concatenate([[1.0], b[is_eq]]),
        bounds=(0, None),
        method="highs",
    )
    if res.status == 2:
        raise InfeasibleError("constraints admit no answer distribution supported on supp(nu0)")
    if res.status != 0:
        raise SolverError(f"linear program failed: {res.message}")
    lam = np.zeros(n)
    if np.any(~is_eq):
        lam[~is_eq] = -res.ineqlin.marginals
    lam[is_eq] = -res.eqlin.marginals[1:]
    return res.x, lam


def _single_constraint_vertices(h: np.ndarray, b: float, equality: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All vertices of {ν ∈ Δ_S : ⟨h, ν⟩ ≤ b (or = b)} as (i, j, θ): ν = θ e_i + (1 − θ) e_j.

    A vertex has at most two nonzeros: a simplex vertex e_i with h_i ≤ b (= b for an equality), or the
    point of the edge [e_i, e_j] with h_i < b < h_j where the constraint is tight.
    """
    idx = np.arange(h.size)
    ok = np.isclose(h, b, rtol=0, atol=0) if equality else h <= b
    below, above = idx[h < b], idx[h > b]
    ii, jj = np.repeat(below, above.size), np.tile(above, below.size)
    theta = (h[jj] - b) / (h[jj] - h[ii])
    return (
        np.concatenate([idx[ok], ii]),
        np.concatenate([idx[ok], jj]),
        np.concatenate([np.ones(int(ok.sum())), theta]),
    )


def _sharpen_vertex(problem) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Sharpen with β ≤ τ and constraints: the maximum of a convex function over a polytope is at a vertex.

    f(ν) = ⟨c, ν⟩ + (τ − β) Σ ν log ν with c = r + β log ν0. β = τ: f is linear, one LP is exact. β < τ with
    one constraint: exact enumeration of the polytope's vertices (at most two nonzeros each, O(K²)). β < τ
    with several constraints: best vertex among the LP for c and successive LPs (linearize at the current
    point, re-solve on its face) from the maximum-entropy feasible point — a heuristic (convex
    maximization over a polytope is NP-hard in general). Returns (ν, λ, residual, note); λ and the residual
    come from the LP of f's linearization on ν's face (residual = its gain over ν, 0 at a fixed point).
    """
    obj, nu0, beta, constraints = problem.objective, problem.nu0, problem.beta, problem.constraints
    K = obj.n_answers
    support = np.flatnonzero(nu0 > 0)
    H_all, b, is_eq = constraint_arrays(constraints, K)
    c = obj.task_reward[support] + beta * np.log(nu0[support])
    kappa = obj.tau - beta

    def full(x_s: np.ndarray, idx: np.ndarray) -> np.ndarray:
        x = np.zeros(K)
        x[idx] = np.maximum(x_s, 0.0)
        return x / x.sum()

    def face_lp(v: np.ndarray):
        face = np.flatnonzero(v > 0)
        grad = c[np.searchsorted(support, face)] + kappa * (np.log(v[face]) + 1.0)
        x_face, lam = _lp_max(grad, H_all[:, face], b, is_eq)
        return max(0.0, float(grad @ x_face - grad @ v[face])), lam

    x_lin, lam_lin = _lp_max(c, H_all[:, support], b, is_eq)
    nu_lin = full(x_lin, support)
    if kappa == 0:
        return nu_lin, lam_lin, 0.0, "linear objective (beta == tau): exact LP vertex"
    f = obj.regularized_value
    if len(constraints) == 1:
        i, j, theta = _single_constraint_vertices(H_all[0, support], float(b[0]), bool(is_eq[0]))
        if i.size == 0:
            raise InfeasibleError("constraint admits no answer distribution supported on supp(nu0)")
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = np.where(theta > 0, theta * np.log(theta), 0.0) + np.where(
                theta < 1, (1 - theta) * np.log1p(-theta), 0.0
            )
        scores = theta * c[i] + (1 - theta) * c[j] + kappa * ent
        k = int(np.argmax(scores))
        best = np.zeros(K)
        best[support[i[k]]] += theta[k]
        best[support[j[k]]] += 1 - theta[k]
        residual, lam = face_lp(best)
        return (
            best,
            lam,
            residual,
            (
                "convex objective (beta < tau), one constraint: exact enumeration of the "
                f"{i.size} vertices of the feasible polytope"
            ),
        )
    uniform = np.zeros(K)
    uniform[support] = 1.0 / support.size
    x = separable_dual(RewardObjective(K), uniform, 1.0, constraints).nu  # max-entropy feasible point
    for _ in range(MAX_SLP):
        face = np.flatnonzero(x > 0)
        grad = c[np.searchsorted(support, face)] + kappa * (np.log(x[face]) + 1.0)
        x_new = full(_lp_max(grad, H_all[:, face], b, is_eq)[0], face)
        if f(x_new, nu0, beta) <= f(x, nu0, beta) + _slack(f(x, nu0, beta)):
            break
        x = x_new
    best = max([nu_lin, x], key=lambda v: f(v, nu0, beta))
    residual, lam = face_lp(best)
    return (
        best,
        lam,
        residual,
        (
            "convex objective (beta < tau), several constraints: best vertex of successive "
            "linear programs; global optimality not certified (convex maximization over a "
            "polytope)"
        ),
    )



def solve_sharpen_vertex(problem) -> AnswerSolution:
    """(E2) for sharpen with β ≤ τ and constraints (module docstring); without constraints the optimum is
    the closed-form vertex, which only ``closed_form`` gives (DomainError here)."""
    if not problem.constraints:
        raise DomainError(
            f"sharpen with beta <= tau (beta={problem.beta}, tau={problem.objective.tau}) and no constraints: "
            "the optimum is the closed-form vertex (T2); there is no dual solve, use method 'closed-form' or 'auto'"
        )
    nu, lam, res, note = _sharpen_vertex(problem)
    return finish(problem, nu, lam, method="dual", solver="highs-lp", status="vertex", residual=res, note=note)
