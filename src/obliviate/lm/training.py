"""Fine-tuning language models on question-answer data: the target and the retain (oracle) models.

TOFU (Maini et al. 2024, Sec. 3) fine-tunes a base model on every fictitious author (the
*target*, which the methods unlearn from) and on the retain authors only (the *retain model*,
the oracle forget quality compares against), with the same recipe. The loss is the mean
token NLL of the answers given the prompts (``obliviate.lm.batches``), optimised with AdamW,
linear warm-up then linear decay, gradient clipping at 1.

Training is a function of (base weights, tokenizer, data, recipe): results are cached under
``$OBLIVIATE_CACHE/lm/`` by a sha256 of those inputs (plus the torch build and thread count,
as ``training/oracle.py`` keys the classifier oracle), as self-verifying safetensors. A
corrupt cache file is detected by its hash, discarded and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from obliviate.cache import cache_root, content_key, entry_path, load_or_build
from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.lm.batches import qa_batches, sequence_nll
from obliviate.models.lm import LanguageModel, tiny_gpt
from obliviate.progress import progress_bar
from obliviate.storage import load_model, read_metadata, save_model, state_sha256
from obliviate.training.loop import check_finite, num_batches, seeded_generator, seeded_global_rng
from obliviate.training.schedules import make_schedule

__all__ = [
    "FinetuneRecipe",
    "TINY_BENCH_SIZE",
    "TINY_FINETUNE",
    "SMOLLM2_FINETUNE",
    "FinetuneRun",
    "finetune",
    "cached_finetune",
    "finetune_key",
    "base_model",
    "target_model",
    "retain_model",
    "training_set",
    "recipe_for",
]


@dataclass(frozen=True)
class FinetuneRecipe:
    """How a language model is fine-tuned on QA pairs (AdamW, linear warm-up then linear decay).

    ``warmup`` is the fraction of the steps spent warming up (TOFU: one of five epochs, 0.2).
    ``lora_rank`` > 0 trains LoRA adapters (Hu et al. 2022, via ``peft``) of that rank and scale
    ``lora_alpha / lora_rank`` on ``lora_targets`` (peft's ``"all-linear"``: every linear layer but
    the output head) instead of every weight, and merges them back: the result is a plain model
    of the base's class, so every method sees an ordinary model. 0 (default): full fine-tuning.
    """

    epochs: int = 5
    lr: float = 1e-5
    batch_size: int = 32
    weight_decay: float = 0.01
    warmup: float = 0.2
    max_grad_norm: float = 1.0
    seed: int = 0
    lora_rank: int = 0
    lora_alpha: float = 32.0
    lora_targets: str = "all-linear"

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"FinetuneRecipe.{key} must be a positive integer, got {value!r}.")
        if not (self.lr > 0 and self.lr < 1):
            raise InvalidInputError(f"FinetuneRecipe.lr must be in (0, 1), got {self.lr!r}.")
        if not 0 <= self.warmup < 1:
            raise InvalidInputError(f"FinetuneRecipe.warmup must be a fraction in [0, 1), got {self.warmup!r}.")
        if self.weight_decay < 0 or self.max_grad_norm <= 0:
            raise InvalidInputError("FinetuneRecipe.weight_decay must be >= 0 and max_grad_norm > 0.")
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise InvalidInputError(f"FinetuneRecipe.lora_rank must be an integer >= 0 (0: full fine-tuning), got {self.lora_rank!r}.")
        if self.lora_rank and not self.lora_alpha > 0:
            raise InvalidInputError(f"FinetuneRecipe.lora_alpha must be > 0, got {self.lora_alpha!r}.")

    def to_dict(self) -> dict[str, Any]:
        """The recipe's fields; the LoRA ones only when LoRA is on (full fine-tuning keeps its old cache keys)."""
        out = asdict(self)
        if not self.lora_rank:
            for key in ("lora_rank", "lora_alpha", "lora_targets"):
                out.pop(key)
        return out

    def with_seed(self, seed: int) -> FinetuneRecipe:
        return replace(self, seed=int(seed))


