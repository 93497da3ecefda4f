"""Objective base classes, the registry and :func:`make_objective` (THEORY §4).

An *objective* is the functional Φ of the answer distribution in (E1)/(E2); a *multi-view objective* is
the Φ of (E5), a function of one answer marginal per view. Conventions used everywhere:

* natural logs; KL(p‖q) = Σ p log(p/q) (first argument is the policy's marginal, second the reference);
* ``reward(q)`` returns the exact gradient g = ∇Φ(q) of the formula in the docstring, read as a function
  on the nonnegative orthant (a subgradient for the nonsmooth ``majority``). THEORY's table drops additive
  constants (e.g. ``−τ`` for entropy), which change nothing on the simplex; each family says which form it
  returns;
* ``value``/``reward`` accept any nonnegative vector of the right shape (so that finite differences off
  the simplex are meaningful); the solvers validate reference marginals.

Adding an objective = one module with a class decorated by :func:`register`. :func:`make_objective`
passes to the class only the parameters its ``__init__`` names; any other parameter must be ``None``.

The family interface
--------------------
A family is one class, registered by name, that says everything the rest of the code needs to know:

=========================  ==========================================================================
``value(nu)``              Φ(ν) (required)
``reward(q)``              ∇Φ(q), the per-answer reward at target q, E3 (required; multi-view: ``rewards``)
``curvature``              "linear" | "concave" | "convex" (required; ``SeparableObjective`` derives it)
``is_concave_regime(β)``   whether Φ − βKL is concave (required)
``closed_form(ν0, β)``     the (E2)/(E5) maximizer without constraints, or None (default None)
``closed_form_certificate``  (status, residual, note) of the closed form (default: KKT point)
``cvxpy_pieces(...)``      DCP expressions of (E2)/(E5) (default: cvxpy cannot express the family)
``exact_solve(problem)``   the family's exact algorithm for an ``AnswerProblem`` (validated), returning
                           an ``AnswerSolution``; ``None`` = no exact solver. ``SeparableObjective``
                           sets it to the shared dual-Newton solver (``solvers/dual.py``) given
                           ``coordinate_response``; the special families point at their module
                           (``solvers/collision.py``, ``sharpen.py``, ``majority.py``, ``consensus.py``,
                           ``pairwise.py``). Called by ``solve_exact`` when the closed form does not
                           apply, and by ``--method dual`` always.
``count_reward_table``     ``(ctx, estimates) -> (K, G)`` table T[z, c] of the per-sample GRPO reward
                           (``dagsim.grpo.rewards.group_rewards``) from the own answer z and its LOO
                           count c; ``estimates.log()`` / ``estimates.power(a)`` are the chosen
                           estimator's (G,) tables of log p and p^a. ``None``: not a count reward.
``group_reward``           ``(answers (B, G), ctx) -> (B, G)`` for a reward that needs the whole group
                           (majority); used when ``count_reward_table`` is None.
``multiview``              True for families of several views (E5): the problem builder passes a task
``needs_labels``           True when the family's reward uses the task reward r (ground-truth labels)
=========================  ==========================================================================

A family without ``exact_solve`` is solved by cvxpy when it gives ``cvxpy_pieces``, otherwise by the
trace-level solver or the game dynamics (both need only ``value`` and ``reward``). A user family is a
subclass of :class:`SeparableObjective` (ρ, ρ', ``coordinate_response``: the exact dual solver comes for
free) or of :class:`Objective`, decorated with ``@register("name")``.
"""

from __future__ import annotations

import inspect
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from scipy.special import logsumexp

from dagsim.divergences import kl_divergence  # noqa: F401  (re-exported: the objectives import it from here)
from dagsim.errors import DomainError, ValidationError

#: The values ``curvature`` may take.
CURVATURES = ("linear", "concave", "convex")

#: |Σ w − 1| allowed for view weights: they are ratios of user numbers (a few ulps), not solver output.
WEIGHT_SUM_ATOL = 1e-9

#: |Σ ν0 − 1| allowed for a reference marginal: a forward DP accumulates ~depth·ulp of rounding; larger
#: deviations mean the caller passed something that is not a distribution.
REFERENCE_SUM_ATOL = 1e-9

#: Every registered family, by name (filled by :func:`register` when ``dagsim.objectives`` is imported).
OBJECTIVES: dict[str, type] = {}


