"""T1, T9 and T10 for a user-defined objective family (``dagsim check --objective-module``, issue #17).

The built-in checks (``proofs_check/checks/``) run the claims on the package's families; these run the
same claims, with the same oracles, tolerances and wrong-variant controls, on the user's family, on
random DAGs (``reference_dag`` of ``_subclaims``, the instance law of the built-in T1):

* **T1** (concave Φ: NE ⇔ optimum). The game's equilibrium (mirror ascent to E4 ≤ 1e-12, the Target
  best-responding) equals the solver's optimum (the route ``dagsim solve`` takes for the family) and
  scipy L-BFGS on the softmax logits (``e2_lbfgs_optimum``, independent of dagsim's solvers); it is the
  KKT fixed point ν ∝ ν0·exp(∇Φ(ν)/β); E4 = 0 there on the DAG with the trace-level KL of π* (P3);
  E4 ≥ 0 and ≥ (β/2)‖ν − ν*‖₁² on random probes. Control: β ↦ 2β in the solver.
* **T9** (policy-gradient identity): ∇_θ Φ(ν_θ) by the backward DP with reward ∇Φ(ν_θ) = central
  finite differences of Φ(ν_θ). Control: the softmax derivative without its −π·V(u) term.
* **T10** (finite-G GRPO, exactly): on small DAGs, the expected GRPO update — every group of G traces
  enumerated, E[(1/G) Σ_i A_i ∇_θ log π(y_i)] with RLOO advantages of the family's group reward (the
  plug-in ∇Φ(q̂) or the family's table, exactly what ``simulate`` runs) — equals the policy gradient of
  the effective reward ḡ_G = E[A_i | z_i] (``dagsim.grpo.effective``); the finite-G stationary point
  ν = ν0·exp(ḡ_G(ν)/β)/Z solves its equation. Its total-variation distance to ν* (the estimator's
  structural bias) is reported per G, not asserted. Control: ḡ_G replaced by the G → ∞ reward ∇Φ(ν)
  (i.e. claiming the group reward is unbiased).
"""

from __future__ import annotations

import itertools

import numpy as np

from dagsim import marginals as M
from dagsim.game.payoff import AnswerGame, gibbs, markov_policy_for_marginal
from dagsim.generators import random_dag
from dagsim.objectives.user import UserFamily
from proofs_check.checks._subclaims import SubClaim, combine, reference_dag, tv
from proofs_check.checks.dag_claims import FD_STEP, TOL_FD
from proofs_check.checks.game_claims import N_PROBES, e2_lbfgs_optimum
from proofs_check.checks.grpo_claims import stationary_point
from proofs_check.registry import Check, Context, Evidence, run_check

try:  # the shared tolerances module (issue #17, "app") where it exists; the same values as game_claims'
    from dagsim.tolerances import CVXPY_NU as TOL_CVXPY
    from dagsim.tolerances import EXPLOITABILITY as TOL_EXPL
    from dagsim.tolerances import ROUND as TOL_ROUND
except ModuleNotFoundError:
    from proofs_check.checks.game_claims import TOL_CVXPY, TOL_EXPL, TOL_ROUND

#: The game's equilibrium is computed to E4 ≤ 1e-12; since E4 ≥ (β/2)‖ν − ν*‖₁² (T1) and β ≥ 0.3 here,
#: ‖ν − ν*‖₁ ≤ 2.6e-6. cvxpy's ν is accurate to ~1e-5 (TOL_CVXPY). Equal within this:
TOL_EQUILIBRIUM = max(TOL_CVXPY, 1e-5)
#: The expected update by enumerating every group vs the backward DP with ḡ_G: sums of ≤ 10^4 products
#: of O(1) terms in different orders.
TOL_ENUMERATION = 1e-10
#: ‖ν − Gibbs(ḡ_G(ν))‖∞ at the finite-G stationary point (grpo_claims' iteration stops at a 1e-14 step).
TOL_FIXED_POINT = 1e-9
#: Group sizes of the T10 enumeration (traces^G groups) and of the reported structural bias.
T10_ENUM_GROUPS = (2, 3)
T10_BIAS_GROUPS = (2, 4, 8)
#: Small DAGs for the T10 enumeration: at most this many traces (traces^3 groups).
T10_MAX_TRACES = 12


class NotApplicable(Exception):
    """A claim that does not apply to the family (reported as skipped, with the reason)."""


