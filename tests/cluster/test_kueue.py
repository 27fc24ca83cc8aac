"""Kueue, built from its Go module and running against the plane, gates batch Jobs by GPU quota: plain
ones, and TrainingJobs' worker Jobs with the operator running (admitted whole, queued with Kueue's
reason, preempted by priority and resumed).

Each test gets a GPU pool of its own: one kwok node shaped like a Standard_ND96isr_H100_v5 (8
``nvidia.com/gpu``), carrying a taint of the test so that no other test's pod lands on it, and a
ResourceFlavor naming that pool whose tolerations Kueue adds to the pods it admits (the Jobs
themselves carry none). A ClusterQueue gives the namespace's LocalQueue a quota of exactly that
node's 8 GPUs (and of its RDMA devices, which TrainingJob workers on an InfiniBand size request).
kwok plays the node's kubelet: admitted pods go Running and stay so, holding quota.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c
from modelfleet_operator.worker_nodes import DEFAULT_RDMA_RESOURCE

from hack.controlplane.cluster import wait_for
from hack.controlplane.kwok import POOLS, RDMA_PODS_PER_NODE, Pool, node_manifest
from hack.thirdparty.kueue import MANAGED_LABEL, Kueue
from tests.cluster.conftest import (
    OperatorProcess,
    get_training_job,
    training_job_names,
    wait_for_phase,
    wait_for_training_job,
)
from tests.cluster.conftest import condition as tj_condition
from tests.cluster.drive import finish_workers, publish_progress, worker_pods
from tests.cluster.manifest_cases import training_job
from tests.cluster.thirdparty import kueue  # noqa: F401  (fixture)

pytestmark = pytest.mark.cluster

API = ("kueue.x-k8s.io", "v1beta2")
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
GPUS_PER_JOB = 4
QUOTA_GPUS = 8
LOW, HIGH = 100, 1000


@dataclass(frozen=True)
class GpuQueue:
    """The objects of one test's queue; names of cluster-scoped objects carry the test's suffix."""

    namespace: str
    local_queue: str
    cluster_queue: str
    flavor: str
    pool: str
    node: str
    taint: dict[str, str]
    low: str
    high: str


def cluster_object(name: str, kind: str, spec: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "/".join(API), "kind": kind, "metadata": {"name": name}, **fields}
    if spec is not None:
        body["spec"] = spec
    return body


@pytest.fixture
def gpu_queue(
    kueue: Kueue,  # noqa: F811
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> Iterator[GpuQueue]:
    suffix = uuid.uuid4().hex[:6]
    nd96 = POOLS["nd96h100"]
    pool = Pool(f"kq{suffix}", nd96.instance_type, nd96.gpus, nd96.cpus, nd96.memory_gi, count=1)
    taint = {"key": "modelfleet.io/test", "value": f"kueue-{suffix}", "effect": "NoSchedule"}
    queue = GpuQueue(
        namespace=namespace,
        local_queue="gpu",
        cluster_queue=f"gpu-{suffix}",
        flavor=f"h100-{suffix}",
        pool=pool.name,
        node=pool.node_name(0),
        taint=taint,
        low=f"low-{suffix}",
        high=f"high-{suffix}",
    )
    node = node_manifest(pool, queue.node)
    node["spec"]["taints"].append(taint)
    core.create_node(node)
    core.patch_node_status(queue.node, {"status": node["status"]})  # the create drops status
    core.patch_namespace(namespace, {"metadata": {"labels": {MANAGED_LABEL: "true"}}})
    tolerations = [{**t, "operator": "Equal"} for t in node["spec"]["taints"]]
    cluster_scoped = [
        ("resourceflavors", cluster_object(queue.flavor, "ResourceFlavor", {
            "nodeLabels": {"kubernetes.azure.com/agentpool": pool.name}, "tolerations": tolerations,
        })),
        ("clusterqueues", cluster_object(queue.cluster_queue, "ClusterQueue", {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
            "preemption": {"withinClusterQueue": "LowerPriority"},
            "resourceGroups": [{
                "coveredResources": ["cpu", "memory", "nvidia.com/gpu", DEFAULT_RDMA_RESOURCE],
                "flavors": [{"name": queue.flavor, "resources": [
                    {"name": "cpu", "nominalQuota": str(nd96.cpus)},
                    {"name": "memory", "nominalQuota": f"{nd96.memory_gi}Gi"},
                    {"name": "nvidia.com/gpu", "nominalQuota": str(QUOTA_GPUS)},
                    # TrainingJob workers on an InfiniBand size request it: a resource no flavor
                    # covers keeps a Workload from being admitted at all.
                    {"name": DEFAULT_RDMA_RESOURCE, "nominalQuota": str(RDMA_PODS_PER_NODE)},
                ]}],
            }],
        })),
        ("workloadpriorityclasses", cluster_object(queue.low, "WorkloadPriorityClass", value=LOW)),
        ("workloadpriorityclasses", cluster_object(queue.high, "WorkloadPriorityClass", value=HIGH)),
    ]  # fmt: skip
    try:
        for plural, body in cluster_scoped:
            custom.create_cluster_custom_object(*API, plural, body)
        custom.create_namespaced_custom_object(
            *API, namespace, "localqueues",
            {**cluster_object(queue.local_queue, "LocalQueue", {"clusterQueue": queue.cluster_queue})},
        )  # fmt: skip
        yield queue
    finally:
        # The Jobs go first, then their Workloads, so the ClusterQueue and flavor are unused. The
        # Workloads are deleted here, not left to the garbage collector: it finds a kind installed
        # after it started only at its next discovery sync (every 30 s in kube-controller-manager),
        # and Kueue's kinds were installed for this session, so the wait took up to 20 s.
        delete_jobs(client.BatchV1Api(core.api_client), namespace)
        custom.delete_collection_namespaced_custom_object(*API, namespace, "workloads")
        wait_for(lambda: not workloads(custom, namespace), 60, f"the Workloads of {namespace} to go")
        for plural, body in reversed(cluster_scoped):
            custom.delete_cluster_custom_object(*API, plural, body["metadata"]["name"])
        core.delete_node(queue.node)


def delete_jobs(batch: client.BatchV1Api, namespace: str) -> None:
    """Deletes the namespace's Jobs, their pods first, and waits until they are gone."""
    batch.delete_collection_namespaced_job(namespace, propagation_policy="Foreground")
    wait_for(lambda: not batch.list_namespaced_job(namespace).items, 60, f"the Jobs of {namespace} to go")


