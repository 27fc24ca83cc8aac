"""The benchmark-gated promotion of a canary (``spec.canary.analysis``): one plan step of the
ModelDeployment controller (pure).

Per stage: the canary serves at the stage's weight once its replicas are ready; two BenchmarkSweeps
owned by the ModelDeployment measure the stable and the canary track with the analysis benchmark
(``<name>-a<stage>-stable``, ``<name>-a<stage>-canary``); when both have ended and the stage's
duration has passed since the canary got its weight, ``policies.canary.decide`` promotes it to the
next stage (after the last: Promoted, it keeps that weight) or rolls it back (weight 0, its replicas
scaled to 0). Every decision is recorded in ``status.canaryAnalysis.stages`` and posted as an event
with the figures that decided it.

The analysis belongs to one canary: its fingerprint (the canary's resolved runtime config, image,
replicas and the analysis spec) is kept in the status, and a new one starts over from the first stage;
sweeps made for another fingerprint are pruned before new ones are made under their names. The
sweeps of decided stages are kept as the evidence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelfleet_api import API_VERSION
from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import PointStatus
from modelfleet_api.canary import AnalysisPhase, CanaryAnalysis, CanaryAnalysisStatus, StageResult
from modelfleet_api.modeldeployment import ModelDeploymentSpec

from modelfleet_operator.common.owner import metadata
from modelfleet_operator.common.plan import ChildKey, Draft, Event
from modelfleet_operator.serving.builders import Owner, Track, config_hash, runtime_config
from modelfleet_operator.serving.policies.canary import decide

Manifest = dict[str, Any]
ANALYSIS_ANNOTATION = "modelfleet.io/canary-analysis"
"""On an analysis sweep: ``<fingerprint>/<stage>`` it was made for."""
ENDED = ("Succeeded", "Failed")
TRACKS = (c.TRACK_STABLE, c.TRACK_CANARY)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    status: CanaryAnalysisStatus
    weight: int
    """The canary's share of requests now."""
    canary_replicas: int | None = None
    """0 once rolled back; None: the spec's."""
    sweeps: list[Manifest] = field(default_factory=list)
    keep: frozenset[ChildKey] = frozenset()
    requeue_at: datetime | None = None


def fingerprint(owner: Owner, spec: ModelDeploymentSpec, canary: Track, analysis: CanaryAnalysis) -> str:
    """What the analysis judges: the canary's resolved config, image and replicas, and the analysis."""
    wire = {
        "config": config_hash(runtime_config(owner, spec, canary)),
        "image": canary.image,
        "replicas": canary.replicas,
        "analysis": analysis.to_wire(),
    }
    return hashlib.sha256(json.dumps(wire, sort_keys=True).encode()).hexdigest()[:16]


def sweep_name(owner: Owner, stage: int, track: str) -> str:
    return f"{owner.name}-a{stage}-{track}"


def analysis_sweep(owner: Owner, analysis: CanaryAnalysis, stage: int, track: str, print_: str) -> Manifest:
    """The BenchmarkSweep measuring one track at one stage."""
    meta = metadata(owner, sweep_name(owner, stage, track), c.COMPONENT_ANALYSIS, {c.LABEL_TRACK: track})
    meta["annotations"] = {ANALYSIS_ANNOTATION: f"{print_}/{stage}"}
    return {
        "apiVersion": API_VERSION,
        "kind": "BenchmarkSweep",
        "metadata": meta,
        "spec": {
            **analysis.benchmark.to_wire(),
            "targets": [{"name": track, "deploymentRef": owner.name, "track": track}],
        },
    }


def _points(sweep: Manifest | None) -> list[PointStatus]:
    return [PointStatus.model_validate(p) for p in ((sweep or {}).get("status") or {}).get("points") or []]


