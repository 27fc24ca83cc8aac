"""What the operator asks of the engine command contract before it starts any pod.

The command builders (``modelfleet_api.engines``) are pure: config in, command line out, the same code
the launcher starts the engine with. Running them here on the config the pods will read turns a
setting the engine cannot honour into an ``InvalidSpec`` condition at once, instead of a
crash-looping pod; and the health path the probes use is the one the launcher watches.

A backstop: the CRD refuses on apply every spec these builders refuse (rules generated from
``modelfleet_api.serving.ENGINE_SUPPORT``: engine settings, served name and API key, the last two
since commit c74e15e). ModelDeployments stored before those rules are kept by the API server as they
are, and would otherwise start pods whose launcher refuses them.
"""

from __future__ import annotations

from pathlib import Path

from modelfleet_api.contract import MODEL_CACHE_DIR
from modelfleet_api.engines import HEALTH_PATHS, command_for
from modelfleet_api.engines.base import ResolvedModel
from modelfleet_api.serving import ServingRuntimeConfig

__all__ = ["HEALTH_PATHS", "launch_problem"]


def launch_problem(config: ServingRuntimeConfig, field_prefix: str = "") -> str | None:
    """Why the launcher would refuse this config (the message names the field), or None.

    What only the pod can know (a GPU, the engine's program, a Triton repository's layout, vLLM's
    own parser) is checked by the launcher."""
    placeholder_key = "api-key" if config.api_key_env else None
    try:
        command_for(config.engine.type).launch(
            config, ResolvedModel(path=Path(MODEL_CACHE_DIR)), placeholder_key, gpu=True
        )
    except ValueError as error:
        return f"{field_prefix}{error}"
    return None
