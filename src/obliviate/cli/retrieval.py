"""``obliviate store ...``: a document store where deleting is unlearning (init, add, search, expand, delete, compact,
ask). Registered by importing this module in ``obliviate.cli``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from obliviate.cli.common import app, out_console
from obliviate.errors import InvalidInputError

store_app = typer.Typer(no_args_is_help=True, help="A document store where deleting a document is unlearning it.")
app.add_typer(store_app, name="store")


def _open(folder: Path, *, create: bool = False, embedder: str | None = None):
    from obliviate.retrieval import DocumentStore

    return DocumentStore(folder, create=create, embedder=embedder)


def _ids(values: list[str]) -> list[int]:
    out = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                out.append(int(part))
            except ValueError as exc:
                raise InvalidInputError(f"document ids are whole numbers, got {part!r}.") from exc
    if not out:
        raise InvalidInputError("name at least one document id.")
    return out


@store_app.command("init")
def init(
    folder: Path = typer.Argument(..., help="The store's folder (created, mode 0700)."),
    embedder: str = typer.Option("minilm", help="minilm (all-MiniLM-L6-v2) or hashing[-DIM]."),
) -> None:
    """Create an empty store."""
    if (folder / "store.sqlite").exists():
        raise InvalidInputError(f"{folder} already holds a document store; give a new folder.")
    with _open(folder, create=True, embedder=embedder) as store:
        out_console.print(f"created store {folder} ({store.embedder.name}, {store.embedder.dim} dimensions)")


@store_app.command("add")
def add(
    folder: Path = typer.Argument(..., help="The store's folder."),
    jsonl: Path = typer.Argument(..., help='A JSON-lines file: one {"text": ..., "owner": ...} per line.'),
) -> None:
    """Add documents; prints their new ids."""
    from obliviate.ledger.files import read_text_file

    texts, owners = [], []
    for n, line in enumerate(read_text_file(jsonl, "documents file").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise InvalidInputError(f"{jsonl} line {n} is not JSON ({exc.msg}).") from exc
        if not isinstance(row, dict) or "text" not in row:
            raise InvalidInputError(f'{jsonl} line {n} must be an object with "text" (and optionally "owner").')
        texts.append(row["text"])
        owners.append(row.get("owner"))
    with _open(folder) as store:
        ids = store.add(texts, owners=owners)
    out_console.print(f"added {len(ids)} document(s): ids {ids[0]}..{ids[-1]}" if ids else "nothing to add")


@store_app.command("search")
def search(
    folder: Path = typer.Argument(..., help="The store's folder."),
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, help="How many documents."),
    mode: str = typer.Option("hybrid", help="hybrid, vector or keyword."),
) -> None:
    """The best documents for a query."""
    from obliviate.ledger.files import safe_for_terminal

    with _open(folder) as store:
        hits = store.search(query, k=k, mode=mode)
    table = Table("id", "owner", "score", "text")
    for h in hits:
        table.add_row(str(h.id), safe_for_terminal(h.owner or ""), f"{h.score:.4f}", safe_for_terminal(h.text[:100]))
    out_console.print(table)


def _show_expansion(expansion) -> None:
    from obliviate.ledger.files import safe_for_terminal

    table = Table("id", "copy of", "kind", "jaccard", "containment", "cosine", "anchors", "text")
    for c in expansion.candidates:
        kind = c.kind or (f"held back: {c.held_back.split(',')[0]}" if c.held_back else "-")  # reason under the table
        table.add_row(str(c.id), str(c.of), safe_for_terminal(kind), f"{c.jaccard:.2f}", f"{c.containment:.2f}",
                      f"{c.cosine:.2f}", f"{c.anchor_overlap:.2f} ({c.anchors_matched})", safe_for_terminal(c.text[:70]))
    out_console.print(table)


@store_app.command("expand")
def expand_cmd(
    folder: Path = typer.Argument(..., help="The store's folder."),
    ids: list[str] = typer.Argument(..., help="Document ids to delete."),
) -> None:
    """Show the near-duplicates, quotations and paraphrases a delete of IDS would also remove, with their scores."""
    from obliviate.retrieval.expand import expand

    with _open(folder) as store:
        found = expand(store, _ids(ids))
    _show_expansion(found)
    out_console.print(f"the policy accepts {len(found.accepted_ids)} more: {found.accepted_ids}")
    held = [c.id for c in found.candidates if c.held_back]
    if held:
        out_console.print(f"held back, other owners' documents (the policy never deletes them; delete by id if they are copies): {held}")


@store_app.command("delete")
def delete(
    folder: Path = typer.Argument(..., help="The store's folder."),
    ids: list[str] = typer.Argument(..., help="Document ids to delete."),
    expand_scope: bool = typer.Option(True, "--expand/--no-expand", help="Also delete accepted copies."),
    yes: bool = typer.Option(False, "--yes", help="Delete the accepted copies without asking."),
) -> None:
    """Delete documents from the table, both indexes, the snapshots and the cache (atomically)."""
    from obliviate.retrieval.expand import expand

    wanted = _ids(ids)
    with _open(folder) as store:
        if expand_scope:
            found = expand(store, wanted)
            _show_expansion(found)
            if found.accepted_ids and not yes and not typer.confirm(
                f"also delete the {len(found.accepted_ids)} accepted copies {found.accepted_ids}?", default=True
            ):
                found.candidates = []
            wanted = found.all_ids
        done = store.delete(wanted, reason="cli")
    out_console.print(f"deleted {len(done.ids)} document(s) {done.ids} in {done.seconds * 1e3:.1f} ms")


@store_app.command("compact")
def compact(folder: Path = typer.Argument(..., help="The store's folder.")) -> None:
    """Checkpoint and VACUUM so no file keeps a deleted row's bytes; rewrite the index snapshots."""
    with _open(folder) as store:
        store.compact()
        out_console.print(f"compacted {folder}: {len(store)} documents, generation {store.generation}")


@store_app.command("ask")
def ask(
    folder: Path = typer.Argument(..., help="The store's folder."),
    question: str = typer.Argument(..., help="The question."),
    k: int = typer.Option(3, help="Documents in the context."),
    filter_output: bool = typer.Option(True, "--filter/--no-filter", help="Redact contact details and dumps."),
) -> None:
    """Answer a question from the store with SmolLM2-135M-Instruct."""
    from obliviate.models.lm import smollm2
    from obliviate.retrieval.attacks import OutputFilter
    from obliviate.retrieval.rag import RAGAnswerer

    with _open(folder) as store:
        rag = RAGAnswerer(smollm2(), store, k=k, output_filter=OutputFilter() if filter_output else None)
        answer = rag.answer([question])[0]
    out_console.print(answer.text, markup=False, highlight=False)
    out_console.print(f"(documents {answer.context_ids})", style="dim")
