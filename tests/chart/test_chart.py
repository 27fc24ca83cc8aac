"""The Helm chart: lint, rendered output against golden files, security settings, RBAC scope and
values.schema.json. Regenerate the golden files with UPDATE_GOLDEN=1 after an intended change."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, NAMESPACE, VALUES, by_kind, helm, needs_helm, render, template

pytestmark = [pytest.mark.chart, needs_helm]

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).resolve().parents[2]
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
def test_rbac_grants_no_node_access_no_wildcards_and_secrets_only_to_know_they_exist(case: str) -> None:
    docs = render(*CASES[case])
    roles = by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
    assert roles
    check_secrets = case == "default"  # the full values turn operator.checkSecrets off
    secret_rules = []
    for role in roles:
        for group, resource, verbs in rules_of(role):
            assert "*" not in verbs and resource != "*" and group != "*"
            assert resource != "nodes", f"{role['metadata']['name']} grants {resource}"
            assert not verbs & {"bind", "escalate", "impersonate"}
            if resource == "secrets":
                secret_rules.append(verbs)
    assert secret_rules == ([frozenset({"list", "watch"})] if check_secrets else [])


APPLIED = {"list", "watch", "create", "patch", "delete"}
"""Children: watched into kopf's indexes, server-side applied (patch; create when the apply creates),
pruned."""
OPERATOR_RULES = {
    ("modelfleet.io", "trainingjobs"): {"list", "watch", "patch", "delete"},
    ("modelfleet.io", "modeldeployments"): APPLIED,
    ("modelfleet.io", "benchmarksweeps"): {"list", "watch", "create", "patch", "delete"},
    **{
        ("modelfleet.io", f"{kind}/status"): {"patch"}
        for kind in ("trainingjobs", "modeldeployments", "benchmarksweeps")
    },
    **{
        ("modelfleet.io", f"{kind}/finalizers"): {"update"}
        for kind in ("trainingjobs", "modeldeployments", "benchmarksweeps")
    },
    ("batch", "jobs"): APPLIED,
    ("", "pods"): {"list", "watch"},
    ("", "configmaps"): APPLIED | {"get", "update"},
    ("", "services"): APPLIED,
    ("", "serviceaccounts"): APPLIED,
    ("rbac.authorization.k8s.io", "roles"): APPLIED,
    ("rbac.authorization.k8s.io", "rolebindings"): APPLIED,
    ("", "events"): {"create"},
    ("apps", "deployments"): APPLIED,
    ("policy", "poddisruptionbudgets"): APPLIED,
    ("autoscaling", "horizontalpodautoscalers"): APPLIED,
    ("keda.sh", "scaledobjects"): APPLIED,
    ("http.keda.sh", "httpscaledobjects"): APPLIED,
    ("monitoring.coreos.com", "podmonitors"): APPLIED,
    ("azmonitoring.coreos.com", "podmonitors"): APPLIED,
    ("gateway.networking.k8s.io", "httproutes"): APPLIED,
    ("kueue.x-k8s.io", "workloads"): {"list", "watch"},
    ("", "persistentvolumeclaims"): {"list", "watch"},
    ("", "secrets"): {"list", "watch"},
}
"""What the operator does with each kind (modelfleet_operator.kube calls and kopf), exactly; proven in
the local control plane by tests/cluster/test_chart_install.py."""
DETECTION_RULES = {
    ("apiregistration.k8s.io", "apiservices"): {"list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("scheduling.k8s.io", "priorityclasses"): {"list", "watch"},
}


def test_cluster_wide_role_is_exactly_what_the_operator_uses() -> None:
    (role,) = by_kind(render(), "ClusterRole")
    granted = {(group, resource): set(verbs) for group, resource, verbs in rules_of(role)}
    assert len(granted) == len(rules_of(role)), "one rule per kind"
    assert granted == {**OPERATOR_RULES, **DETECTION_RULES}
    assert ("kopf.dev", "clusterkopfpeerings") not in granted, (
        "no peering permissions for a standalone replica"
    )


def test_the_operator_holds_what_it_grants_the_workers() -> None:
    """RBAC escalation prevention: the operator may create the workers' Role only if it holds its rules."""
    from modelfleet_operator.training.builders import Owner, progress_role

    owner = Owner(name="tj", namespace="ns", uid="u")
    for rule in progress_role(owner)["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert set(rule["verbs"]) <= OPERATOR_RULES[group, resource]


def test_watch_namespaces_switches_to_roles_in_each_namespace() -> None:
    docs = render("--values", str(VALUES / "full.yaml"))
    roles = by_kind(docs, "Role")
    assert {role["metadata"]["namespace"] for role in roles} == {"ml-team", "ml-research"}
    for role in roles:
        granted = {(group, resource): set(verbs) for group, resource, verbs in rules_of(role)}
        without_secrets = {key: verbs for key, verbs in OPERATOR_RULES.items() if key != ("", "secrets")}
        assert granted == {**without_secrets, ("kopf.dev", "kopfpeerings"): {"list", "watch", "patch"}}
    bindings = by_kind(docs, "RoleBinding")
    assert {b["subjects"][0]["namespace"] for b in bindings} == {NAMESPACE}
    (cluster_role,) = by_kind(docs, "ClusterRole")
    # kopf lists and watches namespaces when it watches a list of them.
    assert rules_of(cluster_role) == [
        ("apiregistration.k8s.io", "apiservices", frozenset({"list", "watch"})),
        ("apiextensions.k8s.io", "customresourcedefinitions", frozenset({"list", "watch"})),
        ("scheduling.k8s.io", "priorityclasses", frozenset({"list", "watch"})),
        ("", "namespaces", frozenset({"list", "watch"})),
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


def operator_env(*args: str) -> dict[str, str]:
    """The literal env values of the operator container as rendered with ``args``."""
    (deployment,) = by_kind(render(*args), "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return {item["name"]: item["value"] for item in env if "value" in item}


def test_runtime_pods_identity_is_set_only_with_workload_identity() -> None:
    from modelfleet_operator.config import load_config

    full = load_config([], operator_env("--values", str(VALUES / "full.yaml")))
    assert (full.runtime_service_account, full.storage_account) == ("ml-runtime", "modelfleetdata01")
    client_id = "azure.workloadIdentity.runtimeClientId=66666666-7777-8888-9999-000000000000"
    assert load_config([], operator_env("--set", client_id)).runtime_service_account == "modelfleet-runtime"
    # Without a runtime client ID a runtime ServiceAccount would have no Azure identity to give.
    alone = operator_env("--set", "azure.workloadIdentity.runtimeServiceAccount=ml-runtime")
    assert "MODELFLEET_RUNTIME_SERVICE_ACCOUNT" not in alone
    storage = load_config([], operator_env("--set", "azure.storageAccount=modelfleetdata01"))
    assert (storage.runtime_service_account, storage.storage_account) == (None, "modelfleetdata01")
    default = load_config([], operator_env())
    assert (default.runtime_service_account, default.storage_account) == (None, None)


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
        "ModelfleetReconcileBacklog",
        "ModelfleetApiForbidden",
        "ModelfleetApiErrors",
        "ModelfleetAzureErrors",
        "ModelfleetTrainingJobFailed",
        "ModelfleetBenchmarkSweepFailed",
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


METRIC_LABELS = {
    "modelfleet_reconcile_total": {"kind", "result"},
    "modelfleet_reconcile_duration_seconds_bucket": {"kind", "le"},
    "modelfleet_reconcile_queue_depth": {"kind", "state"},
    "modelfleet_resources": {"kind", "phase"},
    "modelfleet_api_errors_total": {"verb", "code"},
    "modelfleet_capacity_actions_total": {"instance_type", "action"},
    "modelfleet_azure_errors_total": {"code"},
}
"""Labels of the operator's metrics (modelfleet_operator.metrics); a scrape adds job/namespace/pod of
the operator, never of the resources."""


def labels_used(expr: str) -> set[str]:
    matchers = {m for block in re.findall(r"\{([^}]*)\}", expr) for m in re.findall(r"(\w+)\s*[=!]~?", block)}
    grouped = {g.strip() for block in re.findall(r"\bby\s*\(([^)]*)\)", expr) for g in block.split(",")}
    return (matchers | grouped) - {""}


def test_every_operator_metric_expression_uses_labels_the_metric_has() -> None:
    from modelfleet_operator import metrics

    exported = {m.name for m in metrics.REGISTRY.collect() if m.name.startswith("modelfleet_")}
    assert {name.removesuffix("_bucket").removesuffix("_total") for name in METRIC_LABELS} <= exported | {
        n.removesuffix("_total") for n in exported
    }
    docs = render("--values", str(VALUES / "full.yaml"))
    (rule,) = by_kind(docs, "PrometheusRule")
    exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
    (dashboard,) = by_kind(docs, "ConfigMap")
    panels = yaml.safe_load(dashboard["data"]["modelfleet.json"])["panels"]
    exprs += [target["expr"] for panel in panels for target in panel["targets"]]
    used = set()
    for expr in exprs:
        names = set(re.findall(r"modelfleet_\w+", expr))
        if not names:
            continue
        assert names <= set(METRIC_LABELS), f"unknown metric in {expr}"
        used |= names
        allowed = set().union(*(METRIC_LABELS[n] for n in names))
        assert labels_used(expr) <= allowed, f"{expr} uses labels its metrics lack"
    assert used == set(METRIC_LABELS), "every operator metric is on the dashboard or in an alert"


def test_deployment_sets_only_env_the_operator_reads() -> None:
    from modelfleet_api.serving import EngineType
    from modelfleet_operator.config import load_config, serving_image_variable

    read = set()
    for source in ("config.py", "capacity/settings.py"):
        text = (REPO / "operator" / "modelfleet_operator" / source).read_text()
        read |= set(re.findall(r"\"((?:MODELFLEET|AZURE)_[A-Z_]+)\"", text))
    read.add("POD_ID")  # kopf's peering identity
    read |= {serving_image_variable(engine) for engine in EngineType}  # one per engine
    for case in sorted(CASES):
        (deployment,) = by_kind(render(*CASES[case]), "Deployment")
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {item["name"] for item in env} <= read, case
    (deployment,) = by_kind(render("--values", str(VALUES / "full.yaml")), "Deployment")
    values = {
        i["name"]: i["value"]
        for i in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in i
    }
    config = load_config([], values)
    assert config.namespaces == ("ml-team", "ml-research") and not config.standalone
    assert config.log_format == "text" and config.prometheus_url == "http://prometheus.monitoring.svc:9090"
    assert config.capacity is not None
    assert (
        config.capacity.subscription_id,
        config.capacity.resource_group,
        config.capacity.cluster_name,
    ) == (
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "rg-modelfleet",
        "aks-modelfleet",
    )
    assert {size.value: n for size, n in config.capacity.max_nodes.items()} == {
        "Standard_ND96isr_H100_v5": 4,
        "Standard_NC40adis_H100_v5": 8,
    }
    assert config.capacity.idle_seconds == 900
    (default,) = by_kind(render(), "Deployment")
    plain = {
        i["name"]: i["value"]
        for i in default["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in i
    }
    defaults = load_config([], plain)
    assert defaults.capacity is None
    # Each engine's serving pods run that engine's image; transformers (CPU) and the benchmark client
    # run the CPU runtime image.
    assert {engine.value: image for engine, image in defaults.serving_images.items()} == {
        "vllm": "modelfleet-serving-vllm:0.1.0",
        "tgi": "modelfleet-serving-tgi:0.1.0",
        "sglang": "modelfleet-serving-sglang:0.1.0",
        "lmdeploy": "modelfleet-serving-lmdeploy:0.1.0",
        "triton-trtllm": "modelfleet-serving-triton-trtllm:0.1.0",
        "transformers": "modelfleet-runtime-cpu:0.1.0",
    }
    assert defaults.benchmark_image == "modelfleet-runtime-cpu:0.1.0"
    assert (
        config.serving_images[EngineType.SGLANG]
        == "myacr.azurecr.io/modelfleet-serving-sglang:0.1.0-sglang0.5.19"
    )


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
        (["--set", "azure.storageAccount=ab"], "/azure/storageAccount"),
        (
            ["--set", "azure.workloadIdentity.runtimeServiceAccount=ML_Runtime"],
            "/azure/workloadIdentity/runtimeServiceAccount",
        ),
        (
            ["--set", "azure.workloadIdentity.runtimeServiceAccount="],
            "/azure/workloadIdentity/runtimeServiceAccount",
        ),
        (
            ["--set", f"azure.workloadIdentity.runtimeServiceAccount={'a' * 254}"],
            "/azure/workloadIdentity/runtimeServiceAccount",
        ),
        (
            ["--set", "azure.workloadIdentity.operatorClientId=abc"],
            "/azure/workloadIdentity/operatorClientId",
        ),
        (["--set", "metrics.serviceMonitor.apiVersion=v1"], "/metrics/serviceMonitor/apiVersion"),
        (["--set", "networkPolicy.enabled=true"], "/networkPolicy/apiServerCIDRs"),
        (["--set", "prometheusRule.servingErrorRatio=5"], "/prometheusRule/servingErrorRatio"),
        (["--set", "capacityManager.enabled=true"], "/capacityManager/subscriptionId"),
        (["--set", "capacityManager.maxNodes.Standard_D8s_v5=2"], "invalid propertyName 'Standard_D8s_v5'"),
        (["--set", "operator.logFormat=xml"], "/operator/logFormat"),
        (["--set", "operator.prometheusUrl=prometheus:9090"], "/operator/prometheusUrl"),
    ],
)
def test_schema_rejects_bad_values(args: list[str], message: str) -> None:
    result = template(*args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr, result.stderr
