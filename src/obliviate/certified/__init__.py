"""Certified unlearning: removal with a provable (epsilon, delta) closeness to retraining.

The noise these guarantees rest on (the loss perturbation b, Descent-to-Delete's published noise,
DP-SGD's gradient noise) is drawn from the recipe's seed by default, so runs are reproducible. The
guarantee then holds only against someone who does not know that seed. For models released to
others, train with ``secure=True`` (``model_options={"secure": True}`` for ``certified_logreg`` and
``d2d_logreg``): the noise then comes from OS entropy. DP-SGD has no secure mode here yet (Opacus's
needs a cryptographic generator package this project does not install).

Each module in this package holds one method (or its model) and registers it; importing the
package imports every module, so adding a method is adding one file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
