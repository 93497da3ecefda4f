"""Fast exact solvers of the answer-level programs (E2) (with linear constraints, T5) and (E5): the dispatch.

Every algorithm works in log space and is certified by :func:`dagsim.solvers.result.kkt_residual`
(target ≤ 1e-10; a solve whose certificate exceeds ``KKT_FAIL`` raises :class:`SolverError`).

The family chooses its algorithm: :func:`solve_exact` returns the family's closed form when there is one
(and no constraints), else calls the family's ``exact_solve(problem)`` hook
(``dagsim/objectives/base.py``); a family whose hook is ``None`` has no exact solver (cvxpy or the trace
route solve it). The algorithms live in one module each:

* ``solvers/dual.py`` — the shared separable dual-Newton solver (reward, entropy, gini, tsallis; sharpen
  for β > τ; collision for 2τ ≤ β), also used on sub-problems by the special solvers below;
* ``solvers/collision.py`` — collision for 2τ > β (1-D scan, difference-of-convex iterations);
* ``solvers/sharpen.py`` — sharpen for β ≤ τ with constraints (LP / vertex enumeration / successive LPs);
* ``solvers/majority.py`` — majority (enumeration of the mode choice);
* ``solvers/consensus.py`` — arithmetic / geometric / majority consensus (E5);
* ``solvers/pairwise.py`` — pairwise coherence (E5).

:func:`solve_dual` is ``--method dual``: the family's algorithm without the closed-form shortcut, or a
:class:`DomainError` saying why it does not apply.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, SolverError
from dagsim.solvers.common import (  # noqa: F401  (re-exported: the tolerances' historical home)
    ARMIJO,
    EPS,
    KKT_FAIL,
    KKT_TARGET,
    MAX_HALVINGS,
    MAX_NEWTON,
    ROUNDING_ULPS,
    as_problem,
    check_solution,
    checked,
    finish,
)
from dagsim.solvers.dual import separable_dual  # noqa: F401  (re-exported for bench/ and older callers)
from dagsim.solvers.result import AnswerSolution


def closed_form_solution(
    problem, nu0=None, beta: float | None = None, *, method: str = "closed-form"
) -> AnswerSolution:
    """The objective's closed form of (E2)/(E5) as a checked :class:`AnswerSolution` (inputs validated).

    ``problem``: an :class:`~dagsim.problem.AnswerProblem` or, as before, ``(obj, nu0, beta)``.
    """
    p = as_problem(problem, nu0, beta)
    obj = p.objective
    nu = obj.closed_form(p.nu0, p.beta)
    if nu is None:
        raise SolverError(f"objective {obj.name!r} has no closed form at beta={p.beta}")
    status, residual, note = obj.closed_form_certificate(nu, p.nu0, p.beta)
    return check_solution(
        finish(p, nu, None, method=method, solver="closed-form", status=status, note=note, residual=residual)
    )


def has_exact_solver(obj) -> bool:
    """Whether :func:`solve_exact` handles this objective's family (its ``exact_solve`` hook is set)."""
    return getattr(obj, "exact_solve", None) is not None


def exact_checked(p) -> AnswerSolution:
    """:func:`solve_exact` on an already validated problem (``common.checked``)."""
    obj = p.objective
    if not p.constraints and obj.closed_form(p.nu0, p.beta) is not None:
        return closed_form_solution(p)
    if not has_exact_solver(obj):
        raise SolverError(f"no exact solver for objective {obj.name!r}; use method='cvxpy'")
    return check_solution(obj.exact_solve(p))


def dual_checked(p) -> AnswerSolution:
    """:func:`solve_dual` on an already validated problem."""
    obj = p.objective
    if not has_exact_solver(obj):
        raise DomainError(f"method 'dual' does not apply: objective {obj.name!r} has no exact solver; "
                          "use method 'cvxpy' (or 'auto')")
    return check_solution(obj.exact_solve(p))


def solve_exact(problem, nu0=None, beta: float | None = None,
                constraints: Sequence[LinearConstraint] = ()) -> AnswerSolution:
    """Solve (E2) (single view, optional linear constraints) or (E5) (multi-view) exactly (module docstring).

    ``problem``: an :class:`~dagsim.problem.AnswerProblem` or, as before, ``(obj, nu0, beta, constraints)``.
    Raises DomainError for out-of-domain parameters, InfeasibleError for infeasible constraints and
    SolverError when a method does not converge (KKT residual above ``KKT_FAIL``).
    """
    return exact_checked(checked(as_problem(problem, nu0, beta, constraints)))


def solve_dual(problem, nu0=None, beta: float | None = None,
               constraints: Sequence[LinearConstraint] = ()) -> AnswerSolution:
    """The family's exact algorithm (``exact_solve``) without the closed-form shortcut: ``method="dual"``.

    Raises DomainError naming the reason when the family has no such algorithm in this regime (no exact
    solver at all; sharpen with β ≤ τ and no constraints; consensus with τ = 0 or inf: closed forms only).
    """
    return dual_checked(checked(as_problem(problem, nu0, beta, constraints)))
