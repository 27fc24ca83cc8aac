"""The operator's settings of what training workers get from their nodes: the InfiniBand device resource,
an NCCL topology file per VM size, and where the cache of downloads lives (``MODELFLEET_RDMA_*``,
``MODELFLEET_NCCL_TOPOLOGY_DIR``, ``MODELFLEET_NODE_CACHE*``; ``config.load_worker_node_settings``).

Apart from ``modelfleet_operator.training.node_setup``, which turns them into pod fields, so that the
operator's configuration can hold them without importing a controller.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from modelfleet_api.common import quantity_value
from modelfleet_api.instance_types import InstanceType

DEFAULT_RDMA_RESOURCE = "rdma/rdma_shared_device_a"
"""The NVIDIA Network Operator's RDMA shared device plugin's resource (its NicClusterPolicy default)."""


@dataclass(frozen=True, kw_only=True)
class NodeCache:
    """Where workers keep their downloads: a ``hostPath`` directory, or an ``emptyDir`` of their own."""

    host_path: str | None = None
    """The node's directory; None: an emptyDir."""
    size_limit: str | None = None
    """emptyDir only: its size limit."""
    max_bytes: int | None = None
    """hostPath only: the runtime removes the entries used longest ago beyond this size."""


@dataclass(frozen=True, kw_only=True)
class WorkerNodeSettings:
    """The operator's settings of what workers get from their nodes (``config.load_worker_node_settings``)."""

    rdma_resource: str | None = DEFAULT_RDMA_RESOURCE
    """Extended resource of the InfiniBand HCAs; None: no RDMA (NCCL over TCP)."""
    rdma_per_worker: int = 1
    nccl_topology: Mapping[InstanceType, str] = field(default_factory=dict)
    """NCCL topology file (XML) by InfiniBand VM size."""
    cache: NodeCache = field(default_factory=NodeCache)


PLAIN_NODES = WorkerNodeSettings(rdma_resource=None)
"""No InfiniBand, an emptyDir cache: what a worker gets when the builder is not told otherwise."""


def parse_quantity_bytes(value: str, setting: str) -> int:
    parsed = quantity_value(value)
    if parsed is None or parsed <= 0:
        raise ValueError(f"{setting}={value!r} is not a quantity such as 500Gi")
    return int(parsed)


def parse_node_cache(spec: str, max_size: str = "") -> NodeCache:
    """``emptyDir``, ``emptyDir:SIZE`` or ``hostPath:/PATH`` (``MODELFLEET_NODE_CACHE``); ``max_size``: a
    quantity or empty (``MODELFLEET_NODE_CACHE_MAX_SIZE``, hostPath only)."""
    kind, _, argument = spec.strip().partition(":")
    if kind == "emptyDir":
        if argument:
            parse_quantity_bytes(argument, "MODELFLEET_NODE_CACHE")
        return NodeCache(size_limit=argument or None)
    if kind == "hostPath":
        if not argument.startswith("/") or len(argument) < 2 or re.search(r"[\s,]|/\.\.(/|$)", argument):
            raise ValueError(f"MODELFLEET_NODE_CACHE={spec!r}: hostPath needs an absolute directory")
        limit = parse_quantity_bytes(max_size, "MODELFLEET_NODE_CACHE_MAX_SIZE") if max_size.strip() else None
        return NodeCache(host_path=argument, max_bytes=limit)
    raise ValueError(f"MODELFLEET_NODE_CACHE={spec!r}: expected emptyDir, emptyDir:SIZE or hostPath:/PATH")
