"""Sampled GRPO with AQP tables (T12(e), issue 12 §4): how close does each log estimator × baseline get?

Instances (THEORY T10's law): K = 4 answers, ν0 ~ Dirichlet(1), r ~ N(0, 1), instance seed ``INSTANCE_SEED``;
objective ``entropy`` (reward r(z) − τ·loĝ ν(z)) or ``sharpen`` (τ·loĝ ν(z), no task reward), β = τ = 1.
Policy: a tabular softmax over the K answers started at ν0 (θ = log ν0); each step draws one group of G
answers per instance, rewards from the count table, advantages from ``dagsim.grpo.advantages`` (RLOO with the
RLOO-aware (G−1)-table, RLOO with the G-table, or doubly-LOO), one on-policy gradient step (no clipping:
ratio 1) ``θ += lr·[(1/G) Σ_i A_i (e_{z_i} − π) − β ∇KL(π‖ν0)]`` with the exact KL gradient.

For each (G, estimator, baseline) it reports
* ``sampled_tv``: mean over instances of the mean of TV(π_t, ν*) over the last half of the steps (what the
  policy is, step by step, after convergence);
* ``averaged_tv``: TV(time-average of π_t over the last half, ν*) (removes the stationary fluctuation);
* ``expected_tv``: TV(stationary point of the *expected* update, ν*) — the structural bias, from the exact
  effective reward (``count_table_effective_reward``) and ν = ν0·exp(ḡ(ν)/β)/Z.

Estimators: plug-in, minimax (T8), monotone minimax, AQP κ ∈ {1, 2, 4} (T12). The same random stream
(``run_seed``) is used by every configuration of one G.

Run: nice -n 5 python bench/experiments_aqp.py [--quick] [--out results/aqp_experiments.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dagsim.divergences import total_variation
from dagsim.estimators import binomial_pmf, log_estimator_table, loo_counts
from dagsim.grpo.advantages import advantages, doubly_loo_advantages
from dagsim.grpo.effective import count_table_effective_reward
from dagsim.grpo.rewards import count_reward_table
from dagsim.io import atomic_write_json
from dagsim.objectives import make_objective

INSTANCE_SEED = 2026
N_ANSWERS = 4
BETA = 1.0
#: τ per objective (β = 1).
TAUS = {"entropy": 1.0, "sharpen": 0.5}
ESTIMATORS = (("plugin", None), ("minimax", None), ("minimax_monotone", None), ("aqp", 1.0), ("aqp", 2.0),
              ("aqp", 4.0))
BASELINES = ("rloo", "doubly-loo", "rloo-g-table")
#: The full run measures these two (rloo-g-table differs from rloo only through T11a, measured exactly in
#: expected mode by tests/test_aqp.py); --baselines adds it.
DEFAULT_BASELINES = ("rloo", "doubly-loo")
GROUPS = (4, 8, 16, 32)
QUICK_GROUPS = (8, 16)
#: Learning rate and steps (full, quick). The fluctuation of π_t around its mean scales like √lr.
LR = (0.002, 0.05)
STEPS = (50_000, 1500)
N_INSTANCES = (20, 8)
#: A run whose logits leave this range has diverged (the minimax table's entries reach 2e6 at G = 32).
DIVERGED_LOGIT = 50.0
#: Fixed point of the expected update: damped log-space iteration.
FIXED_POINT_DAMPING = 0.1
FIXED_POINT_ITERS = 20_000
FIXED_POINT_TOL = 1e-12


def _label(est: str, kappa: float | None) -> str:
    return est if kappa is None else f"aqp(kappa={kappa:g})"


def log_table(n: int, est: str, kappa: float | None) -> np.ndarray:
    return np.asarray(log_estimator_table(n, est) if kappa is None else log_estimator_table(n, est, kappa=kappa))


def reward_tables(objective: str, r: np.ndarray, G: int, est: str, kappa: float | None, baseline: str):
    """(T (K, G), T_minus (K, G−1) or None): the reward r(z) ∓ τ f(c) with the table the baseline calls for."""
    tau = TAUS[objective]
    sign = -1.0 if objective == "entropy" else 1.0
    task = r if objective == "entropy" else np.zeros_like(r)
    if baseline == "rloo":  # T11a: the (G−1)-table, its last entry repeated (inert under RLOO)
        f = log_table(G - 1, est, kappa)
        f = np.concatenate([f, f[-1:]])
    else:
        f = log_table(G, est, kappa)
    table = task[:, None] + sign * tau * f[None, :]  # (K, G)
    minus = None
    if baseline == "doubly-loo":
        minus = task[:, None] + sign * tau * log_table(G - 1, est, kappa)[None, :]  # (K, G-1)
    return table, minus


def _lse(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def effective_rewards(tables, minus, nus, baseline):
    """ḡ for many instances at once, ``(n, K)`` — the binomial sums of ``count_table_effective_reward``
    (checked against it on the first instance)."""
    G = tables.shape[-1]
    own = (binomial_pmf(G - 1, nus) * tables).sum(axis=-1)  # (n, K)
    pmf2 = binomial_pmf(G - 2, nus)  # (n, K, G-1)
    if baseline == "doubly-loo":
        return own - (nus * (pmf2 * minus).sum(axis=-1)).sum(axis=-1, keepdims=True)
    h0 = (pmf2 * tables[..., :-1]).sum(axis=-1)
    h1 = (pmf2 * tables[..., 1:]).sum(axis=-1)
    return own - ((nus * h0).sum(axis=-1, keepdims=True) + nus * (h1 - h0))


def expected_stationary(nu0s, tables, minus, baseline):
    """Fixed points ν = ν0·exp(ḡ(ν)/β)/Z of the expected update for every instance, ``(n, K)`` (NaN rows
    where the damped iteration does not converge)."""
    base = "rloo" if baseline.startswith("rloo") else baseline
    g0 = effective_rewards(tables[:1], None if minus is None else minus[:1], nu0s[:1], base)[0]
    want = count_table_effective_reward(tables[0], nu0s[0], baseline=base,
                                        table_minus=None if minus is None else minus[0])
    assert np.allclose(g0, want, atol=1e-9), "vectorized effective reward differs from dagsim's"
    nu = nu0s.copy()
    log_nu0 = np.log(nu0s)
    done = np.zeros(len(nu), dtype=bool)
    for _ in range(FIXED_POINT_ITERS):
        g = effective_rewards(tables, minus, nu, base)
        logits = log_nu0 + g / BETA
        target = logits - _lse(logits)
        log_new = (1 - FIXED_POINT_DAMPING) * np.log(nu) + FIXED_POINT_DAMPING * target
        new = np.exp(log_new - _lse(log_new))
        step = np.abs(new - nu).max(axis=1)
        nu = np.where(np.isfinite(new), new, nu)
        done = step < FIXED_POINT_TOL
        if done.all():
            break
    return np.where(done[:, None], nu, np.nan)


def sampled_run(nu0s, star, tables, minus, baseline, G, lr, steps, seed):
    """Vectorized over instances: one union answer space (instance b's answer z is index b·K + z)."""
    rng = np.random.default_rng(seed)
    n, K = nu0s.shape
    theta = np.log(nu0s)  # (n, K)
    union_table = tables.reshape(n * K, G)  # (n·K, G)
    union_minus = None if minus is None else minus.reshape(n * K, G - 1)
    offsets = (np.arange(n) * K)[:, None]  # (n, 1)
    tail = steps // 2
    tv_sum = np.zeros(n)
    pi_sum = np.zeros((n, K))
    diverged = np.zeros(n, dtype=bool)
    for t in range(steps):
        pi = np.exp(theta - _lse(theta))  # (n, K)
        u = rng.random((n, G))
        z = np.minimum((u[:, :, None] > np.cumsum(pi, axis=1)[:, None, :]).sum(axis=2), K - 1)  # (n, G)
        zu = z + offsets
        if baseline == "doubly-loo":
            adv, _ = doubly_loo_advantages(zu, (union_table, union_minus))
        else:
            rew = union_table[zu, loo_counts(zu)]  # (n, G)
            adv, _ = advantages(rew, baseline="rloo")
        onehot = np.zeros((n, G, K))
        np.put_along_axis(onehot, z[:, :, None], 1.0, axis=2)
        pg = (adv[:, :, None] * (onehot - pi[:, None, :])).mean(axis=1)  # (n, K)
        log_ratio = np.log(pi) - np.log(nu0s)
        kl = (pi * log_ratio).sum(axis=1, keepdims=True)
        theta = theta + lr * (pg - BETA * pi * (log_ratio - kl))
        theta = theta - theta.max(axis=1, keepdims=True)
        diverged |= ~np.all(np.isfinite(theta), axis=1) | (theta.min(axis=1) < -DIVERGED_LOGIT)
        theta = np.where(diverged[:, None], np.log(nu0s), theta)  # frozen; reported as diverged
        if t >= steps - tail:
            pi_sum += pi
            tv_sum += total_variation(pi, star, axis=1)
    return tv_sum / tail, pi_sum / tail, diverged


def run(objective: str, quick: bool, *, lr: float | None = None, steps: int | None = None, groups=None,
        baselines=BASELINES) -> dict:
    from dagsim.solvers import solve_answer_level

    lr0, steps0, n_inst = (LR[1], STEPS[1], N_INSTANCES[1]) if quick else (LR[0], STEPS[0], N_INSTANCES[0])
    lr, steps = lr or lr0, steps or steps0
    groups = groups or (QUICK_GROUPS if quick else GROUPS)
    tau = TAUS[objective]
    rng = np.random.default_rng(INSTANCE_SEED)
    nu0s = np.stack([rng.dirichlet(np.ones(N_ANSWERS)) for _ in range(n_inst)])  # (n, K)
    rs = np.stack([rng.normal(size=N_ANSWERS) for _ in range(n_inst)])  # (n, K)
    if objective == "sharpen":
        rs = np.zeros_like(rs)
    stars = []
    for nu0, r in zip(nu0s, rs):
        o = make_objective(objective, n_answers=N_ANSWERS, reward=r if objective == "entropy" else None, tau=tau)
        stars.append(solve_answer_level(o, nu0, BETA).nu)
    star = np.stack(stars)  # (n, K)
    rows = []
    configs = [(est, kappa) for est, kappa in ESTIMATORS]
    for G in groups:
        for baseline in baselines:
            t0 = time.perf_counter()
            tables, minus, exp_tv = [], [], {}
            for est, kappa in configs:
                tabs = [reward_tables(objective, r, G, est, kappa, baseline) for r in rs]
                tables.append(np.stack([t for t, _ in tabs]))  # (n, K, G)
                minus.append(None if baseline != "doubly-loo" else np.stack([m for _, m in tabs]))
                if est != "minimax" and baseline != "rloo-g-table" and kappa in (None, 2.0):
                    ref = count_reward_table(objective, n_answers=N_ANSWERS, group_size=G, tau=tau,
                                             task_reward=rs[0] if objective == "entropy" else None, estimator=est,
                                             table_size=G - 1 if baseline == "rloo" else None)
                    assert np.allclose(ref, tables[-1][0]), "bench table differs from dagsim's count_reward_table"
                nu_fp = expected_stationary(nu0s, tables[-1], minus[-1], baseline)  # (n, K)
                exp_tv[(est, kappa)] = total_variation(nu_fp, star, axis=1)
            n_cfg = len(configs)
            all_tables = np.concatenate(tables)  # (n_cfg·n, K, G)
            all_minus = None if baseline != "doubly-loo" else np.concatenate(minus)
            tv, pi_avg, div = sampled_run(np.tile(nu0s, (n_cfg, 1)), np.tile(star, (n_cfg, 1)), all_tables, all_minus,
                                          baseline, G, lr, steps, seed=1000 + G)
            avg_tv = total_variation(pi_avg, np.tile(star, (n_cfg, 1)), axis=1)
            seconds = round(time.perf_counter() - t0, 1)
            for c, (est, kappa) in enumerate(configs):
                sl = slice(c * n_inst, (c + 1) * n_inst)
                ok = ~div[sl]
                e = exp_tv[(est, kappa)]
                row = {"G": G, "estimator": _label(est, kappa), "baseline": baseline,
                       "sampled_tv": float(tv[sl][ok].mean()) if ok.any() else None,
                       "averaged_tv": float(avg_tv[sl][ok].mean()) if ok.any() else None,
                       "expected_tv": float(np.nanmean(e)) if np.isfinite(e).any() else None,
                       "expected_tv_range": [float(np.nanmin(e)), float(np.nanmax(e))] if np.isfinite(e).any()
                       else None,
                       "n_diverged": int((~ok).sum()), "n_no_fixed_point": int(np.isnan(e).sum())}
                rows.append(row)
                print(f"{objective:8s} G={G:<3d} {row['estimator']:18s} {baseline:13s} sampled "
                      f"{_fmt(row['sampled_tv'])} averaged {_fmt(row['averaged_tv'])} expected "
                      f"{_fmt(row['expected_tv'])} diverged {row['n_diverged']}", flush=True)
            print(f"  ({seconds} s for G={G}, {baseline})", flush=True)
    return {"objective": objective, "beta": BETA, "tau": tau, "lr": lr, "steps": steps, "n_instances": n_inst,
            "rows": rows}


def _fmt(x):
    return "   n/a  " if x is None else f"{x:.5f}"


def summary(result: dict, G: int = 16) -> dict:
    rows = [r for r in result["rows"] if r["G"] == G and r["sampled_tv"] is not None]
    plug = min(r["sampled_tv"] for r in rows if r["estimator"] == "plugin")
    aware = [r for r in rows if r["estimator"] not in ("plugin",) and not r["estimator"].startswith("minimax")]
    best = min(aware, key=lambda r: r["sampled_tv"])
    return {"G": G, "best_variance_aware": {k: best[k] for k in ("estimator", "baseline", "sampled_tv",
                                                                  "averaged_tv", "expected_tv")},
            "best_plugin_sampled_tv": plug,
            "ratio_to_own_stationary_bias": best["sampled_tv"] / best["expected_tv"],
            "closer_than_plugin": plug / best["sampled_tv"],
            "target": "within 2x of its own stationary bias and >= 2.5x closer than plug-in (issue 12)"}


CONSENSUS_GROUPS = (8, 16)
CONSENSUS_ESTIMATORS = ("plugin", "minimax_monotone", "aqp")
CONSENSUS_SEED = 5


def consensus(quick: bool) -> dict:
    """Multi-view arithmetic consensus (E5; its reward mixes log q̂ — a plug-in mixture — and the table's
    log ν̂_j): the exact expected-mode stationary point by the simulator (natural gradient, 300 steps) on
    two-view arithmetic tasks whose views slip differently; TV to the consensus optimum."""
    from dagsim.generators import arithmetic_problem, arithmetic_task
    from dagsim.grpo.simulator import SimulationConfig, simulate

    rng = np.random.default_rng(CONSENSUS_SEED)
    tasks = [arithmetic_task(arithmetic_problem(rng, 3, 6), [[0.15, 0.15, 0.15], [0.25, 0.1, 0.1]])
             for _ in range(2 if quick else 3)]
    rows = []
    for G in CONSENSUS_GROUPS[:1] if quick else CONSENSUS_GROUPS:
        for est in CONSENSUS_ESTIMATORS:
            for base in DEFAULT_BASELINES:
                t0 = time.perf_counter()
                cfg = SimulationConfig(algorithm="coherence-grpo", objective="consensus", consensus="arithmetic",
                                       beta=1.0, tau=0.5, mode="expected", natural=True, group_size=G, estimator=est,
                                       baseline=base, steps=300, lr=0.5)
                res = simulate(tasks, cfg, log_every=150)
                row = {"G": G, "estimator": est, "baseline": base,
                       "expected_tv": res.history[-1]["distance_to_optimum"],
                       "change_last_150_steps": abs(res.history[-1]["distance_to_optimum"]
                                                    - res.history[-2]["distance_to_optimum"])}
                rows.append(row)
                print(f"consensus G={G:<3d} {est:18s} {base:11s} expected-mode TV {row['expected_tv']:.5f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"objective": "consensus (arithmetic, 2 views)", "beta": 1.0, "tau": 0.5, "n_tasks": len(tasks),
            "seed": CONSENSUS_SEED, "rows": rows}


def markdown(result: dict, estimators=("plugin", "minimax", "minimax_monotone", "aqp(kappa=1)", "aqp(kappa=2)",
                                       "aqp(kappa=4)")) -> str:
    """One markdown table per objective: rows (G, baseline), columns estimators, cells sampled / expected TV."""
    rows = result["rows"]
    keys = sorted({(r["G"], r["baseline"]) for r in rows}, key=lambda k: (k[0], k[1]))
    head = "| G | baseline | " + " | ".join(estimators) + " |\n|---|---|" + "---|" * len(estimators)
    lines = [head]
    for G, base in keys:
        cells = []
        for est in estimators:
            r = next((x for x in rows if x["G"] == G and x["baseline"] == base and x["estimator"] == est), None)
            cells.append("–" if r is None or r["sampled_tv"] is None else
                         f"{r['sampled_tv']:.4f} / {r['expected_tv']:.4f}")
        lines.append(f"| {G} | {base} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results/aqp_experiments.json")
    ap.add_argument("--objectives", nargs="+", default=["entropy", "sharpen"],
                    choices=["entropy", "sharpen", "consensus"])
    ap.add_argument("--lr", type=float, default=None, help=f"step size (default {LR[0]}, quick {LR[1]})")
    ap.add_argument("--steps", type=int, default=None, help=f"steps (default {STEPS[0]}, quick {STEPS[1]})")
    ap.add_argument("--groups", type=int, nargs="+", default=None, help=f"group sizes (default {GROUPS})")
    ap.add_argument("--baselines", nargs="+", default=list(DEFAULT_BASELINES), choices=list(BASELINES))
    ap.add_argument("--markdown", default=None, metavar="JSON", help="print the tables of a finished run and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        import json

        for objective, res in json.loads(open(args.markdown, encoding="utf-8").read())["experiments"].items():
            if objective == "consensus":
                continue
            print(f"{objective} (sampled TV / expected-mode stationary TV):\n{markdown(res)}\n")
        return 0
    t0 = time.perf_counter()
    out = {"command": "nice -n 5 python bench/experiments_aqp.py " + " ".join(argv if argv is not None
                                                                              else __import__("sys").argv[1:]),
           "instance_law": f"K = {N_ANSWERS}, nu0 ~ Dirichlet(1), r ~ N(0, 1) (entropy only), seed {INSTANCE_SEED}",
           "beta": BETA, "tau": TAUS, "policy": "tabular softmax over answers, exact KL gradient, no clipping",
           "experiments": {}}
    for objective in args.objectives:
        if objective == "consensus":
            out["experiments"][objective] = consensus(args.quick)
            continue
        res = run(objective, args.quick, lr=args.lr, steps=args.steps, groups=args.groups,
                  baselines=tuple(args.baselines))
        res["summary_G16"] = summary(res)
        out["experiments"][objective] = res
        print(res["summary_G16"], flush=True)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    atomic_write_json(args.out, out)
    print(f"wrote {args.out} in {out['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
