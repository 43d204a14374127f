"""Classification accuracy: the share of examples whose arg-max logit is the true label."""

from __future__ import annotations

import numpy as np
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.evaluation.predictions import predict_logits

__all__ = ["accuracy", "accuracy_of_logits"]


def accuracy_of_logits(logits: np.ndarray, labels: np.ndarray) -> float:
    """``mean(argmax_k logits[i, k] == labels[i])``, in ``[0, 1]``."""
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def accuracy(model: nn.Module, data: Dataset) -> float:
    """Top-1 accuracy of ``model`` on ``data``, in ``[0, 1]``.

    The utility and forget-quality measure of every unlearning paper: retain accuracy (RA),
    test accuracy (TA) and forget accuracy, whose complement is the unlearning accuracy
    ``UA = 1 - accuracy(forget)`` of Jia et al. NeurIPS 2023, Sec. 5 and Fan et al. ICLR 2024
    (SalUn), Table 2.
    """
    if not isinstance(data, Dataset):
        raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}; use ob.data.from_arrays.")
    return accuracy_of_logits(predict_logits(model, data), data.y)
