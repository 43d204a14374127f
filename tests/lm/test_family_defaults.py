"""Method defaults per model family: Config holds the published values, family_defaults replace some
per family, an explicit setting always wins; and the authors suite's forget splits chosen by size."""

from __future__ import annotations

import dataclasses

import pytest

import obliviate as ob
from obliviate.bench.lm import default_splits
from obliviate.data.authors import fictitious_authors
from obliviate.empirical.lm.base import MODEL_FAMILIES, LMUnlearner
from obliviate.empirical.lm.npo import NPO
from obliviate.empirical.lm.rmu import RMU
from obliviate.errors import InvalidInputError
from obliviate.models.lm import model_family
from obliviate.unlearning.registry import available_methods, make_method


def _lm_classes():
    return [cls for cls in available_methods().values() if issubclass(cls, LMUnlearner)]


def test_every_family_override_names_a_config_field():
    for cls in _lm_classes():
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        for family, overrides in cls.family_defaults.items():
            assert family in MODEL_FAMILIES, (cls.name, family)
            assert set(overrides) <= fields, (cls.name, set(overrides) - fields)
            make_method(cls.name, overrides)  # the family's values pass the method's own checks


def test_published_values_and_family_overrides():
    assert NPO.defaults_for("other")["lr"] == 1e-5 and NPO.defaults_for("other")["alpha"] == 1.0
    assert NPO.defaults_for("tiny-gpt")["lr"] == 7e-4 and NPO.defaults_for("tiny-gpt")["alpha"] == 15.0
    assert NPO.defaults_for("llama")["alpha"] == 1.0 and NPO.defaults_for("llama")["lr"] < 7e-4
    assert (RMU.defaults_for("other")["steering_coeff"], RMU.defaults_for("other")["alpha"]) == (6.5, 1200.0)  # released Zephyr run
    with pytest.raises(InvalidInputError, match="unknown model family"):
        NPO.defaults_for("gpt-5")


def test_family_detection(trained_tiny_lm, tiny_lm):
    assert model_family(tiny_lm) == "tiny-gpt" and model_family(trained_tiny_lm) == "tiny-gpt"
    other = tiny_lm.copy()
    other.name = "my-gpt2"
    assert model_family(other) == "other"


def test_run_uses_the_family_defaults_and_explicit_settings_win(trained_tiny_lm, small_authors):
    request = small_authors.request("forget10")
    quick = {"epochs": 1}
    tiny = ob.unlearn(trained_tiny_lm, request, small_authors.train, method="npo", settings=quick, seed=0)
    assert tiny.config["lr"] == 7e-4 and tiny.config["alpha"] == 15.0 and tiny.config["epochs"] == 1
    mine = ob.unlearn(trained_tiny_lm, request, small_authors.train, method="npo", settings={**quick, "lr": 1e-3}, seed=0)
    assert mine.config["lr"] == 1e-3 and mine.config["alpha"] == 15.0
    built = NPO(config=NPO.Config(alpha=2.0, epochs=1))  # a config= field that differs from Config() is explicit too
    via_config = ob.unlearn(trained_tiny_lm, request, small_authors.train, method=built, seed=0)
    assert via_config.config["alpha"] == 2.0 and via_config.config["lr"] == 7e-4
    other = trained_tiny_lm.copy()
    other.name = "my-gpt2"
    published = ob.unlearn(other, request, small_authors.train, method="npo", settings=quick, seed=0)
    assert published.config["lr"] == 1e-5 and published.config["alpha"] == 1.0
    # reused on another family, the same object starts again from what was asked, not the last run's values
    assert built.config.lr == 7e-4
    reused = ob.unlearn(other, request, small_authors.train, method=built, seed=0)
    assert reused.config["lr"] == 1e-5 and reused.config["alpha"] == 2.0


def test_default_splits_by_size():
    assert default_splits(fictitious_authors(n_authors=100, qa_per_author=1, n_holdout=1))[0] == ["forget10", "forget01"]
    splits, note = default_splits(fictitious_authors(n_authors=20, qa_per_author=1, n_holdout=1))
    assert splits == ["forget10", "forget05"] and "forget01 of 20 authors is no author: forget05 instead" in note
    splits, note = default_splits(fictitious_authors(n_authors=10, qa_per_author=1, n_holdout=1))
    assert splits == ["forget10"] and "left out" in note
    with pytest.raises(InvalidInputError, match="no forget split"):
        default_splits(fictitious_authors(n_authors=4, qa_per_author=1, n_holdout=1))
