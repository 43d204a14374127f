"""The knowledge benchmark's questions, corpora and bad input."""

from __future__ import annotations

import pytest

from obliviate.data.knowledge import KNOWN_DOMAINS, N_CHOICES, UnknownDomainError, knowledge_benchmark, period_and_group
from obliviate.errors import InvalidInputError


def test_questions_are_well_formed_and_seeded(small_knowledge):
    bench = small_knowledge
    assert len({q.id for q in bench.questions}) == len(bench.questions)
    for q in bench.questions:
        if q.multiple_choice:
            assert len(q.choices) == N_CHOICES and len(set(q.choices)) == N_CHOICES
        assert 0 <= q.answer < len(q.choices)
    import periodictable

    owner = bench.forget_owners[0]
    el = next(e for e in periodictable.elements if e.number > 0 and e.name == owner.split(":", 1)[1])
    qs = {q.id.split("/", 1)[1]: q for q in bench.questions if q.owner == owner}
    assert qs["mcq"].correct == el.symbol and qs["short"].correct == el.symbol
    assert qs["number"].correct == str(el.number) and qs["number"].probe == "mcq"
    assert qs["reverse"].question == f"Which chemical element has the symbol {el.symbol}?"
    assert qs["reverse"].correct == el.name.capitalize()
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
    assert all(set(v) <= set(bench.forget_owners) for v in bench.neighbours.values())
    full = knowledge_benchmark(seed=0)
    assert full.neighbours["compounds:water"] == ("elements:hydrogen", "elements:oxygen")
    forget, retain = bench.request().split(bench.corpus)
    assert set(forget.owners) == set(bench.forget_owners) and not set(retain.owners) & set(bench.forget_owners)
    assert set(bench.relearn_owners) < set(bench.forget_owners) & set(bench.validation_owners)
    assert not set(bench.heldout_owners()) & set(bench.relearn_owners)
    assert {q.owner for q in bench.attack_questions} == set(bench.relearn_owners)


def test_full_sets_sampling_and_validation_split():
    full = knowledge_benchmark(seed=0)
    assert len(full.forget_owners) == 118  # every element periodictable ships
    countries = {q.owner for q in full.questions if q.domain == "geography"}
    compounds = {q.owner for q in full.questions if q.domain == "compounds"}
    assert len(countries) > 150 and len(compounds) >= 70
    val, test = full.part("validation"), full.part("test")
    assert {q.id for q in val.questions} | {q.id for q in test.questions} == {q.id for q in full.questions}
    assert not {q.owner for q in val.questions} & {q.owner for q in test.questions}
    assert not set(full.relearn_owners) & {q.owner for q in test.questions}  # attacks read no test subject
    share = len(set(full.validation_owners) & set(full.forget_owners)) / 118
    assert 0.2 < share < 0.3
    small = knowledge_benchmark(limit={"elements": 20, "geography": 10, "compounds": 10}, seed=3)
    again = knowledge_benchmark(limit={"elements": 20, "geography": 10, "compounds": 10}, seed=3)
    other = knowledge_benchmark(limit={"elements": 20, "geography": 10, "compounds": 10}, seed=4)
    assert small.forget_owners == again.forget_owners != other.forget_owners  # a seeded sample of subjects
    assert small.validation_owners == again.validation_owners
    with pytest.raises(InvalidInputError, match="split"):
        full.part("train")


@pytest.mark.parametrize(
    ("z", "period", "group"),
    [(1, 1, "group 1"), (2, 1, "group 18"), (5, 2, "group 13"), (26, 4, "group 8"), (55, 6, "group 1"),
     (57, 6, "the lanthanides"), (72, 6, "group 4"), (79, 6, "group 11"), (86, 6, "group 18"),
     (92, 7, "the actinides"), (104, 7, "group 4"), (118, 7, "group 18")],
)
def test_period_and_group(z, period, group):
    assert period_and_group(z) == (period, group)


def test_corpus_never_contains_a_test_question(small_knowledge):
    questions = {q.question for q in small_knowledge.questions}
    for item in small_knowledge.corpus:
        assert item.question not in questions and not any(q in item.answer for q in questions)
        if item.owner.startswith("elements:"):
            assert item.answer.count(". ") >= 2  # forget documents of several sentences
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
