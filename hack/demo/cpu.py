"""The CPU examples on the real node: train, serve, chat and benchmark, all in pods.

Each figure printed here comes from the cluster: the training progress is what rank 0 measured and
patched into its progress ConfigMap (the operator mirrors it into the TrainingJob's status), the chat
is streamed from the engine's pod through its Service, and the benchmark figures are what each point
pod measured and wrote as its termination message.
"""

from __future__ import annotations

import json
import ssl
from typing import Any

import httpx
import yaml
from modelfleet_api import constants as c

from hack.controlplane.cluster import REPO_ROOT, wait_for
from hack.demo.cluster import NAMESPACE, WORK_CLAIM, Demo, banner, show

TRAINING_JOB = "tiny-cpu"
DEPLOYMENT = "tiny-chat"
SWEEP = "tiny-chat-concurrency"
PROMPT = "How many red cats are there?"
WORK = f"pvc://{WORK_CLAIM}"
TRAINING_OVERRIDES = {
    "model": {"uri": f"{WORK}/model"},
    "dataset": {"uri": f"{WORK}/data/train.jsonl", "format": "jsonl"},
    "method": {"type": "full"},
    "hyperparameters": {"learningRate": 0.003, "maxSteps": 60, "perDeviceBatchSize": 4, "sequenceLength": 48},
    "checkpoint": {"uri": f"{WORK}/checkpoints", "intervalSteps": 20},
    "output": {"uri": f"{WORK}/output"},
}
"""What the demo changes in examples/trainingjob-cpu-tiny.yaml: its data on the claim, two workers,
a full fine-tune (what the engine then serves as is) of 60 steps."""


