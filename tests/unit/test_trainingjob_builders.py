"""Each child of a TrainingJob compared whole with the manifest a user gets (kubespawner's style)."""

from __future__ import annotations

import pytest
import yaml
from modelfleet_api.instance_types import InstanceType
from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_operator.training import builders
from modelfleet_operator.training.builders import Owner
from modelfleet_operator.worker_nodes import NodeCache, WorkerNodeSettings

pytestmark = pytest.mark.unit

OWNER = Owner(name="lora", namespace="ml", uid="0b7e-uid")
OWNER_REF = {
    "apiVersion": "modelfleet.io/v1alpha1",
    "kind": "TrainingJob",
    "name": "lora",
    "uid": "0b7e-uid",
    "controller": True,
    "blockOwnerDeletion": True,
}


def labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "trainingjob",
        "app.kubernetes.io/instance": "lora",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "modelfleet",
        "app.kubernetes.io/managed-by": "modelfleet-operator",
        "modelfleet.io/trainingjob": "lora",
    }


def spec(**overrides: object) -> TrainingJobSpec:
    base: dict[str, object] = {
        "model": {"uri": "meta-llama/Llama-3.1-8B"},
        "dataset": {"uri": "az://data/chat.jsonl"},
        "output": {"uri": "az://out/lora"},
    }
    return TrainingJobSpec.model_validate(base | overrides)


def expected_env(*, nnodes: str, nproc: str, attempt: str, shutdown: str) -> list[dict[str, object]]:
    """``shutdown``: torchrun's shutdown timeout, the pod's grace period less 5 s."""
    return [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "MODELFLEET_JOB_NAME", "value": "lora"},
        {"name": "MODELFLEET_CONFIG", "value": "/etc/modelfleet/config.yaml"},
        {"name": "MODELFLEET_RESTART_ATTEMPT", "value": attempt},
        {"name": "PET_NNODES", "value": nnodes},
        {"name": "PET_NPROC_PER_NODE", "value": nproc},
        {
            "name": "PET_NODE_RANK",
            "valueFrom": {
                "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        },
        {"name": "PET_MASTER_ADDR", "value": "lora-0.lora.ml.svc"},
        {"name": "PET_MASTER_PORT", "value": "29500"},
        {"name": "MODELFLEET_PROGRESS_CONFIGMAP", "value": "lora-progress"},
        {"name": "MODELFLEET_METRICS_PORT", "value": "9090"},
        {"name": "MODELFLEET_CACHE_DIR", "value": "/var/cache/modelfleet"},
        {"name": "TORCH_ELASTIC_SHUTDOWN_TIMEOUT", "value": shutdown},
        # the hub's, datasets' and torch's own caches go to the cache volume
        {"name": "HF_HOME", "value": "/var/cache/modelfleet/huggingface"},
        {"name": "TORCH_EXTENSIONS_DIR", "value": "/var/cache/modelfleet/torch_extensions"},
    ]


GPU_TOLERATION = {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
SPOT_TOLERATION = {
    "key": "kubernetes.azure.com/scalesetpriority",
    "operator": "Equal",
    "value": "spot",
    "effect": "NoSchedule",
}
SPOT_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.azure.com/scalesetpriority", "operator": "In", "values": ["spot"]}
                    ]
                }
            ]
        }
    }
}


