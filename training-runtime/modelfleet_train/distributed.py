"""Process-group set-up from torchrun's environment, and the few collectives the loop needs."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        return self.local_rank == 0


def init_distributed() -> DistContext:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPU); alone, a group of one."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29500")
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            device_id=device if device.type == "cuda" else None,
        )
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size, device=device)


def barrier() -> None:
    dist.barrier()


def broadcast_object(value: Any, src: int = 0) -> Any:
    holder = [value]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def all_gather_object(value: Any) -> list[Any]:
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def any_rank(flag: bool, device: torch.device) -> bool:
    """True when any rank's flag is set: all ranks then take the same branch (e.g. stop and save)."""
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def _reduced_int(value: int, device: torch.device, op: Any) -> int:
    tensor = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(tensor, op=op)
    return int(tensor.item())


def min_across_ranks(value: int, device: torch.device) -> int:
    return _reduced_int(value, device, dist.ReduceOp.MIN)


def max_across_ranks(value: int, device: torch.device) -> int:
    return _reduced_int(value, device, dist.ReduceOp.MAX)


def sum_across_ranks(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sums over the ranks, in float64 (sums of many token losses stay exact enough)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return [float(v) for v in tensor.tolist()]


def mean_across_ranks(values: list[float], device: torch.device) -> list[float]:
    return [v / dist.get_world_size() for v in sum_across_ranks(values, device)]


def shutdown() -> None:
    """Tear the group down: without it a gloo rank occasionally aborts at interpreter exit."""
    if dist.is_initialized():
        dist.destroy_process_group()
