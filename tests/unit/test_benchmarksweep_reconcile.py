"""The sweep's passes over an in-memory API: the order of steps, failed targets and points that do not
stop the sweep, the ready timeout as a deadline, expanded deployments pruned once measured, and status
written only on change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_operator.benchmark.reconcile import BenchmarkSweepController
from modelfleet_operator.config import OperatorConfig

from tests.unit.fake_kube import FakeKube as BaseFakeKube
from tests.unit.fake_kube import Harness

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
NS = "ml"


class FakeKube(BaseFakeKube):
    """The shared in-memory API plus what the cluster would do for this test."""

    # ---- what the cluster would do ----------------------------------------------------------------
    def deployment_ready(self, name: str) -> None:
        self.objects[("ModelDeployment", NS, name)]["status"] = {
            "phase": "Ready",
            "endpoint": f"http://{name}.{NS}.svc.cluster.local:8000/v1",
        }

    def finish_job(self, name: str, *, message: str | None, succeeded: bool) -> None:
        job = self.objects[("Job", NS, name)]
        job["status"] = {"conditions": [{"type": "Complete" if succeeded else "Failed", "status": "True"}]}
        terminated = {"exitCode": 0 if succeeded else 1, **({"message": message} if message else {})}
        self.add(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{name}-x",
                    "namespace": NS,
                    "labels": {**job["spec"]["template"]["metadata"]["labels"], "job-name": name},
                },
                "status": {
                    "phase": "Succeeded" if succeeded else "Failed",
                    "containerStatuses": [{"name": "bench", "state": {"terminated": terminated}}],
                },
            }
        )

    def created(self, *kinds: str) -> list[tuple[str, str]]:
        """Children applied, of these kinds, in order, each once."""
        return list(dict.fromkeys(a for a in self.applies if a[0] in kinds))


TEMPLATE = {"model": {"uri": "/m"}, "resources": {"instanceType": "Standard_NC40adis_H100_v5"}}


def make(kube: FakeKube, targets: list[dict[str, Any]], **spec: Any) -> tuple[Harness, list[datetime]]:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "BenchmarkSweep",
        "metadata": {"name": "sw", "namespace": NS, "uid": "sw-uid", "generation": 1},
        "spec": {
            "targets": targets,
            "workload": {"synthetic": {"inputTokens": {"mean": 8}, "outputTokens": {"mean": 8}}},
            "load": {"concurrency": [1, 4], "requests": 10},
            "maxParallelPoints": 2,
            **spec,
        },
    }
    now = [T0]
    controller = BenchmarkSweepController(OperatorConfig(benchmark_image="bench:1"), timedelta(minutes=10))
    return Harness(kube, controller, body, lambda: now[0]), now


def status(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("BenchmarkSweep", NS, "sw")]["status"]


def figures(tps: float) -> str:
    return PointMetrics(output_tokens_per_second=tps, ttft_p95_ms=10.0).model_dump_json(by_alias=True)


def referenced_deployment(kube: FakeKube, name: str, phase: str) -> None:
    kube.add(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": TEMPLATE,
            "status": {"phase": phase},
        }
    )


def test_a_sweep_waits_for_a_missing_deployment_it_names_and_goes_on_once_it_exists() -> None:
    kube = FakeKube()
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE}, {"name": "b", "deploymentRef": "later"}])
    reconciler.reconcile()
    assert kube.created("ModelDeployment", "Job") == [], "no target is brought up meanwhile"
    waiting = next(c for c in status(kube)["conditions"] if c["type"] == "ReferencesReady")
    assert (status(kube)["phase"], waiting["status"], waiting["reason"]) == (
        "Pending",
        "False",
        "ReferenceMissing",
    )
    assert waiting["message"].startswith(
        "ModelDeployment later (spec.targets[1].deploymentRef) does not exist in namespace ml. Create it"
    )
    assert [p["phase"] for p in status(kube)["points"]] == ["Pending"] * 4

    referenced_deployment(kube, "later", "Deploying")
    reconciler.reconcile()  # woken by its creation (ModelDeployments wake the sweeps naming them)
    found = next(c for c in status(kube)["conditions"] if c["type"] == "ReferencesReady")
    assert (found["status"], found["reason"]) == ("True", "ReferencesFound")
    assert kube.created("ModelDeployment") == [("ModelDeployment", "sw-a-0")]
    assert status(kube)["phase"] == "Deploying"


def test_a_failed_target_and_a_failed_job_do_not_stop_the_sweep() -> None:
    kube = FakeKube()
    referenced_deployment(kube, "broken", "Failed")
    reconciler, _ = make(
        kube, [{"name": "a", "template": TEMPLATE}, {"name": "b", "deploymentRef": "broken"}]
    )
    reconciler.reconcile()
    assert kube.applies == [("ConfigMap", "sw-results"), ("ModelDeployment", "sw-a-0")]
    assert status(kube)["phase"] == "Deploying" and status(kube)["progress"] == "2/4"
    assert [(p["phase"], p.get("reason")) for p in status(kube)["points"]] == [
        ("Pending", None),
        ("Pending", None),
        ("Failed", "TargetFailed"),
        ("Failed", "TargetFailed"),
    ]
    reconciler.reconcile()  # woken by the deployment's creation: it is seen now
    writes = kube.status_writes
    reconciler.reconcile()  # nothing changed: nothing written, nothing applied
    assert (kube.status_writes, len(kube.applies)) == (writes, 2)

    kube.deployment_ready("sw-a-0")
    reconciler.reconcile()
    points = ("Job", "ConfigMap")
    assert kube.created(*points)[1:] == [("ConfigMap", "sw-point-0-config"), ("Job", "sw-point-0")]
    assert status(kube)["phase"] == "Running" and status(kube)["points"][0]["phase"] == "Running"
    reconciler.reconcile()  # one point per target at a time
    assert len(kube.created(*points)) == 3

    kube.finish_job("sw-point-0", message=figures(120.0), succeeded=True)
    reconciler.reconcile()
    assert status(kube)["points"][0]["outputTokensPerSecond"] == 120.0
    assert kube.created(*points)[3:] == [("ConfigMap", "sw-point-1-config"), ("Job", "sw-point-1")]
    assert (
        '"outputTokensPerSecond": 120.0'
        in kube.objects[("ConfigMap", NS, "sw-results")]["data"]["results.json"]
    )

    kube.finish_job("sw-point-1", message="Traceback: boom", succeeded=False)
    reconciler.reconcile()
    final = status(kube)
    assert (final["phase"], final["progress"], final["bestThroughput"]["point"]) == ("Succeeded", "4/4", 0)
    assert final["points"][1]["reason"] == "JobFailed" and "boom" in final["points"][1]["message"]
    assert ("ModelDeployment", NS, "sw-a-0") not in kube.objects
    complete = next(c for c in final["conditions"] if c["type"] == "Complete")
    assert complete["message"] == "1 of 4 points measured, 3 failed (see status.points)."
    writes = kube.status_writes
    reconciler.reconcile()
    assert kube.status_writes == writes


def test_a_target_never_ready_fails_its_points_after_the_timeout() -> None:
    kube = FakeKube()
    reconciler, now = make(kube, [{"name": "a", "template": TEMPLATE}])
    reconciler.reconcile()
    kube.objects[("ModelDeployment", NS, "sw-a-0")]["status"] = {"phase": "Deploying"}
    now[0] = T0 + timedelta(minutes=9)
    reconciler.reconcile()
    assert status(kube)["phase"] == "Deploying"
    assert status(kube)["targets"] == [
        {"name": "a", "deployment": "sw-a-0", "ready": False, "waitingSince": "2026-11-22T09:00:00Z"}
    ]
    now[0] = T0 + timedelta(minutes=11)
    reconciler.reconcile()
    final = status(kube)
    assert {p["reason"] for p in final["points"]} == {"TargetReadyTimeout"}
    failed = next(c for c in final["conditions"] if c["type"] == "Failed")
    assert (final["phase"], failed["reason"]) == ("Failed", "NoPointSucceeded")
    assert ("ModelDeployment", "sw-a-0") in kube.deletes and (
        "ModelDeployment",
        NS,
        "sw-a-0",
    ) not in kube.objects


def test_an_unsupported_axis_combination_is_an_invalid_spec() -> None:
    kube = FakeKube()
    axes = {"engine": ["lmdeploy"], "quantization": ["fp8"]}
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE, "axes": axes}])
    reconciler.reconcile()
    failed = status(kube)["conditions"][0]
    assert (status(kube)["phase"], failed["reason"]) == ("Failed", "InvalidSpec")
    assert failed["message"].startswith(
        "spec.targets[0].axes.quantization: fp8 is not supported by engine lmdeploy"
    )
    assert kube.applies == []


def test_an_invalid_spec_recovers_once_the_user_fixes_it() -> None:
    kube = FakeKube()
    axes = {"engine": ["lmdeploy"], "quantization": ["fp8"]}
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE, "axes": axes}])
    reconciler.reconcile()
    assert status(kube)["phase"] == "Failed"

    body = kube.objects[("BenchmarkSweep", NS, "sw")]
    body["spec"]["targets"][0].pop("axes")
    body["metadata"]["generation"] = 2
    reconciler.reconcile()

    assert "Failed" not in [x["type"] for x in status(kube)["conditions"]]
    assert (status(kube)["phase"], status(kube)["observedGeneration"]) == ("Deploying", 2)
    assert ("ModelDeployment", "sw-a-0") in kube.applies


def run_two_points(kube: FakeKube, sinks: dict[str, Any], messages: list[str]) -> dict[str, Any]:
    """A one-target sweep with `sinks` whose two points end with these termination messages."""
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE}])
    kube.objects[("BenchmarkSweep", NS, "sw")]["spec"]["sinks"] = sinks
    reconciler.reconcile()
    kube.deployment_ready("sw-a-0")
    for index, message in enumerate(messages):
        reconciler.reconcile()
        kube.finish_job(f"sw-point-{index}", message=message, succeeded=True)
    reconciler.reconcile()
    assert status(kube)["phase"] == "Succeeded"
    return status(kube)


def sinks_condition(found: dict[str, Any]) -> dict[str, Any]:
    return next(x for x in found["conditions"] if x["type"] == "SinksWritten")


def reported(tps: float, index: int, errors: list[str] | None = None) -> str:
    metrics = PointMetrics(
        output_tokens_per_second=tps,
        results_uri=f"az://results/bench/{NS}/sw/point-{index}",
        sink_errors=errors,
    )
    return metrics.model_dump_json(by_alias=True, exclude_none=True)


BLOB_AND_PUSH = {"blobUri": "az://results/bench/", "pushgateway": {"url": "http://pg:9091"}}


def test_sinks_written_says_where_every_points_files_are() -> None:
    kube = FakeKube()
    final = run_two_points(kube, BLOB_AND_PUSH, [reported(100.0, 0), reported(120.0, 1)])
    cond = sinks_condition(final)
    assert (cond["status"], cond["reason"]) == ("True", "ResultsWritten")
    assert cond["message"] == (
        "ConfigMap sw-results holds the results of 2 of 2 points. Result files are under "
        "az://results/bench/ml/sw/point-<index> (status.points[].resultsUri). "
        "Blob, Pushgateway: all 2 measured points written."
    )
    assert [p["resultsUri"] for p in final["points"]] == [
        "az://results/bench/ml/sw/point-0",
        "az://results/bench/ml/sw/point-1",
    ]
    assert all("sinkErrors" not in p for p in final["points"])
    stored = kube.objects[("ConfigMap", NS, "sw-results")]["data"]["results.json"]
    assert '"resultsUri": "az://results/bench/ml/sw/point-1"' in stored
    config = kube.objects[("ConfigMap", NS, "sw-point-1-config")]["data"]["config.yaml"]
    assert "blobUri: az://results/bench/ml/sw/point-1" in config


def test_a_failed_sink_is_named_and_the_point_still_counts() -> None:
    kube = FakeKube()
    refused = "pushgateway: URLError: <urlopen error [Errno 111] Connection refused>"
    final = run_two_points(kube, BLOB_AND_PUSH, [reported(100.0, 0), reported(120.0, 1, [refused])])
    cond = sinks_condition(final)
    assert (cond["status"], cond["reason"]) == ("False", "SinkFailed")
    assert cond["message"] == (
        f"Sinks failed for 1 of 2 measured points: point 1 (a concurrency=4): {refused}. Their figures "
        "are in status.points (sinkErrors there too). ConfigMap sw-results holds the results of 2 of 2 "
        "points."
    )
    point = final["points"][1]
    assert (point["phase"], point["outputTokensPerSecond"], point["sinkErrors"]) == (
        "Succeeded",
        120.0,
        [refused],
    )
    assert final["bestThroughput"]["point"] == 1


def test_sinks_written_follows_the_points_and_lists_at_most_three() -> None:
    kube = FakeKube()
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE}])
    body = kube.objects[("BenchmarkSweep", NS, "sw")]
    body["spec"]["sinks"] = {"configMap": False, "mlflow": {"trackingUri": "http://mlflow:5000"}}
    body["spec"]["load"]["concurrency"] = [1, 2, 3, 4, 5]
    body["spec"]["maxParallelPoints"] = 1
    reconciler.reconcile()
    assert sinks_condition(status(kube))["message"] == "MLflow: all 0 measured points written."
    kube.deployment_ready("sw-a-0")
    for index in range(5):
        reconciler.reconcile()
        errors = ["mlflow: MlflowException: down"] if index else None
        kube.finish_job(f"sw-point-{index}", message=reported(10.0 + index, index, errors), succeeded=True)
        reconciler.reconcile()
        cond = sinks_condition(status(kube))
        assert cond["status"] == ("True" if index == 0 else "False"), index
    assert cond["message"] == (
        "Sinks failed for 4 of 5 measured points: point 1 (a concurrency=2): mlflow: MlflowException: "
        "down; point 2 (a concurrency=3): mlflow: MlflowException: down; point 3 (a concurrency=4): "
        "mlflow: MlflowException: down; and 1 more. Their figures are in status.points (sinkErrors there "
        "too)."
    )
    assert ("ConfigMap", NS, "sw-results") not in kube.objects


def test_no_sink_no_condition() -> None:
    kube = FakeKube()
    final = run_two_points(kube, {"configMap": False}, [figures(1.0), figures(2.0)])
    assert "SinksWritten" not in [x["type"] for x in final["conditions"]]


def account_condition(kube: FakeKube) -> tuple[str, str]:
    found = next(x for x in status(kube)["conditions"] if x["type"] == "ServiceAccountReady")
    return found["status"], found["reason"]


def test_a_missing_service_account_starts_no_target_or_point_and_no_timeout_runs() -> None:
    kube = FakeKube()
    reconciler, now = make(kube, [{"name": "a", "template": TEMPLATE}], serviceAccountName="bench-sa")

    reconciler.reconcile()

    assert not kube.created("ModelDeployment", "Job")
    assert status(kube)["phase"] == "Pending"
    assert account_condition(kube) == ("False", "ServiceAccountNotFound")
    assert ("Warning", "ServiceAccountNotFound") in reconciler.events
    now[0] = T0 + timedelta(minutes=30)  # past the 10-minute ready timeout
    reconciler.reconcile()
    assert {p["phase"] for p in status(kube)["points"]} == {"Pending"}

    kube.add_service_account(NS, "bench-sa")
    reconciler.reconcile()

    assert ("ModelDeployment", "sw-a-0") in kube.applies
    assert account_condition(kube) == ("True", "ServiceAccountFound")
    assert status(kube)["phase"] == "Deploying"
    kube.deployment_ready("sw-a-0")
    reconciler.reconcile()
    job = kube.objects[("Job", NS, "sw-point-0")]
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "bench-sa"


def test_the_ready_timeout_starts_afresh_after_the_account_was_missing() -> None:
    kube = FakeKube()
    kube.add_service_account(NS, "bench-sa")
    reconciler, now = make(kube, [{"name": "a", "template": TEMPLATE}], serviceAccountName="bench-sa")
    reconciler.reconcile()
    assert status(kube)["targets"][0]["waitingSince"] == "2026-11-22T09:00:00Z"

    del kube.objects[("ServiceAccount", NS, "bench-sa")]
    now[0] = T0 + timedelta(minutes=9)
    reconciler.reconcile()
    assert status(kube)["targets"] == []
    kube.add_service_account(NS, "bench-sa")
    now[0] = T0 + timedelta(minutes=15)
    reconciler.reconcile()

    assert status(kube)["targets"][0]["waitingSince"] == "2026-11-22T09:15:00Z"
    assert {p["phase"] for p in status(kube)["points"]} == {"Pending"}


def test_a_load_search_adds_each_next_level_once_the_previous_point_ended() -> None:
    kube = FakeKube()
    search = {"mode": "closed-loop", "search": {"min": 2, "max": 8}, "requests": 10}
    reconciler, _ = make(kube, [{"name": "a", "template": TEMPLATE}], load=search, slos={"ttftP95Ms": 100})
    reconciler.reconcile()
    kube.deployment_ready("sw-a-0")
    reconciler.reconcile()
    assert [(p["load"], p["phase"]) for p in status(kube)["points"]] == [("concurrency=2", "Running")]

    kube.finish_job("sw-point-0", message=figures(100.0), succeeded=True)  # TTFT 10 ms: meets the SLO
    reconciler.reconcile()

    assert [(p["load"], p["phase"]) for p in status(kube)["points"]] == [
        ("concurrency=2", "Succeeded"),
        ("concurrency=4", "Running"),
    ]
    assert ("Job", "sw-point-1") in kube.applies
    assert status(kube)["frontier"][0]["target"] == "a"
    assert status(kube)["plot"] == {"configMap": "sw-results", "key": "sweep.html"}


def test_a_point_whose_pod_cannot_be_placed_says_so_and_runs_once_it_is() -> None:
    kube = FakeKube()
    referenced_deployment(kube, "served", "Ready")
    kube.deployment_ready("served")
    reconciler, _ = make(
        kube, [{"name": "a", "deploymentRef": "served"}], load={"concurrency": [1], "requests": 4}
    )
    reconciler.reconcile()
    job = kube.objects[("Job", NS, "sw-point-0")]
    scheduler_said = "0/1 nodes are available: 1 Insufficient cpu."
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sw-point-0-x", "namespace": NS, "labels": {"job-name": "sw-point-0"}},
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": scheduler_said,
                }
            ],
        },
    }
    pod["metadata"]["labels"].update(job["spec"]["template"]["metadata"]["labels"])
    kube.add(pod)
    reconciler.reconcile()
    found = next(c for c in status(kube)["conditions"] if c["type"] == "PointsScheduled")
    assert (found["status"], found["reason"]) == ("False", "Unschedulable")
    assert found["message"] == (
        f"point 0: benchmark pod sw-point-0-x cannot be scheduled ({scheduler_said}). Each benchmark pod "
        "requests 1 CPU and 2Gi of memory (spec.clientResources); the points wait until a node has room."
    )
    assert status(kube)["points"][0]["phase"] == "Running"

    pod["status"] = {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"}]}
    reconciler.reconcile()
    assert all(c["type"] != "PointsScheduled" for c in status(kube)["conditions"])


def test_client_resources_reach_every_point_pod() -> None:
    kube = FakeKube()
    referenced_deployment(kube, "served", "Ready")
    kube.deployment_ready("served")
    reconciler, _ = make(
        kube,
        [{"name": "a", "deploymentRef": "served"}],
        load={"concurrency": [1], "requests": 4},
        clientResources={"cpu": "250m", "memory": "512Mi"},
    )
    reconciler.reconcile()
    (container,) = kube.objects[("Job", NS, "sw-point-0")]["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "512Mi"},
    }
