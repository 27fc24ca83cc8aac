"""Start and stop the real node of one control plane.

``up()`` clears whatever an earlier run of this node left (pods, mounts, cgroups, the namespace), builds
the node's network (a namespace, a veth pair to this machine, the pods' bridge), writes the configs,
then starts containerd, CoreDNS, kube-proxy and the kubelet inside the namespace and waits for the Node
to be Ready. ``down()`` removes the pods through the CRI, stops the daemons and clears the rest. A
failed step raises ``StepFailed`` naming the component and its log.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from hack.controlplane.certs import Pki
from hack.controlplane.processes import Process, StepFailed, wait_until
from hack.node import configs, imports
from hack.node.images import pause_image
from hack.node.layout import BRIDGE, NODE_NAME, NodeLayout, check_addresses
from hack.node.oci import ImageArchive

CONTAINERD_VERSION = os.environ.get("CONTAINERD_VERSION", "v2.4.2")
CNI_PLUGINS_VERSION = os.environ.get("CNI_PLUGINS_VERSION", "v1.10.0")
CRI_TOOLS_VERSION = os.environ.get("CRI_TOOLS_VERSION", "v1.37.0")
COREDNS_VERSION = os.environ.get("COREDNS_VERSION", "v1.15.0")
NODE_COMPONENTS = ("containerd", "coredns", "kube-proxy", "kubelet")
"""Started in this order inside the node's namespace, stopped in reverse."""
CGROUP_V1 = Path("/sys/fs/cgroup")
CPU_SHARES_PER_CORE = 1024
"""cgroup v1's ``cpu.shares`` of one CPU (the kubelet's ``MilliCPUToShares``)."""
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
READY_TIMEOUT = 90.0
"""Ready takes seconds; this only bounds a start on a machine busy with other builds."""


def instance_type_for(cpus: int) -> str:
    """The D-series v5 size (general purpose, what an AKS system pool runs) with this machine's vCPUs."""
    sizes = (2, 4, 8, 16, 32, 48, 64, 96)
    return f"Standard_D{max((s for s in sizes if s <= cpus), default=2)}s_v5"


