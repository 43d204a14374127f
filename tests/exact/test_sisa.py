"""SISA: deletion equals retraining the shard from scratch, bit for bit; prediction; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import obliviate as ob
from obliviate.errors import InvalidInputError, UnknownIdsError, UnsupportedModelError
from obliviate.exact import SISA, DeletionReport, SISAEnsemble, SISAModule
from obliviate.exact.sisa import VOTE_FLOOR, slice_epochs
from obliviate.unlearning.base import EXACT


def assert_bit_identical(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def assert_shards_equal_retraining(ens: SISAEnsemble, data, from_scratch) -> None:
    for s in range(ens.shards):
        assert_bit_identical(ens.shard_model(s), from_scratch(ens, data, s))


def test_slice_schedule_follows_the_reference():
    assert slice_epochs(30, 1) == [30]
    assert slice_epochs(3, 3) == [1, 2, 1]
    assert sum(slice_epochs(20, 5)) == (2 * 20 * 5) // 6  # floor(2ER/(R+1)) epochs in all


def test_one_slice_shards_are_plain_training_and_deletion_retrains_only_the_shard(tmp_path, small_train, sisa_recipe):
    ens = SISA(sisa_recipe, shards=3).fit(small_train, tmp_path / "ens")
    shard_sets = [ens.shard_ids(s) for s in range(3)]
    assert np.array_equal(np.sort(np.concatenate(shard_sets)), np.sort(small_train.ids))  # disjoint, complete
    victim = int(shard_sets[1][5])
    before = ens.manifests()
    report = ens.delete([victim], small_train)
    assert report.shards_rebuilt == [1] and report.slices_rebuilt == {1: [0]}
    after = ens.manifests()
    assert after["shard-00/slice-0"] == before["shard-00/slice-0"] and after["shard-01/slice-0"] != before["shard-01/slice-0"]
    for s in range(3):  # from scratch is ob.train(shard recipe, shard ids minus D)
        expected = ob.train(ens.shard_recipe(s), small_train.subset(np.setdiff1d(shard_sets[s], [victim])))
        assert_bit_identical(ens.shard_model(s), expected)


def test_deleting_from_the_middle_slice_in_one_batch_equals_retraining(tmp_path, small_train, sisa_recipe, from_scratch):
    ens = SISA(sisa_recipe, shards=3, slices=3).fit(small_train, tmp_path / "ens")
    middle = ens.slice_ids(0)[1][:3]  # shard 0, slice 1 (of 0, 1, 2)
    last = ens.slice_ids(2)[2][:1]
    before_ids = ens.manifest_ids()
    report = ens.delete(np.concatenate([middle, last]), small_train, batch_id="batch-1")
    assert report.shards_rebuilt == [0, 2]
    assert report.slices_rebuilt == {0: [1, 2], 2: [2]}  # each affected shard once, from its first affected slice
    assert report.manifests_after["shard-00/slice-0"] == report.manifests_before["shard-00/slice-0"]
    assert report.model_sha256_before != report.model_sha256_after == ens.model_sha256()
    assert np.array_equal(ens.manifest_ids(), np.setdiff1d(before_ids, report.removed_ids))
    assert np.array_equal(ens.deleted_ids(), np.sort(report.removed_ids))
    assert_shards_equal_retraining(ens, small_train, from_scratch)
    reopened = SISAEnsemble.load(tmp_path / "ens")  # the folder holds the same ensemble
    assert reopened.model_sha256() == ens.model_sha256() and reopened.manifests() == ens.manifests()
    assert_shards_equal_retraining(reopened, small_train, from_scratch)


def test_an_owner_deleted_over_two_requests_lives_in_one_shard(tmp_path, owned_train, sisa_recipe, from_scratch):
    ens = SISA(sisa_recipe, shards=4, slices=3, assign="owner").fit(owned_train, tmp_path / "ens")
    owner = owned_train.owner_names[0]
    owned = owned_train.ids_of_owners([owner])
    homes = [s for s in range(4) if np.isin(owned, ens.shard_ids(s)).any()]
    assert len(homes) == 1  # one person's data is in one shard
    first = ens.delete(owned[: len(owned) // 2], owned_train)
    second = ens.delete(owned, owned_train)  # the owner's whole data, half of it already gone
    assert first.shards_rebuilt == second.shards_rebuilt == homes
    assert np.array_equal(second.already_deleted_ids, owned[: len(owned) // 2])
    assert np.array_equal(second.removed_ids, owned[len(owned) // 2 :])
    assert not np.isin(owned, ens.manifest_ids()).any()
    assert_shards_equal_retraining(ens, owned_train, from_scratch)


def test_deletion_is_idempotent_and_unknown_ids_change_nothing(tmp_path, small_train, sisa_recipe):
    ens = SISA(sisa_recipe, shards=2).fit(small_train, tmp_path / "ens")
    ens.delete(small_train.ids[:2], small_train)
    sha, manifests, generation = ens.model_sha256(), ens.manifests(), ens.generation
    again = ens.delete(small_train.ids[:2], small_train)
    assert again.shards_rebuilt == [] and again.removed_ids.size == 0
    assert np.array_equal(again.already_deleted_ids, small_train.ids[:2])
    assert (ens.model_sha256(), ens.manifests(), ens.generation) == (sha, manifests, generation)
    with pytest.raises(UnknownIdsError, match="999999"):
        ens.delete([int(small_train.ids[3]), 999_999], small_train)
    assert (ens.model_sha256(), ens.generation) == (sha, generation)
    assert int(small_train.ids[3]) in ens.manifest_ids()
    with pytest.raises(InvalidInputError, match="training set"):
        ens.delete([int(small_train.ids[3])], small_train.without(small_train.ids[:1]))


def test_a_committed_batch_returns_its_report_without_work(tmp_path, small_train, sisa_recipe):
    ens = SISA(sisa_recipe, shards=2).fit(small_train, tmp_path / "ens")
    report = ens.delete(small_train.ids[:3], small_train, batch_id="req-7")
    generation = ens.generation
    rerun = SISAEnsemble.load(tmp_path / "ens").delete(small_train.ids[:3], small_train, batch_id="req-7")
    assert rerun.to_dict() == report.to_dict()
    assert SISAEnsemble.load(tmp_path / "ens").generation == generation
    with pytest.raises(InvalidInputError, match="new batch_id"):
        ens.delete(small_train.ids[:5], small_train, batch_id="req-7")
    with pytest.raises(InvalidInputError, match="batch_id"):
        ens.delete(small_train.ids[:1], small_train, batch_id="../escape")
    restored = DeletionReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert restored.to_dict() == report.to_dict() and restored.slices_rebuilt == report.slices_rebuilt


def test_vote_and_mean_aggregate_the_shard_models(tmp_path, small_train, test_set, sisa_recipe):
    x = test_set.tensors[0][:50]
    for aggregation in ("vote", "mean"):
        ens = SISA(sisa_recipe, shards=3, aggregation=aggregation).fit(small_train, tmp_path / aggregation)
        with torch.no_grad():
            logits = torch.stack([ens.shard_model(s)(x) for s in range(3)])
            out = ens.module()(x)
        if aggregation == "vote":
            votes = F.one_hot(logits.argmax(-1), 10).sum(0).float()
            assert torch.allclose(out.exp(), (votes / 3).clamp_min(VOTE_FLOOR))
            assert torch.equal(out.argmax(-1), votes.argmax(-1))
        else:
            assert torch.allclose(out.exp(), logits.softmax(-1).mean(0), atol=1e-6)


def test_five_shards_on_digits_come_near_one_model(tmp_path, train_set, test_set):
    recipe = ob.Recipe(model="mlp", epochs=30, lr=0.05, seed=0)
    single = ob.evaluation.accuracy(ob.train(recipe, train_set), test_set)
    ens = SISA(recipe, shards=5, aggregation="mean").fit(train_set, tmp_path / "ens")
    assert ob.evaluation.accuracy(ens.module(), test_set) > single - 0.05


def test_sisa_is_an_exact_unlearner_that_deletes_in_place(tmp_path, small_train, sisa_recipe, original):
    ens = SISA(sisa_recipe, shards=2).fit(small_train, tmp_path / "ens")
    request = ob.ForgetRequest(small_train.ids[:4])
    module = ens.module()
    result = ob.unlearn(module, request, small_train, method="sisa")
    assert result.guarantee == EXACT and isinstance(result.model, SISAModule)
    assert np.array_equal(ens.deleted_ids(), small_train.ids[:4])  # the user's ensemble saw the deletion
    assert result.cost.gradient_steps > 0 and result.cost.examples_touched > 0
    x = small_train.tensors[0][:20]
    with torch.no_grad():
        assert torch.equal(result.model(x), ens.module()(x))
    assert ob.available_methods()["sisa"]().guarantee == EXACT
    with pytest.raises(UnsupportedModelError, match="SISA"):
        ob.unlearn(original, request, small_train, method="sisa")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"shards": 0}, "shards must be >= 1"),
        ({"slices": 0}, "slices must be >= 1"),
        ({"aggregation": "median"}, "vote, mean"),
        ({"assign": "random"}, "hash, owner"),
        ({"shards": 2.5}, "integer"),
    ],
)
def test_bad_settings_are_refused(options, match, sisa_recipe):
    with pytest.raises(InvalidInputError, match=match):
        SISA(sisa_recipe, **options)


def test_bad_fits_are_refused(tmp_path, small_train, sisa_recipe):
    with pytest.raises(InvalidInputError, match="more than the 400 examples"):
        SISA(sisa_recipe, shards=401).fit(small_train, tmp_path / "a")
    with pytest.raises(InvalidInputError, match="slices"):
        SISA(sisa_recipe, shards=200, slices=3).fit(small_train, tmp_path / "b")
    with pytest.raises(InvalidInputError, match="owners"):
        SISA(sisa_recipe, assign="owner").fit(small_train, tmp_path / "c")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not empty"):
        SISA(sisa_recipe, shards=2).fit(small_train, tmp_path / "d")
    SISA(sisa_recipe, shards=2).fit(small_train, tmp_path / "e")
    with pytest.raises(InvalidInputError, match="already holds"):
        SISA(sisa_recipe, shards=2).fit(small_train, tmp_path / "e")
    with pytest.raises(InvalidInputError, match="no SISA ensemble"):
        SISAEnsemble.load(tmp_path / "a")
