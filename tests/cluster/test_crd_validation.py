"""The generated CRDs, installed in a real kube-apiserver, reject bad manifests naming the field.

Rejections are checked with server-side dry runs (what ``kubectl apply --dry-run=server`` sends, through
the API client: ``dry_run``; one through kubectl itself): the request goes through decoding (strict
field validation), the OpenAPI schema, defaulting and every CEL rule, and nothing is stored, so all
of them share one namespace. Tests that store objects get their own, and apply them with kubectl.
The CRDs are installed (server-side apply, left installed) by the session fixture ``crds``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane
from tests.cluster.dry_run import assert_refused, dry_run_create
from tests.cluster.manifest_cases import DELETE, Case, edit
from tests.unit.test_api_models import good_benchmark_sweep, good_model_deployment, good_training_job

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def dry_run_namespace(crds: ControlPlane) -> Iterator[str]:
    """One namespace for the dry-run rejections (they store nothing)."""
    name = f"t-crd-dry-run-{uuid.uuid4().hex[:5]}"
    crds.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        crds.kubectl("delete", "namespace", name, "--wait=false")


def apply(cluster: ControlPlane, namespace: str, manifest: dict[str, Any], *flags: str) -> tuple[int, str]:
    done = cluster.kubectl(
        "apply", "-n", namespace, *flags, "-f", "-", input=json.dumps(manifest), check=False
    )
    return done.returncode, done.stdout + done.stderr


TJ = good_training_job("bad")
CPU_NODE = {"instanceType": "Standard_D4s_v5", "gpusPerNode": 0}
CPU_REPLICA = {"instanceType": "Standard_D4s_v5", "gpusPerReplica": 0}
TRANSFORMERS = {"type": "transformers"}
BAD_TRAINING_JOBS: list[Case] = [
    (
        "name-too-long-for-worker-hostnames",
        edit(TJ, metadata__name="t" * 60),
        "metadata.name must be at most 59 characters: worker pods are named <name>-<index>",
    ),
    ("precision-enum", edit(TJ, spec__precision="fp8"), 'spec.precision: Unsupported value: "fp8"'),
    ("negative-gpus", edit(TJ, spec__resources__gpusPerNode=-1), "spec.resources.gpusPerNode: Invalid value"),
    ("zero-nodes", edit(TJ, spec__resources__nodes=0), "spec.resources.nodes: Invalid value"),
    (
        "qlora-not-4bit",
        edit(TJ, spec__method={"type": "qlora"}),
        "spec.model.loadIn4bit: Invalid value: method qlora needs model.loadIn4bit",
    ),
    (
        "zero-stage-with-ddp",
        edit(TJ, spec__strategy={"type": "ddp", "zeroStage": 2}),
        "spec.strategy.zeroStage: Forbidden: zeroStage applies only to strategy type deepspeed",
    ),
    (
        "cpu-offload-with-fsdp",
        edit(TJ, spec__strategy={"type": "fsdp", "cpuOffload": "optimizer"}),
        "spec.strategy.cpuOffload: Forbidden",
    ),
    (
        "deepspeed-config-with-fsdp",
        edit(TJ, spec__strategy={"type": "fsdp", "deepspeedConfig": {"gradient_clipping": 1.0}}),
        "spec.strategy.deepspeedConfig: Forbidden",
    ),
    (
        "fsdp-settings-with-ddp",
        edit(TJ, spec__strategy={"type": "ddp", "fsdp": {"reshardAfterForward": False}}),
        "spec.strategy.fsdp: Forbidden",
    ),
    (
        "param-offload-needs-zero3",
        edit(TJ, spec__strategy={"type": "deepspeed", "zeroStage": 2, "cpuOffload": "optimizer_and_params"}),
        "spec.strategy.cpuOffload: Invalid value: optimizer_and_params offloads parameters",
    ),
    ("zero-stage-4", edit(TJ, spec__strategy__zeroStage=4), "spec.strategy.zeroStage: Invalid value"),
    ("unknown-field", edit(TJ, spec__resources__gpus=8), 'unknown field "spec.resources.gpus"'),
    (
        "4-gpus-on-nc80",
        edit(TJ, spec__resources={"instanceType": "Standard_NC80adis_H100_v5", "gpusPerNode": 4}),
        "spec.resources.gpusPerNode: Invalid value: gpusPerNode exceeds the GPUs of instanceType",
    ),
    (
        "2-gpus-on-nc40",
        edit(TJ, spec__resources={"gpusPerNode": 2}),
        "spec.resources.gpusPerNode: Invalid value",
    ),
    (
        "unknown-instance-type",
        edit(TJ, spec__resources__instanceType="Standard_B2s"),
        'spec.resources.instanceType: Unsupported value: "Standard_B2s"',
    ),
    (
        "gpus-on-a-cpu-size",
        edit(TJ, spec__resources={"instanceType": "Standard_D8s_v5"}),
        "spec.resources.gpusPerNode: Invalid value: gpusPerNode must be 0: instanceType is a CPU VM size",
    ),
    (
        "no-gpus-on-an-a100-size",
        edit(TJ, spec__resources={"instanceType": "Standard_NC24ads_A100_v4", "gpusPerNode": 0}),
        "spec.resources.gpusPerNode: Invalid value: gpusPerNode must be at least 1 on a GPU instanceType",
    ),
    (
        "fp16-on-a-cpu-size",
        edit(TJ, spec__precision="fp16", spec__resources=CPU_NODE),
        "spec.precision: Invalid value: precision fp16 needs a GPU: use bf16 or fp32 (instanceType is a CPU",
    ),
    (
        "4bit-on-a-cpu-size",
        edit(
            TJ,
            spec__model={"uri": "m", "loadIn4bit": True},
            spec__method={"type": "qlora"},
            spec__resources=CPU_NODE,
        ),
        "spec.model.loadIn4bit: Invalid value: 4-bit loading (bitsandbytes; method qlora) needs a GPU",
    ),
    (
        "max-steps-and-epochs",
        edit(TJ, spec__hyperparameters={"maxSteps": 100, "epochs": 3}),
        "spec.hyperparameters.epochs: Invalid value: set either maxSteps or epochs",
    ),
    (
        "warmup-beyond-max-steps",
        edit(TJ, spec__hyperparameters={"maxSteps": 100, "warmupSteps": 100}),
        "spec.hyperparameters.warmupSteps: Invalid value",
    ),
    (
        "4bit-full-finetune",
        edit(TJ, spec__model={"uri": "m", "loadIn4bit": True}, spec__method={"type": "full"}),
        "spec.model.loadIn4bit: Invalid value: 4-bit base weights cannot be trained directly",
    ),
    (
        "dpo-settings-with-lora",
        edit(TJ, spec__method={"type": "lora", "dpo": {"beta": 0.2}}),
        "spec.method.dpo: Forbidden",
    ),
    ("method-enum", edit(TJ, spec__method={"type": "rlhf"}), 'spec.method.type: Unsupported value: "rlhf"'),
    (
        "reserved-env",
        edit(TJ, spec__env=[{"name": "PET_NNODES", "value": "9"}]),
        "spec.env: Forbidden: env names starting with PET_ or MODELFLEET_",
    ),
    (
        "duplicate-env",
        edit(TJ, spec__env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
        "spec.env[1]: Duplicate value",
    ),
    ("missing-output", edit(TJ, spec__output=DELETE), "spec.output: Required value"),
    ("lora-rank-0", edit(TJ, spec__method={"type": "lora", "lora": {"r": 0}}), "spec.method.lora.r: Invalid"),
    ("bad-memory", edit(TJ, spec__resources__memory="lots"), "spec.resources.memory: Invalid value"),
    (
        "wandb-online-without-api-key",
        edit(TJ, spec__tracking={"wandb": {"project": "llm"}}),
        "spec.tracking.wandb.apiKeySecret: Required value: apiKeySecret is required in online mode",
    ),
    (
        "comet-mode-enum",
        edit(TJ, spec__tracking={"comet": {"project": "llm", "mode": "cloud"}}),
        'spec.tracking.comet.mode: Unsupported value: "cloud"',
    ),
    (
        "unsloth-for-full-fine-tune",
        edit(TJ, spec__method={"type": "full", "backend": "unsloth"}, spec__strategy={"type": "ddp"}),
        "spec.method.backend: Invalid value: backend unsloth applies only to method types lora and qlora",
    ),
    (
        "unsloth-with-deepspeed",
        edit(TJ, spec__method={"type": "lora", "backend": "unsloth"}),
        "spec.strategy.type: Invalid value: method.backend unsloth trains with strategy ddp",
    ),
    (
        "launcher-enum",
        edit(TJ, spec__strategy={"type": "ddp", "launcher": "mpirun"}),
        'spec.strategy.launcher: Unsupported value: "mpirun"',
    ),
    (
        "config-overrides-without-from-scratch",
        edit(TJ, spec__model={"uri": "m", "configOverrides": {"num_hidden_layers": 2}}),
        "spec.model.configOverrides: Forbidden: configOverrides applies only with fromScratch: true",
    ),
    (
        "from-scratch-in-4bit",
        edit(
            TJ,
            spec__model={"uri": "m", "fromScratch": True, "loadIn4bit": True},
            spec__method={"type": "pretrain"},
        ),
        "spec.model.loadIn4bit: Forbidden: a model trained from scratch has no weights to load in 4-bit",
    ),
    (
        "lora-from-scratch",
        edit(TJ, spec__model={"uri": "m", "fromScratch": True}),
        "spec.model.fromScratch: Invalid value: a model trained from scratch trains all its weights",
    ),
    (
        "zero-learning-rate",
        edit(TJ, spec__hyperparameters={"learningRate": 0}),
        "spec.hyperparameters.learningRate: Invalid value",
    ),
]

MD = good_model_deployment("bad")
BAD_MODEL_DEPLOYMENTS: list[Case] = [
    (
        "name-too-long-for-track-services",
        edit(MD, metadata__name="m" * 57),
        "metadata.name must be at most 56 characters: each track gets a Deployment and Service",
    ),
    (
        "tensor-parallel-beyond-gpus",
        edit(MD, spec__engine={"type": "vllm", "settings": {"tensorParallelSize": 4}}),
        "spec.engine.settings.tensorParallelSize: Invalid value: engine.settings.tensorParallelSize "
        "cannot exceed resources.gpusPerReplica",
    ),
    ("unknown-engine", edit(MD, spec__engine={"type": "llamacpp"}), "spec.engine.type: Unsupported value"),
    ("canary-weight-150", edit(MD, spec__canary__weight=150), "spec.canary.weight: Invalid value: 150"),
    (
        "fp8-on-lmdeploy",
        edit(MD, spec__engine={"type": "lmdeploy", "settings": {"quantization": "fp8"}}),
        "spec.engine.settings.quantization: Invalid value: settings.quantization is not supported",
    ),
    (
        "awq-on-triton",
        edit(MD, spec__engine={"type": "triton-trtllm", "settings": {"quantization": "awq"}}),
        "spec.engine.settings.quantization: Invalid value",
    ),
    (
        "min-above-max-replicas",
        edit(MD, spec__autoscaling={"minReplicas": 3, "maxReplicas": 2, "target": 4}),
        "spec.autoscaling.minReplicas: Invalid value",
    ),
    (
        "autoscaling-metric-enum",
        edit(MD, spec__autoscaling={"maxReplicas": 2, "target": 4, "metric": "gpuUtilization"}),
        'spec.autoscaling.metric: Unsupported value: "gpuUtilization"',
    ),
    ("replicas-and-autoscaling", edit(MD, spec__replicas=2), "spec.replicas: Forbidden"),
    (
        "4-gpus-on-nc80",
        edit(MD, spec__resources={"instanceType": "Standard_NC80adis_H100_v5", "gpusPerReplica": 4}),
        "spec.resources.gpusPerReplica: Invalid value",
    ),
    ("canary-same-as-stable", edit(MD, spec__canary={"weight": 10}), "spec.canary: Required value"),
    (
        "pvc-and-empty-dir",
        edit(MD, spec__modelCache={"pvc": {"claimName": "models"}, "emptyDir": {}}),
        "spec.modelCache.pvc: Forbidden",
    ),
    (
        "kv-cache-target-as-percent",
        edit(MD, spec__autoscaling={"maxReplicas": 2, "metric": "kvCacheUsage", "target": 80}),
        "spec.autoscaling.target: Invalid value",
    ),
    (
        "4bit-model",
        edit(MD, spec__model={"uri": "m", "loadIn4bit": True}),
        "spec.model.loadIn4bit: Forbidden",
    ),
    (
        "canary-tensor-parallel-beyond-gpus",
        edit(MD, spec__canary={"engine": {"settings": {"tensorParallelSize": 8}}}),
        "spec.canary.engine.settings.tensorParallelSize: Invalid value",
    ),
    ("unknown-field", edit(MD, spec__engine__gpus=2), 'unknown field "spec.engine.gpus"'),
    (
        "vllm-on-a-cpu-size",
        edit(MD, spec__resources=CPU_REPLICA),
        "spec.engine.type: Invalid value: engine.type needs a GPU: use transformers (instanceType is a CPU",
    ),
    (
        "canary-vllm-on-a-cpu-size",
        edit(
            MD,
            spec__resources=CPU_REPLICA,
            spec__engine=TRANSFORMERS,
            spec__canary={"engine": {"type": "tgi"}},
        ),
        "spec.canary.engine.type: Invalid value: canary.engine.type needs a GPU",
    ),
    (
        "bitsandbytes-on-a-cpu-size",
        edit(
            MD,
            spec__resources=CPU_REPLICA,
            spec__engine={"type": "transformers", "settings": {"quantization": "bitsandbytes"}},
            spec__canary=DELETE,
        ),
        "spec.engine.settings.quantization: Invalid value: engine.settings.quantization needs a GPU",
    ),
    (
        "gpus-per-replica-on-a-cpu-size",
        edit(
            MD,
            spec__resources={"instanceType": "Standard_D4s_v5"},
            spec__engine=TRANSFORMERS,
            spec__canary=DELETE,
        ),
        "spec.resources.gpusPerReplica: Invalid value: gpusPerReplica must be 0",
    ),
    ("no-model", edit(MD, spec__model=DELETE), "spec.model: Required value"),
]

BS = good_benchmark_sweep("bad")
TEMPLATE = BS["spec"]["targets"][1]["template"]


def cpu_sweep(**axes: list[Any]) -> dict[str, Any]:
    """The sweep with one target: a transformers template on a CPU size, expanded over ``axes``."""
    template = {"model": {"uri": "m"}, "engine": TRANSFORMERS, "resources": CPU_REPLICA}
    return edit(BS, spec__targets=[{"name": "a", "template": template, "axes": axes}])


BAD_BENCHMARK_SWEEPS: list[Case] = [
    (
        "name-too-long-for-label-values",
        edit(BS, metadata__name="b" * 64),
        "metadata.name must be at most 63 characters",
    ),
    ("no-targets", edit(BS, spec__targets=[]), "spec.targets: Invalid value"),
    (
        "ref-and-template",
        edit(BS, spec__targets=[{"name": "a", "deploymentRef": "x", "template": TEMPLATE}]),
        "spec.targets[0].deploymentRef: Required value: set exactly one of deploymentRef and template",
    ),
    (
        "neither-ref-nor-template",
        edit(BS, spec__targets=[{"name": "a"}]),
        "spec.targets[0].deploymentRef: Required value",
    ),
    (
        "axes-without-template",
        edit(BS, spec__targets=[{"name": "a", "deploymentRef": "x", "axes": {"engine": ["vllm"]}}]),
        "spec.targets[0].axes: Forbidden",
    ),
    (
        "axis-tensor-parallel-beyond-gpus",
        edit(BS, spec__targets=[{"name": "a", "template": TEMPLATE, "axes": {"tensorParallelSize": [4]}}]),
        "spec.targets[0].axes.tensorParallelSize: Invalid value",
    ),
    (
        "duplicate-target-names",
        edit(BS, spec__targets=[{"name": "a", "deploymentRef": "x"}, {"name": "a", "deploymentRef": "y"}]),
        "spec.targets: Invalid value: target names must be unique",
    ),
    (
        "two-workloads",
        edit(
            BS,
            spec__workload={
                "synthetic": BS["spec"]["workload"]["synthetic"],
                "promptsFile": {"uri": "/prompts/sharegpt.jsonl"},
            },
        ),
        "spec.workload: Required value: set exactly one of promptsFile, synthetic, sharedPrefix and trace",
    ),
    (
        "closed-loop-without-concurrency",
        edit(BS, spec__load={"mode": "closed-loop", "requests": 10}),
        "spec.load.concurrency: Required value: closed-loop needs at least one concurrency",
    ),
    (
        "unbounded-points",
        edit(BS, spec__load={"mode": "closed-loop", "concurrency": [1]}),
        "spec.load: Required value: set requests, durationSeconds or both",
    ),
    (
        "token-lengths-with-prompts-file",
        edit(BS, spec__workload={"promptsFile": {"uri": "/prompts/sharegpt.jsonl"}}),
        "spec.tokenLengths: Invalid value",
    ),
    ("zero-concurrency", edit(BS, spec__load__concurrency=[0]), "spec.load.concurrency[0]: Invalid value"),
    (
        "template-quantization-unsupported",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "a",
                    "template": {
                        **TEMPLATE,
                        "engine": {"type": "lmdeploy", "settings": {"quantization": "fp8"}},
                    },
                }
            ],
        ),
        "spec.targets[0].template.engine.settings.quantization: Invalid value",
    ),
    (
        "length-min-above-max",
        edit(
            BS,
            spec__workload={
                "synthetic": {"inputTokens": {"mean": 5, "min": 9, "max": 3}, "outputTokens": {"mean": 1}}
            },
        ),
        "spec.workload.synthetic.inputTokens.min: Invalid value",
    ),
    ("zero-parallel-points", edit(BS, spec__maxParallelPoints=0), "spec.maxParallelPoints: Invalid value"),
    (
        "gpu-engine-axis-on-a-cpu-template",
        cpu_sweep(engine=["transformers", "vllm"]),
        "spec.targets[0].axes.engine: Invalid value: axes.engine values other than transformers need a GPU",
    ),
    (
        "quantization-axis-on-a-cpu-template",
        cpu_sweep(quantization=["none", "bitsandbytes"]),
        "spec.targets[0].axes.quantization: Invalid value",
    ),
    (
        "quantization-axis-enum",
        edit(BS, spec__targets=[{"name": "a", "template": TEMPLATE, "axes": {"quantization": ["int3"]}}]),
        'spec.targets[0].axes.quantization[0]: Unsupported value: "int3"',
    ),
]


def _cases(cases: list[Case]) -> Any:
    return pytest.mark.parametrize(
        ("manifest", "expected"), [(m, e) for _, m, e in cases], ids=[i for i, _, _ in cases]
    )


@_cases(BAD_TRAINING_JOBS)
def test_bad_training_job_rejected(
    api_client: client.ApiClient,
    dry_run_namespace: str,
    manifest: dict[str, Any],
    expected: str | tuple[str, ...],
) -> None:
    assert_refused(dry_run_create(api_client, dry_run_namespace, manifest), expected)


@_cases(BAD_MODEL_DEPLOYMENTS)
def test_bad_model_deployment_rejected(
    api_client: client.ApiClient,
    dry_run_namespace: str,
    manifest: dict[str, Any],
    expected: str | tuple[str, ...],
) -> None:
    assert_refused(dry_run_create(api_client, dry_run_namespace, manifest), expected)


@_cases(BAD_BENCHMARK_SWEEPS)
def test_bad_benchmark_sweep_rejected(
    api_client: client.ApiClient,
    dry_run_namespace: str,
    manifest: dict[str, Any],
    expected: str | tuple[str, ...],
) -> None:
    assert_refused(dry_run_create(api_client, dry_run_namespace, manifest), expected)


def test_kubectl_prints_the_refusal_naming_the_field(crds: ControlPlane, dry_run_namespace: str) -> None:
    """What a user sees: ``kubectl apply --dry-run=server`` exits non-zero with the API server's message."""
    _, manifest, expected = BAD_TRAINING_JOBS[0]
    code, output = apply(crds, dry_run_namespace, manifest, "--dry-run=server")
    assert code != 0 and expected in output, output


