"""The runtimes in real pods: a TrainingJob of two workers trains the tiny model (and survives losing a
worker), a ModelDeployment serves what it wrote, and a BenchmarkSweep measures that deployment.

Everything runs in the CPU runtime image on the real node: the workers meet through the headless
Service's DNS names over gloo, rank 0 reports progress through the API server with its pod's token,
the engine passes its own startup and readiness probes, and the benchmark's figures reach the sweep
through its pods' termination messages. Model, data, checkpoints and output live on a claim bound to a
directory of this machine (``hack.node.volumes``), which the test reads.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from modelfleet_api import GROUP, VERSION
from modelfleet_api import constants as c
from modelfleet_train.checkpoints import LATEST

from hack import tinymodel
from hack.controlplane.cluster import wait_for
from hack.node.layout import NODE_NAME
from hack.node.volumes import create_host_claim, delete_host_volume

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
"""The training fixture (two workers, an eviction, a resumed gang) runs inside the first test's setup."""

CPU_SIZE = "Standard_D2s_v5"
"""The real node's size (2 cores here); the workers ask for a part of it explicitly."""
TRAIN_STEPS = 60
CHECKPOINT_EVERY = 10
EVICT_AFTER_STEP = 20
HOLDOUT_FRACTION = 0.125
"""Of the 256 rows, 32 are held out (split over both ranks) and measured at every checkpoint and the end."""
SERVED_NAME = "tiny/llama"
RANK_LABEL = "batch.kubernetes.io/job-completion-index"
"""The Indexed Job's label on each worker pod: its node rank."""


@dataclass
class TrainingRun:
    """What the training fixture saw, for the tests to judge."""

    namespace: str
    directory: Path
    final: dict[str, Any] = field(default_factory=dict)
    progress: list[dict[str, Any]] = field(default_factory=list)
    """Every distinct status.progress seen, in order, with the status's restart count."""
    evicted_pod: str = ""
    restart_events: list[str] = field(default_factory=list)
    """The TrainingJob's events once its gang restarted, as "reason: message"."""
    checkpoint_step_at_eviction: int | None = None
    resumed_from_progress: int = 0
    """Index in ``progress`` of the first entry seen once the evicted gang was gone."""
    resumed_log: str = ""
    """The log of the restarted gang's rank 0 (the other ranks log warnings only)."""
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    """Every distinct status.evaluation.latest seen (held-out figures rank 0 reported), in order."""


def _training_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "pvc://work/model"},
            "dataset": {"uri": "pvc://work/data/train.jsonl", "format": "jsonl"},
            "method": {"type": "full"},
            "strategy": {"type": "ddp"},
            "precision": "fp32",
            "hyperparameters": {
                "learningRate": 0.003,
                "maxSteps": TRAIN_STEPS,
                "perDeviceBatchSize": 4,
                "sequenceLength": 48,
            },
            "resources": {
                "instanceType": CPU_SIZE,
                "nodes": 2,
                "gpusPerNode": 0,
                "cpu": "500m",
                "memory": "3Gi",
            },
            "checkpoint": {"uri": "pvc://work/checkpoints", "intervalSteps": CHECKPOINT_EVERY},
            "output": {"uri": "pvc://work/output"},
            "backoffLimit": 2,
            "stallTimeoutSeconds": 300,
        },
    }


def _latest_checkpoint(directory: Path) -> int | None:
    """The step of the newest complete checkpoint the workers wrote to the claim (its ``latest`` marker,
    published after the checkpoint's manifest), or None before the first."""
    marker = directory / "checkpoints" / LATEST
    return int(marker.read_text()) if marker.exists() else None


