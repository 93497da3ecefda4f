"""A batch of prompts as one DAG: the disjoint union of their DAGs under a fixed super-root.

Batching turns the per-prompt numpy calls of a GRPO step (softmax, sampling, rewards, score gradient,
KL gradient) into one call each on the union, which removes the per-call overhead that dominates
for small DAGs. Prompt p's answers occupy the block ``answer_offsets[p]:answer_offsets[p+1]`` of the
union's answer space, and its edges are ``edge_maps[p]`` (indices into the union's edge arrays, in
the order of the prompt's own DAG). The super-root's edges (probability 1/B each) are never trained;
under the union policy every prompt's quantities are those of its own DAG scaled by 1/B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dagsim.dag import ReasoningDAG

SUPER_ROOT = "⊤"


@dataclass(frozen=True, eq=False)
class DagUnion:
    union: ReasoningDAG
    roots: np.ndarray  # (B,) union node index of each prompt's root
    edge_maps: tuple[np.ndarray, ...]  # per prompt (n_edges_p,) union edge indices
    answer_offsets: np.ndarray  # (B + 1,)
    super_edges: np.ndarray  # union edge indices of the super-root's edges

    @property
    def n_prompts(self) -> int:
        return int(self.roots.shape[0])

    def split_answers(self, vector: np.ndarray) -> list[np.ndarray]:
        """Cut a union answer vector ``(K_total,)`` into the prompts' blocks."""
        return [vector[a:b] for a, b in zip(self.answer_offsets[:-1], self.answer_offsets[1:])]

    def gather_logits(self, per_prompt: Sequence[np.ndarray], super_logit: float = 0.0) -> np.ndarray:
        theta = np.full(self.union.n_edges, super_logit)
        for edges, logits in zip(self.edge_maps, per_prompt):
            theta[edges] = logits
        return theta

    def scatter_logits(self, theta: np.ndarray) -> list[np.ndarray]:
        return [theta[edges].copy() for edges in self.edge_maps]


def union_of(dags: Sequence[ReasoningDAG]) -> DagUnion:
    """Build the union DAG (validated once) and the index maps back to each prompt."""
    names: list[str] = [SUPER_ROOT]
    src, dst, prob = [], [], []
    labels: dict[int, str] = {}
    offsets = [0]
    node_base = []
    b = len(dags)
    for p, dag in enumerate(dags):
        base = len(names)
        node_base.append(base)
        names.extend(f"{p}/{n}" for n in dag.nodes)
        src.append(np.array([0]))
        dst.append(np.array([base]))
        prob.append(np.array([1.0 / b]))
        src.append(dag.edge_src + base)
        dst.append(dag.edge_dst + base)
        prob.append(dag.edge_prob)
        for leaf in dag.leaves.tolist():
            labels[base + leaf] = f"{p}/{dag.answers[dag.leaf_answer[leaf]]}"
        offsets.append(offsets[-1] + dag.n_answers)
    answer_space = [f"{p}/{a}" for p, dag in enumerate(dags) for a in dag.answers]
    reward = np.concatenate([dag.reward for dag in dags])
    src_a, dst_a, prob_a = np.concatenate(src), np.concatenate(dst), np.concatenate(prob)
    union = ReasoningDAG.from_index_arrays(names, src_a, dst_a, prob_a, labels, reward=reward,
                                           answer_space=answer_space, name="batch union")
    position = {n: i for i, n in enumerate(union.nodes)}
    # Union edge id of (u, v): edges are sorted by (src, dst) in the union; search per prompt.
    key = union.edge_src * union.n_nodes + union.edge_dst
    edge_maps = []
    roots = np.empty(b, dtype=np.int64)
    for p, dag in enumerate(dags):
        node_idx = np.array([position[f"{p}/{n}"] for n in dag.nodes], dtype=np.int64)
        roots[p] = node_idx[0]
        k = node_idx[dag.edge_src] * union.n_nodes + node_idx[dag.edge_dst]
        idx = np.searchsorted(key, k)
        assert np.array_equal(key[idx], k), "union edge lookup failed"
        edge_maps.append(idx)
    super_edges = np.flatnonzero(union.edge_src == position[SUPER_ROOT])
    return DagUnion(union, roots, tuple(edge_maps), np.array(offsets), super_edges)
