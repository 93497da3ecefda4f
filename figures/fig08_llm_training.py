"""Figure 8 — real fine-tuning of a tiny transformer on the embedded arithmetic task: held-out mean
accuracy, maj@k and pass@k of every algorithm, and the training curves (accuracy of the sampled
completions and the group's answer entropy per step), where a self-reward that collapses shows up as
entropy falling without accuracy rising.

Data: by default the committed ``results/llm_experiment_seeds.json`` (the main rows of the full experiment
over 3 training seeds, issue 15: bars are the means over seeds, error bars the 95 % t-intervals over seeds)
and ``results/llm_training_curves_seeds.json`` (the per-step curves of the same runs, averaged over seeds);
without the seeds file, ``results/llm_experiment.json`` (one seed, every algorithm) and
``results/llm_training_curves.json``. Without curves the right panels show each run's last-5-step training
accuracy and held-out answer entropy instead. An experiment folder
instead -- ``experiment=`` (the demo's), ``$ALFT_LLM_EXPERIMENT``, or ``rerun=True`` (``dagsim figures
--rerun-llm``: ``runs/llm/experiment``, run there first with ``dagsim llm experiment [--quick]`` when it
holds no ``results.json``) -- reads the table and each run's ``metrics.jsonl`` from that folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from dagsim.errors import DomainError
from figures.common import color, save, style

NAME = "fig08_llm_training"
DEFAULT_EXPERIMENT = "runs/llm/experiment"
#: The committed outcome of ``dagsim llm experiment`` (full configuration): the default source.
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results" / "llm_experiment.json"
#: Per-step curves of the runs of :data:`RESULTS` (each run's metrics.jsonl).
CURVES = REPO / "results" / "llm_training_curves.json"
#: The multi-seed experiment (``--seeds 0,1,2``, issue 15) and its seed-mean curves: the default when present.
RESULTS_SEEDS = REPO / "results" / "llm_experiment_seeds.json"
CURVES_SEEDS = REPO / "results" / "llm_training_curves_seeds.json"
#: Metrics drawn with error bars (the 95 % t half-width over seeds, ``<metric>_ci95``).
ERROR_METRICS = ("mean_accuracy", "maj_at_k", "pass_at_k", "answer_entropy")


def seed_rows(payload: dict) -> list[dict]:
    """One row per algorithm of a multi-seed results payload (its ``summary``): the mean over seeds of each
    metric, ``<metric>_ci95`` (t half-width over seeds, 0 with one seed) and ``<metric>_bootstrap`` (the
    problem-bootstrap interval of the seed-mean), ``n_seeds``, and the seed-mean of the rows' other numbers."""
    by_name = {r["algorithm"]: r for r in payload["rows"]}
    rows = []
    for entry in payload["summary"]:
        group = [by_name[n] for n in entry["rows"]]
        row = {"algorithm": entry["algorithm"], "n_seeds": len(group)}
        for key in ("greedy_accuracy", "steps", "train_accuracy_last5"):
            if all(key in r for r in group):
                row[key] = float(np.mean([r[key] for r in group]))
        for m, item in entry["metrics"].items():
            row[m] = item["seeds"]["mean"]
            row[f"{m}_ci95"] = item["seeds"]["half_width"] or 0.0
            if "bootstrap" in item:
                row[f"{m}_bootstrap"] = [item["bootstrap"]["low"], item["bootstrap"]["high"]]
        rows.append(row)
    return rows


def seed_mean_curves(exp: Path, payload: dict) -> dict:
    """Per algorithm of a multi-seed experiment folder: each step's mean over seeds of the runs' metrics.jsonl
    (training accuracy, group answer entropy); algorithms with a missing curve are left out."""
    curves = {}
    for entry in payload["summary"]:
        hists = []
        for name in entry["rows"]:
            path = _run_dir(exp, name) / "metrics.jsonl"
            if name == "base" or not path.is_file():
                break
            hists.append([json.loads(line) for line in path.read_text().splitlines() if line.strip()])
        else:
            if hists and len({len(h) for h in hists}) == 1:
                curves[entry["algorithm"]] = {
                    "step": [h["step"] for h in hists[0]],
                    "train_accuracy": np.mean([[h.get("train_accuracy", np.nan) for h in x] for x in hists],
                                              axis=0).tolist(),
                    "answer_entropy": np.mean([[h["answer_entropy"] for h in x] for x in hists], axis=0).tolist(),
                    "n_seeds": len(hists),
                }
    return curves


def _run_dir(exp: Path, name: str) -> Path:
    from llm.experiment import run_dir

    return run_dir(exp, name)