def gpu_job(queue: GpuQueue, name: str, priority: str) -> dict[str, Any]:
    """A plain batch Job asking for 4 GPUs through the queue; not suspended (Kueue's webhook does it)."""
    resources = {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": str(GPUS_PER_JOB)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {QUEUE_LABEL: queue.local_queue, PRIORITY_LABEL: priority}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "train",
                            "image": "registry.invalid/train:1",
                            "resources": {"requests": resources, "limits": resources},
                        }
                    ],
                }
            },
        },
    }


def workloads(custom: client.CustomObjectsApi, namespace: str) -> dict[str, dict[str, Any]]:
    """The namespace's Workloads by the name of the Job that owns each."""
    found = custom.list_namespaced_custom_object(*API, namespace, "workloads")["items"]
    return {
        ref["name"]: w
        for w in found
        for ref in w["metadata"].get("ownerReferences", [])
        if ref["kind"] == "Job"
    }


def condition(workload: dict[str, Any], type_: str) -> dict[str, Any]:
    for cond in workload.get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            found: dict[str, Any] = cond
            return found
    return {}


def admitted(workload: dict[str, Any]) -> bool:
    return condition(workload, "Admitted").get("status") == "True"


def running_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]


class Queue:
    """Reads one test's queue: its Jobs, their Workloads and pods, and the ClusterQueue."""

    def __init__(self, queue: GpuQueue, api_client: client.ApiClient) -> None:
        self.queue = queue
        self.batch = client.BatchV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    def submit(self, name: str, priority: str) -> None:
        self.batch.create_namespaced_job(self.queue.namespace, gpu_job(self.queue, name, priority))

    def suspended(self, job: str) -> bool:
        return bool(self.batch.read_namespaced_job(job, self.queue.namespace).spec.suspend)

    def workloads(self) -> dict[str, dict[str, Any]]:
        return workloads(self.custom, self.queue.namespace)

    def running(self, job: str) -> bool:
        """Admitted, unsuspended, and its pod Running on the queue's GPU node."""
        pods = running_pods(self.core, self.queue.namespace, job)
        workload = self.workloads().get(job, {})
        return (
            admitted(workload)
            and not self.suspended(job)
            and len(pods) == 1
            and pods[0].spec.node_name == self.queue.node
        )

    def waiting(self, job: str) -> bool:
        """Suspended by Kueue, no pod, its Workload without a quota reservation."""
        workload = self.workloads().get(job, {})
        reserved = condition(workload, "QuotaReserved")
        pods = self.core.list_namespaced_pod(self.queue.namespace, label_selector=f"job-name={job}").items
        return self.suspended(job) and not pods and reserved.get("status") == "False"

    def cluster_queue(self) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_cluster_custom_object(
            *API, "clusterqueues", self.queue.cluster_queue
        )
        return found


