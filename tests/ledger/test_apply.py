"""Applying due requests in one batch, certificates, verification, and the bad-input paths."""

from __future__ import annotations

import fcntl
import json
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import obliviate as ob
from obliviate.errors import CorruptCheckpointError, InvalidInputError
from obliviate.exact import SISAEnsemble
from obliviate.ledger import (
    APPLIED,
    FAILED,
    SCHEDULED,
    VERIFIED,
    ApplyInProgressError,
    ModelTarget,
    SisaTarget,
    apply,
    certificate_path,
    read_certificate,
    verify_certificate,
)
from obliviate.storage import read_metadata


def test_sisa_apply_removes_every_due_request_in_one_batch_and_certifies_each(ledger, sisa_folder, owned_data):
    alice, _ = ledger.add(ob.ForgetRequest(owners="writer-003"))
    some, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[:4]))
    before = SISAEnsemble.load(sisa_folder).model_sha256()
    outcome = apply(ledger, SisaTarget(sisa_folder), owned_data)
    assert len(outcome.batches) == 1 and not outcome.failed
    assert {r.request_id for r, _, _ in outcome.applied} == {alice.request_id, some.request_id}
    ens = SISAEnsemble.load(sisa_folder)
    gone = set(owned_data.ids_of_owners(["writer-003"]).tolist()) | set(owned_data.ids[:4].tolist())
    assert set(ens.deleted_ids().tolist()) == gone and not gone & set(ens.manifest_ids().tolist())
    cert = read_certificate(certificate_path(ledger.folder, alice.request_id))
    assert cert["method"] == "sisa" and cert["guarantee"] == "exact"
    assert cert["removed_ids"] == sorted(owned_data.ids_of_owners(["writer-003"]).tolist())
    assert cert["model"]["sha256_before"] == before and cert["model"]["sha256"] == ens.model_sha256()
    assert cert["manifests"]["after"] == ens.manifests() and cert["rebuilt"]["shards"]
    assert 0.0 <= cert["evidence"]["forget_accuracy"] <= 1.0 and cert["overdue"] is False
    assert cert["batch_id"] == ledger.get(alice.request_id).batch_id
    for request, path, _ in outcome.applied:
        result = verify_certificate(path, SisaTarget(sisa_folder), ledger=ledger)
        assert result.ok, result.checks
        assert ledger.get(request.request_id).status == VERIFIED
    assert apply(ledger, SisaTarget(sisa_folder), owned_data).nothing_due  # applying twice: nothing is due
    assert SISAEnsemble.load(sisa_folder).model_sha256() == ens.model_sha256()


def test_unknown_ids_fail_the_request_with_the_reason_and_change_nothing(ledger, sisa_folder, owned_data):
    bad, _ = ledger.add(ob.ForgetRequest(ids=[int(owned_data.ids.max()) + 1000]))
    stranger, _ = ledger.add(ob.ForgetRequest(owners="nobody"))
    before = SISAEnsemble.load(sisa_folder)
    outcome = apply(ledger, SisaTarget(sisa_folder), owned_data)
    assert {r.request_id for r, _ in outcome.failed} == {bad.request_id, stranger.request_id}
    assert "not in dataset" in ledger.get(bad.request_id).reason
    assert "Unknown owner" in ledger.get(stranger.request_id).reason
    assert ledger.get(bad.request_id).status == FAILED and not outcome.applied
    after = SISAEnsemble.load(sisa_folder)
    assert after.model_sha256() == before.model_sha256() and after.manifests() == before.manifests()
    assert ledger.certificates() == {} and not (ledger.folder / "certificates").exists()


def test_an_overdue_request_is_still_applied_and_flagged(ledger, sisa_folder, owned_data):
    late, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[10:12], received=datetime.now(UTC) - timedelta(days=45)))
    assert ledger.requests(overdue=True)[0].request_id == late.request_id
    outcome = apply(ledger, SisaTarget(sisa_folder), owned_data)
    ((request, path, cert),) = outcome.applied
    assert request.status == APPLIED and cert["overdue"] is True and read_certificate(path)["overdue"] is True
    assert ledger.requests(overdue=True) == []


def test_the_same_ids_in_a_later_request_are_already_deleted_and_still_certified(ledger, sisa_folder, owned_data):
    ledger.add(ob.ForgetRequest(ids=owned_data.ids[:3]))
    apply(ledger, SisaTarget(sisa_folder), owned_data)
    sha = SISAEnsemble.load(sisa_folder).model_sha256()
    again, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[:3]), key="second-ask")
    ((_, path, cert),) = apply(ledger, SisaTarget(sisa_folder), owned_data).applied
    assert cert["already_deleted_ids"] == sorted(owned_data.ids[:3].tolist()) and cert["removed_by_this_batch"] == []
    assert SISAEnsemble.load(sisa_folder).model_sha256() == sha  # no retraining
    assert verify_certificate(path, SisaTarget(sisa_folder), ledger=ledger).ok


def test_a_batch_left_scheduled_by_a_crash_is_finished_without_deleting_twice(ledger, sisa_folder, owned_data):
    r, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[20:23]))
    ids = owned_data.ids[20:23].tolist()
    ledger.transition([r.request_id], SCHEDULED, batch_id="batch-crashed", resolved_ids={r.request_id: ids})
    report = SISAEnsemble.load(sisa_folder).delete(ids, owned_data, batch_id="batch-crashed")  # committed, then killed
    newer, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[30:31]))
    outcome = apply(ledger, SisaTarget(sisa_folder), owned_data)
    assert [b.resumed for b in outcome.batches] == [True, False]
    resumed = outcome.batches[0]
    assert resumed.batch_id == "batch-crashed" and resumed.deletion.model_sha256_after == report.model_sha256_after
    assert sorted(resumed.deletion.removed_ids) == ids  # the recorded report: each id removed once
    assert ledger.get(newer.request_id).status == APPLIED
    for _, path, _ in outcome.applied:
        assert verify_certificate(path, SisaTarget(sisa_folder), ledger=ledger).ok


