"""The typed errors obliviate raises.

Every error names the bad value and says what to do about it. All derive from
:class:`ObliviateError`, so callers (and the CLI, which prints one line and exits 2)
can catch the whole family at once. Errors that are also a misuse of a value derive
from :class:`ValueError` or :class:`KeyError` too, so generic handlers keep working.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "NotVectorisableError",
    "TooFewQuestionsError",
    "AlreadyDeletedError",
    "NotAnEnsembleError",
    "ServiceStoreError",
    "UntrustedKeyError",
    "DamagedKeyError",
    "SigningKeyError",
    "UnknownRequestError",
    "InvalidTransitionError",
    "LedgerUnavailableError",
    "LedgerDiskFullError",
    "LedgerNotFoundError",
    "CorruptLedgerError",
    "InvalidCertificateError",
    "ApplyInProgressError",
    "EmbedderMismatchError",
    "CorruptStoreError",
    "StoreNotFoundError",
    "PrivateModelError",
    "AlreadyRemovedError",
    "NotACausalLMError",
    "ObliviateError",
    "InvalidInputError",
    "UnknownIdsError",
    "DuplicateIdsError",
    "EmptyForgetSetError",
    "ForgetAllError",
    "UnknownOwnerError",
    "UnknownMethodError",
    "UnknownConfigKeyError",
    "UnknownModelError",
    "DivergedError",
    "CorruptCheckpointError",
    "MissingRecipeError",
    "BudgetExhaustedError",
    "UnsupportedModelError",
]


def _preview(values: Iterable[object], limit: int = 10) -> str:
    values = list(values)
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:limit])
    more = f" (and {len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}]{more}"


class ObliviateError(Exception):
    """Base class of every error obliviate raises on purpose."""


class InvalidInputError(ObliviateError, ValueError):
    """An argument has the wrong shape, type or range; the message names it and the fix."""


class UnknownIdsError(ObliviateError, KeyError):
    """Ids that are not in the dataset."""

    def __init__(self, missing: Iterable[int], *, where: str = "the dataset") -> None:
        self.missing = sorted(int(i) for i in missing)
        super().__init__(
            f"{len(self.missing)} id(s) not in {where}: {_preview(self.missing)}. "
            "Requests name the stable example ids of the data the model was trained on; "
            "check the ids file or list them with Dataset.ids."
        )

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateIdsError(ObliviateError, ValueError):
    """Example ids must be unique within a dataset."""

    def __init__(self, duplicated: Iterable[int]) -> None:
        self.duplicated = sorted(int(i) for i in duplicated)
        super().__init__(
            f"{len(self.duplicated)} id(s) appear more than once: {_preview(self.duplicated)}. "
            "Every example needs its own stable id; pass unique ids or let obliviate number them."
        )


class EmptyForgetSetError(ObliviateError, ValueError):
    """A request that selects no example."""

    def __init__(self, detail: str = "") -> None:
        super().__init__(
            "The forget set is empty" + (f" ({detail})" if detail else "") + ": "
            "name at least one id or an owner who has data in the training set."
        )


class ForgetAllError(ObliviateError, ValueError):
    """A request that would remove every training example: nothing would be left to retain."""

    def __init__(self, n: int) -> None:
        super().__init__(
            f"The forget set covers all {n} training examples, so nothing is left to retain. "
            "Forgetting everything is discarding the model: delete it instead, or forget a subset."
        )


class UnknownOwnerError(ObliviateError, KeyError):
    """Owners (data subjects) that own no example in the dataset."""

    def __init__(self, missing: Iterable[str], *, has_owners: bool = True) -> None:
        self.missing = sorted(str(o) for o in missing)
        fix = (
            "check the spelling; Dataset.owner_names lists the known owners."
            if has_owners
            else "this dataset records no owners; build it with owners=... or request ids instead."
        )
        super().__init__(f"Unknown owner(s) {_preview(self.missing)}: {fix}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownMethodError(ObliviateError, KeyError):
    """A method name that is not in the registry."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(
            f"Unknown unlearning method {name!r}. Known methods: {', '.join(self.known)}. "
            "Combine methods with '+', e.g. 'prune_finetune+scrub'."
        )

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownConfigKeyError(ObliviateError, KeyError):
    """A hyperparameter that the method's config does not have."""

    def __init__(self, method: str, key: str, valid: Iterable[str]) -> None:
        self.method, self.key, self.valid = method, key, sorted(valid)
        valid_text = f"Valid settings: {', '.join(self.valid)}." if self.valid else "It takes no settings."
        super().__init__(f"Method {method!r} has no setting {key!r}. {valid_text}")

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownModelError(ObliviateError, KeyError):
    """An architecture name the model builder does not know."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        super().__init__(f"Unknown model {name!r}. Known models: {', '.join(sorted(known))}.")

    def __str__(self) -> str:
        return str(self.args[0])


class DivergedError(ObliviateError, FloatingPointError):
    """A loss became NaN or infinite during training or unlearning."""

    def __init__(self, where: str, step: int, value: float, lr: float | None = None) -> None:
        self.where, self.step, self.value = where, step, value
        hint = f" (lr={lr:g})" if lr is not None else ""
        super().__init__(
            f"{where} diverged at gradient step {step}: loss = {value}. "
            f"Lower the learning rate{hint} (for ascent methods, or the number of ascent steps) and run again."
        )


class CorruptCheckpointError(ObliviateError, OSError):
    """A stored file whose contents do not match its recorded hash or cannot be parsed."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        super().__init__(
            f"Checkpoint {path} cannot be trusted ({reason}), so it was not loaded. A cached file "
            "(oracle, shard checkpoint) is rebuilt when deleted; restore any other file from a good copy."
        )


