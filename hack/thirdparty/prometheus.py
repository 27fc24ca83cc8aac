"""Prometheus, running as a pod on the real node and discovering the pods it scrapes through the
Kubernetes API, as on a cluster.

From the Go module: the binary (``build.sh``), the RBAC (``documentation/examples/rbac-setup.yml``) and
the scrape job for pods (``kubernetes-pods`` of ``documentation/examples/prometheus-kubernetes.yml``:
pod labels, ``namespace`` and ``pod`` as target labels). Upstream's job leaves which pods to scrape to
commented examples; the harness puts in front of it the rules of the ``prometheus.io/scrape``,
``prometheus.io/path`` and ``prometheus.io/port`` annotations, the convention that Prometheus' Helm
chart and Azure Monitor's managed Prometheus follow. Prometheus' project publishes no Deployment, so
its Deployment and Service are written here.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from hack.node.node import RealNode
from hack.thirdparty.images import NOBODY, binary_image
from hack.thirdparty.upstream import PROMETHEUS, apply, kubectl, pod_ip, rollout, until_gone

NAMESPACE = "monitoring"
NAME = "prometheus"
PORT = 9090
URL_IN_CLUSTER = f"http://{NAME}.{NAMESPACE}.svc:{PORT}"
"""Where pods (KEDA's prometheus trigger) reach it."""
SCRAPE_INTERVAL = "5s"
ANNOTATION_RULES: list[dict[str, Any]] = [
    {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
        "action": "keep",
        "regex": "true",
    },
    {
        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
        "action": "replace",
        "target_label": "__metrics_path__",
        "regex": "(.+)",
    },
    {
        "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
        "action": "replace",
        "regex": r"([^:]+)(?::\d+)?;(\d+)",
        "replacement": "$1:$2",
        "target_label": "__address__",
    },
]


def _upstream_yaml(path: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((PROMETHEUS.source / path).read_text()) if doc]


def configuration() -> dict[str, Any]:
    """``prometheus.yml``: upstream's ``kubernetes-pods`` job behind the annotation rules."""
    (example,) = _upstream_yaml("documentation/examples/prometheus-kubernetes.yml")
    (pods,) = (job for job in example["scrape_configs"] if job["job_name"] == "kubernetes-pods")
    pods["relabel_configs"] = [*ANNOTATION_RULES, *pods["relabel_configs"]]
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": [pods],
    }


def rbac() -> list[dict[str, Any]]:
    """Upstream's ClusterRole, ServiceAccount and binding, in our namespace (its token Secret is left
    out: the pod gets a projected token)."""
    objects = [o for o in _upstream_yaml("documentation/examples/rbac-setup.yml") if o["kind"] != "Secret"]
    for obj in objects:
        if obj["kind"] == "ServiceAccount":
            obj["metadata"]["namespace"] = NAMESPACE
        for subject in obj.get("subjects", []):
            subject["namespace"] = NAMESPACE
    return objects


def manifests(image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": NAME}
    config = yaml.safe_dump(configuration(), sort_keys=False)
    meta = {"name": NAME, "namespace": NAMESPACE, "labels": labels}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {"config-sha256": hashlib.sha256(config.encode()).hexdigest()},
                },
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {"runAsNonRoot": True},
                    "containers": [
                        {
                            "name": NAME,
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": [
                                "--config.file=/etc/prometheus/prometheus.yml",
                                "--storage.tsdb.path=/data",
                                f"--web.listen-address=:{PORT}",
                            ],
                            "ports": [{"name": "web", "containerPort": PORT}],
                            "readinessProbe": {"httpGet": {"path": "/-/ready", "port": PORT}},
                            "volumeMounts": [
                                {"name": "config", "mountPath": "/etc/prometheus"},
                                {"name": "data", "mountPath": "/data"},
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": NAME}},
                        {"name": "data", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *rbac(),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"prometheus.yml": config}},
        deployment,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": labels, "ports": [{"name": "web", "port": PORT, "targetPort": PORT}]},
        },
    ]


@dataclass(frozen=True)
class Prometheus:
    plane: ControlPlane

    @property
    def node(self) -> RealNode:
        return self.plane.node

    def install(self) -> None:
        """Loads the image into the node, applies the manifests and waits for the pod to be ready."""
        image = binary_image(PROMETHEUS, "prometheus", user=NOBODY)
        self.node.load_image(image)
        objects = manifests(image.ref)
        self.uninstall()  # what a session killed before its teardown left behind
        apply(self.plane, objects)
        rollout(self.plane, NAMESPACE, NAME)

    def uninstall(self, wait: bool = True) -> None:
        """Deletes what ``install`` applied. ``wait=False`` (a session's end) does not wait for the
        namespace's pods to stop (10 s); the next ``install`` uninstalls first, waiting."""
        kubectl(self.plane, "delete", "namespace", NAMESPACE, "--ignore-not-found", *until_gone(wait))
        for obj in rbac():
            if obj["kind"] != "ServiceAccount":
                kubectl(
                    self.plane, "delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found"
                )

    def url(self, api: client.CoreV1Api) -> str:
        """Where this machine reaches it: the pod's IP (the host routes the node's pod subnet)."""
        return f"http://{pod_ip(api, NAMESPACE, f'app.kubernetes.io/name={NAME}')}:{PORT}"

    def query(self, api: client.CoreV1Api, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query."""
        url = f"{self.url(api)}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result
