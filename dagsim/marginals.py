"""Exact computations on a reasoning DAG by dynamic programming, vectorized over the edge arrays.

Policies are edge-logit vectors ``theta`` of shape ``(n_edges,)`` (softmax over each node's outgoing
edges, THEORY §1); ``None`` means the reference policy π0 of the DAG. Every function here is exact
(no sampling): forward DP for node occupancy and the answer marginal (P1), a backward DP for values
and the policy gradient (T9), the trace-level KL by the chain rule (P2), and the conditional law of
traces given an answer. Cost: O(n_edges) numpy work plus O(n_levels) Python overhead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG
from dagsim.errors import DomainError, ValidationError

#: Default refusal threshold for brute-force trace enumeration (memory/time stay below ~1 s).
DEFAULT_ENUMERATION_LIMIT = 200_000


# ---------------------------------------------------------------------- policies
def edge_policy(dag: ReasoningDAG, logits: np.ndarray | None = None) -> np.ndarray:
    """π(v|u) on every edge, ``(n_edges,)``: a numerically stable softmax of ``logits`` per source node.

    ``logits=None`` returns π0. Logits may be ``-inf`` (a zero-probability edge) but not all of a
    node's logits; NaN and ``+inf`` raise.
    """
    if logits is None:
        return dag.edge_prob
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape != (dag.n_edges,):
        raise ValidationError(f"logits have shape {logits.shape}, expected ({dag.n_edges},)")
    if np.isnan(logits).any() or np.isposinf(logits).any():
        raise ValidationError("logits contain NaN or +inf")
    starts = dag.node_ptr[dag.internal_nodes]  # (n_internal,)
    seg_max = np.maximum.reduceat(logits, starts)  # (n_internal,)
    if np.isneginf(seg_max).any():
        bad = dag.internal_nodes[np.flatnonzero(np.isneginf(seg_max))[0]]
        raise ValidationError(f"all outgoing logits of node {dag.nodes[bad]!r} are -inf")
    counts = np.diff(np.append(starts, dag.n_edges))
    shifted = np.exp(logits - np.repeat(seg_max, counts))  # (n_edges,)
    seg_sum = np.add.reduceat(shifted, starts)
    return shifted / np.repeat(seg_sum, counts)


def policy_logits(dag: ReasoningDAG, edge_probs: np.ndarray) -> np.ndarray:
    """Logits ``log π`` of a Markov policy given by its edge probabilities (``-inf`` where π = 0)."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(edge_probs, dtype=np.float64))


# ---------------------------------------------------------------------- forward DP
def node_occupancy(dag: ReasoningDAG, logits: np.ndarray | None = None, *, probs: np.ndarray | None = None
                   ) -> np.ndarray:
    """μ(u) = P_π(trace visits u), ``(n_nodes,)``, by the forward DP μ(v) = Σ_u μ(u) π(v|u) (P1)."""
    pi = edge_policy(dag, logits) if probs is None else probs
    return _forward(dag, pi, root_value=1.0)


def _forward(dag: ReasoningDAG, edge_weight: np.ndarray, root_value) -> np.ndarray:
    dtype = object if isinstance(root_value, int) else np.float64
    mu = np.zeros(dag.n_nodes, dtype=dtype)
    mu[0] = root_value
    w_in = edge_weight[dag.in_perm]  # (n_edges,) destination-sorted
    src_in = dag.edge_src[dag.in_perm]
    in_ptr = dag.in_ptr
    plan = dag.levels
    for lvl in range(1, len(plan.node_levels)):
        lo, _, hi = plan.node_levels[lvl]
        a, b = in_ptr[lo], in_ptr[hi]
        mu[lo:hi] = np.add.reduceat(mu[src_in[a:b]] * w_in[a:b], plan.fwd_starts[lvl])
    return mu


def answer_marginal(dag: ReasoningDAG, logits: np.ndarray | None = None, *, probs: np.ndarray | None = None
                    ) -> np.ndarray:
    """ν_π(z) = Σ_{y: a(y)=z} π(y), ``(n_answers,)`` (P1), from the occupancy of the leaves."""
    mu = node_occupancy(dag, logits, probs=probs)
    return occupancy_to_marginal(dag, mu)


