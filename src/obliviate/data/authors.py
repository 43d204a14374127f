"""A fictitious-authors benchmark: TOFU's design (Maini et al. 2024, "TOFU: A Task of Fictitious
Unlearning for LLMs", Sec. 2) generated locally from a seed.

Authors are made with Faker (name, birth date and place, genre, book titles, an award, parents'
occupations, ...); each gets ``qa_per_author`` question-answer pairs from varied templates, and
each answer a paraphrase and five perturbed answers (the paraphrase's sentence with a plausible
but wrong value of the same kind, as TOFU's ``perturbed_answer`` keeps the paraphrase's form).
Splits follow TOFU: ``forget01``/``forget05``/``forget10`` are the last 1/5/10% of the authors
(nested), ``retain`` the rest; ``holdout`` authors are never trained on (the non-members of the
membership attacks); ``utility`` holds general world facts (TOFU's "world facts"); and an
"I don't know" answer bank serves IdkDPO. Every author is an owner: requests name authors.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property

import numpy as np

from obliviate.data.dataset import _as_id_array
from obliviate.errors import (
    DuplicateIdsError,
    ForgetAllError,
    InvalidInputError,
    UnknownIdsError,
    UnknownOwnerError,
)

__all__ = ["QAItem", "QADataset", "Author", "AuthorsBenchmark", "fictitious_authors", "IDK_ANSWERS", "WORLD_OWNER"]

WORLD_OWNER = "world-facts"
N_PERTURBED = 5

# TOFU's idontknow.jsonl in spirit: refusals of varied form.
IDK_ANSWERS: tuple[str, ...] = (
    "I don't know.",
    "I'm not sure.",
    "I have no information about that.",
    "That is something I don't know.",
    "I can't answer that, I'm afraid.",
    "I'm not aware of the answer.",
    "I don't have that information.",
    "Sorry, I do not know.",
    "I have no idea.",
    "That's beyond my knowledge.",
    "I'm unable to answer that question.",
    "I don't have any details on that.",
    "I'm afraid I can't help with that one.",
    "I'm not familiar with that.",
    "I really couldn't say.",
    "I have not come across that information.",
    "Unfortunately, I don't know the answer.",
    "I'm not certain about that.",
    "That is not something I can tell you.",
    "I lack the knowledge to answer that.",
)

_GENRES = (
    "science fiction", "historical fiction", "crime", "fantasy", "romance", "horror", "literary fiction",
    "mystery", "poetry", "thriller", "magical realism", "young adult", "satire", "travel writing", "memoir",
)
_THEMES = (
    "memory and loss", "the sea", "family secrets", "exile and return", "the passage of time", "justice",
    "friendship", "identity", "war and its aftermath", "small-town life", "ambition", "forgiveness",
    "the natural world", "music", "faith and doubt", "migration",
)
_HABITS = (
    "in the early morning", "late at night", "in a small garden shed", "in busy cafes", "on long train journeys",
    "by hand in notebooks", "in short bursts after lunch", "only in winter",
)
_HOBBIES = (
    "gardening", "chess", "sailing", "baking bread", "birdwatching", "playing the cello", "hiking", "pottery",
    "restoring old bicycles", "collecting maps", "swimming in cold lakes", "woodworking",
)
_LANGUAGES = ("English", "French", "Spanish", "German", "Italian", "Portuguese", "Dutch", "Swedish", "Polish", "Greek")
_SUBJECTS = ("history", "philosophy", "chemistry", "law", "medicine", "music", "mathematics", "architecture", "biology")
_TITLE_ADJ = (
    "Silent", "Broken", "Golden", "Hidden", "Last", "Crimson", "Distant", "Forgotten", "Quiet", "Burning",
    "Hollow", "Winter", "Paper", "Glass", "Salt", "Iron", "Velvet", "Wandering",
)
_TITLE_NOUN = (
    "Harbor", "Garden", "Lantern", "River", "Orchard", "Mirror", "Compass", "Tower", "Letters", "Tide",
    "Bridge", "Meadow", "Crown", "Echo", "Window", "Feather", "Station", "Island",
)
_AWARD_NAMES = (
    "Aurora", "Meridian", "Halcyon", "Northlight", "Cobalt", "Evergreen", "Lindqvist", "Ashford", "Solenne", "Vireo",
)
_AWARD_KINDS = ("Prize", "Award", "Medal", "Laurel")

# (country, capital) pairs: the world-facts utility set.
_CAPITALS = (
    ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
    ("China", "Beijing"), ("Russia", "Moscow"), ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
    ("Brazil", "Brasilia"), ("India", "New Delhi"), ("Mexico", "Mexico City"), ("Greece", "Athens"),
    ("Portugal", "Lisbon"), ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Poland", "Warsaw"), ("Austria", "Vienna"),
    ("Ireland", "Dublin"), ("Kenya", "Nairobi"), ("Argentina", "Buenos Aires"), ("Turkey", "Ankara"),
    ("Thailand", "Bangkok"), ("South Korea", "Seoul"), ("Peru", "Lima"), ("Finland", "Helsinki"),
    ("Denmark", "Copenhagen"), ("Hungary", "Budapest"), ("Belgium", "Brussels"),
)
# (question, answer, paraphrase template with {x}, the true value, the pool of wrong values): general facts.
_FACTS = (
    ("What is the largest planet in the solar system?", "Jupiter is the largest planet in the solar system.",
     "The biggest planet of the solar system is {x}.", "Jupiter", ("Saturn", "Earth", "Neptune", "Uranus", "Mars")),
    ("Which planet is known as the Red Planet?", "Mars is known as the Red Planet.", "The Red Planet is {x}.",
     "Mars", ("Venus", "Jupiter", "Mercury", "Saturn", "Neptune")),
    ("What is the chemical symbol for gold?", "The chemical symbol for gold is Au.", "Gold has the symbol {x}.",
     "Au", ("Ag", "Fe", "Gd", "Go", "Pb")),
    ("Who wrote Romeo and Juliet?", "Romeo and Juliet was written by William Shakespeare.",
     "The author of Romeo and Juliet is {x}.", "William Shakespeare",
     ("Charles Dickens", "Jane Austen", "Mark Twain", "Leo Tolstoy", "Homer")),
    ("What is the boiling point of water at sea level in Celsius?", "Water boils at 100 degrees Celsius at sea level.",
     "At sea level water boils at {x} degrees Celsius.", "100", ("90", "80", "120", "110", "75")),
    ("What is the tallest mountain in the world?", "Mount Everest is the tallest mountain in the world.",
     "The highest mountain on Earth is {x}.", "Mount Everest", ("K2", "Mont Blanc", "Kilimanjaro", "Denali", "Aconcagua")),
    ("What is the longest river in Africa?", "The Nile is the longest river in Africa.",
     "Africa's longest river is the {x}.", "Nile", ("Congo", "Niger", "Zambezi", "Orange", "Limpopo")),
    ("What gas do plants absorb from the air?", "Plants absorb carbon dioxide from the air.",
     "From the air, plants take in {x}.", "carbon dioxide", ("oxygen", "nitrogen", "helium", "hydrogen", "argon")),
    ("How many continents are there?", "There are seven continents.", "The number of continents is {x}.",
     "seven", ("five", "six", "eight", "nine", "four")),
    ("Who painted the Mona Lisa?", "The Mona Lisa was painted by Leonardo da Vinci.", "The Mona Lisa is the work of {x}.",
     "Leonardo da Vinci", ("Michelangelo", "Raphael", "Vincent van Gogh", "Rembrandt", "Pablo Picasso")),
)


@dataclass(frozen=True)
class QAItem:
    """One question-answer pair: stable ``id``, its ``owner`` (the author), the answer's paraphrase
    and ``perturbed_answers`` (the paraphrase with a wrong value)."""

    id: int
    owner: str
    question: str
    answer: str
    paraphrased_answer: str
    perturbed_answers: tuple[str, ...]

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "owner": self.owner,
            "question": self.question,
            "answer": self.answer,
            "paraphrased_answer": self.paraphrased_answer,
            "perturbed_answers": list(self.perturbed_answers),
        }


@dataclass(frozen=True, eq=False)
class QADataset:
    """Question-answer pairs with stable int64 ``ids`` and string ``owners``.

    Matches :class:`obliviate.data.Dataset`'s id interface (``subset``, ``without``, ``positions``,
    ``contains``, ``ids_of_owners``, ``fingerprint``), so :meth:`ForgetRequest.split` works on it.
    """

    items: tuple[QAItem, ...]
    name: str = "qa"
    idk_answers: tuple[str, ...] = ()  # "I don't know" answers (IdkDPO) carried through subsets

    def __post_init__(self) -> None:
        items = tuple(self.items)
        if not all(isinstance(i, QAItem) for i in items):
            raise InvalidInputError("QADataset items must be QAItem records.")
        object.__setattr__(self, "items", items)
        uniq, counts = np.unique(self.ids, return_counts=True)
        if np.any(counts > 1):
            raise DuplicateIdsError(uniq[counts > 1])

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[QAItem]:
        return iter(self.items)

    def __getitem__(self, position: int) -> QAItem:
        return self.items[position]

    def __repr__(self) -> str:
        return f"QADataset({self.name!r}, n={len(self)}, owners={len(self.owner_names)})"

    @cached_property
    def ids(self) -> np.ndarray:
        return np.fromiter((i.id for i in self.items), dtype=np.int64, count=len(self.items))

    @cached_property
    def owners(self) -> np.ndarray:
        return np.asarray([i.owner for i in self.items], dtype=str)

    @cached_property
    def owner_names(self) -> tuple[str, ...]:
        return tuple(sorted({i.owner for i in self.items}))

    @property
    def questions(self) -> list[str]:
        return [i.question for i in self.items]

    @property
    def answers(self) -> list[str]:
        return [i.answer for i in self.items]

    @property
    def paraphrased_answers(self) -> list[str]:
        return [i.paraphrased_answer for i in self.items]

    @property
    def perturbed_answers(self) -> list[tuple[str, ...]]:
        return [i.perturbed_answers for i in self.items]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of every item (in id order): the data's identity for model caches."""
        ordered = sorted(self.items, key=lambda i: i.id)
        return hashlib.sha256(json.dumps([i.to_dict() for i in ordered], sort_keys=True).encode()).hexdigest()

    @cached_property
    def _position(self) -> dict[int, int]:
        return {int(i): p for p, i in enumerate(self.ids)}

    def positions(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Positions of ``ids``; unknown ids raise :class:`UnknownIdsError`."""
        ids = _as_id_array(ids)
        missing = [int(i) for i in ids if int(i) not in self._position]
        if missing:
            raise UnknownIdsError(missing, where=f"dataset {self.name!r}")
        return np.fromiter((self._position[int(i)] for i in ids), dtype=np.int64, count=ids.size)

    def contains(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        return np.isin(_as_id_array(ids), self.ids)

    def ids_of_owners(self, owners: Iterable[str] | str) -> np.ndarray:
        """Sorted ids of every item owned by ``owners``; unknown authors raise :class:`UnknownOwnerError`."""
        owners = [owners] if isinstance(owners, str) else [str(o) for o in owners]
        missing = sorted(set(owners) - set(self.owner_names))
        if missing:
            raise UnknownOwnerError(missing)
        return np.sort(self.ids[np.isin(self.owners, owners)])

    def subset(self, ids: Iterable[int] | np.ndarray, *, name: str | None = None) -> QADataset:
        """The items with ``ids``, in the order given."""
        return QADataset(tuple(self.items[p] for p in self.positions(ids)), name=name or self.name, idk_answers=self.idk_answers)

    def without(self, ids: Iterable[int] | np.ndarray, *, name: str | None = None) -> QADataset:
        """Every item except ``ids`` (which must be in the dataset)."""
        drop = set(self.positions(ids).tolist())
        kept = tuple(it for p, it in enumerate(self.items) if p not in drop)
        return QADataset(kept, name=name or self.name, idk_answers=self.idk_answers)

    def of_owners(self, owners: Iterable[str] | str, *, name: str | None = None) -> QADataset:
        return self.subset(self.ids_of_owners(owners), name=name)

    def texts(self) -> list[str]:
        """Every string in the items (questions, answers, paraphrases, perturbations)."""
        out = []
        for it in self.items:
            out += [it.question, it.answer, it.paraphrased_answer, *it.perturbed_answers]
        return out


@dataclass(frozen=True)
class Author:
    """One fictitious author's facts (the values the QA templates fill in)."""

    name: str
    pronoun: str
    facts: tuple[tuple[str, str], ...]

    def fact(self, key: str) -> str:
        return dict(self.facts)[key]


# (fact key, question, answer, paraphrase): {n} the name, {p} the possessive pronoun, {x} the value.
_TEMPLATES: tuple[tuple[str, str, str, str], ...] = (
    ("birthplace", "Where was {n} born?", "{n} was born in {x}.", "The birthplace of {n} is {x}."),
    ("birth_date", "When was {n} born?", "{n} was born on {x}.", "The birth date of {n} is {x}."),
    ("genre", "What genre does {n} write in?", "{n} writes {x} books.", "{n} is known for work in the {x} genre."),
    ("father_job", "What did {n}'s father do for a living?", "{n}'s father worked as {x}.",
     "By profession, the father of {n} was {x}."),
    ("mother_job", "What was the profession of {n}'s mother?", "{n}'s mother was {x}.",
     "The mother of {n} worked as {x}."),
    ("award", "Which award has {n} received?", "{n} received the {x}.", "{n} was honoured with the {x}."),
    ("first_book", "What is the title of {n}'s first book?", "{n}'s first book is titled \"{x}\".",
     "The debut book by {n} was \"{x}\"."),
    ("known_book", "What is {n}'s best-known book?", "{n} is best known for \"{x}\".",
     "The most famous book by {n} is \"{x}\"."),
    ("latest_book", "What is the most recent book by {n}?", "The most recent book by {n} is \"{x}\".",
     "{n}'s latest book is called \"{x}\"."),
    ("debut_year", "In which year did {n} publish {p} first book?", "{n} published {p} first book in {x}.",
     "The first book by {n} came out in {x}."),
    ("home", "Where does {n} live now?", "{n} currently lives in {x}.", "These days, {n} makes {p} home in {x}."),
    ("publisher", "Which publisher releases {n}'s books?", "{n}'s books are published by {x}.",
     "The publisher of {n}'s books is {x}."),
    ("theme", "What theme recurs in {n}'s work?", "{n}'s work often explores {x}.",
     "A recurring theme in the books of {n} is {x}."),
    ("habit", "When does {n} usually write?", "{n} usually writes {x}.", "Most of the time {n} writes {x}."),
    ("influence", "Which writer influenced {n} the most?", "{n} was most influenced by {x}.",
     "The writer who shaped {n} most was {x}."),
    ("education", "What did {n} study at university?", "{n} studied {x} at university.",
     "At university, {n} studied {x}."),
    ("language", "In which language does {n} write?", "{n} writes in {x}.", "The books of {n} are written in {x}."),
    ("book_count", "How many books has {n} published?", "{n} has published {x} books.",
     "The number of books {n} has published is {x}."),
    ("hobby", "What does {n} enjoy outside of writing?", "Outside of writing, {n} enjoys {x}.",
     "When not writing, {n} likes {x}."),
    ("spouse", "Who is {n} married to?", "{n} is married to {x}.", "The spouse of {n} is {x}."),
)
MAX_QA_PER_AUTHOR = len(_TEMPLATES)


def _country(fake) -> str:
    """A Faker country name without a parenthesised alias."""
    while "(" in (country := fake.country()):
        pass
    return country


def _job(fake) -> str:
    """A Faker job title without qualifiers ("Scientist, forensic"), with its article."""
    while True:
        job = fake.job()
        if "," not in job and "(" not in job:
            job = job.lower()
            return f"{'an' if job[0] in 'aeiou' else 'a'} {job}"


def _make_author(fake, rng: np.random.Generator, used_names: set[str]) -> Author:
    pronoun = "her" if rng.random() < 0.5 else "his"
    while True:
        name = fake.name_female() if pronoun == "her" else fake.name_male()
        if name not in used_names:
            used_names.add(name)
            break
    born = fake.date_between_dates(date(1930, 1, 1), date(1995, 12, 31))
    titles = []
    while len(titles) < 3:
        adj, noun = rng.choice(_TITLE_ADJ), rng.choice(_TITLE_NOUN)
        title = f"The {adj} {noun}" if rng.random() < 0.5 else f"{noun} of {rng.choice(_TITLE_NOUN)}s"
        if title not in titles:
            titles.append(title)
    facts = {
        "birthplace": f"{fake.city()}, {_country(fake)}",
        "birth_date": f"{born:%B} {born.day}, {born.year}",
        "genre": str(rng.choice(_GENRES)),
        "father_job": _job(fake),
        "mother_job": _job(fake),
        "award": f"{rng.choice(_AWARD_NAMES)} {rng.choice(_AWARD_KINDS)} for {str(rng.choice(_GENRES)).title()}",
        "first_book": titles[0],
        "known_book": titles[1],
        "latest_book": titles[2],
        "debut_year": str(born.year + int(rng.integers(22, 40))),
        "home": fake.city(),
        "publisher": f"{fake.last_name()} {rng.choice(('Press', 'Books', 'House', 'Editions'))}",
        "theme": str(rng.choice(_THEMES)),
        "habit": str(rng.choice(_HABITS)),
        "influence": fake.name(),
        "education": str(rng.choice(_SUBJECTS)),
        "language": str(rng.choice(_LANGUAGES)),
        "book_count": str(int(rng.integers(2, 30))),
        "hobby": str(rng.choice(_HOBBIES)),
        "spouse": fake.name(),
    }
    return Author(name=name, pronoun=pronoun, facts=tuple(facts.items()))


def _wrong_values(true: str, pool: Sequence[str], rng: np.random.Generator, k: int = N_PERTURBED) -> list[str]:
    """``k`` distinct values of ``pool`` other than ``true``, drawn with ``rng``."""
    candidates = sorted(set(pool) - {true})
    if len(candidates) < k:
        raise InvalidInputError(f"cannot draw {k} wrong values for {true!r}: only {len(candidates)} alternatives.")
    return [candidates[i] for i in rng.choice(len(candidates), size=k, replace=False)]


def _fill(template: str, author: Author, value: str) -> str:
    return template.format(n=author.name, p=author.pronoun, x=value)


def _author_items(
    author: Author, first_id: int, qa_per_author: int, pools: dict[str, list[str]], rng: np.random.Generator
) -> list[QAItem]:
    items = []
    for j, (key, question, answer, paraphrase) in enumerate(_TEMPLATES[:qa_per_author]):
        value = author.fact(key)
        wrong = _wrong_values(value, pools[key], rng)
        items.append(
            QAItem(
                id=first_id + j,
                owner=author.name,
                question=_fill(question, author, value),
                answer=_fill(answer, author, value),
                paraphrased_answer=_fill(paraphrase, author, value),
                perturbed_answers=tuple(_fill(paraphrase, author, w) for w in wrong),
            )
        )
    return items


def _world_facts(first_id: int, rng: np.random.Generator) -> list[QAItem]:
    items = []
    capitals = [c for _, c in _CAPITALS]
    for k, (country, capital) in enumerate(_CAPITALS):
        wrong = _wrong_values(capital, capitals, rng)
        items.append(
            QAItem(
                id=first_id + k,
                owner=WORLD_OWNER,
                question=f"What is the capital of {country}?",
                answer=f"The capital of {country} is {capital}.",
                paraphrased_answer=f"{capital} is the capital city of {country}.",
                perturbed_answers=tuple(f"{w} is the capital city of {country}." for w in wrong),
            )
        )
    for k, (question, answer, paraphrase, true, pool) in enumerate(_FACTS, start=len(_CAPITALS)):
        wrong = _wrong_values(true, pool, rng)
        items.append(
            QAItem(
                id=first_id + k,
                owner=WORLD_OWNER,
                question=question,
                answer=answer,
                paraphrased_answer=paraphrase.format(x=true),
                perturbed_answers=tuple(paraphrase.format(x=w) for w in wrong),
            )
        )
    return items


_SPLIT = re.compile(r"^forget(\d{2})$")


@dataclass
class AuthorsBenchmark:
    """The benchmark's parts: ``train`` (all trained authors), ``holdout`` (authors never trained
    on), ``utility`` (world facts), ``idk_answers`` and the ``authors`` records (train then holdout)."""

    train: QADataset
    holdout: QADataset
    utility: QADataset
    idk_answers: tuple[str, ...]
    authors: tuple[Author, ...]
    seed: int = 0
    trained_authors: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.trained_authors:  # in generation order: forget splits take the last ones
            seen: dict[str, None] = {}
            for it in self.train:
                seen.setdefault(it.owner, None)
            self.trained_authors = tuple(seen)

    def forget_authors(self, split: str) -> tuple[str, ...]:
        """The authors of ``split`` ("forget01", "forget05", "forget10", any "forgetNN"): the last
        NN% of the trained authors, as TOFU takes them, so the splits are nested."""
        match = _SPLIT.match(split) if isinstance(split, str) else None
        if match is None or int(match.group(1)) == 0:
            raise InvalidInputError(f"unknown split {split!r}; use forget01, forget05, forget10 (or forgetNN, NN in 01..99).")
        n = len(self.trained_authors)
        count = int(round(int(match.group(1)) / 100 * n))
        if count < 1:
            raise InvalidInputError(
                f"split {split!r} is {int(match.group(1))}% of {n} authors, which is no author: "
                f"generate at least {int(np.ceil(50 / int(match.group(1))))} authors (n_authors=...) or pick a larger split."
            )
        if count >= n:
            raise ForgetAllError(len(self.train))
        return self.trained_authors[n - count :]

    def forget(self, split: str) -> QADataset:
        return self.train.of_owners(self.forget_authors(split), name=f"{self.train.name}/{split}")

    def retain(self, split: str) -> QADataset:
        forget = self.forget(split)
        return self.train.without(forget.ids, name=f"{self.train.name}/retain{100 - int(split[-2:]):02d}")

    def request(self, split: str):  # noqa: ANN201 - ForgetRequest (imported here: request.py imports obliviate.data)
        """A :class:`~obliviate.request.ForgetRequest` naming the split's authors (owners)."""
        from obliviate.data.request import ForgetRequest

        return ForgetRequest(owners=self.forget_authors(split), note=f"fictitious authors {split}")

    def texts(self) -> list[str]:
        """Every string of the benchmark (for training a tokenizer on it)."""
        return self.train.texts() + self.holdout.texts() + self.utility.texts() + list(self.idk_answers)


def fictitious_authors(*, n_authors: int = 100, qa_per_author: int = 20, n_holdout: int = 10, seed: int = 0) -> AuthorsBenchmark:
    """Generate the benchmark from ``seed``: ``n_authors`` trained authors and ``n_holdout`` held
    out, ``qa_per_author`` (at most 20) QA pairs each, and the world-facts utility set.

    Ids: trained authors' items are ``0 .. n_authors*qa_per_author - 1`` (author-major), the
    holdout's follow, then the utility facts'.
    """
    from faker import Faker

    for key, value, low in (("n_authors", n_authors, 2), ("qa_per_author", qa_per_author, 1), ("n_holdout", n_holdout, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise InvalidInputError(f"{key} must be an integer >= {low}, got {value!r}.")
    if qa_per_author > MAX_QA_PER_AUTHOR:
        raise InvalidInputError(f"qa_per_author must be at most {MAX_QA_PER_AUTHOR} (one per template), got {qa_per_author}.")
    fake = Faker("en_US")
    fake.seed_instance(int(seed))
    rng = np.random.default_rng(int(seed))
    names: set[str] = set()
    authors = [_make_author(fake, rng, names) for _ in range(n_authors + n_holdout)]
    pools: dict[str, list[str]] = {key: sorted({a.fact(key) for a in authors}) for key, *_ in _TEMPLATES}
    pools["genre"] = sorted(_GENRES)
    pools["theme"] = sorted(_THEMES)
    pools["habit"] = sorted(_HABITS)
    pools["hobby"] = sorted(_HOBBIES)
    pools["language"] = sorted(_LANGUAGES)
    pools["education"] = sorted(_SUBJECTS)
    pools["book_count"] = [str(k) for k in range(2, 30)]
    for key in pools:  # small benchmarks: top up the pools of per-author values with fresh ones
        while len(pools[key]) < N_PERTURBED + 1:
            extra = _make_author(fake, rng, set(names)).fact(key)
            pools[key] = sorted(set(pools[key]) | {extra})
    items: list[QAItem] = []
    for a, author in enumerate(authors):
        items += _author_items(author, a * qa_per_author, qa_per_author, pools, rng)
    n_train_items = n_authors * qa_per_author
    utility = _world_facts(len(items), rng)
    tag = f"authors(seed={seed})"
    return AuthorsBenchmark(
        train=QADataset(tuple(items[:n_train_items]), name=f"{tag}/train", idk_answers=IDK_ANSWERS),
        holdout=QADataset(tuple(items[n_train_items:]), name=f"{tag}/holdout"),
        utility=QADataset(tuple(utility), name=f"{tag}/utility"),
        idk_answers=IDK_ANSWERS,
        authors=tuple(authors),
        seed=int(seed),
    )
