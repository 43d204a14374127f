"""A ledger target for the summation-form learners of :mod:`obliviate.exact.summation`.

The file written by :func:`~obliviate.exact.summation.save_summation` holds the learner, the
training data's fingerprint and, after each batch, the ids deleted so far and the batch's deletion
record (so a rerun after a crash recovers it, as :class:`~obliviate.ledger.targets.ModelTarget`
does). A deletion is exact: the learner subtracts the examples' terms from its sums (Cao & Yang
2015) or, for Q-k-means, keeps or re-runs its quantised Lloyd iterations (Ginart et al. 2019);
the result equals the learner fitted without the ids. ``obliviate apply --summation FILE`` and
``obliviate verify --summation FILE`` use it; the certificates are the same as for other targets.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from obliviate.data.dataset import Dataset
from obliviate.errors import InvalidInputError
from obliviate.ledger.targets import Deletion, Target

__all__ = ["SummationTarget", "save_for_ledger"]


def _flat(data: Dataset) -> np.ndarray:
    return np.asarray(data.X, dtype=np.float64).reshape(len(data), -1)


def save_for_ledger(model, path: str | Path, data: Dataset, *, data_name: str = "") -> str:
    """Save a learner fitted on ``data`` (its ids) with the fingerprint the ledger checks; returns its sha256."""
    from obliviate.exact.summation import save_summation

    if not isinstance(data, Dataset):
        raise InvalidInputError(
            f"data must be the obliviate Dataset the learner was fitted on, got {type(data).__name__}."
        )
    trained = np.sort(np.asarray(getattr(model, "train_ids", []), dtype=np.int64))
    if not np.array_equal(trained, np.sort(data.ids)):
        raise InvalidInputError("the learner was not fitted on this data's ids; fit it with ids=data.ids.")
    return save_summation(model, path, metadata={"data": data_name, "data_fingerprint": data.fingerprint})


class SummationTarget(Target):
    """A summation-form learner file, deleted from exactly (see the module docstring)."""

    kind = "summation"

    def __init__(self, path: str | Path) -> None:
        from obliviate.exact.summation import load_summation
        from obliviate.storage import check_regular_target

        self.path = Path(path)
        check_regular_target(self.path, what="--summation")
        if not self.path.is_file():
            raise InvalidInputError(
                f"--summation {self.path} does not exist; fit a learner of obliviate.exact.summation and save it "
                "with obliviate.ledger.summation_target.save_for_ledger."
            )
        self.model, self.header = load_summation(self.path)
        self.meta = self.header.get("metadata") or {}

    def describe(self) -> dict:
        return {"kind": self.kind, "path": str(self.path.resolve()), "learner": self.header["learner"]}

    def data_fingerprint(self) -> str | None:
        return self.meta.get("data_fingerprint")

    @property
    def data_name(self) -> str | None:
        return self.meta.get("data") or None

    def deleted_ids(self) -> set[int]:
        return {int(i) for i in self.model.deleted_ids}

    def current_sha256(self) -> str:
        return self.header["sha256"]

    def weights_on_disk(self) -> tuple[str | None, dict[str, str]]:
        from obliviate.exact.summation import content_sha256, load_summation

        try:
            model, header = load_summation(self.path)
        except InvalidInputError as exc:
            return None, {str(self.path): str(exc)}
        digest = content_sha256(model)
        if digest != header.get("sha256"):
            return digest, {
                str(self.path): f"content sha256 {digest[:16]}... differs from {str(header.get('sha256'))[:16]}..."
            }
        return digest, {}

    def module(self):
        return self.model

    def ids_still_present(self, ids: list[int]) -> list[int]:
        active = set(int(i) for i in self.model.active_ids)
        return sorted(int(i) for i in ids if int(i) in active)

    def evidence(self, forget_ids: list[int], data: Dataset, *, test: Dataset | None, seed: int) -> dict:
        """Accuracy (classifiers), squared error (ridge) or k-means loss on the forget, retain and test sets."""
        from obliviate.exact.summation import QKMeans, RidgeRegression

        retain = data.without(np.asarray(sorted(self.deleted_ids()), dtype=np.int64))
        parts = {"forget": data.subset(forget_ids), "retain": retain, **({"test": test} if test is not None else {})}
        out: dict = {"forget_examples": len(forget_ids)}
        for name, part in parts.items():
            X = _flat(part)
            if isinstance(self.model, QKMeans):
                out[f"{name}_kmeans_loss"] = self.model.loss(X)
            elif isinstance(self.model, RidgeRegression):
                out[f"{name}_mse"] = float(np.mean((self.model.predict(X) - part.y) ** 2))
            else:
                out[f"{name}_accuracy"] = float(np.mean(self.model.predict(X) == part.y))
        return out

    def delete(self, ids: np.ndarray, data: Dataset, *, batch_id: str) -> Deletion:
        from obliviate.exact.summation import save_summation

        if self.meta.get("ledger_batch_id") == batch_id:  # committed before a crash: recover the record
            return Deletion(**{**self.meta["ledger_deletion"], "recovered": True})
        started = time.perf_counter()
        wanted = sorted({int(i) for i in ids})
        data.positions(wanted)  # UnknownIdsError for ids never in the training data
        gone = self.deleted_ids()
        already = sorted(set(wanted) & gone)
        fresh = sorted(set(wanted) - gone)
        before = self.current_sha256()
        deletion = Deletion(
            batch_id=batch_id,
            method=f"summation-delete ({self.header['learner']})",
            guarantee="exact",
            removed_ids=fresh,
            already_deleted_ids=already,
            model_sha256_before=before,
            model_sha256_after=before,
            seconds=0.0,
            model_files={self.path.name: before},
        )
        if not fresh:
            return deletion
        record = self.model.delete(fresh)
        deletion.seconds = time.perf_counter() - started
        if record is not None and not isinstance(record, type(self.model)):  # Q-k-means reports what it did
            deletion.details = {"in_place": record.in_place, "reran": record.reran, "reseeded": record.reseeded}
        from obliviate.exact.summation import content_sha256

        after = content_sha256(self.model)
        deletion.model_sha256_after = after
        deletion.model_files = {self.path.name: after}
        meta = {**self.meta, "ledger_batch_id": batch_id, "ledger_deletion": deletion.to_dict()}
        save_summation(self.model, self.path, metadata=meta)
        self.__init__(self.path)
        return deletion
