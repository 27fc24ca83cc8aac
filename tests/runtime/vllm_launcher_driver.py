"""Runs the launcher's vLLM checks inside a venv where vLLM is installed (``test_serve_vllm_args``).

Usage: ``VLLM_PYTHON vllm_launcher_driver.py CASES.json`` prints one JSON result per case. Each case
is a ServingRuntimeConfig for engine vllm over a local model directory. A case expected to be
accepted goes through ``launcher.engine_launch`` (the command line the launcher would start); a case
expected to be refused goes through ``launcher.run`` itself, which must exit before starting the
engine with the refusal in the termination message. This machine has no GPU: the launcher's GPU probe
is replaced by one that answers yes (standing in for the GPU node the launcher would run on), and the
termination message goes to a temporary file instead of /dev/termination-log.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import modelfleet_serve.engines as host
from modelfleet_api.engines import command_for
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_serve import launcher
from modelfleet_serve.launcher_metrics import LauncherMetrics


def main() -> None:
    cases = json.loads(Path(sys.argv[1]).read_text())
    host.has_nvidia_gpu = launcher.has_nvidia_gpu = lambda: True  # type: ignore[assignment]
    results = []
    for case in cases:
        config = ServingRuntimeConfig.model_validate(case["config"])
        if case["expect"] == "accept":
            launch = launcher.engine_launch(config, launcher.resolve_models(config), None)
            results.append({"id": case["id"], "argv": launch.argv})
            continue
        with tempfile.TemporaryDirectory() as tmp:
            launcher.TERMINATION_LOG = Path(tmp) / "termination-log"
            launcher.TERMINATION_LOG.write_text("")
            code = launcher.run(config, command_for(EngineType.VLLM), LauncherMetrics())
            results.append({"id": case["id"], "exit": code, "message": launcher.TERMINATION_LOG.read_text()})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
