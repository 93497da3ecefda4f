"""Error bars of the LLM experiment (issue 15 §1): intervals over training seeds and over held-out problems.

Two sources of variation, reported separately:

- **over seeds** (training randomness: sampled groups, dropout-free but seeded optimisation order): the
  Student-t interval of the mean over the n seeds, ``mean ± t_{0.975, n-1} · s / sqrt(n)`` with ``s`` the
  sample standard deviation (ddof = 1) -- :func:`t_interval`;
- **over held-out problems** (which problems happen to be held out): a percentile bootstrap that resamples
  *problems* with replacement, each drawn problem bringing all its views, since the views of one problem
  are correlated -- :func:`bootstrap_problems`. The same resampled problems are used for every seed of a
  row, so the bootstrap of the seed-mean is paired across seeds.

The per-prompt values come from :func:`llm.evaluate.per_prompt_records` (k sampled answers per prompt);
:func:`per_prompt_metrics` recomputes mean accuracy, maj@k, pass@k and answer entropy per prompt with the
same functions :func:`llm.evaluate.answer_metrics` uses, so their means equal the row's metrics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dagsim.errors import ValidationError

#: Metrics that get intervals (row keys of the experiment).
INTERVAL_METRICS = ("mean_accuracy", "maj_at_k", "pass_at_k", "answer_entropy")
#: Row keys summarised over seeds only (t-interval, no bootstrap): the misread / other prompt split.
SEED_ONLY_METRICS = ("mean_accuracy_misread_prompts", "mean_accuracy_other_prompts", "misread_answer_rate")
CONFIDENCE = 0.95
#: Bootstrap resamples: the percentile end points move by < 0.002 between bootstrap seeds at 2000 on the
#: experiment's 108 problems (Monte-Carlo error of a 2.5 % quantile).
N_BOOTSTRAP = 2000


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> dict:
    """Mean and Student-t half-width over independent replicates (seeds): ``mean ± t_{(1+c)/2, n-1} s/√n``.

    ``s``: sample standard deviation (ddof 1). With one value the half-width is None (no interval)."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)  # (n_seeds,)
    if x.ndim != 1 or x.size == 0 or not np.all(np.isfinite(x)):
        raise ValidationError(f"t_interval needs a non-empty list of finite values, got {list(values)}")
    mean = float(x.mean())
    if x.size == 1:
        return {"mean": mean, "half_width": None, "low": None, "high": None, "n": 1, "sd": None}
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1) * sd / np.sqrt(x.size))
    return {"mean": mean, "half_width": half, "low": mean - half, "high": mean + half, "n": int(x.size), "sd": sd}


def problem_index(problem_ids: Sequence[str]) -> np.ndarray:
    """``(n_prompts,)`` integer index of each prompt's problem (first-seen order)."""
    seen: dict[str, int] = {}
    return np.array([seen.setdefault(p, len(seen)) for p in problem_ids], dtype=np.int64)


def bootstrap_problems(
    values: np.ndarray,
    problems: np.ndarray,
    rng: np.random.Generator,
    n_resamples: int = N_BOOTSTRAP,
    confidence: float = CONFIDENCE,
) -> dict:
    """Percentile bootstrap over problems of the mean over prompts (and over the rows of ``values``).

    ``values``: ``(n_prompts,)`` one replicate, or ``(n_seeds, n_prompts)`` several evaluated on the same
    prompts (the statistic is then the mean over seeds and prompts, the same problems drawn for every
    seed). ``problems``: ``(n_prompts,)`` problem index of each prompt (:func:`problem_index`). A resample
    draws as many problems as there are, with replacement; each brings all its prompts."""
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))  # (n_seeds, n_prompts)
    problems = np.asarray(problems)
    if v.shape[1] != problems.shape[0] or not np.all(np.isfinite(v)):
        raise ValidationError(f"bootstrap_problems: values {v.shape} and problems {problems.shape} disagree "
                              "or values are not finite")
    if n_resamples < 1:
        raise ValidationError(f"bootstrap_problems: n_resamples must be >= 1, got {n_resamples}")
    n_problems = int(problems.max()) + 1
    sums = np.zeros((v.shape[0], n_problems))  # (n_seeds, n_problems) sum over each problem's prompts
    np.add.at(sums.T, problems, v.T)
    sizes = np.bincount(problems, minlength=n_problems).astype(np.float64)  # (n_problems,)
    draws = rng.integers(n_problems, size=(n_resamples, n_problems))  # (B, n_problems)
    counts = np.zeros((n_resamples, n_problems))  # (B, n_problems) times each problem is drawn
    np.add.at(counts, (np.arange(n_resamples)[:, None], draws), 1.0)
    stat = (counts @ sums.T).mean(axis=1) / (counts @ sizes)  # (B,) mean over seeds of the prompt mean
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stat, [alpha, 1 - alpha])
    return {"estimate": float(v.mean()), "low": float(low), "high": float(high), "n_resamples": n_resamples,
            "n_problems": n_problems}


