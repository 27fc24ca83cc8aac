"""Which Kubernetes object a log record is about, for records logged outside kopf's object loggers.

kopf's per-object loggers attach the object (``k8s_ref``) to their records. Our modules log through
plain module loggers, often from worker threads: :func:`resource_context` puts the object of a reconcile
pass in a context variable (``asyncio.to_thread`` copies it into the thread) and
:class:`ObjectContextFilter` attaches it to every record that has none. No kopf import, so the metrics
helpers can use it from any layer.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager

_current_object: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "modelfleet_log_object", default=None
)


@contextmanager
def resource_context(kind: str, namespace: str, name: str) -> Iterator[None]:
    """Every record logged inside (in this context) is about this object."""
    token = _current_object.set({"kind": kind, "namespace": namespace, "name": name})
    try:
        yield
    finally:
        _current_object.reset(token)


class ObjectContextFilter(logging.Filter):
    """Adds the current object (when a record has none) and the logger's name to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "k8s_ref", None) is None:
            current = _current_object.get()
            if current is not None:
                record.k8s_ref = current
        record.logger = record.name
        return True
