"""``spec.podTemplate`` and env from Secrets on the other two kinds' pods, compared whole, and the
names each kind keeps for itself (``modelfleet_api.pods``) checked against the pods the builders make.
The ModelDeployment's whole pod with every addition is in ``test_modeldeployment_builders``."""

from __future__ import annotations

from typing import Any

import pytest
from modelfleet_api import pods
from modelfleet_api.benchmarksweep import BenchmarkSweepSpec
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.benchmark import builders as bench
from modelfleet_operator.benchmark.grid import expand_points, expand_targets
from modelfleet_operator.common.pod_overlay import merge_pod
from modelfleet_operator.serving import builders as serving
from modelfleet_operator.training import builders as training

from tests.unit.test_trainingjob_builders import OWNER as TRAINING_OWNER
from tests.unit.test_trainingjob_builders import SPOT_TOLERATION, expected_env
from tests.unit.test_trainingjob_builders import labels as training_labels

pytestmark = pytest.mark.unit

IMAGES = dict.fromkeys(EngineType, "img")
SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
OVERLAY = {
    "metadata": {"labels": {"team": "ml"}, "annotations": {"sidecar.istio.io/inject": "false"}},
    "spec": {
        "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["2"]}]}
                    ]
                }
            }
        },
        "imagePullSecrets": [{"name": "acr-pull"}],
        "volumes": [
            {"name": "datasets-ca", "configMap": {"name": "ca", "items": [{"key": "ca", "path": "ca.crt"}]}}
        ],
        "volumeMounts": [{"name": "datasets-ca", "mountPath": "/etc/ssl/datasets", "readOnly": True}],
        "sidecars": [
            {
                "name": "proxy",
                "image": "envoyproxy/envoy:v1.31.0",
                "imagePullPolicy": "IfNotPresent",
                "args": ["-c", "/etc/envoy/envoy.yaml"],
                "ports": [{"name": "admin", "containerPort": 9901}],
                "resources": {"limits": {"memory": "128Mi", "ephemeral-storage": "1Gi"}},
            }
        ],
    },
}
PROXY = {
    "name": "proxy",
    "image": "envoyproxy/envoy:v1.31.0",
    "imagePullPolicy": "IfNotPresent",
    "args": ["-c", "/etc/envoy/envoy.yaml"],
    "ports": [{"name": "admin", "containerPort": 9901}],
    "resources": {"limits": {"memory": "128Mi", "ephemeral-storage": "1Gi"}},
    "restartPolicy": "Always",
    "securityContext": SECURITY,
}
CA_VOLUME = {"name": "datasets-ca", "configMap": {"name": "ca", "items": [{"key": "ca", "path": "ca.crt"}]}}
CA_MOUNT = {"name": "datasets-ca", "mountPath": "/etc/ssl/datasets", "readOnly": True}


def test_training_worker_pod_with_a_token_env_from_secrets_and_every_addition() -> None:
    spec = TrainingJobSpec.model_validate(
        {
            "model": {"uri": "meta-llama/Llama-3.1-8B", "tokenSecret": {"name": "hf-token", "key": "hf"}},
            "dataset": {"uri": "az://data/chat.jsonl"},
            "output": {"uri": "az://out/lora"},
            "resources": {"instanceType": "Standard_NC40adis_H100_v5", "gpusPerNode": 1, "spot": True},
            "env": [
                {"name": "NCCL_DEBUG", "valueFrom": {"configMapKeyRef": {"name": "nccl", "key": "level"}}}
            ],
            "podTemplate": OVERLAY,
        }
    )
    pod = training.worker_pod_template(TRAINING_OWNER, spec, image="train:1", attempt=0)
    resources = {"cpu": "36", "memory": "288Gi", "nvidia.com/gpu": "1"}
    assert pod == {
        "metadata": {
            "labels": {"team": "ml", **training_labels("worker"), "modelfleet.io/restart-attempt": "0"},
            "annotations": {"sidecar.istio.io/inject": "false"},
        },
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 71,
            "shareProcessNamespace": True,
            "subdomain": "lora",
            "serviceAccountName": "lora-worker",
            "nodeSelector": {"node.kubernetes.io/instance-type": "Standard_NC40adis_H100_v5"},
            "tolerations": [
                {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
                SPOT_TOLERATION,
                {"key": "dedicated", "operator": "Exists"},
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {
                                        "key": "kubernetes.azure.com/scalesetpriority",
                                        "operator": "In",
                                        "values": ["spot"],
                                    },
                                    {"key": "zone", "operator": "In", "values": ["2"]},
                                ]
                            }
                        ]
                    }
                }
            },
            "containers": [
                {
                    "name": "trainer",
                    "image": "train:1",
                    "command": [
                        "python",
                        "-m",
                        "modelfleet_train.supervise",
                        "--",
                        "torchrun",
                        "-m",
                        "modelfleet_train",
                        "--config",
                        "/etc/modelfleet/config.yaml",
                    ],
                    "env": [
                        *expected_env(nnodes="1", nproc="1", attempt="0", shutdown="66"),
                        {
                            "name": "HF_TOKEN",
                            "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "hf"}},
                        },
                        {
                            "name": "NCCL_DEBUG",
                            "valueFrom": {"configMapKeyRef": {"name": "nccl", "key": "level"}},
                        },
                    ],
                    "ports": [
                        {"name": "rendezvous", "containerPort": 29500},
                        {"name": "metrics", "containerPort": 9090},
                    ],
                    "resources": {"requests": resources, "limits": resources},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/modelfleet", "readOnly": True},
                        {"name": "dshm", "mountPath": "/dev/shm"},
                        {"name": "cache", "mountPath": "/var/cache/modelfleet"},
                        CA_MOUNT,
                    ],
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "lora-config"}},
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "288Gi"}},
                {"name": "cache", "emptyDir": {}},
                CA_VOLUME,
            ],
            "imagePullSecrets": [{"name": "acr-pull"}],
            "initContainers": [PROXY],
        },
    }


