"""The GRPO simulator on exact DAG models (THEORY §6, T10, T11), three modes sharing one update.

Policies are edge-logit vectors, one per view of each prompt. Each step computes, per view, an
estimate of the policy gradient of the regularized objective and takes a gradient-ascent step:

* ``exact``    — G → ∞: ∇_θ[Φ(ν_θ) − β KL(π_θ‖π0)] exactly (the reward is ∇Φ(ν_θ); backward DP, T9).
* ``expected`` — finite G, no sampling noise: the exact expected GRPO update, i.e. the policy gradient
  of the *effective reward* ḡ_G(z) = E[A_i | z_i = z] (T10), plus the exact KL gradient.
* ``sampled``  — n_prompts × G traces sampled through the DAG, group rewards from the estimators,
  advantages (baseline/scale, T11), a clipped importance-ratio surrogate over ``inner_epochs`` epochs,
  and the KL to the reference exactly or by the k3 estimator.

Every step logs, from the exact marginals: distance (total variation) to the exact optimum of the
algorithm's game, exploitability (E4, with the trace-level KL), answer entropy, accuracy when the task
has a correct answer, and the mass on constrained answers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from dagsim.dag import ReasoningDAG, Task
from dagsim.divergences import entropy, total_variation
from dagsim.errors import DomainError, ValidationError
from dagsim.estimators import ESTIMATOR_NAMES
from dagsim.grpo.advantages import BASELINES, SCALES
from dagsim.grpo.algorithms import ALGORITHMS, get_algorithm
from dagsim.grpo.sampling import sample_traces, score_gradient, trace_log_prob
from dagsim.grpo.settings import GRPO_DEFAULTS, GRPOSettings
from dagsim.marginals import edge_policy, forward, logit_gradient, trace_kl, trace_kl_gradient
from dagsim.problem import AnswerProblem, build_problem
from dagsim.registry import check_name

MODES = ("exact", "expected", "sampled")
#: Re-exported names (one source each: ``dagsim.estimators.ESTIMATORS``, ``dagsim.grpo.advantages``).
ESTIMATORS = ESTIMATOR_NAMES
__all__ = ["BASELINES", "ESTIMATORS", "KL_ESTIMATORS", "MODES", "SCALES", "PromptState", "SimulationConfig",
           "SimulationResult", "prepare_prompt", "prompt_metrics", "simulate"]
KL_ESTIMATORS = ("exact", "k3", "none")
#: Logits are kept finite: a -inf reference logit (π0 = 0) is frozen at this value (exp underflows to 0).
FROZEN_LOGIT = -1e4
#: Marginals are floored here before exact rewards are computed (see :func:`_exact_rewards`).
MARGINAL_FLOOR = 1e-300
#: Natural-gradient steps skip edges whose visit probability μ(u)π(e) is below this (no information there).
NATURAL_MIN_WEIGHT = 1e-250


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated GRPO run. Field names carry the paper's symbols.

    The GRPO choices shared with the LLM trainer (``dagsim.grpo.settings.GRPOSettings``: G, estimator,
    baseline, scale, β, τ, rloo_aware, the ttrl/empo conventions, advantage ε) take their defaults from
    ``GRPO_DEFAULTS`` (β excepted: 0.5 here) and are validated by it; :attr:`grpo_settings` is that object.
    """

    algorithm: str = "coherence-grpo"
    """gt-grpo | ttrl | empo | diversity-grpo | coherence-grpo | pairwise-coherence-grpo | constrained-grpo"""
    objective: str | None = None
    """answer-level objective (default: the algorithm's)"""
    beta: float = 0.5
    """β, the KL weight to the reference policy"""
    tau: float = GRPO_DEFAULTS.tau
    """τ, the objective weight (ignored by gt-grpo; fixed for ttrl/empo)"""
    order: float | None = None
    """α, the Tsallis order"""
    consensus: str = "arithmetic"
    """multi-view consensus: arithmetic | geometric | majority"""
    mode: str = "expected"
    """exact (G → ∞) | expected (finite G, no noise) | sampled"""
    group_size: int = GRPO_DEFAULTS.group_size
    """G, samples per prompt (and per view)"""
    estimator: str = GRPO_DEFAULTS.estimator
    """log/power estimator of the group reward: aqp (default: T12's variance-aware table, κ = 2; power terms
    keep their U-statistics) | plugin | loo | unbiased | minimax | minimax_monotone. The minimax log table has
    the least bias (T8) but its variance explodes past G ≈ 8 (sampled GRPO at G = 16 ends at TV ≈ 0.2–0.3
    from ν*, AQP at ≈ 0.004; bench/experiments_aqp.py)"""
    baseline: str = GRPO_DEFAULTS.baseline
    """advantage centering: rloo | mean | none | doubly-loo (T11; doubly-loo recomputes the other samples'
    rewards without sample i, T11b)"""
    scale: str = GRPO_DEFAULTS.scale
    """advantage scaling: none | group | batch (T11)"""
    steps: int = 200
    """number of policy updates"""
    lr: float = 0.5
    """η, gradient-ascent step on the edge logits"""
    seed: int = 0
    """seed of the sampling generator"""
    clip_eps: float = 0.2
    """ε of the ratio clipping (sampled mode)"""
    inner_epochs: int = 1
    """optimization epochs per sampled batch (sampled mode)"""
    kl_estimator: str = "exact"
    """KL term in sampled mode: exact | k3 | none"""
    dual_lr: float = 1.0
    """step of the multipliers' dual ascent (constrained-grpo)"""
    label_free: bool = False
    """drop the task reward r from the objective (self-improvement without labels); accuracy is still
    measured against r. Always on for ttrl and empo, refused for gt-grpo"""
    natural: bool = False
    """exact/expected modes: natural policy gradient (the advantage Q(e) − V(u) per edge, i.e. the
    gradient preconditioned by the tabular Fisher) instead of the plain logit gradient"""
    # --- T11a/T12 (issue 12): RLOO-aware count tables
    rloo_aware: bool = GRPO_DEFAULTS.rloo_aware
    """with baseline rloo (or mean, T11d), design the count tables (log and power estimators) for G − 1
    samples: RLOO applies them to Bin(G − 2, ν) counts, so a (G−1)-table leaves only its own bias (T11a);
    --no-rloo-aware uses the G-table"""
    # --- Baselines faithful to their originals (issue #16): ttrl/empo conventions ---
    tie_break: str = GRPO_DEFAULTS.tie_break
    """ttrl pseudo-label among tied modes: first (TTRL's code: first in sample order) | split (1/#modes)"""
    no_answer: str = GRPO_DEFAULTS.no_answer
    """rule for the answer named by --no-answer-label: auto (published: ttrl drop, empo singleton) | drop |
    singleton | pool; majority/consensus never take it as a label unless pool"""
    no_answer_label: str | None = None
    """answer label of the DAG files that stands for 'no parseable answer' (default: none — DAG answers
    are always parseable)"""
    entropy_gate: bool = GRPO_DEFAULTS.entropy_gate
    """empo: EMPO's TRL gate (every reward 0 when the G answers are all distinct)"""
    n_votes: int = GRPO_DEFAULTS.n_votes
    """ttrl/empo: TTRL's vote/train split — vote on n_votes >= G samples, train on the first G (0 = G;
    expected mode only)"""
    advantage_eps: float = GRPO_DEFAULTS.advantage_eps
    """ε added to the std in group/batch advantage scaling (TRL 1e-4; verl 1e-6)"""

    @property
    def grpo_settings(self) -> GRPOSettings:
        """The GRPO choices this run shares with the LLM trainer, as one frozen object."""
        return GRPOSettings.of(self)

    def validate(self) -> None:
        algorithm = get_algorithm(self.algorithm)
        check_name(MODES, self.mode, "mode")
        check_name(KL_ESTIMATORS, self.kl_estimator, "KL estimator", "kl_estimator")
        if not (np.isfinite(self.beta) and self.beta > 0):
            raise ValidationError(f"beta must be a finite number > 0, got {self.beta!r}")
        self.grpo_settings.validate()
        if self.steps < 0 or self.inner_epochs < 1:
            raise ValidationError("steps must be >= 0 and inner_epochs >= 1")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValidationError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.n_votes != 0:
            if not algorithm.vote_split:
                raise ValidationError("n_votes (TTRL's vote/train split) applies to "
                                      f"{' and '.join(n for n, a in ALGORITHMS.items() if a.vote_split)} only")
            if self.mode == "sampled" and self.n_votes > self.group_size:
                raise ValidationError("n_votes > group_size is available in expected mode only")


