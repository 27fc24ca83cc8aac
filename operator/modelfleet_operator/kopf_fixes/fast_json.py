"""kopf's watch streams parsed by orjson instead of the standard library's ``json``.

kopf parses every line of every watch stream with ``json.loads`` (``kopf._cogs.clients.api.stream``).
The operator watches its children and pods, and a new TrainingJob's seven children and four pods bring
some twenty events of a few kilobytes each (a pod's body with its ``managedFields``, a Job's with its
pod template): in a py-spy profile of a burst of 300 TrainingJobs, once kopf's handler calls had been
cut (``light_handlers``), parsing those lines was a fifth of the operator's busy samples. orjson
parses the same lines into the same Python values (dicts, lists, str, int, float, bool, None) in
less than half the time (10 us against 22 us per event on this project's development machine, for
the bodies of such a burst).

The fix gives kopf's client module an ``orjson``-backed ``json`` with ``loads`` only, which is all that
module uses of it; it checks first that the module still imports the standard library's ``json`` and
uses nothing else of it, and leaves kopf alone (with a warning) otherwise.
"""

from __future__ import annotations

import inspect
import json
import logging
import types

import orjson
from kopf._cogs.clients import api

logger = logging.getLogger(__name__)

FAST = types.SimpleNamespace(loads=orjson.loads, JSONDecodeError=orjson.JSONDecodeError)
"""What kopf's client module gets as ``json``. ``orjson.JSONDecodeError`` is a ``ValueError``, as the
standard library's is."""


def install() -> bool:
    """Install the fix once; False when kopf's client module is not the one it was written for."""
    if getattr(api, "json", None) is FAST:
        return True
    try:
        source = inspect.getsource(api)
    except (OSError, TypeError):
        source = ""
    uses = {line.split("json.", 1)[1].split("(", 1)[0] for line in source.splitlines() if " json." in line}
    if getattr(api, "json", None) is not json or not uses or not uses <= {"loads"}:
        logger.warning("kopf's client module changed shape: its watch streams are parsed by json as before")
        return False
    setattr(api, "json", FAST)  # noqa: B010 (kopf does not export its module-level json)
    return True
