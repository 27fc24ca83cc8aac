"""The operator run the way the chart deploys it: the chart's Deployment env, the chart's
ServiceAccount token, one watched namespace. Shared by the chart install and the HA tests."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack.controlplane.cluster import ControlPlane, wait_for
from tests.chart.helm import CHART, helm
from tests.cluster import conftest as cluster_conftest
from tests.cluster.conftest import OperatorProcess

RELEASE = "mf"
SERVICE_ACCOUNT = "modelfleet-operator"
TIMEOUT = 30.0
FORBIDDEN = re.compile(r"\b403\b|[Ff]orbidden|Not enough permissions")
"""An API answer of 403 in the operator's log (kopf's own words when it may not list or watch)."""
CRD_NAMES = [f"{plural}.{GROUP}" for plural in ("trainingjobs", "modeldeployments", "benchmarksweeps")]
PLURALS = ("trainingjobs", "modeldeployments", "benchmarksweeps")


class ChartOperator(OperatorProcess):
    """The operator with the environment the chart's Deployment gives it, watching one namespace."""

    def __init__(self, kubeconfig: Path, log_path: Path, env: dict[str, str], namespace: str) -> None:
        super().__init__(kubeconfig, log_path)
        self.chart_env = env
        self.namespace = namespace

    @property
    def command(self) -> list[str]:
        # Ports are flags (they win over the chart's env): several processes share this host.
        return [
            *super().command[:3],
            "-n",
            self.namespace,
            "--health-port",
            str(self.health_port),
            "--metrics-port",
            str(self.metrics_port),
        ]

    def start(self) -> None:
        # The chart's values, except the tests' short resync and backoff (OperatorProcess.start puts
        # OPERATOR_ENV over the process environment).
        saved = cluster_conftest.OPERATOR_ENV
        cluster_conftest.OPERATOR_ENV = {
            **self.chart_env,
            **{k: v for k, v in saved.items() if "IMAGE" not in k},
        }
        try:
            super().start()
        finally:
            cluster_conftest.OPERATOR_ENV = saved

    def forbidden_lines(self) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        found = []
        for line in text.splitlines():
            try:  # JSON lines: the message and any exception, not object UIDs or timestamps
                record = json.loads(line)
                line = (
                    f"{record.get('message', '')} {record.get('exc_info', '')} {record.get('exception', '')}"
                )
            except ValueError:
                pass
            if FORBIDDEN.search(line):
                found.append(line)
        return found


def deployment_env(cluster: ControlPlane, namespace: str) -> dict[str, str]:
    """The literal env values of the chart's operator Deployment (fieldRefs resolved by hand)."""
    deployment = json.loads(
        cluster.kubectl(
            "get", "deployment", "-n", namespace, "-l", "app.kubernetes.io/instance=" + RELEASE, "-o", "json"
        ).stdout
    )["items"][0]
    env: dict[str, str] = {}
    for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = namespace
        elif var["valueFrom"].get("fieldRef", {}).get("fieldPath") == "metadata.name":
            env[var["name"]] = "modelfleet-operator-test"
    return env


def token_kubeconfig(cluster: ControlPlane, namespace: str, path: Path) -> Path:
    """A kubeconfig for the chart's ServiceAccount, with a token from the TokenRequest API."""
    token = cluster.kubectl(
        "create", "token", SERVICE_ACCOUNT, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {"server": cluster.server, "certificate-authority": str(cluster.pki.ca_cert)},
            }
        ],
        "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "chart", "context": {"cluster": "local", "user": SERVICE_ACCOUNT}}],
        "current-context": "chart",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def can_i(cluster: ControlPlane, namespace: str, *args: str, account: str = SERVICE_ACCOUNT) -> bool:
    """``kubectl auth can-i`` as ServiceAccount ``account`` of ``namespace`` (the chart's, by default)."""
    result = cluster.kubectl(
        "auth", "can-i", f"--as=system:serviceaccount:{namespace}:{account}", *args, check=False
    )
    return result.stdout.strip() == "yes"


def get_cr(custom: client.CustomObjectsApi, ns: str, plural: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
    return found


def wait_phase(
    custom: client.CustomObjectsApi, ns: str, plural: str, name: str, phase: str, check: Callable[[], None]
) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        check()
        seen.update(get_cr(custom, ns, plural, name))
        return bool(seen.get("status", {}).get("phase") == phase)

    wait_for(reached, TIMEOUT, f"{plural} {ns}/{name} to be {phase} (last: {seen.get('status')})")
    return seen


def install_chart(cluster: ControlPlane, namespace: str, *settings: str) -> None:
    """``helm install`` of the chart into ``namespace``, watching only it; CRDs an earlier install left
    in the cluster (Helm never deletes them) are not installed again."""
    crds_present = all(cluster.kubectl("get", "crd", name, check=False).returncode == 0 for name in CRD_NAMES)
    install = helm(
        "install",
        RELEASE,
        str(CHART),
        "-n",
        namespace,
        "--set",
        f"watchNamespaces={{{namespace}}}",
        *(["--skip-crds"] if crds_present else []),
        *(arg for setting in settings for arg in ("--set", setting)),
    )
    assert install.returncode == 0, install.stderr
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))


def release_resources(custom: client.CustomObjectsApi, namespace: str) -> None:
    """Deletes the namespace's modelfleet resources; no operator runs any more, and none is needed: the
    operator puts no finalizer on them."""
    for plural in PLURALS:
        for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"]:
            name = item["metadata"]["name"]
            custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
