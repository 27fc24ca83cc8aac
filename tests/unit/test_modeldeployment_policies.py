"""ModelDeployment policies: pod problems, start-up breakdown, phase, engine metrics, launcher checks."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api import constants as c
from modelfleet_api.engines import COMMANDS
from modelfleet_api.modeldeployment import AutoscalingMetric
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_operator.serving.engines import HEALTH_PATHS, launch_problem
from modelfleet_operator.serving.policies.metrics import ENGINE_METRICS, engine_metric
from modelfleet_operator.serving.policies.phase import TrackState, assess
from modelfleet_operator.serving.policies.pods import PodProblem, find_problem, startup_breakdown

pytestmark = pytest.mark.unit

CREATED = "2026-01-01T00:00:00Z"


def pod(name: str = "m-stable-1", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "creationTimestamp": CREATED}, "status": status}


def cond(type_: str, status: str, at: str = CREATED, **extra: str) -> dict[str, str]:
    return {"type": type_, "status": status, "lastTransitionTime": at, **extra}


CRASHING = {
    "name": "server",
    "restartCount": 4,
    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "message": "CUDA out of memory"}},
}


def test_crash_loop_is_the_most_severe_problem_and_names_the_logs() -> None:
    pending = pod("m-stable-a", conditions=[cond("PodScheduled", "False", reason="Unschedulable",
                                                 message="0/4 nodes have free nvidia.com/gpu")])  # fmt: skip
    crashing = pod("m-stable-b", containerStatuses=[CRASHING])
    assert find_problem([pending, crashing]) == PodProblem(
        reason=c.REASON_ENGINE_CRASHING,
        pod="m-stable-b",
        message=(
            "Pod m-stable-b: the engine keeps restarting (4 restarts; last exit code 1 (Error): CUDA out of "
            "memory). See kubectl logs m-stable-b -c server --previous."
        ),
    )
    assert find_problem([pending]) == PodProblem(
        reason=c.REASON_UNSCHEDULABLE,
        pod="m-stable-a",
        message=(
            "Pod m-stable-a cannot be scheduled: 0/4 nodes have free nvidia.com/gpu. Wait for capacity, or "
            "change spec.resources (instanceType, nodePool, spot)."
        ),
    )


def test_failed_download_and_image_pull_are_reported() -> None:
    init = {
        "name": "model-download",
        "restartCount": 2,
        "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
    }
    problem = find_problem([pod(initContainerStatuses=[init])])
    assert problem is not None and problem.reason == c.REASON_MODEL_DOWNLOAD_FAILED
    assert "kubectl logs m-stable-1 -c model-download" in problem.message
    pulling = {"name": "server", "state": {"waiting": {"reason": "ImagePullBackOff", "message": "not found"}}}
    problem = find_problem([pod(containerStatuses=[pulling])])
    assert problem is not None and problem.reason == c.REASON_REPLICAS_UNAVAILABLE
    assert (
        problem.message
        == "Pod m-stable-1: ImagePullBackOff: not found. Check spec.image and the pull secret."
    )
    assert find_problem([]) is None


def test_startup_breakdown_of_the_newest_pod() -> None:
    old = pod("m-stable-old")
    new = {
        "metadata": {"name": "m-stable-new", "creationTimestamp": "2026-01-01T00:01:00Z"},
        "status": {
            "conditions": [
                cond("PodScheduled", "True", "2026-01-01T00:01:02Z"),
                cond("ContainersReady", "True", "2026-01-01T00:04:00Z"),
                cond("Ready", "True", "2026-01-01T00:04:01Z"),
            ],
            "initContainerStatuses": [
                {
                    "name": "model-download",
                    "state": {"terminated": {"exitCode": 0, "finishedAt": "2026-01-01T00:02:30Z"}},
                }
            ],
        },
    }
    assert startup_breakdown([old, new]) == {
        "pod": "m-stable-new",
        "scheduledSeconds": 2.0,
        "modelDownloadedSeconds": 90.0,
        "engineLoadedSeconds": 180.0,
        "readySeconds": 181.0,
    }
    assert startup_breakdown([pod(conditions=[cond("PodScheduled", "True")])]) == {
        "pod": "m-stable-1",
        "scheduledSeconds": 0.0,
    }


def track(name: str = c.TRACK_STABLE, *, desired: int = 2, ready: int = 2, updated: int = 2) -> TrackState:
    return TrackState(name=name, exists=True, desired=desired, ready=ready, updated=updated)


CRASH = PodProblem(reason=c.REASON_ENGINE_CRASHING, pod="p", message="Pod p: the engine keeps restarting.")


@pytest.mark.parametrize(
    ("tracks", "problem", "phase", "available"),
    [
        ([TrackState(name="stable", exists=False, desired=0, ready=0, updated=0)], None, "Pending",
         ("False", c.REASON_REPLICAS_UNAVAILABLE)),
        ([track(desired=0, ready=0, updated=0)], None, "ScaledToZero", ("True", c.REASON_SCALED_TO_ZERO)),
        ([track()], None, "Ready", ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)),
        ([track(ready=0)], None, "Deploying", ("False", c.REASON_REPLICAS_UNAVAILABLE)),
        ([track(ready=1)], None, "Deploying", ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)),
        ([track(ready=0)], CRASH, "Degraded", ("False", c.REASON_ENGINE_CRASHING)),
        ([track(ready=1)], CRASH, "Degraded", ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)),
        ([track(), track(c.TRACK_CANARY, desired=1, ready=0, updated=1)], None, "Deploying",
         ("True", c.REASON_MINIMUM_REPLICAS_AVAILABLE)),
    ],
)  # fmt: skip
def test_phase_and_availability(
    tracks: list[TrackState], problem: PodProblem | None, phase: str, available: tuple[str, str]
) -> None:
    verdict = assess(tracks, problem, canary_weight=10 if len(tracks) > 1 else None)
    assert verdict.phase == phase
    assert ("True" if verdict.available.status else "False", verdict.available.reason) == available


def test_progressing_and_canary_conditions() -> None:
    rolling = assess([track(updated=1), track(c.TRACK_CANARY, desired=1, ready=1, updated=1)], None,
                     canary_weight=10)  # fmt: skip
    assert (rolling.progressing.status, rolling.progressing.reason) == (True, c.REASON_ROLLOUT_IN_PROGRESS)
    assert rolling.progressing.message == "Replicas are starting: stable 2/2 ready, 1 updated."
    assert rolling.canary is not None and rolling.canary.reason == c.REASON_CANARY_SERVING
    assert rolling.canary.message == "The canary's 1 replica(s) serve 10% of requests."
    done = assess([track()], None, canary_weight=None)
    assert (done.progressing.status, done.progressing.reason, done.canary) == (
        False,
        c.REASON_ROLLOUT_COMPLETE,
        None,
    )


def test_engine_metric_table() -> None:
    queue = engine_metric(EngineType.VLLM, AutoscalingMetric.QUEUE_DEPTH)
    assert queue is not None and queue.query("ns", "m-stable") == (
        'sum(vllm:num_requests_waiting{namespace="ns",pod=~"m-stable-.*"})'
    )
    rate = engine_metric(EngineType.TGI, AutoscalingMetric.REQUESTS_PER_SECOND)
    assert rate is not None and rate.adapter_name == "tgi_request_count"
    assert (
        rate.query("ns", "m-stable") == 'sum(rate(tgi_request_count{namespace="ns",pod=~"m-stable-.*"}[1m]))'
    )
    assert engine_metric(EngineType.TGI, AutoscalingMetric.KV_CACHE_USAGE) is None
    assert set(ENGINE_METRICS) == set(EngineType)


def test_probe_paths_are_the_ones_the_launcher_watches() -> None:
    assert {engine: command.health_path for engine, command in COMMANDS.items()} == HEALTH_PATHS
    assert HEALTH_PATHS[EngineType.TRITON_TRTLLM] == "/v2/health/ready"


def test_launch_problem_names_the_field_the_engine_refuses() -> None:
    def config(**fields: Any) -> ServingRuntimeConfig:
        return ServingRuntimeConfig.model_validate({"model": {"uri": "org/m"}, "servedModelName": "org/m",
                                                    **fields})  # fmt: skip

    assert launch_problem(config(engine={"type": "vllm", "settings": {"maxModelLength": 4096}})) is None
    assert launch_problem(config(engine={"type": "transformers"}, apiKeyEnv="KEY"), "canary: ") == (
        "canary: apiKeyEnv is not supported by engine transformers (it has no API keys)"
    )
    assert launch_problem(config(engine={"type": "transformers"}, servedModelName="org/m:main")) == (
        "servedModelName 'org/m:main': engine transformers serves under a relative path: segments of "
        "letters, digits, '.', '_' and '-' joined by '/', none starting with '.', no '@' or ':'"
    )
