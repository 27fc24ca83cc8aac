"""Fixtures shared by every test tier.

The tests' control plane (under ``.cluster/test/``, on its own ports) is started by the first pytest
session that needs it. Each session holds a lease (a pid file under its ``sessions/``); the last
session to leave stops it, so concurrent sessions never lose it mid-run and nothing is left behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from hack.controlplane.cluster import PORT_BASE, REPO_ROOT, ControlPlane, wait_for

TEST_PLANE_DIR = REPO_ROOT / ".cluster" / "test"
"""The tests' own control plane, apart from the one `make cluster-up`/`make demo` keep for people: a
demo's resources (GPU pods, operators) never take a test's nodes, and a test never disturbs a demo.
It has no real node: its CPU pods land on kwok's simulated system node, which the cluster tier's tests
finish in place of the runtimes (the e2e tier has a plane of its own, with the real node)."""
TEST_PORT_BASE = PORT_BASE + 200


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    plane = ControlPlane(run_dir=TEST_PLANE_DIR, port_base=TEST_PORT_BASE, real_node=False)
    with plane.session_lease():
        os.environ["KUBECONFIG"] = str(plane.kubeconfig)
        yield plane


@contextmanager
def client_of(plane: ControlPlane):  # type: ignore[no-untyped-def]
    """An API client of ``plane`` (admin), closed afterwards."""
    from kubernetes import config

    api = config.new_client_from_config(str(plane.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def api_client(cluster: ControlPlane):  # type: ignore[no-untyped-def]
    with client_of(cluster) as api:
        yield api


@contextmanager
def fresh_namespace(api_client, title: str) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A new namespace named after ``title``, with its default ServiceAccount ready; deleted after."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    stem = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:5]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"modelfleet.io/test": "true"}}})

    def default_sa_ready() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
            return True
        except client.ApiException:
            return False

    wait_for(default_sa_ready, 30, f"the default ServiceAccount of namespace {name}")
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def namespace(request: pytest.FixtureRequest, api_client) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh namespace named after the test, with its default ServiceAccount ready; deleted after."""
    with fresh_namespace(api_client, request.node.name) as name:
        yield name


TIERS = ("unit", "cluster", "runtime", "chart", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test belongs to exactly one tier, so `pytest -m TIER` selections add up to the suite."""
    wrong = [item.nodeid for item in items if len({m.name for m in item.iter_markers()} & set(TIERS)) != 1]
    if wrong:
        raise pytest.UsageError(
            f"tests without exactly one tier marker ({', '.join(TIERS)}): " + ", ".join(wrong[:10])
        )
