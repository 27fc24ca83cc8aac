"""Quality floors against the real control plane with the operator running: a sweep's bestPerSlo skips
a point under the floor, however fast, and a benchmark-gated canary rolls back when its answers score
under the floor and is promoted when they meet it.

Nothing runs in the kwok pods: the test stands in for the serving engine (kwok makes the server pods
Ready) and for the benchmark runtime (it ends each benchmark pod with the termination message
``modelfleet-bench run`` writes after its quality step, carrying figures and scores the test chose).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c
from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_api.quality import PointQuality, QualitySpec

from hack.controlplane.cluster import ControlPlane
from hack.controlplane.kwok import finish_pod
from tests.cluster.test_benchmarksweep_lifecycle import (
    DEPLOYMENT_EXAMPLE,
    REPO,
    drive_points,
    point_config,
    result,
    sweep_namespace,  # noqa: F401  (fixture)
    wait_sweep,
)
from tests.cluster.test_canary_analysis import ANALYSIS, deployment, wait_rollback_event
from tests.cluster.test_modeldeployment_controller import condition, wait_md

pytestmark = pytest.mark.cluster

QUALITY_EXAMPLE = REPO / "examples" / "benchmarksweep-quality.yaml"
FLOOR = 0.3
GSM8K = "lm-eval/gsm8k/exact_match/strict-match"


def scored(tokens_per_second: float, ttft_ms: float, tpot_ms: float, rouge: float, gsm8k: float = 0.7) -> str:
    """The termination message of a point whose answers scored `rouge` (rougeL) and `gsm8k`."""
    figures = PointMetrics.model_validate_json(result(tokens_per_second, ttft_ms, tpot_ms))
    quality = PointQuality(
        scores={"exactMatch": 0.5, "rougeL": rouge, GSM8K: gsm8k}, meets_floor=rouge >= FLOOR and gsm8k >= 0.6
    )
    return figures.model_copy(update={"quality": quality}).model_dump_json(by_alias=True, exclude_none=True)


def test_best_per_slo_skips_a_faster_point_under_the_quality_floor(
    cluster: ControlPlane,
    sweep_namespace: str,  # noqa: F811  (the fixture imported above)
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    ns = sweep_namespace
    example = yaml.safe_load(QUALITY_EXAMPLE.read_text())
    name = example["metadata"]["name"]
    cluster.kubectl("apply", "-n", ns, "-f", str(DEPLOYMENT_EXAMPLE), "-f", str(QUALITY_EXAMPLE))
    # point 0 (8 users) answers worse than the floor; point 1 (32 users) is slower and meets it
    figures = {0: (900.0, 300.0, 30.0, 0.22), 1: (600.0, 450.0, 40.0, 0.41)}

    def finish(index: int, pod: str) -> None:
        config = point_config(core, ns, name, index)
        assert config.quality == QualitySpec.model_validate(example["spec"]["quality"])
        finish_pod(core, ns, pod, succeeded=True, message=scored(*figures[index]))

    drive_points(core, ns, name, 2, finish, max_running=1)
    sweep = wait_sweep(custom, ns, name, lambda s: s.get("status", {}).get("phase") == "Succeeded", "done")
    status = sweep["status"]
    assert [p["quality"] for p in status["points"]] == [
        {"scores": {"exactMatch": 0.5, "rougeL": 0.22, GSM8K: 0.7}, "meetsFloor": False},
        {"scores": {"exactMatch": 0.5, "rougeL": 0.41, GSM8K: 0.7}, "meetsFloor": True},
    ]
    assert [(b["slo"], b["point"]) for b in status["bestPerSlo"]] == [("all", 1)]
    assert status["bestThroughput"]["point"] == 0
    met = next(x for x in status["conditions"] if x["type"] == c.COND_SLOS_MET)
    assert (met["status"], met["reason"]) == ("True", c.REASON_POINTS_MEET_SLOS)
    assert met["message"].startswith(
        "1 of 2 measured points meet every SLO and every quality floor; the best is"
    )


QUALITY = {
    "referenceSet": {"uri": "az://evals/references.jsonl", "metrics": ["rougeL"]},
    "floors": {"rougeL": FLOOR},
}
ONE_STAGE = {
    **ANALYSIS,
    "benchmark": {**ANALYSIS["benchmark"], "quality": QUALITY},
    "stages": [{"weight": 50, "durationSeconds": 0}],
}
STABLE = [(100.0, 200.0, 20.0, 0.40), (600.0, 400.0, 30.0, 0.40)]


def gated_stage(
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    ns: str,
    name: str,
    canary: list[tuple[float, float, float, float]],
    phase: str,
) -> dict[str, Any]:
    """A deployment whose canary is gated on quality, its one stage measured (stable at `STABLE`, the
    canary at `canary`); the deployment once its analysis reached `phase`."""
    manifest = deployment(name)
    manifest["spec"]["canary"]["analysis"] = ONE_STAGE
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", manifest)
    for track, figures in (("stable", STABLE), ("canary", canary)):
        drive_points(
            core,
            ns,
            f"{name}-a0-{track}",
            len(figures),
            lambda index, pod, figures=figures: finish_pod(
                core, ns, pod, succeeded=True, message=scored(*figures[index])
            ),
            max_running=1,
        )
    return wait_md(
        custom, ns, name, lambda md: (md["status"].get("canaryAnalysis") or {}).get("phase") == phase, phase
    )


def test_a_canary_under_the_quality_floor_is_rolled_back_with_its_score(
    crds: ControlPlane,
    sweep_namespace: str,  # noqa: F811
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    ns, name = sweep_namespace, "gated-quality-low"
    # as fast as stable, within the SLOs, but its answers score under the floor at 8 users
    canary = [(99.0, 205.0, 20.0, 0.35), (590.0, 410.0, 30.0, 0.21)]
    rolled = gated_stage(custom, core, ns, name, canary, "RolledBack")
    found = condition(rolled, c.COND_CANARY_ANALYSIS)
    assert found["reason"] == c.REASON_CANARY_ROLLED_BACK
    assert "at concurrency=8 the canary misses the quality floor: rougeL 0.21 < 0.3" in found["message"]

    wait_rollback_event(core, ns, name, "rougeL 0.21 < 0.3")


def test_a_canary_meeting_the_quality_floor_is_promoted_with_its_scores(
    crds: ControlPlane,
    sweep_namespace: str,  # noqa: F811
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    ns, name = sweep_namespace, "gated-quality-good"
    canary = [(99.0, 205.0, 20.0, 0.41), (590.0, 410.0, 30.0, 0.38)]
    promoted = gated_stage(custom, core, ns, name, canary, "Promoted")
    analysis = promoted["status"]["canaryAnalysis"]
    assert [(s["weight"], s["promoted"]) for s in analysis["stages"]] == [(50, True)]
    message = analysis["stages"][0]["message"]
    assert message.startswith(
        "the canary met every SLO and the quality floor (rougeL >= 0.3) at 2 load levels"
    )
    assert "concurrency=8 (98% of stable's output tokens/s; quality rougeL 0.38 (stable 0.4))" in message
    assert condition(promoted, c.COND_CANARY_ANALYSIS)["reason"] == c.REASON_CANARY_PROMOTED
