"""kopf wiring shared by the controllers: one daemon per object, woken by watch events.

One daemon per object runs the reconcile in a worker thread through ``metrics.reconcile_in_thread``
(so every kind is counted in ``modelfleet_reconcile_*``), then sleeps until woken or until the resync
interval passes (timeouts, stalls and TTLs need a clock, not only events). Events on the object itself
and on the children named in ``Watch`` entries wake its daemon early. One daemon per object means
passes over the same object never overlap; a failed pass is logged and retried after the backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import kopf
from modelfleet_api import GROUP, VERSION

from modelfleet_operator import metrics
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.kube import Manifest

logger = logging.getLogger(__name__)


class Wakeups:
    """An asyncio event per object (namespace, name), set by watch events, awaited by its daemon."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], asyncio.Event] = {}

    def event(self, namespace: str, name: str) -> asyncio.Event:
        return self._events.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        found = self._events.get((namespace, name))
        if found is not None:
            found.set()

    def drop(self, namespace: str, name: str) -> None:
        self._events.pop((namespace, name), None)


def post_event(body: Manifest, type_: str, reason: str, message: str) -> None:
    """A Kubernetes Event on ``body`` (the controllers' ``PostEvent``)."""
    kopf.event(cast(kopf.Body, body), type=type_, reason=reason, message=message)


async def sleep_until_woken(wake: asyncio.Event, stopped: kopf.DaemonStopped, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``wake`` is set or the daemon is stopped; clears ``wake``."""

    async def until_stopped() -> None:
        await stopped.wait()

    waiters = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(until_stopped())}
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        wake.clear()


class Reconciler(Protocol):
    def reconcile(self, namespace: str, name: str) -> None:
        """One pass over the object."""

    def forget(self, uid: str) -> None:
        """Drop what is kept in memory about the object (its daemon ended: deleted, or shutdown)."""


@dataclass(frozen=True)
class Watch:
    """Children whose events wake their owner's daemon: those of ``group/version plural`` carrying
    ``label``, whose value names the owner in the same namespace."""

    group: str
    version: str
    plural: str
    label: str


def register_controller(
    registry: kopf.OperatorRegistry,
    config: OperatorConfig,
    *,
    kind: str,
    plural: str,
    reconciler: Reconciler,
    watches: Sequence[Watch],
) -> None:
    """The daemon of every ``kind`` object and the watch handlers that wake it."""
    wakeups = Wakeups()

    async def daemon(name: str, namespace: str, uid: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
        wake = wakeups.event(namespace, name)
        try:
            while not stopped:
                try:
                    await metrics.reconcile_in_thread(kind, reconciler.reconcile, namespace, name)
                    pause = config.resync_seconds
                except Exception:  # a failed pass is retried; the daemon must outlive API hiccups
                    logger.exception("reconcile of %s %s/%s failed", kind, namespace, name)
                    pause = config.backoff_seconds
                await sleep_until_woken(wake, stopped, pause)
        finally:
            wakeups.drop(namespace, name)
            reconciler.forget(uid)

    def changed(name: str, namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, name)

    kopf.daemon(GROUP, VERSION, plural, id=f"{plural}-daemon", registry=registry, cancellation_timeout=10.0)(
        daemon  # type: ignore[arg-type]
    )
    kopf.on.event(GROUP, VERSION, plural, id=f"{plural}-changed", registry=registry)(changed)  # type: ignore[arg-type]
    for watch in watches:
        kopf.on.event(
            watch.group,
            watch.version,
            watch.plural,
            id=f"{plural}-{watch.plural}-changed",
            labels={watch.label: kopf.PRESENT},
            registry=registry,
        )(_child_changed(wakeups, watch.label))


def _child_changed(wakeups: Wakeups, label: str) -> Callable[..., None]:
    def child_changed(labels: dict[str, str], namespace: str, **_: Any) -> None:
        wakeups.wake(namespace, labels[label])

    return child_changed