# ---------------------------------------------------------------------- registry
def register(name: str):
    """Class decorator: add an objective family to :data:`OBJECTIVES` under ``name`` (sets ``cls.name``)."""

    def decorate(cls: type) -> type:
        if name in OBJECTIVES:
            raise ValueError(f"objective name {name!r} is already registered by {OBJECTIVES[name].__name__}")
        cls.name = name
        OBJECTIVES[name] = cls
        return cls

    return decorate


def family(name: str) -> type:
    """The registered family class ``name`` (flags ``multiview``, ``needs_labels``, ...); DomainError if unknown."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        raise DomainError(f"unknown objective {name!r}; known objectives: {sorted(OBJECTIVES)}") from None


def family_parameters(name: str) -> set[str]:
    """The parameters the family ``name`` takes (its ``__init__`` keywords besides ``n_answers``)."""
    return set(inspect.signature(family(name).__init__).parameters) - {"self", "n_answers"}


def make_objective(name: str, n_answers: int, **params: Any):
    """Build the registered objective ``name`` over ``n_answers`` answers.

    Parameters a family does not use (e.g. ``order`` for ``entropy``) are accepted only when ``None``;
    a ``None`` for a parameter the family uses selects the family's default. Bad values raise
    :class:`DomainError` naming the parameter.
    """
    cls = family(name)
    accepted = family_parameters(name)
    kwargs = {}
    for key, val in params.items():
        if key in accepted:
            if val is not None:
                kwargs[key] = val
        elif key == "tau" and val == 0:
            continue  # τ = 0 means "no objective term": consistent with a family that has no τ term
        elif val is not None:
            raise DomainError(
                f"objective {name!r} does not use parameter {key!r} (got {val!r}); it takes {sorted(accepted)}"
            )
    return cls(n_answers, **kwargs)


# ---------------------------------------------------------------------- parameter checks
def check_n_answers(n_answers: Any) -> int:
    """A positive integer number of answers K."""
    if isinstance(n_answers, bool) or not isinstance(n_answers, (int, np.integer)) or n_answers < 1:
        raise DomainError(f"n_answers must be an integer >= 1, got {n_answers!r}")
    return int(n_answers)


def check_tau(tau: Any, *, allow_inf: bool = False) -> float:
    """Objective weight τ ≥ 0 (``+inf`` only where the family defines the limit, e.g. hard coherence)."""
    try:
        tau = float(tau)
    except (TypeError, ValueError):
        raise DomainError(f"tau must be a number >= 0, got {tau!r}") from None
    if math.isnan(tau) or tau < 0 or (math.isinf(tau) and not allow_inf):
        allowed = "a number >= 0 or inf" if allow_inf else "a finite number >= 0"
        raise DomainError(f"tau must be {allowed}, got {tau!r}")
    return tau


def check_beta(beta: Any) -> float:
    """KL weight β > 0, finite."""
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        raise DomainError(f"beta must be a finite number > 0, got {beta!r}") from None
    if not (math.isfinite(beta) and beta > 0):
        raise DomainError(f"beta must be a finite number > 0, got {beta!r}")
    return beta


def check_reward_vector(reward: Any, n_answers: int) -> np.ndarray:
    """Task reward r, ``(n_answers,)`` float64, read-only; ``None`` means r = 0."""
    if reward is None:
        r = np.zeros(n_answers)
    else:
        r = np.array(reward, dtype=np.float64)
        if r.shape != (n_answers,):
            raise DomainError(f"reward must have shape ({n_answers},), got {r.shape}")
        if not np.all(np.isfinite(r)):
            raise DomainError("reward has a NaN or infinite entry")
    r.setflags(write=False)
    return r


def check_weights(weights: Any, n_views: Any) -> np.ndarray:
    """View weights w, ``(m,)``, nonnegative, Σ w = 1; ``None`` means uniform over ``n_views`` views."""
    if weights is None:
        if n_views is None:
            raise DomainError("a multi-view objective needs 'weights' or 'n_views'")
        if isinstance(n_views, bool) or not isinstance(n_views, (int, np.integer)) or n_views < 1:
            raise DomainError(f"n_views must be an integer >= 1, got {n_views!r}")
        w = np.full(int(n_views), 1.0 / int(n_views))
    else:
        w = np.array(weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0:
            raise DomainError(f"weights must be a non-empty vector, got shape {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DomainError("weights must be finite and >= 0")
        if abs(w.sum() - 1.0) > WEIGHT_SUM_ATOL:
            raise DomainError(f"weights must sum to 1, got sum {w.sum()!r}")
        if n_views is not None and n_views != w.size:
            raise DomainError(f"n_views={n_views!r} disagrees with len(weights)={w.size}")
        if np.any(w == 0):
            raise DomainError("weights must be > 0 (drop a view instead of giving it weight 0)")
        w = w / w.sum()
    w.setflags(write=False)
    return w


def check_vector(nu: Any, n_answers: int, what: str = "nu") -> np.ndarray:
    """A float64 vector of shape ``(n_answers,)`` (no copy when already one)."""
    nu = np.asarray(nu, dtype=np.float64)
    if nu.shape != (n_answers,):
        raise ValidationError(f"{what} must have shape ({n_answers},), got {nu.shape}")
    return nu


def check_views(nus: Any, n_views: int, n_answers: int, what: str = "nus") -> np.ndarray:
    """A float64 array of shape ``(n_views, n_answers)``."""
    nus = np.asarray(nus, dtype=np.float64)
    if nus.shape != (n_views, n_answers):
        raise ValidationError(f"{what} must have shape ({n_views}, {n_answers}), got {nus.shape}")
    return nus


def check_reference(nu0: Any, n_answers: int, what: str = "nu0") -> np.ndarray:
    """A reference marginal ν0 ``(K,)`` (or a stack ``(m, K)``): finite, ≥ 0, rows summing to 1.

    Returns a fresh array whose rows are renormalized exactly (the input is never modified).
    """
    nu0 = np.array(nu0, dtype=np.float64)
    if nu0.ndim not in (1, 2) or nu0.shape[-1] != n_answers:
        raise ValidationError(f"{what} must have last dimension {n_answers}, got shape {nu0.shape}")
    if not np.all(np.isfinite(nu0)) or np.any(nu0 < 0):
        raise ValidationError(f"{what} must be finite and >= 0")
    sums = nu0.sum(axis=-1, keepdims=True)
    if np.any(np.abs(sums - 1.0) > REFERENCE_SUM_ATOL):
        raise ValidationError(f"{what} must sum to 1 (per view), got sums {np.ravel(sums)}")
    return nu0 / sums


# ---------------------------------------------------------------------- small math helpers
def log_of(x: np.ndarray) -> np.ndarray:
    """Elementwise natural log with log 0 = −inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(x)


