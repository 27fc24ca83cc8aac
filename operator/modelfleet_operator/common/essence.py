"""kopf's change-detection essence, built only for the kinds whose handlers read it.

For every watch event of every kind, kopf builds the object's *essence* (a deep copy of the whole
body, status and ``managedFields`` included, then trimmed to spec, labels and annotations) and diffs it
with the last handled one, before it knows whether any handler reads the diff. Only daemons (whether
an essential change resets their idle time) and change-detection handlers (``on.create``/``update``)
do. The operator's daemons run on its own kinds, but most of the events it gets are of their children
and pods, whose handlers (indexes and ``on.event``) never read an essence: copying those bodies was the
largest single cost of kopf's event processing in a burst of new TrainingJobs (``benchmarks/
operator_scale.py``). Set as ``settings.persistence.diffbase_storage``, kopf's documented hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from modelfleet_operator.common.kinds import Kind


class OwnKindsDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's default storage, whose essence of any kind but ``kinds`` is empty (never read)."""

    def __init__(self, kinds: Iterable[Kind]) -> None:
        super().__init__()
        self._kinds = frozenset((kind.api_version, kind.kind) for kind in kinds)

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        if (body.get("apiVersion"), body.get("kind")) in self._kinds:
            return super().build(body=body, extra_fields=extra_fields)
        return kopf.BodyEssence()
