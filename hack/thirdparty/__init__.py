"""Third-party components the operator integrates with, built from their Go modules and run for real
against the local control plane: Kueue, Prometheus, KEDA and the KEDA HTTP add-on.

``build.sh`` builds the binaries (versions in ``versions.env``); the modules here install each
component from its module's own published manifests and run it. See ``README.md``.
"""