@pytest.fixture
def queue(gpu_queue: GpuQueue, api_client: client.ApiClient) -> Queue:
    return Queue(gpu_queue, api_client)


def test_jobs_are_admitted_up_to_the_gpu_quota_and_the_rest_wait_suspended(queue: Queue) -> None:
    jobs = ["train-a", "train-b", "train-c"]
    for job in jobs:
        queue.submit(job, queue.queue.low)

    def two_running_one_waiting() -> bool:
        return sum(map(queue.running, jobs)) == 2 and sum(map(queue.waiting, jobs)) == 1

    wait_for(two_running_one_waiting, 90, "two Jobs running (8 of 8 GPUs) and one waiting suspended")
    (waiting,) = [job for job in jobs if queue.waiting(job)]
    message = condition(queue.workloads()[waiting], "QuotaReserved")["message"]
    assert "insufficient unused quota for nvidia.com/gpu" in message, message

    # The pods of the admitted Jobs got the flavor's node selection and tolerations from Kueue.
    for job in jobs:
        if job == waiting:
            continue
        (pod,) = running_pods(queue.core, queue.queue.namespace, job)
        assert pod.spec.node_selector == {"kubernetes.azure.com/agentpool": queue.queue.pool}
        tolerated = {(t.key, t.value, t.effect) for t in pod.spec.tolerations or []}
        assert (queue.queue.taint["key"], queue.queue.taint["value"], "NoSchedule") in tolerated

    # The ClusterQueue's status follows the Workloads' a moment later.
    def counts() -> tuple[int, int]:
        status = queue.cluster_queue().get("status", {})
        return status.get("admittedWorkloads", 0), status.get("pendingWorkloads", 0)

    wait_for(lambda: counts() == (2, 1), 30, "the ClusterQueue to count 2 admitted and 1 pending")
    (usage,) = queue.cluster_queue()["status"]["flavorsUsage"]
    gpus = {r["name"]: r["total"] for r in usage["resources"]}["nvidia.com/gpu"]
    assert (usage["name"], gpus) == (queue.queue.flavor, str(QUOTA_GPUS))


def test_a_higher_priority_job_preempts_a_lower_one(queue: Queue) -> None:
    low_jobs = ["low-a", "low-b"]
    for job in low_jobs:
        queue.submit(job, queue.queue.low)
    wait_for(lambda: all(map(queue.running, low_jobs)), 90, "both low-priority Jobs running")

    queue.submit("urgent", queue.queue.high)
    wait_for(lambda: queue.running("urgent"), 90, "the high-priority Job running")

    def one_preempted() -> bool:
        return sum(map(queue.running, low_jobs)) == 1 and sum(map(queue.waiting, low_jobs)) == 1

    wait_for(one_preempted, 60, "one low-priority Job preempted and waiting again, the other running")
    (preempted,) = [job for job in low_jobs if queue.waiting(job)]
    workload = queue.workloads()[preempted]
    evicted = condition(workload, "Evicted")
    assert (evicted.get("status"), evicted.get("reason")) == ("True", "Preempted"), workload["status"]
    assert condition(workload, "Preempted").get("reason") == "InClusterQueue", workload["status"]


