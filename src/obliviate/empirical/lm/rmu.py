"""RMU (Representation Misdirection for Unlearning): steer layer ``l``'s activations on forget
text to a fixed random direction, keep them on retain text.

Li et al., "The WMDP Benchmark: Measuring and Reducing Malicious Use With Unlearning", ICML 2024,
Sec. 5 (Eqs. 1-2): ``u`` uniform on [0, 1)^d, unit-normalised; ``L_forget = mean_t ||h_l(x_t) -
c u||^2``, ``L_retain = mean_t ||h_l(x_t) - h_l^frozen(x_t)||^2``; ``loss = L_forget + alpha
L_retain``, updating only the MLP down-projections of layers ``l-2 .. l``. Reference code
centerforaisafety/wmdp ``rmu/unlearn.py`` (argparse defaults c 20, alpha 100, lr 5e-5, layer 7,
layers 5,6,7; the released Zephyr-7B run behind the paper's headline used c 6.5, alpha 1200) and
open-unlearning ``rmu.py`` (squared error averaged over the hidden size, summed over the answer
tokens and divided by their count, then averaged over the batch).

Which tokens the losses cover (``tokens``): WMDP's ``run_rmu`` calls ``mse_loss`` on the layer's
output for the whole tokenised batch, so every token of its long plain-text forget/retain documents
counts (``"all"``, the published default; here padding is left out, where WMDP's padded positions
count too); open-unlearning's RMU covers only the answer tokens of QA items (``"answer"``). With
``"all"`` every item is read as one plain document ``question\nanswer`` without the chat template
(:data:`~obliviate.empirical.lm.base.DOCUMENT`), as WMDP's corpora are.

Adaptive RMU (Dang et al., "On Effects of Steering Latent Representation for Large Language Model
Unlearning", AAAI 2025, arXiv 2408.06223): the steering coefficient scales with the layer's
activation norm, ``c = beta * mean_t ||h_l^frozen(x_t)||`` over the first forget batch, because a
fixed c that is small against ``||h_l||`` barely moves the activations (``norm_scale`` = beta; 0
keeps the fixed ``steering_coeff``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from obliviate.empirical.lm.base import DOCUMENT, Batch, LMConfig, LMUnlearnTask, PairedLMUnlearner
from obliviate.errors import InvalidInputError, UnsupportedModelError
from obliviate.lm.batches import network_of
from obliviate.unlearning.registry import register

__all__ = ["RMU", "decoder_layers", "activation_loss", "resolve_layer", "activation_norm", "RMU_TOKENS"]

RMU_TOKENS = ("all", "answer")


def decoder_layers(net: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks: the ``ModuleList`` with ``config.num_hidden_layers`` entries."""
    n = getattr(getattr(net, "config", None), "num_hidden_layers", None)
    for _, module in net.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise UnsupportedModelError(f"RMU cannot find the {n} decoder layers of {type(net).__name__}.")


def down_projection(block: nn.Module) -> nn.Parameter:
    """The MLP's output (down) projection weight: Llama-style ``mlp.down_proj`` or GPT-2's ``mlp.c_proj``."""
    mlp = getattr(block, "mlp", None)
    for attr in ("down_proj", "c_proj", "fc_out", "dense_4h_to_h"):
        layer = getattr(mlp, attr, None)
        if layer is not None and isinstance(getattr(layer, "weight", None), nn.Parameter):
            return layer.weight
    raise UnsupportedModelError(f"RMU cannot find the MLP down projection of {type(block).__name__}.")


def resolve_layer(layer: int, n_layers: int) -> int:
    """``layer``, or for -1 the published layer 7 when the model has more than 8 layers, else
    ``n_layers - 2`` (the second-to-last block; 0 for a 1-layer model)."""
    if layer == -1:
        layer = 7 if n_layers > 8 else max(0, n_layers - 2)
    if not 0 <= layer < n_layers:
        raise InvalidInputError(f"rmu.layer must be in [0, {n_layers - 1}] for this {n_layers}-layer model, got {layer}.")
    return layer


