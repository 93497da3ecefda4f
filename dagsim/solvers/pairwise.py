"""Exact solver of (E5) with pairwise coherence: primal Newton on the stacked marginals (sparse Hessian
β diag(w/ν) + 2τL, one LU per step, Schur complement for the m normalizations), fraction-to-boundary steps
and Armijo search."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from dagsim.errors import SolverError
from dagsim.solvers.common import ARMIJO, KKT_TARGET, MAX_HALVINGS, MAX_NEWTON, finish
from dagsim.solvers.common import slack as _slack
from dagsim.solvers.result import AnswerSolution

#: Fraction of the distance to the boundary a primal Newton step may travel (keeps ν > 0).
BOUNDARY_FRACTION = 0.99


def _pairwise_newton(problem) -> np.ndarray:
    """(E5) with pairwise coherence: primal Newton on the stacked marginals (module docstring)."""
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
    m, K = nu0.shape
    w, tau = obj.weights, obj.tau
    sup = np.flatnonzero(nu0.ravel() > 0)  # (N,) stacked support
    view = sup // K
    wv, rv, log0 = w[view], obj.task_reward[sup % K], np.log(nu0.ravel()[sup])
    L = obj.coupling_matrix()[sup][:, sup].tocsc()
    A = sp.csr_matrix((np.ones(sup.size), (view, np.arange(sup.size))), shape=(m, sup.size))

    def value(x: np.ndarray) -> float:
        return float(wv @ (rv * x - beta * x * (np.log(x) - log0)) - tau * x @ (L @ x))

    def spread(g: np.ndarray) -> float:
        s = g / wv
        return max(float(np.ptp(s[view == j])) / 2 for j in range(m))

    x = nu0.ravel()[sup].copy()
    for _ in range(MAX_NEWTON):
        g = wv * (rv - beta * (np.log(x) - log0 + 1.0)) - 2 * tau * (L @ x)
        if spread(g) <= 0.01 * KKT_TARGET:
            break
        P = (sp.diags(beta * wv / x) + 2 * tau * L).tocsc()
        lu = splu(P)
        Pg = lu.solve(g)
        PA = lu.solve(A.T.toarray())  # (N, m)
        y = np.linalg.solve(A @ PA, A @ Pg)
        d = Pg - PA @ y  # ascent direction on {Σ_view d = 0}
        neg = d < 0
        t = min(1.0, BOUNDARY_FRACTION * float(np.min(-x[neg] / d[neg]))) if np.any(neg) else 1.0
        f0 = value(x)
        for _ in range(MAX_HALVINGS):
            trial = x + t * d
            if np.all(trial > 0) and value(trial) >= f0 + ARMIJO * t * float(g @ d) - _slack(f0):
                break
            t *= 0.5
        else:
            raise SolverError("pairwise coherence: Newton line search failed")
        x = trial
    else:
        raise SolverError(f"pairwise coherence: Newton did not converge in {MAX_NEWTON} iterations")
    nus = np.zeros(m * K)
    nus[sup] = x
    nus = nus.reshape(m, K)
    return nus / nus.sum(axis=1, keepdims=True)



def solve_pairwise(problem) -> AnswerSolution:
    """(E5) for pairwise coherence by primal Newton (module docstring)."""
    nus = _pairwise_newton(problem)
    return finish(problem, nus, None, method="dual", solver="newton-primal", status="optimal")
