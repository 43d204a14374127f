"""Datasets with stable ids and owners, their loaders and forget selections."""

from obliviate.data.authors import AuthorsBenchmark, QADataset, QAItem, fictitious_authors
from obliviate.data.dataset import Dataset
from obliviate.data.loaders import cifar10, digits, from_arrays, synthetic

__all__ = ["AuthorsBenchmark", "QADataset", "QAItem", "fictitious_authors", "Dataset", "cifar10", "digits", "from_arrays", "synthetic"]
