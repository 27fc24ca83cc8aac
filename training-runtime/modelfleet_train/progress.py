"""Rank 0's progress report: the `progress` key of a ConfigMap the operator mirrors into the status.

The ConfigMap is named by env MODELFLEET_PROGRESS_CONFIGMAP in namespace POD_NAMESPACE; a per-job
Role lets the pod patch only that object. Publishing is throttled (at most every `interval`
seconds, plus forced updates at checkpoints and at the end), runs on a background thread so a
slow API server never stalls training, and failures are logged, never fatal.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from modelfleet_api import contract
from modelfleet_api.runtime_config import TrainingProgress

log = logging.getLogger(__name__)


def _patch_with_kubernetes(name: str, namespace: str) -> Any:
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:  # outside a pod (a local run): the kubeconfig, as kubectl uses
        config.load_kube_config()
    api = client.CoreV1Api()

    def patch(progress: TrainingProgress) -> None:
        body = {"data": {contract.PROGRESS_KEY: progress.model_dump_json(by_alias=True, exclude_none=True)}}
        api.patch_namespaced_config_map(name, namespace, body, _request_timeout=10)

    return patch


class ProgressPublisher:
    def __init__(self, patch: Any, interval_seconds: float = 10.0) -> None:
        self._patch, self.interval = patch, interval_seconds
        self._pending: TrainingProgress | None = None
        self._last_sent = 0.0
        self._lock = threading.Condition()
        self._closed = False
        self._due = False
        self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._thread.start()

    @classmethod
    def from_env(cls) -> ProgressPublisher | None:
        """A publisher for the ConfigMap the operator named, or None outside a TrainingJob pod."""
        name = os.environ.get(contract.ENV_PROGRESS_CONFIGMAP)
        if not name:
            return None
        namespace = os.environ.get(contract.ENV_POD_NAMESPACE, "default")
        try:
            return cls(_patch_with_kubernetes(name, namespace))
        except ImportError as exc:
            # a broken image, not a passing outage: without progress the operator would restart the gang
            # as stalled again and again, so the worker stops now and says why
            raise RuntimeError(
                f"the kubernetes client is not installed ({exc}): rank 0 reports progress to the operator "
                "through it; install the train extra (pip install 'modelfleet[train]') in the image"
            ) from exc
        except Exception:
            log.exception("progress reporting disabled: cannot reach the Kubernetes API")
            return None

    def submit(self, progress: TrainingProgress, force: bool = False) -> None:
        """Queue the latest progress; it is sent when the interval has passed, or now when forced."""
        with self._lock:
            self._pending = progress
            if force or time.monotonic() - self._last_sent >= self.interval:
                self._due = True
                self._lock.notify()

    def close(self) -> None:
        """Send what is pending and stop."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or self._due)
                progress, self._pending, self._due = self._pending, None, False
                closed = self._closed
                self._last_sent = time.monotonic()
            if progress is not None:
                try:
                    self._patch(progress)
                except Exception as error:
                    log.warning("publishing progress failed (training continues): %s", error)
            if closed:
                return
