"""Workloads for the third-party components' tests: busybox's ``httpd`` serving the files of a
ConfigMap, ``index.html`` for HTTP requests and ``metrics.txt``, a gauge in Prometheus' text format
whose value a test sets by editing the ConfigMap (the kubelet refreshes the mounted file within its
sync period)."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from hack.controlplane.cluster import ControlPlane

PORT = 8080
GAUGE = "demo_queue_depth"
PAGE = "hello from a pod that was at zero\n"


def site(name: str, depth: int) -> dict[str, Any]:
    metrics = f"# TYPE {GAUGE} gauge\n{GAUGE} {depth}\n"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"index.html": PAGE, "metrics.txt": metrics},
    }


def web_deployment(name: str, image: str, replicas: int, scraped: bool = True) -> dict[str, Any]:
    """busybox httpd serving the ConfigMap ``name``; with ``scraped``, Prometheus scrapes its
    ``metrics.txt`` (the pods' ``prometheus.io/*`` annotations)."""
    labels = {"app": name}
    scrape = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": "/metrics.txt",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": scrape if scraped else {}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "httpd",
                            "image": image,
                            "imagePullPolicy": "Never",
                            "command": ["httpd", "-f", "-p", str(PORT), "-h", "/www"],
                            "ports": [{"containerPort": PORT}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": PORT}, "periodSeconds": 1},
                            "volumeMounts": [{"name": "site", "mountPath": "/www"}],
                        }
                    ],
                    "volumes": [{"name": "site", "configMap": {"name": name}}],
                },
            },
        },
    }


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": PORT, "targetPort": PORT}]},
    }


def create(cluster: ControlPlane, namespace: str, *objects: dict[str, Any]) -> None:
    cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )


def ready_replicas(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    return apps.read_namespaced_deployment(name, namespace).status.ready_replicas or 0


def replicas(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    return apps.read_namespaced_deployment(name, namespace).spec.replicas or 0
