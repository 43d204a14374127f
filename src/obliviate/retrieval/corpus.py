"""A generated corpus with planted copies, for measuring scope expansion and retrieval unlearning.

Each *target* is a document that a deletion request will name: either a fictional person's record (Faker, seeded:
name, birth city, year, job, employer; a language model cannot know it, so what it says about them after a delete
can only have come from the store) or a real fact from :mod:`obliviate.data.knowledge` (a chemical element or a
country). For every target three copies are planted in the store, as decontamination finds them in real corpora:

- ``near-duplicate``: the same text lightly edited (a prefix, a changed or dropped word, punctuation);
- ``quotation``: the target's first sentence quoted inside an unrelated paragraph;
- ``paraphrase``: the same facts in other words (another template, same entities and numbers).

Hard negatives sit beside them: another person's record in the *same template* (the words match, the facts do
not), a record of the *same person* with other facts (hobby, pet), and, for real facts, another fact about the
same subject. The rest is background (Faker paragraphs). :class:`PlantedCorpus` keeps which documents are copies of
which target, so precision and recall of an expansion can be computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PlantedCorpus", "Target", "planted_corpus", "KINDS"]

KINDS = ("near-duplicate", "quotation", "paraphrase")

_PERSON = (
    "{name} was born in {city} in {year}. {first} now works as a {job} at {company}.",
    "Born in {year} in the city of {city}, {name} is employed by {company} as a {job}.",
    "{company} employs {name}, a {job} who was born in {city} in {year}.",
    "{name}, a {job} at {company}, came into the world in {city} in the year {year}.",
)
_PERSON_OTHER = (
    "{name} spends weekends {hobby} and keeps a dog called {pet}.",
    "In spare time {name} enjoys {hobby}; the family dog is named {pet}.",
)
_HOBBIES = ("hiking in the hills", "painting watercolours", "restoring old bicycles", "playing chess online",
            "growing tomatoes", "learning the cello", "baking sourdough bread", "sailing small boats")
_QUOTE_LEADS = ("As one profile put it,", "A colleague's note reads:", "The newsletter said:", "According to the memo,")


@dataclass(frozen=True)
class Target:
    """A document to delete, the facts a question about it asks for, and the question forms."""

    key: str
    text: str
    owner: str
    kind: str  # "person" or "fact"
    answer: str  # the value an answer must not contain once deleted (a city, a symbol, a capital)
    questions: tuple[str, ...]  # (direct, paraphrased)


@dataclass
class PlantedCorpus:
    """Documents (text, owner, role) in insertion order, the targets, and for each target the positions of its
    planted copies by kind (positions index :attr:`texts`)."""

    texts: list[str] = field(default_factory=list)
    owners: list[str | None] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    target_position: dict[str, int] = field(default_factory=dict)
    copies: dict[str, dict[str, list[int]]] = field(default_factory=dict)

    def add(self, text: str, owner: str | None, role: str) -> int:
        self.texts.append(text)
        self.owners.append(owner)
        self.roles.append(role)
        return len(self.texts) - 1


def _edit(text: str, rng: np.random.Generator) -> str:
    """A near-duplicate: a prefix, one word dropped, punctuation changed (in a seeded choice)."""
    words = text.split()
    i = int(rng.integers(1, max(2, len(words) - 1)))
    if len(words) > 6:
        words = words[:i] + words[i + 1 :]
    edited = " ".join(words).replace(". ", "; ", 1)
    prefix = str(rng.choice(["Update:", "Note -", "Re:", "FYI"]))
    return f"{prefix} {edited}"


def _person(fake, rng: np.random.Generator) -> dict:
    first, last = fake.first_name(), fake.last_name()
    return {
        "first": first,
        "name": f"{first} {last}",
        "city": fake.city(),
        "year": str(int(rng.integers(1950, 2001))),
        "job": fake.job().split(",")[0].lower(),
        "company": fake.company(),
        "hobby": str(rng.choice(_HOBBIES)),
        "pet": fake.first_name(),
    }


def _facts(limit: int, seed: int) -> list[tuple[str, str, str, str, str, tuple[str, ...]]]:
    """Real facts from :func:`obliviate.data.knowledge.knowledge_benchmark` (``limit`` elements and ``limit``
    countries, drawn with ``seed``): (owner, target text, paraphrase, another fact of the subject, answer,
    (direct, paraphrased) question). Atomic numbers come from ``periodictable``, as the benchmark's do."""
    import periodictable

    from obliviate.data.knowledge import knowledge_benchmark

    bench = knowledge_benchmark(forget="elements", retain=("geography",), limit=max(4, limit), seed=seed)
    region = {q.owner: q.correct for q in bench.questions if q.id.endswith("/region")}
    out = []
    for q in bench.questions:
        if q.probe != "short":
            continue
        subject = q.owner.split(":", 1)[1]
        if q.domain == "elements":
            n, s = subject, q.correct
            z = periodictable.elements.symbol(s).number
            out.append((
                q.owner,
                f"{n.capitalize()} is a chemical element with the symbol {s} and atomic number {z}.",
                f"Chemists write the element {n} as {s}; it is element number {z} of the periodic table.",
                f"The element {n} has an atomic mass of about {periodictable.elements.symbol(s).mass:.4g}.",
                s,
                (f"What is the chemical symbol of {n}?", f"On the periodic table, how is {n} abbreviated?"),
            ))
        else:
            n, c = subject, q.correct
            out.append((
                q.owner,
                f"The capital of {n} is {c}, a city that hosts the national government.",
                f"{c} serves as the seat of government of {n}, which makes it the country's capital.",
                f"{n} is a country in {region.get(q.owner, 'the world')}.",
                c,
                (f"What is the capital of {n}?", f"Which city is the seat of government of {n}?"),
            ))
    by_domain = {"elements": [r for r in out if r[0].startswith("elements:")][:limit],
                 "geography": [r for r in out if r[0].startswith("geography:")][:limit]}
    return by_domain["elements"] + by_domain["geography"]


