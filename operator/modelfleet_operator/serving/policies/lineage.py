"""What a track serves when its model is a TrainingJob's output (``model.fromTrainingJob``) (pure).

A track waits until its TrainingJob Succeeded and wrote ``status.output``. Then a full model is served
as the model; an adapter is served on its base model through the engine's LoRA support, under the
deployment's served model name (the base model itself is served as ``<name>-base``), unless the job
also wrote the merged model (``output.mergeAdapter``), which is then served as a full model. The
resolution is recorded in the status (``ServedModel``, with the job's UID); a track whose job is
gone, or is being run again under the same name, keeps serving what it recorded, so deleting or
re-running a job never takes a serving model away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelfleet_api import constants as c
from modelfleet_api.lineage import OutputKind, ServedModel, TrainingJobOrigin, TrainingOutput
from modelfleet_api.modeldeployment import DeploymentModelSource
from modelfleet_api.serving import EngineSpec, LoraAdapter, settings_support_problem
from modelfleet_api.training import ModelSource
from pydantic import ValidationError

from modelfleet_operator.serving.policies.phase import Verdict

Manifest = dict[str, Any]
BASE_SUFFIX = "-base"
"""The base model of a served adapter is served as ``<served name>-base``."""


@dataclass(frozen=True, kw_only=True)
class TrackModel:
    """What one track's engine loads."""

    model: ModelSource
    """The model, or the base model of ``adapter``."""
    adapter: LoraAdapter | None = None
    """The trained adapter served on ``model`` (named after the served model)."""
    served: ServedModel


def base_served_name(served_name: str) -> str:
    return f"{served_name}{BASE_SUFFIX}"


def plain(source: DeploymentModelSource) -> TrackModel | None:
    """A model named by URI: served as it is (None for ``fromTrainingJob``)."""
    if source.uri is None:
        return None
    model = ModelSource.model_validate(source.model_dump(exclude={"from_training_job"}))
    return TrackModel(
        model=model, served=ServedModel(uri=source.uri, revision=source.revision, source=source.uri)
    )


def _model(source: DeploymentModelSource, uri: str, revision: str | None = None) -> ModelSource:
    """The model at ``uri``, with the rest of the track's model settings (remote code, hub token...)."""
    settings = source.model_dump(by_alias=True, exclude={"from_training_job", "uri", "revision"})
    return ModelSource.model_validate({**settings, "uri": uri, "revision": revision})


def from_output(
    source: DeploymentModelSource,
    output: TrainingOutput,
    origin: TrainingJobOrigin,
    *,
    engine: EngineSpec,
    served_name: str,
) -> TrackModel | Verdict:
    """Serve a TrainingJob's output with this engine, or why it cannot be (``AdapterNotSupported``)."""
    job = f"trainingjob/{origin.name}"
    if output.kind is OutputKind.TOKENIZER:
        return Verdict(
            status=False,
            reason=c.REASON_NOT_A_MODEL,
            message=f"TrainingJob {origin.name} trained a tokenizer ({output.uri}), not a model: nothing to "
            "serve. Point fromTrainingJob at a job that trained a model with it (model.tokenizerUri).",
        )
    if output.kind is OutputKind.MODEL or output.merged_uri is not None:
        uri = output.merged_uri if output.kind is OutputKind.ADAPTER else output.uri
        assert uri is not None
        merged = " (merged)" if output.kind is OutputKind.ADAPTER else ""
        served = ServedModel(uri=uri, training_job=origin, source=f"{job}{merged}")
        return TrackModel(model=_model(source, uri), served=served)
    try:
        adapter = LoraAdapter(name=served_name, uri=output.uri)
    except ValidationError as error:
        why = error.errors()[0]["msg"]
        return _unsupported(origin, f"it cannot be served as adapter {served_name!r}: {why}")
    settings = engine.settings.model_copy(update={"lora_adapters": [*engine.settings.lora_adapters, adapter]})
    problem = settings_support_problem(engine.type, settings)
    if problem is not None:
        return _unsupported(origin, f"engine {engine.type} cannot serve it: {problem}")
    assert output.base_model is not None, "an adapter has a base model"
    served = ServedModel(
        uri=output.base_model,
        revision=output.base_model_revision,
        kind=OutputKind.ADAPTER,
        adapter_uri=output.uri,
        training_job=origin,
        source=f"{job} (adapter)",
    )
    return TrackModel(
        model=_model(source, output.base_model, output.base_model_revision), adapter=adapter, served=served
    )


