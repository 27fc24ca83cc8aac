"""The CPU runtime image (``images/runtime-cpu.Dockerfile``) as a docker archive, built on demand.

``runtime_image()`` names the image by the hash of its inputs (the Dockerfile, every file it copies
and the Debian base's recipe) and builds it only when no archive of that hash exists: buildah on a
base that mmdebstrap made, no Docker engine, no registry. buildah keeps its layer cache in the
project's store, so a change to the project's code reinstalls only the project, not torch. One
build at a time (a lock file). Several checkouts of different sources may share the cache, so the
archives of the ``KEEP`` most recently used inputs stay; older ones go when a new one is written.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hack.image import base
from hack.image.buildah import Buildah, ImageBuildFailed, require_tools
from hack.image.inputs import REPO, BuildInputs

CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache" / "modelfleet"))
IMAGE_DIR = CACHE / "image"
DOCKERFILE = REPO / "images" / "runtime-cpu.Dockerfile"
REPOSITORY = "modelfleet.local/runtime-cpu"
BUILD_STAGE_REPOSITORY = "modelfleet.local/runtime-cpu-build"
"""The Dockerfile's build stage, tagged so its layers (the dependencies, DeepSpeed's compiled ops)
survive the pruning of stale layers and the next build reuses them."""
ARCHIVE_PREFIX = "runtime-cpu-"
UV_CACHE_IN_BUILD = "/cache/uv"
"""Where the Dockerfile's build stage keeps uv's cache (its ``UV_CACHE_DIR``)."""
CA_BUNDLE_IN_BUILD = "/run/host-ca.crt"
KEEP = 2
"""Archives (about 5 GiB each) kept: the newest build and the one used last before it."""
ARCHIVE_ESTIMATE = 6 * 2**30
"""The archive's size before one was built (5.4 GiB measured)."""


@dataclass(frozen=True)
class RuntimeImage:
    """The image's reference (``modelfleet.local/runtime-cpu:<inputs hash>``) and its docker archive,
    which ``ctr -n k8s.io images import`` loads under that reference."""

    ref: str
    archive: Path

    @property
    def tag(self) -> str:
        return self.ref.rsplit(":", 1)[1]

    @property
    def built(self) -> bool:
        return self.archive.is_file()

    @property
    def build_record(self) -> Path:
        """JSON beside the archive: when and how long the build took, and the sizes."""
        return self.archive.with_suffix(".json")


def inputs() -> BuildInputs:
    return BuildInputs.of(DOCKERFILE, recipe=base.recipe())


def planned(image_dir: Path = IMAGE_DIR) -> RuntimeImage:
    """The image the current sources make, built or not."""
    tag = inputs().tag()
    return RuntimeImage(f"{REPOSITORY}:{tag}", image_dir / f"{ARCHIVE_PREFIX}{tag}.tar")


def runtime_image(image_dir: Path = IMAGE_DIR) -> RuntimeImage:
    """The CPU runtime image of the current sources, built first when it is missing (the first build
    takes several minutes; later ones reuse the dependency layers)."""
    image = planned(image_dir)
    if image.built:
        for used in (
            image.archive,
            image.build_record,
        ):  # another checkout's build keeps the KEEP latest used
            if used.exists():
                os.utime(used)
        return image
    with _build_lock(image_dir):
        if not image.built:  # another process may have built it while we waited
            _build(image, image_dir)
        os.utime(image.archive)
    return image


@contextmanager
def _build_lock(image_dir: Path) -> Iterator[None]:
    image_dir.mkdir(parents=True, exist_ok=True)
    with (image_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build(image: RuntimeImage, image_dir: Path) -> None:
    require_tools()
    started = time.monotonic()
    buildah = Buildah(store=image_dir / "containers", logs=CACHE / "logs")
    buildah.remove_stale()
    _remove_older(buildah, image, image_dir, before_build=True)  # room first; layers stay
    _require_space(image_dir)
    scratch = image_dir / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    source = inputs()
    debian = base.ensure_base(buildah, scratch)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        context = Path(tmp)
        if source.write_context(context).digest()[:16] != image.tag:
            raise ImageBuildFailed("context", None, "sources changed while the build started; run it again")
        dockerfile = str(context / DOCKERFILE.relative_to(REPO))
        build_stage = f"{BUILD_STAGE_REPOSITORY}:{image.tag}"
        flags = _build_flags(debian)
        buildah.build_step(
            "runtime-cpu-stage",
            "build",
            *flags,
            "--target",
            "build",
            "--file",
            dockerfile,
            "--tag",
            build_stage,
            tmp,
        )
        buildah.build_step("runtime-cpu", "build", *flags, "--file", dockerfile, "--tag", image.ref, tmp)
    partial = image.archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    buildah.build_step("runtime-cpu-archive", "push", image.ref, f"docker-archive:{partial}:{image.ref}")
    partial.rename(image.archive)
    image.build_record.write_text(
        json.dumps(
            {
                "ref": image.ref,
                "built": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.monotonic() - started, 1),
                "archiveBytes": image.archive.stat().st_size,
            },
            indent=2,
        )
    )
    try:
        _remove_older(buildah, image, image_dir)
    except ImageBuildFailed as problem:  # the image is built; a failed clean-up only costs disk
        print(f"hack.image: removing older images failed: {problem}", file=sys.stderr)


