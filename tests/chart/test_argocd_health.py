"""Argo CD health checks (charts/modelfleet/argocd/health-checks.yaml), run with Lua through lupa
against hand-written objects for every phase the API defines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml
from modelfleet_api.constants import BenchmarkSweepPhase, ModelDeploymentPhase, TrainingJobPhase

pytestmark = pytest.mark.chart

REPO = Path(__file__).resolve().parents[2]
CHECKS = yaml.safe_load((REPO / "charts" / "modelfleet" / "argocd" / "health-checks.yaml").read_text())[
    "data"
]
KEY = "resource.customizations.health.modelfleet.io_{}"
PHASES = {
    "TrainingJob": TrainingJobPhase,
    "ModelDeployment": ModelDeploymentPhase,
    "BenchmarkSweep": BenchmarkSweepPhase,
}
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended"}


def health(kind: str, obj: dict[str, Any]) -> dict[str, str]:
    """Runs the kind's script the way Argo CD does: `obj` is a global and the chunk returns a table."""
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(CHECKS[KEY.format(kind)])
    return dict(result.items())


def resource(
    kind: str, phase: str | None, conditions: list[dict[str, str]] = (), generation: int = 1
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "llama", "namespace": "ml-team", "generation": generation},
    }
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": 1, "conditions": list(conditions)}
    return obj


