"""The real node's pure parts: names and addresses from its plane, its configs, its OCI archives."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import tarfile
from pathlib import Path

import pytest

from hack.node import configs
from hack.node.imports import ArchivedImage, chain_ids, layers_to_send, write_thin_archive
from hack.node.layout import NodeLayout, check_addresses
from hack.node.node import instance_type_for
from hack.node.oci import Entry, image_archive

pytestmark = pytest.mark.unit


def _layout(run_dir: str, port: int) -> NodeLayout:
    return NodeLayout(Path(run_dir), port, Path("/cache"))


def test_two_planes_get_disjoint_names_and_addresses() -> None:
    demo, tests = _layout("/repo/.cluster", 16443), _layout("/repo/.cluster/test", 16643)
    for attr in ("netns", "host_veth", "node_veth", "cgroup_root", "state_dir", "pod_cidr", "host_ip"):
        assert getattr(demo, attr) != getattr(tests, attr), attr
    assert not ipaddress.ip_network(demo.pod_cidr).overlaps(ipaddress.ip_network(tests.pod_cidr))
    links = [ipaddress.ip_network(f"{lay.host_ip}/{lay.link_prefix}", strict=False) for lay in (demo, tests)]
    assert not links[0].overlaps(links[1])


def test_names_fit_the_kernels_and_sockets_limits() -> None:
    layout = _layout("/a/very/long/checkout/path/of/some/continuous-integration/run/.cluster/test", 65535)
    assert len(layout.host_veth) <= 15 and len(layout.node_veth) <= 15
    assert len(str(layout.containerd_socket)) + len(".ttrpc") < 108
    assert ipaddress.ip_address(layout.node_ip) in ipaddress.ip_network("100.64.0.0/10")
    assert ipaddress.ip_address(layout.gateway_ip) in ipaddress.ip_network(layout.pod_cidr)


def test_addresses_overlapping_the_service_range_name_the_port() -> None:
    layout = _layout("/repo/.cluster", 96 * 256 + 43)
    with pytest.raises(ValueError, match=r"pod subnet 10\.96\.43\.0/24 \(from API server port 24619\)"):
        check_addresses(layout, "10.96.0.0/16", [])
    check_addresses(_layout("/repo/.cluster", 18043), "10.96.0.0/16", ["192.0.2.0/24"])


def test_kubelet_runs_on_cgroup_v1_with_its_own_root_and_the_node_dns() -> None:
    layout = _layout("/repo/.cluster", 18043)
    config = configs.kubelet_config(layout, Path("/pki/ca.crt"))
    assert config["failCgroupV1"] is False
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["cgroupRoot"] == layout.cgroup_root
    assert config["clusterDNS"] == [layout.gateway_ip]
    assert config["containerRuntimeEndpoint"] == f"unix://{layout.containerd_socket}"
    assert config["imageGCHighThresholdPercent"] == 100  # built-here images cannot be pulled back


def test_pod_network_addresses_come_from_the_nodes_subnet_and_own_ipam_store() -> None:
    layout = _layout("/repo/.cluster", 18043)
    bridge = configs.cni_config(layout)["plugins"][0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.70.123.0/24", "gateway": "10.70.123.1"}]]
    assert bridge["ipam"]["dataDir"].startswith(str(layout.dir))


def test_node_components_verify_the_api_server_by_name_across_the_link() -> None:
    layout = _layout("/repo/.cluster", 18043)
    cluster = configs.kubeconfig(layout, Path("ca"), Path("c"), Path("k"))["clusters"][0]["cluster"]
    assert cluster["server"] == f"https://{layout.host_ip}:18043"
    assert cluster["tls-server-name"] == "localhost"
    assert "kubernetes cluster.local" in configs.corefile(Path("/k"))


def test_real_node_is_the_system_pool_on_a_d_series_size() -> None:
    assert instance_type_for(2) == "Standard_D2s_v5"
    assert instance_type_for(6) == "Standard_D4s_v5"
    labels = configs.node_labels("Standard_D2s_v5")
    assert labels["kubernetes.azure.com/agentpool"] == "system"
    assert labels["node.kubernetes.io/instance-type"] == "Standard_D2s_v5"


def test_oci_archive_is_deterministic_and_complete(tmp_path: Path) -> None:
    binary = tmp_path / "hello"
    binary.write_bytes(b"#!/bin/sh\necho hi\n")
    first = image_archive(
        "modelfleet.local/hello", [Entry("hello", binary)], {"Cmd": ["/hello"]}, tmp_path / "a"
    )
    again = image_archive(
        "modelfleet.local/hello", [Entry("hello", binary)], {"Cmd": ["/hello"]}, tmp_path / "b"
    )
    assert first.ref == again.ref and first.archive.read_bytes() == again.archive.read_bytes()
    binary.write_bytes(b"#!/bin/sh\necho changed\n")
    changed = image_archive(
        "modelfleet.local/hello", [Entry("hello", binary)], {"Cmd": ["/hello"]}, tmp_path / "a"
    )
    assert changed.ref != first.ref

    with tarfile.open(first.archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == first.ref
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'][7:]}"])
    (layer,) = manifest["layers"]
    with tarfile.open(fileobj=io.BytesIO(files[f"blobs/sha256/{layer['digest'][7:]}"])) as tar:
        assert tar.getnames() == ["hello"]


def _docker_archive(path: Path, layers: list[bytes]) -> list[str]:
    """A docker archive (the layout ``buildah push docker-archive:`` writes) of uncompressed layers;
    their diff IDs."""
    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    files = {
        config_name: config,
        **{f"{d[7:]}.tar": layer for d, layer in zip(diff_ids, layers, strict=True)},
        "manifest.json": json.dumps(
            [{"Config": config_name, "RepoTags": ["x:1"], "Layers": [f"{d[7:]}.tar" for d in diff_ids]}]
        ).encode(),
    }
    with tarfile.open(path, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return diff_ids


def test_chain_ids_follow_the_oci_image_spec() -> None:
    """ChainID(L0) = DiffID(L0); ChainID(L0|...|Ln) = sha256(ChainID(L0|...|Ln-1) + " " + DiffID(Ln))."""
    ab = f"sha256:{hashlib.sha256(b'sha256:a sha256:b').hexdigest()}"
    abc = f"sha256:{hashlib.sha256(f'{ab} sha256:c'.encode()).hexdigest()}"
    assert chain_ids(["sha256:a", "sha256:b", "sha256:c"]) == ["sha256:a", ab, abc]


def test_a_thin_import_sends_the_layers_from_the_first_one_the_node_lacks(tmp_path: Path) -> None:
    """A source edit changes the image's last layer: only that one goes to containerd, under a manifest
    that still lists every layer and the archive's own config (so the same image ID)."""
    layers = [b"base" * 100, b"dependencies" * 1000, b"code"]
    diff_ids = _docker_archive(tmp_path / "image.tar", layers)
    chains = chain_ids(diff_ids)
    out = io.BytesIO()
    with tarfile.open(tmp_path / "image.tar") as source:
        image = ArchivedImage.read(source)
        assert image.diff_ids == diff_ids
        send = layers_to_send(image, lambda chain: chain in chains[:2])
        assert [layer.digest for layer in send] == diff_ids[2:]
        assert layers_to_send(image, lambda chain: chain != chains[1]) == image.layers[1:]
        write_thin_archive(source, image, "modelfleet.local/x:2", send, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as thin:
        files = {m.name: thin.extractfile(m).read() for m in thin.getmembers()}  # type: ignore[union-attr]
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert hashlib.sha256(data).hexdigest() == name.rsplit("/", 1)[1]
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "modelfleet.local/x:2"
    manifest = json.loads(files[f"blobs/sha256/{entry['digest'][7:]}"])
    assert [layer["digest"] for layer in manifest["layers"]] == diff_ids
    assert files[f"blobs/sha256/{manifest['config']['digest'][7:]}"] == image.config
    sent = {name for name in files if name.startswith("blobs/")} - {
        f"blobs/sha256/{entry['digest'][7:]}",
        f"blobs/sha256/{manifest['config']['digest'][7:]}",
    }
    assert sent == {f"blobs/sha256/{diff_ids[2][7:]}"}


def test_the_node_images_own_oci_archives_are_read_as_well(tmp_path: Path) -> None:
    binary = tmp_path / "hello"
    binary.write_bytes(b"hi")
    built = image_archive("modelfleet.local/hello", [Entry("hello", binary)], {}, tmp_path)
    with tarfile.open(built.archive) as source:
        image = ArchivedImage.read(source)
        (layer,) = image.layers
        assert image.diff_ids == [layer.digest]
        assert layers_to_send(image, lambda chain: False) == image.layers