def _unsupported(origin: TrainingJobOrigin, why: str) -> Verdict:
    return Verdict(
        status=False,
        reason=c.REASON_ADAPTER_NOT_SUPPORTED,
        message=f"TrainingJob {origin.name} wrote a LoRA adapter, and {why}. Use an engine that serves "
        "LoRA adapters (vllm, sglang, lmdeploy), or set output.mergeAdapter: true on the job to serve the "
        "merged model.",
    )


def _waiting(name: str, job: Manifest | None) -> Verdict:
    if job is None:
        return Verdict(
            status=False,
            reason=c.REASON_TRAINING_JOB_NOT_FOUND,
            message=f"TrainingJob {name} does not exist in this namespace; the track is created once it "
            "exists and Succeeded.",
        )
    status = job.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == c.TrainingJobPhase.FAILED:
        failed: Manifest = next(
            (x for x in status.get("conditions") or [] if x.get("type") == c.COND_FAILED), {}
        )
        why = f" ({failed.get('reason')}: {failed.get('message')})" if failed else ""
        return Verdict(
            status=False,
            reason=c.REASON_TRAINING_FAILED,
            message=f"TrainingJob {name} Failed{why}. Run it again under the same name, or point "
            "fromTrainingJob at another job.",
        )
    steps = f" at step {status['steps']}" if status.get("steps") else ""
    return Verdict(
        status=False,
        reason=c.REASON_TRAINING_NOT_FINISHED,
        message=f"TrainingJob {name} is {phase}{steps}; the track is created when it has Succeeded.",
    )


def resolve(
    source: DeploymentModelSource,
    job: Manifest | None,
    recorded: ServedModel | None,
    *,
    engine: EngineSpec,
    served_name: str,
) -> TrackModel | Verdict:
    """The model of a track: by URI, or from its TrainingJob (``job`` as indexed, None when absent);
    a Verdict (ModelReady=False) while it cannot be served. ``recorded``: what the track served so far."""
    found = plain(source)
    if found is not None:
        return found
    assert source.from_training_job is not None
    name = source.from_training_job.name
    status = (job or {}).get("status") or {}
    if job is not None and status.get("phase") == c.TrainingJobPhase.SUCCEEDED and status.get("output"):
        origin = TrainingJobOrigin(name=name, uid=job["metadata"]["uid"])
        output = TrainingOutput.model_validate(status["output"])
        return from_output(source, output, origin, engine=engine, served_name=served_name)
    if recorded is not None and recorded.training_job is not None and recorded.training_job.name == name:
        return _recorded(source, recorded, served_name)
    return _waiting(name, job)


def _recorded(source: DeploymentModelSource, recorded: ServedModel, served_name: str) -> TrackModel:
    """Keep serving what was resolved before (the job is gone or runs again)."""
    adapter = None
    if recorded.kind is OutputKind.ADAPTER and recorded.adapter_uri is not None:
        adapter = LoraAdapter(name=served_name, uri=recorded.adapter_uri)
    return TrackModel(model=_model(source, recorded.uri, recorded.revision), adapter=adapter, served=recorded)


def ready_message(track: str, model: TrackModel, job: Manifest | None) -> str:
    """What ModelReady=True says about one track."""
    served = model.served
    what = (
        f"adapter {served.adapter_uri} on base model {served.uri}"
        if served.kind is OutputKind.ADAPTER
        else served.uri
    )
    origin = served.training_job
    message = f"{track}: {what}"
    if origin is not None:
        message += f" from TrainingJob {origin.name} (uid {origin.uid})"
        current = (job or {}).get("metadata", {}).get("uid")
        if current != origin.uid:
            state = "is gone" if job is None else "runs again under that name"
            message += f"; the job {state}, so its recorded output keeps being served"
    return message + "."