def occupancy_to_marginal(dag: ReasoningDAG, mu: np.ndarray) -> np.ndarray:
    leaves = dag.leaves
    return np.bincount(dag.leaf_answer[leaves], weights=mu[leaves], minlength=dag.n_answers)


def count_traces(dag: ReasoningDAG) -> int:
    """Exact number of root-to-leaf paths (a Python int; it can exceed 10^1000)."""
    ones = np.ones(dag.n_edges, dtype=object)
    counts = _forward(dag, ones, root_value=1)
    return int(sum(counts[dag.leaves].tolist()))


def count_traces_per_answer(dag: ReasoningDAG) -> list[int]:
    ones = np.ones(dag.n_edges, dtype=object)
    counts = _forward(dag, ones, root_value=1)
    out = [0] * dag.n_answers
    for leaf in dag.leaves.tolist():
        out[int(dag.leaf_answer[leaf])] += int(counts[leaf])
    return out


# ---------------------------------------------------------------------- backward DP
def backward_values(dag: ReasoningDAG, pi: np.ndarray, leaf_values: np.ndarray,
                    edge_costs: np.ndarray | None = None) -> np.ndarray:
    """V(u) = E_π[ Σ_{edges after u} c_e + leaf_value(a(y)) | at u ], ``(n_nodes,)``.

    ``leaf_values`` is per answer ``(n_answers,)``; ``edge_costs`` per edge ``(n_edges,)`` or None.
    """
    values = np.zeros(dag.n_nodes)
    leaves = dag.leaves
    values[leaves] = np.asarray(leaf_values, dtype=np.float64)[dag.leaf_answer[leaves]]
    src_ptr = dag.node_ptr
    dst = dag.edge_dst
    plan = dag.levels
    for lvl in range(len(plan.node_levels) - 1, -1, -1):
        lo, mid, _ = plan.node_levels[lvl]
        if mid == lo:
            continue
        a, b = src_ptr[lo], src_ptr[mid]
        q = values[dst[a:b]]
        if edge_costs is not None:
            q = q + edge_costs[a:b]
        values[lo:mid] = np.add.reduceat(pi[a:b] * q, plan.bwd_starts[lvl])
    return values


