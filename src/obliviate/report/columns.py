"""How each metric of a results document is named, scaled, compared and explained in the report.

The metrics themselves are computed in :mod:`obliviate.evaluation`; this module only describes
them for presentation: the label, whether the stored value is a fraction in [0, 1] (shown x100,
gaps in percentage points), which direction is better, and one sentence for the page's
"How to read this report" section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Metric", "METRICS", "ORDER", "metric_info", "fmt_value", "fmt_gap", "fmt_time"]


@dataclass(frozen=True)
class Metric:
    """Presentation facts of one metric.

    ``better``: ``"oracle"`` (closest to the retrained model wins), ``"lower"`` or ``"higher"``.
    ``fraction``: stored in [0, 1]; shown x100 and its gap to the oracle is in points.
    ``gap``: whether the leaderboard carries ``<key>_gap`` (method mean - oracle mean).
    """

    key: str
    label: str
    better: str = "oracle"
    fraction: bool = False
    gap: bool = True
    digits: int = 3
    unit: str = ""
    help: str = ""


METRICS: dict[str, Metric] = {
    m.key: m
    for m in (
        Metric(
            "avg_gap",
            "Avg. Gap",
            better="lower",
            gap=False,
            digits=2,
            unit="pts",
            help="Mean over {100 - forget accuracy, MIA-Efficacy, retain accuracy, test accuracy} of "
            "|method - oracle|, in percentage points (Fan et al. ICLR 2024, SalUn, Table 2). "
            "0 for the oracle; lower is better.",
        ),
        Metric(
            "forget_accuracy",
            "Forget acc.",
            fraction=True,
            digits=1,
            unit="%",
            help="Accuracy on the examples to forget. Lower is not automatically better: the target is the "
            "oracle's value. A model retrained without a random 10% still classifies most of them correctly "
            "(they resemble the rest); without a whole class it gets almost none.",
        ),
        Metric(
            "retain_accuracy",
            "Retain acc.",
            fraction=True,
            digits=1,
            unit="%",
            help="Accuracy on the training examples that are kept (utility); the target is the oracle's value.",
        ),
        Metric(
            "test_accuracy",
            "Test acc.",
            fraction=True,
            digits=1,
            unit="%",
            help="Accuracy on held-out test data (generalisation); the target is the oracle's value.",
        ),
        Metric(
            "mia_efficacy",
            "MIA-Eff.",
            fraction=True,
            digits=1,
            unit="%",
            help="Share of the forget examples that a membership-inference attack calls non-members "
            "(an SVC on the true-class confidence, trained with retain examples as members and test "
            "examples as non-members; Jia et al. NeurIPS 2023). Higher means more forgotten; the target "
            "is the oracle's value.",
        ),
        Metric(
            "nips_score",
            "NeurIPS score",
            better="higher",
            help="The NeurIPS 2023 unlearning challenge's final score (Triantafillou et al. 2024): "
            "forget score F \u00d7 (retain accuracy / oracle's) \u00d7 (test accuracy / oracle's), over the seeds. "
            "Higher is better.",
        ),
        Metric(
            "nips_forget_score",
            "NeurIPS F",
            better="higher",
            help="The challenge's forget score F: for each forget example, an empirical epsilon from the best "
            "threshold attack telling the unlearned models' confidences from the retrained models' (one "
            "model per seed), scored 2^-k for bucket k of width 0.5 and averaged. 1 = no attack gets past "
            "epsilon 0.5; higher is better. Its resolution grows with the number of seeds (the challenge "
            "used 512 models per side).",
        ),
        Metric(
            "ulira_accuracy",
            "U-LiRA acc.",
            better="lower",
            fraction=True,
            digits=1,
            unit="%",
            help="Accuracy of U-LiRA (Hayes et al. 2024), a per-example likelihood-ratio attack: for each forget "
            "example, Gaussians fitted to its logit-scaled confidence under shadow unlearned and shadow retrained "
            "models (the first half of the seeds) decide whether each held-out model (the other half, unlearned "
            "and retrained) was unlearned. 50% = indistinguishable from retraining; lower is better.",
        ),
        Metric(
            "ulira_auc",
            "U-LiRA AUC",
            better="lower",
            help="Area under the ROC curve of U-LiRA's likelihood ratio over every (held-out model, forget "
            "example) pair: 0.5 = chance. Lower is better.",
        ),
        Metric(
            "loss_auc",
            "Loss AUC",
            help="AUC of the loss-threshold membership attack (Yeom et al. 2018) with the forget set as "
            "members and the test set as non-members: 1 = every forget example has a lower loss than every "
            "test example, 0.5 = chance, below 0.5 = the forget set looks less familiar than unseen data "
            "(a forgotten class). The target is the oracle's value, not 0.5.",
        ),
        Metric(
            "relearn_epochs",
            "Relearn epochs",
            digits=1,
            help="Epochs of plain SGD (lr 0.01, the model in eval mode) on 500-example draws from the full training "
            "set until the forget loss is back at the original's + 1e-5 (SCRUB's readout_retrain; Golatkar et al. "
            "2020); 101 = not within 100. Fewer epochs = weaker forgetting; the target is the oracle's value.",
        ),
        Metric(
            "relearn_steps",
            "Relearn steps",
            digits=1,
            help="Results written before relearn epochs: fine-tuning steps on the forget set until the model regains "
            "the original model's forget accuracy (the budget + 1 when it never does). Information that is truly gone takes "
            "longer to relearn; the target is the oracle's value.",
        ),
        Metric(
            "seconds",
            "Seconds",
            better="lower",
            gap=False,
            digits=2,
            unit="s",
            help="Wall-clock time of the unlearning run.",
        ),
        Metric(
            "efficiency",
            "Speed-up",
            better="higher",
            gap=False,
            digits=1,
            unit="x",
            help="Retraining seconds / method seconds, per seed.",
        ),
    )
}

#: Known metrics first, in this order; unknown ones follow alphabetically.
ORDER: tuple[str, ...] = tuple(METRICS)


def metric_info(key: str) -> Metric:
    """The presentation facts of ``key``; an unknown metric is compared against the oracle."""
    return METRICS.get(key) or Metric(key, key.replace("_", " "))


def _minus(text: str) -> str:
    """Typographic minus; a value that rounds to zero loses its sign (no "-0.0")."""
    if text.lstrip("+-").strip("0.") == "":
        text = text.lstrip("+-")
    return text.replace("-", "\u2212")


def fmt_value(value: float | None, metric: Metric) -> str:
    """A mean as shown in a table: fractions x100, ``-`` for missing, ``inf`` as the symbol."""
    if value is None or math.isnan(value):
        return "\u2014"
    if math.isinf(value):
        return _minus("-\u221e" if value < 0 else "\u221e")
    scaled = 100 * value if metric.fraction else value
    return _minus(f"{scaled:.{metric.digits}f}")


def fmt_gap(gap: float | None, metric: Metric) -> str:
    """A signed gap to the oracle (already in points for fractions)."""
    if gap is None or math.isnan(gap):
        return "\u2014"
    if math.isinf(gap):
        return "+\u221e" if gap > 0 else "\u2212\u221e"
    return _minus(f"{gap:+.{metric.digits}f}")


def fmt_time(fraction: float | None) -> str:
    """Time as a multiple of retraining: two significant digits, at least two decimals below 1."""
    if fraction is None or math.isnan(fraction):
        return "\u2014"
    if math.isinf(fraction):
        return "\u221e"
    if fraction == 0:
        return "0\u00d7"
    if fraction >= 10:
        return f"{fraction:.0f}\u00d7"
    if fraction >= 0.1:
        return f"{fraction:.2f}\u00d7"
    return f"{fraction:.2g}\u00d7"