# SmolLM2 and other pretrained models: LoRA rank 16 on every linear layer (merged afterwards),
# 3 epochs at lr 1e-3 in batches of 8, weight decay 0, warm-up 20%. TOFU fine-tunes every
# weight (lr 1e-5, batch 32, 5 epochs, 7B models); full fine-tuning of the 135M model on 80 items
# took ~15 min on 2 loaded cores, so the CPU suite trains adapters (measured in benchmarks/).
SMOLLM2_FINETUNE = FinetuneRecipe(epochs=3, lr=1e-3, batch_size=8, weight_decay=0.0, warmup=0.2, lora_rank=16, lora_alpha=32.0)
# The tiny GPT learns from scratch (authors and world facts together), sized for the 2-core bench.
TINY_FINETUNE = FinetuneRecipe(epochs=20, lr=3e-3, batch_size=32, weight_decay=0.0, warmup=0.05)
TINY_BENCH_SIZE = {"n_layer": 2, "n_embd": 96, "n_head": 4, "vocab_size": 1024, "max_length": 128}


def recipe_for(lm: LanguageModel) -> FinetuneRecipe:
    """The default fine-tuning recipe for ``lm``: the tiny GPT's or the pretrained models'."""
    return TINY_FINETUNE if lm.name.startswith("tiny-gpt") else SMOLLM2_FINETUNE


def finetune(
    lm: LanguageModel,
    data: Any,
    *,
    recipe: FinetuneRecipe | None = None,
    show_progress: bool = False,
    description: str = "fine-tuning",
) -> LanguageModel:
    """A copy of ``lm`` fine-tuned on ``data`` (a ``QADataset``): minimises the mean answer-token
    NLL; raises :class:`~obliviate.errors.DivergedError` (with the step) on a NaN/inf loss.
    Deterministic: batch order from ``seeded_generator(recipe.seed, 1)``, dropout from the global
    generator seeded with ``recipe.seed`` (restored afterwards)."""
    if not isinstance(lm, LanguageModel):
        raise InvalidInputError(f"finetune takes an obliviate LanguageModel, got {type(lm).__name__}.")
    if len(data) == 0:
        raise InvalidInputError("finetune: the dataset is empty.")
    recipe = recipe or recipe_for(lm)
    out = lm.copy()
    net = out.model
    if recipe.lora_rank:
        net = _with_lora(net, recipe)
        out.model = net
        params = [p for p in net.parameters() if p.requires_grad]
    else:
        params = list(net.parameters())
        for p in params:
            p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    per_epoch = num_batches(len(data), recipe.batch_size)
    total = per_epoch * recipe.epochs
    warmup_steps = int(recipe.warmup * total)
    scheduler = make_schedule("linear", optimizer, total, warmup_steps=warmup_steps)
    order = seeded_generator(recipe.seed, 1)
    net.train()
    step = 0
    with seeded_global_rng(recipe.seed), progress_bar(f"{description} {lm.name}", total=total, enabled=show_progress) as advance:
        for _ in range(recipe.epochs):
            for batch in qa_batches(out, data, recipe.batch_size, generator=order):
                nll, n_tokens = sequence_nll(out, batch)
                loss = nll.sum() / n_tokens.sum().clamp_min(1)
                check_finite(loss, step=step, where=f"{description} {lm.name}", lr=scheduler.get_last_lr()[0])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)
                optimizer.step()
                scheduler.step()
                step += 1
                advance(1)
    if recipe.lora_rank:
        net = net.merge_and_unload()  # the adapters folded into the weights: a plain model again
        out.model = net
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return out


def _with_lora(net: torch.nn.Module, recipe: FinetuneRecipe) -> torch.nn.Module:
    """``net`` wrapped by peft with LoRA adapters (A seeded by ``recipe.seed``, B zero): only they train."""
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise InvalidInputError("LoRA fine-tuning (lora_rank > 0) needs the 'peft' package: pip install -e '.[lm]'.")
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=recipe.lora_rank, lora_alpha=recipe.lora_alpha, target_modules=recipe.lora_targets,
                        lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    with seeded_global_rng(recipe.seed):
        return get_peft_model(net, config)


@dataclass
class FinetuneRun:
    """A fine-tuned model, the seconds its training took (when it was trained, not loaded) and its cache key."""

    lm: LanguageModel
    seconds: float
    key: str
    from_cache: bool


