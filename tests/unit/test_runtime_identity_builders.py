"""The runtime pods' Azure identity in each kind's children: a manifest built with a runtime
ServiceAccount and storage account is the plain one (pinned whole in the per-kind builder tests)
plus exactly the ServiceAccount, the workload-identity label and ``AZURE_STORAGE_ACCOUNT``."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.benchmark import builders as bench
from modelfleet_operator.benchmark.grid import expand_points, expand_targets
from modelfleet_operator.common.identity import NO_IDENTITY, RuntimeIdentity
from modelfleet_operator.config import OperatorConfig, load_config
from modelfleet_operator.serving import builders as serving
from modelfleet_operator.serving.builders import Integrations
from modelfleet_operator.serving.desired import desired
from modelfleet_operator.serving.engines import HEALTH_PATHS
from modelfleet_operator.training import builders as training

pytestmark = pytest.mark.unit

WI_LABEL = "azure.workload.identity/use"
RUNTIME = RuntimeIdentity(service_account="modelfleet-runtime", storage_account="mfdata01")
STORAGE_ENV = {"name": "AZURE_STORAGE_ACCOUNT", "value": "mfdata01"}
USER_ENV = {"name": "NCCL_DEBUG", "value": "WARN"}


def with_identity(pod_template: dict[str, Any], service_account: str, *containers: list[Any]) -> None:
    """What the identity adds to a plain pod template (in place): label, account, env before the user's."""
    pod_template["metadata"]["labels"][WI_LABEL] = "true"
    pod_template["spec"]["serviceAccountName"] = service_account
    for env in containers:
        env.insert(len(env) - 1, STORAGE_ENV)  # the user's env (last) can still override it


# ---- precedence ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec_account", "operator_account", "expected"),
    [
        ("team-sa", "modelfleet-runtime", "team-sa"),
        (None, "modelfleet-runtime", "modelfleet-runtime"),
        ("team-sa", None, "team-sa"),
        (None, None, None),
    ],
)
def test_spec_service_account_wins_over_the_operators(
    spec_account: str | None, operator_account: str | None, expected: str | None
) -> None:
    config = OperatorConfig(runtime_service_account=operator_account, storage_account="mfdata01")
    identity = RuntimeIdentity.of(config, spec_account)
    assert identity == RuntimeIdentity(
        service_account=expected, storage_account="mfdata01", from_spec=spec_account is not None
    )
    assert identity.pod_labels() == ({WI_LABEL: "true"} if expected else {})


def test_a_missing_account_message_names_it_where_it_came_from_and_the_fix() -> None:
    config = OperatorConfig(runtime_service_account="modelfleet-runtime")
    from_operator = RuntimeIdentity.of(config, None).missing_message("ml-team")
    from_spec = RuntimeIdentity.of(config, "team-sa").missing_message("ml-team")
    assert from_operator == (
        "ServiceAccount modelfleet-runtime (the operator's runtime service account, "
        "MODELFLEET_RUNTIME_SERVICE_ACCOUNT) does not exist in namespace ml-team, so no pod can be "
        "created. Create it and annotate it with the runtime identity's client id "
        "(azure.workload.identity/client-id, see docs/operations.md section 4), or set "
        "spec.serviceAccountName to an account that exists; the operator retries on its own."
    )
    assert from_spec.startswith("ServiceAccount team-sa (spec.serviceAccountName) does not exist")


def test_storage_account_alone_sets_only_the_env() -> None:
    identity = RuntimeIdentity.of(OperatorConfig(storage_account="mfdata01"), None)
    assert (identity.pod_labels(), identity.pod_spec(), identity.env()) == ({}, {}, [STORAGE_ENV])
    assert identity.pod_spec("job-sa") == {"serviceAccountName": "job-sa"}
    assert (NO_IDENTITY.pod_labels(), NO_IDENTITY.pod_spec(), NO_IDENTITY.env()) == ({}, {}, [])


