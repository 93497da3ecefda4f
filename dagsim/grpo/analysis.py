"""Exact finite-group analysis of GRPO (T10, T11) and the complexity comparison of THEORY §7.

* :func:`finite_group_stationary` — the stationary point of the *expected* GRPO update at group size G:
  with exact KL to the reference, the update vanishes iff ν ∝ ν0·exp(ḡ_G(ν)/β), where ḡ_G is the
  effective reward E[A_i | z_i = z] (T10). Solved by damped fixed-point iteration in log space.
* :func:`reward_cost_comparison` — cost and error of three ways to give each of G samples its
  answer-level reward −log ν(z_i): O(G) hashing of the group's answers (the game), Monte Carlo
  marginalization with N extra samples per trace, and trace-level pairwise comparison (O(G²) checks of
  whole traces).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG
from dagsim.divergences import total_variation  # noqa: F401  (re-exported for figures/bench)
from dagsim.errors import SolverError
from dagsim.game.payoff import gibbs
from dagsim.grpo.effective import effective_reward

#: The fixed-point iteration stops when successive iterates differ by less than this (sup norm).
FIXED_POINT_TOL = 1e-12


@dataclass(frozen=True)
class StationaryPoint:
    nu: np.ndarray  # (K,)
    iterations: int
    residual: float


def finite_group_stationary(nu0: np.ndarray, objective: str, G: int, beta: float, *, tau: float = 0.0,
                            task_reward: np.ndarray | None = None, order: float | None = None,
                            estimator: str = "minimax", baseline: str = "rloo", scale: str = "none",
                            damping: float = 0.5, max_iter: int = 20_000,
                            table_size: int | None = None) -> StationaryPoint:
    """Solve ν = Gibbs(ν0, ḡ_G(ν), β) (T10) by log-space damped iteration; raise if it does not converge.

    ``table_size``: the count tables' design size (G − 1: RLOO-aware, T11a; None = G)."""
    nu0 = np.asarray(nu0, dtype=np.float64)
    nu = nu0.copy()
    residual = np.inf
    for it in range(1, max_iter + 1):
        g = effective_reward(objective, nu, G, baseline=baseline, scale=scale, tau=tau, task_reward=task_reward,
                             order=order, estimator=estimator, table_size=table_size)
        target = gibbs(nu0, g, beta)
        log_new = (1 - damping) * np.log(nu) + damping * np.log(target)
        new = np.exp(log_new - np.logaddexp.reduce(log_new))
        residual = float(np.abs(new - nu).max())
        nu = new
        if residual <= FIXED_POINT_TOL:
            return StationaryPoint(nu, it, residual)
    raise SolverError(f"finite-group fixed point did not converge in {max_iter} iterations "
                      f"(residual {residual:.2e}); use more damping")


# ---------------------------------------------------------------------- §7 complexity
@dataclass(frozen=True)
class CostRow:
    method: str
    seconds: float
    error: float
    work: int  # answer hashes, extra sampled traces, or trace-pair comparisons


def reward_cost_comparison(dag: ReasoningDAG, G: int, rng: np.random.Generator, *, n_extra: int = 32,
                           repeats: int = 20) -> list[CostRow]:
    """Time and RMS error of three estimators of log ν(z_i) for the G samples of one group.

    * answer-level (the game): LOO counts by hashing the G answers, plug-in log((C_i+1)/G);
    * Monte Carlo marginalization: N = ``n_extra`` fresh traces per sample, log of the fraction that
      reach the same answer (floored at 1/(2N)): G·N sampled traces;
    * trace-level pairwise: compare every pair of the G traces edge by edge to decide equivalence of
      their final answers (the cost a trace-level coherence reward pays), O(G²·length).
    Error is measured against the exact log ν(z_i) from the DP.
    """
    from dagsim.grpo.sampling import sample_answers, sample_traces
    from dagsim.marginals import answer_marginal

    pi = dag.edge_prob
    nu = answer_marginal(dag)
    rows: dict[str, list[tuple[float, float, int]]] = {"answer-level (game)": [], "Monte Carlo marginal": [],
                                                       "trace-level pairwise": []}
    for _ in range(repeats):
        batch = sample_traces(dag, pi, G, rng)
        z = batch.answers
        exact = np.log(nu[z])

        t0 = time.perf_counter()
        _, inverse, counts = np.unique(z, return_inverse=True, return_counts=True)
        est = np.log(counts[inverse] / G)
        rows["answer-level (game)"].append((time.perf_counter() - t0, _rms(est - exact), G))

        t0 = time.perf_counter()
        extra = sample_answers(dag, pi, G * n_extra, rng).reshape(G, n_extra)
        freq = np.maximum((extra == z[:, None]).mean(axis=1), 0.5 / n_extra)
        est = np.log(freq)
        rows["Monte Carlo marginal"].append((time.perf_counter() - t0, _rms(est - exact), G * n_extra))

        t0 = time.perf_counter()
        traces = [batch.edges[i, : batch.lengths[i]].tolist() for i in range(G)]
        same = np.zeros(G)
        for i in range(G):
            for j in range(G):
                if i != j:
                    same[i] += _traces_equivalent(dag, traces[i], traces[j])
        est = np.log((same + 1) / G)
        rows["trace-level pairwise"].append((time.perf_counter() - t0, _rms(est - exact), G * (G - 1)))
    return [CostRow(k, float(np.median([r[0] for r in v])), float(np.mean([r[1] for r in v])), v[0][2])
            for k, v in rows.items()]


def _traces_equivalent(dag: ReasoningDAG, trace_i: list[int], trace_j: list[int]) -> bool:
    """A trace-level equivalence check: read both traces edge by edge (as a judge reads two solutions)
    and compare the answers they reach. Cost O(|y_i| + |y_j|) per pair."""
    end_i = end_j = 0
    for e in trace_i:
        end_i = dag.edge_dst[e]
    for e in trace_j:
        end_j = dag.edge_dst[e]
    return bool(dag.leaf_answer[end_i] == dag.leaf_answer[end_j])


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))
