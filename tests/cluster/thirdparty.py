"""Third-party components the operator integrates with, from their Go modules' published YAML.

Nothing is copied into the repository: ``go mod download`` fetches the module at a pinned version into
the module cache (through the Go module proxy), and the files are applied from there
(``hack.thirdparty.upstream``). Two kinds of fixture:

- CRDs only (``keda``, ``gateway_api``, ``azure_pod_monitor``): a set installed for one test and
  removed afterwards, so every other test sees the fallback; tests that need the fallback ask for
  ``no_keda`` / ``no_gateway_api``.
- The real component running against the plane (``kueue``), for the tests of one module: installed
  and started when the first of them needs it, stopped and removed when the module ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hack.controlplane.cluster import ControlPlane
from hack.thirdparty import upstream
from hack.thirdparty.kueue import Kueue


@dataclass(frozen=True)
class CrdSet:
    module: str
    version: str
    files: tuple[str, ...]
    """Paths inside the module."""

    @property
    def names(self) -> list[str]:
        """CRD object names: the files are named ``<group>_<plural>.yaml``."""
        return [f"{plural}.{group}" for group, plural in (Path(f).stem.split("_", 1) for f in self.files)]

    def paths(self) -> list[Path]:
        root = upstream.module_dir(self.module, self.version)
        return [root / f for f in self.files]


KEDA = CrdSet(upstream.KEDA.module, upstream.KEDA.version, ("config/crd/bases/keda.sh_scaledobjects.yaml",))
KEDA_HTTP_ADD_ON = CrdSet(
    upstream.KEDA_HTTP_ADD_ON.module,
    upstream.KEDA_HTTP_ADD_ON.version,
    ("config/crd/bases/http.keda.sh_httpscaledobjects.yaml",),
)
GATEWAY_API = CrdSet(
    "sigs.k8s.io/gateway-api",
    "v1.2.1",
    (
        "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
    ),
)


PROMETHEUS_OPERATOR_POD_MONITOR = CrdSet(
    "github.com/prometheus-operator/prometheus-operator",
    "v0.85.0",
    ("example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",),
)
AZURE_MONITOR_GROUP = "azmonitoring.coreos.com"


def install(cluster: ControlPlane, crds: CrdSet) -> None:
    files = [arg for path in crds.paths() for arg in ("-f", str(path))]
    cluster.kubectl("apply", "--server-side", "--force-conflicts", *files)
    names = [f"crd/{name}" for name in crds.names]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def remove(cluster: ControlPlane, crds: CrdSet) -> None:
    """Deletes the CRDs (and with them every object of their kinds) and waits until they are gone."""
    names = [f"crd/{name}" for name in crds.names]
    cluster.kubectl("delete", "--ignore-not-found", "--wait=true", "--timeout=120s", *names)


@pytest.fixture
def keda(crds: ControlPlane) -> Iterator[CrdSet]:
    install(crds, KEDA)
    try:
        yield KEDA
    finally:
        remove(crds, KEDA)


@pytest.fixture
def keda_http_add_on(crds: ControlPlane, keda: CrdSet) -> Iterator[CrdSet]:
    """The KEDA HTTP add-on's CRD beside KEDA's (no controller runs: the e2e tier runs them on the real
    node)."""
    install(crds, KEDA_HTTP_ADD_ON)
    try:
        yield KEDA_HTTP_ADD_ON
    finally:
        remove(crds, KEDA_HTTP_ADD_ON)


@pytest.fixture
def gateway_api(crds: ControlPlane) -> Iterator[CrdSet]:
    install(crds, GATEWAY_API)
    try:
        yield GATEWAY_API
    finally:
        remove(crds, GATEWAY_API)


@pytest.fixture
def azure_pod_monitor(crds: ControlPlane, tmp_path: Path) -> Iterator[str]:
    """Azure Monitor managed Prometheus's PodMonitor CRD, which the AKS metrics add-on installs. No
    module the Go proxy serves publishes its YAML; Azure documents it as the Prometheus Operator's CRD
    under the group ``azmonitoring.coreos.com`` and nothing else changed, so it is that CRD (from the
    Prometheus Operator's Go module) with the group renamed. Yields the CRD's name."""
    (source,) = PROMETHEUS_OPERATOR_POD_MONITOR.paths()
    crd = yaml.safe_load(source.read_text())
    crd["spec"]["group"] = AZURE_MONITOR_GROUP
    crd["metadata"]["name"] = name = f"{crd['spec']['names']['plural']}.{AZURE_MONITOR_GROUP}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(crd))
    crds.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    crds.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{name}")
    try:
        yield name
    finally:
        crds.kubectl("delete", "--ignore-not-found", "--wait=true", "--timeout=120s", f"crd/{name}")


@pytest.fixture
def no_keda(crds: ControlPlane) -> None:
    remove(crds, KEDA)


@pytest.fixture
def no_gateway_api(crds: ControlPlane) -> None:
    remove(crds, GATEWAY_API)


@pytest.fixture(scope="module")
def kueue(cluster: ControlPlane) -> Iterator[Kueue]:
    """Kueue's controller manager running against the plane (``hack.thirdparty.kueue``); it manages
    the namespaces labelled ``kueue.MANAGED_LABEL``."""
    manager = Kueue(cluster)
    try:
        manager.install()
        manager.start()
        yield manager
    finally:
        manager.uninstall()
