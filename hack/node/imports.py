"""An image archive into a node's containerd, sending only the layers the node has not unpacked yet.

``ctr images import`` reads a whole archive: 5 GB for the runtime image, written into containerd's
content store before it is unpacked, even when a source edit changed only the 2 MB layer of the
project's code and the node holds every other layer unpacked already. Here the archive (a docker
archive, what ``hack.image`` writes, or an OCI archive, what ``hack.node.oci`` writes) is read for its
manifest and config, the node's snapshots are looked up by the layers' chain IDs (how containerd names
an unpacked layer), and ctr is fed an OCI archive of the manifest, the config and the layers from the
first one missing on. containerd unpacks an image layer by layer and skips a layer whose snapshot
exists without reading its blob, so the layers left out are never needed; the manifest still lists
all of them, and the image is the same one (same config, so the same image ID) as a full import makes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hack.node.oci import IMAGE_NAME_ANNOTATION

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
"""A docker archive's layers are uncompressed tars (their digest is their diff ID)."""


@dataclass(frozen=True)
class Layer:
    member: str
    """The layer's file in the archive."""
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class ArchivedImage:
    """The one image of an archive: its config (bytes as stored: their digest is the image ID) and
    its layers, base first."""

    config: bytes
    layers: tuple[Layer, ...]

    @property
    def diff_ids(self) -> list[str]:
        ids: list[str] = json.loads(self.config)["rootfs"]["diff_ids"]
        return ids

    @classmethod
    def read(cls, tar: tarfile.TarFile) -> ArchivedImage:
        """From a docker archive (``manifest.json``) or an OCI archive (``index.json``)."""
        names = set(tar.getnames())
        if "manifest.json" in names:
            (entry,) = _json(tar, "manifest.json")
            layers = tuple(
                Layer(name, f"sha256:{Path(name).stem}", tar.getmember(name).size, OCI_LAYER)
                for name in entry["Layers"]
            )
            return cls(_bytes(tar, entry["Config"]), layers)
        (entry,) = _json(tar, "index.json")["manifests"]
        manifest = _json(tar, _blob(entry["digest"]))
        layers = tuple(
            Layer(_blob(layer["digest"]), layer["digest"], layer["size"], layer["mediaType"])
            for layer in manifest["layers"]
        )
        return cls(_bytes(tar, _blob(manifest["config"]["digest"])), layers)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The OCI chain ID of each layer prefix: what containerd names the layer's unpacked snapshot."""
    chain: list[str] = []
    for diff_id in diff_ids:
        chain.append(
            diff_id
            if not chain
            else f"sha256:{hashlib.sha256(f'{chain[-1]} {diff_id}'.encode()).hexdigest()}"
        )
    return chain


def layers_to_send(image: ArchivedImage, unpacked: Callable[[str], bool]) -> tuple[Layer, ...]:
    """The layers from the first one whose snapshot the node lacks (each snapshot sits on its parent,
    so every layer after a missing one is missing too)."""
    for index, chain_id in enumerate(chain_ids(image.diff_ids)):
        if not unpacked(chain_id):
            return image.layers[index:]
    return ()


def write_thin_archive(
    source: tarfile.TarFile, image: ArchivedImage, ref: str, send: tuple[Layer, ...], out: IO[bytes]
) -> None:
    """Streams an OCI archive of ``image`` named ``ref`` to ``out``, holding only the ``send`` layers."""
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(image.config), "size": len(image.config)},
            "layers": [
                {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
                for layer in image.layers
            ],
        },
        sort_keys=True,
    ).encode()
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": _digest(manifest),
                    "size": len(manifest),
                    "annotations": {IMAGE_NAME_ANNOTATION: ref},
                }
            ],
        },
        sort_keys=True,
    ).encode()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        for name, data in (
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            (_blob(_digest(image.config)), image.config),
            (_blob(_digest(manifest)), manifest),
        ):
            tar.addfile(_info(name, len(data)), io.BytesIO(data))
        for layer in send:
            tar.addfile(_info(_blob(layer.digest), layer.size), source.extractfile(layer.member))
        tar.addfile(_info("index.json", len(index)), io.BytesIO(index))


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def _blob(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


def _bytes(tar: tarfile.TarFile, name: str) -> bytes:
    handle = tar.extractfile(name)
    if handle is None:
        raise ValueError(f"{name} is not a file in {tar.name!r}")
    return handle.read()


def _json(tar: tarfile.TarFile, name: str) -> Any:
    return json.loads(_bytes(tar, name))
