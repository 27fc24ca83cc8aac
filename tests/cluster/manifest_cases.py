"""Realistic manifests for the API server: mistakes it must refuse naming the field, and valid
variety it must accept (names at their length limits included).

Each mistake is one a user plausibly writes: a relative or web path where a storage URI belongs, a
setting the chosen engine has no equivalent for, a combination the training runtime cannot run, a
name that is valid for the custom resource but not for the Service made from it, an unbounded count.
``test_crd_mistakes`` applies them with `kubectl apply --dry-run=server`.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.unit.test_api_models import (
    example_manifests,
    good_benchmark_sweep,
    good_model_deployment,
    good_training_job,
)

DELETE = object()
"""``edit`` value that removes the key."""


def edit(manifest: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy with each ``a__b__c=value`` set at path a.b.c (``DELETE`` removes the key)."""
    out = copy.deepcopy(manifest)
    for path, value in changes.items():
        node = out
        *parents, leaf = path.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return out


Case = tuple[str, dict[str, Any], str | tuple[str, ...]]
"""(id, manifest, text(s) the API server's error must contain: the field path and what is wrong)."""

URI_FILES = "must be a path in the pod (/PATH), pvc://CLAIM/PATH or az://CONTAINER/PATH"
URI_MODELS = "must be a path in the pod (/PATH), pvc://CLAIM/PATH, az://CONTAINER/PATH"
URI_POD_FILES = "must be a path in the pod (/PATH) or az://CONTAINER/PATH"
URI_BLOB = "must be az://CONTAINER/PATH"
LOST_WITH_POD = "is a path inside the worker pod, lost with the pod"
DNS_1035 = "metadata.name must be a DNS-1035 label"
OBJECT_NAME = "must be a Kubernetes object name"
QUANTITY = "must be a positive quantity"
HTTP = "must be an http:// or https:// URL"
MLFLOW = "must be an MLflow tracking URI with a scheme"

TJ = good_training_job("mistake")
QLORA = {"type": "qlora", "lora": {"r": 16}}
QLORA_MODEL = {"uri": "meta-llama/Llama-3.1-8B", "loadIn4bit": True}
TOKENIZER_JOB = edit(
    TJ,
    spec__model=DELETE,
    spec__method={"type": "tokenizer", "tokenizer": {"algorithm": "bpe", "vocabSize": 32000}},
    spec__strategy=DELETE,
    spec__dataset={"uri": "az://data/corpus.jsonl"},
    spec__resources={"nodes": 1, "gpusPerNode": 0, "instanceType": "Standard_D16s_v5"},
)
"""A valid tokenizer job (``VALID`` has it) that its mistakes edit."""

