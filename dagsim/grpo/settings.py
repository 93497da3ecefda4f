"""``GRPOSettings``: the GRPO choices the exact simulator and the LLM trainer share (THEORY §6, T10–T12).

Both ``dagsim.grpo.simulator.SimulationConfig`` and ``llm.trainer.TrainConfig`` carry these settings as
flat fields of their own (their field names, CLI flags, JSON manifests and resume fingerprints are
contracts), take every shared default from :data:`GRPO_DEFAULTS`, validate them through
:meth:`GRPOSettings.validate` and hand them to the reward/advantage code as one frozen object
(``config.grpo_settings``). The TRL bridge (``llm.trl_rewards.make_reward_func``) reads the same defaults.

The names each field accepts come from one registry each: estimators ``dagsim.estimators.ESTIMATORS``,
baselines and scales ``dagsim.grpo.advantages.CENTERINGS`` / ``SCALINGS``, tie-breaks and no-answer
rules ``dagsim.grpo.rewards.TIE_BREAKS`` / ``NO_ANSWER_CHOICES``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields

from dagsim.errors import ValidationError
from dagsim.estimators import ESTIMATOR_NAMES
from dagsim.grpo.advantages import ADVANTAGE_EPS, BASELINES, RLOO_AWARE_BASELINES, SCALES
from dagsim.grpo.rewards import NO_ANSWER_CHOICES, TIE_BREAKS, resolve_no_answer_rule, table_size_for
from dagsim.registry import check_name

__all__ = ["GRPOSettings", "GRPO_DEFAULTS", "GRPO_FIELDS"]


@dataclass(frozen=True)
class GRPOSettings:
    """The group, estimator, advantage and baseline-convention choices of one GRPO run."""

    group_size: int = 8
    """G, samples per prompt (and per view)"""
    estimator: str = "aqp"
    """log/power estimator of the group rewards (T8, T12; ``dagsim.estimators.ESTIMATORS``): aqp, T12's
    variance-aware log table (κ = 2) whose power terms keep their U-statistics"""
    baseline: str = "rloo"
    """advantage centering (T11): rloo | mean | none | doubly-loo (T11b)"""
    scale: str = "none"
    """advantage scaling (T11): none | group | batch"""
    beta: float = 0.0
    """β, the KL weight to the reference policy (the trainer's default, 0 = no reference model; the simulator
    sets its own default 0.5, since its exact optimum needs β > 0)"""
    tau: float = 1.0
    """τ, the objective weight (ignored by gt-grpo; fixed or unused for ttrl/empo)"""
    rloo_aware: bool = True
    """with baseline rloo or mean, count tables designed for G − 1 samples (T11a/T11d)"""
    advantage_eps: float = ADVANTAGE_EPS
    """ε added to the std in group/batch advantage scaling (TRL 1e-4; verl 1e-6)"""
    tie_break: str = "first"
    """ttrl pseudo-label among tied modes: first (TTRL's code) | split (credit 1/#modes)"""
    no_answer: str = "auto"
    """no-answer rule: auto (published: ttrl drop, empo singleton) | drop | singleton | pool"""
    entropy_gate: bool = False
    """empo: EMPO's TRL gate (every reward 0 when the G answers are all distinct)"""
    n_votes: int = 0
    """ttrl/empo: TTRL's vote/train split, vote on n_votes >= G samples and train on the first G (0 = G)"""

    @classmethod
    def of(cls, config) -> GRPOSettings:
        """The settings carried by any config with these fields as attributes (a SimulationConfig, a
        TrainConfig)."""
        return cls(**{name: getattr(config, name) for name in GRPO_FIELDS})

    def validate(self, prefix: str = "", *, estimators: Sequence[str] = ESTIMATOR_NAMES) -> None:
        """Check every field against its registry; ``prefix`` (e.g. "train.") names the fields in messages,
        ``estimators`` is the subset of estimator names the caller's rewards accept."""
        check_name(estimators, self.estimator, "estimator", prefix + "estimator")
        check_name(BASELINES, self.baseline, "baseline", prefix + "baseline")
        check_name(SCALES, self.scale, "scale", prefix + "scale")
        check_name(TIE_BREAKS, self.tie_break, "tie-break", prefix + "tie_break")
        check_name(NO_ANSWER_CHOICES, self.no_answer, "no-answer rule", prefix + "no_answer")
        if isinstance(self.group_size, bool) or int(self.group_size) != self.group_size or self.group_size < 2:
            raise ValidationError(
                f"{prefix}group_size (G) must be >= 2 (a group needs other samples), got {self.group_size}"
            )
        if not (math.isfinite(self.advantage_eps) and self.advantage_eps >= 0):
            raise ValidationError(f"{prefix}advantage_eps must be finite and >= 0, got {self.advantage_eps!r}")
        if self.n_votes != 0 and self.n_votes < self.group_size:
            raise ValidationError(
                f"{prefix}n_votes must be 0 or >= group_size = {self.group_size}, got {self.n_votes}"
            )

    @property
    def table_size(self) -> int | None:
        """T11a: the sample count the count tables are designed for (G − 1 under rloo/mean with
        ``rloo_aware``, else None = G); :func:`dagsim.grpo.rewards.table_size_for`."""
        return table_size_for(self.baseline, self.group_size, rloo_aware=self.rloo_aware)

    @property
    def rloo_tables(self) -> bool:
        """Whether the baseline asks for the (G−1)-tables (rloo or mean with ``rloo_aware``; T11a/T11d)."""
        return self.rloo_aware and self.baseline in RLOO_AWARE_BASELINES

    @property
    def no_answer_rule(self) -> str | None:
        """The ``no_answer_rule`` argument of ``dagsim.grpo.rewards`` (None for "auto": the published rule)."""
        return resolve_no_answer_rule(self.no_answer)


#: The shared defaults: SimulationConfig, TrainConfig and the TRL bridge read their defaults from here.
GRPO_DEFAULTS = GRPOSettings()
#: The field names both configs carry.
GRPO_FIELDS = tuple(f.name for f in fields(GRPOSettings))
