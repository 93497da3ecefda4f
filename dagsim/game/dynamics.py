"""Dynamics that reach the game's equilibrium (THEORY T6, T2, T5), one small function per update rule.

All run in answer space on an :class:`~dagsim.game.payoff.AnswerGame` (state ``nus``: ``(m, K)``) and
record a history of ``{iteration, exploitability, objective}`` (exploitability E4 of the iterate that
the rule reports: the last iterate, or the average for no-regret). Answers with ν0 = 0 stay at 0.

* :func:`damped_best_response` — ν ← (1−η)ν + η·Gibbs(∇Φ(ν)) (T6a).
* :func:`mirror_ascent` — exponentiated-gradient steps on J with the Target best-responding
  (log ν ← log ν + η(g(ν) − β log(ν/ν0)), normalized): the exact-gradient limit of GRPO (T6c); last
  iterate, linear rate when β > 0.
* :func:`no_regret` — the Policy runs mirror ascent on the linear payoffs L(·, q_t) with step η/√t, the
  Target best-responds; the *average* iterate is an O(1/√T) equilibrium (T6b).
* :func:`extragradient` — mirror-prox (an extrapolation step, then the update with the extrapolated
  gradient), the O(1/T)-type variant of T6b; also a last-iterate method here.
* :func:`alternating_best_response` — the cooperative version for convex Φ (T2): q ← ν, ν ← Gibbs(∇Φ(q));
  J never decreases.
* :func:`dual_ascent` — the multiplier player of the constrained game (T5): λ ← [λ + η(⟨h, ν⟩ − b)]_+
  with the Policy best-responding to g − Σλh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from dagsim.errors import DomainError, SolverError
from dagsim.game.payoff import AnswerGame, gibbs

#: Iterations stop early once exploitability falls below this (float64 round-off floor of E4 ~ 1e-15·|J|).
EXPLOITABILITY_FLOOR = 1e-13


@dataclass(frozen=True)
class GameRun:
    """Result of a dynamics run: the reported iterate, its exploitability, and the full history."""

    nus: np.ndarray  # (m, K) reported iterate (last, or average for no-regret)
    exploitability: float
    objective: float
    history: list[dict] = field(repr=False)
    dynamics: str
    iterations: int
    multipliers: np.ndarray | None = None

    def rate(self, tail: int = 20) -> float | None:
        """Empirical linear rate: the geometric-mean ratio of successive exploitabilities over the tail
        (None when fewer than 3 positive values)."""
        vals = np.array([h["exploitability"] for h in self.history], dtype=float)
        vals = vals[vals > EXPLOITABILITY_FLOOR * 10]
        if vals.size < 3:
            return None
        vals = vals[-tail:]
        return float(np.exp(np.mean(np.diff(np.log(vals)))))


def _record(game: AnswerGame, history: list[dict], it: int, nus: np.ndarray) -> float:
    expl = _finite_exploitability(game, nus, it)
    history.append({"iteration": it, "exploitability": float(expl), "objective": game.regularized_value(nus)})
    return expl


def _finite_exploitability(game: AnswerGame, nus: np.ndarray, it: int) -> float:
    """E4 of the iterate; raises (never returns NaN) when the dynamics left the simplex's interior."""
    with np.errstate(invalid="ignore", over="ignore"):
        expl = game.exploitability(nus) if np.all(np.isfinite(nus)) else float("nan")
    if not np.isfinite(expl):
        raise SolverError(f"the dynamics diverged at iteration {it} (exploitability {expl}): the iterate left "
                          "the interior of the simplex; use damping (a smaller --step)")
    return float(expl)


def _check_step(step: float, name: str) -> None:
    if not (np.isfinite(step) and step > 0):
        raise DomainError(f"{name} step must be a finite number > 0, got {step!r}")


def _normalize_log(log_nu: np.ndarray) -> np.ndarray:
    return log_nu - logsumexp(log_nu, axis=-1, keepdims=True)


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x)


