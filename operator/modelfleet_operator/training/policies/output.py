"""The structured output of a Succeeded TrainingJob (``status.output``), from its spec and what rank 0
reported (pure).

Rank 0 reports what it wrote in its last progress (``TrainingProgress.result``); a runtime that did not
(an older image) still wrote to the places the spec names, so the output is then told from the spec:
the kind from the method, the merged model under ``<uri>/merged`` when ``output.mergeAdapter`` asked
for one (a merge that fails fails the job), the step from the last progress.
"""

from __future__ import annotations

from modelfleet_api.lineage import OutputKind, TrainingOutput, merged_uri, output_kind
from modelfleet_api.runtime_config import TrainingProgress
from modelfleet_api.trainingjob import TrainingJobSpec


def training_output(spec: TrainingJobSpec, progress: TrainingProgress | None) -> TrainingOutput:
    result = progress.result if progress is not None else None
    kind = output_kind(spec.method)
    merged = merged_uri(spec.output.uri) if kind is OutputKind.ADAPTER and spec.output.merge_adapter else None
    return TrainingOutput(
        uri=result.uri if result is not None else spec.output.uri,
        kind=result.kind if result is not None else kind,
        base_model=spec.model.uri if spec.model else None,
        base_model_revision=spec.model.revision if spec.model else None,
        merged_uri=result.merged_uri if result is not None else merged,
        step=result.step if result is not None else (progress.step if progress is not None else None),
        evaluation=result.evaluation if result is not None else None,
    )
