"""``obliviate audit forge``: how close a log without an example gets to the real weights (Thudi et al. 2022)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from obliviate.cli.common import app, check_out_file, load_data, out_console
from obliviate.errors import InvalidInputError

audit_app = typer.Typer(no_args_is_help=True, help="Audits of what an unlearning claim can prove.")
app.add_typer(audit_app, name="audit")


@audit_app.command("forge")
def audit_forge(
    data: Annotated[
        str, typer.Option("--data", help="'digits' (its training split) or an .npz with X, y, ids.")
    ] = "digits",
    forget_id: Annotated[
        int | None, typer.Option("--id", help="The example to forge away (default: a seeded random id).")
    ] = None,
    hidden: Annotated[int, typer.Option("--hidden", help="Hidden units of the MLP (0: softmax regression).")] = 32,
    epochs: Annotated[int, typer.Option("--epochs", help="SGD epochs.")] = 10,
    batch_size: Annotated[int, typer.Option("--batch-size", help="SGD batch size.")] = 32,
    lr: Annotated[float, typer.Option("--lr", help="SGD learning rate (no momentum).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the weights, the batch order and the candidates.")] = 0,
    retrains: Annotated[int, typer.Option("--retrains", help="Honest retrains without the example (>= 2).")] = 3,
    candidates: Annotated[int, typer.Option("--candidates", help="Random substitute batches tried per step.")] = 256,
    out: Annotated[Path | None, typer.Option("--out", help="Write the result as JSON here.")] = None,
) -> None:
    """Train by SGD with a logged batch order, forge a log without one example, compare final weights.

    Prints the forged-vs-real weight distance against honest retrain-vs-retrain: a small ratio means the
    weights cannot show whether the example was used (Thudi et al., USENIX Security 2022).
    """
    import torch
    from torch import nn

    from obliviate.audit.forge import forging_audit
    from obliviate.storage import atomic_write_bytes

    for name, value, low in (
        ("--hidden", hidden, 0),
        ("--epochs", epochs, 1),
        ("--batch-size", batch_size, 2),
        ("--retrains", retrains, 2),
        ("--candidates", candidates, 0),
        ("--seed", seed, 0),
    ):
        if value < low:
            raise InvalidInputError(f"{name} must be >= {low}, got {value}.")
    if not lr > 0:
        raise InvalidInputError(f"--lr must be > 0, got {lr}.")
    if out is not None:
        check_out_file(out)
    dataset = load_data(data)
    if forget_id is not None and forget_id not in set(dataset.ids.tolist()):
        raise InvalidInputError(f"--id {forget_id} is not a training id of {data}; pick one of its ids.")
    features = int(torch.as_tensor(dataset.X[:1]).flatten(1).shape[1])
    classes = int(dataset.num_classes)

    def make() -> nn.Module:
        gen = torch.Generator().manual_seed(seed)
        layers = (
            [nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
            if hidden
            else [nn.Linear(features, classes)]
        )
        model = nn.Sequential(nn.Flatten(), *layers)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.empty_like(p).uniform_(-1, 1, generator=gen) / (p.shape[-1] ** 0.5))
        return model

    torch.set_num_threads(1)
    result = forging_audit(
        make,
        dataset,
        forget_id=forget_id,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        retrains=retrains,
        candidates=candidates,
        progress=True,
    )
    rows = [
        ("example forged away", str(result.forget_id)),
        ("SGD steps / batches replaced", f"{result.steps} / {result.replaced} ({result.swaps_chosen} single swaps)"),
        ("forged vs real weights", f"{result.forged_vs_real:.4g}"),
        ("x* dropped from its batches vs real", f"{result.dropped_vs_real:.4g}"),
        ("honest retrain vs retrain (mean)", f"{result.retrain_vs_retrain:.4g}"),
        ("real vs honest retrain (mean)", f"{result.real_vs_retrain:.4g}"),
        ("real vs initial weights", f"{result.real_vs_init:.4g}"),
        ("forged / retrain-vs-retrain", f"{result.ratio:.3%}"),
    ]
    for name, value in rows:
        out_console.print(f"{name:38s} {value}", highlight=False, soft_wrap=True)
    out_console.print(
        "The forged log never used the example, yet lands closer to the real weights than two honest retrains "
        "land to each other"
        if result.ratio < 1
        else "The forged run stays farther from the real weights than honest retrains from each other",
        highlight=False,
        soft_wrap=True,
    )
    if out is not None:
        atomic_write_bytes(out, (json.dumps(result.to_dict(), indent=2) + "\n").encode())
