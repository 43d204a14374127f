"""Membership inference against one model: MIA-Efficacy (an SVC on the true-class confidence)
and the AUC of the LOSS-threshold attack.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from obliviate.errors import InvalidInputError
from obliviate.evaluation.arrays import float_array

__all__ = ["mia_efficacy", "loss_attack_auc"]


def _probabilities(value: Any, name: str) -> np.ndarray:
    arr = float_array(value, name, ndim=1)
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise InvalidInputError(
            f"{name} must hold true-class probabilities in [0, 1], found {arr.min():g}..{arr.max():g}; "
            "use true_class_probability(logits, labels), not logits or logit-scaled confidences."
        )
    return arr


def mia_efficacy(conf_retain: Any, conf_test: Any, conf_forget: Any, *, seed: int | None = None) -> float:
    """Share of forget examples a confidence-based attack calls non-members, in ``[0, 1]``.

    Jia et al. NeurIPS 2023 ("Model sparsity can simplify machine unlearning"), Sec. 5 and
    App. C.3, used by Fan et al. ICLR 2024 (SalUn), Table 2; reference code
    OPTML-Group/Unlearn-Sparse ``evaluation/SVC_MIA.py`` (``SVC_fit_predict``, the
    ``"confidence"`` entry) with ``main_forget.py``'s ``SVC_MIA_forget_efficacy`` call:
    ``SVC(C=3, gamma="auto", kernel="rbf")`` is fitted on the 1-D feature ``p_y`` (the softmax
    probability of the true class, :func:`~obliviate.evaluation.true_class_probability`) with
    retain examples labelled member (1) and test examples non-member (0); MIA-Efficacy
    ``= 1 - mean(predict(p_y of the forget examples))``. Higher means more forgotten. Papers
    report it x100 (percent); this function returns the fraction.

    Balance, exactly as the reference (``shadow_train = Subset(retain_dataset,
    list(range(test_len)))``): the attack trains on the FIRST ``len(conf_test)`` entries of
    ``conf_retain`` in the order given (callers pass the retain set in data order) and on every
    test entry. Nothing is random. Where the retain set is shorter than the test set (the
    reference would stop with an IndexError) the whole retain set is used. ``seed`` is accepted
    for callers written against the earlier, seeded balancing and has no effect.
    """
    del seed  # no randomness: kept only so existing callers' keyword still binds
    retain = _probabilities(conf_retain, "conf_retain")
    test = _probabilities(conf_test, "conf_test")
    forget = _probabilities(conf_forget, "conf_forget")
    retain = retain[: test.size]
    X = np.concatenate([retain, test]).reshape(-1, 1)
    y = np.concatenate([np.ones(retain.size), np.zeros(test.size)])
    clf = SVC(C=3, gamma="auto", kernel="rbf")
    clf.fit(X, y)
    return float(1.0 - clf.predict(forget.reshape(-1, 1)).mean())


def loss_attack_auc(member_losses: Any, nonmember_losses: Any) -> float:
    """AUC of the LOSS-threshold membership attack: lower loss is called member.

    Yeom et al. CSF 2018 ("Privacy risk in machine learning"), Sec. 3.2, Adversary 1 (predict
    member iff ``loss(x, y) <= tau``); the AUC sweeps every threshold ``tau``, i.e.
    ``P(loss_member < loss_nonmember) + 0.5 P(tie)``, the Mann-Whitney statistic. Convention:
    1.0 = members have lower loss than every non-member (fully exposed); 0.5 = the attack is
    at chance; below 0.5 = members look *less* like training data than the non-members (what
    a class forgotten by the model shows). In :func:`~obliviate.evaluation.evaluate` members are
    the forget set and non-members the test set, so the unlearned model should match the
    retrained model's value rather than 0.5.
    """
    members = float_array(member_losses, "member_losses", ndim=1)
    nonmembers = float_array(nonmember_losses, "nonmember_losses", ndim=1)
    labels = np.concatenate([np.ones(members.size), np.zeros(nonmembers.size)])
    return float(roc_auc_score(labels, -np.concatenate([members, nonmembers])))
