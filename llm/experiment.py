"""The end-to-end experiment: pretrain the base model, run every algorithm at matched compute, compare.

Matched compute: every algorithm runs the same number of steps with the same problems per step, views,
group size G, completion length and learning rate, from the same base checkpoint and seed. Outputs in
``out/``: ``results.json`` (one row per algorithm plus the base model), ``results.md`` (a table),
``accuracy.png`` (held-out metrics per algorithm) and ``curves.png`` (training accuracy/entropy per step),
``per_prompt.json`` (every row's sampled answers per held-out prompt, :func:`llm.evaluate.per_prompt_records`).

``seeds="0,1,2"`` (``--seeds``, issue 15) trains every algorithm once per seed from one base model (rows
``NAME@seedS``, each reused by ``--resume`` through its own fingerprint), evaluates all of them on the same
prompts with the same evaluation seed, and adds ``summary`` (t-intervals over seeds, problem bootstrap;
:mod:`llm.intervals`) and ``gap_to_gt`` to ``results.json`` and their tables to ``results.md``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

from dagsim.errors import ValidationError

#: (row name, TrainConfig overrides). Each row is one algorithm at matched compute.
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("gt-grpo", {"algorithm": "gt-grpo"}),
    ("ttrl", {"algorithm": "ttrl"}),
    ("empo", {"algorithm": "empo"}),
    ("coherence-grpo[single-view]", {"algorithm": "coherence-grpo", "consensus": "none"}),
    (
        "coherence-grpo[single-view,raw-minimax]",
        {"algorithm": "coherence-grpo", "consensus": "none", "estimator": "minimax"},
    ),
    (
        "coherence-grpo[arithmetic]",
        {"algorithm": "coherence-grpo", "consensus": "arithmetic", "estimator": "plugin"},
    ),
    ("coherence-grpo[geometric]", {"algorithm": "coherence-grpo", "consensus": "geometric"}),
    ("diversity-grpo", {"algorithm": "diversity-grpo", "tau": 0.15}),
    ("diversity-grpo[tau=0.3]", {"algorithm": "diversity-grpo", "tau": 0.3}),
    ("pairwise-coherence-grpo", {"algorithm": "pairwise-coherence-grpo"}),
    (
        "constrained-grpo",
        {
            "algorithm": "constrained-grpo",
            "base_objective": "sharpen",
            "forbidden": "odd",
            "constraint_cap": 0.3,
        },
    ),
)
QUICK_VARIANTS = ("gt-grpo", "ttrl", "coherence-grpo[single-view]", "coherence-grpo[geometric]")
ROW_KEYS = (
    "algorithm",
    "greedy_accuracy",
    "mean_accuracy",
    "maj_at_k",
    "pass_at_k",
    "answer_entropy",
    "steps",
    "seconds",
)


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole comparison (``--quick``: a smaller version that finishes in a few minutes)."""

    out: str = "runs/llm/experiment"
    """Output directory (base model, one run directory per algorithm, results, plots)."""
    quick: bool = False
    """Small version: short pretraining, 4 algorithms, few steps, fewer evaluation problems."""
    base_model: str = ""
    """Use this checkpoint as the base model instead of pretraining one."""
    algorithms: str = ""
    """Comma-separated subset of the row names (empty = all, or the quick subset with --quick)."""
    seed: int = 0
    """Seed of pretraining, training and evaluation."""
    pretrain_steps: int = 0
    """SFT steps (0 = 1500, or 250 with --quick)."""
    steps: int = 0
    """GRPO steps per algorithm (0 = 40, or 8 with --quick)."""
    prompts_per_step: int = 8
    """Problems per step (each with all its views)."""
    group_size: int = 8
    """G."""
    lr: float = 1e-4
    """AdamW learning rate of every algorithm."""
    eval_k: int = 8
    """k of maj@k / pass@k (samples per held-out prompt)."""
    eval_max_problems: int = 0
    """Held-out problems evaluated (0 = all, or 30 with --quick)."""
    progress: bool = True
    """Progress bars."""
    workers: int = 0
    """Algorithms trained in parallel processes, each with 1 torch thread on CPU (0 = one per CPU core, at
    most one per algorithm; 1 = sequential in this process, with per-step progress bars)."""
    resume: bool = False
    """Reuse the finished algorithms of an earlier run into the same --out (their row.json), run the rest."""
    reevaluate: bool = False
    """No training: evaluate the finished models in --out again (same seeds) and rewrite results.json with
    the current metrics (e.g. after new ones were added); values that changed are listed per row."""
    # --- issue 15: error bars over training seeds, misreading overlap
    seeds: str = ""
    """Comma-separated training seeds, e.g. 0,1,2: every algorithm is trained once per seed (rows NAME@seedS)
    from the same base model (pretrained with --seed) and evaluated on the same held-out prompts with the
    same evaluation seed (--seed + 1); results add mean +- 95 % intervals over seeds and a bootstrap over
    held-out problems. Empty = --seed alone; a single value S = --seed S."""
    misconception_overlap: float = 0.0
    """Task of a base model pretrained here: fraction of problems whose misreading the views share
    (0 = disjoint, 1 = identical; llm.tasks.ArithmeticTaskConfig.misconception_overlap)."""

    def resolved(self) -> ExperimentConfig:
        q = self.quick
        seeds = parse_seeds(self.seeds)
        return dataclasses.replace(
            self,
            seed=seeds[0] if len(seeds) == 1 else self.seed,
            seeds=",".join(map(str, seeds)) if len(seeds) > 1 else "",
            pretrain_steps=self.pretrain_steps or (250 if q else 1500),
            steps=self.steps or (8 if q else 40),
            eval_max_problems=self.eval_max_problems or (30 if q else 0),
        )

    def validate(self) -> None:
        for name in ("steps", "pretrain_steps", "eval_max_problems", "workers"):
            if getattr(self, name) < 0:
                raise ValidationError(f"experiment.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("prompts_per_step", "group_size", "eval_k"):
            if getattr(self, name) < 1:
                raise ValidationError(f"experiment.{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValidationError(f"experiment.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.misconception_overlap <= 1.0:
            raise ValidationError(
                f"experiment.misconception_overlap must be in [0, 1], got {self.misconception_overlap}"
            )
        parse_seeds(self.seeds)
        if self.base_model and not Path(self.base_model).is_dir():
            raise ValidationError(f"experiment.base_model: no checkpoint directory at {self.base_model}")

    def n_workers(self, n_variants: int) -> int:
        import os

        wanted = self.workers or (os.cpu_count() or 1)
        return max(1, min(wanted, n_variants))

    def train_seeds(self) -> tuple[int, ...] | None:
        """The training seeds of a multi-seed run (None: a single-seed run with ``seed``)."""
        seeds = parse_seeds(self.seeds)
        return seeds if len(seeds) > 1 else None

    def variants(self) -> list[tuple[str, dict]]:
        names = [n.strip() for n in self.algorithms.split(",") if n.strip()] or (
            list(QUICK_VARIANTS) if self.quick else [n for n, _ in VARIANTS]
        )
        table = dict(VARIANTS)
        unknown = [n for n in names if n not in table]
        if unknown:
            raise ValidationError(f"experiment.algorithms: unknown {unknown}; choose from {list(table)}")
        return [(n, table[n]) for n in names]


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)`` (``""`` -> ``()``); non-integers, negatives and repeats are errors."""
    if not text.strip():
        return ()
    seeds = []
    for item in text.split(","):
        item = item.strip()
        try:
            seed = int(item)
        except ValueError:
            raise ValidationError(f"experiment.seeds: {item!r} is not an integer (expected e.g. 0,1,2)") from None
        if seed < 0:
            raise ValidationError(f"experiment.seeds: seeds must be >= 0, got {seed}")
        if seed in seeds:
            raise ValidationError(f"experiment.seeds: seed {seed} is repeated")
        seeds.append(seed)
    return tuple(seeds)


def seed_row_name(name: str, seed: int) -> str:
    """Row name of algorithm ``name`` trained with ``seed`` in a multi-seed run."""
    return f"{name}@seed{seed}"


def split_row_name(row_name: str) -> tuple[str, int | None]:
    """Inverse of :func:`seed_row_name`: ``("gt-grpo", 1)`` for ``"gt-grpo@seed1"``, seed None without one."""
    name, sep, seed = row_name.rpartition("@seed")
    return (name, int(seed)) if sep and seed.isdigit() else (row_name, None)


def run_dir(out: str | Path, name: str) -> Path:
    """Where the experiment in ``out`` trains the algorithm of row ``name`` (brackets are not path-friendly)."""
    return Path(out) / "runs" / name.replace("[", "-").replace("]", "")


def _row(name: str, metrics: dict, steps: int, seconds: float) -> dict:
    row = {"algorithm": name, **{k: metrics[k] for k in ROW_KEYS[1:6]}, "steps": steps, "seconds": seconds}
    extra = ("no_answer_rate", "cross_view_agreement", "mean_accuracy_misread_prompts",
             "mean_accuracy_other_prompts", "misread_answer_rate", "misread_prompts")
    row.update({k: metrics[k] for k in extra if k in metrics})
    return row


def markdown_table(rows: list[dict], k: int) -> str:
    head = f"| algorithm | greedy acc | mean acc | maj@{k} | pass@{k} | answer entropy | steps | seconds |"
    lines = [head, "|" + "---|" * 8]
    for r in rows:
        lines.append(
            f"| {r['algorithm']} | {r['greedy_accuracy']:.3f} | {r['mean_accuracy']:.3f} | "
            f"{r['maj_at_k']:.3f} | "
            f"{r['pass_at_k']:.3f} | {r['answer_entropy']:.3f} | {r['steps']} | {r['seconds']:.0f} |"
        )
    return "\n".join(lines)


def plot_results(rows: list[dict], histories: dict[str, list[dict]], out: Path, k: int) -> None:
    """``accuracy.png`` (held-out bars) and ``curves.png`` (training curves), written atomically."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [r["algorithm"] for r in rows]
    keys = [
        ("mean_accuracy", "mean acc"),
        ("maj_at_k", f"maj@{k}"),
        ("pass_at_k", f"pass@{k}"),
        ("greedy_accuracy", "greedy"),
    ]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(rows)), 4.5))
    for i, (key, label) in enumerate(keys):
        ax.bar(x + (i - 1.5) * 0.2, [r[key] for r in rows], width=0.2, label=label)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("held-out")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = out / ".accuracy.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "accuracy.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, hist in histories.items():
        steps = [h["step"] for h in hist]
        if hist and "train_accuracy" in hist[0]:
            axes[0].plot(steps, [h["train_accuracy"] for h in hist], label=name)
        axes[1].plot(steps, [h["answer_entropy"] for h in hist], label=name)
    axes[0].set_title("training-sample accuracy")
    axes[1].set_title("group answer entropy (nats)")
    for a in axes:
        a.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    tmp = out / ".curves.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "curves.png")