def _get(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    return found


@pytest.fixture(scope="module")
def training_run(
    api_client: client.ApiClient,
    operator: object,
    runtime_image: str,
    module_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TrainingRun]:
    """Trains the tiny model with two workers, holding an eighth of the rows out for evaluation, evicting
    one worker mid-run, and records what it saw."""
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    namespace = module_namespace
    directory = tmp_path_factory.mktemp("work")
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(tokenizer, save_dir=directory / "model")
    tinymodel.write_jsonl(directory / "data" / "train.jsonl", tinymodel.instruction_rows(256))
    volume = create_host_claim(core, namespace, "work", directory)
    run = TrainingRun(namespace, directory)
    try:
        job = _training_job("tiny")
        job["spec"]["evaluation"] = {"holdoutFraction": HOLDOUT_FRACTION}
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)

        def observe() -> dict[str, Any]:
            job = _get(custom, namespace, "trainingjobs", "tiny")
            status = job.get("status", {})
            if status.get("phase") == "Failed":
                pytest.fail(f"TrainingJob tiny failed: {status}")
            seen = (
                {**status["progress"], "restarts": status.get("restarts", 0)}
                if status.get("progress")
                else None
            )
            if seen and (not run.progress or run.progress[-1] != seen):
                run.progress.append(seen)
            evaluated = (status.get("evaluation") or {}).get("latest")
            if evaluated and (not run.evaluations or run.evaluations[-1] != evaluated):
                run.evaluations.append(evaluated)
            return status

        # The run is paced by what the workers wrote to the claim (the checkpoint marker), not by the
        # status the tests judge: a status that never showed progress fails the tests, not the run.
        def checkpointed_past_eviction_step() -> bool:
            observe()
            return (_latest_checkpoint(directory) or 0) >= EVICT_AFTER_STEP

        wait_for(checkpointed_past_eviction_step, 600, f"a checkpoint at step {EVICT_AFTER_STEP} of tiny")
        workers = core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_TRAINING_JOB}=tiny").items
        victim = next(p for p in workers if p.metadata.labels.get(RANK_LABEL) == "1")
        run.evicted_pod = victim.metadata.name
        # what a drain does to each pod of a node a spot eviction notice cordoned: the Eviction API, then
        # SIGTERM and the grace period to save a checkpoint. (The node is not cordoned here: it is the only
        # real one, and the gang must restart somewhere; the cluster tier cordons and drains kwok nodes.)
        core.create_namespaced_pod_eviction(
            run.evicted_pod,
            namespace,
            client.V1Eviction(
                metadata=client.V1ObjectMeta(name=run.evicted_pod, namespace=namespace),
                delete_options=client.V1DeleteOptions(grace_period_seconds=30),
            ),
        )
        resumed_gang = f"{c.LABEL_TRAINING_JOB}=tiny,{c.LABEL_RESTART_ATTEMPT}=1"

        def restarted() -> bool:
            return observe().get("restarts", 0) >= 1 and bool(
                core.list_namespaced_pod(namespace, label_selector=resumed_gang).items
            )

        wait_for(restarted, 180, "the gang restart after the eviction")
        # the new gang's Job exists once the evicted gang's pods are gone (its Job is deleted in the
        # foreground): the newest checkpoint is the one the evicted gang saved last
        run.checkpoint_step_at_eviction = _latest_checkpoint(directory)
        run.resumed_from_progress = len(run.progress)
        wait_for(lambda: observe().get("phase") == "Succeeded", 900, "TrainingJob tiny to succeed")
        run.final = _get(custom, namespace, "trainingjobs", "tiny")
        # read after the run: kopf's queue posts an event after the status write that reports it
        run.restart_events = [
            f"{e.reason}: {e.message}"
            for e in core.list_namespaced_event(namespace, field_selector="involvedObject.name=tiny").items
        ]
        (resumed,) = core.list_namespaced_pod(
            namespace,
            label_selector=f"{resumed_gang},{RANK_LABEL}=0",
        ).items
        run.resumed_log = core.read_namespaced_pod_log(resumed.metadata.name, namespace)
        yield run
    finally:
        delete_host_volume(core, volume)


def test_two_workers_train_over_gloo_and_report_a_falling_loss(training_run: TrainingRun) -> None:
    status = training_run.final["status"]
    assert status["phase"] == "Succeeded", status
    said = [line for line in training_run.resumed_log.splitlines() if "progress" in line]
    assert status.get("progress"), f"rank 0 reported no progress; its log says: {said}"
    assert status["progress"]["step"] == TRAIN_STEPS
    losses = [p["loss"] for p in training_run.progress if p.get("loss") is not None]
    assert len(losses) >= 3, training_run.progress
    assert losses[-1] < losses[0] * 0.8, losses
    assert all(p["tokensPerSecond"] > 0 for p in training_run.progress if "tokensPerSecond" in p)
    output = training_run.directory / "output"
    assert (output / "config.json").is_file(), sorted(p.name for p in output.iterdir())
    assert any(output.glob("*.safetensors"))


