"""The RAG answerer's plumbing on a tiny GPT (prompts, what reaches the context before and after a delete), the
extraction checks and the output filter. SmolLM2's answers are measured in benchmarks/retrieval.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from obliviate.errors import InvalidInputError
from obliviate.models.lm import tiny_gpt
from obliviate.retrieval import DocumentStore
from obliviate.retrieval.attacks import (
    OutputFilter,
    contains_fact,
    extraction_prompts,
    injection_cases,
    leaked,
)
from obliviate.retrieval.rag import RAGAnswerer, build_prompt


@pytest.fixture(scope="module")
def tiny(small_corpus):
    return tiny_gpt(small_corpus[0] * 3, n_layer=1, n_embd=32, n_head=2, vocab_size=300, max_length=512)


@dataclass
class _Hit:
    text: str


def test_prompt_numbers_the_documents_before_the_question(tiny):
    prompt = build_prompt(tiny, "Where was Curie born?", ["doc one", "doc two"])
    assert prompt.index("[1] doc one") < prompt.index("[2] doc two") < prompt.index("Question: Where was Curie born?")
    assert build_prompt(tiny, "Q?", []) == tiny.prompt("Q?")


def test_after_a_delete_the_document_never_reaches_the_context(tiny, tmp_path, small_corpus):
    with DocumentStore(tmp_path / "s", embedder="hashing", create=True) as store:
        ids = store.add(small_corpus[0], owners=small_corpus[1])
        rag = RAGAnswerer(tiny, store, k=2, max_new_tokens=4)
        question = "Where was Marie Curie born?"
        before = rag.answer([question])[0]
        assert ids[0] in before.context_ids and any("Warsaw" in c for c in before.context)
        store.delete([ids[0]])
        prompts = [question, *extraction_prompts("Marie Curie", first_words="Marie Curie was born in")]
        for answer in rag.answer(prompts):
            assert ids[0] not in answer.context_ids
            assert not any(contains_fact(c, "Warsaw") for c in answer.context)
        closed = RAGAnswerer(tiny, store, k=0, max_new_tokens=4).answer([question])[0]
        assert closed.context_ids == [] and closed.context == []
    with pytest.raises(InvalidInputError):
        RAGAnswerer(tiny, store, k=-1)


def test_contains_fact_matches_whole_words_and_spelled_out_values():
    assert contains_fact("She was born in Warsaw, Poland.", "Warsaw")
    assert contains_fact("W-A-R-S-A-W", "Warsaw")
    assert not contains_fact("Warsawian food", "Warsaw")
    assert not contains_fact("F e", "Fe")  # too short to count spelled out


def test_leak_detection_reads_phone_digits_and_emails():
    assert leaked("Call 555 123 4567 now", ["555-123-4567"])
    assert leaked("write to ANA.LI@example.org", ["ana.li@example.org"])
    assert not leaked("born in 1979 in Lyon", ["555-123-4567", "ana.li@example.org"])


def test_output_filter_redacts_contact_details_and_copies_of_other_documents():
    f = OutputFilter()
    hits = [_Hit("Lisa Stone was born in Lyon in 1979 and works at Acme."),
            _Hit("Omar Diaz shares an office with Lisa Stone at Acme. His private phone number is 555-123-4567.")]
    text, red = f("Where was Lisa Stone born?", "Lisa Stone was born in Lyon. Call 555-123-4567 or o.d@acme.com.", hits)
    assert "555" not in text and "o.d@acme.com" not in text and "Lyon" in text and len(red) == 2
    unrelated = [*hits, _Hit("Omar Diaz shares an office with Ken Ito at Acme and likes long walks.")]
    dump = "Omar Diaz shares an office with Ken Ito at Acme and likes long walks."
    text, red = f("Where was Lisa Stone born?", f"She was born in Lyon. {dump}", unrelated)
    assert "Omar" not in text and "Lyon" in text and red == [dump]
    text, _ = f("Where was Lisa Stone born?", "Lisa Stone was born in Lyon in 1979 and works at Acme.", hits[::-1])
    assert "Acme" in text  # copying a document about the question is the answer, not a leak, whatever its rank
    text, _ = f("Where was she born?", "Omar Diaz shares an office with Lisa Stone at Acme.", hits)
    assert text == "[redacted]"  # no anchors in the question: only the best-ranked document may be copied
    text, _ = f("Who has the number 555-123-4567?", "555-123-4567 is Omar's.", hits)
    assert "555-123-4567" in text  # the question already held it


def test_injection_cases_are_seeded_and_the_bystander_mentions_the_asked_person():
    a, b = injection_cases(n=3, seed=4), injection_cases(n=3, seed=4)
    assert a == b
    for case in a:
        name = case.question.removeprefix("Where was ").removesuffix(" born?")
        assert name in case.bystander_record and name in case.injection and case.answer in case.asked_record
        assert all(leaked(case.bystander_record, [s]) for s in case.secrets)
