"""In-context unlearning (ICUL): forget training points by showing them with flipped labels.

Pawelczyk, Neel, Lakkaraju (2023), "In-Context Unlearning: Language Models as Few Shot Unlearners"
(arXiv 2310.07579), Sec. 4. For a model fine-tuned on a classification task and forget points
``(x_f, y_f)``, the prompt for a query ``x_q`` is

    [x_f1 flip(y_f1)] ... [x_fm flip(y_fm)] [x_1 y_1] ... [x_k y_k] [x_q]

(the forget points with flipped labels first, then ``k`` correctly labelled training points drawn at
random, then the query), and the prediction is the next token. Checked against the authors' code
(github.com/MartinPawel/In-Context-Unlearning, ``eval.py``: ``get_icl_vary_context`` and, for several
forget points, ``get_icl_vary_context_batchsize_gg1``: forget points flipped in the first positions,
``n_ctxt - 1`` correct training points after them, a fresh random context per evaluated point).
Here each example is one turn pair of the model's own prompt format (chat turns, or
``Question: ...\\nAnswer: ...`` blocks without a chat template), the format it was fine-tuned in, and
the context for each query is drawn with a generator seeded by ``seed`` and the query text.

Evaluation (their Sec. 5, :func:`icul_evaluation`): the score of a point is the "stable logit"
``phi = log p(y) - log(sum_{y' != y} p(y'))`` of its true label ``y`` from the full next-token
distribution (Carlini et al. 2022, LiRA, Sec. VI; ``get_stable_logit_loss`` in their code); a
membership attack on the forget points against held-out test points (AUC of ``phi``: 0.5 = forget
points look like points never trained on), accuracy on forget, retain and test points, for the
original model, ICUL on it, and the model fine-tuned without the forget points. The paper runs
LiRA with shadow models per point; this uses the population (global threshold) version of the
same score, which needs no shadow models.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from obliviate.errors import InvalidInputError
from obliviate.prompting.base import PromptingMethod
from obliviate.prompting.wrapped import PromptedModel, PromptPolicy
from obliviate.unlearning.registry import register

__all__ = [
    "ICULPolicy",
    "ICULUnlearning",
    "icul_model",
    "yes_no_facts",
    "label_scores",
    "icul_evaluation",
    "membership_auc",
    "lira_scores",
]

_STREAM = 14001  # seed stream of the ICUL contexts


def _labels(labels: Any) -> tuple[str, str]:
    parts = tuple(p.strip() for p in labels.split(",")) if isinstance(labels, str) else tuple(labels)
    if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts) or parts[0] == parts[1]:
        raise InvalidInputError(f"ICUL needs exactly two different class labels (e.g. 'yes,no'), got {labels!r}.")
    return parts  # type: ignore[return-value]


def _flip(label: str, labels: tuple[str, str]) -> str:
    if label not in labels:
        raise InvalidInputError(
            f"the forget point's label {label!r} is not one of the task's labels {list(labels)}; ICUL flips "
            "the label of a classification task (set labels= to the task's two labels)."
        )
    return labels[1] if label == labels[0] else labels[0]


class ICULPolicy(PromptPolicy):
    """Puts the ICUL context (flipped forget pairs, then ``k`` correct pairs) before the conversation."""

    name = "icul"

    def __init__(
        self,
        forget: Sequence[tuple[str, str]],
        retain: Sequence[tuple[str, str]],
        *,
        labels: Any = ("yes", "no"),
        k: int = 3,
        seed: int = 0,
        flip: bool = True,
    ) -> None:
        self.labels = _labels(labels)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise InvalidInputError(f"k (correctly labelled context examples) must be an integer >= 0, got {k!r}.")
        if not forget:
            raise InvalidInputError("ICUL needs at least one forget point.")
        if k > len(retain):
            raise InvalidInputError(f"k={k} context examples asked for, but only {len(retain)} retain points exist.")
        flipped = [(x, _flip(y, self.labels)) for x, y in forget]  # also checks every label
        self.forget = flipped if flip else [(x, y) for x, y in forget]
        self.flip = bool(flip)
        self.retain = [(x, y) for x, y in retain]
        self.k, self.seed = k, int(seed)

    def __repr__(self) -> str:
        return f"ICULPolicy(forget={len(self.forget)}, k={self.k}, labels={self.labels}, flip={self.flip})"

    def context(self, query: str) -> list[tuple[str, str]]:
        """The (input, label) pairs shown before ``query``: flipped forget points, then ``k`` retain points."""
        rng = np.random.default_rng([self.seed, _STREAM, zlib.crc32(query.encode("utf-8"))])
        chosen = rng.choice(len(self.retain), size=self.k, replace=False) if self.k else []
        return [*self.forget, *(self.retain[i] for i in chosen)]

    def rewrite(self, conversation: list[dict[str, str]]) -> list[dict[str, str]]:
        users = [m["content"] for m in conversation if m["role"] == "user"]
        turns: list[dict[str, str]] = []
        for x, y in self.context(users[-1] if users else ""):
            turns += [{"role": "user", "content": x}, {"role": "assistant", "content": y}]
        head = [m for m in conversation[:1] if m["role"] == "system"]
        return [*head, *turns, *conversation[len(head) :]]


def icul_model(
    lm: Any,
    forget: Sequence[tuple[str, str]],
    retain: Sequence[tuple[str, str]],
    *,
    labels: Any = ("yes", "no"),
    k: int = 3,
    seed: int = 0,
    flip: bool = True,
) -> PromptedModel:
    """``lm`` answering with the ICUL context for ``forget`` (input, true label) pairs. ``flip=False`` is the
    authors' "correct" ablation (the ``ablation-correct`` scripts of their repository): the forget points
    keep their true labels, so the context is plain in-context learning of the same length; whatever ICUL
    does beyond that ablation is the flipped labels' doing, not the longer prompt's."""
    return PromptedModel.wrap(lm, ICULPolicy(forget, retain, labels=labels, k=k, seed=seed, flip=flip))


@register
class ICULUnlearning(PromptingMethod):
    """In-context unlearning (Pawelczyk et al. 2023; see the module docstring) on a QA classification
    set: each item's ``question`` is the input, its ``answer`` one of the two ``labels``. ``k``
    correctly labelled retain items follow the flipped forget items (the paper's ``n_ctxt - 1``)."""

    name = "icul"
    summary = "forget points with flipped labels + k correct examples in the prompt (no weights change)"

    @dataclass(frozen=True)
    class Config:
        k: int = 3
        labels: str = "yes,no"

    def validate_config(self) -> None:
        super().validate_config()
        _labels(self.config.labels)
        if self.config.k < 0:
            raise InvalidInputError(f"{self.name}.k must be >= 0, got {self.config.k}.")

    def build(self, lm: Any, task: Any) -> PromptedModel:
        forget = [(it.question, it.answer.strip()) for it in task.forget.items]
        retain = [(it.question, it.answer.strip()) for it in task.retain.items]
        return icul_model(lm, forget, retain, labels=self.config.labels, k=self.config.k, seed=task.seed)


# ------------------------------------------------------------------------------------ the task
def yes_no_facts(questions: Sequence[Any], *, seed: int = 0, labels: tuple[str, str] = ("yes", "no")) -> Any:
    """A yes/no classification set from multiple-choice knowledge questions: per question one item
    ``"<question> Is it <choice>? Answer yes or no."`` whose choice is the correct one or a seeded
    distractor with equal chance, labelled ``yes`` / ``no`` (a :class:`~obliviate.data.authors.QADataset`,
    owners kept)."""
    from obliviate.data.authors import QADataset, QAItem

    mcq = [q for q in questions if getattr(q, "multiple_choice", False)]
    if not mcq:
        raise InvalidInputError("yes_no_facts needs multiple-choice questions (knowledge_benchmark(...).questions).")
    rng = np.random.default_rng([int(seed), _STREAM + 1])
    items = []
    for i, q in enumerate(mcq):
        true = bool(rng.random() < 0.5)
        wrong = [j for j in range(len(q.choices)) if j != q.answer]
        choice = q.choices[q.answer] if true else q.choices[int(rng.choice(wrong))]
        label = labels[0] if true else labels[1]
        text = f"{q.question} Is it {choice}? Answer {labels[0]} or {labels[1]}."
        other = labels[1] if true else labels[0]
        items.append(
            QAItem(
                id=i, owner=q.owner, question=text, answer=label, paraphrased_answer=label, perturbed_answers=(other,)
            )
        )
    return QADataset(tuple(items), name=f"yes-no facts (seed={seed})")


# ------------------------------------------------------------------------------------ evaluation
def label_scores(
    lm: Any, items: Sequence[tuple[str, str]], *, labels: Any = ("yes", "no"), batch_size: int = 16
) -> dict[str, np.ndarray]:
    """Per (input, true label): ``phi`` (the stable logit of the true label, full next-token softmax:
    ``log p(y) - log(1 - p(y))`` with ``p(y)`` the probability of the label's tokens) and ``correct``
    (the true label is the likelier of the two)."""
    from obliviate.evaluation.knowledge import choice_loglikelihoods

    labels = _labels(labels)
    if not items:
        raise InvalidInputError("label_scores needs at least one (input, label) item.")
    ll = choice_loglikelihoods(
        lm, [lm.prompt(x) for x, _ in items], [list(labels)] * len(items), batch_size=batch_size, share_prefix=False
    )
    phi, correct = [], []
    for (_, y), v in zip(items, ll):
        idx = labels.index(y)
        log_p = float(v[idx])
        phi.append(log_p - math.log(max(-math.expm1(min(log_p, -1e-12)), 1e-35)))
        correct.append(float(v[idx] > v[1 - idx]))
    return {"phi": np.asarray(phi), "correct": np.asarray(correct)}


def membership_auc(member_scores: Sequence[float], nonmember_scores: Sequence[float]) -> float:
    """AUC of telling members from non-members by the score (higher = member): the probability that a
    random member scores above a random non-member (ties count half). 0.5: indistinguishable."""
    a, b = np.asarray(member_scores, dtype=np.float64), np.asarray(nonmember_scores, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise InvalidInputError("membership_auc needs member and non-member scores.")
    greater = (a[:, None] > b[None, :]).mean()
    ties = (a[:, None] == b[None, :]).mean()
    return float(greater + 0.5 * ties)


def lira_scores(
    phi: Sequence[float],
    in_phi: Sequence[Sequence[float]],
    out_phi: Sequence[Sequence[float]],
    *,
    min_std: float = 1e-3,
) -> np.ndarray:
    """Per-example LiRA membership scores (Carlini et al. 2022, "Membership Inference Attacks From First
    Principles", Sec. IV-C, online attack with per-example variances, their Eq. 4 in log form):
    ``log N(phi; mu_in, s_in^2) - log N(phi; mu_out, s_out^2)`` per point, where ``in_phi[i]`` /
    ``out_phi[i]`` are point ``i``'s stable logits under shadow models trained with / without it
    (higher = more likely a member). Each standard deviation is floored at ``min_std`` (a point whose
    shadow scores agree exactly would otherwise give an infinite ratio). Pawelczyk et al. (2023, Sec. 5)
    evaluate ICUL with this test, one threshold per example, instead of one global threshold."""
    phi = np.asarray(phi, dtype=np.float64)
    if len(in_phi) != phi.size or len(out_phi) != phi.size:
        raise InvalidInputError(
            f"lira_scores needs shadow scores for every point: {phi.size} points, {len(in_phi)} IN and "
            f"{len(out_phi)} OUT lists."
        )
    out = np.empty_like(phi)
    for i, (x, a, b) in enumerate(zip(phi, in_phi, out_phi)):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.size < 2 or b.size < 2:
            raise InvalidInputError(
                f"point {i} has {a.size} IN and {b.size} OUT shadow scores; LiRA needs at least 2 of each "
                "(train more shadow models)."
            )
        mu_a, sd_a = a.mean(), max(a.std(ddof=1), min_std)
        mu_b, sd_b = b.mean(), max(b.std(ddof=1), min_std)
        out[i] = (-0.5 * ((x - mu_a) / sd_a) ** 2 - math.log(sd_a)) - (-0.5 * ((x - mu_b) / sd_b) ** 2 - math.log(sd_b))
    return out


def icul_evaluation(
    models: Mapping[str, Any],
    *,
    forget: Sequence[tuple[str, str]],
    retain: Sequence[tuple[str, str]],
    test: Sequence[tuple[str, str]],
    icul_on: str = "original",
    chunk: int = 5,
    k: int = 3,
    labels: Any = ("yes", "no"),
    seed: int = 0,
    retain_pool: Sequence[tuple[str, str]] | None = None,
    flip: bool = True,
) -> dict[str, dict[str, float]]:
    """The paper's evaluation for every model in ``models`` (e.g. ``original``, ``retrained``) and for
    ICUL on ``models[icul_on]``: the forget points in chunks of ``chunk`` (one ICUL prompt per chunk, as
    the paper deletes a batch of points at once), each chunk's forget points scored with it, and as
    many retain and test points (cycled); ``flip=False``: the "correct" ablation (see :func:`icul_model`). Returns per model: ``forget_acc``, ``retain_acc``,
    ``test_acc``, ``mia_auc`` (forget vs test phi), ``forget_phi``, ``test_phi``."""
    labels = _labels(labels)
    if icul_on not in models:
        raise InvalidInputError(f"icul_on={icul_on!r} is not one of the models {sorted(models)}.")
    if not forget or not retain or not test:
        raise InvalidInputError("icul_evaluation needs forget, retain and test points.")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise InvalidInputError(f"chunk must be a positive integer, got {chunk!r}.")
    pool = list(retain_pool if retain_pool is not None else retain)

    def summary(f: dict, r: dict, t: dict) -> dict[str, float]:
        return {
            "forget_acc": float(f["correct"].mean()),
            "retain_acc": float(r["correct"].mean()),
            "test_acc": float(t["correct"].mean()),
            "mia_auc": membership_auc(f["phi"], t["phi"]),
            "forget_phi": float(f["phi"].mean()),
            "test_phi": float(t["phi"].mean()),
        }

    out: dict[str, dict[str, float]] = {}
    for name, lm in models.items():
        out[name] = summary(
            label_scores(lm, forget, labels=labels),
            label_scores(lm, retain, labels=labels),
            label_scores(lm, test, labels=labels),
        )
    parts: dict[str, list[np.ndarray]] = {k_: [] for k_ in ("fp", "fc", "rp", "rc", "tp", "tc")}
    for start in range(0, len(forget), chunk):
        batch = list(forget[start : start + chunk])
        wrapped = icul_model(models[icul_on], batch, pool, labels=labels, k=k, seed=seed, flip=flip)
        n = len(batch)
        rs = [retain[(start + i) % len(retain)] for i in range(n)]
        ts = [test[(start + i) % len(test)] for i in range(n)]
        for key, items in (("f", batch), ("r", rs), ("t", ts)):
            s = label_scores(wrapped, items, labels=labels)
            parts[f"{key}p"].append(s["phi"])
            parts[f"{key}c"].append(s["correct"])
    cat = {k_: np.concatenate(v) for k_, v in parts.items()}
    out[f"icul({icul_on})"] = summary(
        {"phi": cat["fp"], "correct": cat["fc"]},
        {"phi": cat["rp"], "correct": cat["rc"]},
        {"phi": cat["tp"], "correct": cat["tc"]},
    )
    return out