def test_an_evicted_worker_checkpoints_and_the_gang_resumes_from_that_step(training_run: TrainingRun) -> None:
    status = training_run.final["status"]
    assert status["restarts"] == 1
    # told apart from a crash: the Job's pod failure policy saw the pod's DisruptionTarget condition
    assert status["lastRestartReason"] == c.REASON_WORKER_EVICTED
    evicted = f"{c.REASON_WORKER_EVICTED}: Worker {training_run.evicted_pod} was evicted"
    assert any(e.startswith(evicted) for e in training_run.restart_events), training_run.restart_events
    saved = training_run.checkpoint_step_at_eviction
    assert saved is not None and saved >= EVICT_AFTER_STEP, training_run.progress
    assert (training_run.directory / "checkpoints").is_dir()
    after = training_run.progress[training_run.resumed_from_progress :]
    # the restarted gang starts from the checkpoint the evicted run saved, not from step 0: its rank 0
    # says so, and no progress after the restart goes back below that step
    resumed = f"resumed from /mnt/pvc/work/checkpoints/step-{saved:08d} at step {saved}"
    assert resumed in training_run.resumed_log, training_run.resumed_log
    assert after and min(p["step"] for p in after) >= saved, training_run.progress


def test_the_held_out_loss_is_measured_over_both_ranks_and_falls(training_run: TrainingRun) -> None:
    """spec.evaluation on real workers: rank 0 reports the held-out loss (both ranks' shares summed over
    gloo) at the checkpoints and the end; the operator mirrors it into status.evaluation and the output's
    summary."""
    status = training_run.final["status"]
    latest, best = status["evaluation"]["latest"], status["evaluation"]["best"]
    assert latest["step"] == TRAIN_STEPS, status["evaluation"]
    assert math.isclose(math.log(latest["perplexity"]), latest["loss"], rel_tol=1e-3), latest
    seen = training_run.evaluations
    assert len(seen) >= 2, seen
    assert all(e["step"] % CHECKPOINT_EVERY == 0 for e in seen), seen
    assert seen[-1]["loss"] < seen[0]["loss"], f"the held-out loss did not fall: {seen}"
    assert best["loss"] <= min(e["loss"] for e in seen) + 1e-9, (best, seen)
    summary = status["output"]["evaluation"]
    assert summary["bestStep"] == best["step"], (summary, status["evaluation"])
    assert math.isclose(summary["evalLoss"], latest["loss"], rel_tol=1e-6), (summary, latest)
    assert math.isclose(summary["bestEvalLoss"], best["loss"], rel_tol=1e-6), (summary, best)


# ---- serving and benchmarking what was trained ---------------------------------------------------------
@pytest.fixture(scope="module")
def served(api_client: client.ApiClient, training_run: TrainingRun, module_namespace: str) -> Iterator[str]:
    """A ModelDeployment of the trained model, Ready; its name."""
    custom = client.CustomObjectsApi(api_client)
    deployment = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": "tiny-chat"},
        "spec": {
            "model": {"uri": "pvc://work/output"},
            "servedModelName": SERVED_NAME,
            "engine": {"type": "transformers", "settings": {"dtype": "float32"}},
            "resources": {"instanceType": CPU_SIZE, "gpusPerReplica": 0, "cpu": "500m", "memory": "2Gi"},
            "replicas": 1,
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, module_namespace, "modeldeployments", deployment)
    wait_for(
        lambda: (
            _get(custom, module_namespace, "modeldeployments", "tiny-chat").get("status", {}).get("phase")
            == "Ready"
        ),
        300,
        "ModelDeployment tiny-chat Ready",
    )
    yield "tiny-chat"


def _run_client_pod(core: client.CoreV1Api, namespace: str, image: str, name: str, code: str) -> str:
    """Runs ``python -c code`` in the runtime image on the node; returns its termination message."""
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": name,
                        "image": image,
                        "command": ["python", "-c", code],
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                    }
                ],
            },
        },
    )

    def finished() -> bool:
        return core.read_namespaced_pod(name, namespace).status.phase in ("Succeeded", "Failed")

    wait_for(finished, 180, f"pod {namespace}/{name} to finish")
    pod = core.read_namespaced_pod(name, namespace)
    log = core.read_namespaced_pod_log(name, namespace)
    assert pod.status.phase == "Succeeded", log
    assert pod.spec.node_name == NODE_NAME
    return str(pod.status.container_statuses[0].state.terminated.message or "")


def test_model_deployment_serves_the_trained_model_through_its_service(
    api_client: client.ApiClient, served: str, module_namespace: str, runtime_image: str
) -> None:
    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod(
        module_namespace, label_selector=f"{c.LABEL_MODEL_DEPLOYMENT}=tiny-chat"
    ).items
    assert pods and all(p.spec.node_name == NODE_NAME for p in pods)
    container = pods[0].spec.containers[0]
    assert container.startup_probe and container.readiness_probe  # and both passed: the pod is Ready
    url = f"http://{served}.{module_namespace}.svc.cluster.local:8000/v1/chat/completions"
    code = (
        "import httpx, json\n"
        f"r = httpx.post({url!r}, timeout=120, json={{'model': {SERVED_NAME!r}, 'max_tokens': 8,"
        " 'messages': [{'role': 'user', 'content': 'How many red cats are there?'}]})\n"
        "r.raise_for_status()\n"
        "open('/dev/termination-log', 'w').write(json.dumps(r.json()))\n"
    )
    answer = json.loads(_run_client_pod(core, module_namespace, runtime_image, "chat", code))
    assert answer["model"] == SERVED_NAME
    assert answer["choices"][0]["message"]["content"]
    assert answer["usage"]["completion_tokens"] > 0


