"""When each object of a namespace appeared, and when it first reached a milestone, from watches.

One watch per kind, each in its own thread, started from the resourceVersion of a LIST so nothing is
missed; each event is stamped with ``time.monotonic()`` on arrival. The creators stamp their requests
with the same clock, so a latency is the difference of two stamps of this process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import urllib3

from benchmarks.scale.kubeapi import ApiError, KubeApi, WatchStream
from benchmarks.scale.workload import path_of

Json = dict[str, Any]
Milestone = Callable[[Json], bool]
WATCH_SECONDS = 1800
"""Server-side length of one watch request; the thread reconnects from the last version it saw."""


def phase_is(phase: str) -> Milestone:
    return lambda obj: (obj.get("status") or {}).get("phase") == phase


@dataclass(frozen=True)
class Watched:
    api_version: str
    kind: str
    milestone: Milestone | None = None
    """A condition whose first moment is recorded (a pod Running, a TrainingJob Running)."""
    ignore: frozenset[str] = frozenset()
    """Names the API server or the controllers create in every namespace (``default``, the CA bundle)."""


@dataclass
class Recorder:
    api: KubeApi
    namespace: str
    kinds: Iterable[Watched]
    failed: str | None = None
    """Why a watch stopped before ``stop()``: the counts after that moment are incomplete."""
    _streams: list[WatchStream] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _seen: threading.Lock = field(default_factory=threading.Lock)
    """Guards ``_added`` and ``_reached``: the watch threads write them while the phase reads."""
    _added: dict[str, dict[str, float]] = field(default_factory=dict)
    _reached: dict[str, dict[str, float]] = field(default_factory=dict)

    def start(self) -> Recorder:
        for watched in self.kinds:
            path = path_of(watched.api_version, watched.kind, self.namespace)
            version = self.api.request("GET", path, query={"limit": "1"})["metadata"]["resourceVersion"]
            stream = self.api.watch(path, version, WATCH_SECONDS)
            thread = threading.Thread(
                target=self._follow, args=(watched, path, stream), name=f"watch-{watched.kind}", daemon=True
            )
            self._streams.append(stream)
            self._threads.append(thread)
            thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for stream in self._streams:
                stream.close()
        for thread in self._threads:
            thread.join(timeout=10)

    def added(self, kind: str) -> dict[str, float]:
        """Name -> when an object of ``kind`` was first seen (a copy)."""
        with self._seen:
            return dict(self._added.get(kind, {}))

    def reached(self, kind: str) -> dict[str, float]:
        """Name -> when an object of ``kind`` first met its milestone (a copy)."""
        with self._seen:
            return dict(self._reached.get(kind, {}))

    def count_reached(self, kind: str) -> int:
        with self._seen:
            return len(self._reached.get(kind, {}))

    def seen_all(self, keys: Iterable[tuple[str, str]]) -> bool:
        with self._seen:
            return all(name in self._added.get(kind, {}) for kind, name in keys)

    def _follow(self, watched: Watched, path: str, stream: WatchStream) -> None:
        version = ""
        while not self._stopping.is_set():
            for event in stream:
                now = time.monotonic()
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                version = meta.get("resourceVersion", version)
                if event.get("type") not in ("ADDED", "MODIFIED") or meta.get("name") in watched.ignore:
                    continue
                name = meta["name"]
                met = watched.milestone is not None and watched.milestone(obj)
                with self._seen:
                    self._added.setdefault(watched.kind, {}).setdefault(name, now)
                    if met:
                        self._reached.setdefault(watched.kind, {}).setdefault(name, now)
            if self._stopping.is_set():
                return
            try:  # the server ended the watch: go on from the last version seen
                stream = self.api.watch(path, version, WATCH_SECONDS)
            except (ApiError, OSError, urllib3.exceptions.HTTPError):
                if not self._stopping.is_set():
                    self.failed = f"the watch of {watched.kind} could not be re-opened"
                return
            with self._lock:
                if self._stopping.is_set():
                    stream.close()
                    return
                self._streams.append(stream)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Polls ``predicate`` until true (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
