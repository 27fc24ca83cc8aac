"""kopf's change-detection essence, built only for the kinds whose handlers read it: none of this
operator's.

For every watch event of every kind, kopf fetches the object's last handled *essence* (from an
annotation), builds the new one (a deep copy of the whole body, status and ``managedFields`` included,
then trimmed to spec, labels and annotations), strips kopf's progress from both and diffs them, before
it knows whether any handler reads the diff. Only change-detection handlers (``on.create``,
``on.update``, ``on.delete``, ``on.field``) and daemons or timers with ``idle=`` (an essential change
resets their idle time) do. The operator has neither: its handlers are index and watch-event handlers,
and daemons without ``idle`` (``common.handlers``), so it reads no essence of any kind
(``test_operator_core`` checks the registry for both). Copying children's and pods' bodies was the
largest single cost of kopf's event processing in a burst of new TrainingJobs, and the TrainingJobs'
own essences (every status patch and kopf's finalizer patch bring an event) about 3 % of the
operator's CPU in a burst of 300 (``benchmarks/operator_scale.py`` with py-spy). Set as
``settings.persistence.diffbase_storage``, kopf's documented hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf

from modelfleet_operator.common.kinds import Kind


class OwnKindsDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's default storage, whose essence of any kind but ``kinds`` is empty and never fetched (the
    kinds with a handler that reads it; none in this operator, see the module docstring)."""

    def __init__(self, kinds: Iterable[Kind] = ()) -> None:
        super().__init__()
        self._kinds = frozenset((kind.api_version, kind.kind) for kind in kinds)

    def _reads(self, body: kopf.Body) -> bool:
        return (body.get("apiVersion"), body.get("kind")) in self._kinds

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        if self._reads(body):
            return super().build(body=body, extra_fields=extra_fields)
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if self._reads(body):
            return super().fetch(body=body)
        return None
