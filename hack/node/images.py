"""The node's own images: the pod sandbox (``pause``, compiled by ``build.sh``) and busybox (Debian's
``busybox-static``), for pods that need a shell and a DNS client but no Python."""

from __future__ import annotations

import os
from pathlib import Path

from hack.node.oci import BuiltImage, Entry, ImageArchive, image_archive

CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
K8S_VERSION = os.environ.get("K8S_VERSION", "v1.36.3")
BUSYBOX = Path("/bin/busybox")
BUSYBOX_APPLETS = (
    "sh",
    "sleep",
    "cat",
    "echo",
    "env",
    "ls",
    "nslookup",
    "wget",
    "hostname",
    "true",
    "nc",
    "httpd",
    "mkdir",
)


def pause_image(cache: Path = CACHE) -> BuiltImage:
    binary = cache / f"pause-{K8S_VERSION}" / "bin" / "pause"
    if not binary.exists():
        raise FileNotFoundError(f"{binary} is missing; run `make cluster-build`")
    return image_archive(
        "modelfleet.local/pause",
        [Entry("pause", binary)],
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
        cache / "images",
    )


def busybox_image(cache: Path = CACHE) -> BuiltImage:
    if not BUSYBOX.exists():
        raise FileNotFoundError(f"{BUSYBOX} is missing; run `make cluster-build` (Debian's busybox-static)")
    entries = [
        Entry("bin", mode=0o755),
        Entry("bin/busybox", BUSYBOX),
        *(Entry(f"bin/{applet}", symlink_to="busybox") for applet in BUSYBOX_APPLETS),
        Entry("tmp", mode=0o1777),
    ]
    return image_archive(
        "modelfleet.local/busybox",
        entries,
        {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        cache / "images",
    )


def runtime_image() -> ImageArchive:
    """The CPU runtime image (``hack.image``), built first when its inputs changed.

    ``MODELFLEET_RUNTIME_IMAGE_TAG`` names an archive already built instead: the image copies the
    project's sources, so while iterating on a test or the demo (or on a machine short of disk) one
    image can serve several edits instead of a 5 GB rebuild after each.
    """
    from hack.image import runtime

    tag = os.environ.get("MODELFLEET_RUNTIME_IMAGE_TAG")
    if not tag:
        return runtime.runtime_image()
    image = runtime.RuntimeImage(
        f"{runtime.REPOSITORY}:{tag}", runtime.IMAGE_DIR / f"{runtime.ARCHIVE_PREFIX}{tag}.tar"
    )
    if not image.built:
        raise FileNotFoundError(f"MODELFLEET_RUNTIME_IMAGE_TAG={tag}: no archive {image.archive}")
    return image
