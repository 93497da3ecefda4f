"""Main-job stage: a short real Coherence-GRPO run on the embedded task (pretrain a tiny base model, train
it label-free with coherence-grpo, evaluate base vs trained on held-out problems).

The stage itself (this run, then figure 8 drawn from it) is composed in :mod:`app.demo`.
"""

from __future__ import annotations

from pathlib import Path

#: Sizes of the demo (the whole `make demo` took 294 s on a fresh clone of this 2-core CPU): a shorter
#: pretraining than the default 1500 steps, 12 GRPO steps, 24 held-out problems.
DEMO_PRETRAIN_STEPS = 800
DEMO_TRAIN_STEPS = 12
DEMO_EVAL_PROBLEMS = 24
#: Label-free multi-view Coherence-GRPO (arithmetic consensus of the two views' answer distributions).
DEMO_ALGORITHM = "coherence-grpo[arithmetic]"


def run_demo(out) -> tuple[dict, Path]:
    """Run the demo experiment into ``out/llm`` and print its table; returns (results, folder)."""
    from llm.experiment import ExperimentConfig, run_experiment

    folder = Path(out) / "llm"
    print(f"\n== llm: pretrain a tiny Llama-style model, then label-free Coherence-GRPO -> {folder} ==", flush=True)
    result = run_experiment(ExperimentConfig(
        out=str(folder), pretrain_steps=DEMO_PRETRAIN_STEPS, steps=DEMO_TRAIN_STEPS,
        algorithms=DEMO_ALGORITHM, eval_max_problems=DEMO_EVAL_PROBLEMS, progress=True))
    print(result["table"])
    return result, folder


def summary_line(result: dict, folder: Path) -> str:
    """The demo summary's line of the LLM stage: held-out accuracy of the base and the trained model."""
    rows = {r["algorithm"]: r for r in result["rows"]}
    base, trained = rows["base"], rows[DEMO_ALGORITHM]
    return (f"llm: held-out mean sampled accuracy {base['mean_accuracy']:.3f} (base) -> "
            f"{trained['mean_accuracy']:.3f} ({DEMO_ALGORITHM}, no labels, {trained['steps']} steps) -> {folder}")
