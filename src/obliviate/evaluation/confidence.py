"""Per-example confidence of the true class: the plain softmax probability and its logit scaling.

Both take ``logits`` of shape ``(n, classes)`` and ``labels`` of shape ``(n,)`` (numpy or
torch) and return a float64 numpy array of shape ``(n,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from obliviate.evaluation.arrays import float_array, label_array

__all__ = ["logit_scaled_confidence", "true_class_probability", "per_example_loss"]

#: Added inside both logarithms of the logit-scaled confidence, as in the reference code.
LOG_FLOOR = 1e-45


def _checked(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    z = float_array(logits, "logits", ndim=2, keep_dtype=True)
    y = label_array(labels, "labels", n=z.shape[0], num_classes=z.shape[1])
    return z, y


def logit_scaled_confidence(logits: Any, labels: Any) -> np.ndarray:
    """``log(p_y + 1e-45) - log(sum_{k != y} p_k + 1e-45)`` per example.

    The logit-scaled confidence of the NeurIPS 2023 unlearning challenge (Triantafillou et al.
    2024, arXiv 2406.09073, Sec. 3; reference code google-deepmind/unlearning_evaluation
    ``metric.py::compute_logit_scaled_confidence``, itself from LiRA, Carlini et al. S&P 2022,
    Eq. 4). Computed as the reference does: the largest logit is subtracted and ``exp`` taken
    in the logits' own dtype, then the softmax and both logarithms in float64, so float32
    logits give the reference's numbers bit for bit. The input is not modified.
    """
    z, y = _checked(logits, labels)
    rows = np.arange(z.shape[0])
    probs = np.array(np.exp(z - np.max(z, axis=1, keepdims=True)), dtype=np.float64)
    probs /= np.sum(probs, axis=1, keepdims=True)
    p_true = probs[rows, y]
    probs[rows, y] = 0.0
    p_wrong = np.sum(probs, axis=1)
    return np.log(p_true + LOG_FLOOR) - np.log(p_wrong + LOG_FLOOR)


def true_class_probability(logits: Any, labels: Any) -> np.ndarray:
    """``softmax(logits)_y`` per example: the confidence feature of MIA-Efficacy.

    Jia et al. NeurIPS 2023 ("Model sparsity can simplify machine unlearning"), App. C.3;
    reference code OPTML-Group/Unlearn-Sparse ``evaluation/SVC_MIA.py`` (``collect_prob`` then
    ``torch.gather(prob, 1, labels)``). The softmax runs in torch in the logits' dtype, as there.
    """
    z, y = _checked(logits, labels)
    probs = torch.softmax(torch.from_numpy(np.ascontiguousarray(z)), dim=-1).numpy()
    return probs[np.arange(z.shape[0]), y].astype(np.float64)


def per_example_loss(logits: Any, labels: Any) -> np.ndarray:
    """Cross-entropy ``-log softmax(logits)_y`` per example: the LOSS attack's score (Yeom et al. 2018)."""
    z, y = _checked(logits, labels)
    return F.cross_entropy(torch.from_numpy(np.ascontiguousarray(z)), torch.from_numpy(y), reduction="none").numpy().astype(
        np.float64
    )
