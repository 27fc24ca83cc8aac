"""The operator is killed (SIGKILL) mid-reconcile and restarted: exactly one set of children remains."""

from __future__ import annotations

import time

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION

from tests.cluster.conftest import OperatorProcess, wait_for_phase
from tests.cluster.drive import running_workers
from tests.cluster.test_trainingjob_lifecycle import jobs_of, training_job

pytestmark = pytest.mark.cluster


def test_killed_operator_leaves_exactly_one_set_of_children(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
    api_client: client.ApiClient,
) -> None:
    resources = {"instanceType": "Standard_ND96isr_H100_v5", "nodes": 3, "gpusPerNode": 8}
    names = [f"survivor-{i}" for i in range(3)]
    for name in names:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "trainingjobs",
            training_job(name, resources=resources, suspend=name != names[0]),
        )
    time.sleep(0.3)  # let the reconciles start, then pull the plug in the middle of them
    operator.kill()
    operator.start()

    wait_for_phase(custom, namespace, names[0], "Running")
    for name in names[1:]:
        wait_for_phase(custom, namespace, name, "Suspended")

    assert len(jobs_of(batch, namespace, names[0])) == 1
    assert len(running_workers(core, namespace, names[0], 3)) == 3
    rbac = client.RbacAuthorizationV1Api(api_client)
    for name in names:
        selector = f"modelfleet.io/trainingjob={name}"
        assert len(core.list_namespaced_config_map(namespace, label_selector=selector).items) == 2
        assert len(core.list_namespaced_service(namespace, label_selector=selector).items) == 1
        assert len(core.list_namespaced_service_account(namespace, label_selector=selector).items) == 1
        assert len(rbac.list_namespaced_role(namespace, label_selector=selector).items) == 1
        assert len(rbac.list_namespaced_role_binding(namespace, label_selector=selector).items) == 1
    assert not jobs_of(batch, namespace, names[1]) and not jobs_of(batch, namespace, names[2])
