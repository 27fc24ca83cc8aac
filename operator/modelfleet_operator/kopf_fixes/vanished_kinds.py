"""A fix for kopf's watch of a kind whose CRD is deleted while the operator runs.

The operator watches optional third-party kinds (KEDA's ScaledObjects, Prometheus Operator's
PodMonitors, Gateway API's HTTPRoutes, Kueue's Workloads) when their CRDs are installed. When such a
CRD is deleted (KEDA uninstalled), kopf's CRD observer stops the kind's watcher, but a watch request
can reach the API server first. Its 404 (``APINotFoundError``) ends the watcher task, and kopf 1.45's
orchestrator re-raises a finished watcher's error (``aiotasks.reraise`` in
``kopf._core.reactor.orchestration.orchestrator``): the whole operator exits, and every kind stops
being reconciled until something restarts the process. kopf says as much
(``observation._update_resources``: "we can miss the CRD deletion event and continue the watching
attempts (and fail with HTTP 404)").

A second defect freezes the operator instead: every new object's first pass waits until all
indexed kinds are listed (the operator-wide "indexed" toggle set), and a kind whose CRD appears adds
its own "not listed yet" toggle, dropped only by its watcher once the first list arrives. When the
CRD is deleted before that (a KEDA install and uninstall within seconds, while the API server still
answers 429 "storage is (re)initializing"), kopf cancels the watcher but never drops its toggle
(``orchestration.terminate_redundancies`` drops only the pause flags): from then on no new object of
any kind is reconciled. Seen in the cluster tier: a ModelDeployment created after three KEDA
install/uninstall cycles never got a pass.

Here a watcher whose kind is not served retries the watch after a growing pause (1 s to 30 s); the
observer cancels it once it sees the CRD gone, as kopf intends; if the CRD comes back first, the
watch simply resumes. A watcher that ends for good (cancelled, or any other error, which still ends
the operator as before) drops its kind's "not listed yet" toggle: a kind no longer watched has
nothing left to index.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import errors
from kopf._core.reactor import queueing

from modelfleet_operator.kopf_fixes.shape import keyword_only_with

logger = logging.getLogger(__name__)

_FIXED = "_modelfleet_survives_vanished_kinds"
FIRST_PAUSE_SECONDS = 1.0
LONGEST_PAUSE_SECONDS = 30.0


def surviving_vanished_kinds(watcher: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """``watcher`` (kopf's per-kind watcher coroutine) retried while its kind answers 404, and releasing
    its kind's hold on the operator's readiness when it ends."""

    @functools.wraps(watcher)
    async def retrying(**kwargs: Any) -> None:
        pause = FIRST_PAUSE_SECONDS
        try:
            while True:
                try:
                    await watcher(**kwargs)
                    return
                except errors.APINotFoundError:
                    logger.warning(
                        "%s is not served any more (its CRD was deleted?): its watch is tried again in "
                        "%.0f s and stops once kopf sees the CRD gone",
                        kwargs.get("resource"),
                        pause,
                    )
                await asyncio.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
        finally:
            await _release_readiness(kwargs.get("operator_indexed"), kwargs.get("resource_indexed"))

    setattr(retrying, _FIXED, True)
    return retrying


async def _release_readiness(
    operator_indexed: aiotoggles.ToggleSet | None, resource_indexed: aiotoggles.Toggle | None
) -> None:
    """Drop the kind's "not listed yet" toggle (a no-op when its first list already dropped it)."""
    if operator_indexed is not None and resource_indexed is not None:
        await asyncio.shield(operator_indexed.drop_toggle(resource_indexed))


def install() -> bool:
    """Install the fix once; False when kopf's watcher is not the one it was written for."""
    watcher = queueing.watcher
    if getattr(watcher, _FIXED, False):
        return True
    expected = {"resource", "settings", "processor", "operator_indexed", "resource_indexed"}
    if not keyword_only_with(watcher, expected):
        logger.warning("kopf's watcher changed shape: a deleted CRD's 404 is left to stop the operator")
        return False
    queueing.watcher = surviving_vanished_kinds(watcher)  # type: ignore[assignment]
    return True
