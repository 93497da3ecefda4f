"""Coherence by majority (TTRL-like): Φ(ν) = ⟨r, ν⟩ + τ max_z ν(z) (THEORY §4, "majority")."""

from __future__ import annotations

from typing import Any

import numpy as np

from dagsim.objectives.base import (
    Objective,
    check_beta,
    check_vector,
    log_of,
    register,
    softmax_log,
)
from dagsim.objectives.reward import RewardObjective


def split_mode_credit(counts: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``1[own ∈ modes(counts)] / |modes(counts)|``: majority credit with ties split evenly.

    Splitting equals the expectation of uniform random tie-breaking, so rewards stay deterministic and
    no answer index is favoured. counts ``(..., K)``, own ``(...)`` int -> ``(...)`` float.
    """
    is_mode = counts == counts.max(axis=-1, keepdims=True)  # (..., K)
    n_modes = is_mode.sum(axis=-1)  # (...)
    own_is_mode = np.take_along_axis(is_mode, own[..., None], axis=-1)[..., 0]
    return own_is_mode / n_modes


@register("majority")
class MajorityObjective(Objective):
    """Φ(ν) = ⟨r, ν⟩ + τ max_z ν(z): convex (a max of linear functions) and nonsmooth.

    ``reward(q)`` = r + τ·1[z = mode(q)], ties to the lowest index: a *subgradient* of the convex Φ
    (THEORY's "supergradient/subgradient"), exactly the table's form.

    Exact solution of (E2), derived here (THEORY lists no closed form): max_ν max_z* [⟨r + τe_z*, ν⟩ −
    βKL(ν‖ν0)] swaps into max over the mode choice z* of a Gibbs problem with value
    β log(Σ ν0 e^{r/β} + ν0(z*) e^{r(z*)/β}(e^{τ/β} − 1)), so z* = argmax ν0(z) e^{r(z)/β} and
    ν ∝ ν0·exp((r + τ 1[z = z*])/β). With constraints the solvers maximize over z* of the concave
    constrained problem (:meth:`mode_subproblem`).

    Φ − βKL is not concave for τ > 0 (the upward kink of max survives any smooth concave term).
    """

    needs_labels = False  # self-consistency (TTRL-like): the τ-term needs no labels

    def __init__(self, n_answers: int, *, reward: Any = None, tau: float = 1.0) -> None:
        super().__init__(n_answers, reward=reward, tau=tau)

    def exact_solve(self, problem):
        """Enumeration of the mode choice, each mode by the shared dual (``solvers/majority.py``)."""
        from dagsim.solvers.majority import solve_majority

        return solve_majority(problem)

    @property
    def curvature(self) -> str:
        return "linear" if self.tau == 0 else "convex"

    def value(self, nu: np.ndarray) -> float:
        nu = check_vector(nu, self.n_answers)
        return float(self.task_reward @ nu + self.tau * np.max(nu))

    def reward(self, q: np.ndarray) -> np.ndarray:
        q = check_vector(q, self.n_answers, "q")
        g = self.task_reward.copy()
        g[int(np.argmax(q))] += self.tau
        return g

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return self.tau == 0

    def mode_scores(self, nu0: np.ndarray, beta: float) -> np.ndarray:
        """log ν0(z) + r(z)/β: the mode choice with the largest score wins (−inf off the support)."""
        return log_of(nu0) + self.task_reward / beta

    def mode_subproblem(self, mode: int) -> RewardObjective:
        """The concave problem for a fixed mode z*: plain reward r + τ e_{z*}."""
        r = self.task_reward.copy()
        r[mode] += self.tau
        return RewardObjective(self.n_answers, reward=r)

    def closed_form(self, nu0: np.ndarray, beta: float) -> np.ndarray:
        beta = check_beta(beta)
        nu0 = self.check_nu0(nu0)
        scores = self.mode_scores(nu0, beta)
        logits = scores.copy()
        logits[int(np.argmax(scores))] += self.tau / beta
        return softmax_log(logits)

    def closed_form_certificate(self, nu, nu0, beta):
        scores = self.mode_scores(nu0, beta)
        ties = np.flatnonzero(scores == np.max(scores))
        note = "exact: maximized over the mode choice"
        if ties.size > 1 and self.tau > 0:
            note += f"; tie, mode choices {ties.tolist()} give the same value, lowest index returned"
        return "optimal", None, note

    @staticmethod
    def group_reward(answers: np.ndarray, ctx) -> np.ndarray:
        """GRPO reward ``g_i = r(z_i) + τ·1[z_i = mode of the OTHER G-1 answers]`` (ties split: 1/#modes).

        The leave-one-out mode is the plug-in of ``mode(ν)`` that does not see sample i, so a sample cannot
        vote for itself (with the whole-group mode, an answer seen once in an all-distinct group would be
        "the majority"). ``ttrl`` is the whole-group pseudo-label version. The no-answer index (unless
        ``no_answer_rule="pool"``) is never the mode: it casts no vote, its own samples get credit 0, and
        a sample whose G-1 others are all unparseable gets credit 0 (there is no mode). answers ``(B, G)``.
        """
        from dagsim.estimators import group_counts

        counts = group_counts(answers, ctx.n_answers)  # (B, K)
        others = np.repeat(counts[:, None, :], ctx.group_size, axis=1)  # (B, G, K)
        b_idx, g_idx = np.indices(answers.shape)
        others[b_idx, g_idx, answers] -= 1  # remove sample i's own vote
        na = ctx.marked_no_answer
        if na is None:
            credit = split_mode_credit(others, answers)  # (B, G)
        else:
            others[..., na] = 0  # not a candidate
            has_vote = others.max(axis=-1) > 0  # (B, G) some other sample has a real answer
            credit = np.where(has_vote & (answers != na), split_mode_credit(others, answers), 0.0)
        return ctx.task_reward[answers] + ctx.tau * credit

    def cvxpy_pieces(self, x, support, nu0_s, beta):
        """Exact reformulation: one DCP piece per mode choice z* in the support (max over pieces)."""
        import cvxpy as cp

        base = self.task_reward[support] @ x - beta * cp.sum(cp.rel_entr(x, nu0_s))
        return [base + self.tau * x[i] for i in range(len(support))]
