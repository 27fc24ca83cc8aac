"""What the operator asks of the serving launcher's engine adapters before it starts any pod.

The adapters (``modelfleet_serve.engines``) are pure: config in, command line out. Running them here
on the config the pods will read turns a setting the engine cannot honour into an ``InvalidSpec``
condition at once, instead of a crash-looping pod; and the health path the probes use is the one the
launcher watches, so the two can never disagree.
"""

from __future__ import annotations

from pathlib import Path

from modelfleet_api.contract import MODEL_CACHE_DIR
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_serve.engines import ADAPTERS
from modelfleet_serve.engines.base import ResolvedModel

HEALTH_PATHS: dict[EngineType, str] = {engine: adapter.health_path for engine, adapter in ADAPTERS.items()}


def launch_problem(config: ServingRuntimeConfig, field_prefix: str = "") -> str | None:
    """Why the launcher would refuse this config (the message names the field), or None."""
    adapter = ADAPTERS[config.engine.type]()
    placeholder_key = "api-key" if config.api_key_env else None
    try:
        adapter.launch(config, ResolvedModel(path=Path(MODEL_CACHE_DIR)), placeholder_key)
    except ValueError as error:
        return f"{field_prefix}{error}"
    return None
