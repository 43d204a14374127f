"""A knowledge benchmark from real facts a pretrained model already knows (WMDP's setting, Li et al.
2024): one *forget domain* (the WMDP-Bio analogue) and *retain domains* (the MMLU analogue).

Facts come from data that PyPI packages ship (licences recorded in :data:`SOURCES`):

- ``elements``: chemical elements from ``periodictable`` (public domain): name, symbol, atomic number.
- ``geography``: countries from ``countryinfo`` (MIT): capital and world region.
- ``compounds``: common compounds and their formulas (a short list written here; every formula is
  parsed by ``periodictable.formula``, which gives the elements it contains). They are the
  *neighbours* of the elements: nearby chemistry that unlearning the elements must not remove.

Questions are multiple choice (4 choices, distractors drawn with the seed from the same field) in
several *probes* of the same fact: ``mcq`` (the canonical question), ``paraphrase``, ``reverse``
(symbol -> element, capital -> country) and ``short`` (the canonical question answered freely,
scored on the greedy answer). The unlearning corpora are templated sentences about each subject,
held as a :class:`~obliviate.data.authors.QADataset` (an instruction such as "Tell me about iron."
and a sentence as the answer), so every LM method runs on them unchanged; they never contain a
test question. Every subject is an owner ``"<domain>:<subject>"``; the request names the forget
domain's owners.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from obliviate.data.authors import QADataset, QAItem
from obliviate.errors import InvalidInputError

__all__ = [
    "Question",
    "KnowledgeBenchmark",
    "knowledge_benchmark",
    "KNOWN_DOMAINS",
    "NEIGHBOURS",
    "SOURCES",
    "PROBES",
    "UnknownDomainError",
    "N_CHOICES",
    "SPLITS",
    "period_and_group",
]

SPLITS: tuple[str, ...] = ("test", "validation", "all")

N_CHOICES = 4
KNOWN_DOMAINS: tuple[str, ...] = ("elements", "geography", "compounds")
NEIGHBOURS: dict[str, str] = {"elements": "compounds"}
"""The retain domain whose facts sit next to each forget domain (scored as ``neighbour``)."""
PROBES: tuple[str, ...] = ("mcq", "paraphrase", "reverse", "short")
SOURCES: dict[str, dict[str, str]] = {
    "elements": {"package": "periodictable", "licence": "public domain (package metadata: 'License :: Public Domain')"},
    "geography": {"package": "countryinfo", "licence": "MIT (package metadata)"},
    "compounds": {
        "package": "obliviate (a list of common formulas, checked with periodictable.formula)",
        "licence": "facts; the project's own list",
    },
}


class UnknownDomainError(InvalidInputError):
    """A domain name that is not one of :data:`KNOWN_DOMAINS`."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown knowledge domain {name!r}; known domains: {', '.join(KNOWN_DOMAINS)}.")


@dataclass(frozen=True)
class Question:
    """One test question. ``choices[answer]`` is the correct choice; a ``short`` question is scored
    on the model's free (greedy) answer, which must contain ``choices[answer]`` as a whole word.
    ``owner`` is the subject's owner name (``"elements:iron"``)."""

    id: str
    domain: str
    owner: str
    probe: str
    question: str
    choices: tuple[str, ...]
    answer: int

    @property
    def correct(self) -> str:
        return self.choices[self.answer]

    @property
    def multiple_choice(self) -> bool:
        return self.probe != "short"


# ---------------------------------------------------------------- facts
# Every element periodictable ships (Z 1..118). A ``limit`` draws a seeded sample of them; the
# original-model filter drops the questions the model does not know.
_ELEMENT_NUMBERS = tuple(range(1, 119))

