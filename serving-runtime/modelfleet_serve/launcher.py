"""`modelfleet-serve`: resolve the model, start the engine, forward signals, exit with its code.

`modelfleet-serve download` only resolves the model (and adapters) into the cache: the ModelDeployment's
init container runs it, so the engine container finds every file in place and starts at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from modelfleet_api.contract import ENV_SERVE_CONFIG
from modelfleet_api.engines import command_for
from modelfleet_api.engines.base import EngineCommand, EngineConfigError, EngineLaunch, ResolvedModel
from modelfleet_api.first_process import shell_exit_code
from modelfleet_api.serving import ServingRuntimeConfig
from pydantic import ValidationError

from modelfleet_serve import model_cache
from modelfleet_serve.engines import availability_problem, has_nvidia_gpu, model_problem, parser_check
from modelfleet_serve.launcher_metrics import LauncherMetrics

log = logging.getLogger("modelfleet_serve")

EXIT_CONFIG_ERROR = 2
EXIT_ENGINE_UNAVAILABLE = 3
TERMINATION_LOG = Path("/dev/termination-log")
"""Kubernetes shows this file's content as the container's termination message."""
HEALTH_POLL_SECONDS = 1.0


def resolve_models(
    config: ServingRuntimeConfig, locate: Callable[[str, Path, str, str | None], Path] = model_cache.resolve
) -> ResolvedModel:
    """The local paths of the model and its adapters: downloaded into the cache by default, or only
    where they would be (``locate=model_cache.planned_path``, for ``--print-command``)."""
    cache = Path(config.cache_dir)
    path = locate(config.model.uri, cache, "model.uri", config.model.revision)
    adapters = {
        a.name: locate(a.uri, cache, f"engine.settings.loraAdapters[{i}].uri", None)
        for i, a in enumerate(config.engine.settings.lora_adapters)
    }
    return ResolvedModel(path=path, lora_adapters=adapters)


def read_api_key(config: ServingRuntimeConfig) -> str | None:
    if config.api_key_env is None:
        return None
    key = os.environ.get(config.api_key_env)
    if not key:
        raise EngineConfigError(f"apiKeyEnv: environment variable {config.api_key_env} is not set or empty")
    return key


def start_engine(launch: EngineLaunch) -> subprocess.Popen[bytes]:
    if launch.cwd is not None:
        launch.cwd.mkdir(parents=True, exist_ok=True)
    for link, target in launch.links.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        link.symlink_to(target.resolve(), target_is_directory=True)
    log.info("starting engine: %s", " ".join(launch.argv))
    return subprocess.Popen(launch.argv, env={**os.environ, **launch.env}, cwd=launch.cwd)


def forward_signals(engine: subprocess.Popen[bytes]) -> None:
    """Pass SIGTERM/SIGINT on to the engine, which then drains and exits; we exit when it does."""

    def forward(signum: int, _frame: object) -> None:
        log.info("forwarding %s to the engine (pid %d)", signal.Signals(signum).name, engine.pid)
        engine.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)


def watch_health(url: str, engine: subprocess.Popen[bytes], metrics: LauncherMetrics, started: float) -> None:
    """Mirror the engine's health endpoint into the ready gauge; log when it first answers."""
    first = True
    with httpx.Client(timeout=5.0) as client:
        while engine.poll() is None:
            try:
                healthy = client.get(url).status_code == 200
            except httpx.HTTPError:
                healthy = False
            metrics.ready.set(1 if healthy else 0)
            if healthy and first:
                first = False
                metrics.startup_seconds.set(time.monotonic() - started)
                log.info("engine ready after %.1f s (%s)", time.monotonic() - started, url)
            time.sleep(HEALTH_POLL_SECONDS)
    metrics.ready.set(0)


def fail(message: str, code: int) -> int:
    log.error("%s", message)
    if TERMINATION_LOG.exists():  # Kubernetes creates it in every container
        TERMINATION_LOG.write_text(message + "\n")
    return code


def engine_launch(config: ServingRuntimeConfig, model: ResolvedModel, api_key: str | None) -> EngineLaunch:
    """The engine's command line, checked against this host and the engine's own parser (where it is
    a Python package); raises ``EngineConfigError`` naming the field."""
    launch = command_for(config.engine.type).launch(config, model, api_key, gpu=has_nvidia_gpu())
    problem = model_problem(config, model) or parser_check.argv_problem(
        config.engine.type, launch.argv, config.engine.settings.extra_args
    )
    if problem is not None:
        raise EngineConfigError(problem)
    return launch


def run(config: ServingRuntimeConfig, command: EngineCommand, metrics: LauncherMetrics) -> int:
    problem = availability_problem(config.engine.type)
    if problem:
        return fail(problem, EXIT_ENGINE_UNAVAILABLE)
    metrics.info.info(
        {"engine": str(config.engine.type), "model": config.model.uri, "served": config.served_model_name}
    )
    metrics.serve(config.metrics_port)
    try:
        api_key = read_api_key(config)
        started = time.monotonic()
        model = resolve_models(config)
        metrics.download_seconds.set(time.monotonic() - started)
        launch = engine_launch(config, model, api_key)
    except ValueError as error:  # EngineConfigError and bad URIs
        return fail(str(error), EXIT_CONFIG_ERROR)
    except parser_check.ParserUnavailable as error:
        return fail(str(error), EXIT_ENGINE_UNAVAILABLE)
    started = time.monotonic()
    engine = start_engine(launch)
    metrics.running.set(1)
    forward_signals(engine)
    health_url = f"http://127.0.0.1:{config.port}{command.health_path}"
    threading.Thread(target=watch_health, args=(health_url, engine, metrics, started), daemon=True).start()
    returncode = engine.wait()
    metrics.running.set(0)
    log.info("engine exited with %d", returncode)
    return shell_exit_code(returncode)


def download(config: ServingRuntimeConfig) -> int:
    """Resolve the model and adapters into the cache (the init container's job)."""
    try:
        resolve_models(config)
    except ValueError as error:
        return fail(str(error), EXIT_CONFIG_ERROR)
    return 0


def print_command(config: ServingRuntimeConfig) -> int:
    """Print the engine command line the config gives, without downloading or starting anything."""
    try:
        models = resolve_models(config, locate=model_cache.planned_path)
        launch = command_for(config.engine.type).launch(
            config, models, read_api_key(config), gpu=has_nvidia_gpu()
        )
    except ValueError as error:
        return fail(str(error), EXIT_CONFIG_ERROR)
    print(" ".join(launch.argv))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelfleet-serve", description=__doc__)
    parser.add_argument(
        "action",
        nargs="?",
        choices=["serve", "download"],
        default="serve",
        help="serve (default): resolve the model and start the engine; download: only resolve the model",
    )
    parser.add_argument(
        "--config", default=os.environ.get(ENV_SERVE_CONFIG), help=f"config file (${ENV_SERVE_CONFIG})"
    )
    parser.add_argument("--print-command", action="store_true", help="print the engine command line and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.config:
        parser.error(f"no config: pass --config or set {ENV_SERVE_CONFIG}")
    try:
        config = ServingRuntimeConfig.load(args.config)
    except (OSError, ValidationError) as error:
        return fail(f"invalid serving config {args.config}: {error}", EXIT_CONFIG_ERROR)
    if args.action == "download":
        return download(config)
    if args.print_command:
        return print_command(config)
    return run(config, command_for(config.engine.type), LauncherMetrics())


if __name__ == "__main__":
    sys.exit(main())
