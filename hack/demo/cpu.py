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

from hack import tinymodel
from hack.controlplane.cluster import REPO_ROOT, wait_for
from hack.demo.cluster import NAMESPACE, WORK_CLAIM, Demo, banner, show

TRAINING_JOB = "tiny-cpu"
CANARY_JOB = "tiny-cpu-more"
DEPLOYMENT = "tiny-chat"
SWEEP = "tiny-chat-concurrency"
PROMPT = "How many red cats are there?"
WORK = f"pvc://{WORK_CLAIM}"
TRAINING_OVERRIDES: dict[str, Any] = {
    "model": {"uri": f"{WORK}/model"},
    "dataset": {"uri": f"{WORK}/data/train.jsonl", "format": "jsonl"},
    "method": {"type": "full"},
    "hyperparameters": {"learningRate": 0.003, "maxSteps": 60, "perDeviceBatchSize": 4, "sequenceLength": 48},
    "checkpoint": {"uri": f"{WORK}/checkpoints", "intervalSteps": 20},
    "output": {"uri": f"{WORK}/output"},
    "evaluation": {"holdoutFraction": 0.125},
}
"""What the demo changes in examples/trainingjob-cpu-tiny.yaml: its data on the claim, two workers,
a full fine-tune (what the engine then serves as is) of 60 steps, an eighth of the rows held out."""
CANARY_OVERRIDES = {
    **TRAINING_OVERRIDES,
    "model": {"uri": f"{WORK}/output"},
    "hyperparameters": {**TRAINING_OVERRIDES["hyperparameters"], "maxSteps": 20},
    "checkpoint": {"uri": f"{WORK}/checkpoints-more", "intervalSteps": 10},
    "output": {"uri": f"{WORK}/output-more"},
}
"""The second job: 20 more steps on the first one's output, one worker."""
ANALYSIS = {
    "benchmark": {
        "workload": {
            "synthetic": {
                "inputTokens": {"distribution": "uniform", "min": 8, "max": 24, "mean": 16},
                "outputTokens": {"mean": 8},
            },
            "seed": 1,
        },
        "load": {"mode": "closed-loop", "concurrency": [1], "requests": 6, "warmupRequests": 1},
        "slos": {"e2eP95Ms": 60000},
        # both tracks (500m each) and both tracks' point pods share the node's 2 CPUs
        "clientResources": {"cpu": "250m", "memory": "1Gi"},
        "quality": tinymodel.reference_quality(f"{WORK}/references.jsonl"),
    },
    "stages": [{"weight": 50, "durationSeconds": 0}, {"weight": 100, "durationSeconds": 0}],
    "maxRegressionPercent": 50,
}
"""The canary's gated promotion: at 50 % then 100 % of the traffic, each track measured by a point pod,
which also scores the track's answers to the reference set; the canary may be at most half as good as
stable (a shared CPU measures both tracks at once)."""


