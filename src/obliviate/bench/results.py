"""The results document: :mod:`obliviate.results` owns the schema; this name stays for existing imports."""

from obliviate.results import (
    ORACLE,
    ORIGINAL,
    SCHEMA,
    add_row,
    check_results,
    new_results,
    read_results,
    write_results,
)

__all__ = ["SCHEMA", "ORACLE", "ORIGINAL", "new_results", "add_row", "write_results", "read_results", "check_results"]
