"""The ModelDeployment reconcile over an in-memory API: the capacity manager is asked for the nodes of
every desired replica, its conditions land in the status, and the demand is released when no replica
is wanted or the object is gone; an invalid spec is reported and recovers once fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.common import NodePlacement
from modelfleet_operator.capacity.manager import CapacityCondition
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.serving.reconcile import ModelDeploymentReconciler

from tests.unit.fake_kube import FakeKube

pytestmark = pytest.mark.unit

NS = "team-a"
NOW = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)


class FakeCapacity:
    """``CapacityManager.ensure``/``release`` recorded; answers CapacityReady as the real one does."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, int, bool]] = []
        self.released: list[str] = []

    def ensure(
        self, key: str, placement: NodePlacement, nodes: int, *, scheduled: bool
    ) -> list[CapacityCondition]:
        self.asked.append((key, placement.instance_type.value, nodes, scheduled))
        reason = c.REASON_CAPACITY_AVAILABLE if scheduled else c.REASON_WAITING_FOR_NODES
        return [
            CapacityCondition(c.COND_CAPACITY_READY, scheduled, reason, f"{nodes} nodes"),
            CapacityCondition(c.COND_QUOTA_EXCEEDED, False, c.REASON_QUOTA_AVAILABLE, "ok", True),
        ]

    def release(self, key: str) -> None:
        self.released.append(key)


def make(
    kube: FakeKube, capacity: FakeCapacity | None, config: OperatorConfig | None = None, **spec: Any
) -> ModelDeploymentReconciler:
    kube.objects[("ModelDeployment", NS, "llm")] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llm", "namespace": NS, "uid": "md-uid", "generation": 1},
        "spec": {"model": {"uri": "org/model"}, **spec},
    }
    events: list[tuple[str, str]] = []
    reconciler = ModelDeploymentReconciler(
        kube,  # type: ignore[arg-type]
        config or OperatorConfig(serving_image="serve:1"),
        lambda body, type_, reason, message: events.append((type_, reason)),
        clock=lambda: NOW,
        capacity=capacity,  # type: ignore[arg-type]
    )
    reconciler.events = events  # type: ignore[attr-defined]
    return reconciler


def status(kube: FakeKube) -> dict[str, Any]:
    found: dict[str, Any] = kube.objects[("ModelDeployment", NS, "llm")].get("status", {})
    return found


def conditions(kube: FakeKube) -> dict[str, tuple[str, str]]:
    return {x["type"]: (x["status"], x["reason"]) for x in status(kube).get("conditions", [])}


def bind_pods(kube: FakeKube, count: int) -> None:
    for index in range(count):
        kube.objects[("Pod", NS, f"llm-stable-{index}")] = {
            "metadata": {
                "name": f"llm-stable-{index}",
                "creationTimestamp": "2026-11-22T09:00:00Z",
                "labels": {c.LABEL_MODEL_DEPLOYMENT: "llm", c.LABEL_COMPONENT: c.COMPONENT_SERVER},
            },
            "spec": {"nodeName": f"node-{index}"},
            "status": {"phase": "Running"},
        }


def test_capacity_is_asked_for_every_replica_until_they_are_placed_and_released_when_gone() -> None:
    kube, capacity = FakeKube(), FakeCapacity()
    reconciler = make(
        kube,
        capacity,
        replicas=3,
        resources={"instanceType": "Standard_NC80adis_H100_v5", "gpusPerReplica": 1},
    )

    reconciler.reconcile(NS, "llm")

    assert capacity.asked == [("md-uid", "Standard_NC80adis_H100_v5", 2, False)]  # 3 x 1 GPU on 2-GPU VMs
    assert conditions(kube)[c.COND_CAPACITY_READY] == ("False", c.REASON_WAITING_FOR_NODES)
    assert c.COND_QUOTA_EXCEEDED not in conditions(kube)  # only cleared when it was set

    bind_pods(kube, 3)
    reconciler.reconcile(NS, "llm")

    assert capacity.asked[-1] == ("md-uid", "Standard_NC80adis_H100_v5", 2, True)
    assert conditions(kube)[c.COND_CAPACITY_READY] == ("True", c.REASON_CAPACITY_AVAILABLE)
    assert capacity.released == []

    reconciler.forget("md-uid")

    assert capacity.released == ["md-uid"]


