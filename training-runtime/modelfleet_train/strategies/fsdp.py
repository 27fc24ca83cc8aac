"""FSDP2 (`torch.distributed.fsdp.fully_shard`): parameters, gradients and optimizer state sharded.

Each decoder layer is its own shard group (all-gathered just before it runs), then the root
module takes the rest (embeddings, final norm, head).
"""

from __future__ import annotations

from typing import Any

import torch
from modelfleet_api.training import FsdpSpec, Precision
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

from modelfleet_train.strategies.torch_native import TorchNativeStrategy


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks transformers declares as not to be split (`_no_split_modules`)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    names = set(getattr(base, "_no_split_modules", None) or [])
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(
            f"strategy.type: fsdp cannot find the decoder layers of {type(base).__name__} "
            "(it declares no _no_split_modules)"
        )
    return layers


class FsdpStrategy(TorchNativeStrategy):
    def setup(self, model: torch.nn.Module, total_steps: int) -> None:
        model = model.to(self.ctx.device)
        spec = self.config.strategy.fsdp or FsdpSpec()
        self._shard(model, spec.reshard_after_forward)
        self.model = model
        self.build_optimization(total_steps)

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
        model = model.to(self.ctx.device)
        self._shard(model, reshard_after_forward=True)
        return model

    def unwrapped(self) -> Any:
        return self.model
