"""The Helm chart: lint, rendered output against golden files, security settings, RBAC scope and
values.schema.json. Regenerate the golden files with UPDATE_GOLDEN=1 after an intended change."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, NAMESPACE, VALUES, by_kind, helm, needs_helm, render, template

pytestmark = [pytest.mark.chart, needs_helm]

GOLDEN = Path(__file__).parent / "golden"
CASES = {"default": [], "full": ["--values", str(VALUES / "full.yaml")]}
CRD_NAMES = {"trainingjobs.modelfleet.io", "modeldeployments.modelfleet.io", "benchmarksweeps.modelfleet.io"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lint(case: str) -> None:
    result = helm("lint", "--strict", str(CHART), *CASES[case])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_chart_matches_golden_file(case: str) -> None:
    result = template(*CASES[case])
    assert result.returncode == 0, result.stderr
    golden = GOLDEN / f"{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text(), (
        f"rendered chart differs from {golden}; UPDATE_GOLDEN=1 if intended"
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_operator_pod_meets_the_restricted_pod_security_standard(case: str) -> None:
    (deployment,) = by_kind(render(*CASES[case]), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all("hostPath" not in volume for volume in pod["volumes"])
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}


def test_default_is_one_standalone_cluster_wide_replica() -> None:
    docs = render()
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["MODELFLEET_STANDALONE"] == "true"
    assert "MODELFLEET_NAMESPACES" not in env and "MODELFLEET_PEERING" not in env
    assert container["image"] == "modelfleet-operator:0.1.0"
    assert env["MODELFLEET_TRAINING_IMAGE"] == "modelfleet-training-runtime:0.1.0"
    assert not by_kind(docs, "Role") and not by_kind(docs, "PodDisruptionBudget")
    assert not by_kind(docs, "CustomResourceDefinition")
    (service,) = by_kind(docs, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}
    ]


def rules_of(role: dict[str, Any]) -> list[tuple[str, str, frozenset[str]]]:
    return [
        (group, resource, frozenset(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]


@pytest.mark.parametrize("case", sorted(CASES))
def test_rbac_grants_no_secrets_no_node_writes_and_no_wildcards(case: str) -> None:
    docs = render(*CASES[case])
    roles = by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
    assert roles
    for role in roles:
        for group, resource, verbs in rules_of(role):
            assert "*" not in verbs and resource != "*" and group != "*"
            assert resource not in {"secrets", "nodes"}, f"{role['metadata']['name']} grants {resource}"
            assert not verbs & {"bind", "escalate", "impersonate"}


def test_cluster_wide_role_covers_what_the_operator_manages() -> None:
    (role,) = by_kind(render(), "ClusterRole")
    granted = {(group, resource): verbs for group, resource, verbs in rules_of(role)}
    write = frozenset({"get", "list", "watch", "create", "update", "patch", "delete"})
    for group, resource in [
        ("batch", "jobs"),
        ("", "services"),
        ("", "configmaps"),
        ("", "serviceaccounts"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("apps", "deployments"),
        ("policy", "poddisruptionbudgets"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("keda.sh", "scaledobjects"),
        ("gateway.networking.k8s.io", "httproutes"),
    ]:
        assert granted[group, resource] == write, (group, resource)
    assert granted["", "pods"] == {"get", "list", "watch", "delete"}
    assert granted["apiextensions.k8s.io", "customresourcedefinitions"] == {"get", "list", "watch"}
    for kind in ("trainingjobs", "modeldeployments", "benchmarksweeps"):
        assert {"get", "list", "watch", "patch"} <= granted["modelfleet.io", kind]
        assert "patch" in granted["modelfleet.io", f"{kind}/status"]
        assert granted["modelfleet.io", f"{kind}/finalizers"] == {"update"}
    assert ("kopf.dev", "clusterkopfpeerings") not in granted, (
        "no peering permissions for a standalone replica"
    )


def test_watch_namespaces_switches_to_roles_in_each_namespace() -> None:
    docs = render("--values", str(VALUES / "full.yaml"))
    roles = by_kind(docs, "Role")
    assert {role["metadata"]["namespace"] for role in roles} == {"ml-team", "ml-research"}
    for role in roles:
        assert ("kopf.dev", "kopfpeerings", frozenset({"get", "list", "watch", "patch"})) in rules_of(role)
    bindings = by_kind(docs, "RoleBinding")
    assert {b["subjects"][0]["namespace"] for b in bindings} == {NAMESPACE}
    (cluster_role,) = by_kind(docs, "ClusterRole")
    assert rules_of(cluster_role) == [
        ("apiextensions.k8s.io", "customresourcedefinitions", frozenset({"get", "list", "watch"}))
    ]
    (deployment,) = by_kind(docs, "Deployment")
    env = {
        item["name"]: item.get("value")
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELFLEET_NAMESPACES"] == "ml-team,ml-research"


def test_replicas_peer_through_kopf_and_keep_one_through_drains() -> None:
    docs = render("--values", str(VALUES / "full.yaml"))
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
    env = {
        item["name"]: item.get("value")
        for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODELFLEET_STANDALONE"] == "false"
    assert env["MODELFLEET_PEERING"] == "modelfleet"
    crds = {crd["metadata"]["name"] for crd in by_kind(docs, "CustomResourceDefinition")}
    assert crds == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    peerings = by_kind(docs, "KopfPeering")
    assert {p["metadata"]["namespace"] for p in peerings} == {"ml-team", "ml-research"}
    assert all(p["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade" for p in peerings)
    (pdb,) = by_kind(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_workload_identity_wires_the_service_account_and_pod() -> None:
    docs = render("--values", str(VALUES / "full.yaml"))
    (account,) = by_kind(docs, "ServiceAccount")
    assert account["metadata"]["name"] == "modelfleet-operator"
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == (
        "11111111-2222-3333-4444-555555555555"
    )
    (deployment,) = by_kind(docs, "Deployment")
    assert deployment["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == (
        "myacr.azurecr.io/modelfleet-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )


def test_monitoring_objects_use_the_documented_metric_names() -> None:
    docs = render("--values", str(VALUES / "full.yaml"))
    (monitor,) = by_kind(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "azmonitoring.coreos.com/v1"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "15s"}]
    (rule,) = by_kind(docs, "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "ModelfleetOperatorDown",
        "ModelfleetReconcileErrors",
        "ModelfleetReconcileSlow",
        "ModelfleetTrainingJobFailed",
        "ModelfleetTrainingJobUnschedulable",
        "ModelfleetModelDeploymentDegraded",
        "ModelfleetServingLatencyHigh",
        "ModelfleetServingErrorRateHigh",
    }
    assert "vllm:e2e_request_latency_seconds_bucket" in alerts["ModelfleetServingLatencyHigh"]["expr"]
    assert "> 8" in alerts["ModelfleetServingLatencyHigh"]["expr"]
    assert "vllm:request_success_total" in alerts["ModelfleetServingErrorRateHigh"]["expr"]
    assert "modelfleet_reconcile_total" in alerts["ModelfleetReconcileErrors"]["expr"]
    assert alerts["ModelfleetTrainingJobUnschedulable"]["for"] == "45m"
    assert '"{{ $labels.kind }} reconciles are failing."' not in str(
        alerts
    )  # Prometheus templates survive Helm
    assert (
        alerts["ModelfleetReconcileErrors"]["annotations"]["summary"]
        == "{{ $labels.kind }} reconciles are failing."
    )
    (dashboard,) = by_kind(docs, "ConfigMap")
    panels = yaml.safe_load(dashboard["data"]["modelfleet.json"])["panels"]
    exprs = " ".join(target["expr"] for panel in panels for target in panel["targets"])
    for metric in (
        "modelfleet_reconcile_total",
        "modelfleet_reconcile_duration_seconds_bucket",
        "modelfleet_resources",
    ):
        assert metric in exprs


def test_network_policy_limits_ingress_to_metrics_scrapers() -> None:
    (policy,) = by_kind(render("--values", str(VALUES / "full.yaml")), "NetworkPolicy")
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for peer in ingress["from"]
    ] == [
        "monitoring",
        "kube-system",
    ]


def test_chart_ships_the_generated_crds() -> None:
    docs = render("--include-crds")
    assert {crd["metadata"]["name"] for crd in by_kind(docs, "CustomResourceDefinition")} == CRD_NAMES
    assert {path.name for path in (CHART / "crds").glob("*.yaml")} == {
        "trainingjobs.yaml",
        "modeldeployments.yaml",
        "benchmarksweeps.yaml",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicas=0"], "/replicas"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "replica=2"], "replica"),
        (["--set", "watchNamespaces[0]=ML_Team"], "/watchNamespaces/0"),
        (["--set", "azure.storageAccount=Not-Valid"], "/azure/storageAccount"),
        (
            ["--set", "azure.workloadIdentity.operatorClientId=abc"],
            "/azure/workloadIdentity/operatorClientId",
        ),
        (["--set", "metrics.serviceMonitor.apiVersion=v1"], "/metrics/serviceMonitor/apiVersion"),
        (["--set", "networkPolicy.enabled=true"], "/networkPolicy/apiServerCIDRs"),
        (["--set", "prometheusRule.servingErrorRatio=5"], "/prometheusRule/servingErrorRatio"),
    ],
)
def test_schema_rejects_bad_values(args: list[str], message: str) -> None:
    result = template(*args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr
