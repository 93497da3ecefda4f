"""Held-out evaluation: greedy accuracy, mean sampled accuracy (pass@1 at T), maj@k, pass@k, answer entropy.

Every (problem, view) pair is one evaluation prompt. With k samples per prompt at temperature T:

- ``mean_accuracy``  = mean over prompts of (#correct / k)          (pass@1 at T, unbiased)
- ``maj_at_k``       = mean over prompts of P(the plurality answer is correct), ties split uniformly
- ``pass_at_k``      = mean over prompts of 1[some sample is correct]
- ``answer_entropy`` = mean over prompts of the entropy (nats) of the empirical answer distribution, the
                       no-answer bucket counting as one answer
- ``no_answer_rate`` = fraction of samples without a parseable answer (``n_unextracted``: their number;
                       ``n_answer_timeouts``: those whose symbolic parse ran out of time)
- ``cross_view_agreement`` = mean over problems with >= 2 views of the fraction of view pairs whose
                       plurality answers agree
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.divergences import count_entropy
from dagsim.errors import ValidationError
from llm.answers import (
    NO_ANSWER,
    answer_timeouts,
    canonical_group,
    extract_answers,
    parser_clusters,
    resolve_answer_parser,
)
from llm.tasks import Problem


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation settings."""

    k: int = 8
    """Samples per prompt for mean accuracy, maj@k, pass@k and entropy."""
    temperature: float = 1.0
    """Sampling temperature of the k samples (greedy accuracy always uses argmax decoding)."""
    max_new_tokens: int = 40
    """Completion length limit, in tokens."""
    batch_prompts: int = 64
    """Prompts per generate call (each expands to k rows)."""
    max_problems: int = 0
    """Evaluate on the first N held-out problems (0 = all)."""
    seed: int = 1234
    """Seed of the sampling generator (evaluation is reproducible)."""
    stop_strings: tuple[str, ...] = ()
    """Stop strings ending a completion (with every EOS id; llm.sampling.StopRule); --stop-string."""
    # --- answer layer (issue 13 §1)
    answer_parser: str = ""
    """How final answers are read: '' = the task's default (marker for the embedded task, full for data) |
    full | marker | module:function | path/to/file.py:function (see llm.answers)."""

    def validate(self) -> None:
        if self.k < 1:
            raise ValidationError(f"eval.k must be >= 1, got {self.k}")
        if not self.temperature > 0:
            raise ValidationError(f"eval.temperature must be > 0, got {self.temperature}")
        if self.max_new_tokens < 1 or self.batch_prompts < 1 or self.max_problems < 0:
            raise ValidationError(
                "eval.max_new_tokens and eval.batch_prompts must be >= 1, eval.max_problems >= 0"
            )


def plurality_correct(answers: Sequence[str | None], truth: str) -> float:
    """P(a uniformly tie-broken plurality answer equals ``truth``); no-answer can win, never be correct."""
    counts = Counter(NO_ANSWER if a is None else a for a in answers)
    top = max(counts.values())
    winners = [a for a, c in counts.items() if c == top]
    return (truth in winners) / len(winners)


def plurality_answer(answers: Sequence[str | None]) -> str:
    """The most frequent answer (first seen wins ties); ``NO_ANSWER`` for the no-answer bucket."""
    counts = Counter(NO_ANSWER if a is None else a for a in answers)
    return counts.most_common(1)[0][0]


def empirical_entropy(answers: Sequence[str | None]) -> float:
    """Entropy in nats of the empirical answer distribution (no-answer bucket = one answer)."""
    counts = np.array(
        list(Counter(NO_ANSWER if a is None else a for a in answers).values()), dtype=np.float64
    )  # (n_distinct,)
    return count_entropy(counts)


def answer_metrics(
    sampled: Sequence[Sequence[str | None]], greedy: Sequence[str | None] | None, truths: Sequence[str]
) -> dict[str, float]:
    """Metrics from extracted answers: ``sampled[i]``: prompt i's k answers; ``greedy[i]``: its argmax one."""
    correct = np.array(
        [[a == t for a in s] for s, t in zip(sampled, truths, strict=True)], dtype=np.float64
    )  # (n, k)
    out = {
        "mean_accuracy": float(correct.mean()),
        "maj_at_k": float(np.mean([plurality_correct(s, t) for s, t in zip(sampled, truths, strict=True)])),
        "pass_at_k": float(correct.max(axis=1).mean()),
        "answer_entropy": float(np.mean([empirical_entropy(s) for s in sampled])),
        "no_answer_rate": float(np.mean([[a is None for a in s] for s in sampled])),
    }
    if greedy is not None:
        out["greedy_accuracy"] = float(np.mean([g == t for g, t in zip(greedy, truths, strict=True)]))
    return out


def cross_view_agreement(plurality_per_view: Sequence[Sequence[str]]) -> float:
    """Mean over problems (with >= 2 views) of the fraction of view pairs whose plurality answers agree."""
    fractions = []
    for answers in plurality_per_view:
        pairs = list(itertools.combinations(answers, 2))
        if pairs:
            fractions.append(np.mean([a == b for a, b in pairs]))
    return float(np.mean(fractions)) if fractions else float("nan")


def misread_flags(
    problems: Sequence[Problem], truths: Sequence[str]
) -> tuple[list[str | None], list[bool]]:
    """Per (problem, view) prompt, problem-major: the view's misread answer (None without one) and whether
    the prompt is a *misread prompt* (its view misreads the problem to an answer other than the truth)."""
    from llm.tasks import misconception_answer

    traps = [misconception_answer(p, v) if p.operands else None for p in problems for v in range(p.n_views)]
    hit = [t is not None and t != truth for t, truth in zip(traps, truths, strict=True)]
    return traps, hit