def test_worker_job_for_one_spot_nc80_node_with_kueue_and_priority() -> None:
    job_spec = spec(
        resources={"instanceType": "Standard_NC80adis_H100_v5", "gpusPerNode": 2, "spot": True},
        queueName="team-a",
        priorityClassName="training-high",
        env=[{"name": "NCCL_DEBUG", "value": "WARN"}],
    )

    job = builders.worker_job(OWNER, job_spec, image="registry.example/train:1.2", attempt=2)

    resources = {"cpu": "72", "memory": "576Gi", "nvidia.com/gpu": "2"}
    assert job == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "lora",
            "namespace": "ml",
            "labels": labels("worker")
            | {"modelfleet.io/restart-attempt": "2", "kueue.x-k8s.io/queue-name": "team-a"},
            "ownerReferences": [OWNER_REF],
        },
        "spec": {
            "completionMode": "Indexed",
            "completions": 1,
            "parallelism": 1,
            "backoffLimit": 0,
            "podFailurePolicy": {
                "rules": [
                    {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
                ]
            },
            "template": {
                "metadata": {"labels": labels("worker") | {"modelfleet.io/restart-attempt": "2"}},
                "spec": {
                    "restartPolicy": "Never",
                    # 2 x 188 GiB of GPU memory written at the VM's 80,000 Mbps, + 30 s
                    "terminationGracePeriodSeconds": 71,
                    "shareProcessNamespace": True,
                    "subdomain": "lora",
                    "serviceAccountName": "lora-worker",
                    "nodeSelector": {"node.kubernetes.io/instance-type": "Standard_NC80adis_H100_v5"},
                    "tolerations": [GPU_TOLERATION, SPOT_TOLERATION],
                    "affinity": SPOT_AFFINITY,
                    "containers": [
                        {
                            "name": "trainer",
                            "image": "registry.example/train:1.2",
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
                                *expected_env(nnodes="1", nproc="2", attempt="2", shutdown="66"),
                                {"name": "NCCL_DEBUG", "value": "WARN"},
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
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "lora-config"}},
                        # /dev/shm counts against the pod's memory: sized as its limit
                        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "576Gi"}},
                        {"name": "cache", "emptyDir": {}},
                    ],
                    "priorityClassName": "training-high",
                },
            },
        },
    }


def test_worker_job_for_four_nd96_nodes_pinned_to_a_pool_with_explicit_cpu_and_memory() -> None:
    job_spec = spec(
        resources={
            "instanceType": "Standard_ND96isr_H100_v5",
            "nodes": 4,
            "gpusPerNode": 8,
            "nodePool": "nd96b",
            "cpu": "90",
            "memory": "1800Gi",
        }
    )

    job = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)

    resources = {"cpu": "90", "memory": "1800Gi", "nvidia.com/gpu": "8"}
    pod = job["spec"]["template"]["spec"]
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (4, 4)
    assert job["metadata"]["labels"] == labels("worker") | {"modelfleet.io/restart-attempt": "0"}
    assert pod["nodeSelector"] == {"kubernetes.azure.com/agentpool": "nd96b"}
    assert pod["tolerations"] == [GPU_TOLERATION]
    assert "affinity" not in pod and "priorityClassName" not in pod
    assert pod["containers"][0]["env"] == expected_env(nnodes="4", nproc="8", attempt="0", shutdown="163")
    assert pod["containers"][0]["resources"] == {"requests": resources, "limits": resources}


def test_worker_on_a_cpu_size_requests_no_gpu_tolerates_no_gpu_taint_and_runs_one_process() -> None:
    job_spec = spec(resources={"instanceType": "Standard_D8s_v5", "nodes": 2, "gpusPerNode": 0})

    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)["spec"]["template"]["spec"]

    resources = {"cpu": "7", "memory": "28Gi"}  # 90 % of the VM's 8 vCPUs and 32 GiB
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "Standard_D8s_v5"}
    assert "tolerations" not in pod and "affinity" not in pod
    assert pod["containers"][0]["env"] == expected_env(nnodes="2", nproc="1", attempt="0", shutdown="69")
    assert pod["containers"][0]["resources"] == {"requests": resources, "limits": resources}
    config = yaml.safe_load(builders.config_map(OWNER, job_spec)["data"]["config.yaml"])
    assert config["topology"] == {"nodes": 2, "gpusPerNode": 1}  # processes per node


def test_spot_worker_on_a_cpu_size_tolerates_only_the_spot_taint() -> None:
    job_spec = spec(
        resources={"instanceType": "Standard_D4s_v5", "gpusPerNode": 0, "spot": True, "cpu": "3500m"}
    )

    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)["spec"]["template"]["spec"]

    assert pod["tolerations"] == [SPOT_TOLERATION]
    assert pod["affinity"] == SPOT_AFFINITY
    resources = {"cpu": "3500m", "memory": "14Gi"}
    assert pod["containers"][0]["resources"] == {"requests": resources, "limits": resources}


