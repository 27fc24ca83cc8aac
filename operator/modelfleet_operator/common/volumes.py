"""Persistent volume claims named by ``pvc://CLAIM/PATH`` URIs, mounted where the runtimes read them.

Both runtimes resolve ``pvc://CLAIM/PATH`` to ``PVC_MOUNT_ROOT/CLAIM/PATH`` (``contract.PVC_MOUNT_ROOT``),
so every pod that names such a URI mounts that claim there; a claim is mounted read-write only when
some URI on it is written (checkpoints, outputs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelfleet_api import contract
from modelfleet_api.storage import StorageUri, UriKind, kind_of


def claim_of(uri: str | None) -> str | None:
    """The claim of a ``pvc://CLAIM/PATH`` URI, else None."""
    if not uri or kind_of(uri) is not UriKind.PVC:
        return None
    return StorageUri(uri, UriKind.PVC).pvc_claim


def pvc_claims(read: Iterable[str | None], written: Iterable[str | None] = ()) -> dict[str, bool]:
    """Claim -> read-only, in first-use order, for the URIs a pod reads and the ones it writes."""
    claims: dict[str, bool] = {}
    for uri in read:
        if (claim := claim_of(uri)) is not None:
            claims.setdefault(claim, True)
    for uri in written:
        if (claim := claim_of(uri)) is not None:
            claims[claim] = False
    return claims


def pvc_volumes(claims: dict[str, bool], prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volume mounts) for the claims; volumes are named ``<prefix>-<i>``."""
    volumes, mounts = [], []
    for index, (claim, read_only) in enumerate(claims.items()):
        name = f"{prefix}-{index}"
        volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}})
        mounts.append(
            {"name": name, "mountPath": f"{contract.PVC_MOUNT_ROOT}/{claim}", "readOnly": read_only}
        )
    return volumes, mounts
