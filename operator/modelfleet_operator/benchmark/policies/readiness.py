"""Whether a target deployment can be measured, must be waited for, or has failed its points.

A target is ready when its ModelDeployment reports an endpoint and is in phase Ready, or ScaledToZero
(available on purpose). The point pods send through the KEDA HTTP add-on's interceptor when it routes
the deployment (``status.interceptor``): their first requests are held while a replica starts, wake it
and are answered. Otherwise they send to ``status.endpoint``, the Service, which does not hold a request
while no replica runs: a target at zero without the add-on is waited for (until the ready timeout) instead
of failing its points' requests. A referenced deployment that does not exist is waited for: the sweep
holds its pending points with ``ReferencesReady=False`` naming it (``common.references``) and goes on
once it appears. One that reports phase Failed, or is not Ready within the ready timeout, fails its
points.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelfleet_api import constants as c

DEFAULT_READY_TIMEOUT = timedelta(hours=1)
"""How long a target may take to become Ready: scheduling on a GPU node, downloading the model and
loading the engine (the ModelDeployment's own startup probe allows an hour)."""

MEASURABLE = (c.ModelDeploymentPhase.READY.value, c.ModelDeploymentPhase.SCALED_TO_ZERO.value)


@dataclass(frozen=True, kw_only=True)
class Readiness:
    ready: bool = False
    failure_reason: str | None = None
    """Set when the target's pending points must fail."""
    message: str = ""


def _available_message(deployment: dict[str, Any]) -> str:
    for cond in (deployment.get("status") or {}).get("conditions") or []:
        if cond.get("type") == c.COND_AVAILABLE:
            return f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": ")
    return "no Available condition"


def readiness(
    deployment: dict[str, Any] | None,
    *,
    name: str,
    owned: bool,
    waiting_since: datetime,
    now: datetime,
    timeout: timedelta = DEFAULT_READY_TIMEOUT,
    track: str | None = None,
) -> Readiness:
    """``track``: the target measures that track of the deployment, ready once a replica of it is."""
    if deployment is None:
        created = "is being created" if owned else "(deploymentRef) does not exist in this namespace"
        return Readiness(message=f"ModelDeployment {name} {created}.")
    status = deployment.get("status") or {}
    phase = status.get("phase")
    if track is not None:
        ready_replicas = (status.get(track) or {}).get("readyReplicas") or 0
        if ready_replicas > 0 and status.get("endpoint"):
            return Readiness(ready=True, message=f"ModelDeployment {name}'s {track} track serves.")
    elif phase in MEASURABLE and status.get("endpoint") and not _unwakeable(status):
        return Readiness(ready=True, message=f"ModelDeployment {name} is {phase} at {status['endpoint']}.")
    if phase == c.ModelDeploymentPhase.FAILED.value:
        return Readiness(
            failure_reason=c.REASON_TARGET_FAILED,
            message=f"ModelDeployment {name} failed ({_available_message(deployment)}).",
        )
    if now - waiting_since > timeout:
        return Readiness(
            failure_reason=c.REASON_POINT_TARGET_NOT_READY,
            message=(
                f"ModelDeployment {name} was not Ready within {int(timeout.total_seconds())} s "
                f"(phase {phase or 'unset'}; {_available_message(deployment)})."
            ),
        )
    if track is None and _unwakeable(status):
        return Readiness(
            message=(
                f"ModelDeployment {name} is scaled to zero and the KEDA HTTP add-on does not route it: a "
                "request would find no replica and fail. Waiting for a replica; install the add-on (its "
                "interceptor then holds the points' requests and wakes it) or set minReplicas to 1 or more."
            )
        )
    waited = f"its {track} track to serve" if track is not None else "Ready"
    return Readiness(message=f"ModelDeployment {name} is {phase or 'Pending'}; waiting for {waited}.")


def _unwakeable(status: dict[str, Any]) -> bool:
    """At zero replicas with nothing to hold a request (no ``status.interceptor``)."""
    return status.get("phase") == c.ModelDeploymentPhase.SCALED_TO_ZERO.value and not status.get(
        "interceptor"
    )
