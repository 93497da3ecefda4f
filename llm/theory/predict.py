"""Answer vectors on a prompt's partition and the answer-level predictions of (E2) for them.

``ν`` vectors live on the partition {labels of the base marginal} ∪ {``<rest>``} (:func:`answer_labels`,
:func:`marginal_vector`); :func:`predict_optimum` / :func:`predict_constrained` give dagsim's optimum ν* of
(E2) (T5 with a shared constraint), :func:`finite_group_prediction` the finite-G point of T10 and
:func:`k3_loss_stationary` where the k3-in-the-loss KL leads. Distances are :mod:`dagsim.divergences`'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dagsim import divergences
from dagsim.objectives import make_objective
from dagsim.solvers import solve_answer_level

REST = "<rest>"
OBJECTIVES = ("sharpen", "entropy", "reward", "constraint")
#: Brent's tolerance on the shared multiplier λ of the constrained problem (answer masses move by ~λ/β).
LAMBDA_XTOL = 1e-10
#: Floor of q in the answer-level KL(p‖q) of the reports: ν0's ``<rest>`` bucket can be empty while ν_T
#: puts mass there, and the report wants a finite number (:func:`dagsim.divergences.kl_divergence`).
KL_FLOOR = 1e-15


# ------------------------------------------------------------------------------------- answer vectors


def answer_labels(bounds: dict[str, tuple[float, float]], min_mass: float) -> list[str]:
    """Labels of the partition: answers with certified mass ≥ ``min_mass``, most likely first, then REST."""
    kept = sorted((z for z, (lo, _) in bounds.items() if lo >= min_mass), key=lambda z: -bounds[z][0])
    return [*kept, REST]


def marginal_vector(bounds: dict[str, tuple[float, float]], labels: Sequence[str]) -> np.ndarray:
    """ν on the partition ``labels`` (last = REST): certified lower bounds, REST = 1 − Σ. Shape (K,)."""
    head = np.array([bounds.get(z, (0.0, 0.0))[0] for z in labels[:-1]], dtype=np.float64)  # (K-1,)
    rest = max(0.0, 1.0 - float(head.sum()))
    return np.append(head, rest)




def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """TV(p, q) = ½ Σ |p − q| (:func:`dagsim.divergences.total_variation`)."""
    return divergences.total_variation(p, q)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) in nats (0 log 0 = 0; q floored at :data:`KL_FLOOR` = 1e-15 where p > 0)."""
    return divergences.kl_divergence(p, q, floor=KL_FLOOR)


def sequence_kl_estimate(history: Sequence[dict]) -> float:
    """Mean sequence-level KL(π‖π0) estimate over training steps: the seq-reward log-ratio mean, or the
    trainer's per-token k3 mean × mean completion length."""
    vals = [h["seq_kl"] if "seq_kl" in h else h.get("kl", 0.0) * h.get("completion_length", 0.0) for h in history]
    return float(np.mean(vals)) if vals else float("nan")


def as_map(labels: Sequence[str], nu: np.ndarray) -> dict[str, float]:
    return {z: float(v) for z, v in zip(labels, nu, strict=True)}



def summarize(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "p90": float(np.quantile(v, 0.9)), "mean": float(v.mean())}



# ---------------------------------------------------------------------------------------- prediction


def _support_floor(nu0: np.ndarray) -> np.ndarray:
    """dagsim's solvers take full-support references; a zero REST bucket gets a negligible floor."""
    nu0 = np.maximum(np.asarray(nu0, dtype=np.float64), 1e-15)
    return nu0 / nu0.sum()



def _objective(objective: str, k: int, r: np.ndarray, tau: float):
    """The dagsim objective of ``objective`` on k answers with task reward r (τ for sharpen and entropy)."""
    if objective == "reward":
        return make_objective("reward", n_answers=k, reward=r)
    if objective in ("sharpen", "entropy"):
        return make_objective(objective, n_answers=k, reward=r, tau=tau)
    raise ValueError(f"predict_optimum: objective must be sharpen | entropy | reward, got {objective!r}")


def predict_optimum(
    objective: str, nu0: np.ndarray, beta: float, tau: float, *, reward: np.ndarray | None = None,
    penalty: np.ndarray | None = None,
) -> np.ndarray:
    """ν* of (E2) ``max Φ(ν) − β KL(ν‖ν0)`` for one prompt, by dagsim (closed form or exact dual).

    ``objective``: sharpen (Φ = −τH), entropy (Φ = τH, task reward 0: label-free), reward (Φ = ⟨r,ν⟩,
    ``reward`` = 1[z = correct]). ``penalty`` (K,) is subtracted from the task reward (a fixed Lagrange
    term −λh of the constraint, T5). KL(ν‖ν0) with ν0 the reference (second argument).
    """
    nu0 = _support_floor(nu0)
    k = len(nu0)
    if k == 1:  # a single bucket (e.g. nothing enumerated but <rest>): the simplex is one point
        return nu0
    r = np.zeros(k) if reward is None else np.asarray(reward, dtype=np.float64)
    if penalty is not None:
        r = r - penalty
    obj = _objective(objective, k, r, tau)
    return np.asarray(solve_answer_level(obj, nu0, beta).nu, dtype=np.float64)



