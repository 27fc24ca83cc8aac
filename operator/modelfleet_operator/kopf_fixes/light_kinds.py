"""A short way through kopf for the watch events of kinds whose every handler is light.

Most watch events the operator gets are of its children and pods (some thirty per new TrainingJob in
a burst: a Job's and each pod's status moves several times), and all that runs for them is an index
function and a wake handler (``light_handlers``). kopf still takes each such event through its whole
per-object machinery (``kopf._core.reactor.processing.process_resource_event``): a per-object memory, a
body patch with status and metadata views, three object loggers, an error throttler, the detection of
watching, spawning and changing causes (with the change-detection diff), a progress state per handler
call, an index update that visits every index of the operator, and a patch application that finds
nothing to apply. In a py-spy profile of a burst of 300 TrainingJobs (``benchmarks/operator_scale.py``)
that processing was 27 % of the operator's busy event-loop samples with light handlers, most of it for
work no handler of these kinds uses.

For a kind whose handlers are all index and watch-event handlers marked ``light``, filtered at most by
exact label values (the children, pods, ServiceAccounts, Secrets, claims, PriorityClasses, Workloads,
CRDs and APIServices the operator watches), an event is processed here instead: the index handlers
run and their results replace the object's entries in this kind's indexes (a DELETED event discards
them), then, once kopf's indexes are all filled (kopf's own readiness wait, unchanged), the watch-event
handlers run. That is what kopf does for such a kind, without the rest: kopf keeps no memory of these
objects (there is nothing to remember: no daemon, no progress, no retry; a light handler's failure is
logged and the object left out of that index, as kopf does for index and event handlers), and it
patches none of them. Kinds with any other handler (the three kinds the operator reconciles) go
through kopf as before.

The fix replaces ``process_resource_event``, which kopf's ``running`` module looks up in its module
when the operator starts, so it checks first that kopf still has the shape it was written for and leaves
kopf alone (with a warning) otherwise.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kopf._cogs.structs import bodies
from kopf._core.engines import indexing
from kopf._core.intents import registries
from kopf._core.reactor import processing

from modelfleet_operator.kopf_fixes.light_handlers import LIGHT, keywords

logger = logging.getLogger(__name__)

_FIXED = "_modelfleet_light_kinds"
_PARAMETERS = (
    "registry", "indexers", "resource", "raw_event", "resource_indexed", "operator_indexed",
)  # fmt: skip
_REGISTRIES = ("_indexing", "_watching", "_spawning", "_changing", "_webhooks")


@dataclass(frozen=True)
class LightKind:
    """The handlers of one kind that takes the short way."""

    indexers: Sequence[Any]
    watchers: Sequence[Any]


def _simple(handler: Any) -> bool:
    """A light handler filtered at most by exact label values (no annotations, fields or callbacks)."""
    labels = handler.labels or {}
    return (
        getattr(handler.fn, LIGHT, False)
        and all(isinstance(value, str) for value in labels.values())
        and not handler.annotations
        and handler.when is None
        and handler.field is None
    )


def light_kind(registry: Any, resource: Any) -> LightKind | None:
    """The kind's handlers when it can take the short way, else None."""
    of_kind = {
        name: [h for h in getattr(registry, name)._handlers if registries._matches_resource(h, resource)]
        for name in _REGISTRIES
    }
    if of_kind["_spawning"] or of_kind["_changing"] or of_kind["_webhooks"]:
        return None
    found = [*of_kind["_indexing"], *of_kind["_watching"]]
    if not found or not all(_simple(handler) for handler in found):
        return None
    return LightKind(indexers=of_kind["_indexing"], watchers=of_kind["_watching"])


def _matches(handler: Any, labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in (handler.labels or {}).items())


async def _call(handler: Any, kwargs: dict[str, Any]) -> tuple[bool, Any]:
    """(succeeded, result) of one light handler; a failure is logged, as kopf logs and ignores it."""
    try:
        return True, await handler.fn(**kwargs)
    except Exception:
        logger.exception(
            "handler %r failed on %s/%s; ignored", handler.id, kwargs.get("namespace"), kwargs.get("name")
        )
        return False, None


async def process_light_event(
    kind: LightKind,
    indexers: indexing.OperatorIndexers,
    raw_event: Mapping[str, Any],
    resource_indexed: Any,
    operator_indexed: Any,
) -> None:
    """One watch event of a light kind: its indexes, then (once every index is filled) its handlers."""
    raw_type, raw_body = raw_event["type"], raw_event["object"]
    body = bodies.Body(raw_body)
    kwargs = keywords(body, raw_body.get("metadata") or {})
    labels = kwargs["labels"]
    if kind.indexers:
        key = indexers.make_key(body)
        for handler in kind.indexers:
            # An object is only ever in its own kind's indexes (the key holds its uid): kopf's
            # ``OperatorIndexers.replace`` visits every index of the operator to the same end.
            index = indexers[handler.id]
            if raw_type == "DELETED" or not _matches(handler, labels):
                index.discard(key)
                continue
            succeeded, result = await _call(handler, kwargs)
            if succeeded and result is not None:
                index.replace(key, result)
            else:
                index.discard(key)
    # kopf's readiness: no handler runs before every indexed kind has been listed.
    if operator_indexed is not None and resource_indexed is not None:
        await operator_indexed.drop_toggle(resource_indexed)
    if operator_indexed is not None:
        await operator_indexed.wait_for(True)
    for handler in kind.watchers:
        if _matches(handler, labels):
            await _call(handler, {**kwargs, "type": raw_type})


def install() -> bool:
    """Install the short way once; False when kopf's processing is not the one it was written for."""
    current = processing.process_resource_event
    if getattr(current, _FIXED, False):
        return True
    registry_shaped = all(hasattr(registries.OperatorRegistry(), name) for name in _REGISTRIES)
    shaped = (
        inspect.iscoroutinefunction(current)
        and set(_PARAMETERS) <= set(inspect.signature(current).parameters)
        and registry_shaped
        and hasattr(registries, "_matches_resource")
        and hasattr(indexing.OperatorIndexers, "make_key")
        and all(hasattr(indexing.OperatorIndexer, verb) for verb in ("replace", "discard"))
    )
    if not shaped:
        logger.warning("kopf's process_resource_event changed shape: every event takes kopf's way")
        return False
    # Per registry (tests build several), per kind: the registry is complete before its first event.
    known: weakref.WeakKeyDictionary[Any, dict[Any, LightKind | None]] = weakref.WeakKeyDictionary()

    async def process_resource_event(**kwargs: Any) -> str | None:
        registry, resource = kwargs["registry"], kwargs["resource"]
        kinds = known.setdefault(registry, {})
        if resource not in kinds:
            kinds[resource] = light_kind(registry, resource)
        kind = kinds[resource]
        if kind is None:
            result: str | None = await current(**kwargs)
            return result
        await process_light_event(
            kind,
            kwargs["indexers"],
            kwargs["raw_event"],
            kwargs.get("resource_indexed"),
            kwargs.get("operator_indexed"),
        )
        return None  # nothing patched

    setattr(process_resource_event, _FIXED, True)
    # kopf passes every argument by keyword (``running`` binds them with functools.partial).
    processing.process_resource_event = process_resource_event  # type: ignore[assignment]
    return True