def test_pvc_uris_mount_their_claims_read_only_unless_written() -> None:
    job_spec = spec(
        model={"uri": "pvc://models/llama-8b"},
        dataset={"uri": "pvc://work/data/chat.jsonl"},
        checkpoint={"uri": "pvc://work/ckpt"},
        output={"uri": "az://out/lora"},
    )

    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)["spec"]["template"]["spec"]

    assert pod["volumes"][3:] == [
        {"name": "pvc-0", "persistentVolumeClaim": {"claimName": "models", "readOnly": True}},
        {"name": "pvc-1", "persistentVolumeClaim": {"claimName": "work", "readOnly": False}},
    ]
    assert pod["containers"][0]["volumeMounts"][3:] == [
        {"name": "pvc-0", "mountPath": "/mnt/pvc/models", "readOnly": True},
        {"name": "pvc-1", "mountPath": "/mnt/pvc/work", "readOnly": False},
    ]


def test_claims_of_the_tokenizer_and_of_what_the_evaluation_reads_are_mounted_read_only() -> None:
    job_spec = spec(
        model={"uri": "meta-llama/Llama-3.1-8B", "tokenizerUri": "pvc://tokenizers/bpe-64k"},
        evaluation={
            "dataset": {"uri": "pvc://evals/validation.jsonl"},
            "generation": {"uri": "pvc://evals/references.jsonl"},
            "lmEval": {"tasks": ["ours"], "tasksUri": "pvc://tasks/ours"},
        },
        output={"uri": "az://out/lora"},
    )

    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)["spec"]["template"]["spec"]

    assert [v["persistentVolumeClaim"] for v in pod["volumes"][3:]] == [
        {"claimName": "tokenizers", "readOnly": True},
        {"claimName": "evals", "readOnly": True},
        {"claimName": "tasks", "readOnly": True},
    ]


def test_headless_service_publishes_not_ready_workers_for_rendezvous() -> None:
    assert builders.headless_service(OWNER) == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "lora",
            "namespace": "ml",
            "labels": labels("worker"),
            "ownerReferences": [OWNER_REF],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {"modelfleet.io/trainingjob": "lora", "app.kubernetes.io/component": "worker"},
            "ports": [
                {"name": "rendezvous", "port": 29500, "targetPort": 29500},
                {"name": "metrics", "port": 9090, "targetPort": 9090},
            ],
        },
    }


def test_config_map_holds_the_runtime_config_the_workers_read() -> None:
    job_spec = spec(resources={"instanceType": "Standard_ND96isr_H100_v5", "nodes": 4, "gpusPerNode": 8})

    manifest = builders.config_map(OWNER, job_spec)

    assert manifest["metadata"] == {
        "name": "lora-config",
        "namespace": "ml",
        "labels": labels("config"),
        "ownerReferences": [OWNER_REF],
    }
    assert list(manifest["data"]) == ["config.yaml"]
    config = TrainingRuntimeConfig.from_yaml(manifest["data"]["config.yaml"])
    assert config == TrainingRuntimeConfig.model_validate(
        {
            "job": {"name": "lora", "namespace": "ml", "uid": "0b7e-uid"},
            "model": job_spec.model,
            "dataset": job_spec.dataset,
            "output": job_spec.output,
            "topology": {"nodes": 4, "gpusPerNode": 8},
        }
    )
    assert yaml.safe_load(manifest["data"]["config.yaml"])["topology"] == {"nodes": 4, "gpusPerNode": 8}


def test_a_tokenizer_jobs_config_has_no_model_and_its_workers_read_only_the_data() -> None:
    job_spec = TrainingJobSpec.model_validate(
        {
            "dataset": {"uri": "pvc://corpus/text.jsonl"},
            "method": {"type": "tokenizer", "tokenizer": {"algorithm": "unigram", "vocabSize": 32000}},
            "output": {"uri": "pvc://runs/tokenizer"},
            "resources": {"instanceType": "Standard_D16s_v5", "gpusPerNode": 0},
        }
    )

    config = TrainingRuntimeConfig.from_yaml(builders.config_map(OWNER, job_spec)["data"]["config.yaml"])
    assert config.model is None and config.method == job_spec.method
    assert config.topology.model_dump() == {"nodes": 1, "gpus_per_node": 1}
    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)["spec"]["template"]["spec"]
    assert {
        v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"].get("readOnly", False)
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    } == {"corpus": True, "runs": False}
    assert not any(e["name"] == "HF_TOKEN" for e in pod["containers"][0]["env"])


