"""FSDP2 (`torch.distributed.fsdp.fully_shard`): parameters, gradients and optimizer state sharded.

Each decoder layer is its own shard group (all-gathered just before it runs), then the root
module takes the rest (embeddings, final norm, head). Only rank 0 holds the loaded weights (the
others built the model on the meta device, see model_init): the model is sharded empty and rank 0
broadcasts the values into every rank's shards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.distributed as dist
from modelfleet_api.training import FsdpSpec, Precision
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    set_model_state_dict,
)
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from modelfleet_train.model_init import init_path
from modelfleet_train.strategies.torch_native import TorchNativeStrategy


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks transformers declares as not to be split (`_no_split_modules`)."""
    get_base_model = getattr(model, "get_base_model", None)  # a peft model wraps the transformers one
    base = get_base_model() if get_base_model is not None else model
    names = set(getattr(base, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"strategy.type: fsdp cannot find the decoder layers of {type(base).__name__} "
            "(it declares no _no_split_modules)"
        )
    return layers


def non_persistent_buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Buffers the state dict leaves out (e.g. rotary `inv_freq`), by fully qualified name."""
    return {
        f"{prefix}.{name}" if prefix else name: buffer
        for prefix, module in model.named_modules()
        for name, buffer in module.named_buffers(recurse=False)
        if name in module._non_persistent_buffers_set
    }


def shard_from_rank0(
    model: torch.nn.Module, shard: Callable[[torch.nn.Module], None], device: torch.device
) -> None:
    """Shard `model`, whose weights only rank 0 holds, and fill every rank's shards with them.

    Rank 0 keeps its weights in a full state dict on the CPU and moves the module to meta (the
    same structure as the others', tied weights tied again), so
    sharding allocates nothing anywhere; `to_empty` then allocates only each rank's shards, which
    `set_model_state_dict` fills tensor by tensor from rank 0. The buffers no state dict carries
    would be left uninitialised by `to_empty`: they are broadcast from rank 0 too. Collective."""
    main = dist.get_rank() == 0
    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True)) if main else {}
    buffers = {name: b.detach().clone() for name, b in non_persistent_buffers(model).items()} if main else {}
    if main:
        model.to("meta")
        # moving made tied parameters separate; the other ranks' stay tied (a transformers model's)
        cast(Any, model).tie_weights()
    shard(model)
    model.to_empty(device=device)
    set_model_state_dict(
        model, full, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
    )
    for name, buffer in non_persistent_buffers(model).items():
        if main:
            buffer.copy_(buffers[name])
        dist.broadcast(buffer, src=0)


class FsdpStrategy(TorchNativeStrategy):
    def setup(self, model: torch.nn.Module, total_steps: int) -> None:
        spec = self.config.strategy.fsdp or FsdpSpec()
        self.model = self._place(model, spec.reshard_after_forward)
        self.build_optimization(total_steps)

    def _place(self, model: torch.nn.Module, reshard_after_forward: bool) -> torch.nn.Module:
        """The model sharded on this rank's device, with the loaded weights in its shards."""
        if init_path(self.config, self.ctx.rank).broadcasts_from_rank0:
            shard_from_rank0(model, lambda m: self._shard(m, reshard_after_forward), self.ctx.device)
            return model
        model = model.to(self.ctx.device)
        self._shard(model, reshard_after_forward)
        return model

    def _shard(self, model: torch.nn.Module, reshard_after_forward: bool) -> None:
        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if self.config.precision == Precision.BF16
            else MixedPrecisionPolicy()
        )
        for layer in decoder_layers(model):
            fully_shard(layer, mp_policy=policy, reshard_after_forward=reshard_after_forward)
        fully_shard(model, mp_policy=policy, reshard_after_forward=reshard_after_forward)

    def sync_context(self, last_micro_batch: bool) -> Any:
        assert isinstance(self.model, FSDPModule)
        self.model.set_requires_gradient_sync(last_micro_batch)
        return super().sync_context(last_micro_batch)

    def wrap_frozen(self, model: torch.nn.Module) -> torch.nn.Module:
        return self._place(model, reshard_after_forward=True)

    def unwrapped(self) -> Any:
        return self.model
