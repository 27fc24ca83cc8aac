"""Where each rank's initial weights come from, decided from the config alone.

Reading a checkpoint with `from_pretrained` on every rank puts the whole model in host memory once
per rank (a 70B model in fp32 is 280 GB, eight ranks per ND96 node). Strategies that shard the
parameters must not do that:

- FSDP2: global rank 0 reads the weights on the CPU; every other rank builds the model from its
  config on the meta device (no memory). After sharding, rank 0 broadcasts each shard's values.
- DeepSpeed ZeRO-3: every rank loads under `deepspeed.zero.Init`, which partitions each parameter
  as it is read (transformers' integration, switched on by a live `HfDeepSpeedConfig`).

DDP and ZeRO 0-2 replicate the parameters anyway, and QLoRA's 4-bit base goes straight to the GPU,
so they keep reading the checkpoint on every rank. So does full-model DPO under ZeRO-3: its frozen
reference is a deep copy of the policy, which a partitioned model cannot give.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from modelfleet_api.runtime_config import TrainingRuntimeConfig
from modelfleet_api.training import StrategyType, TrainingMethod

from modelfleet_train.methods import quantized, uses_adapters
from modelfleet_train.strategies.deepspeed import zero_stage

log = logging.getLogger(__name__)
"""At INFO on every rank (cli): where a rank's weights come from explains its host memory."""


class InitPath(StrEnum):
    PRETRAINED = "every rank reads the weights"
    QUANTIZED = "every rank reads the weights in 4-bit onto its GPU"
    RANK0_WEIGHTS = "weights read on CPU, broadcast to the other ranks' shards"
    META = "model on meta, weights from rank 0"
    ZERO3_PARTITIONED = "weights partitioned across ranks as they load (ZeRO-3)"

    @property
    def broadcasts_from_rank0(self) -> bool:
        """The strategy must fill the shards from rank 0 (every rank takes this branch together)."""
        return self in {InitPath.RANK0_WEIGHTS, InitPath.META}


def init_path(config: TrainingRuntimeConfig, rank: int) -> InitPath:
    """How global `rank` gets its initial weights (every rank of a run decides alike)."""
    if quantized(config):
        return InitPath.QUANTIZED
    if config.strategy.type == StrategyType.FSDP:
        return InitPath.RANK0_WEIGHTS if rank == 0 else InitPath.META
    full_dpo = config.method.type == TrainingMethod.DPO and not uses_adapters(config)
    if config.strategy.type == StrategyType.DEEPSPEED and zero_stage(config) == 3 and not full_dpo:
        return InitPath.ZERO3_PARTITIONED
    return InitPath.PRETRAINED


def announce(rank: int, path: InitPath) -> None:
    log.info("rank %d: %s", rank, path)
