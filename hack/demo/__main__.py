"""``make demo``: the operator at work on the local control plane.

Starts the control plane (reused when running) and the operator (kept running afterwards, stopped by
``make cluster-down``), applies the example resources into the ``modelfleet-demo`` namespace and
drives their pods the way a real cluster would, printing ``kubectl get`` as they progress.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from kubernetes import client, config

from hack import operator_run
from hack.controlplane.cluster import REPO_ROOT, ControlPlane, wait_for
from hack.demo.bench import run_sweep
from hack.demo.engine import LocalEngine, run_rendered_engine, stream_chat
from tests.cluster.drive import finish_workers, publish_progress, running_workers

NAMESPACE = "modelfleet-demo"
HEALTH_PORT = 18080
METRICS_PORT = 18090
TRAINING_EXAMPLES = {
    "trainingjob-lora-nc80.yaml": ("llama-lora-nc80", 1),
    "trainingjob-zero3-nd96.yaml": ("llama70b-zero3-nd96", 4),
}


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def show(plane: ControlPlane, *args: str) -> None:
    print(plane.kubectl(*args).stdout.rstrip(), flush=True)


def apply_crds(plane: ControlPlane) -> None:
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    plane.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        "-l",
        "app.kubernetes.io/part-of=modelfleet",
    )


def start_operator(plane: ControlPlane) -> None:
    operator = plane.process("operator")
    operator.stop()  # an operator left by an earlier demo may run older code
    operator.start(
        # only the demo's namespace: a test session's operator may be watching the whole cluster
        operator_run.command("--namespace", NAMESPACE, health_port=HEALTH_PORT, metrics_port=METRICS_PORT),
        env={
            "KUBECONFIG": str(plane.kubeconfig),
            "MODELFLEET_RESYNC_SECONDS": "1",
            "MODELFLEET_BACKOFF_SECONDS": "1",
            "PYTHONUNBUFFERED": "1",
        },
    )

    wait_for(
        lambda: operator_run.healthy(HEALTH_PORT), 60, f"the operator's /healthz (log: {operator.log_file})"
    )
    print(
        f"operator running (pid {operator.pid()}), log: {operator.log_file}, "
        f"metrics: http://127.0.0.1:{METRICS_PORT}/metrics"
    )


def fresh_namespace(plane: ControlPlane, core: client.CoreV1Api) -> None:
    """A clean demo namespace. An earlier demo's resources are deleted first, while the operator runs
    and can release their finalizers (kopf stops watching a namespace once it is terminating, so
    deleting the namespace with them inside would leave them stuck); then the namespace itself."""
    present = plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0
    if present:
        plane.kubectl(
            "delete",
            "benchmarksweeps,modeldeployments,trainingjobs",
            "--all",
            "-n",
            NAMESPACE,
            "--timeout=120s",
        )
        core.delete_namespace(NAMESPACE)

    def gone() -> bool:
        try:
            core.read_namespace(NAMESPACE)
            return False
        except client.ApiException as exc:
            return exc.status == 404

    wait_for(gone, 120, f"the previous {NAMESPACE} namespace to be deleted")
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    wait_for(lambda: _has_default_sa(core), 30, "the demo namespace's default ServiceAccount")


def _has_default_sa(core: client.CoreV1Api) -> bool:
    try:
        core.read_namespaced_service_account("default", NAMESPACE)
        return True
    except client.ApiException:
        return False


def training(plane: ControlPlane, core: client.CoreV1Api) -> None:
    banner("TrainingJobs: a LoRA job on one spot NC80adis node, a ZeRO-3 job on four ND96isr nodes")
    for example in TRAINING_EXAMPLES:
        show(plane, "apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples" / example))
    show(plane, "get", "trainingjobs", "-n", NAMESPACE)
    for name, nodes in TRAINING_EXAMPLES.values():
        running_workers(core, NAMESPACE, name, nodes, timeout=120)
    wait_for(lambda: _phases(plane, "trainingjobs") == {"Running"}, 60, "both TrainingJobs Running")
    banner("the gangs are scheduled on the GPU pools and running")
    show(plane, "get", "pods", "-n", NAMESPACE, "-o", "wide")
    show(plane, "get", "trainingjobs", "-n", NAMESPACE)
    total = 1000
    for step, loss in ((250, 2.31), (500, 1.74), (1000, 1.38)):
        for name, _ in TRAINING_EXAMPLES.values():
            publish_progress(
                core, NAMESPACE, name, step=step, total_steps=total, loss=loss, tokens_per_second=48_000.0
            )
        wait_for(lambda s=step: _steps(plane) == [s] * len(TRAINING_EXAMPLES), 30, f"status at step {step}")
        banner(f"rank 0 reports step {step}/{total}")
        show(plane, "get", "trainingjobs", "-n", NAMESPACE)
    for name, _ in TRAINING_EXAMPLES.values():
        finish_workers(core, NAMESPACE, name, succeeded=True)
    wait_for(lambda: _phases(plane, "trainingjobs") == {"Succeeded"}, 60, "both TrainingJobs Succeeded")
    banner("every worker exited 0: the TrainingJobs succeeded")
    show(plane, "get", "trainingjobs", "-n", NAMESPACE)


SERVING_EXAMPLES = (
    "modeldeployment-vllm-llama3-8b.yaml",
    "modeldeployment-sglang-canary.yaml",
    "modeldeployment-cpu-tiny.yaml",
)


def serving(plane: ControlPlane) -> None:
    banner("ModelDeployments: vLLM on spot NC80adis (scale to zero), SGLang with a 10% canary, a CPU model")
    for example in SERVING_EXAMPLES:
        show(plane, "apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples" / example))
    wait_for(
        lambda: (
            _phases(plane, "modeldeployments") == {"Ready"}
            and len(_names(plane, "modeldeployments")) == len(SERVING_EXAMPLES)
        ),
        120,
        "every ModelDeployment Ready",
    )
    banner("their pods passed their readiness probes: Ready (no KEDA here, so an HPA keeps one replica)")
    show(plane, "get", "modeldeployments", "-n", NAMESPACE)
    show(plane, "get", "deployments,services,hpa,pdb", "-n", NAMESPACE)


def chat(engine: LocalEngine) -> None:
    banner(f"a streamed chat completion from {engine.url} (a tiny random model: expect nonsense)")
    prompt = "How many red cats are there?"
    print(f"user> {prompt}\nassistant> ", end="", flush=True)
    stream_chat(engine, prompt)


BENCH_SWEEP = "tiny-chat-concurrency"
BENCH_POINTS = 3


def benchmark(plane: ControlPlane, core: client.CoreV1Api, engine: LocalEngine) -> None:
    banner("BenchmarkSweeps: vLLM vs SGLang on H100 (GPU only: shown expanding), tiny-chat at 1/2/4 users")
    for example in ("benchmarksweep-engines.yaml", "benchmarksweep-cpu-tiny.yaml"):
        show(plane, "apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples" / example))
    wait_for(lambda: len(_names(plane, "jobs")) > 0, 60, "the first benchmark Job")
    show(plane, "get", "benchmarksweeps", "-n", NAMESPACE)
    banner("each point of tiny-chat-concurrency runs for real here against the CPU engine")
    plot = run_sweep(
        plane, core, NAMESPACE, BENCH_SWEEP, BENCH_POINTS, engine, plane.run_dir / "demo" / "bench"
    )
    wait_for(
        lambda: _phase(plane, "benchmarksweep", BENCH_SWEEP) == "Succeeded", 60, f"{BENCH_SWEEP} Succeeded"
    )
    banner("the operator read every point's figures back into the sweep's status")
    show(plane, "get", "benchmarksweeps", "-n", NAMESPACE)
    print_points(plane, BENCH_SWEEP)
    print(f"plot of the sweep (latency against throughput): {plot}")


def print_points(plane: ControlPlane, sweep: str) -> None:
    status = json.loads(plane.kubectl("get", "benchmarksweep", sweep, "-n", NAMESPACE, "-o", "json").stdout)[
        "status"
    ]
    row = "{:<16} {:<10} {:>10} {:>8} {:>13} {:>13} {:>9}"
    print(row.format("LOAD", "PHASE", "TOKENS/S", "REQ/S", "TTFT P95 MS", "TPOT P95 MS", "MEETS SLO"))
    for point in status["points"]:
        figures = [
            point.get(key) for key in ("outputTokensPerSecond", "requestsPerSecond", "ttftP95Ms", "tpotP95Ms")
        ]
        print(
            row.format(
                point["load"],
                point["phase"],
                *(f"{value:.1f}" if value is not None else "-" for value in figures),
                str(point.get("meetsSlos", "-")),
            )
        )
    for best in status.get("bestPerSlo", []):
        print(f"best for {best['slo']}: {best['load']} ({best['outputTokensPerSecond']:.1f} tokens/s)")


def _phase(plane: ControlPlane, kind: str, name: str) -> str:
    return plane.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "jsonpath={.status.phase}").stdout


def _names(plane: ControlPlane, kind: str) -> list[str]:
    out = plane.kubectl("get", kind, "-n", NAMESPACE, "-o", "jsonpath={.items[*].metadata.name}").stdout
    return out.split()


def _phases(plane: ControlPlane, kind: str) -> set[str]:
    out = plane.kubectl("get", kind, "-n", NAMESPACE, "-o", "jsonpath={.items[*].status.phase}").stdout
    return set(out.split())


def _steps(plane: ControlPlane) -> list[int]:
    out = plane.kubectl(
        "get", "trainingjobs", "-n", NAMESPACE, "-o", "jsonpath={.items[*].status.progress.step}"
    ).stdout
    return [int(s) for s in out.split()]


def main() -> int:
    started = time.monotonic()
    plane = ControlPlane(real_node=True)
    plane.up()
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    banner("local control plane with simulated AKS GPU pools")
    show(
        plane,
        "get",
        "nodes",
        "-L",
        "node.kubernetes.io/instance-type",
        "-L",
        "kubernetes.azure.com/agentpool",
        "-L",
        "kubernetes.azure.com/scalesetpriority",
    )
    apply_crds(plane)
    start_operator(plane)
    core = client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig)))
    fresh_namespace(plane, core)
    training(plane, core)
    serving(plane)
    banner("the launcher runs, on this CPU, the container and config the operator rendered for tiny-chat")
    with run_rendered_engine(plane, NAMESPACE, "tiny-chat", plane.run_dir / "demo") as engine:
        chat(engine)
        benchmark(plane, core, engine)
    banner(f"demo done in {time.monotonic() - started:.0f}s")
    print(f"kubeconfig: export KUBECONFIG={Path(plane.kubeconfig)}  (stop everything: make cluster-down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
