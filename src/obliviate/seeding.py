"""Seeded random state: every random choice in obliviate takes a seed through these two helpers.

A top-level module (no obliviate imports) so that models, training and the methods share it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["seeded_global_rng", "seeded_generator"]


@contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Run a block with torch's global CPU generator seeded by ``seed``; restore it afterwards.

    Only the CPU generator is seeded and restored: unlike ``torch.manual_seed`` this leaves a
    GPU's global random state alone (the models here are built and trained on the CPU).
    """
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(int(seed))
        yield


def seeded_generator(seed: int, stream: int = 0) -> torch.Generator:
    """A torch CPU generator for ``(seed, stream)``: independent streams from one seed."""
    g = torch.Generator()
    g.manual_seed((int(seed) * 1_000_003 + int(stream) * 7919) % (2**63 - 1))
    return g
