"""GRPO-family algorithms as data: which group reward each one computes and which game it solves.

Each algorithm pairs a *group reward* (what the sampled loop computes from G answers, §6) with the
*answer-level objective* whose equilibrium it targets (§4), so every run can report its distance to the
exact optimum. Adding an algorithm = one entry here (plus its LLM scoring function in ``llm/rewards.py``,
whose registry is checked against this one at import).

This is the one algorithm registry: the simulator, the LLM trainer, the TRL bridge and the CLIs read the
names, objectives, fixed τ, label-freeness and data needs from :data:`ALGORITHMS`, and every unknown name
raises the same :class:`dagsim.errors.UnknownNameError` through :func:`get_algorithm`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagsim.errors import DomainError
from dagsim.registry import lookup


@dataclass(frozen=True)
class Algorithm:
    name: str
    default_objective: str
    allowed_objectives: tuple[str, ...]
    description: str
    fixed_tau: float | None = None  # the τ implied by a baseline's reward (ttrl, empo)
    group_objective: str | None = None  # group reward name when it differs from the objective
    label_free: bool = False  # the algorithm never sees the task reward r (ttrl, empo)
    needs_labels: bool = False  # its default reward reads the task reward r (gt-grpo, diversity-grpo)
    needs_views: bool = False  # it needs >= 2 views of every problem (pairwise-coherence-grpo)
    vote_split: bool = False  # it takes TTRL's vote/train split, n_votes > G (ttrl, empo)

    def resolve(self, objective: str | None, multiview: bool) -> tuple[str, str]:
        """Return (answer-level objective, group reward name) for a run."""
        obj = objective or ("consensus" if multiview and "consensus" in self.allowed_objectives
                            else self.default_objective)
        if obj not in self.allowed_objectives:
            raise DomainError(f"algorithm {self.name!r} takes --objective in {list(self.allowed_objectives)}, "
                              f"got {obj!r}")
        return obj, self.group_objective or obj


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in [
    Algorithm("gt-grpo", "reward", ("reward",), "GRPO with the ground-truth task reward r(z)", needs_labels=True),
    Algorithm("ttrl", "majority", ("majority",),
              "TTRL: reward 1[z = majority of the group], as TTRL's code: ties to the first answer in sample "
              "order (--tie-break split: 1/#modes), unparseable answers out of the vote (the game of "
              "Φ = max_z ν(z), τ = 1, no r)",
              fixed_tau=1.0, group_objective="ttrl", label_free=True, vote_split=True),
    Algorithm("empo", "collision", ("collision",),
              "EMPO: reward = own answer's group frequency counting itself, E = 1/G + (G−1)p/G, as EMPO's "
              "verl code (an unparseable answer is a singleton, 1/G; --entropy-gate for its TRL reward) "
              "(the game of Φ = ½Σν², i.e. collision with τ = 1/2)", fixed_tau=0.5, group_objective="empo",
              label_free=True, vote_split=True),
    Algorithm("diversity-grpo", "entropy", ("entropy", "gini", "tsallis"),
              "Diversity-GRPO: r + τ·(entropy | Gini | Tsallis) reward", needs_labels=True),
    Algorithm("coherence-grpo", "sharpen", ("sharpen", "collision", "majority", "consensus"),
              "Coherence-GRPO: self-consistency (sharpen/collision/majority) or multi-view consensus"),
    Algorithm("pairwise-coherence-grpo", "pairwise", ("pairwise",),
              "Pairwise-Coherence-GRPO: squared-Euclidean agreement between views", needs_views=True),
    Algorithm("constrained-grpo", "reward", ("reward", "entropy", "gini", "sharpen"),
              "Constrained-GRPO: Lagrangian reward g − Σλh with multipliers by dual ascent (T5)"),
]}


ALGORITHM_NAMES = tuple(ALGORITHMS)


def get_algorithm(name: str, field: str = "algorithm") -> Algorithm:
    """The registered algorithm ``name``; :class:`~dagsim.errors.UnknownNameError` (a DomainError and a
    ValidationError, exit 2 at the CLIs) naming ``field`` and every algorithm otherwise."""
    return lookup(ALGORITHMS, name, "algorithm", field)
