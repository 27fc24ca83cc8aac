"""Cluster-tier fixtures: the CRDs installed and the operator running as a real subprocess.

One operator process serves the whole session (cluster-wide, standalone peering, short resync and
backoff), like dask-kubernetes runs its operator against a real cluster; its log goes to a file
whose tail is attached to every failing test's report. Tests that kill and restart the operator use
the same ``OperatorProcess``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack import operator_run
from hack.controlplane.cluster import ControlPlane, wait_for

REPO = Path(__file__).resolve().parents[2]
CRD_FILES = ("trainingjobs.yaml", "modeldeployments.yaml", "benchmarksweeps.yaml")
CRDS_LAND_TIMEOUT = 1200.0
"""The API types are written in parallel with the controllers; wait this long for their CRDs."""
OPERATOR_ENV = {
    "MODELFLEET_RESYNC_SECONDS": "600",
    "MODELFLEET_BACKOFF_SECONDS": "1",
    "MODELFLEET_WATCH_TIMEOUT_SECONDS": "20",
    "MODELFLEET_TRAINING_IMAGE": "ghcr.io/modelfleet/training-runtime:test",
}


@pytest.fixture(scope="session")
def crds(cluster: ControlPlane) -> ControlPlane:
    """The committed CRDs (or those in ``$MODELFLEET_CRDS_DIR``, e.g. the chart's copy), server-side
    applied (idempotent) and Established."""
    crd_dir = Path(os.environ.get("MODELFLEET_CRDS_DIR", REPO / "crds"))
    paths = [crd_dir / name for name in CRD_FILES]
    wait_for(lambda: all(p.exists() for p in paths), CRDS_LAND_TIMEOUT, f"the CRDs {CRD_FILES} in crds/")
    cluster.kubectl(
        "apply", "--server-side", "--force-conflicts", *(arg for p in paths for arg in ("-f", str(p)))
    )
    names = [f"crd/{name.removesuffix('.yaml')}.{GROUP}" for name in CRD_FILES]
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    return cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OperatorProcess:
    """``python -m modelfleet_operator`` as a child process (its own session), log in a file."""

    def __init__(self, kubeconfig: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = env or {}
        """Settings over ``OPERATOR_ENV`` (the e2e tier's runtime image)."""
        self.health_port = _free_port()
        self.metrics_port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return operator_run.command(
            "--all-namespaces", health_port=self.health_port, metrics_port=self.metrics_port
        )

    def start(self) -> None:
        env = {
            **os.environ,
            **OPERATOR_ENV,
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("ab") as log:
            log.write(f"\n==== starting: {' '.join(self.command)}\n".encode())
            self._process = subprocess.Popen(
                self.command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        wait_for(self._healthy, operator_run.START_TIMEOUT, f"the operator's /healthz (log: {self.log_path})")

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _healthy(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise AssertionError(f"the operator exited with {self._process.returncode}:\n{self.log_tail()}")
        return operator_run.healthy(self.health_port)

    def metrics(self) -> str:
        """The operator's ``/metrics`` page (Prometheus text format)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 20) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as when a node dies under the operator."""
        self.stop(signal.SIGKILL)

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no operator log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _training_jobs_in_terminating_namespaces(api_client: client.ApiClient) -> list[str]:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    leaving = {ns.metadata.name for ns in core.list_namespace().items if ns.status.phase == "Terminating"}
    found = custom.list_cluster_custom_object(GROUP, VERSION, "trainingjobs")["items"]
    return [
        f"{tj['metadata']['namespace']}/{tj['metadata']['name']}"
        for tj in found
        if tj["metadata"]["namespace"] in leaving
    ]


@contextmanager
def running(process: OperatorProcess, api_client: client.ApiClient) -> Iterator[OperatorProcess]:
    """Starts the operator; at the end, stops it once it released what the tests are deleting."""
    process.start()
    try:
        yield process
    finally:
        # The operator puts no finalizer on TrainingJobs: those of the namespaces the tests are deleting
        # go at once. The wait is kept to catch a finalizer coming back (it would hang the namespaces).
        try:
            wait_for(
                lambda: not _training_jobs_in_terminating_namespaces(api_client),
                60,
                "the operator to release the TrainingJobs of deleted test namespaces",
            )
        finally:
            process.stop()


@pytest.fixture(scope="session")
def operator(
    crds: ControlPlane, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running(OperatorProcess(crds.kubeconfig, log), api_client) as process:
        yield process


_RUNNING_OPERATORS: list[OperatorProcess] = []


@pytest.fixture(autouse=True)
def _remember_operator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Lets the report hook find the operator of a test that uses it."""
    if "operator" in request.fixturenames:
        _RUNNING_OPERATORS[:] = [request.getfixturevalue("operator")]
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "operator" in getattr(item, "fixturenames", ()) and _RUNNING_OPERATORS:
        report.sections.append(("operator log (tail)", _RUNNING_OPERATORS[0].log_tail()))


# ---- reading events -----------------------------------------------------------------------------------
def wait_for_event(
    core: client.CoreV1Api, namespace: str, involved: str, reason: str, quoting: str, timeout: float = 30
) -> None:
    """Wait for an event on object ``involved`` with ``reason`` whose message holds ``quoting``: the
    operator's (kopf's queue posts them after the status write that reports them) or a controller's."""

    def posted() -> bool:
        selector = f"involvedObject.name={involved}"
        events = core.list_namespaced_event(namespace, field_selector=selector).items
        return any(e.reason == reason and quoting in (e.message or "") for e in events)

    wait_for(posted, timeout, f"a {reason} event on {involved} quoting {quoting!r}")


# ---- reading TrainingJobs ---------------------------------------------------------------------------
@pytest.fixture
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def batch(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)


def training_job_names(custom: client.CustomObjectsApi, namespace: str) -> list[str]:
    """The names of the TrainingJobs in ``namespace``."""
    found = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs")["items"]
    return [tj["metadata"]["name"] for tj in found]


def get_training_job(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingjobs", name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


def condition(training_job: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in training_job.get("status", {}).get("conditions", []):
        if cond["type"] == type_:
            found: dict[str, Any] = cond
            return found
    return None


def wait_for_training_job(
    custom: client.CustomObjectsApi,
    namespace: str,
    name: str,
    predicate: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 60,
) -> dict[str, Any]:
    """Polls the TrainingJob until ``predicate(object)``; the failure shows the last status seen."""
    seen: dict[str, Any] = {}

    def check() -> bool:
        nonlocal seen
        seen = get_training_job(custom, namespace, name) or {}
        return bool(seen) and predicate(seen)

    try:
        wait_for(check, timeout, f"TrainingJob {namespace}/{name}: {what}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last status: {seen.get('status')}") from None
    return seen


def wait_for_phase(
    custom: client.CustomObjectsApi, namespace: str, name: str, phase: str, timeout: float = 60
) -> dict[str, Any]:
    return wait_for_training_job(
        custom,
        namespace,
        name,
        lambda tj: tj.get("status", {}).get("phase") == phase,
        f"phase {phase}",
        timeout,
    )


@pytest.fixture
def no_session_operator(operator: OperatorProcess) -> Iterator[None]:
    """Stops the session operator (it watches every namespace) while this test runs, for tests whose
    own operator processes must be the only ones at work."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()
