"""The Debian 12 base image, made by mmdebstrap from Debian's own packages (no registry involved).

It stands where ``debian:bookworm-slim`` stands in a Docker build: the minimal Debian with apt, which
the Dockerfile's stages then install Python into. Documentation, manual pages and translations are
left out, as the slim image does.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from hack.image.buildah import Buildah

SUITE = "bookworm"
"""Debian 12: its python3 is CPython 3.11, the version the project supports and locks for."""
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
INCLUDE = ("ca-certificates",)
DPKG_OPTIONS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
)
REPOSITORY = "modelfleet.local/debian"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def recipe() -> str:
    """Everything the base is made from, as text: it goes into the base's and the runtime's hash."""
    return json.dumps(
        {"suite": SUITE, "mirrors": MIRRORS, "include": INCLUDE, "dpkg": DPKG_OPTIONS, "variant": "minbase"}
    )


def base_ref() -> str:
    """``modelfleet.local/debian:bookworm-<hash of the recipe>``."""
    return f"{REPOSITORY}:{SUITE}-{hashlib.sha256(recipe().encode()).hexdigest()[:16]}"


def ensure_base(buildah: Buildah, scratch: Path) -> str:
    """The base image's reference, made (about a minute) unless the store already holds it."""
    ref = base_ref()
    if buildah.has_image(ref):
        return ref
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        buildah.step(
            "mmdebstrap",
            [
                "mmdebstrap",
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                *(f"--dpkgopt={option}" for option in DPKG_OPTIONS),
                SUITE,
                str(rootfs),
                *MIRRORS,
            ],
        )
        container = buildah.run("from", "scratch").strip()
        try:
            buildah.run("add", container, str(rootfs), "/")
            buildah.run("config", "--env", f"PATH={PATH}", "--cmd", "/bin/bash", container)
            buildah.run("commit", "--quiet", "--format", "docker", container, ref)
        finally:
            buildah.run("rm", container)
    return ref
