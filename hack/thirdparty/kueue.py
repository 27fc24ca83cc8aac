"""Kueue's controller manager, running out of cluster against a local control plane.

Everything installed comes from Kueue's own kustomization (``config/default`` of the Go module): the
CRDs, the ``kueue-system`` namespace, the ServiceAccount with its RBAC, the admission webhook
configurations and the manager's configuration. What differs from an in-cluster install, and why:

- The manager is a process on this machine (Kueue's work is API objects, so it needs no node) that
  authenticates as its own ServiceAccount through a token kubeconfig: it runs with upstream's RBAC.
- The API server reaches its admission and CRD-conversion webhooks by URL on 127.0.0.1, with a serving
  cert signed by the plane's CA. Upstream points them at a Service and has its cert-controller write
  the cert into a Secret that reaches the pod as a mounted volume, which a process outside any pod
  cannot use; internal cert management is therefore off.
- With internal cert management off, Kueue reads its metrics server's cert from the fixed path
  ``/etc/kueue/metrics/certs``. The manager runs in a private mount namespace whose ``/etc`` is a
  read-only overlay adding that directory, so nothing on the machine itself changes.
- The webhooks for workload kinds (Jobs, Pods, Deployments, ...) and the manager's
  ``managedJobsNamespaceSelector`` take only namespaces labelled ``MANAGED_LABEL``: the plane is shared
  by every test, and no other test's Job or pod is ever held up by Kueue (or refused while it is
  stopped, since the webhooks fail closed).
- One manager, so leader election is off; the visibility API server is off (it would be an aggregated
  API that nothing here reads, and an unavailable APIService breaks API discovery for every client).
"""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hack.controlplane.certs import issue_serving_cert
from hack.controlplane.cluster import ControlPlane
from hack.controlplane.processes import Process, wait_until
from hack.thirdparty.upstream import KUEUE, apply, crd_names, kubectl, stream