# ---- TrainingJobs through Kueue, with the operator ------------------------------------------------
@dataclass(frozen=True)
class TrainingQueue:
    """The test's queue, and two PriorityClasses the workers may run at (Kueue takes a Workload's
    priority from its pods' PriorityClass). Their ``preemptionPolicy`` is ``Never``: only Kueue
    preempts, kube-scheduler does not."""

    queue: GpuQueue
    low: str
    high: str


@pytest.fixture
def training_queue(
    gpu_queue: GpuQueue,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    custom: client.CustomObjectsApi,
) -> Iterator[TrainingQueue]:
    scheduling = client.SchedulingV1Api(api_client)
    names = TrainingQueue(gpu_queue, f"train-{gpu_queue.low}", f"train-{gpu_queue.high}")
    for name, value in ((names.low, LOW), (names.high, HIGH)):
        body = {"metadata": {"name": name}, "value": value, "preemptionPolicy": "Never"}
        scheduling.create_priority_class(body)
    try:
        yield names
    finally:
        # The TrainingJobs go before the queue (whose clean-up deletes their worker Jobs): the
        # operator would otherwise recreate the worker Jobs.
        namespace = gpu_queue.namespace
        custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs")
        wait_for(lambda: not training_job_names(custom, namespace), 30, "the TrainingJobs to go")
        for name in (names.low, names.high):
            scheduling.delete_priority_class(name)


def queued_training_job(queue: GpuQueue, name: str, priority_class: str | None = None) -> dict[str, Any]:
    """One ND96 worker with its 8 GPUs, the whole quota, submitted to the test's LocalQueue."""
    resources = {
        "instanceType": "Standard_ND96isr_H100_v5",
        "nodePool": queue.pool,
        "nodes": 1,
        "gpusPerNode": QUOTA_GPUS,
    }
    priority = {"priorityClassName": priority_class} if priority_class else {}
    return training_job(
        name,
        output={"uri": f"az://models/{name}"},
        resources=resources,
        queueName=queue.local_queue,
        backoffLimit=0,
        **priority,
    )


def submit(
    custom: client.CustomObjectsApi, queue: GpuQueue, name: str, priority_class: str | None = None
) -> None:
    manifest = queued_training_job(queue, name, priority_class)
    custom.create_namespaced_custom_object(GROUP, VERSION, queue.namespace, "trainingjobs", manifest)


def phase_of(custom: client.CustomObjectsApi, namespace: str, name: str) -> str | None:
    found = get_training_job(custom, namespace, name) or {}
    phase: str | None = found.get("status", {}).get("phase")
    return phase


def scheduled(tj: dict[str, Any]) -> tuple[str, str, str]:
    found = tj_condition(tj, c.COND_SCHEDULED) or {}
    return found.get("status", ""), found.get("reason", ""), found.get("message", "")


