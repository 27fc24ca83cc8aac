"""The reconcile shape against the real API server, with the session operator: children edited by hand
are put back by server-side apply (a Deployment's image, a ConfigMap's config, a RoleBinding's
subject), a field the spec no longer asks for leaves its child (a removed env var), children the
plan no longer names are pruned (a removed canary), and an operator with
nothing to do makes no API request and runs no pass (the session operator's safety resync is 10
minutes, so every pass here was caused by an event or a plan's deadline)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from hack.controlplane.cluster import ControlPlane, wait_for
from tests.cluster.conftest import OperatorProcess, wait_for_phase
from tests.cluster.test_operator_metrics import samples
from tests.cluster.test_trainingjob_lifecycle import create, training_job

pytestmark = pytest.mark.cluster

TIMEOUT = 60
MODEL_DEPLOYMENT = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ModelDeployment",
    "metadata": {"name": "tiny-chat"},
    "spec": {
        "model": {"uri": "/models/tiny-llama"},
        "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
        "resources": {"instanceType": "Standard_NC40adis_H100_v5", "gpusPerReplica": 1},
        "replicas": 1,
    },
}
CANARY = {"replicas": 1, "weight": 10, "image": "ghcr.io/modelfleet/serving-runtime:canary"}


def get(cluster: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = cluster.kubectl(
        "get", kind, name, "-n", namespace, "-o", "json", "--ignore-not-found", "--show-managed-fields"
    )
    return json.loads(result.stdout) if result.stdout.strip() else None


def wait_until(
    cluster: ControlPlane, kind: str, name: str, namespace: str, check: Callable[[Any], bool], what: str
) -> None:
    wait_for(
        lambda: check(get(cluster, kind, name, namespace)), TIMEOUT, f"{kind} {namespace}/{name}: {what}"
    )


def image_of(deployment: dict[str, Any] | None) -> str | None:
    return None if deployment is None else deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def md_phase(custom: client.CustomObjectsApi, namespace: str, name: str) -> str | None:
    found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", name)
    phase: str | None = found.get("status", {}).get("phase")
    return phase


def test_hand_edited_children_are_put_back(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi
) -> None:
    ns = namespace
    create(custom, ns, training_job("drift"))
    wait_for_phase(custom, ns, "drift", "Running")
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", MODEL_DEPLOYMENT)
    wait_for(lambda: md_phase(custom, ns, "tiny-chat") == "Ready", TIMEOUT, "tiny-chat Ready")

    config = get(cluster, "configmap", "drift-config", ns)
    assert config is not None
    cluster.kubectl("patch", "configmap", "drift-config", "-n", ns, "--type=merge", "-p",
                    json.dumps({"data": {"config.yaml": "edited: by hand\n"}}))  # fmt: skip
    subject = [{"kind": "ServiceAccount", "name": "someone-else", "namespace": ns}]
    cluster.kubectl("patch", "rolebinding", "drift-worker", "-n", ns, "--type=merge", "-p",
                    json.dumps({"subjects": subject}))  # fmt: skip
    served = get(cluster, "deployment", "tiny-chat-stable", ns)
    cluster.kubectl("set", "image", "deployment/tiny-chat-stable", "server=edited/by-hand:1", "-n", ns)
    cluster.kubectl("patch", "configmap", "tiny-chat-stable-config", "-n", ns, "--type=merge", "-p",
                    json.dumps({"data": {"config.yaml": "model: {uri: /elsewhere}\n"}}))  # fmt: skip

    wait_until(
        cluster, "configmap", "drift-config", ns, lambda cm: cm["data"] == config["data"], "config put back"
    )
    wait_until(
        cluster, "rolebinding", "drift-worker", ns,
        lambda rb: rb["subjects"][0]["name"] == "drift-worker", "subject put back",
    )  # fmt: skip
    wait_until(
        cluster, "deployment", "tiny-chat-stable", ns,
        lambda d: image_of(d) == image_of(served), "image put back",
    )  # fmt: skip
    wait_until(
        cluster, "configmap", "tiny-chat-stable-config", ns,
        lambda cm: "/models/tiny-llama" in cm["data"]["config.yaml"], "serving config put back",
    )  # fmt: skip
    managers = {
        entry["manager"]
        for entry in (get(cluster, "deployment", "tiny-chat-stable", ns) or {})["metadata"]["managedFields"]
        if entry["operation"] == "Apply"
    }
    assert managers == {c.MANAGED_BY}, "one field manager applies every child"


def test_a_removed_canary_is_pruned(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi
) -> None:
    ns = namespace
    manifest = {**MODEL_DEPLOYMENT, "spec": {**MODEL_DEPLOYMENT["spec"], "canary": CANARY}}
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", manifest)
    wait_until(cluster, "deployment", "tiny-chat-canary", ns, lambda d: d is not None, "created")
    wait_until(cluster, "configmap", "tiny-chat-canary-config", ns, lambda cm: cm is not None, "created")

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "modeldeployments", "tiny-chat", {"spec": {"canary": None}}
    )

    for kind in ("deployment/tiny-chat-canary", "configmap/tiny-chat-canary-config"):
        kind_name, name = kind.split("/")
        wait_until(cluster, kind_name, name, ns, lambda found: found is None, "pruned")
    assert get(cluster, "deployment", "tiny-chat-stable", ns) is not None


def env_names(deployment: dict[str, Any] | None) -> set[str]:
    if deployment is None:
        return set()
    return {var["name"] for var in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])}


def test_an_env_var_removed_from_the_spec_leaves_the_deployment(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi
) -> None:
    """The Deployment still holds everything the new spec wants, so it has not drifted; the first pass
    after the spec change applies it again, and the API server's server-side apply drops the variable
    the operator's field manager no longer sets."""
    ns = namespace
    env = [{"name": "KEEP_ME", "value": "1"}, {"name": "DROP_ME", "value": "2"}]
    manifest = {**MODEL_DEPLOYMENT, "spec": {**MODEL_DEPLOYMENT["spec"], "env": env}}
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", manifest)
    wait_until(cluster, "deployment", "tiny-chat-stable", ns,
               lambda d: {"KEEP_ME", "DROP_ME"} <= env_names(d), "both variables")  # fmt: skip

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, ns, "modeldeployments", "tiny-chat", {"spec": {"env": env[:1]}}
    )

    wait_until(
        cluster, "deployment", "tiny-chat-stable", ns,
        lambda d: "DROP_ME" not in env_names(d) and "KEEP_ME" in env_names(d), "DROP_ME removed",
    )  # fmt: skip


def requests_and_passes(operator: OperatorProcess) -> tuple[float, float]:
    seen = samples(operator)
    requests = sum(v for (name, _), v in seen.items() if name == "modelfleet_api_requests_total")
    passes = sum(v for (name, _), v in seen.items() if name == "modelfleet_reconcile_total")
    return requests, passes


def test_an_operator_with_nothing_to_do_makes_no_request_and_runs_no_pass(
    operator: OperatorProcess, namespace: str, custom: client.CustomObjectsApi
) -> None:
    ns = namespace
    create(custom, ns, training_job("idle"))
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", MODEL_DEPLOYMENT)
    wait_for_phase(custom, ns, "idle", "Running")
    wait_for(lambda: md_phase(custom, ns, "tiny-chat") == "Ready", TIMEOUT, "tiny-chat Ready")

    quiet_seconds = 10.0
    window: list[tuple[float, float]] = []

    def quiet_for_a_while() -> bool:
        window.append(requests_and_passes(operator))
        time.sleep(quiet_seconds)
        window.append(requests_and_passes(operator))
        return window[-1] == window[-2]

    wait_for(quiet_for_a_while, 120, f"{quiet_seconds:.0f} s without an API request or a pass")