@dataclass
class PromptState:
    """One prompt: its views, the answer-level problem and optimum, and the current policy logits."""

    views: tuple[ReasoningDAG, ...]
    problem: AnswerProblem
    optimum: np.ndarray  # (m, K)
    logits: list[np.ndarray]  # per view (n_edges,)
    multipliers: np.ndarray  # (n_constraints,)
    correct: int | None  # answer index of the unique reward maximizer, if any

    @property
    def n_views(self) -> int:
        return len(self.views)


@dataclass
class SimulationResult:
    config: SimulationConfig
    history: list[dict]
    final: list[dict]
    seconds: float
    trajectory_path: str | None = None
    prompts: list[PromptState] = field(default_factory=list, repr=False)


# ---------------------------------------------------------------------- setup
def _correct_answer(reward: np.ndarray) -> int | None:
    if reward.size == 0 or np.all(reward == reward[0]):
        return None
    top = np.flatnonzero(reward == reward.max())
    return int(top[0]) if top.size == 1 else None


def prepare_prompt(model: ReasoningDAG | Task, cfg: SimulationConfig) -> PromptState:
    from dagsim.plugins import solve_problem

    algo = get_algorithm(cfg.algorithm)
    multiview = isinstance(model, Task) and model.n_views > 1
    objective, _ = algo.resolve(cfg.objective, multiview)
    correct = _correct_answer(model.reward)
    if cfg.label_free and algo.name == "gt-grpo":
        raise DomainError("gt-grpo trains on the task reward; --label-free contradicts it")
    if cfg.label_free or algo.label_free:
        model = _without_reward(model)
    tau = algo.fixed_tau if algo.fixed_tau is not None else (None if objective == "reward" else cfg.tau)
    problem = build_problem(model, objective, beta=cfg.beta, tau=tau, order=cfg.order,
                            consensus=cfg.consensus if objective == "consensus" else None)
    if problem.constraints and algo.name != "constrained-grpo":
        problem = AnswerProblem(problem.objective, problem.nu0, problem.beta, problem.weights, (),
                                problem.answers, problem.reward, problem.views)
    if algo.name == "constrained-grpo" and not problem.constraints:
        raise DomainError("constrained-grpo needs a file with 'constraints'")
    sol = solve_problem(problem)  # solve_answer_level, or a user family's route (--objective-module, #17)
    optimum = np.atleast_2d(sol.nu)
    logits = []
    for v in problem.views:
        ref = v.reference_logits
        logits.append(np.where(np.isfinite(ref), ref, FROZEN_LOGIT))
    return PromptState(views=problem.views, problem=problem, optimum=optimum, logits=logits,
                       multipliers=np.zeros(len(problem.constraints)), correct=correct)


