"""``python -m hack.controlplane up|down|status|kubectl ARGS...``: the Makefile's cluster targets."""

from __future__ import annotations

import sys
import time

from hack.controlplane.cluster import ControlPlane
from hack.controlplane.processes import StepFailed


def main(argv: list[str]) -> int:
    plane = ControlPlane(real_node=True)
    command = argv[0] if argv else "status"
    if command == "up":
        started = time.monotonic()
        try:
            fresh = plane.up()
        except StepFailed as exc:
            print(exc, file=sys.stderr)
            return 1
        what = f"started in {time.monotonic() - started:.1f}s" if fresh else "already running, reused"
        print(f"control plane {what}: {plane.server}, kubeconfig {plane.kubeconfig}")
        return 0
    if command == "down":
        plane.down()
        left = [name for name in plane.components if plane.process(name).alive()]
        print("control plane stopped" if not left else f"still running: {', '.join(left)}")
        return 1 if left else 0
    if command == "status":
        for name in plane.components:
            pid = plane.process(name).pid()
            print(f"{name:<24} {'running pid ' + str(pid) if pid else 'stopped'}")
        return 0 if plane.running() else 1
    if command == "kubectl":
        result = plane.kubectl(*argv[1:], check=False)
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        return result.returncode
    print(f"unknown command {command!r}; use up, down, status or kubectl", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
