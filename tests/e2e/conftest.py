"""End-to-end fixtures: pods really run, on the real node of the e2e tier's own control plane.

The plane (``.cluster/e2e/``, ports ``MODELFLEET_PORT_BASE + 400``) has the real node (``hack.node``)
as its system pool and kwok's simulated GPU pools, and no simulated CPU node: a CPU pod of this tier
can only run for real. The fixtures check the node is there and Ready and fail, naming its logs, when
it is not. Like the tests' plane, the first session to need it starts it and the last one stops it.

Third-party components (Prometheus, KEDA and its HTTP add-on, built from their Go modules) are
session fixtures here: installed on the real node when a test first asks for one, removed when the
session ends (``hack/thirdparty/README.md``, "Using them from an e2e test").
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from hack.controlplane.cluster import PORT_BASE, REPO_ROOT, ControlPlane
from hack.controlplane.kwok import node_ready
from hack.node.configs import REAL_NODE_LABEL
from hack.node.images import busybox_image
from hack.node.images import runtime_image as node_runtime_image
from hack.node.layout import NODE_NAME
from hack.thirdparty.keda import Keda
from hack.thirdparty.prometheus import Prometheus
from tests.cluster.conftest import (  # crds: the same fixture, for this directory's plane
    OperatorProcess,
    crds,  # noqa: F401
    running,
)
from tests.conftest import client_of, fresh_namespace

E2E_PLANE_DIR = REPO_ROOT / ".cluster" / "e2e"
E2E_PORT_BASE = PORT_BASE + 400


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    """The e2e tier's control plane (overrides the tests' kwok-only one for this directory). It leaves
    ``KUBECONFIG`` to the tests' plane: a session runs the cluster tier's tests too."""
    plane = ControlPlane(run_dir=E2E_PLANE_DIR, port_base=E2E_PORT_BASE, real_node=True)
    with plane.session_lease():
        yield plane


@pytest.fixture(scope="session")
def api_client(cluster: ControlPlane) -> Iterator[client.ApiClient]:
    """A client of the e2e plane (the root conftest's would be cached for the tests' plane)."""
    with client_of(cluster) as api:
        yield api


@pytest.fixture(scope="session")
def real_node(cluster: ControlPlane, api_client: client.ApiClient) -> Iterator[client.V1Node]:
    """The plane's real node, Ready; a missing or broken node fails the test with the node's logs."""
    node = cluster.node
    logs = ", ".join(str(node.process(name).log_file) for name in ("kubelet", "containerd"))
    if not node.running():
        pytest.fail(f"the real node of {cluster.run_dir} is not running (logs: {logs})")
    found = client.CoreV1Api(api_client).read_node(NODE_NAME)
    if found.metadata.labels.get(REAL_NODE_LABEL) != "true":
        pytest.fail(f"node {NODE_NAME} is not the real node (labels {found.metadata.labels})")
    if not node_ready(found):
        pytest.fail(f"the real node {NODE_NAME} is not Ready (logs: {logs})")
    yield found


@pytest.fixture(scope="session")
def busybox(cluster: ControlPlane, real_node: client.V1Node) -> str:
    """A busybox image (Debian's busybox-static) in the node's containerd; its reference."""
    image = busybox_image()
    cluster.node.load_image(image)
    return image.ref


@pytest.fixture(scope="session")
def runtime_image(cluster: ControlPlane, real_node: client.V1Node) -> str:
    """The CPU runtime image (``hack.image``: built here when its inputs changed) in the node's
    containerd; its reference. Pods use it with the default pull policy of a tagged image,
    IfNotPresent, so nothing is ever pulled."""
    image = node_runtime_image()
    cluster.node.load_image(image)
    return str(image.ref)


@pytest.fixture(scope="session")
def operator(
    crds: ControlPlane,  # noqa: F811  (the fixture imported above)
    runtime_image: str,
    api_client: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator as a subprocess, every workload on the runtime image. Stopped once no TrainingJob of a
    namespace the tests deleted is left (``tests.cluster.conftest.running``)."""
    images = {f"MODELFLEET_{kind}_IMAGE": runtime_image for kind in ("TRAINING", "SERVING")}
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running(OperatorProcess(crds.kubeconfig, log, images), api_client) as process:
        yield process


# ---- third-party components, once per session (hack.thirdparty) ----------------------------------
# Defined here, not in a test module: a session fixture that two modules imported would be two
# fixtures, each installing its own copy. Tests request them by name without importing anything.
@pytest.fixture(scope="session")
def prometheus(cluster: ControlPlane, real_node: client.V1Node) -> Iterator[Prometheus]:
    """Prometheus (built from its Go module) as a pod on the real node, scraping every pod that has the
    ``prometheus.io/scrape`` annotations; pods reach it at ``hack.thirdparty.prometheus.URL_IN_CLUSTER``."""
    server = Prometheus(cluster)
    try:
        server.install()
        yield server
    finally:
        server.uninstall(wait=False)


@pytest.fixture(scope="session")
def keda(cluster: ControlPlane, prometheus: Prometheus) -> Iterator[Keda]:
    """KEDA (operator, metrics API server) and the KEDA HTTP add-on (operator, interceptor, scaler),
    built from their Go modules, as pods on the real node, with Prometheus for their triggers to read.
    The API server serves the external metrics API through KEDA; pods send HTTP traffic that should
    wake a target at zero to ``hack.thirdparty.keda.INTERCEPTOR_IN_CLUSTER`` (this machine: to
    ``Keda.interceptor_url``)."""
    installed = Keda(cluster)
    try:
        installed.install()
        yield installed
    finally:
        installed.uninstall(wait=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Figures the e2e tests measured (``record_property``), shown in every run's summary."""
    for report in terminalreporter.stats.get("passed", []):
        for name, value in report.user_properties:
            terminalreporter.write_line(f"measured: {report.nodeid}: {name} = {value}")


@pytest.fixture(scope="module")
def module_namespace(request: pytest.FixtureRequest, api_client: client.ApiClient) -> Iterator[str]:
    """One namespace for a module whose tests build on each other (train, then serve, then bench)."""
    with fresh_namespace(api_client, request.module.__name__.rsplit(".", 1)[-1]) as name:
        yield name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test that ran the operator gets the tail of its log in the report, and every failing
    test the tail of the node's kubelet log: what the pods' failure looked like from there."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    values = getattr(item, "funcargs", {})
    operator_process = values.get("operator")
    if isinstance(operator_process, OperatorProcess):
        report.sections.append(("operator log (tail)", operator_process.log_tail()))
    plane = values.get("cluster")
    if isinstance(plane, ControlPlane):
        kubelet_log = plane.node.process("kubelet").log_file
        if kubelet_log.exists():
            lines = kubelet_log.read_text(errors="replace").splitlines()[-40:]
            report.sections.append((f"kubelet log (tail of {kubelet_log})", "\n".join(lines)))
