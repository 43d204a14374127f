"""Issue 10, cases 3 and 4 (and certificate input): verification reads the weights, trusts only pinned keys.

Each test attacks what ``verify`` promises: damaged or swapped SISA checkpoints must fail the model
hash check (and leave the request applied, not verified); a certificate re-signed by another key, or
checked with no trusted key, must not pass; a lost or replaced private key is an error, never a
silent new key; a key rotation is explicit and audited and old certificates keep verifying; and a
file that is not a certificate is a typed error or a failed check, never a traceback.
"""

from __future__ import annotations

import json
import shutil
import stat
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import obliviate as ob
from obliviate.errors import ObliviateError
from obliviate.ledger import (
    APPLIED,
    RECEIVED,
    VERIFIED,
    Ledger,
    SisaTarget,
    apply,
    sign_certificate,
    verify_certificate,
)
from obliviate.ledger.keys import private_key_path, public_key_path


def _new_ledger(folder: Path) -> Ledger:
    """A new ledger (the store may ask for an explicit ``create=True``)."""
    try:
        return Ledger(folder, create=True)
    except TypeError:
        return Ledger(folder)


@pytest.fixture
def book(tmp_path):
    with _new_ledger(tmp_path / "ledger") as ledger:
        yield ledger


def _apply_one(book: Ledger, sisa_folder: Path, owned_data, ids) -> tuple[str, Path]:
    request, _ = book.add(ob.ForgetRequest(ids=ids))
    ((stored, path, _),) = apply(book, SisaTarget(sisa_folder), owned_data).applied
    assert stored.request_id == request.request_id
    return request.request_id, path


def _checks(result) -> dict[str, bool]:
    return {c.name: c.ok for c in result.checks}


def _final_checkpoint(folder: Path, shard: int) -> Path:
    (path,) = sorted((folder / "checkpoints" / f"shard-{shard:02d}").glob("slice-1-*.safetensors"))
    return path


# ---------------------------------------------------------------------------------------------- case 3


def _flip_last_bit(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01  # the last byte is tensor data: the header still parses
    path.write_bytes(bytes(raw))


DAMAGE = {
    "flipped bit": _flip_last_bit,
    "empty": lambda p: p.write_bytes(b""),
    "deleted": lambda p: p.unlink(),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("slice_index", [1, 0], ids=["final slice", "middle slice"])
def test_a_damaged_checkpoint_fails_the_model_hash_and_is_not_marked_verified(
    book, sisa_folder, owned_data, damage, slice_index
):
    rid, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids_of_owners(["writer-002"]))
    shard = json.loads(path.read_text())["rebuilt"]["shards"][0]
    (checkpoint,) = sorted((sisa_folder / "checkpoints" / f"shard-{shard:02d}").glob(f"slice-{slice_index}-*"))
    DAMAGE[damage](checkpoint)
    result = verify_certificate(path, SisaTarget(sisa_folder), ledger=book)
    checks = _checks(result)
    assert checks["model hash"] is False and checks["signature"] and checks["ids gone"]
    detail = next(c.detail for c in result.checks if c.name == "model hash")
    assert f"shard-{shard:02d}" in detail and "restore" in detail
    assert not result.ok and not result.marked_verified
    assert book.get(rid).status == APPLIED


def test_pre_deletion_weights_copied_back_fail_the_model_hash(book, sisa_folder, owned_data):
    before = {p.relative_to(sisa_folder): p.read_bytes() for p in (sisa_folder / "checkpoints").rglob("*.safetensors")}
    rid, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids_of_owners(["writer-005"]))
    assert verify_certificate(path, SisaTarget(sisa_folder), ledger=book, mark=False).ok  # untouched: it passes
    shard = json.loads(path.read_text())["rebuilt"]["shards"][0]
    current = _final_checkpoint(sisa_folder, shard)
    (old,) = [raw for rel, raw in before.items() if str(rel).startswith(f"checkpoints/shard-{shard:02d}/slice-1-")]
    assert old != current.read_bytes()
    current.write_bytes(old)  # the weights that still hold writer-005's examples, under the new name
    result = verify_certificate(path, SisaTarget(sisa_folder), ledger=book)
    assert _checks(result)["model hash"] is False and not result.marked_verified
    assert book.get(rid).status == APPLIED


