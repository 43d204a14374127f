"""SISA: Sharded, Isolated, Sliced and Aggregated training, for exact unlearning by retraining a part.

Bourtoule et al., "Machine Unlearning", IEEE S&P 2021 (reference code cleverhans-lab/machine-unlearning,
``sisa.py``). The training set is split into S disjoint **shards**; one model is trained per shard,
in isolation. Each shard is split into R **slices** trained incrementally: the model after slice r
has trained on slices 0..r, and its weights are checkpointed. Deleting ids retrains each affected
shard from the checkpoint before its first affected slice, so the result is, bit for bit, the
model the same schedule would train from scratch on the shard's remaining ids. Prediction
**aggregates** the shard models: a label vote (default) or the mean softmax.

Slice schedule (as in the reference code): with E = ``recipe.epochs``, slice r trains for
``e_r = floor((r+1) * 2E/(R+1)) - floor(r * 2E/(R+1))`` epochs on slices 0..r, so the R slices
together cost about E epochs over the shard (and R = 1 is E epochs on the whole shard). Each
slice starts a fresh optimiser and schedule from the previous slice's weights, because that is
all a checkpoint holds: resuming from it is then exactly what a run from scratch does.

Seeds: shard s trains with ``recipe.with_seed(seed_s)``, ``seed_s`` a hash of (recipe.seed,
``seed``, s); slice 0 uses ``seed_s`` (so with R = 1 a shard is exactly ``train(shard_recipe,
shard_data)``) and slice r > 0 a hash of (``seed_s``, r) for its epoch order. "From scratch" for
R > 1 is this schedule replayed from the seeded initialisation on the remaining ids of every slice.

Assignment: ``"hash"`` orders the ids by a seeded hash and cuts that order into S near-equal
shards, each into R near-equal slices; ``"owner"`` places whole owners (data subjects), in the
seeded hash order of their names, into the shard with the fewest examples so far, so one
person's data lives in one shard and their deletion retrains one shard.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from obliviate.data.dataset import Dataset, _as_id_array
from obliviate.errors import (
    CorruptCheckpointError,
    ForgetAllError,
    InvalidInputError,
    NotAnEnsembleError,
    UnknownIdsError,
)
from obliviate.exact.checkpoints import (
    CheckpointStore,
    EnsembleState,
    Manifest,
    SliceRecord,
    check_batch_id,
    ids_sha256,
    slice_key,
)
from obliviate.models import SOLVER_MODELS, build_model
from obliviate.parallel import check_backend, run_tasks
from obliviate.progress import progress_bar
from obliviate.storage import attach_spec
from obliviate.training.loop import num_batches, seeded_global_rng
from obliviate.training.recipe import Recipe
from obliviate.training.trainer import fit as fit_epochs
from obliviate.unlearning.base import EXACT, Unlearner, UnlearnTask
from obliviate.unlearning.registry import register

__all__ = [
    "AGGREGATIONS",
    "ASSIGNMENTS",
    "VOTE_FLOOR",
    "SISA",
    "SISAEnsemble",
    "SISAModule",
    "SISAUnlearner",
    "DeletionReport",
    "ShardJob",
    "slice_epochs",
    "slice_recipe",
    "slice_seed",
    "train_shard",
]

AGGREGATIONS = ("vote", "mean")
ASSIGNMENTS = ("hash", "owner")
VOTE_FLOOR = 1e-6
"""The vote share a class with no vote gets before the log: ``log(1e-6) ~ -13.8`` (finite logits)."""


# ---------------------------------------------------------------------- schedule and seeds
def slice_epochs(epochs: int, slices: int) -> list[int]:
    """Epochs of each slice: ``e_r = floor((r+1) 2E/(R+1)) - floor(r 2E/(R+1))`` (reference ``sisa.py``)."""
    return [((r + 1) * 2 * epochs) // (slices + 1) - (r * 2 * epochs) // (slices + 1) for r in range(slices)]


def _derive_seed(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def slice_seed(shard_seed: int, slice_index: int) -> int:
    """Slice 0 uses the shard's seed (so R = 1 is plain ``train``); slice r > 0 a hash of (shard seed, r)."""
    return shard_seed if slice_index == 0 else _derive_seed("sisa-slice", shard_seed, slice_index)


def slice_recipe(shard_recipe: Recipe, slice_index: int, epochs: int) -> Recipe:
    """The recipe slice ``slice_index`` trains with (``epochs`` >= 1): its epochs and its seed."""
    return replace(shard_recipe, epochs=int(epochs), seed=slice_seed(shard_recipe.seed, slice_index))


