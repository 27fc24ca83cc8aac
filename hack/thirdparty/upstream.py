"""The pinned third-party Go modules: their versions, their directories in the Go module cache, their
manifests rendered by kustomize, and the binaries ``build.sh`` made of them.

Nothing is copied into the repository: ``go mod download`` fetches a module at its pinned version
through the Go module proxy, and its published YAML (``config/`` kustomizations, CRD files) is read
from the module cache.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from kubernetes import client

    from hack.controlplane.cluster import ControlPlane

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))


def _versions() -> dict[str, str]:
    """``versions.env`` (shared with build.sh), each entry overridable from the environment."""
    pinned = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            pinned[key] = os.environ.get(key, value)
    return pinned


VERSIONS = _versions()


@dataclass(frozen=True)
class Component:
    """One Go module built by ``build.sh`` (its ``name`` is also build.sh's argument)."""

    name: str
    module: str
    version_key: str

    @property
    def version(self) -> str:
        return VERSIONS[self.version_key]

    @property
    def bin_dir(self) -> Path:
        return CACHE / f"{self.name}-{self.version}" / "bin"

    def binary(self, name: str) -> Path:
        path = self.bin_dir / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing; run `bash hack/thirdparty/build.sh {self.name}`")
        return path

    @property
    def source(self) -> Path:
        """The module's directory in the Go module cache (read-only)."""
        return module_dir(self.module, self.version)

    def render(self, kustomization: str, kubectl: Path) -> list[dict[str, Any]]:
        """The objects of one of the module's kustomizations (e.g. ``config/default``)."""
        return render(self.source / kustomization, kubectl)


KUEUE = Component("kueue", "sigs.k8s.io/kueue", "KUEUE_VERSION")
PROMETHEUS = Component("prometheus", "github.com/prometheus/prometheus", "PROMETHEUS_VERSION")
KEDA = Component("keda", "github.com/kedacore/keda/v2", "KEDA_VERSION")
KEDA_HTTP_ADD_ON = Component(
    "keda-http-add-on", "github.com/kedacore/http-add-on", "KEDA_HTTP_ADD_ON_VERSION"
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


def render(kustomization: Path, kubectl: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize`` (kustomize is built into kubectl) of a directory: its objects, in order
    (a fresh copy each call: callers adapt them)."""
    return copy.deepcopy(_rendered(kustomization, kubectl))


@functools.cache
def _rendered(kustomization: Path, kubectl: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [str(kubectl), "kustomize", str(kustomization)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {kustomization} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def stream(objects: list[dict[str, Any]]) -> str:
    """Objects as one YAML stream (what ``kubectl apply -f -`` reads)."""
    return yaml.safe_dump_all(objects, sort_keys=False)


KUBECTL_TIMEOUT = 400.0


def until_gone(wait: bool) -> list[str]:
    """``kubectl delete``'s flags: wait (at most 120 s) until the object is gone, or do not wait."""
    return ["--timeout=120s"] if wait else ["--wait=false"]


def kubectl(
    plane: ControlPlane, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``kubectl`` against the plane; with ``check``, a failure raises with kubectl's own words. The
    waits here pass kubectl a ``--timeout`` of their own, so its process is given longer than that."""
    result = subprocess.run(
        [str(plane.kubectl_bin), f"--kubeconfig={plane.kubeconfig}", *args],
        input=input,
        capture_output=True,
        text=True,
        check=False,
        timeout=KUBECTL_TIMEOUT,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result


def apply(plane: ControlPlane, objects: list[dict[str, Any]]) -> None:
    kubectl(plane, "apply", "--server-side", "--force-conflicts", "-f", "-", input=stream(objects))


def crd_names(objects: list[dict[str, Any]]) -> list[str]:
    """``crd/<name>`` of every CustomResourceDefinition among ``objects`` (kubectl's argument form)."""
    return [f"crd/{o['metadata']['name']}" for o in objects if o["kind"] == "CustomResourceDefinition"]


def pod_ip(api: client.CoreV1Api, namespace: str, selector: str) -> str:
    """The IP of the one pod ``selector`` matches in ``namespace``."""
    (pod,) = api.list_namespaced_pod(namespace, label_selector=selector).items
    ip = pod.status.pod_ip if pod.status else None
    if not ip:
        raise RuntimeError(f"the {selector} pod in {namespace} has no IP yet")
    return ip


ROLLOUT_TIMEOUT = 300.0
"""A Deployment's pods on the real node start in seconds; this bounds a start on a machine busy with
other builds."""


def rollout(plane: ControlPlane, namespace: str, deployment: str, timeout: float = ROLLOUT_TIMEOUT) -> None:
    """Waits until the Deployment's rollout is complete."""
    status = kubectl(
        plane, "rollout", "status", f"deployment/{deployment}", "-n", namespace, f"--timeout={timeout:.0f}s",
        check=False,
    )  # fmt: skip
    if status.returncode != 0:
        pods = kubectl(plane, "get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        raise RuntimeError(f"deployment {namespace}/{deployment} did not roll out: {status.stderr}\n{pods}")