class MissingRecipeError(ObliviateError, ValueError):
    """A method needs the training recipe (for example `retrain`) but none was given."""

    def __init__(self, method: str) -> None:
        super().__init__(
            f"Method {method!r} retrains from scratch and needs the training recipe: "
            "pass recipe=ob.Recipe(...) to unlearn()."
        )


class BudgetExhaustedError(ObliviateError):
    """A certified model's removal budget cannot absorb the next removal (policy ``refuse``)."""

    def __init__(self, spent: float, needed: float, budget: float) -> None:
        self.spent, self.needed, self.budget = spent, needed, budget
        super().__init__(
            f"This removal would raise the accumulated gradient-residual bound from {spent:.4g} to "
            f"{spent + needed:.4g}, beyond the certified budget {budget:.4g}. Retrain on the remaining data "
            "(policy='retrain') or loosen epsilon."
        )


class UnsupportedModelError(ObliviateError, ValueError):
    """A method given a model it cannot work with (e.g. a non-convex model to a certified method)."""

    def __init__(self, method: str, got: str, supported: Iterable[str]) -> None:
        super().__init__(
            f"Method {method!r} cannot unlearn a {got}: its guarantee needs one of {', '.join(supported)}. "
            "Train one of those (see obliviate.certified) or pick an empirical method."
        )


class NotACausalLMError(InvalidInputError):
    """A folder that holds no Hugging Face causal language model."""


class AlreadyRemovedError(ObliviateError, ValueError):
    """A removal request names examples the certified model has already removed."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(int(i) for i in ids)
        shown = ", ".join(str(i) for i in self.ids[:10]) + (" ..." if len(self.ids) > 10 else "")
        super().__init__(
            f"{len(self.ids)} id(s) were already removed from this certified model: [{shown}]. "
            "A point can be removed once; drop these ids from the request (model.removed_ids lists them)."
        )


class PrivateModelError(UnsupportedModelError):
    """A model that Opacus cannot train privately (BatchNorm and other cross-example layers)."""

    def __init__(self, model: str, problems: list[str]) -> None:
        Exception.__init__(
            self,
            f"Model {model!r} cannot be trained with DP-SGD: {'; '.join(problems)}. Layers that mix examples "
            "(BatchNorm) leak across the batch; use a model with GroupNorm/LayerNorm (e.g. model='mlp' or 'cnn'), "
            "or convert yours with opacus.validators.ModuleValidator.fix(model).",
        )


class StoreNotFoundError(InvalidInputError):
    """No document store in the given folder (only ``create=True`` makes one)."""


class CorruptStoreError(CorruptCheckpointError):
    """The store's table (the source of truth) cannot be read; index files are rebuilt instead of raising this."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        OSError.__init__(
            self,
            f"Document store {path} is damaged ({reason}), so nothing was read or written. Restore store.sqlite "
            "(with store.sqlite-wal) from a backup; the index files are rebuilt from it.",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class EmbedderMismatchError(InvalidInputError):
    """The store's vectors were made by another embedder than the one given."""


