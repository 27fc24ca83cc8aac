"""The operator-to-runtime contract for serving, run for real: the server container the operator's
builder renders for a CPU ModelDeployment (engine ``transformers``, a tiny Llama), started locally
with that command, args and environment and with the rendered ConfigMap's file where the mount puts
it, answers its own readiness probe and streams a chat completion under the served name.

Overridden, because they must point into ``tmp_path`` or at free ports on a shared machine: the
config directory (``/etc/modelfleet`` -> ``tmp_path/etc``), and in the config file the model cache
(``/models`` -> ``tmp_path/models``), the ports (8000/9090 -> free ports) and the listen address
(``0.0.0.0`` -> ``127.0.0.1``). The model URI is a local directory, as a model baked into an image or
on a PVC would be, so the pod has no download init container.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from modelfleet_api import contract
from modelfleet_api.modeldeployment import ModelDeploymentSpec
from modelfleet_api.serving import EngineType, ServingRuntimeConfig
from modelfleet_operator.serving import builders
from modelfleet_operator.serving.builders import Owner
from modelfleet_operator.serving.engines import HEALTH_PATHS

from hack import tinymodel
from tests.runtime.conftest import VENV_BIN, free_port

pytestmark = pytest.mark.runtime

OWNER = Owner(name="tiny-chat", namespace="dev", uid="uid-1")
SERVED_NAME = "tiny/llama"
STARTUP_TIMEOUT_SECONDS = 300
"""A bound on a hang, not a measurement: on a fresh machine the first start imports transformers and
torch from a cold page cache while the other tiers import the runtime image into the node (one run
took over 120 s there)."""


def rendered(model_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(server container, ConfigMap) as the operator builds them."""
    spec = ModelDeploymentSpec.model_validate(
        {
            "model": {"uri": str(model_dir)},
            "servedModelName": SERVED_NAME,
            "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
            "env": [{"name": "HF_HUB_OFFLINE", "value": "1"}],
        }
    )
    (track,) = builders.tracks(spec, dict.fromkeys(EngineType, "serving-image"))
    deployment = builders.deployment(OWNER, spec, track, health_path=HEALTH_PATHS[track.engine.type])
    pod = deployment["spec"]["template"]["spec"]
    assert "initContainers" not in pod
    (server,) = pod["containers"]
    return server, builders.config_map(OWNER, spec, track)


def test_rendered_server_container_streams_a_chat_completion(tmp_path: Path) -> None:
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, save_dir=tmp_path / "model")
    server, config_map = rendered(tmp_path / "model")

    config_dir = tmp_path / "etc"
    config = yaml.safe_load(config_map["data"][contract.CONFIG_FILE])
    port, metrics_port = free_port(), free_port()
    assert (config["port"], config["metricsPort"], config["cacheDir"]) == (
        contract.SERVE_PORT, contract.METRICS_PORT, contract.MODEL_CACHE_DIR
    )  # fmt: skip
    config |= {"port": port, "metricsPort": metrics_port, "cacheDir": str(tmp_path / "models"),
               "host": "127.0.0.1"}  # fmt: skip
    config_dir.mkdir()
    (config_dir / contract.CONFIG_FILE).write_text(yaml.safe_dump(config))
    ServingRuntimeConfig.load(config_dir / contract.CONFIG_FILE)  # still what the launcher accepts

    def local(path: str) -> str:
        return path.replace(contract.CONFIG_DIR, str(config_dir))

    field_values = {"metadata.name": "tiny-chat-stable-0", "metadata.namespace": "dev"}
    # TMPDIR: the engine's spawned processes, stopped by SIGTERM, left their multiprocessing directories
    # (pymp-*) behind in /tmp
    env = {
        "PATH": str(VENV_BIN),
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "TMPDIR": str(tmp_path),
    }
    for var in server["env"]:
        if "valueFrom" in var:
            env[var["name"]] = field_values[var["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[var["name"]] = local(var["value"])
    assert env[contract.ENV_SERVE_CONFIG] == str(config_dir / contract.CONFIG_FILE)
    argv = server["command"] + [local(arg) for arg in server["args"]]
    assert argv == ["modelfleet-serve", "--config", str(config_dir / contract.CONFIG_FILE)]

    launcher = subprocess.Popen(argv, env=env, cwd=tmp_path, start_new_session=True)
    try:
        probe = server["readinessProbe"]["httpGet"]
        assert probe["port"] == "http" and server["ports"][0] == {"name": "http", "containerPort": 8000}
        ready_url = f"http://127.0.0.1:{port}{probe['path']}"
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            assert launcher.poll() is None, f"modelfleet-serve exited with {launcher.returncode}"
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{ready_url} not ready after {STARTUP_TIMEOUT_SECONDS} s"
            time.sleep(0.5)

        body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "How many red cats?"}],
                "max_tokens": 8, "stream": True}  # fmt: skip
        chunks = []
        with httpx.stream(
            "POST", f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60
        ) as reply:
            assert reply.status_code == 200
            for line in reply.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunks.append(json.loads(line.removeprefix("data: ")))
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
        assert text  # transformers serve answers only requests for the name it was started with
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGTERM)
            try:
                launcher.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
