"""The knowledge benchmark's questions, corpora and bad input."""

from __future__ import annotations

import pytest

from obliviate.data.knowledge import KNOWN_DOMAINS, N_CHOICES, UnknownDomainError, knowledge_benchmark
from obliviate.errors import InvalidInputError


def test_questions_are_well_formed_and_seeded(small_knowledge):
    bench = small_knowledge
    assert len({q.id for q in bench.questions}) == len(bench.questions)
    for q in bench.questions:
        if q.multiple_choice:
            assert len(q.choices) == N_CHOICES and len(set(q.choices)) == N_CHOICES
        assert 0 <= q.answer < len(q.choices)
    iron = {q.probe: q for q in bench.questions if q.owner == "elements:lithium"}
    assert iron["mcq"].correct == "Li" and iron["short"].correct == "Li"
    assert (
        iron["reverse"].question == "Which chemical element has the symbol Li?" and iron["reverse"].correct == "Lithium"
    )
    again = knowledge_benchmark(limit={"elements": 8, "geography": 6, "compounds": 6}, seed=0)
    assert [q.choices for q in again.questions] == [q.choices for q in bench.questions]
    other = knowledge_benchmark(limit={"elements": 8, "geography": 6, "compounds": 6}, seed=1)
    assert [q.choices for q in other.questions] != [q.choices for q in bench.questions]


def test_roles_neighbours_and_request(small_knowledge):
    bench = small_knowledge
    roles = {bench.role(q) for q in bench.questions}
    assert roles == {"forget", "neighbour", "retain"}
    assert all(q.domain == "elements" for q in bench.select(role="forget"))
    assert all(q.domain == "compounds" for q in bench.select(role="neighbour"))
    assert bench.neighbours["compounds:water"] == ("elements:hydrogen", "elements:oxygen")
    forget, retain = bench.request().split(bench.corpus)
    assert set(forget.owners) == set(bench.forget_owners) and not set(retain.owners) & set(bench.forget_owners)
    assert set(bench.relearn_owners) < set(bench.forget_owners)
    assert not set(bench.heldout_owners()) & set(bench.relearn_owners)


def test_corpus_never_contains_a_test_question(small_knowledge):
    questions = {q.question for q in small_knowledge.questions}
    for item in small_knowledge.corpus:
        assert item.question not in questions and item.answer not in questions
    texts = small_knowledge.relearn_texts()
    names = [o.split(":", 1)[1] for o in small_knowledge.relearn_owners]
    assert texts and all(any(n in t.lower() for n in names) for t in texts)


def test_unknown_domain_lists_the_known_ones():
    with pytest.raises(UnknownDomainError) as exc:
        knowledge_benchmark(forget="biology")
    assert all(d in str(exc.value) for d in KNOWN_DOMAINS)
    with pytest.raises(UnknownDomainError):
        knowledge_benchmark(retain=("geography", "history"))
    with pytest.raises(InvalidInputError, match="must all differ"):
        knowledge_benchmark(forget="elements", retain=("elements",))
    with pytest.raises(InvalidInputError, match="limit"):
        knowledge_benchmark(limit=2)


def test_keep_refuses_unknown_ids(small_knowledge):
    kept = small_knowledge.keep([small_knowledge.questions[0].id])
    assert len(kept.questions) == 1
    with pytest.raises(InvalidInputError, match="not in the benchmark"):
        small_knowledge.keep(["nope/mcq"])
