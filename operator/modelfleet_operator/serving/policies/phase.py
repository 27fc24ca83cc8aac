"""From the tracks' replica counts and the pods' problem to a phase and the Available, Progressing and
CanaryReady conditions (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelfleet_api import constants as c
from modelfleet_api.constants import ModelDeploymentPhase as Phase

from modelfleet_operator.serving.policies.pods import PodProblem

BROKEN = frozenset({c.REASON_ENGINE_CRASHING, c.REASON_MODEL_DOWNLOAD_FAILED})
"""Problems that do not go away by waiting: the phase is Degraded until they are fixed."""


@dataclass(frozen=True, kw_only=True)
class TrackState:
    name: str
    exists: bool
    """The track's Deployment exists (and is not being deleted)."""
    desired: int
    """The Deployment's replicas: fixed, or the autoscaler's choice."""
    ready: int
    updated: int
    """Replicas running the current pod template."""


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """A condition to set: status, CamelCase reason, and a message saying what to do."""

    status: bool
    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Assessment:
    phase: Phase
    available: Verdict
    progressing: Verdict
    canary: Verdict | None


def _progressing(tracks: Sequence[TrackState]) -> Verdict:
    behind = [t for t in tracks if t.updated < t.desired or t.ready < t.desired]
    if behind:
        detail = ", ".join(f"{t.name} {t.ready}/{t.desired} ready, {t.updated} updated" for t in behind)
        return Verdict(
            status=True, reason=c.REASON_ROLLOUT_IN_PROGRESS, message=f"Replicas are starting: {detail}."
        )
    return Verdict(
        status=False, reason=c.REASON_ROLLOUT_COMPLETE, message="Every replica runs the current spec."
    )


def _canary(tracks: Sequence[TrackState], weight: int | None) -> Verdict | None:
    canary = next((t for t in tracks if t.name == c.TRACK_CANARY), None)
    if canary is None or weight is None:
        return None
    if canary.exists and canary.desired > 0 and canary.ready >= canary.desired:
        return Verdict(
            status=True,
            reason=c.REASON_CANARY_SERVING,
            message=f"The canary's {canary.ready} replica(s) serve {weight}% of requests.",
        )
    return Verdict(
        status=False,
        reason=c.REASON_CANARY_NOT_READY,
        message=(
            f"The canary has {canary.ready}/{canary.desired} ready replicas; with Gateway API it gets no "
            f"traffic until they are ready. Remove spec.canary to roll back."
        ),
    )


def assess(
    tracks: Sequence[TrackState],
    problem: PodProblem | None,
    *,
    canary_weight: int | None,
    at_zero: str | None = None,
) -> Assessment:
    """``tracks`` starts with the stable track; ``canary_weight`` is set with ``spec.canary``;
    ``at_zero`` says what happens to a request while the autoscaler holds no replica."""
    stable = tracks[0]
    progressing = _progressing(tracks)
    canary = _canary(tracks, canary_weight)
    if not stable.exists:
        waiting = Verdict(
            status=False, reason=c.REASON_REPLICAS_UNAVAILABLE, message="Creating the serving Deployment."
        )
        return Assessment(phase=Phase.PENDING, available=waiting, progressing=progressing, canary=canary)
    ready = f"{stable.ready}/{stable.desired} stable replicas ready"
    if stable.desired == 0:
        available = Verdict(
            status=True,
            reason=c.REASON_SCALED_TO_ZERO,
            message=f"No replica runs (scaled to zero). {at_zero or 'No autoscaler wakes it.'}",
        )
        return Assessment(
            phase=Phase.SCALED_TO_ZERO, available=available, progressing=progressing, canary=canary
        )
    if stable.ready > 0:
        available = Verdict(status=True, reason=c.REASON_MINIMUM_REPLICAS_AVAILABLE, message=f"{ready}.")
    elif problem is not None:
        available = Verdict(status=False, reason=problem.reason, message=problem.message)
    else:
        available = Verdict(
            status=False,
            reason=c.REASON_REPLICAS_UNAVAILABLE,
            message=f"{ready}; replicas are being scheduled, downloading the model or loading the engine.",
        )
    if problem is not None and problem.reason in BROKEN:
        if available.status:
            available = Verdict(status=True, reason=available.reason, message=f"{ready}. {problem.message}")
        return Assessment(phase=Phase.DEGRADED, available=available, progressing=progressing, canary=canary)
    if all(t.ready >= t.desired for t in tracks):
        return Assessment(phase=Phase.READY, available=available, progressing=progressing, canary=canary)
    return Assessment(phase=Phase.DEPLOYING, available=available, progressing=progressing, canary=canary)
