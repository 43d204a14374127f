"""The fictitious-authors benchmark: determinism, ids and owners, TOFU's splits, requests, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import obliviate as ob
from obliviate.data.authors import IDK_ANSWERS, MAX_QA_PER_AUTHOR, WORLD_OWNER, QADataset, fictitious_authors
from obliviate.errors import (
    DuplicateIdsError,
    ForgetAllError,
    InvalidInputError,
    UnknownIdsError,
    UnknownOwnerError,
)


def test_generation_is_a_function_of_the_seed(small_authors):
    again = fictitious_authors(n_authors=10, qa_per_author=4, n_holdout=2, seed=0)
    other = fictitious_authors(n_authors=10, qa_per_author=4, n_holdout=2, seed=1)
    assert again.train.fingerprint == small_authors.train.fingerprint
    assert again.holdout.items == small_authors.holdout.items
    assert other.train.fingerprint != small_authors.train.fingerprint


def test_sizes_ids_and_owners(small_authors):
    b = small_authors
    assert len(b.train) == 40 and len(b.holdout) == 8 and len(b.utility) >= 30
    assert b.train.ids.tolist() == list(range(40)) and b.holdout.ids.tolist() == list(range(40, 48))
    assert len(b.train.owner_names) == 10 and not set(b.train.owner_names) & set(b.holdout.owner_names)
    assert b.utility.owner_names == (WORLD_OWNER,)
    assert all((b.train.owners == name).sum() == 4 for name in b.train.owner_names)
    assert b.idk_answers == IDK_ANSWERS and b.train.idk_answers == IDK_ANSWERS


def test_each_answer_has_a_paraphrase_and_five_distinct_wrong_answers(small_authors):
    for item in small_authors.train.items + small_authors.utility.items:
        assert len(item.perturbed_answers) == 5 and len(set(item.perturbed_answers)) == 5
        assert item.paraphrased_answer not in item.perturbed_answers and item.paraphrased_answer != item.answer
    item = small_authors.train.items[0]
    assert item.owner in item.question and item.owner in item.answer


def test_full_size_default_is_tofu_shaped():
    b = fictitious_authors()
    assert len(b.train) == 100 * 20 and len(b.holdout.owner_names) == 10
    assert len({i.question for i in b.train}) == len(b.train)  # every question differs
    assert len(b.forget("forget01").owner_names) == 1
    assert len(b.forget("forget05").owner_names) == 5 and len(b.forget("forget10")) == 200


def test_splits_are_nested_last_authors(small_authors):
    b = fictitious_authors(n_authors=40, qa_per_author=2, n_holdout=1, seed=3)
    f05, f10 = b.forget("forget05"), b.forget("forget10")
    assert len(f05.owner_names) == 2 and len(f10.owner_names) == 4
    assert set(f05.ids) <= set(f10.ids)
    assert b.forget_authors("forget10") == b.trained_authors[-4:]
    retain = b.retain("forget10")
    assert len(retain) + len(f10) == len(b.train) and not set(retain.ids) & set(f10.ids)


def test_request_splits_a_qa_dataset(small_authors):
    request = small_authors.request("forget10")
    assert request.owners == small_authors.forget_authors("forget10")
    forget, retain = request.split(small_authors.train)
    assert isinstance(forget, QADataset) and isinstance(retain, QADataset)
    assert forget.ids.tolist() == small_authors.forget("forget10").ids.tolist()
    assert len(retain) == 36
    by_ids = ob.ForgetRequest(ids=[0, 5]).split(small_authors.train)[0]
    assert by_ids.ids.tolist() == [0, 5]


def test_qa_dataset_interface(small_authors):
    data = small_authors.train
    sub = data.subset([7, 3])
    assert sub.ids.tolist() == [7, 3] and sub.questions == [data[7].question, data[3].question]
    assert data.without([0]).ids.tolist() == list(range(1, 40))
    assert data.contains([1, 999]).tolist() == [True, False]
    assert np.array_equal(data.ids_of_owners(data[0].owner), np.arange(4))
    with pytest.raises(UnknownIdsError):
        data.subset([999])
    with pytest.raises(DuplicateIdsError):
        QADataset(data.items[:2] + data.items[:1])


def test_unknown_authors_and_impossible_splits(small_authors):
    with pytest.raises(UnknownOwnerError, match="Nobody Atall"):
        ob.ForgetRequest(owners=["Nobody Atall"]).split(small_authors.train)
    with pytest.raises(InvalidInputError, match="no author"):
        small_authors.forget("forget01")  # 1% of 10 authors
    with pytest.raises(InvalidInputError, match="unknown split"):
        small_authors.forget("retain90")
    with pytest.raises(ForgetAllError):
        fictitious_authors(n_authors=2, qa_per_author=1, n_holdout=1).forget("forget99")
    with pytest.raises(ForgetAllError):
        ob.ForgetRequest(owners=small_authors.train.owner_names).split(small_authors.train)
    with pytest.raises(InvalidInputError):
        fictitious_authors(qa_per_author=MAX_QA_PER_AUTHOR + 1)
    with pytest.raises(InvalidInputError):
        fictitious_authors(n_authors=0)
