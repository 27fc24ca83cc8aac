"""The ModelDeployment controller against the real control plane with the operator running.

The examples are applied with kubectl as a user would. kwok makes the scheduled serving pods Running
and Ready; KEDA and Gateway API CRDs come from their Go modules (``thirdparty``) for the tests that
ask for them, the others see the fallbacks.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.controlplane.kwok import crash_loop_pod
from tests.cluster import thirdparty
from tests.cluster.conftest import OperatorProcess
from tests.cluster.thirdparty import (  # noqa: F401  (fixtures)
    azure_pod_monitor,
    gateway_api,
    keda,
    no_gateway_api,
    no_keda,
)

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
VLLM_EXAMPLE = REPO / "examples" / "modeldeployment-vllm-llama3-8b.yaml"
SGLANG_EXAMPLE = REPO / "examples" / "modeldeployment-sglang-canary.yaml"
PLURAL = "modeldeployments"
TIMEOUT = 60


@pytest.fixture
def md_namespace(namespace: str, operator: OperatorProcess, custom: client.CustomObjectsApi) -> Iterator[str]:
    """A namespace whose ModelDeployments are deleted (and released by the operator) after the test."""
    yield namespace
    for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]:
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, item["metadata"]["name"])
    wait_for(
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"],
        TIMEOUT,
        f"the ModelDeployments of {namespace} to be deleted",
    )


def get_md(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return found


def condition(md: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((x for x in md.get("status", {}).get("conditions", []) if x["type"] == type_), {})


def wait_md(
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
        seen = get_md(custom, namespace, name)
        return predicate(seen)

    try:
        wait_for(check, timeout, f"ModelDeployment {namespace}/{name}: {what}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last status: {seen.get('status')}") from None
    return seen


def phase_is(phase: str) -> Callable[[dict[str, Any]], bool]:
    return lambda md: md.get("status", {}).get("phase") == phase


def get_object(cluster: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found")
    return yaml.safe_load(result.stdout) if result.stdout.strip() else None


def wait_object(cluster: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    def exists() -> bool:
        nonlocal found
        found = get_object(cluster, kind, name, namespace) or {}
        return bool(found)

    wait_for(exists, TIMEOUT, f"{kind} {namespace}/{name}")
    return found


def children(cluster: ControlPlane, namespace: str, name: str, kinds: str) -> dict[tuple[str, str], str]:
    """(kind, name) -> uid of every child labelled for the ModelDeployment."""
    listed = cluster.kubectl(
        "get", kinds, "-n", namespace, "-l", f"{c.LABEL_MODEL_DEPLOYMENT}={name}", "-o", "json"
    )
    items = yaml.safe_load(listed.stdout)["items"]
    return {(i["kind"], i["metadata"]["name"]): i["metadata"]["uid"] for i in items}


def engine_command(config_map: dict[str, Any], tmp_path: Path) -> tuple[str, list[str]]:
    """(program, flags) of the engine command line the pod's launcher derives from the rendered config;
    the model path is left out (in the pod it is the download's directory in the cache)."""
    path = tmp_path / f"{config_map['metadata']['name']}.yaml"
    path.write_text(config_map["data"]["config.yaml"])
    result = subprocess.run(
        [sys.executable, "-m", "modelfleet_serve.launcher", "--config", str(path), "--print-command"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    argv = result.stdout.split()
    model_flag = argv.index("--model-path") if "--model-path" in argv else 2
    program = " ".join(argv[: model_flag + (1 if "--model-path" in argv else 0)])
    return program, argv[model_flag + (2 if "--model-path" in argv else 1) :]


def server_pods(core: client.CoreV1Api, namespace: str, deployment: str) -> list[Any]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_MODEL_DEPLOYMENT}").items
    return [
        p for p in pods if p.metadata.name.startswith(f"{deployment}-") and not p.metadata.deletion_timestamp
    ]


def test_vllm_example_with_keda_scales_to_zero_gets_ready_degrades_and_survives_restart(
    crds: ControlPlane,
    operator: OperatorProcess,
    keda: Any,  # noqa: F811
    no_gateway_api: None,  # noqa: F811  (the Routed condition below is the Service fallback)
    md_namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    tmp_path: Path,
) -> None:
    ns, name = md_namespace, "llama3-8b"
    crds.kubectl("apply", "-n", ns, "-f", str(VLLM_EXAMPLE))

    scaled = wait_object(crds, "scaledobjects.keda.sh", name, ns)
    assert scaled["spec"]["minReplicaCount"] == 0 and scaled["spec"]["maxReplicaCount"] == 4
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{name}-stable"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    assert (
        trigger["metadata"]["query"]
        == f'sum(vllm:num_requests_waiting{{namespace="{ns}",pod=~"{name}-stable-.*"}})'
    )
    assert (trigger["metadata"]["threshold"], trigger["metadata"]["activationThreshold"]) == ("8", "1")
    assert get_object(crds, "hpa", name, ns) is None

    deployment = wait_object(crds, "deployment", f"{name}-stable", ns)
    pod = deployment["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["command"] == ["modelfleet-serve"]
    assert server["args"] == ["--config", "/etc/modelfleet/config.yaml"]
    assert {"name": "config", "configMap": {"name": f"{name}-stable-config", "defaultMode": 420}} in pod[
        "volumes"
    ]
    assert server["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert server["startupProbe"]["failureThreshold"] * server["startupProbe"]["periodSeconds"] == 3600
    assert [i["name"] for i in pod["initContainers"]] == ["model-download"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in pod["volumes"]
    config_map = wait_object(crds, "configmap", f"{name}-stable-config", ns)
    assert engine_command(config_map, tmp_path) == (
        "vllm serve",
        [
            "--served-model-name",
            "llama-3-8b-instruct",
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--tensor-parallel-size",
            "1",
            "--max-model-len",
            "8192",
            "--dtype",
            "bfloat16",
            "--gpu-memory-utilization",
            "0.9",
            "--enable-prefix-caching",
        ],
    )
    for kind, child in (("service", name), ("pdb", name)):
        wait_object(crds, kind, child, ns)

    md = wait_md(custom, ns, name, phase_is("Ready"), "Ready once kwok runs the pod")
    status = md["status"]
    assert status["stable"] == {"readyReplicas": 1, "desiredReplicas": 1} and status["ready"] == "1/1"
    assert status["endpoint"] == f"http://{name}.{ns}.svc.cluster.local:8000/v1"
    assert (status["servedModel"], status["engine"]) == ("llama-3-8b-instruct", "vllm")
    assert condition(md, c.COND_AUTOSCALING)["reason"] == c.REASON_KEDA_SCALED_OBJECT
    assert condition(md, c.COND_AVAILABLE)["reason"] == c.REASON_MINIMUM_REPLICAS_AVAILABLE
    assert condition(md, c.COND_ROUTED)["reason"] == c.REASON_SERVICE_FALLBACK
    assert status["startup"]["pod"].startswith(f"{name}-stable-")
    assert "scheduledSeconds" in status["startup"] and "readySeconds" in status["startup"]
    (pod_object,) = server_pods(core, ns, f"{name}-stable")
    assert pod_object.spec.node_name.startswith("aks-nc80h100-")  # the spot NC80adis pool

    table = crds.kubectl("get", "modeldeployments", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "ENGINE", "MODEL", "READY", "ENDPOINT", "PHASE", "COST", "AGE"]
    row = table[1].split()
    assert row[:6] == [
        name,
        "vllm",
        md["spec"]["model"]["uri"],
        "1/1",
        status["endpoint"],
        "Ready",
    ]

    # An operator restart re-reads everything and creates nothing twice.
    kinds = "configmap,service,deployment,pdb,hpa,scaledobjects.keda.sh"
    before = children(crds, ns, name, kinds)
    operator.stop()
    operator.start()
    crash_loop_pod(core, ns, pod_object.metadata.name)
    # Degraded as soon as the pod crash-loops; Available turns False once the Deployment's status also
    # counts the replica as not ready (until then Available says 1/1 ready, and names the crash).
    md = wait_md(
        custom,
        ns,
        name,
        lambda md: phase_is("Degraded")(md) and condition(md, c.COND_AVAILABLE)["status"] == "False",
        "Degraded and not Available while the engine crash-loops",
    )
    available = condition(md, c.COND_AVAILABLE)
    assert available["reason"] == c.REASON_ENGINE_CRASHING
    assert f"kubectl logs {pod_object.metadata.name} -c server --previous" in available["message"]
    assert children(crds, ns, name, kinds) == before


def test_without_keda_an_hpa_scales_and_the_condition_says_why(
    crds: ControlPlane,
    operator: OperatorProcess,
    no_keda: None,  # noqa: F811
    md_namespace: str,
    custom: client.CustomObjectsApi,
) -> None:
    ns, name = md_namespace, "llama3-8b"
    crds.kubectl("apply", "-n", ns, "-f", str(VLLM_EXAMPLE))
    hpa = wait_object(crds, "hpa", name, ns)
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 4
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm:num_requests_waiting"
    md = wait_md(
        custom, ns, name, lambda md: bool(condition(md, c.COND_AUTOSCALING)), "an Autoscaling condition"
    )
    autoscaling = condition(md, c.COND_AUTOSCALING)
    # No custom-metrics adapter runs here (tests/cluster/test_custom_metrics_api.py registers one).
    assert (autoscaling["status"], autoscaling["reason"]) == ("False", c.REASON_CUSTOM_METRICS_UNAVAILABLE)
    assert "KEDA is not installed" in autoscaling["message"]
    assert "within 1-4" in autoscaling["message"]


def test_the_operator_keeps_running_when_keda_is_uninstalled_under_its_watch(
    crds: ControlPlane,
    operator: OperatorProcess,
    no_keda: None,  # noqa: F811
    md_namespace: str,
    custom: client.CustomObjectsApi,
) -> None:
    """KEDA installed and uninstalled three times while the operator watches ScaledObjects: a watch
    request that meets the deleted CRD (404) no longer stops the operator (kopf_fixes.vanished_kinds),
    and it then reconciles a ModelDeployment with the HPA fallback."""
    for _ in range(3):
        thirdparty.install(crds, thirdparty.KEDA)
        thirdparty.remove(crds, thirdparty.KEDA)
    assert operator.is_running(), f"the operator exited:\n{operator.log_tail()}"
    ns, name = md_namespace, "llama3-8b"
    crds.kubectl("apply", "-n", ns, "-f", str(VLLM_EXAMPLE))
    wait_object(crds, "hpa", name, ns)
    md = wait_md(
        custom, ns, name, lambda md: bool(condition(md, c.COND_AUTOSCALING)), "an Autoscaling condition"
    )
    assert "KEDA is not installed" in condition(md, c.COND_AUTOSCALING)["message"]
    assert operator.is_running(), f"the operator exited:\n{operator.log_tail()}"


def test_azure_managed_prometheus_gets_a_pod_monitor_of_its_own_group_per_track(
    crds: ControlPlane,
    operator: OperatorProcess,
    azure_pod_monitor: str,  # noqa: F811
    md_namespace: str,
) -> None:
    """Where the AKS metrics add-on's PodMonitor CRD is served, each track's pods get an
    ``azmonitoring.coreos.com/v1`` PodMonitor (the only group the add-on reads) that the CRD's schema
    accepts, with the label limits Azure's template sets; annotations alone are not scraped there."""
    ns, name = md_namespace, "qwen-chat"
    crds.kubectl("apply", "-n", ns, "-f", str(SGLANG_EXAMPLE))
    kind = f"podmonitors.{thirdparty.AZURE_MONITOR_GROUP}"
    monitors = {track: wait_object(crds, kind, f"{name}-{track}", ns) for track in ("stable", "canary")}
    for track, monitor in monitors.items():
        spec = monitor["spec"]
        assert (spec["labelLimit"], spec["labelNameLengthLimit"], spec["labelValueLengthLimit"]) == (
            63,
            511,
            1023,
        )
        assert spec["selector"]["matchLabels"][c.LABEL_TRACK] == track
        assert [e["path"] for e in spec["podMetricsEndpoints"]] == ["/metrics"] * len(
            spec["podMetricsEndpoints"]
        )
        assert monitor["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"


def route_weights(cluster: ControlPlane, namespace: str, name: str) -> list[tuple[str, int]]:
    route = get_object(cluster, "httproutes.gateway.networking.k8s.io", name, namespace) or {}
    rules = route.get("spec", {}).get("rules") or [{}]
    return [(b["name"], b["weight"]) for b in rules[0].get("backendRefs", [])]


def test_sglang_canary_behind_an_http_route_then_promoted(
    crds: ControlPlane,
    operator: OperatorProcess,
    gateway_api: Any,  # noqa: F811
    md_namespace: str,
    custom: client.CustomObjectsApi,
    tmp_path: Path,
) -> None:
    ns, name = md_namespace, "qwen-chat"
    crds.kubectl("apply", "-n", ns, "-f", str(SGLANG_EXAMPLE))
    md = wait_md(custom, ns, name, phase_is("Ready"), "Ready with both tracks", timeout=90)
    qwen = "Qwen/Qwen2.5-72B-Instruct"
    assert md["status"]["canary"] == {
        "readyReplicas": 1,
        "desiredReplicas": 1,
        "model": {"uri": qwen, "kind": "model", "source": qwen},
    }
    assert md["status"]["ready"] == "3/3"
    assert condition(md, c.COND_CANARY_READY)["reason"] == c.REASON_CANARY_SERVING
    assert condition(md, c.COND_ROUTED)["reason"] == c.REASON_HTTP_ROUTE
    wait_for(
        lambda: route_weights(crds, ns, name) == [(f"{name}-stable", 90), (f"{name}-canary", 10)],
        TIMEOUT,
        "HTTPRoute weights 90/10",
    )
    route = get_object(crds, "httproutes.gateway.networking.k8s.io", name, ns) or {}
    assert route["spec"]["parentRefs"][0] == {"group": "", "kind": "Service", "name": name, "port": 8000}
    stable_cm = wait_object(crds, "configmap", f"{name}-stable-config", ns)
    canary_cm = wait_object(crds, "configmap", f"{name}-canary-config", ns)
    common = (
        f"--served-model-name {name} --host 0.0.0.0 --port 8000 --tp-size 4 --enable-metrics "
        "--context-length 32768"
    )
    fp8 = f"{common} --quantization fp8 --mem-fraction-static 0.85".split()
    program = "python3 -m sglang.launch_server --model-path"
    assert engine_command(stable_cm, tmp_path) == (program, f"{common} --mem-fraction-static 0.85".split())
    assert engine_command(canary_cm, tmp_path) == (program, fp8)

    # Promote: the canary's engine becomes the stable one and the canary is removed.
    canary_engine = md["spec"]["canary"]["engine"]
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, name, {"spec": {"engine": canary_engine, "canary": None}}
    )
    wait_for(lambda: route_weights(crds, ns, name) == [(f"{name}-stable", 100)], TIMEOUT, "HTTPRoute 100/0")
    for kind, child in (("deployment", f"{name}-canary"), ("configmap", f"{name}-canary-config"),
                        ("service", f"{name}-canary")):  # fmt: skip
        wait_for(
            lambda k=kind, n=child: get_object(crds, k, n, ns) is None, TIMEOUT, f"{kind} {child} deleted"
        )
    md = wait_md(custom, ns, name, lambda md: "canary" not in md.get("status", {}), "canary status gone")
    assert not condition(md, c.COND_CANARY_READY)
    promoted = get_object(crds, "configmap", f"{name}-stable-config", ns) or {}
    assert engine_command(promoted, tmp_path) == (program, fp8)


def test_canary_without_gateway_api_splits_by_replicas_behind_one_service(
    crds: ControlPlane,
    operator: OperatorProcess,
    no_gateway_api: None,  # noqa: F811
    md_namespace: str,
    custom: client.CustomObjectsApi,
) -> None:
    ns, name = md_namespace, "qwen-chat"
    crds.kubectl("apply", "-n", ns, "-f", str(SGLANG_EXAMPLE))
    md = wait_md(custom, ns, name, lambda md: bool(condition(md, c.COND_ROUTED)), "a Routed condition")
    routed = condition(md, c.COND_ROUTED)
    assert routed["reason"] == c.REASON_SERVICE_FALLBACK
    assert (
        "the canary gets about 33% of requests (1 of 3 replicas) instead of canary.weight 10%"
        in routed["message"]
    )
    wait_object(crds, "deployment", f"{name}-canary", ns)
    service = wait_object(crds, "service", name, ns)
    assert service["spec"]["selector"] == {
        c.LABEL_MODEL_DEPLOYMENT: name,
        c.LABEL_COMPONENT: c.COMPONENT_SERVER,
    }
    assert get_object(crds, "service", f"{name}-canary", ns) is None


POD_OVERRIDES = {
    "metadata": {"labels": {"team": "ml"}, "annotations": {"example.com/owner": "ml"}},
    "spec": {
        "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
        "imagePullSecrets": [{"name": "acr-pull"}],
        "volumes": [
            {"name": "ca", "secret": {"secretName": "corp-ca", "optional": True}},
            {"name": "buffer", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
        "volumeMounts": [{"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
        "sidecars": [
            {
                "name": "log-shipper",
                "image": "fluent/fluent-bit:3.2",
                "env": [
                    {"name": "SHIP_KEY", "valueFrom": {"secretKeyRef": {"name": "log-key", "key": "key"}}}
                ],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                "volumeMounts": [{"name": "buffer", "mountPath": "/buffer"}],
            }
        ],
    },
}


def test_secrets_and_pod_overrides_reach_the_serving_pods(
    crds: ControlPlane,
    operator: OperatorProcess,
    no_keda: None,  # noqa: F811
    md_namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    """A gated hub model with its token in a Secret, env from a ConfigMap, and every kind of pod
    addition: the API server accepts the Deployment and the ReplicaSet's pod (a native sidecar first,
    the token read from the Secret in both containers), and the pod runs on kwok's CPU node."""
    ns, name = md_namespace, "gated"
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "org/gated-tiny", "tokenSecret": {"name": "hf-token"}},
            "servedModelName": "tiny",
            "engine": {"type": "transformers"},
            "resources": {"instanceType": "Standard_D8s_v5", "gpusPerReplica": 0},
            "replicas": 1,
            "env": [
                {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "log"}}}
            ],
            "podTemplate": POD_OVERRIDES,
        },
    }
    # The token's Secret must exist before pods are made (ReferencesReady, test_references.py).
    core.create_namespaced_secret(
        ns, {"metadata": {"name": "hf-token"}, "stringData": {"token": "not-a-token"}}
    )
    crds.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(manifest))
    wait_object(crds, "deployment", f"{name}-stable", ns)
    wait_for(lambda: len(server_pods(core, ns, f"{name}-stable")) == 1, TIMEOUT, "the serving pod")
    (pod,) = server_pods(core, ns, f"{name}-stable")
    assert pod.metadata.labels["team"] == "ml" and pod.metadata.labels[c.LABEL_TRACK] == "stable"
    assert pod.metadata.annotations["example.com/owner"] == "ml"
    sidecar, download = pod.spec.init_containers
    assert (sidecar.name, sidecar.restart_policy, download.name) == (
        "log-shipper",
        "Always",
        "model-download",
    )
    assert sidecar.security_context.allow_privilege_escalation is False
    (server,) = pod.spec.containers
    for container in (server, download):
        token = next(e for e in container.env if e.name == "HF_TOKEN")
        assert (token.value_from.secret_key_ref.name, token.value_from.secret_key_ref.key) == (
            "hf-token",
            "token",
        )
        level = next(e for e in container.env if e.name == "LOG_LEVEL")
        assert level.value_from.config_map_key_ref.name == "settings"
        assert "/etc/ssl/corp" in [m.mount_path for m in container.volume_mounts]
    assert [s.name for s in pod.spec.image_pull_secrets] == ["acr-pull"]
    assert {"ca", "buffer"} <= {v.name for v in pod.spec.volumes}
    assert any(t.key == "dedicated" for t in pod.spec.tolerations)
