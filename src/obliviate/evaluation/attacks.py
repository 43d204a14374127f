"""Attacks that undo unlearning: does the forgotten knowledge come back? Functions for any language model.

Each attack takes a model as given (an unlearned one, the original, or the retain model), leaves it
unchanged, and returns an :class:`AttackResult` with the score ``before`` and ``after`` the attack:

- :func:`relearn_attack`: a few fine-tuning steps on a small, disjoint slice of forget-domain text
  (Lynch et al. 2024; Hu et al. 2024);
- :func:`quantization_attack` (with :func:`quantize_rtn`): 8-bit or 4-bit round-to-nearest weight
  quantisation (Zhang et al. 2024, arXiv 2410.16454);
- :func:`in_context_attack` (with :func:`few_shot_prefix`): few-shot forget-domain facts in the prompt;
- :func:`linear_probe_attack`: a logistic-regression probe on one layer's hidden states.

Contract with the scorers (the knowledge suite's MCQ accuracy, or any other number):

- ``Scorer = Callable[[LanguageModel], float]``: higher means more knowledge (e.g. accuracy).
- ``PrefixScorer = Callable[[LanguageModel, str], float]``: the same with ``prefix`` placed before the
  text of every question, *inside* the prompt: a scorer that reads ``lm.prompt(question)`` reads
  ``lm.prompt(prefix + question)`` instead. ``score(lm, "")`` must equal the plain score. (This is
  lm-evaluation-harness's few-shot layout for chat models, every shot in the one user turn.)

The signatures are the agreed ones, plus keyword-only extras with defaults that keep the agreed
behaviour: ``chance=`` (recorded in the result) on the scorer attacks, ``lora_rank=``,
``weight_decay=``, ``max_grad_norm=`` on :func:`relearn_attack`, ``symmetric=`` on the quantisation
functions, ``validation=``, ``C=``, ``batch_size=`` on :func:`linear_probe_attack`. Results also
have ``.gain`` (after - before) and ``.to_dict()``.

Scorer values must be finite numbers; a NaN or a non-number raises :class:`~obliviate.errors.InvalidInputError`.
Every function checks its inputs and raises :class:`~obliviate.errors.InvalidInputError` (a
``ValueError``) naming the bad argument and the fix. Results are deterministic given ``seed``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from obliviate.errors import InvalidInputError
from obliviate.training.loop import check_finite, minibatches, seeded_generator, seeded_global_rng

__all__ = [
    "ATTACKS",
    "AttackResult",
    "PrefixScorer",
    "Scorer",
    "few_shot_prefix",
    "few_shot_context",
    "IN_CONTEXT_LAYOUTS",
    "in_context_attack",
    "linear_probe_attack",
    "quantization_attack",
    "quantize_rtn",
    "quantized_modules",
    "relearn_attack",
]

Scorer = Callable[[Any], float]
PrefixScorer = Callable[[Any, str], float]

#: The attack names an :class:`AttackResult` carries.
ATTACKS = ("relearn", "quantize_8bit", "quantize_4bit", "in_context", "linear_probe")

# Seed streams (unique to this module): relearning batches, in-context shots, probe validation split.
_RELEARN_STREAM = 9201
_SHOTS_STREAM = 9202
_PROBE_STREAM = 9203


@dataclass(frozen=True)
class AttackResult:
    """One attack on one model: ``before`` is the model's own score, ``after`` the score after the
    attack (for ``linear_probe``: the model's own MCQ accuracy on the test groups, and the probe's).
    ``chance`` is the score of guessing when known; ``details`` is JSON-able (settings, seconds, ...)."""

    attack: str
    before: float
    after: float
    chance: float | None
    details: dict = field(default_factory=dict)

    @property
    def gain(self) -> float:
        """``after - before``: how much the attack brought back (negative: it lost some)."""
        return self.after - self.before

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- input checks
def _network(lm: Any) -> nn.Module:
    net = getattr(lm, "model", None)
    usable = getattr(lm, "tokenizer", None) is not None and callable(getattr(lm, "copy", None))
    if not isinstance(net, nn.Module) or not usable:
        raise InvalidInputError(
            f"attacks take an obliviate LanguageModel (model, tokenizer, copy()), got {type(lm).__name__}; "
            "wrap a Hugging Face model with obliviate.models.lm.LanguageModel."
        )
    return net


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _texts(texts: Any, name: str) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError(f"{name} must be a sequence of texts, not one string; wrap it in a list.")
    try:
        out = list(texts)
    except TypeError:
        raise InvalidInputError(f"{name} must be a sequence of texts, got {type(texts).__name__}.") from None
    if not out:
        raise InvalidInputError(f"{name} is empty: give at least one text.")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise InvalidInputError(
            f"{name} has {len(bad)} empty or non-string entries (first at index {bad[0]}); give non-empty strings."
        )
    return out


def _scored(value: Any, what: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the scorer returned {value!r} for {what}; a scorer must return a number.") from None
    if not math.isfinite(out):
        raise InvalidInputError(f"the scorer returned {out} for {what}; a scorer must return a finite number.")
    return out


def _callable(score: Any, name: str) -> None:
    if not callable(score):
        raise InvalidInputError(f"{name} must be a function of the model, got {type(score).__name__}.")


def _chance(chance: Any) -> float | None:
    if chance is None:
        return None
    value = float(chance)
    if not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"chance must be in [0, 1] or None, got {chance!r}.")
    return value


def _rename(lm: Any, suffix: str) -> None:
    if isinstance(getattr(lm, "name", None), str):
        lm.name = f"{lm.name}/{suffix}"


def _encode_texts(lm: Any, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Plain texts as one right-padded batch: each text's tokens (the tokenizer's own special tokens),
    at most ``lm.max_length`` of them (the *end* is kept); ``lengths`` holds each row's token count."""
    tokenizer = lm.tokenizer
    limit = int(getattr(lm, "max_length", 0) or 0) or None
    rows = []
    for text in texts:
        ids = list(tokenizer(text)["input_ids"])
        rows.append(ids[-limit:] if limit else ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, ids in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "lengths": mask.sum(1)}


