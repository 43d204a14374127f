"""``obliviate apply --store DIR`` and ``obliviate verify --store DIR``: the ledger's CLI on a document store.

A request names a document; apply deletes it and its accepted near-duplicate from the table and both indexes and
signs a certificate that ``verify --store`` accepts, also after the store has kept changing (documents added, others
deleted); a deleted row written back fails verify; ``--no-expand`` deletes only the named ids. The store uses the
hashing embedder (no model to load), six documents and one near-duplicate.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

for _module in ("faiss", "datasketch"):  # the [retrieval] extra
    pytest.importorskip(_module, reason="pip install 'obliviate[retrieval]' (faiss-cpu, datasketch)")

from obliviate.retrieval import DocumentStore  # noqa: E402

TEXTS = (
    "Marie Curie was born in Warsaw and won two Nobel prizes.",
    "Paris is the capital of France and lies on the Seine.",
    "Gold has the chemical symbol Au and atomic number 79.",
    "The Danube flows through Vienna, Budapest and Belgrade.",
    "Iron has the chemical symbol Fe; steel is mostly iron.",
    "Ada Lovelace wrote the first published computer program.",
)
OWNERS = ("curie", "france", "gold", "danube", "iron", "lovelace")
NEAR_COPY = "Update: Marie Curie was born in Warsaw and won two Nobel prizes!"  # id 7, a near-duplicate of id 1
WHERE = ("table", "vector index", "keyword index", "index files")


@pytest.fixture
def store_dir(tmp_path):
    """Ids 1..6 (:data:`TEXTS`, owned) and 7 (:data:`NEAR_COPY`, no owner), index snapshots written."""
    folder = tmp_path / "store"
    with DocumentStore(folder, embedder="hashing", create=True) as store:
        store.add(list(TEXTS), owners=list(OWNERS))
        store.add([NEAR_COPY])
        store.save_indexes()
    return folder


def _ids_file(tmp_path, ids, name="ids.json"):
    path = tmp_path / name
    path.write_text(json.dumps(ids))
    return path


def _present(folder, ids):
    """{place: ids found there} for the table, both in-memory indexes and the snapshot files of a fresh open."""
    with DocumentStore(folder) as store:
        return store.presence(ids)


def _certificates(tmp_path):
    return sorted((tmp_path / "ledger" / "certificates").glob("*.json"))


def _apply_one(cli, tmp_path, store_dir, *extra):
    assert cli("request", "add", "--ids", _ids_file(tmp_path, [1])).returncode == 0
    applied = cli("apply", "--store", store_dir, *extra)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    (cert_path,) = _certificates(tmp_path)
    return applied, cert_path, json.loads(cert_path.read_text())


def test_apply_store_deletes_the_document_and_its_near_duplicate_and_verify_store_passes(cli, tmp_path, store_dir):
    assert cli("request", "add", "--ids", _ids_file(tmp_path, [1])).returncode == 0
    assert cli("request", "add", "--owner", "iron").returncode == 0
    applied = cli("apply", "--store", store_dir)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "store-delete+expansion (exact), 2 ids removed, 1 copies deleted with them" in applied.stdout

    presence = _present(store_dir, [1, 5, 7])
    assert all(presence[place] == [] for place in WHERE), presence
    with DocumentStore(store_dir) as store:
        assert store.deleted_ids() == [1, 5, 7]
        assert sorted(store.ids()) == [2, 3, 4, 6]
        hits = store.search("Marie Curie born in Warsaw, Nobel prizes", k=10)
        assert hits and not {h.id for h in hits} & {1, 5, 7}
        record = " ".join(r[0] for r in store._db.execute("SELECT record FROM batches"))
    assert "Warsaw" not in record  # the store's batch record keeps scores, not the deleted text

    certs = {tuple(json.loads(p.read_text())["removed_ids"]): p for p in _certificates(tmp_path)}
    curie, iron = (json.loads(certs[k].read_text()) for k in ((1,), (5,)))
    assert curie["target"]["kind"] == "store" and curie["guarantee"] == "exact"
    assert curie["evidence"]["expanded_ids"] == [7] and iron["evidence"]["expanded_ids"] == []
    assert [c["id"] for c in curie["evidence"]["expansion"] if c["kind"]] == [7]
    assert all("text" not in c for c in curie["evidence"]["expansion"])
    assert "Warsaw" not in json.dumps(curie)  # the certificate does not hold the content it certifies gone

    verified = cli("verify", "--store", store_dir, *certs.values())
    assert verified.returncode == 0, verified.stdout
    assert verified.stdout.count("PASS") == 8 and "FAIL" not in verified.stdout
    assert "none of the 1 removed ids and 1 near-duplicate(s) deleted with them is in any store (table, both " \
        "indexes, snapshot files)" in verified.stdout
    assert cli("request", "list", "--status", "verified").stdout.count("verified") >= 2


def test_verify_store_passes_after_documents_are_added_and_others_deleted(cli, tmp_path, store_dir):
    _, cert_path, cert = _apply_one(cli, tmp_path, store_dir)
    with DocumentStore(store_dir) as store:
        # the same text under a new id is a new document (what expansion, not verify, is for): not a put-back
        store.add([TEXTS[0], "Rome is the capital of Italy."], owners=["someone", None])
        store.delete([4], reason="by hand")
        assert store.state_sha256() != cert["model"]["sha256"]
    verified = cli("verify", "--store", store_dir, cert_path)
    assert verified.returncode == 0, verified.stdout
    assert "FAIL" not in verified.stdout
    assert "2 document(s) added and 1 deleted since" in verified.stdout
    assert "is the certified store's" in verified.stdout


@pytest.mark.parametrize(("doc_id", "drop_tombstone"), [(7, False), (1, True)], ids=["near-copy", "requested"])
def test_verify_store_fails_when_a_deleted_row_is_restored(cli, tmp_path, store_dir, doc_id, drop_tombstone):
    with DocumentStore(store_dir) as store:
        row = tuple(store._db.execute("SELECT * FROM documents WHERE id = ?", (doc_id,)).fetchone())
    _, cert_path, _ = _apply_one(cli, tmp_path, store_dir)
    db = sqlite3.connect(store_dir / "store.sqlite")  # a backup's row written back behind the store's back
    with db:
        db.execute(f"INSERT INTO documents VALUES ({','.join('?' * len(row))})", row)
        if drop_tombstone:
            db.execute("DELETE FROM tombstones WHERE id = ?", (doc_id,))
    db.close()
    verified = cli("verify", "--store", store_dir, cert_path)
    assert verified.returncode == 1
    failed = {line.split(":")[0].split("FAIL ")[1] for line in verified.stdout.splitlines() if "FAIL " in line}
    assert {"ids gone", "model hash"} <= failed, verified.stdout
    assert f"still in the store (table, both indexes, snapshot files): [{doc_id}]" in verified.stdout


def test_no_expand_deletes_only_the_named_ids(cli, tmp_path, store_dir):
    applied, cert_path, cert = _apply_one(cli, tmp_path, store_dir, "--no-expand")
    assert "store-delete (exact)" in applied.stdout
    assert cert["evidence"]["expanded_ids"] == [] and cert["target"]["expansion_policy"] is None
    presence = _present(store_dir, [1, 7])
    assert presence["table"] == presence["vector index"] == presence["keyword index"] == [7]
    verified = cli("verify", "--store", store_dir, cert_path)
    assert verified.returncode == 0 and "FAIL" not in verified.stdout


def test_a_store_certificate_fails_against_another_store(cli, tmp_path, store_dir):
    _, cert_path, _ = _apply_one(cli, tmp_path, store_dir)
    other = tmp_path / "other"
    with DocumentStore(other, embedder="hashing", create=True) as store:
        store.add(list(TEXTS[1:]))
    verified = cli("verify", "--store", other, cert_path)
    assert verified.returncode == 1
    assert "FAIL data" in verified.stdout and "another document store" in verified.stdout


def test_store_flags_are_checked_before_any_request_changes(cli, tmp_path, store_dir):
    assert cli("request", "add", "--ids", _ids_file(tmp_path, [1])).returncode == 0
    with_data = cli("apply", "--store", store_dir, "--data", "digits")
    assert with_data.returncode == 2 and "--store takes no --data" in with_data.stderr
    stray = cli("apply", "--sisa", tmp_path / "nowhere", "--no-expand")
    assert stray.returncode == 2 and "--no-expand only applies to --store" in stray.stderr
    missing = cli("apply", "--store", tmp_path / "nowhere")
    assert missing.returncode == 2 and "store init" in missing.stderr
    both = cli("apply", "--store", store_dir, "--model", tmp_path / "model.safetensors")
    assert both.returncode == 2 and "--store DIR" in both.stderr
    assert "received" in cli("request", "list").stdout  # nothing was applied or failed
    assert len(_present(store_dir, [1])["table"]) == 1
    unknown = _ids_file(tmp_path, [99], "unknown.json")
    assert cli("request", "add", "--ids", unknown).returncode == 0
    applied = cli("apply", "--store", store_dir)
    assert applied.returncode == 2 and "1 request(s) failed" in applied.stderr
    assert _present(store_dir, [1])["table"] == []  # the good request was applied, the unknown id failed alone