def _without_reward(model: ReasoningDAG | Task) -> ReasoningDAG | Task:
    if isinstance(model, Task):
        return Task.from_views([v.with_reward(None) for v in model.views], weights=model.weights, reward=None,
                               constraints=model.constraints,
                               name=model.name)
    return model.with_reward(None)


# ---------------------------------------------------------------------- per-view reward operators
def _group_reward_kwargs(state: PromptState, cfg: SimulationConfig, group_objective: str) -> dict:
    prob = state.problem
    obj = prob.objective
    tau = getattr(obj, "tau", cfg.tau)
    return {"n_answers": len(prob.answers), "tau": tau if tau is not None else 0.0,
            "task_reward": prob.reward, "order": getattr(obj, "order", cfg.order), "estimator": cfg.estimator,
            "table_size": _table_size(cfg)}


def _table_size(cfg: SimulationConfig) -> int | None:
    """T11a: the count tables' design size (G − 1 under RLOO when ``rloo_aware``, else G)."""
    return cfg.grpo_settings.table_size


def _baseline_options(state: PromptState, cfg: SimulationConfig, group_objective: str) -> dict:
    """The no-answer / tie-break / gate keyword arguments of ``group_rewards`` for this prompt."""
    answers = list(state.problem.answers)
    label = cfg.no_answer_label
    na = answers.index(label) if label is not None and label in answers else None
    rule = cfg.grpo_settings.no_answer_rule
    if group_objective not in ("ttrl", "empo") and rule == "pool":
        na = None
    return {"no_answer": na, "tie_break": cfg.tie_break, "no_answer_rule": rule,
            "entropy_gate": cfg.entropy_gate}