TRAINING_JOB_MISTAKES: list[Case] = [
    # names the worker Service and hostnames are made from
    ("name-with-a-dot", edit(TJ, metadata__name="llama.lora"), DNS_1035),
    ("name-starting-with-a-digit", edit(TJ, metadata__name="8b-lora"), DNS_1035),
    ("name-with-capitals", edit(TJ, metadata__name="Llama-LoRA"), "metadata.name: Invalid value"),
    # where the trained model and checkpoints go
    ("output-relative-path", edit(TJ, spec__output={"uri": "outputs/llama"}), ("spec.output.uri", URI_FILES)),
    (
        "output-inside-the-pod",
        edit(TJ, spec__output={"uri": "/outputs/llama"}),
        ("spec.output.uri", LOST_WITH_POD),
    ),
    (
        "output-file-scheme",
        edit(TJ, spec__output={"uri": "file:///outputs/llama"}),
        ("spec.output.uri", LOST_WITH_POD),
    ),
    ("output-on-s3", edit(TJ, spec__output={"uri": "s3://models/llama"}), ("spec.output.uri", URI_FILES)),
    (
        "output-with-a-space",
        edit(TJ, spec__output={"uri": "az://models/llama lora"}),
        ("spec.output.uri", URI_FILES),
    ),
    (
        "output-with-a-sas-token",
        edit(TJ, spec__output={"uri": "https://acct.blob.core.windows.net/models/x?sv=2024&sig=abc"}),
        ("spec.output.uri", URI_FILES),
    ),
    (
        "output-as-a-hub-id",
        edit(TJ, spec__output={"uri": "myorg/llama-lora"}),
        ("spec.output.uri", URI_FILES),
    ),
    (
        "output-container-too-short",
        edit(TJ, spec__output={"uri": "az://ml/llama"}),
        ("spec.output.uri", URI_FILES),
    ),
    (
        "checkpoints-inside-the-pod",
        edit(TJ, spec__checkpoint={"uri": "/checkpoints"}),
        ("spec.checkpoint.uri", LOST_WITH_POD),
    ),
    (
        "checkpoints-on-gcs",
        edit(TJ, spec__checkpoint={"uri": "gs://ckpt/llama"}),
        ("spec.checkpoint.uri", URI_FILES),
    ),
    (
        "checkpoints-leaving-the-claim",
        edit(TJ, spec__checkpoint={"uri": "pvc://runs/../etc"}),
        ("spec.checkpoint.uri", URI_FILES),
    ),
    # where the base model and data come from
    (
        "model-as-a-web-page",
        edit(TJ, spec__model={"uri": "https://huggingface.co/meta-llama/Llama-3.1-8B"}),
        ("spec.model.uri", URI_MODELS, "a web page is not a model: give the hub id"),
    ),
    (
        "model-with-a-space",
        edit(TJ, spec__model={"uri": "meta-llama/Llama 3.1 8B"}),
        ("spec.model.uri", URI_MODELS),
    ),
    (
        "model-claim-in-capitals",
        edit(TJ, spec__model={"uri": "pvc://Models/llama"}),
        ("spec.model.uri", URI_MODELS),
    ),
    (
        "model-relative-dot-path",
        edit(TJ, spec__model={"uri": "./models/llama"}),
        ("spec.model.uri", URI_MODELS),
    ),
    (
        "dataset-on-a-web-server",
        edit(TJ, spec__dataset={"uri": "https://example.com/alpaca.jsonl"}),
        ("spec.dataset.uri", URI_MODELS),
    ),
    (
        "dataset-parquet-read-as-jsonl",
        edit(TJ, spec__dataset={"uri": "az://data/train.parquet"}),
        ("spec.dataset.format", "format must match the file's extension"),
    ),
    (
        "dataset-jsonl-read-as-parquet",
        edit(TJ, spec__dataset={"uri": "az://data/train.jsonl", "format": "parquet"}),
        ("spec.dataset.format", "format must match the file's extension"),
    ),
    (
        "hub-dataset-without-format-hf",
        edit(TJ, spec__dataset={"uri": "tatsu-lab/alpaca"}),
        ("spec.dataset.format", "a Hugging Face dataset id (ORG/NAME) is read with format hf"),
    ),
    (
        "format-hf-on-blob-storage",
        edit(TJ, spec__dataset={"uri": "az://data/alpaca", "format": "hf"}),
        ("spec.dataset.format", "format hf reads a hub id or a dataset directory in the pod"),
    ),
    (
        "empty-split",
        edit(TJ, spec__dataset={"uri": "tatsu-lab/alpaca", "format": "hf", "split": ""}),
        "spec.dataset.split",
    ),
    (
        "empty-text-column",
        edit(TJ, spec__dataset={"uri": "az://data/a.jsonl", "fields": {"text": ""}}),
        "spec.dataset.fields.text",
    ),
    # what the training runtime cannot run
    (
        "dpo-with-packing",
        edit(
            TJ,
            spec__method={"type": "dpo", "lora": {"r": 8}},
            spec__dataset={"uri": "az://data/p.jsonl", "packing": True},
        ),
        ("spec.dataset.packing", "dpo and reward compare whole chosen and rejected sequences"),
    ),
    (
        "pretrain-reading-chat-messages",
        edit(
            TJ,
            spec__method={"type": "pretrain"},
            spec__dataset={"uri": "az://data/c.jsonl", "fields": {"messages": "conversation"}},
        ),
        ("spec.dataset.fields.messages", "pretrain, dpo, reward and tokenizer do not read chat messages"),
    ),
    (
        "dpo-reading-chat-messages",
        edit(
            TJ,
            spec__method={"type": "dpo", "lora": {"r": 8}},
            spec__dataset={"uri": "az://data/c.jsonl", "fields": {"messages": "m"}},
        ),
        "spec.dataset.fields.messages",
    ),
    (
        "qlora-under-deepspeed",
        edit(TJ, spec__method=QLORA, spec__model=QLORA_MODEL),
        ("spec.strategy.type", "4-bit (qlora) training runs with strategy ddp"),
    ),
    (
        "qlora-under-fsdp",
        edit(TJ, spec__method=QLORA, spec__model=QLORA_MODEL, spec__strategy={"type": "fsdp"}),
        "spec.strategy.type: Invalid value",
    ),
    (
        "full-dpo-under-zero3",
        edit(TJ, spec__method={"type": "dpo"}, spec__strategy={"type": "deepspeed", "zeroStage": 3}),
        ("spec.method.lora: Required value", "full-model DPO under ZeRO-3"),
    ),
    (
        "fp16-under-fsdp",
        edit(TJ, spec__precision="fp16", spec__strategy={"type": "fsdp"}),
        ("spec.precision", "fp16 loss scaling comes with strategy deepspeed only"),
    ),
    (
        "fp16-under-ddp",
        edit(TJ, spec__precision="fp16", spec__strategy={"type": "ddp"}),
        "spec.precision: Invalid value",
    ),
    (
        "deepspeed-batch-size-override",
        edit(TJ, spec__strategy={"type": "deepspeed", "deepspeedConfig": {"train_batch_size": 64}}),
        ("spec.strategy.deepspeedConfig: Forbidden", "train_batch_size"),
    ),
    (
        "deepspeed-accumulation-override",
        edit(TJ, spec__strategy={"type": "deepspeed", "deepspeedConfig": {"gradient_accumulation_steps": 8}}),
        "spec.strategy.deepspeedConfig: Forbidden",
    ),
    (
        "dpo-on-4-bit-without-adapters",
        edit(TJ, spec__method={"type": "dpo"}, spec__model=QLORA_MODEL, spec__strategy={"type": "ddp"}),
        ("spec.method.lora: Required value", "dpo and reward on a 4-bit model train adapters"),
    ),
    (
        "qlora-in-fp32",
        edit(
            TJ,
            spec__method=QLORA,
            spec__model=QLORA_MODEL,
            spec__strategy={"type": "ddp"},
            spec__precision="fp32",
        ),
        ("spec.precision", "a 4-bit base model computes in bf16 or fp16"),
    ),
    (
        "lora-settings-on-a-full-fine-tune",
        edit(TJ, spec__method={"type": "full", "lora": {"r": 8}}),
        (
            "spec.method.lora: Forbidden",
            "lora settings apply only to method types lora, qlora, dpo and reward",
        ),
    ),
    (
        "offload-under-zero0",
        edit(TJ, spec__strategy={"type": "deepspeed", "zeroStage": 0, "cpuOffload": "optimizer"}),
        ("spec.strategy.cpuOffload", "cpuOffload needs ZeRO stage 1, 2 or 3"),
    ),
    # reward models
    (
        "reward-with-packing",
        edit(
            TJ, spec__method={"type": "reward"}, spec__dataset={"uri": "az://data/p.jsonl", "packing": True}
        ),
        ("spec.dataset.packing: Forbidden", "dpo and reward compare whole chosen and rejected sequences"),
    ),
    (
        "reward-with-dpo-beta",
        edit(TJ, spec__method={"type": "reward", "dpo": {"beta": 0.2}}),
        ("spec.method.dpo: Forbidden", "dpo settings apply only to method type dpo"),
    ),
    (
        "reward-scored-on-generated-answers",
        edit(
            TJ,
            spec__method={"type": "reward"},
            spec__evaluation={"holdoutFraction": 0.1, "generation": {"uri": "az://data/ref.jsonl"}},
        ),
        ("spec.evaluation.generation: Forbidden", "a reward model generates none"),
    ),
    (
        "reward-on-lm-eval-tasks",
        edit(TJ, spec__method={"type": "reward"}, spec__evaluation={"lmEval": {"tasks": ["arc_easy"]}}),
        ("spec.evaluation.lmEval: Forbidden", "evaluation.lmEval scores generated answers"),
    ),
    (
        "reward-on-4-bit-without-adapters",
        edit(TJ, spec__method={"type": "reward"}, spec__model=QLORA_MODEL, spec__strategy={"type": "ddp"}),
        ("spec.method.lora: Required value", "dpo and reward on a 4-bit model train adapters"),
    ),
    (
        "reward-from-scratch",
        edit(TJ, spec__method={"type": "reward"}, spec__model={"uri": "/models/llama", "fromScratch": True}),
        ("spec.model.fromScratch", "trains all its weights: method.type full or pretrain"),
    ),
    (
        "merge-adapter-of-a-full-reward-model",
        edit(
            TJ, spec__method={"type": "reward"}, spec__output={"uri": "az://models/rm", "mergeAdapter": True}
        ),
        ("spec.output.mergeAdapter: Forbidden", "or dpo or reward with method.lora"),
    ),
    # streamed data
    (
        "streaming-by-epochs",
        edit(
            TJ,
            spec__dataset={"uri": "az://data/shards/", "streaming": True},
            spec__hyperparameters={"epochs": 2},
        ),
        ("spec.hyperparameters.maxSteps: Required value", "a streamed data set has no length"),
    ),
    (
        "streaming-with-a-held-out-fraction",
        edit(
            TJ,
            spec__dataset={"uri": "az://data/shards/", "streaming": True},
            spec__evaluation={"holdoutFraction": 0.05},
        ),
        ("spec.evaluation.holdoutFraction: Forbidden", "hold out a data set of its own"),
    ),
    (
        "tokenizer-streaming",
        edit(TOKENIZER_JOB, spec__dataset={"uri": "az://data/corpus.jsonl", "streaming": True}),
        ("spec.dataset.streaming: Forbidden", "method tokenizer reads the data set once"),
    ),
    # tokenizer training
    ("model-left-out", edit(TJ, spec__model=DELETE), ("spec.model: Required value", "model is required")),
    (
        "tokenizer-with-a-model",
        edit(TOKENIZER_JOB, spec__model={"uri": "meta-llama/Llama-3.1-8B"}),
        ("spec.model: Forbidden", "method tokenizer trains a tokenizer from the data set alone"),
    ),
    (
        "tokenizer-settings-on-lora",
        edit(TJ, spec__method={"type": "lora", "tokenizer": {"vocabSize": 32000}}),
        ("spec.method.tokenizer: Forbidden", "tokenizer settings apply only to method type tokenizer"),
    ),
    (
        "tokenizer-with-lora-settings",
        edit(TOKENIZER_JOB, spec__method={"type": "tokenizer", "lora": {"r": 8}}),
        ("spec.method.lora: Forbidden", "lora settings apply only to method types"),
    ),
    (
        "tokenizer-on-two-workers",
        edit(
            TOKENIZER_JOB, spec__resources={"nodes": 2, "gpusPerNode": 0, "instanceType": "Standard_D16s_v5"}
        ),
        ("spec.resources.nodes", "method tokenizer trains on one worker"),
    ),
    (
        "tokenizer-on-a-gpu",
        edit(TOKENIZER_JOB, spec__resources={"gpusPerNode": 1, "instanceType": "Standard_NC40adis_H100_v5"}),
        ("spec.resources.gpusPerNode", "method tokenizer uses no GPU"),
    ),
    (
        "tokenizer-with-evaluation",
        edit(TOKENIZER_JOB, spec__evaluation={"holdoutFraction": 0.1}),
        ("spec.evaluation: Forbidden", "method tokenizer trains no model to evaluate"),
    ),
    (
        "tokenizer-under-zero3",
        edit(TOKENIZER_JOB, spec__strategy={"type": "deepspeed", "zeroStage": 3}),
        ("spec.strategy: Forbidden", "method tokenizer runs one process and distributes no model"),
    ),
    (
        "tokenizer-tracked-in-mlflow",
        edit(TOKENIZER_JOB, spec__tracking={"mlflowUri": "http://mlflow.ml:5000"}),
        ("spec.tracking: Forbidden", "method tokenizer reports no training metrics"),
    ),
    (
        "tokenizer-packing",
        edit(TOKENIZER_JOB, spec__dataset={"uri": "az://data/corpus.jsonl", "packing": True}),
        ("spec.dataset.packing: Forbidden", "method tokenizer reads the raw text"),
    ),
    (
        "tokenizer-reading-chat-messages",
        edit(TOKENIZER_JOB, spec__dataset={"uri": "az://data/c.jsonl", "fields": {"messages": "m"}}),
        ("spec.dataset.fields.messages: Forbidden", "pretrain, dpo, reward and tokenizer do not read chat"),
    ),
    (
        "unigram-with-min-frequency",
        edit(
            TOKENIZER_JOB,
            spec__method={"type": "tokenizer", "tokenizer": {"algorithm": "unigram", "minFrequency": 5}},
        ),
        ("spec.method.tokenizer.minFrequency: Forbidden", "the unigram trainer prunes by likelihood"),
    ),
    (
        "tokenizer-bos-among-the-additional",
        edit(
            TOKENIZER_JOB,
            spec__method={
                "type": "tokenizer",
                "tokenizer": {"specialTokens": {"additional": ["<|user|>", "<s>"]}},
            },
        ),
        ("spec.method.tokenizer.specialTokens.additional", "must differ from each other"),
    ),
    (
        "tokenizer-pad-is-eos",
        edit(
            TOKENIZER_JOB,
            spec__method={"type": "tokenizer", "tokenizer": {"specialTokens": {"pad": "</s>"}}},
        ),
        "spec.method.tokenizer.specialTokens.additional: Invalid value",
    ),
    (
        "tokenizer-vocabulary-of-ten",
        edit(TOKENIZER_JOB, spec__method={"type": "tokenizer", "tokenizer": {"vocabSize": 10}}),
        "spec.method.tokenizer.vocabSize",
    ),
    # child objects the names go into
    ("negative-cpu", edit(TJ, spec__resources__cpu="-4"), ("spec.resources.cpu", QUANTITY)),
    ("zero-memory", edit(TJ, spec__resources__memory="0"), ("spec.resources.memory", QUANTITY)),
    (
        "memory-in-gigabytes-spelling",
        edit(TJ, spec__resources__memory="64GB"),
        ("spec.resources.memory", QUANTITY),
    ),
    (
        "shared-memory-above-the-pods-memory",
        edit(TJ, spec__resources__memory="64Gi", spec__resources__sharedMemory="128Gi"),
        ("spec.resources.sharedMemory", "sharedMemory is memory of the pod: it must not exceed memory"),
    ),
    (
        "zero-shared-memory",
        edit(TJ, spec__resources__sharedMemory="0"),
        ("spec.resources.sharedMemory", QUANTITY),
    ),
    (
        "grace-period-too-short-to-checkpoint",
        edit(TJ, spec__terminationGracePeriodSeconds=5),
        "spec.terminationGracePeriodSeconds: Invalid value",
    ),
    (
        "grace-period-of-a-day",
        edit(TJ, spec__terminationGracePeriodSeconds=86400),
        "spec.terminationGracePeriodSeconds: Invalid value",
    ),
    (
        "queue-name-with-a-slash",
        edit(TJ, spec__queueName="team-a/gpu"),
        ("spec.queueName", "usable as a label value"),
    ),
    ("queue-name-in-capitals", edit(TJ, spec__queueName="TeamA"), "spec.queueName: Invalid value"),
    ("queue-name-too-long", edit(TJ, spec__queueName="q" * 64), "spec.queueName: Too long"),
    (
        "priority-class-underscore",
        edit(TJ, spec__priorityClassName="high_priority"),
        ("spec.priorityClassName", OBJECT_NAME),
    ),
    (
        "service-account-in-capitals",
        edit(TJ, spec__serviceAccountName="Trainer"),
        ("spec.serviceAccountName", OBJECT_NAME),
    ),
    (
        "node-pool-in-capitals",
        edit(TJ, spec__resources__nodePool="GPUPool"),
        "spec.resources.nodePool: Invalid value",
    ),
    # counts and durations
    (
        "max-steps-unbounded",
        edit(TJ, spec__hyperparameters={"maxSteps": 10**11}),
        "spec.hyperparameters.maxSteps: Invalid value",
    ),
    (
        "warmup-unbounded",
        edit(TJ, spec__hyperparameters={"warmupSteps": 10**9}),
        "spec.hyperparameters.warmupSteps: Invalid value",
    ),
    (
        "negative-seed",
        edit(TJ, spec__hyperparameters={"seed": -1}),
        "spec.hyperparameters.seed: Invalid value",
    ),
    (
        "seed-beyond-32-bits",
        edit(TJ, spec__hyperparameters={"seed": 2**40}),
        "spec.hyperparameters.seed: Invalid value",
    ),
    (
        "grad-norm-unbounded",
        edit(TJ, spec__hyperparameters={"maxGradNorm": 1e9}),
        "spec.hyperparameters.maxGradNorm: Invalid value",
    ),
    (
        "zero-accumulation",
        edit(TJ, spec__hyperparameters={"gradientAccumulationSteps": 0}),
        "spec.hyperparameters.gradientAccumulationSteps",
    ),
    (
        "sequence-length-4",
        edit(TJ, spec__hyperparameters={"sequenceLength": 4}),
        "spec.hyperparameters.sequenceLength: Invalid value",
    ),
    (
        "schedule-unknown",
        edit(TJ, spec__hyperparameters={"lrSchedule": "exponential"}),
        "spec.hyperparameters.lrSchedule: Unsupported value",
    ),
    (
        "ttl-of-ten-years",
        edit(TJ, spec__ttlSecondsAfterFinished=315_360_000),
        "spec.ttlSecondsAfterFinished: Invalid value",
    ),
    (
        "checkpoint-every-0-steps",
        edit(TJ, spec__checkpoint={"intervalSteps": 0}),
        "spec.checkpoint.intervalSteps: Invalid value",
    ),
    (
        "checkpoint-interval-unbounded",
        edit(TJ, spec__checkpoint={"intervalSteps": 10**9}),
        "spec.checkpoint.intervalSteps: Invalid value",
    ),
    (
        "keep-no-checkpoint",
        edit(TJ, spec__checkpoint={"keepLast": 0}),
        "spec.checkpoint.keepLast: Invalid value",
    ),
    ("300-nodes", edit(TJ, spec__resources__nodes=300), "spec.resources.nodes: Invalid value"),
    ("backoff-1000", edit(TJ, spec__backoffLimit=1000), "spec.backoffLimit: Invalid value"),
    (
        "scheduling-timeout-of-a-month",
        edit(TJ, spec__schedulingTimeoutSeconds=2_592_000),
        "spec.schedulingTimeoutSeconds: Invalid value",
    ),
    (
        "retry-on-scheduling-timeout",
        edit(TJ, spec__onSchedulingTimeout="Retry"),
        'spec.onSchedulingTimeout: Unsupported value: "Retry"',
    ),
    (
        "requeue-backoff-above-its-maximum",
        edit(TJ, spec__requeueBackoffSeconds=600, spec__maxRequeueBackoffSeconds=60),
        "spec.maxRequeueBackoffSeconds: Invalid value",
    ),
    (
        "lora-dropout-1",
        edit(TJ, spec__method={"type": "lora", "lora": {"dropout": 1.0}}),
        "spec.method.lora.dropout: Invalid value",
    ),
    (
        "lora-no-target-modules",
        edit(TJ, spec__method={"type": "lora", "lora": {"targetModules": []}}),
        "spec.method.lora.targetModules",
    ),
    (
        "dpo-beta-0",
        edit(TJ, spec__method={"type": "dpo", "lora": {"r": 8}, "dpo": {"beta": 0}}),
        "spec.method.dpo.beta: Invalid value",
    ),
    (
        "dpo-loss-kto",
        edit(TJ, spec__method={"type": "dpo", "lora": {"r": 8}, "dpo": {"lossType": "kto"}}),
        "spec.method.dpo.lossType: Invalid value",
    ),
    # tracking endpoints
    (
        "mlflow-without-scheme",
        edit(TJ, spec__tracking={"mlflowUri": "mlflow.internal:5000"}),
        ("spec.tracking.mlflowUri", MLFLOW),
    ),
    (
        "mlflow-file-store-in-the-pod",
        edit(TJ, spec__tracking={"mlflowUri": "file:///mlruns"}),
        ("spec.tracking.mlflowUri", "is a store inside the pod (file: or sqlite:), lost with the pod"),
    ),
    (
        "mlflow-with-a-space",
        edit(TJ, spec__tracking={"mlflowUri": "http://mlflow internal"}),
        ("spec.tracking.mlflowUri", MLFLOW),
    ),
    (
        "wandb-online-without-a-key",
        edit(TJ, spec__tracking={"wandb": {"project": "llama"}}),
        ("spec.tracking.wandb.apiKeySecret: Required value", "apiKeySecret is required in online mode"),
    ),
    (
        "comet-server-without-scheme",
        edit(TJ, spec__tracking={"comet": {"project": "llama", "mode": "offline", "url": "comet.internal"}}),
        ("spec.tracking.comet.url", HTTP),
    ),
    (
        "pushgateway-without-scheme",
        edit(TJ, spec__tracking={"pushgatewayUrl": "pushgateway:9091"}),
        ("spec.tracking.pushgatewayUrl", HTTP),
    ),
    ("empty-experiment", edit(TJ, spec__tracking={"experiment": ""}), "spec.tracking.experiment"),
    (
        "env-name-with-a-space",
        edit(TJ, spec__env=[{"name": "MY VAR", "value": "1"}]),
        "spec.env[0].name: Invalid value",
    ),
    (
        "env-overriding-the-config-path",
        edit(TJ, spec__env=[{"name": "MODELFLEET_CONFIG", "value": "/x"}]),
        "spec.env: Forbidden",
    ),
    (
        "instance-type-lowercase",
        edit(TJ, spec__resources__instanceType="standard_nd96isr_h100_v5"),
        "spec.resources.instanceType: Unsupported value",
    ),
    # lineage: only an adapter can be merged
    (
        "merge-adapter-of-a-full-fine-tune",
        edit(
            TJ, spec__method={"type": "full"}, spec__output={"uri": "az://models/out", "mergeAdapter": True}
        ),
        ("spec.output.mergeAdapter: Forbidden", "needs method.type lora or qlora"),
    ),
    (
        "merge-adapter-of-a-full-model-dpo",
        edit(TJ, spec__method={"type": "dpo"}, spec__output={"uri": "az://models/out", "mergeAdapter": True}),
        ("spec.output.mergeAdapter: Forbidden", "or dpo or reward with method.lora"),
    ),
]

