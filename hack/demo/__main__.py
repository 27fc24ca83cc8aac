"""``make demo``: the operator at work on the local control plane, with pods that really run.

Starts the control plane with its real node (reused when running), loads the CPU runtime image into
the node, starts the operator (kept running afterwards, stopped by ``make cluster-down``) and, in the
``modelfleet-demo`` namespace:

1. applies the H100 examples, whose pods kwok schedules on the simulated GPU pools (nothing in them
   runs, so nothing is measured and no figure is shown for them);
2. trains the tiny model with two workers on the real node, printing the progress and the held-out
   loss rank 0 reports;
3. serves what it wrote with the ``transformers`` engine and streams a chat completion from it;
4. benchmarks that deployment: point Jobs run ``modelfleet-bench`` in pods, and their figures come back
   into the sweep's status from the pods' termination messages;
5. fine-tunes the trained model further in a second job and puts its output into the deployment as a
   canary, which the operator promotes or rolls back stage by stage on benchmarks of both tracks.
Every figure printed was measured by a pod on this machine.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from kubernetes import client, config

from hack.controlplane.cluster import ControlPlane
from hack.demo import cpu, simulated
from hack.demo.cluster import Demo, banner, show


def main() -> int:
    started = time.monotonic()
    plane = ControlPlane(real_node=True)
    plane.up()
    banner("the local control plane: one real node (the system pool) and simulated AKS GPU pools")
    show(
        plane,
        "get",
        "nodes",
        "-o",
        "wide",
        "-L",
        "node.kubernetes.io/instance-type",
        "-L",
        "kubernetes.azure.com/agentpool",
    )
    print("(the kwok nodes are simulated: their pods are scheduled but never run)")
    demo = Demo.start(plane, client.CoreV1Api(config.new_client_from_config(str(plane.kubeconfig))))
    simulated.apply_gpu_examples(demo)
    cpu.train(demo)
    cpu.serve_and_chat(demo)
    cpu.benchmark(demo)
    cpu.canary(demo)
    simulated.show_still_simulated(demo)
    banner(f"demo done in {time.monotonic() - started:.0f}s")
    print(f"kubeconfig: export KUBECONFIG={Path(plane.kubeconfig)}  (stop everything: make cluster-down)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
