"""The demo's set-up on the control plane: runtime image, CRDs, operator, namespace and work volume."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from kubernetes import client
from modelfleet_api import GROUP, VERSION

from hack import operator_run, tinymodel
from hack.controlplane.cluster import REPO_ROOT, ControlPlane, wait_for
from hack.node.images import runtime_image
from hack.node.volumes import create_host_claim, delete_host_volume, host_volume_name

NAMESPACE = "modelfleet-demo"
WORK_CLAIM = "tiny-work"
"""The claim the CPU examples read and write (``pvc://tiny-work/...``): model, data, checkpoints, output."""
HEALTH_PORT_OFFSET = 90
"""The demo's operator listens on the plane's port base + 90 (health) and + 91 (metrics)."""


def banner(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def show(plane: ControlPlane, *args: str, input: str | None = None) -> None:
    print(plane.kubectl(*args, input=input).stdout.rstrip(), flush=True)


@dataclass
class Demo:
    plane: ControlPlane
    core: client.CoreV1Api
    image: str
    """The CPU runtime image every demo pod runs (in the node's containerd, never pulled)."""

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.core.api_client)

    @property
    def health_port(self) -> int:
        return self.plane.port_base + HEALTH_PORT_OFFSET

    @property
    def metrics_port(self) -> int:
        return self.health_port + 1

    @property
    def work_dir(self) -> Path:
        """The directory behind the ``tiny-work`` claim (on this machine, readable after the demo)."""
        return self.plane.run_dir / "demo" / "work"

    @classmethod
    def start(cls, plane: ControlPlane, core: client.CoreV1Api) -> Demo:
        banner("the CPU runtime image, loaded into the node's containerd")
        image = runtime_image()
        plane.node.load_image(image)
        print(f"{image.ref} (from {image.archive}); pods use it as is, nothing is pulled")
        demo = cls(plane, core, image.ref)
        demo.apply_crds()
        demo.start_operator()
        demo.fresh_namespace()
        demo.work_volume()
        return demo

    def apply(self, example: str) -> None:
        show(self.plane, "apply", "-n", NAMESPACE, "-f", str(REPO_ROOT / "examples" / example))

    def get(self, plural: str, name: str) -> dict[str, Any]:
        found = self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, plural, name)
        # annotated as object: what the client returns for a custom object is its decoded JSON object
        return cast(dict[str, Any], found)

    def phase(self, plural: str, name: str) -> str | None:
        phase: str | None = self.get(plural, name).get("status", {}).get("phase")
        return phase

    def apply_crds(self) -> None:
        self.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
        self.plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd",
            "-l",
            "app.kubernetes.io/part-of=modelfleet",
        )

    def start_operator(self) -> None:
        operator = self.plane.process("operator")
        operator.stop()  # an operator left by an earlier demo may run older code
        operator.start(
            # only the demo's namespace: a test session's operator may be watching the whole cluster
            operator_run.command(
                "--namespace", NAMESPACE, health_port=self.health_port, metrics_port=self.metrics_port
            ),
            env={
                "KUBECONFIG": str(self.plane.kubeconfig),
                "MODELFLEET_TRAINING_IMAGE": self.image,
                "MODELFLEET_SERVING_IMAGE": self.image,
                "MODELFLEET_RESYNC_SECONDS": "1",
                "MODELFLEET_BACKOFF_SECONDS": "1",
                "PYTHONUNBUFFERED": "1",
            },
        )

        def healthy() -> bool:
            if not operator.alive():
                raise SystemExit(f"the operator exited while starting; its log: {operator.log_file}")
            return operator_run.healthy(self.health_port)

        wait_for(healthy, operator_run.START_TIMEOUT, f"the operator's /healthz (log: {operator.log_file})")
        print(
            f"operator running (pid {operator.pid()}), log: {operator.log_file}, "
            f"metrics: http://127.0.0.1:{self.metrics_port}/metrics"
        )

    def fresh_namespace(self) -> None:
        """A clean demo namespace. An earlier demo's resources are deleted first, while the operator runs
        (one made by an operator older than ``kopf_fixes.daemon_finalizer`` carries kopf's finalizer,
        which only a running operator removes); then the namespace itself."""
        if self.plane.kubectl("get", "namespace", NAMESPACE, check=False).returncode == 0:
            self.plane.kubectl(
                "delete",
                "benchmarksweeps,modeldeployments,trainingjobs",
                "--all",
                "-n",
                NAMESPACE,
                "--timeout=120s",
            )
            self.core.delete_namespace(NAMESPACE)

        def gone() -> bool:
            try:
                self.core.read_namespace(NAMESPACE)
                return False
            except client.ApiException as exc:
                return bool(exc.status == 404)

        wait_for(gone, 180, f"the previous {NAMESPACE} namespace to be deleted")
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

        def default_sa() -> bool:
            try:
                self.core.read_namespaced_service_account("default", NAMESPACE)
                return True
            except client.ApiException:
                return False

        wait_for(default_sa, 30, "the demo namespace's default ServiceAccount")

    def work_volume(self) -> None:
        """The ``tiny-work`` claim on a fresh directory holding the tiny model and its data."""
        delete_host_volume(self.core, host_volume_name(NAMESPACE, WORK_CLAIM))
        shutil.rmtree(self.work_dir, ignore_errors=True)
        tokenizer = tinymodel.train_tokenizer()
        tinymodel.make_model(tokenizer, save_dir=self.work_dir / "model")
        tinymodel.write_jsonl(self.work_dir / "data" / "train.jsonl", tinymodel.instruction_rows(256))
        tinymodel.write_reference_set(self.work_dir / "references.jsonl")
        create_host_claim(self.core, NAMESPACE, WORK_CLAIM, self.work_dir)
        banner(
            f"claim {WORK_CLAIM}: a tiny Llama, 256 examples and {tinymodel.REFERENCE_ROWS} reference answers"
            f" made here, in {self.work_dir}"
        )
        show(self.plane, "get", "pvc", "-n", NAMESPACE)