def _build_flags(debian: str) -> list[str]:
    """Flags of ``buildah build``: layers cached in the store, nothing pulled, RUN steps chrooted on
    the host network (apt and PyPI), the host's uv cache and CA bundle mounted."""
    flags = [
        "--layers",
        "--force-rm",  # a failed step's container (gigabytes of a half-installed venv) goes too
        "--pull=never",
        "--format",
        "docker",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--build-arg",
        f"DEBIAN_IMAGE={debian}",
        *_label_args(),
    ]
    uv_cache = _host_uv_cache()
    if uv_cache is not None:
        flags += ["--volume", f"{uv_cache}:{UV_CACHE_IN_BUILD}"]
    ca_bundle = _host_ca_bundle()
    if ca_bundle is not None:
        flags += ["--volume", f"{ca_bundle}:{CA_BUNDLE_IN_BUILD}:ro"]
        flags += [
            "--build-arg",
            f"PIP_CERT={CA_BUNDLE_IN_BUILD}",
            "--build-arg",
            f"SSL_CERT_FILE={CA_BUNDLE_IN_BUILD}",
        ]
    return flags


def _label_args() -> list[str]:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    revision = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        arg
        for name, value in (("VERSION", version), ("REVISION", revision or "unknown"), ("CREATED", created))
        for arg in ("--build-arg", f"{name}={value}")
    ]


def _host_uv_cache() -> Path | None:
    """The uv cache ``make deps`` filled (the wheels of the same lock), if there is one."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        return None
    done = subprocess.run([uv, "cache", "dir"], capture_output=True, text=True)
    path = Path(done.stdout.strip())
    if done.returncode != 0 or not path.is_dir():
        return None
    return path


def _host_ca_bundle() -> Path | None:
    """The CA bundle this machine trusts (it may hold a TLS-inspecting proxy's CA)."""
    for candidate in (os.environ.get("SSL_CERT_FILE"), ssl.get_default_verify_paths().cafile):
        if candidate and Path(candidate).is_file():
            return Path(candidate).resolve()
    return None


def _require_space(image_dir: Path) -> None:
    """Fail before a build that cannot fit. Measured on this project's image: a build whose
    dependency layer is rebuilt holds that layer's diff in a temporary file while committing it,
    then the layer, the final stage and the archive, about three archives' worth at its peak."""
    archives = [a.stat().st_size for a in image_dir.glob(f"{ARCHIVE_PREFIX}*.tar")]
    need = 3 * (max(archives) if archives else ARCHIVE_ESTIMATE)
    free = shutil.disk_usage(image_dir).free
    if free < need:
        raise ImageBuildFailed(
            "disk",
            None,
            f"{free / 2**30:.1f} GiB free under {image_dir}; a build may need {need / 2**30:.1f} GiB "
            "(three times the image's archive): free some disk and run it again",
        )


def _remove_older(buildah: Buildah, image: RuntimeImage, image_dir: Path, before_build: bool = False) -> None:
    """Images beyond the ``KEEP`` most recently used go: their archives, build records and tags, and
    the layers no kept image uses. Before a build, every other image's archive goes too (5 GiB each,
    remade from the kept layers in about two minutes if that image is asked for again), and no layer
    goes: they may be this build's cache."""
    records = sorted(image_dir.glob(f"{ARCHIVE_PREFIX}*.json"), key=lambda r: r.stat().st_mtime, reverse=True)
    others = [r.stem.removeprefix(ARCHIVE_PREFIX) for r in records if r.stem != image.archive.stem]
    kept = {image.tag, *others[: KEEP - 1]}
    for path in image_dir.glob(f"{ARCHIVE_PREFIX}*"):
        tag = path.name.removeprefix(ARCHIVE_PREFIX).split(".", 1)[0]
        if tag not in kept or (before_build and tag != image.tag and path.suffix != ".json"):
            path.unlink(missing_ok=True)
    for ref in buildah.images(REPOSITORY) + buildah.images(BUILD_STAGE_REPOSITORY):
        if ref.rsplit(":", 1)[1] not in kept:
            buildah.run("rmi", ref)
    if not before_build:
        buildah.prune_dangling()