def _from_results(path: Path) -> dict:
    if path == RESULTS and RESULTS_SEEDS.is_file():
        return _from_seed_results(RESULTS_SEEDS)
    if not path.is_file():
        raise DomainError(f"figure 8: {path} not found (a source checkout has it; or pass --rerun-llm to draw "
                          "it from `dagsim llm experiment`)")
    try:
        payload = json.loads(path.read_text())
        rows = payload["rows"]
    except (ValueError, KeyError) as exc:
        raise DomainError(f"figure 8: {path} is not an experiment result ({exc})") from None
    k = payload.get("config", {}).get("eval_k", 8)
    curves = {}
    if CURVES.is_file():
        try:
            saved = json.loads(CURVES.read_text())["curves"]
        except (ValueError, KeyError) as exc:
            raise DomainError(f"figure 8: {CURVES} is not a curves file ({exc})") from None
        names = {r["algorithm"] for r in rows}
        curves = {name: c for name, c in saved.items() if name in names}
    return {"experiment": _shown(path), "curves_source": _shown(CURVES) if curves else None, "k": k,
            "rows": rows, "curves": curves}


def _from_seed_results(path: Path) -> dict:
    try:
        payload = json.loads(path.read_text())
        rows = seed_rows(payload)
    except (ValueError, KeyError) as exc:
        raise DomainError(f"figure 8: {path} is not a multi-seed experiment result ({exc})") from None
    curves = {}
    if CURVES_SEEDS.is_file():
        try:
            saved = json.loads(CURVES_SEEDS.read_text())["curves"]
        except (ValueError, KeyError) as exc:
            raise DomainError(f"figure 8: {CURVES_SEEDS} is not a curves file ({exc})") from None
        curves = {r["algorithm"]: saved[r["algorithm"]] for r in rows if r["algorithm"] in saved}
    return {"experiment": _shown(path), "curves_source": _shown(CURVES_SEEDS) if curves else None,
            "k": payload.get("config", {}).get("eval_k", 8), "rows": rows, "curves": curves,
            "seeds": payload.get("config", {}).get("seeds", "")}


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (the JSON does not record a checkout's location)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _rerun(exp: Path, quick: bool, seed: int) -> None:
    from llm.experiment import ExperimentConfig, run_experiment

    print(f"    no {exp / 'results.json'}: running `dagsim llm experiment{' --quick' if quick else ''}` there",
          flush=True)
    run_experiment(ExperimentConfig(out=str(exp), quick=quick, seed=seed, progress=False))


def compute(quick: bool = False, seed: int = 0, experiment: str | os.PathLike | None = None,
            rerun: bool = False) -> dict:
    folder = experiment or os.environ.get("ALFT_LLM_EXPERIMENT") or (DEFAULT_EXPERIMENT if rerun else None)
    if folder is None:
        return _from_results(RESULTS)
    exp = Path(folder)
    results = exp / "results.json"
    if rerun and not results.is_file():
        _rerun(exp, quick, seed)
    if not results.is_file():
        raise DomainError(f"figure 8 needs an LLM experiment: {results} not found "
                          "(run `dagsim llm experiment --out runs/llm/experiment` first)")
    payload = json.loads(results.read_text())
    if "summary" in payload:  # a multi-seed experiment folder: one bar per algorithm, with error bars
        return {"experiment": str(exp), "k": payload.get("config", {}).get("eval_k", 8),
                "rows": seed_rows(payload), "curves": seed_mean_curves(exp, payload),
                "seeds": payload.get("config", {}).get("seeds", "")}
    rows = payload["rows"]
    curves = {}
    for row in rows:
        if row["algorithm"] == "base":
            continue
        metrics = _run_dir(exp, row["algorithm"]) / "metrics.jsonl"
        if metrics.is_file():
            hist = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            curves[row["algorithm"]] = {
                "step": [h["step"] for h in hist],
                "train_accuracy": [h.get("train_accuracy", float("nan")) for h in hist],
                "answer_entropy": [h["answer_entropy"] for h in hist],
            }
    k = payload.get("config", {}).get("eval_k", 8)
    return {"experiment": str(exp), "k": k, "rows": rows, "curves": curves}


def _base_color(name: str, i: int) -> str:
    key = name.split("[")[0]
    if key == "coherence-grpo" and "single" not in name:
        key = "coherence-grpo (consensus)"
    return color(key, i)


def _smooth(y, w: int = 5):
    y = np.asarray(y, dtype=float)
    if y.size < w:
        return y
    return np.convolve(y, np.ones(w) / w, mode="valid")


def plot(data: dict):
    import matplotlib.pyplot as plt

    style()
    rows, k = data["rows"], data["k"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), gridspec_kw={"width_ratios": [1.5, 1, 1]})
    ax = axes[0]
    names = [r["algorithm"] for r in rows]
    x = np.arange(len(rows))
    for i, (key, label, hatch) in enumerate((("mean_accuracy", "mean sampled acc", ""),
                                              ("maj_at_k", f"maj@{k}", "//"), ("pass_at_k", f"pass@{k}", ".."))):
        errors = [r[f"{key}_ci95"] for r in rows] if all(f"{key}_ci95" in r for r in rows) else None
        ax.bar(x + (i - 1) * 0.27, [r[key] for r in rows], width=0.27, label=label, hatch=hatch,
               color=[_base_color(n, j) for j, n in enumerate(names)], alpha=[1.0, 0.6, 0.35][i],
               edgecolor="white", yerr=errors, error_kw={"elinewidth": 1, "capsize": 2, "ecolor": "black"})
    base = next(r for r in rows if r["algorithm"] == "base")
    ax.axhline(base["mean_accuracy"], color="grey", ls="--", lw=1, label="base mean acc")
    ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
    ax.set_ylim(0, 1.05)
    n_seeds = max((r.get("n_seeds", 1) for r in rows), default=1)
    ax.set_ylabel(f"held-out accuracy ({len(rows)} models)" if n_seeds == 1 else
                  f"held-out accuracy, mean of {n_seeds} seeds ± 95 % t-interval")
    best = max((r for r in rows if r["algorithm"] != "base"), key=lambda r: r["mean_accuracy"], default=base)
    ax.set_title(f"Held-out: base {base['mean_accuracy']:.2f} → up to {best['mean_accuracy']:.2f} mean accuracy")
    ax.legend(fontsize=7, loc="lower right")
    if not data["curves"]:
        _plot_summaries(axes[1], axes[2], rows, base)
        _suptitle(fig)
        fig.tight_layout(rect=(0, 0, 1, 0.94))
        return fig
    for i, (name, c) in enumerate(data["curves"].items()):
        col = _base_color(name, i)
        ls = "-" if "[" not in name or "single" in name else "--"
        s = np.asarray(c["step"], float)
        acc, ent = _smooth(c["train_accuracy"]), _smooth(c["answer_entropy"])
        axes[1].plot(s[len(s) - len(acc):], acc, color=col, ls=ls, lw=1.5, label=name)
        axes[2].plot(s[len(s) - len(ent):], ent, color=col, ls=ls, lw=1.5, label=name)
    axes[1].set_xlabel("GRPO step")
    axes[1].set_ylabel("sampled accuracy, training prompts")
    axes[1].set_title("Training accuracy (5-step moving average)")
    axes[2].set_xlabel("GRPO step")
    axes[2].set_ylabel("answer entropy of a group, nats")
    axes[2].set_title("Answer entropy: self-rewards sharpen the answer distribution")
    axes[2].legend(fontsize=6, ncol=1, loc="upper right")
    _suptitle(fig)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def _suptitle(fig) -> None:
    fig.suptitle("Fine-tuning a 0.9M-parameter language model with answer-level rewards, with and without "
                 "labels (GRPO-family algorithms, docs/theory.md §6; consensus targets E5)", fontsize=10)


