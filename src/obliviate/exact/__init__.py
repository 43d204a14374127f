"""Exact unlearning: the result is a model trained without the data."""

from obliviate.exact.retrain import Retrain

__all__ = ["Retrain"]
