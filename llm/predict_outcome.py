"""Predict each algorithm's held-out outcome from the base model alone, then compare (issue 15 §3, figure 11).

Before any training, for every held-out (problem, view) prompt of the embedded task:

1. ν0 — the base model's certified answer marginal (:func:`llm.certified.certified_marginal`, T = 1, the
   trainer's completion length), cached in a JSON file (:func:`certify_prompts`);
2. the game each experiment row plays (:func:`game_of`), read from the row's own
   :class:`llm.trainer.TrainConfig` (its β, τ, consensus, G, estimator) and the objective its reward
   implements (:data:`GAME_OF_ALGORITHM`, the table of :mod:`llm.rewards`): gt-grpo = reward; ttrl = majority
   with τ = 1 (TTRL's reward 1[z = pseudo-label] is majority's g = τ·1[z = mode]); empo = collision with
   τ = ½ (EMPO's reward, the answer's group frequency, is collision's g = 2τq); coherence-grpo single view =
   sharpen; arithmetic / geometric consensus = (E5) over both views of a problem jointly; diversity-grpo =
   entropy with the task reward;
3. ν* — the exact optimum of that game at the training β by dagsim (:func:`predict_game`), and the
   predicted accuracy of the prompt = ν*(correct answer).

**β = 0.** The experiment trains without a KL term (``TrainConfig.beta`` = 0), where (E2) is degenerate
(every vertex maximizes sharpen; every agreeing pair of views maximizes (E5)). The prediction is then the
β → 0+ limit of dagsim's optimum (:func:`limit_optimum`, THEORY §4 table and T2): sharpen, collision and
majority (β ≤ τ: vertex argmax β log ν0 + r) put all mass on the mode of ν0 (ties: split); reward on the
correct answer; entropy ν ∝ ν0^{β/(β+τ)} e^{r/(β+τ)} → e^{r/τ} on the support; multi-view consensus
(τ/β → ∞) is hard coherence, every view equal to q* ∝ Π_j (ν_j^0)^{w_j} (dagsim with τ = ∞). A test checks
each limit against dagsim's solver at small β.

**Finite G (T10–T12).** At β = 0 the trainer's expected update follows the finite-G effective reward ḡ_G
(``dagsim.grpo.effective``, the trainer's estimator and RLOO-aware tables). :func:`finite_group_attractor`
integrates the natural-gradient flow ν ← ν·e^{η ḡ_G(ν)} from ν0 to its limit. It matters twice. Entropy:
its log table is bounded, so ḡ_G(correct) − ḡ_G(wrong) ≥ 1 − τ·(table range) > 0 and the flow ends on the
correct answer, while the G → ∞ optimum e^{r/τ} spreads mass over every answer of the support. Arithmetic
consensus: at G = 8 the plug-in estimates of log q̂ − log ν̂_j are biased against rare answers even when the
views agree, so the flow does not stop at the hard-coherence point q* but sharpens to a vertex.

**Answer space, support and uncovered mass.** Each prompt's (or problem's, for consensus) vector is written
on a fixed partition: the answers whose certified lower bound is ≥ ``min_answer_mass`` in some view, the
correct answer always (with its lower bound, possibly 0), and one ``<rest>`` bucket holding the
un-enumerated residual and every other answer (``llm.theory.marginal_vector``). ``<rest>`` has task reward
0 and is never a target: it is not one answer, so it can be no mode, no pseudo-label, no consensus answer
(its mass only decays in the limits). For entropy the limit e^{r/τ} depends on how many answers the support
holds; on the partition ``<rest>`` counts as one, so that prediction is an upper bound on the G → ∞
accuracy (the full answer space of 40-token strings would send it to ≈ 0; the finite-G flow does not care).
For consensus the geometric mean of the ``<rest>`` masses bounds the consensus mass of all rest answers
(Cauchy–Schwarz), so the hard-coherence accuracy is a lower bound in that respect. Each record carries
``residual`` and ``mode_certified`` (the mode's lower bound exceeds every other answer's upper bound).

Measured accuracy: the held-out per-prompt answers of the finished experiment (``per_prompt.json`` or each
row's ``row.json``, issue 15 §1), or, for an experiment without them, the trained checkpoints evaluated here
(same held-out prompts, k samples, the experiment's evaluation seed). Several training seeds: mean over seeds
with the sample standard deviation and a t 95 % interval.

The gap measurement (:func:`certify_trained`): certified marginals of the first seed's trained models on a
subset of prompts, and TV(ν0, ν*) against TV(ν_T, ν*) on the partition — how far training moved towards ν*.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dagsim.errors import ValidationError
from dagsim.io import atomic_write_json
from llm.theory import REST, marginal_vector, total_variation

CACHE_FORMAT = "alft-llm-nu0-cache/v1"
RESULTS_FORMAT = "alft-llm-prediction/v1"
#: The experiment's main rows (issue 15 §1), predicted by default.
MAIN_ROWS = ("gt-grpo", "ttrl", "empo", "coherence-grpo[single-view]", "coherence-grpo[arithmetic]",
             "coherence-grpo[geometric]", "diversity-grpo")
#: algorithm -> (objective of the game, the objective's τ: "config" = TrainConfig.tau, or the fixed scale of
#: the published reward). ttrl: 1[z = pseudo-label] = majority's τ·1[z = mode] with τ = 1; empo: the
#: answer's group frequency ≈ q(z) = collision's 2τq with τ = 1/2 (both ignore TrainConfig.tau).
GAME_OF_ALGORITHM: dict[str, tuple[str, float | str]] = {
    "gt-grpo": ("reward", 0.0),
    "ttrl": ("majority", 1.0),
    "empo": ("collision", 0.5),
    "coherence-grpo": ("sharpen", "config"),  # consensus != none: (E5), see game_of
    "diversity-grpo": ("entropy", "config"),
}
#: Objectives whose targets skip the no-answer bucket (TTRL drop, EMPO singleton, consensus targets).
SKIPS_NO_ANSWER = ("majority", "collision", "consensus")
#: Two-sided confidence level of the interval over training seeds (Student t, n − 1 degrees of freedom).
SEED_CONFIDENCE = 0.95
#: Mirror-ascent step of the finite-G flow and its stopping rule (max |Δν| per step).
FLOW_STEP = 0.5
FLOW_TOL = 1e-9
FLOW_MAX_ITER = 20_000


@dataclass(frozen=True)
class PredictConfig:
    """Prediction of the experiment's outcome from the base model (issue 15 §3)."""

    base_model: str = "runs/llm/experiment/base"
    """Base checkpoint: ν0 of every held-out prompt."""
    experiment: str = ""
    """Finished `dagsim llm experiment` folder (its rows are predicted and measured); empty = predict MAIN_ROWS
    from the trainer's defaults and the experiment's variant table only."""
    algorithms: str = ""
    """Comma-separated row names (variants, without @seed) to predict; empty = the main rows present."""
    out: str = "results/"
    """Directory of STEM.json and STEM.md."""
    stem: str = "llm_prediction"
    """Output file stem."""
    cache: str = ""
    """Certified-marginal cache (JSON; reused when model hash and settings match); empty = OUT/STEM_nu0.json."""
    mass: float = 0.99
    """Certified enumeration stops at this covered mass ..."""
    budget_seconds: float = 3.0
    """... or after this many seconds per prompt."""
    max_new_tokens: int = 0
    """Completion length (0 = the trainer's default)."""
    min_answer_mass: float = 1e-4
    """Answers below this certified mass (in every view) go to the <rest> bucket."""
    max_problems: int = 0
    """First N held-out problems only (0 = all)."""
    gap_prompts: int = 0
    """Prompts per class (misread / other) whose trained marginals are certified for the TV gap (0 = skip)."""
    finite_g: bool = True
    """Also the finite-G flow attractor (T10) for the single-view count objectives."""
    eval_k: int = 8
    """Samples per prompt when trained checkpoints must be evaluated here (no per-prompt answers stored)."""
    threads: int = 1
    """torch threads."""
    progress: bool = True
    """Progress bars."""

    def validate(self) -> None:
        if not 0 < self.mass <= 1:
            raise ValidationError(f"predict.mass must be in (0, 1], got {self.mass}")
        for name in ("budget_seconds", "min_answer_mass"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValidationError(f"predict.{name} must be finite and >= 0, got {v}")
        for name in ("max_new_tokens", "max_problems", "gap_prompts"):
            if getattr(self, name) < 0:
                raise ValidationError(f"predict.{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_k < 1 or self.threads < 1:
            raise ValidationError("predict.eval_k and predict.threads must be >= 1")
        if not (Path(self.base_model) / "config.json").is_file():
            raise ValidationError(f"predict.base_model: no checkpoint at {self.base_model} (config.json)")
        if self.experiment and not (Path(self.experiment) / "results.json").is_file():
            raise ValidationError(f"predict.experiment: no results.json in {self.experiment}")


@dataclass(frozen=True)
class Game:
    """The answer-level game one experiment row plays (THEORY §2–4), from its TrainConfig."""

    row: str
    algorithm: str
    objective: str
    """reward | majority | collision | sharpen | entropy | consensus"""
    beta: float
    tau: float
    consensus: str
    """none | arithmetic | geometric (consensus objective only)"""
    labelled: bool
    group_size: int
    estimator: str
    rloo_aware: bool


def game_of(row: str, train_config) -> Game:
    """The game of ``train_config`` (:class:`llm.trainer.TrainConfig`), objective per :data:`GAME_OF_ALGORITHM`."""
    from llm.rewards import get_algorithm

    spec = get_algorithm(train_config.algorithm)
    if train_config.algorithm not in GAME_OF_ALGORITHM:
        raise ValidationError(f"no answer-level game for algorithm {train_config.algorithm!r} (row {row!r}); "
                              f"predictable: {sorted(GAME_OF_ALGORITHM)}")
    objective, tau = GAME_OF_ALGORITHM[train_config.algorithm]
    tau = float(train_config.tau) if tau == "config" else float(tau)
    consensus = train_config.reward_settings.consensus
    if objective == "sharpen" and consensus != "none":
        if consensus not in ("arithmetic", "geometric"):
            raise ValidationError(f"row {row!r}: consensus {consensus!r} has no prediction (arithmetic | geometric)")
        objective = "consensus"
    return Game(row=row, algorithm=train_config.algorithm, objective=objective, beta=float(train_config.beta),
                tau=tau, consensus=consensus if objective == "consensus" else "none", labelled=spec.needs_labels,
                group_size=int(train_config.group_size), estimator=train_config.estimator,
                rloo_aware=train_config.reward_settings.rloo_aware)


# ------------------------------------------------------------------------------------------ the optimum


def _mode_mass(nu0: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Point mass on argmax ν0 over ``candidates`` (ties split uniformly); (K,)."""
    if not candidates.any():
        raise ValidationError("no candidate answer: every enumerated answer is <rest> or the no-answer bucket")
    top = nu0[candidates].max()
    win = candidates & (nu0 >= top)
    return win / win.sum()


def limit_optimum(objective: str, nu0: np.ndarray, tau: float, *, reward: np.ndarray,
                  candidates: np.ndarray) -> np.ndarray:
    """β → 0+ limit of the (E2) optimum for one view (THEORY §4 closed forms; T2: β ≤ τ gives a vertex).

    sharpen / collision / majority: the vertex argmax β log ν0 + r over the candidate answers, i.e. the mode
    of ν0 (r = 0: label-free); reward: ν ∝ ν0 e^{r/β} → the argmax of r (the correct answer); entropy:
    ν ∝ ν0^{β/(β+τ)} e^{r/(β+τ)} → e^{r/τ} on the support of ν0 (every bucket of the partition). (K,) each.
    """
    nu0 = np.asarray(nu0, dtype=np.float64)
    if objective in ("sharpen", "collision", "majority"):
        return _mode_mass(nu0, candidates)
    if objective == "reward":
        best = reward >= reward.max()
        return best / best.sum()
    if objective == "entropy":
        if tau <= 0:
            raise ValidationError("entropy objective needs tau > 0")
        logw = np.where(nu0 > 0, reward / tau, -np.inf)
        w = np.exp(logw - logw.max())
        return w / w.sum()
    raise ValidationError(f"limit_optimum: unknown single-view objective {objective!r}")


def hard_coherence(nu0s: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """β → 0+ limit of (E5) at fixed τ (τ/β → ∞): q* ∝ Π_j (ν_j^0)^{w_j}, uniform w, by dagsim (τ = ∞).

    ``nu0s`` (m, K); non-candidate buckets (``<rest>``, the no-answer bucket) get no consensus mass.
    Returns q* (K,), the common distribution of every view."""
    from dagsim.objectives import make_objective
    from dagsim.solvers import solve_answer_level

    keep = np.flatnonzero(candidates)
    sub = np.maximum(np.asarray(nu0s, dtype=np.float64)[:, keep], 1e-300)  # (m, K')
    sub = sub / sub.sum(axis=1, keepdims=True)
    obj = make_objective("consensus", n_answers=len(keep), tau=math.inf, consensus="geometric",
                         n_views=sub.shape[0])
    sol = solve_answer_level(obj, sub, 1.0)  # r = 0: hard coherence does not depend on β
    q = np.zeros(nu0s.shape[1])
    q[keep] = np.asarray(sol.nu, dtype=np.float64)[0]
    return q


def predict_game(game: Game, nu0s: np.ndarray, reward: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """ν* of ``game`` for one problem's views: (m, K) with ``nu0s`` (m, K) on one shared partition.

    Single-view games are solved per view; consensus jointly. β = 0 (the experiment's) uses the β → 0+
    limits (:func:`limit_optimum`, :func:`hard_coherence`); β > 0 dagsim's exact optimum of (E2)/(E5)."""
    from dagsim.objectives import make_objective
    from dagsim.solvers import solve_answer_level

    nu0s = np.asarray(nu0s, dtype=np.float64)
    if game.beta == 0:
        if game.objective == "consensus":
            return np.tile(hard_coherence(nu0s, candidates), (len(nu0s), 1))
        return np.stack([limit_optimum(game.objective, n0, game.tau, reward=reward, candidates=candidates)
                         for n0 in nu0s])
    floor = np.maximum(nu0s, 1e-15)
    floor = floor / floor.sum(axis=1, keepdims=True)
    K = nu0s.shape[1]
    r = reward if game.labelled else np.zeros(K)
    if game.objective == "consensus":
        obj = make_objective("consensus", n_answers=K, tau=game.tau, consensus=game.consensus, reward=r,
                             n_views=len(nu0s))
        return np.asarray(solve_answer_level(obj, floor, game.beta).nu, dtype=np.float64)
    kw = {} if game.objective == "reward" else {"tau": game.tau}
    obj = make_objective(game.objective, n_answers=K, reward=r, **kw)
    return np.stack([np.asarray(solve_answer_level(obj, n0, game.beta).nu, dtype=np.float64) for n0 in floor])


def finite_group_attractor(game: Game, nu0s: np.ndarray, reward: np.ndarray, no_answer: int | None = None
                           ) -> np.ndarray | None:
    """Limit of the expected finite-G GRPO flow at β = 0 (T10): ν_j ← ν_j·e^{η ḡ_j(ν)}/Z from ν0, with the exact
    effective reward ḡ_G of the trainer's reward (RLOO, no std scaling, its estimator and RLOO-aware table
    size, T11a/T12). ``nu0s`` (m, K); returns (m, K), or None where no exact path is cheap enough: single-view
    count objectives (reward, sharpen, entropy, empo) per view, and arithmetic consensus jointly over the views
    (its binomial path); TTRL (order-dependent votes) and geometric consensus need the enumeration path."""
    from dagsim.grpo.effective import effective_reward, effective_reward_multiview

    if game.beta != 0:
        return None
    G = game.group_size
    table_size = G - 1 if game.rloo_aware and G > 2 else None
    nu = np.maximum(np.asarray(nu0s, dtype=np.float64), 1e-12)
    nu = nu / nu.sum(axis=1, keepdims=True)  # (m, K)
    if game.objective == "consensus" and game.consensus == "arithmetic":
        def g_of(x):
            return effective_reward_multiview("consensus", x, G, consensus="arithmetic", tau=game.tau,
                                              estimator=game.estimator, rloo_aware=game.rloo_aware)
    elif game.objective in ("reward", "sharpen", "entropy", "collision"):
        objective = "empo" if game.algorithm == "empo" else game.objective
        kw = dict(baseline="rloo", scale="none", estimator=game.estimator, table_size=table_size)
        if objective in ("sharpen", "entropy"):
            kw["tau"] = game.tau
        if objective in ("reward", "entropy"):
            kw["task_reward"] = reward
        if objective == "empo":
            kw["no_answer"] = no_answer

        def g_of(x):
            return np.stack([effective_reward(objective, row, G, **kw) for row in x])
    else:
        return None
    for _ in range(FLOW_MAX_ITER):
        g = g_of(nu)  # (m, K)
        logn = np.log(nu) + FLOW_STEP * (g - g.max(axis=1, keepdims=True))
        new = np.maximum(np.exp(logn - np.logaddexp.reduce(logn, axis=1, keepdims=True)), 1e-300)
        new = new / new.sum(axis=1, keepdims=True)
        done = np.abs(new - nu).max() <= FLOW_TOL
        nu = new
        if done:
            break
    return nu


# ---------------------------------------------------------------------------------- certified marginals


def model_digest(model_dir: str | Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prompt_key(problem_id: str, view: int) -> str:
    return f"{problem_id}|{view}"


def certify_prompts(model_dir: str | Path, prompts: Sequence[tuple[str, str]], *, mass: float,
                    budget_seconds: float, max_new_tokens: int, cache: str | Path | None = None,
                    progress: bool = False) -> dict[str, dict]:
    """Certified marginals ``{key: CertifiedMarginal.to_json()}`` of ``prompts`` ``[(key, text)]`` under the
    model in ``model_dir``; reused from / written to ``cache`` (atomically, after every prompt) when its
    model hash, mass and length match. A cached record is reused if it reached ``mass`` or was certified with
    at least ``budget_seconds`` (so a rerun with a larger budget re-certifies only the budget-stopped ones)."""
    from tqdm.auto import tqdm

    from llm.answers import resolve_answer_parser
    from llm.certified import certified_marginal
    from llm.model import load_model

    settings = {"mass": mass, "max_new_tokens": max_new_tokens, "temperature": 1.0,
                "model_sha256": model_digest(model_dir)}
    store = {"format": CACHE_FORMAT, "settings": settings, "model": str(model_dir), "marginals": {}}
    if cache is not None and Path(cache).is_file():
        try:
            old = json.loads(Path(cache).read_text())
        except json.JSONDecodeError as exc:
            raise ValidationError(f"predict.cache: {cache} is not JSON ({exc})") from None
        if old.get("format") == CACHE_FORMAT and old.get("settings") == settings:
            store["marginals"] = old["marginals"]

    def reusable(rec: dict | None) -> bool:
        return rec is not None and (rec["stopped_by"] != "budget" or rec.get("budget_seconds", 0.0) >= budget_seconds)

    todo = [(k, t) for k, t in prompts if not reusable(store["marginals"].get(k))]
    if todo:
        model, tokenizer = load_model(str(model_dir))
        parser = resolve_answer_parser("", embedded_task=True, flag="--answer-parser")
        for key, text in tqdm(todo, desc=f"certify {Path(model_dir).name}", disable=not progress):
            m = certified_marginal(model, tokenizer, text, extract_answer=parser, mass=mass,
                                   max_new_tokens=max_new_tokens, temperature=1.0, budget_seconds=budget_seconds)
            store["marginals"][key] = {**m.to_json(), "budget_seconds": budget_seconds}
            if cache is not None:
                Path(cache).parent.mkdir(parents=True, exist_ok=True)
                atomic_write_json(cache, store, indent=None)
    return {k: store["marginals"][k] for k, _ in prompts}


def bounds_of(record: dict) -> dict[str, tuple[float, float]]:
    return {z: (float(lo), float(hi)) for z, (lo, hi) in record["answer_bounds"].items()}


def partition(records: Sequence[dict], truth: str, min_mass: float) -> list[str]:
    """Labels shared by a problem's views: answers with lower bound ≥ ``min_mass`` in some view, most likely
    (summed over views) first, the correct answer always, then ``<rest>``."""
    score: dict[str, float] = {}
    for rec in records:
        for z, (lo, _) in bounds_of(rec).items():
            if lo >= min_mass or z == truth:
                score[z] = score.get(z, 0.0) + lo
    score.setdefault(truth, 0.0)
    return [*sorted(score, key=lambda z: (-score[z], z)), REST]


def _candidates(labels: Sequence[str], objective: str) -> np.ndarray:
    from llm.answers import NO_ANSWER

    skip_na = objective in SKIPS_NO_ANSWER
    return np.array([z != REST and not (skip_na and z == NO_ANSWER) for z in labels])


def mode_certified(record: dict, mode: str) -> bool:
    """The mode's certified lower bound exceeds every other answer's upper bound (listed or not)."""
    b = bounds_of(record)
    lo = b.get(mode, (0.0, 0.0))[0]
    residual = max(0.0, 1.0 - float(record["covered_mass"]))
    others = [hi for z, (_, hi) in b.items() if z != mode] + [residual]
    return lo > max(others)


# ------------------------------------------------------------------------------------------ measurement


def load_rows(experiment: str | Path) -> list[dict]:
    """Trained rows of a finished experiment: ``{"name", "variant", "seed", "train", "per_prompt", "dir",
    "history"}`` from every ``runs/*/row.json`` (``per_prompt`` None when the row did not store it; then
    ``per_prompt.json`` beside ``results.json`` is tried)."""
    exp = Path(experiment)
    shared = {}
    if (exp / "per_prompt.json").is_file():
        shared = json.loads((exp / "per_prompt.json").read_text())
    rows = []
    for path in sorted((exp / "runs").glob("*/row.json")):
        payload = json.loads(path.read_text())
        name = payload["row"]["algorithm"]
        variant, sep, seed = name.rpartition("@seed")
        variant, seed = (variant, int(seed)) if sep and seed.isdigit() else (name, None)
        train = payload["fingerprint"]["train"]
        rows.append({"name": name, "variant": payload["row"].get("variant", variant),
                     "seed": payload["row"].get("train_seed", seed if seed is not None else train.get("seed", 0)),
                     "train": train, "per_prompt": payload.get("per_prompt") or shared.get(name),
                     "dir": str(path.parent), "history": payload.get("history", []),
                     "eval": payload["fingerprint"].get("eval", {})})
    return rows


def train_config_from(train: dict):
    from llm.trainer import TrainConfig

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in train.items() if k in names}
    return TrainConfig(**kw)


def evaluate_per_prompt(model_dir: str | Path, problems, k: int, seed: int, max_new_tokens: int,
                        batch_prompts: int = 64) -> list[dict]:
    """Per (problem, view) prompt: the k sampled answer keys and the fraction correct, as ``llm.evaluate``
    samples them (same batching, generator seed, parser and equivalence classes)."""
    import torch

    from llm.answers import canonical_group, extract_answers, parser_clusters, resolve_answer_parser
    from llm.model import load_model
    from llm.sampling import sample_completions

    model, tokenizer = load_model(str(model_dir))
    parser = resolve_answer_parser("", embedded_task=True, flag="--answer-parser")
    cluster = parser_clusters(parser)
    generator = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    prompts = [(p, v, q) for p in problems for v, q in enumerate(p.views)]
    out = []
    for start in range(0, len(prompts), batch_prompts):
        chunk = prompts[start:start + batch_prompts]
        batch = sample_completions(model, tokenizer, [q for _, _, q in chunk], n_samples=k, temperature=1.0,
                                   max_new_tokens=max_new_tokens, generator=generator)
        answers = extract_answers(batch.texts, parser=parser)
        for j, (p, v, _) in enumerate(chunk):
            group = canonical_group(answers[j * k:(j + 1) * k], p.answer, cluster=cluster)
            out.append({"problem_id": p.problem_id, "view": v, "truth": p.answer, "answers": list(group),
                        "accuracy": float(np.mean([a == p.answer for a in group]))})
        # llm.evaluate also decodes greedily per chunk (no generator use): with the same chunks
        # (EvalConfig.batch_prompts) and seed the sampled stream is the same
    return out


def seed_summary(values: Sequence[float]) -> dict:
    """Mean over seeds, sample std and the t 95 % half-width (0 for one seed)."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    sd = float(v.std(ddof=1)) if n > 1 else 0.0
    from scipy.stats import t as student_t

    q = float(student_t.ppf(0.5 + SEED_CONFIDENCE / 2, n - 1)) if n > 1 else 0.0
    half = q * sd / math.sqrt(n) if n > 1 else 0.0
    return {"mean": float(v.mean()), "std": sd, "ci95": half, "n_seeds": n, "values": [float(x) for x in v]}


# ---------------------------------------------------------------------------------------------- pipeline


def _held_out(config: PredictConfig):
    from llm.tasks import split_problems, task_config_of

    held = split_problems(task_config_of(config.base_model))[1]
    return held[: config.max_problems or None]


def _max_new_tokens(config: PredictConfig) -> int:
    from llm.trainer import TrainConfig

    return config.max_new_tokens or TrainConfig().max_new_tokens


def default_games(config: PredictConfig, rows: list[dict]) -> list[Game]:
    """One game per predicted row, from the experiment's stored train config (or its variant table)."""
    from llm.experiment import VARIANTS
    from llm.trainer import TrainConfig

    wanted = [a.strip() for a in config.algorithms.split(",") if a.strip()]
    if rows:
        present = list(dict.fromkeys(r["variant"] for r in rows))
        names = wanted or [n for n in MAIN_ROWS if n in present] or present
        missing = [n for n in names if n not in present]
        if missing:
            raise ValidationError(f"predict.algorithms: {missing} not in {config.experiment} (rows: {present})")
        first = {r["variant"]: r for r in reversed(rows)}
        return [game_of(n, train_config_from(first[n]["train"])) for n in names]
    table = dict(VARIANTS)
    names = wanted or list(MAIN_ROWS)
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValidationError(f"predict.algorithms: unknown {unknown}; choose from {list(table)}")
    return [game_of(n, TrainConfig(**table[n])) for n in names]


def predict_all(games: Sequence[Game], problems, marginals: dict[str, dict], min_mass: float,
                finite_g: bool = True) -> dict[str, list[dict]]:
    """Per game, one record per (problem, view) prompt: ν0 and ν* on the problem's partition, predicted
    accuracy ν*(correct) (and the finite-G attractor's), residual, mode flags."""
    from llm.answers import NO_ANSWER
    from llm.tasks import misconception_answer

    out: dict[str, list[dict]] = {g.row: [] for g in games}
    for p in problems:
        recs = [marginals[prompt_key(p.problem_id, v)] for v in range(p.n_views)]
        labels = partition(recs, p.answer, min_mass)
        nu0s = np.stack([marginal_vector(bounds_of(r), labels) for r in recs])  # (m, K)
        reward = np.array([1.0 if z == p.answer else 0.0 for z in labels])
        correct = labels.index(p.answer)
        na = labels.index(NO_ANSWER) if NO_ANSWER in labels else None
        for game in games:
            cand = _candidates(labels, game.objective)
            nu_star = predict_game(game, nu0s, reward, cand)  # (m, K)
            nu_g = finite_group_attractor(game, nu0s, reward, na) if finite_g else None  # (m, K) | None
            for v, rec in enumerate(recs):
                trap = misconception_answer(p, v) if p.operands else None
                mode = labels[int(np.argmax(np.where(cand, nu0s[v], -1.0)))]
                item = {
                    "problem_id": p.problem_id, "view": v, "truth": p.answer,
                    "misread": trap is not None and trap != p.answer,
                    "labels": labels, "nu0": [float(x) for x in nu0s[v]], "nu_star": [float(x) for x in nu_star[v]],
                    "base_accuracy": float(nu0s[v][correct]), "predicted_accuracy": float(nu_star[v][correct]),
                    "residual": max(0.0, 1.0 - float(rec["covered_mass"])), "base_mode": mode,
                    "mode_certified": mode_certified(rec, mode),
                }
                if nu_g is not None:
                    item["nu_G"] = [float(x) for x in nu_g[v]]
                    item["predicted_accuracy_G"] = float(nu_g[v][correct])
                out[game.row].append(item)
    return out


def class_of(record: dict) -> str:
    return "misread" if record["misread"] else "other"


def check_misread_flags(rows: list[dict], records: list[dict]) -> None:
    """The experiment's own per-prompt misread flags (``llm.evaluate``) must equal the prediction's."""
    mine = {prompt_key(r["problem_id"], r["view"]): r["misread"] for r in records}
    for r in rows:
        for x in r["per_prompt"] or ():
            key = prompt_key(x["problem_id"], x["view"])
            if "misread" in x and key in mine and bool(x["misread"]) != mine[key]:
                raise ValidationError(f"row {r['name']!r}: prompt {key} misread={x['misread']} in the experiment, "
                                      f"{mine[key]} here (different task?)")


def measured_by_seed(rows: list[dict], variant: str) -> dict[int, dict[str, float]]:
    """``{seed: {"problem_id|view": accuracy}}`` of one variant."""
    out = {}
    for r in rows:
        if r["variant"] == variant and r["per_prompt"] is not None:
            out[int(r["seed"])] = {prompt_key(x["problem_id"], x["view"]): float(x["accuracy"])
                                   for x in r["per_prompt"]}
    return out


def summarize_row(game: Game, records: list[dict], measured: dict[int, dict[str, float]]) -> dict:
    """Predicted vs measured accuracy, overall and per class; per-prompt measured mean over seeds."""
    keys = [prompt_key(r["problem_id"], r["view"]) for r in records]
    for rec, key in zip(records, keys, strict=True):
        vals = [m[key] for m in measured.values() if key in m]
        rec["measured_accuracy"] = float(np.mean(vals)) if vals else None
    classes = {"all": lambda r: True, "misread": lambda r: r["misread"], "other": lambda r: not r["misread"]}
    summary = {}
    for cname, keep in classes.items():
        sel = [r for r in records if keep(r)]
        if not sel:
            continue
        entry = {
            "n_prompts": len(sel),
            "base": float(np.mean([r["base_accuracy"] for r in sel])),
            "predicted": float(np.mean([r["predicted_accuracy"] for r in sel])),
        }
        if "predicted_accuracy_G" in sel[0]:
            entry["predicted_G"] = float(np.mean([r["predicted_accuracy_G"] for r in sel]))
        for seed, m in measured.items():
            missing = [k for k in (prompt_key(r["problem_id"], r["view"]) for r in sel) if k not in m]
            if missing:
                raise ValidationError(f"row {game.row!r} seed {seed}: no measured accuracy for {len(missing)} "
                                      f"predicted prompts (e.g. {missing[0]}); evaluated on other problems?")
        per_seed = [float(np.mean([m[prompt_key(r["problem_id"], r["view"])] for r in sel]))
                    for _, m in sorted(measured.items())]
        if per_seed:
            entry["measured"] = seed_summary(per_seed)
            entry["gap"] = entry["measured"]["mean"] - entry["predicted"]
        summary[cname] = entry
    return {"game": dataclasses.asdict(game), "summary": summary, "per_prompt": per_prompt_agreement(records),
            "seeds": sorted(measured),
            "mode_certified_fraction": float(np.mean([r["mode_certified"] for r in records]))}


def per_prompt_agreement(records: list[dict]) -> dict | None:
    """Prompt by prompt: Pearson r of predicted vs measured accuracy (seed mean), and the measured accuracy
    of the prompts predicted ≥ ½ vs < ½ (a vertex prediction is 0 or 1 per prompt)."""
    pairs = [(r["predicted_accuracy"], r["measured_accuracy"]) for r in records
             if r.get("measured_accuracy") is not None]
    if len(pairs) < 2:
        return None
    x, y = np.array(pairs).T
    out = {"n": len(pairs), "pearson_r": float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else None}
    for name, sel in (("measured_where_predicted_high", x >= 0.5), ("measured_where_predicted_low", x < 0.5)):
        out[name] = float(y[sel].mean()) if sel.any() else None
        out[name.replace("measured", "n")] = int(sel.sum())
    return out


def certify_trained(rows_by_variant: dict[str, dict], predictions: dict[str, list[dict]], problems,
                    config: PredictConfig) -> dict[str, dict]:
    """The steps/capacity measurement: certified ν_T of each variant's first-seed model on ``gap_prompts``
    prompts per class; TV(ν0, ν*), TV(ν_T, ν*), TV(ν0, ν_T) and the mass on the correct answer, on the
    prediction's partition (ν_T's lower bounds; an answer outside the partition goes to <rest>)."""
    texts = {prompt_key(p.problem_id, v): q for p in problems for v, q in enumerate(p.views)}
    out = {}
    for variant, row in rows_by_variant.items():
        recs = predictions[variant]
        pick = ([r for r in recs if r["misread"]][: config.gap_prompts]
                + [r for r in recs if not r["misread"]][: config.gap_prompts])
        keys = [prompt_key(r["problem_id"], r["view"]) for r in pick]
        cache = Path(config.cache or Path(config.out) / f"{config.stem}_nu0.json").parent / (
            f"{config.stem}_trained_{Path(row['dir']).name}.json")
        t0 = time.perf_counter()
        marg = certify_prompts(Path(row["dir"]) / "final", [(k, texts[k]) for k in keys], mass=config.mass,
                               budget_seconds=config.budget_seconds, max_new_tokens=_max_new_tokens(config),
                               cache=cache, progress=config.progress)
        items = []
        for r, k in zip(pick, keys, strict=True):
            nu_t = marginal_vector(bounds_of(marg[k]), r["labels"])
            nu0, nus = np.array(r["nu0"]), np.array(r["nu_star"])
            c = r["labels"].index(r["truth"])
            items.append({"key": k, "misread": r["misread"], "tv_0_star": total_variation(nu0, nus),
                          "tv_T_star": total_variation(nu_t, nus), "tv_0_T": total_variation(nu0, nu_t),
                          "acc_0": float(nu0[c]), "acc_T": float(nu_t[c]), "acc_star": float(nus[c]),
                          "covered_T": float(marg[k]["covered_mass"])})
        entry = {"seed": row["seed"], "n_prompts": len(items), "seconds": time.perf_counter() - t0,
                 "search_seconds_total": float(sum(marg[k]["seconds"] for k in keys)), "prompts": items}
        for cname, keep in (("all", lambda i: True), ("misread", lambda i: i["misread"]),
                            ("other", lambda i: not i["misread"])):
            sel = [i for i in items if keep(i)]
            if sel:
                entry[cname] = {k: float(np.mean([i[k] for i in sel]))
                                for k in ("tv_0_star", "tv_T_star", "tv_0_T", "acc_0", "acc_T", "acc_star")}
        out[variant] = entry
    return out


def entropy_trend(history: list[dict]) -> dict | None:
    """Training answer entropy over steps: first/last 5-step means and the least-squares slope of the last
    10 steps (nats per step; < 0: still sharpening when training stopped)."""
    h = [x["answer_entropy"] for x in history if "answer_entropy" in x]
    if len(h) < 10:
        return None
    tail = np.array(h[-10:])
    slope = float(np.polyfit(np.arange(10), tail, 1)[0])
    return {"first5": float(np.mean(h[:5])), "last5": float(np.mean(h[-5:])), "slope_last10": slope}


def run(config: PredictConfig) -> dict:
    """Certify ν0, predict every game, measure, compare; returns the results dict (see :func:`write_results`)."""
    import torch

    config.validate()
    torch.set_num_threads(config.threads)
    t0 = time.perf_counter()
    problems = _held_out(config)
    prompts = [(prompt_key(p.problem_id, v), q) for p in problems for v, q in enumerate(p.views)]
    cache = config.cache or str(Path(config.out) / f"{config.stem}_nu0.json")
    marginals = certify_prompts(config.base_model, prompts, mass=config.mass, budget_seconds=config.budget_seconds,
                                max_new_tokens=_max_new_tokens(config), cache=cache, progress=config.progress)
    certify_seconds = time.perf_counter() - t0
    rows = load_rows(config.experiment) if config.experiment else []
    games = default_games(config, rows)
    t1 = time.perf_counter()
    predictions = predict_all(games, problems, marginals, config.min_answer_mass, config.finite_g)
    predict_seconds = time.perf_counter() - t1
    if rows:
        _fill_missing_per_prompt(rows, [g.row for g in games], problems, config)
        check_misread_flags(rows, next(iter(predictions.values())))
    results = {
        "format": RESULTS_FORMAT,
        "config": dataclasses.asdict(config),
        "n_problems": len(problems), "n_prompts": len(prompts),
        "certified": {"seconds": certify_seconds, "cache": cache,
                      "search_seconds_total": float(sum(m["seconds"] for m in marginals.values())),
                      "stopped_by_budget": int(sum(m["stopped_by"] == "budget" for m in marginals.values())),
                      "covered_mass_min": float(min(m["covered_mass"] for m in marginals.values())),
                      "covered_mass_median": float(np.median([m["covered_mass"] for m in marginals.values()]))},
        "predict_seconds": predict_seconds,
        "rows": {},
    }
    for game in games:
        measured = measured_by_seed(rows, game.row)
        results["rows"][game.row] = summarize_row(game, predictions[game.row], measured)
        hist = [r for r in rows if r["variant"] == game.row]
        trends = [t for t in (entropy_trend(r["history"]) for r in hist) if t is not None]
        if trends:
            results["rows"][game.row]["train_entropy"] = {
                k: float(np.mean([t[k] for t in trends])) for k in ("first5", "last5", "slope_last10")}
    results["prompts"] = {prompt_key(r["problem_id"], r["view"]): {"labels": r["labels"], "nu0": _rounded(r["nu0"])}
                          for r in next(iter(predictions.values()))}
    if rows and config.gap_prompts:
        first = {}
        for r in sorted(rows, key=lambda r: r["seed"]):
            first.setdefault(r["variant"], r)
        results["gap"] = certify_trained({g.row: first[g.row] for g in games}, predictions, problems, config)
    for game in games:
        results["rows"][game.row]["prompts"] = [_compact(r) for r in predictions[game.row]]
    calibrate_steps(results)
    results["seconds"] = time.perf_counter() - t0
    return results


#: The labelled row whose measured/predicted ratio calibrates the step fraction of :func:`calibrate_steps`.
CALIBRATION_ROW = "gt-grpo"


def best_prediction(entry: dict) -> float:
    """The finite-G flow's prediction where it was computed, else ν*'s."""
    return entry.get("predicted_G", entry["predicted"])


def calibrate_steps(results: dict, reference: str = CALIBRATION_ROW) -> None:
    """The steps measurement as a one-parameter model: training covers a fraction f of the way from the base
    accuracy to the predicted one, ``acc ≈ base + f·(pred − base)``, f fitted on ``reference`` alone (all
    prompts) and applied to every other row and class (``summary[c]["predicted_after_steps"]``); the mean
    absolute errors of ν*, the finite-G flow and this go to ``results["errors"]``. No-op without measurements."""
    rows = results["rows"]
    ref = rows.get(reference, {}).get("summary", {}).get("all")
    if not ref or "measured" not in ref or best_prediction(ref) == ref["base"]:
        return
    f = (ref["measured"]["mean"] - ref["base"]) / (best_prediction(ref) - ref["base"])
    errs: dict[str, list[float]] = {"predicted": [], "predicted_G": [], "predicted_after_steps": []}
    for name, row in rows.items():
        for cname in ("misread", "other"):
            e = row["summary"].get(cname)
            if e is None or "measured" not in e:
                continue
            e["predicted_after_steps"] = e["base"] + f * (best_prediction(e) - e["base"])
            if name == reference:
                continue  # fitted there (on all prompts): report the out-of-sample rows only
            m = e["measured"]["mean"]
            errs["predicted"].append(abs(m - e["predicted"]))
            errs["predicted_G"].append(abs(m - best_prediction(e)))
            errs["predicted_after_steps"].append(abs(m - e["predicted_after_steps"]))
    results["step_calibration"] = {"reference": reference, "fraction": f,
                                   "mean_abs_error": {k: float(np.mean(v)) for k, v in errs.items() if v},
                                   "max_abs_error": {k: float(np.max(v)) for k, v in errs.items() if v},
                                   "n_cells": len(errs["predicted"])}


#: Masses below this are left out of the stored ν*, ν_G maps (labels and ν0 are stored once per prompt).
STORE_MIN_MASS = 1e-6


def _rounded(v) -> list[float]:
    return [round(float(x), 8) for x in v]


def _compact(record: dict) -> dict:
    """A prompt record as stored: ν* and ν_G as sparse {label: mass} maps; labels and ν0 live in
    ``results["prompts"]``."""
    out = {k: v for k, v in record.items() if k not in ("labels", "nu0", "nu_star", "nu_G")}
    for key in ("nu_star", "nu_G"):
        if key in record:
            out[key] = {z: round(float(x), 8) for z, x in zip(record["labels"], record[key], strict=True)
                        if x >= STORE_MIN_MASS}
    return out


def _fill_missing_per_prompt(rows: list[dict], variants: Sequence[str], problems, config: PredictConfig) -> None:
    """Evaluate trained checkpoints whose row stored no per-prompt answers (older experiments)."""
    for r in rows:
        if r["variant"] not in variants or r["per_prompt"] is not None:
            continue
        model_dir = Path(r["dir"]) / "final"
        if not (model_dir / "config.json").is_file():
            raise ValidationError(f"row {r['name']!r}: no per-prompt answers and no model at {model_dir}")
        ev = r["eval"]
        r["per_prompt"] = evaluate_per_prompt(
            model_dir, problems, int(ev.get("k", config.eval_k)), int(ev.get("seed", 1)),
            int(ev.get("max_new_tokens", _max_new_tokens(config))), int(ev.get("batch_prompts", 64)))
        r["evaluated_here"] = True


# ---------------------------------------------------------------------------------------------- reports

TABLE_HEAD = ("| algorithm | game (β, τ) | class | prompts | base ν0(correct) | predicted ν*(correct) | "
              "predicted, finite-G flow | measured (mean ± 95 % over seeds) | measured − predicted |")


def _fmt(x, nd=3) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def table_rows(results: dict) -> list[list[str]]:
    """The table's cells, one list per (algorithm, class) — the markdown and the tests use the same cells."""
    lines = []
    for name, row in results["rows"].items():
        g = row["game"]
        game = f"{g['objective']}" + (f"[{g['consensus']}]" if g["consensus"] != "none" else "") + \
            f" (β={g['beta']:g}, τ={g['tau']:g})"
        for cname in ("all", "misread", "other"):
            s = row["summary"].get(cname)
            if s is None:
                continue
            m = s.get("measured")
            if m is None:
                meas = "–"
            else:
                meas = f"{m['mean']:.3f} ± {m['ci95']:.3f}" if m["n_seeds"] > 1 else f"{m['mean']:.3f}"
            lines.append([name, game, cname, str(s["n_prompts"]), _fmt(s["base"]), _fmt(s["predicted"]),
                          _fmt(s.get("predicted_G")), meas, _fmt(s.get("gap"), 3) if "gap" in s else "–"])
    return lines


def markdown(results: dict) -> str:
    c = results["certified"]
    text = [f"# Predicted vs measured held-out accuracy ({results['n_problems']} problems, {results['n_prompts']} "
            f"(problem, view) prompts)", "",
            TABLE_HEAD, "|" + "---|" * 9]
    text += ["| " + " | ".join(cells) + " |" for cells in table_rows(results)]
    text += ["", f"ν0: certified marginals of the base model (covered mass min {c['covered_mass_min']:.4f}, median "
             f"{c['covered_mass_median']:.4f}; {c['search_seconds_total']:.0f} s of search, cached). ν*: dagsim's "
             "optimum of each row's game at its training β (β = 0: the β → 0+ limit); predicted accuracy = "
             "ν*(correct), mean over prompts; finite-G flow: the limit of the expected GRPO flow with the trainer's "
             "effective reward (T10). Measured: mean sampled accuracy of the trained models on the same prompts."]
    gap = results.get("gap")
    if gap:
        text += ["", "## Distance to ν* after training (certified ν_T of the first seed's model)", "",
                 "| algorithm | class | prompts | TV(ν0, ν*) | TV(ν_T, ν*) | TV(ν0, ν_T) | ν0(correct) | ν_T(correct) "
                 "| ν*(correct) |", "|" + "---|" * 9]
        for name, e in gap.items():
            for cname in ("misread", "other"):
                if cname in e:
                    s = e[cname]
                    n = sum(1 for i in e["prompts"] if i["misread"] == (cname == "misread"))
                    text.append(f"| {name} | {cname} | {n} | {s['tv_0_star']:.3f} | {s['tv_T_star']:.3f} | "
                                f"{s['tv_0_T']:.3f} | {s['acc_0']:.3f} | {s['acc_T']:.3f} | {s['acc_star']:.3f} |")
    cal = results.get("step_calibration")
    if cal:
        mae, mx = cal["mean_abs_error"], cal["max_abs_error"]
        text += ["", f"## Steps: one fraction of the way, calibrated on {cal['reference']}", "",
                 f"acc ≈ base + f·(prediction − base) with f = {cal['fraction']:.3f} fitted on {cal['reference']} "
                 f"(all prompts; prediction = the finite-G flow where computed, else ν*). Over the other "
                 f"{cal['n_cells']} (algorithm, class) cells, mean |measured − predicted| (max): ν* "
                 f"{mae['predicted']:.3f} ({mx['predicted']:.3f}), finite-G flow {mae['predicted_G']:.3f} "
                 f"({mx['predicted_G']:.3f}), after steps {mae['predicted_after_steps']:.3f} "
                 f"({mx['predicted_after_steps']:.3f}).", "",
                 "| algorithm | class | measured | after steps |", "|---|---|---|---|"]
        for n, r in results["rows"].items():
            for cname in ("misread", "other"):
                e = r["summary"].get(cname, {})
                if "predicted_after_steps" in e:
                    text.append(f"| {n} | {cname} | {e['measured']['mean']:.3f} | {e['predicted_after_steps']:.3f} |")
    agree = {n: r["per_prompt"] for n, r in results["rows"].items() if r.get("per_prompt")}
    if agree:
        text += ["", "## Prompt by prompt", "", "| algorithm | Pearson r (predicted, measured) | measured acc where "
                 "predicted ≥ ½ (prompts) | where predicted < ½ (prompts) |", "|---|---|---|---|"]
        for n, a in agree.items():
            text.append(f"| {n} | {_fmt(a['pearson_r'])} | {_fmt(a['measured_where_predicted_high'])} "
                        f"({a['n_where_predicted_high']}) | {_fmt(a['measured_where_predicted_low'])} "
                        f"({a['n_where_predicted_low']}) |")
    trends = {n: r["train_entropy"] for n, r in results["rows"].items() if "train_entropy" in r}
    if trends:
        text += ["", "Training answer entropy (nats, mean over seeds): " + "; ".join(
            f"{n}: {t['first5']:.3f} → {t['last5']:.3f} (slope of the last 10 steps {t['slope_last10']:+.4f}/step)"
            for n, t in trends.items()) + "."]
    return "\n".join(text) + "\n"


def write_results(results: dict, out: str | Path, stem: str) -> dict:
    from llm.model import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / f"{stem}.json", results, indent=None)
    atomic_write_text(out / f"{stem}.md", markdown(results))
    return {"json": str(out / f"{stem}.json"), "md": str(out / f"{stem}.md")}
