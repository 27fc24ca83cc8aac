"""A PersistentVolumeClaim backed by a directory of this machine, for ``pvc://CLAIM/PATH`` URIs.

What a user of the local cluster writes models, data, checkpoints and outputs to: a claim, exactly as
on AKS (where an Azure Files or Disk class provisions it), so the TrainingJob, ModelDeployment and
BenchmarkSweep manifests are the ones a user applies there. Here the claim is bound to a hostPath
PersistentVolume on the real node (statically: the local cluster has no provisioner), and the
directory is readable on this machine, where the demo and the tests look at what the pods wrote.
"""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from hack.controlplane.cluster import wait_for


def _share(directory: Path) -> None:
    """Opens the tree to the runtimes' user: directories writable, files readable. What this machine
    wrote may be private to it (safetensors writes its files 0600), and a pod reading a file it may
    not open is told the file does not exist."""
    directory.chmod(0o777)
    for path in directory.rglob("*"):
        if path.is_dir():
            path.chmod(0o777)
        elif path.is_file():
            path.chmod(path.stat().st_mode | 0o644)


def host_volume_name(namespace: str, claim: str) -> str:
    return f"{namespace}-{claim}"[:253]


def create_host_claim(core: client.CoreV1Api, namespace: str, claim: str, directory: Path) -> str:
    """Binds a new claim ``claim`` in ``namespace`` to ``directory`` (opened to the runtimes' user);
    returns the PersistentVolume's name, which the caller deletes (volumes are not namespaced)."""
    directory.mkdir(parents=True, exist_ok=True)
    _share(directory)
    volume = host_volume_name(namespace, claim)
    core.create_persistent_volume(
        {
            "metadata": {"name": volume, "labels": {"modelfleet.io/local-volume": "true"}},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(directory.resolve()), "type": "Directory"},
                "claimRef": {"namespace": namespace, "name": claim},
            },
        }
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        {
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": volume,
                "resources": {"requests": {"storage": "10Gi"}},
            },
        },
    )
    wait_for(
        lambda: core.read_namespaced_persistent_volume_claim(claim, namespace).status.phase == "Bound",
        60,
        f"claim {namespace}/{claim} Bound to {volume}",
    )
    return volume


def delete_host_volume(core: client.CoreV1Api, volume: str) -> None:
    """Deletes the PersistentVolume (the directory stays: it is the caller's)."""
    try:
        core.delete_persistent_volume(volume)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