def _draw(ctx: Context, family: UserFamily, k: int, params: dict):
    """A random instance of the family: r ~ N(0, 1), β ~ U(0.3, 3), τ ~ U(0.1, 2) unless fixed by ``params``."""
    r = ctx.rng.normal(size=k)
    beta = float(ctx.rng.uniform(0.3, 3.0))
    kw = {key: v for key, v in params.items() if v is not None}
    tau = float(ctx.rng.uniform(0.1, 2.0))
    kw.setdefault("tau", tau)
    return family.make(k, reward=r, **kw), beta


def _t1(ctx: Context, family: UserFamily, params: dict, *, beta_scale: float = 1.0) -> Evidence:
    from dagsim.plugins import equilibrium, solve_family

    subs = {
        "equilibrium_equals_solver": SubClaim("the game's equilibrium = the solver's (E2) optimum", TOL_EQUILIBRIUM),
        "equilibrium_equals_lbfgs": SubClaim("the game's equilibrium = scipy L-BFGS on (E2)", TOL_EQUILIBRIUM),
        "kkt_fixed_point": SubClaim("ν* ∝ ν0·exp(∇Φ(ν*)/β) at the equilibrium", TOL_EQUILIBRIUM),
        "equilibrium_dag": SubClaim("expl(π*, q* = ν*) = 0 on the DAG with the trace KL of π* (P3)", TOL_EXPL),
        "nonnegative": SubClaim("expl(π, q) ≥ 0 for every (π, q)", TOL_ROUND),
        "zero_only_at_optimum": SubClaim("expl(π, ν_π) ≥ J(π*) − J(π) ≥ (β/2)‖ν_π − ν*‖₁²", TOL_ROUND),
    }
    routes, skipped = set(), 0
    for _ in range(ctx.n(10, 3)):
        k = int(ctx.rng.integers(2, 7))
        dag = reference_dag(ctx.rng, k)
        nu0 = M.answer_marginal(dag)
        obj, beta = _draw(ctx, family, k, params)
        if not obj.is_concave_regime(beta):
            skipped += 1
            continue
        game = AnswerGame(obj, nu0[None, :], beta, np.ones(1))
        star = equilibrium(game).nus[0]
        sol, extra = solve_family(obj, family, nu0, beta_scale * beta, game_check=False)  # control: β ↦ 2β
        routes.add(extra["route"])
        solver = sol.nu if sol is not None else star
        subs["equilibrium_equals_solver"].record(np.abs(star - solver).max())
        start = np.full(k, 1.0 / k)
        subs["equilibrium_equals_lbfgs"].record(np.abs(star - e2_lbfgs_optimum(obj, nu0, beta, start)).max())
        subs["kkt_fixed_point"].record(np.abs(gibbs(nu0, obj.reward(star), beta) - star).max())
        probs = markov_policy_for_marginal(dag, star)
        subs["equilibrium_dag"].record(abs(game.exploitability(M.answer_marginal(dag, probs=probs)[None, :],
                                                               policy_kl=M.trace_kl(dag, probs=probs))))
        j_star = game.regularized_value(star[None, :])
        for _ in range(N_PROBES):
            nu = ctx.rng.dirichlet(np.ones(k))[None, :]
            q = ctx.rng.dirichlet(np.ones(k))[None, :]
            subs["nonnegative"].record(max(0.0, -game.exploitability(nu, q)))
            j = game.regularized_value(nu)
            gap = j_star - j
            bound = 0.5 * beta * float(np.abs(nu[0] - star).sum()) ** 2
            subs["zero_only_at_optimum"].record(max(0.0, gap - game.exploitability(nu), bound - gap))
    if not routes:
        raise NotApplicable(f"T1 (NE ⇔ optimum) is the concave case, but is_concave_regime(β) was False on "
                            f"all {skipped} drawn instances (a convex Φ is T2's cooperative game)")
    return combine(subs, {"family": family.name, "solver_routes": sorted(routes),
                          "instances_outside_concave_regime": skipped})