def _constraint_matrix(state: PromptState) -> np.ndarray:
    if not state.problem.constraints:
        return np.zeros((0, len(state.problem.answers)))
    return np.stack([c.as_leq()[0] for c in state.problem.constraints])  # (n_c, K)


def _exact_rewards(state: PromptState, nus: np.ndarray) -> np.ndarray:
    """∇Φ per view at the current marginals (minus Σλh for constrained runs), (m, K).

    Marginals are floored at :data:`MARGINAL_FLOOR` first: an answer whose probability underflowed to 0
    would otherwise get an infinite log-reward, and 0·∞ = NaN in the gradient; its gradient weight is
    its probability, so the floor changes nothing else.
    """
    safe = np.maximum(nus, MARGINAL_FLOOR)
    g = state.problem.game().rewards(safe, state.multipliers if state.problem.constraints else None)
    if not np.all(np.isfinite(g)):
        raise DomainError("the objective's reward is not finite at the current policy")
    return g


def _expected_rewards(state: PromptState, nus: np.ndarray, cfg: SimulationConfig, group_objective: str
                      ) -> np.ndarray:
    """The effective reward ḡ_G(z) = E[A_i | z_i = z] per view (T10), (m, K)."""
    from dagsim.grpo import effective

    kw = _group_reward_kwargs(state, cfg, group_objective)
    kw.pop("n_answers")
    if state.n_views > 1:
        fn = getattr(effective, "effective_reward_multiview", None)
        if fn is None:
            raise DomainError("expected mode is not available for multi-view objectives; use exact or sampled")
        na = _baseline_options(state, cfg, group_objective)["no_answer"]
        kw["rloo_aware"] = kw.pop("table_size") is not None
        out = np.asarray(fn(group_objective, nus, cfg.group_size, baseline=cfg.baseline, scale=cfg.scale,
                            weights=state.problem.weights, consensus=cfg.consensus, no_answer=na, **kw))
    else:
        out = effective.effective_reward(group_objective, nus[0], cfg.group_size, baseline=cfg.baseline,
                                         scale=cfg.scale, n_votes=cfg.n_votes or None, eps=cfg.advantage_eps,
                                         **_baseline_options(state, cfg, group_objective), **kw)[None, :]
    if state.problem.constraints:
        if cfg.scale != "none":
            raise DomainError("expected mode with constraints needs --scale none (the penalty is then additive)")
        # The Lagrangian penalty −Σλh(z) is a fixed per-answer reward: its effective reward adds linearly.
        penalty = -(state.multipliers @ _constraint_matrix(state))  # (K,)
        out = out + effective.effective_reward("reward", nus[0], cfg.group_size, baseline=cfg.baseline,
                                               scale="none", task_reward=penalty)[None, :]  # count-free
    return out


# ---------------------------------------------------------------------- one step
def _kl_gradient_exact(view: ReasoningDAG, theta: np.ndarray, fb) -> np.ndarray:
    return trace_kl_gradient(view, theta, fb=fb)