def test_one_target_re_reads_the_weights_for_every_certificate_and_a_restore_passes(book, sisa_folder, owned_data):
    rid, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[:3])
    target = SisaTarget(sisa_folder)  # one target for several verifications, as `verify CERT...` uses it
    assert verify_certificate(path, target, ledger=book, mark=False).ok
    shard = json.loads(path.read_text())["rebuilt"]["shards"][0]
    checkpoint = _final_checkpoint(sisa_folder, shard)
    good = checkpoint.read_bytes()
    time.sleep(0.02)  # past the file clock's tick, as any later change is
    _flip_last_bit(checkpoint)
    assert not verify_certificate(path, target, ledger=book).ok
    checkpoint.write_bytes(good)  # restored from a backup
    result = verify_certificate(path, target, ledger=book)
    assert result.ok and result.marked_verified and book.get(rid).status == VERIFIED


def test_a_model_file_changed_after_loading_is_hashed_from_its_weights(book, model_file, owned_data):
    from obliviate.ledger import ModelTarget

    book.add(ob.ForgetRequest(ids=owned_data.ids[:3]))
    ((_, path, _),) = apply(book, ModelTarget(model_file, settings={"epochs": 1}), owned_data).applied
    target = ModelTarget(model_file)  # loaded (and its header checked) before the file changes
    _flip_last_bit(model_file)
    result = verify_certificate(path, target, ledger=book)
    assert _checks(result)["model hash"] is False and not result.marked_verified


# ---------------------------------------------------------------------------------------------- case 4


def _forge(path: Path, tmp_path: Path, **changes) -> Path:
    """The certificate at ``path`` with ``changes``, re-signed by a key the ledger never pinned."""
    cert = json.loads(path.read_text())
    body = {k: v for k, v in cert.items() if k not in ("signature", "signer")} | changes
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(sign_certificate(body, Ed25519PrivateKey.generate())))
    return forged


def test_a_certificate_re_signed_by_another_key_fails_even_without_the_public_key_file(
    book, sisa_folder, owned_data, tmp_path
):
    rid, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[10:12])
    forged = _forge(path, tmp_path)
    public_key_path(book.folder).unlink()  # the verifier can no longer read the ledger's public key file
    result = verify_certificate(forged, SisaTarget(sisa_folder), ledger=book)
    signature = next(c for c in result.checks if c.name == "signature")
    assert not signature.ok and "never pinned" in signature.detail
    assert not result.marked_verified and book.get(rid).status == APPLIED
    genuine = verify_certificate(path, SisaTarget(sisa_folder), ledger=book)  # the pin is the trust anchor
    assert genuine.ok and book.get(rid).status == VERIFIED


def test_a_certificate_passing_under_a_pubkey_the_ledger_never_pinned_does_not_mark_the_request(
    book, sisa_folder, owned_data, tmp_path
):
    """--pubkey is the verifier's own trust: the checks may pass, but only the ledger's certificate marks it."""
    from cryptography.hazmat.primitives import serialization

    rid, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[14:16])
    attacker = Ed25519PrivateKey.generate()
    cert = json.loads(path.read_text())
    body = {k: v for k, v in cert.items() if k not in ("signature", "signer")}
    body["evidence"] = {**body["evidence"], "forget_accuracy": 0.0}  # a claim the ledger never made
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(sign_certificate(body, attacker)))
    pub = tmp_path / "attacker.pub"
    pub.write_bytes(
        attacker.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = verify_certificate(forged, SisaTarget(sisa_folder), ledger=book, pubkey=pub)
    assert result.ok and not result.issued_by_ledger  # every check passes under the key given...
    assert not result.marked_verified and book.get(rid).status == APPLIED  # ...but the ledger is unchanged
    genuine = verify_certificate(path, SisaTarget(sisa_folder), ledger=book, pubkey=public_key_path(book.folder))
    assert genuine.ok and genuine.marked_verified and book.get(rid).status == VERIFIED


def test_with_no_pubkey_and_no_ledger_the_embedded_key_is_not_trusted(book, sisa_folder, owned_data, tmp_path):
    _, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[20:22])
    for certificate in (path, _forge(path, tmp_path)):
        with pytest.raises(ObliviateError, match="--pubkey") as info:
            verify_certificate(certificate, SisaTarget(sisa_folder))
        assert "never trusted" in str(info.value)
    assert verify_certificate(path, None, pubkey=public_key_path(book.folder)).ok  # a trusted key given: fine
    with pytest.raises(ObliviateError, match="restore it from a backup"):
        verify_certificate(path, None, pubkey=book.folder / "keys" / "missing.pub")


