"""Bring the local control plane up and down.

``up()`` reuses a running control plane; otherwise it (re)creates the PKI and kubeconfig under
``.cluster/`` at the repo root, starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok in that order, waits for each to be healthy, registers the fake AKS GPU
nodes and starts the real node (``hack.node``: the CPU pool, where pods really run). A plane without
a real node has a simulated system node instead, for tests that finish pods in place of the
runtimes. A failing step raises ``StepFailed`` naming the step and its log.
"""

from __future__ import annotations

import fcntl
import os
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hack.controlplane.certs import FRONT_PROXY_NAME, Pki, generate
from hack.controlplane.processes import Process, StepFailed, wait_until
from hack.node.layout import NodeLayout
from hack.node.node import NODE_COMPONENTS, RealNode

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = os.environ.get("K8S_VERSION", "v1.36.3")
KWOK_VERSION = os.environ.get("KWOK_VERSION", "v0.8.0")
CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
STAGES = Path(__file__).with_name("kwok-stages.yaml")

PORT_BASE = int(os.environ.get("MODELFLEET_PORT_BASE", "16400"))
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
# Components are started in this order and stopped in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
ADD_ONS = ("operator", "kueue")
"""Processes that run against the control plane (`make demo` starts the operator, the Kueue tests
start Kueue: ``hack.thirdparty.kueue``); stopped first."""
CONTROLLER_CLIENT_LIMITS = ("--kube-api-qps=5000", "--kube-api-burst=10000")
"""Client-side rate limits of kube-controller-manager and kube-scheduler, lifted as kwokctl's
``--disable-qps-limits`` does, so the local control plane is not what limits the operator scale benchmark
(issue 18). With the defaults (controller-manager 20 requests/s, bursts of 30; scheduler 50/100) a burst
of 100 TrainingJobs (400 worker pods) made the controller-manager's requests wait 121 s in all in its own
rate limiter (client-go's ``rest_client_rate_limiter_duration_seconds``), and its pods came at ~13/s;
lifted, they wait 0 s. The API server's max-inflight limits stay at their defaults: the benchmark
reports API Priority and Fairness rejections (none) and queue waits (milliseconds) for every phase."""
JOB_SYNCS = "--concurrent-job-syncs=50"
"""Job objects the controller-manager syncs at once (default 5). With the client limits lifted, its five
Job workers became the limit: 10.8 worker pods/s in the same burst; with 50 they came at 17.9/s, as fast
as the Jobs were created (measured under a load average of ~9 on the shared 2-core machine)."""


