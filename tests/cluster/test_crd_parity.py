"""Parity: every spec-only check of the training runtime and of the operator has a CRD rule that
refuses the same mistake at apply time, on the same field.

For each check there is a manifest that (a) the check itself refuses, naming a field, run the way it
runs in production (the training runtime on the config the operator renders from the TrainingJob; the
operator on the parsed spec), and (b) the real API server refuses with `spec.<that field>`. The checks
are found in their source (every ``Problem(...)`` of the runtime's config check, every refusal of the
operator's spec checks): one that no case triggers and that is not declared environment-dependent
fails ``test_every_check_has_a_parity_case``, so a rule cannot exist on the runtime's or operator's
side only. (Rules that exist in the CRD only are the point of the CRD; ``test_crd_mistakes`` makes
sure each of them refuses some mistake.)
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from modelfleet_api import engines as api_engines
from modelfleet_api import serving
from modelfleet_api.benchmarksweep import BenchmarkSweep
from modelfleet_api.modeldeployment import ModelDeployment
from modelfleet_api.trainingjob import TrainingJob
from modelfleet_operator.benchmark import grid
from modelfleet_operator.benchmark.names import ChildNames
from modelfleet_operator.serving import builders as serving_builders
from modelfleet_operator.serving.engines import launch_problem
from modelfleet_operator.training import builders as training_builders
from modelfleet_train import config as runtime_config
from pydantic import ValidationError

from hack.controlplane.cluster import ControlPlane
from tests.cluster.manifest_cases import (
    BENCHMARK_SWEEP_MISTAKES,
    MODEL_DEPLOYMENT_MISTAKES,
    QLORA_MODEL,
    TJ,
    TRAINING_JOB_MISTAKES,
    edit,
)

pytestmark = pytest.mark.cluster

NAMESPACE, UID = "ml", "0f0f-parity"
IMAGES = dict.fromkeys(serving.EngineType, "image")


@dataclass
class Sites:
    """The refusal sites of a check, found in its source: (module, first line, last line, source)."""

    sites: list[tuple[str, int, int, str]] = field(default_factory=list)
    hit: set[tuple[str, int, int, str]] = field(default_factory=set)

    def add(
        self, module: ModuleType, node_filter: Callable[[ast.AST], bool], within: str | None = None
    ) -> None:
        source = inspect.getsource(module)
        tree = ast.parse(source)
        scope: ast.AST = tree
        if within is not None:
            scope = next(
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.FunctionDef | ast.ClassDef) and n.name == within
            )
        for node in ast.walk(scope):
            if node_filter(node):
                segment = ast.get_source_segment(source, node) or ""
                assert node.end_lineno is not None
                self.sites.append((module.__name__, node.lineno, node.end_lineno, segment))

    def record(self, module_name: str, line: int) -> None:
        for site in self.sites:
            if site[0] == module_name and site[1] <= line <= site[2]:
                self.hit.add(site)


def _calls(name: str) -> Callable[[ast.AST], bool]:
    return lambda n: isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name


def _returns_text(node: ast.AST) -> bool:
    """A ``return <f-string or str>`` (a check that returns its refusal)."""
    return (
        isinstance(node, ast.Return)
        and isinstance(node.value, ast.JoinedStr | ast.Constant | ast.BinOp)
        and not (isinstance(node.value, ast.Constant) and node.value.value is None)
    )


def _raises(name: str) -> Callable[[ast.AST], bool]:
    return lambda n: (
        isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and getattr(n.exc.func, "id", "") == name
    )


# ---- the training runtime's config check ------------------------------------------------------------
RUNTIME_SITES = Sites()
RUNTIME_SITES.add(runtime_config, _calls("Problem"), within="check_config")
for function in (
    "_model_problems", "_method_problems", "_tokenizer_problems", "_strategy_problems",
    "_precision_problems", "_data_problems",
    "_storage_problems", "_schedule_problems", "_tracking_problems", "_evaluation_problems",
    "_topology_problems",
):  # fmt: skip
    RUNTIME_SITES.add(runtime_config, _calls("Problem"), within=function)

RUNTIME_ENVIRONMENT = {
    "CUDA GPU": "qlora needs a GPU: the job waits on a GPU pool, the CRD cannot know the node",
    "bitsandbytes package": "a library of the image, not of the spec",
    "fp16 needs a GPU": "the node, not the spec",
    "Problem(field, str(error))": "an az:// URI needs AZURE_STORAGE_ACCOUNT in the pod's environment",
    "package is not installed in this image": "a library of the image (mlflow, wandb, comet, lm-eval, "
    "sacrebleu, rouge-score), not of the spec",
    "processes were started": "the world size torchrun was started with",
}
"""Runtime problems that depend on the machine or the image, by a text of their source, and why."""

# Cases: a TrainingJob mistake of ``manifest_cases`` (by id) and the field the runtime names.
TRAINING_PARITY: list[tuple[str, str]] = [
    ("4-bit-full-fine-tune", "model.loadIn4bit"),
    ("dpo-on-4-bit-without-adapters", "method.lora"),
    ("lora-settings-on-a-full-fine-tune", "method.lora"),
    ("dpo-settings-with-lora", "method.dpo"),
    ("qlora-under-deepspeed", "strategy.type"),
    ("full-dpo-under-zero3", "method.lora"),
    ("zero-stage-with-ddp", "strategy.zeroStage"),
    ("cpu-offload-with-fsdp", "strategy.cpuOffload"),
    ("deepspeed-config-with-fsdp", "strategy.deepspeedConfig"),
    ("fsdp-settings-with-ddp", "strategy.fsdp"),
    ("offload-under-zero0", "strategy.cpuOffload"),
    ("param-offload-needs-zero3", "strategy.cpuOffload"),
    ("deepspeed-batch-size-override", "strategy.deepspeedConfig"),
    ("fp16-under-fsdp", "precision"),
    ("dataset-parquet-read-as-jsonl", "dataset.format"),
    ("dpo-with-packing", "dataset.packing"),
    ("pretrain-reading-chat-messages", "dataset.fields.messages"),
    ("warmup-beyond-max-steps", "hyperparameters.warmupSteps"),
    ("select-best-without-held-out-data", "output.select"),
    ("select-best-with-checkpoints-between-evaluations", "evaluation.intervalSteps"),
    ("held-out-fraction-and-dataset", "evaluation.dataset"),
    ("merge-adapter-of-a-full-fine-tune", "output.mergeAdapter"),
    ("merge-adapter-of-a-full-model-dpo", "output.mergeAdapter"),
    ("reward-with-packing", "dataset.packing"),
    ("reward-scored-on-generated-answers", "evaluation.generation"),
    ("reward-on-lm-eval-tasks", "evaluation.lmEval"),
    ("reward-on-4-bit-without-adapters", "method.lora"),
    ("model-left-out", "model"),
    ("tokenizer-with-a-model", "model"),
    ("tokenizer-settings-on-lora", "method.tokenizer"),
    ("tokenizer-with-lora-settings", "method.lora"),
    ("tokenizer-with-evaluation", "evaluation"),
    ("tokenizer-under-zero3", "strategy"),
    ("tokenizer-tracked-in-mlflow", "tracking"),
    ("tokenizer-packing", "dataset.packing"),
    ("tokenizer-reading-chat-messages", "dataset.fields.messages"),
    ("streaming-by-epochs", "hyperparameters.maxSteps"),
    ("streaming-with-a-held-out-fraction", "evaluation.holdoutFraction"),
    ("tokenizer-streaming", "dataset.streaming"),
]

EXTRA_TRAINING_CASES: dict[str, dict[str, Any]] = {
    "4-bit-full-fine-tune": edit(
        TJ, spec__model=QLORA_MODEL, spec__method={"type": "full"}, spec__strategy={"type": "ddp"}
    ),
    "dpo-settings-with-lora": edit(TJ, spec__method={"type": "lora", "dpo": {"beta": 0.2}}),
    "zero-stage-with-ddp": edit(TJ, spec__strategy={"type": "ddp", "zeroStage": 2}),
    "cpu-offload-with-fsdp": edit(TJ, spec__strategy={"type": "fsdp", "cpuOffload": "optimizer"}),
    "deepspeed-config-with-fsdp": edit(
        TJ, spec__strategy={"type": "fsdp", "deepspeedConfig": {"gradient_clipping": 1.0}}
    ),
    "fsdp-settings-with-ddp": edit(
        TJ, spec__strategy={"type": "ddp", "fsdp": {"reshardAfterForward": False}}
    ),
    "param-offload-needs-zero3": edit(
        TJ, spec__strategy={"type": "deepspeed", "zeroStage": 2, "cpuOffload": "optimizer_and_params"}
    ),
    "warmup-beyond-max-steps": edit(TJ, spec__hyperparameters={"maxSteps": 100, "warmupSteps": 100}),
}
"""Cases whose mistake sits in ``test_crd_validation`` (or needs a ddp strategy to isolate one rule)."""


def _training_manifest(case: str) -> dict[str, Any]:
    if case in EXTRA_TRAINING_CASES:
        return EXTRA_TRAINING_CASES[case]
    return next(m for i, m, _ in TRAINING_JOB_MISTAKES if i == case)


def runtime_fields(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fields the training runtime's check names for the config the operator renders from
    ``manifest``, on a machine with a GPU, bitsandbytes and mlflow (so only spec rules speak)."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name in ("bitsandbytes", "mlflow") else real_find_spec(name, *a),
    )
    original = runtime_config.Problem

    def recording(*args: Any, **kwargs: Any) -> Any:
        RUNTIME_SITES.record(runtime_config.__name__, sys._getframe(1).f_lineno)
        return original(*args, **kwargs)

    monkeypatch.setattr(runtime_config, "Problem", recording)
    body = {**manifest, "metadata": {**manifest["metadata"], "namespace": NAMESPACE, "uid": UID}}
    job = TrainingJob.model_validate(body)
    rendered = training_builders.runtime_config(training_builders.Owner.of(job), job.spec).to_yaml()
    try:
        config = runtime_config.parse_config(rendered)
    except runtime_config.ConfigError as error:
        return [p.field for p in error.problems]
    return [p.field for p in runtime_config.check_config(config, runtime_config.Machine(cuda_available=True))]


# ---- the operator's spec checks ---------------------------------------------------------------------
OPERATOR_SITES = Sites()
OPERATOR_SITES.add(grid, _raises("InvalidSweep"))
OPERATOR_SITES.add(serving, _returns_text, within="settings_support_problem")
OPERATOR_SITES.add(serving, _returns_text, within="served_name_problem")
OPERATOR_SITES.add(api_engines.base, _raises("EngineConfigError"), within="EngineCommand")
OPERATOR_ENVIRONMENT: dict[str, str] = {
    "status.points[": "compares the stored status (a running search's points) with the spec",
    "raise EngineConfigError(problem)": "not a rule of its own: re-raises the refusals of the support "
    "table and the served-name check (sites above, each with its case)",
}

RUNTIME_TO_SPEC = {"apiKeyEnv": "apiKeySecret"}
"""The runtime config's name of a field the operator fills from another spec field."""

