"""The document store: add, search, delete from table + both indexes + snapshots + cache, bad input, repairs,
durability (kill -9 in the middle of a delete leaves the document fully present or fully gone)."""

from __future__ import annotations

import os
import signal
import stat
import time
import traceback

import numpy as np
import pytest

from obliviate.errors import InvalidInputError, UnknownIdsError
from obliviate.retrieval import CRASH_POINTS, DocumentStore, EmbedderMismatchError, StoreNotFoundError, rrf
from obliviate.retrieval.bm25 import BM25Index
from obliviate.retrieval.store import CRASH_ENV, KEYWORDS_FILE, VECTORS_FILE

CURIE = 1  # "Marie Curie was born in Warsaw ..."
CHILD_TIMEOUT = 60.0


def _everywhere(store: DocumentStore, doc_id: int) -> dict[str, bool]:
    """Where ``doc_id`` is: table, vector index, keyword index, search results of its own words, cache."""
    hits = store.search("Marie Curie born Warsaw Nobel prizes", k=6)
    return {
        "table": doc_id in store.ids(),
        "vectors": doc_id in store.vectors,
        "keywords": doc_id in store.keywords,
        "search": doc_id in {h.id for h in hits},
        "keyword search": doc_id in {h.id for h in store.search("Curie Warsaw", k=6, mode="keyword")},
    }


def test_add_assigns_stable_ids_and_search_finds_by_words_and_by_vectors(store):
    assert store.ids() == [1, 2, 3, 4, 5, 6]
    assert store.get(CURIE).owner == "curie"
    for mode in ("hybrid", "vector", "keyword"):
        assert store.search("Where was Marie Curie born?", k=2, mode=mode)[0].id == CURIE
    assert store.search("chemical symbol Au", k=1, mode="keyword")[0].id == 3
    assert store.ids_of_owners(["iron", "gold"]) == [3, 5]


def test_delete_removes_the_document_from_table_indexes_snapshots_and_cache(store, store_folder):
    store.search("Marie Curie born Warsaw Nobel prizes", k=6)  # fills the cache with the document in it
    assert CURIE in store.cached_ids() and (store_folder / VECTORS_FILE).exists()
    assert all(_everywhere(store, CURIE).values())
    result = store.delete([CURIE])
    assert result.ids == [CURIE]
    assert store.cached_ids().isdisjoint({CURIE})
    assert not any(_everywhere(store, CURIE).values())
    assert not (store_folder / VECTORS_FILE).exists() and not (store_folder / KEYWORDS_FILE).exists()
    assert store.presence([CURIE]) == {"table": [], "vector index": [], "keyword index": [], "index files": []}
    assert store.deleted_ids() == [CURIE]
    new = store.add(["Another document about Warsaw."])
    assert new == [7]  # ids are never reused, so a tombstoned id never names new content


def test_keyword_scores_after_a_delete_equal_an_index_built_without_the_document(store):
    store.delete([CURIE, 4])
    fresh = BM25Index()
    for doc in store.documents():
        fresh.add(doc.id, doc.text)
    for query in ("chemical symbol iron gold", "capital Seine", "Warsaw Curie Danube"):
        got, want = store.keywords.search(query, 6), fresh.search(query, 6)
        assert [d for d, _ in got] == [d for d, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want])


def test_the_vector_matrix_holds_no_row_of_a_deleted_document(store):
    vec = store.vector_of(CURIE).copy()
    store.delete([CURIE])
    matrix = store.vectors._matrix  # the whole buffer, spare rows included
    assert not np.any(np.all(np.isclose(matrix, vec[None, :]), axis=1))
    for doc in store.documents():  # every remaining row still belongs to its document
        assert np.allclose(store.vector_of(doc.id), store.embedder.embed([doc.text])[0], atol=1e-6)


def test_unknown_or_already_deleted_ids_are_a_typed_error_that_changes_nothing(store):
    generation = store.generation
    with pytest.raises(UnknownIdsError, match="99"):
        store.delete([2, 99])
    assert store.generation == generation and 2 in store.ids() and 2 in store.vectors
    store.delete([2])
    with pytest.raises(UnknownIdsError, match="already deleted"):
        store.delete([2])
    with pytest.raises(InvalidInputError):
        store.delete([])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        (b"\x89PNG\r\n\x1a\n", "binary"),
        ("abc\x00def", "control character"),
        (42, "must be a string"),
    ],
)
def test_empty_or_binary_documents_are_refused_with_the_reason(store, text, reason):
    n, generation = len(store), store.generation
    with pytest.raises(InvalidInputError, match=reason):
        store.add(["a good document", text])
    assert len(store) == n and store.generation == generation  # nothing of the batch was stored