def _hash_keys(values: np.ndarray, seed: int) -> np.ndarray:
    """A seeded splitmix64 hash of int64 values (vectorised), for an order no one can steer."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) % 2**64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _hash_order(ids: np.ndarray, seed: int) -> np.ndarray:
    """``ids`` reordered by their seeded hash (ties, which need a 64-bit collision, by id)."""
    ids = np.sort(ids)
    return ids[np.lexsort((ids, _hash_keys(ids, seed)))]


# ---------------------------------------------------------------------- shard training (a Ray task)
@dataclass(frozen=True)
class ShardJob:
    """Everything one shard's (re)training needs; picklable, so it can travel to a Ray worker.

    ``seen[r]`` are the sorted remaining ids of slices 0..r; slices ``start``.. are trained,
    starting from ``weights`` (the checkpoint after slice ``start - 1``; ``None`` for the seeded
    initialisation).
    """

    recipe: Recipe
    input_shape: tuple[int, ...]
    num_classes: int
    data: Dataset
    seen: tuple[np.ndarray, ...]
    epochs: tuple[int, ...]
    start: int = 0
    weights: dict[str, torch.Tensor] | None = None


def _initial_model(recipe: Recipe, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The shard's seeded initialisation, built exactly as :func:`obliviate.train` builds it."""
    model = build_model(recipe.model, input_shape, num_classes, seed=recipe.seed, options=recipe.options)
    return attach_spec(model, recipe=recipe, input_shape=input_shape, num_classes=num_classes)


def train_shard(job: ShardJob) -> list[dict[str, torch.Tensor] | None]:
    """Train slices ``job.start``..R-1 of one shard; returns the weights after each (``None`` while
    the shard has seen no example). Slice r runs :func:`obliviate.training.trainer.fit` with
    :func:`slice_recipe` on ``seen[r]``, under the global RNG seeded like :func:`obliviate.train`."""
    model = _initial_model(job.recipe, job.input_shape, job.num_classes)
    if job.weights is not None:
        model.load_state_dict(job.weights)
    states: list[dict[str, torch.Tensor] | None] = []
    for r in range(job.start, len(job.seen)):
        seen = job.seen[r]
        if len(seen) and job.epochs[r] > 0:
            recipe = slice_recipe(job.recipe, r, job.epochs[r])
            with seeded_global_rng(recipe.seed):
                fit_epochs(model, job.data.subset(seen), recipe=recipe, where=f"SISA slice {r}")
        states.append({k: v.detach().clone() for k, v in model.state_dict().items()} if len(seen) else None)
    return states


