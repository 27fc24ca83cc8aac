"""The two processes that turn TrainingJobs into children: the operator and the plain reference client.

Each runs as real subprocesses (``python -m ...``) under the control plane's run directory, with its own
log, started with ``hack.controlplane.processes.Process`` like the control plane's components, and is
measured from /proc while it runs.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.scale import audit, procstat
from benchmarks.scale.plane import OPERATOR_ACCOUNT, PLAIN_ACCOUNT, BenchPlane, user_of
from hack import operator_run
from hack.controlplane.cluster import wait_for
from hack.controlplane.processes import Process

HEALTH_OFFSET, METRICS_OFFSET = 90, 91
"""Ports of the operator's /healthz and /metrics, as offsets from the plane's port base."""
OPERATOR_WATCHES = frozenset(
    {
        "trainingjobs", "modeldeployments", "benchmarksweeps",
        # what the operator indexes: kopf starts no pass before every indexed kind has been listed
        "jobs", "pods", "configmaps", "services", "serviceaccounts", "roles", "rolebindings",
        "deployments", "poddisruptionbudgets", "horizontalpodautoscalers", "customresourcedefinitions",
        "secrets", "persistentvolumeclaims", "priorityclasses",
    }
)  # fmt: skip


@dataclass
class Contestant:
    """Processes started for one measurement and stopped after it."""

    name: str
    processes: list[Process] = field(default_factory=list)

    def pids(self) -> list[int]:
        return [pid for p in self.processes if (pid := p.pid()) is not None]

    def usage(self) -> procstat.Usage:
        """Summed over the contestant's processes (peak RSS too: an upper bound of the joint peak)."""
        found = [procstat.usage(pid) for pid in self.pids()]
        return procstat.Usage(
            sum(u.cpu_seconds for u in found),
            sum(u.peak_rss_bytes for u in found),
            sum(u.rss_bytes for u in found),
        )

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


AS_IN_ITS_IMAGE = (
    "import runpy, sys; sys.modules['kubernetes'] = None; "
    "runpy.run_module('modelfleet_operator', run_name='__main__', alter_sys=True)"
)
"""``python -m modelfleet_operator`` without the synchronous ``kubernetes`` client, as in the operator's
image (its lock holds only the ``operator`` extra): kopf imports that client whenever it is installed
(``kopf._cogs.helpers.thirdparty``), and in this project's one development venv the ``train`` extra
installs it, which added 29 MB to the operator's memory that the image never has."""


def operator_command(health_port: int, metrics_port: int) -> list[str]:
    """``hack.operator_run``'s command (cluster-wide, standalone), run as in the operator's image."""
    command = operator_run.command("--all-namespaces", health_port=health_port, metrics_port=metrics_port)
    assert command[1:3] == ["-m", "modelfleet_operator"], command
    return [command[0], "-c", AS_IN_ITS_IMAGE, *command[3:]]


def start_operator(bench: BenchPlane, env: dict[str, str]) -> Contestant:
    """``python -m modelfleet_operator`` cluster-wide and standalone, as its ServiceAccount, with the
    production defaults (resync, backoff) unless ``env`` sets them, and the packages of its image
    (``AS_IN_ITS_IMAGE``)."""
    process = bench.plane.process("operator")
    health, metrics = bench.port_base + HEALTH_OFFSET, bench.port_base + METRICS_OFFSET
    offset = audit.end_offset(bench.plane.audit_log)
    process.start(
        operator_command(health, metrics),
        env={"KUBECONFIG": str(bench.kubeconfig_of(OPERATOR_ACCOUNT)), "PYTHONUNBUFFERED": "1", **env},
    )
    contestant = Contestant("operator", [process])

    def healthy() -> bool:
        if not process.alive():
            raise RuntimeError(f"the operator exited; log: {process.log_file}")
        return operator_run.healthy(health)

    wait_for(healthy, 120, f"the operator's /healthz (log: {process.log_file})")
    # Measured from the moment it watches every kind it serves, not while it is still starting.
    user = user_of(OPERATOR_ACCOUNT)
    wait_for(
        lambda: audit.watched(bench.plane.audit_log, user, offset) >= OPERATOR_WATCHES,
        120,
        f"the operator's watches of {', '.join(sorted(OPERATOR_WATCHES))} (log: {process.log_file})",
    )
    return contestant


def start_plain(bench: BenchPlane, namespace: str, processes: int, threads: int) -> Contestant:
    """``processes`` plain clients, each taking its share of the namespace's TrainingJobs."""
    started = []
    for shard in range(processes):
        process = bench.plane.process(f"plain-client-{shard}")
        process.log_file.unlink(missing_ok=True)
        process.start(
            [
                sys.executable,
                "-m",
                "benchmarks.scale.plain_client",
                "--kubeconfig",
                str(bench.kubeconfig_of(PLAIN_ACCOUNT)),
                "--namespace",
                namespace,
                "--threads",
                str(threads),
                "--shard",
                f"{shard}/{processes}",
            ],
            env={"PYTHONUNBUFFERED": "1", "PYTHONPATH": _python_path()},
        )
        started.append(process)
    contestant = Contestant("plain", started)

    def ready() -> bool:
        for process in started:
            if not process.alive():
                raise RuntimeError(f"a plain client exited; log: {process.log_file}")
        return all(p.log_file.exists() and "ready" in p.log_file.read_text() for p in started)

    wait_for(ready, 60, "the plain clients' watches")
    return contestant


def _python_path() -> str:
    """This checkout first (``benchmarks`` is not installed), then whatever the caller put there."""
    return os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")) if p
    )
