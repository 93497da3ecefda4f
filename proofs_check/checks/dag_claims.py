"""P1 (marginal DP), P2 (KL chain rule), P3 (trace-level = answer-level optimum), P4 (Gibbs best response
by the soft backward DP) and T9 (policy-gradient identity), each against brute-force enumeration,
closed forms or finite differences on random DAGs."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from dagsim import marginals as M
from dagsim.generators import random_dag
from dagsim.solvers.trace import solve_trace_level
from dagsim.tolerances import FLOAT64_SUMS, LBFGS
from proofs_check.checks._subclaims import kl as _kl  # proofs_check's own KL, independent of dagsim's
from proofs_check.registry import Context, Evidence, check

#: Central differences with h = 1e-5 have truncation error O(h²) ~ 1e-10 plus round-off ~1e-11/h.
TOL_FD = 1e-6
FD_STEP = 1e-5


def _instance(ctx: Context, max_nodes: int = 9, max_answers: int = 5):
    n = int(ctx.rng.integers(2, max_nodes + 1))
    k = int(ctx.rng.integers(2, max_answers + 1))
    dag = random_dag(ctx.rng, n, k, edge_prob=0.35, concentration=1.0)
    theta = ctx.rng.normal(scale=1.5, size=dag.n_edges)
    return dag, theta


def _p1(ctx: Context, *, normalize: bool = True) -> Evidence:
    err, count = 0.0, ctx.n(60, 15)
    for _ in range(count):
        dag, theta = _instance(ctx)
        if normalize:
            dp = M.answer_marginal(dag, theta)
        else:  # control: forget the per-node softmax normalization (exp(logit) used as a probability)
            mu = M._forward(dag, np.exp(theta), root_value=1.0)
            dp = M.occupancy_to_marginal(dag, mu)
        err = max(err, float(np.abs(dp - M.brute_force_marginal(dag, theta)).max()))
    return Evidence(count, err, FLOAT64_SUMS)


check("P1", "forward DP gives the exact answer marginal (= enumeration)",
      control=lambda ctx: _p1(ctx, normalize=False), control_description="softmax left unnormalized")(_p1)


def _p2(ctx: Context, *, with_conditional: bool = True) -> Evidence:
    err, count = 0.0, ctx.n(40, 10)
    for _ in range(count):
        dag, theta = _instance(ctx)
        p = np.array([t.probability for t in M.enumerate_traces(dag, theta)])
        q = np.array([t.probability for t in M.enumerate_traces(dag)])
        nu, nu0 = M.answer_marginal(dag, theta), M.answer_marginal(dag)
        rhs = _kl(nu, nu0)
        if with_conditional:
            rhs += sum(nu[z] * M.conditional_kl(dag, theta, z) for z in range(dag.n_answers) if nu[z] > 0)
        err = max(err, abs(_kl(p, q) - rhs), abs(M.trace_kl(dag, theta) - rhs))
    return Evidence(count, err, 1e-10)


check("P2", "KL(π‖π0) = KL(ν_π‖ν0) + E_z KL(π(·|z)‖π0(·|z))",
      control=lambda ctx: _p2(ctx, with_conditional=False),
      control_description="conditional term dropped")(_p2)


def _entropy_closed_form(nu0, r, beta, tau):
    """(E2) for Φ = ⟨r,ν⟩ + τH(ν): ν ∝ ν0^{β/(β+τ)} e^{r/(β+τ)} (THEORY §4)."""
    logits = beta / (beta + tau) * np.log(nu0) + r / (beta + tau)
    return np.exp(logits - logsumexp(logits))


def _p3(ctx: Context, *, beta_scale: float = 1.0) -> Evidence:
    err, count = 0.0, ctx.n(12, 4)
    for _ in range(count):
        dag, _ = _instance(ctx, max_nodes=7, max_answers=4)
        r = ctx.rng.normal(size=dag.n_answers)
        beta, tau = float(ctx.rng.uniform(0.3, 2.0)), float(ctx.rng.uniform(0.0, 1.5))
        nu0 = M.answer_marginal(dag)

        def phi(nu, r=r, tau=tau):
            return float(r @ nu - tau * np.sum(nu[nu > 0] * np.log(nu[nu > 0])))

        def grad_phi(nu, r=r, tau=tau):
            return r - tau * (np.log(np.maximum(nu, 1e-300)) + 1.0)

        sol = solve_trace_level(dag, phi, grad_phi, beta)
        star = _entropy_closed_form(nu0, r, beta_scale * beta, tau)
        value = phi(star) - beta * _kl(star, nu0)
        # π*(y) = ν*(a(y)) π0(y | a(y)) on every trace
        traces_pi = np.array([t.probability for t in M.enumerate_traces(dag, sol.logits)])
        formula = np.array([star[t.answer] * t.probability / nu0[t.answer] for t in M.enumerate_traces(dag)])
        err = max(err, float(np.abs(sol.marginal - star).max()), abs(sol.value - value),
                  float(np.abs(traces_pi - formula).max()))
    return Evidence(count, err, LBFGS)


check("P3", "trace-level optimum of (E1) = answer-level program (E2), π* = ν*·π0(y|z)",
      control=lambda ctx: _p3(ctx, beta_scale=2.0), control_description="β ↦ 2β in the answer-level program")(_p3)


def _p4(ctx: Context, *, exponent: str = "g/beta") -> Evidence:
    err, count = 0.0, ctx.n(50, 12)
    for _ in range(count):
        dag, _ = _instance(ctx)
        g = ctx.rng.normal(scale=2.0, size=dag.n_answers)
        beta = float(ctx.rng.uniform(0.2, 3.0))
        w = g / beta if exponent == "g/beta" else g * beta  # control: wrong exponent
        probs, _ = M.soft_backward(dag, w)
        traces = list(M.enumerate_traces(dag))
        tilt = np.array([t.probability * np.exp(g[t.answer] / beta) for t in traces])
        tilt /= tilt.sum()
        ours = np.array([float(np.prod(probs[list(t.edges)])) for t in traces])
        err = max(err, float(np.abs(ours - tilt).max()))
    return Evidence(count, err, FLOAT64_SUMS)


check("P4", "soft backward DP = Gibbs best response π0·e^{g/β}/Z over traces",
      control=lambda ctx: _p4(ctx, exponent="g*beta"), control_description="exponent g·β instead of g/β")(_p4)


def _t9(ctx: Context, *, baseline: bool = True) -> Evidence:
    err, count = 0.0, ctx.n(25, 6)
    for _ in range(count):
        dag, theta = _instance(ctx, max_nodes=7)
        tau = float(ctx.rng.uniform(0.2, 1.0))

        def phi(nu, tau=tau):
            return float(-tau * np.sum(nu * np.log(nu)))

        def grad_phi(nu, tau=tau):
            return -tau * (np.log(nu) + 1.0)

        fb = M.forward(dag, theta)
        g = grad_phi(fb.marginal)
        if baseline:
            grad = M.logit_gradient(dag, theta, g, fb=fb)
        else:  # control: drop the −π(e)V(u) term of the softmax derivative
            v = M.backward_values(dag, fb.pi, g)
            grad = fb.occupancy[dag.edge_src] * fb.pi * v[dag.edge_dst]
        fd = np.array([(phi(M.answer_marginal(dag, theta + FD_STEP * e)) -
                        phi(M.answer_marginal(dag, theta - FD_STEP * e))) / (2 * FD_STEP)
                       for e in np.eye(dag.n_edges)])
        err = max(err, float(np.abs(grad - fd).max()))
    return Evidence(count, err, TOL_FD)


check("T9", "∇_θ Φ(ν_θ) = E_π[∇Φ(ν)(a(y)) ∇log π(y)] (backward DP = finite differences)",
      control=lambda ctx: _t9(ctx, baseline=False), control_description="softmax derivative without −π·V(u)")(_t9)
