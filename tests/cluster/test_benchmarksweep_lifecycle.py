"""The BenchmarkSweep controller against the real control plane with the operator running.

The examples are applied with kubectl as a user would. The ModelDeployment controller brings the
expanded deployments up (kwok makes their pods Running and Ready); nothing runs inside the fake
benchmark pods, so the test ends each one as the kubelet would, with the compact result JSON
``modelfleet-bench run`` writes as the container's termination message (or a failure).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_api.benchmarksweep import PointMetrics

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.controlplane.kwok import finish_pod
from tests.cluster.conftest import OperatorProcess
from tests.cluster.thirdparty import CrdSet, keda, keda_http_add_on  # noqa: F401  (fixtures)

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
ENGINES_EXAMPLE = REPO / "examples" / "benchmarksweep-engines.yaml"
OPEN_LOOP_EXAMPLE = REPO / "examples" / "benchmarksweep-open-loop.yaml"
DEPLOYMENT_EXAMPLE = REPO / "examples" / "modeldeployment-vllm-llama3-8b.yaml"
TIMEOUT = 60
BLOB_URI = "https://modelfleetmodels.blob.core.windows.net/results/benchmarks"
PUSH_REFUSED = "pushgateway: URLError: <urlopen error [Errno 111] Connection refused>"


@pytest.fixture
def sweep_namespace(
    namespace: str, operator: OperatorProcess, custom: client.CustomObjectsApi
) -> Iterator[str]:
    """A namespace whose sweeps and deployments are deleted (and released by the operator) after the test."""
    yield namespace
    for plural in ("benchmarksweeps", "modeldeployments"):
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            custom.delete_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, item["metadata"]["name"]
            )
        wait_for(
            lambda plural=plural: (
                not custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]
            ),
            TIMEOUT,
            f"the {plural} of {namespace} to be deleted",
        )


def get_sweep(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "benchmarksweeps", name
    )
    return found


def wait_sweep(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        nonlocal seen
        seen = get_sweep(custom, namespace, name)
        return predicate(seen)

    try:
        wait_for(check, timeout, f"BenchmarkSweep {namespace}/{name}: {what}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last status: {json.dumps(seen.get('status'))}") from None
    return seen


def result(
    tokens_per_second: float,
    ttft_ms: float,
    tpot_ms: float,
    results_uri: str | None = None,
    sink_errors: list[str] | None = None,
) -> str:
    """The termination message ``modelfleet-bench run`` writes for a measured point."""
    return PointMetrics(
        ttft_p95_ms=ttft_ms,
        tpot_p95_ms=tpot_ms,
        e2e_p95_ms=ttft_ms + 255 * tpot_ms,
        output_tokens_per_second=tokens_per_second,
        requests_per_second=tokens_per_second / 256,
        goodput=tokens_per_second / 256,
        error_rate=0.0,
        meets_slos=ttft_ms <= 500 and tpot_ms <= 50,
        results_uri=results_uri,
        sink_errors=sink_errors,
    ).model_dump_json(by_alias=True, exclude_none=True)


def running_point_pods(core: client.CoreV1Api, namespace: str, sweep: str) -> dict[int, Any]:
    """Running benchmark pods of the sweep, by point index."""
    selector = f"{c.LABEL_BENCHMARK_SWEEP}={sweep},{c.LABEL_COMPONENT}={c.COMPONENT_BENCHMARK}"
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return {int(p.metadata.labels[c.LABEL_SWEEP_POINT]): p for p in pods if p.status.phase == "Running"}


def drive_points(
    core: client.CoreV1Api,
    namespace: str,
    sweep: str,
    total: int,
    finish: Callable[[int, str], None],
    max_running: int,
) -> None:
    """Ends every point's pod once it runs (via ``finish(index, pod_name)``), checking that no more
    than ``max_running`` run at once, until ``total`` points were ended."""
    ended: set[int] = set()

    def step() -> bool:
        running = {i: p for i, p in running_point_pods(core, namespace, sweep).items() if i not in ended}
        assert len(running) <= max_running, f"{len(running)} points run at once (at most {max_running})"
        for index, pod in running.items():
            finish(index, pod.metadata.name)
            ended.add(index)
        return len(ended) == total

    wait_for(step, 3 * TIMEOUT, f"{total} benchmark points of {sweep} to run")


def point_config(core: client.CoreV1Api, namespace: str, sweep: str, index: int) -> BenchmarkRuntimeConfig:
    config_map = core.read_namespaced_config_map(f"{sweep}-point-{index}-config", namespace)
    return BenchmarkRuntimeConfig.from_yaml(config_map.data["config.yaml"])


def test_sweep_over_two_engines_records_results_survives_a_failed_point_and_cleans_up(
    cluster: ControlPlane,
    sweep_namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    ns, name = sweep_namespace, "llama-engines"
    cluster.kubectl("apply", "-n", ns, "-f", str(ENGINES_EXAMPLE))
    deployments = [f"{name}-llama-0", f"{name}-llama-1"]

    def both_ready() -> bool:
        found = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments")["items"]
        return (
            sorted(d["metadata"]["name"] for d in found if d.get("status", {}).get("phase") == "Ready")
            == deployments
        )

    wait_for(both_ready, TIMEOUT, f"the expanded ModelDeployments {deployments} to be Ready")
    engines = {
        d: custom.get_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", d)["spec"]["engine"][
            "type"
        ]
        for d in deployments
    }
    assert engines == {deployments[0]: "vllm", deployments[1]: "sglang"}

    # points 0-2 measure vllm at 1, 8, 32 users, points 3-5 sglang; point 4 fails
    figures = {0: (400.0, 80.0, 20.0), 1: (2400.0, 150.0, 30.0), 2: (5200.0, 900.0, 60.0)}
    figures |= {3: (380.0, 70.0, 21.0), 5: (6100.0, 450.0, 45.0)}

    def finish(index: int, pod: str) -> None:
        config = point_config(core, ns, name, index)
        assert config.target_name == deployments[index // 3]
        assert config.target_url == f"http://{deployments[index // 3]}.{ns}.svc.cluster.local:8000"
        assert config.load.concurrency == [1, 8, 32][index % 3]
        if index == 4:
            finish_pod(core, ns, pod, succeeded=False, message="connection refused by sglang")
        else:
            finish_pod(core, ns, pod, succeeded=True, message=result(*figures[index]))

    drive_points(core, ns, name, 6, finish, max_running=2)
    sweep = wait_sweep(
        custom, ns, name, lambda s: s.get("status", {}).get("phase") == "Succeeded", "Succeeded"
    )
    status = sweep["status"]
    assert (status["pointsDone"], status["pointsTotal"], status["progress"]) == (6, 6, "6/6")
    points = status["points"]
    assert [p["phase"] for p in points] == ["Succeeded"] * 4 + ["Failed", "Succeeded"]
    assert points[4]["reason"] == "JobFailed" and "connection refused by sglang" in points[4]["message"]
    assert points[5]["target"] == "llama(engine=sglang)" and points[5]["load"] == "concurrency=32"
    assert points[5]["outputTokensPerSecond"] == 6100.0 and points[5]["meetsSlos"] is True
    assert status["bestThroughput"]["point"] == 5
    assert [(b["slo"], b["point"]) for b in status["bestPerSlo"]] == [("all", 5)]
    complete = next(x for x in status["conditions"] if x["type"] == "Complete")
    assert (complete["status"], complete["reason"]) == ("True", "AllPointsMeasured")
    sinks = next(x for x in status["conditions"] if x["type"] == c.COND_SINKS_WRITTEN)
    assert (sinks["status"], sinks["message"]) == (
        "True",
        f"ConfigMap {name}-results holds the results of 6 of 6 points.",
    )
    results_data: dict[str, str] = core.read_namespaced_config_map(f"{name}-results", ns).data
    results = json.loads(results_data["results.json"])
    assert [p["phase"] for p in results] == [p["phase"] for p in points]

    table = cluster.kubectl("get", "benchmarksweeps", "-n", ns).stdout
    assert table.split("\n")[0].split() == ["NAME", "PHASE", "POINTS", "BEST", "THROUGHPUT", "COST", "AGE"]
    assert table.split("\n")[1].split()[:4] == [name, "Succeeded", "6/6", "6100"]

    def no_deployments() -> bool:
        found: dict[str, Any] = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments")
        return not found["items"]

    wait_for(
        no_deployments,
        TIMEOUT,
        "the sweep to delete its expanded ModelDeployments",
    )
    selector = f"{c.LABEL_BENCHMARK_SWEEP}={name}"
    assert len(batch.list_namespaced_job(ns, label_selector=selector).items) == 6
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "benchmarksweeps", name)
    wait_for(
        lambda: (
            not batch.list_namespaced_job(ns, label_selector=selector).items
            and not core.list_namespaced_config_map(ns, label_selector=selector).items
        ),
        TIMEOUT,
        "deleting the sweep to delete its Jobs and ConfigMaps",
    )


def test_open_loop_sweep_against_an_existing_deployment(
    cluster: ControlPlane,
    sweep_namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tmp_path: Path,
) -> None:
    ns = sweep_namespace
    manifest = yaml.safe_load(OPEN_LOOP_EXAMPLE.read_text())
    name = manifest["metadata"]["name"]
    manifest["spec"]["sinks"]["blobUri"] = BLOB_URI  # the example plus result files in blob storage
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(manifest))
    cluster.kubectl("apply", "-n", ns, "-f", str(DEPLOYMENT_EXAMPLE), "-f", str(sweep_file))
    rates = [1.0, 2.0, 4.0, 8.0]
    folder = f"{BLOB_URI}/{ns}/{name}"

    def finish(index: int, pod: str) -> None:
        config = point_config(core, ns, name, index)
        assert (config.load.mode, config.load.request_rate, config.load.duration_seconds) == (
            "open-loop",
            rates[index],
            120.0,
        )
        assert config.model == "llama-3-8b-instruct" and config.sinks.pushgateway is not None
        assert config.sinks.blob_uri == f"{folder}/point-{index}"
        # point 2's push fails; the bench client reports it with the figures (the upload went through)
        errors = [PUSH_REFUSED] if index == 2 else None
        message = result(100.0 * rates[index], 200.0, 40.0, config.sinks.blob_uri, errors)
        finish_pod(core, ns, pod, succeeded=True, message=message)

    drive_points(core, ns, name, 4, finish, max_running=1)
    sweep = wait_sweep(
        custom, ns, name, lambda s: s.get("status", {}).get("phase") == "Succeeded", "Succeeded"
    )
    assert [p["load"] for p in sweep["status"]["points"]] == [f"rate={r:g}/s (poisson)" for r in rates]
    assert sweep["status"]["bestThroughput"]["load"] == "rate=8/s (poisson)"
    # where each point's files are, and the failed push, survive the API server's schema
    points = sweep["status"]["points"]
    assert [p["resultsUri"] for p in points] == [f"{folder}/point-{i}" for i in range(4)]
    assert [p.get("sinkErrors") for p in points] == [None, None, [PUSH_REFUSED], None]
    sinks = next(x for x in sweep["status"]["conditions"] if x["type"] == c.COND_SINKS_WRITTEN)
    assert (sinks["status"], sinks["reason"]) == ("False", c.REASON_SINK_FAILED)
    assert sinks["message"].startswith(
        f"Sinks failed for 1 of 4 measured points: point 2 (prod rate=4/s (poisson)): {PUSH_REFUSED}."
    )
    # the referenced deployment is the user's: the sweep leaves it alone
    assert custom.get_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", "llama3-8b")


def test_a_sweep_against_a_deployment_the_http_add_on_routes_sends_through_its_interceptor(
    cluster: ControlPlane,
    keda_http_add_on: CrdSet,  # noqa: F811
    sweep_namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    """With KEDA and its HTTP add-on, the deployment (minReplicas 0) reports how to reach it through the
    interceptor (``status.interceptor``, kept by the CRD's schema), and the sweep's point sends there with
    the deployment's Host, so a request that finds it at zero wakes it. Only the add-on's CRD is
    installed here: the e2e tier runs the interceptor itself."""
    ns = sweep_namespace
    cluster.kubectl("apply", "-n", ns, "-f", str(DEPLOYMENT_EXAMPLE), "-f", str(OPEN_LOOP_EXAMPLE))
    host = f"llama3-8b.{ns}.svc.cluster.local"
    wait_for(
        lambda: (
            custom.get_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", "llama3-8b")
            .get("status", {})
            .get("interceptor")
            == {"url": "http://keda-add-ons-http-interceptor-proxy.keda:8080/v1", "host": host}
        ),
        TIMEOUT,
        "the ModelDeployment's status.interceptor",
    )
    name = yaml.safe_load(OPEN_LOOP_EXAMPLE.read_text())["metadata"]["name"]

    def first_point_config() -> BenchmarkRuntimeConfig | None:
        try:
            return point_config(core, ns, name, 0)
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    wait_for(lambda: first_point_config() is not None, TIMEOUT, "the first point's config")
    config = first_point_config()
    assert config is not None
    assert (config.target_url, config.target_host, config.engine_metrics_url) == (
        "http://keda-add-ons-http-interceptor-proxy.keda:8080",
        host,
        f"http://{host}:8000/metrics",
    )