def _grad_j(game: AnswerGame, nus: np.ndarray, log_nu: np.ndarray, multipliers=None) -> np.ndarray:
    """Per-view ∂J/∂ν_j / w_j up to a constant: g_j(ν) − β log(ν_j/ν_j^0) (finite on the support)."""
    g = game.rewards(nus, multipliers)
    diff = np.where(np.isfinite(log_nu), log_nu - _log(game.nu0), 0.0)
    return np.where(np.isfinite(log_nu), g - game.beta * diff, 0.0)


def _last_iterate_run(game: AnswerGame, name: str, iterations: int, start, tol: float, update) -> GameRun:
    """The loop shared by the last-iterate rules: record E4, stop at ``tol``, else ``update(ν, log ν)``."""
    nus = game.nu0.copy() if start is None else np.array(start, dtype=float)
    log_nu = _log(nus)
    history: list[dict] = []
    for it in range(iterations + 1):
        if _record(game, history, it, nus) <= tol or it == iterations:
            break
        nus, log_nu = update(nus, log_nu)
    return GameRun(nus, history[-1]["exploitability"], history[-1]["objective"], history, name, it)


def damped_best_response(game: AnswerGame, iterations: int, step: float = 1.0, *, start=None,
                         tol: float = EXPLOITABILITY_FLOOR) -> GameRun:
    """T6(a): ν ← (1−η) ν + η Gibbs(∇Φ(ν)); η = 1 is the plain best-response iteration."""
    _check_step(step, "damped best-response")
    if step > 1:
        raise DomainError(f"damped best-response step must lie in (0, 1], got {step}")

    def update(nus, _log_nu):
        new = (1 - step) * nus + step * game.policy_best_response(nus)
        return new, _log(new)

    return _last_iterate_run(game, "best-response", iterations, start, tol, update)


def mirror_ascent(game: AnswerGame, iterations: int, step: float = 0.5, *, start=None,
                  tol: float = EXPLOITABILITY_FLOOR) -> GameRun:
    """T6(c): exponentiated gradient on J with the Target best-responding (q_t = ν_t); last iterate."""
    _check_step(step, "mirror")

    def update(nus, log_nu):
        log_new = _normalize_log(log_nu + step * _grad_j(game, nus, log_nu))
        return np.exp(log_new), log_new

    return _last_iterate_run(game, "mirror", iterations, start, tol, update)


def no_regret(game: AnswerGame, iterations: int, step: float = 0.5, *, start=None) -> GameRun:
    """T6(b): Policy mirror ascent with step η/√t on L(·, q_t), Target best response; report the average.

    The history's exploitability is that of the running averages (ν̄_t, q̄_t): O(1/√t).
    """
    _check_step(step, "no-regret")
    nus = game.nu0.copy() if start is None else np.array(start, dtype=float)
    log_nu = _log(nus)
    sum_nu = np.zeros_like(nus)
    history: list[dict] = []
    avg = nus
    for t in range(1, iterations + 1):
        sum_nu += nus
        avg = sum_nu / t
        _record_avg(game, history, t, avg)
        eta = step / np.sqrt(t)
        log_nu = _normalize_log(log_nu + eta * _grad_j(game, nus, log_nu))
        nus = np.exp(log_nu)
    if not history:
        _record_avg(game, history, 0, avg)
    return GameRun(avg, history[-1]["exploitability"], history[-1]["objective"], history, "no-regret", iterations)


def _record_avg(game: AnswerGame, history: list[dict], it: int, avg: np.ndarray) -> None:
    history.append({"iteration": it, "exploitability": _finite_exploitability(game, avg, it),
                    "objective": game.regularized_value(avg)})


def extragradient(game: AnswerGame, iterations: int, step: float = 0.5, *, start=None,
                  tol: float = EXPLOITABILITY_FLOOR) -> GameRun:
    """Mirror-prox: ν_{1/2} ∝ ν_t e^{ηF(ν_t)}, ν_{t+1} ∝ ν_t e^{ηF(ν_{1/2})}, F = g(ν) − β log(ν/ν0)."""
    _check_step(step, "extragradient")

    def update(nus, log_nu):
        log_half = _normalize_log(log_nu + step * _grad_j(game, nus, log_nu))
        log_new = _normalize_log(log_nu + step * _grad_j(game, np.exp(log_half), log_half))
        return np.exp(log_new), log_new

    return _last_iterate_run(game, "extragradient", iterations, start, tol, update)