def _step_deterministic(state: PromptState, cfg: SimulationConfig, group_objective: str) -> None:
    fbs = [forward(v, th) for v, th in zip(state.views, state.logits)]
    nus = np.stack([fb.marginal for fb in fbs])
    g = _exact_rewards(state, nus) if cfg.mode == "exact" else _expected_rewards(state, nus, cfg, group_objective)
    for j, (view, fb) in enumerate(zip(state.views, fbs)):
        grad = logit_gradient(view, state.logits[j], g[j], fb=fb) - cfg.beta * _kl_gradient_exact(
            view, state.logits[j], fb)
        if cfg.natural:
            # Tabular natural gradient: ∂J/∂θ_e = μ(u)π(e)·(advantage of e) -> step on the advantage itself.
            weight = fb.occupancy[view.edge_src] * fb.pi
            grad = np.divide(grad, weight, out=np.zeros_like(grad), where=weight > NATURAL_MIN_WEIGHT)
        state.logits[j] = _frozen(view, state.logits[j] + cfg.lr * grad)
    if state.problem.constraints:
        _dual_step(state, cfg, nus[0])


def _frozen(view: ReasoningDAG, theta: np.ndarray) -> np.ndarray:
    ref = view.reference_logits
    return np.where(np.isfinite(ref), theta, FROZEN_LOGIT)


def _dual_step(state: PromptState, cfg: SimulationConfig, nu_estimate: np.ndarray) -> None:
    from dagsim.grpo.rewards import dual_ascent_step

    cons = state.problem.constraints
    h = _constraint_matrix(state)
    bounds = np.array([c.as_leq()[1] for c in cons])
    ops = ["==" if c.op == "==" else "<=" for c in cons]
    state.multipliers = np.asarray(dual_ascent_step(state.multipliers, h @ nu_estimate, bounds, cfg.dual_lr, ops),
                                   dtype=np.float64)