GOOD_ON_CPU: list[tuple[str, dict[str, Any]]] = [
    (
        "training-job-ddp-fp32",
        edit(
            TJ,
            spec__resources=CPU_NODE | {"nodes": 2},
            spec__strategy={"type": "ddp"},
            spec__precision="fp32",
        ),
    ),
    ("training-job-deepspeed-bf16", edit(TJ, spec__resources=CPU_NODE)),
    (
        "transformers-deployment",
        edit(
            MD,
            spec__resources=CPU_REPLICA | {"spot": True},
            spec__engine=TRANSFORMERS,
            spec__canary=DELETE,
            spec__autoscaling=DELETE,  # transformers serve exports no metric to scale on
            spec__replicas=2,
        ),
    ),
    (
        "sweep-over-a-cpu-template",
        cpu_sweep(engine=["transformers"], quantization=["none"], tensorParallelSize=[1]),
    ),
]


@pytest.mark.parametrize("manifest", [m for _, m in GOOD_ON_CPU], ids=[i for i, _ in GOOD_ON_CPU])
def test_cpu_sizes_are_accepted_without_gpu_settings(
    api_client: client.ApiClient, dry_run_namespace: str, manifest: dict[str, Any]
) -> None:
    accepted, message = dry_run_create(api_client, dry_run_namespace, manifest)
    assert accepted, message


