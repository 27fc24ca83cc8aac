"""The HPA fallback and the custom metrics API, against the real API server's aggregation layer.

Without KEDA a ModelDeployment's HorizontalPodAutoscaler reads a pod metric from
``custom.metrics.k8s.io``, which only a custom-metrics adapter serves. The operator watches the adapter's
APIService and its Available condition, which the real aggregator (kube-apiserver's availability
controller) sets, and the Autoscaling condition follows it.

What stands in for the adapter: no prometheus-adapter runs here. A small HTTPS server in this test
process (a certificate from the plane's CA, bound to this machine's own non-loopback address, which a
selector-less Service's EndpointSlice names) answers the aggregator's discovery request for
``/apis/custom.metrics.k8s.io/v1beta1`` with the resource list an adapter would serve. It serves no
metric values: the test proves detection, not scaling (no HPA controller reads it: kwok runs no pods'
metrics).
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import constants as c

from hack.controlplane.certs import issue_serving_cert
from hack.controlplane.cluster import ControlPlane
from tests.cluster.conftest import OperatorProcess
from tests.cluster.test_modeldeployment_controller import (  # noqa: F401  (md_namespace: a fixture)
    VLLM_EXAMPLE,
    condition,
    md_namespace,
    wait_md,
)
from tests.cluster.thirdparty import no_keda  # noqa: F401  (fixture)

pytestmark = pytest.mark.cluster

GROUP, VERSION = "custom.metrics.k8s.io", "v1beta1"
API_SERVICE = f"{VERSION}.{GROUP}"
ADAPTER = "prometheus-adapter"
METRIC = "vllm:num_requests_waiting"
TIMEOUT = 60


def host_address() -> str:
    """This machine's own address on its default route (the API server refuses a loopback address in
    an EndpointSlice). Nothing is sent: ``ip route get`` only looks the route up."""
    route = subprocess.run(
        ["ip", "-4", "route", "get", "1.1.1.1"], capture_output=True, text=True, check=True
    )
    words = route.stdout.split()
    assert "src" in words, f"no source address on the default route: {route.stdout!r}"
    return words[words.index("src") + 1]


class DiscoveryOnly(BaseHTTPRequestHandler):
    """Answers an adapter's discovery document for the metric; 404 for anything else."""

    def do_GET(self) -> None:
        if self.path.split("?")[0] != f"/apis/{GROUP}/{VERSION}":
            self.send_error(404)
            return
        body = json.dumps(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{GROUP}/{VERSION}",
                "resources": [
                    {
                        "name": f"pods/{METRIC}",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "MetricValueList",
                        "verbs": ["get"],
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def stand_in_adapter(
    crds: ControlPlane,
    md_namespace: str,  # noqa: F811
    tmp_path: Path,
) -> Iterator[tuple[str, int]]:
    """The stand-in adapter's HTTPS server: (address, port); stopped after the test."""
    address = host_address()
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    issue_serving_cert(
        crds.pki, cert, key, ADAPTER, ips=(address,), dns_names=(f"{ADAPTER}.{md_namespace}.svc",)
    )
    server = HTTPServer((address, 0), DiscoveryOnly)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield address, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def registration(
    api_client: client.ApiClient,
    md_namespace: str,  # noqa: F811
) -> Iterator[client.ApiregistrationV1Api]:
    """Deletes the test's APIService after it, before its namespace goes (a namespace's deletion waits
    on discovery, which an unavailable aggregated API fails)."""
    api = client.ApiregistrationV1Api(api_client)
    try:
        yield api
    finally:
        if _exists(api):
            api.delete_api_service(API_SERVICE)


def _exists(api: client.ApiregistrationV1Api) -> bool:
    return any(item.metadata.name == API_SERVICE for item in api.list_api_service().items)


def apply(cluster: ControlPlane, *objects: dict[str, Any]) -> None:
    cluster.kubectl(
        "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    )


def autoscaling_is(status: str, reason: str) -> Any:
    def check(md: dict[str, Any]) -> bool:
        found = condition(md, c.COND_AUTOSCALING)
        return (found.get("status"), found.get("reason")) == (status, reason)

    return check


def test_the_fallback_hpa_says_no_adapter_serves_its_metric_until_an_adapters_apiservice_is_available(
    crds: ControlPlane,
    operator: OperatorProcess,
    no_keda: None,  # noqa: F811
    md_namespace: str,  # noqa: F811
    custom: client.CustomObjectsApi,
    api_client: client.ApiClient,
    registration: client.ApiregistrationV1Api,
    stand_in_adapter: tuple[str, int],
) -> None:
    ns, name = md_namespace, "llama3-8b"
    assert not _exists(registration), f"APIService {API_SERVICE} is left over from another run"
    crds.kubectl("apply", "-n", ns, "-f", str(VLLM_EXAMPLE))

    # No adapter: the HPA is applied, and the condition says what to install.
    unavailable = autoscaling_is("False", c.REASON_CUSTOM_METRICS_UNAVAILABLE)
    md = wait_md(custom, ns, name, unavailable, "Autoscaling=False without a custom metrics API")
    message = condition(md, c.COND_AUTOSCALING)["message"]
    assert f"no APIService v1beta2.{GROUP} or {API_SERVICE} exists" in message
    assert "Install a custom-metrics adapter such as prometheus-adapter" in message
    assert crds.kubectl("get", "hpa", name, "-n", ns).returncode == 0

    # The adapter is registered before its Service exists: the aggregator says why it is not Available.
    apply(
        crds,
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "service": {"name": ADAPTER, "namespace": ns, "port": 443},
                "caBundle": base64.b64encode(crds.pki.ca_cert.read_bytes()).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    )
    md = wait_md(
        custom,
        ns,
        name,
        lambda md: "ServiceNotFound" in condition(md, c.COND_AUTOSCALING).get("message", ""),
        "the aggregator's ServiceNotFound quoted",
    )
    assert condition(md, c.COND_AUTOSCALING)["reason"] == c.REASON_CUSTOM_METRICS_UNAVAILABLE
    assert (
        f"APIService {API_SERVICE} is not Available (ServiceNotFound: "
        in condition(md, c.COND_AUTOSCALING)["message"]
    )

    # The stand-in adapter gets its Service and endpoint: Available, and the fallback scales.
    address, port = stand_in_adapter
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": ADAPTER, "namespace": ns},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port, "protocol": "TCP"}]},
    }
    endpoints = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{ADAPTER}-1",
            "namespace": ns,
            "labels": {
                "kubernetes.io/service-name": ADAPTER,
                "endpointslice.kubernetes.io/managed-by": "tests.modelfleet.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
    apply(crds, service, endpoints)
    md = wait_md(custom, ns, name, autoscaling_is("True", c.REASON_HPA_FALLBACK), "Autoscaling=True")
    assert f"APIService {API_SERVICE} is Available" in condition(md, c.COND_AUTOSCALING)["message"]
    live = crds.kubectl("get", "apiservice", API_SERVICE, "-o", "json").stdout
    available = next(x for x in json.loads(live)["status"]["conditions"] if x["type"] == "Available")
    assert available["status"] == "True", "the real aggregator marked the stand-in Available"

    # The adapter goes: the condition says so again.
    registration.delete_api_service(API_SERVICE)
    md = wait_md(custom, ns, name, unavailable, "Autoscaling=False once the APIService is gone")
    assert (
        f"no APIService v1beta2.{GROUP} or {API_SERVICE} exists"
        in condition(md, c.COND_AUTOSCALING)["message"]
    )
