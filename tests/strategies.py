"""Hypothesis strategies that build valid inputs directly (STYLE §7): no filtering.

``reasoning_dags`` draws a DAG that is valid by construction: nodes 0..n−1 in topological order, every
node i ≥ 1 has a parent in 0..i−1 (so everything is reachable), nodes without children link to an
answer leaf, every answer leaf has a parent, and each node's outgoing probabilities are normalized
positive weights with a floor (so logs stay finite).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dagsim.dag import ReasoningDAG, Task

#: Smallest raw weight before normalization: keeps every edge probability >= ~1e-2 / out-degree.
WEIGHT_FLOOR = 0.05


@st.composite
def reasoning_dags(draw, max_internal: int = 7, max_answers: int = 4, min_answers: int = 1) -> ReasoningDAG:
    n = draw(st.integers(1, max_internal))
    k = draw(st.integers(min_answers, max_answers))
    edges: set[tuple[int, int]] = set()
    for i in range(1, n):
        edges.add((draw(st.integers(0, i - 1)), i))
    for i in range(n):
        for j in range(i + 1, n):
            if draw(st.booleans()) and draw(st.booleans()):
                edges.add((i, j))
    for a in range(k):
        edges.add((draw(st.integers(0, n - 1)), n + a))
    parents = {u for u, _ in edges}
    for i in range(n):
        if i not in parents or draw(st.booleans()):
            edges.add((i, n + draw(st.integers(0, k - 1))))
    edge_list = sorted(edges)
    src = np.array([u for u, _ in edge_list])
    dst = np.array([v for _, v in edge_list])
    raw = np.array([draw(st.floats(WEIGHT_FLOOR, 1.0)) for _ in edge_list])
    sums = np.bincount(src, weights=raw, minlength=n)
    prob = raw / sums[src]
    names = [f"n{i}" for i in range(n)] + [f"z{a}" for a in range(k)]
    labels = {n + a: str(a) for a in range(k)}
    reward = None
    if draw(st.booleans()):
        reward = {str(a): draw(st.floats(-1.0, 1.0)) for a in range(k)}
    return ReasoningDAG.from_index_arrays(names, src, dst, prob, labels, reward=reward)


@st.composite
def logits_for(draw, dag: ReasoningDAG, scale: float = 2.0) -> np.ndarray:
    vals = draw(st.lists(st.floats(-scale, scale), min_size=dag.n_edges, max_size=dag.n_edges))
    return np.array(vals, dtype=np.float64)


@st.composite
def dag_and_logits(draw, **kwargs):
    dag = draw(reasoning_dags(**kwargs))
    return dag, draw(logits_for(dag))


@st.composite
def simplex_points(draw, k: int, floor: float = 1e-3) -> np.ndarray:
    """A point of the probability simplex with every coordinate >= ``floor``/k-ish (logs stay finite)."""
    raw = np.array(draw(st.lists(st.floats(floor, 1.0), min_size=k, max_size=k)))
    return raw / raw.sum()


@st.composite
def tasks(draw, max_views: int = 3, **kwargs) -> Task:
    m = draw(st.integers(1, max_views))
    views = [draw(reasoning_dags(**kwargs)).with_reward(None) for _ in range(m)]
    raw = np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=m, max_size=m)))
    return Task.from_views(views, weights=raw / raw.sum())
