"""Exact unlearning: the result is a model trained without the data."""

from obliviate.exact.retrain import Retrain
from obliviate.exact.sisa import SISA, DeletionReport, SISAEnsemble, SISAModule, SISAUnlearner
from obliviate.exact.summation import (
    AlreadyDeletedError,
    DCKMeans,
    GaussianNaiveBayes,
    MultinomialNaiveBayes,
    QKMeans,
    RidgeRegression,
)

__all__ = [
    "Retrain",
    "SISA",
    "SISAEnsemble",
    "SISAModule",
    "SISAUnlearner",
    "DeletionReport",
    "AlreadyDeletedError",
    "DCKMeans",
    "GaussianNaiveBayes",
    "MultinomialNaiveBayes",
    "QKMeans",
    "RidgeRegression",
]
