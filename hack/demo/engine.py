"""The demo's real engine: the launcher run locally with the config the operator rendered.

``make demo`` applies a CPU ModelDeployment (engine ``transformers``) to the local control plane, reads
back the runtime-config ConfigMap and the container the operator rendered for it, and runs that
container's command here on a tiny Llama made on the fly. Overridden, because a pod's paths and ports
do not exist on this machine: the model URI (the tiny model's directory), the model cache, the ports
and the listen address.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml
from modelfleet_api import contract

from hack import tinymodel
from hack.controlplane.cluster import ControlPlane

STARTUP_TIMEOUT_SECONDS = 180


@dataclass(frozen=True)
class LocalEngine:
    url: str
    served_model: str
    model_dir: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tiny_model(workdir: Path) -> Path:
    """A tiny Llama and its tokenizer, made once and reused by later demos."""
    model_dir = workdir / "tiny-llama"
    if not (model_dir / "config.json").exists():
        tokenizer = tinymodel.train_tokenizer()
        tinymodel.make_model(tokenizer, save_dir=model_dir)
    return model_dir


def _rendered(plane: ControlPlane, namespace: str, name: str) -> tuple[dict[str, object], dict[str, object]]:
    """(runtime config, server container) of the stable track, as stored in the cluster."""
    config_map = json.loads(
        plane.kubectl("get", "configmap", f"{name}-stable-config", "-n", namespace, "-o", "json").stdout
    )
    deployment = json.loads(
        plane.kubectl("get", "deployment", f"{name}-stable", "-n", namespace, "-o", "json").stdout
    )
    config = yaml.safe_load(config_map["data"][contract.CONFIG_FILE])
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    return config, server


@contextmanager
def run_rendered_engine(
    plane: ControlPlane, namespace: str, name: str, workdir: Path
) -> Iterator[LocalEngine]:
    config, server = _rendered(plane, namespace, name)
    port, metrics_port = _free_port(), _free_port()
    model_dir = tiny_model(workdir)
    config["model"]["uri"] = str(model_dir)
    config |= {
        "port": port,
        "metricsPort": metrics_port,
        "host": "127.0.0.1",
        "cacheDir": str(workdir / "cache"),
    }
    config_dir = workdir / "etc"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / contract.CONFIG_FILE).write_text(yaml.safe_dump(config))
    argv = [
        arg.replace(contract.CONFIG_DIR, str(config_dir)) for arg in (*server["command"], *server["args"])
    ]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HF_HOME": str(workdir / "hf"),
    }
    for var in server.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"].replace(contract.CONFIG_DIR, str(config_dir))
    log = workdir / "engine.log"
    print(f"$ {' '.join(argv)}   (log: {log})", flush=True)
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            argv, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        health = server["readinessProbe"]["httpGet"]["path"]
        _wait_ready(launcher, f"http://127.0.0.1:{port}{health}", log)
        yield LocalEngine(
            url=f"http://127.0.0.1:{port}",
            served_model=config["servedModelName"],
            model_dir=model_dir,
            log=log,
        )
    finally:
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGTERM)
            try:
                launcher.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()


def _wait_ready(launcher: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if launcher.poll() is not None:
            raise RuntimeError(f"modelfleet-serve exited with {launcher.returncode}; see {log}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} not ready after {STARTUP_TIMEOUT_SECONDS}s; see {log}")


def stream_chat(engine: LocalEngine, prompt: str, max_tokens: int = 24) -> str:
    """Streams a chat completion, printing each piece of text as it arrives; returns the whole answer."""
    body = {
        "model": engine.served_model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
    }
    pieces = []
    with httpx.stream("POST", f"{engine.url}/v1/chat/completions", json=body, timeout=120) as reply:
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            for choice in chunk.get("choices", []):
                piece = choice.get("delta", {}).get("content") or ""
                pieces.append(piece)
                print(piece, end="", flush=True)
    print(flush=True)
    return "".join(pieces)