def _plot_summaries(ax_acc, ax_ent, rows, base) -> None:
    """Without per-step curves (results/ holds the table only): last-5-step training accuracy and the
    held-out answer entropy per algorithm."""
    trained = [r for r in rows if r["algorithm"] != "base"]
    names = [r["algorithm"] for r in trained]
    x = np.arange(len(trained))
    cols = [_base_color(n, j) for j, n in enumerate(names)]
    acc = [r.get("train_accuracy_last5", np.nan) for r in trained]
    ax_acc.bar(x, acc, color=cols, edgecolor="white")
    ax_acc.axhline(base["mean_accuracy"], color="grey", ls="--", lw=1, label="base held-out mean acc")
    ax_acc.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
    ax_acc.set_ylim(0, 1.05)
    ax_acc.set_ylabel("sampled accuracy, training prompts")
    ax_acc.set_title("Training accuracy, last 5 GRPO steps")
    ax_acc.legend(fontsize=7, loc="lower right")
    ax_ent.bar(x, [r["answer_entropy"] for r in trained], color=cols, edgecolor="white",
               yerr=[r["answer_entropy_ci95"] for r in trained] if all("answer_entropy_ci95" in r for r in trained)
               else None)
    ax_ent.axhline(base["answer_entropy"], color="grey", ls="--", lw=1, label="base model")
    ax_ent.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
    ax_ent.set_ylabel("answer entropy per held-out prompt, nats")
    ax_ent.set_title("Self-rewards sharpen the answer distribution")
    ax_ent.legend(fontsize=7, loc="upper right")


def make(out_dir, quick: bool = False, seed: int = 0, experiment: str | os.PathLike | None = None,
         rerun: bool = False) -> dict:
    data = compute(quick, seed, experiment, rerun)
    return save(plot(data), out_dir, NAME, data)


def write_seed_curves(exp: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write the seed-mean curves of the multi-seed experiment folder ``exp`` (:func:`seed_mean_curves`) to
    ``out`` (the committed ``results/llm_training_curves_seeds.json``), atomically."""
    exp = Path(exp)
    payload = json.loads((exp / "results.json").read_text())
    curves = seed_mean_curves(exp, payload)
    data = {"about": "Per-step training curves of the multi-seed experiment results/llm_experiment_seeds.json: "
            "per algorithm, each step's mean over its seeds of the runs' metrics.jsonl (sampled accuracy on the "
            "training prompts, answer entropy of a group); written by `python -m figures.fig08_llm_training "
            "--seed-curves EXPERIMENT_DIR OUT`.", "experiment": "results/llm_experiment_seeds.json",
            "curves": curves}
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, out)
    return data


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 4 and sys.argv[1] == "--seed-curves":
        print(sorted(write_seed_curves(sys.argv[2], sys.argv[3])["curves"]))
    else:
        print(make(sys.argv[1] if len(sys.argv) > 1 else "figures/out"))