MD = good_model_deployment("mistake")
ANALYSIS = {
    "benchmark": {
        "workload": {"synthetic": {"inputTokens": {"mean": 128}, "outputTokens": {"mean": 64}}},
        "load": {"mode": "closed-loop", "concurrency": [1, 8], "requests": 40},
        "slos": {"ttftP95Ms": 500},
    },
    "stages": [{"weight": 5}, {"weight": 100}],
}
SECRET = {"name": "llama-api-key"}


def engine(type_: str, **settings: Any) -> dict[str, Any]:
    return {"type": type_, "settings": settings}


MODEL_DEPLOYMENT_MISTAKES: list[Case] = [
    ("name-with-a-dot", edit(MD, metadata__name="llama.8b"), DNS_1035),
    ("name-starting-with-a-digit", edit(MD, metadata__name="8b-chat"), DNS_1035),
    # engine settings the chosen engine has no equivalent for
    (
        "transformers-tensor-parallel",
        edit(MD, spec__engine=engine("transformers", tensorParallelSize=2), spec__autoscaling=DELETE),
        ("spec.engine.settings.tensorParallelSize: Forbidden", "not supported by engine transformers"),
    ),
    (
        "transformers-max-model-length",
        edit(MD, spec__engine=engine("transformers", maxModelLength=4096), spec__autoscaling=DELETE),
        "spec.engine.settings.maxModelLength: Forbidden",
    ),
    (
        "transformers-awq",
        edit(MD, spec__engine=engine("transformers", quantization="awq"), spec__autoscaling=DELETE),
        "spec.engine.settings.quantization: Invalid value",
    ),
    (
        "transformers-api-key",
        edit(MD, spec__engine=engine("transformers"), spec__autoscaling=DELETE, spec__apiKeySecret=SECRET),
        ("spec.apiKeySecret: Forbidden", "apiKeySecret is not supported by engine.type"),
    ),
    (
        "transformers-served-name-with-a-tag",
        edit(
            MD,
            spec__engine=engine("transformers"),
            spec__autoscaling=DELETE,
            spec__servedModelName="llama:latest",
        ),
        ("spec.servedModelName", "engine transformers serves under a relative path"),
    ),
    (
        "transformers-served-name-absolute",
        edit(
            MD,
            spec__engine=engine("transformers"),
            spec__autoscaling=DELETE,
            spec__servedModelName="/models/llama",
        ),
        "spec.servedModelName: Invalid value",
    ),
    (
        "triton-api-key",
        edit(MD, spec__engine=engine("triton-trtllm"), spec__autoscaling=DELETE, spec__apiKeySecret=SECRET),
        "spec.apiKeySecret: Forbidden",
    ),
    (
        "triton-dtype",
        edit(MD, spec__engine=engine("triton-trtllm", dtype="bfloat16"), spec__autoscaling=DELETE),
        ("spec.engine.settings.dtype", "settings.dtype is not supported by this engine"),
    ),
    (
        "triton-max-num-seqs",
        edit(MD, spec__engine=engine("triton-trtllm", maxNumSeqs=64), spec__autoscaling=DELETE),
        "spec.engine.settings.maxNumSeqs: Forbidden",
    ),
    (
        "triton-gpu-memory",
        edit(MD, spec__engine=engine("triton-trtllm", gpuMemoryUtilization=0.9), spec__autoscaling=DELETE),
        "spec.engine.settings.gpuMemoryUtilization: Forbidden",
    ),
    (
        "triton-prefix-caching",
        edit(MD, spec__engine=engine("triton-trtllm", prefixCaching=True), spec__autoscaling=DELETE),
        "spec.engine.settings.prefixCaching: Forbidden",
    ),
    (
        "triton-lora",
        edit(
            MD,
            spec__engine=engine("triton-trtllm", loraAdapters=[{"name": "sql", "uri": "az://adapters/sql"}]),
            spec__autoscaling=DELETE,
        ),
        "spec.engine.settings.loraAdapters: Forbidden",
    ),
    (
        "tgi-float32",
        edit(MD, spec__engine=engine("tgi", dtype="float32")),
        "spec.engine.settings.dtype: Invalid value",
    ),
    (
        "lmdeploy-float32",
        edit(MD, spec__engine=engine("lmdeploy", dtype="float32"), spec__autoscaling=DELETE),
        "spec.engine.settings.dtype",
    ),
    (
        "lmdeploy-lora-over-awq",
        edit(
            MD,
            spec__engine=engine(
                "lmdeploy", quantization="awq", loraAdapters=[{"name": "sql", "uri": "az://adapters/sql"}]
            ),
            spec__autoscaling=DELETE,
        ),
        ("spec.engine.settings.loraAdapters: Forbidden", "lmdeploy"),
    ),
    (
        "quantization-int8",
        edit(MD, spec__engine=engine("vllm", quantization="int8")),
        'spec.engine.settings.quantization: Unsupported value: "int8"',
    ),
    (
        "dtype-fp16-spelling",
        edit(MD, spec__engine=engine("vllm", dtype="fp16")),
        'spec.engine.settings.dtype: Unsupported value: "fp16"',
    ),
    (
        "gpu-memory-above-1",
        edit(MD, spec__engine=engine("vllm", gpuMemoryUtilization=1.5)),
        "spec.engine.settings.gpuMemoryUtilization",
    ),
    (
        "max-num-seqs-0",
        edit(MD, spec__engine=engine("vllm", maxNumSeqs=0)),
        "spec.engine.settings.maxNumSeqs: Invalid value",
    ),
    (
        "max-model-length-8",
        edit(MD, spec__engine=engine("vllm", maxModelLength=8)),
        "spec.engine.settings.maxModelLength: Invalid value",
    ),
    (
        "extra-arg-too-long",
        edit(MD, spec__engine=engine("vllm", extraArgs=["--x=" + "a" * 2000])),
        "spec.engine.settings.extraArgs[0]: Too long",
    ),
    (
        "canary-on-triton-with-api-key",
        edit(MD, spec__apiKeySecret=SECRET, spec__canary={"engine": engine("triton-trtllm")}),
        ("spec.apiKeySecret: Forbidden", "canary.engine.type"),
    ),
    (
        "canary-transformers-tensor-parallel",
        edit(MD, spec__canary={"engine": engine("transformers", tensorParallelSize=2)}),
        "spec.canary.engine.settings.tensorParallelSize: Forbidden",
    ),
    (
        "canary-4-bit-model",
        edit(MD, spec__canary={"model": {"uri": "org/m", "loadIn4bit": True}}),
        ("spec.canary.model.loadIn4bit: Forbidden", "canary.model.loadIn4bit is a training setting"),
    ),
    (
        "canary-transformers-served-name-with-a-tag",
        edit(MD, spec__servedModelName="llama:v2", spec__canary={"engine": engine("transformers")}),
        ("spec.servedModelName", "(canary.engine.type)"),
    ),
    # autoscaling on a metric the engine does not export
    (
        "kv-cache-autoscaling-on-tgi",
        edit(
            MD,
            spec__engine=engine("tgi"),
            spec__autoscaling={"maxReplicas": 4, "metric": "kvCacheUsage", "target": 0.8},
        ),
        ("spec.autoscaling.metric", "autoscaling.metric is not exported by this engine"),
    ),
    (
        "autoscaling-transformers",
        edit(MD, spec__engine=engine("transformers"), spec__resources={"gpusPerReplica": 1}),
        "spec.autoscaling.metric: Invalid value",
    ),
    (
        "autoscaling-lmdeploy-to-zero",
        edit(MD, spec__engine=engine("lmdeploy")),
        "spec.autoscaling.metric: Invalid value",
    ),
    (
        "running-requests-on-triton",
        edit(
            MD,
            spec__engine=engine("triton-trtllm"),
            spec__autoscaling={"maxReplicas": 4, "metric": "runningRequests", "target": 8},
        ),
        "spec.autoscaling.metric: Invalid value",
    ),
    (
        "concurrent-requests-fractional-target",
        edit(
            MD,
            spec__engine=engine("transformers"),
            spec__autoscaling={"maxReplicas": 4, "metric": "concurrentRequests", "target": 1.5},
        ),
        ("spec.autoscaling.target", "concurrentRequests counts requests: target must be a whole number"),
    ),
    (
        "cold-start-timeout-too-short",
        edit(MD, spec__autoscaling={"maxReplicas": 4, "target": 8, "coldStartTimeoutSeconds": 5}),
        "spec.autoscaling.coldStartTimeoutSeconds: Invalid value",
    ),
    (
        "autoscaling-target-0",
        edit(MD, spec__autoscaling={"maxReplicas": 4, "target": 0}),
        "spec.autoscaling.target: Invalid value",
    ),
    (
        "cooldown-of-a-week",
        edit(MD, spec__autoscaling={"maxReplicas": 4, "target": 4, "cooldownSeconds": 604800}),
        "spec.autoscaling.cooldownSeconds",
    ),
    ("500-replicas", edit(MD, spec__autoscaling=DELETE, spec__replicas=500), "spec.replicas: Invalid value"),
    ("negative-canary-weight", edit(MD, spec__canary__weight=-5), "spec.canary.weight: Invalid value"),
    ("canary-without-replicas", edit(MD, spec__canary__replicas=0), "spec.canary.replicas: Invalid value"),
    # storage and names of children
    (
        "model-as-a-web-page",
        edit(MD, spec__model={"uri": "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct"}),
        ("spec.model.uri", URI_MODELS),
    ),
    ("model-on-s3", edit(MD, spec__model={"uri": "s3://models/llama"}), "spec.model.uri: Invalid value"),
    (
        "adapter-on-s3",
        edit(MD, spec__engine=engine("vllm", loraAdapters=[{"name": "sql", "uri": "s3://adapters/sql"}])),
        ("spec.engine.settings.loraAdapters[0].uri", URI_MODELS),
    ),
    (
        "adapter-name-with-a-space",
        edit(MD, spec__engine=engine("vllm", loraAdapters=[{"name": "sql adapter", "uri": "org/sql"}])),
        "spec.engine.settings.loraAdapters[0].name: Invalid value",
    ),
    (
        "secret-name-underscore",
        edit(MD, spec__apiKeySecret={"name": "llama_key"}),
        ("spec.apiKeySecret.name", OBJECT_NAME),
    ),
    (
        "secret-key-with-a-slash",
        edit(MD, spec__apiKeySecret={"name": "llama-key", "key": "api/key"}),
        "spec.apiKeySecret.key: Invalid value",
    ),
    (
        "claim-in-capitals",
        edit(MD, spec__modelCache={"pvc": {"claimName": "Models"}}),
        ("spec.modelCache.pvc.claimName", OBJECT_NAME),
    ),
    (
        "negative-cache-size",
        edit(MD, spec__modelCache={"emptyDir": {"sizeLimit": "-10Gi"}}),
        ("spec.modelCache.emptyDir.sizeLimit", QUANTITY),
    ),
    (
        "cache-size-in-words",
        edit(MD, spec__modelCache={"emptyDir": {"sizeLimit": "lots"}}),
        ("spec.modelCache.emptyDir.sizeLimit", QUANTITY),
    ),
    ("zero-cpu", edit(MD, spec__resources__cpu="0"), ("spec.resources.cpu", QUANTITY)),
    (
        "no-gpu-on-a-gpu-size",
        edit(MD, spec__resources={"instanceType": "Standard_NC40adis_H100_v5", "gpusPerReplica": 0}),
        ("spec.resources.gpusPerReplica", "gpusPerReplica must be at least 1 on a GPU instanceType"),
    ),
    (
        "canary-quantized-on-a-cpu-size",
        edit(
            MD,
            spec__resources={"instanceType": "Standard_D4s_v5", "gpusPerReplica": 0},
            spec__engine=engine("transformers"),
            spec__autoscaling=DELETE,
            spec__canary={"engine": engine("transformers", quantization="bitsandbytes")},
        ),
        ("spec.canary.engine.settings.quantization", "needs a GPU (instanceType is a CPU VM size)"),
    ),
    ("spot-as-a-word", edit(MD, spec__resources__spot="yes"), "spec.resources.spot: Invalid value"),
    (
        "service-account-with-underscore",
        edit(MD, spec__serviceAccountName="serve_sa"),
        ("spec.serviceAccountName", OBJECT_NAME),
    ),
    # canary analysis
    (
        "analysis-stages-decreasing",
        edit(
            MD,
            spec__canary={
                "image": "serve:2",
                "analysis": {**ANALYSIS, "stages": [{"weight": 50}, {"weight": 5}]},
            },
        ),
        ("spec.canary.analysis.stages", "weights must increase from one stage to the next"),
    ),
    (
        "analysis-without-slos",
        edit(
            MD,
            spec__canary={
                "image": "serve:2",
                "analysis": {**ANALYSIS, "benchmark": {**ANALYSIS["benchmark"], "slos": {}}},
            },
        ),
        (
            "spec.canary.analysis.benchmark.slos: Required value",
            "a canary is promoted when it meets the SLOs",
        ),
    ),
    (
        "analysis-with-a-load-search",
        edit(
            MD,
            spec__canary={
                "image": "serve:2",
                "analysis": {
                    **ANALYSIS,
                    "benchmark": {
                        **ANALYSIS["benchmark"],
                        "load": {"mode": "open-loop", "requests": 50, "search": {"min": 1, "max": 64}},
                    },
                },
            },
        ),
        ("spec.canary.analysis.benchmark.load.search: Forbidden", "both tracks are compared"),
    ),
    # lineage: a model is a URI or a TrainingJob's output
    (
        "model-uri-and-training-job",
        edit(MD, spec__model={"uri": "org/model", "fromTrainingJob": {"name": "sft"}}),
        ("spec.model.uri: Required value", "set exactly one of uri and fromTrainingJob"),
    ),
    (
        "model-with-neither-uri-nor-training-job",
        edit(MD, spec__model={"trustRemoteCode": True}),
        ("spec.model.uri: Required value", "set exactly one of uri and fromTrainingJob"),
    ),
    (
        "revision-of-a-training-jobs-output",
        edit(MD, spec__canary={"model": {"fromTrainingJob": {"name": "sft"}, "revision": "main"}}),
        ("spec.canary.model.revision: Forbidden", "a TrainingJob's output has none"),
    ),
    (
        "training-job-name-with-capitals",
        edit(MD, spec__model={"fromTrainingJob": {"name": "SFT"}}),
        ("spec.model.fromTrainingJob.name", OBJECT_NAME),
    ),
]

