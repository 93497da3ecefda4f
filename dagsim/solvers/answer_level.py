"""One entry point for the answer-level programs (E2)/(E5): closed form, exact dual, or cvxpy.

    sol = solve_answer_level(obj, nu0, beta, constraints=(), method="auto")

``method="auto"`` uses the objective's closed form when it exists and there are no constraints, otherwise
the fast exact solver (solvers/exact.py), and cvxpy only for families without an exact solver.
``nu0`` is (K,) for single-view objectives and (m, K) for multi-view ones (one reference per view).
"""

from __future__ import annotations

from collections.abc import Sequence

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, ValidationError
from dagsim.solvers.cvx import solve_cvxpy
from dagsim.solvers.exact import closed_form_solution, has_exact_solver, solve_exact
from dagsim.solvers.result import AnswerSolution, validate_problem

METHODS = ("auto", "closed-form", "dual", "cvxpy")


def solve_answer_level(
    obj, nu0, beta: float, constraints: Sequence[LinearConstraint] = (), method: str = "auto"
) -> AnswerSolution:
    """Solve max Φ(ν) − β KL(ν‖ν0) s.t. constraints (E2), or (E5) for a multi-view objective.

    ``method``: "auto" | "closed-form" (DomainError if there is none in this regime or with constraints) |
    "dual" (the exact solver) | "cvxpy" (ground truth). The returned :class:`AnswerSolution` records the
    method and solver actually used and its KKT certificate.
    """
    if method not in METHODS:
        raise ValidationError(f"method must be one of {METHODS}, got {method!r}")
    nu0_checked, beta_checked, constraints = validate_problem(obj, nu0, beta, constraints)
    if method == "cvxpy":
        return solve_cvxpy(obj, nu0, beta, constraints)
    if method == "dual" or (method == "auto" and has_exact_solver(obj) and constraints):
        return solve_exact(obj, nu0, beta, constraints)
    closed = None if constraints else obj.closed_form(nu0_checked, beta_checked)
    if closed is not None:
        return closed_form_solution(obj, nu0_checked, beta_checked, method="closed-form")
    if method == "closed-form":
        why = "with linear constraints" if constraints else f"at beta={beta_checked}, tau={obj.tau}"
        raise DomainError(f"objective {obj.name!r} has no closed form {why}; use method='dual' or 'cvxpy'")
    if has_exact_solver(obj):
        return solve_exact(obj, nu0, beta, constraints)
    return solve_cvxpy(obj, nu0, beta, constraints)
