"""Pure builders of a TrainingJob's children: (owner, spec, operator settings) -> manifest dicts.

Like dask-kubernetes' ``build_*_spec`` functions: no API calls, no clock, no randomness, so a test
compares each whole manifest with the one a user will get, and the reconcile can create them in
any order, any number of times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from modelfleet_api import constants as c
from modelfleet_api import contract, first_process
from modelfleet_api.common import env_list
from modelfleet_api.runtime_config import JobIdentity, Topology, TrainingRuntimeConfig
from modelfleet_api.training import Launcher, Precision
from modelfleet_api.trainingjob import TrainingJobSpec
from modelfleet_api.yamltext import dump_yaml

from modelfleet_operator.common import placement
from modelfleet_operator.common.identity import NO_IDENTITY, RuntimeIdentity
from modelfleet_operator.common.owner import Owner as OwnerBase
from modelfleet_operator.common.owner import labels
from modelfleet_operator.common.owner import metadata as _metadata
from modelfleet_operator.common.pod_overlay import merge_pod
from modelfleet_operator.common.volumes import pvc_claims, pvc_volumes
from modelfleet_operator.training import node_setup
from modelfleet_operator.training.names import ChildNames
from modelfleet_operator.training.policies.grace import grace_period, torchrun_shutdown_seconds
from modelfleet_operator.worker_nodes import PLAIN_NODES, WorkerNodeSettings

Manifest = dict[str, Any]

WORKER_CONTAINER = "trainer"
CONFIG_VOLUME = "config"
SHM_VOLUME = "dshm"
CACHE_VOLUME = "cache"
PVC_VOLUME = "pvc"
COMPLETION_INDEX_FIELD = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
DISRUPTED_WORKER_RULE: dict[str, Any] = {
    "action": "FailJob",
    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
}
"""Pod failure policy rule: a worker that stopped because it was disrupted fails the Job with reason
``PodFailurePolicy``, naming the pod and the condition."""


@dataclass(frozen=True, kw_only=True)
class Owner(OwnerBase):
    """The TrainingJob the children belong to."""

    KIND: ClassVar[str] = "TrainingJob"
    OWNER_LABEL: ClassVar[str] = c.LABEL_TRAINING_JOB

    @property
    def names(self) -> ChildNames:
        return ChildNames(self.name, self.namespace)


def worker_selector(owner: Owner) -> str:
    """Label selector of the TrainingJob's worker pods (of every attempt)."""
    return f"{c.LABEL_TRAINING_JOB}={owner.name},{c.LABEL_COMPONENT}={c.COMPONENT_WORKER}"


def runtime_config(owner: Owner, spec: TrainingJobSpec) -> TrainingRuntimeConfig:
    """What every worker reads: the spec's training parts plus identity and topology."""
    return TrainingRuntimeConfig(
        job=JobIdentity(name=owner.name, namespace=owner.namespace, uid=owner.uid),
        model=spec.model,
        dataset=spec.dataset,
        method=spec.method,
        strategy=spec.strategy,
        precision=spec.precision,
        hyperparameters=spec.hyperparameters,
        checkpoint=spec.checkpoint,
        output=spec.output,
        evaluation=spec.evaluation,
        tracking=spec.tracking,
        topology=Topology(nodes=spec.resources.nodes, gpus_per_node=spec.resources.processes_per_node),
    )


def config_map(owner: Owner, spec: TrainingJobSpec, nodes: WorkerNodeSettings = PLAIN_NODES) -> Manifest:
    """The runtime config; the Accelerate config with that launcher; the VM size's NCCL topology file
    when the workers use InfiniBand and the operator has one."""
    data = {contract.CONFIG_FILE: runtime_config(owner, spec).to_yaml()}
    topology = node_setup.topology_of(spec.resources.instance_type, nodes)
    if topology is not None:
        data[node_setup.NCCL_TOPOLOGY_FILE] = topology
    if spec.strategy.launcher == Launcher.ACCELERATE:
        data[contract.ACCELERATE_CONFIG_FILE] = dump_yaml(accelerate_config(owner, spec))
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, owner.names.config_map, c.COMPONENT_CONFIG),
        "data": data,
    }


ACCELERATE_PRECISION = {Precision.BF16: "bf16", Precision.FP16: "fp16", Precision.FP32: "no"}