def predict_constrained(
    nu0s: Sequence[np.ndarray], coefs: Sequence[np.ndarray], cap: float, beta: float, tau: float,
    base: str = "sharpen",
) -> tuple[list[np.ndarray], float]:
    """ν*_p for all prompts under the constraint the trainer enforces, and its multiplier λ*.

    constrained-grpo penalizes every sample by λ·h(z) with ONE λ updated on the batch mean of ⟨h, ν_p⟩, so
    its problem is ``max Σ_p [Φ(ν_p) − β KL(ν_p‖ν0_p)]  s.t.  mean_p ⟨h_p, ν_p⟩ ≤ b`` (T5 with a shared
    constraint). Given λ the prompts decouple into (E2) with task reward −λh; λ* ≥ 0 is the root of the
    mean constraint value minus b (Brent), or 0 when the unconstrained optimum already satisfies it.
    """
    from scipy.optimize import brentq

    def solve(lam: float) -> list[np.ndarray]:
        return [predict_optimum(base, n0, beta, tau, penalty=lam * h) for n0, h in zip(nu0s, coefs, strict=True)]

    def slack(lam: float) -> float:
        return float(np.mean([h @ nu for h, nu in zip(coefs, solve(lam), strict=True)])) - cap

    if slack(0.0) <= 0:
        return solve(0.0), 0.0
    hi = 1.0
    while slack(hi) > 0:
        hi *= 2.0
        if hi > 1e6:
            raise ValueError(f"cap {cap} is infeasible: the forbidden mass cannot be pushed below it")
    lam = brentq(slack, 0.0, hi, xtol=LAMBDA_XTOL)
    return solve(lam), float(lam)


def finite_group_prediction(objective: str, nu0: np.ndarray, beta: float, tau: float, G: int, *,
                            reward: np.ndarray | None = None, estimator: str | None = None,
                            rloo_aware: bool | None = None) -> np.ndarray:
    """The finite-G stationary point of expected GRPO (T10), RLOO centering, no std scaling; the estimator and
    the RLOO-aware table size (T11a) default to the trainer's (``TrainConfig``), so ν_G predicts its run."""
    from dagsim.grpo.analysis import finite_group_stationary
    from dagsim.grpo.rewards import table_size_for
    from llm.trainer import TrainConfig

    defaults = TrainConfig()
    estimator = defaults.estimator if estimator is None else estimator
    rloo_aware = defaults.rloo_aware if rloo_aware is None else rloo_aware
    if len(nu0) == 1:
        return _support_floor(nu0)
    return finite_group_stationary(_support_floor(nu0), objective, G, beta, tau=tau, task_reward=reward,
                                   estimator=estimator, table_size=table_size_for("rloo", G, rloo_aware=rloo_aware)).nu


def k3_loss_stationary(objective: str, nu0: np.ndarray, beta: float, tau: float, *,
                       reward: np.ndarray | None = None, damping: float = 0.5, iters: int = 2000) -> np.ndarray:
    """Where the trainer's k3-in-the-loss KL leads when the answer is ONE decision (a bandit), G → ∞.

    The expected gradient of β·k3 as a loss is β∇KL(π0‖π) (forward KL; module docstring), so the stationary
    point of ``⟨g(ν), ν⟩ + β Σ ν0 log ν`` satisfies ``g(z) + β ν0(z)/ν(z) = λ``, i.e. ``ν = β ν0/(λ − g)``
    with λ > max g fixing Σν = 1 — instead of the Gibbs point ν ∝ ν0 e^{g/β} of (E2). ``g`` is the
    objective's own reward ∇Φ at the target q = ν (:meth:`dagsim.objectives.Objective.reward`: sharpen
    r + τ(log ν + 1), entropy r − τ(log ν + 1), reward r; the constant τ moves λ, not ν); damped iteration.
    A model of the sign and size of the deviation only: a real completion makes several decisions.
    """
    from scipy.optimize import brentq

    nu0 = _support_floor(nu0)
    r = np.zeros(len(nu0)) if reward is None else np.asarray(reward, dtype=np.float64)
    obj = _objective(objective, len(nu0), r, tau)
    nu = nu0.copy()
    for _ in range(iters):
        g = obj.reward(nu)  # (K,)
        lam = brentq(lambda lam, g=g: float((beta * nu0 / (lam - g)).sum()) - 1.0, g.max() + 1e-15, g.max() + 2 * beta)
        nu = (1 - damping) * nu + damping * beta * nu0 / (lam - g)
        nu /= nu.sum()
    return nu