def _t9(ctx: Context, family: UserFamily, params: dict, *, baseline: bool = True) -> Evidence:
    err, count = 0.0, ctx.n(15, 5)
    for _ in range(count):
        n = int(ctx.rng.integers(2, 8))
        k = int(ctx.rng.integers(2, 6))
        dag = random_dag(ctx.rng, n, k, edge_prob=0.35, concentration=1.0)
        theta = ctx.rng.normal(scale=1.5, size=dag.n_edges)
        obj, _ = _draw(ctx, family, k, params)
        fb = M.forward(dag, theta)
        g = np.asarray(obj.reward(fb.marginal), dtype=np.float64)
        if baseline:
            grad = M.logit_gradient(dag, theta, g, fb=fb)
        else:  # control: drop the −π(e)V(u) term of the softmax derivative
            v = M.backward_values(dag, fb.pi, g)
            grad = fb.occupancy[dag.edge_src] * fb.pi * v[dag.edge_dst]
        fd = np.array([(obj.value(M.answer_marginal(dag, theta + FD_STEP * e)) -
                        obj.value(M.answer_marginal(dag, theta - FD_STEP * e))) / (2 * FD_STEP)
                       for e in np.eye(dag.n_edges)])
        err = max(err, float(np.abs(grad - fd).max()))
    return Evidence(count, err, TOL_FD, {"family": family.name})