def _token_logprobs(logits: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``log p(x_{t+1} | x_<=t)`` of every real next token [B, L-1] and its mask (the first token is context)."""
    target = batch["input_ids"][:, 1:]
    mask = batch["attention_mask"][:, 1:].bool()
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return logp * mask, mask


# ----------------------------------------------------------------------------- relearning
def relearn_attack(
    lm: Any,
    texts: Sequence[str],
    score: Scorer,
    *,
    steps: int = 20,
    lr: float = 1e-4,
    batch_size: int = 4,
    seed: int = 0,
    lora_rank: int | None = None,
    weight_decay: float = 0.01,
    max_grad_norm: float = 1.0,
    chance: float | None = None,
) -> AttackResult:
    """Fine-tune a copy of ``lm`` on ``texts`` for ``steps`` steps and score it (``after``).

    The relearning attack of Lynch et al. 2024 ("Eight methods to evaluate robust unlearning in
    LLMs", Sec. 4.5: a little fine-tuning on related text restores "unlearned" knowledge) and
    Hu et al. 2024 ("Jogging the memory of unlearned LLMs through targeted relearning": a small
    relearn set, disjoint from what is evaluated, recovers held-out forget knowledge). ``texts`` is
    that slice of forget-domain text; keep it disjoint from the questions ``score`` asks (the caller's
    duty: nothing here can check it). Each text is trained on as plain text, every token after the
    first (mean token NLL over the batch), with AdamW at a constant ``lr``, gradient clipping at
    ``max_grad_norm``; each step takes the next ``batch_size`` texts of a seeded shuffle, reshuffled
    each pass. ``lora_rank``: train rank-``r`` LoRA adapters (peft, ``lora_alpha = 2r``, on every
    linear layer but the output head) instead of every weight, merged back before scoring.
    Defaults are ours (20 steps of 4 texts at 1e-4: a few minutes' worth of an attacker's effort on
    a 135M model); the papers fine-tune 7B models with their own settings. ``lm`` is not modified.
    """
    _network(lm)
    texts = _texts(texts, "texts")
    _callable(score, "score")
    steps, batch_size = _positive_int(steps, "steps"), _positive_int(batch_size, "batch_size")
    if not (isinstance(lr, int | float) and 0 < lr < 1):
        raise InvalidInputError(f"lr must be a number in (0, 1), got {lr!r}.")
    if weight_decay < 0 or not max_grad_norm > 0:
        raise InvalidInputError("weight_decay must be >= 0 and max_grad_norm > 0.")
    if lora_rank is not None:
        lora_rank = _positive_int(lora_rank, "lora_rank")
    chance = _chance(chance)

    start = time.perf_counter()
    before = _scored(score(lm), "the model as given")
    scored_before = time.perf_counter()
    work = lm.copy()
    model = work.model
    with seeded_global_rng(seed):  # LoRA's initialisation and any dropout draw from a seeded stream
        if lora_rank is not None:
            model = _with_lora(model, lora_rank)
            trainable = [p for p in model.parameters() if p.requires_grad]
        else:
            for p in model.parameters():
                p.requires_grad_(True)
            trainable = list(model.parameters())
        optimizer = torch.optim.AdamW(trainable, lr=float(lr), weight_decay=float(weight_decay))
        order = seeded_generator(seed, _RELEARN_STREAM)
        losses: list[float] = []
        tokens = 0
        model.train()
        step = 0
        while step < steps:
            for idx in minibatches(len(texts), min(batch_size, len(texts)), generator=order):
                batch = _encode_texts(work, [texts[i] for i in idx.tolist()])
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                logp, mask = _token_logprobs(logits, batch)
                count = mask.sum()
                if int(count) == 0:
                    raise InvalidInputError("every relearning text in a batch is a single token; give longer texts.")
                loss = -logp.sum() / count
                check_finite(loss, step=step, where="relearning attack", lr=float(lr))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, float(max_grad_norm))
                optimizer.step()
                losses.append(float(loss.detach()))
                tokens += int(count)
                step += 1
                if step >= steps:
                    break
        model.eval()
    if lora_rank is not None:
        model = model.merge_and_unload()
        work.model = model
    for p in model.parameters():
        p.requires_grad_(False)
    trained = time.perf_counter()
    _rename(work, f"relearn{steps}")
    after = _scored(score(work), "the relearned model")
    end = time.perf_counter()
    details = {
        "steps": steps,
        "lr": float(lr),
        "batch_size": batch_size,
        "seed": int(seed),
        "lora_rank": lora_rank,
        "weight_decay": float(weight_decay),
        "optimizer": "adamw",
        "texts": len(texts),
        "tokens_trained": tokens,
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "train_seconds": trained - scored_before,
        "seconds": end - start,
    }
    return AttackResult("relearn", before, after, chance, details)


def _with_lora(model: nn.Module, rank: int) -> nn.Module:
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:  # pragma: no cover - peft is a test/lm dependency
        raise InvalidInputError("lora_rank needs the peft package: pip install peft (or lora_rank=None).") from None
    conv1d = _conv1d_type()
    # GPT-2's Conv1D stores its weight as [in, out]
    fan_in_fan_out = conv1d is not None and any(isinstance(m, conv1d) for m in model.modules())
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules="all-linear", bias="none",
                        fan_in_fan_out=fan_in_fan_out)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)  # peft reads a deprecated transformers attribute
        return get_peft_model(model, config)


# ----------------------------------------------------------------------------- quantisation
def _conv1d_type() -> type | None:
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover
        return None
    return Conv1D


def quantized_modules(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The linear layers :func:`quantize_rtn` quantises: every ``nn.Linear`` (and GPT-2's ``Conv1D``)
    except the output head and any layer whose weight is tied to the input embeddings."""
    conv1d = _conv1d_type()
    kinds = (nn.Linear,) + ((conv1d,) if conv1d is not None else ())
    skip: set[int] = set()
    for getter in ("get_output_embeddings", "get_input_embeddings"):
        module = getattr(net, getter, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            skip.add(id(module.weight))
    return [(name, m) for name, m in net.named_modules() if isinstance(m, kinds) and id(m.weight) not in skip]


def _rtn_groups(x: torch.Tensor, bits: int, symmetric: bool) -> torch.Tensor:
    """Round-to-nearest of each row of ``x`` [..., g] to ``bits`` bits, dequantised (float64)."""
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        step = x.abs().amax(-1, keepdim=True) / qmax
        step = torch.where(step > 0, step, torch.ones_like(step))
        return torch.clamp(torch.round(x / step), -qmax, qmax) * step
    qmax = 2**bits - 1
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    step = (hi - lo) / qmax
    step = torch.where(step > 0, step, torch.ones_like(step))
    zero = torch.round(-lo / step)
    return (torch.clamp(torch.round(x / step) + zero, 0, qmax) - zero) * step


def _rtn_matrix(w: torch.Tensor, bits: int, group_size: int | None, symmetric: bool) -> torch.Tensor:
    """``w`` [out, in] quantised per output row in groups of ``group_size`` consecutive inputs
    (``None``: the whole row, per channel); a last, shorter group is its own group."""
    out_features, in_features = w.shape
    g = in_features if group_size is None else min(int(group_size), in_features)
    full = in_features // g
    x = w.double()
    parts = []
    if full:
        groups = x[:, : full * g].reshape(out_features, full, g)
        parts.append(_rtn_groups(groups, bits, symmetric).reshape(out_features, full * g))
    if in_features % g:
        parts.append(_rtn_groups(x[:, full * g :], bits, symmetric))
    return torch.cat(parts, dim=1).to(w.dtype)


def _check_quant_args(bits: Any, group_size: Any) -> tuple[int, int | None]:
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or int(bits) not in (4, 8):
        raise InvalidInputError(f"bits must be 4 or 8 (the precisions of Zhang et al. 2024), got {bits!r}.")
    if group_size is not None:
        group_size = _positive_int(group_size, "group_size (or None for one scale per output channel)")
    return int(bits), group_size


def _quantize_network(net: nn.Module, bits: int, group_size: int | None, symmetric: bool) -> dict[str, Any]:
    conv1d = _conv1d_type()
    modules = quantized_modules(net)
    weights = 0
    change = 0.0
    with torch.no_grad():
        for _, module in modules:
            w = module.weight
            transposed = conv1d is not None and isinstance(module, conv1d)  # Conv1D stores [in, out]
            matrix = w.data.t() if transposed else w.data
            q = _rtn_matrix(matrix, bits, group_size, symmetric)
            q = q.t() if transposed else q
            change += float((q - w.data).abs().sum())
            weights += w.numel()
            w.data.copy_(q)
    return {
        "modules": len(modules),
        "weights_quantized": weights,
        "mean_abs_change": change / max(weights, 1),
    }


def quantize_rtn(lm: Any, bits: int, *, group_size: int | None = 128, symmetric: bool = True) -> Any:
    """A copy of ``lm`` whose linear-layer weights are rounded to ``bits``-bit integers and back.

    Round-to-nearest (RTN) weight quantisation as Zhang et al. 2024 ("Catastrophic failure of LLM
    unlearning via quantization", ICLR 2025, arXiv 2410.16454, Sec. 3) write it, after AWQ's Eq. 1:
    ``Q(w) = D * round(w / D)`` per group of weights, with ``D = max|w| / (2^(N-1) - 1)`` (symmetric
    absmax; the authors' experiments ran it through bitsandbytes, whose int8 is this per output row and
    whose 4-bit format keeps one absmax per block of 64 weights). Here: symmetric by default
    (``symmetric=False``: min-max with a zero point, ``D = (max - min) / (2^N - 1)``), one scale per
    output row and per ``group_size`` consecutive input weights (``None``: per output channel), and
    the integers dequantised straight back to float32 for scoring (fake quantisation: the same
    numbers an integer kernel would use). Every weight moves by at most half its group's step ``D/2``.
    Quantised: every ``nn.Linear`` / GPT-2 ``Conv1D`` except the output head (bitsandbytes keeps
    ``lm_head`` in full precision too) and layers tied to the input embeddings; embeddings, norms
    and biases are untouched, as in the paper. ``lm`` is not modified.
    """
    _network(lm)
    bits, group_size = _check_quant_args(bits, group_size)
    out = lm.copy()
    _quantize_network(out.model, bits, group_size, bool(symmetric))
    _rename(out, f"rtn-w{bits}" + (f"g{group_size}" if group_size else "c") + ("" if symmetric else "-asym"))
    return out


def quantization_attack(
    lm: Any,
    score: Scorer,
    *,
    bits: int,
    group_size: int | None = 128,
    symmetric: bool = True,
    chance: float | None = None,
) -> AttackResult:
    """``score`` of ``lm`` and of :func:`quantize_rtn` ``(lm, bits)``: does quantisation restore
    what unlearning removed (Zhang et al. 2024: unlearning's small weight changes fall inside one
    quantisation step, so the quantised unlearned model is the quantised original)? Attack name
    ``quantize_8bit`` or ``quantize_4bit``. ``lm`` is not modified."""
    _network(lm)
    _callable(score, "score")
    bits, group_size = _check_quant_args(bits, group_size)
    chance = _chance(chance)
    start = time.perf_counter()
    before = _scored(score(lm), "the model as given")
    t0 = time.perf_counter()
    out = lm.copy()
    stats = _quantize_network(out.model, bits, group_size, bool(symmetric))
    _rename(out, f"rtn-w{bits}")
    t1 = time.perf_counter()
    after = _scored(score(out), f"the {bits}-bit model")
    details = {
        "bits": bits,
        "group_size": group_size,
        "scheme": "symmetric absmax" if symmetric else "asymmetric min-max",
        "method": "round-to-nearest, dequantised to float32",
        **stats,
        "quantize_seconds": t1 - t0,
        "seconds": time.perf_counter() - start,
    }
    return AttackResult(f"quantize_{bits}bit", before, after, chance, details)


# ----------------------------------------------------------------------------- in-context
def _examples(examples: Any) -> list[tuple[str, str]]:
    if isinstance(examples, str | tuple) and len(examples) == 2 and all(isinstance(e, str) for e in examples):
        raise InvalidInputError("examples must be a sequence of (question, answer) pairs; wrap the one pair in a list.")
    try:
        pairs = list(examples)
    except TypeError:
        raise InvalidInputError(
            f"examples must be a sequence of (question, answer) pairs, got {type(examples).__name__}."
        ) from None
    if not pairs:
        raise InvalidInputError("examples is empty: give at least one (question, answer) pair of forget-domain facts.")
    out = []
    for i, pair in enumerate(pairs):
        if (
            isinstance(pair, str)
            or not isinstance(pair, Sequence)
            or len(pair) != 2
            or not all(isinstance(s, str) and s.strip() for s in pair)
        ):
            raise InvalidInputError(f"examples[{i}] = {pair!r} is not a (question, answer) pair of non-empty strings.")
        out.append((pair[0].strip(), pair[1].strip()))
    return out


def few_shot_prefix(lm: Any, examples: Sequence[tuple[str, str]]) -> str:
    """The text that, placed before a question inside ``lm.prompt``, turns it into a k-shot prompt.

    Each pair reads ``Question: {q}\\nAnswer: {a}`` followed by a blank line, and the prefix ends with
    ``Question: `` so the question that follows continues the pattern. With a chat template the whole
    block sits in the one user turn (lm-evaluation-harness's layout for chat models); without one the
    model's own ``Question: ...\\nAnswer:`` prompt already opens with ``Question: ``, so the prefix
    drops its first one: ``lm.prompt(prefix + q)`` is then ``Question: q1\\nAnswer: a1\\n\\n...Question: q\\nAnswer:``.
    """
    _network(lm)
    pairs = _examples(examples)
    text = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in pairs) + "Question: "
    chat = bool(getattr(lm, "has_chat_template", False) or getattr(lm.tokenizer, "chat_template", None))
    if not chat and lm.prompt("").startswith("Question: "):
        text = text[len("Question: ") :]
    return text


IN_CONTEXT_LAYOUTS = ("turns", "user_turn")


def few_shot_context(lm: Any, examples: Sequence[tuple[str, str]], question: str) -> str:
    """The prompt for ``question`` with ``examples`` as *earlier conversation turns*: with a chat
    template, one user/assistant pair per example and then the question's user turn and the
    assistant header (the template's own system turn, if any, stays first, once); without one,
    ``Question: q1\nAnswer: a1\n\n...`` followed by ``lm.prompt(question)``. No examples: ``lm.prompt(question)``.

    Unlike :func:`few_shot_prefix` the question keeps its own turn, so the prompt the model sees for
    it is the one it sees without examples, only preceded by a conversation."""
    pairs = list(examples)
    if not pairs:
        return lm.prompt(question)
    if bool(getattr(lm, "has_chat_template", False) or getattr(lm.tokenizer, "chat_template", None)):
        messages = []
        for q, a in pairs:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": question})
        return lm.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in pairs) + lm.prompt(question)


def in_context_attack(
    lm: Any,
    score: PrefixScorer,
    examples: Sequence[tuple[str, str]],
    *,
    shots: int = 5,
    seed: int = 0,
    chance: float | None = None,
    layout: str = "user_turn",
) -> AttackResult:
    """``score(lm, "")`` and ``score(lm, prefix)`` with ``shots`` forget-domain facts in the prompt.

    The in-context attack: few-shot examples of the forgotten domain in the prompt can bring back
    knowledge the unlearned model no longer states unprompted (Lynch et al. 2024, Sec. 4.2, and
    MUSE's KnowMem, Shi et al. 2024, which asks every question after a few QA examples).
    ``examples`` are (question, answer) pairs disjoint from the questions scored; ``shots`` of them
    are drawn without replacement by a seeded permutation and rendered by :func:`few_shot_prefix`.
    The model's weights are never touched.

    ``layout="turns"``: the shots are earlier chat turns instead (:func:`few_shot_context`), and
    ``score`` is called as ``score(lm, [])`` and ``score(lm, pairs)`` with the chosen (question,
    answer) pairs, which it renders with :func:`few_shot_context`. On SmolLM2 the one-user-turn
    layout lowered even the original model's accuracy (100% -> 82% on the knowledge suite's held-out
    questions): the shots in front of the question changed the prompt the model answers, which
    confounds any "recovery"; earlier turns leave the question's own turn as it was.
    """
    _network(lm)
    _callable(score, "score")
    pairs = _examples(examples)
    shots = _positive_int(shots, "shots")
    if shots > len(pairs):
        raise InvalidInputError(
            f"shots={shots} but only {len(pairs)} example(s) were given; give more examples or fewer shots."
        )
    chance = _chance(chance)
    if layout not in IN_CONTEXT_LAYOUTS:
        raise InvalidInputError(f"layout must be one of {', '.join(IN_CONTEXT_LAYOUTS)}, got {layout!r}.")
    start = time.perf_counter()
    picks = torch.randperm(len(pairs), generator=seeded_generator(seed, _SHOTS_STREAM))[:shots].tolist()
    chosen = [pairs[i] for i in picks]
    if layout == "turns":
        before = _scored(score(lm, []), "the model without examples")
        after = _scored(score(lm, chosen), "the model with the few-shot turns")
        prefix = few_shot_context(lm, chosen, "")
    else:
        prefix = few_shot_prefix(lm, chosen)
        before = _scored(score(lm, ""), "the model without a prefix")
        after = _scored(score(lm, prefix), "the model with the few-shot prefix")
    details = {
        "layout": layout,
        "shots": shots,
        "seed": int(seed),
        "examples": len(pairs),
        "chosen": picks,
        "prefix_chars": len(prefix),
        "prefix_tokens": len(lm.tokenizer(prefix, add_special_tokens=False)["input_ids"]),
        "seconds": time.perf_counter() - start,
    }
    return AttackResult("in_context", before, after, chance, details)


# ----------------------------------------------------------------------------- linear probe
def _groups(groups: Any, name: str) -> list[tuple[list[str], int]]:
    if isinstance(groups, str):
        raise InvalidInputError(f"{name} must be a sequence of (candidate texts, correct index) groups, not a string.")
    try:
        items = list(groups)
    except TypeError:
        raise InvalidInputError(
            f"{name} must be a sequence of (candidate texts, correct index) groups, got {type(groups).__name__}."
        ) from None
    if not items:
        raise InvalidInputError(f"{name} is empty: give at least one (candidate texts, correct index) group.")
    out = []
    for i, group in enumerate(items):
        if isinstance(group, str) or not isinstance(group, Sequence) or len(group) != 2:
            raise InvalidInputError(
                f"{name}[{i}] must be a pair (candidate texts, index of the correct one), got {group!r}."
            )
        texts, correct = group
        texts = _texts(texts, f"{name}[{i}]'s candidates")
        if len(texts) < 2:
            raise InvalidInputError(
                f"{name}[{i}] has {len(texts)} candidate; a group needs at least 2 (one correct, one not)."
            )
        if isinstance(correct, bool) or not isinstance(correct, int | np.integer) or not 0 <= int(correct) < len(texts):
            raise InvalidInputError(f"{name}[{i}]'s correct index {correct!r} is not in 0..{len(texts) - 1}.")
        out.append((texts, int(correct)))
    return out


def _n_layers(net: nn.Module) -> int | None:
    config = getattr(net, "config", None)
    for key in ("num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _resolve_layer(layer: Any, n_layers: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, int | np.integer):
        raise InvalidInputError(f"layer must be an integer or None, got {layer!r}.")
    value = int(layer)
    if not -(n_layers + 1) <= value <= n_layers:
        raise InvalidInputError(
            f"layer={layer} is outside this model's hidden states 0..{n_layers} (0: embeddings, i: after block i; "
            "negative counts from the end); pass one of them or None to pick the best."
        )
    return value % (n_layers + 1)


def _default_layers(n_layers: int) -> list[int]:
    return sorted({min(n_layers, max(1, int(n_layers * k / 4 + 0.5))) for k in (1, 2, 3, 4)})


@torch.no_grad()
def _read_groups(
    lm: Any, groups: list[tuple[list[str], int]], layers: list[int], batch_size: int
) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Last-token hidden states at ``layers`` ([n candidates, d] each) and each candidate's total log-likelihood."""
    net = lm.model
    texts = [t for candidates, _ in groups for t in candidates]
    feats: dict[int, list[np.ndarray]] = {k: [] for k in layers}
    loglik: list[np.ndarray] = []
    for begin in range(0, len(texts), batch_size):
        batch = _encode_texts(lm, texts[begin : begin + batch_size])
        out = net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
        hidden = out.hidden_states
        if max(layers) >= len(hidden):
            raise InvalidInputError(
                f"layer {max(layers)} is beyond the model's {len(hidden) - 1} blocks; pass a smaller layer."
            )
        last = batch["lengths"] - 1
        rows = torch.arange(len(last))
        for k in layers:
            feats[k].append(hidden[k][rows, last].double().numpy())
        logp, _ = _token_logprobs(out.logits, batch)
        loglik.append(logp.double().sum(1).numpy())
    return {k: np.concatenate(v) for k, v in feats.items()}, np.concatenate(loglik)


def _group_accuracy(scores: np.ndarray, groups: list[tuple[list[str], int]]) -> float:
    hits, start = 0, 0
    for candidates, correct in groups:
        hits += int(np.argmax(scores[start : start + len(candidates)]) == correct)
        start += len(candidates)
    return hits / len(groups)


def _labels(groups: list[tuple[list[str], int]]) -> np.ndarray:
    return np.concatenate([np.eye(len(c), dtype=np.int64)[i] for c, i in groups])


def _rows(groups: list[tuple[list[str], int]], chosen: Sequence[int]) -> np.ndarray:
    offsets = np.cumsum([0] + [len(c) for c, _ in groups])
    return np.concatenate([np.arange(offsets[g], offsets[g + 1]) for g in chosen])


def _fit_probe(x: np.ndarray, y: np.ndarray, seed: int, c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=int(seed)))
    return probe.fit(x, y)


def linear_probe_attack(
    lm: Any,
    train: Sequence[tuple[Sequence[str], int]],
    test: Sequence[tuple[Sequence[str], int]],
    *,
    layer: int | None = None,
    seed: int = 0,
    validation: float = 0.25,
    C: float = 1.0,  # noqa: N803 - scikit-learn's name
    batch_size: int = 16,
) -> AttackResult:
    """Is the knowledge still linearly readable from the hidden states, whatever the output says?

    A linear probe (Alain & Bengio 2017; used against unlearning by Lynch et al. 2024, Sec. 4.6, and
    the WMDP paper, Li et al. 2024, App. B.5): each group is the candidate texts of one question
    (e.g. question + each choice) with the index of the correct one. Feature of a candidate: the
    hidden state of its last token at hidden-state index ``layer`` (0: embeddings, i: after block i,
    negative from the end). A logistic regression (scikit-learn, standardised features, L2 with
    ``C``, lbfgs, ``random_state=seed``) is trained on ``train``'s candidates, correct vs not; its
    accuracy on ``test`` is the share of groups whose highest-scoring candidate is the correct one
    (``after``). ``layer=None``: a seeded ``validation`` share of the train groups picks the best of
    the layers at 1/4, 1/2, 3/4 and all of the depth, then the probe is refitted on every train group;
    ``details["layers"]`` reports each layer's validation and test accuracy. ``before`` is the
    model's own MCQ accuracy on the test groups (argmax of each candidate's summed token
    log-likelihood, lm-evaluation-harness's ``acc``); ``chance`` is the mean of ``1/len(group)``.
    """
    net = _network(lm)
    train_groups = _groups(train, "train")
    test_groups = _groups(test, "test")
    batch_size = _positive_int(batch_size, "batch_size")
    if not C > 0:
        raise InvalidInputError(f"C must be > 0, got {C!r}.")
    n_layers = _n_layers(net)
    if n_layers is None:
        raise InvalidInputError(
            f"cannot tell how many layers {type(net).__name__} has (no num_hidden_layers in its config)."
        )
    if layer is None:
        layers = _default_layers(n_layers)
        if not 0 < validation < 1:
            raise InvalidInputError(f"validation must be a fraction in (0, 1), got {validation!r}.")
        if len(train_groups) < 2:
            raise InvalidInputError(
                "layer=None needs at least 2 train groups (some are held out to pick the layer); "
                "give more or set layer."
            )
    else:
        layers = [_resolve_layer(layer, n_layers)]

    start = time.perf_counter()
    was_training = net.training
    net.eval()
    try:
        train_x, _ = _read_groups(lm, train_groups, layers, batch_size)
        test_x, test_ll = _read_groups(lm, test_groups, layers, batch_size)
    finally:
        net.train(was_training)
    read = time.perf_counter()
    y_train = _labels(train_groups)

    per_layer: list[dict[str, Any]] = []
    if layer is None:
        order = torch.randperm(len(train_groups), generator=seeded_generator(seed, _PROBE_STREAM)).tolist()
        n_val = min(len(order) - 1, max(1, round(validation * len(order))))
        val_ids, fit_ids = sorted(order[:n_val]), sorted(order[n_val:])
        fit_rows, val_rows = _rows(train_groups, fit_ids), _rows(train_groups, val_ids)
        val_groups = [train_groups[g] for g in val_ids]
    for k in layers:
        entry: dict[str, Any] = {"layer": k}
        if layer is None:
            probe = _fit_probe(train_x[k][fit_rows], y_train[fit_rows], seed, C)
            entry["validation"] = _group_accuracy(probe.decision_function(train_x[k][val_rows]), val_groups)
        probe = _fit_probe(train_x[k], y_train, seed, C)
        entry["train"] = _group_accuracy(probe.decision_function(train_x[k]), train_groups)
        entry["test"] = _group_accuracy(probe.decision_function(test_x[k]), test_groups)
        per_layer.append(entry)
    best = max(per_layer, key=lambda e: e["validation"]) if layer is None else per_layer[0]
    details = {
        "layer": best["layer"],
        "layers": per_layer,
        "n_layers": n_layers,
        "selected_by": "validation" if layer is None else "given",
        "validation_groups": n_val if layer is None else 0,
        "train_groups": len(train_groups),
        "test_groups": len(test_groups),
        "features": int(next(iter(train_x.values())).shape[1]),
        "C": float(C),
        "seed": int(seed),
        "read_seconds": read - start,
        "seconds": time.perf_counter() - start,
    }
    before = _group_accuracy(test_ll, test_groups)
    chance = float(np.mean([1.0 / len(c) for c, _ in test_groups]))
    return AttackResult("linear_probe", before, float(best["test"]), chance, details)