# ---------------------------------------------------------------------- the deletion report
@dataclass
class DeletionReport:
    """What one deletion did: ids removed, shards and slices retrained, hashes before and after.

    ``slices_repaired`` lists slices retrained because their checkpoint or manifest was damaged;
    ``gradient_steps`` and ``examples_seen`` count the retraining work.
    """

    removed_ids: np.ndarray
    already_deleted_ids: np.ndarray
    shards_rebuilt: list[int]
    slices_rebuilt: dict[int, list[int]]
    manifests_before: dict[str, str]
    manifests_after: dict[str, str]
    model_sha256_before: str
    model_sha256_after: str
    seconds: float
    batch_id: str | None
    gradient_steps: int = 0
    examples_seen: int = 0
    slices_repaired: dict[int, list[int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: id arrays as lists, shard keys as strings."""
        d = asdict(self)
        d["removed_ids"] = [int(i) for i in self.removed_ids]
        d["already_deleted_ids"] = [int(i) for i in self.already_deleted_ids]
        d["slices_rebuilt"] = {str(k): list(v) for k, v in self.slices_rebuilt.items()}
        d["slices_repaired"] = {str(k): list(v) for k, v in self.slices_repaired.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeletionReport:
        try:
            return cls(
                removed_ids=np.asarray(d["removed_ids"], dtype=np.int64),
                already_deleted_ids=np.asarray(d["already_deleted_ids"], dtype=np.int64),
                shards_rebuilt=[int(s) for s in d["shards_rebuilt"]],
                slices_rebuilt={int(k): [int(r) for r in v] for k, v in d["slices_rebuilt"].items()},
                manifests_before=dict(d["manifests_before"]),
                manifests_after=dict(d["manifests_after"]),
                model_sha256_before=str(d["model_sha256_before"]),
                model_sha256_after=str(d["model_sha256_after"]),
                seconds=float(d["seconds"]),
                batch_id=d["batch_id"],
                gradient_steps=int(d.get("gradient_steps", 0)),
                examples_seen=int(d.get("examples_seen", 0)),
                slices_repaired={int(k): [int(r) for r in v] for k, v in d.get("slices_repaired", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"not a SISA deletion report: {exc}.") from exc


# ---------------------------------------------------------------------- the trainer
class SISA:
    """How to train a SISA ensemble: the recipe, S shards of R slices, the aggregation, the assignment.

    ``SISA(recipe, shards=5, slices=1, aggregation="vote", assign="hash", seed=0).fit(data, folder)``
    trains every shard and stores it in ``folder``; see the module docstring for the schedule.
    """

    def __init__(
        self,
        recipe: Recipe,
        *,
        shards: int = 5,
        slices: int = 1,
        aggregation: str = "vote",
        assign: str = "hash",
        seed: int = 0,
    ) -> None:
        if not isinstance(recipe, Recipe):
            raise InvalidInputError(f"recipe must be an obliviate.Recipe, got {type(recipe).__name__}.")
        if recipe.model in SOLVER_MODELS or recipe.privacy is not None:
            raise InvalidInputError(
                f"SISA trains its shards by gradient steps in slices; a {'DP-SGD' if recipe.privacy else recipe.model} "
                "recipe cannot be resumed from a slice checkpoint. Use a recipe without privacy and with model "
                "mlp, cnn or resnet18."
            )
        for name, value in (("shards", shards), ("slices", slices), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InvalidInputError(f"{name} must be an integer, got {value!r}.")
        if shards < 1:
            raise InvalidInputError(f"shards must be >= 1, got {shards}.")
        if slices < 1:
            raise InvalidInputError(f"slices must be >= 1, got {slices}.")
        if seed < 0:
            raise InvalidInputError(f"seed must be >= 0, got {seed}.")
        if aggregation not in AGGREGATIONS:
            raise InvalidInputError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}.")
        if assign not in ASSIGNMENTS:
            raise InvalidInputError(f"unknown assign {assign!r}; choose one of {', '.join(ASSIGNMENTS)}.")
        self.recipe = recipe
        self.shards, self.slices, self.seed = int(shards), int(slices), int(seed)
        self.aggregation, self.assign = aggregation, assign

    def __repr__(self) -> str:
        return (
            f"SISA(shards={self.shards}, slices={self.slices}, aggregation={self.aggregation!r}, "
            f"assign={self.assign!r}, seed={self.seed}, recipe={self.recipe})"
        )

    def config(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.to_dict(),
            "shards": self.shards,
            "slices": self.slices,
            "aggregation": self.aggregation,
            "assign": self.assign,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SISA:
        c = dict(config)
        return cls(Recipe.from_dict(c.pop("recipe")), **c)

    def shard_recipe(self, shard: int) -> Recipe:
        """Shard ``shard``'s recipe: the recipe with seed ``hash(recipe.seed, seed, shard)``."""
        return self.recipe.with_seed(_derive_seed("sisa-shard", self.recipe.seed, self.seed, shard))

    def epochs(self) -> list[int]:
        return slice_epochs(self.recipe.epochs, self.slices)

    # ------------------------------------------------------------------ assignment
    def assignment(self, data: Dataset) -> list[list[np.ndarray]]:
        """The sorted ids of each shard's slices: ``[shard][slice] -> ids``."""
        n = len(data)
        if self.shards > n:
            raise InvalidInputError(f"shards={self.shards} is more than the {n} examples; use at most {n} shards.")
        if self.assign == "owner":
            shard_ids = self._by_owner(data)
        else:
            if self.shards * self.slices > n:
                raise InvalidInputError(
                    f"{self.shards} shards x {self.slices} slices need at least {self.shards * self.slices} examples, "
                    f"got {n}; use fewer shards or slices."
                )
            shard_ids = np.array_split(_hash_order(data.ids, self.seed), self.shards)
        small = [s for s, ids in enumerate(shard_ids) if len(ids) < self.slices]
        if small:
            raise InvalidInputError(
                f"shard(s) {small} hold fewer than slices={self.slices} examples; use fewer slices or shards."
            )
        return [
            [np.sort(part) for part in np.array_split(_hash_order(ids, self.seed + 1), self.slices)]
            for ids in shard_ids
        ]

    def _by_owner(self, data: Dataset) -> list[np.ndarray]:
        if data.owners is None:
            raise InvalidInputError(
                "assign='owner' needs data with owners (Dataset.owners); build it with owners=... or use assign='hash'."
            )
        names, owner_of = np.unique(data.owners.astype(str), return_inverse=True)
        if len(names) < self.shards:
            raise InvalidInputError(
                f"assign='owner' puts whole owners in shards, but there are {len(names)} owners for "
                f"shards={self.shards}; use at most {len(names)} shards."
            )
        owned_by = np.split(data.ids[np.argsort(owner_of, kind="stable")], np.cumsum(np.bincount(owner_of))[:-1])
        keys = [hashlib.sha256(f"{self.seed}:{o}".encode()).hexdigest() for o in names]
        sizes = np.zeros(self.shards, dtype=np.int64)
        members: list[list[np.ndarray]] = [[] for _ in range(self.shards)]
        for o in sorted(range(len(names)), key=lambda o: (keys[o], names[o])):
            owned = owned_by[o]
            target = int(np.argmin(sizes))  # the emptiest shard so far
            members[target].append(owned)
            sizes[target] += len(owned)
        return [np.sort(np.concatenate(m)) for m in members]

    # ------------------------------------------------------------------ training
    def fit(
        self,
        data: Dataset,
        folder: str | Path,
        *,
        backend: str = "local",
        address: str | None = None,
        show_progress: bool = False,
    ) -> SISAEnsemble:
        """Train every shard slice by slice, store checkpoints and manifests in ``folder``, commit.

        ``folder`` must be new or empty. ``backend="ray"`` trains the shards as Ray tasks (on a
        local Ray, or the cluster at ``address``) with the same results as ``"local"``.
        """
        if not isinstance(data, Dataset):
            raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}.")
        check_backend(backend, address)
        store = CheckpointStore(folder)
        store.check_new_folder()
        assignment = self.assignment(data)
        with store.lock():
            state = EnsembleState(
                config=self.config(),
                data_fingerprint=data.fingerprint,
                input_shape=data.input_shape,
                num_classes=data.num_classes,
                assignment_sha256=store.write_assignment(assignment),
                slices={},
            )
            ensemble = SISAEnsemble(store, state, assignment)
            records, _ = ensemble._train({s: 0 for s in range(self.shards)}, data, backend, address, show_progress)
            state.slices = records
            store.write_state(state)
            store.collect_garbage(state)
        return SISAEnsemble.load(folder)


# ---------------------------------------------------------------------- the trained ensemble
class SISAEnsemble:
    """A trained SISA ensemble stored in a folder: query it, predict with it, delete from it.

    Build one with :meth:`SISA.fit` or :meth:`load`. The folder is the truth: :meth:`delete`
    re-reads it under the writer lock before it changes anything.
    """

    def __init__(self, store: CheckpointStore, state: EnsembleState, assignment: list[list[np.ndarray]]) -> None:
        self._store = store
        self._state = state
        self._assignment = assignment
        self.sisa = SISA.from_config(state.config)
        self._manifests: dict[str, Manifest] = {}
        self._damaged: dict[str, str] = {}
        self._weights_read: dict[str, str | None] = {}
        self._models: dict[str, nn.Module] = {}
        self._index()

    def _index(self) -> None:
        """The id -> (shard, slice) lookup of the fit-time assignment."""
        parts = [(ids, s, r) for s, shard in enumerate(self._assignment) for r, ids in enumerate(shard)]
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
        shard_of = np.concatenate([np.full(len(p[0]), p[1]) for p in parts]) if parts else ids
        slice_of = np.concatenate([np.full(len(p[0]), p[2]) for p in parts]) if parts else ids
        order = np.argsort(ids, kind="stable")
        self._all_ids, self._shard_of, self._slice_of = ids[order], shard_of[order], slice_of[order]

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, folder: str | Path) -> SISAEnsemble:
        """Open the ensemble in ``folder``, verifying the state, the assignment and every manifest and
        checkpoint by sha256. A damaged state is a :class:`CorruptCheckpointError`; a damaged slice
        is recorded (see :meth:`damaged`) and retrained by the next :meth:`delete` or :meth:`repair`."""
        store = CheckpointStore(folder)
        state = store.read_state()
        ensemble = cls(store, state, store.read_assignment(state.assignment_sha256))
        ensemble._verify()
        with store.lock(blocking=False) as acquired:
            if acquired:  # else another process is changing the folder: leave its new files alone
                store.collect_garbage(state)
        return ensemble

    def _verify(self) -> None:
        """Read every current manifest and checkpoint; record what is damaged and the weights' sha256 read."""
        self._manifests, self._damaged, self._weights_read = {}, {}, {}
        for key, record in self._state.slices.items():
            try:
                manifest = self._store.read_manifest(record)
            except CorruptCheckpointError as exc:
                self._damaged[key] = str(exc)
                continue
            self._manifests[key] = manifest
            try:
                digest = self._store.checkpoint_sha256(manifest)
            except CorruptCheckpointError as exc:
                self._damaged[key] = str(exc)
                continue
            self._weights_read[key] = digest
            if manifest.weights_sha256 != record.weights_sha256:
                self._damaged[key] = f"manifest {record.manifest} names other weights than state.json records"
            elif digest != manifest.weights_sha256:
                self._damaged[key] = (
                    f"checkpoint {manifest.checkpoint} holds weights with sha256 {str(digest)[:16]}..., not the "
                    f"{str(manifest.weights_sha256)[:16]}... its manifest names"
                )

    def weights_on_disk(self) -> tuple[str | None, dict[str, str]]:
        """Re-read the state, every current manifest and every checkpoint from the folder now.

        Returns the ensemble's sha256 (as :meth:`model_sha256`) computed from the weights actually read
        from the final checkpoints (``None`` if one of them is unreadable), and ``{slice key: problem}``
        for every slice, final or not, whose manifest or checkpoint is not what the state records
        (empty when all are). A damaged state raises :class:`CorruptCheckpointError`."""
        self._refresh()
        last = self.slices - 1
        final = [slice_key(s, last) for s in range(self.shards)]
        if any(k not in self._weights_read for k in final):
            return None, self.damaged()
        return self._sha256_of([self._weights_read[k] for k in final]), self.damaged()

    def _refresh(self) -> None:
        """Re-read the committed state from the folder (another process may have changed it)."""
        state = self._store.read_state()
        if state.assignment_sha256 != self._state.assignment_sha256:
            self._assignment = self._store.read_assignment(state.assignment_sha256)
            self._index()
        self._state = state
        self._verify()

    # ------------------------------------------------------------------ what it is
    @property
    def folder(self) -> Path:
        return self._store.folder

    @property
    def recipe(self) -> Recipe:
        return self.sisa.recipe

    @property
    def shards(self) -> int:
        return self.sisa.shards

    @property
    def slices(self) -> int:
        return self.sisa.slices

    @property
    def aggregation(self) -> str:
        return self.sisa.aggregation

    @property
    def data_fingerprint(self) -> str:
        return self._state.data_fingerprint

    @property
    def generation(self) -> int:
        """How many changes have been committed since fit."""
        return self._state.generation

    def __repr__(self) -> str:
        return (
            f"SISAEnsemble({str(self.folder)!r}, shards={self.shards}, slices={self.slices}, "
            f"aggregation={self.aggregation!r}, examples={len(self.manifest_ids())}, deleted={len(self.deleted_ids())})"
        )

    def shard_recipe(self, shard: int) -> Recipe:
        return self.sisa.shard_recipe(shard)

    def slice_ids(self, shard: int) -> list[np.ndarray]:
        """The remaining ids of each slice of ``shard`` (its own slice, not the cumulative set)."""
        self._check_shard(shard)
        return [np.setdiff1d(ids, self._state.deleted_ids) for ids in self._assignment[shard]]

    def shard_ids(self, shard: int) -> np.ndarray:
        """The sorted remaining ids of ``shard``."""
        return np.sort(np.concatenate(self.slice_ids(shard)))

    def _seen(self, shard: int, deleted: np.ndarray) -> tuple[np.ndarray, ...]:
        own = [np.setdiff1d(ids, deleted) for ids in self._assignment[shard]]
        return tuple(np.sort(np.concatenate(own[: r + 1])) for r in range(len(own)))

    def _check_shard(self, shard: int) -> None:
        if isinstance(shard, bool) or not isinstance(shard, int | np.integer) or not 0 <= shard < self.shards:
            raise InvalidInputError(f"shard must be an integer in 0..{self.shards - 1}, got {shard!r}.")

    def deleted_ids(self) -> np.ndarray:
        """The sorted ids removed so far."""
        return np.sort(self._state.deleted_ids)

    def manifests(self) -> dict[str, str]:
        """``{"shard-03/slice-1": manifest sha256}`` for every current manifest."""
        return {k: r.sha256 for k, r in sorted(self._state.slices.items())}

    def manifest_ids(self) -> np.ndarray:
        """The sorted ids present in any current manifest: what the ensemble's weights have seen."""
        self._raise_if_damaged([k for k in self._state.slices if k not in self._manifests], "read its manifest")
        parts = [np.asarray(m.ids, dtype=np.int64) for m in self._manifests.values()]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)

    def damaged(self) -> dict[str, str]:
        """``{slice key: why}`` for every slice whose manifest or checkpoint failed its sha256."""
        return dict(sorted(self._damaged.items()))

    def model_sha256(self) -> str:
        """One sha256 of the ensemble: the aggregation, the SISA configuration, the recipe and every
        shard's current weights sha256 as the state records them. It changes if and only if a shard's
        weights change. :meth:`weights_on_disk` computes it from the checkpoint files instead."""
        last = self.slices - 1
        return self._sha256_of([self._state.slices[slice_key(s, last)].weights_sha256 for s in range(self.shards)])

    def _sha256_of(self, weights: list[str | None]) -> str:
        payload = {
            "format": "obliviate.sisa-model/1",
            "config": {k: v for k, v in self._state.config.items() if k != "recipe"},
            "recipe": self.recipe.fingerprint,
            "weights": list(weights),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    # ------------------------------------------------------------------ prediction
    def shard_model(self, shard: int) -> nn.Module | None:
        """Shard ``shard``'s current model (verified on load), or ``None`` if all its ids were deleted."""
        self._check_shard(shard)
        key = slice_key(shard, self.slices - 1)
        self._raise_if_damaged([key], "load it")
        manifest = self._manifests[key]
        if manifest.checkpoint is None:
            return None
        cache_key = f"{shard}:{manifest.weights_sha256}"
        if cache_key not in self._models:
            model = _initial_model(self.shard_recipe(shard), self._state.input_shape, self._state.num_classes)
            model.load_state_dict(self._store.load_weights(manifest))
            self._models[cache_key] = model.eval()
        return self._models[cache_key]

    def module(self) -> SISAModule:
        """The aggregated ensemble as one classifier (logits out): see :class:`SISAModule`."""
        members = [m for m in (self.shard_model(s) for s in range(self.shards)) if m is not None]
        return SISAModule([copy.deepcopy(m) for m in members], self.aggregation, ensemble=self).eval()

    def _raise_if_damaged(self, keys: Iterable[str], what: str) -> None:
        bad = [k for k in keys if k in self._damaged]
        if bad:
            raise CorruptCheckpointError(
                self.folder / bad[0],
                f"{self._damaged[bad[0]]}; cannot {what}. ensemble.repair(data) retrains "
                f"{'it' if len(bad) == 1 else f'the {len(bad)} damaged slices'} from the last good slice",
            )

    # ------------------------------------------------------------------ deletion
    def delete(
        self,
        ids: Iterable[int] | np.ndarray,
        data: Dataset,
        *,
        batch_id: str | None = None,
        backend: str = "local",
        address: str | None = None,
        show_progress: bool = False,
    ) -> DeletionReport:
        """Remove ``ids`` and retrain each affected shard once, from the checkpoint before its first
        affected slice. ``data`` is the training set given to :meth:`SISA.fit` (same fingerprint).

        Ids never trained on raise :class:`UnknownIdsError` and change nothing; ids already
        deleted are reported in ``already_deleted_ids``. A ``batch_id`` already committed returns
        its recorded report without work (how a rerun after a crash recovers). Damaged slices
        found on the way are retrained too. The change commits with one atomic write of the state.
        """
        check_backend(backend, address)
        if batch_id is not None:
            check_batch_id(batch_id)
        requested = np.unique(_as_id_array(ids))
        with self._store.lock():
            self._refresh()
            if batch_id is not None and batch_id in self._state.batches:
                return self._recorded(batch_id, requested)
            self._check_data(data)
            unknown = requested[~np.isin(requested, self._all_ids)]
            if unknown.size:
                raise UnknownIdsError(unknown, where="the SISA ensemble's training data")
            already = requested[np.isin(requested, self._state.deleted_ids)]
            removed = np.setdiff1d(requested, already)
            return self._apply(removed, already, data, batch_id, backend, address, show_progress)

    def repair(
        self, data: Dataset, *, backend: str = "local", address: str | None = None, show_progress: bool = False
    ) -> DeletionReport:
        """Retrain every damaged slice from the last good checkpoint before it (deletes nothing)."""
        return self.delete([], data, backend=backend, address=address, show_progress=show_progress)

    def _check_data(self, data: Dataset) -> None:
        if not isinstance(data, Dataset):
            raise InvalidInputError(f"data must be an obliviate Dataset, got {type(data).__name__}.")
        if data.fingerprint != self.data_fingerprint:
            raise InvalidInputError(
                f"data (fingerprint {data.fingerprint[:12]}...) is not this ensemble's training set "
                f"({self.data_fingerprint[:12]}...); pass the same Dataset given to SISA.fit, deleted ids included."
            )

    def _recorded(self, batch_id: str, requested: np.ndarray) -> DeletionReport:
        report = DeletionReport.from_dict(self._store.read_report(batch_id))
        done = np.union1d(report.removed_ids, report.already_deleted_ids)
        if requested.size and not np.array_equal(done, requested):
            raise InvalidInputError(
                f"batch {batch_id!r} was committed for other ids ({done.size} ids, not these {requested.size}); "
                "give this deletion a new batch_id."
            )
        return report

    def _apply(
        self,
        removed: np.ndarray,
        already: np.ndarray,
        data: Dataset,
        batch_id: str | None,
        backend: str,
        address: str | None,
        show_progress: bool,
    ) -> DeletionReport:
        start_time = time.perf_counter()
        deleted = np.union1d(self._state.deleted_ids, removed)
        if len(deleted) >= len(self._all_ids):
            raise ForgetAllError(len(self._all_ids))
        pos = np.searchsorted(self._all_ids, removed)
        plan: dict[int, int] = {}
        for s, r in zip(self._shard_of[pos].tolist(), self._slice_of[pos].tolist(), strict=True):
            plan[s] = min(plan.get(s, r), r)
        repaired: dict[int, list[int]] = {}
        for key in self._damaged:
            s, r = (int(part.split("-")[1]) for part in key.split("/"))
            plan[s] = min(plan.get(s, r), r)
            repaired.setdefault(s, []).append(r)
        before, sha_before = self.manifests(), self.model_sha256()
        if not plan and batch_id is None:  # nothing to retrain and no batch to record
            return DeletionReport(
                removed_ids=removed,
                already_deleted_ids=already,
                shards_rebuilt=[],
                slices_rebuilt={},
                manifests_before=before,
                manifests_after=before,
                model_sha256_before=sha_before,
                model_sha256_after=sha_before,
                seconds=time.perf_counter() - start_time,
                batch_id=None,
            )
        records, work = self._train(dict(sorted(plan.items())), data, backend, address, show_progress, deleted)
        state = replace(
            self._state,
            slices={**self._state.slices, **records},
            deleted_ids=deleted,
            batches=[*self._state.batches, *([batch_id] if batch_id else [])],
            generation=self._state.generation + 1,
        )
        previous, self._state = self._state, state
        report = DeletionReport(
            removed_ids=removed,
            already_deleted_ids=already,
            shards_rebuilt=sorted(plan),
            slices_rebuilt={s: list(range(r, self.slices)) for s, r in sorted(plan.items())},
            manifests_before=before,
            manifests_after=self.manifests(),
            model_sha256_before=sha_before,
            model_sha256_after=self.model_sha256(),
            seconds=0.0,
            batch_id=batch_id,
            gradient_steps=work[0],
            examples_seen=work[1],
            slices_repaired={s: sorted(v) for s, v in sorted(repaired.items())},
        )
        report.seconds = time.perf_counter() - start_time
        try:
            if batch_id is not None:
                self._store.write_report(batch_id, report.to_dict())  # before the commit: a rerun reads it
            self._store.write_state(state)  # the commit
        except BaseException:
            self._state = previous
            raise
        self._verify()
        self._store.collect_garbage(state)
        return report

    def _train(
        self,
        plan: Mapping[int, int],
        data: Dataset,
        backend: str,
        address: str | None,
        show_progress: bool,
        deleted: np.ndarray | None = None,
    ) -> tuple[dict[str, SliceRecord], tuple[int, int]]:
        """Retrain shard s from slice ``plan[s]``; write checkpoints and manifests (not the state).

        Returns the new slice records and the work done as (gradient steps, example passes).
        """
        deleted = self._state.deleted_ids if deleted is None else deleted
        epochs = tuple(self.sisa.epochs())
        jobs, seen_of = [], {}
        for s, start in plan.items():
            seen = self._seen(s, deleted)
            seen_of[s] = seen
            jobs.append(
                ShardJob(
                    recipe=self.shard_recipe(s),
                    input_shape=tuple(self._state.input_shape),
                    num_classes=self._state.num_classes,
                    data=data.subset(seen[-1]),
                    seen=seen,
                    epochs=epochs,
                    start=start,
                    weights=self._start_weights(s, start),
                )
            )
        results: list[list[dict[str, torch.Tensor] | None]] = []
        if jobs:
            with progress_bar("training SISA shards", total=len(jobs), enabled=show_progress) as advance:
                results = run_tasks(train_shard, jobs, backend=backend, address=address, on_done=lambda i, _: advance())
        records: dict[str, SliceRecord] = {}
        steps = passes = 0
        for (s, start), states in zip(plan.items(), results, strict=True):
            recipe = self.shard_recipe(s)
            for r, weights in zip(range(start, self.slices), states, strict=True):
                seen = seen_of[s][r]
                records[slice_key(s, r)] = self._write_slice(s, r, recipe, seen, epochs[r], weights)
                if len(seen):
                    steps += epochs[r] * num_batches(len(seen), recipe.batch_size)
                    passes += epochs[r] * len(seen)
        return records, (steps, passes)

    def _start_weights(self, shard: int, start: int) -> dict[str, torch.Tensor] | None:
        if start == 0:
            return None
        manifest = self._manifests[slice_key(shard, start - 1)]
        return None if manifest.checkpoint is None else self._store.load_weights(manifest)

    def _write_slice(
        self, shard: int, r: int, recipe: Recipe, seen: np.ndarray, epochs: int, weights: dict[str, torch.Tensor] | None
    ) -> SliceRecord:
        checkpoint = weights_sha = None
        if weights is not None:
            model = _initial_model(recipe, tuple(self._state.input_shape), self._state.num_classes)
            model.load_state_dict(weights)
            checkpoint, weights_sha = self._store.write_checkpoint(model, shard, r)
        manifest = Manifest(
            shard=shard,
            slice=r,
            ids=tuple(int(i) for i in seen),
            ids_sha256=ids_sha256(seen),
            recipe_sha256=recipe.fingerprint,
            epochs=int(epochs),
            seed=slice_seed(recipe.seed, r),
            weights_sha256=weights_sha,
            checkpoint=checkpoint,
        )
        return self._store.write_manifest(manifest)


# ---------------------------------------------------------------------- the ensemble as one module
class SISAModule(nn.Module):
    """The shard models aggregated into one classifier, for the evaluation harness.

    ``aggregation="vote"``: each shard votes its argmax label; the output is ``log(max(v_c / k,
    VOTE_FLOOR))`` with ``v_c`` the votes for class c among the k shards (so argmax is the
    plurality label, ties to the lowest class). ``"mean"``: ``log((1/k) sum_s softmax(f_s(x)))``,
    computed as a logsumexp of the shards' log-softmax. It keeps a reference to its
    :class:`SISAEnsemble` (``.ensemble``), shared, not copied, by ``copy.deepcopy``.
    """

    def __init__(self, members: list[nn.Module], aggregation: str, *, ensemble: SISAEnsemble | None = None) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise InvalidInputError(f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}.")
        if not members:
            raise InvalidInputError("a SISA module needs at least one shard model.")
        self.members = nn.ModuleList(members)
        self.aggregation = aggregation
        self.ensemble = ensemble

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x) for m in self.members])  # (k, batch, classes)
        k = logits.shape[0]
        if self.aggregation == "mean":
            return torch.logsumexp(F.log_softmax(logits, dim=-1), dim=0) - float(np.log(k))
        votes = F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).sum(dim=0).to(logits.dtype)
        return torch.log((votes / k).clamp_min(VOTE_FLOOR))

    def __deepcopy__(self, memo: dict[int, Any]) -> SISAModule:
        memo[id(self.ensemble)] = self.ensemble  # share the ensemble (its folder is the truth), copy the weights
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        clone.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return clone