SWEEP_OWNER = bench.Owner(name="sw", namespace="ml", uid="sw-uid")


def sweep(pod_template: dict[str, Any] | None) -> BenchmarkSweepSpec:
    """A one-point sweep with ``pod_template``."""
    return BenchmarkSweepSpec.model_validate(
        {
            "targets": [{"name": "current", "deploymentRef": "llama"}],
            "workload": {"synthetic": {"inputTokens": {"mean": 64}, "outputTokens": {"mean": 16}}},
            "load": {"mode": "closed-loop", "concurrency": [1], "requests": 10},
            **({"podTemplate": pod_template} if pod_template is not None else {}),
        }
    )


def point_job(spec: BenchmarkSweepSpec) -> dict[str, Any]:
    """The Job of the sweep's first point."""
    point = expand_points(expand_targets(SWEEP_OWNER.names, spec), spec)[0]
    job: dict[str, Any] = bench.point_job(
        SWEEP_OWNER, point, image="bench:1", api_key_secret=None, pod_template=spec.pod_template
    )
    return job


def test_benchmark_pod_with_every_addition() -> None:
    pod = point_job(sweep(OVERLAY))
    point_labels = {
        **bench.labels(SWEEP_OWNER, "benchmark"),
        "modelfleet.io/sweep-point": "0",
        "modelfleet.io/sweep-target": "llama",
    }
    assert pod["spec"]["template"] == {
        "metadata": {
            "labels": {"team": "ml", **point_labels},
            "annotations": {"sidecar.istio.io/inject": "false"},
        },
        "spec": {
            "restartPolicy": "Never",
            "shareProcessNamespace": True,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "bench",
                    "image": "bench:1",
                    "command": ["modelfleet-bench", "run"],
                    "env": [{"name": "MODELFLEET_BENCH_CONFIG", "value": "/etc/modelfleet/config.yaml"}],
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "2Gi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/modelfleet", "readOnly": True},
                        {"name": "results", "mountPath": "/results"},
                        CA_MOUNT,
                    ],
                    "securityContext": SECURITY,
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "sw-point-0-config"}},
                {"name": "results", "emptyDir": {}},
                CA_VOLUME,
            ],
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["2"]}]}
                        ]
                    }
                }
            },
            "imagePullSecrets": [{"name": "acr-pull"}],
            "initContainers": [PROXY],
        },
    }


def test_no_overlay_leaves_the_pod_as_built() -> None:
    built = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c"}]}}
    assert merge_pod(built, None) is built


def _names(pod: dict[str, Any]) -> tuple[set[str], set[str], set[str], set[int]]:
    spec = pod["spec"]
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    return (
        {c["name"] for c in containers},
        {v["name"] for v in spec["volumes"]},
        {m["mountPath"] for c in containers for m in c.get("volumeMounts", [])},
        {p["containerPort"] for c in containers for p in c.get("ports", [])},
    )


def _within(reserved: pods.ReservedPodParts, pod: dict[str, Any]) -> None:
    containers, volumes, paths, ports = _names(pod)
    assert containers <= reserved.containers
    numbered = {v for v in volumes if reserved.volume_prefix and v.startswith(reserved.volume_prefix)}
    assert volumes - numbered <= reserved.volumes
    assert all(any(p == r or p.startswith(r + "/") for r in reserved.mount_paths) for p in paths), paths
    assert ports <= reserved.ports


def test_reserved_parts_cover_every_pod_the_operator_makes() -> None:
    """The CRD refuses overlays reusing ``ReservedPodParts``; each kind's pods, with every optional
    part the operator adds (claims, downloads, Triton's ports), must use nothing else."""
    serving_spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": "pvc://weights/llama"},
            "engine": {"type": "triton-trtllm"},
            "modelCache": {"pvc": {"claimName": "cache"}},
        }
    )
    for track in serving.tracks(serving_spec, IMAGES):
        _within(
            pods.SERVING_POD,
            serving.pod_template(
                serving.Owner(name="m", namespace="n", uid="u"), serving_spec, track, health_path="/"
            ),
        )
    hub = ModelDeploymentSpec.model_validate({"model": {"uri": "org/model"}})
    _within(
        pods.SERVING_POD,
        serving.pod_template(
            serving.Owner(name="m", namespace="n", uid="u"),
            hub,
            serving.tracks(hub, IMAGES)[0],
            health_path="/",
        ),
    )
    training_spec = TrainingJobSpec.model_validate(
        {
            "model": {"uri": "pvc://models/llama"},
            "dataset": {"uri": "pvc://data/chat.jsonl"},
            "output": {"uri": "pvc://out/lora"},
            "checkpoint": {"uri": "pvc://ckpt/lora"},
        }
    )
    _within(
        pods.TRAINING_POD, training.worker_pod_template(TRAINING_OWNER, training_spec, image="i", attempt=0)
    )
    _within(pods.BENCHMARK_POD, point_job(sweep(None))["spec"]["template"])
