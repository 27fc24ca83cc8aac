"""modelfleet's API: the typed models of the three custom resources and the runtime config contract.

This package depends only on pydantic and PyYAML so that the operator and both runtime images import
the same models: what the operator writes into a ConfigMap is exactly what the runtimes read.
"""

GROUP = "modelfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