def soft_backward(dag: ReasoningDAG, answer_log_weights: np.ndarray, *, reference_logits: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The soft backward DP of P4 in log space: log V(u) = log Σ_v π0(v|u) V(v), V(leaf) = exp(w(a(leaf))).

    Returns ``(edge_probs, log_v)``: the tilted Markov policy π(v|u) = π0(v|u) V(v)/V(u), ``(n_edges,)``,
    and ``log V`` per node ``(n_nodes,)``. ``answer_log_weights`` is ``g/β`` for a Gibbs best response;
    entries may be ``-inf`` (answer excluded). The trace law of the result is π0(y)·exp(w(a(y)))/V(root).
    """
    w = np.asarray(answer_log_weights, dtype=np.float64)
    if w.shape != (dag.n_answers,):
        raise ValidationError(f"answer weights have shape {w.shape}, expected ({dag.n_answers},)")
    if np.isnan(w).any() or np.isposinf(w).any():
        raise ValidationError("answer log-weights contain NaN or +inf")
    log_pi0 = dag.reference_logits if reference_logits is None else edge_log_policy(dag, reference_logits)
    log_v = np.full(dag.n_nodes, -np.inf)
    leaves = dag.leaves
    log_v[leaves] = w[dag.leaf_answer[leaves]]
    src_ptr, dst, plan = dag.node_ptr, dag.edge_dst, dag.levels
    for lvl in range(len(plan.node_levels) - 1, -1, -1):
        lo, mid, _ = plan.node_levels[lvl]
        if mid == lo:
            continue
        a, b = src_ptr[lo], src_ptr[mid]
        s = log_pi0[a:b] + log_v[dst[a:b]]  # (edges of level,)
        starts = plan.bwd_starts[lvl]
        m = np.maximum.reduceat(s, starts)
        m_safe = np.where(np.isfinite(m), m, 0.0)
        counts = np.diff(np.append(starts, b - a))
        with np.errstate(divide="ignore"):
            log_v[lo:mid] = m_safe + np.log(np.add.reduceat(np.exp(s - np.repeat(m_safe, counts)), starts))
    if not np.isfinite(log_v[0]):
        raise DomainError("the tilted policy has zero total mass: every answer with reference mass has weight -inf")
    pi0 = dag.edge_prob if reference_logits is None else np.exp(log_pi0)
    src_lv = log_v[dag.edge_src]  # (n_edges,)
    alive = np.isfinite(src_lv)
    # Nodes that cannot reach any allowed answer keep π0 (the tilted policy never visits them).
    edge_probs = pi0.copy()
    edge_probs[alive] = np.exp(log_pi0[alive] + log_v[dag.edge_dst][alive] - src_lv[alive])
    return edge_probs, log_v


def edge_log_policy(dag: ReasoningDAG, logits: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(edge_policy(dag, logits))


@dataclass(frozen=True)
class ForwardBackward:
    """Everything the exact gradient needs: π, μ, ν for a given logit vector."""

    pi: np.ndarray  # (n_edges,)
    occupancy: np.ndarray  # (n_nodes,)
    marginal: np.ndarray  # (n_answers,)


def forward(dag: ReasoningDAG, logits: np.ndarray | None = None) -> ForwardBackward:
    pi = edge_policy(dag, logits)
    mu = _forward(dag, pi, root_value=1.0)
    return ForwardBackward(pi=pi, occupancy=mu, marginal=occupancy_to_marginal(dag, mu))


def logit_gradient(dag: ReasoningDAG, logits: np.ndarray | None, answer_reward: np.ndarray,
                   *, fb: ForwardBackward | None = None) -> np.ndarray:
    """∂/∂θ ⟨g, ν_θ⟩ for a fixed answer reward g, ``(n_edges,)`` (T9, exact).

    With V(u) = E_π[g(a(y)) | u], the softmax derivative gives ∂/∂θ_e = μ(u) π(e) (V(v) − V(u)) for
    e = (u, v). Plugging g = ∇Φ(ν_θ) gives the gradient of any answer-level Φ(ν_θ) (chain rule); see
    :func:`objective_gradient`.
    """
    fb = forward(dag, logits) if fb is None else fb
    v = backward_values(dag, fb.pi, answer_reward)
    return fb.occupancy[dag.edge_src] * fb.pi * (v[dag.edge_dst] - v[dag.edge_src])


def objective_gradient(dag: ReasoningDAG, logits: np.ndarray | None, phi_gradient) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of Φ(ν_θ) w.r.t. the edge logits (T9). ``phi_gradient(nu) -> (n_answers,)`` is ∇Φ.

    Returns ``(grad, nu)``.
    """
    fb = forward(dag, logits)
    g = np.asarray(phi_gradient(fb.marginal), dtype=np.float64)
    return logit_gradient(dag, logits, g, fb=fb), fb.marginal


def edge_kl_terms(dag: ReasoningDAG, pi: np.ndarray, ref_pi: np.ndarray | None = None) -> np.ndarray:
    """Per-edge π(e)·log(π(e)/π0(e)), ``(n_edges,)`` (0 where π(e) = 0; +inf where π0(e) = 0 < π(e))."""
    ref = dag.edge_prob if ref_pi is None else ref_pi
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pi > 0, pi * (np.log(pi) - np.log(ref)), 0.0)
    return terms


def trace_kl(dag: ReasoningDAG, logits: np.ndarray | None = None, *, ref_logits: np.ndarray | None = None,
             probs: np.ndarray | None = None) -> float:
    """KL(π‖π0) over traces = Σ_u μ_π(u) KL(π(·|u) ‖ π0(·|u)) (chain rule over nodes; P2's left side)."""
    pi = edge_policy(dag, logits) if probs is None else probs
    ref = None if ref_logits is None else edge_policy(dag, ref_logits)
    mu = _forward(dag, pi, root_value=1.0)
    return float(np.sum(mu[dag.edge_src] * edge_kl_terms(dag, pi, ref)))


def trace_kl_gradient(dag: ReasoningDAG, logits: np.ndarray, *, fb: ForwardBackward | None = None) -> np.ndarray:
    """∂ KL(π_θ‖π0)/∂θ, ``(n_edges,)``: a policy gradient with per-edge cost c_e = log π(e)/π0(e).

    KL = E_π[Σ_{e∈y} c_e]; the term E[∇c] = E[∇ log π(y)] vanishes, so ∂/∂θ_e = μ(u) π(e) (Q(e) − W(u))
    with W the backward cost-to-go and Q(e) = c_e + W(v).
    """
    fb = forward(dag, logits) if fb is None else fb
    pi = fb.pi
    with np.errstate(divide="ignore", invalid="ignore"):
        cost = np.where(pi > 0, np.log(pi) - dag.reference_logits, 0.0)
    w = backward_values(dag, pi, np.zeros(dag.n_answers), edge_costs=cost)
    q = cost + w[dag.edge_dst]
    return fb.occupancy[dag.edge_src] * pi * (q - w[dag.edge_src])


