"""Ground truth for (E2)/(E5) by cvxpy: the objective's DCP form, CLARABEL first, then SCS.

Each objective family supplies its DCP form through ``cvxpy_pieces`` (rel_entr/entr atoms; KL(ν‖ν0) is
``sum(rel_entr(nu, nu0))`` — not ``kl_div``, which adds −ν + ν0). (E2) is the maximum over the pieces:
one piece for concave families; one per mode choice for ``majority`` (an exact reformulation by K DCP
solves); sharpen with β ≥ τ is rewritten exactly as ⟨r + β log ν0, ν⟩ + (β − τ)Σ entr(ν). Families cvxpy
cannot express — collision (τΣν² is convex), sharpen with β < τ — raise :class:`DomainError`.

Variables live on the support of ν0 (answers with ν0 = 0 are fixed at 0). Status policy: a backend whose
status is "optimal" is accepted; "optimal_inaccurate", a solver exception or "infeasible_inaccurate" moves
on to the next backend; "infeasible" raises :class:`InfeasibleError`; if no backend is optimal,
:class:`SolverError`. The returned ν is clipped at 0 and renormalized (interior-point iterates are
feasible only to the solver tolerance); value and KKT residual are recomputed from it. Multipliers are the
constraints' dual values for ``⟨h, ν⟩ ≤ b`` / ``== b`` with (h, b) = ``as_leq()``, which in a cvxpy
Maximize problem are exactly λ = ∂(optimal value)/∂b ≥ 0 (T5; checked by finite differences in the tests).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.errors import InfeasibleError, SolverError
from dagsim.objectives.base import MultiViewObjective
from dagsim.solvers.common import as_problem, checked
from dagsim.solvers.result import AnswerSolution, assemble

DEFAULT_SOLVERS = ("CLARABEL", "SCS")


def _clarabel(tol: float) -> dict:
    return {"tol_gap_abs": tol, "tol_gap_rel": tol, "tol_feas": tol, "tol_ktratio": min(1e-6, 100 * tol)}


#: Option ladder per backend, tried in order until one reports "optimal". The optimum ν is only as
#: accurate as ~sqrt(gap/β), so CLARABEL's default 1e-8 gap gives ν to ~1e-5; 1e-12 gives ~1e-9 but is
#: sometimes "optimal_inaccurate" on exponential cones, hence the retries at 1e-11, 1e-10 and default
#: (measured on random instances, K ≤ 10). SCS (first-order) is a last resort at 1e-9.
SOLVER_OPTIONS = {
    "CLARABEL": [_clarabel(1e-12), _clarabel(1e-11), _clarabel(1e-10), {}],
    "SCS": [{"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iters": 200_000}],
}

#: Relative gap under which two pieces' optimal values count as a tie (cvxpy values are accurate to ~1e-10).
PIECE_TIE_RTOL = 1e-8

#: A piece whose DCP value exceeds the true (E5) value at its solution by more than this (relative) was a
#: relaxation that does not describe the point (majority consensus: mode condition fails).
RELAXATION_RTOL = 1e-6


def _solve(problem, solvers: Sequence[str], solver_options: dict | None) -> str:
    """Run the option ladder of each backend; return the backend name of the first "optimal" status."""
    import warnings

    import cvxpy as cp

    failures = []
    for name in solvers:
        ladder = [solver_options[name]] if solver_options and name in solver_options else SOLVER_OPTIONS.get(name, [{}])
        for opts in ladder:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "solution may be inaccurate": handled below
                    problem.solve(solver=name, **opts)
            except cp.error.SolverError as exc:
                failures.append(f"{name}{opts}: {exc}")
                continue
            if problem.status == cp.OPTIMAL:
                return name
            if problem.status == cp.INFEASIBLE:
                raise InfeasibleError(
                    f"cvxpy ({name}): the constraints admit no answer distribution supported on supp(nu0)"
                )
            failures.append(f"{name}{opts}: status {problem.status}")
    raise SolverError("cvxpy: no solver reached status 'optimal' (" + "; ".join(failures) + ")")


def solve_cvxpy(
    problem,
    nu0=None,
    beta: float | None = None,
    constraints: Sequence[LinearConstraint] = (),
    *,
    solvers: Sequence[str] = DEFAULT_SOLVERS,
    solver_options: dict | None = None,
) -> AnswerSolution:
    """Solve (E2)/(E5) with cvxpy (module docstring).

    ``problem``: an :class:`~dagsim.problem.AnswerProblem` or, as before, ``(obj, nu0, beta, constraints)``.
    ``solvers``: backends tried in order; ``solver_options`` = {backend: {option: value}} replaces that
    backend's option ladder by a single try.
    """
    return cvxpy_checked(checked(as_problem(problem, nu0, beta, constraints)), solvers=solvers,
                         solver_options=solver_options)


def cvxpy_checked(
    p, *, solvers: Sequence[str] = DEFAULT_SOLVERS, solver_options: dict | None = None
) -> AnswerSolution:
    """:func:`solve_cvxpy` on an already validated problem (``common.checked``)."""
    import cvxpy as cp

    obj, nu0, beta, constraints = p.objective, p.nu0, p.beta, p.constraints
    multi = isinstance(obj, MultiViewObjective)
    stack = nu0 if multi else nu0[None, :]  # (m, K)
    supports = [np.flatnonzero(row > 0) for row in stack]
    best = None
    n_pieces = None
    piece = 0
    while n_pieces is None or piece < n_pieces:
        # Fresh variables and constraints per piece: cvxpy stores dual values on the constraint objects.
        xs = [cp.Variable(s.size, nonneg=True) for s in supports]
        if multi:
            pieces = obj.cvxpy_pieces(xs, supports, nu0, beta)
        else:
            pieces = [(e, []) for e in obj.cvxpy_pieces(xs[0], supports[0], nu0[supports[0]], beta)]
        n_pieces = len(pieces)
        expr, extra = pieces[piece]
        user = []
        for c in constraints:
            h, b = c.as_leq()
            lhs = h[supports[0]] @ xs[0]
            user.append(lhs == b if c.op == "==" else lhs <= b)
        simplex = [cp.sum(x) == 1 for x in xs]
        problem = cp.Problem(cp.Maximize(expr), simplex + list(extra) + user)
        name = _solve(problem, solvers, solver_options)
        # Pieces within PIECE_TIE_RTOL tie (e.g. symmetric modes): keep the first, as the exact solver does.
        if best is None or problem.value > best[0] + PIECE_TIE_RTOL * max(1.0, abs(best[0])):
            nus = np.zeros(stack.shape)
            for j, (x, s) in enumerate(zip(xs, supports, strict=False)):
                nus[j, s] = np.maximum(np.asarray(x.value, dtype=np.float64), 0.0)
            nus /= nus.sum(axis=1, keepdims=True)
            lam = np.array([float(np.asarray(u.dual_value).ravel()[0]) for u in user])
            best = (float(problem.value), nus, lam, name)
        piece += 1
    dcp_value, nus, lam, name = best
    if multi:
        nus = obj.cvxpy_projection(nus)  # the family's feasibility projection (hard coherence: equal views)
    nu = nus if multi else nus[0]
    sol = assemble(
        obj,
        nu,
        nu0,
        beta,
        constraints,
        lam,
        method="cvxpy",
        solver=name,
        status="optimal",
        note=f"best of {n_pieces} DCP pieces" if n_pieces > 1 else "",
    )
    if sol.value < dcp_value - RELAXATION_RTOL * max(1.0, abs(dcp_value)):
        return AnswerSolution(
            **{
                **sol.__dict__,
                "status": "stationary",
                "note": sol.note + "; the best piece's relaxation does not hold at its solution (mode condition fails)",
            }
        )
    return sol