# Cases: (kind, mistake id in manifest_cases) and the spec field the operator's check names.
OPERATOR_PARITY: list[tuple[str, str, str]] = [
    ("bs", "awq-axis-with-transformers", "targets[0].axes.quantization"),
    ("bs", "same-deployment-twice", "targets"),
    ("bs", "multi-turn-with-a-triton-template", "workload.multiTurn"),
    ("md", "transformers-awq", "engine.settings.quantization"),
    ("md", "tgi-float32", "engine.settings.dtype"),
    ("md", "transformers-max-model-length", "engine.settings.maxModelLength"),
    ("md", "lmdeploy-lora-over-awq", "engine.settings.loraAdapters"),
    ("md", "transformers-served-name-with-a-tag", "servedModelName"),
    ("md", "transformers-api-key", "apiKeySecret"),
]


def operator_fields(kind: str, manifest: dict[str, Any]) -> list[str]:
    """The spec fields the operator's checks name for ``manifest``, as the reconciler runs them: the
    model parse (``InvalidSpec`` from a ValidationError), the launch check of each track, the grid."""
    body = {**manifest, "metadata": {**manifest["metadata"], "namespace": NAMESPACE, "uid": UID}}
    tracer = _SiteTracer()
    with tracer:
        try:
            if kind == "bs":
                sweep = BenchmarkSweep.model_validate(body)
                grid.expand_targets(ChildNames(sweep.metadata["name"], NAMESPACE), sweep.spec)
                return []
            deployment = ModelDeployment.model_validate(body)
            owner = serving_builders.Owner.of(deployment)
            problems = [
                launch_problem(serving_builders.runtime_config(owner, deployment.spec, track))
                for track in serving_builders.tracks(deployment.spec, IMAGES)
            ]
            return [_spec_field(p) for p in problems if p is not None]
        except ValidationError as error:
            return [_spec_field(e["msg"].removeprefix("Value error, ")) for e in error.errors()]
        except grid.InvalidSweep as error:
            return [str(error).split(":", 1)[0].removeprefix("spec.")]


