"""Logging: one JSON object per line, carrying the Kubernetes object a line is about.

kopf ships a JSON formatter (on python-json-logger, a kopf dependency) that writes the object of its
per-object loggers under ``object``; :class:`~modelfleet_operator.log_context.ObjectContextFilter` gives
our own records the same field from the reconcile pass they belong to. One format for kopf's lines and
ours, and no formatter code of our own.
"""

from __future__ import annotations

import logging
from typing import Final

import kopf

from modelfleet_operator.log_context import ObjectContextFilter

LOG_FORMATS: Final = ("json", "text")
KOPF_OBJECT_LOGGER: Final = "kopf.objects"


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
    if not debug:
        # kopf logs every handler call that succeeded, for every watch event of every child and pod: at
        # scale most of the operator's log and a share of its CPU. Warnings and errors stay.
        logging.getLogger(KOPF_OBJECT_LOGGER).setLevel(logging.WARNING)