def _apply_example(demo: Demo, example: str, spec_overrides: dict[str, Any], name: str | None = None) -> None:
    """Applies an example (under ``name``, else its own) with some of its spec replaced (printed, so the
    reader sees what ran)."""
    manifest = yaml.safe_load((REPO_ROOT / "examples" / example).read_text())
    manifest["spec"].update(spec_overrides)
    if name is not None:
        manifest["metadata"]["name"] = name
    print(f"examples/{example}{f' as {name}' if name else ''}, with spec: {json.dumps(spec_overrides)}")
    show(demo.plane, "apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(manifest))


def train(demo: Demo) -> None:
    banner(f"TrainingJob {TRAINING_JOB}: two workers on the real node train the tiny model over gloo")
    overrides = dict(TRAINING_OVERRIDES)
    overrides["resources"] = {**_example_spec("trainingjob-cpu-tiny.yaml")["resources"], "nodes": 2}
    _apply_example(demo, "trainingjob-cpu-tiny.yaml", overrides)
    _follow_training(demo, TRAINING_JOB, "output")


def _follow_training(demo: Demo, name: str, output_dir: str) -> None:
    """Prints the progress and held-out figures rank 0 reports until the job ends; fails the demo
    unless it Succeeded."""
    last_step, last_evaluation = -1, None

    def report() -> bool:
        nonlocal last_step, last_evaluation
        status = demo.get("trainingjobs", name).get("status", {})
        progress = status.get("progress") or {}
        if progress.get("step", -1) != last_step:
            last_step = progress["step"]
            print(_progress_line(progress, status.get("restarts", 0)), flush=True)
        evaluation = (status.get("evaluation") or {}).get("latest")
        if evaluation and evaluation != last_evaluation:
            last_evaluation = evaluation
            print(_evaluation_line(evaluation), flush=True)
        return status.get("phase") in ("Succeeded", "Failed")

    wait_for(report, 900, f"TrainingJob {name} to finish", interval=1)
    if last_step == -1:
        print("rank 0 reported no progress: no step, loss or throughput to show (its log says why)")
    show(demo.plane, "get", "trainingjob", name, "-n", NAMESPACE)
    phase = demo.phase("trainingjobs", name)
    if phase != "Succeeded":
        raise SystemExit(f"TrainingJob {name} ended {phase}: see `kubectl describe trainingjob` and its pods")
    output = demo.work_dir / output_dir
    written = ", ".join(sorted(p.name for p in output.iterdir()))
    print(f"its output, written by rank 0 to {WORK}/{output_dir} ({output}): {written}")
    summary = ((demo.get("trainingjobs", name).get("status") or {}).get("output") or {}).get("evaluation")
    if summary:
        print(f"status.output.evaluation: {json.dumps(summary)}")


def _evaluation_line(evaluation: dict[str, Any]) -> str:
    perplexity = evaluation.get("perplexity")
    shown = f" (perplexity {perplexity:.2f})" if perplexity is not None else ""
    loss, step = evaluation["loss"], evaluation["step"]
    return f"rank 0 reports the held-out loss over every rank's rows: {loss:.3f}{shown} at step {step}"


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


def canary(demo: Demo) -> None:
    """A second job's output goes into the deployment as its canary by name; the operator benchmarks both
    tracks at each stage with point pods and promotes or rolls it back on those figures."""
    banner(f"TrainingJob {CANARY_JOB}: 20 more steps on {TRAINING_JOB}'s output, one worker")
    resources = {**_example_spec("trainingjob-cpu-tiny.yaml")["resources"], "nodes": 1}
    _apply_example(
        demo, "trainingjob-cpu-tiny.yaml", {**CANARY_OVERRIDES, "resources": resources}, CANARY_JOB
    )
    _follow_training(demo, CANARY_JOB, "output-more")
    banner(
        f"{CANARY_JOB}'s output as {DEPLOYMENT}'s canary, promoted stage by stage on benchmarks of its tracks"
    )
    canary_spec = {"model": {"fromTrainingJob": {"name": CANARY_JOB}}, "replicas": 1, "analysis": ANALYSIS}
    patch = json.dumps({"spec": {"canary": canary_spec}})
    show(demo.plane, "patch", "modeldeployment", DEPLOYMENT, "-n", NAMESPACE, "--type=merge", "-p", patch)
    told: set[int] = set()

    def decided() -> bool:
        analysis = demo.get("modeldeployments", DEPLOYMENT).get("status", {}).get("canaryAnalysis") or {}
        for stage in analysis.get("stages", []):
            if stage["stage"] not in told:
                told.add(stage["stage"])
                verdict = "passed" if stage["promoted"] else "failed"
                where = f"stage {stage['stage'] + 1} ({stage['weight']} % of requests)"
                print(f"{where} {verdict}: {stage['message']}")
        return analysis.get("phase") in ("Promoted", "RolledBack")

    wait_for(decided, 900, f"the canary analysis of {DEPLOYMENT} to decide", interval=2)
    analysis = demo.get("modeldeployments", DEPLOYMENT)["status"]["canaryAnalysis"]
    print(f"the canary was {analysis['phase']}: it now serves {analysis['weight']} % of the requests")
    last = analysis["stages"][-1]["stage"]
    for track in (c.TRACK_STABLE, c.TRACK_CANARY):
        points = (
            demo.get("benchmarksweeps", f"{DEPLOYMENT}-a{last}-{track}").get("status", {}).get("points", [])
        )
        scores = [p["quality"]["scores"] for p in points if p.get("quality")]
        print(
            f"{track}'s answers to the reference set at the last stage, as its point pod scored them: "
            f"{scores}"
        )
    show(demo.plane, "get", "modeldeployment", DEPLOYMENT, "-n", NAMESPACE)
    show(
        demo.plane,
        "get",
        "benchmarksweeps",
        "-n",
        NAMESPACE,
        "-l",
        f"{c.LABEL_MODEL_DEPLOYMENT}={DEPLOYMENT}",
    )
