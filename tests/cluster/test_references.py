"""Objects a spec names but the operator does not create (``common.references``), through the real API
server: a TrainingJob naming a claim, a Secret and a PriorityClass that do not exist yet waits in
Pending with ``ReferencesReady=False`` naming each one and creates no worker Job; each object's
creation wakes it (indexes of Secrets, claims and PriorityClasses, no request per pass), and once the
last one exists the Job is made and the condition turns True. A ModelDeployment whose API key Secret
is missing makes no Deployment until the Secret exists."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c

from hack.controlplane.cluster import wait_for
from tests.cluster.conftest import OperatorProcess, condition, wait_for_training_job
from tests.cluster.manifest_cases import model_deployment
from tests.cluster.test_trainingjob_lifecycle import training_job

pytestmark = pytest.mark.cluster

TIMEOUT = 60


@pytest.fixture
def priority_class(api_client: client.ApiClient) -> Iterator[str]:
    """A PriorityClass name unique to the test (cluster-scoped), deleted afterwards if it was made."""
    name = f"t-training-{uuid.uuid4().hex[:6]}"
    yield name
    try:
        client.SchedulingV1Api(api_client).delete_priority_class(name)
    except client.ApiException as error:
        if error.status != 404:
            raise


def claim(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def references_ready(status: str) -> tuple[Callable[[dict[str, Any]], bool], str]:
    """(predicate, description) for ``wait_for_training_job``: ReferencesReady has ``status``."""
    return (
        lambda tj: (condition(tj, c.COND_REFERENCES_READY) or {}).get("status") == status,
        f"ReferencesReady={status}",
    )


def secret(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "stringData": {"token": "not-a-token", "api-key": "not-a-key"}}


def test_a_training_job_waits_for_what_it_names_and_runs_once_everything_exists(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    api_client: client.ApiClient,
    priority_class: str,
) -> None:
    name = "named"
    manifest = training_job(
        name,
        dataset={"uri": "pvc://team-data/train.jsonl"},
        priorityClassName=priority_class,
        env=[{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "team-token", "key": "token"}}}],
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", manifest)

    waiting = wait_for_training_job(custom, namespace, name, *references_ready("False"))
    missing = condition(waiting, c.COND_REFERENCES_READY)
    assert missing is not None and missing["reason"] == c.REASON_REFERENCE_MISSING
    assert missing["message"].startswith(
        f"PersistentVolumeClaim team-data (spec.dataset.uri) does not exist in namespace {namespace}; "
        "Secret team-token (spec.env[0].valueFrom.secretKeyRef.name) does not exist in namespace "
        f"{namespace}; "
        f"PriorityClass {priority_class} (spec.priorityClassName) does not exist. Create them"
    )
    assert waiting["status"]["phase"] == "Pending"
    assert batch.list_namespaced_job(namespace).items == []

    core.create_namespaced_persistent_volume_claim(namespace, claim("team-data"))
    core.create_namespaced_secret(namespace, secret("team-token"))
    one_left = wait_for_training_job(
        custom,
        namespace,
        name,
        lambda tj: (
            (condition(tj, c.COND_REFERENCES_READY) or {}).get("message", "").startswith("PriorityClass")
        ),
        "only the PriorityClass missing",
    )
    assert one_left["status"]["phase"] == "Pending" and batch.list_namespaced_job(namespace).items == []

    client.SchedulingV1Api(api_client).create_priority_class(
        {"metadata": {"name": priority_class}, "value": 1000}
    )

    wait_for(lambda: len(batch.list_namespaced_job(namespace).items) == 1, TIMEOUT, "the worker Job")
    (job,) = batch.list_namespaced_job(namespace).items
    assert job.spec.template.spec.priority_class_name == priority_class
    found = wait_for_training_job(custom, namespace, name, *references_ready("True"))
    assert (condition(found, c.COND_REFERENCES_READY) or {}).get("reason") == c.REASON_REFERENCES_FOUND


def test_a_model_deployment_makes_no_deployment_until_its_api_key_secret_exists(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    api_client: client.ApiClient,
) -> None:
    name = "keyed"
    manifest = model_deployment(
        name,
        model={"uri": "org/tiny"},
        resources={"instanceType": "Standard_NC40adis_H100_v5"},
        replicas=1,
        apiKeySecret={"name": "tiny-key"},
    )
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", manifest)
    apps = client.AppsV1Api(api_client)

    def reported(status: str) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def check() -> bool:
            nonlocal found
            found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", name)
            return (condition(found, c.COND_REFERENCES_READY) or {}).get("status") == status

        wait_for(check, TIMEOUT, f"ReferencesReady={status}")
        return found

    waiting = reported("False")
    assert waiting["status"]["phase"] == "Pending"
    available = condition(waiting, c.COND_AVAILABLE) or {}
    assert available.get("reason") == c.REASON_REFERENCE_MISSING
    assert available.get("message", "").startswith(
        f"Secret tiny-key (spec.apiKeySecret.name) does not exist in namespace {namespace}. Create it"
    )
    assert apps.list_namespaced_deployment(namespace).items == []

    core.create_namespaced_secret(namespace, secret("tiny-key"))

    wait_for(lambda: len(apps.list_namespaced_deployment(namespace).items) == 1, TIMEOUT, "the Deployment")
    assert (condition(reported("True"), c.COND_REFERENCES_READY) or {}).get(
        "reason"
    ) == c.REASON_REFERENCES_FOUND
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", name)