def _tokenizer_sha(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    text += json.dumps({"template": getattr(tokenizer, "chat_template", None), "pad": tokenizer.pad_token})
    return hashlib.sha256(text.encode()).hexdigest()


def finetune_key(lm: LanguageModel, data: Any, recipe: FinetuneRecipe) -> str:
    """sha256 of (base weights and config, tokenizer, data fingerprint, recipe, max_length, torch build, threads)."""
    return content_key(
        {
            "weights": state_sha256(lm.model.state_dict()),
            "config": lm.model.config.to_json_string(use_diff=False),
            "tokenizer": _tokenizer_sha(lm.tokenizer),
            "data": data.fingerprint,
            "recipe": recipe.to_dict(),
            "max_length": lm.max_length,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )


def cached_finetune(
    lm: LanguageModel,
    data: Any,
    *,
    recipe: FinetuneRecipe | None = None,
    cache: bool | str | Path = True,
    name: str | None = None,
    show_progress: bool = False,
) -> FinetuneRun:
    """:func:`finetune`, cached on disk by :func:`finetune_key` (``cache`` a folder, True, or False)."""
    recipe = recipe or recipe_for(lm)
    key = finetune_key(lm, data, recipe)
    label = name or "fine-tuning"
    root = cache_root(cache)
    timing: dict[str, float] = {}

    def load(path: Path) -> LanguageModel:
        timing["seconds"] = float(read_metadata(path).get("seconds", "nan"))
        out = lm.copy()
        load_model(path, model=out.model)
        return out

    def build() -> LanguageModel:
        start = time.perf_counter()
        out = finetune(lm, data, recipe=recipe, show_progress=show_progress, description=label)
        timing["seconds"] = time.perf_counter() - start
        return out

    def save(out: LanguageModel, path: Path) -> None:
        meta = {"kind": "lm-finetune", "key": key, "seconds": repr(timing["seconds"]), "items": len(data)}
        save_model(out.model, path, metadata=meta)

    out, from_cache = load_or_build(
        None if root is None else entry_path(root, "lm", key),
        load=load,
        build=build,
        save=save,
        corrupt=(CorruptCheckpointError, InvalidInputError, ValueError),
    )
    out.name = name or out.name
    return FinetuneRun(out, timing["seconds"], key, from_cache)


def _is_from_scratch(lm: LanguageModel) -> bool:
    return lm.name.startswith("tiny-gpt")


def base_model(model: str | Path | LanguageModel, benchmark: Any, *, seed: int = 0) -> LanguageModel:
    """The model the target and retain models start from: ``"tiny"`` (an untrained
    :func:`~obliviate.models.lm.tiny_gpt`, its tokenizer trained on the benchmark's text, sized
    for the CPU bench), ``"smollm2"``, a folder, or a LanguageModel as is."""
    from obliviate.models.lm import load_language_model

    if isinstance(model, str) and model == "tiny":
        return tiny_gpt(benchmark.texts(), seed=seed, **TINY_BENCH_SIZE)
    return load_language_model(model)


def training_set(base: LanguageModel, authors: Any, benchmark: Any, *, with_utility: bool | None = None) -> Any:
    """What the target/retain model trains on: the authors, plus the utility facts when the base
    is trained from scratch (``with_utility=None``: the tiny GPT). A pretrained model knows the
    world facts already; a model from scratch learns them here, alongside the authors, as its
    "pre-training" (fine-tuning a tiny model on authors alone would erase them)."""
    from obliviate.data.authors import QADataset

    if with_utility is None:
        with_utility = _is_from_scratch(base)
    if not with_utility:
        return authors
    return QADataset(authors.items + benchmark.utility.items, name=f"{authors.name}+utility", idk_answers=authors.idk_answers)


def target_model(base: LanguageModel, benchmark: Any, *, recipe: FinetuneRecipe | None = None,
                 cache: bool | str | Path = True, with_utility: bool | None = None,
                 show_progress: bool = False) -> FinetuneRun:
    """``base`` fine-tuned on every trained author (TOFU's target model)."""
    data = training_set(base, benchmark.train, benchmark, with_utility=with_utility)
    return cached_finetune(base, data, recipe=recipe, cache=cache, name=f"{base.name}/target", show_progress=show_progress)


def retain_model(base: LanguageModel, benchmark: Any, split: str, *, recipe: FinetuneRecipe | None = None,
                 cache: bool | str | Path = True, with_utility: bool | None = None,
                 show_progress: bool = False) -> FinetuneRun:
    """``base`` fine-tuned on the retain authors of ``split`` only (the oracle: never saw the forget set)."""
    data = training_set(base, benchmark.retain(split), benchmark, with_utility=with_utility)
    return cached_finetune(base, data, recipe=recipe, cache=cache, name=f"{base.name}/retain-{split}",
                           show_progress=show_progress)