# ---- config ----------------------------------------------------------------------------------------
def test_config_reads_the_runtime_and_storage_accounts() -> None:
    env = {
        "MODELFLEET_RUNTIME_SERVICE_ACCOUNT": "modelfleet-runtime",
        "MODELFLEET_STORAGE_ACCOUNT": "mfdata01",
    }
    config = load_config([], env)
    assert (config.runtime_service_account, config.storage_account) == ("modelfleet-runtime", "mfdata01")
    blank = load_config([], {"MODELFLEET_RUNTIME_SERVICE_ACCOUNT": " ", "MODELFLEET_STORAGE_ACCOUNT": ""})
    assert (blank.runtime_service_account, blank.storage_account) == (None, None)
    assert load_config([], {"MODELFLEET_RUNTIME_SERVICE_ACCOUNT": "a." + "b" * 251}).runtime_service_account


@pytest.mark.parametrize(
    ("var", "value", "allowed"),
    [
        ("MODELFLEET_RUNTIME_SERVICE_ACCOUNT", "ML_Runtime", "DNS-1123 subdomain"),
        ("MODELFLEET_RUNTIME_SERVICE_ACCOUNT", "a" * 254, "at most 253"),
        ("MODELFLEET_RUNTIME_SERVICE_ACCOUNT", "-runtime", "DNS-1123 subdomain"),
        ("MODELFLEET_STORAGE_ACCOUNT", "Data-01", "3-24 lowercase letters and digits"),
        ("MODELFLEET_STORAGE_ACCOUNT", "ab", "3-24 lowercase letters and digits"),
    ],
)
def test_config_rejects_bad_names_naming_the_variable(var: str, value: str, allowed: str) -> None:
    with pytest.raises(ValueError, match=var) as raised:
        load_config([], {var: value})
    assert allowed in str(raised.value)


# ---- TrainingJob -----------------------------------------------------------------------------------
TRAINING_OWNER = training.Owner(name="lora", namespace="ml", uid="0b7e-uid")


def training_spec(**overrides: object) -> TrainingJobSpec:
    base: dict[str, object] = {
        "model": {"uri": "meta-llama/Llama-3.1-8B"},
        "dataset": {"uri": "az://data/chat.jsonl"},
        "output": {"uri": "az://out/lora"},
        "env": [USER_ENV],
    }
    return TrainingJobSpec.model_validate(base | overrides)


def test_worker_job_runs_as_the_runtime_service_account_with_the_label_and_storage_account() -> None:
    spec = training_spec()
    plain = training.worker_job(TRAINING_OWNER, spec, image="img:1", attempt=1)
    assert plain["spec"]["template"]["spec"]["serviceAccountName"] == "lora-worker"

    job = training.worker_job(TRAINING_OWNER, spec, image="img:1", attempt=1, identity=RUNTIME)

    expected = copy.deepcopy(plain)
    template = expected["spec"]["template"]
    with_identity(template, "modelfleet-runtime", template["spec"]["containers"][0]["env"])
    assert job == expected
    assert WI_LABEL not in job["metadata"]["labels"], "the label belongs on the pods, not on the Job"


def test_runtime_service_account_replaces_the_jobs_own_and_gets_the_progress_binding() -> None:
    spec = training_spec()
    plain = training.static_children(TRAINING_OWNER, spec)

    children = training.static_children(TRAINING_OWNER, spec, RUNTIME)

    assert [(m["kind"], m["metadata"]["name"]) for m in plain[:3]] == [
        ("ServiceAccount", "lora-worker"),
        ("Role", "lora-worker"),
        ("RoleBinding", "lora-worker"),
    ]
    binding = copy.deepcopy(plain[2])
    binding["subjects"] = [{"kind": "ServiceAccount", "name": "modelfleet-runtime", "namespace": "ml"}]
    assert children == [plain[1], binding, *plain[3:]], "no ServiceAccount; the same Role, still only"
    assert children[0]["rules"][0]["resourceNames"] == ["lora-progress"]


def test_storage_account_without_service_account_keeps_the_jobs_own_account() -> None:
    identity = RuntimeIdentity(storage_account="mfdata01")
    spec = training_spec()
    assert training.static_children(TRAINING_OWNER, spec, identity) == training.static_children(
        TRAINING_OWNER, spec
    )
    pod = training.worker_pod_template(TRAINING_OWNER, spec, image="img:1", attempt=0, identity=identity)
    assert pod["spec"]["serviceAccountName"] == "lora-worker" and WI_LABEL not in pod["metadata"]["labels"]
    assert pod["spec"]["containers"][0]["env"][-2:] == [STORAGE_ENV, USER_ENV]


