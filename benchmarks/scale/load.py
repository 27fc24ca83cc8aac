"""Creating the benchmark's objects: all at once as fast as a client can, or at a steady rate.

Each object's time is the moment its POST returned (``time.monotonic()``): from then on it exists, and
a controller may see it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from benchmarks.scale.kubeapi import KubeApi
from benchmarks.scale.workload import path_of

Json = dict[str, Any]


@dataclass
class Created:
    at: dict[str, float] = field(default_factory=dict)
    """Object name -> when its create returned."""
    late: list[float] = field(default_factory=list)
    """Paced creation only: how late each POST was sent after its planned moment (seconds)."""
    started: float = 0.0
    finished: float = 0.0

    @property
    def rate(self) -> float:
        """Objects created per second over the creation."""
        span = self.finished - self.started
        return len(self.at) / span if span > 0 else 0.0


def _post(api: KubeApi, namespace: str, manifest: Json, created: Created, lock: threading.Lock) -> None:
    api.create(path_of(manifest["apiVersion"], manifest["kind"], namespace), manifest)
    done = time.monotonic()
    with lock:
        created.at[manifest["metadata"]["name"]] = done


def burst(api: KubeApi, namespace: str, manifests: Sequence[Json], threads: int) -> Created:
    """Every manifest, from ``threads`` threads, as fast as they go."""
    created, lock = Created(started=time.monotonic()), threading.Lock()
    with ThreadPoolExecutor(threads, thread_name_prefix="create") as pool:
        for future in [pool.submit(_post, api, namespace, m, created, lock) for m in manifests]:
            future.result()
    created.finished = time.monotonic()
    return created


def paced(api: KubeApi, namespace: str, manifests: Sequence[Json], rate: float, threads: int) -> Created:
    """One manifest every ``1/rate`` seconds (open loop: a slow answer does not delay the next POST)."""
    created, lock = Created(started=time.monotonic()), threading.Lock()
    with ThreadPoolExecutor(threads, thread_name_prefix="create") as pool:
        futures = []
        for index, manifest in enumerate(manifests):
            planned = created.started + index / rate
            time.sleep(max(0.0, planned - time.monotonic()))
            created.late.append(time.monotonic() - planned)
            futures.append(pool.submit(_post, api, namespace, manifest, created, lock))
        for future in futures:
            future.result()
    created.finished = time.monotonic()
    return created