def test_a_corrupt_snapshot_is_detected_by_its_checksum_and_rebuilt_from_the_table(store_folder):
    path = store_folder / VECTORS_FILE
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with DocumentStore(store_folder) as store:
        assert any("vectors.idx cannot be trusted" in r and "sha256" in r for r in store.repairs)
        assert store.search("Where was Marie Curie born?", k=1, mode="vector")[0].id == CURIE
    with DocumentStore(store_folder) as store:  # the rebuilt snapshot was written back and is trusted
        assert store.repairs == []


def test_a_stale_snapshot_is_rebuilt(store_folder):
    with DocumentStore(store_folder) as store:
        store.add(["A new document about Lisbon."])  # the table moves on; the snapshots stay at the old generation
    with DocumentStore(store_folder) as store:
        assert any("stale" in r for r in store.repairs)
        assert store.search("Lisbon", k=1, mode="keyword")[0].text.startswith("A new document")


def test_a_delete_by_another_process_is_honoured_at_the_next_search(store_folder):
    with DocumentStore(store_folder) as first, DocumentStore(store_folder) as second:
        assert CURIE in {h.id for h in first.search("Curie Warsaw", k=3)}
        second.delete([CURIE])
        assert CURIE not in {h.id for h in first.search("Curie Warsaw", k=3)}
        assert CURIE not in first.vectors and CURIE not in first.keywords


def test_open_refuses_a_missing_store_and_another_embedder(tmp_path, store_folder):
    with pytest.raises(StoreNotFoundError, match="store init"):
        DocumentStore(tmp_path / "nothing")
    with pytest.raises(EmbedderMismatchError, match="hashing-256"):
        DocumentStore(store_folder, embedder="hashing-64")


def test_files_are_private_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with DocumentStore(tmp_path / "s", embedder="hashing", create=True) as store:
            store.add(["one document"])
            store.save_indexes()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "s").stat().st_mode) == 0o700
    for name in ("store.sqlite", VECTORS_FILE, KEYWORDS_FILE):
        assert stat.S_IMODE((tmp_path / "s" / name).stat().st_mode) == 0o600, name


def test_after_compact_no_file_in_the_folder_holds_the_deleted_text(store, store_folder):
    secret = b"won two Nobel prizes"
    assert any(secret in p.read_bytes() for p in store_folder.iterdir() if p.is_file())
    store.delete([CURIE])
    store.compact()
    leftovers = [p.name for p in store_folder.iterdir() if p.is_file() and secret in p.read_bytes()]
    assert leftovers == []


def test_rrf_is_the_sum_of_reciprocal_ranks():
    fused = dict(rrf([[1, 2, 3], [3, 1]], k=60))
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)
    assert [d for d, _ in rrf([[1, 2, 3], [3, 1]])] == [1, 3, 2]


# ---------------------------------------------------------------- kill -9 in the middle of a delete
def _delete_killed_at(point: str, folder) -> None:
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            os.environ[CRASH_ENV] = point
            with DocumentStore(folder) as store:
                store.delete([CURIE])
            code = 0
        except BaseException:  # noqa: BLE001
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + CHILD_TIMEOUT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"delete at {point!r} did not die within {CHILD_TIMEOUT} s")
        time.sleep(0.005)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"not killed at {point!r} ({status})"


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_kill9_mid_delete_leaves_the_document_fully_present_or_fully_gone(point, store_folder):
    _delete_killed_at(point, store_folder)
    with DocumentStore(store_folder) as store:
        where = _everywhere(store, CURIE)
        expected = point == "store-committed"  # gone once the table's transaction committed
        assert set(where.values()) == {not expected}, (point, where)
        if expected:
            assert store.deleted_ids() == [CURIE] and store.presence([CURIE])["index files"] == []
        else:
            assert store.deleted_ids() == []
            store.delete([CURIE])  # the retry completes the deletion
            assert not any(_everywhere(store, CURIE).values())


def test_a_delete_racing_another_process_is_already_deleted_not_a_damaged_store(store_folder, monkeypatch):
    """Between the live check and the write, another handle deletes the same id: the second delete is refused as
    already deleted (a typed error naming the id), the store is not reported damaged, and nothing else changes."""
    first, second = DocumentStore(store_folder), DocumentStore(store_folder)
    try:
        unlink = first._unlink_snapshots

        def other_process_deletes_first():
            second.delete([3])
            unlink()

        monkeypatch.setattr(first, "_unlink_snapshots", other_process_deletes_first)
        with pytest.raises(UnknownIdsError, match="3"):
            first.delete([3, 4])
        assert first.deleted_ids() == [3]  # 4 is still there: the refused delete changed nothing
    finally:
        first.close()
        second.close()


