"""Write one benchmark's block of benchmarks/RESULTS.md, leaving every other block as it is.

Each script owns the text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``; a block
that is not there yet is appended. The file is replaced atomically.
"""

from __future__ import annotations

import fcntl
import re
from pathlib import Path

from obliviate.storage import atomic_write_bytes

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nLatest numbers, each with the command that made them.\n"


def write_block(mark: str, text: str, path: Path = RESULTS) -> None:
    """Put ``text`` (with or without its markers) between the ``mark`` markers of ``path``."""
    begin, end = f"<!-- {mark}:begin -->", f"<!-- {mark}:end -->"
    body = text.strip()
    if not body.startswith(begin):
        body = f"{begin}\n{body}\n{end}"
    with open(path.with_suffix(".lock"), "w") as lock:  # two benchmarks finishing together keep both blocks
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = path.read_text() if path.exists() else HEADER
        pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
        if pattern.search(current):
            current = pattern.sub(lambda _: body, current)
        else:
            current = current.rstrip() + "\n\n" + body + "\n"
        atomic_write_bytes(path, current.encode())
