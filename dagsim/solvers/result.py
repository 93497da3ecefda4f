"""The checked result of an answer-level solve of (E2)/(E5), its KKT certificate and input validation.

Conventions (THEORY §2–4): natural logs; KL(p‖q) = Σ p log(p/q); the Lagrangian of (E2) with linear
constraints is

    Φ(ν) − β KL(ν‖ν0) − μ(Σν − 1) − Σ_k λ_k (⟨h_k, ν⟩ − b_k),        (h_k, b_k) = constraint.as_leq()

so λ_k ≥ 0 for inequalities, free for equalities, and λ_k = ∂(optimal value)/∂b_k (T5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.constraints import LinearConstraint
from dagsim.errors import DomainError, ValidationError
from dagsim.objectives.base import MultiViewObjective, Objective, check_beta

#: Answers with ν below this are left out of the stationarity check: log ν loses relative precision in
#: the subnormal range (< 2.2e-308), and such an answer moves Φ and KL by < 1e-297.
NU_TINY = 1e-300

STATUSES = ("optimal", "vertex", "stationary")


@dataclass(frozen=True)
class AnswerSolution:
    """A solution of (E2) (single view) or (E5) (multi-view), with its certificate.

    * ``nu``: (K,) or (m, K) answer marginal(s); ``consensus``: the Target's q (T3) or None;
    * ``value``: Φ(ν) − β KL(ν‖ν0) (multi-view: Φ(ν_1..ν_m) − β Σ_j w_j KL(ν_j‖ν_j^0), Φ including −τD);
    * ``method``: "closed-form" | "dual" | "cvxpy"; ``solver``: the algorithm or cvxpy backend used;
    * ``kkt_residual``: :func:`kkt_residual` at the returned point (for ``status="vertex"`` the solver's
      vertex certificate, see ``note``); ``multipliers``: λ in the order of the constraints (module doc);
    * ``status``: "optimal" (certified global optimum), "vertex" (optimum at a vertex, where no KKT point
      exists), or "stationary" (a KKT point of a non-concave problem, not certified global);
    * ``max_violation``: largest violation of the constraints and of the simplex (|Σν − 1|, −min ν).
    """

    nu: np.ndarray
    consensus: np.ndarray | None
    value: float
    method: str
    kkt_residual: float
    multipliers: np.ndarray
    status: str
    solver: str
    max_violation: float
    note: str = ""

    def __post_init__(self) -> None:
        for name in ("nu", "consensus", "multipliers"):
            arr = getattr(self, name)
            if arr is None:
                continue
            arr = np.array(arr, dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")
        for name in ("value", "kkt_residual", "max_violation"):
            object.__setattr__(self, name, float(getattr(self, name)))


# ---------------------------------------------------------------------- validation
def validate_problem(obj, nu0, beta, constraints: Sequence[LinearConstraint] = ()):
    """Check an (E2)/(E5) instance; return ``(nu0, beta, constraints)`` with ν0 a renormalized copy.

    DomainError: β ≤ 0, a (K,) ν0 for a multi-view objective or an (m, K) ν0 for a single-view one,
    constraints on a multi-view objective. ValidationError: malformed ν0 or constraints.
    """
    beta = check_beta(beta)
    if isinstance(obj, MultiViewObjective):
        nu0 = obj.check_nu0(nu0)
        if len(constraints) > 0:
            raise DomainError("linear constraints are supported for single-view objectives only")
    elif isinstance(obj, Objective):
        nu0 = obj.check_nu0(nu0)
    else:
        raise ValidationError(f"expected an Objective or MultiViewObjective, got {type(obj).__name__}")
    constraints = tuple(constraints)
    for c in constraints:
        if not isinstance(c, LinearConstraint):
            raise ValidationError(f"constraints must be LinearConstraint objects, got {type(c).__name__}")
        if c.coef.shape != (obj.n_answers,):
            raise ValidationError(f"constraint {c.name!r}: coef has shape {c.coef.shape}, expected ({obj.n_answers},)")
    return nu0, beta, constraints


def constraint_arrays(
    constraints: Sequence[LinearConstraint], n_answers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, b, is_eq): rows h_k and bounds b_k of ``as_leq()``, ``(n, K)``, ``(n,)``, ``(n,)`` bool."""
    n = len(constraints)
    H = np.zeros((n, n_answers))
    b = np.zeros(n)
    for k, c in enumerate(constraints):
        H[k], b[k] = c.as_leq()
    is_eq = np.array([c.op == "==" for c in constraints], dtype=bool)
    return H, b, is_eq


