"""What every exact answer-level solver shares: named tolerances, the problem it takes, the final check.

An exact solver takes an :class:`~dagsim.problem.AnswerProblem` whose ``nu0``/``beta``/``constraints``
have been validated once (:func:`checked`; validating twice would renormalize ν0 twice and move its last
bits) and returns a checked :class:`~dagsim.solvers.result.AnswerSolution` (:func:`check_solution`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.errors import SolverError, ValidationError
from dagsim.solvers.result import AnswerSolution, assemble, validate_problem

EPS = float(np.finfo(np.float64).eps)

#: The certificate every exact solve aims at (the issue's requirement).
KKT_TARGET = 1e-10
#: A solve whose KKT residual exceeds this did not converge: raise rather than return it (100× target).
KKT_FAIL = 1e-8
#: Armijo sufficient-decrease fraction (the usual 1e-4; any value in (0, 1/2) works).
ARMIJO = 1e-4
#: Rounding slack of a line-search test, in ulps of the merit value: lets full Newton steps through
#: when the merit changes by less than its own rounding (near convergence).
ROUNDING_ULPS = 256
#: Newton iterations (each quadratically convergent near the end; more means a bug or a degenerate instance).
MAX_NEWTON = 200
#: Step halvings before a line search gives up (2^-60 is below float64 resolution of a unit step).
MAX_HALVINGS = 60


def slack(value: float) -> float:
    """Rounding slack of a line-search test at merit ``value`` (``ROUNDING_ULPS`` ulps of max(1, |value|))."""
    return ROUNDING_ULPS * EPS * max(1.0, abs(value))


def as_problem(problem, nu0=None, beta=None, constraints: Sequence[LinearConstraint] = ()):
    """An :class:`~dagsim.problem.AnswerProblem` from either itself or the loose ``(objective, nu0, beta,
    constraints)`` of the older call signature (not validated here)."""
    from dagsim.problem import AnswerProblem

    if isinstance(problem, AnswerProblem):
        if nu0 is not None or beta is not None or len(constraints) > 0:
            raise ValidationError("pass either an AnswerProblem or (objective, nu0, beta, constraints), not both")
        return problem
    return AnswerProblem.of(problem, nu0, beta, constraints)


def checked(problem):
    """The problem with ν0 (renormalized copy), β and the constraints validated (``validate_problem``)."""
    nu0, beta, constraints = validate_problem(problem.objective, problem.nu0, problem.beta, problem.constraints)
    return replace(problem, nu0=nu0, beta=beta, constraints=constraints)


def finish(problem, nu, multipliers, **fields) -> AnswerSolution:
    """:func:`~dagsim.solvers.result.assemble` for ``problem`` (value, certificate, violations)."""
    return assemble(problem.objective, nu, problem.nu0, problem.beta, problem.constraints, multipliers, **fields)


def check_solution(sol: AnswerSolution) -> AnswerSolution:
    """Raise :class:`SolverError` on a non-finite result or a KKT residual above ``KKT_FAIL`` (not converged)."""
    if not np.isfinite(sol.value) or not np.all(np.isfinite(sol.nu)):
        raise SolverError(f"{sol.solver}: non-finite result")
    if sol.status != "vertex" and sol.kkt_residual > KKT_FAIL:
        raise SolverError(f"{sol.solver}: KKT residual {sol.kkt_residual:.3g} exceeds {KKT_FAIL:g} (not converged)")
    return sol