GOOD_SWEEPS_WITHOUT_OPTIONAL_LISTS: list[tuple[str, dict[str, Any]]] = [
    (
        "axes-without-tensor-parallel-size",
        edit(BS, spec__targets=[{"name": "a", "template": TEMPLATE, "axes": {"engine": ["vllm", "sglang"]}}]),
    ),
    (
        "prompts-file-without-token-lengths",
        edit(
            BS, spec__workload={"promptsFile": {"uri": "/prompts/sharegpt.jsonl"}}, spec__tokenLengths=DELETE
        ),
    ),
    (
        "open-loop-without-concurrency",
        edit(BS, spec__load={"mode": "open-loop", "requestRates": [1.0], "requests": 10}),
    ),
]


@pytest.mark.parametrize(
    "manifest",
    [m for _, m in GOOD_SWEEPS_WITHOUT_OPTIONAL_LISTS],
    ids=[i for i, _ in GOOD_SWEEPS_WITHOUT_OPTIONAL_LISTS],
)
def test_optional_lists_may_be_left_out(
    api_client: client.ApiClient, dry_run_namespace: str, manifest: dict[str, Any]
) -> None:
    """The CEL rules on optional lists (``axes.tensorParallelSize``, ``tokenLengths``,
    ``load.concurrency``) guard them with ``has()``: leaving them out is not a "no such key" error."""
    accepted, message = dry_run_create(api_client, dry_run_namespace, manifest)
    assert accepted, message


