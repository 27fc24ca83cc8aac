"""Developer tooling: the local control plane, the real node and the demo driver.

Tests import from here; nothing here imports from the tests.
"""
