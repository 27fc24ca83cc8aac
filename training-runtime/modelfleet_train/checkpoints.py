"""Atomic, resumable checkpoints on a local/PVC path or in Azure Blob Storage.

Layout under the checkpoint URI::

    step-00000100/            everything one checkpoint holds (strategy state, RNG, trainer state)
    step-00000100/manifest.json   written last: every file of the checkpoint with its size
    latest                    the step of the newest complete checkpoint, replaced atomically

A checkpoint counts only when its manifest exists and every file it lists is present with the
listed size, so a save cut short (eviction, full disk, a torn upload) is never resumed from: the
`latest` marker is published after the manifest, and on resume a `latest` whose checkpoint fails
the check falls back to the newest checkpoint that passes it. Sizes (not hashes) are compared
because hashing hundreds of GB at every save would cost more than the save itself.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from modelfleet_train import distributed, storage
from modelfleet_train.distributed import DistContext
from modelfleet_train.strategies import Strategy

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LATEST = "latest"
TRAINER_STATE = "trainer_state.json"
RNG_DIR = "rng"
_PREFIX = "step-"


def step_name(step: int) -> str:
    return f"{_PREFIX}{step:08d}"


def parse_step(name: str) -> int | None:
    digits = name.removeprefix(_PREFIX)
    return int(digits) if name.startswith(_PREFIX) and digits.isdigit() else None


@dataclass
class TrainerState:
    """Where the run is: enough, with the strategy's state, to continue it exactly."""

    step: int
    consumed_micro_batches: int
    world_size: int
    total_steps: int
    job_uid: str | None = None
    evaluation: dict[str, Any] | None = None
    """The held-out figures so far (`EvaluationStatus` on the wire): latest and best."""
    stream_positions: list[list[int]] | None = None
    """With `dataset.streaming`, where each rank is in its share, by rank: [pass, micro-batches of that
    pass consumed]."""


def manifest_problem(manifest: dict[str, int] | None, present: dict[str, int]) -> str | None:
    """Why a checkpoint with this manifest and these (relative path -> size) files is unusable, or None."""
    if manifest is None:
        return "no manifest (the save did not finish)"
    for name, size in manifest.items():
        if name not in present:
            return f"{name} is missing"
        if present[name] != size:
            return f"{name} has {present[name]} bytes, the manifest says {size}"
    return None


def choose_resume_step(latest: int | None, steps: list[int], problem_of: Any) -> int | None:
    """The step to resume from: `latest` if complete, else the newest complete checkpoint."""
    candidates = ([latest] if latest is not None else []) + sorted(
        (s for s in steps if s != latest), reverse=True
    )
    for step in candidates:
        problem = problem_of(step)
        if problem is None:
            return step
        log.warning("ignoring checkpoint %s: %s", step_name(step), problem)
    return None


def steps_to_prune(
    steps: list[int], complete: set[int], keep_last: int, latest: int | None, protected: int | None = None
) -> list[int]:
    """Complete checkpoints beyond the newest `keep_last`, and torn ones older than the newest complete;
    never `latest` nor `protected` (the best checkpoint, with `output.select: best`)."""
    kept = set(sorted(complete, reverse=True)[:keep_last]) | {s for s in (latest, protected) if s is not None}
    newest_complete = max(complete, default=None)
    return [
        s
        for s in sorted(steps)
        if s not in kept and (s in complete or (newest_complete is not None and s < newest_complete))
    ]


def atomic_write_text(path: Path, text: str) -> None:
    """Write-then-rename in the same directory, fsynced, so readers see the old or the new file only."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def file_sizes(directory: Path) -> dict[str, int]:
    return {
        p.relative_to(directory).as_posix(): p.stat().st_size for p in directory.rglob("*") if p.is_file()
    }


class CheckpointStore(ABC):
    """Where checkpoint files go and how completeness is published."""

    @abstractmethod
    def write_dir(self, step: int) -> Path:
        """Local directory the ranks write this step's files into."""

    @abstractmethod
    def publish_files(self, step: int) -> dict[str, int]:
        """Make this node's written files durable at the destination; returns them with sizes."""

    @abstractmethod
    def publish(self, step: int, files: dict[str, int]) -> None:
        """Write the manifest, then point `latest` at the step (rank 0)."""

    @abstractmethod
    def latest(self) -> int | None: ...

    @abstractmethod
    def steps(self) -> list[int]: ...

    @abstractmethod
    def problem(self, step: int) -> str | None: ...

    @abstractmethod
    def fetch(self, step: int) -> Path:
        """A local directory holding the step's files (downloads for remote stores)."""

    @abstractmethod
    def delete(self, step: int) -> None: ...

    @abstractmethod
    def uri(self, step: int) -> str: ...


