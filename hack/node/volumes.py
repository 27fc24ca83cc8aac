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
        client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=volume, labels={"modelfleet.io/local-volume": "true"}),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": "10Gi"},
                access_modes=["ReadWriteMany"],
                persistent_volume_reclaim_policy="Retain",
                storage_class_name="",
                host_path=client.V1HostPathVolumeSource(path=str(directory.resolve()), type="Directory"),
                claim_ref=client.V1ObjectReference(namespace=namespace, name=claim),
            ),
        )
    )
    core.create_namespaced_persistent_volume_claim(
        namespace,
        client.V1PersistentVolumeClaim(
            metadata=client.V1ObjectMeta(name=claim),
            spec=client.V1PersistentVolumeClaimSpec(
                access_modes=["ReadWriteMany"],
                storage_class_name="",
                volume_name=volume,
                resources=client.V1VolumeResourceRequirements(requests={"storage": "10Gi"}),
            ),
        ),
    )

    def bound() -> bool:
        status = core.read_namespaced_persistent_volume_claim(claim, namespace).status
        return status is not None and status.phase == "Bound"

    wait_for(bound, 60, f"claim {namespace}/{claim} Bound to {volume}")
    return volume


def delete_host_volume(core: client.CoreV1Api, volume: str) -> None:
    """Deletes the PersistentVolume (the directory stays: it is the caller's)."""
    try:
        core.delete_persistent_volume(volume)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