def _get(cluster: ControlPlane, namespace: str, resource: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "-n", namespace, resource, "-o", "json").stdout)


def test_good_manifests_are_stored_with_server_defaults(crds: ControlPlane, namespace: str) -> None:
    for manifest in (good_training_job(), good_model_deployment(), good_benchmark_sweep()):
        code, output = apply(crds, namespace, manifest)
        assert code == 0, output

    job = _get(crds, namespace, "trainingjob/llama-lora")["spec"]
    assert job["precision"] == "bf16"
    assert job["backoffLimit"] == 3
    assert job["stallTimeoutSeconds"] == 1800
    assert job["checkpoint"] == {"intervalSteps": 500, "keepLast": 3}
    assert job["strategy"]["cpuOffload"] == "none"
    assert job["method"]["lora"]["targetModules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert job["strategy"]["deepspeedConfig"] == {"zero_optimization": {}}, "free-form config kept"

    deployment = _get(crds, namespace, "modeldeployment/llama-8b")["spec"]
    assert deployment["autoscaling"]["cooldownSeconds"] == 300
    assert deployment["engine"]["settings"]["dtype"] == "auto"
    assert deployment["canary"]["replicas"] == 1

    sweep = _get(crds, namespace, "benchmarksweep/engines")["spec"]
    assert sweep["maxParallelPoints"] == 1
    assert sweep["workload"]["synthetic"]["inputTokens"]["distribution"] == "constant"


def test_kubectl_get_modelfleet_lists_all_kinds(crds: ControlPlane, namespace: str) -> None:
    for manifest in (good_training_job(), good_model_deployment(), good_benchmark_sweep()):
        assert apply(crds, namespace, manifest)[0] == 0
    listed = crds.kubectl("get", "modelfleet", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(listed) == [
        "benchmarksweep.modelfleet.io/engines",
        "modeldeployment.modelfleet.io/llama-8b",
        "trainingjob.modelfleet.io/llama-lora",
    ]
    table = crds.kubectl("get", "tj", "-n", namespace).stdout.splitlines()[0].split()
    assert table == ["NAME", "PHASE", "WORKERS", "GPUS", "PROGRESS", "LOSS", "EVAL-LOSS", "COST", "AGE"]


def test_kubectl_explain_shows_field_docs(crds: ControlPlane) -> None:
    explained = crds.kubectl("explain", "trainingjob.spec.strategy").stdout
    assert "How the model is distributed over the GPUs" in " ".join(explained.split())
    assert "zeroStage" in explained
    tensor_parallel = " ".join(
        crds.kubectl("explain", "modeldeployment.spec.engine.settings.tensorParallelSize").stdout.split()
    )
    assert (
        "Rules: engine.settings.tensorParallelSize cannot exceed resources.gpusPerReplica" in tensor_parallel
    )
    output = " ".join(crds.kubectl("explain", "trainingjob.spec.output.uri").stdout.split())
    assert "output.uri is a path inside the worker pod, lost with the pod" in output


def _patch(
    cluster: ControlPlane, namespace: str, resource: str, patch: dict[str, Any], *flags: str
) -> tuple[int, str]:
    done = cluster.kubectl(
        "patch", "-n", namespace, resource, "--type=merge", "-p", json.dumps(patch), *flags, check=False
    )
    return done.returncode, done.stdout + done.stderr


HOLD_FINALIZER = "tests.modelfleet.io/hold"


@pytest.fixture
def held_training_job(crds: ControlPlane, namespace: str) -> Iterator[str]:
    """A TrainingJob whose status only the test writes: the session operator reconciles every TrainingJob
    in the cluster and would overwrite a hand-written phase, except of objects being deleted (it leaves
    those alone). So the object is deleted at once and kept by a finalizer of the test's own; spec and
    status stay writable (and the CRD's transition rules apply) until the finalizer is removed."""
    manifest = good_training_job()
    manifest["metadata"]["finalizers"] = [HOLD_FINALIZER]
    assert apply(crds, namespace, manifest)[0] == 0
    resource = "trainingjob/llama-lora"
    crds.kubectl("delete", "-n", namespace, resource, "--wait=false")
    # the operator stops at deletionTimestamp; a pass already running when it was set writes once more
    last = ""
    for _ in range(20):
        time.sleep(1.0)
        version = _get(crds, namespace, resource)["metadata"]["resourceVersion"]
        if version == last:
            break
        last = version
    try:
        yield resource
    finally:
        _patch(crds, namespace, resource, {"metadata": {"finalizers": None}})


@pytest.mark.parametrize(
    ("spec_patch", "field"),
    [
        ({"resources": {"nodes": 4}}, "spec.resources.nodes"),
        ({"resources": {"gpusPerNode": 4}}, "spec.resources.gpusPerNode"),
        ({"method": {"type": "full", "lora": None}}, "spec.method"),
        ({"strategy": {"zeroStage": 3}}, "spec.strategy"),
    ],
    ids=["nodes", "gpusPerNode", "method", "strategy"],
)
def test_topology_is_frozen_while_running(
    crds: ControlPlane, held_training_job: str, namespace: str, spec_patch: dict[str, Any], field: str
) -> None:
    resource = held_training_job
    code, output = _patch(crds, namespace, resource, {"status": {"phase": "Running"}}, "--subresource=status")
    assert code == 0, output

    code, output = _patch(crds, namespace, resource, {"spec": spec_patch})
    assert code != 0
    assert f"{field}: Forbidden: {field} cannot change while the job is Scheduling or Running" in output

    code, output = _patch(crds, namespace, resource, {"spec": {"hyperparameters": {"learningRate": 1e-4}}})
    assert code == 0, f"fields outside the frozen set stay editable while running: {output}"


def test_topology_can_change_once_suspended(
    crds: ControlPlane, held_training_job: str, namespace: str
) -> None:
    resource = held_training_job
    assert (
        _patch(crds, namespace, resource, {"status": {"phase": "Suspended"}}, "--subresource=status")[0] == 0
    )
    code, output = _patch(crds, namespace, resource, {"spec": {"resources": {"nodes": 4}}})
    assert code == 0, output
    assert _get(crds, namespace, resource)["spec"]["resources"]["nodes"] == 4


def test_status_is_a_subresource(crds: ControlPlane, namespace: str) -> None:
    """A spec write cannot set status (the operator owns it), so users cannot fake a phase."""
    manifest = good_training_job()
    manifest["status"] = {"phase": "Succeeded"}
    assert apply(crds, namespace, manifest)[0] == 0
    assert _get(crds, namespace, "trainingjob/llama-lora").get("status", {}).get("phase") != "Succeeded"