class LocalStore(CheckpointStore):
    def __init__(self, root: Path) -> None:
        self.root = root

    def write_dir(self, step: int) -> Path:
        return self.root / step_name(step)

    def publish_files(self, step: int) -> dict[str, int]:
        directory = self.write_dir(step)
        for path in directory.rglob("*"):
            if path.is_file():
                with open(path, "rb") as handle:
                    os.fsync(handle.fileno())
        return file_sizes(directory)

    def publish(self, step: int, files: dict[str, int]) -> None:
        atomic_write_text(self.write_dir(step) / MANIFEST, json.dumps(files, sort_keys=True))
        atomic_write_text(self.root / LATEST, str(step))

    def latest(self) -> int | None:
        marker = self.root / LATEST
        text = marker.read_text().strip() if marker.exists() else ""
        return int(text) if text.isdigit() else None

    def steps(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return sorted(s for p in self.root.iterdir() if p.is_dir() and (s := parse_step(p.name)) is not None)

    def problem(self, step: int) -> str | None:
        directory = self.write_dir(step)
        manifest_path = directory / MANIFEST
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        return manifest_problem(manifest, file_sizes(directory) if directory.is_dir() else {})

    def fetch(self, step: int) -> Path:
        return self.write_dir(step)

    def delete(self, step: int) -> None:
        shutil.rmtree(self.write_dir(step), ignore_errors=True)

    def uri(self, step: int) -> str:
        return str(self.write_dir(step))


class BlobStore(CheckpointStore):
    """Files are written to a local staging directory, uploaded by each node, then published."""

    def __init__(self, location: storage.BlobLocation, staging: Path) -> None:
        self.location, self.staging = location, staging

    def write_dir(self, step: int) -> Path:
        return self.staging / step_name(step)

    def publish_files(self, step: int) -> dict[str, int]:
        """Upload this node's files of the checkpoint, then drop them from the staging directory."""
        uploaded = dict(storage.upload_dir(self.write_dir(step), self.location.child(step_name(step))))
        shutil.rmtree(self.write_dir(step), ignore_errors=True)
        return uploaded

    def publish(self, step: int, files: dict[str, int]) -> None:
        name = step_name(step)
        storage.write_blob_text(self.location.child(f"{name}/{MANIFEST}"), json.dumps(files, sort_keys=True))
        storage.write_blob_text(self.location.child(LATEST), str(step))
        shutil.rmtree(self.write_dir(step), ignore_errors=True)

    def latest(self) -> int | None:
        text = (storage.read_blob_text(self.location.child(LATEST)) or "").strip()
        return int(text) if text.isdigit() else None

    def steps(self) -> list[int]:
        names = storage.list_blob_sizes(self.location)
        return sorted({s for n in names if (s := parse_step(n.split("/")[0])) is not None})

    def problem(self, step: int) -> str | None:
        present = storage.list_blob_sizes(self.location.child(step_name(step)))
        text = storage.read_blob_text(self.location.child(f"{step_name(step)}/{MANIFEST}"))
        present.pop(MANIFEST, None)
        return manifest_problem(json.loads(text) if text else None, present)

    def fetch(self, step: int) -> Path:
        target = self.write_dir(step)
        shutil.rmtree(target, ignore_errors=True)
        return storage.download_prefix(self.location.child(step_name(step)), target)

    def delete(self, step: int) -> None:
        storage.delete_prefix(self.location.child(step_name(step)))

    def uri(self, step: int) -> str:
        return str(self.location.child(step_name(step)))


def open_store(uri: str, staging_root: Path) -> CheckpointStore:
    if storage.is_blob_uri(uri):
        return BlobStore(storage.blob_location(uri), staging_root)
    return LocalStore(storage.local_path(uri))


def _rng_state() -> dict[str, Any]:
    import numpy

    state = {"python": random.getstate(), "numpy": numpy.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    import numpy

    random.setstate(state["python"])
    numpy.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Checkpointer:
    """The save/restore protocol every rank runs together."""

    def __init__(self, store: CheckpointStore, ctx: DistContext, keep_last: int) -> None:
        self.store, self.ctx, self.keep_last = store, ctx, keep_last

    def save(
        self, strategy: Strategy, state: TrainerState, protect: int | None = None
    ) -> tuple[str, float, int]:
        """Save, publish and prune (never the checkpoint of step `protect`); returns (uri, seconds, bytes)."""
        started = time.perf_counter()
        directory = self.store.write_dir(state.step)
        if self.ctx.is_local_main and directory.exists():
            shutil.rmtree(directory)  # a torn earlier attempt at this step
        distributed.barrier()
        (directory / RNG_DIR).mkdir(parents=True, exist_ok=True)
        strategy.save(directory)
        torch.save(_rng_state(), directory / RNG_DIR / f"rank{self.ctx.rank}.pt")
        if self.ctx.is_main:
            (directory / TRAINER_STATE).write_text(json.dumps(asdict(state)))
        distributed.barrier()
        node_files = self.store.publish_files(state.step) if self.ctx.is_local_main else {}
        files: dict[str, int] = {}
        for part in distributed.all_gather_object(node_files):
            files.update(part)
        if self.ctx.is_main:
            self.store.publish(state.step, files)
            self._prune(protect)
        distributed.barrier()
        return self.store.uri(state.step), time.perf_counter() - started, sum(files.values())

    def _prune(self, protect: int | None) -> None:
        try:
            steps = self.store.steps()
            complete = {s for s in steps if self.store.problem(s) is None}
            for step in steps_to_prune(steps, complete, self.keep_last, self.store.latest(), protect):
                self.store.delete(step)
        except Exception:  # pruning is housekeeping: a failure must not stop training
            log.exception("pruning old checkpoints failed")

    def restore(self, strategy: Strategy, job_uid: str | None) -> TrainerState | None:
        """Load the newest complete checkpoint, if any; returns its trainer state."""
        step = None
        if self.ctx.is_main:
            step = choose_resume_step(self.store.latest(), self.store.steps(), self.store.problem)
        step = distributed.broadcast_object(step)
        if step is None:
            return None
        directory, state = self._fetch(step)
        if state.job_uid and job_uid and state.job_uid != job_uid:
            raise RuntimeError(
                f"checkpoint.uri: {self.store.uri(step)} belongs to job uid {state.job_uid}, "
                f"not this job ({job_uid}); point checkpoint.uri elsewhere"
            )
        strategy.load(directory)
        rng_file = directory / RNG_DIR / f"rank{self.ctx.rank}.pt"
        if state.world_size == self.ctx.world_size and rng_file.exists():
            _restore_rng(torch.load(rng_file, weights_only=False))
        else:
            log.warning(
                "world size changed (%s -> %s): RNG state not restored", state.world_size, self.ctx.world_size
            )
        log.info("resumed from %s at step %d", self.store.uri(step), state.step)
        return state

    def load_weights(self, strategy: Strategy, step: int) -> None:
        """Put the state of the checkpoint of `step` back into the strategy (collective): the best
        checkpoint's weights, to write them as the output."""
        problem = self.store.problem(step) if self.ctx.is_main else None
        problem = distributed.broadcast_object(problem)
        if problem is not None:
            raise RuntimeError(
                f"output.select best: checkpoint {self.store.uri(step)} cannot be read: {problem}"
            )
        directory, _ = self._fetch(step)
        strategy.load(directory)
        log.info("loaded the weights of %s", self.store.uri(step))

    def _fetch(self, step: int) -> tuple[Path, TrainerState]:
        """The local directory of the checkpoint of `step` (downloaded once per node) and its state."""
        directory = self.store.fetch(step) if self.ctx.is_local_main else self.store.write_dir(step)
        distributed.barrier()
        return directory, TrainerState(**json.loads((directory / TRAINER_STATE).read_text()))
