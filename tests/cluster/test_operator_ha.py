"""Operator high availability as the chart sets it up: with ``replicas=2`` the replicas peer through
kopf's KopfPeering object, the one of higher priority reconciles and the other stands by; when the
active one goes away (a rolling update or a drained node sends SIGTERM, and kopf takes itself out of
the peering on the way out) the standby resumes and carries the same TrainingJob to its end.

Both replicas run as processes with the chart's Deployment env and its ServiceAccount's token, each with
its own pod name (``POD_ID``, from which each derives its peering priority). A replica killed outright
is replaced the same way once its peering record expires (kopf's 60 s lifetime), which this test does
not wait for.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubernetes import client

from hack.controlplane.cluster import ControlPlane, wait_for
from tests.chart.helm import HELM, helm
from tests.cluster.chart_operator import (
    RELEASE,
    TIMEOUT,
    ChartOperator,
    deployment_env,
    install_chart,
    release_resources,
    token_kubeconfig,
    wait_phase,
)
from tests.cluster.conftest import REPO
from tests.cluster.drive import finish_workers, publish_progress, running_workers

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not HELM.is_file(), reason=f"{HELM} is missing: run hack/controlplane/build-helm.sh"),
]

PAUSED = "Pausing operations in favour of"
RESUMED = "Resuming operations after the pause"
KOPF_PEERING_CRD = "kopfpeerings.kopf.dev"
TRAINING_JOB = "tiny-cpu"


def log_records(operator: ChartOperator) -> list[dict[str, object]]:
    """The operator's JSON log records (lines that are not JSON, such as the start banner, skipped)."""
    records = []
    for line in operator.log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def logged(operator: ChartOperator, text: str) -> bool:
    return any(text in str(record.get("message", "")) for record in log_records(operator))


def acted_on(operator: ChartOperator, name: str) -> bool:
    """Whether any log line of ``operator`` is about the object ``name`` (kopf puts the object on
    every line a handler or the controller logs for it)."""
    return any(
        isinstance(record.get("object"), dict) and record["object"].get("name") == name  # type: ignore[union-attr]
        for record in log_records(operator)
    )


def test_standby_replica_takes_over_when_the_active_one_stops_with_a_stand_in_runtime(
    cluster: ControlPlane,
    namespace: str,
    api_client: client.ApiClient,
    no_session_operator: None,
    tmp_path: Path,
) -> None:
    """The standby replica carries the TrainingJob to its end once the active one stops. The test stands in
    for the training runtime: nothing runs in the kwok pods, so it publishes rank 0's progress itself (made-up
    figures, ``tests.cluster.drive``); the e2e tier runs the real runtime."""
    ns = namespace
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    peering_crds_present = cluster.kubectl("get", "crd", KOPF_PEERING_CRD, check=False).returncode == 0
    replicas: list[ChartOperator] = []
    try:
        install_chart(
            cluster, ns, "replicas=2", *(["peering.installCRDs=false"] if peering_crds_present else [])
        )
        env = deployment_env(cluster, ns)
        assert env["MODELFLEET_STANDALONE"] == "false", env
        cluster.kubectl("get", "kopfpeering", env["MODELFLEET_PEERING"], "-n", ns)
        kubeconfig = token_kubeconfig(cluster, ns, tmp_path / "kubeconfig")
        for pod in ("mf-modelfleet-6f7c9-kq2xd", "mf-modelfleet-6f7c9-w8zrt"):
            replica = ChartOperator(kubeconfig, tmp_path / f"{pod}.log", {**env, "POD_ID": pod}, ns)
            replica.start()
            replicas.append(replica)

        def standby_found() -> bool:
            return sum(logged(r, PAUSED) for r in replicas) == 1

        wait_for(standby_found, TIMEOUT, f"exactly one replica to log '{PAUSED}'")
        standby = next(r for r in replicas if logged(r, PAUSED))
        active = next(r for r in replicas if r is not standby)

        # ---- only the active replica reconciles ----
        cluster.kubectl("apply", "-n", ns, "-f", str(REPO / "examples" / "trainingjob-cpu-tiny.yaml"))
        running_workers(core, ns, TRAINING_JOB, 1, timeout=TIMEOUT)
        publish_progress(core, ns, TRAINING_JOB, step=5, total_steps=20, loss=2.0)
        wait_phase(custom, ns, "trainingjobs", TRAINING_JOB, "Running", lambda: None)
        assert acted_on(active, TRAINING_JOB)
        assert not acted_on(standby, TRAINING_JOB), standby.log_tail()

        # ---- the active replica stops; the standby resumes and finishes the job ----
        active.stop()
        wait_for(lambda: logged(standby, RESUMED), TIMEOUT, f"the standby to log '{RESUMED}'")
        publish_progress(core, ns, TRAINING_JOB, step=20, total_steps=20, loss=1.2)
        finish_workers(core, ns, TRAINING_JOB, succeeded=True)
        wait_phase(custom, ns, "trainingjobs", TRAINING_JOB, "Succeeded", lambda: None)
        assert acted_on(standby, TRAINING_JOB)
    except AssertionError as error:
        tails = "\n".join(f"---- {r.log_path.name} (tail) ----\n{r.log_tail(40)}" for r in replicas)
        raise AssertionError(f"{error}\n{tails}") from None
    finally:
        for replica in replicas:
            replica.stop()
        helm("uninstall", RELEASE, "-n", ns, "--wait", "--timeout", "60s")
        release_resources(custom, ns)
