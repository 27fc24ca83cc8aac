"""The node's configuration files, rendered from its layout (pure: tested without a node)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from hack.node.layout import BRIDGE, NODE_NAME, NodeLayout

CLUSTER_DOMAIN = "cluster.local"
API_SERVER_TLS_NAME = "localhost"
"""The node reaches the API server at the link address, which the serving cert does not name; the
kubeconfig checks the cert against this name instead (client-go's ``tls-server-name``)."""


def containerd_config(layout: NodeLayout, root: Path, cni_bin: Path, sandbox_image: str) -> str:
    """containerd's config (version 3; containerd fills in the defaults of everything else).

    No ``imports``: the machine's own /etc/containerd must not leak in. The pod network namespaces and
    runc's state live under the node's state directory (runc's default, /run/containerd/runc, would be
    shared by every node on this machine), so a node's teardown finds every one of them.
    ``restrict_oom_score_adj``: this machine withholds CAP_SYS_RESOURCE even from root, so no process
    may lower its OOM score; the kubelet asks -998 for a pod sandbox and -997 for a Guaranteed pod, and
    runc would fail to start them. containerd clamps such values to its own score (0) instead.
    """
    state = layout.state_dir
    return f"""version = 3
root = '{root}'
state = '{state / "containerd"}'
imports = []

[grpc]
  address = '{layout.containerd_socket}'

[ttrpc]
  address = '{layout.containerd_socket}.ttrpc'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{sandbox_image}'

[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
      Root = '{state / "runc"}'
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['{cni_bin}']
    conf_dir = '{layout.dir / "cni"}'

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
"""


def cni_config(layout: NodeLayout) -> dict[str, Any]:
    """One bridge in the node's namespace, host-local addresses from the node's /24, hostPorts."""
    return {
        "cniVersion": "1.0.0",
        "name": "modelfleet",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.pod_cidr, "gateway": layout.gateway_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.dir / "cni-ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubeconfig(layout: NodeLayout, ca: Path, cert: Path, key: Path) -> dict[str, Any]:
    """What the node's components use: the API server across the link, verified by ``localhost``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": f"https://{layout.host_ip}:{layout.apiserver_port}",
                    "certificate-authority": str(ca),
                    "tls-server-name": API_SERVER_TLS_NAME,
                },
            }
        ],
        "users": [{"name": "node", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": "node"}}],
        "current-context": "local",
    }


def kubelet_config(layout: NodeLayout, client_ca: Path) -> dict[str, Any]:
    """The kubelet on this machine: cgroup v1 with the cgroupfs driver (no systemd here), its own
    cgroup root, the API server's client cert accepted for logs and exec, and no image garbage
    collection: the images were built here and cannot be pulled back."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": layout.cgroup_root,
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": layout.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "0.0.0.0",
        "healthzPort": 10248,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [layout.gateway_ip],
        "resolvConf": "",
        "podLogsDir": str(layout.pod_logs),
        "failSwapOn": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        # no disk-pressure eviction: this machine's disk is shared with image builds (an image import
        # alone writes twice its size for a while), and what eviction reclaims first, unused images,
        # could not be pulled back; 0% disables a signal
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "0%",
            "nodefs.inodesFree": "0%",
            "imagefs.available": "0%",
            "imagefs.inodesFree": "0%",
        },
        "evictionPressureTransitionPeriod": "30s",
        "serializeImagePulls": False,
        "registerNode": True,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
        "containerLogMaxSize": "10Mi",
        "enforceNodeAllocatable": ["pods"],
    }


def kube_proxy_config(layout: NodeLayout, kubeconfig_path: Path) -> dict[str, Any]:
    """kube-proxy in nftables mode, in the node's namespace (its table is that namespace's alone)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig_path)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": layout.pod_cidr,
        "detectLocalMode": "ClusterCIDR",
        "bindAddress": "0.0.0.0",
        "healthzBindAddress": "0.0.0.0:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # 0: leave nf_conntrack_max alone (it is machine-wide, not the node's to change)
        "conntrack": {"maxPerCore": 0, "min": 0},
    }


def corefile(kubeconfig_path: Path) -> str:
    """CoreDNS serving the cluster domain (Services, and pods by their hostname and subdomain) from
    the API server; nothing else: no traffic leaves this machine, so there is no upstream."""
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig_path} local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


REAL_NODE_LABEL = "modelfleet.io/real-node"
REAL_POOL = "system"
"""The real node's AKS agent pool: the system pool, a CPU pool (``resources.nodePool: system``)."""


def node_labels(instance_type: str) -> dict[str, str]:
    """The labels AKS puts on a system-pool node, plus what marks this node as the real one. No taint:
    every CPU pod of its plane lands here; a GPU pod never fits (no ``nvidia.com/gpu``)."""
    return {
        "node.kubernetes.io/instance-type": instance_type,
        "beta.kubernetes.io/instance-type": instance_type,
        "kubernetes.azure.com/agentpool": REAL_POOL,
        "agentpool": REAL_POOL,
        "kubernetes.azure.com/mode": "system",
        "kubernetes.azure.com/cluster": "modelfleet-local",
        "topology.kubernetes.io/region": "eastus2",
        "topology.kubernetes.io/zone": "eastus2-1",
        REAL_NODE_LABEL: "true",
    }


def dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False)