BS = good_benchmark_sweep("mistake")
TEMPLATE = BS["spec"]["targets"][1]["template"]
SYNTHETIC = BS["spec"]["workload"]


def grid(**axes: Any) -> list[dict[str, Any]]:
    return [{"name": "grid", "template": TEMPLATE, "axes": axes}]


BENCHMARK_SWEEP_MISTAKES: list[Case] = [
    (
        "track-of-a-template",
        edit(BS, spec__targets=[{"name": "grid", "template": TEMPLATE, "track": "canary"}]),
        ("spec.targets[0].track: Forbidden", "track selects a track of a deploymentRef"),
    ),
    (
        "model-axis-over-a-training-jobs-output",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "trained",
                    "template": {"model": {"fromTrainingJob": {"name": "sft"}}},
                    "axes": {"model": ["org/a", "org/b"]},
                }
            ],
        ),
        ("spec.targets[0].axes.model: Forbidden", "has no model axis"),
    ),
    ("name-with-a-dot", edit(BS, metadata__name="engines.v2"), DNS_1035),
    ("name-starting-with-a-digit", edit(BS, metadata__name="2025-engines"), DNS_1035),
    (
        "deployment-ref-with-a-dot",
        edit(BS, spec__targets=[{"name": "a", "deploymentRef": "llama.8b"}]),
        ("spec.targets[0].deploymentRef", "must be a DNS-1035 label"),
    ),
    (
        "same-deployment-twice",
        edit(
            BS,
            spec__targets=[
                {"name": "a", "deploymentRef": "llama-8b"},
                {"name": "b", "deploymentRef": "llama-8b"},
            ],
        ),
        ("spec.targets", "two targets measure the same deploymentRef"),
    ),
    (
        "target-name-in-capitals",
        edit(BS, spec__targets=[{"name": "Grid", "deploymentRef": "x"}]),
        "spec.targets[0].name: Invalid value",
    ),
    (
        "duplicate-engine-axis",
        edit(BS, spec__targets=grid(engine=["vllm", "vllm"])),
        "spec.targets[0].axes.engine[1]: Duplicate value",
    ),
    (
        "duplicate-tp-axis",
        edit(BS, spec__targets=grid(tensorParallelSize=[2, 2])),
        "spec.targets[0].axes.tensorParallelSize[1]: Duplicate value",
    ),
    (
        "duplicate-model-axis",
        edit(BS, spec__targets=grid(model=["org/a", "org/a"])),
        "spec.targets[0].axes.model[1]: Duplicate value",
    ),
    (
        "duplicate-quantization-axis",
        edit(BS, spec__targets=grid(quantization=["awq", "awq"])),
        "spec.targets[0].axes.quantization[1]: Duplicate value",
    ),
    (
        "duplicate-concurrency",
        edit(BS, spec__load__concurrency=[8, 8]),
        "spec.load.concurrency[1]: Duplicate value",
    ),
    (
        "duplicate-request-rates",
        edit(BS, spec__load={"mode": "open-loop", "requestRates": [2.0, 2.0], "requests": 10}),
        "spec.load.requestRates[1]: Duplicate value",
    ),
    (
        "concurrency-in-open-loop",
        edit(BS, spec__load={"mode": "open-loop", "requestRates": [2.0], "concurrency": [8], "requests": 10}),
        ("spec.load.concurrency: Forbidden", "open-loop sends requestRates"),
    ),
    (
        "rates-in-closed-loop",
        edit(
            BS, spec__load={"mode": "closed-loop", "concurrency": [8], "requestRates": [2.0], "requests": 10}
        ),
        ("spec.load.requestRates: Forbidden", "closed-loop sends at concurrency"),
    ),
    (
        "mean-above-its-max",
        edit(
            BS,
            spec__workload={
                "synthetic": {"inputTokens": {"mean": 4096, "max": 2048}, "outputTokens": {"mean": 1}}
            },
            spec__tokenLengths=DELETE,
        ),
        ("spec.workload.synthetic.inputTokens.mean", "mean must lie within [min, max]"),
    ),
    (
        "stddev-on-uniform",
        edit(
            BS,
            spec__workload={
                "synthetic": {
                    "inputTokens": {"distribution": "uniform", "mean": 512, "stddev": 64},
                    "outputTokens": {"mean": 1},
                }
            },
        ),
        ("spec.workload.synthetic.inputTokens.stddev: Forbidden", "normal only"),
    ),
    (
        "awq-axis-with-transformers",
        edit(BS, spec__targets=grid(engine=["vllm", "transformers"], quantization=["awq"])),
        ("spec.targets[0].axes.quantization", "every value must be supported by every engine expanded"),
    ),
    (
        "fp8-axis-on-lmdeploy-template",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {**TEMPLATE, "engine": engine("lmdeploy")},
                    "axes": {"quantization": ["none", "fp8"]},
                }
            ],
        ),
        "spec.targets[0].axes.quantization: Invalid value",
    ),
    (
        "engine-axis-transformers-with-max-length",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {**TEMPLATE, "engine": engine("vllm", maxModelLength=8192)},
                    "axes": {"engine": ["vllm", "transformers"]},
                }
            ],
        ),
        ("spec.targets[0].axes.engine: Forbidden", "maxModelLength"),
    ),
    (
        "engine-axis-tgi-with-float32",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {**TEMPLATE, "engine": engine("vllm", dtype="float32")},
                    "axes": {"engine": ["vllm", "tgi"]},
                }
            ],
        ),
        ("spec.targets[0].axes.engine: Invalid value", "dtype"),
    ),
    *(
        (
            f"engine-axis-transformers-with-template-{setting}",
            edit(
                BS,
                spec__targets=[
                    {
                        "name": "g",
                        "template": {**TEMPLATE, "engine": engine("vllm", **{setting: value})},
                        "axes": {"engine": ["vllm", "transformers"]},
                    }
                ],
            ),
            ("spec.targets[0].axes.engine", f"the template's engine.settings.{setting}"),
        )
        for setting, value in (
            ("gpuMemoryUtilization", 0.8),
            ("maxNumSeqs", 64),
            ("prefixCaching", True),
            ("tensorParallelSize", 2),
            ("loraAdapters", [{"name": "sql", "uri": "org/sql-lora"}]),
        )
    ),
    (
        "engine-axis-lmdeploy-with-template-fp8",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {**TEMPLATE, "engine": engine("vllm", quantization="fp8")},
                    "axes": {"engine": ["vllm", "lmdeploy"]},
                }
            ],
        ),
        ("spec.targets[0].axes.engine", "the template's engine.settings.quantization"),
    ),
    (
        "engine-axis-lmdeploy-with-template-lora-over-awq",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {
                        **TEMPLATE,
                        "engine": engine(
                            "vllm", quantization="awq", loraAdapters=[{"name": "a", "uri": "org/a"}]
                        ),
                    },
                    "axes": {"engine": ["lmdeploy"]},
                }
            ],
        ),
        ("spec.targets[0].axes.engine: Forbidden", "cannot go with quantization on engine lmdeploy"),
    ),
    (
        "tp-axis-with-transformers",
        edit(BS, spec__targets=grid(engine=["transformers"], tensorParallelSize=[1, 2])),
        ("spec.targets[0].axes.tensorParallelSize", "engine transformers runs on one device"),
    ),
    (
        "model-axis-on-s3",
        edit(BS, spec__targets=grid(model=["s3://models/a"])),
        ("spec.targets[0].axes.model[0]", URI_MODELS),
    ),
    (
        "model-axis-web-page",
        edit(BS, spec__targets=grid(model=["https://huggingface.co/org/a"])),
        "spec.targets[0].axes.model[0]: Invalid value",
    ),
    (
        "template-api-key-on-transformers",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {
                        **TEMPLATE,
                        "engine": engine("transformers"),
                        "resources": {"gpusPerReplica": 1},
                        "apiKeySecret": SECRET,
                    },
                }
            ],
        ),
        "spec.targets[0].template.apiKeySecret: Forbidden",
    ),
    (
        "template-kv-autoscaling-on-tgi",
        edit(
            BS,
            spec__targets=[
                {
                    "name": "g",
                    "template": {
                        **TEMPLATE,
                        "engine": engine("tgi"),
                        "autoscaling": {"maxReplicas": 2, "metric": "kvCacheUsage", "target": 0.5},
                    },
                }
            ],
        ),
        "spec.targets[0].template.autoscaling.metric: Invalid value",
    ),
    (
        "prompts-as-a-hub-dataset",
        edit(
            BS,
            spec__workload={"promptsFile": {"uri": "anon8231489123/ShareGPT_Vicuna_unfiltered"}},
            spec__tokenLengths=DELETE,
        ),
        ("spec.workload.promptsFile.uri", URI_POD_FILES),
    ),
    (
        "prompts-on-a-claim",
        edit(
            BS, spec__workload={"promptsFile": {"uri": "pvc://data/prompts.jsonl"}}, spec__tokenLengths=DELETE
        ),
        "spec.workload.promptsFile.uri: Invalid value",
    ),
    (
        "prompts-relative-path",
        edit(BS, spec__workload={"promptsFile": {"uri": "prompts.jsonl"}}, spec__tokenLengths=DELETE),
        "spec.workload.promptsFile.uri: Invalid value",
    ),
    (
        "trace-relative-path",
        edit(BS, spec__workload={"trace": {"uri": "trace.jsonl"}}, spec__tokenLengths=DELETE),
        "spec.workload.trace.uri: Invalid value",
    ),
    (
        "results-on-s3",
        edit(BS, spec__sinks={"blobUri": "s3://results/sweeps"}),
        ("spec.sinks.blobUri", URI_BLOB),
    ),
    (
        "results-with-a-sas-token",
        edit(BS, spec__sinks={"blobUri": "https://acct.blob.core.windows.net/results?sv=2024&sig=x"}),
        "spec.sinks.blobUri: Invalid value",
    ),
    (
        "tokenizer-on-blob",
        edit(BS, spec__tokenizer="az://models/tokenizer"),
        ("spec.tokenizer", "must be a path in the pod (/PATH) or a Hugging Face id"),
    ),
    (
        "tokenizer-with-a-space",
        edit(BS, spec__tokenizer="meta-llama/Llama 3"),
        "spec.tokenizer: Invalid value",
    ),
    (
        "pushgateway-without-scheme",
        edit(BS, spec__sinks={"pushgateway": {"url": "pushgateway.monitoring:9091"}}),
        ("spec.sinks.pushgateway.url", HTTP),
    ),
    (
        "mlflow-without-scheme",
        edit(BS, spec__sinks={"mlflow": {"trackingUri": "mlflow:5000"}}),
        ("spec.sinks.mlflow.trackingUri", MLFLOW),
    ),
    (
        "search-without-slos",
        edit(
            BS,
            spec__load={"mode": "open-loop", "search": {"min": 1, "max": 64}, "requests": 50},
            spec__slos=DELETE,
        ),
        ("spec.load.search: Required value", "search finds the highest load meeting the SLOs"),
    ),
    (
        "search-with-listed-rates",
        edit(
            BS,
            spec__load={
                "mode": "open-loop",
                "search": {"min": 1, "max": 64},
                "requestRates": [2],
                "requests": 50,
            },
        ),
        ("spec.load.search: Forbidden", "search chooses the load levels itself"),
    ),
    (
        "closed-loop-search-over-fractions",
        edit(BS, spec__load={"mode": "closed-loop", "search": {"min": 1.5, "max": 64}, "requests": 50}),
        ("spec.load.search", "a closed-loop search is over concurrency"),
    ),
    (
        "open-loop-without-rates",
        edit(BS, spec__load={"mode": "open-loop", "requests": 50}),
        ("spec.load.requestRates: Required value", "open-loop needs at least one request rate"),
    ),
    (
        "multi-turn-over-kserve",
        edit(BS, spec__workload={**SYNTHETIC, "multiTurn": {"turns": 3}}, spec__protocol="kserve-v2-http"),
        ("spec.workload.multiTurn", "multi-turn conversations are sent as chat messages"),
    ),
    (
        "multi-turn-with-a-triton-template",
        edit(
            BS,
            spec__workload={**SYNTHETIC, "multiTurn": {"turns": 2}},
            spec__targets=grid(engine=["vllm", "triton-trtllm"]),
        ),
        ("spec.workload.multiTurn", "a template target running triton-trtllm speaks KServe v2"),
    ),
    (
        "multi-turn-over-a-trace",
        edit(
            BS,
            spec__workload={"trace": {"uri": "/traces/t.jsonl"}, "multiTurn": {"turns": 3}},
            spec__tokenLengths=DELETE,
        ),
        ("spec.workload.multiTurn: Forbidden", "a trace already holds its turns"),
    ),
    (
        "think-time-min-above-max",
        edit(
            BS, spec__workload={**SYNTHETIC, "multiTurn": {"thinkTime": {"minSeconds": 30, "maxSeconds": 5}}}
        ),
        ("spec.workload.multiTurn.thinkTime", "minSeconds must be <= maxSeconds"),
    ),
    (
        "trace-arrival-without-a-trace",
        edit(BS, spec__load={"mode": "open-loop", "requestRates": [1], "arrival": "trace", "requests": 50}),
        ("spec.load.arrival", "arrival trace sends requests at a trace's recorded offsets"),
    ),
    (
        "mlflow-sqlite-store-in-the-pod",
        edit(BS, spec__sinks={"mlflow": {"trackingUri": "sqlite:///mlflow.db"}}),
        ("spec.sinks.mlflow.trackingUri", "lost with the pod"),
    ),
    ("negative-ttft-slo", edit(BS, spec__slos={"ttftP95Ms": -1}), "spec.slos.ttftP95Ms: Invalid value"),
    ("slo-of-ten-hours", edit(BS, spec__slos={"e2eP95Ms": 36_000_000}), "spec.slos.e2eP95Ms: Invalid value"),
    (
        "negative-seed",
        edit(BS, spec__workload={**SYNTHETIC, "seed": -3}),
        "spec.workload.seed: Invalid value",
    ),
    (
        "service-account-in-capitals",
        edit(BS, spec__serviceAccountName="Bench"),
        ("spec.serviceAccountName", OBJECT_NAME),
    ),
]