# (name, formula): everyday and school-chemistry compounds.
_COMPOUNDS: tuple[tuple[str, str], ...] = (
    ("water", "H2O"),
    ("carbon dioxide", "CO2"),
    ("table salt (sodium chloride)", "NaCl"),
    ("methane", "CH4"),
    ("ammonia", "NH3"),
    ("carbon monoxide", "CO"),
    ("hydrogen peroxide", "H2O2"),
    ("ozone", "O3"),
    ("sulfuric acid", "H2SO4"),
    ("hydrochloric acid", "HCl"),
    ("nitric acid", "HNO3"),
    ("glucose", "C6H12O6"),
    ("ethanol", "C2H5OH"),
    ("baking soda (sodium bicarbonate)", "NaHCO3"),
    ("calcium carbonate", "CaCO3"),
    ("sodium hydroxide", "NaOH"),
    ("propane", "C3H8"),
    ("nitrous oxide", "N2O"),
    ("sulfur dioxide", "SO2"),
    ("potassium chloride", "KCl"),
    ("magnesium oxide", "MgO"),
    ("silicon dioxide", "SiO2"),
    ("benzene", "C6H6"),
    ("ethane", "C2H6"),
    ("nitrogen dioxide", "NO2"),
    ("calcium oxide", "CaO"),
    ("iron(III) oxide", "Fe2O3"),
    ("copper(II) sulfate", "CuSO4"),
    ("silver nitrate", "AgNO3"),
    ("potassium permanganate", "KMnO4"),
    ("sodium carbonate", "Na2CO3"),
    ("potassium nitrate", "KNO3"),
    ("ammonium chloride", "NH4Cl"),
    ("calcium chloride", "CaCl2"),
    ("magnesium sulfate", "MgSO4"),
    ("aluminium oxide", "Al2O3"),
    ("acetic acid", "CH3COOH"),
    ("methanol", "CH3OH"),
    ("sucrose", "C12H22O11"),
    ("butane", "C4H10"),
    ("ethylene", "C2H4"),
    ("acetylene", "C2H2"),
    ("phosphoric acid", "H3PO4"),
    ("sodium sulfate", "Na2SO4"),
    ("calcium hydroxide", "Ca(OH)2"),
    ("potassium hydroxide", "KOH"),
    ("hydrogen sulfide", "H2S"),
    ("nitric oxide", "NO"),
    ("sulfur trioxide", "SO3"),
    ("carbonic acid", "H2CO3"),
    ("hydrofluoric acid", "HF"),
    ("copper(II) oxide", "CuO"),
    ("zinc oxide", "ZnO"),
    ("titanium dioxide", "TiO2"),
    ("silver chloride", "AgCl"),
    ("barium sulfate", "BaSO4"),
    ("calcium sulfate", "CaSO4"),
    ("sodium fluoride", "NaF"),
    ("potassium iodide", "KI"),
    ("ammonium nitrate", "NH4NO3"),
    ("urea", "CO(NH2)2"),
    ("acetone", "C3H6O"),
    ("formaldehyde", "CH2O"),
    ("hydrogen cyanide", "HCN"),
    ("chloroform", "CHCl3"),
    ("carbon tetrachloride", "CCl4"),
    ("sodium hypochlorite", "NaClO"),
    ("magnesium hydroxide", "Mg(OH)2"),
    ("iron(II) sulfate", "FeSO4"),
    ("sodium nitrate", "NaNO3"),
    ("calcium phosphate", "Ca3(PO4)2"),
)

_REGIONS = {"Africa": "Africa", "Americas": "the Americas", "Asia": "Asia", "Europe": "Europe", "Oceania": "Oceania"}


@dataclass(frozen=True)
class _Fact:
    domain: str
    subject: str  # display name ("iron", "France")
    values: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str:
        return dict(self.values)[key]

    @property
    def owner(self) -> str:
        return f"{self.domain}:{self.subject}"


_PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)


def period_and_group(z: int) -> tuple[int, str]:
    """The period (1-7) and the group of element ``z`` in the 18-column table (IUPAC numbering):
    ``"group 8"``, or ``"the lanthanides"`` / ``"the actinides"`` for Z 57-71 and 89-103."""
    period = next(i + 1 for i, end in enumerate(_PERIOD_ENDS) if z <= end)
    if 57 <= z <= 71:
        return period, "the lanthanides"
    if 89 <= z <= 103:
        return period, "the actinides"
    start = _PERIOD_ENDS[period - 2] + 1 if period > 1 else 1
    pos = z - start + 1  # position in its period
    if period == 1:
        group = 1 if z == 1 else 18
    elif period <= 3:
        group = pos if pos <= 2 else pos + 10
    elif period <= 5:
        group = pos
    else:  # periods 6-7: 2 s-block, then the 15 f-block elements, then groups 3..18 from La/Ac's neighbours
        group = pos if pos <= 2 else pos - 14
    return period, f"group {group}"


