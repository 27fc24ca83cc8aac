"""Deciding whether a status write is needed.

Trainer's pattern: keep the status as read, compute the new one, and write only on a real
difference, so an idle operator makes no API calls and a resource's ``resourceVersion`` moves only
when something a user can see changed.
"""

from __future__ import annotations

from typing import Any


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """A JSON merge patch turning ``old`` into ``new``, or None when they are equal.

    Top-level keys present in ``old`` but absent from ``new`` are set to None (deleted); nested
    values are replaced whole, so lists such as ``conditions`` are never merged element-wise.
    """
    if old == new:
        return None
    patch: dict[str, Any] = {key: value for key, value in new.items() if old.get(key) != value}
    patch.update({key: None for key in old if key not in new})
    return patch
