"""Base model shared by every API type.

Field names are snake_case in Python and camelCase on the wire (Kubernetes convention); each
field's attribute docstring becomes its description in the generated CRD, so ``kubectl explain``
and the Python docs say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

from modelfleet_api.yamltext import dump_yaml

# The API server formats the error as "<fieldPath>: Invalid value|Forbidden|Required value: <message>".
# (FieldValueDuplicate is left out on purpose: the API server drops the message for it.)
CelReason = Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired"]


@dataclass(frozen=True, kw_only=True)
class CelRule:
    """A cross-field rule the API server checks (a CRD ``x-kubernetes-validations`` entry).

    ``rule`` is CEL over ``self`` (this model's object on the wire, camelCase); a rule that reads
    ``oldSelf`` is a transition rule, checked on updates only. ``field_path`` (relative to this
    model, e.g. ``.gpusPerNode``) is the field the error is reported on, so the message names it.
    """

    rule: str
    message: str
    field_path: str | None = None
    reason: CelReason = "FieldValueInvalid"

    def to_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        entry["reason"] = self.reason
        return entry


@dataclass(frozen=True)
class TextFormat:
    """A string format checked by the API server (a CEL rule on the field, whose message says what is
    allowed) and by the models (the same regular expression, valid in RE2 and Python alike).

    A CEL rule rather than an OpenAPI ``pattern``, whose error shows the regular expression instead
    of words. Use as ``Annotated[str, FORMAT.field(max_length), FORMAT.check()]``."""

    pattern: str
    """Anchored (``^...$``) regular expression."""
    message: str
    """What the field must be, completing "<field>: Invalid value: ...: " (e.g. "must be ...")."""

    def rule(self) -> JsonDict:
        return {
            "rule": f'self.matches(r"{self.pattern}")',
            "message": self.message,
            "reason": "FieldValueInvalid",
        }

    def field(self, max_length: int, min_length: int = 1) -> Any:
        return Field(
            min_length=min_length,
            max_length=max_length,
            json_schema_extra={"x-kubernetes-validations": [self.rule()]},
        )

    def check(self) -> AfterValidator:
        def check(value: str) -> str:
            if not re.search(self.pattern, value):
                raise ValueError(self.message)
            return value

        return AfterValidator(check)


class ApiModel(BaseModel):
    """A part of a resource's spec or status, or of a runtime config."""

    cel_rules: ClassVar[tuple[CelRule, ...]] = ()
    """Cross-field rules of this model, emitted next to its schema in the CRD."""

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

    def to_yaml(self) -> str:
        """The wire form as a YAML document, fields in declaration order (a runtime config file)."""
        return dump_yaml(self.to_wire())