def accelerate_config(owner: Owner, spec: TrainingJobSpec) -> dict[str, Any]:
    """`accelerate launch`'s config file: the same gang torchrun would start (its multi-GPU launcher
    is torchrun), machines and processes from `resources`, rank 0's address and port from the headless
    Service. `MULTI_GPU` is Accelerate's name for "one process per device, torch.distributed": the
    runtime's own strategy does the sharding, so Accelerate's DeepSpeed/FSDP plugins stay off. The
    machine rank differs per pod and is passed on the command line (`worker_command`)."""
    processes = spec.resources.nodes * spec.resources.processes_per_node
    return {
        "compute_environment": "LOCAL_MACHINE",
        "distributed_type": "MULTI_GPU" if processes > 1 else "NO",
        "num_machines": spec.resources.nodes,
        "num_processes": processes,
        "machine_rank": 0,
        "main_process_ip": owner.names.master_addr,
        "main_process_port": contract.MASTER_PORT,
        "rdzv_backend": "static",
        "same_network": True,
        "mixed_precision": ACCELERATE_PRECISION[spec.precision],
        "gpu_ids": "all",
        "use_cpu": False,
        "downcast_bf16": "no",
        "debug": False,
    }


def worker_command(spec: TrainingJobSpec) -> list[str]:
    """The worker container's command: the runtime's supervisor (it keeps the pod's log beside the
    checkpoints and writes the termination message) running the launcher. torchrun reads its flags from
    the PET_* variables; `accelerate launch` reads its config file, and the pod's node rank, which the
    kubelet substitutes for `$(PET_NODE_RANK)` from the container's environment."""
    supervisor = ["python", "-m", contract.SUPERVISOR_MODULE, "--"]
    runtime = ["-m", "modelfleet_train", "--config", f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"]
    if spec.strategy.launcher == Launcher.ACCELERATE:
        return [
            *supervisor,
            "accelerate",
            "launch",
            "--config_file",
            f"{contract.CONFIG_DIR}/{contract.ACCELERATE_CONFIG_FILE}",
            "--machine_rank",
            f"$({contract.ENV_NODE_RANK})",
            *runtime,
        ]
    return [*supervisor, "torchrun", *runtime]


def progress_config_map(owner: Owner) -> Manifest:
    """Created empty; rank 0 writes its ``TrainingProgress`` JSON under ``contract.PROGRESS_KEY``."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(owner, owner.names.progress_config_map, c.COMPONENT_WORKER),
    }


def service_account(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(owner, owner.names.service_account, c.COMPONENT_WORKER),
    }


def progress_role(owner: Owner) -> Manifest:
    """Least privilege: the workers may read and write their own progress ConfigMap, nothing else."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(owner, owner.names.service_account, c.COMPONENT_WORKER),
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": [owner.names.progress_config_map],
                "verbs": ["get", "patch", "update"],
            }
        ],
    }


def progress_role_binding(owner: Owner, identity: RuntimeIdentity = NO_IDENTITY) -> Manifest:
    """Binds the progress Role to the account the workers run as: the job's own ServiceAccount, or the
    runtime one. A runtime ServiceAccount is shared by every job in the namespace that runs as it, so
    their workers may then write each other's progress ConfigMaps (one namespace is one team); a
    per-job ServiceAccount cannot be federated with an Azure identity, which needs exact names."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(owner, owner.names.service_account, c.COMPONENT_WORKER),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": owner.names.service_account,
        },
        "subjects": [
            {
                "kind": "ServiceAccount",
                "name": identity.service_account or owner.names.service_account,
                "namespace": owner.namespace,
            }
        ],
    }


def headless_service(owner: Owner) -> Manifest:
    """Gives every worker pod a stable DNS name; ready or not, so rendezvous works during start-up."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(owner, owner.names.service, c.COMPONENT_WORKER),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {c.LABEL_TRAINING_JOB: owner.name, c.LABEL_COMPONENT: c.COMPONENT_WORKER},
            "ports": [
                {"name": "rendezvous", "port": contract.MASTER_PORT, "targetPort": contract.MASTER_PORT},
                {"name": "metrics", "port": contract.METRICS_PORT, "targetPort": contract.METRICS_PORT},
            ],
        },
    }


