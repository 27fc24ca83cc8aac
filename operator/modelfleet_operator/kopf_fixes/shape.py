"""What the fixes check of the private kopf function they wrap, before wrapping it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection
from typing import Any


def keyword_only_with(function: Callable[..., Any], names: Collection[str]) -> bool:
    """Whether ``function`` takes only keyword-only parameters, ``names`` among them: a wrapper that
    passes them on by name (and reads some of them) still fits it."""
    parameters = inspect.signature(function).parameters
    return set(names) <= set(parameters) and all(
        p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values()
    )
