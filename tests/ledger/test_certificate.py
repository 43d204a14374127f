"""Signing keys and certificates: 0600 key created once, canonical JSON, tamper and wrong-key detection."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.ledger import (
    canonical_json,
    check_signature,
    key_fingerprint,
    load_or_create_key,
    load_public_key,
    read_certificate,
    sign_certificate,
    write_certificate,
)
from obliviate.ledger.keys import private_key_path, public_key_path

BODY = {"request": {"request_id": "req-1", "ids": [3, 1]}, "removed_ids": [1, 3], "evidence": {"forget_accuracy": 0.25}}


def test_the_key_is_created_once_with_mode_0600_and_its_public_half_beside_it(tmp_path):
    key = load_or_create_key(tmp_path)
    assert stat.S_IMODE(private_key_path(tmp_path).stat().st_mode) == 0o600
    again = load_or_create_key(tmp_path)
    assert key_fingerprint(again.public_key()) == key_fingerprint(key.public_key())
    assert key_fingerprint(load_public_key(public_key_path(tmp_path))) == key_fingerprint(key.public_key())
    assert not [p for p in private_key_path(tmp_path).parent.iterdir() if p.name.startswith(".")]  # no staged leftovers


def test_a_damaged_private_key_is_a_typed_error(tmp_path):
    load_or_create_key(tmp_path)
    private_key_path(tmp_path).write_text("not a key")
    with pytest.raises(CorruptCheckpointError, match="not a PEM private key"):
        load_or_create_key(tmp_path)


def test_canonical_json_is_sorted_compact_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [1, 2], "c": "é"}) == '{"a":[1,2],"b":1,"c":"é"}'.encode()
    with pytest.raises(InvalidInputError, match="finite"):
        canonical_json({"x": float("nan")})


def test_a_signed_certificate_verifies_and_survives_a_round_trip_through_its_file(tmp_path):
    key = load_or_create_key(tmp_path)
    cert = sign_certificate(BODY, key)
    assert cert["signer"]["fingerprint"] == key_fingerprint(key.public_key())
    path = write_certificate(tmp_path / "c.json", cert)
    loaded = read_certificate(path)
    ok, detail = check_signature(loaded, trusted=key.public_key())
    assert ok and "trusted key" in detail
    ok, detail = check_signature(loaded)
    assert ok and "embedded key" in detail


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c["removed_ids"].remove(3),
        lambda c: c["evidence"].update(forget_accuracy=0.0),
        lambda c: c.update(extra="field"),
        lambda c: c.update(signature=base64.b64encode(bytes(64)).decode()),
    ],
)
def test_any_change_breaks_the_signature(tmp_path, tamper):
    cert = json.loads(json.dumps(sign_certificate(BODY, load_or_create_key(tmp_path))))
    tamper(cert)
    ok, detail = check_signature(cert)
    assert not ok and "does not match" in detail


def test_a_certificate_re_signed_by_another_key_fails_against_the_trusted_key(tmp_path):
    ours = load_or_create_key(tmp_path)
    forged = sign_certificate({**BODY, "removed_ids": [1, 3, 5]}, Ed25519PrivateKey.generate())
    assert check_signature(forged)[0]  # self-consistent under its own embedded key...
    ok, detail = check_signature(forged, trusted=ours.public_key())
    assert not ok and "not by the trusted key" in detail  # ...but not signed by the ledger
    swapped = {
        **forged,
        "signer": {**forged["signer"], "public_key": sign_certificate(BODY, ours)["signer"]["public_key"]},
    }
    assert not check_signature(swapped)[0]


def test_unreadable_certificates_are_typed_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="no certificate at"):
        read_certificate(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="not JSON"):
        read_certificate(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"schema": "something/1"}')
    with pytest.raises(CorruptCheckpointError, match="not an obliviate.certificate/1"):
        read_certificate(tmp_path / "other.json")
