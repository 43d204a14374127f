"""The language-model unlearner contract: task, shared losses, the paired forget/retain loop.

Methods follow open-unlearning (locuslab/open-unlearning ``src/trainer/unlearn/*.py``): every
method but gradient ascent minimises ``gamma * forget_loss + alpha * retain_loss`` on pairs of
forget and retain batches, one optimiser step per forget batch, ``epochs`` passes over the forget
set. The optimiser is AdamW with HF ``Trainer``'s defaults that the reference inherits: linear
warm-up (``warmup_epochs``, open-unlearning's TOFU setting is 1 epoch) then linear decay to 0, and
gradient-norm clipping at 1.0. A method implements ``forget_loss`` (and may change the retain
term, the trainable parameters or the whole ``run``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.lm.batches import IGNORE_INDEX, network_of, qa_items
from obliviate.training.loop import num_batches
from obliviate.training.schedules import make_schedule
from obliviate.unlearning.base import EMPIRICAL, Cost, Unlearner, UnlearnTask
from obliviate.unlearning.execution import check_family, is_language_model
from obliviate.unlearning.lm_task import DEFAULT_IDK_ANSWERS, DOCUMENT, Batch, LMUnlearnTask, encode_documents

__all__ = [
    "DEFAULT_IDK_ANSWERS",
    "LMUnlearnTask",
    "LMConfig",
    "LMUnlearner",
    "PairedLMUnlearner",
    "is_language_model",
    "mean_token_nll",
    "kl_to_reference",
    "linear_schedule",
    "finetune_on_forget",
    "check_family",
    "MODEL_FAMILIES",
    "encode_documents",
    "DOCUMENT",
]

# ---------------------------------------------------------------- shared losses
def _logits(net: nn.Module, batch: Batch) -> torch.Tensor:
    return net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def mean_token_nll(net: nn.Module, batch: Batch) -> torch.Tensor:
    """The mean answer-token NLL over the batch (HF ``outputs.loss``: sum over all answer tokens / their count)."""
    logits = _logits(net, batch)[:, :-1]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)


def kl_to_reference(net: nn.Module, reference: nn.Module, batch: Batch) -> torch.Tensor:
    """``KL(p_ref || p_theta)`` of the next-token distributions, averaged over the answer tokens.

    open-unlearning's ``compute_kl_divergence`` averages over every position including prompt
    and padding; here only the answer positions count (the prompt is identical for both models'
    inputs and padding carries no meaning)."""
    mask = batch["labels"][:, 1:] != IGNORE_INDEX
    with torch.no_grad():
        ref = F.log_softmax(_logits(reference, batch)[:, :-1].float(), -1)[mask]
    cur = F.log_softmax(_logits(net, batch)[:, :-1].float(), -1)[mask]
    return F.kl_div(cur, ref, reduction="batchmean", log_target=True)


def linear_schedule(optimizer: torch.optim.Optimizer, *, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """HF's ``get_linear_schedule_with_warmup`` (:mod:`obliviate.training.schedules`, the schedule module every trainer
    uses): up to lr over ``warmup`` steps, then linearly to 0 at ``total``."""
    return make_schedule("linear", optimizer, total, warmup_steps=warmup)


# ---------------------------------------------------------------- config and contract
@dataclass(frozen=True)
class LMConfig:
    """The optimisation settings every LM method shares.

    AdamW at ``lr`` with ``weight_decay``, ``epochs`` passes over the forget set in batches of
    ``batch_size`` items (each paired with a retain batch of the same size), linear warm-up for
    ``warmup_epochs`` then linear decay, gradient norm clipped at ``max_grad_norm`` (0: off).
    open-unlearning's TOFU defaults are lr 1e-5, 10 epochs, effective batch 32, weight decay 0.01,
    1 warm-up epoch for 7B models. Each method's ``Config`` holds its published values; its
    ``family_defaults`` replace some of them per model family (:meth:`LMUnlearner.defaults_for`).
    """

    epochs: int = 10
    lr: float = 1e-4
    batch_size: int = 8
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    max_grad_norm: float = 1.0


MODEL_FAMILIES: tuple[str, ...] = ("tiny-gpt", "llama", "other")
"""The model families method defaults are kept for (:func:`obliviate.models.lm.model_family`)."""


class LMUnlearner(Unlearner):
    """Base of the language-model methods: ``execute(lm, task)`` on a :class:`LMUnlearnTask`.

    Defaults belong to a model family. ``Config`` holds the published values (the ``"other"``
    family: any model not listed); ``family_defaults[family]`` replaces some of them for
    ``"tiny-gpt"`` (the 2-layer GPT trained from scratch; measured on the tiny authors bench) and
    ``"llama"`` (SmolLM2-class Llamas under 1B parameters: RMU's and task_vector's were chosen on the
    knowledge suite's validation split by benchmarks/lm_knowledge_search.py; the others are starting
    values for a 135M pretrained model, not searched; what they reach is in benchmarks/RESULTS.md).
    ``execute`` picks the model's family; a setting the caller gave explicitly (a keyword, or a
    ``config=`` field that differs from ``Config()``) always wins over any family default.
    After a run, :meth:`settings` reports the values that were used.
    """

    family: ClassVar[str] = "lm"
    guarantee = EMPIRICAL
    family_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    @dataclass(frozen=True)
    class Config(LMConfig):
        pass

    def __init__(self, config: Any = None, **settings: Any) -> None:
        super().__init__(config, **settings)
        published = self.Config()
        explicit = set(settings)
        if config is not None:
            explicit |= {f.name for f in dataclasses.fields(published) if getattr(config, f.name) != getattr(published, f.name)}
        self.explicit: frozenset[str] = frozenset(explicit)
        self.requested = self.config
        self.model_family: str | None = None

    @classmethod
    def defaults_for(cls, family: str) -> dict[str, Any]:
        """The defaults for a model family: ``Config``'s published values with the family's overrides."""
        if family not in MODEL_FAMILIES:
            raise InvalidInputError(f"unknown model family {family!r}; use one of {', '.join(MODEL_FAMILIES)}.")
        return dataclasses.asdict(dataclasses.replace(cls.Config(), **dict(cls.family_defaults.get(family, {}))))

    def config_for(self, model: Any) -> tuple[str, Any]:
        """``(family, config)`` for a run on ``model``: the requested config with the family's defaults
        for every field the caller did not set explicitly."""
        from obliviate.models.lm import model_family

        family = model_family(model)
        overrides = {k: v for k, v in self.family_defaults.get(family, {}).items() if k not in self.explicit}
        return family, dataclasses.replace(self.requested, **overrides)

    def validate_config(self) -> None:
        super().validate_config()
        c = self.config
        if c.warmup_epochs < 0 or c.max_grad_norm < 0:
            raise InvalidInputError(f"{self.name}.warmup_epochs and max_grad_norm must be >= 0.")
        for key in ("gamma", "alpha"):
            if hasattr(c, key) and getattr(c, key) < 0:
                raise InvalidInputError(f"{self.name}.{key} must be >= 0 (a loss weight), got {getattr(c, key)}.")
        if hasattr(c, "beta") and c.beta <= 0:
            raise InvalidInputError(f"{self.name}.beta must be > 0 (the method's inverse temperature or strength), got {c.beta}.")
        if getattr(c, "retain_loss", "nll") not in {"nll", "kl"}:
            raise InvalidInputError(f"{self.name}.retain_loss must be 'nll' or 'kl', got {c.retain_loss!r}.")

    def run(self, model: Any, task: LMUnlearnTask) -> Any:
        raise NotImplementedError

    def execute(self, model: Any, task: UnlearnTask) -> tuple[Any, Cost]:
        """Run on a copy of the LanguageModel ``model``, timed and counted; ``model`` is not modified.

        Raises :class:`DivergedError` when the loss (with its step), a weight or the outputs on
        a retain batch stop being finite.
        """
        if not is_language_model(model) or not isinstance(task, LMUnlearnTask):
            raise InvalidInputError(
                f"{self.name!r} is a language-model method: it needs a LanguageModel and a QADataset; "
                "for a classifier use a classifier method (obliviate methods lists both families)."
            )
        self.model_family, self.config = self.config_for(model)
        self.validate_config()
        from obliviate.unlearning.execution import LANGUAGE_MODEL, execute  # the one execute() loop of both families

        return execute(self, model, task, family=LANGUAGE_MODEL)


def optimise(
    task: LMUnlearnTask,
    config: LMConfig,
    params: list[nn.Parameter],
    steps: Iterator[tuple[torch.Tensor, int]],
    *,
    steps_per_epoch: int,
) -> None:
    """Drive AdamW + linear schedule + clipping over ``(loss, examples)`` pairs yielded by ``steps``.

    ``steps`` computes each loss lazily (after the previous update), so one generator both
    reads batches and builds losses; each loss is checked and counted by ``task.backward``.
    """
    c = config
    optimizer = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
    total = c.epochs * steps_per_epoch
    scheduler = linear_schedule(optimizer, warmup=round(c.warmup_epochs * steps_per_epoch), total=total)
    for loss, examples in steps:
        optimizer.zero_grad(set_to_none=True)
        task.backward(loss, batch=examples, lr=scheduler.get_last_lr()[0])
        if c.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, c.max_grad_norm)
        optimizer.step()
        scheduler.step()


def finetune_on_forget(net: nn.Module, task: LMUnlearnTask, config: LMConfig, *, stream: int) -> nn.Module:
    """Descend the forget set's NLL for ``config.epochs`` (the "reinforced" / fine-tuned model of
    WHP and task vectors); ``net`` is updated in place and returned in eval mode."""
    params = list(net.parameters())
    for p in params:
        p.requires_grad_(True)
    gen = task.generator(stream)

    def steps() -> Iterator[tuple[torch.Tensor, int]]:
        for _ in range(config.epochs):
            for batch in task.batches("forget", config.batch_size, generator=gen):
                b = batch["answer"]
                yield mean_token_nll(net, b), len(b["input_ids"])

    net.train()
    optimise(task, config, params, steps(), steps_per_epoch=num_batches(len(qa_items(task.forget)), config.batch_size))
    return net.eval()


class PairedLMUnlearner(LMUnlearner):
    """``gamma * forget_loss + alpha * retain_loss`` on paired forget/retain batches.

    Subclasses implement :meth:`forget_loss`; ``forget_answers`` names the answer variants the
    forget batches carry (IdkDPO also needs ``"idk"``; RMU over whole documents reads :data:`DOCUMENT`),
    ``retain_answer`` the retain batches' variant; ``trainable`` picks the updated weights.
    """

    forget_answers: tuple[str, ...] = ("answer",)
    retain_answer: str = "answer"
    stream: ClassVar[int] = 500

    @dataclass(frozen=True)
    class Config(LMConfig):
        gamma: float = 1.0
        alpha: float = 1.0
        retain_loss: str = "nll"

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        raise NotImplementedError

    def retain_loss(self, net: nn.Module, retain: Batch, task: LMUnlearnTask) -> torch.Tensor:
        """Mean answer-token NLL on the retain batch, or the KL to the original (``retain_loss='kl'``)."""
        if self.config.retain_loss == "kl":
            return kl_to_reference(net, network_of(task.original), retain)
        return mean_token_nll(net, retain)

    def trainable(self, net: nn.Module) -> list[nn.Parameter]:
        return list(net.parameters())

    def run(self, model: Any, task: LMUnlearnTask) -> Any:
        net, c = model.model, self.config
        gamma, alpha = getattr(c, "gamma", 1.0), getattr(c, "alpha", 0.0)
        params = self.trainable(net)
        chosen = {id(p) for p in params}
        for p in net.parameters():
            p.requires_grad_(id(p) in chosen)
        forget_gen, retain_gen = task.generator(self.stream), task.generator(self.stream + 1)
        f_answers, r_answer = tuple(self.forget_answers), str(self.retain_answer)
        retain = (
            task.cycle("retain", c.batch_size, generator=retain_gen, answers=(r_answer,)) if alpha > 0 else None
        )

        def steps() -> Iterator[tuple[torch.Tensor, int]]:
            for _ in range(c.epochs):
                for forget in task.batches("forget", c.batch_size, generator=forget_gen, answers=f_answers):
                    n = len(forget[f_answers[0]]["input_ids"])
                    loss = gamma * self.forget_loss(net, forget, task)
                    if retain is not None:
                        r = next(retain)[r_answer]
                        loss = loss + alpha * self.retain_loss(net, r, task)
                        n += len(r["input_ids"])
                    yield loss, n

        net.train()
        optimise(task, c, params, steps(), steps_per_epoch=num_batches(len(qa_items(task.forget)), c.batch_size))
        net.eval()
        return model
