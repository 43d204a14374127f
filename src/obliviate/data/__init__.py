"""Datasets with stable ids and owners, their loaders and forget selections."""

from obliviate.data.dataset import Dataset
from obliviate.data.loaders import cifar10, digits, from_arrays, synthetic

__all__ = ["Dataset", "cifar10", "digits", "from_arrays", "synthetic"]
