"""What the benchmark creates (TrainingJobs, ModelDeployments) and the children a TrainingJob must get.

The children come from the operator's own pure builders, so the plain reference client creates exactly
what the operator creates, and "all its children" means the same set for both.
"""

from __future__ import annotations

from typing import Any

from modelfleet_api import API_VERSION
from modelfleet_api.trainingjob import TrainingJob
from modelfleet_operator.config import DEFAULT_TRAINING_IMAGE
from modelfleet_operator.training import builders

from benchmarks.scale.kubeapi import collection_path

Json = dict[str, Any]
POOL = "bench"
"""The node pool of the benchmark's fake nodes (see ``plane.BENCH_POOL``)."""
INSTANCE_TYPE = "Standard_NC40adis_H100_v5"
PLACEMENT = {"instanceType": INSTANCE_TYPE, "nodePool": POOL, "cpu": "1", "memory": "1Gi"}
"""The benchmark's pool, with small CPU and memory requests so thousands of pods fit on its fake nodes."""
PLURALS = {
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ConfigMap": "configmaps",
    "Service": "services",
    "Job": "jobs",
    "Pod": "pods",
    "TrainingJob": "trainingjobs",
    "ModelDeployment": "modeldeployments",
}
"""Plural of every kind the benchmark creates or watches; a builder's new kind must be added here."""
API_VERSIONS = {
    "Pod": "v1",
    "TrainingJob": API_VERSION,
    "ModelDeployment": API_VERSION,
}


def path_of(api_version: str, kind: str, namespace: str) -> str:
    """The collection a ``kind`` object of ``namespace`` is created in (and watched at)."""
    if kind not in PLURALS:
        raise KeyError(f"the benchmark does not know the plural of kind {kind!r}: add it to PLURALS")
    return collection_path(api_version, PLURALS[kind], namespace)


def _custom_resource(kind: str, name: str, spec: Json) -> Json:
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}


def training_job(name: str, workers: int) -> Json:
    """A TrainingJob of ``workers`` one-GPU workers on the benchmark's pool; nothing about it changes on
    a timer during a run (no scheduling timeout, no stall restart)."""
    return _custom_resource(
        "TrainingJob",
        name,
        {
            "model": {"uri": "/models/tiny"},
            "dataset": {"uri": "/data/tiny.jsonl"},
            "output": {"uri": f"az://out/{name}"},  # a multi-node job's output may not be a pod path
            "resources": {**PLACEMENT, "nodes": workers, "gpusPerNode": 1},
            "schedulingTimeoutSeconds": 0,
            "stallTimeoutSeconds": 0,
        },
    )


def model_deployment(name: str) -> Json:
    """A one-replica vLLM ModelDeployment on the benchmark's pool (fixed replicas: no autoscaler)."""
    spec = {"model": {"uri": "/models/tiny"}, "engine": {"type": "vllm"}, "replicas": 1}
    return _custom_resource(
        "ModelDeployment", name, {**spec, "resources": {**PLACEMENT, "gpusPerReplica": 1}}
    )


def children_of(created: Json) -> list[Json]:
    """The children the operator creates for a TrainingJob (as the API server returned it: with its
    uid), in the operator's order: the long-lived ones, then the worker Job of attempt 0."""
    job = TrainingJob.model_validate(created)
    owner = builders.Owner.of(job)
    return [
        *builders.static_children(owner, job.spec),
        builders.worker_job(owner, job.spec, image=DEFAULT_TRAINING_IMAGE, attempt=0),
    ]


def _children_by_name(name: str, namespace: str, workers: int) -> list[Json]:
    """The children of the benchmark's TrainingJob ``name``; its uid changes no child's name or kind."""
    stand_in = {**training_job(name, workers), "metadata": {"name": name, "namespace": namespace, "uid": "0"}}
    return children_of(stand_in)


def child_keys(name: str, namespace: str, workers: int) -> list[tuple[str, str]]:
    """(kind, name) of every child of TrainingJob ``name``."""
    return [(m["kind"], m["metadata"]["name"]) for m in _children_by_name(name, namespace, workers)]


def child_kinds(namespace: str, workers: int) -> dict[str, str]:
    """kind -> apiVersion of every kind of child a TrainingJob gets."""
    return {m["kind"]: m["apiVersion"] for m in _children_by_name("x", namespace, workers)}
