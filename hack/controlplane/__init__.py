"""The local control plane the tests and `make demo` run against.

Real kube-apiserver, etcd, kube-controller-manager and kube-scheduler (built from Go modules by
``build.sh`` into a cache outside the repo) plus kwok, which plays the kubelet for fake nodes that
mirror modelfleet's AKS GPU pools. ``python -m hack.controlplane up|down|status`` drives it; the
pytest fixtures in ``tests/conftest.py`` use the same code.
"""
