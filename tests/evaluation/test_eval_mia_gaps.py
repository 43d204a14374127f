"""MIA-Efficacy, the LOSS attack's AUC, Avg. Gap and efficiency on cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from obliviate.errors import InvalidInputError
from obliviate.evaluation import avg_gap, efficiency, loss_attack_auc, mia_efficacy


def _separable(rng, n_retain=300, n_test=100):
    retain = rng.uniform(0.97, 1.0, n_retain)  # members: confident
    test = rng.uniform(0.2, 0.6, n_test)  # non-members: not
    return retain, test


def test_mia_efficacy_on_separable_confidences():
    retain, test = _separable(np.random.default_rng(0))
    assert mia_efficacy(retain, test, np.full(20, 0.99)) == 0.0  # looks like training data
    assert mia_efficacy(retain, test, np.full(20, 0.4)) == 1.0  # looks held out: forgotten
    half = np.r_[np.full(10, 0.99), np.full(30, 0.4)]
    assert mia_efficacy(retain, test, half) == pytest.approx(0.75)


def test_mia_efficacy_balances_with_the_first_len_test_retain_examples(monkeypatch):
    """Unlearn-Sparse main_forget.py: shadow_train = Subset(retain, range(len(test))); no randomness."""
    from sklearn.svm import SVC

    import obliviate.evaluation.mia as mia

    fitted = []
    real_fit = SVC.fit

    def spy(self, X, y, *args, **kwargs):
        fitted.append((np.asarray(X)[:, 0].copy(), np.asarray(y).copy()))
        return real_fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(mia.SVC, "fit", spy)
    # Retain in data order: three confident examples first, then seven unsure ones like the test set.
    retain = np.array([0.95, 0.96, 0.97] + [0.2] * 7)
    test = np.array([0.2, 0.21, 0.22])
    forget = np.array([0.2, 0.96])
    # By hand: members are exactly retain[:3] = 0.95..0.97, non-members 0.2..0.22, a clean split, so the
    # unsure forget example is called a non-member and the confident one a member: efficacy 1/2.
    # A random 3 of the 10 retain examples would usually include 0.2s as members and blur the split.
    assert mia_efficacy(retain, test, forget) == pytest.approx(0.5)
    X, y = fitted[-1]
    assert X[y == 1].tolist() == [0.95, 0.96, 0.97] and X[y == 0].tolist() == [0.2, 0.21, 0.22]
    # No randomness: a seed (accepted for old callers) changes nothing, and neither does calling again.
    assert {mia_efficacy(retain, test, forget, seed=s) for s in range(4)} == {0.5}
    assert all(np.array_equal(f[0], fitted[0][0]) for f in fitted)
    # A retain set shorter than the test set is used whole (the reference would raise IndexError).
    mia_efficacy(retain[:2], test, forget)
    X, y = fitted[-1]
    assert X[y == 1].tolist() == [0.95, 0.96] and X[y == 0].tolist() == [0.2, 0.21, 0.22]


def test_mia_efficacy_fits_retain_as_members_and_test_as_non_members_in_equal_numbers(monkeypatch):
    from sklearn.svm import SVC

    import obliviate.evaluation.mia as mia

    seen = {}
    real_fit = SVC.fit

    def spy(self, X, y, *args, **kwargs):
        seen["X"], seen["y"], seen["params"] = np.asarray(X), np.asarray(y), self.get_params()
        return real_fit(self, X, y, *args, **kwargs)

    monkeypatch.setattr(mia.SVC, "fit", spy)
    retain, test = np.full(300, 0.99), np.full(50, 0.4)
    forget = np.array([0.99, 0.98, 0.41, 0.4])
    # forget examples as confident as retain ones are members; as unsure as test ones are not
    assert mia_efficacy(retain, test, forget) == pytest.approx(0.5)
    X, y = seen["X"], seen["y"]
    assert X.shape == (100, 1) and int(y.sum()) == 50  # 50 members (retain), 50 non-members (test)
    assert set(X[y == 1, 0]) == {0.99} and set(X[y == 0, 0]) == {0.4}
    assert seen["params"]["C"] == 3 and seen["params"]["gamma"] == "auto" and seen["params"]["kernel"] == "rbf"


def test_mia_efficacy_rejects_logits():
    with pytest.raises(InvalidInputError, match="true-class probabilities"):
        mia_efficacy(np.array([3.2, 0.5]), np.array([0.5]), np.array([0.5]))


def test_loss_attack_auc_by_hand():
    # Pairs (member < non-member): 0.1<0.3, 0.1<0.15, 0.2<0.3 yes; 0.2<0.15 no -> 3/4.
    assert loss_attack_auc([0.1, 0.2], [0.3, 0.15]) == pytest.approx(0.75)
    assert loss_attack_auc([1.0], [1.0]) == pytest.approx(0.5)  # a tie counts half
    assert loss_attack_auc([5.0, 6.0], [0.1, 0.2]) == 0.0  # members have the higher loss


def test_avg_gap_arithmetic():
    method = {"forget_accuracy": 0.9, "mia_efficacy": 0.1, "retain_accuracy": 1.0, "test_accuracy": 0.95, "x": 7}
    oracle = {"forget_accuracy": 0.8, "mia_efficacy": 0.3, "retain_accuracy": 0.98, "test_accuracy": 0.95}
    # |UA| gap 10, MIA 20, RA 2, TA 0 points -> 32 / 4
    assert avg_gap(method, oracle) == pytest.approx(8.0)
    assert avg_gap(oracle, oracle) == 0.0
    with pytest.raises(InvalidInputError, match="lacks 'mia_efficacy'"):
        avg_gap({"forget_accuracy": 0.9}, oracle)
    with pytest.raises(InvalidInputError, match="not a fraction"):
        avg_gap({**oracle, "test_accuracy": 95.0}, oracle)


def test_efficiency():
    assert efficiency(10.0, 2.0) == 5.0
    with pytest.raises(InvalidInputError, match="method_seconds"):
        efficiency(10.0, 0.0)
    with pytest.raises(InvalidInputError, match="retrain_seconds"):
        efficiency(-1.0, 2.0)