# ---------------------------------------------------------------------- conditionals
def answer_reach_probability(dag: ReasoningDAG, pi: np.ndarray, answer: int) -> np.ndarray:
    """h_z(u) = P_π(a(y) = z | trace passes u), ``(n_nodes,)`` (a backward DP)."""
    indicator = np.zeros(dag.n_answers)
    indicator[answer] = 1.0
    return backward_values(dag, pi, indicator)


def conditional_policy(dag: ReasoningDAG, logits: np.ndarray | None, answer: int) -> np.ndarray:
    """Edge probabilities of the Markov chain π(· | a(y) = z): π(v|u) h_z(v) / h_z(u) (Doob h-transform).

    The law of traces of this chain is exactly π(y | z) = π(y) 1[a(y)=z] / ν_π(z). Edges out of nodes
    that cannot reach z get probability 0. Raises if ν_π(z) = 0.
    """
    pi = edge_policy(dag, logits)
    h = answer_reach_probability(dag, pi, answer)
    if h[0] <= 0:
        raise DomainError(f"answer {dag.answers[answer]!r} has probability 0 under this policy")
    h_src = h[dag.edge_src]
    with np.errstate(divide="ignore", invalid="ignore"):
        cond = np.where(h_src > 0, pi * h[dag.edge_dst] / h_src, 0.0)
    return cond


def conditional_kl(dag: ReasoningDAG, logits: np.ndarray | None, answer: int,
                   ref_logits: np.ndarray | None = None) -> float:
    """KL(π(·|z) ‖ π0(·|z)) over traces ending in answer z, by the chain rule on the conditioned chains."""
    cond = conditional_policy(dag, logits, answer)
    cond_ref = conditional_policy(dag, ref_logits, answer)
    mu = _forward(dag, cond, root_value=1.0)
    return float(np.sum(mu[dag.edge_src] * edge_kl_terms(dag, cond, cond_ref)))


# ---------------------------------------------------------------------- enumeration
@dataclass(frozen=True)
class Trace:
    """One root-to-leaf path: node indices, edge indices, its answer index and probability."""

    nodes: tuple[int, ...]
    edges: tuple[int, ...]
    answer: int
    probability: float


def enumerate_traces(dag: ReasoningDAG, logits: np.ndarray | None = None, *,
                     limit: int = DEFAULT_ENUMERATION_LIMIT) -> Iterator[Trace]:
    """Yield every trace with its probability under π (depth-first). Refuses DAGs with > ``limit`` traces."""
    n = count_traces(dag)
    if n > limit:
        digits = len(str(n))
        shown = f"{n:,}" if digits <= 15 else f"about 10^{digits - 1}"
        raise DomainError(f"refusing to enumerate {shown} traces (limit {limit:,}); use the DP functions instead")
    pi = edge_policy(dag, logits)
    ptr, dst = dag.node_ptr, dag.edge_dst
    stack: list[tuple[int, tuple[int, ...], tuple[int, ...], float]] = [(0, (0,), (), 1.0)]
    while stack:
        node, nodes, edges, p = stack.pop()
        a, b = int(ptr[node]), int(ptr[node + 1])
        if a == b:
            yield Trace(nodes=nodes, edges=edges, answer=int(dag.leaf_answer[node]), probability=p)
            continue
        for e in range(b - 1, a - 1, -1):
            v = int(dst[e])
            stack.append((v, nodes + (v,), edges + (e,), p * float(pi[e])))


def brute_force_marginal(dag: ReasoningDAG, logits: np.ndarray | None = None, *,
                         limit: int = DEFAULT_ENUMERATION_LIMIT) -> np.ndarray:
    """ν_π by summing enumerated trace probabilities: the independent oracle for P1."""
    nu = np.zeros(dag.n_answers)
    for t in enumerate_traces(dag, logits, limit=limit):
        nu[t.answer] += t.probability
    return nu
