"""Self-verifying checkpoints and atomic writes."""

from __future__ import annotations

import json
import os
import struct

import pytest
import torch
from safetensors.torch import save as st_save

import obliviate as ob
from obliviate import storage
from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.models import build_model


@pytest.fixture
def saved(tmp_path, trained_mlp):
    path = tmp_path / "model.safetensors"
    digest = ob.save_model(trained_mlp, path, metadata={"note": "hi", "n": 3})
    return path, digest


def header_of(raw: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", raw[:8])
    return n, json.loads(raw[8 : 8 + n])


def test_round_trip_rebuilds_the_architecture_with_equal_tensors(saved, trained_mlp, test_set):
    path, digest = saved
    loaded = ob.load_model(path)
    assert type(loaded) is type(trained_mlp) and not loaded.training
    a, b = trained_mlp.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    X, _ = test_set.tensors
    assert torch.equal(loaded(X), trained_mlp(X))
    assert digest == storage.state_sha256(trained_mlp.state_dict())
    assert storage.spec_of(loaded)["recipe"] == storage.spec_of(trained_mlp)["recipe"]
    meta = storage.read_metadata(path)
    assert meta["note"] == "hi" and json.loads(meta["n"]) == 3 and meta["obliviate.sha256"] == digest


def test_round_trip_with_batchnorm_buffers(tmp_path, train_set):
    recipe = ob.Recipe(model="resnet18", epochs=1, model_options={"width": 4})
    model = ob.train(recipe, train_set.subset(train_set.ids[:64]))
    ob.save_model(model, tmp_path / "r.safetensors")
    loaded = ob.load_model(tmp_path / "r.safetensors")
    assert int(loaded.bn1.num_batches_tracked) == 1
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


def test_load_into_a_given_module(saved, trained_mlp):
    path, _ = saved
    target = build_model("mlp", (64,), 10, seed=9)
    assert ob.load_model(path, target) is target
    assert torch.equal(target[1].weight, trained_mlp[1].weight)
    with pytest.raises(InvalidInputError, match="does not fit the given MLP"):
        ob.load_model(path, build_model("mlp", (64,), 10, options={"hidden": (8,)}))


def test_a_plain_module_needs_a_target_to_load_into(tmp_path):
    plain = torch.nn.Linear(3, 2)
    ob.save_model(plain, tmp_path / "p.safetensors")
    with pytest.raises(CorruptCheckpointError, match="no model spec"):
        ob.load_model(tmp_path / "p.safetensors")
    other = torch.nn.Linear(3, 2)
    ob.load_model(tmp_path / "p.safetensors", other)
    assert torch.equal(other.weight, plain.weight)


def test_truncated_file_is_corrupt(saved):
    path, _ = saved
    raw = path.read_bytes()
    for cut in (4, 8 + header_of(raw)[0] - 3, len(raw) - 5):
        path.write_bytes(raw[:cut])
        with pytest.raises(CorruptCheckpointError, match="corrupt"):
            ob.load_model(path)


def test_flipped_weight_byte_is_corrupt(saved):
    path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[-10] ^= 0x01  # inside the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptCheckpointError, match="do not match the sha256"):
        ob.load_model(path)


def test_altered_tensor_under_the_old_header_is_corrupt(saved, trained_mlp):
    path, _ = saved
    _, header = header_of(path.read_bytes())
    state = {k: v.detach().clone() for k, v in trained_mlp.state_dict().items()}
    state["1.weight"][0, 0] += 1.0
    path.write_bytes(st_save(state, metadata=header["__metadata__"]))  # a valid file, old hash
    with pytest.raises(CorruptCheckpointError, match="do not match the sha256"):
        ob.load_model(path)
    with pytest.raises(CorruptCheckpointError):
        storage.read_metadata(path)


def test_foreign_or_damaged_headers_are_corrupt(saved, tmp_path, trained_mlp):
    path, _ = saved
    foreign = tmp_path / "foreign.safetensors"
    foreign.write_bytes(st_save({"w": torch.zeros(2)}))
    with pytest.raises(CorruptCheckpointError, match="not written by obliviate"):
        ob.load_model(foreign)
    raw = path.read_bytes()
    n, header = header_of(raw)
    good_spec = header["__metadata__"]["obliviate.spec"]
    header["__metadata__"]["obliviate.spec"] = "{not json"
    body = json.dumps(header).encode()
    assert len(body) <= n  # the spec got shorter: pad to the old length, so only the spec is damaged
    path.write_bytes(raw[:8] + body.ljust(n) + raw[8 + n :])
    with pytest.raises(CorruptCheckpointError, match="unreadable model spec"):
        ob.load_model(path)
    meta = dict(header["__metadata__"])  # a readable spec that names another architecture
    meta["obliviate.spec"] = json.dumps({**json.loads(good_spec), "options": {"hidden": [8]}})
    path.write_bytes(st_save(trained_mlp.state_dict(), metadata=meta))  # the weights' sha256 still matches
    with pytest.raises(CorruptCheckpointError, match="do not fit the model spec"):
        ob.load_model(path)
    path.write_bytes(raw[:8] + b"\xff" * n + raw[8 + n :])
    with pytest.raises(CorruptCheckpointError, match="cannot parse"):
        ob.load_model(path)
    with pytest.raises(InvalidInputError, match="no model file"):
        ob.load_model(tmp_path / "missing.safetensors")
    with pytest.raises(InvalidInputError, match="is a folder"):
        ob.load_model(tmp_path)


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "deep" / "file.bin"
    storage.atomic_write_bytes(target, b"one")
    storage.atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two" and leftovers(target.parent) == []
    old = os.umask(0o022)
    try:
        storage.atomic_write_bytes(tmp_path / "plain.bin", b"x")
        storage.atomic_write_bytes(tmp_path / "private.bin", b"x", mode=0o600)
    finally:
        os.umask(old)
    assert (tmp_path / "plain.bin").stat().st_mode & 0o777 == 0o644  # like open(..., "wb")
    assert (tmp_path / "private.bin").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("fail_in", ["fsync", "replace"])
def test_a_failed_write_keeps_the_old_file(tmp_path, saved, trained_mlp, monkeypatch, fail_in):
    path, digest = saved
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(storage.os, fail_in, boom)
    changed = build_model("mlp", (64,), 10, seed=5)
    with pytest.raises(OSError, match="disk full"):
        ob.save_model(changed, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and leftovers(path.parent) == []
    loaded = ob.load_model(path)
    assert storage.state_sha256(loaded.state_dict()) == digest
