"""Model builders: found by name, right output shapes, seeded initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from obliviate.errors import InvalidInputError, UnknownModelError
from obliviate.models import MODELS, build_model, parametrised_layers

# (name, options): small widths where the default would only make the test slower
SMALL = [("mlp", {}), ("cnn", {"width": 8}), ("resnet18", {"width": 8})]


@pytest.mark.parametrize(("name", "options"), SMALL)
@pytest.mark.parametrize(("input_shape", "x_shape"), [((64,), (5, 64)), ((3, 32, 32), (5, 3, 32, 32))])
def test_models_map_a_batch_to_class_logits(name, options, input_shape, x_shape):
    model = build_model(name, input_shape, 7, options=options)
    assert isinstance(model, nn.Module)
    out = model.eval()(torch.randn(x_shape, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (5, 7) and torch.isfinite(out).all()


def test_convolutional_models_see_digits_as_one_channel_images():
    cnn = build_model("cnn", (64,), 10)
    assert cnn.input_chw == (1, 8, 8) and cnn.features[0].in_channels == 1
    x = torch.rand(4, 64)
    assert torch.equal(cnn(x), cnn(x.reshape(4, 1, 8, 8)))  # flat rows are 8x8 images, row-major
    resnet = build_model("resnet18", (3, 32, 32), 10)
    assert resnet.conv1.kernel_size == (3, 3) and resnet.conv1.stride == (1, 1)  # the CIFAR stem
    assert sum(p.numel() for p in resnet.parameters()) == pytest.approx(11.17e6, rel=0.01)  # ResNet-18's size
    with pytest.raises(InvalidInputError, match="model='mlp'"):
        build_model("cnn", (10,), 3)


def test_mlp_hidden_layers_follow_options():
    mlp = build_model("mlp", (64,), 10, options={"hidden": [32, 16, 8]})
    linears = [m for m in mlp if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 8), (8, 10)]
    assert [n for n, _ in parametrised_layers(mlp)] == ["1", "3", "5", "7"]


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(UnknownModelError, match="Unknown model 'vgg'. Known models: certified_logreg, certified_logreg_stored, cnn, d2d_logreg, mlp, resnet18."):
        build_model("vgg", (64,), 10)
    with pytest.raises(InvalidInputError, match="bad options for model 'mlp'"):
        build_model("mlp", (64,), 10, options={"depth": 3})
    assert set(MODELS) == {"mlp", "cnn", "resnet18"}


@pytest.mark.parametrize(("name", "options"), SMALL)
def test_same_seed_same_init_and_global_rng_untouched(name, options):
    state = torch.get_rng_state()
    a = build_model(name, (3, 32, 32), 10, seed=1, options=options).state_dict()
    b = build_model(name, (3, 32, 32), 10, seed=1, options=options).state_dict()
    c = build_model(name, (3, 32, 32), 10, seed=2, options=options).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())