GROUP = "kueue.x-k8s.io"
NAMESPACE = "kueue-system"
SERVICE_ACCOUNT = "kueue-controller-manager"
MANAGED_LABEL = "kueue.modelfleet.io/managed"
"""Namespaces with this label set to ``"true"`` are the ones Kueue manages (see the module docstring)."""
METRICS_CERT_DIR = "kueue/metrics/certs"
"""Where under ``/etc`` Kueue reads its metrics server's cert when internal cert management is off."""
INSTALLED_KINDS = (
    "Namespace",
    "CustomResourceDefinition",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
"""What of ``config/default`` is applied; its Deployment, Services, APIServices, cert Secret and
ConfigMap describe the in-cluster manager that this process replaces."""
TOKEN_LIFETIME = "48h"


@dataclass(frozen=True)
class Kueue:
    plane: ControlPlane

    # ---- where things are ----------------------------------------------------------------------------
    @property
    def state_dir(self) -> Path:
        return self.plane.run_dir / "thirdparty" / "kueue"

    @property
    def webhook_port(self) -> int:
        return self.plane.port_base + 101

    @property
    def health_port(self) -> int:
        return self.plane.port_base + 102

    @property
    def metrics_port(self) -> int:
        return self.plane.port_base + 103

    @property
    def process(self) -> Process:
        return self.plane.process("kueue")

    def manifests(self) -> list[dict[str, Any]]:
        """Upstream's ``config/default``, with the webhooks reached by URL and narrowed to managed
        namespaces (see the module docstring)."""
        objects = KUEUE.render("config/default", self.plane.kubectl_bin)
        return [self._adapt(obj) for obj in objects if obj["kind"] in INSTALLED_KINDS]

    def _client_config(self, path: str) -> dict[str, str]:
        return {
            "url": f"https://127.0.0.1:{self.webhook_port}{path}",
            "caBundle": base64.b64encode(self.plane.pki.ca_cert.read_bytes()).decode(),
        }

    def _adapt(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "CustomResourceDefinition":
            webhook = obj["spec"].get("conversion", {}).get("webhook")
            if webhook:
                webhook["clientConfig"] = self._client_config(webhook["clientConfig"]["service"]["path"])
        elif obj["kind"].endswith("WebhookConfiguration"):
            for webhook in obj["webhooks"]:
                webhook["clientConfig"] = self._client_config(webhook["clientConfig"]["service"]["path"])
                groups = {group for rule in webhook["rules"] for group in rule["apiGroups"]}
                if groups != {GROUP}:
                    selector = webhook.setdefault("namespaceSelector", {})
                    selector.setdefault("matchLabels", {})[MANAGED_LABEL] = "true"
        return obj

    def configuration(self) -> dict[str, Any]:
        """Upstream's manager configuration (the ConfigMap of ``config/default``) for this process."""
        objects = KUEUE.render("config/default", self.plane.kubectl_bin)
        (config_map,) = (
            o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("config")
        )
        config: dict[str, Any] = yaml.safe_load(config_map["data"]["controller_manager_config.yaml"])
        config["health"] = {
            **config.get("health", {}),
            "healthProbeBindAddress": f"127.0.0.1:{self.health_port}",
        }
        config["metrics"] = {**config.get("metrics", {}), "bindAddress": f"127.0.0.1:{self.metrics_port}"}
        config["webhook"] = {
            "host": "127.0.0.1",
            "port": self.webhook_port,
            "certDir": str(self.state_dir / "webhook"),
        }
        config["leaderElection"] = {"leaderElect": False}
        config["internalCertManagement"] = {"enable": False}
        config["managedJobsNamespaceSelector"] = {"matchLabels": {MANAGED_LABEL: "true"}}
        return config

    # ---- lifecycle -----------------------------------------------------------------------------------
    def install(self) -> None:
        """Applies the manifests (idempotent) and waits for the CRDs to be Established.

        A namespace or CRD still being deleted (a session stopped in the middle of ``uninstall``
        leaves them so until the plane runs again) is waited for first: applying to it would be lost.
        """
        objects = self.manifests()
        crds = crd_names(objects)
        self._kubectl("wait", "--for=delete", "--timeout=120s", f"namespace/{NAMESPACE}", *crds)
        apply(self.plane, objects)
        self._kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)

    def start(self) -> None:
        """Starts the manager (after ``install``) and waits until it is ready, its webhooks serving.
        A manager left running by an earlier session is stopped first: its token and config may be stale."""
        self.stop()
        self._write_files()
        binary = KUEUE.binary("kueue")
        argv = [
            str(binary),
            f"--config={self.state_dir / 'config.yaml'}",
            f"--kubeconfig={self.state_dir / 'kubeconfig'}",
            "--feature-gates=VisibilityOnDemand=false",
            "--zap-log-level=2",
        ]
        _start_with_etc_overlay(self.process, self.state_dir / "etc", argv)
        wait_until(
            "kueue",
            lambda: _http_ok(f"http://127.0.0.1:{self.health_port}/readyz"),
            self.process.log_file,
            120,
            self.process,
        )

    def stop(self) -> None:
        self.process.stop()

    def uninstall(self) -> None:
        """Deletes every installed object. The CRDs go first, while the manager still runs: it removes
        the finalizers it put on its objects; whatever still holds one afterwards loses it."""
        objects = self.manifests()
        crds = [o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"]
        deleted = self._kubectl(
            "delete",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=90s",
            *(f"crd/{n}" for n in crds),
            check=False,
        )
        if deleted.returncode != 0:
            self._drop_finalizers(crds)
            self._kubectl(
                "delete", "--ignore-not-found", "--wait=true", "--timeout=60s", *(f"crd/{n}" for n in crds)
            )
        self.stop()
        # The rest is not waited for (kubectl waited 10 s for it, the namespace 5 s more): nothing of it
        # holds a finalizer, and `install` waits for a namespace still being deleted.
        rest = [o for o in objects if o["kind"] not in ("CustomResourceDefinition", "Namespace")]
        self._kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", input=stream(rest))
        self._kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")

    # ---- helpers -------------------------------------------------------------------------------------
    def _write_files(self) -> None:
        pki = self.plane.pki
        webhook_dir = self.state_dir / "webhook"
        issue_serving_cert(pki, webhook_dir / "tls.crt", webhook_dir / "tls.key", "kueue-webhook")
        metrics_dir = self.state_dir / "etc" / METRICS_CERT_DIR
        issue_serving_cert(pki, metrics_dir / "tls.crt", metrics_dir / "tls.key", "kueue-metrics")
        (self.state_dir / "config.yaml").write_text(yaml.safe_dump(self.configuration(), sort_keys=False))
        token = self._kubectl(
            "create", "token", SERVICE_ACCOUNT, "-n", NAMESPACE, f"--duration={TOKEN_LIFETIME}"
        ).stdout.strip()
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "plane",
                    "cluster": {"server": self.plane.server, "certificate-authority": str(pki.ca_cert)},
                }
            ],
            "users": [{"name": SERVICE_ACCOUNT, "user": {"token": token}}],
            "contexts": [{"name": "kueue", "context": {"cluster": "plane", "user": SERVICE_ACCOUNT}}],
            "current-context": "kueue",
        }
        path = self.state_dir / "kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
        path.chmod(0o600)

    def _drop_finalizers(self, crds: list[str]) -> None:
        for crd in crds:
            listed = self._kubectl("get", crd, "-A", "-o", "json", check=False)
            if listed.returncode != 0:
                continue
            for item in json.loads(listed.stdout)["items"]:
                meta = item["metadata"]
                where = ["-n", meta["namespace"]] if meta.get("namespace") else []
                no_finalizers = '{"metadata":{"finalizers":null}}'
                self._kubectl(
                    "patch", crd, meta["name"], *where, "--type=merge", "-p", no_finalizers, check=False
                )

    def _kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return kubectl(self.plane, *args, input=input, check=check)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def _start_with_etc_overlay(process: Process, etc_extra: Path, argv: list[str]) -> None:
    """Starts ``argv`` in a private mount namespace whose ``/etc`` shows ``etc_extra`` over the real one
    (``unshare``, then ``sh`` mounting the overlay, then ``exec`` of the binary in place)."""
    mount_then_exec = 'mount -t overlay overlay -o "lowerdir=$0:/etc" /etc && exec "$@"'
    command = ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", mount_then_exec]
    process.launch([*command, str(etc_extra), *argv], binary=argv[0])
