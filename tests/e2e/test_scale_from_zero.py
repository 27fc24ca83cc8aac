"""Scale from zero that wakes, on the real node: a CPU ModelDeployment (``transformers`` engine) with
``minReplicas: 0`` behind the KEDA HTTP add-on, with the operator, KEDA and the add-on all real.

The operator makes the HTTPScaledObject and the ScaledObject; KEDA takes the deployment to zero; a
request sent straight to the Service at zero finds no replica (nothing holds it, nothing wakes); a chat
request sent through the add-on's interceptor at zero is held while KEDA starts a replica, which
downloads the model, loads it and passes its readiness probe, and is then answered; with no more
requests the deployment returns to zero. The cold start the chat request waited is reported.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from kubernetes import client
from modelfleet_api import constants as c
from modelfleet_operator.serving.builders import TERMINATION_GRACE_SECONDS

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.thirdparty.keda import Keda
from tests.cluster.conftest import OperatorProcess
from tests.e2e.serving import SERVED_NAME, cpu_model_deployment, create, model_claim, read  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

NAME = "tiny-zero"
COOLDOWN_SECONDS = 30
COLD_START_TIMEOUT_SECONDS = 600
"""How long the interceptor holds the request: pod start, model copy and load on a busy 2-core node."""


def _model_deployment() -> dict[str, Any]:
    return cpu_model_deployment(
        NAME,
        autoscaling={
            "minReplicas": 0,
            "maxReplicas": 1,
            "metric": "concurrentRequests",
            "target": 1,
            "cooldownSeconds": COOLDOWN_SECONDS,
            "coldStartTimeoutSeconds": COLD_START_TIMEOUT_SECONDS,
        },
    )


def _condition(deployment: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (deployment.get("status") or {}).get("conditions") or []
    return next((cond for cond in conditions if cond["type"] == type_), {})


def _straight_to_the_service(core: client.CoreV1Api, namespace: str, busybox: str, host: str) -> str:
    """A busybox pod's request to the Service itself (not the interceptor); its log and phase."""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": "direct"},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [
                    {
                        "name": "wget",
                        "image": busybox,
                        "command": ["wget", "-T", "10", "-q", "-O-", f"http://{host}:8000/health"],
                    }
                ],
            },
        },
    )

    def finished() -> bool:
        return core.read_namespaced_pod("direct", namespace).status.phase in ("Succeeded", "Failed")

    wait_for(finished, 120, "the direct request's pod to finish")
    phase = core.read_namespaced_pod("direct", namespace).status.phase
    return f"{phase}: {core.read_namespaced_pod_log('direct', namespace).strip()}"


def test_a_deployment_at_zero_answers_a_chat_request_held_by_the_interceptor_then_returns_to_zero(
    cluster: ControlPlane,
    keda: Keda,
    operator: OperatorProcess,
    api_client: client.ApiClient,
    namespace: str,
    model_claim: str,  # noqa: F811  (the fixture imported above)
    busybox: str,
    record_property: Any,
) -> None:
    core, apps = client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    created = time.monotonic()
    create(api_client, namespace, _model_deployment())

    def replicas() -> int:
        return int(apps.read_namespaced_deployment(f"{NAME}-stable", namespace).spec.replicas or 0)

    def server_pods() -> list[client.V1Pod]:
        selector = f"{c.LABEL_MODEL_DEPLOYMENT}={NAME}"
        return list(core.list_namespaced_pod(namespace, label_selector=selector).items)

    def at_zero() -> bool:
        try:
            phase = read(api_client, namespace, NAME).get("status", {}).get("phase")
            return phase == "ScaledToZero" and not server_pods()
        except client.ApiException:
            return False

    keda.wait_for(namespace, at_zero, 300, f"ModelDeployment {NAME} ScaledToZero with no server pod")
    to_zero = time.monotonic() - created
    record_property("seconds_to_zero_after_creation", round(to_zero, 1))
    # KEDA scales the new Deployment to zero within a second or two, often while its first pod is being
    # created; the kubelet then stops the container right after starting it. The runtime is not PID 1
    # (modelfleet_api.first_process), so that SIGTERM ends it: not held for the 120 s grace period.
    assert to_zero < TERMINATION_GRACE_SECONDS, f"the first replica took {to_zero:.0f} s to go"
    keda.wait_for(
        namespace,
        lambda: f"{namespace}/{NAME}-http" in keda.routed(core),
        60,
        "the interceptor to route the deployment's host",
    )
    deployment = read(api_client, namespace, NAME)
    status = deployment["status"]
    available, autoscaling = _condition(deployment, "Available"), _condition(deployment, "Autoscaling")
    assert (available["status"], available["reason"]) == ("True", c.REASON_SCALED_TO_ZERO)
    assert "is held for up to 600s while a replica starts" in available["message"]
    assert f"straight to Service {NAME} is not held and fails" in available["message"]
    assert autoscaling["status"] == "True", autoscaling
    host = f"{NAME}.{namespace}.svc.cluster.local"
    assert status["endpoint"] == f"http://{host}:8000/v1"

    # Straight to the Service: no replica, nothing holds the request, nothing wakes.
    sent_direct = time.monotonic()
    direct = _straight_to_the_service(core, namespace, busybox, host)
    record_property("direct_request_pod_seconds", round(time.monotonic() - sent_direct, 1))
    assert direct.startswith("Failed"), direct
    assert replicas() == 0 and not server_pods()

    # Through the interceptor: held while a replica starts, then answered.
    request = {
        "model": SERVED_NAME,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "How many red cats are there?"}],
    }
    started = time.monotonic()
    response = httpx.post(
        f"{keda.interceptor_url(core)}/v1/chat/completions",
        headers={"Host": host},
        json=request,
        timeout=COLD_START_TIMEOUT_SECONDS + 60,
    )
    cold_start = time.monotonic() - started
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == SERVED_NAME
    assert answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] > 0
    record_property("cold_start_seconds", round(cold_start, 1))

    # The status says where the replica's start-up time went, step by step, once its pass has seen it ready.
    def startup() -> dict[str, Any]:
        return dict(read(api_client, namespace, NAME).get("status", {}).get("startup") or {})

    keda.wait_for(namespace, lambda: "readySeconds" in startup(), 60, "status.startup.readySeconds")
    breakdown = startup()
    steps = ["scheduledSeconds", "engineLoadedSeconds", "readySeconds"]
    assert all(step in breakdown for step in steps), breakdown
    assert "modelDownloadedSeconds" not in breakdown, breakdown  # a pvc:// model is mounted, not downloaded
    assert [breakdown[step] for step in steps] == sorted(breakdown[step] for step in steps), breakdown
    record_property("startup_breakdown", breakdown)

    # No more requests: back to zero after the cooldown.
    answered = time.monotonic()
    keda.wait_for(namespace, at_zero, COOLDOWN_SECONDS + 240, f"ModelDeployment {NAME} back to zero")
    record_property("seconds_back_to_zero_after_the_answer", round(time.monotonic() - answered, 1))
    assert startup() == breakdown, "the cold start's breakdown stays readable at zero"
