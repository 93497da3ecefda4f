"""Reports of the theory-vs-training experiment: the markdown table, merging runs (:func:`combine`),
filling in quantities older runs lack, and writing ``{stem}.json`` / ``{stem}.md`` atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dagsim.io import atomic_write_json
from llm.theory.predict import (
    as_map,
    k3_loss_stationary,
    kl_divergence,
    sequence_kl_estimate,
    summarize,
    total_variation,
)

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
