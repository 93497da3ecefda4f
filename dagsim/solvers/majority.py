"""Majority: exact by maximizing over the mode z* of the concave problem with reward r + τe_{z*}.

Without constraints this is the closed form (``MajorityObjective.closed_form``); with constraints (or when
the dual route is asked for) a branch and bound over z* using the unconstrained values as upper bounds,
each mode solved by the shared dual.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.special import logsumexp

from dagsim.objectives.base import log_of, softmax_log
from dagsim.solvers.common import finish
from dagsim.solvers.common import slack as _slack
from dagsim.solvers.dual import separable_dual
from dagsim.solvers.result import AnswerSolution, kkt_residual


def _majority_enumeration(problem) -> tuple[np.ndarray, np.ndarray, int, int]:
    """max over the mode choice z* of the constrained concave problem with reward r + τe_{z*}.

    Branch and bound: the unconstrained value β log Σ ν0 e^{(r + τe_{z*})/β} bounds the constrained one
    and increases with the score log ν0 + r/β, so modes are tried by decreasing score until the bound
    falls below the best value found. Returns (ν, λ, z*, number of modes solved).
    """
    obj, nu0, beta = problem.objective, problem.nu0, problem.beta
    support = np.flatnonzero(nu0 > 0)
    logits = log_of(nu0[support]) + obj.task_reward[support] / beta
    p = softmax_log(logits)
    bounds = beta * (logsumexp(logits) + np.log1p(p * np.expm1(obj.tau / beta)))
    best = None
    solved = 0
    for i in np.argsort(-bounds, kind="stable"):
        if best is not None and bounds[i] <= best[0] + _slack(best[0]):
            break
        z = int(support[i])
        sub = obj.mode_subproblem(z)
        res = separable_dual(replace(problem, objective=sub))
        solved += 1
        val = sub.regularized_value(res.nu, nu0, beta)
        if best is None or val > best[0]:
            best = (val, res.nu, res.multipliers, z)
    return best[1], best[2], best[3], solved



def solve_majority(problem) -> AnswerSolution:
    """(E2) for majority by enumeration of the mode choice (module docstring)."""
    nu, lam, z, solved = _majority_enumeration(problem)
    sub = problem.objective.mode_subproblem(z)
    res = kkt_residual(sub, nu, problem.nu0, problem.beta, problem.constraints, lam)
    return finish(problem, nu, lam, method="dual", solver="mode-enumeration+newton-dual", status="optimal",
                  residual=res, note=f"mode z* = {z} ({solved} mode choices solved); kkt_residual is that of the "
                  "concave problem with reward r + tau*e_z*")