def _env(
    owner: Owner,
    spec: TrainingJobSpec,
    attempt: int,
    identity: RuntimeIdentity,
    grace_seconds: int,
    nodes: WorkerNodeSettings,
) -> list[dict[str, Any]]:
    names = owner.names
    config_path = f"{contract.CONFIG_DIR}/{contract.CONFIG_FILE}"
    contract_env: list[dict[str, Any]] = [
        {"name": contract.ENV_POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": contract.ENV_POD_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": contract.ENV_JOB_NAME, "value": owner.name},
        {"name": contract.ENV_CONFIG, "value": config_path},
        {"name": contract.ENV_RESTART_ATTEMPT, "value": str(attempt)},
        {"name": contract.ENV_NNODES, "value": str(spec.resources.nodes)},
        {"name": contract.ENV_NPROC_PER_NODE, "value": str(spec.resources.processes_per_node)},
        {"name": contract.ENV_NODE_RANK, "valueFrom": {"fieldRef": {"fieldPath": COMPLETION_INDEX_FIELD}}},
        {"name": contract.ENV_MASTER_ADDR, "value": names.master_addr},
        {"name": contract.ENV_MASTER_PORT, "value": str(contract.MASTER_PORT)},
        {"name": contract.ENV_PROGRESS_CONFIGMAP, "value": names.progress_config_map},
        {"name": contract.ENV_METRICS_PORT, "value": str(contract.METRICS_PORT)},
        {"name": contract.ENV_CACHE_DIR, "value": contract.RUNTIME_CACHE_DIR},
        {"name": contract.ENV_TORCH_SHUTDOWN_TIMEOUT, "value": str(torchrun_shutdown_seconds(grace_seconds))},
    ]
    model = spec.model
    token = [model.token_secret.env_var()] if model is not None and model.token_secret is not None else []
    defaults = (
        contract_env
        + node_setup.cache_env(nodes.cache)
        + node_setup.rdma_env(spec.resources.instance_type, nodes)
        + tracker_key_env(spec)
        + token
        + identity.env()
    )
    # The spec's env overrides what the operator sets (the names PET_* and MODELFLEET_* are refused at
    # apply); a name may appear only once in a container's env under server-side apply.
    own = {e.name for e in spec.env}
    return [item for item in defaults if item["name"] not in own] + env_list(spec.env)


def tracker_key_env(spec: TrainingJobSpec) -> list[dict[str, Any]]:
    """The hosted trackers' API keys, read from the Secrets the spec names."""
    trackers = [
        (contract.ENV_WANDB_API_KEY, spec.tracking.wandb),
        (contract.ENV_COMET_API_KEY, spec.tracking.comet),
    ]
    return [
        tracker.api_key_secret.env_var(name)
        for name, tracker in trackers
        if tracker is not None and tracker.api_key_secret is not None
    ]


def _read_uris(spec: TrainingJobSpec) -> list[str | None]:
    """Every URI the workers read: model, tokenizer, data and what the evaluation reads."""
    evaluation = spec.evaluation
    return [
        spec.model.uri if spec.model else None,
        spec.model.tokenizer_uri if spec.model else None,
        spec.dataset.uri,
        *(
            (
                evaluation.dataset.uri if evaluation.dataset else None,
                evaluation.generation.uri if evaluation.generation else None,
                evaluation.lm_eval.tasks_uri if evaluation.lm_eval else None,
            )
            if evaluation
            else ()
        ),
    ]