def run_experiment(config: ExperimentConfig) -> dict:
    """Run the experiment described by ``config``; returns ``{"rows", "table"}`` and writes the outputs."""
    from llm.evaluate import EvalConfig, evaluate
    from llm.model import load_model
    from llm.pretrain import PretrainConfig, pretrain
    from llm.tasks import ArithmeticTaskConfig, split_problems, task_config_of

    config = config.resolved()
    config.validate()
    if config.reevaluate:
        return reevaluate(config)
    variants = config.variants()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    t_total = time.perf_counter()
    if config.base_model:
        base_dir = Path(config.base_model)
        pretrain_seconds = 0.0
    elif config.resume and _finished_pretraining(out / "base", config) is not None:
        base_dir = out / "base"
        pretrain_seconds = _finished_pretraining(base_dir, config)
    else:
        base_dir = out / "base"
        summary = pretrain(
            PretrainConfig(
                out=str(base_dir), steps=config.pretrain_steps, seed=config.seed, progress=config.progress,
                task=ArithmeticTaskConfig(misconception_overlap=config.misconception_overlap),
            )
        )
        pretrain_seconds = summary["seconds"]
    task = task_config_of(base_dir)
    if config.misconception_overlap and config.misconception_overlap != task.misconception_overlap:
        raise ValidationError(
            f"experiment.misconception_overlap {config.misconception_overlap} differs from the base model's task "
            f"({base_dir / 'task.json'}: {task.misconception_overlap})"
        )
    held_out = split_problems(task)[1]
    eval_cfg = EvalConfig(k=config.eval_k, max_problems=config.eval_max_problems, seed=config.seed + 1)

    model, tok = load_model(base_dir)
    base_metrics = evaluate(model, tok, held_out, eval_cfg, per_prompt=True)
    per_prompt = {"base": base_metrics.pop("per_prompt")}
    rows = [_row("base", base_metrics, 0, pretrain_seconds)]
    del model
    _write(out, rows, config, time.perf_counter() - t_total, per_prompt=per_prompt)
    seeds = config.train_seeds()
    if seeds is None:
        jobs = [_variant_job(config, base_dir, out, name, overrides) for name, overrides in variants]
    else:
        jobs = [
            _variant_job(config, base_dir, out, seed_row_name(name, s), overrides, seed=s)
            for s in seeds
            for name, overrides in variants
        ]
    done: dict[str, dict] = {}
    if config.resume:
        for job in jobs:
            previous = _load_finished(job)
            if previous is not None and previous.get("fingerprint") == _fingerprint(job, held_out, eval_cfg):
                done[job["name"]] = previous
    todo = [job for job in jobs if job["name"] not in done]
    workers = config.n_workers(len(todo))

    def finished(result: dict) -> None:
        done[result["row"]["algorithm"]] = result
        ordered = [done[j["name"]]["row"] for j in jobs if j["name"] in done]
        partial = {**per_prompt, **{j["name"]: done[j["name"]].get("per_prompt") for j in jobs if j["name"] in done}}
        _write(out, rows + ordered, config, time.perf_counter() - t_total, per_prompt=partial)

    if workers == 1:
        for job in todo:
            finished(run_variant(job, held_out, eval_cfg))
    else:
        _run_parallel(todo, held_out, eval_cfg, workers, finished, config.progress)
    rows += [done[j["name"]]["row"] for j in jobs]
    histories = {j["name"]: done[j["name"]]["history"] for j in jobs}
    per_prompt.update({j["name"]: done[j["name"]].get("per_prompt") for j in jobs})
    table = markdown_table(rows, config.eval_k)
    summary = None
    if seeds is not None:
        import numpy as np

        from llm.intervals import gap_fractions, gap_table, seed_summary, split_table, summary_table

        summary = seed_summary(rows, per_prompt, np.random.default_rng(config.seed))  # bootstrap seed = --seed
        table += "\n\n" + summary_table(summary, config.eval_k) + "\n\n" + split_table(summary)
    gaps = gap_fractions(rows) if seeds is not None else None
    if gaps:
        table += "\n\n" + gap_table(gaps)
    _write(out, rows, config, time.perf_counter() - t_total, per_prompt=per_prompt, summary=summary, gaps=gaps)
    plot_results(rows, histories, out, config.eval_k)
    return {"rows": rows, "table": table}


