"""The demo's real benchmark: each point Job of a BenchmarkSweep, run here against the CPU engine.

The operator renders one Job and one ``BenchmarkRuntimeConfig`` ConfigMap per point. For each point
the demo runs that config with ``modelfleet-bench run`` on this machine, against the launcher that
serves the tiny model (overridden: the target URL, the tokenizer's path and the output directory),
then ends the point's (simulated) pod with the point's figures as its termination message, which is what
``modelfleet-bench`` writes in a real pod and what the operator reads back into the sweep's status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from kubernetes import client
from modelfleet_api import contract
from modelfleet_serve.bench.plot import plot_sweep
from modelfleet_serve.bench.results import RESULTS_JSON, point_metrics

from hack.controlplane.cluster import ControlPlane, wait_for
from hack.controlplane.kwok import finish_pod
from hack.demo.engine import LocalEngine


def _running_pod(core: client.CoreV1Api, namespace: str, job: str) -> str:
    found: list[str] = []

    def running() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
        found[:] = [p.metadata.name for p in pods if p.status.phase == "Running"]
        return bool(found)

    wait_for(running, 120, f"the pod of benchmark Job {job} running")
    return found[0]


def run_point(
    plane: ControlPlane,
    core: client.CoreV1Api,
    namespace: str,
    sweep: str,
    point: int,
    engine: LocalEngine,
    workdir: Path,
) -> Path:
    """Runs one point's rendered benchmark config for real; returns its results.json."""
    job = f"{sweep}-point-{point}"
    pod = _running_pod(core, namespace, job)
    config_map = json.loads(
        plane.kubectl("get", "configmap", f"{job}-config", "-n", namespace, "-o", "json").stdout
    )
    rendered = json.loads(plane.kubectl("get", "job", job, "-n", namespace, "-o", "json").stdout)
    (container,) = rendered["spec"]["template"]["spec"]["containers"]
    config = yaml.safe_load(config_map["data"][contract.CONFIG_FILE])
    output = workdir / f"point-{point}"
    config |= {"targetUrl": engine.url, "outputDir": str(output), "tokenizer": str(engine.model_dir)}
    config_dir = workdir / f"point-{point}-etc"
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / contract.CONFIG_FILE).write_text(yaml.safe_dump(config))
    argv = [
        arg.replace(contract.CONFIG_DIR, str(config_dir))
        for arg in (*container.get("command", []), *container.get("args", []))
    ]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env[contract.ENV_BENCH_CONFIG] = str(config_dir / contract.CONFIG_FILE)
    print(f"$ {' '.join(argv)}", flush=True)
    subprocess.run(argv, env=env, check=True)
    results = output / RESULTS_JSON
    summary = json.loads(results.read_text())["summary"]
    message = point_metrics(summary).model_dump_json(by_alias=True, exclude_none=True)
    finish_pod(core, namespace, pod, succeeded=True, message=message)
    return results


def run_sweep(
    plane: ControlPlane,
    core: client.CoreV1Api,
    namespace: str,
    sweep: str,
    points: int,
    engine: LocalEngine,
    workdir: Path,
) -> Path:
    """Runs every point in order; returns the path of the sweep's plot."""
    results = [run_point(plane, core, namespace, sweep, point, engine, workdir) for point in range(points)]
    return plot_sweep(results, workdir / "sweep.html")
