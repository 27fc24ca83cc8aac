"""The Helm chart in the local control plane: installed with the built helm CLI, then the operator runs
as the chart's ServiceAccount (a TokenRequest token in a kubeconfig, the env the chart's Deployment
sets), so every API call it makes is authorized by the chart's RBAC and nothing more.

A TrainingJob (Running with its worker, progress, Succeeded), a ModelDeployment (Ready) and a
BenchmarkSweep that expands its own ModelDeployment (created, measured, deleted) pass under that
identity with no 403 in the log; ``kubectl auth can-i`` shows what the ServiceAccount may not do;
``helm upgrade`` leaves the running resources and their children alone; ``helm uninstall`` leaves the
CRDs and the user's resources. No kubelet runs the operator's own pod (kwok only marks it Running).

The session ``operator`` fixture watches every namespace: when an earlier test started it, it is
stopped for the duration of this test (and started again after) so that only the chart's identity
reconciles the test namespace. ``UPDATE_STATUS_SAMPLES=1`` rewrites tests/chart/status-samples/ with
the statuses the controllers wrote here (the chart tier checks the Argo CD health Lua against them).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import PointMetrics

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.controlplane.kwok import finish_pod
from tests.chart.helm import CHART, HELM, helm
from tests.cluster.chart_operator import (
    CRD_NAMES,
    RELEASE,
    TIMEOUT,
    ChartOperator,
    can_i,
    deployment_env,
    get_cr,
    install_chart,
    release_resources,
    token_kubeconfig,
    wait_phase,
)
from tests.cluster.conftest import REPO
from tests.cluster.drive import finish_workers, publish_progress, running_workers

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not HELM.is_file(), reason=f"{HELM} is missing: run hack/controlplane/build-helm.sh"),
]

SAMPLES = REPO / "tests" / "chart" / "status-samples"
FOREIGN_OPERATOR_PROBE_SECONDS = 2.0
"""How long a new TrainingJob is left alone before the chart's operator starts: any status or finalizer
it gets meanwhile comes from another operator."""

SWEEP = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "BenchmarkSweep",
    "metadata": {"name": "chart-sweep"},
    "spec": {
        "targets": [
            {
                "name": "tiny",
                "template": {
                    "model": {"uri": "/models/tiny-llama"},
                    "servedModelName": "tiny/llama",
                    "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
                    "resources": {"instanceType": "Standard_NC40adis_H100_v5", "gpusPerReplica": 1},
                    "replicas": 1,
                },
            }
        ],
        "workload": {"synthetic": {"inputTokens": {"mean": 32}, "outputTokens": {"mean": 16}}, "seed": 1},
        "load": {"mode": "closed-loop", "concurrency": [1], "requests": 4, "warmupRequests": 0},
        "slos": {"ttftP95Ms": 500, "tpotP95Ms": 100},
        "maxParallelPoints": 1,
        "sinks": {"configMap": True},
    },
}


def uids(cluster: ControlPlane, ns: str) -> dict[str, str]:
    """UIDs of the resources and of every child the operator made (pods included)."""
    kinds = "jobs,pods,deployments,services,configmaps,serviceaccounts,roles,rolebindings"
    selector = f"{c.LABEL_MANAGED_BY}={c.MANAGED_BY}"
    found = json.loads(cluster.kubectl("get", kinds, "-n", ns, "-l", selector, "-o", "json").stdout)
    found_crs = json.loads(
        cluster.kubectl("get", "trainingjobs,modeldeployments", "-n", ns, "-o", "json").stdout
    )
    return {
        f"{item['kind']}/{item['metadata']['name']}": item["metadata"]["uid"]
        for item in found["items"] + found_crs["items"]
    }


def save_sample(name: str, obj: dict[str, Any]) -> None:
    """tests/chart/status-samples/NAME.json: kind, generation and status as the controller wrote them."""
    if os.environ.get("UPDATE_STATUS_SAMPLES") != "1":
        return
    SAMPLES.mkdir(exist_ok=True)
    sample = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {"name": obj["metadata"]["name"], "generation": obj["metadata"]["generation"]},
        "status": obj["status"],
    }
    (SAMPLES / f"{name}.json").write_text(json.dumps(sample, indent=2, sort_keys=True) + "\n")


def test_chart_installs_and_its_service_account_runs_the_operator_with_a_stand_in_runtime(
    cluster: ControlPlane,
    namespace: str,
    api_client: client.ApiClient,
    no_session_operator: None,
    tmp_path: Path,
) -> None:
    """The operator runs every kind to its end under the chart's RBAC. The test stands in for the training
    runtime: nothing runs in the kwok pods, so it publishes rank 0's progress itself (made-up figures,
    ``tests.cluster.drive``); the e2e tier runs the real runtime."""
    ns = namespace
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    operator: ChartOperator | None = None
    uninstalled = False
    try:
        install_chart(cluster, ns)
        kubeconfig = token_kubeconfig(cluster, ns, tmp_path / "kubeconfig")
        env = deployment_env(cluster, ns)
        assert env["MODELFLEET_NAMESPACES"] == ns and env["MODELFLEET_STANDALONE"] == "true"

        # ---- a TrainingJob to Running, a ModelDeployment to Ready, under the chart's RBAC ----
        cluster.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / "trainingjob-cpu-tiny.yaml"))
        time.sleep(FOREIGN_OPERATOR_PROBE_SECONDS)
        touched = get_cr(custom, ns, "trainingjobs", "tiny-cpu")
        assert not touched.get("status") and not touched["metadata"].get("finalizers"), (
            "another operator reconciles every namespace (ps -ef | grep modelfleet_operator): this test can "
            "only prove the chart's RBAC when the chart's ServiceAccount is the only identity at work"
        )
        operator = ChartOperator(kubeconfig, tmp_path / "operator.log", env, ns)
        operator.start()
        model_deployment = yaml.safe_load((REPO / "examples" / "modeldeployment-cpu-tiny.yaml").read_text())
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(model_deployment))
        running_workers(core, ns, "tiny-cpu", 1, timeout=TIMEOUT)
        publish_progress(core, ns, "tiny-cpu", step=5, total_steps=20, loss=2.0)
        tj = wait_phase(custom, ns, "trainingjobs", "tiny-cpu", "Running", lambda: None)
        wait_for(
            lambda: (
                get_cr(custom, ns, "trainingjobs", "tiny-cpu")
                .get("status", {})
                .get("progress", {})
                .get("step")
                == 5
            ),
            TIMEOUT,
            "the progress mirrored into the TrainingJob",
        )
        tj = get_cr(custom, ns, "trainingjobs", "tiny-cpu")
        save_sample("trainingjob-running", tj)
        md = wait_phase(custom, ns, "modeldeployments", "tiny-chat", "Ready", lambda: None)
        save_sample("modeldeployment-ready", md)
        assert operator.forbidden_lines() == []

        # ---- helm upgrade (a changed value) leaves the resources and their children alone ----
        before = uids(cluster, ns)
        assert {"TrainingJob/tiny-cpu", "ModelDeployment/tiny-chat", "Job/tiny-cpu"} <= set(before)
        operator.stop()  # what the Deployment's Recreate strategy does to the old pod
        upgrade = helm(
            "upgrade",
            RELEASE,
            str(CHART),
            "-n",
            ns,
            "--reuse-values",
            "--set",
            "operator.resyncSeconds=7",
            "--skip-crds",
        )
        assert upgrade.returncode == 0, upgrade.stderr
        env = deployment_env(cluster, ns)
        assert env["MODELFLEET_RESYNC_SECONDS"] == "7"
        operator = ChartOperator(kubeconfig, tmp_path / "operator.log", env, ns)
        operator.start()
        time.sleep(2)  # a few resyncs of the new operator over the existing objects
        assert uids(cluster, ns) == before
        # The children come from the chart's settings (nothing else reconciles this namespace).
        job = json.loads(cluster.kubectl("get", "job", "tiny-cpu", "-n", ns, "-o", "json").stdout)
        assert job["spec"]["template"]["spec"]["containers"][0]["image"] == env["MODELFLEET_TRAINING_IMAGE"]
        served = json.loads(
            cluster.kubectl("get", "deployment", "tiny-chat-stable", "-n", ns, "-o", "json").stdout
        )
        served_image = served["spec"]["template"]["spec"]["containers"][0]["image"]
        assert served_image == env["MODELFLEET_SERVING_IMAGE_TRANSFORMERS"]  # the example's engine

        # ---- the TrainingJob finishes ----
        publish_progress(core, ns, "tiny-cpu", step=20, total_steps=20, loss=1.2)
        finish_workers(core, ns, "tiny-cpu", succeeded=True)
        tj = wait_phase(custom, ns, "trainingjobs", "tiny-cpu", "Succeeded", lambda: None)
        save_sample("trainingjob-succeeded", tj)

        # ---- a BenchmarkSweep creates its own ModelDeployment, measures one point, deletes it ----
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(SWEEP))
        finished: set[str] = set()
        expanded: set[str] = set()

        def sweep_deployments() -> set[str]:
            found = custom.list_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                "modeldeployments",
                label_selector=f"{c.LABEL_BENCHMARK_SWEEP}=chart-sweep",
            )["items"]
            return {d["metadata"]["name"] for d in found}

        def finish_points() -> None:
            expanded.update(sweep_deployments())
            selector = f"{c.LABEL_BENCHMARK_SWEEP}=chart-sweep,{c.LABEL_COMPONENT}={c.COMPONENT_BENCHMARK}"
            for pod in core.list_namespaced_pod(ns, label_selector=selector).items:
                if pod.status.phase == "Running" and pod.metadata.name not in finished:
                    figures = PointMetrics(
                        ttft_p95_ms=80.0,
                        tpot_p95_ms=20.0,
                        e2e_p95_ms=400.0,
                        output_tokens_per_second=300.0,
                        requests_per_second=2.0,
                        goodput=2.0,
                        error_rate=0.0,
                        meets_slos=True,
                    )
                    finish_pod(
                        core,
                        ns,
                        pod.metadata.name,
                        succeeded=True,
                        message=figures.model_dump_json(by_alias=True, exclude_none=True),
                    )
                    finished.add(pod.metadata.name)

        sweep = wait_phase(custom, ns, "benchmarksweeps", "chart-sweep", "Succeeded", finish_points)
        save_sample("benchmarksweep-succeeded", sweep)
        assert len(expanded) == 1, "the sweep created one ModelDeployment"
        wait_for(
            lambda: not sweep_deployments(), TIMEOUT, f"the sweep to delete its ModelDeployment {expanded}"
        )
        assert operator.forbidden_lines() == [], operator.log_tail()

        # ---- not too much: what the chart's ServiceAccount may not do ----
        assert can_i(cluster, ns, "create", f"modeldeployments.{GROUP}", "-n", ns)
        denied = [
            ("get", "secrets", "-n", ns),
            ("list", "secrets", "-A"),
            ("get", "secrets", "-n", "kube-system"),
            ("create", "nodes"),
            ("patch", "nodes"),
            ("delete", "nodes"),
            ("create", "pods", "-n", ns),
            ("create", "pods/exec", "-n", ns),
            ("create", "customresourcedefinitions"),
            ("delete", "customresourcedefinitions"),
            ("create", "clusterrolebindings"),
            ("create", "clusterroles"),
            ("bind", "roles", "-n", ns),
            ("escalate", "roles", "-n", ns),
            ("create", f"trainingjobs.{GROUP}", "-n", "default"),
            ("update", f"trainingjobs.{GROUP}", "-n", ns),
        ]
        allowed = [args for args in denied if can_i(cluster, ns, *args)]
        assert allowed == [], f"the chart's ServiceAccount may {allowed}"

        # ---- helm uninstall keeps the CRDs and the user's resources; the operator's RBAC goes ----
        operator.stop()
        uninstall = helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "60s")
        assert uninstall.returncode == 0, uninstall.stderr
        uninstalled = True
        for name in CRD_NAMES:
            cluster.kubectl("get", "crd", name)
        assert get_cr(custom, ns, "trainingjobs", "tiny-cpu")["status"]["phase"] == "Succeeded"
        assert get_cr(custom, ns, "modeldeployments", "tiny-chat")["status"]["phase"] == "Ready"
        assert cluster.kubectl(
            "get", "clusterrole", f"{RELEASE}-modelfleet-detection", check=False
        ).returncode
        assert not can_i(cluster, ns, "list", f"trainingjobs.{GROUP}", "-n", ns)
    except AssertionError as error:
        tail = operator.log_tail(80) if operator is not None else "(no operator)"
        if operator is not None and operator._process is not None:
            tail += "\n" + "\n".join(
                line for line in operator.metrics().splitlines() if line.startswith("modelfleet_api")
            )
        tail += (
            "\n" + cluster.kubectl("get", "all,modeldeployments", "-n", ns, "-o", "wide", check=False).stdout
        )
        raise AssertionError(f"{error}\n---- operator log (tail) ----\n{tail}") from None
    finally:
        if operator is not None:
            operator.stop()
        if not uninstalled:
            helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "60s")
        release_resources(custom, ns)
