"""A gang that cannot be placed in time is released and requeued, not failed, and is placed once
capacity appears: a node joins its pool, or another job on the pool finishes.

Each test gets a GPU pool of its own (kwok ND96 nodes, 8 GPUs each), so the only pods competing for
its nodes are the test's. kwok plays the kubelet: pods placed there go Running, and a deleted pod stops
at once (exit code 143).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from hack.controlplane.cluster import wait_for
from hack.controlplane.kwok import POOLS, Pool, node_manifest
from tests.cluster.conftest import OperatorProcess, condition, wait_for_phase, wait_for_training_job
from tests.cluster.drive import finish_workers, running_workers, worker_pods
from tests.cluster.manifest_cases import training_job

pytestmark = pytest.mark.cluster

TIMEOUT_SECONDS = 5
"""schedulingTimeoutSeconds of the tests' jobs: long enough for kube-scheduler to place a gang that
fits, short enough to requeue one that does not within a few seconds."""


@dataclass
class GpuPool:
    """A pool of this test's own; ``add_node`` grows it, the fixture removes every node it added."""

    core: client.CoreV1Api
    shape: Pool
    nodes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.shape.name

    def add_node(self) -> str:
        name = self.shape.node_name(len(self.nodes))
        node = node_manifest(self.shape, name)
        self.core.create_node(node)
        self.core.patch_node_status(name, {"status": node["status"]})  # the create drops status
        self.nodes.append(name)
        return name


@pytest.fixture
def pool(core: client.CoreV1Api, namespace: str, custom: client.CustomObjectsApi) -> Iterator[GpuPool]:
    nd96 = POOLS["nd96h100"]
    shape = Pool(f"rq{uuid.uuid4().hex[:6]}", nd96.instance_type, nd96.gpus, nd96.cpus, nd96.memory_gi, 1)
    gpus = GpuPool(core, shape)
    gpus.add_node()
    try:
        yield gpus
    finally:
        # The test's TrainingJobs go first: a pod left on a deleted node would never finish.
        custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs")

        def pods_on_pool() -> list[Any]:
            return [
                pod
                for name in gpus.nodes
                for pod in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={name}").items
            ]

        wait_for(lambda: not pods_on_pool(), 60, f"the pods on pool {gpus.name} to be gone")
        for name in gpus.nodes:
            core.delete_node(name)


def requeuing_job(name: str, pool: str, nodes: int) -> dict[str, Any]:
    """``nodes`` ND96 workers on ``pool``, quick to time out and to requeue."""
    return training_job(
        name,
        output={"uri": f"az://models/{name}"},
        resources={
            "instanceType": "Standard_ND96isr_H100_v5",
            "nodePool": pool,
            "nodes": nodes,
            "gpusPerNode": 8,
        },
        schedulingTimeoutSeconds=TIMEOUT_SECONDS,
        requeueBackoffSeconds=1,
        maxRequeueBackoffSeconds=2,
        backoffLimit=0,
    )


def create(custom: client.CustomObjectsApi, namespace: str, manifest: dict[str, Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", manifest)


def requeued(times: int) -> Callable[[dict[str, Any]], bool]:
    def check(tj: dict[str, Any]) -> bool:
        return tj.get("status", {}).get("requeues", 0) >= times

    return check


def gang_requeued_events(core: client.CoreV1Api, namespace: str, name: str) -> list[Any]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e for e in events if e.reason == c.REASON_GANG_REQUEUED]


def assert_requeued_not_failed(tj: dict[str, Any], pool: str) -> None:
    status = tj["status"]
    assert (status["restarts"], status.get("failures", [])) == (0, []), status
    assert condition(tj, c.COND_FAILED) is None, status
    scheduled = condition(tj, c.COND_SCHEDULED)
    assert scheduled is not None and (scheduled["status"], scheduled["reason"]) == ("False", "GangRequeued")
    assert "Insufficient nvidia.com/gpu" in scheduled["message"], scheduled
    assert f"found a {pool} node within {TIMEOUT_SECONDS}s" in scheduled["message"], scheduled
    assert "is created again at" in scheduled["message"], scheduled


def test_a_half_placed_gang_is_released_requeued_and_placed_when_a_node_joins(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    pool: GpuPool,
) -> None:
    create(custom, namespace, requeuing_job("wide", pool.name, nodes=2))
    (placed,) = running_workers(core, namespace, "wide", 1)  # one node: one worker fits, one waits
    first_job = batch.read_namespaced_job("wide", namespace).metadata.uid

    tj = wait_for_training_job(custom, namespace, "wide", requeued(1), "requeued", timeout=60)

    assert tj["status"]["phase"] == "Scheduling", tj["status"]  # backing off, or placing the next gang
    if tj["status"].get("requeueTime"):  # backing off: the next gang's creation did not reset the condition
        assert_requeued_not_failed(tj, pool.name)

    # Released: the first gang's Job and its placed worker are gone, so the worker's node was freed.
    def released() -> bool:
        try:
            job = batch.read_namespaced_job("wide", namespace)
        except client.ApiException as error:
            return error.status == 404
        return bool(job.metadata.uid != first_job)

    wait_for(released, 30, "the first gang's Job to be deleted")
    assert placed.metadata.uid not in {p.metadata.uid for p in worker_pods(core, namespace, "wide")}
    wait_for(lambda: gang_requeued_events(core, namespace, "wide"), 30, "a GangRequeued event")
    (event,) = gang_requeued_events(core, namespace, "wide")[:1]
    assert event.type == "Warning" and "Insufficient nvidia.com/gpu" in event.message

    pool.add_node()
    running = wait_for_phase(custom, namespace, "wide", "Running", timeout=60)

    status = running["status"]
    assert (status["workers"], status["restarts"], status.get("failures", [])) == ("2/2", 0, [])
    assert status["requeues"] >= 1 and "requeueTime" not in status
    assert {p.spec.node_name for p in worker_pods(core, namespace, "wide")} == set(pool.nodes)
    assert condition(running, c.COND_SCHEDULED)["status"] == "True"  # type: ignore[index]
    assert condition(running, c.COND_FAILED) is None


def test_a_gang_waiting_behind_another_job_is_requeued_until_that_job_finishes(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    pool: GpuPool,
) -> None:
    create(custom, namespace, requeuing_job("first", pool.name, nodes=1))
    running_workers(core, namespace, "first", 1)
    create(custom, namespace, requeuing_job("second", pool.name, nodes=1))

    waiting = wait_for_training_job(
        custom,
        namespace,
        "second",
        lambda tj: requeued(1)(tj) and bool(tj["status"].get("requeueTime")),
        "requeued and backing off",
        timeout=60,
    )
    assert_requeued_not_failed(waiting, pool.name)
    assert waiting["status"]["phase"] == "Scheduling" and waiting["status"]["gpus"] == 0

    finish_workers(core, namespace, "first", succeeded=True)
    wait_for_phase(custom, namespace, "first", "Succeeded")
    running = wait_for_phase(custom, namespace, "second", "Running", timeout=60)

    status = running["status"]
    assert (status["restarts"], status.get("failures", [])) == (0, [])
    assert status["requeues"] >= 1
    assert condition(running, c.COND_FAILED) is None
