"""The model's logits on a dataset, computed in batches without gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError

__all__ = ["predict_logits", "model_device"]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def predict_logits(model: nn.Module, data: Dataset | Any, *, batch_size: int = 1024) -> np.ndarray:
    """Logits of ``model`` on every example of ``data``, shape ``(len(data), classes)``, float32.

    ``data`` is an obliviate :class:`~obliviate.data.Dataset` (its rows in order) or an array of
    inputs. The model runs in eval mode under ``torch.no_grad()`` and is left in the mode it was
    in; its weights are not touched.
    """
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if int(batch_size) < 1:
        raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}.")
    if isinstance(data, Dataset):
        X, num_classes = data.tensors[0], data.num_classes
    else:
        X = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data, dtype=np.float32))
        num_classes = None
    if X.ndim < 2 or X.shape[0] == 0:
        raise InvalidInputError(f"data must hold at least one example on axis 0, got inputs of shape {tuple(X.shape)}.")
    device = model_device(model)
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for start in range(0, X.shape[0], int(batch_size)):
                out = model(X[start : start + int(batch_size)].to(device))
                if out.ndim != 2 or (num_classes is not None and out.shape[1] != num_classes):
                    expected = f"(batch, {num_classes})" if num_classes is not None else "(batch, classes)"
                    raise InvalidInputError(
                        f"the model outputs shape {tuple(out.shape)}, expected {expected} logits for this data."
                    )
                outputs.append(out.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outputs).numpy()