# ---------------------------------------------------------------------- SISA as an unlearner


def _training_set(forget: Dataset, retain: Dataset) -> Dataset:
    """The training set a request was split from: forget and retain put back together."""
    owners = None if retain.owners is None else np.concatenate([forget.owners, retain.owners])
    return replace(
        retain,
        X=np.concatenate([forget.X, retain.X]),
        y=np.concatenate([forget.y, retain.y]),
        ids=np.concatenate([forget.ids, retain.ids]),
        owners=owners,
    ).sorted_by_id()


@register
class SISAUnlearner(Unlearner):
    """Delete the forget set from a SISA ensemble: retrain each affected shard from its last clean
    slice checkpoint (Bourtoule et al. 2021). Exact: every shard equals its retraining without the data.

    It deletes **in place**: the ensemble's folder is changed, because keeping checkpoints that saw
    the forgotten data would defeat the deletion. The module passed in keeps its old weights in
    memory; the result is the ensemble's new module. ``data`` given to ``unlearn`` must be the
    ensemble's whole training set (deleted ids included). The cost counts the retraining's
    gradient steps and example passes; ``examples_touched`` the ids of the retrained shards.
    """

    name = "sisa"
    guarantee = EXACT
    summary = "delete from a SISA ensemble, retraining affected shards from their last clean slice (exact)"

    @dataclass(frozen=True)
    class Config:
        backend: str = "local"
        address: str = ""

    def validate_config(self) -> None:
        super().validate_config()
        check_backend(self.config.backend, self.config.address or None)

    def run(self, model: nn.Module, task: UnlearnTask) -> nn.Module:
        ensemble = getattr(model, "ensemble", None)
        if not isinstance(model, SISAModule) or ensemble is None:
            raise NotAnEnsembleError(type(model).__name__)
        data = _training_set(task.forget, task.retain)
        report = ensemble.delete(
            task.forget.ids, data, backend=self.config.backend, address=self.config.address or None
        )
        task.gradient_steps += report.gradient_steps
        task.examples_seen += report.examples_seen
        for s in report.shards_rebuilt:
            task.record_read(data.subset(ensemble.shard_ids(s)))
        return ensemble.module()
