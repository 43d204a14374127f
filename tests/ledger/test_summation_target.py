"""The ledger applies requests to a summation-form learner exactly and verifies the certificate."""

from __future__ import annotations

import numpy as np
import pytest

import obliviate as ob
from obliviate.exact.summation import GaussianNaiveBayes, QKMeans, load_summation
from obliviate.ledger import apply, verify_certificate
from obliviate.ledger.summation_target import SummationTarget, save_for_ledger


def _flat(data):
    return np.asarray(data.X, dtype=np.float64).reshape(len(data), -1)


@pytest.mark.parametrize("kind", ["nb", "kmeans"])
def test_apply_deletes_exactly_and_the_certificate_verifies(ledger, owned_data, tmp_path, kind):
    path = tmp_path / "learner.npz"
    if kind == "nb":
        model = GaussianNaiveBayes().fit(_flat(owned_data), owned_data.y, ids=owned_data.ids)
    else:
        model = QKMeans(5, eps=0.5, seed=0).fit(_flat(owned_data), ids=owned_data.ids)
    save_for_ledger(model, path, owned_data)
    owner = owned_data.owner_names[0]
    ledger.add(ob.ForgetRequest(owners=owner))
    outcome = apply(ledger, SummationTarget(path), owned_data)
    ((request, cert_path, _),) = outcome.applied
    gone = owned_data.ids_of_owners([owner])
    result = verify_certificate(cert_path, SummationTarget(path), ledger=ledger)
    assert result.ok, [c for c in result.checks if not c.ok]
    deleted, _ = load_summation(path)
    assert sorted(deleted.deleted_ids) == sorted(gone)
    rest = owned_data.without(gone)
    if kind == "nb":
        fresh = GaussianNaiveBayes().fit(_flat(rest), rest.y, ids=rest.ids)
        assert np.abs(deleted.theta_ - fresh.theta_).max() <= 1e-9 and np.abs(deleted.var_ - fresh.var_).max() <= 1e-9
    else:
        fresh = QKMeans(5, eps=0.5, seed=0).fit(
            _flat(rest), ids=rest.ids, seeds=deleted.seed_ids, phases=deleted.phases_
        )
        np.testing.assert_array_equal(deleted.cluster_centers_, fresh.cluster_centers_)
    # a damaged file fails verification
    tampered, header = load_summation(path)
    tampered.active[np.isin(tampered.train_ids, gone)] = True
    from obliviate.exact.summation import save_summation

    save_summation(tampered, path, metadata=header["metadata"])
    assert not verify_certificate(cert_path, SummationTarget(path), ledger=ledger, mark=False).ok


def test_cli_apply_and_verify_with_summation(cli, owned_data, tmp_path):
    path = tmp_path / "nb.npz"
    data = ob.data.digits().split(test_size=0.25, seed=0)[0]
    save_for_ledger(GaussianNaiveBayes().fit(_flat(data), data.y, ids=data.ids), path, data, data_name="digits")
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(str(i) for i in data.ids[:3]))
    assert cli("request", "add", "--ids", ids).returncode == 0
    done = cli("apply", "--summation", path)
    assert done.returncode == 0, done.stderr
    certs = sorted((tmp_path / "ledger" / "certificates").glob("*.json"))
    assert len(certs) == 1
    checked = cli("verify", *certs, "--summation", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    both = cli("apply", "--summation", path, "--model", path)
    assert both.returncode == 2 and "exactly one target" in both.stderr