def _spec_field(message: str) -> str:
    head = message.split(":", 1)[0].split(" ", 1)[0]
    return RUNTIME_TO_SPEC.get(head, head)


class _SiteTracer:
    """Records every line run in the modules holding operator refusal sites (sys.settrace, scoped)."""

    MODULES = {site[0] for site in OPERATOR_SITES.sites}

    def __enter__(self) -> None:
        def local(frame: Any, event: str, _arg: Any) -> Any:
            if event == "line":
                OPERATOR_SITES.record(frame.f_globals.get("__name__", ""), frame.f_lineno)
            return local

        def global_(frame: Any, _event: str, _arg: Any) -> Any:
            return local if frame.f_globals.get("__name__") in self.MODULES else None

        self._previous = sys.gettrace()
        sys.settrace(global_)

    def __exit__(self, *_exc: object) -> None:
        sys.settrace(self._previous)


# ---- the API server's side --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def refusals(crds: ControlPlane) -> Iterator[Callable[[dict[str, Any]], str]]:
    namespace = f"t-crd-parity-{uuid.uuid4().hex[:5]}"
    crds.kubectl("create", "namespace", namespace)

    def refusal(manifest: dict[str, Any]) -> str:
        done = crds.kubectl(
            "apply", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(manifest), check=False
        )
        assert done.returncode != 0, f"the API server accepted {manifest['metadata']['name']}"
        return done.stdout + done.stderr

    try:
        yield refusal
    finally:
        crds.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.mark.parametrize(("case", "field_"), TRAINING_PARITY, ids=[c for c, _ in TRAINING_PARITY])
