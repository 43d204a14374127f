"""The store as a ledger target: the ledger's own apply and verify, unchanged, on a document store -- requests by id
and by owner, expansion of a near-duplicate, signed certificates that verify, a rerun that deletes nothing twice,
and a verify that fails when a deleted document comes back."""

from __future__ import annotations

import json

import pytest

from obliviate.ledger import Ledger, apply, verify_certificate
from obliviate.request import ForgetRequest
from obliviate.retrieval import DocumentStore
from obliviate.retrieval.ledger_target import StoreTarget

NEAR_COPY = "Update: Marie Curie was born in Warsaw and won two Nobel prizes!"


@pytest.fixture
def store_with_copy(store_folder):
    with DocumentStore(store_folder) as store:
        store.add([NEAR_COPY])  # id 7: a near-duplicate of id 1
    return store_folder


def test_apply_deletes_requested_documents_and_their_near_duplicates_and_verify_passes(tmp_path, store_with_copy):
    target = StoreTarget(store_with_copy)
    with Ledger(tmp_path / "ledger", create=True) as book:
        book.add(ForgetRequest(ids=[1]))
        book.add(ForgetRequest(owners="iron"))
        outcome = apply(book, target, target.dataset())
        assert len(outcome.applied) == 2 and not outcome.failed
        assert target.store.deleted_ids() == [1, 5, 7]
        certs = {tuple(c["removed_ids"]): c for _, _, c in outcome.applied}
        assert certs[(1,)]["evidence"]["expanded_ids"] == [7]
        assert certs[(1,)]["guarantee"] == "exact" and certs[(1,)]["target"]["kind"] == "store"
        for _, path, _ in outcome.applied:
            result = verify_certificate(path, StoreTarget(store_with_copy), ledger=book)
            assert result.ok, [(c.name, c.detail) for c in result.checks]
        book.add(ForgetRequest(ids=[1, 2]))  # 1 was deleted by the first batch, 2 is new
        again = apply(book, target, target.dataset())
        cert = again.applied[0][2]
        assert cert["already_deleted_ids"] == [1] and cert["removed_by_this_batch"] == [2]
        assert target.store.deleted_ids() == [1, 2, 5, 7]


def test_a_rerun_of_a_committed_batch_returns_its_record_without_deleting(store_with_copy):
    target = StoreTarget(store_with_copy)
    data = target.dataset()
    first = target.delete([1], data, batch_id="batch-x")
    generation = target.store.generation
    second = target.delete([1], data, batch_id="batch-x")
    assert second.recovered and second.removed_ids == first.removed_ids == [1]
    assert target.store.generation == generation


def test_verify_fails_when_a_deleted_document_is_back(tmp_path, store_folder):
    target = StoreTarget(store_folder, policy=None)
    with Ledger(tmp_path / "ledger", create=True) as book:
        book.add(ForgetRequest(ids=[3]))
        (_, path, cert) = apply(book, target, target.dataset()).applied[0]
        target.close()
        with DocumentStore(store_folder) as store:  # someone writes the row back behind the store's back
            with store._transaction() as db:
                db.execute(
                    "INSERT INTO documents(id, owner, text, sha256, added, vector, minhash) "
                    "SELECT 3, owner, 'Gold has the chemical symbol Au.', sha256, 'x', zeroblob(1024), X'00' FROM tombstones "
                    "WHERE id = 3"
                )
        result = verify_certificate(path, StoreTarget(store_folder), ledger=book, mark=False)
        failed = {c.name for c in result.checks if not c.ok}
        assert {"ids gone", "model hash"} <= failed, json.dumps([(c.name, c.detail) for c in result.checks])


def test_a_ledger_delete_leaves_the_deleted_text_in_no_file(tmp_path, store_with_copy):
    """After apply, the deleted documents' text is in neither store.sqlite nor its WAL (the delete is checkpointed);
    a reader holding the old pages is reported in the evidence instead of passing silently."""
    import sqlite3

    reader = sqlite3.connect(store_with_copy / "store.sqlite")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM documents").fetchone()  # an open read: the checkpoint cannot finish
    target = StoreTarget(store_with_copy)
    with Ledger(tmp_path / "ledger", create=True) as book:
        book.add(ForgetRequest(ids=[1]))
        outcome = apply(book, target, target.dataset())
        assert outcome.applied[0][2]["evidence"]["wal_checkpointed"] is False
        reader.rollback()
        reader.close()
        book.add(ForgetRequest(ids=[2]))
        second = apply(book, target, target.dataset())
        assert second.applied[0][2]["evidence"]["wal_checkpointed"] is True
    target.close()
    files = [p for p in store_with_copy.iterdir() if p.name.startswith("store.sqlite")]
    assert files and not any(b"Warsaw" in p.read_bytes() for p in files)
