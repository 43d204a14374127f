"""Kill -9 under load: clients file while an operator applies and the server dies at random points (and once
inside an apply, after the SISA deletion committed). Afterwards no acknowledged request is lost or duplicated,
none is applied twice, and every certificate verifies against the ensemble on disk."""

from __future__ import annotations

import numpy as np

from obliviate.ledger import SisaTarget
from obliviate.service import TokenStore
from obliviate.service.loadtest import ServerProcess, check_ledger, free_port, kill_run


def test_no_acknowledged_request_is_lost_duplicated_or_applied_twice_across_kills(
    service_ledger, service_sisa, service_data, tmp_path
):
    npz = tmp_path / "data.npz"
    d = service_data
    np.savez(npz, X=d.X, y=d.y, ids=d.ids, owners=d.owners.astype(str))
    with TokenStore(service_ledger) as store:
        requester, record = store.create("requester")
        operator, _ = store.create("operator")
    server = ServerProcess(
        service_ledger, port=free_port(), options={"sisa": service_sisa, "data": npz, "rate": 0}
    )
    run = kill_run(
        server, requester, operator,
        ids=[int(i) for i in d.ids[:100]],
        clients=4, kills=3, seed=3, between=(0.6, 1.2), apply_every=0.7, pause=0.4,
        first_env={"OBLIVIATE_CRASH_AT": "deleted"},  # the first apply dies after the ensemble committed the batch
    )
    assert run.kills == 3 and server.starts == 4 and not run.conflicts
    report = check_ledger(service_ledger, run.acks, record.token_id, SisaTarget(service_sisa))
    assert report["acknowledged"] > 0 and report["certificates"] > 0, report
    assert report["lost"] == 0 and report["duplicated"] == 0, report["examples"]
    assert report["applied_twice"] == 0 and report["ids_removed_by_two_batches"] == 0, report
    assert report["certificates_failing"] == 0, report["examples"]["failing"]
    assert report["left_open"] == 0 and report["counts"]["failed"] == 0, report
