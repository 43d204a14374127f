"""Certified unlearning: removal with a provable (epsilon, delta) closeness to retraining.

Each module in this package holds one method (or its model) and registers it; importing the
package imports every module, so adding a method is adding one file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