def activation_loss(hidden: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mean_b (sum_t mask * mean_d (h - target)^2) / sum_t mask`` for hidden [B, L, D], mask [B, L]."""
    squared = (hidden.float() - target.float()).square().mean(dim=-1)
    per_sequence = (squared * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1)
    return per_sequence.mean()


def token_mask(batch: Batch, tokens: str) -> torch.Tensor:
    """The positions a loss covers: every real token (``"all"``) or the answer tokens (``"answer"``)."""
    return (batch["attention_mask"] != 0) if tokens == "all" else (batch["labels"] != -100)


def activation_norm(net: nn.Module, layer: int, batch: Batch, tokens: str = "all") -> float:
    """``mean_t ||h_l(x_t)||``: the mean L2 norm of layer ``layer``'s output over the covered tokens."""
    with torch.no_grad():
        hidden = _layer_output(net, decoder_layers(net)[layer], batch).float()
    mask = token_mask(batch, tokens).float()
    return float((hidden.norm(dim=-1) * mask).sum() / mask.sum().clamp_min(1))


class _Stop(Exception):
    """Raised by the hook once the layer's output is captured: the layers above it and the LM head
    do not change that output, so they are not run (4-5x less work on SmolLM2's layer 7 of 30)."""


def _layer_output(net: nn.Module, block: nn.Module, batch: Batch) -> torch.Tensor:
    cache: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
        cache.append(output[0] if isinstance(output, tuple) else output)
        raise _Stop

    handle = block.register_forward_hook(hook)
    try:
        net(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    except _Stop:
        pass
    finally:
        handle.remove()
    return cache[0]


@register
class RMU(PairedLMUnlearner):
    """RMU (Li et al. 2024): ``gamma * MSE(h_l(x_f), c u) + alpha * MSE(h_l(x_r), h_l^frozen(x_r))``.

    Published (``Config``): the released Zephyr-7B run, c 6.5 and alpha 1200, with the WMDP code's
    lr 5e-5 and layer 7 of 32, updating layers 5-7's MLP down projections (the code's argparse
    defaults, c 20 and alpha 100, are not what produced the published numbers). ``layer=-1``
    (default) keeps 7 on models with more than 8 layers (SmolLM2-135M has 30) and picks
    ``n_layers - 2`` on smaller ones (the 4-layer tiny GPT: layer 2, updating 0-2; layers below 0
    are skipped; the 2-layer bench GPT: layer 0 only). ``tiny-gpt`` (tiny authors bench): c 20,
    alpha 100, lr 1e-2 (lr 5e-5 does not move the tiny GPT's one or three down projections; the
    4-layer test model forgets at 1e-2, the 2-layer bench GPT barely), answer tokens (as measured).
    ``llama`` (SmolLM2-135M): all tokens, adaptive c = 3 x the mean token norm of layer 7's output
    (measured on the forget documents: 141.6, i.e. c ~ 425; the first token's norm is ~670, the
    others' mean 132 and median 112, so the published c = 6.5 is ~5% of the norm and barely moves
    it), lr 5e-3, alpha 100, 2 epochs over one document per subject (30 steps on the 118 elements).
    Chosen on the knowledge suite's validation split (``benchmarks/lm_knowledge_search.py
    --threads 1``; grid of 6: beta 1/3, lr 1e-3/5e-3, alpha 10/100/1200; the objective and every
    row are in benchmarks/RESULTS.md): forget MCQ 100% -> 55% at 1.00x retain and 1.14x perplexity
    there; alpha 1200 left it at 86-97%, alpha 10 cost 1.53x perplexity.
    """

    name = "rmu"
    summary = "language models: steer a layer's forget activations to a random direction"
    stream = 570

    @dataclass(frozen=True)
    class Config(LMConfig):
        lr: float = 5e-5
        gamma: float = 1.0
        alpha: float = 1200.0
        steering_coeff: float = 6.5
        layer: int = -1
        tokens: str = "all"
        norm_scale: float = 0.0

    family_defaults = {
        "tiny-gpt": {"lr": 1e-2, "alpha": 100.0, "steering_coeff": 20.0, "tokens": "answer"},
        "llama": {"epochs": 2, "tokens": "all", "norm_scale": 3.0, "lr": 5e-3, "alpha": 100.0},
    }

    @property
    def forget_answers(self) -> tuple[str, ...]:  # type: ignore[override]
        return (DOCUMENT,) if self.config.tokens == "all" else ("answer",)

    @property
    def retain_answer(self) -> str:  # type: ignore[override]
        return DOCUMENT if self.config.tokens == "all" else "answer"

    def validate_config(self) -> None:
        super().validate_config()
        if self.config.tokens not in RMU_TOKENS:
            raise InvalidInputError(f"rmu.tokens must be 'all' (WMDP) or 'answer' (open-unlearning), got {self.config.tokens!r}.")
        if self.config.norm_scale < 0:
            raise InvalidInputError(f"rmu.norm_scale must be >= 0 (0: the fixed steering_coeff), got {self.config.norm_scale}.")
        if self.config.steering_coeff <= 0:
            raise InvalidInputError(f"rmu.steering_coeff must be > 0, got {self.config.steering_coeff}.")
        if self.config.layer < -1:
            raise InvalidInputError(f"rmu.layer must be a layer index or -1 (automatic), got {self.config.layer}.")

    def _blocks(self, net: nn.Module) -> tuple[nn.ModuleList, int]:
        layers = decoder_layers(net)
        return layers, resolve_layer(self.config.layer, len(layers))

    def trainable(self, net: nn.Module) -> list[nn.Parameter]:
        layers, l = self._blocks(net)
        return [down_projection(layers[i]) for i in range(max(0, l - 2), l + 1)]

    def run(self, model: Any, task: LMUnlearnTask) -> Any:
        net = model.model
        layers, l = self._blocks(net)
        frozen = network_of(task.original)
        frozen_block = decoder_layers(frozen)[l]
        width = int(net.config.hidden_size)
        u = torch.rand(1, 1, width, generator=task.generator(self.stream + 7))
        coeff = self.config.steering_coeff
        self.measured_norm = None
        if self.config.norm_scale > 0:  # adaptive RMU: c = beta * mean token norm on the first forget batch
            gen = task.generator(self.stream)
            first = next(task.batches("forget", self.config.batch_size, generator=gen, answers=self.forget_answers))
            self.measured_norm = activation_norm(frozen, l, first[self.forget_answers[0]], self.config.tokens)
            coeff = self.config.norm_scale * self.measured_norm
        self.steering = float(coeff)
        self._control = self.control_vector = u / u.norm() * coeff  # control_vector: kept after the run
        self._block, self._frozen = layers[l], (frozen, frozen_block)
        try:
            return super().run(model, task)
        finally:
            del self._control, self._block, self._frozen

    def forget_loss(self, net: nn.Module, forget: dict[str, Batch], task: LMUnlearnTask) -> torch.Tensor:
        batch = forget[self.forget_answers[0]]
        hidden = _layer_output(net, self._block, batch)
        return activation_loss(hidden, self._control.expand_as(hidden), token_mask(batch, self.config.tokens))

    def retain_loss(self, net: nn.Module, retain: Batch, task: LMUnlearnTask) -> torch.Tensor:
        frozen, frozen_block = self._frozen
        with torch.no_grad():
            reference = _layer_output(frozen, frozen_block, retain)
        return activation_loss(_layer_output(net, self._block, retain), reference, token_mask(retain, self.config.tokens))

