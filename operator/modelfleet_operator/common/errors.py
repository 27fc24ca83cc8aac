"""The one exception the controllers share."""

from __future__ import annotations


class InvalidSpec(ValueError):
    """A spec the API server accepted that a controller cannot use; the message names the field.

    ``StatusWriter.parse`` reports it as ``Failed=True/InvalidSpec``, like a pydantic ValidationError.
    """
