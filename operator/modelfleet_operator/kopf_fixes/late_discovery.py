"""A fix for kopf's discovery of a kind whose CRD is installed while the operator runs.

The operator watches optional third-party kinds (Kueue's Workloads, KEDA's ScaledObjects, Gateway
API's HTTPRoutes) once their CRDs are installed, which is often after the operator started. kopf
learns of such a kind from its CRD's watch events: on each one it re-reads the API server's discovery
of the CRD's group and watches what is listed there
(``kopf._core.reactor.observation.process_discovered_resource_event``). But the API server lists a
custom kind in discovery only once its own discovery controller has seen the CRD Established
(``DiscoveryController.sync`` in k8s.io/apiextensions-apiserver skips a CRD that is not), and that
controller works from its own queue: the CRD's last event (``Established=True``) can reach kopf before
discovery lists the kind. kopf's re-read then misses the kind, no later event of the CRD comes, and
the kind is never watched until the operator restarts. That is how CI's two Kueue TrainingJob tests
failed on a loaded machine (Kueue installed after the operator started): a TrainingJob waiting in
Kueue's queue never showed Kueue's reason, nor a preemption, as if its Workload was never seen. The
race is real on this API server: of 90 CRDs created one by one on the local control plane (load
average about 3), 2 were not yet listed by discovery when the watch brought their Established event.

Here an event of a CRD that is Established and not being deleted is handed to kopf only once discovery
lists the CRD's kind in every version it serves: discovery is read again after a growing pause (0.1 s
to 2 s), for at most ``WAIT_SECONDS``; then kopf re-reads it as before and sees the kind. A CRD that
discovery never lists in that time is handed on as it is, with a warning (kopf behaves as without the
fix). Other events (a CRD not Established yet, one being deleted) go to kopf at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kopf._cogs.clients import scanning
from kopf._core.reactor import observation

from modelfleet_operator.kopf_fixes.shape import keyword_only_with

logger = logging.getLogger(__name__)

_FIXED = "_modelfleet_waits_for_discovery"
FIRST_PAUSE_SECONDS = 0.1
LONGEST_PAUSE_SECONDS = 2.0
WAIT_SECONDS = 60.0


def served_kinds(crd: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """(version, plural) of every version discovery must list for an event of this CRD: none while the
    CRD is not Established or is being deleted (discovery is not expected to list it then)."""
    if (crd.get("metadata") or {}).get("deletionTimestamp"):
        return frozenset()
    conditions = (crd.get("status") or {}).get("conditions") or []
    if not any(cond.get("type") == "Established" and cond.get("status") == "True" for cond in conditions):
        return frozenset()
    spec = crd.get("spec") or {}
    plural = (spec.get("names") or {}).get("plural")
    if not plural:
        return frozenset()
    return frozenset(
        (v["name"], plural) for v in spec.get("versions") or [] if v.get("served") and v.get("name")
    )


def waiting_for_discovery(process: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """``process`` (kopf's handler of a CRD event) called once discovery lists the CRD's kind."""

    @functools.wraps(process)
    async def when_listed(*, raw_event: Mapping[str, Any], settings: Any, **kwargs: Any) -> None:
        crd = raw_event.get("object") or {}
        wanted = served_kinds(crd) if raw_event.get("type") is not None else frozenset()
        if wanted:
            await _wait_until_listed(crd["spec"]["group"], wanted, settings, crd["metadata"].get("name"))
        await process(raw_event=raw_event, settings=settings, **kwargs)

    setattr(when_listed, _FIXED, True)
    return when_listed


async def _wait_until_listed(
    group: str, wanted: frozenset[tuple[str, str]], settings: Any, crd_name: str | None
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    give_up = began + WAIT_SECONDS
    pause = FIRST_PAUSE_SECONDS
    reads = 0
    while True:
        listed = await scanning.scan_resources(groups={group}, settings=settings, logger=logger)
        reads += 1
        missing = wanted - {(resource.version, resource.plural) for resource in listed}
        if not missing:
            if reads > 1:
                logger.info(
                    "CRD %s: discovery listed its kind %.1f s after the CRD was Established (read %d times)",
                    crd_name,
                    loop.time() - began,
                    reads,
                )
            return
        if loop.time() + pause > give_up:
            logger.warning(
                "CRD %s is Established but discovery still does not list %s after %.0f s: kopf may not "
                "watch it until its CRD changes again or the operator restarts",
                crd_name,
                ", ".join(f"{plural}.{version}" for version, plural in sorted(missing)),
                WAIT_SECONDS,
            )
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_SECONDS)


def install() -> bool:
    """Install the fix once; False when kopf's CRD event handler is not the one it was written for."""
    process = observation.process_discovered_resource_event
    if getattr(process, _FIXED, False):
        return True
    if not keyword_only_with(process, {"raw_event", "settings", "registry", "insights"}):
        logger.warning("kopf's CRD event handler changed shape: a kind discovered late may go unwatched")
        return False
    # ``resource_observer`` looks the handler up by this module name when it starts, so the fix holds
    # for every observer started after it.
    observation.process_discovered_resource_event = waiting_for_discovery(process)  # type: ignore[assignment]
    return True
