"""A language model that answers through a prompt policy: the object every prompting method returns.

:class:`PromptedModel` is a :class:`~obliviate.models.lm.LanguageModel` (same network, same tokenizer
vocabulary, same ``copy()``), so the knowledge scorer, the attacks, ``greedy_answers`` and the CLI treat
it like any unlearned model. What changes is the text the network sees: every conversation passes
through a :class:`PromptPolicy` before it is rendered, so a system prompt, in-context examples or a
router's choice of worker condition everything, multiple-choice log-likelihoods included.

Two paths render prompts and both are covered:

- ``lm.prompt(question)`` (the scorer's context, ``greedy_answers``): overridden here;
- ``lm.tokenizer.apply_chat_template(messages)`` (the in-context attack's earlier turns,
  :func:`obliviate.evaluation.attacks.few_shot_context`): the tokenizer is a thin proxy whose
  ``apply_chat_template`` passes the messages through the policy first; everything else
  (``__call__``, ``decode``, ids) is the wrapped tokenizer's.

User text is *escaped* before it is rendered (:func:`escape_user_text`): the strings of the
tokenizer's special and added tokens (``<|im_start|>``, ``<|im_end|>``, ...) are broken with a
zero-width space so they tokenise as plain text, and without a chat template newlines are folded,
so a question cannot close its own turn and open a system turn.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from obliviate.errors import InvalidInputError
from obliviate.models.lm import LanguageModel

__all__ = ["PromptPolicy", "PromptedModel", "PolicyTokenizer", "escape_user_text", "render_plain", "special_strings"]

Message = dict[str, str]
_ZWSP = "\u200b"


def special_strings(tokenizer: Any) -> tuple[str, ...]:
    """The texts of every special and added token of ``tokenizer`` (longest first)."""
    found: set[str] = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for token in decoder.values():
        content = getattr(token, "content", token)
        if isinstance(content, str):
            found.add(content)
    return tuple(sorted((s for s in found if len(s) > 1), key=len, reverse=True))


def escape_user_text(text: str, tokenizer: Any, *, plain: bool = False) -> str:
    """``text`` made inert as user content: every occurrence of a special or added token's string is
    broken by a zero-width space after its first character (it then tokenises as ordinary text);
    with ``plain`` (no chat template: ``Question:/Answer:`` turns) line breaks become spaces, so the
    text cannot start a line of its own."""
    if not isinstance(text, str):
        raise InvalidInputError(f"user text must be a string, got {type(text).__name__}.")
    for s in special_strings(tokenizer):
        if s in text:
            text = text.replace(s, s[0] + _ZWSP + s[1:])
    if plain:
        text = " ".join(text.splitlines())
    return text


def render_plain(messages: Sequence[Message]) -> str:
    """Messages as the ``Question: ...\\nAnswer: ...`` text of a model without a chat template: a
    system turn first (its text, then a blank line), each user/assistant pair as one block, and the
    last user turn open (``...\\nAnswer:``). One user message renders as ``LanguageModel.prompt``."""
    out: list[str] = []
    pending: str | None = None
    for m in messages:
        role, content = m["role"], m["content"]
        if role == "system":
            out.append(f"{content}\n\n")
        elif role == "user":
            if pending is not None:
                out.append(f"Question: {pending}\nAnswer:\n\n")
            pending = content
        else:
            out.append(f"Question: {pending or ''}\nAnswer: {content}\n\n")
            pending = None
    out.append(f"Question: {pending or ''}\nAnswer:")
    return "".join(out)


class PromptPolicy:
    """How a conversation is rewritten before the model sees it. The base policy only escapes user
    turns; subclasses add a system turn, in-context examples, or route to a worker."""

    name = "plain"

    def escape(self, conversation: Sequence[Message], tokenizer: Any, *, plain: bool) -> list[Message]:
        out = []
        for m in conversation:
            if not isinstance(m, dict) or "role" not in m or "content" not in m:
                raise InvalidInputError(f"a chat message must be a dict with role and content, got {m!r}.")
            content = (
                m["content"] if m["role"] == "system" else escape_user_text(str(m["content"]), tokenizer, plain=plain)
            )
            out.append({"role": m["role"], "content": content})
        return out

    def rewrite(self, conversation: list[Message]) -> list[Message]:
        """The conversation the model sees (already escaped)."""
        return conversation

    def messages(self, conversation: Sequence[Message], tokenizer: Any, *, plain: bool) -> list[Message]:
        return self.rewrite(self.escape(conversation, tokenizer, plain=plain))


class PolicyTokenizer:
    """The wrapped tokenizer, except that ``apply_chat_template`` rewrites the messages with the policy."""

    def __init__(self, inner: Any, policy: PromptPolicy) -> None:
        if isinstance(inner, PolicyTokenizer):
            inner = inner._inner
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_policy", policy)

    def __getattr__(self, name: str) -> Any:
        if name in ("_inner", "_policy") or (name.startswith("__") and name.endswith("__")):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._inner(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._inner)

    def apply_chat_template(self, conversation: Sequence[Message], *args: Any, **kwargs: Any) -> Any:
        return self._inner.apply_chat_template(
            self._policy.messages(list(conversation), self._inner, plain=False), *args, **kwargs
        )


@dataclass(repr=False)
class PromptedModel(LanguageModel):
    """A :class:`LanguageModel` whose every prompt goes through ``policy`` (see the module docstring).

    ``base_name`` is the wrapped model's name; ``name`` reads ``<base>/<policy>``. The network is the
    base model's own (not a copy: nothing in the weights changes); :meth:`copy` copies it, as the
    attacks that fine-tune or quantise a model expect, and keeps the policy.
    """

    policy: PromptPolicy | None = None
    base_name: str = ""
    # the system this model answers through, if any (a boxed system's answer_many): the suites' free answers
    # (obliviate.lm.generate.free_answers) are its answers. Not carried by copy(): a copy's weights may be changed
    # by an attack, and the system answers from the network it was built on.
    answerer: Callable[..., list[str]] | None = field(default=None, repr=False, compare=False)  # (questions, *, max_new_tokens)

    def __post_init__(self) -> None:
        if not isinstance(self.policy, PromptPolicy):
            raise InvalidInputError(f"a PromptedModel needs a PromptPolicy, got {type(self.policy).__name__}.")
        if not isinstance(self.tokenizer, PolicyTokenizer):
            self.tokenizer = PolicyTokenizer(self.tokenizer, self.policy)
        super().__post_init__()

    @classmethod
    def wrap(cls, lm: LanguageModel, policy: PromptPolicy) -> PromptedModel:
        """``lm`` answering through ``policy`` (the same network object)."""
        if not isinstance(lm, LanguageModel):
            raise InvalidInputError(f"prompting methods wrap an obliviate LanguageModel, got {type(lm).__name__}.")
        inner = lm.tokenizer._inner if isinstance(lm.tokenizer, PolicyTokenizer) else lm.tokenizer
        base = getattr(lm, "base_name", "") or lm.name
        return cls(
            model=lm.model,
            tokenizer=inner,
            name=f"{base}/{policy.name}",
            max_length=lm.max_length,
            policy=policy,
            base_name=base,
        )

    def __repr__(self) -> str:
        return f"PromptedModel({self.name!r}, policy={self.policy!r})"

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer._inner, "chat_template", None))

    def prompt(self, question: str) -> str:
        """The text the answer follows, with the policy applied (system turn, examples, routing)."""
        conversation = [{"role": "user", "content": question}]
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return render_plain(self.policy.messages(conversation, self.tokenizer._inner, plain=True))

    def conversation_prompt(self, conversation: Sequence[Message]) -> str:
        """The prompt for a multi-turn ``conversation`` ending in a user turn (the policy applied)."""
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(list(conversation), tokenize=False, add_generation_prompt=True)
        return render_plain(self.policy.messages(list(conversation), self.tokenizer._inner, plain=True))

    def copy(self) -> PromptedModel:
        return PromptedModel(
            model=copy.deepcopy(self.model),
            tokenizer=self.tokenizer._inner,
            name=self.name,
            max_length=self.max_length,
            policy=self.policy,
            base_name=self.base_name,
        )

    def unwrapped(self) -> LanguageModel:
        """The base LanguageModel (same network, no policy)."""
        return LanguageModel(
            model=self.model,
            tokenizer=self.tokenizer._inner,
            name=self.base_name or self.name,
            max_length=self.max_length,
        )