def softmax_log(log_weights: np.ndarray) -> np.ndarray:
    """exp(l − logsumexp(l)) along the last axis: normalizes log-weights without overflow (−inf → 0)."""
    return np.exp(log_weights - logsumexp(log_weights, axis=-1, keepdims=True))


# ---------------------------------------------------------------------- single view
class Objective(ABC):
    """A functional Φ of one answer distribution ν ∈ Δ(Z) (THEORY §4), with task reward r and weight τ.

    Subclasses implement :meth:`value` (Φ), :meth:`reward` (∇Φ), :attr:`curvature`,
    :meth:`is_concave_regime` and, where THEORY gives one, :meth:`closed_form` of (E2).
    """

    name: ClassVar[str] = "objective"
    #: One answer marginal (E2); multi-view families (E5) derive from :class:`MultiViewObjective`.
    multiview: ClassVar[bool] = False
    #: Whether the family's per-sample reward uses the task reward r (ground-truth labels).
    needs_labels: ClassVar[bool] = True
    #: The family's exact solver ``exact_solve(problem) -> AnswerSolution``, or None (module docstring).
    exact_solve: ClassVar[Any] = None
    #: ``count_reward_table(ctx, estimates) -> (K, G)`` of the GRPO group reward, or None (module docstring).
    count_reward_table: ClassVar[Any] = None
    #: ``group_reward(answers (B, G), ctx) -> (B, G)`` when the reward needs the whole group, or None.
    group_reward: ClassVar[Any] = None

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 0.0) -> None:
        self.n_answers = check_n_answers(n_answers)
        self.task_reward = check_reward_vector(reward, self.n_answers)  # r, (K,)
        self.tau = check_tau(tau)

    @property
    @abstractmethod
    def curvature(self) -> str:
        """``"linear"``, ``"concave"`` or ``"convex"``: the shape of Φ (T1 zero-sum vs T2 cooperative)."""

    @abstractmethod
    def value(self, nu: np.ndarray) -> float:
        """Φ(ν)."""

    @abstractmethod
    def reward(self, q: np.ndarray) -> np.ndarray:
        """Per-answer reward g = ∇Φ(q), ``(K,)`` (the tangent's slope in E3)."""

    @abstractmethod
    def is_concave_regime(self, beta: float) -> bool:
        """Whether Φ(ν) − β KL(ν‖ν0) is concave on the simplex (for every full-support ν0)."""

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray | None:
        """The maximizer of (E2) without constraints when a closed form exists in this regime, else None."""
        return None

    def closed_form_certificate(self, nu: np.ndarray, nu0: np.ndarray, beta: float) -> tuple[str, float | None, str]:
        """(status, residual, note) for :meth:`closed_form`'s answer.

        ``residual=None`` asks the caller to compute the KKT residual; families whose closed form is a
        vertex (no KKT point) return their own certificate.
        """
        return "optimal", None, ""

    def cvxpy_pieces(self, x: Any, support: np.ndarray, nu0_s: np.ndarray, beta: float) -> list:
        """DCP expressions of Φ(ν) − β KL(ν‖ν0) restricted to ``support``; (E2) is the max over the pieces.

        ``x`` is a cvxpy variable of shape ``(len(support),)``. Families that cvxpy cannot express raise
        :class:`DomainError`.
        """
        raise DomainError(f"cvxpy cannot express objective {self.name!r}")

    def check_nu0(self, nu0: Any) -> np.ndarray:
        """(K,) reference marginal, renormalized copy; an (m, K) stack raises :class:`DomainError`."""
        arr = np.asarray(nu0)
        if arr.ndim != 1:
            raise DomainError(
                f"objective {self.name!r} is single-view: nu0 must have shape ({self.n_answers},), got {arr.shape}"
            )
        return check_reference(arr, self.n_answers)

    def regularized_value(self, nu: np.ndarray, nu0: np.ndarray, beta: float) -> float:
        """The (E2) objective Φ(ν) − β KL(ν‖ν0)."""
        return self.value(nu) - beta * kl_divergence(nu, nu0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_answers={self.n_answers}, tau={self.tau})"