def test_a_damaged_checkpoint_is_repaired_and_reported_and_a_damaged_state_stops_apply(ledger, sisa_folder, owned_data):
    ens = SISAEnsemble.load(sisa_folder)
    checkpoint = sorted((sisa_folder / "checkpoints" / "shard-01").glob("slice-0-*.safetensors"))[0]
    checkpoint.write_bytes(checkpoint.read_bytes()[:64])  # truncated: its sha256 no longer matches
    assert list(SISAEnsemble.load(sisa_folder).damaged()) == ["shard-01/slice-0"]
    ledger.add(ob.ForgetRequest(ids=owned_data.ids[40:41]))
    ((_, path, cert),) = apply(ledger, SisaTarget(sisa_folder), owned_data).applied
    assert cert["evidence"]["slices_repaired"]  # the damaged slice was found by its hash and retrained
    assert (
        not SISAEnsemble.load(sisa_folder).damaged()
        and verify_certificate(path, SisaTarget(sisa_folder), ledger=ledger).ok
    )
    assert ens.model_sha256() != SISAEnsemble.load(sisa_folder).model_sha256()
    state = sisa_folder / "state.json"
    state.write_text(state.read_text()[:30])
    with pytest.raises(CorruptCheckpointError, match="state.json"):
        SisaTarget(sisa_folder)


def test_verification_fails_for_a_tampered_certificate_or_a_model_that_still_holds_the_ids(
    ledger, sisa_folder, fitted_sisa, owned_data, tmp_path
):
    r, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[50:53]))
    ((_, path, _),) = apply(ledger, SisaTarget(sisa_folder), owned_data).applied
    untouched = tmp_path / "untouched"
    shutil.copytree(fitted_sisa, untouched)
    result = verify_certificate(path, SisaTarget(untouched), ledger=ledger)
    failed = {c.name for c in result.checks if not c.ok}
    assert failed == {"model hash", "ids gone"} and not result.marked_verified
    assert ledger.get(r.request_id).status == APPLIED
    cert = read_certificate(path)
    cert["removed_ids"] = cert["removed_ids"][:1]
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(cert))
    result = verify_certificate(forged, SisaTarget(sisa_folder), ledger=ledger)
    assert [c.name for c in result.checks if not c.ok] == ["signature"]
    with pytest.raises(InvalidInputError, match="certificate"):
        verify_certificate(tmp_path / "absent.json", SisaTarget(sisa_folder), ledger=ledger)


def test_a_model_file_is_unlearned_in_place_by_any_method_and_verifies(ledger, model_file, owned_data):
    first, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[:5]))
    outcome = apply(
        ledger, ModelTarget(model_file, method="finetune"), owned_data, test=owned_data.subset(owned_data.ids[300:])
    )
    ((_, path, cert),) = outcome.applied
    assert cert["method"] == "finetune" and cert["guarantee"] == "empirical"
    assert 0.0 <= cert["evidence"]["mia_efficacy"] <= 1.0 and "forget_accuracy_before" in cert["evidence"]
    meta = read_metadata(model_file)
    assert json.loads(meta["forgotten_ids"]) == sorted(owned_data.ids[:5].tolist())
    assert meta["obliviate.sha256"] == cert["model"]["sha256"] != cert["model"]["sha256_before"]
    second, _ = ledger.add(ob.ForgetRequest(ids=owned_data.ids[3:8]))  # overlaps the first
    ((_, path2, cert2),) = apply(ledger, ModelTarget(model_file, method="gradient_ascent"), owned_data).applied
    assert cert2["already_deleted_ids"] == sorted(owned_data.ids[3:5].tolist())
    assert cert2["removed_by_this_batch"] == sorted(owned_data.ids[5:8].tolist())
    for p in (path, path2):  # the first certificate's model descends from it through the second batch
        assert verify_certificate(p, ModelTarget(model_file), ledger=ledger).ok
    other = ModelTarget(model_file)
    other.meta = {**other.meta, "forgotten_ids": "[]"}  # a model that never forgot
    result = verify_certificate(path2, other, ledger=ledger)
    assert [c.name for c in result.checks if not c.ok] == ["ids gone"]


def test_apply_refuses_other_data_a_second_apply_and_bad_targets(ledger, sisa_folder, owned_data, model_file):
    ledger.add(ob.ForgetRequest(ids=owned_data.ids[:2]))
    with pytest.raises(InvalidInputError, match="fingerprint"):
        apply(ledger, SisaTarget(sisa_folder), owned_data.subset(owned_data.ids[:100]))
    with open(ledger.folder / "apply.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ApplyInProgressError, match="another `obliviate apply`"):
            apply(ledger, SisaTarget(sisa_folder), owned_data)
    assert ledger.counts()["received"] == 1  # nothing was touched
    with pytest.raises(InvalidInputError, match="not a folder"):
        SisaTarget(model_file)
    with pytest.raises(InvalidInputError, match="does not exist"):
        ModelTarget(sisa_folder / "nope.safetensors")
    with pytest.raises(ob.errors.UnknownMethodError):
        ModelTarget(model_file, method="forget_everything")
    with pytest.raises(InvalidInputError, match="SisaTarget or ModelTarget"):
        apply(ledger, str(sisa_folder), owned_data)
    assert np.array_equal(SISAEnsemble.load(sisa_folder).deleted_ids(), [])
