"""Benchmark: certified answer marginals (llm/certified.py) on the embedded task's base model.

Per held-out prompt, measured in one run on this machine:
  * seconds to covered mass >= --mass (target: 0.99 within 10 s), expansions, completions, stop reason;
  * the same search with the unbatched, uncached baseline (``strategy="recompute"``, ``batch_size=1``: every
    expansion re-runs the model over prompt + prefix), under its own time budget; the speed-up is the ratio of
    times to the mass level when the baseline reaches it, else a lower bound (baseline budget / our time), and
    always the ratio of expansion rates;
  * on the first prompt, an ablation of the expansion strategy and batch size at a fixed expansion count.
Both searches must give intersecting intervals for every answer (the same distribution): checked.

Model: --model PATH (a local checkpoint; default runs/llm/base, what ``llm.pretrain`` writes) at T = 1.
Without a checkpoint the benchmark stops with a message (exit 2): it does not silently measure something
else. ``--random-model`` asks for the project's default ModelConfig, randomly initialized (seed 0), with the
project's BPE tokenizer trained on the task corpus, at a peaked temperature (--random-temperature): a random
model's logits are nearly flat (std ~0.2), so T = 1 would spread the mass over ~216^L completions. The output
says which model was used. Machine load (``os.getloadavg``) is printed: this CPU is shared, and timings under
load are pessimistic.

Run: OMP_NUM_THREADS=1 python bench/bench_llm_certified.py [--model runs/llm/base] [--n-prompts 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from llm.answers import extract_answer
from llm.certified import CertifiedMarginal, certified_marginal
from llm.tasks import ArithmeticTaskConfig, split_problems, task_config_of

DEFAULT_CHECKPOINT = Path("runs/llm/base")


def _stop(message: str):
    """One line on stderr and exit 2 (the project's code for bad input)."""
    print(f"bench_llm_certified: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_or_build(model_path: str | None, random_temperature: float, random_model: bool = False):
    """``(model, tokenizer, task_config, temperature, description)``; a random model only when asked."""
    if random_model and model_path:
        _stop("--random-model and --model exclude each other")
    path = Path(model_path) if model_path else DEFAULT_CHECKPOINT
    if not random_model and (path / "config.json").is_file():
        from llm.model import load_model

        model, tok = load_model(path, device="cpu")
        return model, tok, task_config_of(path), 1.0, f"checkpoint {path} at T = 1"
    if model_path:
        _stop(f"--model {model_path}: no config.json (not a model folder)")
    if not random_model:
        _stop(
            f"no model to measure: {DEFAULT_CHECKPOINT} does not exist. Make it with `dagsim llm pretrain` "
            "(about 7 minutes on 2 CPU cores), pass --model PATH, or --random-model to measure a randomly "
            "initialized model instead"
        )
    from llm.model import ModelConfig, build_model, n_parameters
    from llm.pretrain import sft_corpus
    from llm.tokenizer import build_tokenizer

    task = ArithmeticTaskConfig()
    train, _ = split_problems(task)
    tok = build_tokenizer(sft_corpus(train, np.random.default_rng(0), task.step_noise), 256)
    model = build_model(ModelConfig(), tok, seed=0)
    desc = (
        f"no checkpoint at {DEFAULT_CHECKPOINT}: RANDOMLY INITIALIZED default ModelConfig "
        f"({n_parameters(model):,} parameters, vocab {len(tok)}), T = {random_temperature}"
    )
    return model, tok, task, random_temperature, desc


def intervals_intersect(a: CertifiedMarginal, b: CertifiedMarginal) -> bool:
    """Both results bound the same distribution, so every answer's two intervals must meet."""
    tol = 1e-6  # float32 logits from different batch shapes
    for label in set(a.answer_bounds) | set(b.answer_bounds):
        (lo_a, hi_a), (lo_b, hi_b) = a.bounds(label), b.bounds(label)
        if lo_a > hi_b + tol or lo_b > hi_a + tol:
            return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", default=None, help=f"checkpoint directory (default {DEFAULT_CHECKPOINT} if present)"
    )
    ap.add_argument("--n-prompts", type=int, default=3)
    ap.add_argument("--mass", type=float, default=0.99)
    ap.add_argument("--budget-seconds", type=float, default=10.0)
    ap.add_argument("--baseline-budget-seconds", type=float, default=20.0)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--random-temperature", type=float, default=0.05)
    ap.add_argument("--random-model", action="store_true",
                    help="measure a randomly initialized default model (when no checkpoint is wanted)")
    ap.add_argument("--ablation-expansions", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the CPU is shared)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, tok, task, temperature, desc = load_or_build(args.model, args.random_temperature, args.random_model)
    model.eval()
    prompts = [v for p in split_problems(task)[1] for v in p.views][: args.n_prompts]
    print(f"model: {desc}")
    print(
        f"mass {args.mass}, max_new_tokens {args.max_new_tokens}, batch {args.batch_size}, torch threads "
        f"{torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    common = dict(
        extract_answer=extract_answer,
        mass=args.mass,
        max_new_tokens=args.max_new_tokens,
        temperature=temperature,
    )
    rows = []
    for i, prompt in enumerate(prompts):
        ours = certified_marginal(
            model,
            tok,
            prompt,
            budget_seconds=args.budget_seconds,
            batch_size=args.batch_size,
            strategy="kv-tree",
            **common,
        )
        base = certified_marginal(
            model,
            tok,
            prompt,
            budget_seconds=args.baseline_budget_seconds,
            batch_size=1,
            strategy="recompute",
            **common,
        )
        rate_ours, rate_base = ours.n_expansions / ours.seconds, base.n_expansions / base.seconds
        both_reached = ours.stopped_by != "budget" and base.stopped_by != "budget"
        speedup = base.seconds / ours.seconds if both_reached else None
        speedup_lb = (
            base.seconds / ours.seconds
            if ours.stopped_by != "budget" and base.stopped_by == "budget"
            else None
        )
        top = next(iter(ours.answer_bounds.items()), ("-", (0.0, 1.0)))
        rows.append(
            {
                "prompt": i,
                "seconds": ours.seconds,
                "covered_mass": ours.covered_mass,
                "stopped_by": ours.stopped_by,
                "n_expansions": ours.n_expansions,
                "n_completions": ours.n_completions,
                "n_answers": len(ours.answer_bounds),
                "top_answer": [top[0], *top[1]],
                "expansions_per_s": rate_ours,
                "baseline": {
                    "seconds": base.seconds,
                    "covered_mass": base.covered_mass,
                    "stopped_by": base.stopped_by,
                    "n_expansions": base.n_expansions,
                    "expansions_per_s": rate_base,
                },
                "speedup_time_to_mass": speedup,
                "speedup_lower_bound": speedup_lb,
                "speedup_rate": rate_ours / rate_base,
                "intervals_consistent": intervals_intersect(ours, base),
            }
        )
        r = rows[-1]
        time_str = (
            f"{r['speedup_time_to_mass']:.1f}x"
            if speedup
            else (f">= {speedup_lb:.1f}x" if speedup_lb else "n/a")
        )
        print(
            f"prompt {i}: ours     covered {ours.covered_mass:.4f} ({ours.stopped_by}) "
            f"in {ours.seconds:5.2f} s, "
            f"{ours.n_expansions} expansions, {ours.n_completions} completions, "
            f"{len(ours.answer_bounds)} answers, top {top[0]!r} in [{top[1][0]:.4f}, {top[1][1]:.4f}]\n"
            f"          baseline covered {base.covered_mass:.4f} ({base.stopped_by}) "
            f"in {base.seconds:5.2f} s, "
            f"{base.n_expansions} expansions\n"
            f"          speed-up: time to mass {time_str}, expansion rate {r['speedup_rate']:.1f}x "
            f"({rate_ours:.0f} vs {rate_base:.0f} /s); intervals consistent: {r['intervals_consistent']}"
        )

    ablation = []
    if prompts:
        n = args.ablation_expansions
        print(f"ablation on prompt 0, {n} expansions each (expansions/s, higher is better):")
        for strategy, bs in [
            ("kv-tree", args.batch_size),
            ("kv-tree", 2 * args.batch_size),
            ("kv-tree", 1),
            ("prompt-cache", args.batch_size),
            ("recompute", args.batch_size),
            ("recompute", 1),
        ]:
            t0 = time.perf_counter()
            res = certified_marginal(
                model,
                tok,
                prompts[0],
                budget_seconds=args.budget_seconds,
                batch_size=bs,
                strategy=strategy,
                max_expansions=args.ablation_expansions,
                **{**common, "mass": 1.0},
            )
            rate = res.n_expansions / (time.perf_counter() - t0)
            ablation.append(
                {
                    "strategy": strategy,
                    "batch_size": bs,
                    "n_expansions": res.n_expansions,
                    "expansions_per_s": rate,
                }
            )
            print(f"  {strategy:>12} batch {bs:>3}: {rate:8.0f} /s ({res.n_expansions} expansions)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        print(json.dumps({"model": desc, "prompts": rows, "ablation": ablation}, indent=2))


if __name__ == "__main__":
    main()
