"""Forging audit (Thudi et al. 2022): a log without the example that lands near the real weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import obliviate as ob
import obliviate.cli.audit  # noqa: F401  (registers `obliviate audit`; cli/__init__ may not import it yet)
from obliviate.audit.forge import forge, forging_audit, replay, train_logged
from obliviate.errors import InvalidInputError, UnknownIdsError


@pytest.fixture(scope="module")
def tiny():
    data = ob.data.digits()
    return data.subset(data.ids[:240])


def _make():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10))


def test_forged_log_omits_the_example_replays_and_lands_closer_than_honest_retrains(tiny):
    target = int(tiny.ids[17])
    real, log = train_logged(_make(), tiny, epochs=3, batch_size=16, lr=0.1, seed=0)
    assert sum(target in b for b in log.batches) == 3  # once per epoch
    forged_log, forged, errors, swaps = forge(_make(), tiny, log, target, candidates=32, seed=0)
    assert all(target not in b for b in forged_log.batches) and len(errors) == 3
    rest = tiny.without([target])
    again = replay(_make(), rest, forged_log)
    assert all(torch.equal(again[k], forged[k]) for k in forged)
    replayed_real = replay(_make(), tiny, log)
    assert all(torch.equal(replayed_real[k], real[k]) for k in real)
    result = forging_audit(_make, tiny, forget_id=target, epochs=3, batch_size=16, lr=0.1, retrains=3, candidates=32)
    assert result.replaced == 3 and result.forged_vs_real > 0
    assert result.forged_vs_real < 0.25 * result.retrain_vs_retrain
    assert result.forged_vs_real <= result.dropped_vs_real  # the substitutes do better than dropping the example


def test_bad_inputs_are_typed_errors(tiny):
    _, log = train_logged(_make(), tiny, epochs=1, batch_size=16, seed=0)
    with pytest.raises(UnknownIdsError):
        forge(_make(), tiny, log, 10**9)
    bn = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    with pytest.raises(InvalidInputError, match="BatchNorm"):
        train_logged(bn, tiny, epochs=1)
    with pytest.raises(InvalidInputError, match="retrains"):
        forging_audit(_make, tiny, retrains=1)


def test_cli_audit_forge_prints_the_ratio_and_writes_json(run_cli, tmp_path):
    out = tmp_path / "forge.json"
    done = run_cli(
        "audit", "forge", "--epochs", "1", "--hidden", "4", "--candidates", "8", "--retrains", "2", "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    assert "forged / retrain-vs-retrain" in done.stdout
    result = json.loads(out.read_text())
    assert result["replaced"] == 1 and np.isclose(
        result["ratio"], result["forged_vs_real"] / result["retrain_vs_retrain"]
    )
    bad = run_cli("audit", "forge", "--id", "-5")
    assert bad.returncode == 2 and "--id -5" in bad.stderr
