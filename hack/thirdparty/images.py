"""Images of the third-party binaries for the real node: each a one-layer OCI archive holding one
static Go binary (``CGO_ENABLED=0``, as upstream's distroless images hold it), since no registry can
be reached. The user is upstream's: distroless ``nonroot`` (65532) for KEDA and its add-on,
``nobody`` (65534) for Prometheus; their manifests ask for a non-root user."""

from __future__ import annotations

from hack.node.oci import BuiltImage, Entry, image_archive
from hack.thirdparty.upstream import CACHE, Component

NONROOT = "65532:65532"
NOBODY = "65534:65534"


def binary_image(component: Component, binary: str, user: str = NONROOT) -> BuiltImage:
    """``modelfleet.local/<component>-<binary>``: the binary at ``/<binary>``, its entrypoint, and a
    writable ``/tmp``."""
    return image_archive(
        f"modelfleet.local/{component.name}-{binary}",
        [Entry(binary, component.binary(binary)), Entry("tmp", mode=0o1777)],
        {"Entrypoint": [f"/{binary}"], "User": user},
        CACHE / "images",
    )
