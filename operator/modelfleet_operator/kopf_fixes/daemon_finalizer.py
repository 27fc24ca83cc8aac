"""The operator's daemons without kopf's finalizer.

``kopf.daemon`` hard-codes ``requires_finalizer=True``: kopf puts its finalizer on every object that
has a daemon, so that the object's deletion waits until kopf has stopped the daemon. That costs a
PATCH of every new object (in a burst of 1,000 TrainingJobs, one of the ~10 requests the operator
makes per TrainingJob, whose watch echo kopf then processes too) and another at its deletion, and it
keeps a deleted object, and so its namespace, in Terminating for as long as no operator runs.

The operator needs none of that. Its daemons end on their own once the watch reports the object
``DELETED``, after their pass in flight (``common.handlers``), so a pass never adds back a capacity
demand for an object that is gone; its children go with the object through their owner references
(the garbage collector), a child that a pass in flight applies after the deletion included; and no
state of its own outlives the object. So the daemon handler is registered, then replaced in kopf's
registry by a copy that requires no finalizer. kopf then also removes its finalizer from objects an
earlier operator put it on (one patch each, at their next event).

The registry and its handler type are private to kopf, so the fix checks first that they still have
the shape it was written for, and leaves kopf alone (with a warning) otherwise: the finalizer stays,
which is slower but correct.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from kopf._core.intents import handlers

logger = logging.getLogger(__name__)


def without_finalizer(registry: Any, handler_id: str) -> bool:
    """Replace the daemon handler ``handler_id`` of ``registry`` (a ``kopf.OperatorRegistry``) by one
    that requires no finalizer. False, with a warning, when kopf's shape is not the expected one."""
    found = getattr(getattr(registry, "_spawning", None), "_handlers", None)
    fields = {f.name for f in dataclasses.fields(handlers.DaemonHandler)}
    if not isinstance(found, list) or "requires_finalizer" not in fields:
        logger.warning("kopf's daemon registry changed shape: its finalizer stays on every object")
        return False
    for index, handler in enumerate(found):
        if isinstance(handler, handlers.DaemonHandler) and handler.id == handler_id:
            found[index] = dataclasses.replace(handler, requires_finalizer=False)
            return True
    logger.warning("no daemon %s in kopf's registry: its finalizer stays on every object", handler_id)
    return False
