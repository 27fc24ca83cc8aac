"""A tiny model on a claim and CPU ModelDeployments of it, for the e2e serving tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack import tinymodel
from hack.node.volumes import create_host_claim, delete_host_volume

SERVED_NAME = "tiny/llama"
CPU_SIZE = "Standard_D2s_v5"
"""The real node's size."""


@pytest.fixture
def model_claim(api_client: client.ApiClient, namespace: str, tmp_path: Path) -> Iterator[str]:
    """The tiny model on a claim (``pvc://models/model``) bound to a directory of this machine."""
    tinymodel.make_model(tinymodel.train_tokenizer(tmp_path / "model"), save_dir=tmp_path / "model")
    core = client.CoreV1Api(api_client)
    volume = create_host_claim(core, namespace, "models", tmp_path)
    try:
        yield "models"
    finally:
        delete_host_volume(core, volume)


def cpu_model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    """A ModelDeployment of the tiny model with the CPU engine (``transformers``) on the real node."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "pvc://models/model"},
            "servedModelName": SERVED_NAME,
            "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
            "resources": {"instanceType": CPU_SIZE, "gpusPerReplica": 0, "cpu": "500m", "memory": "2Gi"},
            **spec,
        },
    }


def create(api_client: client.ApiClient, namespace: str, deployment: dict[str, Any]) -> None:
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", deployment
    )


def read(api_client: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modeldeployments", name
        )
    )
