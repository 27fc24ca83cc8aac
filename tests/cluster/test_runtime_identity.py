"""Runtime pods under workload identity, through the real API server: the chart installed with a
runtime client ID and storage account, the operator running with the chart's env and its
ServiceAccount's token (so the chart's RBAC must cover binding the progress Role to an account the
operator did not create, and re-pointing it), and a TrainingJob whose worker runs as the namespace's
runtime ServiceAccount with the workload-identity label and ``AZURE_STORAGE_ACCOUNT``.

The session operator watches every namespace, so it is stopped for this test (``no_session_operator``).
No webhook runs here: the label is what AKS's webhook would act on, checked on the pod itself.

A TrainingJob naming a ServiceAccount that does not exist yet (session operator): it waits in Pending
with ServiceAccountReady=False and a Warning event, creates no Job, and runs once the account exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION, contract
from modelfleet_api import constants as c

from hack.controlplane.cluster import ControlPlane, wait_for
from tests.chart.helm import helm, needs_helm
from tests.cluster.chart_operator import (
    RELEASE,
    TIMEOUT,
    ChartOperator,
    can_i,
    deployment_env,
    get_cr,
    install_chart,
    release_resources,
    token_kubeconfig,
)
from tests.cluster.conftest import OperatorProcess, condition, wait_for_training_job
from tests.cluster.drive import publish_progress, running_workers
from tests.cluster.test_trainingjob_lifecycle import training_job

pytestmark = [pytest.mark.cluster, needs_helm]

CLIENT_ID = "66666666-7777-8888-9999-000000000000"
STORAGE_ACCOUNT = "mfdata01"
RUNTIME_SA = "ml-runtime"
TEAM_SA = "team-runtime"
JOB = "wi"

TRAINING_JOB = training_job(
    JOB,
    model={"uri": "az://models/tiny"},
    dataset={"uri": "az://data/tiny.jsonl"},
    output={"uri": "az://out/tiny"},
)


def workload_identity_account(core: client.CoreV1Api, namespace: str, name: str) -> None:
    """What docs/operations.md §4 has a team create: the account annotated with the runtime client ID."""
    body = {"metadata": {"name": name, "annotations": {"azure.workload.identity/client-id": CLIENT_ID}}}
    core.create_namespaced_service_account(namespace, body)


def binding_subjects(rbac: client.RbacAuthorizationV1Api, namespace: str) -> list[tuple[str, str]]:
    binding = rbac.read_namespaced_role_binding(f"{JOB}-worker", namespace)
    return [(s.kind, s.name) for s in binding.subjects]


def test_training_workers_run_as_the_runtime_service_account_under_the_charts_rbac_with_a_stand_in_runtime(
    cluster: ControlPlane,
    namespace: str,
    api_client: client.ApiClient,
    no_session_operator: None,
    tmp_path: Path,
) -> None:
    """The workers run as the runtime ServiceAccount, whose token may patch their progress ConfigMap. The test
    stands in for the training runtime: nothing runs in the kwok pods, so it publishes rank 0's progress
    itself (made-up figures, ``tests.cluster.drive``); the e2e tier runs the real runtime."""
    ns = namespace
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    operator: ChartOperator | None = None
    try:
        install_chart(
            cluster,
            ns,
            f"azure.workloadIdentity.runtimeClientId={CLIENT_ID}",
            f"azure.workloadIdentity.runtimeServiceAccount={RUNTIME_SA}",
            f"azure.storageAccount={STORAGE_ACCOUNT}",
        )
        env = deployment_env(cluster, ns)
        assert env["MODELFLEET_RUNTIME_SERVICE_ACCOUNT"] == RUNTIME_SA
        assert env["MODELFLEET_STORAGE_ACCOUNT"] == STORAGE_ACCOUNT
        workload_identity_account(core, ns, RUNTIME_SA)
        operator = ChartOperator(
            token_kubeconfig(cluster, ns, tmp_path / "kubeconfig"), tmp_path / "op.log", env, ns
        )
        operator.start()
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, "trainingjobs", TRAINING_JOB)

        (pod,) = running_workers(core, ns, JOB, 1, timeout=TIMEOUT)

        assert pod.spec.service_account_name == RUNTIME_SA
        assert pod.metadata.labels[c.WORKLOAD_IDENTITY_LABEL] == "true"
        pod_env = {e.name: e.value for e in pod.spec.containers[0].env}
        assert pod_env[contract.ENV_STORAGE_ACCOUNT] == STORAGE_ACCOUNT
        accounts = {sa.metadata.name for sa in core.list_namespaced_service_account(ns).items}
        assert accounts == {"default", "modelfleet-operator", RUNTIME_SA}, "no per-job ServiceAccount"
        assert binding_subjects(rbac, ns) == [("ServiceAccount", RUNTIME_SA)]
        assert can_i(cluster, ns, "patch", f"configmap/{JOB}-progress", "-n", ns, account=RUNTIME_SA)
        assert not can_i(cluster, ns, "patch", f"configmap/{JOB}-config", "-n", ns, account=RUNTIME_SA)
        publish_progress(core, ns, JOB, step=3, total_steps=10, loss=1.5)
        wait_for(
            lambda: (
                get_cr(custom, ns, "trainingjobs", JOB).get("status", {}).get("progress", {}).get("step") == 3
            ),
            TIMEOUT,
            "the progress mirrored into the TrainingJob",
        )

        # A spec override moves the progress binding to the team's own account (a patch, chart RBAC).
        workload_identity_account(core, ns, TEAM_SA)
        patch: dict[str, Any] = {"spec": {"serviceAccountName": TEAM_SA}}
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, "trainingjobs", JOB, patch)
        wait_for(
            lambda: binding_subjects(rbac, ns) == [("ServiceAccount", TEAM_SA)],
            TIMEOUT,
            f"the progress RoleBinding to name {TEAM_SA}",
        )
        assert can_i(cluster, ns, "patch", f"configmap/{JOB}-progress", "-n", ns, account=TEAM_SA)
        assert not can_i(cluster, ns, "patch", f"configmap/{JOB}-progress", "-n", ns, account=RUNTIME_SA)
        assert operator.forbidden_lines() == []
    except AssertionError as error:
        tail = operator.log_tail(80) if operator is not None else "(no operator)"
        raise AssertionError(f"{error}\n---- operator log (tail) ----\n{tail}") from None
    finally:
        if operator is not None:
            operator.stop()
        helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "60s")
        release_resources(custom, ns)


def test_a_training_job_waits_for_its_missing_service_account_and_runs_once_it_exists(
    operator: OperatorProcess,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    batch: client.BatchV1Api,
) -> None:
    name = "wi-missing"
    manifest = {**TRAINING_JOB, "metadata": {"name": name}}
    manifest["spec"] = {**TRAINING_JOB["spec"], "serviceAccountName": TEAM_SA}
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", manifest)

    waiting = wait_for_training_job(
        custom,
        namespace,
        name,
        lambda tj: condition(tj, c.COND_SERVICE_ACCOUNT_READY) is not None,
        "ServiceAccountReady reported",
    )

    account = condition(waiting, c.COND_SERVICE_ACCOUNT_READY)
    assert account is not None
    assert (account["status"], account["reason"]) == ("False", c.REASON_SERVICE_ACCOUNT_NOT_FOUND)
    assert account["message"].startswith(
        f"ServiceAccount {TEAM_SA} (spec.serviceAccountName) does not exist in namespace {namespace}"
    )
    assert waiting["status"]["phase"] == "Pending"
    assert batch.list_namespaced_job(namespace).items == []
    selector = f"involvedObject.name={name},reason={c.REASON_SERVICE_ACCOUNT_NOT_FOUND}"
    wait_for(
        lambda: any(
            e.type == "Warning" for e in core.list_namespaced_event(namespace, field_selector=selector).items
        ),
        TIMEOUT,
        "a Warning event ServiceAccountNotFound on the TrainingJob",
    )

    workload_identity_account(core, namespace, TEAM_SA)

    (pod,) = running_workers(core, namespace, name, 1)
    assert pod.spec.service_account_name == TEAM_SA
    # The pass that created the Job writes its status after the Job: the pod can run before that.
    found_account = wait_for_training_job(
        custom,
        namespace,
        name,
        lambda tj: (condition(tj, c.COND_SERVICE_ACCOUNT_READY) or {}).get("status") == "True",
        "ServiceAccountReady=True",
    )
    found = condition(found_account, c.COND_SERVICE_ACCOUNT_READY)
    assert found is not None and found["reason"] == c.REASON_SERVICE_ACCOUNT_FOUND