def _evaluate_dir(model_dir: str, held_out, eval_cfg) -> dict:
    import torch

    from llm.evaluate import evaluate
    from llm.model import load_model

    torch.set_num_threads(1)
    model, tok = load_model(model_dir)
    return evaluate(model, tok, held_out, eval_cfg, per_prompt=True)


def reevaluate(config: ExperimentConfig) -> dict:
    """Evaluate every model of a finished experiment in ``config.out`` again; rewrite its results."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from llm.evaluate import EvalConfig
    from llm.tasks import split_problems, task_config_of

    out = Path(config.out)
    try:
        payload = json.loads((out / "results.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValidationError(f"--reevaluate: no readable {out / 'results.json'} ({exc})") from None
    base_dir = Path(config.base_model) if config.base_model else out / "base"
    held_out = split_problems(task_config_of(base_dir))[1]
    eval_cfg = EvalConfig(k=config.eval_k, max_problems=config.eval_max_problems, seed=config.seed + 1)
    dirs = {}
    for row in payload["rows"]:
        name = row["algorithm"]
        path = base_dir if name == "base" else run_dir(out, name) / "final"
        if not (path / "config.json").is_file():
            raise ValidationError(f"--reevaluate: no model for row {name!r} at {path}")
        dirs[name] = str(path)
    with ProcessPoolExecutor(max_workers=config.n_workers(len(dirs)), mp_context=mp.get_context("spawn")) as pool:
        futures = {n: pool.submit(_evaluate_dir, d, held_out, eval_cfg) for n, d in dirs.items()}
        metrics = {n: f.result() for n, f in futures.items()}
    per_prompt = {n: m.pop("per_prompt") for n, m in metrics.items()}
    rows = []
    for old in payload["rows"]:
        new = {**old, **_row(old["algorithm"], metrics[old["algorithm"]], old["steps"], old["seconds"])}
        changed = sorted(k for k in old if k in new and k not in ("reevaluation_changed",) and old[k] != new[k])
        new["reevaluation_changed"] = {k: [old[k], new[k]] for k in changed}
        rows.append(new)
    from llm.model import atomic_write_text

    payload["rows"] = rows
    table = markdown_table(rows, config.eval_k)
    if "summary" in payload:  # a multi-seed run: its intervals from the new per-prompt answers
        import numpy as np

        from llm.intervals import gap_fractions, gap_table, seed_summary, split_table, summary_table

        payload["summary"] = seed_summary(rows, per_prompt, np.random.default_rng(config.seed))
        summary = payload["summary"]
        table += "\n\n" + summary_table(summary, config.eval_k) + "\n\n" + split_table(summary)
        if "gap_to_gt" in payload:
            payload["gap_to_gt"] = gap_fractions(rows)
            table += "\n\n" + gap_table(payload["gap_to_gt"])
    atomic_write_text(out / "per_prompt.json", json.dumps(per_prompt))
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    atomic_write_text(out / "results.md", table + "\n")
    return {"rows": rows, "table": table}


def _variant_job(
    config: ExperimentConfig, base_dir: Path, out: Path, name: str, overrides: dict, seed: int | None = None
) -> dict:
    """A picklable description of one algorithm's run (trained and evaluated by :func:`run_variant`);
    ``seed``: its training seed (default: the experiment's)."""
    folder = run_dir(out, name)
    train = dict(
        model=str(base_dir),
        out=str(folder),
        steps=config.steps,
        prompts_per_step=config.prompts_per_step,
        group_size=config.group_size,
        lr=config.lr,
        seed=config.seed if seed is None else seed,
        progress=config.progress,
        overwrite=True,  # the experiment decides reuse itself (``--resume`` + fingerprint); a rerun starts afresh
        **overrides,
    )
    return {"name": name, "train": train, "run_dir": str(folder)}


def _finished_pretraining(base_dir: Path, config: ExperimentConfig) -> float | None:
    """Seconds of an earlier, complete pretraining in ``base_dir`` with this config's steps and seed."""
    try:
        summary = json.loads((base_dir / "pretrain.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = summary["config"]["steps"] == config.pretrain_steps and summary["config"]["seed"] == config.seed
    overlap = summary["config"].get("task", {}).get("misconception_overlap", 0.0)
    same = same and overlap == config.misconception_overlap
    return float(summary["seconds"]) if same else None


def _fingerprint(job: dict, held_out, eval_cfg) -> dict:
    """What a finished row depends on: reused by ``--resume`` only when all of it is equal."""
    import hashlib

    train = {k: v for k, v in job["train"].items() if k not in ("progress", "overwrite")}
    digest = hashlib.sha256()
    for path in sorted(Path(job["train"]["model"]).glob("*.safetensors")):
        digest.update(path.read_bytes())
    fingerprint = {
        "train": train,
        "eval": dataclasses.asdict(eval_cfg),
        "held_out": [p.problem_id for p in held_out],
        "base_weights_sha256": digest.hexdigest(),
    }
    return json.loads(json.dumps(fingerprint))  # as row.json stores it (tuples become lists)


def _load_finished(job: dict) -> dict | None:
    path = Path(job["run_dir"]) / "row.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def run_variant(job: dict, held_out, eval_cfg) -> dict:
    """Train one algorithm from the base checkpoint, evaluate it on ``held_out``; ``{"row", "history"}``.

    The result is also written to ``RUN_DIR/row.json`` (atomically) so that ``--resume`` can reuse it.
    """
    from llm.evaluate import evaluate
    from llm.model import atomic_write_text
    from llm.trainer import TrainConfig, train

    result = train(TrainConfig(**job["train"]))
    if result["interrupted"]:
        raise KeyboardInterrupt
    metrics = evaluate(result["model"], result["tokenizer"], held_out, eval_cfg, per_prompt=True)
    per_prompt = metrics.pop("per_prompt")
    row = _row(job["name"], metrics, result["steps"], result["seconds"])
    variant, seed = split_row_name(job["name"])
    if seed is not None:
        row.update(variant=variant, train_seed=seed)
    tail = result["history"][-5:]
    for key in ("constraint_value", "multiplier", "train_accuracy", "pseudo_label_accuracy"):
        if tail and key in tail[-1]:
            row[f"train_{key}_last5" if not key.startswith("train") else f"{key}_last5"] = float(
                sum(h[key] for h in tail) / len(tail)
            )
    payload = {
        "row": row,
        "history": result["history"],
        "fingerprint": _fingerprint(job, held_out, eval_cfg),
        "per_prompt": per_prompt,
    }
    atomic_write_text(Path(job["run_dir"]) / "row.json", json.dumps(payload, indent=2))
    return payload


def _worker(job: dict, held_out, eval_cfg) -> dict:
    import torch

    torch.set_num_threads(1)
    return run_variant(job, held_out, eval_cfg)


def _run_parallel(jobs: list[dict], held_out, eval_cfg, workers: int, finished, progress: bool) -> None:
    """Run ``jobs`` in ``workers`` spawned processes (per-step bars off; one bar over the algorithms)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    jobs = [{**j, "train": {**j["train"], "progress": False}} for j in jobs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_worker, job, held_out, eval_cfg): job["name"] for job in jobs}
        bar = tqdm(total=len(jobs), desc=f"algorithms ({workers} workers)", disable=not progress)
        try:
            for future in as_completed(futures):
                result = future.result()
                finished(result)
                r = result["row"]
                bar.set_postfix_str(f"{r['algorithm']}: mean acc {r['mean_accuracy']:.3f}")
                bar.update(1)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
        finally:
            bar.close()


def _write(
    out: Path, rows: list[dict], config: ExperimentConfig, seconds: float, per_prompt: dict | None = None,
    summary: list[dict] | None = None, gaps: list[dict] | None = None,
) -> None:
    from llm.model import atomic_write_text

    payload = {"config": dataclasses.asdict(config), "total_seconds": seconds, "rows": rows}
    table = markdown_table(rows, config.eval_k)
    if summary is not None:  # multi-seed run (issue 15): intervals over seeds and held-out problems
        from llm.intervals import split_table, summary_table

        payload["summary"] = summary
        table += "\n\n" + summary_table(summary, config.eval_k) + "\n\n" + split_table(summary)
    if gaps:
        from llm.intervals import gap_table

        payload["gap_to_gt"] = gaps
        table += "\n\n" + gap_table(gaps)
    if per_prompt is not None:  # every row's per-prompt answers (issue 15), beside results.json
        atomic_write_text(out / "per_prompt.json", json.dumps(per_prompt))
    atomic_write_text(out / "results.json", json.dumps(payload, indent=2))
    atomic_write_text(out / "results.md", table + "\n")
