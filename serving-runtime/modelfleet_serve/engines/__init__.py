"""One adapter per engine behind one interface (`EngineAdapter`)."""

from __future__ import annotations

from modelfleet_api.serving import EngineType

from modelfleet_serve.engines.base import EngineAdapter
from modelfleet_serve.engines.lmdeploy import LmdeployAdapter
from modelfleet_serve.engines.sglang import SglangAdapter
from modelfleet_serve.engines.tgi import TgiAdapter
from modelfleet_serve.engines.transformers_serve import TransformersAdapter
from modelfleet_serve.engines.triton import TritonTrtllmAdapter
from modelfleet_serve.engines.vllm import VllmAdapter

ADAPTERS: dict[EngineType, type[EngineAdapter]] = {
    adapter.engine: adapter
    for adapter in (
        VllmAdapter,
        TgiAdapter,
        SglangAdapter,
        LmdeployAdapter,
        TritonTrtllmAdapter,
        TransformersAdapter,
    )
}


def adapter_for(engine: EngineType) -> EngineAdapter:
    return ADAPTERS[engine]()