def _sampled_step(prompts: Sequence[PromptState], cfg: SimulationConfig, group_objective: str,
                  rng: np.random.Generator) -> dict:
    """One sampled GRPO step over all prompts: sample, reward, advantage, clipped surrogate epochs."""
    from dagsim.grpo.advantages import advantages, doubly_loo_advantages, rescale_advantages
    from dagsim.grpo.rewards import (
        consensus_group_rewards,
        constrained_rewards,
        group_rewards,
        pairwise_group_rewards,
    )

    G = cfg.group_size
    batches, old_logp, rewards_rows, owners, centered_rows = [], [], [], [], []
    for p_idx, state in enumerate(prompts):
        pis = [edge_policy(v, th) for v, th in zip(state.views, state.logits)]
        view_batches = [sample_traces(v, pi, G, rng) for v, pi in zip(state.views, pis)]
        answers = [b.answers for b in view_batches]
        kw = _group_reward_kwargs(state, cfg, group_objective)
        h = _constraint_matrix(state) if state.problem.constraints else None
        opts = _baseline_options(state, cfg, group_objective)

        def view_rewards(groups, kw=kw, state=state, h=h, opts=opts):
            """Every view's rewards for the given per-view groups (the constraint penalty included)."""
            if group_objective == "consensus":
                ckw = {k: v for k, v in kw.items() if k not in ("order", "table_size")}
                out = consensus_group_rewards(groups, consensus=cfg.consensus, weights=state.problem.weights,
                                              rloo_aware=kw["table_size"] is not None,
                                              no_answer=opts["no_answer"], **ckw)
            elif group_objective == "pairwise":
                out = pairwise_group_rewards(groups, n_answers=kw["n_answers"], tau=kw["tau"],
                                             task_reward=kw["task_reward"])
            else:
                out = [group_rewards(group_objective, a, **opts, **kw) for a in groups]
            if h is not None:
                out = [constrained_rewards(r, a, constraint_coefs=h, multipliers=state.multipliers)
                       for r, a in zip(out, groups)]
            return out

        rew = view_rewards(answers)
        if cfg.baseline == "doubly-loo":
            for j in range(len(answers)):
                def fn(a, j=j, answers=answers):
                    groups = [x[None, :] if k != j else a for k, x in enumerate(answers)]
                    groups = [np.broadcast_to(x, (a.shape[0], x.shape[-1])) for x in groups]
                    return view_rewards(groups)[j]
                centered_rows.append(doubly_loo_advantages(answers[j][None, :], fn)[0][0])
        if state.problem.constraints:
            counts = np.bincount(np.concatenate(answers), minlength=len(state.problem.answers)) / (G * len(answers))
            _dual_step(state, cfg, counts)
        for j, (b, pi) in enumerate(zip(view_batches, pis)):
            batches.append(b)
            old_logp.append(trace_log_prob(b, np.log(np.maximum(pi, 1e-300))))
            rewards_rows.append(np.asarray(rew[j], dtype=np.float64))
            owners.append((p_idx, j))
    reward_mat = np.stack(rewards_rows)  # (n_groups, G)
    if cfg.baseline == "doubly-loo":
        adv, n_zero = rescale_advantages(np.stack(centered_rows), reward_mat, scale=cfg.scale,
                                         eps=cfg.advantage_eps)
    else:
        adv, n_zero = advantages(reward_mat, baseline=cfg.baseline, scale=cfg.scale, eps=cfg.advantage_eps)
    clipped_total, count_total = 0, 0
    for _ in range(cfg.inner_epochs):
        for row, ((p_idx, j), batch) in enumerate(zip(owners, batches)):
            state = prompts[p_idx]
            view, theta = state.views[j], state.logits[j]
            pi = edge_policy(view, theta)
            logp = trace_log_prob(batch, np.log(np.maximum(pi, 1e-300)))
            ratio = np.exp(logp - old_logp[row])  # (G,)
            a = adv[row]
            clipped = ((a > 0) & (ratio > 1 + cfg.clip_eps)) | ((a < 0) & (ratio < 1 - cfg.clip_eps))
            weights = np.where(clipped, 0.0, a * ratio)
            grad = score_gradient(view, batch, pi, weights) / G
            if cfg.kl_estimator == "exact":
                grad -= cfg.beta * trace_kl_gradient(view, theta)
            elif cfg.kl_estimator == "k3":
                ref_logp = trace_log_prob(batch, np.log(np.maximum(view.edge_prob, 1e-300)))
                rho = np.exp(ref_logp - logp)  # π_ref(y)/π_θ(y)
                grad -= cfg.beta * score_gradient(view, batch, pi, 1.0 - rho) / G
            state.logits[j] = _frozen(view, theta + cfg.lr * grad)
            clipped_total += int(clipped.sum())
            count_total += G
    return {"zero_std_groups": int(n_zero), "clip_fraction": clipped_total / max(count_total, 1),
            "reward_mean": float(reward_mat.mean())}