def test_benchmark_sweep_measures_the_deployment_from_point_pods(
    api_client: client.ApiClient, served: str, module_namespace: str
) -> None:
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    sweep = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BenchmarkSweep",
        "metadata": {"name": "tiny-bench"},
        "spec": {
            "targets": [{"name": "tiny", "deploymentRef": served}],
            "workload": {
                "synthetic": {
                    "inputTokens": {"distribution": "uniform", "min": 8, "max": 24, "mean": 16},
                    "outputTokens": {"mean": 8},
                },
                "seed": 1,
            },
            "load": {"mode": "closed-loop", "concurrency": [1, 2], "requests": 6, "warmupRequests": 1},
            "maxParallelPoints": 1,
            "sinks": {"configMap": True},
        },
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, module_namespace, "benchmarksweeps", sweep)
    wait_for(
        lambda: (
            _get(custom, module_namespace, "benchmarksweeps", "tiny-bench").get("status", {}).get("phase")
            in ("Succeeded", "Failed")
        ),
        600,
        "BenchmarkSweep tiny-bench to finish",
    )
    status = _get(custom, module_namespace, "benchmarksweeps", "tiny-bench")["status"]
    assert status["phase"] == "Succeeded", status
    points = status["points"]
    assert len(points) == 2 and all(p["phase"] == "Succeeded" for p in points), points
    _assert_points_hold_their_pods_measurements(core, module_namespace, "tiny-bench", points)