def test_progress_rbac_grants_only_its_own_config_map() -> None:
    assert builders.service_account(OWNER) == {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "lora-worker",
            "namespace": "ml",
            "labels": labels("worker"),
            "ownerReferences": [OWNER_REF],
        },
    }
    assert builders.progress_config_map(OWNER) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "lora-progress",
            "namespace": "ml",
            "labels": labels("worker"),
            "ownerReferences": [OWNER_REF],
        },
    }
    assert builders.progress_role(OWNER)["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["lora-progress"],
            "verbs": ["get", "patch", "update"],
        }
    ]
    binding = builders.progress_role_binding(OWNER)
    assert binding["metadata"]["name"] == "lora-worker"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "lora-worker",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "lora-worker", "namespace": "ml"}]


def test_static_children_come_in_dependency_order_with_distinct_names() -> None:
    children = builders.static_children(OWNER, spec())
    assert [(m["kind"], m["metadata"]["name"]) for m in children] == [
        ("ServiceAccount", "lora-worker"),
        ("Role", "lora-worker"),
        ("RoleBinding", "lora-worker"),
        ("ConfigMap", "lora-progress"),
        ("ConfigMap", "lora-config"),
        ("Service", "lora"),
    ]


ND96_NODES = WorkerNodeSettings(
    nccl_topology={InstanceType.ND96ISR_H100_V5: "<system version='1'/>"},
    cache=NodeCache(host_path="/mnt/modelfleet/cache", max_bytes=500 * 2**30),
)
"""The chart's defaults on AKS: the RDMA shared device plugin's resource, a topology file for the H100
size, the node cache on the VM's temporary disk."""


def test_an_infiniband_worker_gets_the_rdma_device_ipc_lock_nccl_ib_settings_and_the_node_cache() -> None:
    job_spec = spec(resources={"instanceType": "Standard_ND96isr_H100_v5", "nodes": 2, "gpusPerNode": 8})

    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0, nodes=ND96_NODES)["spec"][
        "template"
    ]["spec"]

    (container,) = pod["containers"]
    amounts = {"cpu": "86", "memory": "1710Gi", "nvidia.com/gpu": "8", "rdma/rdma_shared_device_a": "1"}
    assert container["resources"] == {"requests": amounts, "limits": amounts}
    assert container["securityContext"] == {"capabilities": {"add": ["IPC_LOCK"]}}
    env = container["env"][len(expected_env(nnodes="2", nproc="8", attempt="0", shutdown="163")) :]
    assert env == [
        {"name": "MODELFLEET_CACHE_MAX_BYTES", "value": str(500 * 2**30)},
        {"name": "NCCL_IB_DISABLE", "value": "0"},
        {"name": "NCCL_IB_HCA", "value": "mlx5_ib"},
        {"name": "NCCL_IB_PCI_RELAXED_ORDERING", "value": "1"},
        {"name": "NCCL_NET_GDR_LEVEL", "value": "SYS"},
        {"name": "NCCL_SOCKET_IFNAME", "value": "eth0"},
        {"name": "CUDA_DEVICE_ORDER", "value": "PCI_BUS_ID"},
        {"name": "UCX_TLS", "value": "rc"},
        {
            "name": "UCX_NET_DEVICES",
            "value": ",".join(f"mlx5_ib{i}:1" for i in range(8)),
        },
        {"name": "UCX_IB_PCI_RELAXED_ORDERING", "value": "on"},
        {"name": "NCCL_TOPO_FILE", "value": "/etc/modelfleet/nccl-topology.xml"},
    ]
    assert pod["volumes"][:3] == [
        {"name": "config", "configMap": {"name": "lora-config"}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1710Gi"}},
        {"name": "cache", "hostPath": {"path": "/mnt/modelfleet/cache", "type": "DirectoryOrCreate"}},
    ]
    assert pod["initContainers"] == [
        {
            "name": "cache-permissions",
            "image": "img:1",
            "command": ["chmod", "1777", "/var/cache/modelfleet"],
            "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
            "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/modelfleet"}],
        }
    ]
    config = builders.config_map(OWNER, job_spec, ND96_NODES)["data"]
    assert config["nccl-topology.xml"] == "<system version='1'/>"


