"""What every command shares: the app, the consoles, one-line failures, input parsing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from obliviate.errors import InvalidInputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Machine unlearning, measured against the model retrained without the data.",
    pretty_exceptions_enable=False,
)
out_console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> None:
    """Print one line to stderr and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    sys.exit(2)


def parse_settings(pairs: list[str] | None) -> dict[str, str]:
    settings: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--set expects method.key=value (e.g. scrub.alpha=0.1), got {pair!r}.")
        settings[key.strip()] = value.strip()
    return settings


def read_ids(path: Path) -> np.ndarray:
    """Ids from a JSON list or a text file of integers separated by whitespace or commas."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInputError(f"cannot read ids file {path}: {exc.strerror}.") from exc
    try:
        if text.lstrip().startswith("["):
            values = json.loads(text)
        else:
            values = [tok for tok in text.replace(",", " ").split() if tok]
        if any(isinstance(v, bool | float) for v in values):
            raise ValueError("ids must be whole numbers")
        return np.asarray([int(v) for v in values], dtype=np.int64)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} must list integer ids (one per line, or a JSON list): {exc}") from exc


def load_data(spec: str):
    """``digits`` (its seed-0 training split) or an .npz file with arrays X, y and optional ids, owners."""
    from obliviate.data import digits, from_arrays

    if spec == "digits":
        return digits().split(test_size=0.25, seed=0)[0]
    path = Path(spec)
    if path.suffix != ".npz" or not path.exists():
        raise InvalidInputError(f"--data must be 'digits' or an existing .npz file with X, y (and ids, owners); got {spec!r}.")
    with np.load(path, allow_pickle=False) as npz:
        missing = {"X", "y"} - set(npz.files)
        if missing:
            raise InvalidInputError(f"{path} lacks array(s) {sorted(missing)}; it needs X and y (ids, owners optional).")
        return from_arrays(
            npz["X"],
            npz["y"],
            ids=npz["ids"] if "ids" in npz.files else None,
            owners=npz["owners"] if "owners" in npz.files else None,
            name=path.stem,
        )


