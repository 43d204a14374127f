"""Commands for models and benchmarks: bench, methods, train, unlearn, report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from obliviate.cli.common import (
    app,
    check_bench_settings,
    check_out_file,
    err_console,
    load_data,
    out_console,
    parse_settings,
    read_ids,
    writable_folder,
)
from obliviate.errors import InvalidInputError


@app.command()
def bench(
    suite: Annotated[
        str,
        typer.Option(
            help="Benchmark suite: digits (default, bundled), synthetic, certified, d2d, digits-dp; language models: "
            "authors (fictitious authors, TOFU-style) or knowledge (real facts SmolLM2 knows, with scope and attacks)."
        ),
    ] = "digits",
    methods: Annotated[str | None, typer.Option(help="Comma-separated methods (default: every classifier method).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per scenario: models trained, unlearned and retrained.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(help="Only these scenarios (repeatable).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: method.key=value (repeatable).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/<suite>/).")] = None,
    relearn: Annotated[
        bool, typer.Option(help="Measure relearn time (SGD epochs on the training set until the forget loss returns).")
    ] = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    model: Annotated[
        str | None,
        typer.Option(
            help="Language-model suites only: tiny, smollm2 or a local HF model folder "
            "(default: tiny for authors, smollm2 for knowledge)."
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            help="loop: seed by seed, every method; stack: chunks of seeds as vmapped stacks (train_many/unlearn_many), "
            "the vectorised methods by default; auto: stack above 32 seeds."
        ),
    ] = "auto",
    backend: Annotated[str, typer.Option(help="Where seeds run: local, or ray (a local Ray, or --address).")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster to join, with --backend ray: host:port, ray://host:port or auto; without it a new local Ray starts.")] = None,
    full_seeds: Annotated[
        int, typer.Option(help="Stack engine: seeds that get MIA-Efficacy, relearn time and Avg. Gap (expensive).")
    ] = 10,
    protocol: Annotated[
        str,
        typer.Option(
            help="NeurIPS score protocol: challenge (one original per scenario, N unlearning seeds, N retrained; "
            "the challenge's main.py; default) or per-seed (one original per seed)."
        ),
    ] = "challenge",
) -> None:
    """Compare methods against the retrained oracle; print a leaderboard; write results and report.html.

    ``--seeds 512`` runs the NeurIPS 2023 challenge's evaluation: 512 unlearned and 512 retrained
    models per method and scenario through stacked training, scored by the challenge's metric and
    U-LiRA, with the oracle's split-half score as the reference.
    """
    if suite in LM_SUITES:  # the language-model suites have their own runners, metrics and leaderboards
        from obliviate.cli.knowledge import bench_knowledge
        from obliviate.cli.lm import bench_lm

        run_lm = bench_lm if suite == "authors" else bench_knowledge
        run_lm(
            model=model or LM_SUITES[suite],
            methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
            seeds=seeds,
            scenarios=scenario,
            settings=parse_settings(set_),
            out=out,
            progress=progress,
        )
        return
    if model is not None:
        raise InvalidInputError(
            f"--model is for the language-model suites ({', '.join(LM_SUITES)}); suite {suite!r} has its recipe."
        )
    from obliviate.bench import get_suite, run_suite
    from obliviate.cli.outputs import print_tables, write_outputs, written

    if engine not in ENGINES:
        raise InvalidInputError(f"unknown --engine {engine!r}; choose one of {', '.join(ENGINES)}.")
    chosen = get_suite(suite)
    method_list = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    settings = parse_settings(set_)
    check_bench_settings(settings, example="scrub")
    out_dir = writable_folder(out or Path("runs") / chosen.name)  # fail on a bad --out now, not after the run
    options = {"methods": method_list, "scenarios": scenario, "settings": settings, "relearn": relearn,
               "show_progress": progress, "backend": backend, "address": address, "protocol": protocol}
    if _stacked(engine, chosen, seeds):
        from obliviate.bench.challenge import run_challenge

        results = run_challenge(chosen, seeds=seeds or 512, full_seeds=full_seeds, **options)
    else:
        results = run_suite(chosen, seeds=seeds, **options)
    paths = write_outputs(results, out_dir)
    print_tables(results)
    if results["config"].get("per_seed_note"):
        out_console.print(f"[dim]Note: {results['config']['per_seed_note']}.[/]")
    for failure in results["config"]["failures"]:
        err_console.print(f"[yellow]failed:[/] {failure['scenario']} seed {failure['seed']} {failure['method']}: {failure['error']}")
    written(paths)


ENGINES = ("auto", "loop", "stack")
LM_SUITES = {"authors": "tiny", "knowledge": "smollm2"}  # language-model suite -> its default --model
STACK_ABOVE = 32  # --engine auto: more seeds than this run as stacks


def _stacked(engine: str, suite, seeds: int | None) -> bool:
    """Whether the bench runs through the stacked engine: asked for, or auto with many seeds and a trainable recipe."""
    if engine != "auto":
        return engine == "stack"
    from obliviate.errors import ObliviateError
    from obliviate.training.many import check_vectorisable

    try:
        check_vectorisable(suite.recipe)
    except ObliviateError:
        return False  # solver and DP-SGD recipes train one model at a time
    return (seeds or suite.seeds) > STACK_ABOVE


def _fmt(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "x":
        return f"{value:.2f}"
    return f"{value:.3f}"


def _print_leaderboard(results: dict, scenario: str) -> None:
    from obliviate.report import leaderboard

    rows = leaderboard(results, scenario)
    if not out_console.is_terminal:
        out_console.width = max(out_console.width, 120)  # a log file gets the whole table, unwrapped
    table = Table(title=f"{results['suite']} / {scenario}: gap to the retrained oracle (lower is better)")
    columns = [
        ("method", "method", None),
        ("forget acc %", "forget_accuracy", "pct"),
        ("retain acc %", "retain_accuracy", "pct"),
        ("test acc %", "test_accuracy", "pct"),
        ("MIA-Eff. %", "mia_efficacy", "pct"),
        ("Avg. Gap", "avg_gap", "x"),
        ("time / retrain", "time_fraction", "x"),
        ("NeurIPS F", "nips_forget_score", "s"),
        ("NeurIPS score", "nips_score", "s"),
        ("U-LiRA acc %", "ulira_accuracy", "pct"),
    ]
    for header, _, kind in columns:
        table.add_column(header, justify="left" if kind is None else "right", no_wrap=kind is None)
    for row in rows:
        cells = [_fmt(row.get(key), kind) for _, key, kind in columns[1:]]
        if row["role"] == "oracle":
            table.add_row(f"{row['method']} (oracle)", *cells, style="bold cyan")
        elif row["role"] == "original":
            cells[5] = "-"  # the untouched model spent no unlearning time
            table.add_row(f"{row['method']} (before)", *cells, style="dim", end_section=False)
        else:
            table.add_row(row["method"], *cells)
    out_console.print(table)


@app.command()
def methods() -> None:
    """List every unlearning method with its guarantee and default settings."""
    from obliviate.unlearning import available_methods

    table = Table(title="obliviate methods")
    table.add_column("method", style="bold")
    table.add_column("guarantee")
    table.add_column("what it does")
    table.add_column("defaults")
    for name, cls in available_methods().items():
        defaults = ", ".join(f"{k}={v}" for k, v in cls.defaults().items()) or "-"
        table.add_row(name, str(cls().guarantee), cls.summary or (cls.__doc__ or "").strip().splitlines()[0], defaults)
    out_console.print(table)


@app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option(help="Where to save the model (.safetensors).")],
    data: Annotated[str, typer.Option(help="'digits' or an .npz file with X, y (ids, owners optional).")] = "digits",
    model: Annotated[str, typer.Option(help="Architecture: mlp, cnn, resnet18.")] = "mlp",
    epochs: Annotated[int, typer.Option()] = 30,
    lr: Annotated[float, typer.Option()] = 0.05,
    batch_size: Annotated[int, typer.Option()] = 64,
    seed: Annotated[int, typer.Option()] = 0,
    threads: Annotated[
        int,
        typer.Option(
            min=1,
            help="Torch CPU threads (default 1: these models are small, and on a busy machine more threads are "
            "slower, e.g. 2 threads took 2-4x as long as 1 on a loaded 2-core machine). Weights are bit-identical "
            "for the same thread count.",
        ),
    ] = 1,
) -> None:
    """Train a model with a recipe and save it (safetensors with its recipe in the header)."""
    import torch

    from obliviate.evaluation import accuracy
    from obliviate.storage import save_model
    from obliviate.training import Recipe, train

    check_out_file(out)
    torch.set_num_threads(threads)
    recipe = Recipe(model=model, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)  # bad settings fail first
    dataset = load_data(data)
    trained = train(recipe, dataset, show_progress=True)
    digest = save_model(trained, out, metadata={"data": data, "data_fingerprint": dataset.fingerprint})
    out_console.print(
        f"trained {model} on {len(dataset)} examples: train accuracy {100 * accuracy(trained, dataset):.1f}%\n"
        f"saved {out} (sha256 {digest[:16]}...)"
    )


@app.command("unlearn")
def unlearn_cmd(
    model_path: Annotated[Path, typer.Argument(help="A model saved by `obliviate train`, `obliviate unlearn` or ob.save_model.")],
    ids: Annotated[Path, typer.Option(help="File of ids to forget (one per line, or a JSON list).")],
    out: Annotated[Path, typer.Option(help="Where to save the unlearned model.")],
    data: Annotated[
        str | None, typer.Option(help="The training data: 'digits' or an .npz file (default: what the model file records).")
    ] = None,
    method: Annotated[str, typer.Option(help="Method name; combine with '+', e.g. prune_finetune+scrub.")] = "finetune",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a setting: key=value or method.key=value.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Apply a method to a saved model and a file of ids; save the result and print its cost.

    The model file records its training data (name and fingerprint) and every id forgotten so far;
    the data must match, and ids forgotten by earlier requests stay out of the retain set, so a
    later request cannot bring them back.
    """
    from obliviate.evaluation import accuracy
    from obliviate.request import ForgetRequest
    from obliviate.storage import load_model, read_metadata, save_model, spec_of
    from obliviate.training import Recipe
    from obliviate.unlearning import unlearn

    if not model_path.is_file():
        raise InvalidInputError(f"model file {model_path} does not exist.")
    check_out_file(out)
    meta = read_metadata(model_path)
    original = load_model(model_path)
    data = data or meta.get("data", "digits")
    dataset = load_data(data)
    if "data_fingerprint" in meta and meta["data_fingerprint"] != dataset.fingerprint:
        raise InvalidInputError(
            f"{model_path} was trained on data {meta.get('data', '?')!r} with another fingerprint than --data {data!r}; "
            "pass the data the model was trained on (the same ids, features, labels and owners)."
        )
    forgotten = np.asarray(json.loads(meta.get("forgotten_ids", "[]")), dtype=np.int64)
    request = ForgetRequest(ids=read_ids(ids))
    again = sorted(set(request.ids) & set(forgotten.tolist()))
    if again:
        raise InvalidInputError(f"{len(again)} id(s) were already forgotten by this model: {again[:10]}.")
    current = dataset.without(forgotten) if forgotten.size else dataset  # what the model still reflects
    spec = spec_of(original)
    recipe = Recipe.from_dict(spec["recipe"]) if spec else None
    result = unlearn(original, request, current, method=method, settings=parse_settings(set_), seed=seed, recipe=recipe)
    forget, retain = request.split(current)
    digest = save_model(
        result.model,
        out,
        metadata={
            "data": data,
            "data_fingerprint": dataset.fingerprint,
            "forgotten_ids": sorted(set(forgotten.tolist()) | set(request.ids)),
            "source_model_sha256": meta.get("obliviate.sha256", ""),
            "request": request.to_dict(),
            "method": result.method,
            "settings": result.config,
            "cost": result.cost.to_dict(),
        },
    )
    c = result.cost
    out_console.print(
        f"{result.method} ({result.guarantee}) forgot {len(forget)} examples in {c.seconds:.2f} s, "
        f"{c.gradient_steps} gradient steps, {c.examples_touched} examples touched\n"
        f"forget accuracy {100 * accuracy(original, forget):.1f}% -> {100 * accuracy(result.model, forget):.1f}%, "
        f"retain accuracy {100 * accuracy(original, retain):.1f}% -> {100 * accuracy(result.model, retain):.1f}%\n"
        f"saved {out} (sha256 {digest[:16]}...; {len(forgotten) + len(forget)} ids forgotten in all)",
        soft_wrap=True,
    )


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results.json written by `obliviate bench`.")],
    out: Annotated[Path | None, typer.Option(help="Folder for report.html (default: next to results.json).")] = None,
) -> None:
    """Redraw report.html (and the suite's charts) and print the suite's tables from a results.json."""
    from obliviate.cli.outputs import print_tables, write_outputs
    from obliviate.results import read_results

    doc = read_results(results)
    paths = write_outputs(doc, out or results.parent, with_results=False)
    print_tables(doc)
    out_console.print("wrote " + ", ".join(f"[bold]{p}[/]" for p in paths))
