"""The ``obliviate`` command line.

Commands live in modules by topic (``core``: bench, methods, train, unlearn, report); each
registers on the one ``app``. Errors print one line and exit with code 2; there is no traceback
for a mistake in the input.
"""

from __future__ import annotations

from obliviate.cli import audit, core, keys, ledger, retrieval, service  # noqa: F401  (each registers its commands)
from obliviate.cli.common import app, fail
from obliviate.errors import ObliviateError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning obliviate's typed errors into one line and exit code 2."""
    try:
        app()  # standalone: usage errors print the usage and exit 2, --help exits 0
    except ObliviateError as exc:
        fail(str(exc))
    except OSError as exc:  # an unwritable --out, a folder given for a file: the user's path, not a bug
        fail(f"{exc.strerror or exc} ({exc.filename})" if getattr(exc, "filename", None) else str(exc))


if __name__ == "__main__":
    main()
