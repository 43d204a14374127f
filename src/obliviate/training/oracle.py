"""retrain(recipe, data, request): the oracle, a model trained from scratch without the forget set.

Results are cached on disk under sha256(recipe, sorted retained ids, data fingerprint, torch
version and thread count), saved as self-verifying safetensors and written atomically. A corrupt
or truncated cache file is detected by its hash, discarded and rebuilt; it is never loaded
(:mod:`obliviate.cache`, shared with the language-model fine-tunes).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from obliviate.cache import cache_root, content_key, default_cache_dir, entry_path, load_or_build
from obliviate.data.dataset import Dataset
from obliviate.models import SOLVER_MODELS
from obliviate.request import ForgetRequest
from obliviate.storage import load_model, save_model
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import train

__all__ = ["retrain", "oracle_key", "default_cache_dir"]


def oracle_key(recipe: Recipe, data: Dataset, retained_ids: np.ndarray) -> str:
    """sha256 of (recipe fingerprint, sorted retained ids, data fingerprint, torch build and threads).

    The torch version and CPU thread count are part of the key because they change the float
    reductions, and so the trained weights' last bits: an oracle written by a process with
    another thread count would not equal ``train(recipe, retain)`` in this one bit for bit.
    """
    return content_key(
        {
            "recipe": recipe.fingerprint,
            "retained": hashlib.sha256(np.sort(np.asarray(retained_ids, dtype=np.int64)).tobytes()).hexdigest(),
            "data": data.fingerprint,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )


def retrain(
    recipe: Recipe,
    data: Dataset,
    request: ForgetRequest,
    *,
    cache: bool | str | Path = True,
    show_progress: bool = False,
) -> nn.Module:
    """Train ``recipe`` on ``data`` minus the request's examples; cached unless ``cache=False``.

    ``cache`` may be a folder; ``True`` uses :func:`default_cache_dir`.
    """
    if not isinstance(request, ForgetRequest):
        request = ForgetRequest(ids=request)  # a list or array of ids, as unlearn() accepts
    forget, retain = request.split(data)
    if cache is False or recipe.model in SOLVER_MODELS:  # solver models keep state a state dict does not rebuild
        return train(recipe, retain, show_progress=show_progress)
    key = oracle_key(recipe, data, retain.ids)
    model, _ = load_or_build(
        entry_path(cache_root(cache), "oracles", key),
        load=load_model,
        build=lambda: train(recipe, retain, show_progress=show_progress),
        save=lambda m, path: save_model(m, path, metadata={"kind": "oracle", "key": key, "retained": int(len(retain))}),
    )
    return model