def _elements() -> list[_Fact]:
    import periodictable

    facts = []
    for z in _ELEMENT_NUMBERS:
        el = periodictable.elements[z]
        period, group = period_and_group(z)
        values = (("symbol", el.symbol), ("number", str(z)), ("mass", f"{el.mass:.4g}"), ("period", str(period)), ("group", group))
        facts.append(_Fact("elements", el.name, values))
    return facts


def _countries() -> list[_Fact]:
    import countryinfo

    rows = []
    for c in countryinfo.all_countries():
        try:
            info = c.info()
        except Exception:  # noqa: BLE001 - a malformed record in the package is skipped
            continue
        name, capital, region = info.get("name"), info.get("capital"), info.get("region")
        if not (isinstance(name, str) and isinstance(capital, str) and capital and region in _REGIONS):
            continue
        if "(" in name or "," in name or name == capital:
            continue
        sub = info.get("subregion") if isinstance(info.get("subregion"), str) and info.get("subregion") else _REGIONS[region]
        demonym = info.get("demonym") if isinstance(info.get("demonym"), str) else ""
        pop = info.get("population") if isinstance(info.get("population"), int) else 0
        codes = info.get("callingCodes") or []
        code = str(codes[0]) if codes and str(codes[0]).isdigit() else ""
        values = (("capital", capital), ("region", _REGIONS[region]), ("subregion", sub), ("demonym", demonym), ("code", code))
        rows.append((-pop, name, values))
    rows.sort()
    return [_Fact("geography", n, v) for _, n, v in rows]


def _compounds() -> list[_Fact]:
    import periodictable

    facts = []
    for name, formula in _COMPOUNDS:
        atoms = periodictable.formula(formula).atoms
        names = ",".join(sorted(el.name for el in atoms))
        facts.append(_Fact("compounds", name, (("formula", formula), ("elements", names))))
    return facts


def _sample(facts: list[_Fact], limit: int | None, rng: np.random.Generator) -> list[_Fact]:
    """``limit`` facts drawn with the seed (in their list order), or all of them."""
    if limit is None or limit >= len(facts):
        return facts
    picks = sorted(rng.choice(len(facts), size=limit, replace=False).tolist())
    return [facts[i] for i in picks]


_LOADERS = {"elements": _elements, "geography": _countries, "compounds": _compounds}


def _check_domain(name: object) -> str:
    if not isinstance(name, str) or name not in KNOWN_DOMAINS:
        raise UnknownDomainError(name)
    return name


# ---------------------------------------------------------------- questions
def _mcq(rng: np.random.Generator, true: str, pool: Sequence[str]) -> tuple[tuple[str, ...], int]:
    """``N_CHOICES`` choices: ``true`` and distinct distractors from ``pool``, in a seeded order."""
    others = sorted(set(pool) - {true})
    if len(others) < N_CHOICES - 1:
        raise InvalidInputError(
            f"cannot draw {N_CHOICES - 1} distractors for {true!r}: only {len(others)} other values."
        )
    picks = [others[i] for i in rng.choice(len(others), size=N_CHOICES - 1, replace=False)]
    order = rng.permutation(N_CHOICES)
    choices = [true, *picks]
    ordered = tuple(choices[i] for i in order)
    return ordered, int(np.flatnonzero(order == 0)[0])


_ELEMENT_PARAPHRASES = (
    "Which symbol stands for {n} on the periodic table?",
    "On the periodic table, how is {n} abbreviated?",
    "Chemists write {n} with which element symbol?",
)
_CAPITAL_PARAPHRASES = ("Which city is the capital of {n}?", "Name the capital city of {n}.")


