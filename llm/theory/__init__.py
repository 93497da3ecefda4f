"""Theory vs training: does GRPO fine-tuning of a real LM land on the answer-level optimum ν* of (E2)?

For each prompt of a small held-out set (THEORY.md §2, §4):

1. ν0 — the base model's certified answer marginal (:func:`llm.certified.certified_marginal`, T = 1);
2. ν* — the optimum of (E2) ``max Φ(ν) − β KL(ν‖ν0)`` with the same objective, β and τ as training, solved by
   dagsim (:func:`predict_optimum`; closed form or the exact dual solver);
3. train the base model with the matching GRPO variant and KL weight β to the frozen base *on those prompts*
   (test-time training, as TTRL does) and measure ν_T, the trained model's certified marginal, at a few
   checkpoints; report TV(ν*, ν_T) against the reference point TV(ν*, ν0).

Answer space. Certified enumeration stops at ``mass`` (0.99 by default), so each marginal is written on a
fixed per-prompt partition: the answers whose certified base mass is ≥ ``min_answer_mass`` (the labels of
ν0), plus a ``<rest>`` bucket that holds everything else — the un-enumerated residual and every answer
outside the label set. ``ν[<rest>] = 1 − Σ_labels m(z)``; the certified lower bounds ``m(z)`` of the labels
are used, so a vector is exact up to the residual, which is reported (``covered_mass``). The (E2) solve
treats ``<rest>`` as one answer with task reward 0 and constraint coefficient 0. TV on the partition is a
lower bound of TV on the full answer space and differs from it by at most the two residuals.

KL (E1/P3 use the sequence-level KL(π‖π0) at T = 1). Two estimators of its gradient are offered:

Both are modes of the trainer (``TrainConfig.kl``, :func:`llm.trainer.train_step`):

- ``"k3-loss"`` (:func:`llm.trainer.optimize_policy`): β·k3 per token added to the token loss (TRL's choice).
  With ``loss_type="dapo"`` both the policy-gradient term and the KL term are summed over a completion's
  tokens and divided by the same total token count, so β multiplies the *sequence* sum of k3 (an unbiased
  estimate of the sequence KL's value). Its gradient, however, is ``E_{a∼π}[(1 − π0/π) ∇log π] = ∇KL(π0‖π)``
  per visited state: the *forward* per-token KL at fixed states, not ∇KL(π‖π0) of the sequence (no
  score-function term). Its stationary point is therefore not (E1)'s.
- ``"seq-reward"`` (the trainer's default, :func:`llm.trainer.sequence_log_ratio`): the sequence log-ratio
  ``−β log π(y)/π0(y)`` is added to each sample's reward before RLOO centering — the exact score-function
  gradient of −β KL(π‖π0) (E1).
"""

from llm.theory.cli import QUICK, build_parser, main
from llm.theory.pipeline import (
    TheoryConfig,
    certify_all,
    held_out_problems,
    run,
    run_objective,
    run_training,
    train_config_for,
    training_problems,
)
from llm.theory.predict import (
    KL_FLOOR,
    LAMBDA_XTOL,
    OBJECTIVES,
    REST,
    answer_labels,
    as_map,
    finite_group_prediction,
    k3_loss_stationary,
    kl_divergence,
    marginal_vector,
    predict_constrained,
    predict_optimum,
    sequence_kl_estimate,
    summarize,
    total_variation,
)
from llm.theory.report import (
    READING,
    annotate_k3_bandit,
    annotate_kl,
    combine,
    markdown_table,
    write_results,
)

__all__ = [
    "KL_FLOOR", "LAMBDA_XTOL", "OBJECTIVES", "QUICK", "READING", "REST", "TheoryConfig", "annotate_k3_bandit",
    "annotate_kl", "answer_labels", "as_map", "build_parser", "certify_all", "combine", "finite_group_prediction",
    "held_out_problems", "k3_loss_stationary", "kl_divergence", "main", "markdown_table", "marginal_vector",
    "predict_constrained", "predict_optimum", "run", "run_objective", "run_training", "sequence_kl_estimate",
    "summarize", "total_variation", "train_config_for", "training_problems", "write_results",
]
