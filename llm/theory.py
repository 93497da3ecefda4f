"""Theory vs training: does GRPO fine-tuning of a real LM land on the answer-level optimum ν* of (E2)?

For each prompt of a small held-out set (THEORY.md §2, §4):

1. ν0 — the base model's certified answer marginal (:func:`llm.certified.certified_marginal`, T = 1);
2. ν* — the optimum of (E2) ``max Φ(ν) − β KL(ν‖ν0)`` with the same objective, β and τ as training, solved by
   dagsim (:func:`predict_optimum`; closed form or the exact dual solver);
3. train the base model with the matching GRPO variant and KL weight β to the frozen base *on those prompts*
   (test-time training, as TTRL does) and measure ν_T, the trained model's certified marginal, at a few
   checkpoints; report TV(ν*, ν_T) against the reference point TV(ν*, ν0).

Answer space. Certified enumeration stops at ``mass`` (0.99 by default), so each marginal is written on a
fixed per-prompt partition: the answers whose certified base mass is ≥ ``min_answer_mass`` (the labels of
ν0), plus a ``<rest>`` bucket that holds everything else — the un-enumerated residual and every answer
outside the label set. ``ν[<rest>] = 1 − Σ_labels m(z)``; the certified lower bounds ``m(z)`` of the labels
are used, so a vector is exact up to the residual, which is reported (``covered_mass``). The (E2) solve
treats ``<rest>`` as one answer with task reward 0 and constraint coefficient 0. TV on the partition is a
lower bound of TV on the full answer space and differs from it by at most the two residuals.

KL (E1/P3 use the sequence-level KL(π‖π0) at T = 1). Two estimators of its gradient are offered:

Both are modes of the trainer (``TrainConfig.kl``, :func:`llm.trainer.train_step`):

- ``"k3-loss"`` (:func:`llm.trainer.optimize_policy`): β·k3 per token added to the token loss (TRL's choice).
  With ``loss_type="dapo"`` both the policy-gradient term and the KL term are summed over a completion's
  tokens and divided by the same total token count, so β multiplies the *sequence* sum of k3 (an unbiased
  estimate of the sequence KL's value). Its gradient, however, is ``E_{a∼π}[(1 − π0/π) ∇log π] = ∇KL(π0‖π)``
  per visited state: the *forward* per-token KL at fixed states, not ∇KL(π‖π0) of the sequence (no
  score-function term). Its stationary point is therefore not (E1)'s.
- ``"seq-reward"`` (the trainer's default, :func:`llm.trainer.sequence_log_ratio`): the sequence log-ratio
  ``−β log π(y)/π0(y)`` is added to each sample's reward before RLOO centering — the exact score-function
  gradient of −β KL(π‖π0) (E1).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dagsim.io import atomic_write_json
from dagsim.objectives import make_objective
from dagsim.solvers import solve_answer_level
from llm.trainer import KL_MODES

REST = "<rest>"
OBJECTIVES = ("sharpen", "entropy", "reward", "constraint")
#: Brent's tolerance on the shared multiplier λ of the constrained problem (answer masses move by ~λ/β).
LAMBDA_XTOL = 1e-10


@dataclass(frozen=True)
class TheoryConfig:
    """Theory-vs-training experiment. Paper symbols in brackets."""

    model: str = "runs/llm/base"
    """Base checkpoint: the initial policy and the frozen reference π0."""
    n_prompts: int = 8
    """Held-out problems used (view 0 of each): ν0, ν* and the test-time training set."""
    objectives: tuple[str, ...] = OBJECTIVES
    """Subset of sharpen | entropy | reward | constraint."""
    beta: float = 1.0
    """KL weight [β] of (E1)/(E2) and of training."""
    tau: float = 0.5
    """Objective weight [τ] (sharpen, entropy, and the sharpen base of the constraint)."""
    steps: int = 30
    """GRPO steps per objective (every step uses all prompts)."""
    eval_every: int = 10
    """Certified marginal ν_t of the trained model every this many steps."""
    group_size: int = 16
    """Completions per prompt [G] (at G = 8 the entropy run stalled at median TV 0.140 from gradient noise
    while its finite-G stationary point was 0.019 from ν*; G = 16 halves the variance: 0.080)."""
    lr: float = 3e-4
    """AdamW learning rate (3e-4: moves the model to ν* within 30 steps on 8 fixed prompts; the trainer's 1e-4
    default moved the quick run by only ~0.02-0.05 TV in 4 steps)."""
    kl: str = "seq-reward"
    """KL gradient: seq-reward (exact score-function gradient of the sequence KL(π‖π0), E1) | k3-loss (the
    trainer's β·k3 per token in the loss; biased, see the module docstring)."""
    max_new_tokens: int = 40
    """Completion length limit, the same for sampling and certification."""
    mass: float = 0.99
    """Certified enumeration stops at this covered mass ..."""
    budget_seconds: float = 3.0
    """... or after this many seconds per prompt."""
    min_answer_mass: float = 1e-4
    """Answers of the base marginal below this mass go to the <rest> bucket."""
    forbidden: str = "odd"
    """constraint: the capped answer set (llm.rewards.forbidden_coefs)."""
    cap_fraction: float = 0.5
    """constraint: the cap b is this fraction of the base's mean forbidden mass (so it binds)."""
    dual_lr: float = 1.0
    """constraint: dual ascent step on λ (the trainer's default 2.0 overshot: λ peaked at 5.45 vs λ* = 1.43)."""
    seed: int = 0
    """Sampling seed of training."""
    # --- answer layer (issue 13 §1)
    answer_parser: str = ""
    """How final answers are read, for certification and training: '' = the embedded task's default (marker)
    | full | marker | module:function | path/to/file.py:function (see llm.answers)."""

    def validate(self) -> None:
        from dagsim.errors import ValidationError

        bad = [o for o in self.objectives if o not in OBJECTIVES]
        if bad:
            raise ValidationError(f"unknown objectives {bad}; choose from {OBJECTIVES}")
        if self.kl not in KL_MODES:
            raise ValidationError(f"kl must be one of {KL_MODES}, got {self.kl!r}")
        if not (self.beta > 0 and self.tau >= 0 and self.lr > 0):
            raise ValidationError("need beta > 0, tau >= 0, lr > 0")
        if self.n_prompts < 1 or self.steps < 1 or self.eval_every < 1 or self.group_size < 2:
            raise ValidationError("need n_prompts, steps, eval_every >= 1 and group_size >= 2")


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
    """TV(p, q) = ½ Σ |p − q|."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """KL(p‖q) in nats (0 log 0 = 0; q floored at 1e-15 where p > 0)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    m = p > 0
    return float((p[m] * (np.log(p[m]) - np.log(np.maximum(q[m], 1e-15)))).sum())


def sequence_kl_estimate(history: Sequence[dict]) -> float:
    """Mean sequence-level KL(π‖π0) estimate over training steps: the seq-reward log-ratio mean, or the
    trainer's per-token k3 mean × mean completion length."""
    vals = [h["seq_kl"] if "seq_kl" in h else h.get("kl", 0.0) * h.get("completion_length", 0.0) for h in history]
    return float(np.mean(vals)) if vals else float("nan")


def as_map(labels: Sequence[str], nu: np.ndarray) -> dict[str, float]:
    return {z: float(v) for z, v in zip(labels, nu, strict=True)}


# ---------------------------------------------------------------------------------------- prediction


def _support_floor(nu0: np.ndarray) -> np.ndarray:
    """dagsim's solvers take full-support references; a zero REST bucket gets a negligible floor."""
    nu0 = np.maximum(np.asarray(nu0, dtype=np.float64), 1e-15)
    return nu0 / nu0.sum()


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
    if objective == "reward":
        obj = make_objective("reward", n_answers=k, reward=r)
    elif objective in ("sharpen", "entropy"):
        obj = make_objective(objective, n_answers=k, reward=r, tau=tau)
    else:
        raise ValueError(f"predict_optimum: objective must be sharpen | entropy | reward, got {objective!r}")
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
    objective's reward at the target q = ν (sharpen τ log ν, entropy −τ log ν, reward r); damped iteration.
    A model of the sign and size of the deviation only: a real completion makes several decisions.
    """
    from scipy.optimize import brentq

    nu0 = _support_floor(nu0)
    r = np.zeros(len(nu0)) if reward is None else np.asarray(reward, dtype=np.float64)
    nu = nu0.copy()
    for _ in range(iters):
        g = {"sharpen": tau * np.log(nu), "entropy": -tau * np.log(nu), "reward": r}[objective]  # (K,)
        lam = brentq(lambda lam, g=g: float((beta * nu0 / (lam - g)).sum()) - 1.0, g.max() + 1e-15, g.max() + 2 * beta)
        nu = (1 - damping) * nu + damping * beta * nu0 / (lam - g)
        nu /= nu.sum()
    return nu


# ------------------------------------------------------------------------------------------- training


def train_config_for(objective: str, config: TheoryConfig, out: str, cap: float = 0.0):
    """The :class:`llm.trainer.TrainConfig` of the GRPO variant matching ``objective`` (T = 1, dapo)."""
    from llm.trainer import TrainConfig

    algorithm, extra = {
        "sharpen": ("coherence-grpo", {"consensus": "none"}),
        "entropy": ("diversity-grpo", {}),
        "reward": ("gt-grpo", {}),
        "constraint": ("constrained-grpo", {"base_objective": "sharpen", "forbidden": config.forbidden,
                                            "constraint_cap": cap, "dual_lr": config.dual_lr}),
    }[objective]
    return TrainConfig(
        algorithm=algorithm, model=config.model, out=out, steps=config.steps, prompts_per_step=config.n_prompts,
        group_size=config.group_size, views=1, temperature=1.0, max_new_tokens=config.max_new_tokens,
        lr=config.lr, beta=config.beta, kl=config.kl, tau=config.tau, loss_type="dapo", baseline="rloo", scale="none",
        seed=config.seed, progress=False, answer_parser=config.answer_parser, **extra,
    )


def training_problems(problems, objective: str):
    """The entropy run is label-free (task reward 0): its problems carry no answer."""
    if objective == "entropy":
        return [dataclasses.replace(p, answer=None) for p in problems]
    return list(problems)


def run_training(objective: str, config: TheoryConfig, problems, evaluate, cap: float = 0.0, device="cpu"):
    """Train on ``problems``; ``evaluate(model, tokenizer) -> list[CertifiedMarginal]`` every ``eval_every``.

    Returns ``(checkpoints, history)``: ``checkpoints`` is a list of ``(step, marginals)``.
    """
    from llm.trainer import fresh_state, train_step

    cfg = train_config_for(objective, config, out="", cap=cap)
    cfg.validate()
    state = fresh_state(cfg, device)
    ref = _frozen(config.model, device)
    probs = training_problems(problems, objective)
    state.model.train()
    checkpoints, history = [], []
    while state.step < config.steps:
        metrics = train_step(state, ref, probs, 1, cfg)
        history.append({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        if state.step % config.eval_every == 0 or state.step == config.steps:
            checkpoints.append((state.step, evaluate(state.model, state.tokenizer)))
    return checkpoints, history


def _frozen(path: str, device):
    from llm.model import load_model

    ref, _ = load_model(path, device)
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


# ------------------------------------------------------------------------------------------ pipeline


def held_out_problems(model_dir: str, n: int):
    from llm.trainer import TrainConfig, load_training_problems

    return load_training_problems(TrainConfig(model=model_dir))[1][:n]


def certify_all(model, tokenizer, prompts: Sequence[str], config: TheoryConfig):
    from llm.answers import resolve_answer_parser
    from llm.certified import certified_marginal

    parser = resolve_answer_parser(config.answer_parser, embedded_task=True, flag="--answer-parser")
    return [certified_marginal(model, tokenizer, p, extract_answer=parser, mass=config.mass,
                               max_new_tokens=config.max_new_tokens, temperature=1.0,
                               budget_seconds=config.budget_seconds) for p in prompts]


def summarize(values: Sequence[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(v)), "p90": float(np.quantile(v, 0.9)), "mean": float(v.mean())}


def run_objective(objective: str, config: TheoryConfig, problems, base, labels, nu0s, device="cpu") -> dict:
    """Predict ν*, train, certify ν_t at checkpoints; per-prompt records and summaries for one objective."""
    from llm.rewards import forbidden_coefs

    t0 = time.perf_counter()
    K = [len(l) for l in labels]
    rewards = [np.array([1.0 if z == p.answer else 0.0 for z in l]) for p, l in zip(problems, labels, strict=True)]
    cap, lam_star, coefs = 0.0, None, None
    if objective == "constraint":
        coefs = [np.append(forbidden_coefs(l[:-1], config.forbidden)[0], 0.0) for l in labels]  # (K,) each
        base_mass = float(np.mean([h @ n0 for h, n0 in zip(coefs, nu0s, strict=True)]))
        cap = round(config.cap_fraction * base_mass, 4)
        nu_stars, lam_star = predict_constrained(nu0s, coefs, cap, config.beta, config.tau, base="sharpen")
    else:
        nu_stars = [predict_optimum(objective, n0, config.beta, config.tau,
                                    reward=r if objective == "reward" else None)
                    for n0, r in zip(nu0s, rewards, strict=True)]
    prompts = [p.views[0] for p in problems]

    def evaluate(model, tokenizer):
        return certify_all(model, tokenizer, prompts, config)

    checkpoints, history = run_training(objective, config, problems, evaluate, cap=cap, device=device)
    series = [{"step": 0, **summarize([total_variation(s, n0) for s, n0 in zip(nu_stars, nu0s, strict=True)])}]
    for step, marginals in checkpoints:
        tvs = [total_variation(s, marginal_vector(m.answer_bounds, l))
               for s, m, l in zip(nu_stars, marginals, labels, strict=True)]
        series.append({"step": step, **summarize(tvs)})
    final = checkpoints[-1][1]
    records = []
    for i, p in enumerate(problems):
        nu_t = marginal_vector(final[i].answer_bounds, labels[i])
        rec = {
            "problem_id": p.problem_id, "prompt": prompts[i], "answer": p.answer, "n_answers": K[i],
            "nu0": as_map(labels[i], nu0s[i]), "nu_star": as_map(labels[i], nu_stars[i]),
            "nu_T": as_map(labels[i], nu_t),
            "covered_mass_0": base[i].covered_mass, "covered_mass_T": final[i].covered_mass,
            "tv_star_0": total_variation(nu_stars[i], nu0s[i]), "tv_star_T": total_variation(nu_stars[i], nu_t),
            "tv_0_T": total_variation(nu0s[i], nu_t),
            "mode_star": labels[i][int(np.argmax(nu_stars[i]))], "mode_T": labels[i][int(np.argmax(nu_t))],
            "mode_0": labels[i][int(np.argmax(nu0s[i]))],
            "tv_series": [[0, total_variation(nu_stars[i], nu0s[i])]] + [
                [s, total_variation(nu_stars[i], marginal_vector(m[i].answer_bounds, labels[i]))]
                for s, m in checkpoints],
        }
        rec["mode_agree"] = rec["mode_star"] == rec["mode_T"]
        rec["kl_answer_T_0"] = kl_divergence(nu_t, nu0s[i])
        rec["kl_answer_star_0"] = kl_divergence(nu_stars[i], nu0s[i])
        rec["nu_series"] = [[s, as_map(labels[i], marginal_vector(m[i].answer_bounds, labels[i]))]
                            for s, m in checkpoints]
        if objective in ("sharpen", "entropy", "reward") and config.kl == "k3-loss":
            nu_k3 = k3_loss_stationary(objective, nu0s[i], config.beta, config.tau,
                                       reward=rewards[i] if objective == "reward" else None)
            rec["nu_k3_bandit"] = as_map(labels[i], nu_k3)
            rec["tv_star_k3_bandit"] = total_variation(nu_stars[i], nu_k3)
        if objective in ("sharpen", "entropy", "reward"):
            nu_g = finite_group_prediction(objective, nu0s[i], config.beta, config.tau, config.group_size,
                                           reward=rewards[i] if objective == "reward" else None)
            rec["nu_G"] = as_map(labels[i], nu_g)
            rec["tv_star_G"] = total_variation(nu_stars[i], nu_g)
            rec["tv_G_T"] = total_variation(nu_g, nu_t)
        if coefs is not None:
            rec["forbidden_mass"] = {"nu0": float(coefs[i] @ nu0s[i]), "nu_star": float(coefs[i] @ nu_stars[i]),
                                     "nu_T": float(coefs[i] @ nu_t)}
        records.append(rec)
    cfg = train_config_for(objective, config, out="", cap=cap)
    summary = {
        "tv_star_T": summarize([r["tv_star_T"] for r in records]),
        "tv_star_0": summarize([r["tv_star_0"] for r in records]),
        "tv_0_T": summarize([r["tv_0_T"] for r in records]),
        "mode_agreement": float(np.mean([r["mode_agree"] for r in records])),
        "tv_vs_step": series,
    }
    summary["kl_answer"] = {"nu_T": float(np.mean([r["kl_answer_T_0"] for r in records])),
                            "nu_star": float(np.mean([r["kl_answer_star_0"] for r in records])),
                            "sequence_last5": sequence_kl_estimate(history[-5:])}
    if "tv_star_G" in records[0]:
        summary["tv_star_G"] = summarize([r["tv_star_G"] for r in records])
        summary["tv_G_T"] = summarize([r["tv_G_T"] for r in records])
    if "tv_star_k3_bandit" in records[0]:
        summary["tv_star_k3_bandit"] = summarize([r["tv_star_k3_bandit"] for r in records])
    if objective == "constraint":
        summary.update(cap=cap, lambda_star=lam_star, lambda_T=history[-1].get("multiplier"),
                       forbidden_mass={k: float(np.mean([r["forbidden_mass"][k] for r in records]))
                                       for k in ("nu0", "nu_star", "nu_T")})
    return {"algorithm": cfg.algorithm, "train_config": dataclasses.asdict(cfg), "summary": summary,
            "prompts": records, "history": history, "seconds": time.perf_counter() - t0}


def run(config: TheoryConfig, device="cpu", on_objective=None) -> dict:
    """The whole experiment: base marginals, then one :func:`run_objective` per objective.

    ``on_objective(results)`` is called after each objective (e.g. to write partial results).
    """
    from llm.model import load_model

    config.validate()
    t0 = time.perf_counter()
    problems = held_out_problems(config.model, config.n_prompts)
    model, tokenizer = load_model(config.model, device)
    base = certify_all(model, tokenizer, [p.views[0] for p in problems], config)
    labels = [answer_labels(m.answer_bounds, config.min_answer_mass) for m in base]
    nu0s = [marginal_vector(m.answer_bounds, l) for m, l in zip(base, labels, strict=True)]
    out = {"config": dataclasses.asdict(config), "base_seconds": time.perf_counter() - t0, "objectives": {}}
    for objective in config.objectives:
        out["objectives"][objective] = run_objective(objective, config, problems, base, labels, nu0s, device)
        out["seconds"] = time.perf_counter() - t0
        if on_objective is not None:
            on_objective(out)
    out["seconds"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------------------------- reports


READING = (
    "How to read: ν0 = base model's certified answer marginal, ν* = dagsim's optimum of (E2) with the training "
    "β, τ (and, for the constraint, the shared-λ problem the trainer solves), ν_T = certified marginal after "
    "test-time GRPO on the same prompts (T = 1, dapo token normalization, RLOO, no std scaling). "
    "KL = seq-reward: −β·log π(y)/π0(y) added to each sample's reward (exact gradient of the sequence KL of "
    "E1; the trainer's default); k3-loss: β·k3 per token in the loss, as TRL does (its expected gradient is "
    "that of the forward per-token KL(π0‖π), so it does not target ν*). 'k3 bandit' = TV(ν*, stationary point "
    "of k3-loss when the answer is a single decision)."
)


def markdown_table(results: dict) -> str:
    text = _table(results) + "\n" + READING + "\n"
    if "ablation" in results:
        kl = results["ablation"]["config"]["kl"]
        text += f"\n## Ablation: KL gradient estimator {kl}\n\n" + _table(results["ablation"]).split("\n", 2)[2]
    for name, extra in results.get("extras", {}).items():
        text += f"\n## Diagnostic run: {name}\n\n" + _table(extra)
    return text


def _table(results: dict) -> str:
    c = results["config"]
    lines = [
        f"# Theory vs training (β = {c['beta']}, τ = {c['tau']}, KL = {c['kl']}, {c['n_prompts']} held-out prompts, "
        f"G = {c['group_size']}, {c['steps']} steps, lr {c['lr']})",
        "",
        "| objective | algorithm | TV(ν*,ν_T) median | p90 | TV(ν*,ν0) median | p90 | TV(ν*,ν_G) median "
        "| mode agree | TV median over steps | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["objectives"].items():
        s = r["summary"]
        g = f"{s['tv_star_G']['median']:.3f}" if "tv_star_G" in s else "–"
        if "tv_star_k3_bandit" in s:
            g += f" (k3 bandit {s['tv_star_k3_bandit']['median']:.3f})"
        steps = ", ".join(f"{e['step']}: {e['median']:.3f}" for e in s["tv_vs_step"])
        lines.append(
            f"| {name} | {r['algorithm']} | {s['tv_star_T']['median']:.3f} | {s['tv_star_T']['p90']:.3f} "
            f"| {s['tv_star_0']['median']:.3f} | {s['tv_star_0']['p90']:.3f} | {g} | {s['mode_agreement']:.2f} "
            f"| {steps} | {r['seconds']:.0f} |"
        )
    cons = results["objectives"].get("constraint")
    if cons:
        s = cons["summary"]
        fm = s["forbidden_mass"]
        lam_max = max(h.get("multiplier", 0.0) for h in cons["history"])
        lines += ["", f"constraint ({c['forbidden']} answers, mean mass ≤ {s['cap']}): λ* = {s['lambda_star']:.3f}, "
                  f"trained λ = {s['lambda_T']:.3f} (max during training {lam_max:.2f}); "
                  f"mean forbidden mass ν0 {fm['nu0']:.3f}, ν* {fm['nu_star']:.3f}, "
                  f"ν_T {fm['nu_T']:.3f}"]
    kls = [f"{n}: KL(ν_T‖ν0) {k['nu_T']:.3f} vs KL(ν*‖ν0) {k['nu_star']:.3f}, "
           f"sequence KL(π‖π0) ≈ {k['sequence_last5']:.3f}"
           for n, k in ((n, r["summary"]["kl_answer"]) for n, r in results["objectives"].items()
                        if "kl_answer" in r["summary"])]
    if kls:
        lines += ["", "Mean KL in nats (answer level; sequence level = mean of the last 5 training steps' estimates): "
                  + "; ".join(kls) + "."]
    lines += ["", "ν on each prompt's partition {answers with base mass ≥ min_answer_mass} ∪ {<rest>}; ν_G = "
              "finite-G stationary point of expected GRPO (T10, the trainer's log estimator and RLOO-aware tables)."]
    return "\n".join(lines) + "\n"


def combine(parts: Sequence[dict], ablation: dict | None = None, extras: dict[str, dict] | None = None) -> dict:
    """One results dict from runs that differ only in ``objectives`` (the first part's config, objectives
    merged), with an optional ``ablation`` run (another KL estimator) kept under ``ablation``.

    Each part certified its own base marginals (same model, same budget: they agree to the enumeration's
    time-budget noise, see ``covered_mass_0``). ``extras`` (name -> results) are further diagnostic runs.
    """
    out = {"config": dict(parts[0]["config"]), "objectives": {}, "seconds": 0.0, "parts": []}
    for part in [annotate_kl(p) for p in parts]:
        out["objectives"].update(part["objectives"])
        out["seconds"] += part["seconds"]
        out["parts"].append({"config": part["config"], "seconds": part["seconds"]})
    out["config"]["objectives"] = list(out["objectives"])
    if ablation is not None:
        out["ablation"] = annotate_k3_bandit(annotate_kl(ablation))
    if extras:
        out["extras"] = {name: annotate_kl(r) for name, r in extras.items()}
    return out


def annotate_kl(results: dict) -> dict:
    """Add the answer-level KLs and the sequence-KL estimate to runs written before they were recorded."""
    for res in results["objectives"].values():
        if "kl_answer" in res["summary"]:
            continue
        for rec in res["prompts"]:
            n0, ns, nt = (np.array(list(rec[k].values())) for k in ("nu0", "nu_star", "nu_T"))
            rec["kl_answer_T_0"], rec["kl_answer_star_0"] = kl_divergence(nt, n0), kl_divergence(ns, n0)
        res["summary"]["kl_answer"] = {
            "nu_T": float(np.mean([r["kl_answer_T_0"] for r in res["prompts"]])),
            "nu_star": float(np.mean([r["kl_answer_star_0"] for r in res["prompts"]])),
            "sequence_last5": sequence_kl_estimate(res["history"][-5:]),
        }
    return results


def annotate_k3_bandit(results: dict) -> dict:
    """Add :func:`k3_loss_stationary` (and its TV to ν*) to a k3-loss run's records that lack it."""
    c = results["config"]
    if c["kl"] != "k3-loss":
        return results
    for objective, res in results["objectives"].items():
        if objective not in ("sharpen", "entropy", "reward") or "tv_star_k3_bandit" in res["prompts"][0]:
            continue
        for rec in res["prompts"]:
            labels = list(rec["nu0"])
            reward = np.array([1.0 if z == rec["answer"] else 0.0 for z in labels])
            nu_k3 = k3_loss_stationary(objective, np.array(list(rec["nu0"].values())), c["beta"], c["tau"],
                                       reward=reward if objective == "reward" else None)
            rec["nu_k3_bandit"] = as_map(labels, nu_k3)
            rec["tv_star_k3_bandit"] = total_variation(np.array(list(rec["nu_star"].values())), nu_k3)
        res["summary"]["tv_star_k3_bandit"] = summarize([r["tv_star_k3_bandit"] for r in res["prompts"]])
    return results


def write_results(results: dict, out_dir: str | Path, stem: str = "theory_vs_training") -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{stem}.json", results)
    from llm.model import atomic_write_text

    atomic_write_text(out / f"{stem}.md", markdown_table(results))
    return {"json": str(out / f"{stem}.json"), "md": str(out / f"{stem}.md")}


QUICK = dict(n_prompts=3, steps=4, eval_every=2, budget_seconds=1.0, objectives=("sharpen", "entropy"))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m llm.theory", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK}")
    ap.add_argument("--out", default="results/", help="directory for theory_vs_training.{json,md}")
    ap.add_argument("--stem", default="theory_vs_training", help="output file stem")
    for f in dataclasses.fields(TheoryConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "objectives":
            ap.add_argument(flag, default=None, help="comma list of " + ",".join(OBJECTIVES))
        else:
            ap.add_argument(flag, type=type(f.default), default=None, help=f"default {f.default}")
    ap.add_argument("--combine", default="", help="no run: merge these comma-separated results JSONs")
    ap.add_argument("--ablation", default="", help="with --combine: a results JSON kept under 'ablation'")
    ap.add_argument("--extra", default="", help="with --combine: comma list NAME=results.json (diagnostic runs)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    return ap


def main(argv: list[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    kwargs = dict(QUICK) if args.quick else {}
    for f in dataclasses.fields(TheoryConfig):
        v = getattr(args, f.name)
        if v is not None:
            kwargs[f.name] = tuple(v.split(",")) if f.name == "objectives" else v
    config = TheoryConfig(**kwargs)
    if args.combine:
        parts = [json.loads(Path(p).read_text()) for p in args.combine.split(",")]
        ablation = json.loads(Path(args.ablation).read_text()) if args.ablation else None
        extras = {e.rsplit("=", 1)[0]: json.loads(Path(e.rsplit("=", 1)[1]).read_text())
                  for e in args.extra.split(",") if e}
        results = combine(parts, ablation, extras)
        paths = write_results(results, args.out, args.stem)
        print(markdown_table(results))
        print(json.dumps(paths))
        return 0
    results = run(config, on_objective=lambda partial: write_results(partial, args.out, args.stem))
    paths = write_results(results, args.out, args.stem)
    print(markdown_table(results))
    print(json.dumps(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
