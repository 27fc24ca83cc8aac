"""The reconcile's ordered steps over an in-memory API: idempotence, crash-safe restart counting,
backoff, and status written only on change. (The cluster tier runs the same code for real.)"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.training.reconcile import TrainingJobReconciler

from tests.unit.fake_kube import FakeKube as BaseFakeKube

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
NS = "ml"


class FakeKube(BaseFakeKube):
    """The shared in-memory API plus what the cluster would do for this test."""

    # ---- what the cluster would do ----------------------------------------------------------------
    def add_worker(self, index: int, phase: str, **status: Any) -> None:
        job = self.objects[("Job", NS, "tiny")]
        name = f"tiny-{index}-{job['metadata']['labels']['modelfleet.io/restart-attempt']}"
        self.objects[("Pod", NS, name)] = {
            "metadata": {
                "name": name,
                "labels": {
                    "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
                    "batch.kubernetes.io/job-completion-index": str(index),
                },
            },
            "spec": {"nodeName": f"node-{index}"},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}], **status},
        }


def make(
    kube: FakeKube,
    config: OperatorConfig | None = None,
    clock: Callable[[], datetime] | None = None,
    **spec: Any,
) -> TrainingJobReconciler:
    kube.objects[("TrainingJob", NS, "tiny")] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "tiny", "namespace": NS, "uid": "tj-uid", "generation": 1},
        "spec": {
            "model": {"uri": "/m"},
            "dataset": {"uri": "/d"},
            "output": {"uri": "/o"},
            "resources": {"instanceType": "Standard_NC40adis_H100_v5", "nodes": 2},
            **spec,
        },
    }
    ticks = iter(T0 + timedelta(seconds=s) for s in itertools.count())
    events: list[tuple[str, str]] = []
    reconciler = TrainingJobReconciler(
        kube,  # type: ignore[arg-type]
        config or OperatorConfig(training_image="img:1"),
        lambda body, type_, reason, message: events.append((type_, reason)),
        clock=clock or (lambda: next(ticks)),
    )
    reconciler.events = events  # type: ignore[attr-defined]
    return reconciler


def status(kube: FakeKube) -> dict[str, Any]:
    found: dict[str, Any] = kube.objects[("TrainingJob", NS, "tiny")].get("status", {})
    return found


def test_passes_create_each_child_once_and_idle_passes_write_nothing() -> None:
    kube = FakeKube()
    reconciler = make(kube)

    reconciler.reconcile(NS, "tiny")
    reconciler.reconcile(NS, "tiny")

    assert kube.creates == [
        ("ServiceAccount", "tiny-worker"),
        ("Role", "tiny-worker"),
        ("RoleBinding", "tiny-worker"),
        ("ConfigMap", "tiny-progress"),
        ("ConfigMap", "tiny-config"),
        ("Service", "tiny"),
        ("Job", "tiny"),
    ]
    assert status(kube)["phase"] == "Scheduling"
    kube.add_worker(0, "Running")
    kube.add_worker(1, "Running")
    reconciler.reconcile(NS, "tiny")
    assert (status(kube)["phase"], status(kube)["workers"], status(kube)["gpus"]) == ("Running", "2/2", 2)
    writes = kube.status_writes
    reconciler.reconcile(NS, "tiny")
    assert kube.status_writes == writes
    # a restarted operator (fresh reconciler, same API state) creates nothing again
    make_again = TrainingJobReconciler(kube, OperatorConfig(), lambda *_: None)  # type: ignore[arg-type]
    make_again.reconcile(NS, "tiny")
    assert len(kube.creates) == 7
    assert reconciler.events == [
        ("Warning", "WaitingForCapacity"),
        ("Normal", "AllWorkersScheduled"),  # type: ignore[attr-defined]
        ("Normal", "AllWorkersRunning"),
    ]


def test_a_restart_is_counted_before_the_old_gang_is_deleted() -> None:
    kube = FakeKube()
    reconciler = make(kube, backoffLimit=2)
    reconciler.reconcile(NS, "tiny")
    kube.add_worker(0, "Running")
    kube.add_worker(1, "Failed", containerStatuses=[{"state": {"terminated": {"exitCode": 3}}}])

    kube.fail_next_delete = True
    with pytest.raises(ConnectionError):
        reconciler.reconcile(NS, "tiny")

    assert (status(kube)["restarts"], status(kube)["lastRestartReason"]) == (1, "WorkerFailed")
    assert ("Job", NS, "tiny") in kube.objects  # the crash left the old gang in place ...
    reconciler.reconcile(NS, "tiny")  # ... and the next pass removes it as stale
    assert ("Job", NS, "tiny") not in kube.objects
    assert status(kube)["restarts"] == 1
    reconciler.reconcile(NS, "tiny")
    job = kube.objects[("Job", NS, "tiny")]
    assert job["metadata"]["labels"]["modelfleet.io/restart-attempt"] == "1"
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODELFLEET_RESTART_ATTEMPT"] == "1"


def test_past_the_backoff_limit_the_job_fails_and_stays_failed() -> None:
    kube = FakeKube()
    reconciler = make(kube, backoffLimit=0)
    reconciler.reconcile(NS, "tiny")
    kube.add_worker(0, "Failed", reason="Evicted", message="spot VM reclaimed")

    reconciler.reconcile(NS, "tiny")

    assert status(kube)["phase"] == "Failed"
    assert status(kube)["lastRestartReason"] == "WorkerEvicted"
    failed = next(c for c in status(kube)["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert ("Job", NS, "tiny") not in kube.objects
    creates = len(kube.creates)
    reconciler.reconcile(NS, "tiny")
    assert len(kube.creates) == creates


def test_an_invalid_spec_is_reported_not_crashed_on() -> None:
    kube = FakeKube()
    reconciler = make(kube)
    kube.objects[("TrainingJob", NS, "tiny")]["spec"]["resources"]["gpusPerNode"] = 0

    reconciler.reconcile(NS, "tiny")

    failed = next(c for c in status(kube)["conditions"] if c["type"] == "Failed")
    assert (status(kube)["phase"], failed["reason"]) == ("Failed", "InvalidSpec")
    assert failed["message"].startswith(
        "spec.resources: Value error, gpusPerNode must be 1 to 1 on Standard_NC40adis_H100_v5. Fix the spec"
    )
    assert kube.creates == []


def test_an_invalid_spec_recovers_once_the_user_fixes_it() -> None:
    kube = FakeKube()
    reconciler = make(kube)
    body = kube.objects[("TrainingJob", NS, "tiny")]
    body["spec"]["resources"]["gpusPerNode"] = 0
    reconciler.reconcile(NS, "tiny")
    assert status(kube)["phase"] == "Failed"

    body["spec"]["resources"]["gpusPerNode"] = 1
    body["metadata"]["generation"] = 2
    reconciler.reconcile(NS, "tiny")

    assert "Failed" not in [x["type"] for x in status(kube)["conditions"]]
    assert (status(kube)["phase"], status(kube)["observedGeneration"]) == ("Scheduling", 2)
    assert ("Job", NS, "tiny") in kube.objects
    assert reconciler.events[-1] == ("Warning", "WaitingForCapacity")  # type: ignore[attr-defined]


def test_a_job_that_ran_and_failed_stays_failed_when_its_spec_is_edited() -> None:
    kube = FakeKube()
    reconciler = make(kube)
    kube.objects[("TrainingJob", NS, "tiny")]["status"] = {
        "phase": "Failed",
        "completionTime": "2026-11-22T08:00:00Z",
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "InvalidSpec",
                "message": "m",
                "lastTransitionTime": "2026-11-22T08:00:00Z",
            }
        ],
    }
    reconciler.reconcile(NS, "tiny")
    assert status(kube)["phase"] == "Failed"
    assert ("Job", NS, "tiny") not in kube.objects


def test_a_runtime_service_account_replaces_the_jobs_own_and_a_new_one_repoints_the_binding() -> None:
    kube = FakeKube()
    kube.add_service_account(NS, "modelfleet-runtime")
    kube.add_service_account(NS, "team-sa")
    reconciler = make(kube, OperatorConfig(runtime_service_account="modelfleet-runtime"))

    reconciler.reconcile(NS, "tiny")

    assert ("ServiceAccount", "tiny-worker") not in kube.creates
    pod = kube.objects[("Job", NS, "tiny")]["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "modelfleet-runtime"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    binding = kube.objects[("RoleBinding", NS, "tiny-worker")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelfleet-runtime", "namespace": NS}]

    tj = kube.objects[("TrainingJob", NS, "tiny")]
    tj["spec"]["serviceAccountName"] = "team-sa"
    tj["metadata"]["generation"] = 2
    reconciler.reconcile(NS, "tiny")

    binding = kube.objects[("RoleBinding", NS, "tiny-worker")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "team-sa", "namespace": NS}]
    assert binding["roleRef"]["name"] == "tiny-worker", "only the subject changes"


def test_a_missing_runtime_service_account_holds_the_job_pending_without_timeout_until_it_exists() -> None:
    kube = FakeKube()
    now = [T0]
    reconciler = make(kube, clock=lambda: now[0], serviceAccountName="team-sa", schedulingTimeoutSeconds=60)

    reconciler.reconcile(NS, "tiny")

    assert ("Job", NS, "tiny") not in kube.objects
    assert status(kube)["phase"] == "Pending"
    (account,) = [x for x in status(kube)["conditions"] if x["type"] == "ServiceAccountReady"]
    assert (account["status"], account["reason"]) == ("False", "ServiceAccountNotFound")
    assert account["message"].startswith(
        "ServiceAccount team-sa (spec.serviceAccountName) does not exist in namespace ml"
    )
    assert reconciler.events == [("Warning", "ServiceAccountNotFound")]  # type: ignore[attr-defined]

    now[0] = T0 + timedelta(hours=2)  # far past schedulingTimeoutSeconds
    writes = kube.status_writes
    reconciler.reconcile(NS, "tiny")
    assert (status(kube)["phase"], kube.status_writes) == ("Pending", writes), "waiting is not failing"
    assert ("Job", NS, "tiny") not in kube.objects

    kube.add_service_account(NS, "team-sa")
    reconciler.reconcile(NS, "tiny")

    job = kube.objects[("Job", NS, "tiny")]
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "team-sa"
    assert status(kube)["phase"] == "Scheduling"
    conditions = {x["type"]: (x["status"], x["reason"]) for x in status(kube)["conditions"]}
    assert conditions["ServiceAccountReady"] == ("True", "ServiceAccountFound")
    assert ("Normal", "ServiceAccountFound") in reconciler.events  # type: ignore[attr-defined]


def test_without_a_runtime_service_account_the_job_is_created_and_no_account_condition_set() -> None:
    kube = FakeKube()
    reconciler = make(kube)

    reconciler.reconcile(NS, "tiny")

    assert ("Job", NS, "tiny") in kube.objects
    assert "ServiceAccountReady" not in {x["type"] for x in status(kube)["conditions"]}
