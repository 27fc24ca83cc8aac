"""The cache of downloads (models and datasets from blob storage) that the workers on a node share.

The operator mounts the node's cache directory (a hostPath on the VM's temporary disk) in every worker
pod, so a gang restart or the next job on the node finds what an earlier one downloaded. Several
processes may want the same entry at once (the ranks of two jobs on one node): an exclusive ``flock``
on the entry's lock file lets one download while the others wait, then find it complete. A download
goes to a partial directory renamed into place when done, so an entry is either complete or absent;
the partial directory of a process killed mid-download is removed by the next one.

With a size cap (``MODELFLEET_CACHE_MAX_BYTES``), the entries used longest ago (the mtime of their
``.complete`` marker, touched on every use) are removed once a download takes the cache beyond it; an
entry another process holds locked is skipped. Removing an entry that a running process has open or
mapped is safe: Linux keeps the files until they are closed. Hand-written: the hub's cache
(``huggingface_hub``) locks its own files but knows nothing of blob storage.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelfleet_api import contract

log = logging.getLogger(__name__)

COMPLETE = ".complete"
LOCK_SUFFIX = ".lock"
PARTIAL_SUFFIX = ".partial"
KINDS = ("models", "datasets")


def entry_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


@contextmanager
def _locked(path: Path, *, wait: bool = True) -> Iterator[bool]:
    """An exclusive flock on ``path`` (created if missing); yields False when ``wait`` is off and
    another process holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True)
class NodeCache:
    root: Path
    max_bytes: int | None = None

    @classmethod
    def from_env(cls, root: Path) -> NodeCache:
        cap = os.environ.get(contract.ENV_CACHE_MAX_BYTES)
        return cls(root, int(cap) if cap else None)

    def entry(self, kind: str, uri: str) -> Path:
        return self.root / kind / entry_key(uri)

    def fill(self, kind: str, uri: str, fetch: Callable[[Path], object]) -> Path:
        """The entry of ``uri``: downloaded by ``fetch(directory)`` unless a process on this node
        already did; concurrent callers wait for the one that downloads."""
        target = self.entry(kind, uri)
        with _locked(target.with_name(target.name + LOCK_SUFFIX)):
            marker = target / COMPLETE
            if marker.exists():
                marker.touch()
                return target
            partial = target.with_name(target.name + PARTIAL_SUFFIX)
            shutil.rmtree(partial, ignore_errors=True)  # a killed download's leftovers
            shutil.rmtree(target, ignore_errors=True)
            partial.mkdir(parents=True)
            log.info("downloading %s into the node cache (%s)", uri, target)
            fetch(partial)
            (partial / COMPLETE).write_text(uri)
            partial.rename(target)
        self.evict(keep=target)
        return target

    def entries(self) -> list[Path]:
        """Complete entries, used longest ago first."""
        found = [
            path
            for kind in KINDS
            if (self.root / kind).is_dir()
            for path in (self.root / kind).iterdir()
            if (path / COMPLETE).exists()
        ]
        return sorted(found, key=lambda path: (path / COMPLETE).stat().st_mtime)

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Remove entries used longest ago while the cache holds more than ``max_bytes``; returns them."""
        if self.max_bytes is None:
            return []
        entries = self.entries()
        total = sum(_size(path) for path in entries)
        removed = []
        for path in entries:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            with _locked(path.with_name(path.name + LOCK_SUFFIX), wait=False) as mine:
                if not mine or not (path / COMPLETE).exists():
                    continue  # being filled or removed by another process
                size = _size(path)
                shutil.rmtree(path)
                total -= size
                removed.append(path)
                log.info("removed %s from the node cache (%d bytes; used longest ago)", path, size)
        return removed


@functools.cache
def pod_scratch(root: Path) -> Path:
    """This pod's own directory in the cache (what blob uploads are staged in), held with a shared lock
    for the life of its processes; the directories of pods that are gone are removed."""
    pod = os.environ.get(contract.ENV_POD_NAME) or socket.gethostname()
    base = root / "pods"
    base.mkdir(parents=True, exist_ok=True)
    lock = base / f"{pod}{LOCK_SUFFIX}"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    fcntl.flock(fd, fcntl.LOCK_SH)  # released when the process exits; the fd is never closed
    for other in base.glob(f"*{LOCK_SUFFIX}"):
        if other == lock:
            continue
        with _locked(other, wait=False) as gone:
            if gone:
                shutil.rmtree(base / other.name.removesuffix(LOCK_SUFFIX), ignore_errors=True)
                other.unlink(missing_ok=True)
    directory = base / pod
    directory.mkdir(exist_ok=True)
    return directory