# ---- valid variety: must be accepted as written ----------------------------------------------------


def training_job(name: str, **spec: Any) -> dict[str, Any]:
    base = {
        "model": {"uri": "meta-llama/Llama-3.1-8B"},
        "dataset": {"uri": "az://data/alpaca.jsonl"},
        "output": {"uri": "az://models/out"},
    }
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": base | spec,
    }


def model_deployment(name: str, **spec: Any) -> dict[str, Any]:
    base = {"model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"}}
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": base | spec,
    }


def benchmark_sweep(name: str, **spec: Any) -> dict[str, Any]:
    base = {
        "targets": [{"name": "current", "deploymentRef": "llama-8b"}],
        "workload": SYNTHETIC,
        "load": {"mode": "closed-loop", "concurrency": [1, 4], "requests": 50},
    }
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "BenchmarkSweep",
        "metadata": {"name": name},
        "spec": base | spec,
    }


def longest(prefix: str, length: int) -> str:
    """A name of exactly ``length`` characters, starting with ``prefix``."""
    return (prefix + "-0123456789" * 30)[: length - 1] + "z"


LONGEST_TRAINING_JOB = longest("llama-lora", 59)
LONGEST_MODEL_DEPLOYMENT = longest("llama-chat", 56)
LONGEST_BENCHMARK_SWEEP = longest("engines", 63)
LONGEST_OBJECT_NAME = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
"""253 characters: the longest Secret, ServiceAccount or PriorityClass name."""