def test_training_spec_service_account_is_validated() -> None:
    assert training_spec(serviceAccountName="team.runtime-1").service_account_name == "team.runtime-1"
    for bad in ("Team", "team_sa", "", "a" * 254):
        with pytest.raises(ValueError, match="serviceAccountName"):
            training_spec(serviceAccountName=bad)


# ---- ModelDeployment -------------------------------------------------------------------------------
SERVING_OWNER = serving.Owner(name="llama3-8b", namespace="team-a", uid="uid-1")
SERVING_SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": {"uri": "az://models/llama-3.1-8b-instruct"},
        "canary": {"image": "serve:canary", "weight": 10},
        "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
    }
)


def serving_deployments(identity: RuntimeIdentity) -> list[dict[str, Any]]:
    images = dict.fromkeys(EngineType, "serve:1")
    wanted = desired(SERVING_OWNER, SERVING_SPEC, images=images, health_paths=HEALTH_PATHS,
                  integrations=Integrations(keda=False, gateway_api=False), prometheus_url="http://p:9090",
                  canary_ready=False, identity=identity)  # fmt: skip
    return [m for m in wanted.children if m["kind"] == "Deployment"]


def test_stable_and_canary_pods_and_their_model_download_get_the_identity() -> None:
    plain = serving_deployments(NO_IDENTITY)
    assert [d["metadata"]["name"] for d in plain] == ["llama3-8b-stable", "llama3-8b-canary"]

    deployments = serving_deployments(RUNTIME)

    for got, before in zip(deployments, plain, strict=True):
        expected = copy.deepcopy(before)
        template = expected["spec"]["template"]
        pod = template["spec"]
        with_identity(
            template, "modelfleet-runtime", pod["containers"][0]["env"], pod["initContainers"][0]["env"]
        )
        assert got == expected
        assert got["spec"]["template"] != before["spec"]["template"], "a changed identity rolls"


def test_serving_pods_without_a_runtime_account_keep_the_namespace_default() -> None:
    (stable, _) = serving_deployments(RuntimeIdentity(storage_account="mfdata01"))
    pod = stable["spec"]["template"]
    assert "serviceAccountName" not in pod["spec"] and WI_LABEL not in pod["metadata"]["labels"]
    assert STORAGE_ENV in pod["spec"]["containers"][0]["env"]


# ---- BenchmarkSweep --------------------------------------------------------------------------------
BENCH_OWNER = bench.Owner(name="sw", namespace="ml", uid="uid-1")
SWEEP = BenchmarkSweepSpec.model_validate(
    {
        "targets": [{"name": "llama", "deploymentRef": "llama3-8b"}],
        "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}},
        "load": {"concurrency": [1], "requests": 10},
        "sinks": {"blobUri": "az://results/benchmarks"},
        "serviceAccountName": "bench-sa",
    }
)


def test_benchmark_job_runs_as_the_sweeps_account_and_can_resolve_az_uris() -> None:
    (point,) = expand_points(expand_targets(BENCH_OWNER.names, SWEEP), SWEEP)
    plain = bench.point_job(BENCH_OWNER, point, image="bench:1", api_key_secret=None)
    identity = RuntimeIdentity.of(
        OperatorConfig(runtime_service_account="modelfleet-runtime", storage_account="mfdata01"),
        SWEEP.service_account_name,
    )

    job = bench.point_job(BENCH_OWNER, point, image="bench:1", api_key_secret=None, identity=identity)

    expected = copy.deepcopy(plain)
    template = expected["spec"]["template"]
    template["spec"]["containers"][0]["env"].append(STORAGE_ENV)
    with_identity(template, "bench-sa")
    assert job == expected


def test_inline_sweep_templates_carry_their_own_service_account() -> None:
    template = {"model": {"uri": "az://models/llama"}, "serviceAccountName": "serve-sa"}
    sweep = BenchmarkSweepSpec.model_validate(
        SWEEP.to_wire() | {"targets": [{"name": "llama", "template": template}]}
    )
    (target,) = expand_targets(BENCH_OWNER.names, sweep)
    assert bench.model_deployment(BENCH_OWNER, target)["spec"]["serviceAccountName"] == "serve-sa"
