"""``dagsim solve`` and ``dagsim game``: the answer-level optimum and the game's dynamics from the CLI."""

from __future__ import annotations

import argparse

import numpy as np

from dagsim.cli import _print_json, _table, command, load_model_file
from dagsim.errors import DomainError, ValidationError


def parse_tau(text: str) -> float:
    """``--tau`` accepts a non-negative number or ``inf`` (hard coherence)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tau must be a number or 'inf', got {text!r}") from None
    if np.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"--tau must be >= 0 (or 'inf'), got {text!r}")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_problem_arguments(p: argparse.ArgumentParser) -> None:
    from dagsim.objectives.consensus import CONSENSUS_KINDS

    p.add_argument("file", help="a dagsim/v1 DAG or dagsim-task/v1 task file")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--objective",
                       help="reward | entropy | gini | tsallis | sharpen | collision | majority | consensus | pairwise")
    add_objective_module_argument(which)
    p.add_argument("--beta", type=_positive, default=1.0, help="KL weight β > 0 (default 1)")
    p.add_argument("--tau", type=parse_tau, default=None, help="objective weight τ >= 0, or 'inf' (hard coherence)")
    p.add_argument("--order", type=float, default=None, help="Tsallis order α (> 0, != 1)")
    p.add_argument("--consensus", choices=list(CONSENSUS_KINDS), default=None,
                   help="consensus type of the multi-view objective")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_objective_module_argument(p) -> None:
    """``--objective-module path.py:Name`` (issue #17): a user-defined family in place of ``--objective``."""
    p.add_argument("--objective-module", default=None, metavar="FILE.py:CLASS",
                   help="a user-defined objective family in one file (path/to/file.py:ClassName or "
                        "module.path:ClassName), in place of --objective; see README 'Add your own objective'")


def load_user_family(args):
    """Load and validate ``--objective-module`` (None when absent); sets ``args.objective`` to its name."""
    if not getattr(args, "objective_module", None):
        return None
    if getattr(args, "_user_family", None) is None:
        from dagsim.objectives.user import load_objective_module

        args._user_family = load_objective_module(args.objective_module, params={
            "tau": getattr(args, "tau", None), "order": getattr(args, "order", None)})
    args.objective = args._user_family.name
    return args._user_family


def _problem(args):
    from dagsim.problem import build_problem

    load_user_family(args)
    model = load_model_file(args.file)
    return build_problem(model, args.objective, beta=args.beta, tau=args.tau, order=args.order,
                         consensus=args.consensus)


def _dist(answers, nu) -> dict:
    return {a: float(x) for a, x in zip(answers, np.asarray(nu).tolist())}


@command("solve", "the exact answer-level optimum of (E2)/(E5) (closed form, dual, cvxpy or trace-level)")
def _solve(p: argparse.ArgumentParser):
    add_problem_arguments(p)
    p.add_argument("--method", choices=["auto", "closed-form", "dual", "cvxpy", "trace"], default="auto",
                   help="auto picks the closed form, else the fast exact solver; any other method runs exactly that "
                        "method (dual: the family's exact algorithm, never the closed form; trace: L-BFGS on edge "
                        "logits) or exits 2 saying why it does not apply")

    def run(args) -> int:
        prob = _problem(args)
        family = load_user_family(args)
        user_extra = None
        if family is not None and args.method != "trace":
            from dagsim.plugins import solve_user

            sol, user_extra = solve_user(prob, family, args.method)
            if sol is None:  # not concave and no solver: the trace route
                args.method = "trace"
        if args.method == "trace":
            out = _solve_trace(prob)
        else:
            from dagsim.solvers import solve_answer_level

            if user_extra is None:
                sol = solve_answer_level(prob.objective, prob.nu0, prob.beta, constraints=prob.constraints,
                                         method=args.method)
            out = {"value": float(sol.value), "method": sol.method, "kkt_residual": float(sol.kkt_residual),
                   "multipliers": [float(x) for x in np.asarray(sol.multipliers).tolist()],
                   "status": sol.status, "solver": sol.solver, "max_violation": float(sol.max_violation)}
            if sol.note:
                out["note"] = sol.note
            if prob.multiview:
                out["views"] = [_dist(prob.answers, v) for v in sol.nu]
                q = sol.consensus if sol.consensus is not None else prob.objective.target(sol.nu)
                if q is not None:  # pairwise coherence has no consensus target (no "consensus" key)
                    out["consensus"] = _dist(prob.answers, q)
            else:
                out["answer_distribution"] = _dist(prob.answers, sol.nu)
        if family is not None:
            out["objective_module"] = {"name": family.name, "source": args.objective_module,
                                       **(user_extra or {"route": "trace", "why": "--method trace"})}
        if args.json:
            _print_json(out)
        else:
            _print_solution(prob, out)
        return 0

    return run


def _solve_trace(prob) -> dict:
    """P3's confirmation: L-BFGS over the DAG's edge logits maximizing (E1) exactly."""
    from dagsim.solvers.trace import solve_trace_level

    if prob.multiview:
        raise DomainError("--method trace solves single-view objectives (one DAG)")
    if prob.constraints:
        raise DomainError("--method trace does not handle constraints; use dual or cvxpy")
    obj = prob.objective
    sol = solve_trace_level(prob.views[0], obj.value, obj.reward, prob.beta)
    game = prob.game()
    return {"answer_distribution": _dist(prob.answers, sol.marginal), "value": sol.value, "method": "trace",
            "kkt_residual": float(game.exploitability(sol.marginal[None, :], policy_kl=sol.kl)),
            "multipliers": [], "status": sol.status, "solver": sol.method, "iterations": sol.iterations,
            "gradient_norm": sol.gradient_norm, "trace_kl": sol.kl}


def _print_solution(prob, out: dict) -> None:
    if "views" in out:
        q = out.get("consensus")
        cols = ["answer"] + [f"view {j}" for j in range(len(out["views"]))] + (["consensus"] if q else [])
        rows = [[a] + [f"{v[a]:.6f}" for v in out["views"]] + ([f"{q[a]:.6f}"] if q else []) for a in prob.answers]
    else:
        cols = ["answer", "ν0", "ν*"]
        rows = [[a, f"{x0:.6f}", f"{out['answer_distribution'][a]:.6f}"] for a, x0 in zip(prob.answers, prob.nu0)]
    _table(f"answer-level optimum ({out['method']})", cols, rows)
    print(f"value {out['value']:.10g}   KKT residual {out['kkt_residual']:.2e}   status {out['status']}")
    if out.get("multipliers"):
        print("multipliers λ:", ", ".join(f"{x:.6g}" for x in out["multipliers"]))
    if out.get("note"):
        print("note:", out["note"])
    user = out.get("objective_module")
    if user:
        print(f"objective module {user['source']} (family {user['name']!r}): {user['why']}")
        check = user.get("game_check")
        if check and "max_abs_diff" in check:
            print(f"game check (T1): mirror-ascent equilibrium, E4 = {check['exploitability']:.1e} after "
                  f"{check['iterations']} iterations, max |Δν| = {check['max_abs_diff']:.2e}")
        elif check:
            print("game check (T1):", check["error"])


@command("game", "run the Distributional Alignment Game's dynamics and report exploitability (E4)")
def _game(p: argparse.ArgumentParser):
    add_problem_arguments(p)
    p.add_argument("--dynamics", required=True,
                   choices=["best-response", "mirror", "no-regret", "extragradient", "alternating", "dual-ascent"])
    p.add_argument("--iterations", type=int, required=True,
                   help="at most N iterations: the last-iterate rules stop early once the exploitability (E4) "
                        "is <= 1e-13 (dual ascent: once the multipliers move and the violation are <= 1e-12); "
                        "the output then says \"stopped\": \"tolerance\" (else \"iterations\")")
    p.add_argument("--step", type=_positive, default=None, help="step η (default: 1 for best-response, "
                   "0.5/β for mirror/extragradient/no-regret, 2β for dual ascent)")

    def run(args) -> int:
        from dagsim.game import dynamics as dyn

        if args.iterations < 0:
            raise ValidationError("--iterations must be >= 0")
        prob = _problem(args)
        game = prob.game()
        if prob.constraints and args.dynamics != "dual-ascent":
            raise DomainError(f"the file has constraints: use --dynamics dual-ascent (got {args.dynamics})")
        if args.dynamics == "dual-ascent":
            run_ = dyn.dual_ascent(game, args.iterations, args.step or 2 * prob.beta)
        elif args.dynamics in ("best-response", "alternating"):
            fn = dyn.DYNAMICS[args.dynamics]
            run_ = fn(game, args.iterations, args.step or 1.0) if args.dynamics == "best-response" else fn(
                game, args.iterations)
        else:
            run_ = dyn.DYNAMICS[args.dynamics](game, args.iterations, args.step or 0.5 / prob.beta)
        out = {"dynamics": args.dynamics, "exploitability": float(run_.exploitability),
               "objective": float(run_.objective), "iterations": run_.iterations,
               "history": run_.history,
               "requested_iterations": args.iterations,
               "stopped": "tolerance" if run_.iterations < args.iterations else "iterations"}
        rate = run_.rate()
        if rate is not None:
            out["empirical_rate"] = rate
        if prob.multiview:
            out["views"] = [_dist(prob.answers, v) for v in run_.nus]
            out["consensus"] = _dist(prob.answers, prob.objective.target(run_.nus))
        else:
            out["answer_distribution"] = _dist(prob.answers, run_.nus[0])
        if run_.multipliers is not None:
            out["multipliers"] = [float(x) for x in run_.multipliers]
        if getattr(args, "objective_module", None):
            out["objective_module"] = {"name": args.objective, "source": args.objective_module}
        if args.json:
            _print_json(out)
            return 0
        shown = run_.history if len(run_.history) <= 12 else run_.history[:6] + run_.history[-6:]
        _table(f"{args.dynamics}: exploitability per iteration", ["iteration", "exploitability", "objective J"],
               [[h["iteration"], f"{h['exploitability']:.3e}", f"{h['objective']:.10f}"] for h in shown])
        dist = out.get("answer_distribution") or out["consensus"]
        print("final answer distribution:", ", ".join(f"{a}: {x:.4f}" for a, x in dist.items()))
        if rate is not None:
            print(f"empirical rate (ratio per iteration over the tail): {rate:.4f}")
        if out["stopped"] == "tolerance":
            print(f"stopped after {run_.iterations} of {args.iterations} iterations: the tolerance was reached")
        return 0

    return run