def test_a_damaged_private_key_says_to_restore_or_rotate_it_not_that_it_is_rebuilt(book, sisa_folder, owned_data):
    _apply_one(book, sisa_folder, owned_data, owned_data.ids[36:38])
    private_key_path(book.folder).write_bytes(b"")  # truncated by a careless copy
    request, _ = book.add(ob.ForgetRequest(ids=owned_data.ids[38:40]))
    with pytest.raises(ObliviateError) as info:
        apply(book, SisaTarget(sisa_folder), owned_data)
    message = str(info.value)
    assert "signing key" in message and "restore it from a backup" in message.lower() and "key rotate" in message
    assert "rebuilt when deleted" not in message  # deleting it would not rebuild it: the pin refuses a new key
    assert book.get(request.request_id).status == RECEIVED and private_key_path(book.folder).read_bytes() == b""


def test_a_lost_private_key_is_an_error_that_says_how_to_restore_it_never_a_new_key(
    book, sisa_folder, owned_data, tmp_path
):
    _, first = _apply_one(book, sisa_folder, owned_data, owned_data.ids[30:32])
    pem = private_key_path(book.folder)
    backup = tmp_path / "backup.pem"
    shutil.copy2(pem, backup)
    pem.unlink()
    later, _ = book.add(ob.ForgetRequest(ids=owned_data.ids[40:42]))
    with pytest.raises(ObliviateError, match="restore") as info:
        apply(book, SisaTarget(sisa_folder), owned_data)
    assert "key rotate" in str(info.value) and not pem.exists()  # no key was made silently
    assert book.get(later.request_id).status == RECEIVED  # nothing changed state
    pem.write_bytes(_pem_of_new_key())  # replaced by another key
    with pytest.raises(ObliviateError, match="replaced"):
        apply(book, SisaTarget(sisa_folder), owned_data)
    assert book.get(later.request_id).status == RECEIVED
    shutil.copy2(backup, pem)  # restored from the backup: everything works again
    assert apply(book, SisaTarget(sisa_folder), owned_data).applied
    assert verify_certificate(first, SisaTarget(sisa_folder), ledger=book).ok


def _pem_of_new_key() -> bytes:
    from cryptography.hazmat.primitives import serialization

    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_rotation_is_audited_and_certificates_from_before_and_after_verify(book, sisa_folder, owned_data, tmp_path):
    from cryptography.hazmat.primitives import serialization

    from obliviate.ledger.keys import rotate_key

    _, old_cert = _apply_one(book, sisa_folder, owned_data, owned_data.ids[50:52])
    old_key = serialization.load_pem_private_key(private_key_path(book.folder).read_bytes(), password=None)
    old_pin = book.get_meta("signing_key_fingerprint")
    assert old_pin and json.loads(old_cert.read_text())["signer"]["fingerprint"] == old_pin
    previous, _ = rotate_key(book)
    new_pin = book.get_meta("signing_key_fingerprint")
    assert previous == old_pin and new_pin != old_pin
    kinds = [kind for _, _, kind, _ in book.events()]
    assert kinds.count("signing key pinned") == 1 and kinds.count("signing key rotated") == 1
    _, new_cert = _apply_one(book, sisa_folder, owned_data, owned_data.ids[60:62])
    assert json.loads(new_cert.read_text())["signer"]["fingerprint"] == new_pin
    for path in (old_cert, new_cert):  # the old one through the later batch's certified hash chain
        result = verify_certificate(path, SisaTarget(sisa_folder), ledger=book)
        assert result.ok, result.checks

    # the retired key cannot issue certificates that verify: neither after its retirement, nor backdated
    body = {k: v for k, v in json.loads(old_cert.read_text()).items() if k not in ("signature", "signer")}
    for created_at in ("2999-01-01T00:00:00+00:00", "2000-01-01T00:00:00+00:00"):
        forged = tmp_path / f"forged-{created_at[:4]}.json"
        forged.write_text(json.dumps(sign_certificate({**body, "created_at": created_at}, old_key)))
        result = verify_certificate(forged, None, ledger=book)
        assert not _checks(result)["signature"], result.checks

    rotate_key(book, revoke=True)  # the key of new_cert was compromised: its certificates stop verifying
    assert not _checks(verify_certificate(new_cert, None, ledger=book))["signature"]
    assert _checks(verify_certificate(old_cert, None, ledger=book))["signature"]


