"""Datasets with stable ids and owners, their loaders and forget selections."""

from obliviate.data.authors import AuthorsBenchmark, QADataset, QAItem, fictitious_authors
from obliviate.data.dataset import Dataset
from obliviate.data.loaders import MAX_CLASSES, cifar10, digits, from_arrays, from_npz, synthetic

__all__ = [
    "AuthorsBenchmark",
    "QADataset",
    "QAItem",
    "fictitious_authors",
    "Dataset",
    "MAX_CLASSES",
    "cifar10",
    "digits",
    "from_arrays",
    "from_npz",
    "synthetic",
]
