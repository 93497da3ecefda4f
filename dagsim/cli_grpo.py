"""``dagsim simulate``: GRPO-family algorithms on exact DAG/task files (exact | expected | sampled)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from dagsim.cli import _print_json, _table, command, load_model_file
from dagsim.cli_args import field_docs
from dagsim.cli_game import _positive, add_objective_module_argument, parse_tau
from dagsim.grpo.algorithms import ALGORITHMS
from dagsim.grpo.simulator import (
    BASELINES,
    ESTIMATORS,
    KL_ESTIMATORS,
    MODES,
    SCALES,
    SimulationConfig,
    simulate,
)


def _field_help(name: str) -> str:
    """The config field's docstring (STYLE §9: config docs become --help; :func:`dagsim.cli_args.field_docs`)."""
    return field_docs(SimulationConfig).get(name, "")


@command("simulate", "simulate GRPO-family algorithms on exact DAGs (exact | expected | sampled modes)")
def _simulate(p: argparse.ArgumentParser):
    d = {f.name: f.default for f in fields(SimulationConfig)}
    p.add_argument("files", nargs="+", metavar="FILE", help="DAG or task files, one prompt each")
    p.add_argument("--algorithm", required=True, choices=list(ALGORITHMS), help=_field_help("algorithm"))
    p.add_argument("--objective", default=None, help=_field_help("objective"))
    add_objective_module_argument(p)
    p.add_argument("--beta", type=_positive, default=d["beta"], help=_field_help("beta"))
    p.add_argument("--tau", type=parse_tau, default=d["tau"], help=_field_help("tau"))
    p.add_argument("--order", type=float, default=None, help=_field_help("order"))
    p.add_argument("--consensus", choices=["arithmetic", "geometric", "majority"], default=d["consensus"],
                   help=_field_help("consensus"))
    p.add_argument("--mode", required=True, choices=MODES, help=_field_help("mode"))
    p.add_argument("--group-size", type=int, default=d["group_size"], help=_field_help("group_size"))
    p.add_argument("--estimator", choices=ESTIMATORS, default=d["estimator"], help=_field_help("estimator"))
    p.add_argument("--baseline", choices=BASELINES, default=d["baseline"], help=_field_help("baseline"))
    p.add_argument("--scale", choices=SCALES, default=d["scale"], help=_field_help("scale"))
    p.add_argument("--steps", type=int, default=d["steps"], help=_field_help("steps"))
    p.add_argument("--lr", type=_positive, default=d["lr"], help=_field_help("lr"))
    p.add_argument("--seed", type=int, default=d["seed"], help=_field_help("seed"))
    p.add_argument("--clip-eps", type=_positive, default=d["clip_eps"], help=_field_help("clip_eps"))
    p.add_argument("--inner-epochs", type=int, default=d["inner_epochs"], help=_field_help("inner_epochs"))
    p.add_argument("--kl-estimator", choices=KL_ESTIMATORS, default=d["kl_estimator"],
                   help=_field_help("kl_estimator"))
    p.add_argument("--dual-lr", type=_positive, default=d["dual_lr"], help=_field_help("dual_lr"))
    p.add_argument("--natural", action="store_true", help=_field_help("natural"))
    p.add_argument("--label-free", action="store_true", help=_field_help("label_free"))
    # ttrl/empo conventions (issue #16: defaults = the published code)
    p.add_argument("--tie-break", choices=["first", "split"], default=d["tie_break"], help=_field_help("tie_break"))
    p.add_argument("--no-answer", choices=["auto", "drop", "singleton", "pool"], default=d["no_answer"],
                   help=_field_help("no_answer"))
    p.add_argument("--no-answer-label", default=None, metavar="LABEL", help=_field_help("no_answer_label"))
    p.add_argument("--entropy-gate", action="store_true", help=_field_help("entropy_gate"))
    p.add_argument("--n-votes", type=int, default=d["n_votes"], help=_field_help("n_votes"))
    p.add_argument("--advantage-eps", type=float, default=d["advantage_eps"], help=_field_help("advantage_eps"))
    p.add_argument("--no-rloo-aware", dest="rloo_aware", action="store_false", help=_field_help("rloo_aware"))
    p.add_argument("--out", default=None, help="write the per-step trajectory as JSONL (run.jsonl)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    def run(args) -> int:
        if args.objective_module:
            return _run_user(args, run)
        cfg = SimulationConfig(
            algorithm=args.algorithm, objective=args.objective, beta=args.beta, tau=args.tau, order=args.order,
            consensus=args.consensus, mode=args.mode, group_size=args.group_size, estimator=args.estimator,
            baseline=args.baseline, scale=args.scale, steps=args.steps, lr=args.lr, seed=args.seed,
            clip_eps=args.clip_eps, inner_epochs=args.inner_epochs, kl_estimator=args.kl_estimator,
            dual_lr=args.dual_lr, natural=args.natural, label_free=args.label_free, rloo_aware=args.rloo_aware,
            tie_break=args.tie_break, no_answer=args.no_answer, no_answer_label=args.no_answer_label,
            entropy_gate=args.entropy_gate, n_votes=args.n_votes, advantage_eps=args.advantage_eps)
        if args.out:
            from dagsim.io import check_output_file

            check_output_file(args.out, "--out")
        models = [load_model_file(f) for f in args.files]
        if cfg.algorithm != "constrained-grpo":
            for f, m in zip(args.files, models):
                if m.constraints:
                    print(f"dagsim: warning: {f} has {len(m.constraints)} constraint(s); --algorithm "
                          f"{cfg.algorithm} ignores them (constrained-grpo enforces them)", file=sys.stderr)
        result = simulate(models, cfg, out=args.out, progress=not args.json)
        last = result.history[-1]
        if args.json:
            finals = result.final
            out = {"distance_to_optimum": last["distance_to_optimum"], "trajectory": result.trajectory_path,
                   "steps": cfg.steps, "seconds": result.seconds, "final": last}
            if len(finals) == 1 and "answer_distribution" in finals[0]:
                out["answer_distribution"] = finals[0]["answer_distribution"]
            else:
                out["answer_distribution"] = [f.get("answer_distribution") or f.get("views") for f in finals]
            if getattr(args, "_user_report", None):
                out["objective_module"] = args._user_report(result)
            _print_json(out)
            return 0
        keys = [k for k in ("distance_to_optimum", "exploitability", "answer_entropy", "accuracy") if k in last]
        shown = result.history if len(result.history) <= 12 else result.history[:4] + result.history[-8:]
        _table(f"{cfg.algorithm} [{cfg.mode}, G={cfg.group_size}]", ["step"] + keys,
               [[h["step"]] + [f"{h[k]:.4g}" for k in keys] for h in shown])
        for i, f in enumerate(result.final):
            dist = f.get("answer_distribution") or f["views"][0]
            print(f"prompt {i}: " + ", ".join(f"{a}: {x:.3f}" for a, x in dist.items() if x >= 5e-4))
        if getattr(args, "_user_report", None):
            user = args._user_report(result)
            print(f"objective module {user['source']} (family {user['name']!r}): group reward = "
                  f"{user['group_reward_description']}")
            if "effective_reward_bias_at_nu0" in user:
                print("effective reward at ν0 vs ∇Φ(ν0) (T10), min_c max_z |ḡ_G − ∇Φ − c|: "
                      f"{user['effective_reward_bias_at_nu0']:.3e}")
        if result.trajectory_path:
            print(f"trajectory written to {result.trajectory_path}")
        return 0

    return run


def _run_user(args, run) -> int:
    """``simulate --objective-module``: register the family's group reward, let the algorithm take it."""
    from dagsim.cli_game import load_user_family
    from dagsim.plugins import (
        GROUP_DESCRIPTION,
        PLUGIN_DESCRIPTION,
        TABLE_DESCRIPTION,
        algorithm_with,
        register_group_reward,
    )

    if args.objective is not None:
        from dagsim.errors import ValidationError

        raise ValidationError("give --objective or --objective-module, not both")
    family = load_user_family(args)
    kind = register_group_reward(family)
    spec = args.objective_module

    def report(result) -> dict:
        out = {"name": family.name, "source": spec, "group_reward": kind,
               "group_reward_description": {"table": TABLE_DESCRIPTION, "group": GROUP_DESCRIPTION}.get(
                   kind, PLUGIN_DESCRIPTION)}
        bias = _effective_bias(result)
        if bias is not None:
            out["effective_reward_bias_at_nu0"] = bias
        return out

    args._user_report = report
    args.objective_module = None  # the family is registered: run the ordinary path with its name
    args.objective = family.name
    try:
        with algorithm_with(args.algorithm, family):
            return run(args)
    finally:
        args.objective_module = spec


def _effective_bias(result) -> float | None:
    """min_c max_z |ḡ_G(z) − ∇Φ(ν0)(z) − c| for the first prompt (expected mode, one view): T10's bias."""
    import numpy as np

    from dagsim.grpo.effective import effective_reward
    from dagsim.grpo.rewards import table_size_for

    cfg = result.config
    if cfg.mode != "expected" or not result.prompts or result.prompts[0].n_views != 1:
        return None
    prob = result.prompts[0].problem
    nu0 = np.asarray(prob.nu0, dtype=np.float64)
    obj = prob.objective
    g_bar = effective_reward(cfg.objective, nu0, cfg.group_size, baseline=cfg.baseline, scale=cfg.scale,
                             tau=obj.tau, task_reward=prob.reward, order=getattr(obj, "order", None),
                             estimator=cfg.estimator,
                             table_size=table_size_for(cfg.baseline, cfg.group_size, rloo_aware=cfg.rloo_aware))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = g_bar - np.asarray(obj.reward(nu0), dtype=np.float64)
    d = d[nu0 > 0]
    return float(0.5 * (d.max() - d.min()))
