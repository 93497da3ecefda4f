"""The misreading-overlap sweep (issue 15 §2): held-out accuracy per algorithm vs how much the views'
misreadings overlap (``ArithmeticTaskConfig.misconception_overlap``), from one experiment folder per level.

Each level has its own base model (pretrained on traces with that overlap) and one training seed; the
intervals are percentile bootstraps over held-out problems (:func:`llm.intervals.bootstrap_problems`), and the
*consensus advantage* (consensus minus single-view sharpening, and minus TTRL) is bootstrapped paired, on the
per-prompt differences, since both rows are evaluated on the same prompts. Theory (T4): the consensus can only
correct what the views disagree on, so the advantage should shrink to 0 as the overlap goes to 1.

``python -m llm.overlap_sweep --level 0=/work/runs15/main --level 0.5=DIR --level 1=DIR --out results/x``
writes ``x.json`` and ``x.md``. A multi-seed folder (the main run) contributes its ``--seed`` rows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dagsim.errors import DagsimError, ValidationError
from llm.experiment import split_row_name
from llm.intervals import bootstrap_problems, per_prompt_metrics, problem_index

ALGORITHMS = ("base", "gt-grpo", "ttrl", "coherence-grpo[single-view]", "coherence-grpo[arithmetic]",
              "coherence-grpo[geometric]")
CONSENSUS = ("coherence-grpo[arithmetic]", "coherence-grpo[geometric]")
#: Label-free single-view rows the consensus is compared with (paired differences).
REFERENCES = ("coherence-grpo[single-view]", "ttrl")
METRICS = ("mean_accuracy", "maj_at_k")


def level_rows(folder: Path, seed: int = 0) -> tuple[dict[str, dict], dict[str, list[dict]], dict]:
    """``(rows, per_prompt, task)`` of one experiment folder, keyed by algorithm (a multi-seed run's rows of
    training seed ``seed``, renamed to the algorithm)."""
    try:
        payload = json.loads((folder / "results.json").read_text())
        per_prompt = json.loads((folder / "per_prompt.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"overlap sweep: {folder} has no readable results.json/per_prompt.json ({exc})") from None
    rows, records = {}, {}
    for row in payload["rows"]:
        name, s = split_row_name(row["algorithm"])
        if s is None or s == seed:
            rows[name] = row
            records[name] = per_prompt.get(row["algorithm"])
    base = Path(payload["config"]["base_model"] or folder / "base")
    task = json.loads((base / "task.json").read_text()) if (base / "task.json").is_file() else {}
    return rows, records, task


def misread_rates(records: list[dict], task: dict) -> list[dict]:
    """How often each view samples the *formula* misreading of a problem's kind, split by whether the task makes
    that view misread that problem: per (view, kind, misread) the mean over held-out prompts of the fraction of
    samples equal to that kind's misread answer. It shows whether a model learned the per-problem choice of
    :func:`llm.tasks.misreading_views` or only a per-kind rate (which a random subset of problems leaves it)."""
    from dataclasses import replace

    from llm.tasks import KINDS, ArithmeticTaskConfig, all_problems, misconception, misconception_answer

    problems = {p.problem_id: p for p in all_problems(ArithmeticTaskConfig(**task))}
    groups: dict[tuple[int, str, bool], list[float]] = {}
    for r in records:
        p, v = problems.get(r["problem_id"]), r["view"]
        if p is None:  # not a problem of this task (e.g. user data): no misreading to count
            continue
        formula = misconception_answer(replace(p, misread_views=(v,)), v)  # the kind's misreading, seen by v
        if formula is None or p.kind not in KINDS[:2]:
            continue
        key = (v, p.kind, misconception(p, v) is not None)
        groups.setdefault(key, []).append(float(np.mean([a == formula for a in r["answers"]])))
    return [{"view": v, "kind": k, "misread_by_task": m, "n_prompts": len(x), "misread_answer_rate": float(np.mean(x))}
            for (v, k, m), x in sorted(groups.items())]


def sweep(levels: dict[float, Path], seed: int = 0, rng_seed: int = 0, n_resamples: int = 2000) -> dict:
    """Per level and algorithm: the metrics, misread/other-prompt accuracy and bootstrap intervals; per level the
    paired bootstrap of each consensus row minus each reference row (mean accuracy)."""
    out = {"levels": [], "seed": seed, "bootstrap_seed": rng_seed, "n_resamples": n_resamples}
    for level in sorted(levels):
        rng = np.random.default_rng(rng_seed)
        rows, records, task = level_rows(Path(levels[level]), seed)
        if float(task.get("misconception_overlap", 0.0)) != level:
            raise ValidationError(f"overlap sweep: {levels[level]} was pretrained with misconception_overlap "
                                  f"{task.get('misconception_overlap', 0.0)}, not {level}")
        missing = [a for a in ALGORITHMS if a not in rows or records.get(a) is None]
        if missing:
            raise ValidationError(f"overlap sweep: {levels[level]} lacks rows (or per-prompt answers) {missing}")
        index = problem_index([p["problem_id"] for p in records["base"]])
        values = {a: per_prompt_metrics(records[a]) for a in ALGORITHMS}
        entry = {"overlap": level, "folder": str(levels[level]), "misread_prompts": rows["base"].get("misread_prompts"),
                 "n_prompts": len(records["base"]), "rows": {}, "advantage": {}}
        for a in ALGORITHMS:
            r = rows[a]
            item = {k: r[k] for k in ("mean_accuracy", "maj_at_k", "pass_at_k", "answer_entropy",
                                      "mean_accuracy_misread_prompts", "mean_accuracy_other_prompts",
                                      "misread_answer_rate", "cross_view_agreement") if k in r}
            for m in METRICS:
                b = bootstrap_problems(values[a][m], index, rng, n_resamples)
                item[f"{m}_bootstrap"] = [b["low"], b["high"]]
            entry["rows"][a] = item
        for c in CONSENSUS:
            for ref in REFERENCES:
                diff = values[c]["mean_accuracy"] - values[ref]["mean_accuracy"]  # (n_prompts,) paired
                b = bootstrap_problems(diff, index, rng, n_resamples)
                entry["advantage"][f"{c} - {ref}"] = {"mean_accuracy": b["estimate"],
                                                      "bootstrap": [b["low"], b["high"]]}
        entry["base_misread_rates"] = misread_rates(records["base"], task)
        out["levels"].append(entry)
    return out


def markdown(data: dict) -> str:
    """Two tables: mean accuracy [bootstrap 95 %] per algorithm and level; the consensus advantages."""
    levels = data["levels"]
    lines = ["| algorithm | " + " | ".join(f"overlap {e['overlap']:g}" for e in levels) + " |",
             "|---|" + "---:|" * len(levels)]
    for a in ALGORITHMS:
        cells = []
        for e in levels:
            r = e["rows"][a]
            lo, hi = r["mean_accuracy_bootstrap"]
            cells.append(f"{r['mean_accuracy']:.3f} [{lo:.3f}, {hi:.3f}]")
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "| mean-accuracy difference (paired) | " + " | ".join(f"overlap {e['overlap']:g}" for e in levels)
              + " |", "|---|" + "---:|" * len(levels)]
    for key in levels[0]["advantage"]:
        cells = []
        for e in levels:
            d = e["advantage"][key]
            cells.append(f"{d['mean_accuracy']:+.3f} [{d['bootstrap'][0]:+.3f}, {d['bootstrap'][1]:+.3f}]")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    head = " | ".join(f"overlap {e['overlap']:g}" for e in levels)
    lines += ["", f"| misread-prompt / other-prompt mean acc | {head} |", "|---|" + "---:|" * len(levels)]
    for a in ALGORITHMS:
        cells = [f"{e['rows'][a].get('mean_accuracy_misread_prompts', float('nan')):.3f} / "
                 f"{e['rows'][a].get('mean_accuracy_other_prompts', float('nan')):.3f}" for e in levels]
        lines.append(f"| {a} | " + " | ".join(cells) + " |")
    lines += ["", "| base model: samples equal to the kind's misreading (view, kind, task misreads it?) | "
              + " | ".join(f"overlap {e['overlap']:g}" for e in levels) + " |", "|---|" + "---:|" * len(levels)]
    keys = sorted({(r["view"], r["kind"], r["misread_by_task"]) for e in levels for r in e["base_misread_rates"]})
    for v, k, m in keys:
        cells = []
        for e in levels:
            hit = [r for r in e["base_misread_rates"] if (r["view"], r["kind"], r["misread_by_task"]) == (v, k, m)]
            cells.append(f"{hit[0]['misread_answer_rate']:.3f} ({hit[0]['n_prompts']})" if hit else "–")
        lines.append(f"| view {v}, {k}, {'misread' if m else 'not misread'} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Misread prompts per level: " + ", ".join(
        f"{e['overlap']:g}: {e['misread_prompts']} of {e['n_prompts']}" for e in levels) + ".")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm.overlap_sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--level", action="append", required=True, help="OVERLAP=EXPERIMENT_DIR (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of a multi-seed folder's rows (default: 0)")
    parser.add_argument("--out", required=True, help="output path without extension (.json and .md are written)")
    args = parser.parse_args(argv)
    try:
        levels = {}
        for item in args.level:
            level, sep, folder = item.partition("=")
            try:
                levels[float(level)] = Path(folder)
            except ValueError:
                raise ValidationError(f"--level {item!r}: expected OVERLAP=DIR") from None
            if not sep:
                raise ValidationError(f"--level {item!r}: expected OVERLAP=DIR")
        data = sweep(levels, seed=args.seed)
        from llm.model import atomic_write_text

        atomic_write_text(Path(args.out + ".json"), json.dumps(data, indent=1))
        atomic_write_text(Path(args.out + ".md"), markdown(data) + "\n")
    except DagsimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
