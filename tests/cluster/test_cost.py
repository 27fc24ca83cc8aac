"""Cost against the real control plane: an operator given a price table (the test's own figures, not
Azure's) writes status.cost of a TrainingJob from the VM-hours its workers held and of a
ModelDeployment from its replicas, and `kubectl get` shows it in the Cost column.

Nothing runs in the kwok pods: the test stands in for the training runtime (it finishes the worker
pod) and the serving engine (kwok makes the server pod Ready).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api.cost import PriceTable

from hack.controlplane.cluster import ControlPlane, wait_for
from tests.cluster.conftest import OperatorProcess, running, wait_for_phase
from tests.cluster.drive import finish_workers, running_workers
from tests.cluster.test_modeldeployment_controller import wait_md

pytestmark = pytest.mark.cluster

PRICES = PriceTable.model_validate(
    {
        "currency": "USD",
        "source": "test prices",
        "sizes": {"Standard_ND96isr_H100_v5": {"onDemand": 80.0}, "Standard_NC80adis_H100_v5": {"spot": 3.0}},
    }
)


@pytest.fixture(scope="module")
def priced_operator(
    crds: ControlPlane, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    log = tmp_path_factory.mktemp("operator-cost") / "operator.log"
    env = {"MODELFLEET_PRICES": PRICES.model_dump_json(by_alias=True)}
    with running(OperatorProcess(crds.kubeconfig, log, env=env), api_client) as process:
        yield process


def test_cost_of_a_training_job_and_a_deployment(
    cluster: ControlPlane,
    no_session_operator: None,
    priced_operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    job = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": "priced"},
        "spec": {
            "model": {"uri": "/models/tiny"},
            "dataset": {"uri": "/data/tiny.jsonl"},
            "output": {"uri": "az://out/tiny"},
            "resources": {"instanceType": "Standard_ND96isr_H100_v5", "nodes": 1, "gpusPerNode": 4},
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)
    running_workers(core, namespace, "priced", 1)
    wait_for_phase(custom, namespace, "priced", "Running")
    time.sleep(2)  # the half VM (4 of 8 GPUs) is held for a measurable while
    finish_workers(core, namespace, "priced", succeeded=True)
    done = wait_for_phase(custom, namespace, "priced", "Succeeded")
    cost = done["status"]["cost"]
    assert cost["vms"] == 0 and cost["currency"] == "USD"
    assert cost["vmHours"] == pytest.approx(done["status"]["gpuHours"] / 8, abs=1e-5)
    assert cost["amount"] == pytest.approx(cost["vmHours"] * 80.0, abs=1e-3) and cost["amount"] > 0
    assert cost["basis"] == "Standard_ND96isr_H100_v5 on-demand at 80 USD per VM-hour; test prices"
    header, row = cluster.kubectl("get", "tj", "priced", "-n", namespace).stdout.splitlines()[:2]
    column = header.index("COST")
    assert row[column:].split()[0] == f"{cost['amount']:g}", (header, row)

    deployment = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "priced"},
        "spec": {
            "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
            "resources": {"instanceType": "Standard_NC80adis_H100_v5", "gpusPerReplica": 2, "spot": True},
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", deployment)
    md = wait_md(
        custom,
        namespace,
        "priced",
        lambda m: (m.get("status", {}).get("cost") or {}).get("vms") == 1,
        "1 VM held",
    )
    assert md["status"]["cost"]["basis"] == "Standard_NC80adis_H100_v5 spot at 3 USD per VM-hour; test prices"
    assert md["status"]["cost"]["amount"] is not None
    # The operator's passes tell time in whole seconds (common.reconcile.utcnow): a VM held and let go
    # within one second adds 0 VM-hours, so it is held past the next second, as the job's half VM is.
    time.sleep(2)

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", "priced", {"spec": {"replicas": 0}}
    )
    stopped = wait_md(
        custom,
        namespace,
        "priced",
        lambda m: (m.get("status", {}).get("cost") or {}).get("vms") == 0,
        "no VM held",
    )
    assert stopped["status"]["cost"]["vmHours"] > 0
    wait_for(
        lambda: custom.delete_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", "priced"
        ),
        10,
        "delete",
    )
