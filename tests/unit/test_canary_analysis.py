"""A ModelDeployment's benchmark-gated canary over an in-memory API: at each stage the canary gets the
stage's weight, two owned BenchmarkSweeps measure the stable and the canary track, and once both ended
and the stage's duration passed the canary moves to the next stage or is rolled back (weight 0, its
replicas 0, a Warning naming the figures). The sweeps' results are set by the test, standing in for
the benchmark pods (the cluster tier reads them from the pods' termination messages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.serving import EngineType
from modelfleet_operator.config import OperatorConfig
from modelfleet_operator.serving.reconcile import ModelDeploymentController

from tests.unit.fake_kube import FakeKube, Harness

pytestmark = pytest.mark.unit

NS = "team-a"
T0 = datetime(2026, 11, 22, 9, 0, 0, tzinfo=UTC)
ANALYSIS = {
    "benchmark": {
        "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}},
        "load": {"mode": "closed-loop", "concurrency": [1, 8], "requests": 40},
        "slos": {"ttftP95Ms": 500},
    },
    "stages": [{"weight": 5, "durationSeconds": 600}, {"weight": 100, "durationSeconds": 0}],
    "maxRegressionPercent": 10,
}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def make(kube: FakeKube, clock: Clock) -> Harness:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llm", "namespace": NS, "uid": "md-uid", "generation": 1},
        "spec": {
            "model": {"uri": "org/model-v1"},
            "canary": {"model": {"uri": "org/model-v2"}, "analysis": ANALYSIS},
        },
    }
    return Harness(
        kube,
        ModelDeploymentController(OperatorConfig(serving_images=dict.fromkeys(EngineType, "serve:1"))),
        body,
        clock,
    )


def ready(kube: FakeKube) -> None:
    for track in ("stable", "canary"):
        deployment = kube.objects[("Deployment", NS, f"llm-{track}")]
        replicas = deployment["spec"]["replicas"]
        deployment["status"] = {"readyReplicas": replicas, "updatedReplicas": replicas, "replicas": replicas}


def finish_sweep(kube: FakeKube, name: str, figures: list[tuple[float, float]]) -> None:
    """The sweep's status as its controller writes it once the benchmark pods reported (test figures)."""
    sweep = kube.objects[("BenchmarkSweep", NS, name)]
    sweep["status"] = {
        "phase": "Succeeded",
        "points": [
            {
                "index": i,
                "target": name,
                "load": f"concurrency={level}",
                "phase": "Succeeded",
                "outputTokensPerSecond": tps,
                "ttftP95Ms": ttft,
                "meetsSlos": ttft <= 500,
            }
            for i, (level, (tps, ttft)) in enumerate(zip((1, 8), figures, strict=True))
        ],
    }


def route(kube: FakeKube) -> dict[str, int]:
    config = kube.objects[("Service", NS, "llm-canary")]
    assert config["spec"]["selector"][c.LABEL_TRACK] == "canary", "each track has its own Service"
    return {}


def analysis(md: Harness) -> dict[str, Any]:
    found: dict[str, Any] = md.status["canaryAnalysis"]
    return found