VALID: list[tuple[str, dict[str, Any]]] = [
    ("tj-name-at-59-characters", training_job(LONGEST_TRAINING_JOB)),
    (
        "tj-lora-writing-a-merged-model",
        training_job(
            "lora-merged",
            method={"type": "lora"},
            output={"uri": "pvc://runs/lora/final", "mergeAdapter": True},
        ),
    ),
    (
        "md-from-training-jobs-stable-and-canary",
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "from-training"},
            "spec": {
                "model": {"fromTrainingJob": {"name": "sft-v1"}},
                "canary": {"model": {"fromTrainingJob": {"name": "sft-v2"}}, "weight": 5},
            },
        },
    ),
    (
        "tj-qlora-on-ddp-to-a-claim",
        training_job(
            "qlora",
            model={"uri": "pvc://models/llama-3.1-8b", "loadIn4bit": True},
            method={"type": "qlora", "lora": {"r": 64, "alpha": 16, "targetModules": ["all-linear"]}},
            strategy={"type": "ddp"},
            output={"uri": "pvc://runs/qlora/final"},
            checkpoint={"uri": "https://acct01.blob.core.windows.net/ckpt/qlora", "intervalSteps": 200},
            resources={
                "nodes": 1,
                "gpusPerNode": 2,
                "instanceType": "Standard_NC80adis_H100_v5",
                "spot": True,
            },
        ),
    ),
    ("tj-tokenizer-bpe-on-a-cpu-worker", TOKENIZER_JOB),
    (
        "tj-tokenizer-unigram-with-a-chat-template",
        edit(
            TOKENIZER_JOB,
            spec__method={
                "type": "tokenizer",
                "tokenizer": {
                    "algorithm": "unigram",
                    "vocabSize": 64000,
                    "specialTokens": {"unk": "<unk>", "additional": ["<|user|>", "<|assistant|>"]},
                    "chatTemplate": "{% for m in messages %}"
                    "<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}",
                },
            },
            spec__dataset={
                "uri": "pvc://datasets/corpus",
                "format": "parquet",
                "fields": {"text": "content"},
            },
            spec__output={"uri": "pvc://runs/tokenizers/unigram-64k"},
        ),
    ),
    (
        "tj-pretrain-from-scratch-with-a-trained-tokenizer",
        training_job(
            "scratch",
            model={
                "uri": "meta-llama/Llama-3.2-1B",
                "fromScratch": True,
                "tokenizerUri": "pvc://runs/tokenizers/unigram-64k",
                "configOverrides": {"num_hidden_layers": 8},
            },
            method={"type": "pretrain"},
            dataset={"uri": "pvc://datasets/corpus", "format": "parquet", "fields": {"text": "content"}},
        ),
    ),
    (
        "tj-reward-adapters-on-fsdp-with-held-out-pairs",
        training_job(
            "reward",
            dataset={"uri": "HuggingFaceH4/ultrafeedback_binarized", "format": "hf", "split": "train_prefs"},
            method={"type": "reward", "lora": {"r": 16}},
            strategy={"type": "fsdp"},
            evaluation={"holdoutFraction": 0.05, "intervalSteps": 100},
            output={"uri": "pvc://runs/reward/final", "mergeAdapter": True, "select": "best"},
        ),
    ),
    (
        "tj-streamed-hub-pretraining-held-out-on-its-own-set",
        training_job(
            "streamed",
            dataset={"uri": "HuggingFaceFW/fineweb-edu", "format": "hf", "split": "train", "streaming": True},
            method={"type": "pretrain"},
            hyperparameters={"maxSteps": 100_000},
            evaluation={"dataset": {"uri": "pvc://data/held-out.jsonl"}, "intervalSteps": 1000},
        ),
    ),
    (
        "tj-dpo-adapters-on-zero3-hub-dataset",
        training_job(
            "dpo",
            dataset={"uri": "HuggingFaceH4/ultrafeedback_binarized", "format": "hf", "split": "train_prefs"},
            method={"type": "dpo", "lora": {"r": 16}, "dpo": {"beta": 0.1, "lossType": "ipo"}},
            strategy={"type": "deepspeed", "zeroStage": 3},
            hyperparameters={"maxSteps": 10_000_000, "warmupSteps": 9_999_999, "seed": 2**32 - 1},
        ),
    ),
    (
        "tj-full-fsdp-parquet-on-a-claim",
        training_job(
            "fsdp-full",
            dataset={"uri": "pvc://datasets/tulu/train.parquet", "format": "parquet"},
            method={"type": "full"},
            strategy={"type": "fsdp", "fsdp": {"reshardAfterForward": False}},
            resources={
                "nodes": 256,
                "gpusPerNode": 8,
                "instanceType": "Standard_ND96isr_H100_v5",
                "cpu": "90",
                "memory": "1800Gi",
            },
        ),
    ),
    (
        "tj-pretrain-from-the-image-with-tracking",
        training_job(
            "pretrain",
            model={"uri": "/models/tiny-llama", "trustRemoteCode": True},
            dataset={"uri": "file:///data/corpus.arrow", "format": "arrow", "fields": {"text": "content"}},
            method={"type": "pretrain"},
            strategy={"type": "ddp"},
            precision="fp32",
            tracking={
                "mlflowUri": "https://mlflow.example.com:5000/",
                "experiment": "pretrain",
                "pushgatewayUrl": "http://pushgateway.monitoring:9091",
            },
            queueName="team-a.gpu",
            priorityClassName=LONGEST_OBJECT_NAME,
            serviceAccountName=LONGEST_OBJECT_NAME,
            ttlSecondsAfterFinished=2_592_000,
        ),
    ),
    (
        "tj-zero3-param-offload-fp16",
        training_job(
            "offload",
            precision="fp16",
            strategy={
                "type": "deepspeed",
                "zeroStage": 3,
                "cpuOffload": "optimizer_and_params",
                "deepspeedConfig": {
                    "zero_optimization": {"overlap_comm": True},
                    "wall_clock_breakdown": False,
                },
            },
            dataset={"uri": "az://data/chat.jsonl", "fields": {"messages": "conversation"}},
        ),
    ),
    ("md-name-at-56-characters", model_deployment(LONGEST_MODEL_DEPLOYMENT)),
    (
        "md-transformers-on-cpu",
        model_deployment(
            "tiny-chat",
            model={"uri": "/models/tiny"},
            servedModelName="tiny/llama_v2.1",
            engine=engine("transformers", dtype="float32"),
            resources={"instanceType": "Standard_NC40adis_H100_v5", "cpu": "500m", "memory": "1.5Gi"},
            replicas=1,
        ),
    ),
    (
        "md-triton-tensor-parallel-8",
        model_deployment(
            "triton-70b",
            model={"uri": "az://engines/llama-70b-trtllm"},
            servedModelName="ensemble",
            engine=engine("triton-trtllm", tensorParallelSize=8, extraArgs=["--log-verbose=1"]),
            resources={"gpusPerReplica": 8, "instanceType": "Standard_ND96isr_H100_v5"},
            autoscaling={"minReplicas": 1, "maxReplicas": 3, "metric": "queueDepth", "target": 16},
        ),
    ),
    (
        "md-tgi-awq-with-api-key",
        model_deployment(
            "tgi-awq",
            model={"uri": "TheBloke/Llama-2-13B-AWQ", "revision": "main"},
            engine=engine(
                "tgi", dtype="bfloat16", quantization="awq", maxModelLength=8192, prefixCaching=True
            ),
            autoscaling={
                "minReplicas": 0,
                "maxReplicas": 100,
                "metric": "requestsPerSecond",
                "target": 5,
                "cooldownSeconds": 86400,
            },
            apiKeySecret={"name": LONGEST_OBJECT_NAME, "key": "token.txt"},
        ),
    ),
    (
        "md-lmdeploy-gptq",
        model_deployment(
            "lmdeploy-gptq",
            engine=engine(
                "lmdeploy", quantization="gptq", dtype="float16", gpuMemoryUtilization=0.5, maxNumSeqs=256
            ),
            modelCache={"pvc": {"claimName": "model-cache.rwx", "readOnly": False}},
        ),
    ),
    (
        "md-vllm-adapters-and-sglang-canary",
        model_deployment(
            "adapters",
            engine=engine(
                "vllm",
                loraAdapters=[
                    {"name": "sql", "uri": "pvc://adapters/sql"},
                    {"name": "chat", "uri": "https://acct01.blob.core.windows.net/adapters/chat"},
                    {"name": "code", "uri": "org/code-lora"},
                ],
                prefixCaching=False,
                extraArgs=["--enforce-eager", "--seed", "7"],
            ),
            modelCache={"pvc": {"claimName": "models", "readOnly": True}},
            canary={"engine": engine("sglang", tensorParallelSize=1), "weight": 0},
        ),
    ),
    ("bs-name-at-63-characters", benchmark_sweep(LONGEST_BENCHMARK_SWEEP)),
    (
        "bs-open-loop-prompts-from-blob",
        benchmark_sweep(
            "open-loop",
            workload={
                "promptsFile": {
                    "uri": "https://acct01.blob.core.windows.net/prompts/sharegpt.json",
                    "maxPrompts": 1000,
                }
            },
            load={
                "mode": "open-loop",
                "requestRates": [0.5, 1, 2, 4.5],
                "durationSeconds": 120,
                "arrival": "constant",
            },
            tokenizer="meta-llama/Llama-3.1-8B-Instruct",
            slos={"ttftP95Ms": 3_600_000, "e2eP95Ms": 20_000},
            sinks={
                "blobUri": "az://results/sweeps",
                "mlflow": {"trackingUri": "databricks"},
                "pushgateway": {"url": "https://pgw.example.com"},
            },
        ),
    ),
    (
        "bs-grid-of-engines-quantizations-and-tp",
        benchmark_sweep(
            "grid",
            targets=[
                {
                    "name": "g",
                    "template": {
                        "model": {"uri": "meta-llama/Llama-3.1-8B-Instruct"},
                        "resources": {"gpusPerReplica": 2, "instanceType": "Standard_NC80adis_H100_v5"},
                    },
                    "axes": {
                        "engine": ["vllm", "sglang", "tgi"],
                        "quantization": ["none", "awq", "fp8"],
                        "tensorParallelSize": [1, 2],
                        "model": ["meta-llama/Llama-3.1-8B-Instruct", "az://models/llama-ft"],
                    },
                }
            ],
        ),
    ),
    (
        "bs-transformers-template-on-cpu",
        benchmark_sweep(
            "cpu",
            targets=[
                {
                    "name": "tiny",
                    "template": {
                        "model": {"uri": "/models/tiny"},
                        "servedModelName": "tiny/llama",
                        "engine": engine("transformers", dtype="float32"),
                        "replicas": 1,
                    },
                }
            ],
            tokenizer="/models/tiny",
        ),
    ),
    (
        "bs-trace-replay-from-the-pod",
        benchmark_sweep(
            "replay",
            workload={"trace": {"uri": "/traces/trace.jsonl", "maxRequests": 500}, "seed": 2**32 - 1},
            load={"mode": "open-loop", "requestRates": [1], "requests": 100},
        ),
    ),
]

# ---- secrets and pod overrides: env from Secrets and ConfigMaps, hub tokens, spec.podTemplate -------
TOKEN = {"name": "hf-token"}
SIDECAR = {"name": "proxy", "image": "envoyproxy/envoy:v1.31.0"}
PLACEMENT_LABELS = "place the pods already: set the field named instead"


def pod_template(**spec: Any) -> dict[str, Any]:
    return {"spec": spec}


def requirement(key: str, operator: str, *values: str) -> dict[str, Any]:
    term = {"matchExpressions": [{"key": key, "operator": operator, "values": list(values)}]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}