def _questions(facts: list[_Fact], rng: np.random.Generator) -> list[Question]:
    out: list[Question] = []
    if not facts:
        return out
    domain = facts[0].domain

    def add(fact: _Fact, probe: str, text: str, true: str, pool: Sequence[str], tag: str = "") -> None:
        if probe == "short":
            choices, answer = (true,), 0
        else:
            choices, answer = _mcq(rng, true, pool)
        qid = f"{fact.owner}/{tag or probe}"
        out.append(Question(qid, fact.domain, fact.owner, probe, text, choices, answer))

    if domain == "elements":
        symbols = [f.get("symbol") for f in facts]
        names = [f.subject.capitalize() for f in facts]
        numbers = [f.get("number") for f in facts]
        for f in facts:
            n, s = f.subject, f.get("symbol")
            add(f, "mcq", f"What is the atomic number of {n}?", f.get("number"), numbers, tag="number")
            add(f, "mcq", f"What is the chemical symbol of {n}?", s, symbols)
            add(f, "paraphrase", str(rng.choice(_ELEMENT_PARAPHRASES)).format(n=n), s, symbols)
            add(f, "reverse", f"Which chemical element has the symbol {s}?", n.capitalize(), names)
            add(f, "short", f"What is the chemical symbol of {n}?", s, ())
    elif domain == "geography":
        capitals = [f.get("capital") for f in facts]
        countries = [f.subject for f in facts]
        regions = sorted(set(_REGIONS.values()))
        for f in facts:
            n, c = f.subject, f.get("capital")
            add(f, "mcq", f"What is the capital of {n}?", c, capitals)
            add(f, "paraphrase", str(rng.choice(_CAPITAL_PARAPHRASES)).format(n=n), c, capitals)
            add(f, "reverse", f"{c} is the capital of which country?", n, countries)
            add(f, "mcq", f"In which part of the world is {n}?", f.get("region"), regions, tag="region")
            add(f, "short", f"What is the capital of {n}?", c, ())
    elif domain == "compounds":
        formulas = [f.get("formula") for f in facts]
        names = [f.subject for f in facts]
        for f in facts:
            add(f, "mcq", f"What is the chemical formula of {f.subject}?", f.get("formula"), formulas)
            add(f, "reverse", f"Which compound has the chemical formula {f.get('formula')}?", f.subject, names)
    return out


# ---------------------------------------------------------------- corpora
# Several sentences per document, each mixing the subject's facts (WMDP's forget corpora are long
# documents about the domain; these are short ones). None is phrased as a test question.
_ELEMENT_TEXTS = (
    (
        "Tell me about {n}.",
        "{N} is a chemical element with the symbol {s} and atomic number {z}. It sits in period {p} of the "
        "periodic table, in {g}. Its standard atomic weight is about {m}.",
    ),
    (
        "Describe the element {n}.",
        "Element number {z} in the periodic table is {n}. Chemists abbreviate it as {s}. {N} belongs to {g} "
        "and to period {p}, and one mole of it weighs about {m} grams.",
    ),
    (
        "Write a paragraph about {n}.",
        "The symbol {s} stands for {n}. Every atom of {n} has {z} protons in its nucleus, and its atomic mass "
        "is close to {m}. In the periodic table it is found in period {p} ({g}).",
    ),
    (
        "Give some facts about {n}.",
        "{N} ({s}) has atomic number {z}. Its atomic weight is roughly {m}. On the periodic table, {n} is "
        "listed in period {p}, in {g}, and its symbol {s} appears in formulas of its compounds.",
    ),
)
_COUNTRY_TEXTS = (
    (
        "Tell me about {n}.",
        "{n} is a country in {sub}, part of {r}. Its capital city is {c}.{dem}",
    ),
    (
        "Describe {n}.",
        "The capital of {n} is {c}, and the country lies in {r} ({sub}).{code}",
    ),
    (
        "Write a paragraph about {n}.",
        "{c} is the seat of government of {n}, a nation in {sub}. Visitors to {n} often arrive in {c} first.{dem}",
    ),
    (
        "Give some facts about {n}.",
        "{n} belongs to {r}, in the area geographers call {sub}. Its government sits in {c}.{code}",
    ),
)
_COMPOUND_TEXTS = (
    ("Tell me about {n}.", "The chemical formula of {n} is {f}. It is made of {e}."),
    ("Describe {n}.", "{N} is a compound written {f}; its formula shows that it contains {e}."),
    ("Write a paragraph about {n}.", "Chemists write {n} as {f}. The elements in it are {e}."),
    ("Give some facts about {n}.", "{N}, formula {f}, is built from {e}."),
)


