"""Resolve a model URI to a local directory, downloading blob and hub models into the cache dir.

Downloads are resumable at file granularity: a file already in the cache with the blob's size is
kept, so a restarted pod on the same volume skips what it already has.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from modelfleet_api.storage import StorageUri, UriKind

from modelfleet_serve.blob import BlobLocation, container_client, parse_blob_uri

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_SECONDS = 10.0


def cache_subdir(uri: str) -> str:
    """A stable directory name for a URI inside the cache dir."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", uri.split("://", 1)[-1]).strip("-")


def planned_path(uri: str, cache_dir: Path, field: str, revision: str | None = None) -> Path:
    """Where `resolve` finds or puts the model (or adapter) at `uri`, without looking or downloading."""
    parsed = StorageUri.parse(uri, field=field)
    if parsed.kind in (UriKind.PVC, UriKind.LOCAL):
        return parsed.local_path()
    if parse_blob_uri(uri, field) is not None:
        return cache_dir / "blob" / cache_subdir(uri)
    return cache_dir / "hub" / cache_subdir(f"{uri}@{revision or 'main'}")


def resolve(uri: str, cache_dir: Path, field: str, revision: str | None = None) -> Path:
    """The local directory holding the model (or adapter) at `uri`, downloading it if remote."""
    path = planned_path(uri, cache_dir, field, revision)
    if StorageUri.parse(uri, field=field).kind in (UriKind.PVC, UriKind.LOCAL):
        return _existing(path, uri, field)
    blob = parse_blob_uri(uri, field)
    if blob is not None:
        return download_blob_prefix(blob, path)
    return download_hub(uri, revision, path)


def _existing(path: Path, uri: str, field: str) -> Path:
    if not path.exists():
        raise ValueError(f"{field}: {uri} does not exist in the pod (looked at {path})")
    return path


def download_hub(repo_id: str, revision: str | None, target: Path) -> Path:
    """Snapshot of a Hugging Face model; huggingface_hub logs per-file progress bars."""
    from huggingface_hub import snapshot_download

    log.info("downloading %s@%s from the Hugging Face hub into %s", repo_id, revision or "main", target)
    started = time.monotonic()
    snapshot_download(repo_id=repo_id, revision=revision, local_dir=target)
    log.info("downloaded %s in %.1f s", repo_id, time.monotonic() - started)
    return target


def download_blob_prefix(location: BlobLocation, target: Path) -> Path:
    """Every blob under the prefix, into `target`, keeping the paths below the prefix.

    Credentials: see `modelfleet_serve.blob`.
    """
    container = container_client(location)
    prefix = location.prefix.rstrip("/") + "/"
    blobs = [b for b in container.list_blobs(name_starts_with=prefix) if not b.name.endswith("/")]
    if not blobs:
        raise ValueError(f"no blobs under {location.container}/{prefix} in {location.account_url}")
    total = sum(b.size for b in blobs)
    log.info(
        "downloading %d files (%.1f MiB) from %s/%s", len(blobs), total / 2**20, location.container, prefix
    )
    progress = _Progress(total)
    for blob in blobs:
        path = target / blob.name.removeprefix(prefix)
        if path.exists() and path.stat().st_size == blob.size:
            progress.add(blob.size)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        base = progress.done
        download = container.download_blob(blob.name, max_concurrency=4, progress_hook=progress.hook(base))
        with partial.open("wb") as sink:
            download.readinto(sink)
        partial.rename(path)
        progress.set(base + blob.size)
    progress.finish()
    return target


class _Progress:
    """Logs bytes done, rate and ETA at most every PROGRESS_INTERVAL_SECONDS (pod logs have no tty)."""

    def __init__(self, total: int) -> None:
        self.total, self.done = total, 0
        self.started = self.last = time.monotonic()

    def add(self, count: int) -> None:
        self.set(self.done + count)

    def hook(self, base: int) -> Callable[[int, int | None], None]:
        """The SDK's progress hook for a blob that starts at ``base`` bytes done: (current, total)."""
        return lambda current, _total: self.set(base + current)

    def set(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_SECONDS:
            self.last = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate else float("inf")
            percent = 100 * self.done / max(self.total, 1)
            mib_done, mib_total, mib_rate = self.done / 2**20, self.total / 2**20, rate / 2**20
            log.info(
                "model download %.1f%% (%.1f/%.1f MiB, %.1f MiB/s, ETA %.0f s)",
                percent, mib_done, mib_total, mib_rate, eta,
            )  # fmt: skip

    def finish(self) -> None:
        elapsed = time.monotonic() - self.started
        log.info("model download complete: %.1f MiB in %.1f s", self.total / 2**20, elapsed)