class ApplyInProgressError(InvalidInputError):
    """Another ``apply`` holds this ledger's lock."""


class InvalidCertificateError(CorruptCheckpointError):
    """A file given as a certificate that is not one (binary, not JSON, not an object, another schema)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        OSError.__init__(
            self,
            f"{path} is not a deletion certificate ({reason}); give a certificate file written by `obliviate apply` "
            "(under <ledger>/certificates/), or restore it from the ledger with the next `obliviate apply`.",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class CorruptLedgerError(CorruptCheckpointError):
    """The ledger's SQLite file cannot be read or fails SQLite's integrity check."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        OSError.__init__(
            self,
            f"Ledger {path} is damaged ({reason}), so nothing was read or written. Restore it from a backup "
            "(copy ledger.sqlite together with ledger.sqlite-wal while no command runs); the signed certificates "
            "under certificates/ remain valid evidence of what was applied.",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class LedgerNotFoundError(InvalidInputError):
    """No ledger at the given folder (read-only commands never create one)."""


class LedgerDiskFullError(ObliviateError, OSError):
    """The disk holding the ledger (or its certificates) is full; the failed write changed nothing."""

    def __init__(self, path: object, detail: str = "") -> None:
        self.path = path
        OSError.__init__(
            self,
            errno.ENOSPC,
            f"Disk full: no space left to write {path}{' (' + detail + ')' if detail else ''}. The ledger is not "
            "damaged: the write that failed was rolled back. Free space on that disk and run the command again.",
        )
        self.filename = str(path)

    def __str__(self) -> str:
        return str(self.args[1])


class LedgerUnavailableError(InvalidInputError):
    """The ledger cannot be opened or written now: no permission, or another command holds it too long."""


class InvalidTransitionError(InvalidInputError):
    """A lifecycle move the ledger does not allow (e.g. applied -> received)."""


class UnknownRequestError(InvalidInputError, KeyError):
    """A request id that the ledger does not hold."""

    def __str__(self) -> str:
        return str(self.args[0])


class SigningKeyError(InvalidInputError):
    """The ledger's private key is missing, damaged or not the pinned one."""


class DamagedKeyError(CorruptCheckpointError):
    """The private key file exists but cannot be read as an Ed25519 key (never replaced silently)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        folder = Path(str(path)).parent.parent
        OSError.__init__(
            self,
            f"The ledger's signing key {path} is damaged ({reason}); nothing was signed. Restore it from a backup "
            f"of {Path(str(path)).parent}, or, if it is lost for good, rotate explicitly with "
            f"`obliviate key rotate --ledger {folder}` (audited; certificates signed before the rotation still verify).",
        )

    def __str__(self) -> str:
        return str(self.args[0])


class UntrustedKeyError(InvalidInputError):
    """No trusted key to verify a certificate against (a certificate's own key is never trusted)."""


class ServiceStoreError(ObliviateError):
    """The service's token and audit file cannot be read or written."""


class NotAnEnsembleError(UnsupportedModelError):
    """The ``sisa`` method was given a model that is not a SISA ensemble's module."""

    def __init__(self, got: str) -> None:
        ValueError.__init__(
            self,
            f"Method 'sisa' deletes from a SISA ensemble, not from a {got}: train one with "
            "ens = SISA(recipe, shards=5).fit(data, folder) and pass ens.module(), or pick another method.",
        )


class AlreadyDeletedError(ObliviateError, ValueError):
    """A delete request names examples that were deleted before."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(int(i) for i in ids)
        shown = ", ".join(str(i) for i in self.ids[:10]) + (" ..." if len(self.ids) > 10 else "")
        super().__init__(
            f"{len(self.ids)} id(s) were already deleted from this model: [{shown}]. An example is deleted "
            "once; drop these ids from the request (model.deleted_ids lists them)."
        )


class TooFewQuestionsError(InvalidInputError):
    """A question set too small to measure accuracy to the stated margin at the stated confidence."""


class NotVectorisableError(InvalidInputError):
    """A recipe or model that cannot be trained or run as a vmapped stack (solver models, DP-SGD)."""