def test_two_training_jobs_over_the_quota_one_runs_the_other_waits_queued_until_it_finishes(
    training_queue: TrainingQueue,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    queue = training_queue.queue
    namespace = queue.namespace
    for name in ("tj-a", "tj-b"):
        submit(custom, queue, name)

    def one_running() -> bool:
        return sorted(phase_of(custom, namespace, n) or "" for n in ("tj-a", "tj-b")) == [
            "Pending",
            "Running",
        ]

    wait_for(one_running, 90, "one TrainingJob Running, the other Pending in Kueue's queue")
    (running,) = [n for n in ("tj-a", "tj-b") if phase_of(custom, namespace, n) == "Running"]
    (waiting,) = {"tj-a", "tj-b"} - {running}

    # The waiting gang holds nothing: its Job is suspended, no worker exists, and its status quotes Kueue.
    queued = wait_for_training_job(
        custom,
        namespace,
        waiting,
        lambda tj: "insufficient unused quota for nvidia.com/gpu" in scheduled(tj)[2],
        "Kueue's reason in the Scheduled condition",
    )
    status, reason, message = scheduled(queued)
    assert (status, reason) == ("False", c.REASON_WAITING_FOR_ADMISSION)
    assert message.startswith(
        f"Waiting for Kueue to admit the workers as a whole (queue '{queue.local_queue}'): "
    )
    assert batch.read_namespaced_job(waiting, namespace).spec.suspend is True
    assert not worker_pods(core, namespace, waiting)
    assert queued["status"]["gpus"] == 0 and queued["status"].get("requeues", 0) == 0

    finish_workers(core, namespace, running, succeeded=True)
    wait_for_phase(custom, namespace, running, "Succeeded")
    admitted = wait_for_phase(custom, namespace, waiting, "Running", timeout=90)

    assert admitted["status"]["restarts"] == 0 and scheduled(admitted)[:2] == (
        "True",
        c.REASON_ALL_WORKERS_SCHEDULED,
    )
    (pod,) = worker_pods(core, namespace, waiting)
    assert pod.spec.node_name == queue.node


def test_a_higher_priority_training_job_preempts_a_lower_one_which_resumes_when_readmitted(
    training_queue: TrainingQueue,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    """kwok stands in for the kubelet and the runtime: the preempted worker stops at once (exit code 143)
    where the runtime would save a checkpoint in its grace period, and the test publishes the progress
    rank 0 would. That SIGTERM leads to a checkpoint and a restarted worker resumes from the latest one
    is the runtime tier's test (``tests/runtime/test_train_supervise.py``)."""
    queue = training_queue.queue
    namespace = queue.namespace
    submit(custom, queue, "low", training_queue.low)
    wait_for_phase(custom, namespace, "low", "Running", timeout=90)
    (first_worker,) = worker_pods(core, namespace, "low")
    checkpoint = "az://models/low/checkpoints/step-40"
    publish_progress(core, namespace, "low", step=40, total_steps=100, loss=1.7, last_checkpoint=checkpoint)
    wait_for_training_job(
        custom,
        namespace,
        "low",
        lambda tj: (tj["status"].get("progress") or {}).get("lastCheckpoint") == checkpoint,
        "the checkpoint mirrored",
    )

    submit(custom, queue, "high", training_queue.high)

    preempted = wait_for_training_job(
        custom,
        namespace,
        "low",
        lambda tj: scheduled(tj)[1] == c.REASON_PREEMPTED,
        "Scheduled=False, reason Preempted",
        timeout=90,
    )
    status, _, message = scheduled(preempted)
    assert status == "False"
    assert "Preempted to accommodate a workload" in message, message
    running = tj_condition(preempted, c.COND_RUNNING) or {}
    assert (running.get("status"), running.get("reason")) == ("False", c.REASON_PREEMPTED)
    assert preempted["status"]["phase"] == "Pending"
    assert (preempted["status"]["restarts"], preempted["status"].get("failures", [])) == (0, [])
    assert tj_condition(preempted, c.COND_FAILED) is None
    assert batch.read_namespaced_job("low", namespace).spec.suspend is True, "Kueue suspended the Job"
    wait_for(lambda: not worker_pods(core, namespace, "low"), 60, "the preempted worker to stop")
    wait_for_phase(custom, namespace, "high", "Running", timeout=90)

    finish_workers(core, namespace, "high", succeeded=True)
    wait_for_phase(custom, namespace, "high", "Succeeded")
    resumed = wait_for_phase(custom, namespace, "low", "Running", timeout=90)

    (worker,) = worker_pods(core, namespace, "low")
    assert worker.metadata.uid != first_worker.metadata.uid, "a new worker, made by the Job controller"
    assert worker.metadata.labels[c.LABEL_RESTART_ATTEMPT] == "0", "the same attempt: not a gang restart"
    status_now = resumed["status"]
    assert (status_now["restarts"], status_now.get("failures", [])) == (0, [])
    assert status_now["progress"]["lastCheckpoint"] == checkpoint, "where the resumed runtime starts from"
    assert tj_condition(resumed, c.COND_FAILED) is None

    publish_progress(core, namespace, "low", step=100, total_steps=100, loss=1.2)
    finish_workers(core, namespace, "low", succeeded=True)
    done = wait_for_phase(custom, namespace, "low", "Succeeded")
    assert (done["status"]["restarts"], done["status"]["progress"]["step"]) == (0, 100)
