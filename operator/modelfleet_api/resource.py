"""The root shape every modelfleet custom resource shares, and the CRD facts declared per kind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from modelfleet_api.base import ApiModel, CelRule
from modelfleet_api.common import DNS_1035_LABEL_PATTERN

CATEGORY = "modelfleet"
"""Every kind is in this category, so `kubectl get modelfleet` lists all three."""


@dataclass(frozen=True, kw_only=True)
class PrinterColumn:
    """A column of `kubectl get` (a CRD ``additionalPrinterColumns`` entry)."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    description: str
    priority: int = 0
    """0: shown by default; 1: only with `-o wide`."""

    def to_schema(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
            "priority": self.priority,
        }


AGE_COLUMN = PrinterColumn(
    name="Age", json_path=".metadata.creationTimestamp", type="date", description="Time since creation."
)


@dataclass(frozen=True, kw_only=True)
class ResourceNames:
    """Names and `kubectl get` columns of one kind."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    printer_columns: tuple[PrinterColumn, ...]
    categories: tuple[str, ...] = field(default=(CATEGORY,))

    @property
    def singular(self) -> str:
        return self.kind.lower()


class CustomResource(ApiModel):
    """A whole object as stored by the API server: apiVersion, kind, metadata, spec, status.

    Subclasses declare ``names`` and the types of ``spec`` and ``status``.
    """

    names: ClassVar[ResourceNames]

    api_version: Literal["modelfleet.io/v1alpha1"] = Field(
        default="modelfleet.io/v1alpha1", alias="apiVersion"
    )
    """APIVersion of this representation of the object (`modelfleet.io/v1alpha1`)."""
    kind: str
    """Kind of the object."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard object metadata (name, namespace, labels, annotations, ...)."""

    @field_validator("kind")
    @classmethod
    def _kind_matches(cls, value: str) -> str:
        if value != cls.names.kind:
            raise ValueError(f"kind must be {cls.names.kind!r}, got {value!r}")
        return value


DNS_LABEL_MAX = 63
"""Longest DNS label: a Service name, a pod hostname, a label value."""


def name_length_rule(max_length: int, why: str) -> CelRule:
    """A root rule capping ``metadata.name`` (the API server allows 253 characters, children need less)."""
    return CelRule(
        rule=f"size(self.metadata.name) <= {max_length}",
        message=f"metadata.name must be at most {max_length} characters: {why}",
    )


def service_name_rule(why: str) -> CelRule:
    """A root rule that ``metadata.name`` is a DNS-1035 label, as the name of a Service must be (the API
    server allows a custom resource any DNS-1123 subdomain: dots, a leading digit)."""
    return CelRule(
        rule=f'self.metadata.name.matches(r"{DNS_1035_LABEL_PATTERN}")',
        message="metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
        f"letter and ending with a letter or digit, no dots): {why}",
    )