def _sampled_step_union(prompts: Sequence[PromptState], batch_union, cfg: SimulationConfig, group_objective: str,
                        rng: np.random.Generator) -> dict:
    """The sampled step for single-view, unconstrained prompts, all prompts at once on their union DAG.

    Same mathematics as :func:`_sampled_step` (a parity test pins them): answers live in the union's
    answer space, so count-based group rewards are computed in one vectorized call.
    """
    from dagsim.grpo.advantages import advantages, doubly_loo_advantages, doubly_loo_rule, rescale_advantages
    from dagsim.grpo.rewards import group_rewards, is_count_reward

    U = batch_union.union
    G, B = cfg.group_size, batch_union.n_prompts
    theta = batch_union.gather_logits([s.logits[0] for s in prompts])
    pi = edge_policy(U, theta)
    batch = sample_traces(U, pi, B * G, rng, start=np.repeat(batch_union.roots, G))
    answers = batch.answers.reshape(B, G)  # (B, G) union answer indices
    kw = _group_reward_kwargs(prompts[0], cfg, group_objective)
    kw["n_answers"] = U.n_answers
    kw["task_reward"] = U.reward
    opts = {"tie_break": cfg.tie_break, "entropy_gate": cfg.entropy_gate}  # no no-answer label (see simulate)
    rewards = np.asarray(group_rewards(group_objective, answers, **opts, **kw), dtype=np.float64)  # (B, G)
    if cfg.baseline == "doubly-loo":
        rule_kw = {k: v for k, v in kw.items() if k not in ("n_answers", "table_size")}
        if not is_count_reward(group_objective):
            rule_kw.update(opts)
        rule = doubly_loo_rule(group_objective, n_answers=U.n_answers, group_size=G, **rule_kw)
        centered, _ = doubly_loo_advantages(answers, rule)  # (B, G)
        adv, n_zero = rescale_advantages(centered, rewards, scale=cfg.scale, eps=cfg.advantage_eps)
    else:
        adv, n_zero = advantages(rewards, baseline=cfg.baseline, scale=cfg.scale, eps=cfg.advantage_eps)
    adv = adv.reshape(-1)  # (B·G,)
    old_logp = trace_log_prob(batch, np.log(np.maximum(pi, 1e-300)))
    frozen = np.zeros(U.n_edges, dtype=bool)
    frozen[batch_union.super_edges] = True
    frozen |= ~np.isfinite(U.reference_logits)
    clipped_total = 0
    for _ in range(cfg.inner_epochs):
        pi = edge_policy(U, theta)
        logp = trace_log_prob(batch, np.log(np.maximum(pi, 1e-300)))
        ratio = np.exp(logp - old_logp)  # (B·G,)
        clipped = ((adv > 0) & (ratio > 1 + cfg.clip_eps)) | ((adv < 0) & (ratio < 1 - cfg.clip_eps))
        grad = score_gradient(U, batch, pi, np.where(clipped, 0.0, adv * ratio)) / G
        if cfg.kl_estimator == "exact":
            # Under the union policy each prompt's KL enters with weight 1/B.
            grad -= cfg.beta * B * trace_kl_gradient(U, theta)
        elif cfg.kl_estimator == "k3":
            ref_logp = trace_log_prob(batch, np.log(np.maximum(U.edge_prob, 1e-300)))
            grad -= cfg.beta * score_gradient(U, batch, pi, 1.0 - np.exp(ref_logp - logp)) / G
        theta = np.where(frozen, theta, theta + cfg.lr * grad)
        clipped_total += int(clipped.sum())
    for state, logits in zip(prompts, batch_union.scatter_logits(theta)):
        state.logits[0] = logits
    return {"zero_std_groups": int(n_zero), "clip_fraction": clipped_total / (B * G * cfg.inner_epochs),
            "reward_mean": float(rewards.mean())}


# ---------------------------------------------------------------------- metrics
def prompt_metrics(state: PromptState) -> dict:
    nus = np.stack([forward(v, th).marginal for v, th in zip(state.views, state.logits)])  # (m, K)
    kls = [trace_kl(v, th) for v, th in zip(state.views, state.logits)]
    game = state.problem.game()
    policy_kl = float(np.sum(game.weights * np.array(kls)))
    out = {
        "distance_to_optimum": float(np.max(total_variation(nus, state.optimum, axis=1))),
        # Floored as in _exact_rewards: an underflowed answer must not turn a log-reward into ±inf.
        "exploitability": float(game.exploitability(np.maximum(nus, MARGINAL_FLOOR), policy_kl=policy_kl)),
        "answer_entropy": float(np.mean([entropy(n) for n in nus])),
    }
    if state.correct is not None:
        out["accuracy"] = float(np.mean(nus[:, state.correct]))
    if state.problem.constraints:
        h = _constraint_matrix(state)
        out["constraint_mass"] = [float(x) for x in (h @ nus.mean(axis=0))]
        out["multipliers"] = [float(x) for x in state.multipliers]
    return out


