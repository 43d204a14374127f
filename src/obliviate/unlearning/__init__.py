"""The unlearner contract, the method registry and the ``unlearn`` entry point."""

from obliviate.unlearning.api import unlearn
from obliviate.unlearning.base import (
    BEHAVIOURAL,
    EMPIRICAL,
    EXACT,
    Cost,
    Guarantee,
    Unlearner,
    UnlearnResult,
    UnlearnTask,
)
from obliviate.unlearning.many import ManyResult, unlearn_many, vectorised_methods
from obliviate.unlearning.registry import (
    Composite,
    available_methods,
    make_method,
    method_class,
    register,
)

__all__ = [
    "BEHAVIOURAL",
    "EMPIRICAL",
    "EXACT",
    "Composite",
    "Cost",
    "Guarantee",
    "ManyResult",
    "UnlearnResult",
    "UnlearnTask",
    "Unlearner",
    "available_methods",
    "make_method",
    "method_class",
    "register",
    "unlearn",
    "unlearn_many",
    "vectorised_methods",
]
