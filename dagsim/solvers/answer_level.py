"""One entry point for the answer-level programs (E2)/(E5): closed form, exact dual, or cvxpy.

    sol = solve_answer_level(problem, method="auto")                          # an AnswerProblem
    sol = solve_answer_level(obj, nu0, beta, constraints=(), method="auto")   # or the loose arguments

``method="auto"`` uses the objective's closed form when it exists and there are no constraints, otherwise
the fast exact solver (solvers/exact.py), and cvxpy only for families without an exact solver. Any other
method runs exactly that method or raises :class:`DomainError` saying why it does not apply; the
returned solution's ``method`` is what ran. ``nu0`` is (K,) for single-view objectives and (m, K) for
multi-view ones (one reference per view).
"""

from __future__ import annotations

from collections.abc import Sequence

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, ValidationError
from dagsim.solvers.common import as_problem, checked
from dagsim.solvers.cvx import cvxpy_checked
from dagsim.solvers.exact import closed_form_solution, dual_checked, exact_checked, has_exact_solver
from dagsim.solvers.result import AnswerSolution

METHODS = ("auto", "closed-form", "dual", "cvxpy")


def solve_answer_level(
    problem, nu0=None, beta: float | None = None, constraints: Sequence[LinearConstraint] = (), method: str = "auto"
) -> AnswerSolution:
    """Solve max Φ(ν) − β KL(ν‖ν0) s.t. constraints (E2), or (E5) for a multi-view objective.

    ``problem``: an :class:`~dagsim.problem.AnswerProblem` or the objective (then ``nu0``, ``beta``,
    ``constraints`` as before). ``method``: "auto" | "closed-form" (DomainError if there is none in this
    regime or with constraints) | "dual" (the family's exact algorithm, never the closed form; DomainError
    where it has none) | "cvxpy" (ground truth; DomainError for families cvxpy cannot express). The
    returned :class:`AnswerSolution` records the method and solver actually used and its KKT certificate.
    """
    if method not in METHODS:
        raise ValidationError(f"method must be one of {METHODS}, got {method!r}")
    p = checked(as_problem(problem, nu0, beta, constraints))
    obj = p.objective
    if method == "cvxpy":
        return cvxpy_checked(p)
    if method == "dual":
        return dual_checked(p)
    if method == "auto" and has_exact_solver(obj) and p.constraints:
        return exact_checked(p)
    closed = None if p.constraints else obj.closed_form(p.nu0, p.beta)
    if closed is not None:
        return closed_form_solution(p, method="closed-form")
    if method == "closed-form":
        why = "with linear constraints" if p.constraints else f"at beta={p.beta}, tau={obj.tau}"
        raise DomainError(f"objective {obj.name!r} has no closed form {why}; use method='dual' or 'cvxpy'")
    if has_exact_solver(obj):
        return exact_checked(p)
    return cvxpy_checked(p)
