"""Base model shared by every API type.

Field names are snake_case in Python and camelCase on the wire (Kubernetes convention); each
field's attribute docstring becomes its description in the generated CRD, so ``kubectl explain``
and the Python docs say the same thing.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """A part of a resource's spec or status, or of a runtime config."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase keys, leaving out unset optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
