"""How long a worker may take to stop: the termination grace period of an attempt's pods (pure).

After SIGTERM (a drain, an eviction, a preemption) the runtime finishes the optimizer step it is in,
saves a checkpoint with every rank and exits; the kubelet kills it when the grace period ends. So the
grace period must cover one step and one checkpoint save of the model being trained. A worker exits
as soon as its checkpoint is written, so a grace period longer than needed costs nothing but the time
a hung worker holds up a drain.

Before anything was measured, the save is bounded from the spec: a node cannot hold more training
state than its GPUs' memory (the VM's memory when the optimizer is offloaded to the CPU, or on a CPU
size), and writing it to blob storage or a network volume goes at most at the VM's network bandwidth
(``instance_types``). Once rank 0 has reported a checkpoint save and a step (``status.progress``), the
next attempt gets at least twice those. Either way twice the time, because Azure's bandwidth is an
upper limit it does not guarantee, plus ``EXIT_SECONDS`` for the processes to exit after the save.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelfleet_api import instance_types as it
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.training import CpuOffload
from modelfleet_api.trainingjob import MAX_GRACE_SECONDS, MIN_GRACE_SECONDS, TrainingJobSpec

SAFETY_FACTOR = 2
"""A save is planned to take up to twice its bound or its measured time."""
EXIT_SECONDS = 30
"""After the save: the ranks leave the process group, torchrun collects them and the pod's log
is flushed."""
TORCHRUN_EXIT_SECONDS = 5
"""What torchrun keeps for itself after its workers' shutdown timeout, to report and exit before the
kubelet's SIGKILL."""
GIB = 1024**3


@dataclass(frozen=True, kw_only=True)
class GracePeriod:
    seconds: int
    basis: str
    """How it was chosen, for the operator's log."""


def torchrun_shutdown_seconds(grace_seconds: int) -> int:
    """``TORCH_ELASTIC_SHUTDOWN_TIMEOUT``: how long torchrun waits for its workers after passing SIGTERM
    on before it kills them (its default, 30 s, would cut a longer save short)."""
    return max(grace_seconds - TORCHRUN_EXIT_SECONDS, 1)


def state_bytes_per_node(spec: TrainingJobSpec) -> int:
    """The most training state one node can hold: its GPUs' memory, or the VM's memory when the
    optimizer lives in CPU memory or there is no GPU."""
    resources = spec.resources
    vm = it.info(resources.instance_type)
    if not vm.is_gpu or spec.strategy.cpu_offload != CpuOffload.NONE:
        return vm.memory_gib * GIB
    return resources.gpus_per_node * vm.gpu_memory_gib * GIB


def bound_save_seconds(spec: TrainingJobSpec) -> float:
    """Seconds to write ``state_bytes_per_node`` at the VM's network bandwidth."""
    vm = it.info(spec.resources.instance_type)
    return state_bytes_per_node(spec) * 8 / (vm.network_mbps * 1_000_000)


def _clamp(seconds: float) -> int:
    return min(max(math.ceil(seconds), MIN_GRACE_SECONDS), MAX_GRACE_SECONDS)


def grace_period(spec: TrainingJobSpec, progress: TrainingProgress | None) -> GracePeriod:
    """The grace period of the next attempt's workers."""
    if spec.termination_grace_period_seconds is not None:
        return GracePeriod(
            seconds=spec.termination_grace_period_seconds, basis="spec.terminationGracePeriodSeconds"
        )
    bound = bound_save_seconds(spec)
    seconds = _clamp(SAFETY_FACTOR * bound + EXIT_SECONDS)
    basis = (
        f"{SAFETY_FACTOR} x {bound:.0f} s to write {state_bytes_per_node(spec) / GIB:.0f} GiB of state at "
        f"the VM's {it.info(spec.resources.instance_type).network_mbps} Mbps, + {EXIT_SECONDS} s"
    )
    measured = progress.checkpoint_seconds if progress is not None else None
    if measured is not None:
        step = (progress.step_seconds if progress is not None else None) or 0.0
        from_measure = _clamp(SAFETY_FACTOR * (measured + step) + EXIT_SECONDS)
        if from_measure > seconds:
            seconds = from_measure
            basis = (
                f"{SAFETY_FACTOR} x (a measured {measured:.0f} s checkpoint save + a {step:.0f} s step), "
                f"+ {EXIT_SECONDS} s"
            )
    return GracePeriod(seconds=seconds, basis=basis)
