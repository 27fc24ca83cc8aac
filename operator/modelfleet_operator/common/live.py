"""What the indexes keep of each watched object, and whether a live child still matches its plan (pure).

**Projection.** An index keeps a trimmed copy of each object: of its metadata only names, labels,
owners, times and the operator's own ``modelfleet.io/`` annotations (which plans read and drift
compares, e.g. the canary analysis' sweeps; no ``managedFields``, but the top-level spec fields the
operator's field manager owns, see ``Live.operator_fields``), and of the status only what the plans
read. Jobs keep their labels and mutable counts but not their (immutable, large) pod template; pods
keep their status but not their spec. So the operator's memory grows with the number of children, not
with their size.

**Drift.** A child has drifted when the manifest the plan wants is not a subset of the live object: a
field the plan sets differs, or is missing. Fields the API server or other controllers add (defaults,
``clusterIP``, labels the Job controller sets) are not drift. Lists of named items (containers, env,
ports, volumes) are matched by name, so items others add are not drift either; other lists must match
item for item, and so must every list of a kind whose lists are atomic for server-side apply
(``Kind.atomic_lists``: Gateway API's HTTPRoute), where an item the plan no longer wants (a promoted
canary's backend) is drift that only an apply removes. Go's ``omitempty`` drops zero values from stored
objects, so a wanted ``false``, ``0``, ``""`` or empty list/map matches an absent field; resource
quantities compare by value (``"0.5"`` and ``"500m"`` are the same). A no-op apply does not change an
object's ``resourceVersion``, so a field this comparison would get wrong costs one request per pass,
never a loop of passes. Drift cannot see a field the plan stopped wanting (the live object still holds
everything wanted); the first pass after a spec change applies the children again for that
(``Engine._act``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from modelfleet_api import constants as c

from modelfleet_operator.common.kinds import (
    BENCHMARK_SWEEP,
    DEPLOYMENT,
    JOB,
    MODEL_DEPLOYMENT,
    POD,
    TRAINING_JOB,
    Kind,
)

Manifest = dict[str, Any]

FIELD_MANAGER = c.MANAGED_BY
"""The operator's one field manager (``metadata.managedFields[].manager`` of what it applies)."""
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")
_SUFFIX = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{
        suffix: Decimal(1024) ** (power + 1)
        for power, suffix in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))
    },
}
_KEPT_META = (
    "name",
    "namespace",
    "uid",
    "labels",
    "ownerReferences",
    "creationTimestamp",
    "deletionTimestamp",
    "generation",
)
"""What a projection keeps of ``metadata``: names, labels, owners and the times the plans read."""
OWN_ANNOTATION_PREFIX = "modelfleet.io/"
"""Annotations a projection keeps: the operator's own (others', such as kubectl's last-applied copy of
the whole object, are not read and can be large)."""
_POD_STATUS = ("phase", "reason", "message", "conditions", "containerStatuses", "initContainerStatuses")
_CONTAINER_STATUS = ("name", "state", "lastState", "restartCount", "ready")


@dataclass(frozen=True)
class Live:
    """One indexed object: its projection and which top-level spec fields the operator applied."""

    manifest: Manifest
    operator_fields: frozenset[str] = field(default_factory=frozenset)
    """``spec.<field>`` paths owned by the operator's field manager (e.g. ``spec.replicas``)."""

    @property
    def name(self) -> str:
        name: str = self.manifest["metadata"]["name"]
        return name

    @property
    def deleting(self) -> bool:
        return bool(self.manifest["metadata"].get("deletionTimestamp"))

    def owned_by(self, uid: str) -> bool:
        """Whether ``uid`` is this object's controller (owner reference)."""
        refs = self.manifest["metadata"].get("ownerReferences") or []
        return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def _operator_fields(meta: Mapping[str, Any]) -> frozenset[str]:
    found: set[str] = set()
    for entry in meta.get("managedFields") or []:
        if entry.get("manager") != FIELD_MANAGER or entry.get("operation") != "Apply":
            continue
        spec = (entry.get("fieldsV1") or {}).get("f:spec") or {}
        found.update(f"spec.{key[2:]}" for key in spec if key.startswith("f:"))
    return frozenset(found)


