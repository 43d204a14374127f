"""ob.train's results pinned: a speed-up of the training loop must not change a single bit.

The hashes were recorded from the loop as it was before the per-step overhead was removed
(issue 16, item 3), at one torch thread (the suite's setting, tests/conftest.py).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import obliviate as ob
from obliviate.errors import DivergedError, InvalidInputError
from obliviate.training.loop import FiniteWatch

PINNED = {
    "mlp-sgd": (
        ob.Recipe(model="mlp", epochs=2, seed=0),
        "83abc48705d288fe95c0146f6cbd47d088dff965d0bfa8a6175832c82143a168",
    ),
    "mlp-adam-cosine-ragged": (
        ob.Recipe(
            model="mlp",
            optimizer="adam",
            lr=1e-3,
            schedule="cosine",
            epochs=3,
            batch_size=48,
            seed=3,
            model_options={"hidden": (32,)},
        ),
        "0bfc123bb11d4cea966f1774f0744c53ebecb51e749d08a15fdc5931925bc208",
    ),
    "cnn-step": (
        ob.Recipe(model="cnn", schedule="step", epochs=1, batch_size=32, seed=1, model_options={"width": 8}),
        "066d239126808e8e1c19c465ca813848e55c11d5ba9912cbbcd84ffb3ca17b57",
    ),
}


def weights_hash(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_trained_weights_match_the_pinned_hash(name, small_train):
    recipe, expected = PINNED[name]
    assert torch.get_num_threads() == 1
    assert weights_hash(ob.train(recipe, small_train)) == expected


@pytest.mark.parametrize(("lr", "step"), [(1e8, 2), (100.0, 17), (500.0, 4)])
def test_divergence_is_reported_at_the_first_non_finite_step(lr, step, small_train):
    with pytest.raises(DivergedError) as info:
        ob.train(ob.Recipe(epochs=3, lr=lr), small_train)
    assert info.value.step == step and not np.isfinite(info.value.value)


# ------------------------------------------------------------ the batched divergence check
def _feed(watch: FiniteWatch, losses: list[float]) -> int:
    """Feed ``losses`` as steps 0, 1, ...; return how many calls went by without an error."""
    for step, value in enumerate(losses):
        watch(torch.tensor(value), step)
    return len(losses)


def test_finite_watch_names_the_first_non_finite_step_not_the_step_it_checked_at():
    losses = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, float("nan"), float("inf"), 3.0]
    watch = FiniteWatch(where="training", lr=0.5, every=4)
    assert _feed(watch, losses[:7]) == 7  # steps 4..6 are not checked yet
    with pytest.raises(DivergedError, match=r"training diverged at gradient step 6: loss = nan.*lr=0\.5") as info:
        watch(torch.tensor(losses[7]), 7)  # the 8th loss completes a group of 4
    assert info.value.step == 6


def test_finite_watch_flush_checks_the_last_partial_group_and_reports_inf():
    watch = FiniteWatch(where="unlearning", every=100)
    assert _feed(watch, [1.0, float("inf"), float("nan")]) == 3
    with pytest.raises(DivergedError) as info:
        watch.flush()
    assert info.value.step == 1 and info.value.value == float("inf")
    watch.flush()  # the group was consumed: nothing left to raise
    assert _feed(FiniteWatch(where="x", every=1), [1.0, 2.0]) == 2  # finite losses never raise
    with pytest.raises(InvalidInputError, match="every must be >= 1"):
        FiniteWatch(where="x", every=0)


@pytest.mark.parametrize("every", [1, 3, 32])
def test_run_epochs_reports_the_same_divergence_step_whatever_the_check_interval(every, small_train):
    from obliviate.models import build_model
    from obliviate.training.loop import make_optimizer, minibatches, seeded_generator
    from obliviate.training.trainer import run_epochs

    data = small_train.sorted_by_id()
    X, y = data.tensors
    model = build_model("mlp", data.input_shape, 10, seed=0, options={})
    optimizer = make_optimizer("sgd", model.parameters(), lr=100.0, momentum=0.9, weight_decay=5e-4)
    generator = seeded_generator(0, stream=1)

    def epoch():
        return ((X[idx], y[idx]) for idx in minibatches(len(data), 64, generator=generator))

    with pytest.raises(DivergedError) as info:
        run_epochs(model, epoch, optimizer, None, epochs=3, lr=100.0, where="training", check_every=every)
    assert info.value.step == 17  # as ob.train(Recipe(epochs=3, lr=100.0)) above, checked at every step


# ------------------------------------------------------------ the CLI's thread default
def test_obliviate_train_runs_on_one_torch_thread_by_default(run_cli, tmp_path):
    torch.set_num_threads(2)  # as torch's own default on a 2-core machine
    try:
        assert run_cli("train", "--out", str(tmp_path / "m.safetensors"), "--epochs", "1").returncode == 0
        assert torch.get_num_threads() == 1
        assert run_cli("train", "--out", str(tmp_path / "n.safetensors"), "--threads", "0").returncode == 2
    finally:
        torch.set_num_threads(1)