def test_the_specs_env_overrides_an_infiniband_setting_once() -> None:
    """Server-side apply refuses a container env naming a variable twice; the spec's value wins."""
    job_spec = spec(
        resources={"instanceType": "Standard_ND96isr_H100_v5", "nodes": 2, "gpusPerNode": 8},
        env=[{"name": "NCCL_IB_HCA", "value": "=mlx5_ib0,mlx5_ib1"}, {"name": "NCCL_DEBUG", "value": "WARN"}],
    )

    (container,) = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0, nodes=ND96_NODES)["spec"][
        "template"
    ]["spec"]["containers"]

    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names))
    assert container["env"][-2:] == [
        {"name": "NCCL_IB_HCA", "value": "=mlx5_ib0,mlx5_ib1"},
        {"name": "NCCL_DEBUG", "value": "WARN"},
    ]
    assert {"name": "NCCL_IB_DISABLE", "value": "0"} in container["env"], "the others are kept"


def test_a_size_without_infiniband_or_rdma_turned_off_gets_none_of_it() -> None:
    on_nc80 = spec(resources={"instanceType": "Standard_NC80adis_H100_v5", "gpusPerNode": 2})
    on_nd96 = spec(resources={"instanceType": "Standard_ND96isr_H100_v5", "gpusPerNode": 8})
    off = WorkerNodeSettings(rdma_resource=None, nccl_topology=ND96_NODES.nccl_topology)
    for job_spec, nodes in ((on_nc80, ND96_NODES), (on_nd96, off)):
        pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0, nodes=nodes)["spec"]["template"][
            "spec"
        ]
        (container,) = pod["containers"]
        assert "securityContext" not in container
        assert not any(key.startswith("rdma/") for key in container["resources"]["limits"])
        assert not any(e["name"].startswith(("NCCL_", "UCX_")) for e in container["env"])
        assert "nccl-topology.xml" not in builders.config_map(OWNER, job_spec, nodes)["data"]


def test_shared_memory_can_be_asked_for_below_the_memory_limit() -> None:
    job_spec = spec(resources={"instanceType": "Standard_NC40adis_H100_v5", "sharedMemory": "64Gi"})
    pod = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0)["spec"]["template"]["spec"]
    assert pod["volumes"][1] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}}


def test_an_emptydir_cache_may_have_a_size_limit_and_needs_no_init_container() -> None:
    nodes = WorkerNodeSettings(rdma_resource=None, cache=NodeCache(size_limit="200Gi"))
    pod = builders.worker_job(OWNER, spec(), image="img:1", attempt=0, nodes=nodes)["spec"]["template"][
        "spec"
    ]
    assert pod["volumes"][2] == {"name": "cache", "emptyDir": {"sizeLimit": "200Gi"}}
    assert "initContainers" not in pod


def test_the_specs_env_overrides_the_operators_settings_each_name_once() -> None:
    job_spec = spec(
        resources={"instanceType": "Standard_ND96isr_H100_v5", "gpusPerNode": 8},
        env=[{"name": "NCCL_IB_HCA", "value": "mlx5_ib0,mlx5_ib1"}, {"name": "HF_HOME", "value": "/hf"}],
    )
    env = builders.worker_job(OWNER, job_spec, image="img:1", attempt=0, nodes=ND96_NODES)["spec"][
        "template"
    ]["spec"]["containers"][0]["env"]
    names = [item["name"] for item in env]
    assert len(names) == len(set(names))
    values = {item["name"]: item.get("value") for item in env}
    assert (values["NCCL_IB_HCA"], values["HF_HOME"]) == ("mlx5_ib0,mlx5_ib1", "/hf")
    assert values["NCCL_IB_PCI_RELAXED_ORDERING"] == "1"
