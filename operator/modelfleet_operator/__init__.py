"""modelfleet's Kubernetes operator: kopf handlers that turn the custom resources into workloads.

Layers (checked by import-linter, see ``[tool.importlinter]`` in pyproject.toml):

- ``kube`` is the only module that talks to the Kubernetes API (it alone imports the client);
- ``conditions`` and ``status`` are pure helpers for Kubernetes-style status;
- ``training`` holds the TrainingJob controller: pure builders, one module per policy, the
  ordered reconcile steps and the kopf wiring;
- ``__main__`` reads the operator's settings and runs kopf.
"""
