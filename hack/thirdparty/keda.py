"""KEDA (operator and metrics API server) and the KEDA HTTP add-on (operator, interceptor, external
scaler), running as pods on the real node.

Installed from the modules' own kustomizations: KEDA's ``config/minimal`` (everything but its
admission webhooks, which only validate) and the add-on's ``config/default``, with their images
replaced by the ones built here (``hack.thirdparty.images``). Pods rather than processes on this
machine because the add-on's interceptor forwards to ``<service>.<namespace>:<port>`` (cluster DNS and
Service IPs exist only inside the node's network namespace) and KEDA's operator hands certificates to
the metrics API server through a Secret volume; as pods, both work as upstream wrote them. The API
server reaches the metrics API server's pod through the aggregation layer with
``--enable-aggregator-routing`` (``hack.controlplane.cluster``), and the caBundle of the APIService is
written by KEDA's own cert rotation.

Changed from upstream's manifests, and why: images (no registry; ``imagePullPolicy: IfNotPresent``),
one replica of each Deployment (upstream runs three interceptors and three scalers) and no ScaledObject
scaling the interceptors: a 2-core node.

The e2e fixture ``keda`` (``tests/e2e/conftest.py``) installs it once per test session, with Prometheus.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.thirdparty.images import binary_image
from hack.thirdparty.upstream import (
    KEDA,
    KEDA_HTTP_ADD_ON,
    apply,
    crd_names,
    kubectl,
    pod_ip,
    rollout,
    until_gone,
)

NAMESPACE = "keda"
APISERVICE = "v1beta1.external.metrics.k8s.io"
INTERCEPTOR_PROXY_PORT = 8080
INTERCEPTOR_ADMIN_PORT = 9090
INTERCEPTOR_IN_CLUSTER = (
    f"http://keda-add-ons-http-interceptor-proxy.{NAMESPACE}.svc:{INTERCEPTOR_PROXY_PORT}"
)
"""Where pods send the requests the add-on routes by their ``Host`` header (an HTTPScaledObject's
``hosts``) and holds while the target is at zero."""
OPERATOR_LOGS = ("keda-operator", "keda-add-ons-http-operator", "keda-add-ons-http-interceptor")
"""Deployments whose logs ``state()`` shows: KEDA's scaling decisions, the add-on's ScaledObjects and
its routing."""
IMAGES = {
    # upstream image name -> (component, binary)
    "ghcr.io/kedacore/keda": (KEDA, "keda"),
    "ghcr.io/kedacore/keda-metrics-apiserver": (KEDA, "keda-adapter"),
    "ghcr.io/kedacore/http-add-on-operator": (KEDA_HTTP_ADD_ON, "operator"),
    "ghcr.io/kedacore/http-add-on-interceptor": (KEDA_HTTP_ADD_ON, "interceptor"),
    "ghcr.io/kedacore/http-add-on-scaler": (KEDA_HTTP_ADD_ON, "scaler"),
}


def _image_name(image: str) -> str:
    """``ghcr.io/kedacore/keda:latest`` -> ``ghcr.io/kedacore/keda``."""
    last = image.rsplit("/", 1)[-1]
    return image[: len(image) - len(last)] + last.split(":", 1)[0].split("@", 1)[0]


@dataclass(frozen=True)
class Keda:
    plane: ControlPlane

    def upstream(self) -> list[dict[str, Any]]:
        kubectl_bin = self.plane.kubectl_bin
        return [
            *KEDA.render("config/minimal", kubectl_bin),
            *KEDA_HTTP_ADD_ON.render("config/default", kubectl_bin),
        ]

    def manifests(self, images: dict[str, str]) -> list[dict[str, Any]]:
        """Upstream's objects with the images built here (``images``: upstream name -> our ref)."""
        objects = [o for o in self.upstream() if o["kind"] != "ScaledObject"]
        for obj in objects:
            if obj["kind"] != "Deployment":
                continue
            spec = obj["spec"]
            spec["replicas"] = 1
            for container in spec["template"]["spec"]["containers"]:
                container["image"] = images[_image_name(container["image"])]
                container["imagePullPolicy"] = "IfNotPresent"
        return objects

    def install(self) -> None:
        """Loads the images into the node, applies the manifests, and waits until every Deployment is
        available and the API server serves the external metrics API through KEDA."""
        images = {}
        for upstream_name, (component, binary) in IMAGES.items():
            image = binary_image(component, binary)
            self.plane.node.load_image(image)
            images[upstream_name] = image.ref
        objects = self.manifests(images)
        self.uninstall()  # what a session killed before its teardown left behind
        apply(self.plane, objects)
        kubectl(self.plane, "wait", "--for=condition=Established", "--timeout=60s", *crd_names(objects))
        for deployment in (o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"):
            rollout(self.plane, NAMESPACE, deployment)
        kubectl(self.plane, "wait", "--for=condition=Available", "--timeout=100s", f"apiservice/{APISERVICE}")

    def uninstall(self, wait: bool = True) -> None:
        """The APIService goes first (while it is unavailable, API discovery fails for every client),
        then the CRDs while the operators still run (they clear their finalizers), then the rest.
        ``wait=False`` (a session's end) does not wait for the namespace's pods to stop; the next
        ``install`` uninstalls first, waiting."""
        objects = self.upstream()
        kubectl(self.plane, "delete", "apiservice", APISERVICE, "--ignore-not-found")
        kubectl(self.plane, "delete", "--ignore-not-found", "--timeout=120s", *crd_names(objects))
        kubectl(self.plane, "delete", "namespace", NAMESPACE, "--ignore-not-found", *until_gone(wait))
        cluster_scoped = [
            f"{o['kind'].lower()}/{o['metadata']['name']}"
            for o in objects
            if o["kind"] in ("ClusterRole", "ClusterRoleBinding")
        ]
        kubectl(self.plane, "delete", "--ignore-not-found", *cluster_scoped)
        kube_system = [
            f"{o['kind'].lower()}/{o['metadata']['name']}"
            for o in objects
            if o["metadata"].get("namespace") == "kube-system"
        ]
        if kube_system:
            kubectl(self.plane, "delete", "-n", "kube-system", "--ignore-not-found", *kube_system)

    def interceptor_url(self, api: client.CoreV1Api, port: int = INTERCEPTOR_PROXY_PORT) -> str:
        """Where this machine reaches the interceptor (its proxy port unless told): its pod's IP (the
        host routes the node's pod subnet; Service IPs exist only inside the node)."""
        return f"http://{pod_ip(api, NAMESPACE, 'app.kubernetes.io/instance=interceptor')}:{port}"

    def routed(self, api: client.CoreV1Api) -> set[str]:
        """``namespace/name`` of every HTTPScaledObject the interceptor routes: the keys of its request
        counts (admin ``/queue``), which it adds as it learns an HTTPScaledObject. A request sent
        before its host is routed gets a 404."""
        with urllib.request.urlopen(
            f"{self.interceptor_url(api, INTERCEPTOR_ADMIN_PORT)}/queue", timeout=10
        ) as r:
            return set(json.load(r))

    def wait_for(self, namespace: str, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """``wait_for`` whose failure shows ``state(namespace)``: a scaling that did not happen is
        explained by KEDA's own words before the test's namespace and KEDA are gone."""
        try:
            wait_for(predicate, timeout, what, interval=1.0)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{self.state(namespace)}") from None

    def state(self, namespace: str, tail: int = 30) -> str:
        """What KEDA made of a namespace's scaled objects and why, for a failed wait's message: the
        ScaledObjects, HTTPScaledObjects and HPAs, the namespace's events, the operators' last log lines."""
        kinds = "scaledobjects,httpscaledobjects,hpa,deployments,pods"
        events = ("get", "events", "-n", namespace, "--sort-by=.lastTimestamp")
        parts = [
            kubectl(self.plane, "get", "-n", namespace, "-o", "wide", kinds, check=False).stdout,
            kubectl(self.plane, *events, check=False).stdout,
        ]
        for deployment in OPERATOR_LOGS:
            log = kubectl(
                self.plane, "logs", "-n", NAMESPACE, f"deployment/{deployment}", f"--tail={tail}", check=False
            ).stdout
            parts.append(f"--- {deployment} (last {tail} lines)\n{log}")
        return "\n".join(parts)
