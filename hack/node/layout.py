"""Where one node lives: its names, addresses and directories, derived from its control plane (pure).

Two planes running at once differ in their API server port (they could not both listen otherwise) and
in their run directory, so:
- names seen machine-wide (network namespace, host end of the veth pair, cgroup root, state directory
  under /run) carry a short hash of the run directory;
- the addresses seen by this machine (the veth link and the pod subnet, which the host routes to) are
  computed from the API server port, so no two live planes share one. Service and cluster DNS
  addresses live only inside each node's namespace (kube-proxy programs them there) and may repeat.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "aks-system-local"
"""The real node: the system pool's node (kwok plays the GPU pools). One node per plane, and each
plane has its own API server, so the name may repeat across planes."""
LINK_NETWORK = ipaddress.ip_network("100.64.0.0/10")
"""The veth pairs between this machine and its nodes: /30s of the shared address space, which no
host here routes anywhere else."""
POD_NETWORK = ipaddress.ip_network("10.0.0.0/8")
"""Each node's pods get one /24 of this (10.<port high byte>.<port low byte>.0/24)."""
BRIDGE = "cni0"
"""The pods' bridge, inside the node's own network namespace (so the name repeats harmlessly)."""


@dataclass(frozen=True)
class NodeLayout:
    run_dir: Path
    """The control plane's run directory (``.cluster/`` or ``.cluster/test/``)."""
    apiserver_port: int
    cache: Path
    """``~/.cache/modelfleet``: binaries and the containerd content kept between runs."""

    @property
    def key(self) -> str:
        """8 hex digits of the run directory's path: the machine-wide names of this node."""
        return hashlib.sha256(str(self.run_dir.resolve()).encode()).hexdigest()[:8]

    # ---- names seen machine-wide ---------------------------------------------------------------------
    @property
    def netns(self) -> str:
        return f"mf-{self.key}"

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def host_veth(self) -> str:
        """Host end of the link (at most 15 characters, the kernel's limit)."""
        return f"mf{self.key}h"

    @property
    def node_veth(self) -> str:
        """Node end of the link; it lives in the node's namespace, but is created on the host first."""
        return f"mf{self.key}n"

    @property
    def cgroup_root(self) -> str:
        """The kubelet's ``cgroupRoot``: every pod's cgroup sits below it, in each v1 hierarchy."""
        return f"/modelfleet-{self.key}"

    @property
    def state_dir(self) -> Path:
        """Sockets and containerd's state (tmpfs; short paths: a unix socket path has 107 bytes)."""
        return Path("/run/modelfleet") / self.key

    # ---- addresses -------------------------------------------------------------------------------------
    @property
    def _link(self) -> ipaddress.IPv4Network:
        base = int(LINK_NETWORK.network_address) + 4 * self.apiserver_port
        return ipaddress.IPv4Network(f"{ipaddress.IPv4Address(base)}/30")

    @property
    def host_ip(self) -> str:
        """This machine's end of the link: where the node reaches the API server."""
        return str(self._link.network_address + 1)

    @property
    def node_ip(self) -> str:
        """The node's end of the link: its InternalIP, where the API server reaches the kubelet."""
        return str(self._link.network_address + 2)

    @property
    def link_prefix(self) -> int:
        return self._link.prefixlen

    @property
    def pod_cidr(self) -> str:
        high, low = divmod(self.apiserver_port, 256)
        return f"10.{high}.{low}.0/24"

    @property
    def gateway_ip(self) -> str:
        """The bridge's address: the pods' default gateway, and CoreDNS's address (the cluster DNS)."""
        return str(ipaddress.ip_network(self.pod_cidr).network_address + 1)

    # ---- directories -------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        """Configs, the kubelet's root and the pods' logs (under the plane's run directory)."""
        return self.run_dir / "node"

    @property
    def kubelet_root(self) -> Path:
        return self.dir / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.dir / "pod-logs"

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "containerd.sock"

    @property
    def containerd_roots(self) -> Path:
        """Parent of the containerd roots (content and snapshots) that survive between runs; a node
        takes one no live node uses, so images are unpacked once per root, not once per run."""
        return self.cache / "node" / "containerd"


def check_addresses(layout: NodeLayout, service_cidr: str, host_networks: list[str]) -> None:
    """Raises ValueError when the node's addresses would overlap the cluster's Services or a network
    this machine already has (the port picks them; say which port to change)."""
    mine = {
        "pod subnet": ipaddress.ip_network(layout.pod_cidr),
        "link": ipaddress.ip_network(f"{layout.host_ip}/{layout.link_prefix}", strict=False),
    }
    others = {"the Service range": ipaddress.ip_network(service_cidr)}
    others.update({f"this machine's {net}": ipaddress.ip_network(net, strict=False) for net in host_networks})
    for name, net in mine.items():
        for other_name, other in others.items():
            if net.overlaps(other):
                raise ValueError(
                    f"the node's {name} {net} (from API server port {layout.apiserver_port}) overlaps "
                    f"{other_name}; choose another MODELFLEET_PORT_BASE"
                )
