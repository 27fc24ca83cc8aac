"""The ModelDeployment passes over an in-memory API: the whole desired state applied once, drift put back,
children the plan no longer names pruned, replicas left to an autoscaler, the capacity manager asked for
the nodes of every desired replica and released when none is wanted; an invalid spec is reported and
recovers once fixed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.common import NodePlacement
from modelfleet_api.serving import EngineType
from modelfleet_operator.capacity.manager import CapacityCondition
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.serving.reconcile import ModelDeploymentController

from tests.unit.fake_kube import FakeKube, Harness

pytestmark = pytest.mark.unit
IMAGES = dict.fromkeys(EngineType, "serve:1")

NS = "team-a"
NOW = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
KEDA_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "scaledobjects.keda.sh", "namespace": ""},
    "spec": {"versions": [{"name": "v1alpha1", "served": True}]},
    "status": {"conditions": [{"type": "Established", "status": "True"}]},
}


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
) -> Harness:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llm", "namespace": NS, "uid": "md-uid", "generation": 1},
        "spec": {"model": {"uri": "org/model"}, **spec},
    }
    controller = ModelDeploymentController(config or OperatorConfig(serving_images=IMAGES))
    return Harness(kube, controller, body, lambda: NOW, capacity=capacity)


def bind_pods(kube: FakeKube, count: int) -> None:
    for index in range(count):
        kube.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"llm-stable-{index}",
                    "namespace": NS,
                    "creationTimestamp": "2026-11-22T09:00:00Z",
                    "labels": {
                        c.LABEL_MODEL_DEPLOYMENT: "llm",
                        c.LABEL_COMPONENT: c.COMPONENT_SERVER,
                        c.LABEL_MANAGED_BY: c.MANAGED_BY,
                    },
                },
                "spec": {"nodeName": f"node-{index}"},
                "status": {"phase": "Running"},
            }
        )


def ready(kube: FakeKube, track: str = "stable") -> None:
    deployment = kube.objects[("Deployment", NS, f"llm-{track}")]
    replicas = deployment["spec"]["replicas"]
    deployment["status"] = {"readyReplicas": replicas, "updatedReplicas": replicas, "replicas": replicas}


def test_the_desired_state_is_applied_once_drift_is_put_back_and_idle_passes_write_nothing() -> None:
    kube = FakeKube()
    md = make(kube, None, replicas=2)

    md.reconcile()

    assert kube.applies == [  # the pod owner after what its pods use
        ("ConfigMap", "llm-stable-config"),
        ("Service", "llm"),
        ("PodDisruptionBudget", "llm"),
        ("Deployment", "llm-stable"),
    ]
    assert md.status["phase"] == "Pending", "reported from what was observed before the apply"
    md.reconcile()  # woken by the Deployment's creation
    assert md.status["phase"] == "Deploying"
    ready(kube)
    md.reconcile()
    assert (md.status["phase"], md.status["ready"]) == ("Ready", "2/2")
    applied, writes = len(kube.applies), kube.status_writes
    md.reconcile()
    assert (len(kube.applies), kube.status_writes) == (applied, writes)

    container = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = "edited/by-hand:1"
    kube.objects[("ConfigMap", NS, "llm-stable-config")]["data"]["config.yaml"] = "model: {uri: other}\n"
    md.reconcile()
    assert kube.applies[applied:] == [("ConfigMap", "llm-stable-config"), ("Deployment", "llm-stable")]
    container = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "serve:1"


def test_an_env_var_removed_from_the_spec_leaves_the_deployment_on_the_next_pass() -> None:
    """The Deployment still holds everything the new plan wants, so drift alone would keep the removed
    variable; the first pass after the spec change applies the children again (a server-side apply
    drops what its manager no longer sets), and only that pass does."""
    kube = FakeKube()
    env = [{"name": "KEEP", "value": "1"}, {"name": "DROP", "value": "2"}]
    md = make(kube, None, env=env)
    md.reconcile()
    md.reconcile()
    applied = len(kube.applies)

    md.body["spec"]["env"] = env[:1]
    md.body["metadata"]["generation"] = 2
    md.reconcile()
    md.reconcile()

    assert kube.applies[applied:] == [
        ("ConfigMap", "llm-stable-config"),
        ("Service", "llm"),
        ("PodDisruptionBudget", "llm"),
        ("Deployment", "llm-stable"),
    ]
    container = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]["spec"]["containers"][0]
    names = {var["name"] for var in container["env"]}
    assert "KEEP" in names and "DROP" not in names


def test_a_removed_canary_and_a_replaced_autoscaler_are_pruned() -> None:
    kube = FakeKube()
    canary = {"replicas": 1, "weight": 10, "image": "serve:2"}
    autoscaling = {"minReplicas": 1, "maxReplicas": 3, "metric": "queueDepth", "target": 4}
    md = make(kube, None, canary=canary, autoscaling=autoscaling)
    md.reconcile()
    assert {("Deployment", "llm-canary"), ("HorizontalPodAutoscaler", "llm")} <= set(kube.applies)

    del md.body["spec"]["canary"]
    md.body["metadata"]["generation"] = 2
    kube.add(KEDA_CRD)  # KEDA is installed: its ScaledObject replaces the HPA
    md.reconcile()

    assert set(kube.deletes) == {
        ("ConfigMap", "llm-canary-config"),
        ("Deployment", "llm-canary"),
        ("HorizontalPodAutoscaler", "llm"),
    }
    assert ("ScaledObject", "llm") in kube.applies
    assert "canary" not in md.status and md.conditions()[c.COND_AUTOSCALING][1] == c.REASON_KEDA_SCALED_OBJECT


def test_under_an_autoscaler_the_replicas_are_the_autoscalers_once_it_scaled() -> None:
    kube = FakeKube()
    md = make(kube, None, replicas=3)
    md.reconcile()
    assert kube.objects[("Deployment", NS, "llm-stable")]["spec"]["replicas"] == 3

    md.body["spec"] = {
        "model": {"uri": "org/model"},
        "autoscaling": {"minReplicas": 1, "maxReplicas": 5, "metric": "queueDepth", "target": 4},
    }
    md.body["metadata"]["generation"] = 2
    md.reconcile()
    deployment = kube.objects[("Deployment", NS, "llm-stable")]
    assert deployment["spec"]["replicas"] == 3, "while the operator owns them it keeps the live count"

    deployment["spec"]["replicas"] = 5  # the HPA scaled (an update: the field is its own now)
    deployment["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"].pop("f:replicas")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "edited/by-hand:1"
    md.reconcile()

    deployment = kube.objects[("Deployment", NS, "llm-stable")]
    assert deployment["spec"]["replicas"] == 5
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "serve:1"


def test_capacity_is_asked_for_every_replica_until_they_are_placed_and_released_when_gone() -> None:
    kube, capacity = FakeKube(), FakeCapacity()
    md = make(
        kube,
        capacity,
        replicas=3,
        resources={"instanceType": "Standard_NC80adis_H100_v5", "gpusPerReplica": 1},
    )

    md.reconcile()  # the Deployment is created: its replicas are wanted from the next pass on
    md.reconcile()

    assert capacity.asked == [("md-uid", "Standard_NC80adis_H100_v5", 2, False)]  # 3 x 1 GPU on 2-GPU VMs
    assert md.conditions()[c.COND_CAPACITY_READY] == ("False", c.REASON_WAITING_FOR_NODES)
    assert c.COND_QUOTA_EXCEEDED not in md.conditions()  # only cleared when it was set
    assert md.requeue_at is not None, "pool operations are not watched: asked again later"

    bind_pods(kube, 3)
    md.reconcile()

    assert capacity.asked[-1] == ("md-uid", "Standard_NC80adis_H100_v5", 2, True)
    assert md.conditions()[c.COND_CAPACITY_READY] == ("True", c.REASON_CAPACITY_AVAILABLE)
    md.engine.forget("md-uid")
    assert capacity.released[-1] == "md-uid"


def test_no_replica_wanted_releases_the_demand() -> None:
    kube, capacity = FakeKube(), FakeCapacity()
    md = make(kube, capacity, replicas=0)

    md.reconcile()

    assert (capacity.asked, capacity.released) == ([], ["md-uid"])
    assert c.COND_CAPACITY_READY not in md.conditions()


def test_an_invalid_spec_fails_and_recovers_once_fixed() -> None:
    kube = FakeKube()
    md = make(kube, None, replicas=1)
    md.body["spec"]["resources"] = {"gpusPerReplica": 0}

    md.reconcile()

    assert (md.status["phase"], md.conditions()[c.COND_FAILED]) == ("Failed", ("True", c.REASON_INVALID_SPEC))
    assert md.messages[-1].endswith(" Running replicas keep the previous spec.")
    assert kube.applies == []

    md.body["spec"]["resources"] = {"gpusPerReplica": 1}
    md.body["metadata"]["generation"] = 2
    md.reconcile()

    assert c.COND_FAILED not in md.conditions()
    assert md.status["phase"] != "Failed"
    assert md.status["observedGeneration"] == 2
    assert ("Deployment", "llm-stable") in kube.applies


def test_a_missing_runtime_service_account_creates_no_child_until_it_exists() -> None:
    kube = FakeKube()
    config = OperatorConfig(serving_images=IMAGES, runtime_service_account="modelfleet-runtime")
    md = make(kube, None, config, replicas=1)

    md.reconcile()

    assert kube.applies == []
    assert md.status["phase"] == "Pending"
    not_found = ("False", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)
    assert md.conditions()[c.COND_SERVICE_ACCOUNT_READY] == not_found
    assert md.conditions()[c.COND_AVAILABLE] == not_found
    assert md.conditions()[c.COND_PROGRESSING] == not_found
    available = next(x for x in md.status["conditions"] if x["type"] == c.COND_AVAILABLE)
    assert "ServiceAccount modelfleet-runtime (the operator's runtime service account" in available["message"]
    assert [e for e in md.events if e[0] == "Warning"] == [("Warning", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)]
    writes = kube.status_writes
    md.reconcile()
    assert (kube.applies, kube.status_writes) == ([], writes)

    kube.add_service_account(NS, "modelfleet-runtime")
    md.reconcile()

    deployment = kube.objects[("Deployment", NS, "llm-stable")]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "modelfleet-runtime"
    md.reconcile()
    assert md.status["phase"] == "Deploying"
    assert md.conditions()[c.COND_SERVICE_ACCOUNT_READY] == ("True", c.REASON_SERVICE_ACCOUNT_FOUND)
    assert md.conditions()[c.COND_AVAILABLE] == ("False", c.REASON_REPLICAS_UNAVAILABLE)


def test_a_rollout_to_a_missing_account_is_held_and_the_previous_replicas_keep_serving() -> None:
    kube = FakeKube()
    md = make(kube, None, replicas=1)
    md.reconcile()
    ready(kube)
    md.reconcile()
    assert md.status["phase"] == "Ready"
    template_before = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]

    md.body["spec"]["serviceAccountName"] = "team-sa"
    md.body["metadata"]["generation"] = 2
    md.reconcile()

    assert kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"] == template_before
    assert md.status["phase"] == "Degraded"
    assert md.conditions()[c.COND_AVAILABLE] == ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)
    assert md.conditions()[c.COND_PROGRESSING] == ("False", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)

    kube.add_service_account(NS, "team-sa")
    md.reconcile()

    template = kube.objects[("Deployment", NS, "llm-stable")]["spec"]["template"]
    assert template["spec"]["serviceAccountName"] == "team-sa"
    assert md.conditions()[c.COND_SERVICE_ACCOUNT_READY] == ("True", c.REASON_SERVICE_ACCOUNT_FOUND)


def test_a_missing_secret_or_claim_creates_no_child_until_it_exists() -> None:
    kube = FakeKube()
    md = make(
        kube, None, replicas=1, apiKeySecret={"name": "llm-key"}, modelCache={"pvc": {"claimName": "cache"}}
    )
    kube.add_named("v1", "PersistentVolumeClaim", NS, "cache")

    md.reconcile()

    assert kube.applies == []
    missing = ("False", c.REASON_REFERENCE_MISSING)
    assert md.status["phase"] == "Pending"
    assert md.conditions()[c.COND_REFERENCES_READY] == missing
    assert md.conditions()[c.COND_AVAILABLE] == missing
    assert md.conditions()[c.COND_PROGRESSING] == missing
    available = next(x for x in md.status["conditions"] if x["type"] == c.COND_AVAILABLE)
    assert available["message"].startswith(
        f"Secret llm-key (spec.apiKeySecret.name) does not exist in namespace {NS}. Create it"
    )
    writes = kube.status_writes
    md.reconcile()
    assert (kube.applies, kube.status_writes) == ([], writes)

    kube.add_named("v1", "Secret", NS, "llm-key")
    md.reconcile()

    assert ("Deployment", NS, "llm-stable") in kube.objects
    md.reconcile()
    assert md.status["phase"] == "Deploying"
    assert md.conditions()[c.COND_REFERENCES_READY] == ("True", c.REASON_REFERENCES_FOUND)


def test_a_secret_deleted_later_holds_the_next_rollout_while_the_replicas_keep_serving() -> None:
    kube = FakeKube()
    kube.add_named("v1", "Secret", NS, "llm-key")
    md = make(kube, None, replicas=1, apiKeySecret={"name": "llm-key"})
    md.reconcile()
    ready(kube)
    md.reconcile()
    assert md.status["phase"] == "Ready" and c.COND_REFERENCES_READY not in md.conditions()

    del kube.objects[("Secret", NS, "llm-key")]
    md.body["spec"]["replicas"] = 2
    md.body["metadata"]["generation"] = 2
    md.reconcile()

    assert kube.objects[("Deployment", NS, "llm-stable")]["spec"]["replicas"] == 1
    assert md.status["phase"] == "Degraded"
    assert md.conditions()[c.COND_AVAILABLE] == ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)
    assert md.conditions()[c.COND_PROGRESSING] == ("False", c.REASON_REFERENCE_MISSING)


def test_the_last_replicas_start_up_breakdown_stays_when_no_replica_is_left() -> None:
    kube = FakeKube()
    md = make(kube, None, replicas=1)
    md.reconcile()
    bind_pods(kube, 1)
    pod = kube.objects[("Pod", NS, "llm-stable-0")]
    pod["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-22T09:00:02Z"},
        {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-11-22T09:00:30Z"},
        {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T09:00:31Z"},
    ]
    ready(kube)
    md.reconcile()
    breakdown = {"pod": "llm-stable-0", "scheduledSeconds": 2, "engineLoadedSeconds": 30, "readySeconds": 31}
    assert md.status["startup"] == breakdown

    del kube.objects[("Pod", NS, "llm-stable-0")]  # scaled to zero: the replica is gone
    md.reconcile()

    assert md.status["startup"] == breakdown