# ---------------------------------------------------------------- snapshots written beside another process's delete
def _snapshot_generations(folder) -> dict[str, int]:
    from obliviate.retrieval.store import _unpack

    out = {}
    for name in (VECTORS_FILE, KEYWORDS_FILE):
        if (folder / name).exists():
            out[name] = _unpack((folder / name).read_bytes())[0]["generation"]
    return out


def test_save_indexes_after_another_process_deleted_labels_the_snapshot_with_its_content(store_folder):
    """A handle whose indexes predate another handle's delete saves its snapshots: they must not claim the new
    generation while holding the deleted document (the old code labelled them with the table's generation read at
    save time, so the next open found a 'current' snapshot that did not match the table, and the deleted
    document's vector and terms sat in a file that said it was current)."""
    with DocumentStore(store_folder) as first, DocumentStore(store_folder) as second:
        before = first.generation
        second.delete([CURIE])
        first.save_indexes()
        generations = _snapshot_generations(store_folder)
        assert generations == {VECTORS_FILE: before + 1, KEYWORDS_FILE: before + 1}
        assert first.presence([CURIE]) == {"table": [], "vector index": [], "keyword index": [], "index files": []}
    with DocumentStore(store_folder) as third:
        assert third.repairs == []  # the snapshots are current and match the table: used as they are
        assert CURIE not in third.vectors and CURIE not in third.keywords
        assert third.ids() == [2, 3, 4, 5, 6]


def test_a_snapshot_saved_while_a_delete_is_under_way_does_not_outlive_the_delete(store_folder, monkeypatch):
    """Another handle writes snapshots (still holding the document) after this delete unlinked them and before it
    commits: the delete removes them again under the write lock, so no snapshot file holds the deleted document."""
    first, second = DocumentStore(store_folder), DocumentStore(store_folder)
    try:
        unlink = first._unlink_snapshots

        def another_handle_saves_in_between():
            unlink()
            second.save_indexes()  # second still has CURIE: its snapshots hold it, at the pre-delete generation
            assert CURIE in second.presence([CURIE])["index files"]

        monkeypatch.setattr(first, "_unlink_snapshots", another_handle_saves_in_between)
        first.delete([CURIE])
        assert first.presence([CURIE])["index files"] == []
        leftovers = [name for name in (VECTORS_FILE, KEYWORDS_FILE) if (store_folder / name).exists()]
        assert leftovers == []
    finally:
        first.close()
        second.close()


def test_an_add_racing_another_process_delete_does_not_keep_the_deleted_document(store_folder, monkeypatch):
    """Another handle deletes after this add's _sync and before its transaction: the add reloads under the write lock,
    so its indexes do not keep the deleted document labelled as current (found in review: the next save wrote it into
    a 'current' snapshot and a search raised KeyError)."""
    with DocumentStore(store_folder) as first, DocumentStore(store_folder) as second:
        sync = first._sync

        def another_handle_deletes_after_sync():
            sync()
            second.delete([CURIE])

        monkeypatch.setattr(first, "_sync", another_handle_deletes_after_sync)
        first.add(["A new note about the weather in spring."])
        monkeypatch.undo()
        assert first.presence([CURIE]) == {"table": [], "vector index": [], "keyword index": [], "index files": []}
        assert first._generation == first.generation
        first.save_indexes()
        assert CURIE not in first.presence([CURIE])["index files"]
        first.search("radioactivity", k=3)  # no KeyError on a document the table no longer has


def test_a_reader_following_another_process_deletes_writes_no_snapshots(store_folder):
    """A search after another handle's delete reloads the indexes but does not rewrite the snapshots under the write
    lock (found in review: reader and writer ping-ponged, each search rewriting both files after each delete)."""
    with DocumentStore(store_folder) as reader, DocumentStore(store_folder) as writer:
        writer.delete([CURIE])
        assert not any((store_folder / name).exists() for name in (VECTORS_FILE, KEYWORDS_FILE))
        reader.search("radioactivity", k=3)
        assert CURIE not in reader.vectors
        assert not any((store_folder / name).exists() for name in (VECTORS_FILE, KEYWORDS_FILE))
