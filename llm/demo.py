"""Main-job stage: a short real Coherence-GRPO run on the embedded task (pretrain a tiny base model, train
it label-free with coherence-grpo, evaluate base vs trained on held-out problems)."""

from __future__ import annotations

from pathlib import Path

#: Sizes of the demo (the whole `make demo` took 294 s on a fresh clone of this 2-core CPU): a shorter
#: pretraining than the default 1500 steps, 12 GRPO steps, 24 held-out problems.
DEMO_PRETRAIN_STEPS = 800
DEMO_TRAIN_STEPS = 12
DEMO_EVAL_PROBLEMS = 24
#: Label-free multi-view Coherence-GRPO (arithmetic consensus of the two views' answer distributions).
DEMO_ALGORITHM = "coherence-grpo[arithmetic]"


def demo_stage(out) -> str:
    from llm.experiment import ExperimentConfig, run_experiment

    folder = Path(out) / "llm"
    print(f"\n== llm: pretrain a tiny Llama-style model, then label-free Coherence-GRPO -> {folder} ==", flush=True)
    result = run_experiment(ExperimentConfig(
        out=str(folder), pretrain_steps=DEMO_PRETRAIN_STEPS, steps=DEMO_TRAIN_STEPS,
        algorithms=DEMO_ALGORITHM, eval_max_problems=DEMO_EVAL_PROBLEMS, progress=True))
    print(result["table"])
    from figures.fig08_llm_training import make as make_figure

    make_figure(Path(out) / "figures", experiment=folder)
    rows = {r["algorithm"]: r for r in result["rows"]}
    base, trained = rows["base"], rows[DEMO_ALGORITHM]
    return (f"llm: held-out mean sampled accuracy {base['mean_accuracy']:.3f} (base) -> "
            f"{trained['mean_accuracy']:.3f} ({DEMO_ALGORITHM}, no labels, {trained['steps']} steps) -> {folder}")


def _register() -> None:
    from dagsim.cli import DEMO_STEPS

    DEMO_STEPS.append(("llm", demo_stage))


_register()
