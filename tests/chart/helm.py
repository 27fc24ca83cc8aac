"""Running the helm CLI that hack/controlplane/build-helm.sh builds, with its config and cache in a
temporary directory so tests leave nothing behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelfleet"
VALUES = Path(__file__).parent / "values"
HELM_VERSION = "v4.3.1"
CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
HELM = CACHE / f"helm-{HELM_VERSION}" / "bin" / "helm"
RELEASE = "modelfleet"
NAMESPACE = "modelfleet-system"

needs_helm = pytest.mark.skipif(
    not HELM.is_file(), reason=f"{HELM} is missing: run hack/controlplane/build-helm.sh"
)
_HOME = tempfile.TemporaryDirectory(prefix="modelfleet-helm-")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    home = Path(_HOME.name)
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, env=env, timeout=120)


def template(*args: str) -> subprocess.CompletedProcess[str]:
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)


def render(*args: str) -> list[dict[str, Any]]:
    result = template(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def cleanup() -> None:
    shutil.rmtree(_HOME.name, ignore_errors=True)