def cond(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


MISSING_ACCOUNT = cond(
    "ServiceAccountReady",
    "False",
    "ServiceAccountNotFound",
    "ServiceAccount team-sa (spec.serviceAccountName) does not exist in namespace ml-team",
)
ACCOUNT_MESSAGE = "ServiceAccountNotFound: " + MISSING_ACCOUNT["message"]

CASES = [
    ("TrainingJob", "Pending", [], "Progressing", "Pending"),
    (
        "TrainingJob",
        "Scheduling",
        [cond("Scheduled", "False", "WaitingForCapacity", "0/2 workers scheduled: nc80h100 is scaling up")],
        "Progressing",
        "WaitingForCapacity: 0/2 workers scheduled: nc80h100 is scaling up",
    ),
    (
        "TrainingJob",
        "Running",
        [cond("Running", "True", "AllWorkersRunning", "2/2 workers run")],
        "Progressing",
        "AllWorkersRunning: 2/2 workers run",
    ),
    (
        "TrainingJob",
        "Succeeded",
        [cond("Complete", "True", "TrainingSucceeded", "wrote az://checkpoints/llama")],
        "Healthy",
        "TrainingSucceeded: wrote az://checkpoints/llama",
    ),
    (
        "TrainingJob",
        "Failed",
        [cond("Failed", "True", "BackoffLimitExceeded", "3 restarts failed; see worker-0 logs")],
        "Degraded",
        "BackoffLimitExceeded: 3 restarts failed; see worker-0 logs",
    ),
    (
        "TrainingJob",
        "Suspended",
        [cond("Suspended", "True", "SuspendedByUser", "spec.suspend is true")],
        "Suspended",
        "SuspendedByUser: spec.suspend is true",
    ),
    ("ModelDeployment", "Pending", [], "Progressing", "Pending"),
    (
        "ModelDeployment",
        "Deploying",
        [cond("Progressing", "True", "RolloutInProgress", "1/2 replicas ready")],
        "Progressing",
        "RolloutInProgress: 1/2 replicas ready",
    ),
    (
        "ModelDeployment",
        "Ready",
        [cond("Available", "True", "MinimumReplicasAvailable", "2/2 replicas serve")],
        "Healthy",
        "MinimumReplicasAvailable: 2/2 replicas serve",
    ),
    (
        "ModelDeployment",
        "Degraded",
        [cond("Available", "True", "ReplicasUnavailable", "1/2 replicas serve")],
        "Degraded",
        "ReplicasUnavailable: 1/2 replicas serve",
    ),
    (
        "ModelDeployment",
        "ScaledToZero",
        [cond("Available", "False", "ScaledToZero", "no load for 10m")],
        "Healthy",
        "ScaledToZero: no load for 10m",
    ),
    (
        "ModelDeployment",
        "Failed",
        [cond("Available", "False", "EngineCrashing", "vllm exits: CUDA out of memory")],
        "Degraded",
        "EngineCrashing: vllm exits: CUDA out of memory",
    ),
    ("BenchmarkSweep", "Pending", [], "Progressing", "Pending"),
    ("BenchmarkSweep", "Deploying", [], "Progressing", "Waiting for the target ModelDeployments to be Ready"),
    ("BenchmarkSweep", "Running", [], "Progressing", "Measuring points"),
    (
        "BenchmarkSweep",
        "Succeeded",
        [cond("Complete", "True", "AllPointsMeasured", "12/12 points measured")],
        "Healthy",
        "AllPointsMeasured: 12/12 points measured",
    ),
    (
        "BenchmarkSweep",
        "Failed",
        [cond("Complete", "True", "TargetNotFound", "ModelDeployment llama not found")],
        "Degraded",
        "TargetNotFound: ModelDeployment llama not found",
    ),
    ("TrainingJob", "Pending", [MISSING_ACCOUNT], "Degraded", ACCOUNT_MESSAGE),
    ("ModelDeployment", "Pending", [MISSING_ACCOUNT], "Degraded", ACCOUNT_MESSAGE),
    (
        "ModelDeployment",
        "Degraded",
        [cond("Available", "True", "MinimumReplicasAvailable", "1/1 stable replicas ready"), MISSING_ACCOUNT],
        "Degraded",
        ACCOUNT_MESSAGE,
    ),
    ("BenchmarkSweep", "Pending", [MISSING_ACCOUNT], "Degraded", ACCOUNT_MESSAGE),
]


@pytest.mark.parametrize(
    ("kind", "phase", "conditions", "status", "message"), CASES, ids=lambda v: str(v)[:20]
)
def test_phase_maps_to_argo_health(
    kind: str, phase: str, conditions: list[dict[str, str]], status: str, message: str
) -> None:
    assert health(kind, resource(kind, phase, conditions)) == {"status": status, "message": message}


@pytest.mark.parametrize("kind", sorted(PHASES))
def test_every_api_phase_has_a_case_and_a_known_status(kind: str) -> None:
    covered = {phase for k, phase, *_ in CASES if k == kind}
    assert covered == {p.value for p in PHASES[kind]}
    for phase in PHASES[kind]:
        assert health(kind, resource(kind, phase.value))["status"] in ARGO_STATUSES


@pytest.mark.parametrize("kind", sorted(PHASES))
def test_no_status_yet_is_progressing(kind: str) -> None:
    assert health(kind, resource(kind, None)) == {
        "status": "Progressing",
        "message": "Waiting for the modelfleet operator",
    }


@pytest.mark.parametrize("kind", sorted(PHASES))
def test_status_of_an_older_generation_is_progressing(kind: str) -> None:
    stale = resource(kind, "Failed", [cond("Failed", "True", "InvalidSpec", "bad")], generation=2)
    assert health(kind, stale)["status"] == "Progressing"


def test_unknown_phase_is_reported_not_hidden() -> None:
    assert health("TrainingJob", resource("TrainingJob", "Exploding")) == {
        "status": "Unknown",
        "message": "Unknown phase Exploding",
    }


def test_argocd_examples_point_at_the_chart_and_a_team_path() -> None:
    examples = REPO / "examples" / "argocd"
    chart_app = yaml.safe_load((examples / "modelfleet-operator.yaml").read_text())
    assert chart_app["kind"] == "Application"
    assert chart_app["spec"]["source"]["path"] == "charts/modelfleet"
    assert "ServerSideApply=true" in chart_app["spec"]["syncPolicy"]["syncOptions"]
    team_app = yaml.safe_load((examples / "team-workloads.yaml").read_text())
    assert team_app["spec"]["destination"]["namespace"] == "ml-team"


SAMPLES = Path(__file__).parent / "status-samples"
SAMPLE_HEALTH = {
    "trainingjob-running": "Progressing",
    "trainingjob-succeeded": "Healthy",
    "modeldeployment-ready": "Healthy",
    "benchmarksweep-succeeded": "Healthy",
}
"""Statuses the real controllers wrote in tests/cluster/test_chart_install.py (regenerated there with
UPDATE_STATUS_SAMPLES=1), and the Argo CD health each must map to."""


@pytest.mark.parametrize("name", sorted(SAMPLE_HEALTH))
def test_health_of_status_written_by_the_controllers(name: str) -> None:
    obj = json.loads((SAMPLES / f"{name}.json").read_text())
    assert obj["status"]["conditions"], "a controller's status carries conditions"
    result = health(obj["kind"], obj)
    assert result["status"] == SAMPLE_HEALTH[name], result
    assert result.get("message"), result


def test_every_status_sample_has_an_expected_health() -> None:
    assert {path.stem for path in SAMPLES.glob("*.json")} == set(SAMPLE_HEALTH)