def max_violation(nu: np.ndarray, constraints: Sequence[LinearConstraint] = ()) -> float:
    """max(constraint violations, |Σν − 1| per view, −min ν)."""
    nu = np.atleast_2d(nu)
    viol = [float(np.max(np.abs(nu.sum(axis=1) - 1.0))), float(max(0.0, -nu.min()))]
    viol += [c.violation(nu[0]) for c in constraints]
    return max(viol)


# ---------------------------------------------------------------------- KKT certificate
def stationarity_spread(g: np.ndarray, nu: np.ndarray, nu0: np.ndarray, beta: float) -> float:
    """Half the spread of s_z = g(z) − β(log(ν(z)/ν0(z)) + 1) over the support (0 for a constant s).

    At a KKT point of max ⟨·⟩ − βKL on the simplex, s equals the normalization multiplier μ on every
    answer with ν0 > 0; (max s − min s)/2 is the distance to the best constant. Answers with ν < NU_TINY
    are skipped (see NU_TINY); ν > 0 off the support of ν0 gives +inf.
    """
    on = nu0 > 0
    if np.any(nu[~on] > 0):
        return float("inf")
    keep = on & (nu > NU_TINY)
    if np.count_nonzero(keep) <= 1:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        s = g[keep] - beta * (np.log(nu[keep]) - np.log(nu0[keep]) + 1.0)
    if not np.all(np.isfinite(s)):
        return float("inf")
    return float(0.5 * (s.max() - s.min()))


def kkt_residual(
    obj,
    nu: np.ndarray,
    nu0: np.ndarray,
    beta: float,
    constraints: Sequence[LinearConstraint] = (),
    multipliers: np.ndarray | None = None,
) -> float:
    """The KKT residual of (E2)/(E5) at ν with multipliers λ (module convention), a float ≥ 0.

    It is the maximum of
      * stationarity: :func:`stationarity_spread` of g − Σ_k λ_k h_k, with g = ``obj.reward(ν)`` (a
        supergradient/subgradient for majority; for multi-view, view j uses ``obj.rewards(ν)[j]``, the
        condition divided by w_j, maximum over views);
      * primal feasibility: |Σν − 1| (per view), max(0, −min ν), each constraint's violation;
      * dual feasibility: max(0, −λ_k) over inequalities;
      * complementary slackness: |λ_k (⟨h_k, ν⟩ − b_k)| over inequalities.
    """
    beta = check_beta(beta)
    if isinstance(obj, MultiViewObjective):
        nus = np.asarray(nu, dtype=np.float64)
        if np.isinf(obj.tau):  # hard coherence: no finite reward, the family certifies its reduced problem
            return float(obj.closed_form_certificate(nus, nu0, beta)[1])
        G = obj.rewards(nus)
        parts = [stationarity_spread(G[j], nus[j], nu0[j], beta) for j in range(obj.n_views)]
        parts.append(max_violation(nus))
        return float(max(parts))
    nu = np.asarray(nu, dtype=np.float64)
    lam = np.zeros(len(constraints)) if multipliers is None else np.asarray(multipliers, dtype=np.float64)
    g = np.array(obj.reward(nu), dtype=np.float64)
    parts = [max_violation(nu, constraints)]
    for lam_k, c in zip(lam, constraints, strict=False):
        h, b = c.as_leq()
        g = g - lam_k * h
        if c.op != "==":
            parts.append(max(0.0, -float(lam_k)))
            parts.append(abs(float(lam_k) * (float(h @ nu) - b)))
    parts.append(stationarity_spread(g, nu, nu0, beta))
    return float(max(parts))


def consensus_of(obj, nu: np.ndarray) -> np.ndarray | None:
    """The Target's consensus q for multi-view objectives (None for single-view or when undefined)."""
    if isinstance(obj, MultiViewObjective):
        return obj.target(nu)
    return None


def assemble(
    obj,
    nu,
    nu0,
    beta,
    constraints,
    multipliers,
    *,
    method: str,
    solver: str,
    status: str,
    note: str = "",
    residual: float | None = None,
) -> AnswerSolution:
    """Build the :class:`AnswerSolution`: value, certificate (computed unless given) and violations."""
    nu = np.asarray(nu, dtype=np.float64)
    multipliers = np.zeros(len(constraints)) if multipliers is None else np.asarray(multipliers, np.float64)
    if residual is None:
        residual = kkt_residual(obj, nu, nu0, beta, constraints, multipliers)
    return AnswerSolution(
        nu=nu,
        consensus=consensus_of(obj, nu),
        value=obj.regularized_value(nu, nu0, beta),
        method=method,
        kkt_residual=residual,
        multipliers=multipliers,
        status=status,
        solver=solver,
        max_violation=max_violation(nu, constraints),
        note=note,
    )
