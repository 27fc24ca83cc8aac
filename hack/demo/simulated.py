"""The H100 examples on the simulated GPU pools: what the operator makes of them, and no more.

kwok schedules their pods on nodes that mirror the AKS GPU pools and marks them Running, but nothing
runs inside: there is no training progress, no engine and no latency to show, so the demo shows where
each pod landed and says so.
"""

from __future__ import annotations

from kubernetes import client

from hack.controlplane.cluster import wait_for
from hack.demo.cluster import NAMESPACE, Demo, banner, show

GPU_EXAMPLES = (
    "trainingjob-lora-nc80.yaml",
    "trainingjob-zero3-nd96.yaml",
    "modeldeployment-vllm-llama3-8b.yaml",
    "modeldeployment-sglang-canary.yaml",
)
SIMULATED = "SIMULATED"


def _placed(pod: client.V1Pod) -> bool:
    """Bound to a node, or refused by the scheduler (the simulated pools have only so many GPUs)."""
    if pod.spec and pod.spec.node_name:
        return True
    conditions = pod.status.conditions if pod.status else None
    return any(
        c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable"
        for c in conditions or []
    )


def apply_gpu_examples(demo: Demo) -> None:
    banner("the H100 examples: a LoRA job on a spot NC80adis node, ZeRO-3 on four ND96isr, vLLM, SGLang")
    for example in GPU_EXAMPLES:
        demo.apply(example)

    def all_placed() -> bool:
        pods = demo.core.list_namespaced_pod(NAMESPACE).items
        # the LoRA job's gang (1), ZeRO-3's (4), vLLM's replica and SGLang's stable and canary replicas
        return len(pods) >= 7 and all(_placed(p) for p in pods)

    wait_for(all_placed, 180, "the GPU examples' pods placed by the scheduler")
    banner(f"{SIMULATED}: their pods are scheduled on the kwok GPU pools, where nothing runs")
    show(demo.plane, "get", "pods", "-n", NAMESPACE, "-o", "wide")
    print(
        f"{SIMULATED}: no GPU and no kubelet behind these nodes, so these pods never start a process "
        "(kwok reports them Running and Ready): "
        "there is no step, loss, throughput or latency of theirs to show. A Pending pod is one the "
        "scheduler found no free GPU for (the simulated TrainingJobs never finish, so they keep theirs)."
    )


def show_still_simulated(demo: Demo) -> None:
    banner(f"{SIMULATED}: the H100 resources, as the operator sees their scheduled pods")
    show(demo.plane, "get", "trainingjobs,modeldeployments", "-n", NAMESPACE)
    print(
        f"{SIMULATED}: the H100 rows above report scheduling only (a simulated replica counts as Ready "
        "because kwok says so); the CPU rows (tiny-*) were trained, served and measured by real pods on "
        "this machine."
    )
