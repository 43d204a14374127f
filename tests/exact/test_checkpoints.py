"""SISA's store: damaged checkpoints are found by their sha256 and rebuilt, never loaded; a change
interrupted before its commit leaves the previous ensemble, and a rerun finishes it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from obliviate.errors import CorruptCheckpointError
from obliviate.exact import SISA, SISAEnsemble
from obliviate.exact.checkpoints import CheckpointStore


def checkpoint_path(ens: SISAEnsemble, key: str):
    store = CheckpointStore(ens.folder)
    return ens.folder / store.read_manifest(store.read_state().slices[key]).checkpoint


def weights(ens: SISAEnsemble) -> list[dict[str, torch.Tensor]]:
    return [{k: v.clone() for k, v in ens.shard_model(s).state_dict().items()} for s in range(ens.shards)]


@pytest.fixture
def sliced(tmp_path, small_train, sisa_recipe):
    """Two shards of three slices, freshly fitted."""
    return SISA(sisa_recipe, shards=2, slices=3).fit(small_train, tmp_path / "ens")


@pytest.mark.parametrize("damage", ["truncate", "alter"])
def test_a_damaged_middle_checkpoint_is_rebuilt_from_the_last_good_slice(sliced, small_train, from_scratch, damage):
    path = checkpoint_path(sliced, "shard-00/slice-1")
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        raw[-5] ^= 0x01  # one bit of a weight
        path.write_bytes(bytes(raw))
    ens = SISAEnsemble.load(sliced.folder)
    assert list(ens.damaged()) == ["shard-00/slice-1"]
    with pytest.raises(CorruptCheckpointError):
        ens._start_weights(0, 2)  # the damaged weights are never loaded
    victim = ens.slice_ids(1)[0][:1]  # a deletion elsewhere repairs shard 0 on the way
    report = ens.delete(victim, small_train)
    assert report.slices_repaired == {0: [1]}
    assert report.slices_rebuilt == {0: [1, 2], 1: [0, 1, 2]}
    assert SISAEnsemble.load(sliced.folder).damaged() == {}
    for s in range(2):
        expected = from_scratch(ens, small_train, s).state_dict()
        assert all(torch.equal(v, expected[k]) for k, v in ens.shard_model(s).state_dict().items())


def test_a_damaged_final_checkpoint_stops_prediction_until_repaired(sliced, small_train):
    sha, before = sliced.model_sha256(), weights(sliced)
    path = checkpoint_path(sliced, "shard-01/slice-2")
    path.write_bytes(path.read_bytes()[:100])
    ens = SISAEnsemble.load(sliced.folder)
    with pytest.raises(CorruptCheckpointError, match="repair"):
        ens.module()
    report = ens.repair(small_train)
    assert report.slices_repaired == {1: [2]} and report.removed_ids.size == 0
    assert ens.model_sha256() == sha  # retraining from slice 1 gives the same weights
    assert all(torch.equal(a[k], b[k]) for a, b in zip(weights(ens), before, strict=True) for k in a)


def test_a_corrupt_state_file_is_a_typed_error_with_the_fix(sliced):
    state = sliced.folder / "state.json"
    state.write_text(state.read_text()[:40])
    with pytest.raises(CorruptCheckpointError, match="restore state.json"):
        SISAEnsemble.load(sliced.folder)


def test_a_crash_before_the_commit_leaves_the_old_ensemble_and_the_rerun_finishes(
    sliced, small_train, monkeypatch
):
    sha, manifests = sliced.model_sha256(), sliced.manifests()
    ids = sliced.slice_ids(0)[1][:2]

    def killed(self, state):
        raise KeyboardInterrupt("killed before the commit")

    monkeypatch.setattr(CheckpointStore, "write_state", killed)
    with pytest.raises(KeyboardInterrupt):
        sliced.delete(ids, small_train, batch_id="b-1")
    assert sliced.model_sha256() == sha and sliced.deleted_ids().size == 0  # the object rolled back too
    monkeypatch.undo()
    files = {p for p in sliced.folder.rglob("*") if p.is_file()}
    ens = SISAEnsemble.load(sliced.folder)  # the folder is the old ensemble; the new files are garbage
    assert ens.model_sha256() == sha and ens.manifests() == manifests and ens.damaged() == {}
    left = {p for p in sliced.folder.rglob("*") if p.is_file()}
    assert left < files and not (sliced.folder / "deletions" / "b-1.json").exists()
    report = ens.delete(ids, small_train, batch_id="b-1")
    assert np.array_equal(report.removed_ids, ids) and report.model_sha256_before == sha


def test_a_crash_after_the_commit_is_recovered_by_the_batch_id(sliced, small_train, monkeypatch):
    ids = sliced.slice_ids(1)[2][:1]
    monkeypatch.setattr(CheckpointStore, "collect_garbage", lambda self, state: [])
    report = sliced.delete(ids, small_train, batch_id="b-2")
    monkeypatch.undo()
    ens = SISAEnsemble.load(sliced.folder)
    rerun = ens.delete(ids, small_train, batch_id="b-2")
    assert rerun.to_dict() == report.to_dict() and ens.generation == 1
    referenced = set(ens.manifests())
    assert len(list((sliced.folder / "manifests").rglob("*.json"))) == len(referenced)  # old manifests collected
    recorded = json.loads((sliced.folder / "deletions" / "b-2.json").read_text())
    assert recorded["model_sha256_after"] == ens.model_sha256()
