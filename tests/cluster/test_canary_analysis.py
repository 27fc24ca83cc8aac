"""A benchmark-gated canary against the real control plane with the operator running: the operator
runs the analysis BenchmarkSweeps against the stable and the canary track, reads each point's figures
from its benchmark pod's termination message, and promotes a canary whose figures are good (5 % then
100 %) or rolls back one whose figures are not (weight 0, replicas 0, a Warning with the figures).

Nothing runs in the kwok pods: the test stands in for the serving engine (kwok makes the server pods
Ready) and for the benchmark runtime (it ends each benchmark pod with the termination message
``modelfleet-bench run`` writes, carrying figures the test chose).
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from hack.controlplane.cluster import ControlPlane
from hack.controlplane.kwok import finish_pod
from tests.cluster.conftest import wait_for_event
from tests.cluster.test_benchmarksweep_lifecycle import (
    TIMEOUT,
    drive_points,
    result,
    sweep_namespace,  # noqa: F401  (fixture)
    wait_sweep,
)
from tests.cluster.test_modeldeployment_controller import condition, get_object, wait_md

pytestmark = pytest.mark.cluster

ANALYSIS = {
    "benchmark": {
        "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}},
        "load": {"mode": "closed-loop", "concurrency": [1, 8], "requests": 40},
        "slos": {"ttftP95Ms": 500, "tpotP95Ms": 50},
    },
    "stages": [{"weight": 5, "durationSeconds": 0}, {"weight": 100, "durationSeconds": 0}],
    "maxRegressionPercent": 10,
}
GPU = {"instanceType": "Standard_NC40adis_H100_v5", "gpusPerReplica": 1}


def deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
            "resources": GPU,
            "canary": {"model": {"uri": "org/llama-tuned"}, "analysis": ANALYSIS},
        },
    }


def measure(core: client.CoreV1Api, ns: str, sweep: str, figures: list[tuple[float, float, float]]) -> None:
    """End the sweep's two benchmark pods with these (tokens/s, TTFT p95, TPOT p95) as their result."""
    drive_points(
        core,
        ns,
        sweep,
        len(figures),
        lambda index, pod: finish_pod(core, ns, pod, succeeded=True, message=result(*figures[index])),
        max_running=1,
    )


GOOD = [(100.0, 200.0, 20.0), (600.0, 400.0, 30.0)]


def test_a_good_canary_is_promoted_stage_by_stage(
    crds: ControlPlane,
    sweep_namespace: str,  # noqa: F811  (the fixture imported above)
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    ns, name = sweep_namespace, "gated"
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", deployment(name))
    for stage in (0, 1):
        measure(core, ns, f"{name}-a{stage}-stable", GOOD)
        measure(core, ns, f"{name}-a{stage}-canary", [(98.0, 210.0, 21.0), (590.0, 420.0, 31.0)])
    promoted = wait_md(
        custom,
        ns,
        name,
        lambda md: (md["status"].get("canaryAnalysis") or {}).get("phase") == "Promoted",
        "Promoted",
    )
    analysis = promoted["status"]["canaryAnalysis"]
    assert [(s["weight"], s["promoted"]) for s in analysis["stages"]] == [(5, True), (100, True)]
    assert condition(promoted, c.COND_CANARY_ANALYSIS)["reason"] == c.REASON_CANARY_PROMOTED
    sweep = wait_sweep(
        custom, ns, f"{name}-a1-canary", lambda s: s.get("status", {}).get("phase") == "Succeeded", "done"
    )
    point = sweep["status"]["points"][0]
    assert (point["deployment"], point["track"], point["modelUri"]) == (name, "canary", "org/llama-tuned")
    assert get_object(crds, "service", f"{name}-canary", ns) is not None


def test_a_canary_with_bad_figures_is_rolled_back(
    crds: ControlPlane,
    sweep_namespace: str,  # noqa: F811  (the fixture imported above)
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
) -> None:
    ns, name = sweep_namespace, "gated-bad"
    custom.create_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments", deployment(name))
    measure(core, ns, f"{name}-a0-stable", GOOD)
    measure(core, ns, f"{name}-a0-canary", [(99.0, 205.0, 20.0), (420.0, 700.0, 45.0)])

    rolled = wait_md(
        custom,
        ns,
        name,
        lambda md: (md["status"].get("canaryAnalysis") or {}).get("phase") == "RolledBack",
        "rolled back",
    )
    found = condition(rolled, c.COND_CANARY_ANALYSIS)
    assert found["reason"] == c.REASON_CANARY_ROLLED_BACK
    assert "at concurrency=8 the canary misses the SLOs: ttftP95Ms 700 > 500" in found["message"]
    canary = get_object(crds, "deployment", f"{name}-canary", ns)
    assert canary is not None and canary["spec"]["replicas"] == 0
    wait_rollback_event(core, ns, name, "ttftP95Ms 700 > 500")


def wait_rollback_event(core: client.CoreV1Api, ns: str, name: str, quoting: str) -> None:
    """Wait for the CanaryRolledBack event quoting `quoting`: it is posted after the status write."""
    wait_for_event(core, ns, name, c.REASON_CANARY_ROLLED_BACK, quoting, TIMEOUT)
