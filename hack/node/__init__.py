"""The local control plane's real worker node: pods on it really run.

containerd, the kubelet, kube-proxy and CoreDNS (built by ``build.sh`` into a cache outside the repo)
run inside a network namespace of their own, joined to this machine by one veth pair; the pods sit
on a bridge in that namespace. Everything that must be unique on the machine (namespace and link
names, addresses, the cgroup root, socket paths) is derived from the control plane's run directory
and API server port, so the tests' plane, a demo's plane and other checkouts' planes each run a node
at the same time. ``ControlPlane`` starts the node after its own components and stops it first.
"""
