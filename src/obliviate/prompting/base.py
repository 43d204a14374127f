"""What every prompting method shares: the ``behavioural`` guarantee, no gradients, and a
:class:`~obliviate.prompting.wrapped.PromptedModel` as the result.

A prompting method is an :class:`~obliviate.unlearning.base.Unlearner` of the language-model family
(``family = "lm"``), so ``obliviate.unlearn(lm, request, qa_data, method="system_prompt")`` runs it
like GradDiff or NPO; ``execute`` times :meth:`PromptingMethod.build`, counts the forget items it
read (no gradient steps, no example passes), and never copies or touches the weights.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from obliviate.errors import InvalidInputError
from obliviate.unlearning.base import BEHAVIOURAL, Cost, Unlearner, UnlearnTask

__all__ = ["PromptingMethod", "describe_forget", "forget_terms", "DOMAIN_NAMES", "check_description"]

DOMAIN_NAMES: dict[str, str] = {
    "elements": "the chemical elements",
    "geography": "countries and their capitals",
    "compounds": "chemical compounds",
}
"""How a knowledge-suite domain (owner prefix ``<domain>:``) is named in a forget description."""


def _split_owner(owner: str) -> tuple[str | None, str]:
    domain, sep, subject = str(owner).partition(":")
    return (domain, subject) if sep else (None, str(owner))


def describe_forget(owners: Sequence[str], *, name_subjects: bool = False) -> str:
    """A forget description from the forget set's owners: the domains' names (``"the chemical
    elements"``) for ``<domain>:<subject>`` owners, plus the subjects when ``name_subjects``; the
    owners themselves (people, authors) otherwise."""
    owners = sorted({str(o) for o in owners})
    if not owners:
        raise InvalidInputError("the forget set names no owner; a description needs at least one subject or domain.")
    domains: dict[str, list[str]] = {}
    people: list[str] = []
    for o in owners:
        domain, subject = _split_owner(o)
        if domain is None:
            people.append(subject)
        else:
            domains.setdefault(domain, []).append(subject)
    parts = []
    for domain, subjects in sorted(domains.items()):
        text = DOMAIN_NAMES.get(domain, domain)
        if name_subjects:
            text += " (" + ", ".join(subjects) + ")"
        parts.append(text)
    if people:
        parts.append("the following people: " + ", ".join(people))
    return "; ".join(parts)


def forget_terms(owners: Sequence[str]) -> list[str]:
    """The forget subjects' names (``"elements:iron"`` -> ``"iron"``), for output filters and leak checks."""
    return sorted({_split_owner(o)[1] for o in owners if _split_owner(o)[1].strip()})


def check_description(description: Any, *, where: str) -> str:
    """The description stripped; an empty or non-string one raises a one-line :class:`InvalidInputError`."""
    if not isinstance(description, str) or not description.strip():
        raise InvalidInputError(
            f"{where}: the forget description is empty; name what to forget (e.g. 'the chemical elements'), "
            "or leave it at 'auto' to derive it from the forget set."
        )
    return re.sub(r"\s+", " ", description.strip())


class PromptingMethod(Unlearner):
    """Base of the prompting methods: ``build(lm, task) -> PromptedModel``; see the module docstring."""

    family: ClassVar[str] = "lm"
    guarantee = BEHAVIOURAL

    def build(self, lm: Any, task: Any) -> Any:
        raise NotImplementedError

    def run(self, model: Any, task: UnlearnTask) -> Any:  # pragma: no cover - execute is the entry point
        return self.build(model, task)

    def forget_owners(self, task: Any) -> list[str]:
        items = list(getattr(task.forget, "items", ()) or ())
        if not items:
            raise InvalidInputError(f"{self.name!r}: the forget set is empty; the request must select some items.")
        return sorted({str(it.owner) for it in items})

    def description_for(self, task: Any, description: str, *, name_subjects: bool = False) -> str:
        if description == "auto":
            return describe_forget(self.forget_owners(task), name_subjects=name_subjects)
        return check_description(description, where=f"{self.name}.description")

    def execute(self, model: Any, task: UnlearnTask) -> tuple[Any, Cost]:
        from obliviate.models.lm import LanguageModel

        if not isinstance(model, LanguageModel) or not hasattr(task.forget, "items"):
            raise InvalidInputError(
                f"{self.name!r} is a prompting method: it wraps a LanguageModel and reads a QADataset request; "
                "for a classifier use a classifier method (obliviate methods lists them)."
            )
        task.method = self.name
        start = time.perf_counter()
        out = self.build(model, task)
        seconds = time.perf_counter() - start
        read = {int(it.id) for it in task.forget.items}
        task._touched |= read
        return out, Cost(seconds=seconds, gradient_steps=0, examples_seen=0, examples_touched=len(read))
