"""Evaluation of unlearned classifiers: the survey's three axes as functions.

- efficiency: :func:`efficiency` (speed-up over retraining);
- model utility: :func:`accuracy` on the retain and test sets;
- forget quality: forget accuracy, :func:`mia_efficacy`, :func:`loss_attack_auc`,
  :func:`relearn_epochs` (SCRUB's readout; :func:`forget_relearn_steps` the forget-only one), and the NeurIPS 2023 challenge's :func:`nips_epsilons`,
  :func:`nips_forget_score`, :func:`nips_final_score` over many models, and the per-example
  likelihood-ratio attack :func:`ulira` (Hayes et al. 2024);
- against the oracle: :func:`avg_gap`; all at once for one model: :func:`evaluate`;
- attacks that undo unlearning in language models (``evaluation.attacks``): :func:`relearn_attack`,
  :func:`quantization_attack` / :func:`quantize_rtn`, :func:`in_context_attack`, :func:`linear_probe_attack`.

Each function cites its paper and equation in its docstring.
"""

from obliviate.evaluation.accuracy import accuracy, accuracy_of_logits
from obliviate.evaluation.attacks import (
    AttackResult,
    in_context_attack,
    linear_probe_attack,
    quantization_attack,
    quantize_rtn,
    relearn_attack,
)
from obliviate.evaluation.confidence import (
    logit_scaled_confidence,
    per_example_loss,
    true_class_probability,
)
from obliviate.evaluation.gaps import GAP_METRICS, avg_gap, efficiency
from obliviate.evaluation.lm import (
    forget_quality,
    mia_auc,
    min_k,
    min_k_plus_plus,
    model_utility,
    privleak,
    rouge_l_recall,
    truth_ratio,
)
from obliviate.evaluation.mia import loss_attack_auc, mia_efficacy
from obliviate.evaluation.nips import (
    nips_epsilons,
    nips_final_score,
    nips_forget_score,
    nips_points,
)
from obliviate.evaluation.predictions import predict_logits
from obliviate.evaluation.relearn import forget_relearn_steps, relearn_epochs, relearn_target
from obliviate.evaluation.suite import Metrics, evaluate, model_metrics
from obliviate.evaluation.ulira import ULiraResult, ulira, ulira_log_ratio

__all__ = [
    "AttackResult",
    "in_context_attack",
    "linear_probe_attack",
    "quantization_attack",
    "quantize_rtn",
    "relearn_attack",
    "forget_quality",
    "min_k",
    "min_k_plus_plus",
    "mia_auc",
    "model_utility",
    "privleak",
    "rouge_l_recall",
    "truth_ratio",
    "GAP_METRICS",
    "Metrics",
    "accuracy",
    "accuracy_of_logits",
    "avg_gap",
    "efficiency",
    "evaluate",
    "logit_scaled_confidence",
    "loss_attack_auc",
    "mia_efficacy",
    "model_metrics",
    "nips_epsilons",
    "nips_final_score",
    "nips_forget_score",
    "nips_points",
    "per_example_loss",
    "predict_logits",
    "relearn_epochs",
    "relearn_target",
    "forget_relearn_steps",
    "true_class_probability",
    "ULiraResult",
    "ulira",
    "ulira_log_ratio",
]
