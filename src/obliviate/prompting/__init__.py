"""Forgetting without gradients: the model is asked, or guarded, to behave as if it forgot.

Methods (guarantee ``behavioural``; each returns a :class:`~obliviate.prompting.wrapped.PromptedModel`
that the knowledge scorer, the attacks and the CLI treat like any unlearned LanguageModel):

- ``system_prompt`` (:mod:`~obliviate.prompting.system_prompt`): a system turn naming what to forget
  (Thaker et al. 2024), with the Streisand check :func:`~obliviate.prompting.system_prompt.instruction_leak`;
- ``icul`` (:mod:`~obliviate.prompting.icul`): in-context unlearning (Pawelczyk et al. 2023) for a
  classification task a model was fine-tuned on, with the paper's evaluation;
- ``boxed`` (:mod:`~obliviate.prompting.box`): a boxed system (router, workers, composer, output
  filter) exposing ``answer(question) -> text`` and a scoring hook.

Importing this package registers the three methods.
"""

from obliviate.prompting.box import (
    REFUSAL,
    BoxedSystem,
    BoxedUnlearning,
    EmbeddingRouter,
    MissingWorkerError,
    OriginalWorker,
    RefusingWorker,
    TermFilter,
    TrimComposer,
    calibrate_threshold,
)
from obliviate.prompting.icul import ICULUnlearning, icul_evaluation, icul_model, yes_no_facts
from obliviate.prompting.system_prompt import (
    DEFAULT_TEMPLATE,
    NEUTRAL_TEMPLATE,
    SystemPromptUnlearning,
    instruction_leak,
    system_prompt_model,
)
from obliviate.prompting.wrapped import PromptedModel, PromptPolicy, escape_user_text

__all__ = [
    "REFUSAL",
    "BoxedSystem",
    "BoxedUnlearning",
    "EmbeddingRouter",
    "MissingWorkerError",
    "OriginalWorker",
    "RefusingWorker",
    "TermFilter",
    "TrimComposer",
    "calibrate_threshold",
    "ICULUnlearning",
    "icul_evaluation",
    "icul_model",
    "yes_no_facts",
    "DEFAULT_TEMPLATE",
    "NEUTRAL_TEMPLATE",
    "SystemPromptUnlearning",
    "instruction_leak",
    "system_prompt_model",
    "PromptedModel",
    "PromptPolicy",
    "escape_user_text",
]
