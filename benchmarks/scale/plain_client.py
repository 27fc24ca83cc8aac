"""The reference: a plain Python client that creates every new TrainingJob's children, nothing else.

It learns of TrainingJobs as the operator does (a watch of the namespace) and creates the same children
(the operator's own builders), each with one POST, from ``--threads`` threads; it reads nothing else,
writes no status and keeps no state. What it achieves is the rate the API server allows a client on
this machine: the bar the operator is measured against.

    python -m benchmarks.scale.plain_client --kubeconfig K --namespace NS [--threads 16] [--shard 0/1]

``--shard K/N`` takes only the TrainingJobs whose name hashes to K (several processes share the work,
to check that one process is not the limit). It prints ``ready`` once its watch is open, and runs until
it is terminated.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

from modelfleet_api import API_VERSION

from benchmarks.scale.kubeapi import ApiError, KubeApi
from benchmarks.scale.workload import children_of, path_of

WATCH_SECONDS = 3600


def create_children(api: KubeApi, created: dict[str, Any]) -> None:
    for manifest in children_of(created):
        path = path_of(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["namespace"])
        try:
            api.create(path, manifest)
        except ApiError as error:
            if error.status != 409:  # already there: nothing to do
                print(f"plain client: {error}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="plain_client", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--shard", default="0/1", help="K/N: handle the TrainingJobs whose name hashes to K")
    args = parser.parse_args(argv)
    shard, shards = (int(x) for x in args.shard.split("/"))
    api = KubeApi(args.kubeconfig, pool_size=args.threads + 1)
    work: queue.Queue[dict[str, Any]] = queue.Queue()

    def worker() -> None:
        while True:
            create_children(api, work.get())

    for index in range(args.threads):
        threading.Thread(target=worker, name=f"plain-{index}", daemon=True).start()
    path = path_of(API_VERSION, "TrainingJob", args.namespace)
    listed = api.request("GET", path)
    mine = [tj for tj in listed["items"] if zlib.crc32(tj["metadata"]["name"].encode()) % shards == shard]
    for tj in mine:
        work.put(tj)
    version = listed["metadata"]["resourceVersion"]
    stream = api.watch(path, version, WATCH_SECONDS)
    print("ready", flush=True)
    while True:
        for event in stream:
            obj = event.get("object") or {}
            version = obj.get("metadata", {}).get("resourceVersion", version)
            name = obj.get("metadata", {}).get("name", "")
            if event.get("type") == "ADDED" and zlib.crc32(name.encode()) % shards == shard:
                work.put(obj)
        stream = api.watch(path, version, WATCH_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