class SeparableObjective(Objective):
    """Φ(ν) = ⟨r, ν⟩ + τ (Σ_z ρ(ν_z) + c): the smooth separable families (entropy, gini, tsallis, ...).

    ρ(0) = 0 is required (answers with ν = 0 contribute nothing; the solvers work on the support).

    Subclasses give ρ, ρ', ρ'' and :meth:`coordinate_response`, the exact per-answer maximizer of the
    Lagrangian used by the dual solver (solvers/dual.py): for a shift ``a`` it solves

        β u − τ ρ'(e^u) = a          (u = log ν_z)

    the stationarity r_z + τρ'(ν) − β(log(ν/ν0_z) + 1) − s_z = 0 with a = r_z + β log ν0_z − β − s_z.
    """

    #: Shape of Φ for τ > 0.
    family_curvature: ClassVar[str] = "concave"

    @property
    def curvature(self) -> str:
        return "linear" if self.tau == 0 else self.family_curvature

    def rho_offset(self) -> float:
        """The constant c in Φ (so that Φ matches THEORY's formula exactly)."""
        return 0.0

    @abstractmethod
    def rho(self, nu: np.ndarray) -> np.ndarray:
        """ρ(ν) elementwise."""

    @abstractmethod
    def drho(self, nu: np.ndarray) -> np.ndarray:
        """ρ'(ν) elementwise."""

    @abstractmethod
    def coordinate_response(self, a: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
        """(u, du/da): the root u of β u − τ ρ'(e^u) = a, elementwise, and its slope (> 0 or 0 if clipped)."""

    def dual_is_exact(self, beta: float) -> bool:
        """Whether each per-answer Lagrangian is concave on [0, 1], so the dual solver is exact."""
        return True

    def exact_solve(self, problem):
        """(E2) by the shared separable dual-Newton solver (``solvers/dual.py``); needs ``dual_is_exact``."""
        if not self.dual_is_exact(problem.beta):
            raise DomainError(
                f"objective {self.name!r}: the per-answer Lagrangian is not concave at beta={problem.beta}, "
                "so the dual solver is not exact here and the family gives no other exact solver"
            )
        from dagsim.solvers.dual import solve_separable

        return solve_separable(problem)

    def value(self, nu: np.ndarray) -> float:
        nu = check_vector(nu, self.n_answers)
        val = float(self.task_reward @ nu)
        if self.tau != 0:
            val += self.tau * (float(np.sum(self.rho(nu))) + self.rho_offset())
        return val

    def reward(self, q: np.ndarray) -> np.ndarray:
        q = check_vector(q, self.n_answers, "q")
        if self.tau == 0:
            return self.task_reward.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.task_reward + self.tau * self.drho(q)


# ---------------------------------------------------------------------- multi-view
class MultiViewObjective(ABC):
    """A functional Φ(ν_1..ν_m) of one answer marginal per view (the Φ of E5, without the KL terms).

    ``weights`` w (Σ w = 1) weigh the views; ``rewards(nus)[j]`` is the per-sample reward of a sample of
    view j, (∂Φ/∂ν_j)/w_j, so that the Policy of view j faces the single-view problem with reward g_j.
    """

    name: ClassVar[str] = "multiview"
    multiview: ClassVar[bool] = True
    #: Multi-view coherence is label-free unless a family says otherwise (r enters Φ but not the coupling).
    needs_labels: ClassVar[bool] = False
    #: The family's exact solver of (E5) (``exact_solve(problem) -> AnswerSolution``), or None.
    exact_solve: ClassVar[Any] = None

    def __init__(
        self,
        n_answers: int,
        *,
        reward: Any = None,
        tau: float = 1.0,
        weights: Any = None,
        n_views: Any = None,
        allow_inf_tau: bool = False,
    ) -> None:
        self.n_answers = check_n_answers(n_answers)
        self.task_reward = check_reward_vector(reward, self.n_answers)  # r, (K,)
        self.tau = check_tau(tau, allow_inf=allow_inf_tau)
        self.weights = check_weights(weights, n_views)  # w, (m,)

    @property
    def n_views(self) -> int:
        return int(self.weights.size)

    @property
    @abstractmethod
    def curvature(self) -> str:
        """Shape of Φ as a function of the stacked marginals."""

    @abstractmethod
    def value(self, nus: np.ndarray) -> float:
        """Φ(ν_1..ν_m) = Σ_j w_j ⟨r, ν_j⟩ − τ·(coupling term)."""

    @abstractmethod
    def rewards(self, nus: np.ndarray) -> np.ndarray:
        """(m, K): row j is (∂Φ/∂ν_j)/w_j."""

    @abstractmethod
    def target(self, nus: np.ndarray) -> np.ndarray | None:
        """The Target player's consensus q (T3), ``(K,)``, or None when the family has no consensus."""

    @abstractmethod
    def is_concave_regime(self, beta: float) -> bool:
        """Whether Φ − β Σ_j w_j KL(ν_j‖ν_j^0) is concave."""

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray | None:
        """(m, K) maximizer of (E5) when a closed form exists, else None."""
        return None

    def closed_form_certificate(self, nus: np.ndarray, nu0: np.ndarray, beta: float) -> tuple[str, float | None, str]:
        return "optimal", None, ""

    def cvxpy_pieces(self, xs: list, supports: list, nu0: np.ndarray, beta: float) -> list:
        """DCP pieces of (E5): a list of ``(expression, extra_constraints, variables_to_report)``."""
        raise DomainError(f"cvxpy cannot express objective {self.name!r}")

    def cvxpy_projection(self, nus: np.ndarray) -> np.ndarray:
        """Map cvxpy's (m, K) solution, feasible to the solver tolerance, onto the family's feasible set."""
        return nus

    def regularized_value(self, nus: np.ndarray, nu0: np.ndarray, beta: float) -> float:
        """The (E5) objective Φ(ν) − β Σ_j w_j KL(ν_j‖ν_j^0)."""
        kl = sum(w * kl_divergence(n, n0) for w, n, n0 in zip(self.weights, nus, nu0, strict=False))
        return self.value(nus) - beta * kl

    def check_nus(self, nus: Any, what: str = "nus") -> np.ndarray:
        return check_views(nus, self.n_views, self.n_answers, what)

    def check_nu0(self, nu0: Any) -> np.ndarray:
        """(m, K) reference marginals, rows renormalized; a (K,) vector raises :class:`DomainError`."""
        arr = np.asarray(nu0)
        if arr.ndim != 2:
            raise DomainError(
                f"objective {self.name!r} is multi-view: nu0 must have shape "
                f"({self.n_views}, {self.n_answers}), got {arr.shape}"
            )
        if arr.shape[0] != self.n_views:
            raise DomainError(f"nu0 has {arr.shape[0]} views but objective {self.name!r} has {self.n_views}")
        return check_reference(arr, self.n_answers)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_answers={self.n_answers}, n_views={self.n_views}, tau={self.tau})"
