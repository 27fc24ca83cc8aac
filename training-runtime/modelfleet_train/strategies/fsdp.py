"""FSDP2 (`torch.distributed.fsdp.fully_shard`): parameters, gradients and optimizer state sharded.

Each decoder layer is its own shard group (all-gathered just before it runs), then the root
module takes the rest (embeddings, final norm, head). Activation checkpointing wraps each layer
before it is sharded, so FSDP's unshard/reduce hooks stay outside the recomputed region:
transformers' own checkpointing puts them inside, and the layers then got almost no gradient
(loss 5.81 -> 5.46 in 12 steps instead of 5.80 -> 3.89 without checkpointing, on the test model).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from modelfleet_api.training import FsdpSpec, Precision
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
    CheckpointImpl,
    CheckpointWrapper,
    apply_activation_checkpointing,
    checkpoint_wrapper,
)
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
        if self.hp.gradient_checkpointing:
            layer_types = tuple({type(layer) for layer in decoder_layers(model)})
            apply_activation_checkpointing(
                model,
                checkpoint_wrapper_fn=partial(
                    checkpoint_wrapper, checkpoint_impl=CheckpointImpl.NO_REENTRANT
                ),
                check_fn=lambda module: isinstance(module, layer_types),
            )
        self._shard(model, spec.reshard_after_forward)
        self.model = model
        self.build_optimization(total_steps)

    def _shard(self, model: torch.nn.Module, reshard_after_forward: bool) -> None:
        policy = (
            MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
            if self.config.precision == Precision.BF16
            else MixedPrecisionPolicy()
        )
        wrapped = [m for m in model.modules() if isinstance(m, CheckpointWrapper)]
        for layer in wrapped or decoder_layers(model):
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