def _mean_metrics(rows: list[dict]) -> dict:
    out = {}
    for key in ("distance_to_optimum", "exploitability", "answer_entropy", "accuracy"):
        vals = [r[key] for r in rows if key in r]
        if vals:
            out[key] = float(np.mean(vals))
    masses = [r["constraint_mass"] for r in rows if "constraint_mass" in r]
    if masses:
        out["constraint_mass"] = np.mean(np.array(masses), axis=0).tolist()
    return out


# ---------------------------------------------------------------------- driver
def simulate(models: Sequence[ReasoningDAG | Task], cfg: SimulationConfig, *, out: str | os.PathLike | None = None,
             progress: bool = False, log_every: int = 1, batched: bool = True) -> SimulationResult:
    """Run ``cfg.steps`` GRPO updates on every prompt; write the per-step trajectory as JSONL to ``out``.

    The JSONL is written to ``out + '.partial'`` as the run goes and renamed to ``out`` at the end.
    ``batched`` runs the sampled step of single-view unconstrained prompts on their union DAG (same
    mathematics, one numpy call per operation instead of one per prompt).
    """
    cfg.validate()
    if not models:
        raise ValidationError("simulate needs at least one DAG or task file")
    algo = get_algorithm(cfg.algorithm)
    prompts = [prepare_prompt(m, cfg) for m in models]
    multiview = any(p.n_views > 1 for p in prompts)
    _, group_objective = algo.resolve(cfg.objective, multiview)
    rng = np.random.default_rng(cfg.seed)
    union = None
    if cfg.mode == "sampled" and batched and not multiview and not any(p.problem.constraints for p in prompts) \
            and group_objective not in ("consensus", "pairwise") and cfg.no_answer_label is None:
        from dagsim.grpo.batch import union_of

        union = union_of([p.views[0] for p in prompts])
    history: list[dict] = []
    path = Path(out) if out is not None else None
    handle = None
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(str(path) + ".partial", "w", encoding="utf-8")
        handle.write(json.dumps({"config": asdict(cfg)}) + "\n")
    iterator = range(cfg.steps + 1)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc=f"{cfg.algorithm} [{cfg.mode}]", leave=False)
    t0 = time.perf_counter()
    finished = False
    try:
        for step in iterator:
            if step % log_every == 0 or step == cfg.steps:
                row = {"step": step, **_mean_metrics([prompt_metrics(p) for p in prompts])}
                history.append(row)
                if handle is not None:
                    handle.write(json.dumps(row) + "\n")
                if bar is not None:
                    bar.set_postfix(dist=f"{row['distance_to_optimum']:.2e}")
            if step == cfg.steps:
                break
            if cfg.mode == "sampled":
                extra = (_sampled_step_union(prompts, union, cfg, group_objective, rng) if union is not None
                         else _sampled_step(prompts, cfg, group_objective, rng))
                if history and history[-1]["step"] == step:
                    history[-1].update(extra)
            else:
                for state in prompts:
                    _step_deterministic(state, cfg, group_objective)
            if bar is not None:
                bar.update(1)
        finished = True
    finally:
        if bar is not None:
            bar.close()
        if handle is not None:
            handle.close()
            if not finished:  # no half-written trajectory left behind
                Path(str(path) + ".partial").unlink(missing_ok=True)
    if path is not None:
        try:
            os.replace(str(path) + ".partial", path)
        except OSError:
            Path(str(path) + ".partial").unlink(missing_ok=True)
            raise
    final = []
    for p in prompts:
        nus = [forward(v, th).marginal for v, th in zip(p.views, p.logits)]
        entry = {**prompt_metrics(p)}
        if p.n_views > 1:
            entry["views"] = [{a: float(x) for a, x in zip(p.problem.answers, n)} for n in nus]
        else:
            entry["answer_distribution"] = {a: float(x) for a, x in zip(p.problem.answers, nus[0])}
        entry["optimum"] = [{a: float(x) for a, x in zip(p.problem.answers, n)} for n in p.optimum]
        final.append(entry)
    return SimulationResult(cfg, history, final, time.perf_counter() - t0,
                            str(path) if path is not None else None, prompts)