def test_runtime_check_and_crd_refuse_the_same_field(
    refusals: Callable[[dict[str, Any]], str], monkeypatch: pytest.MonkeyPatch, case: str, field_: str
) -> None:
    manifest = _training_manifest(case)
    assert field_ in runtime_fields(manifest, monkeypatch)
    assert f"spec.{field_}:" in refusals(manifest)


@pytest.mark.parametrize(("kind", "case", "field_"), OPERATOR_PARITY, ids=[c for _, c, _ in OPERATOR_PARITY])
def test_operator_check_and_crd_refuse_the_same_field(
    refusals: Callable[[dict[str, Any]], str], kind: str, case: str, field_: str
) -> None:
    cases = BENCHMARK_SWEEP_MISTAKES if kind == "bs" else MODEL_DEPLOYMENT_MISTAKES
    manifest = next(m for i, m, _ in cases if i == case)
    assert field_ in operator_fields(kind, manifest)
    assert f"spec.{field_}:" in refusals(manifest)


def test_every_check_has_a_parity_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs every parity case through the checks (no API server needed) and lists the refusal sites of
    the runtime's and the operator's checks that none triggered and that depend on the spec alone."""
    for case, _ in TRAINING_PARITY:
        runtime_fields(_training_manifest(case), monkeypatch)
    for kind, case, _ in OPERATOR_PARITY:
        cases = BENCHMARK_SWEEP_MISTAKES if kind == "bs" else MODEL_DEPLOYMENT_MISTAKES
        operator_fields(kind, next(m for i, m, _ in cases if i == case))
    for sites, environment in ((RUNTIME_SITES, RUNTIME_ENVIRONMENT), (OPERATOR_SITES, OPERATOR_ENVIRONMENT)):
        assert sites.sites, "no check found in the source: the parity test lost track of the checks"
        missing = [
            f"{module}:{first}: {text}"
            for module, first, last, text in sites.sites
            if (module, first, last, text) not in sites.hit
            and not any(marker in text for marker in environment)
        ]
        assert not missing, "checks with no CRD parity case (add one, or a rule to the CRD):\n" + "\n".join(
            missing
        )