def per_prompt_records(
    problems: Sequence[Problem],
    sampled: Sequence[Sequence[str | None]],
    greedy: Sequence[str | None],
    truths: Sequence[str],
) -> list[dict]:
    """One record per (problem, view) prompt, problem-major (the order of ``sampled``): its id, view, truth,
    the k sampled answer keys (None = no answer), the greedy answer, the fraction correct, and whether it is
    a misread prompt (:func:`misread_flags`) with the misread answer. The per-prompt metrics of
    :func:`answer_metrics` can be recomputed from it (issue 15: bootstrap over problems)."""
    traps, hit = misread_flags(problems, truths)
    keys = [(p.problem_id, v) for p in problems for v in range(p.n_views)]
    return [
        {
            "problem_id": pid,
            "view": v,
            "truth": truth,
            "answers": list(s),
            "greedy": g,
            "accuracy": float(np.mean([a == truth for a in s])),
            "misread": bool(h),
            "misread_answer": t if h else None,
        }
        for (pid, v), s, g, truth, t, h in zip(keys, sampled, greedy, truths, traps, hit, strict=True)
    ]


def misconception_breakdown(
    problems: Sequence[Problem], sampled: Sequence[Sequence[str | None]], truths: Sequence[str]
) -> dict[str, float]:
    """Mean accuracy on the (problem, view) prompts whose view has a systematic misreading of the problem
    (:func:`llm.tasks.misconception_answer`, embedded task only) vs the other prompts, and how often the
    misread answer itself is sampled there. ``sampled`` is ordered problem-major, then view. {} if none."""
    traps, hit = misread_flags(problems, truths)
    if not any(hit):
        return {}
    acc = [np.mean([a == truth for a in s]) for s, truth in zip(sampled, truths, strict=True)]
    misread = [np.mean([a == t for a in s]) for s, t, h in zip(sampled, traps, hit, strict=True) if h]
    out = {
        "misread_prompts": int(sum(hit)),
        "mean_accuracy_misread_prompts": float(np.mean([a for a, h in zip(acc, hit, strict=True) if h])),
        "misread_answer_rate": float(np.mean(misread)),
    }
    if not all(hit):
        out["mean_accuracy_other_prompts"] = float(np.mean([a for a, h in zip(acc, hit, strict=True) if not h]))
    return out


def evaluate(
    model, tokenizer, problems: Sequence[Problem], config: EvalConfig = EvalConfig(), progress=False,
    *, answer_parser=None, per_prompt: bool = False,
):
    """Evaluate ``model`` on every view of ``problems`` (which must have ground-truth answers).

    Answers are read by ``answer_parser`` (a callable), else ``config.answer_parser``, else the task's default;
    each prompt's answers are merged into equivalence classes with its ground truth
    (:func:`llm.answers.canonical_group`), so symbolic answers equal to the truth count as correct.
    ``per_prompt``: also return ``metrics["per_prompt"]`` (:func:`per_prompt_records`)."""
    import torch
    from tqdm.auto import tqdm

    from llm.sampling import sample_completions

    config.validate()
    problems = list(problems)[: config.max_problems or None]
    if not problems or any(p.answer is None for p in problems):
        raise ValidationError("evaluation needs problems with ground-truth answers")
    embedded = all(p.operands for p in problems)
    parser = answer_parser or resolve_answer_parser(
        config.answer_parser, embedded_task=embedded, flag="--answer-parser (eval.answer_parser)"
    )
    cluster = parser_clusters(parser)
    timeouts_before = answer_timeouts()
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    prompts = [(i, q) for i, p in enumerate(problems) for q in p.views]
    sampled: list[list[str | None]] = []
    greedy: list[str | None] = []
    chunks = range(0, len(prompts), config.batch_prompts)
    for start in tqdm(chunks, desc="evaluate", disable=not progress, dynamic_ncols=True):
        texts = [q for _, q in prompts[start : start + config.batch_prompts]]
        batch = sample_completions(
            model,
            tokenizer,
            texts,
            n_samples=config.k,
            temperature=config.temperature,
            max_new_tokens=config.max_new_tokens,
            generator=generator,
            stop_strings=config.stop_strings,
        )
        answers = extract_answers(batch.texts, parser=parser)
        truths_here = [problems[i].answer for i, _ in prompts[start : start + config.batch_prompts]]
        sampled.extend(
            canonical_group(answers[j * config.k : (j + 1) * config.k], truths_here[j], cluster=cluster)
            for j in range(len(texts))
        )
        g = sample_completions(
            model,
            tokenizer,
            texts,
            n_samples=1,
            temperature=1.0,
            max_new_tokens=config.max_new_tokens,
            generator=None,
            greedy=True,
            stop_strings=config.stop_strings,
        )
        greedy.extend(
            canonical_group([key], truth, cluster=cluster)[0]
            for key, truth in zip(extract_answers(g.texts, parser=parser), truths_here, strict=True)
        )
    truths = [problems[i].answer for i, _ in prompts]
    metrics = answer_metrics(sampled, greedy, truths)
    metrics.update(misconception_breakdown(problems, sampled, truths))
    per_problem: dict[int, list[str]] = {}
    for (i, _), s in zip(prompts, sampled, strict=True):
        per_problem.setdefault(i, []).append(plurality_answer(s))
    metrics["cross_view_agreement"] = cross_view_agreement(list(per_problem.values()))
    metrics["n_unextracted"] = int(sum(a is None for s in sampled for a in s))
    metrics["n_answer_timeouts"] = answer_timeouts() - timeouts_before
    metrics["k"] = config.k
    metrics["n_prompts"] = len(prompts)
    if per_prompt:
        metrics["per_prompt"] = per_prompt_records(problems, sampled, greedy, truths)
    return metrics