def _apply_example(demo: Demo, example: str, spec_overrides: dict[str, Any]) -> None:
    """Applies an example with some of its spec replaced (printed, so the reader sees what ran)."""
    manifest = yaml.safe_load((REPO_ROOT / "examples" / example).read_text())
    manifest["spec"].update(spec_overrides)
    print(f"examples/{example}, with spec: {json.dumps(spec_overrides)}")
    show(demo.plane, "apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(manifest))


def train(demo: Demo) -> None:
    banner(f"TrainingJob {TRAINING_JOB}: two workers on the real node train the tiny model over gloo")
    overrides = dict(TRAINING_OVERRIDES)
    overrides["resources"] = {**_example_spec("trainingjob-cpu-tiny.yaml")["resources"], "nodes": 2}
    _apply_example(demo, "trainingjob-cpu-tiny.yaml", overrides)
    last_step = -1

    def report() -> bool:
        nonlocal last_step
        status = demo.get("trainingjobs", TRAINING_JOB).get("status", {})
        progress = status.get("progress") or {}
        if progress.get("step", -1) != last_step:
            last_step = progress["step"]
            print(_progress_line(progress, status.get("restarts", 0)), flush=True)
        return status.get("phase") in ("Succeeded", "Failed")

    wait_for(report, 900, f"TrainingJob {TRAINING_JOB} to finish", interval=1)
    if last_step == -1:
        print("rank 0 reported no progress: no step, loss or throughput to show (its log says why)")
    show(demo.plane, "get", "trainingjob", TRAINING_JOB, "-n", NAMESPACE)
    phase = demo.phase("trainingjobs", TRAINING_JOB)
    if phase != "Succeeded":
        raise SystemExit(
            f"TrainingJob {TRAINING_JOB} ended {phase}: see `kubectl describe trainingjob` and its pods"
        )
    output = demo.work_dir / "output"
    written = ", ".join(sorted(p.name for p in output.iterdir()))
    print(f"its output, written by rank 0 to pvc://tiny-work/output ({output}): {written}")


def _example_spec(example: str) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((REPO_ROOT / "examples" / example).read_text())["spec"]
    return spec


def _progress_line(progress: dict[str, Any], restarts: int) -> str:
    parts = [f"step {progress['step']}/{progress.get('totalSteps', '?')}"]
    if progress.get("loss") is not None:
        parts.append(f"loss {progress['loss']:.3f}")
    if progress.get("tokensPerSecond") is not None:
        parts.append(f"{progress['tokensPerSecond']:.0f} tokens/s")
    if progress.get("lastCheckpointStep") is not None:
        parts.append(f"checkpoint at step {progress['lastCheckpointStep']}")
    if restarts:
        parts.append(f"{restarts} gang restart(s)")
    return "rank 0 reports: " + ", ".join(parts)


def serve_and_chat(demo: Demo) -> None:
    banner(f"ModelDeployment {DEPLOYMENT}: `transformers serve` of what the job wrote, on the real node")
    # lineage: the deployment names the job, and the operator serves the output the job's status records
    _apply_example(
        demo, "modeldeployment-cpu-tiny.yaml", {"model": {"fromTrainingJob": {"name": TRAINING_JOB}}}
    )
    wait_for(
        lambda: demo.phase("modeldeployments", DEPLOYMENT) == "Ready", 600, f"{DEPLOYMENT} Ready", interval=1
    )
    print("its pod passed its startup and readiness probes (the kubelet ran them against the engine):")
    show(demo.plane, "get", "modeldeployment", DEPLOYMENT, "-n", NAMESPACE)
    show(
        demo.plane,
        "get",
        "pods",
        "-n",
        NAMESPACE,
        "-l",
        f"{c.LABEL_MODEL_DEPLOYMENT}={DEPLOYMENT}",
        "-o",
        "wide",
    )
    banner(f"a streamed chat completion through Service {DEPLOYMENT} (a tiny model: expect nonsense)")
    print(f"user> {PROMPT}\nassistant> ", end="", flush=True)
    _stream_chat(demo)


def _stream_chat(demo: Demo) -> None:
    """Streams from the Service through the API server's service proxy (it picks one of the Service's
    ready endpoints, as kube-proxy would), with the admin credentials of the kubeconfig."""
    plane = demo.plane
    served = demo.get("modeldeployments", DEPLOYMENT)["spec"]["servedModelName"]
    url = f"{plane.server}/api/v1/namespaces/{NAMESPACE}/services/{DEPLOYMENT}:8000/proxy/v1/chat/completions"
    body = {
        "model": served,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 24,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usage: dict[str, Any] = {}
    with (
        httpx.Client(verify=_admin_tls(demo)) as http,
        http.stream("POST", url, json=body, timeout=120) as reply,
    ):
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            for choice in chunk.get("choices", []):
                print(choice.get("delta", {}).get("content") or "", end="", flush=True)
            usage = chunk.get("usage") or usage
    print(f"\n({usage.get('completion_tokens', '?')} tokens from the engine's pod)")


def _admin_tls(demo: Demo) -> ssl.SSLContext:
    """TLS to the API server as the kubeconfig's admin: the plane's CA and the admin's client
    certificate (httpx 0.28+ takes them as one context; its ``cert=`` argument no longer reaches the
    server, which then sees ``system:anonymous``)."""
    pki = demo.plane.pki
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
    return context


def benchmark(demo: Demo) -> None:
    banner(f"BenchmarkSweep {SWEEP}: 1, 2 and 4 concurrent users against {DEPLOYMENT}, each point a pod")
    demo.apply("benchmarksweep-cpu-tiny.yaml")
    wait_for(
        lambda: demo.phase("benchmarksweeps", SWEEP) in ("Succeeded", "Failed"),
        900,
        f"{SWEEP} to finish",
        interval=2,
    )
    banner("the operator read every point pod's termination message into the sweep's status")
    show(demo.plane, "get", "benchmarksweeps", "-n", NAMESPACE)
    show(demo.plane, "get", "pods", "-n", NAMESPACE, "-l", f"{c.LABEL_BENCHMARK_SWEEP}={SWEEP}", "-o", "wide")
    print_points(demo.get("benchmarksweeps", SWEEP)["status"])


def print_points(status: dict[str, Any]) -> None:
    row = "{:<16} {:<10} {:>10} {:>8} {:>13} {:>13} {:>9}"
    print(row.format("LOAD", "PHASE", "TOKENS/S", "REQ/S", "TTFT P95 MS", "TPOT P95 MS", "MEETS SLO"))
    for point in status.get("points", []):
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
    points = {point["index"]: point for point in status.get("points", [])}
    for best in status.get("bestPerSlo", []):
        figure = points[best["point"]].get("outputTokensPerSecond")
        print(f"best meeting every SLO: {best['load']} ({figure:.1f} tokens/s)")
    if not status.get("bestPerSlo"):
        slos_met = next((k for k in status.get("conditions", []) if k["type"] == c.COND_SLOS_MET), None)
        print(f"no point meets every SLO: {slos_met['message'] if slos_met else 'the sweep set no SLO'}")