@dataclass
class ControlPlane:
    run_dir: Path = field(default_factory=lambda: REPO_ROOT / ".cluster")
    bin_dir: Path = field(default_factory=lambda: CACHE / f"k8s-{K8S_VERSION}" / "bin")
    kwok_bin: Path = field(default_factory=lambda: CACHE / f"kwok-{KWOK_VERSION}" / "bin" / "kwok")
    port_base: int = PORT_BASE
    """The components listen on fixed offsets from this port."""
    audit_policy: Path | None = None
    """An audit policy file for the API server; its log goes to ``logs/audit.log`` (the scale benchmark
    counts the operator's own requests from it)."""
    real_node: bool = False
    """Run the real node (CPU pods really run: `make cluster-up`, the demo, the e2e tier); else kwok
    also plays the system pool, whose pods the cluster tier's tests finish themselves."""

    @property
    def apiserver_port(self) -> int:
        return self.port_base + 43

    @property
    def etcd_port(self) -> int:
        return self.port_base + 79

    @property
    def controller_manager_port(self) -> int:
        return self.port_base + 57

    @property
    def scheduler_port(self) -> int:
        return self.port_base + 59

    @property
    def kwok_port(self) -> int:
        return self.port_base + 47

    @property
    def audit_log(self) -> Path:
        return self.run_dir / "logs" / "audit.log"

    @property
    def kubeconfig(self) -> Path:
        return self.run_dir / "kubeconfig"

    @property
    def pki(self) -> Pki:
        return Pki(self.run_dir / "pki")

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubectl_bin(self) -> Path:
        return self.bin_dir / "kubectl"

    @property
    def node(self) -> RealNode:
        """The real worker node (containerd, kubelet, kube-proxy, CoreDNS) of this control plane."""
        return RealNode(
            layout=NodeLayout(self.run_dir, self.apiserver_port, CACHE),
            pki=self.pki,
            admin_kubeconfig=self.kubeconfig,
            k8s_bin=self.bin_dir,
            service_cidr=SERVICE_CIDR,
        )

    @property
    def components(self) -> tuple[str, ...]:
        return (*COMPONENTS, *NODE_COMPONENTS) if self.real_node else COMPONENTS

    def process(self, name: str) -> Process:
        return Process(name, self.run_dir)

    # ---- queries ----------------------------------------------------------------------------------
    def running(self, patience: float = 30.0) -> bool:
        """True when a completed start-up's components are all alive and the API server answers /readyz.

        A slow /readyz of live components (a busy machine) is waited for up to ``patience`` seconds:
        answering False would make the caller restart a control plane other sessions are using.
        """
        if not (self.run_dir / "ready").exists():
            return False
        deadline = time.monotonic() + patience
        while all(self.process(name).alive() for name in self.components):
            try:
                if self._get(f"{self.server}/readyz") == "ok":
                    return True
            except OSError:
                pass
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return False

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.kubectl_bin), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    # ---- lifecycle --------------------------------------------------------------------------------
    def up(self) -> bool:
        """Starts the control plane unless it runs already. Returns True when this call started it."""
        with self._lock():
            started = self._up_locked()
        (self.run_dir / "started-by-tests").unlink(missing_ok=True)
        return started

    def _up_locked(self) -> bool:
        if self.running():
            return False
        self._require_binaries()
        self._stop_all()
        (self.run_dir / "ready").unlink(missing_ok=True)
        if not self.pki.complete():
            generate(self.pki)
        self._write_kubeconfig()
        try:
            self._start_etcd()
            self._start_apiserver()
            self._start_controller_manager()
            self._start_scheduler()
            self._start_kwok()
            self._register_nodes()
            if self.real_node:
                self.node.up()
        except BaseException:
            self._stop_all()  # a failed start leaves no half of a control plane running
            raise
        (self.run_dir / "ready").touch()
        return True

    @contextmanager
    def session_lease(self) -> Iterator[None]:
        """Brings the control plane up for one test session and releases it afterwards.

        Stops it when this is the last live session and a test session (not `make cluster-up`)
        started it.
        """
        sessions = self.run_dir / "sessions"
        marker = self.run_dir / "started-by-tests"
        lease = sessions / str(os.getpid())
        with self._lock():
            if self._up_locked():
                marker.touch()
            sessions.mkdir(parents=True, exist_ok=True)
            lease.touch()
        try:
            yield
        finally:
            with self._lock():
                lease.unlink(missing_ok=True)
                others = [p for p in sessions.iterdir() if _pid_alive(int(p.name))]
                if not others and marker.exists() and os.environ.get("MODELFLEET_KEEP_CLUSTER") != "1":
                    self._stop_all()
                    marker.unlink()

    def down(self) -> None:
        """Stops every component this run directory started (and their children)."""
        with self._lock():
            self._stop_all()

    def _stop_all(self) -> None:
        (self.run_dir / "ready").unlink(missing_ok=True)
        for name in ADD_ONS:
            self.process(name).stop()
        self.node.down()
        for name in reversed(COMPONENTS):
            self.process(name).stop()

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialises up/down between concurrent callers (several pytest sessions, make targets)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _require_binaries(self) -> None:
        missing = [
            str(p)
            for p in (
                *(
                    self.bin_dir / b
                    for b in (
                        "etcd",
                        "kube-apiserver",
                        "kube-controller-manager",
                        "kube-scheduler",
                        "kubectl",
                    )
                ),
                self.kwok_bin,
            )
            if not p.exists()
        ]
        if self.real_node:
            missing += [str(p) for p in self.node.binaries() if not p.exists()]
        if missing:
            raise StepFailed("binaries", None, f"missing {', '.join(missing)}; run `make cluster-build`")

    # ---- components ---------------------------------------------------------------------------------
    def _start_etcd(self) -> None:
        proc = self.process("etcd")
        data = self.run_dir / "etcd"
        proc.start(
            [
                str(self.bin_dir / "etcd"),
                "--name=modelfleet",
                f"--data-dir={data}",
                f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
                f"--listen-peer-urls=http://127.0.0.1:{self.etcd_port + 1}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{self.etcd_port + 1}",
                f"--initial-cluster=modelfleet=http://127.0.0.1:{self.etcd_port + 1}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ]
        )
        wait_until(
            "etcd",
            lambda: '"health":"true"' in self._get(f"http://127.0.0.1:{self.etcd_port}/health"),
            proc.log_file,
            30,
            proc,
        )

    def _start_apiserver(self) -> None:
        proc = self.process("kube-apiserver")
        pki = self.pki
        audit = (
            [f"--audit-policy-file={self.audit_policy}", f"--audit-log-path={self.audit_log}"]
            if self.audit_policy is not None
            else []
        )
        proc.start(
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                # every address, so the real node and its pods reach it across the node's veth link
                "--bind-address=0.0.0.0",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                # logs, exec and port-forward: the kubelet accepts the admin cert (its CA is ours)
                f"--kubelet-client-certificate={pki.admin_cert}",
                f"--kubelet-client-key={pki.admin_key}",
                "--kubelet-preferred-address-types=InternalIP",
                # The aggregation layer (KEDA's external metrics API): the API server calls an
                # APIService's pods directly (Service IPs exist only inside the real node's network
                # namespace), as front-proxy-client, which alone may pass the user on in headers.
                "--enable-aggregator-routing=true",
                f"--proxy-client-cert-file={pki.front_proxy_cert}",
                f"--proxy-client-key-file={pki.front_proxy_key}",
                f"--requestheader-client-ca-file={pki.ca_cert}",
                f"--requestheader-allowed-names={FRONT_PROXY_NAME}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--profiling=false",
                "--watch-cache=true",
                *audit,
                "--v=1",
            ]
        )
        wait_until(
            "kube-apiserver", lambda: self._get(f"{self.server}/readyz") == "ok", proc.log_file, 60, proc
        )

    def _start_controller_manager(self) -> None:
        proc = self.process("kube-controller-manager")
        proc.start(
            [
                str(self.bin_dir / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.controller_manager_port}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                "--controllers=*",
                f"--service-account-private-key-file={self.pki.sa_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                f"--cluster-signing-cert-file={self.pki.ca_cert}",
                f"--cluster-signing-key-file={self.pki.ca_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                *CONTROLLER_CLIENT_LIMITS,
                JOB_SYNCS,
                "--v=1",
            ]
        )
        wait_until(
            "kube-controller-manager",
            lambda: (
                self._get(f"https://127.0.0.1:{self.controller_manager_port}/healthz", client_cert=False)
                == "ok"
            ),
            proc.log_file,
            60,
            proc,
        )
        # With the controllers up, a namespace gets its `default` ServiceAccount: proof that they work.
        wait_until(
            "kube-controller-manager (default ServiceAccount)",
            lambda: (
                self.kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0
            ),
            proc.log_file,
            60,
            proc,
        )

    def _start_scheduler(self) -> None:
        proc = self.process("kube-scheduler")
        proc.start(
            [
                str(self.bin_dir / "kube-scheduler"),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.scheduler_port}",
                "--leader-elect=false",
                *CONTROLLER_CLIENT_LIMITS,
                "--v=1",
            ]
        )
        wait_until(
            "kube-scheduler",
            lambda: self._get(f"https://127.0.0.1:{self.scheduler_port}/healthz", client_cert=False) == "ok",
            proc.log_file,
            60,
            proc,
        )

    def _start_kwok(self) -> None:
        proc = self.process("kwok")
        proc.start(
            [
                str(self.kwok_bin),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={STAGES}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.224.0.1",
                f"--server-address=127.0.0.1:{self.kwok_port}",
                "--node-lease-duration-seconds=40",
            ]
        )
        wait_until(
            "kwok",
            lambda: self._get(f"http://127.0.0.1:{self.kwok_port}/healthz") == "ok",
            proc.log_file,
            30,
            proc,
        )

    def _register_nodes(self) -> None:
        from kubernetes import client, config

        from hack.controlplane.kwok import ready_nodes, register_pools

        api = client.CoreV1Api(config.new_client_from_config(str(self.kubeconfig)))
        names = register_pools(api, simulated_system_pool=not self.real_node)
        log = self.process("kwok").log_file

        def all_ready() -> bool:
            return ready_nodes(api.list_node().items) >= set(names)

        wait_until("fake nodes Ready (kwok)", all_ready, log, 60)

    # ---- helpers ---------------------------------------------------------------------------------
    def _write_kubeconfig(self) -> None:
        pki = self.pki
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "modelfleet-local",
                    "cluster": {"server": self.server, "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)},
                }
            ],
            "contexts": [
                {"name": "modelfleet-local", "context": {"cluster": "modelfleet-local", "user": "admin"}}
            ],
            "current-context": "modelfleet-local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    def _get(self, url: str, client_cert: bool = True) -> str:
        context: ssl.SSLContext | None = None
        if url.startswith("https://"):
            context = ssl.create_default_context()
            if url.startswith(self.server):
                context.load_verify_locations(str(self.pki.ca_cert))
                if client_cert:
                    context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
            else:  # controller-manager and scheduler serve a self-signed cert of their own
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return str(response.read().decode())


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.25) -> None:
    """Polls ``predicate()`` until it is truthy; fails with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
