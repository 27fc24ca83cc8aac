"""Third-party CRDs the operator integrates with, installed from their Go modules' published YAML.

Nothing is copied into the repository: ``go mod download`` fetches the module at a pinned version into
the module cache (through the Go module proxy), and the CRD files are applied from there. Fixtures
install a set for one test and remove it afterwards, so every other test sees the fallback; tests
that need the fallback ask for ``no_keda`` / ``no_gateway_api`` to be sure.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hack.controlplane.cluster import ControlPlane


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
        root = module_dir(self.module, self.version)
        return [root / f for f in self.files]


KEDA = CrdSet("github.com/kedacore/keda/v2", "v2.16.1", ("config/crd/bases/keda.sh_scaledobjects.yaml",))
GATEWAY_API = CrdSet(
    "sigs.k8s.io/gateway-api",
    "v1.2.1",
    (
        "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
        "config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
    ),
)


@functools.cache
def module_dir(module: str, version: str) -> Path:
    """The module's directory in the Go module cache, downloaded if needed."""
    with tempfile.TemporaryDirectory() as outside_any_module:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=outside_any_module, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@{version} failed: {info.get('Error') or result.stderr}")
    return Path(info["Dir"])


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
def gateway_api(crds: ControlPlane) -> Iterator[CrdSet]:
    install(crds, GATEWAY_API)
    try:
        yield GATEWAY_API
    finally:
        remove(crds, GATEWAY_API)


@pytest.fixture
def no_keda(crds: ControlPlane) -> None:
    remove(crds, KEDA)


@pytest.fixture
def no_gateway_api(crds: ControlPlane) -> None:
    remove(crds, GATEWAY_API)
