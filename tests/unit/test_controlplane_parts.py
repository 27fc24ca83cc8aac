"""The control plane's pure parts: its PKI, the fake node manifests and the pod statuses kwok is told."""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client

from hack.controlplane.certs import Pki, generate
from hack.controlplane.kwok import POOLS, finish_pod, node_manifest
from hack.controlplane.processes import Process, StepFailed, wait_until

pytestmark = pytest.mark.unit


def test_pki_signs_server_and_admin_certs_with_one_ca(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    generate(pki)
    assert pki.complete()
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    server = x509.load_pem_x509_certificate(pki.server_cert.read_bytes())
    admin = x509.load_pem_x509_certificate(pki.admin_cert.read_bytes())
    for cert in (server, admin):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "kubernetes.default.svc" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "10.96.0.1"]
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    usage = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oct(pki.admin_key.stat().st_mode & 0o777) == "0o600"


def test_spot_gpu_node_carries_aks_labels_taints_and_gpu_capacity() -> None:
    node = node_manifest(POOLS["nc80h100"], "aks-nc80h100-vmss000000")
    labels = node["metadata"]["labels"]
    assert labels["node.kubernetes.io/instance-type"] == "Standard_NC80adis_H100_v5"
    assert labels["kubernetes.azure.com/agentpool"] == "nc80h100"
    assert labels["kubernetes.azure.com/scalesetpriority"] == "spot"
    assert labels["kubernetes.azure.com/accelerator"] == "nvidia"
    assert node["spec"]["taints"] == [
        {"key": "sku", "value": "gpu", "effect": "NoSchedule"},
        {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"},
    ]
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2"
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_system_node_has_no_gpu_and_no_taint() -> None:
    node = node_manifest(POOLS["system"], "aks-system-vmss000000")
    assert node["spec"]["taints"] == []
    assert "nvidia.com/gpu" not in node["status"]["capacity"]
    assert "kubernetes.azure.com/accelerator" not in node["metadata"]["labels"]


class _OnePodCore:
    """What ``finish_pod`` asks of a CoreV1Api: the pod it reads, and the status patch it sends."""

    def __init__(self, pod: client.V1Pod) -> None:
        self.pod = pod
        self.patched: dict[str, Any] = {}

    def read_namespaced_pod(self, name: str, namespace: str) -> client.V1Pod:
        return self.pod

    def patch_namespaced_pod_status(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.patched = body


def test_a_finished_container_that_never_ran_does_not_take_another_ones_start_time() -> None:
    began = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    running = client.V1ContainerState(running=client.V1ContainerStateRunning(started_at=began))
    ran = client.V1ContainerStatus(
        name="ran", image="i", image_id="", ready=True, restart_count=0, state=running
    )
    containers = [client.V1Container(name=name, image="i") for name in ("ran", "never")]
    pod = client.V1Pod(
        spec=client.V1PodSpec(containers=containers), status=client.V1PodStatus(container_statuses=[ran])
    )
    core = _OnePodCore(pod)
    finish_pod(core, "ns", "pod", succeeded=True)
    first, second = (s["state"]["terminated"] for s in core.patched["status"]["containerStatuses"])
    assert first["startedAt"] == "2024-01-02T03:04:05Z"
    assert second["startedAt"] == second["finishedAt"]


def test_failed_start_names_the_step_and_its_log(tmp_path: Path) -> None:
    proc = Process("broken", tmp_path)
    proc.start(["/bin/sh", "-c", "echo 'flag provided but not defined: --bogus'; exit 3"])
    with pytest.raises(StepFailed) as failure:
        wait_until("broken", lambda: False, proc.log_file, 10, proc)
    message = str(failure.value)
    assert "step 'broken' failed: the process exited" in message
    assert str(proc.log_file) in message
    assert "flag provided but not defined" in message
    proc.stop()
    assert not proc.pid_file.exists()


def test_a_launcher_on_its_way_to_the_binary_is_not_yet_its_exec(tmp_path: Path) -> None:
    """What Kueue's start (unshare, then sh mounting an overlay, then exec) needs: while the pid file's
    process is still the launcher, ``exec_done`` is False; once the binary runs, True."""
    proc = Process("launched", tmp_path)
    sleep, gate = "/bin/sleep", tmp_path / "go"
    os.mkfifo(gate)
    proc.start(["/bin/sh", "-c", f"read _ < {gate}; exec {sleep} 30"])
    pid = int(proc.pid_file.read_text().split()[0])
    proc.pid_file.write_text(f"{pid}\n{sleep}\n")
    try:
        assert not proc.exec_done()
        gate.write_text("now\n")
        wait_until("launched", proc.exec_done, proc.log_file, 10)
        assert proc.alive()
    finally:
        proc.stop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)  # a launcher that never got to the binary


def test_a_launched_binary_is_waited_for_until_the_launcher_has_exec_d_it(tmp_path: Path) -> None:
    """``launch`` returns only once the launcher (here ``sh`` held at a fifo, as ``nsenter`` may be on a
    loaded machine) has exec'd the binary, so no readiness wait sees the launcher and calls it exited."""
    proc = Process("launched", tmp_path)
    sleep, gate = "/bin/sleep", tmp_path / "go"
    os.mkfifo(gate)
    opener = threading.Timer(0.5, gate.write_text, args=("now\n",))
    opener.start()
    try:
        proc.launch(["/bin/sh", "-c", f"read _ < {gate}; exec {sleep} 30"], binary=sleep)
        assert proc.exec_done()
    finally:
        opener.join()
        proc.stop()


def test_a_launcher_that_exits_before_its_exec_is_reported_with_its_status(tmp_path: Path) -> None:
    proc = Process("launched", tmp_path)
    with pytest.raises(StepFailed) as failure:
        proc.launch(["/bin/sh", "-c", "echo 'nsenter: cannot open netns'; exit 1"], binary="/bin/sleep")
    assert "exited with 1" in str(failure.value)
    assert "nsenter: cannot open netns" in str(failure.value)