def project(kind: Kind, body: Mapping[str, Any]) -> Live:
    """The projection an index keeps of ``body``, an object of ``kind``."""
    meta = body.get("metadata") or {}
    kept_meta = {k: meta[k] for k in _KEPT_META if k in meta}
    own = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith(OWN_ANNOTATION_PREFIX)}
    if own:
        kept_meta["annotations"] = own
    projected: Manifest = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": kept_meta,
    }
    status = body.get("status") or {}
    spec = body.get("spec") or {}
    if kind == JOB:
        projected["spec"] = {k: spec[k] for k in ("parallelism", "completions", "suspend") if k in spec}
        projected["status"] = {
            k: status[k] for k in ("conditions", "active", "ready", "failed", "startTime") if k in status
        }
    elif kind == POD:
        projected["spec"] = {"nodeName": spec["nodeName"]} if "nodeName" in spec else {}
        projected["status"] = _pod_status(status)
    else:
        projected.update(
            {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata", "status")}
        )
        if kind == DEPLOYMENT:
            projected["status"] = {
                k: status[k]
                for k in ("replicas", "readyReplicas", "updatedReplicas", "availableReplicas")
                if k in status
            }
        elif kind in (MODEL_DEPLOYMENT, TRAINING_JOB, BENCHMARK_SWEEP):
            projected["status"] = dict(status)
    return Live(manifest=projected, operator_fields=_operator_fields(meta))


def _pod_status(status: Mapping[str, Any]) -> Manifest:
    kept: Manifest = {k: status[k] for k in _POD_STATUS if k in status}
    for key in ("containerStatuses", "initContainerStatuses"):
        if key in kept:
            kept[key] = [{k: c[k] for k in _CONTAINER_STATUS if k in c} for c in kept[key]]
    return kept


def _quantity(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    match = _QUANTITY.match(str(value))
    if match is None:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        return None


def _empty(value: Any) -> bool:
    return value is False or value == 0 or value in ("", [], {}) or value is None


def _named(items: Sequence[Any]) -> bool:
    return bool(items) and all(isinstance(item, dict) and "name" in item for item in items)


def matches(wanted: Any, live: Any, *, atomic_lists: bool = False) -> bool:
    """Whether ``live`` holds everything ``wanted`` says (see the module docstring). ``atomic_lists``:
    every list is replaced whole by an apply (``Kind.atomic_lists``), so named lists must match item
    for item too."""
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return not wanted and live is None
        return all(
            matches(value, live[key], atomic_lists=atomic_lists) if key in live else _empty(value)
            for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        if not isinstance(live, list):
            return not wanted and live is None
        if not atomic_lists and _named(wanted) and all(isinstance(item, dict) for item in live):
            by_name = {item.get("name"): item for item in live}
            return all(item["name"] in by_name and matches(item, by_name[item["name"]]) for item in wanted)
        return len(wanted) == len(live) and all(
            matches(w, x, atomic_lists=atomic_lists) for w, x in zip(wanted, live, strict=True)
        )
    if wanted == live and type(wanted) is type(live):
        return True
    if isinstance(wanted, bool) or isinstance(live, bool):
        return False
    wanted_quantity, live_quantity = _quantity(wanted), _quantity(live)
    return wanted_quantity is not None and wanted_quantity == live_quantity


def _at(manifest: Mapping[str, Any], path: str) -> Any:
    value: Any = manifest
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def drifted(kind: Kind, wanted: Manifest, live: Manifest) -> bool:
    """Whether ``live`` no longer matches what the plan ``wanted`` (the kind's compared paths)."""
    atomic = kind.atomic_lists
    if kind.compared is None:
        body = {k: v for k, v in wanted.items() if k not in ("apiVersion", "kind")}
        return not matches(body, live, atomic_lists=atomic)
    return not all(
        matches(_at(wanted, path), _at(live, path), atomic_lists=atomic)
        for path in kind.compared
        if _at(wanted, path) is not None
    )
