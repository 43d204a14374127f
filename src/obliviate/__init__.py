"""obliviate: machine unlearning, measured against the model retrained without the data.

    import obliviate as ob
    data = ob.data.digits()
    train, test = data.split(test_size=0.25, seed=0)
    recipe = ob.Recipe(model="mlp", epochs=30, lr=0.05, seed=0)
    original = ob.train(recipe, train)
    request = ob.ForgetRequest(ids=train.sample_ids(0.1, seed=0))
    result = ob.unlearn(original, request, train, method="scrub")
    table = ob.evaluate(result.model, request, train, test, oracle=ob.retrain(recipe, train, request))
"""

from importlib.metadata import PackageNotFoundError, version

from obliviate import certified, data, errors, evaluation  # certified registers its solvers and DP-SGD
from obliviate.data import Dataset
from obliviate.evaluation import evaluate
from obliviate.request import ForgetRequest
from obliviate.storage import load_model, save_model
from obliviate.training import Recipe, retrain, train
from obliviate.unlearning import (
    Cost,
    Guarantee,
    Unlearner,
    UnlearnResult,
    available_methods,
    make_method,
    unlearn,
)

try:
    __version__ = version("obliviate")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "Cost",
    "Dataset",
    "ForgetRequest",
    "Guarantee",
    "Recipe",
    "UnlearnResult",
    "Unlearner",
    "available_methods",
    "certified",
    "data",
    "errors",
    "evaluate",
    "evaluation",
    "load_model",
    "make_method",
    "retrain",
    "save_model",
    "train",
    "unlearn",
    "__version__",
]