MD_POD = "spec.podTemplate.spec"
MODEL_DEPLOYMENT_MISTAKES += [
    (
        "env-with-value-and-value-from",
        edit(
            MD,
            spec__env=[
                {"name": "HF_TOKEN", "value": "hf_x", "valueFrom": {"secretKeyRef": TOKEN | {"key": "t"}}}
            ],
        ),
        ("spec.env[0].valueFrom: Forbidden", "set value or valueFrom, not both"),
    ),
    (
        "env-value-from-secret-and-config-map",
        edit(
            MD,
            spec__env=[
                {
                    "name": "LOG_LEVEL",
                    "valueFrom": {
                        "secretKeyRef": {"name": "s", "key": "k"},
                        "configMapKeyRef": {"name": "c", "key": "k"},
                    },
                }
            ],
        ),
        ("spec.env[0].valueFrom", "valueFrom takes exactly one of secretKeyRef and configMapKeyRef"),
    ),
    (
        "env-value-from-secret-without-key",
        edit(MD, spec__env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token"}}}]),
        "spec.env[0].valueFrom.secretKeyRef.key: Required value",
    ),
    (
        "token-secret-with-a-blob-model",
        edit(MD, spec__model={"uri": "az://models/llama", "tokenSecret": TOKEN}),
        (
            "spec.model.tokenSecret: Forbidden",
            "tokenSecret is a Hugging Face hub token: uri must be a hub id",
        ),
    ),
    (
        "token-secret-and-hf-token-env",
        edit(
            MD,
            spec__model={"uri": "meta-llama/Llama-3.1-8B-Instruct", "tokenSecret": TOKEN},
            spec__env=[{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": TOKEN | {"key": "token"}}}],
        ),
        ("spec.env: Forbidden", "env HF_TOKEN is set from model.tokenSecret: drop one of them"),
    ),
    (
        "canary-token-secret-and-hf-token-env",
        edit(
            MD,
            spec__canary={"model": {"uri": "meta-llama/Llama-3.1-8B-Instruct", "tokenSecret": TOKEN}},
            spec__env=[{"name": "HF_TOKEN", "value": "hf_x"}],
        ),
        ("spec.env: Forbidden", "env HF_TOKEN is set from canary.model.tokenSecret"),
    ),
    (
        "pod-label-taking-the-selector",
        edit(MD, spec__podTemplate={"metadata": {"labels": {"app.kubernetes.io/component": "gpu"}}}),
        (
            "spec.podTemplate.metadata.labels: Forbidden",
            "keys starting with app.kubernetes.io/ or modelfleet.io/",
        ),
    ),
    (
        "pod-label-key-with-spaces",
        edit(MD, spec__podTemplate={"metadata": {"labels": {"cost center": "ml"}}}),
        ("spec.podTemplate.metadata.labels: Invalid value", "labels: every key must be a qualified name"),
    ),
    (
        "pod-label-value-too-long",
        edit(MD, spec__podTemplate={"metadata": {"labels": {"team": "x" * 64}}}),
        "spec.podTemplate.metadata.labels.team: Too long",
    ),
    (
        "pod-annotation-taking-the-config-hash",
        edit(MD, spec__podTemplate={"metadata": {"annotations": {"modelfleet.io/config-hash": "0"}}}),
        (
            "spec.podTemplate.metadata.annotations: Forbidden",
            "annotations: keys starting with modelfleet.io/",
        ),
    ),
    (
        "pod-annotation-key-with-two-slashes",
        edit(MD, spec__podTemplate={"metadata": {"annotations": {"a/b/c": "x"}}}),
        "annotations: every key must be a qualified name",
    ),
    (
        "toleration-exists-with-a-value",
        edit(
            MD,
            spec__podTemplate=pod_template(
                tolerations=[{"key": "dedicated", "operator": "Exists", "value": "ml"}]
            ),
        ),
        (f"{MD_POD}.tolerations[0].value: Forbidden", "value must be unset with operator Exists"),
    ),
    (
        "toleration-without-key-with-equal",
        edit(MD, spec__podTemplate=pod_template(tolerations=[{"value": "ml", "effect": "NoSchedule"}])),
        (f"{MD_POD}.tolerations[0].operator", "a toleration without key tolerates every taint"),
    ),
    (
        "toleration-seconds-on-no-schedule",
        edit(
            MD,
            spec__podTemplate=pod_template(
                tolerations=[
                    {"key": "dedicated", "value": "ml", "effect": "NoSchedule", "tolerationSeconds": 60}
                ]
            ),
        ),
        (
            f"{MD_POD}.tolerations[0].tolerationSeconds: Forbidden",
            "tolerationSeconds applies to effect NoExecute",
        ),
    ),
    (
        "toleration-key-with-a-space",
        edit(MD, spec__podTemplate=pod_template(tolerations=[{"key": "gpu type", "operator": "Exists"}])),
        (f"{MD_POD}.tolerations[0].key", "must be a qualified name"),
    ),
    (
        "node-affinity-on-the-instance-type",
        edit(
            MD,
            spec__podTemplate=pod_template(
                affinity=requirement("node.kubernetes.io/instance-type", "In", "Standard_ND96isr_H100_v5")
            ),
        ),
        ("matchExpressions[0].key: Forbidden", PLACEMENT_LABELS),
    ),
    (
        "node-affinity-in-without-values",
        edit(MD, spec__podTemplate=pod_template(affinity=requirement("topology.kubernetes.io/zone", "In"))),
        ("matchExpressions[0].values: Required value", "values needs at least one value with operator In"),
    ),
    (
        "node-affinity-exists-with-values",
        edit(
            MD, spec__podTemplate=pod_template(affinity=requirement("example.com/fast-disk", "Exists", "yes"))
        ),
        ("matchExpressions[0].values: Forbidden", "values must be empty with operator Exists"),
    ),
    (
        "node-affinity-gt-a-word",
        edit(
            MD, spec__podTemplate=pod_template(affinity=requirement("example.com/generation", "Gt", "four"))
        ),
        ("matchExpressions[0].values: Invalid value", "values must be one integer with operator Gt or Lt"),
    ),
    (
        "pod-affinity-between-pods",
        edit(MD, spec__podTemplate=pod_template(affinity={"podAntiAffinity": {}})),
        'unknown field "spec.podTemplate.spec.affinity.podAntiAffinity"',
    ),
    (
        "volume-with-two-sources",
        edit(
            MD,
            spec__podTemplate=pod_template(
                volumes=[{"name": "certs", "secret": {"secretName": "ca"}, "configMap": {"name": "ca"}}]
            ),
        ),
        (f"{MD_POD}.volumes[0]", "a volume takes exactly one source"),
    ),
    (
        "volume-from-a-host-path",
        edit(
            MD, spec__podTemplate=pod_template(volumes=[{"name": "host", "hostPath": {"path": "/var/run"}}])
        ),
        'unknown field "spec.podTemplate.spec.volumes[0].hostPath"',
    ),
    (
        "volume-named-like-the-model-cache",
        edit(MD, spec__podTemplate=pod_template(volumes=[{"name": "model-cache", "emptyDir": {}}])),
        (f"{MD_POD}.volumes: Forbidden", "are the ModelDeployment pods' own volume names"),
    ),
    (
        "volume-named-with-capitals",
        edit(MD, spec__podTemplate=pod_template(volumes=[{"name": "Certs", "emptyDir": {}}])),
        (f"{MD_POD}.volumes[0].name", "must be a DNS label"),
    ),
    (
        "volume-mount-over-the-model-cache",
        edit(
            MD,
            spec__podTemplate=pod_template(
                volumes=[{"name": "extra", "emptyDir": {}}],
                volumeMounts=[{"name": "extra", "mountPath": "/models/extra"}],
            ),
        ),
        (
            f"{MD_POD}.volumeMounts: Forbidden",
            "where the operator mounts the ModelDeployment pods' own volumes",
        ),
    ),
    (
        "volume-mount-of-no-volume",
        edit(
            MD,
            spec__podTemplate=pod_template(volumeMounts=[{"name": "certs", "mountPath": "/etc/ssl/custom"}]),
        ),
        (f"{MD_POD}.volumeMounts", "each name must be a volume of podTemplate.spec.volumes"),
    ),
    (
        "volume-mount-relative-path",
        edit(
            MD,
            spec__podTemplate=pod_template(
                volumes=[{"name": "certs", "secret": {"secretName": "ca"}}],
                volumeMounts=[{"name": "certs", "mountPath": "etc/ssl"}],
            ),
        ),
        (f"{MD_POD}.volumeMounts[0].mountPath", "must be an absolute path in the container"),
    ),
    (
        "volume-item-path-leaving-the-volume",
        edit(
            MD,
            spec__podTemplate=pod_template(
                volumes=[
                    {
                        "name": "certs",
                        "secret": {"secretName": "ca", "items": [{"key": "ca", "path": "../ca.crt"}]},
                    }
                ]
            ),
        ),
        (
            f"{MD_POD}.volumes[0].secret.items[0].path",
            "must be a relative path (not starting with '/') without '..'",
        ),
    ),
    (
        "sidecar-named-server",
        edit(MD, spec__podTemplate=pod_template(sidecars=[SIDECAR | {"name": "server"}])),
        (f"{MD_POD}.sidecars: Forbidden", "are the ModelDeployment pods' own container names"),
    ),
    (
        "sidecar-on-the-engine-port",
        edit(MD, spec__podTemplate=pod_template(sidecars=[SIDECAR | {"ports": [{"containerPort": 8000}]}])),
        (
            f"{MD_POD}.sidecars: Forbidden",
            "are the ModelDeployment workload's: a sidecar must listen elsewhere",
        ),
    ),
    (
        "sidecar-mounting-no-volume",
        edit(
            MD,
            spec__podTemplate=pod_template(
                sidecars=[SIDECAR | {"volumeMounts": [{"name": "x", "mountPath": "/x"}]}]
            ),
        ),
        (
            f"{MD_POD}.sidecars",
            "sidecars: each volumeMounts name must be a volume of podTemplate.spec.volumes",
        ),
    ),
    (
        "sidecar-asking-for-a-gpu",
        edit(
            MD,
            spec__podTemplate=pod_template(
                sidecars=[SIDECAR | {"resources": {"limits": {"nvidia.com/gpu": "1"}}}]
            ),
        ),
        'unknown field "spec.podTemplate.spec.sidecars[0].resources.limits.nvidia.com/gpu"',
    ),
    (
        "sidecar-port-name-with-capitals",
        edit(
            MD,
            spec__podTemplate=pod_template(
                sidecars=[SIDECAR | {"ports": [{"name": "Admin", "containerPort": 9901}]}]
            ),
        ),
        (f"{MD_POD}.sidecars[0].ports[0].name", "must be an IANA service name"),
    ),
]

TJ_POD = "spec.podTemplate.spec"
TRAINING_JOB_MISTAKES += [
    (
        "token-secret-with-a-claim-model",
        edit(TJ, spec__model={"uri": "pvc://models/llama", "tokenSecret": TOKEN}),
        ("spec.model.tokenSecret: Forbidden", "uri or tokenizerUri must be a hub id"),
    ),
    (
        "token-secret-and-hf-token-env",
        edit(
            TJ,
            spec__model={"uri": "meta-llama/Llama-3.1-8B", "tokenSecret": TOKEN},
            spec__env=[{"name": "HF_TOKEN", "value": "hf_x"}],
        ),
        ("spec.env: Forbidden", "env HF_TOKEN is set from model.tokenSecret"),
    ),
    (
        "volume-named-like-the-cache",
        edit(TJ, spec__podTemplate=pod_template(volumes=[{"name": "pvc-0", "emptyDir": {}}])),
        (f"{TJ_POD}.volumes: Forbidden", "are the TrainingJob pods' own volume names"),
    ),
    (
        "volume-mount-on-the-config",
        edit(
            TJ,
            spec__podTemplate=pod_template(
                volumes=[{"name": "extra", "configMap": {"name": "extra"}}],
                volumeMounts=[{"name": "extra", "mountPath": "/etc/modelfleet"}],
            ),
        ),
        (f"{TJ_POD}.volumeMounts: Forbidden", "where the operator mounts the TrainingJob pods' own volumes"),
    ),
    (
        "sidecar-named-trainer",
        edit(TJ, spec__podTemplate=pod_template(sidecars=[SIDECAR | {"name": "trainer"}])),
        (f"{TJ_POD}.sidecars: Forbidden", "are the TrainingJob pods' own container names"),
    ),
    (
        "sidecar-on-the-rendezvous-port",
        edit(TJ, spec__podTemplate=pod_template(sidecars=[SIDECAR | {"ports": [{"containerPort": 29500}]}])),
        (f"{TJ_POD}.sidecars: Forbidden", "are the TrainingJob workload's"),
    ),
]

BS_POD = "spec.podTemplate.spec"
BENCHMARK_SWEEP_MISTAKES += [
    (
        "volume-named-results",
        edit(BS, spec__podTemplate=pod_template(volumes=[{"name": "results", "emptyDir": {}}])),
        (f"{BS_POD}.volumes: Forbidden", "are the BenchmarkSweep pods' own volume names"),
    ),
    (
        "volume-mount-on-the-results",
        edit(
            BS,
            spec__podTemplate=pod_template(
                volumes=[{"name": "prompts", "configMap": {"name": "prompts"}}],
                volumeMounts=[{"name": "prompts", "mountPath": "/results"}],
            ),
        ),
        (
            f"{BS_POD}.volumeMounts: Forbidden",
            "where the operator mounts the BenchmarkSweep pods' own volumes",
        ),
    ),
    (
        "sidecar-named-bench",
        edit(BS, spec__podTemplate=pod_template(sidecars=[SIDECAR | {"name": "bench"}])),
        (f"{BS_POD}.sidecars: Forbidden", "are the BenchmarkSweep pods' own container names"),
    ),
]

EVERYTHING_ADDED = {
    "metadata": {
        "labels": {"team": "ml-platform", "example.com/cost-center": "4711"},
        "annotations": {"prometheus.io/scrape": "true", "example.com/owner": "ml@example.com"},
    },
    "spec": {
        "tolerations": [
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 30,
            },
            {"operator": "Exists"},
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "topology.kubernetes.io/zone",
                                    "operator": "In",
                                    "values": ["westeurope-1", "westeurope-2"],
                                }
                            ]
                        },
                        {
                            "matchExpressions": [
                                {"key": "example.com/generation", "operator": "Gt", "values": ["3"]}
                            ]
                        },
                    ]
                },
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "preference": {
                            "matchExpressions": [{"key": "example.com/fast-disk", "operator": "Exists"}]
                        },
                    }
                ],
            }
        },
        "imagePullSecrets": [{"name": "acr-pull"}],
        "volumes": [
            {
                "name": "ca",
                "secret": {
                    "secretName": "corp-ca",
                    "items": [{"key": "ca.crt", "path": "certs/ca.crt", "mode": 0o444}],
                    "defaultMode": 0o400,
                },
            },
            {"name": "settings", "configMap": {"name": "engine-settings", "optional": True}},
            {"name": "shared", "persistentVolumeClaim": {"claimName": "shared-data", "readOnly": True}},
            {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
            {
                "name": "kv-secrets",
                "csi": {
                    "driver": "secrets-store.csi.k8s.io",
                    "readOnly": True,
                    "volumeAttributes": {"secretProviderClass": "llm-keys"},
                },
            },
        ],
        "volumeMounts": [
            {"name": "ca", "mountPath": "/etc/ssl/corp", "readOnly": True},
            {"name": "settings", "mountPath": "/etc/engine/settings.json", "subPath": "settings.json"},
            {"name": "kv-secrets", "mountPath": "/mnt/secrets"},
        ],
        "sidecars": [
            {
                "name": "log-shipper",
                "image": "fluent/fluent-bit:3.2",
                "imagePullPolicy": "IfNotPresent",
                "args": ["-c", "/fluent-bit/etc/fluent-bit.conf"],
                "env": [
                    {"name": "SHIP_TO", "value": "https://logs.example.com"},
                    {"name": "SHIP_KEY", "valueFrom": {"secretKeyRef": {"name": "log-key", "key": "key"}}},
                ],
                "ports": [{"name": "fb-metrics", "containerPort": 2020}],
                "resources": {
                    "requests": {"cpu": "50m", "memory": "64Mi"},
                    "limits": {"memory": "128Mi", "ephemeral-storage": "1Gi"},
                },
                "volumeMounts": [{"name": "scratch", "mountPath": "/buffer"}],
            }
        ],
    },
}
"""Every kind of addition a pod template takes, each valid."""

