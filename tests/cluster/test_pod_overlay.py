"""The API server accepts the pods the TrainingJob and BenchmarkSweep builders make with every pod
addition (server-side dry runs of the built Job; the ModelDeployment's is applied by the operator in
``test_modeldeployment_controller``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.training import builders as training

from hack.controlplane.cluster import ControlPlane
from tests.cluster.manifest_cases import EVERYTHING_ADDED
from tests.unit.test_pod_overlay import point_job, sweep

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def dry_run(crds: ControlPlane) -> Iterator[Any]:
    namespace = f"t-pod-overlay-{uuid.uuid4().hex[:5]}"
    crds.kubectl("create", "namespace", namespace)

    def apply(manifest: dict[str, Any]) -> str:
        manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
        manifest["metadata"].pop("ownerReferences", None)
        done = crds.kubectl("apply", "--dry-run=server", "-f", "-", "-o", "json", input=json.dumps(manifest))
        return done.stdout

    try:
        yield apply
    finally:
        crds.kubectl("delete", "namespace", namespace, "--wait=false")


def test_training_job_with_every_pod_addition_is_accepted(dry_run: Any) -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "model": {"uri": "meta-llama/Llama-3.1-8B", "tokenSecret": {"name": "hf-token"}},
            "dataset": {"uri": "az://data/chat.jsonl"},
            "output": {"uri": "az://out/lora"},
            "resources": {"instanceType": "Standard_NC80adis_H100_v5", "gpusPerNode": 2, "spot": True},
            "podTemplate": EVERYTHING_ADDED,
        }
    )
    owner = training.Owner(name="lora", namespace="ml", uid="u")
    stored = json.loads(dry_run(training.worker_job(owner, spec, image="train:1", attempt=0)))
    pod = stored["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["log-shipper"]
    assert pod["initContainers"][0]["restartPolicy"] == "Always"
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) == 2 and all(t["matchExpressions"][0]["values"] == ["spot"] for t in terms)


def test_benchmark_job_with_every_pod_addition_is_accepted(dry_run: Any) -> None:
    stored = json.loads(dry_run(point_job(sweep(EVERYTHING_ADDED))))
    assert [c["name"] for c in stored["spec"]["template"]["spec"]["initContainers"]] == ["log-shipper"]
