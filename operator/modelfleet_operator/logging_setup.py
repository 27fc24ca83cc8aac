"""Logging: one JSON object per line, carrying the Kubernetes object a line is about.

kopf's per-object loggers already attach the object (``k8s_ref``) to each record, and kopf ships a
JSON formatter (python-json-logger, a kopf dependency) that writes it under ``object``. Our own
modules log through plain module loggers from worker threads, so :func:`resource_context` puts the
object of the reconcile pass in a context variable (``asyncio.to_thread`` copies it into the thread)
and :class:`ObjectContextFilter` attaches it to every record that has none. Using kopf's formatter
keeps one format for kopf's lines and ours, with no formatter code of our own.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import kopf

LOG_FORMATS: Final = ("json", "text")

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


def configure_logging(log_format: str = "json", *, debug: bool = False) -> None:
    """Root logging through kopf's handler in ``log_format`` (``json`` or ``text``)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    if log_format == "json":
        kopf.configure(debug=debug, log_format=kopf.LogFormat.JSON, log_refkey="object")
    else:
        kopf.configure(debug=debug, log_format=kopf.LogFormat.FULL, log_prefix=True)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ObjectContextFilter) for f in handler.filters):
            handler.addFilter(ObjectContextFilter())