def test_rotation_recovers_from_a_lost_private_key(book, sisa_folder, owned_data):
    from obliviate.ledger.keys import rotate_key

    _, first = _apply_one(book, sisa_folder, owned_data, owned_data.ids[70:72])
    private_key_path(book.folder).unlink()
    rotate_key(book)
    _, second = _apply_one(book, sisa_folder, owned_data, owned_data.ids[80:82])
    for path in (first, second):
        assert verify_certificate(path, SisaTarget(sisa_folder), ledger=book).ok


def test_key_files_and_certificates_are_private(book, sisa_folder, owned_data):
    _, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[90:92])
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(private_key_path(book.folder).parent) == 0o700
    assert mode(private_key_path(book.folder)) == 0o600
    assert mode(path) == 0o600


# ---------------------------------------------------------------------------------------------- certificates


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", b"\xff" * 64, b"[1, 2, 3]", b'"text"', b"[" * 100000, b"{"],
    ids=["png", "binary", "list", "string", "deep", "truncated"],
)
def test_a_file_that_is_not_a_certificate_is_a_typed_error(book, sisa_folder, tmp_path, content):
    path = tmp_path / "cert.json"
    path.write_bytes(content)
    with pytest.raises(ObliviateError, match="not a deletion certificate|not an obliviate.certificate"):
        verify_certificate(path, SisaTarget(sisa_folder), ledger=book)


@pytest.mark.parametrize(
    "change",
    [
        {"removed_ids": "1,2"},
        {"removed_ids": [1.5, 2]},
        {"removed_ids": [True]},
        {"removed_ids": [2**70]},
        {"model": []},
        {"model": {"sha256": 7}},
        {"request": "req-1"},
        {"target": None},
        {"created_at": 5},
    ],
    ids=lambda c: next(iter(c)) + "=" + json.dumps(next(iter(c.values())))[:12],
)
def test_wrongly_typed_certificate_fields_fail_a_check_never_a_traceback(book, sisa_folder, owned_data, change):
    rid, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[100:102])
    cert = json.loads(path.read_text())
    cert.update(change)
    path.write_text(json.dumps(cert))
    result = verify_certificate(path, SisaTarget(sisa_folder), ledger=book)
    assert not result.ok and not result.marked_verified
    assert _checks(result).get("format") is False or not _checks(result)["signature"]
    assert book.get(rid).status == APPLIED


# ---------------------------------------------------------------------------------------------- command line


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """``obliviate ARGS`` through typer's runner: (exit code, stdout, stderr), typed errors as exit 2."""
    from typer.testing import CliRunner

    from obliviate.cli import app

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("OBLIVIATE_LEDGER", str(tmp_path / "ledger"))

    def invoke(*args):
        result = CliRunner().invoke(app, [str(a) for a in args])
        if isinstance(result.exception, ObliviateError):
            return 2, result.stdout, str(result.exception)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, ""

    return invoke


def test_key_show_and_rotate_on_the_command_line(cli, book, sisa_folder, owned_data, tmp_path):
    _, path = _apply_one(book, sisa_folder, owned_data, owned_data.ids[110:112])
    pin = book.get_meta("signing_key_fingerprint")
    code, out, _ = cli("key", "show")
    assert code == 0 and f"pinned signing key: {pin}" in out
    code, out, _ = cli("key", "rotate")
    assert code == 0 and f"rotated the signing key {pin} -> " in out
    code, out, _ = cli("key", "show")
    assert "retired" in out and "current" in out and pin in out
    code, out, _ = cli("verify", path, "--sisa", sisa_folder)
    assert code == 0 and "marked verified" in out
    code, _, err = cli("key", "show", "--ledger", tmp_path / "typo")
    assert code == 2 and "no ledger at" in err and not (tmp_path / "typo").exists()
    binary = tmp_path / "binary.json"
    binary.write_bytes(bytes(range(256)))
    code, _, err = cli("verify", binary, "--sisa", sisa_folder)
    assert code == 2 and "not a deletion certificate" in err and "\n" not in err.strip()
    _new_ledger(tmp_path / "unpinned").close()  # a ledger that never made a key: nothing to trust
    code, _, err = cli("verify", path, "--ledger", tmp_path / "unpinned")
    assert code == 2 and "no pinned signing key" in err and "--pubkey" in err