def _assert_points_hold_their_pods_measurements(
    core: client.CoreV1Api, namespace: str, sweep: str, points: list[dict[str, Any]]
) -> None:
    """Every point's figures are the ones its pod, on the real node, measured and wrote as its
    termination message, to the digit."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"{c.LABEL_BENCHMARK_SWEEP}={sweep}").items
    measured = {
        int(p.metadata.labels[c.LABEL_SWEEP_POINT]): json.loads(
            p.status.container_statuses[0].state.terminated.message
        )
        for p in pods
        if p.status.phase == "Succeeded"
    }
    assert all(p.spec.node_name == NODE_NAME for p in pods), [p.spec.node_name for p in pods]
    for point in points:
        assert point["outputTokensPerSecond"] > 0 and point["ttftP95Ms"] > 0, point
        message = measured[point["index"]]
        assert message and {key: point.get(key) for key in message} == message, (point, message)


def test_a_second_jobs_output_goes_in_as_a_canary_that_benchmarks_of_both_tracks_decide(
    api_client: client.ApiClient,
    served: str,
    module_namespace: str,
    training_run: TrainingRun,
    record_property: Callable[[str, object], None],
) -> None:
    """Lineage and the gated canary on real pods: a second TrainingJob fine-tunes the first one's output,
    the deployment takes it as its canary by name, and the analysis benchmarks both tracks at each stage
    with point pods on the node. What is checked is that real figures of each track, measured by pods,
    decided each stage (the bounds are loose: a CPU shared with the rest of the machine)."""
    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    namespace = module_namespace
    job = _training_job("tiny-more")
    job["spec"].update(
        model={"uri": "pvc://work/output"},
        checkpoint={"uri": "pvc://work/checkpoints-more", "intervalSteps": 10},
        output={"uri": "pvc://work/output-more"},
    )
    job["spec"]["hyperparameters"]["maxSteps"] = 20
    job["spec"]["resources"]["nodes"] = 1
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)

    def job_phase() -> str | None:
        phase: str | None = (
            _get(custom, namespace, "trainingjobs", "tiny-more").get("status", {}).get("phase")
        )
        return phase

    wait_for(lambda: job_phase() in ("Succeeded", "Failed"), 300, "TrainingJob tiny-more to finish")
    assert job_phase() == "Succeeded"
    analysis = {
        "benchmark": {
            "workload": {
                "synthetic": {
                    "inputTokens": {"distribution": "uniform", "min": 8, "max": 24, "mean": 16},
                    "outputTokens": {"mean": 8},
                },
                "seed": 1,
            },
            "load": {"mode": "closed-loop", "concurrency": [1], "requests": 4, "warmupRequests": 1},
            "slos": {"e2eP95Ms": 60000},
            # the node's 2 CPUs hold both tracks (500m each), the session's KEDA and add-on pods (5 x 100m
            # as upstream asks) and both tracks' point pods at once: at the default 1 CPU per point pod
            # neither would be placed
            "clientResources": {"cpu": "100m", "memory": "1Gi"},
            "quality": tinymodel.reference_quality("pvc://work/references.jsonl"),
        },
        "stages": [{"weight": 50, "durationSeconds": 0}, {"weight": 100, "durationSeconds": 0}],
        "maxRegressionPercent": 100,
    }
    tinymodel.write_reference_set(training_run.directory / "references.jsonl")
    canary = {"model": {"fromTrainingJob": {"name": "tiny-more"}}, "replicas": 1, "analysis": analysis}
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "modeldeployments", served, {"spec": {"canary": canary}}
    )

    def decided() -> dict[str, Any] | None:
        status = _get(custom, namespace, "modeldeployments", served).get("status", {})
        found: dict[str, Any] | None = status.get("canaryAnalysis")
        return found if found and found.get("phase") in ("Promoted", "RolledBack") else None

    try:
        wait_for(decided, 900, f"the canary analysis of {served} to decide")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}\n{_analysis_story(core, custom, namespace, served)}") from None
    result = decided()
    assert result is not None
    record_property("canary analysis", result["phase"])
    for stage in result["stages"]:
        record_property(f"stage {stage['stage']} ({stage['weight']} %)", stage["message"])
    # the figures decide: loose bounds make a promotion all but certain, yet a stall of this shared
    # machine may still make the canary twice as slow as stable at one stage, and then it is rolled back
    if result["phase"] == "Promoted":
        assert [(stage["weight"], stage["promoted"]) for stage in result["stages"]] == [
            (50, True),
            (100, True),
        ]
    else:
        assert result["stages"][-1]["promoted"] is False and result["weight"] == 0, result
    last = result["stages"][-1]["stage"]
    # each decision names the figures of the canary against stable's (or the canary's failed point)
    assert all("canary" in stage["message"] for stage in result["stages"]), result
    assert (training_run.directory / "output-more" / "config.json").is_file()
    for track, model in (("stable", "pvc://work/output"), ("canary", "pvc://work/output-more")):
        sweep = f"{served}-a{last}-{track}"
        status = _get(custom, namespace, "benchmarksweeps", sweep)["status"]
        assert status["phase"] == "Succeeded", status
        points = status["points"]
        assert all((p["track"], p["modelUri"]) == (track, model) for p in points), points
        # the pod scored its track's answers after the load, and the floor was judged
        assert all(0.0 <= p["quality"]["scores"]["rougeL"] <= 1.0 for p in points), points
        assert all(p["quality"]["meetsFloor"] is True for p in points), points
        record_property(f"{track} rougeL", [p["quality"]["scores"]["rougeL"] for p in points])
        _assert_points_hold_their_pods_measurements(core, namespace, sweep, points)
    canary_points = _get(custom, namespace, "benchmarksweeps", f"{served}-a{last}-canary")["status"]["points"]
    assert all(p["trainingJob"].startswith("tiny-more (uid ") for p in canary_points), canary_points


def _analysis_story(
    core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str, served: str
) -> str:
    """What an undecided analysis was waiting for: the deployment's analysis status and conditions, each
    sweep's phase, conditions and points, and every pod of the namespace not yet running, with why."""
    status = _get(custom, namespace, "modeldeployments", served).get("status", {})
    lines = [
        f"canaryAnalysis: {json.dumps(status.get('canaryAnalysis'))}",
        *(
            f"condition {cond['type']}={cond['status']} {cond.get('reason')}: {cond.get('message')}"
            for cond in status.get("conditions", [])
        ),
    ]
    for sweep in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "benchmarksweeps")["items"]:
        swept = sweep.get("status", {})
        lines.append(f"sweep {sweep['metadata']['name']}: phase {swept.get('phase')}")
        lines += [
            f"  {cond['type']}={cond['status']}: {cond.get('message')}"
            for cond in swept.get("conditions", [])
        ]
        lines += [f"  point {json.dumps(point)}" for point in swept.get("points", [])]
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.status.phase in ("Pending", "Unknown"):
            said = [
                f"{cond.type}={cond.status} {cond.reason}: {cond.message}"
                for cond in pod.status.conditions or []
            ]
            lines.append(f"pod {pod.metadata.name} {pod.status.phase}: {'; '.join(said)}")
    return "\n".join(lines)
