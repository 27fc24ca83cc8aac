"""Third-party components running for real on the e2e plane's real node, for the tests of one module:
installed when the first of them needs one, removed when the module ends (``hack.thirdparty``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from hack.thirdparty.prometheus import Prometheus


@pytest.fixture(scope="module")
def prometheus(cluster: ControlPlane, real_node: client.V1Node) -> Iterator[Prometheus]:
    server = Prometheus(cluster)
    try:
        server.install()
        yield server
    finally:
        server.uninstall()