def per_prompt_metrics(records: Sequence[dict]) -> dict[str, np.ndarray]:
    """``{metric: (n_prompts,)}`` per-prompt mean accuracy, maj@k, pass@k and answer entropy from
    :func:`llm.evaluate.per_prompt_records` (the functions of :func:`llm.evaluate.answer_metrics`)."""
    from llm.evaluate import empirical_entropy, plurality_correct

    acc = np.array([np.mean([a == r["truth"] for a in r["answers"]]) for r in records])  # (n_prompts,)
    return {
        "mean_accuracy": acc,
        "maj_at_k": np.array([plurality_correct(r["answers"], r["truth"]) for r in records]),
        "pass_at_k": np.array([float(any(a == r["truth"] for a in r["answers"])) for r in records]),
        "answer_entropy": np.array([empirical_entropy(r["answers"]) for r in records]),
    }


def seed_summary(
    rows: Sequence[dict],
    per_prompt: dict[str, list[dict] | None],
    rng: np.random.Generator,
    metrics: Sequence[str] = INTERVAL_METRICS,
    n_resamples: int = N_BOOTSTRAP,
) -> list[dict]:
    """One summary per algorithm over its seed rows (``variant``/``train_seed`` keys; rows without them,
    e.g. the base model, are single-replicate algorithms of their own).

    Per metric: ``per_seed`` values, ``seeds`` (t_interval over seeds: mean, half_width, low, high, sd, n),
    ``bootstrap_per_seed`` (problem bootstrap of each seed: low, high) and ``bootstrap`` (problem bootstrap of
    the seed-mean, paired over seeds); the :data:`SEED_ONLY_METRICS` get ``per_seed`` and ``seeds`` only.
    Rows whose per-prompt records are missing get no bootstrap. The
    per-prompt recomputation must reproduce each row's metric (checked: a mismatch is an error)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row.get("variant", row["algorithm"]), []).append(row)
    out = []
    for name, group in groups.items():
        group = sorted(group, key=lambda r: r.get("train_seed", -1))
        entry: dict = {"algorithm": name, "seeds": [r.get("train_seed") for r in group], "rows":
                       [r["algorithm"] for r in group], "metrics": {}}
        records = [per_prompt.get(r["algorithm"]) for r in group]
        have = all(rec is not None for rec in records)
        if have:
            ids = [[p["problem_id"] for p in rec] for rec in records]
            if any(i != ids[0] for i in ids):
                raise ValidationError(f"seed_summary: the seeds of {name} were evaluated on different prompts")
            index = problem_index(ids[0])
            values = [per_prompt_metrics(rec) for rec in records]
        for m in metrics:
            per_seed = [float(r[m]) for r in group]
            item = {"per_seed": per_seed, "seeds": t_interval(per_seed)}
            if have:
                stacked = np.stack([v[m] for v in values])  # (n_seeds, n_prompts)
                for r, row_values in zip(group, stacked, strict=True):
                    if not np.isclose(row_values.mean(), r[m], rtol=0, atol=1e-9):
                        raise ValidationError(f"seed_summary: per-prompt {m} of {r['algorithm']} does not "
                                              f"reproduce its row ({row_values.mean()} vs {r[m]})")
                item["bootstrap_per_seed"] = [
                    {k: b[k] for k in ("low", "high")}
                    for b in (bootstrap_problems(s, index, rng, n_resamples) for s in stacked)
                ]
                item["bootstrap"] = bootstrap_problems(stacked, index, rng, n_resamples)
            entry["metrics"][m] = item
        for m in SEED_ONLY_METRICS:
            if all(m in r for r in group):
                per_seed = [float(r[m]) for r in group]
                entry["metrics"][m] = {"per_seed": per_seed, "seeds": t_interval(per_seed)}
        out.append(entry)
    return out


def interval_cell(item: dict, digits: int = 3) -> str:
    """``"0.782 ± 0.012"`` (mean ± t half-width over seeds), or the bare mean with a single seed."""
    s = item["seeds"]
    if s["half_width"] is None:
        return f"{s['mean']:.{digits}f}"
    return f"{s['mean']:.{digits}f} ± {s['half_width']:.{digits}f}"


def summary_table(summary: Sequence[dict], k: int) -> str:
    """Markdown: per algorithm, mean ± 95 % t-interval over seeds, and the problem-bootstrap 95 % interval
    of the seed-mean, for mean accuracy, maj@k, pass@k and answer entropy."""
    labels = {"mean_accuracy": "mean acc", "maj_at_k": f"maj@{k}", "pass_at_k": f"pass@{k}",
              "answer_entropy": "answer entropy"}
    head = "| algorithm | seeds | " + " | ".join(labels[m] for m in INTERVAL_METRICS) + " | " + " | ".join(
        f"{labels[m]} bootstrap" for m in INTERVAL_METRICS) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(INTERVAL_METRICS))]
    for e in summary:
        cells = [interval_cell(e["metrics"][m]) for m in INTERVAL_METRICS]
        boots = []
        for m in INTERVAL_METRICS:
            b = e["metrics"][m].get("bootstrap")
            boots.append(f"[{b['low']:.3f}, {b['high']:.3f}]" if b else "–")
        n = len(e["rows"])
        lines.append(f"| {e['algorithm']} | {n} | " + " | ".join(cells) + " | " + " | ".join(boots) + " |")
    return "\n".join(lines)


def gap_fractions(rows: Sequence[dict], reference: str = "gt-grpo", metric: str = "mean_accuracy") -> list[dict]:
    """Per label-free algorithm of a multi-seed run: the fraction of the gap to ``reference`` it closes,
    ``(m_s − m_base) / (m_ref,s − m_base)`` per seed s (the same seed's reference row), with its t-interval
    over seeds (:func:`t_interval`), and the gain over the base in points."""
    base = next(r for r in rows if r["algorithm"] == "base")[metric]
    ref = {r["train_seed"]: r[metric] for r in rows if r.get("variant") == reference}
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows if "variant" in r):
        if name == reference:
            continue
        group = sorted((r for r in rows if r.get("variant") == name), key=lambda r: r["train_seed"])
        if not all(r["train_seed"] in ref and ref[r["train_seed"]] != base for r in group):
            continue
        fractions = [(r[metric] - base) / (ref[r["train_seed"]] - base) for r in group]
        gains = [100 * (r[metric] - base) for r in group]
        out.append({"algorithm": name, "metric": metric, "reference": reference,
                    "gap_fraction": t_interval(fractions), "gain_points": t_interval(gains),
                    "per_seed_gap_fraction": fractions})
    return out


def gap_table(gaps: Sequence[dict]) -> str:
    """Markdown: gain over the base (points) and fraction of the gap to the reference, mean ± t half-width."""
    lines = ["| algorithm | gain over base, points | fraction of the gap to gt-grpo |", "|---|---:|---:|"]
    for g in gaps:
        f, p = g["gap_fraction"], g["gain_points"]
        fh = "" if f["half_width"] is None else f" ± {100 * f['half_width']:.0f}"
        ph = "" if p["half_width"] is None else f" ± {p['half_width']:.1f}"
        lines.append(f"| {g['algorithm']} | {p['mean']:+.1f}{ph} | {100 * f['mean']:.0f}{fh} % |")
    return "\n".join(lines)


def split_table(summary: Sequence[dict]) -> str:
    """Markdown: misread-prompt / other-prompt mean accuracy and the misread-answer rate, mean ± t over seeds."""
    lines = ["| algorithm | mean acc, misread prompts | mean acc, other prompts | samples equal to the misreading |",
             "|---|---:|---:|---:|"]
    for e in summary:
        if all(m in e["metrics"] for m in SEED_ONLY_METRICS):
            cells = " | ".join(interval_cell(e["metrics"][m]) for m in SEED_ONLY_METRICS)
            lines.append(f"| {e['algorithm']} | {cells} |")
    return "\n".join(lines)