def analyze(
    draft: Draft[Any],
    owner: Owner,
    analysis: CanaryAnalysis,
    previous: CanaryAnalysisStatus | None,
    print_: str,
    *,
    canary_ready: bool,
    sweeps: Mapping[str, Manifest],
) -> Outcome:
    """This pass's step of the analysis; sets the CanaryAnalysis condition on ``draft``."""
    now = draft.now
    status = (
        previous
        if previous is not None and previous.canary == print_
        else CanaryAnalysisStatus(canary=print_)
    )
    status = status.model_copy(deep=True)
    stages = analysis.stages
    decided = frozenset(
        ("BenchmarkSweep", sweep_name(owner, result.stage, track))
        for result in status.stages
        for track in TRACKS
    )
    if status.phase is AnalysisPhase.ROLLED_BACK:
        status.weight = 0
        last = status.stages[-1].message if status.stages else ""
        draft.condition(
            c.COND_CANARY_ANALYSIS, False, c.REASON_CANARY_ROLLED_BACK, _rolled_back(status, last)
        )
        return Outcome(status=status, weight=0, canary_replicas=0, keep=decided)
    if status.phase is AnalysisPhase.PROMOTED:
        status.weight = stages[-1].weight
        message = f"Every stage passed; the canary serves {status.weight}% of requests. {_finish_hint()}"
        draft.condition(c.COND_CANARY_ANALYSIS, True, c.REASON_CANARY_PROMOTED, message)
        return Outcome(status=status, weight=status.weight, keep=decided)

    stage = stages[status.stage]
    status.weight = stage.weight
    label = f"Stage {status.stage + 1} of {len(stages)} ({stage.weight}%)"
    if not canary_ready:
        status.stage_started_at = None
        status.sweeps = []
        message = f"{label}: waiting for the canary's replicas to be ready before it gets traffic."
        draft.condition(c.COND_CANARY_ANALYSIS, False, c.REASON_STAGE_IN_PROGRESS, message)
        return Outcome(status=status, weight=stage.weight, keep=decided)
    if status.stage_started_at is None:
        status.stage_started_at = now
    wanted = [analysis_sweep(owner, analysis, status.stage, track, print_) for track in TRACKS]
    status.sweeps = [m["metadata"]["name"] for m in wanted]
    stale = [
        name
        for name in status.sweeps
        if name in sweeps
        and (sweeps[name]["metadata"].get("annotations") or {}).get(ANALYSIS_ANNOTATION)
        != f"{print_}/{status.stage}"
    ]
    due = status.stage_started_at + timedelta(seconds=stage.duration_seconds)
    if stale:  # made for another canary: pruned by this pass, made anew by the next
        message = f"{label}: replacing the sweeps of an earlier canary ({', '.join(stale)})."
        draft.condition(c.COND_CANARY_ANALYSIS, False, c.REASON_STAGE_IN_PROGRESS, message)
        return Outcome(status=status, weight=stage.weight, keep=decided, requeue_at=now)
    ended = all((sweeps.get(name, {}).get("status") or {}).get("phase") in ENDED for name in status.sweeps)
    if not ended or now < due:
        waiting = f"measuring both tracks (BenchmarkSweeps {' and '.join(status.sweeps)})"
        waiting += "".join(f"; {held}" for held in _held_up(sweeps, status.sweeps))
        if ended:
            waiting = f"measured; deciding at {due.isoformat()} (durationSeconds {stage.duration_seconds})"
        draft.condition(c.COND_CANARY_ANALYSIS, False, c.REASON_STAGE_IN_PROGRESS, f"{label}: {waiting}.")
        return Outcome(
            status=status, weight=stage.weight, sweeps=wanted, keep=decided, requeue_at=due if ended else None
        )

    stable_points, canary_points = (_points(sweeps.get(name)) for name in status.sweeps)
    decision = decide(
        stable_points,
        canary_points,
        analysis.benchmark.slos,
        analysis.max_regression_percent,
        analysis.benchmark.quality,
    )
    status.stages.append(
        StageResult(
            stage=status.stage,
            weight=stage.weight,
            promoted=decision.promote,
            message=decision.message,
            decided_at=now,
        )
    )
    keep = decided | {("BenchmarkSweep", name) for name in status.sweeps}
    if not decision.promote:
        status.phase, status.weight = AnalysisPhase.ROLLED_BACK, 0
        message = _rolled_back(status, decision.message)
        draft.condition(c.COND_CANARY_ANALYSIS, False, c.REASON_CANARY_ROLLED_BACK, message)
        return Outcome(status=status, weight=0, canary_replicas=0, keep=keep)
    draft.events.append(
        Event(
            type="Normal", reason=c.REASON_CANARY_STAGE_PASSED, message=f"{label} passed: {decision.message}."
        )
    )
    if status.stage + 1 == len(stages):
        status.phase = AnalysisPhase.PROMOTED
        message = f"Every stage passed; the canary serves {status.weight}% of requests. {_finish_hint()}"
        draft.condition(c.COND_CANARY_ANALYSIS, True, c.REASON_CANARY_PROMOTED, message)
        return Outcome(status=status, weight=status.weight, keep=keep)
    status.stage += 1
    status.stage_started_at = now
    status.weight = stages[status.stage].weight
    message = f"{label} passed; stage {status.stage + 1} gives the canary {status.weight}% of requests."
    draft.condition(c.COND_CANARY_ANALYSIS, False, c.REASON_STAGE_IN_PROGRESS, message)
    return Outcome(status=status, weight=status.weight, keep=keep, requeue_at=now)


HOLDING_CONDITIONS = (c.COND_POINTS_SCHEDULED, c.COND_TARGETS_READY, c.COND_REFERENCES_READY)
"""A sweep's conditions that, when False, say what its points wait for."""


def _held_up(sweeps: Mapping[str, Manifest], names: list[str]) -> list[str]:
    """What holds up each of ``names`` not yet ended, in its own conditions' words."""
    found = []
    for name in names:
        swept = (sweeps.get(name) or {}).get("status") or {}
        if swept.get("phase") in ENDED:
            continue
        found += [
            f"{name}: {(cond.get('message') or cond.get('reason') or '').rstrip('.')}"
            for cond in swept.get("conditions") or []
            if cond.get("type") in HOLDING_CONDITIONS and cond.get("status") == c.CONDITION_FALSE
        ]
    return found


def _rolled_back(status: CanaryAnalysisStatus, why: str) -> str:
    weight = status.stages[-1].weight if status.stages else 0
    return (
        f"Rolled back at stage {status.stage + 1} ({weight}%): {why}. The canary gets no requests and its "
        "replicas are scaled to 0; change spec.canary to try another."
    )


def _finish_hint() -> str:
    return (
        "Make it the stable track: move spec.canary.model (engine, image) to spec.model and remove "
        "spec.canary."
    )
