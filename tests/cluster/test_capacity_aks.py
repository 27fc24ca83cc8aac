"""The capacity manager in a running operator, with the fake ARM server as AKS.

A TrainingJob pinned (``nodePool``) to a pool no node and no ARM pool has: the operator creates the
pool through ARM (``CapacityRequested``); once a node of the pool joins (as the cluster autoscaler
would add it) the worker schedules and ``CapacityReady`` turns True. This operator watches only the
test's namespace; it authenticates with ``DefaultAzureCredential`` through the fake's managed-identity
endpoint and trusts the fake's certificate through ``REQUESTS_CA_BUNDLE``, as a pod would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.controlplane.kwok import Pool, add_node
from tests.cluster.conftest import (  # noqa: F401
    OperatorProcess,
    condition,
    crds,
    training_job_names,
    wait_for_training_job,
)
from tests.cluster.test_operator_metrics import samples
from tests.cluster.test_operator_metrics import value as metric
from tests.cluster.test_trainingjob_lifecycle import create, training_job
from tests.fakes.arm import IDENTITY_HEADER, FakeArm

pytestmark = pytest.mark.cluster

POOL = Pool("nc40cap", "Standard_NC40adis_H100_v5", 1, 40, 320, 1, gpu_product="NVIDIA-H100-NVL")


class NamespacedOperator(OperatorProcess):
    def __init__(self, kubeconfig: Path, log_path: Path, namespace: str) -> None:
        super().__init__(kubeconfig, log_path)
        self.namespace = namespace

    @property
    def command(self) -> list[str]:
        return [*super().command[:3], "--standalone", "-n", self.namespace, *super().command[5:]]


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[FakeArm]:
    fake = FakeArm(tmp_path).start()
    yield fake
    fake.stop()


@pytest.fixture
def capacity_operator(
    crds: ControlPlane,  # noqa: F811
    arm: FakeArm,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    custom: client.CustomObjectsApi,
) -> Iterator[NamespacedOperator]:
    for key, value in {
        "MODELFLEET_CAPACITY_MANAGER": "azure",
        "AZURE_SUBSCRIPTION_ID": "sub",
        "MODELFLEET_AKS_RESOURCE_GROUP": "rg",
        "MODELFLEET_AKS_CLUSTER": "aks",
        "MODELFLEET_CAPACITY_MAX_NODES": "Standard_NC40adis_H100_v5=2",
        "MODELFLEET_CAPACITY_CACHE_SECONDS": "0",
        "MODELFLEET_ARM_ENDPOINT": arm.url,
        "IDENTITY_ENDPOINT": arm.identity_endpoint,
        "IDENTITY_HEADER": IDENTITY_HEADER,
        "REQUESTS_CA_BUNDLE": str(arm.cert),
    }.items():
        monkeypatch.setenv(key, value)
    process = NamespacedOperator(crds.kubeconfig, tmp_path / "operator.log", namespace)
    process.start()
    try:
        yield process
    finally:
        # delete the TrainingJobs while this operator still runs (it ends their daemons), then stop it
        for name in training_job_names(custom, namespace):
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", name)
        wait_for(lambda: not training_job_names(custom, namespace), 60, "the TrainingJobs deleted")
        process.stop()


def test_missing_pool_is_created_and_capacity_becomes_ready_when_its_node_joins(
    capacity_operator: NamespacedOperator,
    arm: FakeArm,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    resources = {"instanceType": POOL.instance_type, "nodePool": POOL.name, "nodes": 1, "gpusPerNode": 1}
    create(custom, namespace, training_job("needs-pool", resources=resources))
    requested = wait_for_training_job(
        custom,
        namespace,
        "needs-pool",
        lambda tj: (condition(tj, "CapacityRequested") or {}).get("status") == "True",
        "CapacityRequested",
    )
    assert condition(requested, "CapacityRequested")["reason"] == "PoolCreating"
    (put,) = arm.puts()
    assert put.body["properties"]["vmSize"] == POOL.instance_type
    assert put.body["properties"]["maxCount"] == 1
    wait_for_training_job(
        custom,
        namespace,
        "needs-pool",
        lambda tj: (condition(tj, "CapacityReady") or {}).get("reason") == "WaitingForNodes",
        "the pool created and waiting for nodes",
    )

    node = POOL.node_name(0)
    add_node(core, node, POOL)
    try:
        ready = wait_for_training_job(
            custom,
            namespace,
            "needs-pool",
            lambda tj: (condition(tj, "CapacityReady") or {}).get("status") == "True",
            "CapacityReady",
        )
        assert ready["status"]["phase"] == "Running"
        wanted = {"PoolCreating", "WaitingForNodes", "CapacityAvailable"}
        wait_for(
            lambda: (
                wanted
                <= {
                    e.reason
                    for e in core.list_namespaced_event(
                        namespace, field_selector="involvedObject.name=needs-pool"
                    ).items
                }
            ),
            20,
            f"Events {wanted}",
        )
    finally:
        core.delete_node(node)


def test_deleting_jobs_while_their_passes_run_leaves_no_capacity_demand_and_no_child(
    capacity_operator: NamespacedOperator,
    arm: FakeArm,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    """Item 6 of issue 18: kopf stops a deleted object's daemon while its pass may still be asking the
    capacity manager (here: a slow ARM). The daemon's clean-up releases the demand only after that pass
    ended, so no pass adds it back for an object that is gone, and the pool can shrink again."""
    arm.latency = 1.5
    resources = {"instanceType": POOL.instance_type, "nodePool": POOL.name, "nodes": 1, "gpusPerNode": 1}
    names = [f"short-{index}" for index in range(3)]
    for name in names:
        create(custom, namespace, training_job(name, resources=resources))

    def demand() -> float:
        return metric(
            samples(capacity_operator), "modelfleet_capacity_demand_nodes", instance_type=POOL.instance_type
        )

    wait_for(lambda: demand() > 0 and bool(arm.requests), 30, "passes asking ARM for the pool")
    for name in names:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", name)
    gone = "the TrainingJobs released by the operator and gone"
    wait_for(lambda: not training_job_names(custom, namespace), 60, gone)
    wait_for(lambda: demand() == 0, 30, "no capacity demand left")
    time.sleep(2 * arm.latency)  # any pass still in flight would have added its demand back by now
    assert demand() == 0

    def children_left() -> list[str]:
        selector = ",".join(f"modelfleet.io/trainingjob={name}" for name in names[:1])
        left = [j.metadata.name for j in batch.list_namespaced_job(namespace).items]
        left += [
            cm.metadata.name
            for cm in core.list_namespaced_config_map(namespace, label_selector=selector).items
        ]
        return left

    wait_for(lambda: not children_left(), 60, "the children garbage-collected")
    log = capacity_operator.log_path.read_text(errors="replace")
    assert "Will escalate" not in log and "did not exit in time" not in log
