"""Rich progress bars that cost nothing when switched off."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["progress_bar", "new_progress"]


def new_progress(**kwargs) -> Progress:
    """A rich ``Progress`` with obliviate's columns: description, bar, m/n, elapsed, time left."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        **kwargs,
    )


@contextmanager
def progress_bar(description: str, *, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k=1)``; draws a rich bar with time left when ``enabled``."""
    if not enabled:
        yield lambda k=1: None
        return
    with new_progress(transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda k=1: progress.advance(task, k)
