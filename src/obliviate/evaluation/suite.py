"""``evaluate()``: every single-model metric of an unlearned model, in one read-only table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from torch import nn

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.evaluation.accuracy import accuracy_of_logits
from obliviate.evaluation.confidence import per_example_loss, true_class_probability
from obliviate.evaluation.gaps import avg_gap, efficiency
from obliviate.evaluation.mia import loss_attack_auc, mia_efficacy
from obliviate.evaluation.predictions import predict_logits
from obliviate.evaluation.relearn import relearn_epochs, relearn_target
from obliviate.request import ForgetRequest

__all__ = ["Metrics", "evaluate", "model_metrics"]


class Metrics(Mapping[str, float]):
    """A read-only ``{metric name: value}`` table, in the order the metrics were computed."""

    def __init__(self, values: Mapping[str, float]) -> None:
        self._values = {str(k): float(v) for k, v in values.items()}

    def __getitem__(self, key: str) -> float:
        try:
            return self._values[key]
        except KeyError:
            raise KeyError(f"no metric {key!r}; this table has {', '.join(self._values)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        width = max((len(k) for k in self._values), default=0)
        lines = [f"  {k:<{width}}  {_format(k, v)}" for k, v in self._values.items()]
        return "Metrics(\n" + "\n".join(lines) + "\n)"

    def to_dict(self) -> dict[str, float]:
        return dict(self._values)


def _format(name: str, value: float) -> str:
    if name.endswith(("accuracy", "mia_efficacy")):
        return f"{100 * value:6.2f} %"
    if name == "avg_gap":
        return f"{value:6.2f} points"
    if name == "seconds":
        return f"{value:.3f} s"
    if name == "efficiency":
        return f"{value:.1f} x faster than retraining"
    if name == "relearn_epochs":
        return f"{value:g} epochs"
    return f"{value:.4f}"


def model_metrics(model: nn.Module, forget: Dataset, retain: Dataset, test: Dataset, *, seed: int = 0) -> dict[str, float]:
    """Accuracies, MIA-Efficacy and LOSS-attack AUC of one model (one forward pass per set)."""
    logits = {name: predict_logits(model, d) for name, d in (("retain", retain), ("forget", forget), ("test", test))}
    labels = {"retain": retain.y, "forget": forget.y, "test": test.y}
    conf = {name: true_class_probability(logits[name], labels[name]) for name in logits}
    loss = {name: per_example_loss(logits[name], labels[name]) for name in ("forget", "test")}
    return {
        "retain_accuracy": accuracy_of_logits(logits["retain"], labels["retain"]),
        "test_accuracy": accuracy_of_logits(logits["test"], labels["test"]),
        "forget_accuracy": accuracy_of_logits(logits["forget"], labels["forget"]),
        "mia_efficacy": mia_efficacy(conf["retain"], conf["test"], conf["forget"]),
        "loss_auc": loss_attack_auc(loss["forget"], loss["test"]),
    }


def _check_models(models: Iterable[tuple[str, Any]]) -> None:
    for name, model in models:
        if model is not None and not isinstance(model, nn.Module):
            raise InvalidInputError(f"{name} must be a torch.nn.Module, got {type(model).__name__}.")


def _check_data(data: Any, test: Any) -> None:
    for name, d in (("data", data), ("test", test)):
        if not isinstance(d, Dataset):
            raise InvalidInputError(f"{name} must be an obliviate Dataset, got {type(d).__name__}; use ob.data.from_arrays.")
    if data.input_shape != test.input_shape or data.num_classes != test.num_classes:
        raise InvalidInputError(
            f"test has inputs of shape {test.input_shape} and {test.num_classes} classes, but data has "
            f"{data.input_shape} and {data.num_classes}; pass the test split of the same dataset."
        )
    shared = np.intersect1d(data.ids, test.ids)
    if shared.size:
        raise InvalidInputError(
            f"{shared.size} id(s) are in both data and test (e.g. {shared[:5].tolist()}); the test set must be "
            "held out from training: use data.split(...)."
        )


def evaluate(
    model: nn.Module,
    request: ForgetRequest | Iterable[int] | np.ndarray,
    data: Dataset,
    test: Dataset,
    *,
    oracle: nn.Module | None = None,
    original: nn.Module | None = None,
    cost: Any = None,
    oracle_seconds: float | None = None,
    relearn: bool = True,
    seed: int = 0,
) -> Metrics:
    """Evaluate an unlearned ``model`` on the request's forget and retain sets of ``data`` and on ``test``.

    ``data`` is the training set the original model saw and ``request`` what was forgotten
    (a :class:`~obliviate.request.ForgetRequest` or ids). Keys:

    - ``retain_accuracy``, ``test_accuracy``, ``forget_accuracy`` (fractions; UA = 1 - forget
      accuracy), :func:`~obliviate.evaluation.accuracy`;
    - ``mia_efficacy`` (fraction), :func:`~obliviate.evaluation.mia_efficacy` (no randomness: the first len(test) retain examples);
    - ``loss_auc``: :func:`~obliviate.evaluation.loss_attack_auc` with the forget set as members
      and the test set as non-members;
    - ``relearn_epochs`` when ``relearn`` and ``original`` is given:
      :func:`~obliviate.evaluation.relearn.relearn_epochs` on ``data`` (the full training set) to
      the original's forget loss + 1e-5 (its default budget; ``max_epochs + 1`` = not reached);
    - with ``oracle`` (the retrained model): ``oracle_<metric>`` for the four accuracy and MIA
      metrics and ``oracle_loss_auc``, and ``avg_gap`` (:func:`~obliviate.evaluation.avg_gap`,
      percentage points);
    - with ``cost`` (anything with ``.seconds``, e.g. :class:`~obliviate.Cost`): ``seconds``;
      and with ``oracle_seconds`` too, ``efficiency`` = oracle_seconds / seconds, left out when
      the method took no time (the original model itself).
    """
    _check_models([("model", model), ("oracle", oracle), ("original", original)])
    if model is None:
        raise InvalidInputError("model must be a torch.nn.Module, got None.")
    _check_data(data, test)
    if not isinstance(request, ForgetRequest):
        request = ForgetRequest(ids=request)
    forget, retain = request.split(data)
    values: dict[str, float] = model_metrics(model, forget, retain, test, seed=seed)
    if relearn and original is not None:
        target = relearn_target(original, forget)
        values["relearn_epochs"] = float(relearn_epochs(model, forget, data, target_loss=target, seed=seed))
    if oracle is not None:
        reference = model_metrics(oracle, forget, retain, test, seed=seed)
        values.update({f"oracle_{k}": v for k, v in reference.items()})
        values["avg_gap"] = avg_gap(values, reference)
    if cost is not None:
        seconds = getattr(cost, "seconds", None)
        if seconds is None:
            raise InvalidInputError(f"cost must have a .seconds attribute (an obliviate Cost), got {type(cost).__name__}.")
        seconds = float(seconds)
        if not seconds >= 0.0:
            raise InvalidInputError(f"cost.seconds must be >= 0, got {seconds}.")
        values["seconds"] = seconds
        if oracle_seconds is not None and seconds > 0.0:
            values["efficiency"] = efficiency(oracle_seconds, seconds)
    elif oracle_seconds is not None:
        raise InvalidInputError("oracle_seconds was given without cost; pass cost=result.cost to get efficiency.")
    return Metrics(values)