@dataclass
class RealNode:
    layout: NodeLayout
    pki: Pki
    admin_kubeconfig: Path
    k8s_bin: Path
    service_cidr: str

    # ---- paths ---------------------------------------------------------------------------------------
    @property
    def containerd_bin(self) -> Path:
        return self.layout.cache / f"containerd-{CONTAINERD_VERSION}" / "bin"

    @property
    def cni_bin(self) -> Path:
        return self.layout.cache / f"cni-plugins-{CNI_PLUGINS_VERSION}" / "bin"

    @property
    def crictl(self) -> Path:
        return self.layout.cache / f"cri-tools-{CRI_TOOLS_VERSION}" / "bin" / "crictl"

    @property
    def coredns(self) -> Path:
        return self.layout.cache / f"coredns-{COREDNS_VERSION}" / "bin" / "coredns"

    @property
    def node_kubeconfig(self) -> Path:
        return self.layout.dir / "kubeconfig"

    def process(self, name: str) -> Process:
        return Process(name, self.layout.run_dir)

    def binaries(self) -> list[Path]:
        return [
            self.containerd_bin / "containerd",
            self.containerd_bin / "containerd-shim-runc-v2",
            self.containerd_bin / "ctr",
            *(self.cni_bin / p for p in ("bridge", "host-local", "loopback", "portmap")),
            self.crictl,
            self.coredns,
            self.k8s_bin / "kubelet",
            self.k8s_bin / "kube-proxy",
        ]

    # ---- queries -------------------------------------------------------------------------------------
    def running(self) -> bool:
        return all(self.process(name).alive() for name in NODE_COMPONENTS)

    def ctr_command(self, *args: str) -> list[str]:
        """``ctr`` on the node's containerd, in the CRI's namespace."""
        return [
            str(self.containerd_bin / "ctr"),
            f"--address={self.layout.containerd_socket}",
            "-n",
            "k8s.io",
            *args,
        ]

    def ctr(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ctr_command(*args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def has_image(self, ref: str) -> bool:
        listed = self.ctr("images", "ls", "-q", timeout=60)
        return listed.returncode == 0 and ref in listed.stdout.split()

    def load_image(self, image: ImageArchive) -> None:
        """Imports (and unpacks) an image archive into the node's containerd unless it has it, pins it,
        then drops the node's other tags of the same repository (their snapshots go with them, unless a
        container still runs on one, or the new image shares them): a rebuilt image replaces its
        predecessor instead of piling up.

        Only the layers the node has not unpacked yet are sent (``hack.node.imports``): after a source
        edit, the layer of the project's code, not the 5 GB of its dependencies. The layers are
        discarded once unpacked: they would double the disk an image takes, and nothing needs them
        again (the snapshots are what containers run on)."""
        if not self.has_image(image.ref):
            self._import(image)
        # pinned: the kubelet's image garbage collection skips the image, which nothing could pull back
        # (containerd reports the label to the kubelet as "pinned")
        self.ctr("images", "label", image.ref, "io.cri-containerd.pinned=pinned", timeout=60)
        repository = image.ref.rsplit(":", 1)[0]
        listed = self.ctr("images", "ls", "-q", timeout=60).stdout.split()
        older = [ref for ref in listed if ref.rsplit(":", 1)[0] == repository and ref != image.ref]
        if older:
            self.ctr("images", "rm", "--sync", *older, timeout=120)
        self._drop_unnamed_images()

    def _drop_unnamed_images(self) -> None:
        """Removes the CRI's ``sha256:<image id>`` references of images no name points at any more.

        The CRI names every image it knows by its ID too; dropping an image's tag leaves that reference,
        which keeps the image's snapshots (5 GB of a replaced runtime image) until it goes as well.
        Nothing on this node is pulled by digest, so an image with only its ID left is a replaced one.
        ``--sync``: the snapshots go now, not at containerd's next garbage collection."""
        rows = [line.split() for line in self.ctr("images", "ls", timeout=60).stdout.splitlines()[1:]]
        named = {row[2] for row in rows if len(row) > 2 and not row[0].startswith("sha256:")}
        unnamed = [
            row[0] for row in rows if len(row) > 2 and row[0].startswith("sha256:") and row[2] not in named
        ]
        if unnamed:
            self.ctr("images", "rm", "--sync", *unnamed, timeout=120)

    def has_snapshot(self, chain_id: str) -> bool:
        return self.ctr("snapshots", "info", chain_id, timeout=60).returncode == 0

    def _import(self, image: ImageArchive) -> None:
        log = self.process("containerd").log_file
        command = self.ctr_command("images", "import", "--local", "--discard-unpacked-layers", "-")
        with tarfile.open(image.archive) as source, tempfile.TemporaryFile() as output:
            archived = imports.ArchivedImage.read(source)
            send = imports.layers_to_send(archived, self.has_snapshot)
            ctr = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=output, stderr=subprocess.STDOUT)
            assert ctr.stdin is not None
            try:
                imports.write_thin_archive(source, archived, image.ref, send, ctr.stdin)
            except BrokenPipeError:
                pass  # ctr stopped reading: its output says why
            finally:
                ctr.stdin.close()
            returncode = ctr.wait(timeout=1200)
            output.seek(0)
            said = output.read().decode(errors="replace").strip()
        if returncode != 0 or not self.has_image(image.ref):
            raise StepFailed(
                "node: image import",
                log,
                f"`ctr images import` of {image.archive} ({len(send)} of {len(archived.layers)} layers "
                f"sent) gave no {image.ref}: {said[-2000:]}",
            )

    # ---- lifecycle -----------------------------------------------------------------------------------
    def up(self) -> None:
        missing = [str(p) for p in self.binaries() if not p.exists()]
        if missing:
            raise StepFailed(
                "node: binaries", None, f"missing {', '.join(missing)}; run `make cluster-build`"
            )
        self.down()
        self.layout.dir.mkdir(parents=True, exist_ok=True)
        self._network()
        self._write_configs()
        try:
            with self._containerd_root() as root:
                self._start_containerd(root)
            self.load_image(pause_image(self.layout.cache))
            self._publish_api_server_endpoints()
            self._forget_other_real_nodes()
            # started together, waited for in turn: kube-proxy is healthy once the kubelet registered
            # the Node, and the Node is Ready once the kubelet found containerd and the pod network
            self._start_coredns()
            self._start_kubelet()
            self._start_kube_proxy()
            self._wait_ready()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Stops the node and removes what it made on this machine (idempotent; never touches another
        node's processes, mounts or links: each is found by this node's own names and paths)."""
        for name in ("kubelet", "kube-proxy", "coredns"):
            self.process(name).stop()
        if self.process("containerd").alive():
            subprocess.run(
                [
                    str(self.crictl),
                    f"--runtime-endpoint=unix://{self.layout.containerd_socket}",
                    "--timeout=60s",
                    "rmp",
                    "--all",
                    "--force",
                ],
                capture_output=True,
                timeout=120,
                check=False,
            )
        self.process("containerd").stop()
        self._kill_leftovers()
        self._unmount_all()
        self._remove_cgroups()
        if self.layout.netns_path.exists():
            _run("ip", "netns", "delete", self.layout.netns)
        _run("ip", "link", "delete", self.layout.host_veth, check=False)
        self._remove_log_links()
        _remove_tree(self.layout.state_dir)
        _remove_tree(self.layout.kubelet_root)

    # ---- network -------------------------------------------------------------------------------------
    def _network(self) -> None:
        lay = self.layout
        host_routes = _run("ip", "-4", "-o", "route", "show").stdout.splitlines()
        networks = [line.split()[0] for line in host_routes if line.split()[0] != "default"]
        try:
            check_addresses(lay, self.service_cidr, [n if "/" in n else f"{n}/32" for n in networks])
        except ValueError as exc:
            raise StepFailed("node: network", None, str(exc)) from None
        ns = ("ip", "-n", lay.netns)
        _run("ip", "netns", "add", lay.netns)
        _run(
            "ip",
            "link",
            "add",
            lay.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            lay.node_veth,
            "netns",
            lay.netns,
        )
        _run("ip", "addr", "add", f"{lay.host_ip}/{lay.link_prefix}", "dev", lay.host_veth)
        _run("ip", "link", "set", lay.host_veth, "up")
        _run(*ns, "link", "set", "lo", "up")
        _run(*ns, "addr", "add", f"{lay.node_ip}/{lay.link_prefix}", "dev", lay.node_veth)
        _run(*ns, "link", "set", lay.node_veth, "up")
        _run(*ns, "route", "add", "default", "via", lay.host_ip)
        # the bridge exists before the first pod, so CoreDNS answers on the pods' gateway from the start
        _run(*ns, "link", "add", BRIDGE, "type", "bridge")
        _run(*ns, "addr", "add", f"{lay.gateway_ip}/24", "dev", BRIDGE)
        _run(*ns, "link", "set", BRIDGE, "up")
        # this machine reaches the pods (the API server's proxy, tests) through the node
        _run("ip", "route", "add", lay.pod_cidr, "via", lay.node_ip, "dev", lay.host_veth)
        # the node routes between its pods and this machine; bridged traffic goes through netfilter so
        # kube-proxy's Service rules also see a reply between two pods of the bridge
        self._in_netns("sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")

    def _in_netns(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return _run("nsenter", f"--net={self.layout.netns_path}", "--", *argv)

    # ---- configs -------------------------------------------------------------------------------------
    def _write_configs(self) -> None:
        lay = self.layout
        pause = pause_image(lay.cache)
        (lay.dir / "cni").mkdir(parents=True, exist_ok=True)
        (lay.dir / "cni" / "10-modelfleet.conflist").write_text(configs.dump_json(configs.cni_config(lay)))
        lay.pod_logs.mkdir(parents=True, exist_ok=True)
        self.node_kubeconfig.write_text(
            configs.dump_yaml(
                configs.kubeconfig(lay, self.pki.ca_cert, self.pki.admin_cert, self.pki.admin_key)
            )
        )
        self.node_kubeconfig.chmod(0o600)
        (lay.dir / "kubelet.yaml").write_text(
            configs.dump_yaml(configs.kubelet_config(lay, self.pki.ca_cert))
        )
        (lay.dir / "kube-proxy.yaml").write_text(
            configs.dump_yaml(configs.kube_proxy_config(lay, self.node_kubeconfig))
        )
        (lay.dir / "Corefile").write_text(configs.corefile(self.node_kubeconfig))
        self._pause_ref = pause.ref

    # ---- components ----------------------------------------------------------------------------------
    @contextmanager
    def _containerd_root(self) -> Iterator[Path]:
        """A containerd root kept between runs: the one this plane used last, else one no live node
        uses, else a new one. Held under a machine-wide lock until containerd runs on it."""
        roots = self.layout.containerd_roots
        roots.mkdir(parents=True, exist_ok=True)
        with (roots / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                existing = sorted(p for p in roots.iterdir() if p.is_dir())
                mine = [p for p in existing if _owner(p) == self.layout.run_dir.resolve()]
                free = [p for p in existing if not _in_use(p)]
                unused = next(
                    roots / f"root-{n}" for n in itertools.count() if not (roots / f"root-{n}").exists()
                )
                root = (mine or free or [unused])[0]
                root.mkdir(exist_ok=True)
                (root / "owner").write_text(str(self.layout.run_dir.resolve()))
                yield root
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _start_containerd(self, root: Path) -> None:
        lay = self.layout
        lay.state_dir.mkdir(parents=True, exist_ok=True)
        config = lay.dir / "containerd.toml"
        config.write_text(configs.containerd_config(lay, root / "data", self.cni_bin, self._pause_ref))
        proc = self.process("containerd")
        proc.start(
            [str(self.containerd_bin / "containerd"), f"--config={config}", "--log-level=warn"],
            env={"PATH": f"{self.containerd_bin}:{os.environ['PATH']}"},
            netns=lay.netns_path,
        )
        wait_until(
            "node: containerd",
            lambda: self.ctr("version", timeout=5).returncode == 0,
            proc.log_file,
            30,
            proc,
        )

    def _forget_other_real_nodes(self) -> None:
        """Deletes Node objects an earlier real node of this plane left under another name (the kubelet
        re-registers this one): the scheduler would otherwise place pods on a node that never runs."""
        from kubernetes import client, config

        api = client.CoreV1Api(config.new_client_from_config(str(self.admin_kubeconfig)))
        for node in api.list_node(label_selector=f"{configs.REAL_NODE_LABEL}=true").items:
            name = node.metadata.name if node.metadata else None
            if name and name != NODE_NAME:
                api.delete_node(name)

    def _publish_api_server_endpoints(self) -> None:
        """The ``kubernetes`` Service's endpoint: the API server at this machine's end of the link (the
        control plane runs with ``--endpoint-reconciler-type=none``). Pods reach the API server with it."""
        from kubernetes import client, config

        api = client.DiscoveryV1Api(config.new_client_from_config(str(self.admin_kubeconfig)))
        body = client.V1EndpointSlice(
            api_version="discovery.k8s.io/v1",
            kind="EndpointSlice",
            metadata=client.V1ObjectMeta(
                name="kubernetes",
                namespace="default",
                labels={
                    "kubernetes.io/service-name": "kubernetes",
                    "endpointslice.kubernetes.io/managed-by": "modelfleet-local-node",
                },
            ),
            address_type="IPv4",
            endpoints=[
                client.V1Endpoint(
                    addresses=[self.layout.host_ip], conditions=client.V1EndpointConditions(ready=True)
                )
            ],
            ports=[
                client.DiscoveryV1EndpointPort(name="https", port=self.layout.apiserver_port, protocol="TCP")
            ],
        )
        try:
            api.create_namespaced_endpoint_slice("default", body)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            api.replace_namespaced_endpoint_slice("kubernetes", "default", body)

    def _start_coredns(self) -> None:
        self.process("coredns").start(
            [str(self.coredns), "-conf", str(self.layout.dir / "Corefile"), "-dns.port", "53"],
            netns=self.layout.netns_path,
        )

    def _start_kube_proxy(self) -> None:
        self.process("kube-proxy").start(
            [str(self.k8s_bin / "kube-proxy"), f"--config={self.layout.dir / 'kube-proxy.yaml'}", "--v=1"],
            netns=self.layout.netns_path,
        )

    def _wait_ready(self) -> None:
        checks = (
            ("coredns", "CoreDNS ready", lambda: self._http_ok(8181, "/ready")),
            ("kubelet", f"{NODE_NAME} Ready", self._node_ready),
            ("kube-proxy", "kube-proxy healthy", lambda: self._http_ok(10256, "/healthz")),
        )
        for name, what, check in checks:
            proc = self.process(name)
            wait_until(f"node: {name} ({what})", check, proc.log_file, READY_TIMEOUT, proc)

    def _make_cgroup_root(self) -> None:
        """The kubelet wants its cgroup root in every v1 hierarchy; a new cpuset starts with no CPUs or
        memory nodes, so it gets its parent's.

        Its CPU weight is the node's CPUs' worth (1024 shares each, the weight the kubelet gives
        ``kubepods`` below it): at the default 1024 all the node's pods together weighed as much as one
        process of this machine, and with the machine busy (a load of 30) two training workers got 5%
        of a core between them."""
        for hierarchy in sorted(CGROUP_V1.iterdir()):
            if not (hierarchy / "cgroup.procs").exists():
                continue
            path = hierarchy / self.layout.cgroup_root.lstrip("/")
            path.mkdir(exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if (hierarchy / name).exists():
                    (path / name).write_text((hierarchy / name).read_text())
            if (path / "cpu.shares").exists():
                (path / "cpu.shares").write_text(str(CPU_SHARES_PER_CORE * (os.cpu_count() or 1)))

    def _start_kubelet(self) -> None:
        self._make_cgroup_root()
        lay = self.layout
        cpus = os.cpu_count() or 2
        labels = configs.node_labels(instance_type_for(cpus))
        self.process("kubelet").start(
            [
                str(self.k8s_bin / "kubelet"),
                f"--config={lay.dir / 'kubelet.yaml'}",
                f"--kubeconfig={self.node_kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={lay.node_ip}",
                f"--node-labels={','.join(f'{k}={v}' for k, v in labels.items())}",
                f"--root-dir={lay.kubelet_root}",
                f"--cert-dir={lay.dir / 'kubelet-pki'}",
                "--v=1",
            ],
            env={"PATH": f"{self.containerd_bin}:{os.environ['PATH']}"},
            netns=lay.netns_path,
        )

    def _node_ready(self) -> bool:
        """Ready, and the node controller has lifted its ``not-ready`` taint: until then the scheduler
        places no pod there (the kubelet reports Ready a few seconds before the taint goes)."""
        from kubernetes import client, config

        from hack.controlplane.kwok import node_ready

        api = client.CoreV1Api(config.new_client_from_config(str(self.admin_kubeconfig)))
        node = api.read_node(NODE_NAME)
        taints = node.spec.taints if node.spec else None
        return node_ready(node) and not any(t.key == NOT_READY_TAINT for t in taints or [])

    def _http_ok(self, port: int, path: str) -> bool:
        with urllib.request.urlopen(f"http://{self.layout.node_ip}:{port}{path}", timeout=2) as response:
            return bool(response.status == 200)

    # ---- teardown --------------------------------------------------------------------------------------
    def _cgroup_dirs(self) -> list[Path]:
        """This node's cgroup in every mounted v1 hierarchy (pods and their shims live below)."""
        found = []
        for hierarchy in CGROUP_V1.iterdir() if CGROUP_V1.is_dir() else []:
            path = hierarchy / self.layout.cgroup_root.lstrip("/")
            if path.is_dir():
                found.append(path)
        return found

    def _kill_leftovers(self) -> None:
        """SIGKILLs what the CRI did not remove: processes in this node's cgroups, and shims serving
        this node's containerd socket (found by their ``-address``)."""
        pids: set[int] = set()
        for top in self._cgroup_dirs():
            for procs in top.rglob("cgroup.procs"):
                pids.update(int(p) for p in procs.read_text().split())
        address = str(self.layout.containerd_socket)
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv and argv[0].endswith(b"containerd-shim-runc-v2") and address.encode() in argv:
                pids.add(int(proc.name))
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pids and time.monotonic() < deadline:
            pids = {pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)}
            time.sleep(0.1)

    def _unmount_all(self) -> None:
        """Lazily unmounts every mount below this node's directories, deepest first."""
        roots = [str(self.layout.state_dir), str(self.layout.kubelet_root.resolve())]
        mounts = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            target = line.split()[4].encode().decode("unicode_escape")
            if any(target == r or target.startswith(r + "/") for r in roots):
                mounts.append(target)
        for target in sorted(set(mounts), key=len, reverse=True):
            subprocess.run(["umount", "-l", target], capture_output=True, check=False)

    def _remove_cgroups(self) -> None:
        for top in self._cgroup_dirs():
            for path in sorted(
                (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
            ):
                _rmdir(path)
            _rmdir(top)

    def _remove_log_links(self) -> None:
        """The kubelet links each container's log into /var/log/containers; drop this node's links."""
        links = Path("/var/log/containers")
        if not links.is_dir():
            return
        ours = str(self.layout.pod_logs.resolve())
        for link in links.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(ours):
                link.unlink(missing_ok=True)


def _owner(root: Path) -> Path | None:
    try:
        return Path((root / "owner").read_text().strip())
    except OSError:
        return None


def _in_use(root: Path) -> bool:
    owner = _owner(root)
    return owner is not None and Process("containerd", owner).alive()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _rmdir(path: Path) -> None:
    for _ in range(20):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)


def _remove_tree(path: Path) -> None:
    if path.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(path)], capture_output=True, check=False)


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise StepFailed("node: network", None, f"`{' '.join(argv)}` failed: {result.stderr.strip()}")
    return result