def alternating_best_response(game: AnswerGame, iterations: int, *, start=None,
                              tol: float = EXPLOITABILITY_FLOOR) -> GameRun:
    """T2: cooperative alternating best responses for convex Φ: q ← ν, then ν ← Gibbs(∇Φ(q)).

    Each round the Policy's best response raises L(·, q) and the convex Φ lies above its tangent, so
    J(ν_{t+1}) ≥ L(ν_{t+1}, q_t) ≥ L(ν_t, q_t) = J(ν_t): the history's objective never decreases.
    Start from full support (faces of the simplex are invariant).
    """
    run = damped_best_response(game, iterations, 1.0, start=start, tol=tol)
    return GameRun(run.nus, run.exploitability, run.objective, run.history, "alternating", run.iterations)


def dual_ascent(game: AnswerGame, iterations: int, step: float = 1.0, *, inner: Callable | None = None,
                tol: float = 1e-12) -> GameRun:
    """T5: the multiplier player. λ ← [λ + η(⟨h, ν(λ)⟩ − b)]_+ (free sign for equalities), where ν(λ) is
    the Policy's exact response to the Lagrangian reward g − Σλh (a fixed point of the Gibbs map for
    non-linear Φ, solved by damped best response). Reports ν, λ and the history of max violation.
    """
    if not game.constraints:
        raise DomainError("dual ascent needs at least one constraint")
    _check_step(step, "dual ascent")
    lam = np.zeros(len(game.constraints))
    history: list[dict] = []
    nus = game.nu0.copy()
    for it in range(iterations + 1):
        nus = _lagrangian_response(game, lam, nus) if inner is None else inner(game, lam, nus)
        viol = np.array([c.as_leq()[0] @ nus[0] - c.as_leq()[1] for c in game.constraints])
        max_viol = max(float(np.max(np.where([c.op == "==" for c in game.constraints], np.abs(viol),
                                              np.maximum(viol, 0.0)))), 0.0)
        history.append({"iteration": it, "exploitability": _finite_exploitability(game, nus, it),
                        "objective": game.regularized_value(nus), "max_violation": max_viol,
                        "multipliers": lam.tolist()})
        if it == iterations:
            break
        new = lam + step * viol
        eq = np.array([c.op == "==" for c in game.constraints])
        new = np.where(eq, new, np.maximum(new, 0.0))
        if np.max(np.abs(new - lam)) <= tol and max_viol <= tol:
            lam = new
            break
        lam = new
    return GameRun(nus, history[-1]["exploitability"], history[-1]["objective"], history, "dual-ascent", it,
                   multipliers=lam)


def _lagrangian_response(game: AnswerGame, lam: np.ndarray, start: np.ndarray, iterations: int = 20_000,
                         tol: float = 1e-14) -> np.ndarray:
    """ν(λ) = argmax Φ(ν) − βKL − Σλ(⟨h,ν⟩ − b): the fixed point of ν = Gibbs(∇Φ(ν) − Σλh), solved by
    damped iteration (exact in one step for linear Φ); raises if it does not converge."""
    nus = start.copy()
    if getattr(game.objective, "curvature", "") == "linear":
        return gibbs(game.nu0, game.rewards(nus, lam), game.beta)
    for _ in range(iterations):
        new = 0.5 * nus + 0.5 * gibbs(game.nu0, game.rewards(nus, lam), game.beta)
        if np.max(np.abs(new - nus)) <= tol:
            return new
        nus = new
    raise SolverError(f"the Policy's response to the multipliers λ = {lam.tolist()} did not converge in "
                      f"{iterations} damped best-response steps")


DYNAMICS = {
    "best-response": damped_best_response,
    "mirror": mirror_ascent,
    "no-regret": no_regret,
    "extragradient": extragradient,
    "alternating": alternating_best_response,
}
