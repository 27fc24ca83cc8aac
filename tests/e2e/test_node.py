"""The real node: registered beside the simulated GPU pools, running pods that reach each other and the
API server by cluster DNS names, through Services kube-proxy programs."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from hack.controlplane.cluster import K8S_VERSION, wait_for
from hack.node.layout import NODE_NAME

pytestmark = pytest.mark.e2e


def _pod(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "containers": [
                {"name": name, "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", script]}
            ],
            **spec,
        },
    }


def _finished(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    found: list[client.V1Pod] = []

    def done() -> bool:
        found[:] = [core.read_namespaced_pod(name, namespace)]
        return found[0].status.phase in ("Succeeded", "Failed")

    wait_for(done, 120, f"pod {namespace}/{name} to finish")
    return found[0]


def test_real_node_runs_the_plane_version_beside_the_simulated_gpu_pools(
    real_node: client.V1Node, api_client: client.ApiClient
) -> None:
    info = real_node.status.node_info
    assert info.kubelet_version == K8S_VERSION
    assert info.container_runtime_version.startswith("containerd://2.")
    labels = real_node.metadata.labels
    assert labels["kubernetes.azure.com/agentpool"] == "system"
    assert labels["node.kubernetes.io/instance-type"].startswith("Standard_D")
    assert "nvidia.com/gpu" not in real_node.status.allocatable
    assert not real_node.spec.taints
    others = [n for n in client.CoreV1Api(api_client).list_node().items if n.metadata.name != NODE_NAME]
    assert others and all(n.metadata.annotations.get("kwok.x-k8s.io/node") == "fake" for n in others)


def test_pods_meet_by_service_and_pod_dns_names_and_reach_the_api_server(
    api_client: client.ApiClient, namespace: str, busybox: str
) -> None:
    """A web pod passes a real HTTP readiness probe; a client pod resolves the Service and the web pod's
    own name under a headless Service, fetches the page through the Service's ClusterIP, and opens a
    connection to the API server through the ``kubernetes`` Service, as the runtimes' clients do."""
    core = client.CoreV1Api(api_client)
    web = _pod(
        "web",
        busybox,
        "mkdir -p /tmp/www && echo served-by-$(hostname) > /tmp/www/index.html && "
        "exec httpd -f -p 8080 -h /tmp/www",
        hostname="web-0",
        subdomain="peers",
    )
    web["spec"]["containers"][0]["readinessProbe"] = {
        "httpGet": {"path": "/", "port": 8080},
        "periodSeconds": 1,
    }
    core.create_namespaced_pod(namespace, web)
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    )
    core.create_namespaced_service(
        namespace,
        {
            "metadata": {"name": "peers"},
            "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 8080}]},
        },
    )
    wait_for(
        lambda: any(
            c.type == "Ready" and c.status == "True"
            for c in core.read_namespaced_pod("web", namespace).status.conditions or []
        ),
        60,
        "the web pod Ready (its HTTP readiness probe passed)",
    )
    web_ip = core.read_namespaced_pod("web", namespace).status.pod_ip
    script = "; ".join(
        (
            "set -e",
            # kube-proxy programs the Service a moment after the web pod turns Ready (its EndpointSlice
            # changes, then kube-proxy syncs): until then the ClusterIP refuses; a client retries
            f"n=0; until wget -qO- http://web.{namespace}.svc.cluster.local/; do "
            "n=$((n+1)); [ $n -lt 30 ] || exit 1; sleep 1; done",
            f"nslookup web-0.peers.{namespace}.svc.cluster.local | grep -q 'Address: {web_ip}$'",
            # busybox cannot speak the API server's TLS: a TCP connection through the Service is what is
            # checked here (the runtimes' API calls with their tokens are the training test's)
            "nc -w 5 kubernetes.default.svc 443 -e true",
            "echo api-reachable > /dev/termination-log",
        )
    )
    core.create_namespaced_pod(namespace, _pod("client", busybox, script, restartPolicy="Never"))
    pod = _finished(core, namespace, "client")
    log = core.read_namespaced_pod_log("client", namespace)
    assert pod.status.phase == "Succeeded", log
    assert "served-by-web-0" in log
    assert pod.spec.node_name == NODE_NAME
    assert pod.status.container_statuses[0].state.terminated.message.strip() == "api-reachable"


def test_cpu_pods_run_on_the_real_node_and_gpu_pods_never_do(
    api_client: client.ApiClient, namespace: str, busybox: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.create_namespaced_pod(namespace, _pod("cpu", busybox, "echo ran", restartPolicy="Never"))
    gpu = _pod(
        "gpu",
        busybox,
        "echo never",
        tolerations=[{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    )
    gpu["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    core.create_namespaced_pod(namespace, gpu)
    assert _finished(core, namespace, "cpu").spec.node_name == NODE_NAME
    assert core.read_namespaced_pod_log("cpu", namespace).strip() == "ran"
    wait_for(lambda: core.read_namespaced_pod("gpu", namespace).spec.node_name, 30, "the GPU pod scheduled")
    assert core.read_namespaced_pod("gpu", namespace).spec.node_name != NODE_NAME
