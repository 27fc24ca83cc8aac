"""The benchmark's own control plane: fresh for every run, with an audit log of two identities.

The operator and the plain reference client each run as a ServiceAccount of their own (bound to
cluster-admin), so the API server's audit log names every request either of them makes, and both fall
under the same API Priority and Fairness level (``workload-low``), as an operator in a pod does. The
people's side (creating TrainingJobs, watching, cleaning up) is the admin user and is not audited.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import urllib3
import yaml
from kubernetes import client, config

from benchmarks.scale.workload import INSTANCE_TYPE, POOL
from hack.controlplane.cluster import REPO_ROOT, ControlPlane, wait_for
from hack.controlplane.kwok import Pool, add_node, ready_nodes

SYSTEM_NAMESPACE = "modelfleet-bench"
"""Where the two ServiceAccounts live (no TrainingJob is ever created here)."""
OPERATOR_ACCOUNT = "operator"
PLAIN_ACCOUNT = "plain-client"
CRD_DIR = REPO_ROOT / "crds"
BENCH_POOL = Pool(
    POOL, INSTANCE_TYPE, gpus=4000, cpus=4000, memory_gi=4000, count=4, max_pods=4000,
    gpu_product="NVIDIA-H100-NVL",
)  # fmt: skip
"""Four fake nodes that hold every pod of a full run (16,000), so no worker waits for capacity."""
TOKEN_SECONDS = 86400
THROTTLED_COMPONENTS = ("kube-controller-manager", "kube-scheduler")
"""Components whose client-side rate limiter a phase watches (``CONTROLLER_CLIENT_LIMITS``)."""
urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # their self-signed serving certs


def user_of(account: str) -> str:
    return f"system:serviceaccount:{SYSTEM_NAMESPACE}:{account}"


def audit_policy() -> dict[str, object]:
    """Metadata of every request of the two accounts; nothing else. ``RequestReceived`` is left out: a
    request is logged once when it completes, a watch also when its response starts."""
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "users": [user_of(OPERATOR_ACCOUNT), user_of(PLAIN_ACCOUNT)]},
            {"level": "None"},
        ],
    }


@dataclass
class BenchPlane:
    run_dir: Path
    port_base: int

    def __post_init__(self) -> None:
        self.plane = ControlPlane(
            run_dir=self.run_dir, port_base=self.port_base, audit_policy=self.audit_policy_file
        )
        pki = self.plane.pki
        self._component_pool = urllib3.PoolManager(
            cert_reqs="CERT_NONE", cert_file=str(pki.admin_cert), key_file=str(pki.admin_key)
        )

    @property
    def admin_kubeconfig(self) -> Path:
        return self.plane.kubeconfig

    @property
    def audit_policy_file(self) -> Path:
        return self.run_dir / "audit-policy.yaml"

    def kubeconfig_of(self, account: str) -> Path:
        return self.run_dir / f"kubeconfig-{account}"

    def start(self) -> None:
        """A fresh plane (whatever an interrupted run left under ``run_dir`` is stopped and removed)."""
        self.plane.down()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        self.audit_policy_file.write_text(yaml.safe_dump(audit_policy()))
        self.plane.up()
        self.plane.kubectl("apply", "--server-side", "-f", str(CRD_DIR))
        self.plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        core = client.CoreV1Api(config.new_client_from_config(str(self.admin_kubeconfig)))
        for index in range(BENCH_POOL.count):
            add_node(core, BENCH_POOL.node_name(index), BENCH_POOL)
        wait_for(self._bench_nodes_ready(core), 60, "the benchmark's fake nodes Ready")
        self.plane.kubectl("create", "namespace", SYSTEM_NAMESPACE)
        for account in (OPERATOR_ACCOUNT, PLAIN_ACCOUNT):
            self._identity(account)

    def stop(self) -> None:
        self.plane.down()

    def component_metrics(self, name: str) -> str:
        """The ``/metrics`` page of kube-controller-manager or kube-scheduler (their own self-signed serving
        certificate; the admin client certificate is authorised through the API server)."""
        port = {
            "kube-controller-manager": self.plane.controller_manager_port,
            "kube-scheduler": self.plane.scheduler_port,
        }[name]
        response = self._component_pool.request("GET", f"https://127.0.0.1:{port}/metrics", timeout=30)
        if response.status != 200:
            raise RuntimeError(f"{name} /metrics: HTTP {response.status}")
        return str(response.data.decode())

    def component_pids(self) -> dict[str, int]:
        """pid of every running control-plane process, by component name."""
        pids = {name: self.plane.process(name).pid() for name in self.plane.components}
        return {name: pid for name, pid in pids.items() if pid is not None}

    def _identity(self, account: str) -> None:
        self.plane.kubectl("create", "serviceaccount", account, "-n", SYSTEM_NAMESPACE)
        self.plane.kubectl(
            "create", "clusterrolebinding", f"bench-{account}", "--clusterrole=cluster-admin",
            f"--serviceaccount={SYSTEM_NAMESPACE}:{account}",
        )  # fmt: skip
        token = self.plane.kubectl(
            "create", "token", account, "-n", SYSTEM_NAMESPACE, f"--duration={TOKEN_SECONDS}s"
        ).stdout.strip()
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "bench",
                    "cluster": {
                        "server": self.plane.server,
                        "certificate-authority": str(self.plane.pki.ca_cert),
                    },
                }
            ],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": account, "context": {"cluster": "bench", "user": account}}],
            "current-context": account,
        }
        path = self.kubeconfig_of(account)
        path.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        path.chmod(0o600)

    @staticmethod
    def _bench_nodes_ready(core: client.CoreV1Api) -> Callable[[], bool]:
        names = {BENCH_POOL.node_name(i) for i in range(BENCH_POOL.count)}

        def ready() -> bool:
            nodes = core.list_node(label_selector=f"kubernetes.azure.com/agentpool={POOL}").items
            return names == ready_nodes(nodes)

        return ready
