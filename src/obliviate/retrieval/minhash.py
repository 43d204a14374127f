"""MinHash signatures of documents for near-duplicate and quotation search.

Broder 1997 ("On the resemblance and containment of documents"): for a random permutation ``pi`` of shingles,
``P[min pi(A) = min pi(B)] = |A & B| / |A | B|`` (the Jaccard resemblance), so the share of equal entries in two
``num_perm``-entry signatures estimates it with standard error ``sqrt(J (1 - J) / num_perm)``. Signatures are
computed with ``datasketch.MinHash`` in its ``affine64`` scheme (each permutation is ``a_k h + b_k mod 2^64``, ``a_k``
odd, of the shingle's 64-bit sha1 ``h`` pre-mixed by the MurmurHash3 finalizer), ``num_perm = 128`` and a fixed seed, so they are the same in every process and can be
stored beside the document.

Shingles are the word 3-grams of the text lower-cased with punctuation dropped (a text of fewer than three words is
one shingle of all its words).
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["shingles", "signature", "from_signature", "minhash_of", "NUM_PERM", "SEED", "SCHEME"]

NUM_PERM = 128
SEED = 1
SCHEME = "affine64"
_WORD = re.compile(r"\w+", re.UNICODE)
_PERMUTATIONS = None


def shingles(text: str, n: int = 3) -> set[str]:
    """The set of word ``n``-grams of ``text`` (lower-cased, punctuation dropped)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def _permutations():
    global _PERMUTATIONS
    if _PERMUTATIONS is None:
        from datasketch import MinHash

        _PERMUTATIONS = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME).permutations
    return _PERMUTATIONS


def minhash_of(text: str):  # noqa: ANN201 - a datasketch.MinHash
    """The ``datasketch.MinHash`` of ``text``'s shingles."""
    from datasketch import MinHash

    m = MinHash(num_perm=NUM_PERM, seed=SEED, permutations=_permutations(), scheme=SCHEME)
    m.update_batch([s.encode("utf-8") for s in sorted(shingles(text))])
    return m


def signature(text: str) -> bytes:
    """The MinHash signature of ``text`` as ``NUM_PERM`` little-endian uint64 (what the store keeps)."""
    return np.asarray(minhash_of(text).hashvalues, dtype="<u8").tobytes()


def from_signature(raw: bytes):  # noqa: ANN201 - a datasketch.MinHash
    from datasketch import MinHash

    return MinHash(
        num_perm=NUM_PERM,
        seed=SEED,
        hashvalues=np.frombuffer(raw, dtype="<u8").astype(np.uint64),
        permutations=_permutations(),
        scheme=SCHEME,
    )
