"""``dp_sgd``: unlearning a DP-SGD-trained model by doing nothing, certified by group privacy.

A model trained by DP-SGD to (epsilon, delta)-DP is, for any two training sets differing in one
example, almost equally likely. Two sets differing in k examples are k neighbouring steps apart,
and chaining the DP inequality along that path gives group privacy (Dwork & Roth, "The
Algorithmic Foundations of Differential Privacy", 2014, Theorem 2.2 for pure DP; the (epsilon,
delta) form is their Lemma 2.2 / Vadhan 2017, Lemma 2.3):

    an (epsilon, delta)-DP mechanism is (k * epsilon, k * e^((k-1) * epsilon) * delta)-DP
    for groups of size k.

So the trained model, left unchanged, is (k epsilon, k e^((k-1) epsilon) delta)-indistinguishable
from a model DP-trained on the data without the k forgotten examples: exactly the certified-removal
notion of Guo et al. 2020 (Definition 1) with the retrained DP model as the reference. Neighbouring
means adding or removing one example (Opacus's Poisson-sampling accounting), and the reference is the
same mechanism (same sample rate q and number of steps) run on the remaining data; ``ob.train`` on the
remaining data recomputes q = 1/ceil((n-k)/B), which differs only when k crosses a batch boundary. The method
costs nothing; its price is that the guarantee degrades **linearly in k** in epsilon and
exponentially in delta: at epsilon = 1 and delta = 1e-5 the bound is vacuous (delta_k >= 1) from
k = 11 (delta_10 = 0.81). This is the bound used here. The O(sqrt(k)) growth of advanced composition (Dwork, Rothblum
& Vadhan 2010; Dwork & Roth, Theorem 3.20) bounds k *adaptive* mechanisms run one after another,
not k changed records fed to one mechanism, so it is not used.

Requests add up: the returned model's record lists the ids forgotten so far, and the next request
is certified for the whole group (earlier plus new ids). A model without a DP-SGD record raises
:class:`~obliviate.errors.UnsupportedModelError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from obliviate.certified.dp import PrivacyRecord, attach_privacy, privacy_of
from obliviate.errors import InvalidInputError, UnsupportedModelError
from obliviate.unlearning.base import Guarantee, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = ["DPGroupPrivacy", "group_privacy"]


def group_privacy(epsilon: float, delta: float, k: int) -> tuple[float, float]:
    """``(k * epsilon, min(1, k * e^((k-1) epsilon) * delta))``: the group-privacy bound for k examples.

    Dwork & Roth 2014, Theorem 2.2 / Lemma 2.2. Compared in log space first, so large k gives
    delta = 1 (the bound says nothing) instead of an overflow. ``k = 0`` gives (0, 0).
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise InvalidInputError(f"the group size k must be an integer >= 0, got {k!r}.")
    if not (math.isfinite(epsilon) and epsilon > 0) or not 0 < delta < 1:
        raise InvalidInputError(f"group privacy needs epsilon > 0 and delta in (0, 1), got ({epsilon}, {delta}).")
    k = int(k)
    if k == 0:
        return 0.0, 0.0
    if math.log(k) + (k - 1) * epsilon + math.log(delta) >= 0:
        return k * epsilon, 1.0
    return k * epsilon, k * math.exp((k - 1) * epsilon) * delta


@register
class DPGroupPrivacy(Unlearner):
    """Unlearn k examples from a DP-SGD model by keeping it: certified (k eps, k e^((k-1) eps) delta) by group privacy.

    Dwork & Roth 2014, Theorem 2.2 / Lemma 2.2. The result's guarantee is set per request from the
    model's spent (epsilon, delta) and the cumulative group size; the class-level guarantee has
    neither, as none exists before a model and a request are given.
    """

    name = "dp_sgd"
    guarantee = Guarantee("certified")
    summary = "keep a DP-SGD model; group privacy certifies (k*eps, k*e^((k-1)eps)*delta)"

    @dataclass(frozen=True)
    class Config:
        pass

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        record = privacy_of(model)
        if record is None:
            raise UnsupportedModelError(
                self.name,
                "model without a DP-SGD training record",
                ["a model trained by ob.train(Recipe(..., privacy=DP(epsilon=..., delta=...)), data)"],
            )
        earlier = set(record.forgotten_ids)
        forget_ids = [int(i) for i in task.forget.ids]
        again = sorted(earlier.intersection(forget_ids))
        if again:
            raise InvalidInputError(
                f"{len(again)} id(s) were already forgotten from this model: {again[:10]}. "
                "Request only ids still in its training data."
            )
        seen = len(task.forget) + len(task.retain)
        if seen not in (record.n, record.n - len(earlier)):
            raise InvalidInputError(
                f"the model was DP-trained on {record.n} examples ({len(earlier)} since forgotten), but the data given "
                f"has {seen}: pass the training set it was trained on (or what remains of it)."
            )
        k = len(earlier) + len(forget_ids)
        epsilon, delta = group_privacy(record.epsilon, record.delta, k)
        self.guarantee = Guarantee("certified", epsilon, delta)
        task.record_read(task.forget)  # only the request's ids are read (to count the group)
        updated: PrivacyRecord = replace(record, forgotten_ids=tuple(sorted(earlier.union(forget_ids))))
        return attach_privacy(model, updated)
