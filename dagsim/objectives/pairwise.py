"""Pairwise coherence between views in the squared-Euclidean geometry (THEORY §4, adopted definition).

Φ(ν_1..ν_m) = Σ_j w_j ⟨r, ν_j⟩ − τ Σ_{(j,k)∈E} ‖ν_j − T_jk ν_k‖², with answer maps T_jk (identity by
default). A map is given as a (K, K) matrix or as an index array t of shape (K,) meaning
(T ν_k)(z) = ν_k(t[z]) — THEORY's ν̂_k(T z) — i.e. the 0/1 matrix T[z, t[z]] = 1.
Concave (a negative semidefinite quadratic) and polynomial (T7).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from dagsim.errors import DomainError
from dagsim.objectives.base import MultiViewObjective, check_beta, register


def answer_map_matrix(answer_map: Any, n_answers: int) -> sp.csr_matrix:
    """A (K, K) sparse matrix for an answer map: None → identity; (K,) ints → selection; (K, K) → itself."""
    K = n_answers
    if answer_map is None:
        return sp.identity(K, format="csr")
    arr = np.asarray(answer_map)
    if arr.shape == (K,) and np.issubdtype(arr.dtype, np.integer):
        if np.any(arr < 0) or np.any(arr >= K):
            raise DomainError(f"answer_maps: index array entries must lie in [0, {K}), got {arr.tolist()}")
        return sp.csr_matrix((np.ones(K), (np.arange(K), arr)), shape=(K, K))
    if arr.shape == (K, K):
        mat = np.asarray(arr, dtype=np.float64)
        if not np.all(np.isfinite(mat)):
            raise DomainError("answer_maps: a matrix has a NaN or infinite entry")
        return sp.csr_matrix(mat)
    raise DomainError(
        f"answer_maps: each map must be None, an integer array of shape ({K},) or a matrix of "
        f"shape ({K}, {K}); got shape {arr.shape} dtype {arr.dtype}"
    )


@register("pairwise")
class PairwiseObjective(MultiViewObjective):
    """Φ = Σ_j w_j⟨r, ν_j⟩ − τ Σ_{(j,k)∈E} ‖ν_j − T_jk ν_k‖² (see module docstring).

    ``pairs`` is a sequence of ordered view pairs (j, k) (None: all j < k). ``answer_maps`` is None
    (all identity), a dict {(j, k): map} or a sequence aligned with ``pairs`` (entries may be None).
    ``rewards(nus)[j]`` = r + (∂Φ/∂ν_j)/w_j with
    ∂Φ/∂ν_j = −2τ[Σ_{(j,k)} (ν_j − T ν_k) − Σ_{(i,j)} Tᵀ(ν_i − T ν_j)];
    THEORY's per-sample form −2τ Σ_k (ν̂_j(z) − ν̂_k(Tz)) is the identity-map case without the 1/w_j.
    There is no consensus player: :meth:`target` returns None.
    """

    def __init__(
        self,
        n_answers: int,
        *,
        reward: Any = None,
        tau: float = 1.0,
        pairs: Any = None,
        answer_maps: Any = None,
        weights: Any = None,
        n_views: Any = None,
    ) -> None:
        super().__init__(n_answers, reward=reward, tau=tau, weights=weights, n_views=n_views)
        m = self.n_views
        if pairs is None:
            pairs = [(j, k) for j in range(m) for k in range(j + 1, m)]
        checked = []
        for pair in pairs:
            try:
                j, k = (int(v) for v in pair)
            except (TypeError, ValueError):
                raise DomainError(f"pairs: each pair must be two view indices, got {pair!r}") from None
            if not (0 <= j < m and 0 <= k < m) or j == k:
                raise DomainError(f"pairs: ({j}, {k}) must be two distinct view indices in [0, {m})")
            checked.append((j, k))
        self.pairs = tuple(checked)
        if answer_maps is None:
            maps = [None] * len(self.pairs)
        elif isinstance(answer_maps, dict):
            unknown = set(answer_maps) - set(self.pairs)
            if unknown:
                raise DomainError(f"answer_maps: keys {sorted(unknown)} are not in pairs {list(self.pairs)}")
            maps = [answer_maps.get(p) for p in self.pairs]
        else:
            maps = list(answer_maps)
            if len(maps) != len(self.pairs):
                raise DomainError(f"answer_maps: got {len(maps)} maps for {len(self.pairs)} pairs")
        self.maps = tuple(answer_map_matrix(t, self.n_answers) for t in maps)  # each (K, K) sparse

    @property
    def curvature(self) -> str:
        return "linear" if self.tau == 0 or not self.pairs else "concave"

    def is_concave_regime(self, beta: float) -> bool:
        check_beta(beta)
        return True

    def exact_solve(self, problem):
        """Primal Newton on the stacked marginals (``solvers/pairwise.py``)."""
        from dagsim.solvers.pairwise import solve_pairwise

        return solve_pairwise(problem)

    def target(self, nus: np.ndarray) -> None:
        """Pairwise coherence has no consensus target (the Target player holds the whole profile)."""
        self.check_nus(nus)
        return None

    def residuals(self, nus: np.ndarray) -> list[np.ndarray]:
        """ν_j − T_jk ν_k for every pair, each ``(K,)``."""
        return [nus[j] - T @ nus[k] for (j, k), T in zip(self.pairs, self.maps, strict=False)]

    def value(self, nus: np.ndarray) -> float:
        nus = self.check_nus(nus)
        base = float(self.weights @ (nus @ self.task_reward))
        return base - self.tau * float(sum(d @ d for d in self.residuals(nus)))

    def coupling_gradient(self, nus: np.ndarray) -> np.ndarray:
        """∂/∂ν of −τ Σ_E ‖ν_j − T ν_k‖², ``(m, K)``."""
        grad = np.zeros_like(nus)
        for ((j, k), T), d in zip(zip(self.pairs, self.maps, strict=False), self.residuals(nus), strict=False):
            grad[j] -= 2.0 * self.tau * d
            grad[k] += 2.0 * self.tau * (T.T @ d)
        return grad

    def rewards(self, nus: np.ndarray) -> np.ndarray:
        nus = self.check_nus(nus)
        return self.task_reward[None, :] + self.coupling_gradient(nus) / self.weights[:, None]

    def coupling_matrix(self) -> sp.csr_matrix:
        """L = Σ_E B_eᵀ B_e, ``(mK, mK)`` sparse, B_e ν = ν_j − T_jk ν_k, so Σ_E ‖·‖² = νᵀ L ν (ν stacked)."""
        m, K = self.n_views, self.n_answers
        L = sp.csr_matrix((m * K, m * K))
        for (j, k), T in zip(self.pairs, self.maps, strict=False):
            blocks = [[None] * m]
            blocks[0][j] = sp.identity(K, format="csr")
            blocks[0][k] = -T if blocks[0][k] is None else blocks[0][k] - T
            for i in range(m):
                if blocks[0][i] is None:
                    blocks[0][i] = sp.csr_matrix((K, K))
            B = sp.bmat(blocks, format="csr")  # (K, mK)
            L = L + B.T @ B
        return L.tocsr()

    def cvxpy_pieces(self, xs, supports, nu0, beta):
        import cvxpy as cp

        K, w = self.n_answers, self.weights
        full = []
        for x, s in zip(xs, supports, strict=False):
            sel = sp.csr_matrix((np.ones(len(s)), (s, np.arange(len(s)))), shape=(K, len(s)))
            full.append(sel @ x)
        base = sum(
            w[j] * (self.task_reward[s] @ x - beta * cp.sum(cp.rel_entr(x, nu0[j, s])))
            for j, (x, s) in enumerate(zip(xs, supports, strict=False))
        )
        if self.tau == 0 or not self.pairs:
            return [(base, [])]
        coupling = sum(cp.sum_squares(full[j] - T @ full[k]) for (j, k), T in zip(self.pairs, self.maps, strict=False))
        return [(base - self.tau * coupling, [])]

    def __repr__(self) -> str:
        return (
            f"PairwiseObjective(n_answers={self.n_answers}, n_views={self.n_views}, tau={self.tau}, "
            f"pairs={list(self.pairs)})"
        )
