"""Empirical unlearning: heuristic updates that make the model behave like the retrained one.

Each module in this package holds one method and registers it; importing the package imports
every module, so adding a method is adding one file.
"""

import importlib
import pkgutil

from obliviate.empirical.finetune import Finetune, retain_finetune

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Finetune", "retain_finetune"]
