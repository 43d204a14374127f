"""Language-model unlearning methods (TOFU-style QA forgetting), one module per method.

Each module registers its method with the shared registry, so ``obliviate.unlearn(lm, request,
qa_data, method="npo")`` and ``"npo+grad_diff"`` work as for classifiers. The contract, task and
shared loop live in :mod:`obliviate.empirical.lm.base`.
"""

import importlib
import pkgutil

from obliviate.empirical.lm.base import LMUnlearner, LMUnlearnTask, PairedLMUnlearner

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["LMUnlearner", "LMUnlearnTask", "PairedLMUnlearner"]
