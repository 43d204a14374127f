"""Certified unlearning: removal with a provable (epsilon, delta) closeness to retraining.

The noise these guarantees rest on (the loss perturbation b, Descent-to-Delete's published noise,
DP-SGD's gradient noise) is drawn from the recipe's seed, so runs are reproducible. The guarantee
therefore holds only against someone who does not know that seed: a model released to others must
come from a seed kept secret (and recipes, which record it, must not be released with the model).

Each module in this package holds one method (or its model) and registers it; importing the
package imports every module, so adding a method is adding one file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