VALID += [
    (
        "md-gated-hub-model-with-secrets-and-every-pod-addition",
        model_deployment(
            "gated",
            model={
                "uri": "meta-llama/Llama-3.1-8B-Instruct",
                "tokenSecret": {"name": "hf-token", "key": "HF_TOKEN"},
            },
            env=[
                {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
                {
                    "name": "OTEL_ENDPOINT",
                    "valueFrom": {"configMapKeyRef": {"name": "otel", "key": "endpoint"}},
                },
                {
                    "name": "WANDB_API_KEY",
                    "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "key", "optional": True}},
                },
                {"name": "EMPTY"},
            ],
            podTemplate=EVERYTHING_ADDED,
        ),
    ),
    (
        "tj-token-for-a-hub-tokenizer-with-every-pod-addition",
        training_job(
            "gated",
            model={
                "uri": "pvc://models/llama",
                "tokenizerUri": "meta-llama/Llama-3.1-8B",
                "tokenSecret": TOKEN,
            },
            env=[{"name": "NCCL_DEBUG", "valueFrom": {"configMapKeyRef": {"name": "nccl", "key": "level"}}}],
            podTemplate=EVERYTHING_ADDED,
        ),
    ),
    ("bs-every-pod-addition", benchmark_sweep("pods", podTemplate=EVERYTHING_ADDED)),
]

# ---- evaluation ---------------------------------------------------------------------------------
HELD_OUT = {"holdoutFraction": 0.05}
TRAINING_JOB_MISTAKES += [
    (
        "held-out-fraction-and-dataset",
        edit(TJ, spec__evaluation={"holdoutFraction": 0.05, "dataset": {"uri": "az://data/eval.jsonl"}}),
        ("spec.evaluation.dataset: Forbidden", "set one"),
    ),
    (
        "eval-interval-without-held-out-data",
        edit(TJ, spec__evaluation={"intervalSteps": 100, "lmEval": {"tasks": ["arc_easy"]}}),
        ("spec.evaluation.intervalSteps: Forbidden", "set holdoutFraction or dataset"),
    ),
    (
        "evaluation-measuring-nothing",
        edit(TJ, spec__evaluation={}),
        ("spec.evaluation.holdoutFraction: Required value", "evaluation needs something to measure"),
    ),
    (
        "holding-out-most-of-the-data",
        edit(TJ, spec__evaluation={"holdoutFraction": 0.8}),
        ("spec.evaluation.holdoutFraction", "less than or equal to 0.5"),
    ),
    (
        "eval-dataset-parquet-read-as-jsonl",
        edit(TJ, spec__evaluation={"dataset": {"uri": "az://data/eval.parquet"}}),
        ("spec.evaluation.dataset.format", "format must match the file's extension"),
    ),
    (
        "eval-reference-set-as-a-hub-id",
        edit(TJ, spec__evaluation={"generation": {"uri": "myorg/references"}}),
        ("spec.evaluation.generation.uri", URI_FILES),
    ),
    (
        "generation-metric-unknown",
        edit(TJ, spec__evaluation={"generation": {"uri": "az://data/refs.jsonl", "metrics": ["meteor"]}}),
        ("spec.evaluation.generation.metrics[0]", 'supported values: "bleu"'),
    ),
    (
        "lm-eval-task-with-a-space",
        edit(TJ, spec__evaluation={"lmEval": {"tasks": ["arc easy"]}}),
        ("spec.evaluation.lmEval.tasks[0]", "must be an lm-evaluation-harness task"),
    ),
    (
        "lm-eval-without-tasks",
        edit(TJ, spec__evaluation={"lmEval": {"tasks": []}}),
        ("spec.evaluation.lmEval.tasks", "should have at least 1 items"),
    ),
    (
        "select-best-without-held-out-data",
        edit(TJ, spec__output={"uri": "az://models/out", "select": "best"}),
        ("spec.output.select: Invalid value", "set evaluation.holdoutFraction or evaluation.dataset"),
    ),
    (
        "select-best-with-checkpoints-between-evaluations",
        edit(
            TJ,
            spec__output={"uri": "az://models/out", "select": "best"},
            spec__checkpoint={"intervalSteps": 500},
            spec__evaluation={**HELD_OUT, "intervalSteps": 200},
        ),
        ("spec.evaluation.intervalSteps: Invalid value", "must be a multiple of evaluation.intervalSteps"),
    ),
]

VALID += [
    (
        "tj-evaluated-every-way-keeping-the-best",
        training_job(
            "evaluated",
            method={"type": "lora"},
            checkpoint={"uri": "az://runs/checkpoints", "intervalSteps": 400},
            output={"uri": "az://models/out", "select": "best"},
            evaluation={
                "holdoutFraction": 0.5,
                "intervalSteps": 100,
                "generation": {
                    "uri": "pvc://evals/references.jsonl",
                    "promptField": "question",
                    "referenceField": "answers",
                    "metrics": ["bleu", "rouge1", "rouge2", "rougeL", "rougeLsum", "exactMatch"],
                    "maxNewTokens": 8192,
                    "maxRows": 500,
                    "batchSize": 16,
                },
                "lmEval": {
                    "tasks": ["arc_easy", "mmlu_abstract_algebra", "leaderboard_bbh", "our-task.v2:strict"],
                    "tasksUri": "az://evals/tasks",
                    "numFewshot": 5,
                    "limit": 1000,
                    "batchSize": 8,
                    "applyChatTemplate": True,
                },
            },
        ),
    ),
    (
        "tj-evaluated-on-a-held-out-dataset-at-every-checkpoint",
        training_job(
            "held-out-set",
            output={"uri": "pvc://runs/out", "select": "best"},
            evaluation={"dataset": {"uri": "pvc://data/validation", "format": "parquet"}},
        ),
    ),
    ("tj-lm-eval-only", training_job("scored", evaluation={"lmEval": {"tasks": ["hellaswag"]}})),
]

# ---- quality of a sweep's targets (and a canary analysis') --------------------------------------------
REFERENCE_SET = {"uri": "az://evals/qa.jsonl", "metrics": ["rougeL", "exactMatch"]}
QUALITY = {"referenceSet": REFERENCE_SET, "floors": {"rougeL": 0.3}}
TRITON_TEMPLATE = {**TEMPLATE, "engine": {"type": "triton-trtllm"}}
BENCHMARK_SWEEP_MISTAKES += [
    (
        "quality-scoring-nothing",
        edit(BS, spec__quality={"floors": {}}),
        ("spec.quality.referenceSet: Required value", "quality needs something to score"),
    ),
    (
        "quality-floor-on-a-metric-not-computed",
        edit(BS, spec__quality={"referenceSet": REFERENCE_SET, "floors": {"bleu": 20}}),
        ("spec.quality.floors: Invalid value", "each key must name a score this section computes"),
    ),
    (
        "quality-floor-on-a-task-not-run",
        edit(
            BS,
            spec__quality={"lmEval": {"tasks": ["arc_easy"]}, "floors": {"lm-eval/gsm8k/exact_match": 0.5}},
        ),
        ("spec.quality.floors: Invalid value", "lm-eval/<task>/<metric> of a task in lmEval.tasks"),
    ),
    (
        "quality-floor-name-with-a-space",
        edit(
            BS,
            spec__quality={"lmEval": {"tasks": ["arc_easy"]}, "floors": {"lm-eval/arc_easy/acc norm": 0.5}},
        ),
        ("spec.quality.floors: Invalid value", "each key is a metric name of at most 128 letters"),
    ),
    (
        "quality-floor-below-zero",
        edit(BS, spec__quality={**QUALITY, "floors": {"rougeL": -0.1}}),
        ("spec.quality.floors.rougeL", "should be greater than or equal to 0"),
    ),
    (
        "quality-reference-set-from-the-hub",
        edit(BS, spec__quality={"referenceSet": {"uri": "org/qa-set"}}),
        ("spec.quality.referenceSet.uri", URI_FILES),
    ),
    (
        "quality-over-kserve",
        edit(BS, spec__quality=QUALITY, spec__protocol="kserve-v2-http"),
        ("spec.quality: Forbidden", "quality is scored through the OpenAI API (KServe v2 has no temperature"),
    ),
    (
        "quality-of-a-triton-template",
        edit(BS, spec__quality=QUALITY, spec__targets=[{"name": "trt", "template": TRITON_TEMPLATE}]),
        ("spec.quality: Forbidden", "a template target running triton-trtllm speaks KServe v2"),
    ),
]
MODEL_DEPLOYMENT_MISTAKES += [
    (
        "canary-analysis-quality-of-a-triton-canary",
        edit(
            MD,
            spec__canary={
                "engine": {"type": "triton-trtllm"},
                "analysis": {**ANALYSIS, "benchmark": {**ANALYSIS["benchmark"], "quality": QUALITY}},
            },
        ),
        (
            "spec.canary.analysis.benchmark.quality: Forbidden",
            "a track running triton-trtllm speaks KServe v2",
        ),
    ),
]
VALID += [
    (
        "bs-scoring-a-reference-set-and-lm-eval-tasks-with-floors",
        benchmark_sweep(
            "quality",
            protocol="openai-completions",
            tokenizer="meta-llama/Llama-3.1-8B-Instruct",
            quality={
                "referenceSet": {
                    **REFERENCE_SET,
                    "promptField": "q",
                    "referenceField": "a",
                    "maxRows": 500,
                    "maxNewTokens": 64,
                },
                "lmEval": {
                    "tasks": ["arc_easy", "my-task"],
                    "tasksUri": "az://evals/tasks",
                    "limit": 100,
                    "numFewshot": 5,
                },
                "floors": {
                    "rougeL": 0.3,
                    "exactMatch": 0.2,
                    "lm-eval/arc_easy/acc_norm": 0.6,
                    "lm-eval/my-task/exact_match/strict-match": 0.5,
                },
                "concurrency": 8,
            },
        ),
    ),
    (
        "md-canary-gated-on-quality",
        model_deployment(
            "gated-quality",
            canary={
                "model": {"uri": "org/llama-tuned"},
                "analysis": {**ANALYSIS, "benchmark": {**ANALYSIS["benchmark"], "quality": QUALITY}},
            },
        ),
    ),
]

VALID += [
    (f"example-{path.stem}-{manifest['kind'].lower()}-{manifest['metadata']['name']}", manifest)
    for path, manifest in example_manifests()
    if path.name.startswith("trainingjob-")
]
"""The TrainingJob examples (the other kinds' are applied by their controllers' cluster tests)."""
