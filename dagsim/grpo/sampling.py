"""Vectorized sampling of traces through a DAG and the score-function gradient of sampled traces.

All traces advance one edge per round; a round draws one uniform per active trace and finds its edge
by a single ``searchsorted`` over the key ``node + cumulative probability within the node`` (edges
are stored sorted by source, so the key is increasing). Cost: O(depth · n · log n_edges).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG
from dagsim.errors import DomainError


@dataclass(frozen=True)
class TraceBatch:
    """``n`` sampled traces: answers ``(n,)``, edge indices ``(n, max_len)`` padded with −1, lengths ``(n,)``."""

    answers: np.ndarray
    edges: np.ndarray
    lengths: np.ndarray

    @property
    def n(self) -> int:
        return int(self.answers.shape[0])


def _edge_keys(dag: ReasoningDAG, pi: np.ndarray) -> np.ndarray:
    """Increasing key per edge: src + (cumulative π within the src node), the last edge of a node at src+1."""
    cum = np.cumsum(pi)  # (n_edges,)
    starts = dag.node_ptr[dag.edge_src]
    before = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    within = cum - before
    # Force the last edge of each node to exactly 1 so round-off never lets a draw escape the node.
    last = dag.node_ptr[dag.edge_src + 1] - 1
    within[np.arange(dag.n_edges) == last] = 1.0
    return dag.edge_src + within


def sample_traces(dag: ReasoningDAG, pi: np.ndarray, n: int, rng: np.random.Generator, *,
                  record_edges: bool = True, start: np.ndarray | None = None) -> TraceBatch:
    """Draw ``n`` independent traces from the Markov policy with edge probabilities ``pi`` ``(n_edges,)``.

    Traces start at the root, or at the nodes ``start`` ``(n,)`` (used to sample a batch of prompts from
    a disjoint union of DAGs in one call).
    """
    if n < 0:
        raise DomainError(f"number of traces must be >= 0, got {n}")
    keys = _edge_keys(dag, np.asarray(pi, dtype=np.float64))
    cur = np.zeros(n, dtype=np.int64) if start is None else np.array(start, dtype=np.int64)  # (n,) current node
    if cur.shape != (n,):
        raise DomainError(f"start must have shape ({n},), got {cur.shape}")
    active = np.arange(n)
    edges_per_round: list[tuple[np.ndarray, np.ndarray]] = []
    is_internal = dag.out_degree > 0
    lengths = np.zeros(n, dtype=np.int64)
    nodes = cur
    while active.size:
        alive = is_internal[nodes]
        if not alive.all():
            active, nodes = active[alive], nodes[alive]
            if not active.size:
                break
        # The key of a node's last edge is exactly node + 1 > node + u, so the search stays in the node.
        e = np.searchsorted(keys, nodes + rng.random(active.size), side="left")
        if record_edges:
            edges_per_round.append((active, e))
        nodes = dag.edge_dst[e]
        cur[active] = nodes
        lengths[active] += 1
    answers = dag.leaf_answer[cur]
    max_len = len(edges_per_round)
    edge_mat = np.full((n, max_len if record_edges else 0), -1, dtype=np.int64)
    if record_edges:
        for t, (idx, e) in enumerate(edges_per_round):
            edge_mat[idx, t] = e
    return TraceBatch(answers=answers, edges=edge_mat, lengths=lengths)


def sample_answers(dag: ReasoningDAG, pi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Answers of ``n`` sampled traces ``(n,)`` (no edge record: the fast path for counting)."""
    return sample_traces(dag, pi, n, rng, record_edges=False).answers


def trace_log_prob(batch: TraceBatch, log_pi: np.ndarray) -> np.ndarray:
    """log π(y_i) = Σ_{e ∈ y_i} log π(e), ``(n,)``."""
    padded = np.append(log_pi, 0.0)  # index −1 -> 0 contribution
    return padded[batch.edges].sum(axis=1)


def score_gradient(dag: ReasoningDAG, batch: TraceBatch, pi: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_i w_i ∇_θ log π_θ(y_i) w.r.t. the edge logits, ``(n_edges,)``.

    For softmax logits, ∇ log π(y) = Σ_{(u,v)∈y} (onehot(u→v) − π(·|u)); aggregating over traces gives
    C_e − W_{src(e)} π(e) with C_e = Σ_i w_i [e ∈ y_i] and W_u = Σ_i w_i [u ∈ y_i, u not a leaf].
    """
    w = np.asarray(weights, dtype=np.float64)
    mask = batch.edges >= 0
    e = batch.edges[mask]
    w_rep = np.broadcast_to(w[:, None], batch.edges.shape)[mask]
    c = np.bincount(e, weights=w_rep, minlength=dag.n_edges)
    node_w = np.bincount(dag.edge_src[e], weights=w_rep, minlength=dag.n_nodes)
    return c - node_w[dag.edge_src] * pi
