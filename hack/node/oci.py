"""Small OCI image archives from files on this machine: the pod sandbox (pause) and a busybox image.

No registry is reachable, so these two images are written here as OCI image layouts in a tar (what
``ctr images import`` reads). Hand-written because the format is three JSON documents and a tar of
blobs, while the tools that write it (buildah, umoci) would need a storage set-up of their own for
a one-file image. Deterministic: the same inputs give the same digests, so an image is rebuilt only
when its files change.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


class ImageArchive(Protocol):
    """What a node imports: an image reference and the archive (OCI or docker) that holds it; the
    images here and ``hack.image.runtime_image()`` have this shape."""

    @property
    def ref(self) -> str: ...

    @property
    def archive(self) -> Path: ...


@dataclass(frozen=True)
class BuiltImage:
    """An image reference and the OCI archive that holds it."""

    ref: str
    archive: Path


@dataclass(frozen=True)
class Entry:
    """One file, link or directory of an image layer."""

    path: str
    source: Path | None = None
    """A regular file's content; None for a directory or a symlink."""
    symlink_to: str | None = None
    mode: int = 0o755


def _layer(entries: Iterable[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path.lstrip("/"))
            info.mode, info.mtime, info.uname, info.gname = entry.mode, 0, "root", "root"
            if entry.symlink_to is not None:
                info.type, info.linkname = tarfile.SYMTYPE, entry.symlink_to
                tar.addfile(info)
            elif entry.source is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                data = entry.source.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"sha256:{hashlib.sha256(data).hexdigest()}", data


def image_archive(name: str, entries: list[Entry], config: dict[str, object], dest_dir: Path) -> BuiltImage:
    """Writes (once) an OCI archive of a one-layer image and returns it.

    The tag is the start of the manifest digest, so a changed input is a new image (and archive) and
    an unchanged one is found where it was.
    """
    layer_digest, layer = _blob(_layer(entries))
    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    config_digest, config_bytes = _blob(json.dumps(image_config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest, sort_keys=True).encode())
    tag = manifest_digest[7:19]
    ref = f"{name}:{tag}"
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": manifest_digest,
                "size": len(manifest_bytes),
                "annotations": {IMAGE_NAME_ANNOTATION: ref, REF_NAME_ANNOTATION: tag},
            }
        ],
    }
    archive = dest_dir / f"{name.rsplit('/', 1)[-1]}-{tag}.oci.tar"
    if archive.exists():
        return BuiltImage(ref, archive)
    dest_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
        **{
            f"blobs/sha256/{digest[7:]}": data
            for digest, data in (
                (layer_digest, layer),
                (config_digest, config_bytes),
                (manifest_digest, manifest_bytes),
            )
        },
    }
    partial = archive.with_suffix(".partial")
    with tarfile.open(partial, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    partial.rename(archive)
    return BuiltImage(ref, archive)