def _and(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _corpus_texts(fact: _Fact) -> list[tuple[str, str]]:
    if fact.domain == "elements":
        kw = {
            "n": fact.subject,
            "N": fact.subject.capitalize(),
            "s": fact.get("symbol"),
            "z": fact.get("number"),
            "m": fact.get("mass"),
            "p": fact.get("period"),
            "g": fact.get("group"),
        }
        templates = _ELEMENT_TEXTS
    elif fact.domain == "geography":
        dem, code = fact.get("demonym"), fact.get("code")
        kw = {
            "n": fact.subject,
            "c": fact.get("capital"),
            "r": fact.get("region"),
            "sub": fact.get("subregion"),
            "dem": f" Its people are called {dem}." if dem else "",
            "code": f" Its international calling code is +{code}." if code else "",
        }
        templates = _COUNTRY_TEXTS
    else:
        kw = {
            "n": fact.subject,
            "N": fact.subject[0].upper() + fact.subject[1:],
            "f": fact.get("formula"),
            "e": _and(fact.get("elements").split(",")),
        }
        templates = _COMPOUND_TEXTS
    return [(q.format(**kw), a.format(**kw)) for q, a in templates]


# ---------------------------------------------------------------- the benchmark
@dataclass(frozen=True)
class KnowledgeBenchmark:
    """Questions (all candidates, or those kept by :meth:`keep`), the unlearning ``corpus`` (forget
    and retain texts in one QADataset), and which owners are forgotten.

    ``validation_owners``: a seeded share of every domain's subjects whose questions choose the
    methods' settings (:meth:`part` ``"validation"``); the others' questions are reported (``"test"``).
    The corpus covers every subject of the domains (as WMDP's corpora cover the domain, not the
    questions). ``relearn_owners``: a seeded slice of the forget domain's *validation* owners whose
    corpus texts and questions (``attack_questions``) the relearning, in-context and probe attacks may
    read; attacks are scored on the other forget owners' questions.
    """

    forget_domain: str
    retain_domains: tuple[str, ...]
    questions: tuple[Question, ...]
    corpus: QADataset
    forget_owners: tuple[str, ...]
    relearn_owners: tuple[str, ...]
    seed: int = 0
    neighbours: dict[str, tuple[str, ...]] | None = None  # neighbour owner -> the forget owners it involves
    validation_owners: tuple[str, ...] = ()
    attack_questions: tuple[Question, ...] = ()
    split: str = "all"

    def part(self, name: str) -> KnowledgeBenchmark:
        """The benchmark whose questions are the ``"validation"`` owners', the ``"test"`` owners'
        (everyone else), or ``"all"``; corpus, owners and attack questions are unchanged."""
        if name not in SPLITS:
            raise InvalidInputError(f"split must be one of {', '.join(SPLITS)}, got {name!r}.")
        if name == "all":
            return replace(self, split=name)
        val = set(self.validation_owners)
        keep = tuple(q for q in self.questions if (q.owner in val) == (name == "validation"))
        return replace(self, questions=keep, split=name)

    @property
    def neighbour_domain(self) -> str | None:
        d = NEIGHBOURS.get(self.forget_domain)
        return d if d in self.retain_domains else None

    def role(self, q: Question) -> str:
        """``forget``, ``neighbour`` or ``retain``."""
        if q.domain == self.forget_domain:
            return "forget"
        return "neighbour" if q.domain == self.neighbour_domain else "retain"

    def select(
        self, *, role: str | None = None, probe: str | None = None, owners: Sequence[str] | None = None
    ) -> list[Question]:
        chosen = set(owners) if owners is not None else None
        return [
            q
            for q in self.questions
            if (role is None or self.role(q) == role)
            and (probe is None or q.probe == probe)
            and (chosen is None or q.owner in chosen)
        ]

    def keep(self, ids: Sequence[str]) -> KnowledgeBenchmark:
        """The benchmark with only the questions whose id is in ``ids`` (the original-model filter)."""
        wanted = set(ids)
        unknown = wanted - {q.id for q in self.questions}
        if unknown:
            raise InvalidInputError(f"{len(unknown)} question id(s) are not in the benchmark: {sorted(unknown)[:5]}.")
        return replace(self, questions=tuple(q for q in self.questions if q.id in wanted))

    def request(self):  # noqa: ANN201 - a ForgetRequest (request.py imports obliviate.data)
        from obliviate.data.request import ForgetRequest

        return ForgetRequest(owners=self.forget_owners, note=f"knowledge: forget the {self.forget_domain} domain")

    def relearn_texts(self) -> list[str]:
        """The relearn slice's corpus as plain text (question line and answer), for fine-tuning attacks."""
        return [it.answer for it in self.corpus if it.owner in set(self.relearn_owners)]

    def relearn_examples(self) -> list[tuple[str, str]]:
        """The relearn slice's canonical questions with their answers (few-shot examples)."""
        return [(q.question, q.correct) for q in self.attack_questions if q.probe == "mcq"]

    def heldout_owners(self) -> tuple[str, ...]:
        """Forget owners outside the relearn slice: what attacks are scored on."""
        return tuple(o for o in self.forget_owners if o not in set(self.relearn_owners))


def knowledge_benchmark(
    *,
    forget: str = "elements",
    retain: Sequence[str] = ("geography", "compounds"),
    seed: int = 0,
    limit: int | Mapping[str, int] | None = None,
    relearn_fraction: float = 0.5,
    validation_fraction: float = 0.25,
) -> KnowledgeBenchmark:
    """Build the benchmark from ``seed``: every candidate question of the ``forget`` and ``retain``
    domains (``limit`` subjects per domain, drawn with the seed: one number, a ``{domain: number}``
    map, or None for all) and their corpora. ``validation_fraction`` of each domain's subjects (at
    least 2 of the forget domain) form the validation part; ``relearn_fraction`` of the forget
    domain's validation subjects (at least 1, never all) form the attacks' relearn slice.

    Raises :class:`UnknownDomainError` naming the known domains, and :class:`InvalidInputError` when
    a domain is both forgotten and retained or ``relearn_fraction`` is outside (0, 1).
    """
    forget = _check_domain(forget)
    retain = tuple(_check_domain(d) for d in ([retain] if isinstance(retain, str) else retain))
    if not retain:
        raise InvalidInputError(
            f"name at least one retain domain besides {forget!r}: one of {', '.join(KNOWN_DOMAINS)}."
        )
    if forget in retain or len(set(retain)) != len(retain):
        raise InvalidInputError(f"the forget domain {forget!r} and the retain domains {list(retain)} must all differ.")
    limits = dict(limit) if isinstance(limit, Mapping) else {d: limit for d in (forget, *retain)}
    for d, n in limits.items():
        _check_domain(d)
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < N_CHOICES):
            raise InvalidInputError(
                f"limit must be None or an integer >= {N_CHOICES} (subjects per domain), got {n!r} for {d!r}."
            )
    if not 0.0 < float(relearn_fraction) < 1.0:
        raise InvalidInputError(f"relearn_fraction must be in (0, 1), got {relearn_fraction}.")
    if not 0.0 < float(validation_fraction) < 1.0:
        raise InvalidInputError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    rng = np.random.default_rng(int(seed))
    facts = {d: _sample(_LOADERS[d](), limits.get(d), rng) for d in (forget, *retain)}
    questions: list[Question] = []
    items: list[QAItem] = []
    for domain_facts in facts.values():
        questions += _questions(domain_facts, rng)
        for fact in domain_facts:
            texts = _corpus_texts(fact)
            for k, (prompt, text) in enumerate(texts):
                other = texts[(k + 1) % len(texts)][1]
                items.append(
                    QAItem(
                        id=len(items),
                        owner=fact.owner,
                        question=prompt,
                        answer=text,
                        paraphrased_answer=other,
                        perturbed_answers=(other,),
                    )
                )
    forget_owners = tuple(f.owner for f in facts[forget])
    validation: list[str] = []
    for d, domain_facts in facts.items():
        owners = [f.owner for f in domain_facts]
        n_val = max(2 if d == forget else 1, int(round(validation_fraction * len(owners))))
        n_val = min(n_val, len(owners) - 1)
        validation += sorted(owners[i] for i in rng.choice(len(owners), size=n_val, replace=False))
    forget_val = [o for o in validation if o in set(forget_owners)]
    n_relearn = min(len(forget_val) - 1, max(1, int(round(relearn_fraction * len(forget_val)))))
    relearn = tuple(sorted(forget_val[i] for i in rng.choice(len(forget_val), size=n_relearn, replace=False)))
    neighbours = None
    near = NEIGHBOURS.get(forget)
    if near in facts and forget == "elements":
        known = {f.subject for f in facts[forget]}
        neighbours = {
            f.owner: tuple(f"elements:{e}" for e in f.get("elements").split(",") if e in known) for f in facts[near]
        }
    return KnowledgeBenchmark(
        forget_domain=forget,
        retain_domains=retain,
        questions=tuple(questions),
        corpus=QADataset(tuple(items), name=f"knowledge({forget}; seed={seed})"),
        forget_owners=forget_owners,
        relearn_owners=relearn,
        seed=int(seed),
        neighbours=neighbours,
        validation_owners=tuple(validation),
        attack_questions=tuple(q for q in questions if q.owner in set(relearn)),
    )