def _grad_log_pi(dag, pi: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    """∇_θ log π(y) for softmax edge logits: Σ_{e ∈ y} (1_e − π on the siblings of e), ``(n_edges,)``."""
    out = np.zeros(dag.n_edges)
    ptr = dag.node_ptr
    for e in edges:
        u = int(dag.edge_src[e])
        out[ptr[u]:ptr[u + 1]] -= pi[ptr[u]:ptr[u + 1]]
        out[e] += 1.0
    return out


def _expected_update(dag, theta: np.ndarray, G: int, reward_fn) -> np.ndarray:
    """E[(1/G) Σ_i A_i ∇ log π(y_i)] over every group of G traces (RLOO: A_i = R_i − mean_{j≠i} R_j)."""
    pi = M.edge_policy(dag, theta)
    traces = list(M.enumerate_traces(dag, theta))
    scores = np.stack([_grad_log_pi(dag, pi, t.edges) for t in traces])  # (n_traces, n_edges)
    probs = np.array([t.probability for t in traces])
    answers = np.array([t.answer for t in traces])
    total = np.zeros(dag.n_edges)
    for idx in itertools.product(range(len(traces)), repeat=G):
        idx = np.array(idx)
        rewards = reward_fn(answers[idx])  # (G,)
        adv = rewards - (rewards.sum() - rewards) / (G - 1)
        total += float(np.prod(probs[idx])) * (adv @ scores[idx]) / G
    return total


def _small_dag(ctx: Context):
    while True:
        n = int(ctx.rng.integers(2, 5))
        k = int(ctx.rng.integers(2, 4))
        dag = random_dag(ctx.rng, n, k, edge_prob=0.35, concentration=1.0)
        if M.count_traces(dag) <= T10_MAX_TRACES:
            return dag, k


def _t10(ctx: Context, family: UserFamily, params: dict, *, unbiased_claim: bool = False) -> Evidence:
    from dagsim.grpo.effective import effective_reward
    from dagsim.grpo.rewards import group_rewards
    from dagsim.plugins import register_group_reward, solve_family

    kind = register_group_reward(family)
    subs = {
        "update_is_policy_gradient": SubClaim("expected GRPO update (every group enumerated, RLOO) = policy "
                                              "gradient of ḡ_G = E[A_i | z_i] (backward DP)", TOL_ENUMERATION),
        "stationary": SubClaim("the finite-G stationary point solves ν = ν0·exp(ḡ_G(ν)/β)/Z", TOL_FIXED_POINT),
    }
    for _ in range(ctx.n(6, 2)):
        dag, k = _small_dag(ctx)
        theta = ctx.rng.normal(scale=1.0, size=dag.n_edges)
        obj, _ = _draw(ctx, family, k, params)
        kw = {"tau": obj.tau, "task_reward": obj.task_reward, "order": getattr(obj, "order", None)}
        nu = M.answer_marginal(dag, theta)
        for G in T10_ENUM_GROUPS:
            def reward_fn(a, G=G, kw=kw, k=k):
                return group_rewards(family.name, a[None, :], n_answers=k, **kw)[0]

            brute = _expected_update(dag, theta, G, reward_fn)
            if unbiased_claim:  # control: the G → ∞ reward ∇Φ(ν) in place of ḡ_G
                g_bar = np.asarray(obj.reward(nu), dtype=np.float64)
            else:
                g_bar = effective_reward(family.name, nu, G, baseline="rloo", **kw)
            subs["update_is_policy_gradient"].record(np.abs(brute - M.logit_gradient(dag, theta, g_bar)).max())
    dist = {G: [] for G in T10_BIAS_GROUPS}
    for _ in range(ctx.n(6, 2)):
        k = int(ctx.rng.integers(2, 5))
        nu0 = M.answer_marginal(reference_dag(ctx.rng, k))
        obj, beta = _draw(ctx, family, k, params)
        kw = {"tau": obj.tau, "task_reward": obj.task_reward, "order": getattr(obj, "order", None)}
        sol, _ = solve_family(obj, family, nu0, beta, game_check=False)
        star = sol.nu if sol is not None else None  # no optimum (not concave, no solver): no distance
        for G in T10_BIAS_GROUPS:
            def g_fn(nu, G=G, kw=kw):
                return effective_reward(family.name, nu, G, baseline="rloo", **kw)

            nu_g, residual = stationary_point(g_fn, nu0, beta)
            subs["stationary"].record(residual)
            if star is not None:
                dist[G].append(tv(nu_g, star))
    extra = {
        "family": family.name,
        "group_reward": kind,
        "metric": "total variation ½‖ν_G − ν*‖₁ of the finite-G stationary point (RLOO, no std scaling) to "
                  "the equilibrium ν* (the group reward's structural bias, T10)",
        "tv_to_optimum": {f"G={G}": [round(min(v), 6), round(max(v), 6)] for G, v in dist.items() if v},
    }
    return combine(subs, extra)


def user_checks(family: UserFamily, *, params: dict | None = None) -> dict[str, Check]:
    """The three checks for ``family`` as :class:`~proofs_check.registry.Check` objects (ids T1, T9, T10)."""
    params = dict(params or {})
    name = family.name
    return {
        "T1": Check("T1", f"{name}: NE of (E3) ⇔ (E2) optimum (= solver, = L-BFGS); E4 ≥ 0, = 0 only at the optimum",
                    lambda ctx: _t1(ctx, family, params),
                    lambda ctx: _t1(ctx, family, params, beta_scale=2.0), "β ↦ 2β in the solver's optimum"),
        "T9": Check("T9", f"{name}: ∇_θ Φ(ν_θ) = E_π[∇Φ(ν)(a(y)) ∇log π(y)] (backward DP = finite differences)",
                    lambda ctx: _t9(ctx, family, params),
                    lambda ctx: _t9(ctx, family, params, baseline=False), "softmax derivative without −π·V(u)"),
        "T10": Check("T10", f"{name}: expected finite-G GRPO update = policy gradient of ḡ_G = E[A_i|z_i]; "
                            "finite-G stationary point",
                     lambda ctx: _t10(ctx, family, params),
                     lambda ctx: _t10(ctx, family, params, unbiased_claim=True),
                     "the G → ∞ reward ∇Φ(ν) in place of ḡ_G (group reward claimed unbiased)"),
    }


def run_user_checks(family: UserFamily, *, only=None, quick: bool = False, seed: int = 0, params=None,
                    progress: bool = False) -> tuple[list[dict], list[dict]]:
    """Run T1, T9, T10 (or ``only`` of them) for ``family``: (the rows of ``dagsim check``, each with
    ``family``; the claims skipped as not applicable, ``[{"id", "why"}]``)."""
    import sys

    from dagsim.errors import ValidationError

    checks = user_checks(family, params=params)
    wanted = list(checks) if not only else [c.upper() for c in only]
    unknown = [c for c in wanted if c not in checks]
    if unknown:
        raise ValidationError(f"--only with --objective-module: unknown claim id(s) {unknown}; the user-family "
                              f"report has {list(checks)}")
    rows, skipped = [], []
    for cid in wanted:
        if progress:
            print(f"  checking {cid} for {family.name} ...", file=sys.stderr, flush=True)
        try:
            row = run_check(checks[cid], quick=quick, seed=seed)
        except NotApplicable as exc:
            skipped.append({"id": cid, "why": str(exc)})
            continue
        row["family"] = family.name
        rows.append(row)
    if not rows:
        raise ValidationError(f"--objective-module: no claim applies to {family.name!r}: "
                              + "; ".join(f"{s['id']}: {s['why']}" for s in skipped))
    return rows, skipped