def _pvcs(spec: TrainingJobSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Claims of ``pvc://`` URIs: read-only for what the workers read, read-write for checkpoints and
    output."""
    claims = pvc_claims(read=_read_uris(spec), written=(spec.checkpoint.uri, spec.output.uri))
    return pvc_volumes(claims, PVC_VOLUME)


def worker_pod_template(
    owner: Owner,
    spec: TrainingJobSpec,
    *,
    image: str,
    attempt: int,
    grace_seconds: int | None = None,
    identity: RuntimeIdentity = NO_IDENTITY,
    nodes: WorkerNodeSettings = PLAIN_NODES,
) -> Manifest:
    """``grace_seconds`` unset: derived from the spec alone (``policies.grace``); ``nodes``: what the
    workers get from their nodes (``node_setup``)."""
    if grace_seconds is None:
        grace_seconds = grace_period(spec, None).seconds
    names = owner.names
    pvc_volumes_, pvc_mounts = _pvcs(spec)
    size = spec.resources.instance_type
    resources = placement.resources(spec.resources, spec.resources.gpus_per_node)
    for amounts in resources.values():
        amounts.update(node_setup.rdma_resources(size, nodes))
    init_containers = node_setup.cache_init_containers(nodes.cache, image, CACHE_VOLUME)
    pod_labels = (
        labels(owner, c.COMPONENT_WORKER) | {c.LABEL_RESTART_ATTEMPT: str(attempt)} | identity.pod_labels()
    )
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": grace_seconds,
        **first_process.POD_SPEC,
        "subdomain": names.service,
        **identity.pod_spec(default_service_account=names.service_account),
        **placement.pod_placement(spec.resources),
        **({"initContainers": init_containers} if init_containers else {}),
        "containers": [
            {
                "name": WORKER_CONTAINER,
                "image": image,
                "command": worker_command(spec),
                "env": _env(owner, spec, attempt, identity, grace_seconds, nodes),
                "ports": [
                    {"name": "rendezvous", "containerPort": contract.MASTER_PORT},
                    {"name": "metrics", "containerPort": contract.METRICS_PORT},
                ],
                "resources": resources,
                **node_setup.rdma_security_context(size, nodes),
                # the supervisor's message; when it could write none (killed), the log's last lines
                "terminationMessagePath": contract.TERMINATION_LOG,
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [
                    {"name": CONFIG_VOLUME, "mountPath": contract.CONFIG_DIR, "readOnly": True},
                    {"name": SHM_VOLUME, "mountPath": contract.SHM_MOUNT},
                    {"name": CACHE_VOLUME, "mountPath": contract.RUNTIME_CACHE_DIR},
                    *pvc_mounts,
                ],
            }
        ],
        "volumes": [
            {"name": CONFIG_VOLUME, "configMap": {"name": names.config_map}},
            {
                "name": SHM_VOLUME,
                **node_setup.shared_memory_volume(
                    spec.resources.shared_memory or resources["limits"]["memory"]
                ),
            },
            {"name": CACHE_VOLUME, **node_setup.cache_volume(nodes.cache)},
            *pvc_volumes_,
        ],
    }
    if spec.priority_class_name:
        pod_spec["priorityClassName"] = spec.priority_class_name
    return merge_pod({"metadata": {"labels": pod_labels}, "spec": pod_spec}, spec.pod_template)


def worker_job(
    owner: Owner,
    spec: TrainingJobSpec,
    *,
    image: str,
    attempt: int,
    grace_seconds: int | None = None,
    identity: RuntimeIdentity = NO_IDENTITY,
    nodes: WorkerNodeSettings = PLAIN_NODES,
    suspend: bool = False,
) -> Manifest:
    """The gang: an Indexed Job with one pod per node.

    ``backoffLimit: 0`` because the gang restart is the operator's (a failed worker ends the Job,
    the Job's other pods are stopped by the Job controller, and the operator starts the next
    attempt from the latest checkpoint). The pod failure policy fails the Job at once when a worker
    was disrupted (evicted by a drain, preempted), so the Job itself records which pod was and why,
    after the pod is gone; it also makes the Job count a worker as failed only once it has stopped
    (``podReplacementPolicy: Failed``), not while it still saves its checkpoint. ``grace_seconds``
    unset: derived from the spec alone (``policies.grace``).

    ``suspend``: the Job is created suspended for Kueue to admit (``spec.queueName``), and re-applied
    suspended while Kueue holds it. Not suspended, the field is left out rather than set false: the
    operator does not take the field from Kueue, which clears and sets it to admit and evict the gang.
    """
    metadata = _metadata(owner, owner.names.job, c.COMPONENT_WORKER)
    metadata["labels"][c.LABEL_RESTART_ATTEMPT] = str(attempt)
    if spec.queue_name:
        metadata["labels"][c.KUEUE_QUEUE_LABEL] = spec.queue_name
    workers = spec.resources.nodes
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "completionMode": "Indexed",
            "completions": workers,
            "parallelism": workers,
            "backoffLimit": 0,
            **({"suspend": True} if suspend else {}),
            "podFailurePolicy": {"rules": [DISRUPTED_WORKER_RULE]},
            "template": worker_pod_template(
                owner,
                spec,
                image=image,
                attempt=attempt,
                grace_seconds=grace_seconds,
                identity=identity,
                nodes=nodes,
            ),
        },
    }


def static_children(
    owner: Owner,
    spec: TrainingJobSpec,
    identity: RuntimeIdentity = NO_IDENTITY,
    nodes: WorkerNodeSettings = PLAIN_NODES,
) -> list[Manifest]:
    """Children that live as long as the TrainingJob, in creation order (the Job comes after). With a
    runtime ServiceAccount (which the namespace provides) the job gets no ServiceAccount of its own."""
    own_account = [] if identity.service_account else [service_account(owner)]
    return [
        *own_account,
        progress_role(owner),
        progress_role_binding(owner, identity),
        progress_config_map(owner),
        config_map(owner, spec, nodes),
        headless_service(owner),
    ]