def planted_corpus(*, seed: int = 0, people: int = 30, facts: int = 10, background: int = 300) -> PlantedCorpus:
    """The corpus (see the module docstring): ``people`` fictional records and ``facts`` real facts (half elements,
    half countries) as targets, each with its three planted copies and hard negatives, and ``background``
    unrelated paragraphs, shuffled with ``seed``."""
    from faker import Faker

    rng = np.random.default_rng(seed)
    fake = Faker()
    fake.seed_instance(seed)
    docs: list[tuple[str, str | None, str, str | None, str | None]] = []  # text, owner, role, target key, kind
    targets: list[Target] = []
    for k in range(people):
        p = _person(fake, rng)
        key, owner = f"person-{k}", f"person:{p['name']}"
        order = rng.permutation(len(_PERSON))
        text = _PERSON[order[0]].format(**p)
        targets.append(Target(key, text, owner, "person", p["city"], (
            f"Where was {p['name']} born?",
            f"In which city did {p['name']} come into the world?",
        )))
        docs.append((text, owner, "target", key, None))
        docs.append((_edit(text, rng), None, "copy", key, "near-duplicate"))
        quote = text.split(". ")[0].rstrip(".") + "."
        para = f"{fake.sentence(nb_words=10)} {rng.choice(_QUOTE_LEADS)} \"{quote}\" {fake.sentence(nb_words=12)}"
        docs.append((para, None, "copy", key, "quotation"))
        docs.append((_PERSON[order[1]].format(**p), None, "copy", key, "paraphrase"))
        docs.append((str(rng.choice(_PERSON_OTHER)).format(**p), owner, "negative", None, None))
        other = _person(fake, rng)
        docs.append((_PERSON[order[0]].format(**other), f"person:{other['name']}", "negative", None, None))
    fact_rows = _facts(max(1, facts // 2), seed) if facts else []
    for k, (owner, text, paraphrase, other_fact, answer, questions) in enumerate(fact_rows):
        key = f"fact-{k}"
        targets.append(Target(key, text, owner, "fact", answer, questions))
        docs.append((text, owner, "target", key, None))
        docs.append((_edit(text, rng), None, "copy", key, "near-duplicate"))
        quote = text.split(", ")[0].rstrip(".") + "."
        para = f"{fake.sentence(nb_words=10)} {rng.choice(_QUOTE_LEADS)} \"{quote}\" {fake.sentence(nb_words=12)}"
        docs.append((para, None, "copy", key, "quotation"))
        docs.append((paraphrase, None, "copy", key, "paraphrase"))
        docs.append((other_fact, owner, "negative", None, None))
    for _ in range(background):
        docs.append((fake.paragraph(nb_sentences=3), None, "background", None, None))
    corpus = PlantedCorpus(targets=targets)
    for i in rng.permutation(len(docs)):
        text, owner, role, key, kind = docs[int(i)]
        pos = corpus.add(text, owner, role)
        if role == "target":
            corpus.target_position[key] = pos
        elif role == "copy":
            corpus.copies.setdefault(key, {}).setdefault(kind, []).append(pos)
    return corpus