def test_a_good_canary_passes_every_stage_and_is_promoted() -> None:
    kube, clock = FakeKube(), Clock()
    md = make(kube, clock)
    md.reconcile()
    md.reconcile()
    assert analysis(md)["weight"] == 5 and analysis(md)["sweeps"] == []
    assert md.conditions()[c.COND_CANARY_ANALYSIS] == ("False", c.REASON_STAGE_IN_PROGRESS)
    route(kube)

    ready(kube)
    md.reconcile()
    sweep = kube.objects[("BenchmarkSweep", NS, "llm-a0-canary")]
    assert sweep["spec"]["targets"] == [{"name": "canary", "deploymentRef": "llm", "track": "canary"}]
    load = ANALYSIS["benchmark"]["load"]
    assert {key: sweep["spec"]["load"][key] for key in load} == load
    assert sweep["metadata"]["ownerReferences"][0]["uid"] == "md-uid"
    assert analysis(md)["stageStartedAt"] == "2026-11-22T09:00:00Z"

    finish_sweep(kube, "llm-a0-stable", [(100.0, 200.0), (600.0, 400.0)])
    finish_sweep(kube, "llm-a0-canary", [(98.0, 210.0), (590.0, 420.0)])
    md.reconcile()
    assert analysis(md)["stage"] == 0, "measured, but the stage's 600 s have not passed"
    assert md.requeue_at == T0 + timedelta(seconds=600)

    clock.now = T0 + timedelta(seconds=600)
    md.reconcile()
    assert (analysis(md)["stage"], analysis(md)["weight"]) == (1, 100)
    assert ("Normal", c.REASON_CANARY_STAGE_PASSED) in md.events
    assert analysis(md)["stages"][0]["promoted"] is True

    md.reconcile()  # the second stage's sweeps; the first stage's are kept as evidence
    assert ("BenchmarkSweep", NS, "llm-a0-canary") in kube.objects
    finish_sweep(kube, "llm-a1-stable", [(100.0, 200.0), (600.0, 400.0)])
    finish_sweep(kube, "llm-a1-canary", [(101.0, 190.0), (640.0, 380.0)])
    md.reconcile()
    assert analysis(md)["phase"] == "Promoted"
    assert md.conditions()[c.COND_CANARY_ANALYSIS] == ("True", c.REASON_CANARY_PROMOTED)
    assert kube.objects[("Deployment", NS, "llm-canary")]["spec"]["replicas"] == 1


def test_a_slower_canary_is_rolled_back_with_the_figures() -> None:
    kube, clock = FakeKube(), Clock()
    md = make(kube, clock)
    md.reconcile()
    ready(kube)
    md.reconcile()
    finish_sweep(kube, "llm-a0-stable", [(100.0, 200.0), (600.0, 400.0)])
    finish_sweep(kube, "llm-a0-canary", [(99.0, 205.0), (420.0, 480.0)])
    clock.now = T0 + timedelta(seconds=601)

    md.reconcile()

    assert analysis(md)["phase"] == "RolledBack" and analysis(md)["weight"] == 0
    assert kube.objects[("Deployment", NS, "llm-canary")]["spec"]["replicas"] == 0
    condition = next(x for x in md.status["conditions"] if x["type"] == c.COND_CANARY_ANALYSIS)
    assert condition["reason"] == c.REASON_CANARY_ROLLED_BACK
    assert condition["message"] == (
        "Rolled back at stage 1 (5%): at concurrency=8 the canary is worse than stable: output tokens/s "
        "420 is 70% of stable's 600 (at least 90% allowed); ttftP95Ms 480 is 120% of stable's 400 (at most "
        "110% allowed). The canary gets no requests and its replicas are scaled to 0; change spec.canary "
        "to try another."
    )
    assert ("Warning", c.REASON_CANARY_ROLLED_BACK) in md.events
    md.reconcile()
    assert analysis(md)["phase"] == "RolledBack", "stays rolled back for this canary"

    md.body["spec"]["canary"]["model"]["uri"] = "org/model-v3"  # a new canary starts over
    md.body["metadata"]["generation"] = 2
    md.reconcile()
    assert (analysis(md)["phase"], analysis(md)["stage"], analysis(md)["stages"]) == ("Progressing", 0, [])


def test_a_sweep_held_up_says_why_in_the_analysis_condition() -> None:
    """A stage's sweep whose benchmark pod the scheduler cannot place (its PointsScheduled condition,
    set here as the sweep's controller would) is named with its words in the CanaryAnalysis message."""
    kube, clock = FakeKube(), Clock()
    md = make(kube, clock)
    md.reconcile()
    ready(kube)
    md.reconcile()
    held = "point 0: benchmark pod llm-a0-canary-point-0-x cannot be scheduled (0/1 nodes are available)."
    kube.objects[("BenchmarkSweep", NS, "llm-a0-canary")]["status"] = {
        "phase": "Running",
        "conditions": [
            {"type": c.COND_POINTS_SCHEDULED, "status": "False", "reason": "Unschedulable", "message": held}
        ],
    }
    md.reconcile()
    found = next(x for x in md.status["conditions"] if x["type"] == c.COND_CANARY_ANALYSIS)
    assert found["message"] == (
        "Stage 1 of 2 (5%): measuring both tracks (BenchmarkSweeps llm-a0-stable and llm-a0-canary); "
        f"llm-a0-canary: {held}"
    )