def test_no_replica_wanted_releases_the_demand() -> None:
    kube, capacity = FakeKube(), FakeCapacity()
    reconciler = make(kube, capacity, replicas=0)

    reconciler.reconcile(NS, "llm")

    assert (capacity.asked, capacity.released) == ([], ["md-uid"])
    assert c.COND_CAPACITY_READY not in conditions(kube)


def test_without_the_capacity_manager_no_capacity_condition_is_set() -> None:
    kube = FakeKube()
    make(kube, None, replicas=1).reconcile(NS, "llm")

    assert "phase" in status(kube)
    assert c.COND_CAPACITY_READY not in conditions(kube)


def test_an_invalid_spec_fails_and_recovers_once_fixed() -> None:
    kube = FakeKube()
    reconciler = make(kube, None, replicas=1)
    kube.objects[("ModelDeployment", NS, "llm")]["spec"]["resources"] = {"gpusPerReplica": 0}

    reconciler.reconcile(NS, "llm")

    assert (status(kube)["phase"], conditions(kube)[c.COND_FAILED]) == (
        "Failed",
        ("True", c.REASON_INVALID_SPEC),
    )
    assert kube.creates == []

    body = kube.objects[("ModelDeployment", NS, "llm")]
    body["spec"]["resources"] = {"gpusPerReplica": 1}
    body["metadata"]["generation"] = 2
    reconciler.reconcile(NS, "llm")

    assert c.COND_FAILED not in conditions(kube)
    assert status(kube)["phase"] != "Failed"
    assert status(kube)["observedGeneration"] == 2
    assert ("Deployment", "llm-stable") in kube.creates


def test_a_missing_runtime_service_account_creates_no_child_until_it_exists() -> None:
    kube = FakeKube()
    config = OperatorConfig(serving_image="serve:1", runtime_service_account="modelfleet-runtime")
    reconciler = make(kube, None, config, replicas=1)

    reconciler.reconcile(NS, "llm")

    assert kube.creates == []
    assert status(kube)["phase"] == "Pending"
    not_found = ("False", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)
    assert conditions(kube)[c.COND_SERVICE_ACCOUNT_READY] == not_found
    assert conditions(kube)[c.COND_AVAILABLE] == not_found
    assert conditions(kube)[c.COND_PROGRESSING] == not_found
    available = next(x for x in status(kube)["conditions"] if x["type"] == c.COND_AVAILABLE)
    assert "ServiceAccount modelfleet-runtime (the operator's runtime service account" in available["message"]
    events = reconciler.events  # type: ignore[attr-defined]
    assert [e for e in events if e[0] == "Warning"] == [("Warning", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)]
    writes = kube.status_writes
    reconciler.reconcile(NS, "llm")
    assert (kube.creates, kube.status_writes) == ([], writes)

    kube.add_service_account(NS, "modelfleet-runtime")
    reconciler.reconcile(NS, "llm")

    deployment = kube.objects[("Deployment", NS, "llm-stable")]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "modelfleet-runtime"
    assert status(kube)["phase"] == "Deploying"
    assert conditions(kube)[c.COND_SERVICE_ACCOUNT_READY] == ("True", c.REASON_SERVICE_ACCOUNT_FOUND)
    assert conditions(kube)[c.COND_AVAILABLE] == ("False", c.REASON_REPLICAS_UNAVAILABLE)


def test_a_rollout_to_a_missing_account_is_held_and_the_previous_replicas_keep_serving() -> None:
    kube = FakeKube()
    reconciler = make(kube, None, replicas=1)
    reconciler.reconcile(NS, "llm")
    kube.objects[("Deployment", NS, "llm-stable")]["status"] = {"readyReplicas": 1, "updatedReplicas": 1}
    reconciler.reconcile(NS, "llm")
    assert status(kube)["phase"] == "Ready"
    template_before = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]

    body = kube.objects[("ModelDeployment", NS, "llm")]
    body["spec"]["serviceAccountName"] = "team-sa"
    body["metadata"]["generation"] = 2
    reconciler.reconcile(NS, "llm")

    assert kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"] == template_before
    assert status(kube)["phase"] == "Degraded"
    assert conditions(kube)[c.COND_AVAILABLE] == ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)
    assert conditions(kube)[c.COND_PROGRESSING] == ("False", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)

    kube.add_service_account(NS, "team-sa")
    reconciler.reconcile(NS, "llm")

    template = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == "team-sa"
    assert conditions(kube)[c.COND_SERVICE_ACCOUNT_READY] == ("True", c.REASON_SERVICE_ACCOUNT_FOUND)
