"""Drive one load point: warm-up, then the measured phase, in one or several worker processes.

Every measured request has a global index: the open-loop arrival it belongs to (`schedule`), or for a
closed loop the k-th request of worker w out of W is index k*W + w, so a request limit is met exactly.
Workers run their own event loop and connection pool, meet at a barrier after their warm-up, start the
measured phase at the same instant and send back their records, which are merged by index. The hot
path only sends, timestamps and stores; metrics come afterwards.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from modelfleet_api.benchmark import KServeSettings, LoadMode, LoadPoint, Protocol

from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord
from modelfleet_serve.bench.schedule import arrival_offsets, assign_to_workers

clock = time.perf_counter
START_DELAY_SECONDS = 0.1
"""Between the last worker reaching the start barrier and the measured phase: time for every worker
to wake up from the barrier before its first arrival is due."""
EVENTS_PER_SECOND_PER_WORKER = 4000.0
"""Open loop: requests plus streamed chunks per second given to one event loop before another worker
process is added: about half of what one loop's CPU allows on the 2-vCPU development VM (about 620 us
of CPU per 4-token stream, i.e. ~1600 requests or ~8000 events per second of one core)."""
STREAMS_PER_WORKER = 512
"""Closed loop: concurrent streams given to one event loop before another worker process is added."""


@dataclass(frozen=True)
class Target:
    url: str
    model: str
    protocol: Protocol
    kserve: KServeSettings
    api_key: str | None = None
    ignore_eos: bool = False


def make_client(target: Target, load: LoadPoint) -> ProtocolClient:
    if target.protocol in (Protocol.OPENAI_CHAT, Protocol.OPENAI_COMPLETIONS):
        from modelfleet_serve.bench.protocols.openai import OpenAIClient

        return OpenAIClient(
            target.url,
            target.model,
            target.protocol is Protocol.OPENAI_CHAT,
            api_key=target.api_key,
            max_connections=load.max_in_flight,
            timeout_seconds=load.request_timeout_seconds,
            ignore_eos=target.ignore_eos,
        )
    kserve: Callable[..., ProtocolClient]
    if target.protocol is Protocol.KSERVE_V2_GRPC:
        from modelfleet_serve.bench.protocols.kserve_grpc import KServeGrpcClient as kserve
    else:
        from modelfleet_serve.bench.protocols.kserve import KServeHttpClient as kserve
    return kserve(
        target.url,
        target.model,
        target.kserve,
        max_connections=load.max_in_flight,
        timeout_seconds=load.request_timeout_seconds,
    )


def available_cpus() -> int:
    """CPUs this process may use: its affinity, bounded by a cgroup v2 quota (a pod's CPU limit)."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return cpus
    return cpus if quota == "max" else max(1, min(cpus, math.ceil(int(quota) / int(period))))


def choose_workers(load: LoadPoint, requested: int | None, mean_output_tokens: float) -> int:
    """`requested` when set; otherwise as many processes as the load needs (one event loop takes
    EVENTS_PER_SECOND_PER_WORKER or STREAMS_PER_WORKER), at most one per available CPU."""
    if requested is not None:
        return requested
    if load.mode is LoadMode.OPEN_LOOP:
        need = (load.request_rate or 0.0) * (1.0 + mean_output_tokens) / EVENTS_PER_SECOND_PER_WORKER
    else:
        need = (load.concurrency or 0) / STREAMS_PER_WORKER
    return max(1, min(available_cpus(), math.ceil(need)))


@dataclass(frozen=True)
class WorkerPlan:
    target: Target
    load: LoadPoint
    requests: Sequence[BenchRequest]
    """The measured prompts; request index i sends requests[i % len(requests)]."""
    warmup: Sequence[tuple[int, BenchRequest]]
    warmup_concurrency: int
    worker: int
    workers: int
    concurrency: int
    """Closed loop: this worker's users."""
    indices: np.ndarray | None = None
    """Open loop: the arrivals this worker sends (global indices) ..."""
    offsets: np.ndarray | None = None
    """... and when (seconds after the measured phase starts)."""


def plan_workers(
    target: Target,
    load: LoadPoint,
    warmup: Sequence[BenchRequest],
    measured: Sequence[BenchRequest],
    workers: int,
    seed: int,
) -> list[WorkerPlan]:
    """Split the load point between `workers` processes (see `schedule` for open-loop arrivals)."""
    closed = load.mode is LoadMode.CLOSED_LOOP
    share: list[tuple[np.ndarray | None, np.ndarray | None]] = [(None, None)] * workers
    if not closed:
        assert load.request_rate is not None
        offsets = arrival_offsets(load.request_rate, load.arrival, seed, load.requests, load.duration_seconds)
        share = [(i, offsets[i]) for i in assign_to_workers(offsets.size, workers, load.arrival, seed)]
    concurrency = load.concurrency or 1
    plans = []
    for w in range(workers):
        users = concurrency // workers + (1 if w < concurrency % workers else 0)
        plans.append(
            WorkerPlan(
                target=target,
                load=load,
                requests=measured,
                warmup=[(i, warmup[i]) for i in range(w, len(warmup), workers)],
                warmup_concurrency=max(users, 1) if closed else 1,
                worker=w,
                workers=workers,
                concurrency=users if closed else 0,
                indices=share[w][0],
                offsets=share[w][1],
            )
        )
    return plans


async def _warmup(client: ProtocolClient, plan: WorkerPlan, done: Callable[[], None]) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    pending = list(reversed(plan.warmup))

    async def user() -> None:
        while pending:
            index, request = pending.pop()
            record = RequestRecord(index=index, warmup=True, scheduled=clock())
            await client.send(request, record)
            records.append(record)
            done()

    await asyncio.gather(*(user() for _ in range(plan.warmup_concurrency)))
    return records


async def _closed_loop(
    client: ProtocolClient, plan: WorkerPlan, deadline: float | None, done: Callable[[], None]
) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    limit, requests = plan.load.requests, plan.requests
    next_index = plan.worker

    async def user() -> None:
        nonlocal next_index
        while (limit is None or next_index < limit) and (deadline is None or clock() < deadline):
            index = next_index
            next_index += plan.workers
            record = RequestRecord(index=index, warmup=False, scheduled=clock())
            await client.send(requests[index % len(requests)], record)
            records.append(record)
            done()

    await asyncio.gather(*(user() for _ in range(plan.concurrency)))
    return records


async def _open_loop(
    client: ProtocolClient, plan: WorkerPlan, start: float, done: Callable[[], None]
) -> list[RequestRecord]:
    assert plan.indices is not None and plan.offsets is not None
    records: list[RequestRecord] = []
    in_flight = asyncio.Semaphore(plan.load.max_in_flight)
    tasks: set[asyncio.Task[None]] = set()
    requests = plan.requests

    async def send(request: BenchRequest, record: RequestRecord) -> None:
        try:
            await client.send(request, record)
            records.append(record)
            done()
        finally:
            in_flight.release()

    for index, offset in zip(plan.indices.tolist(), plan.offsets.tolist(), strict=True):
        due = start + offset
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        await in_flight.acquire()
        record = RequestRecord(index=index, warmup=False, scheduled=due)
        task = asyncio.create_task(send(requests[index % len(requests)], record))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)
    return records


async def run_plan(
    plan: WorkerPlan, done: Callable[[], None], start_measured: Callable[[], float]
) -> list[RequestRecord]:
    """Warm-up, then `start_measured()` (the instant the measured phase begins), then the load."""
    async with make_client(plan.target, plan.load) as client:
        records = await _warmup(client, plan, done)
        start = start_measured()
        await asyncio.sleep(max(0.0, start - clock()))
        if plan.load.mode is LoadMode.CLOSED_LOOP:
            duration = plan.load.duration_seconds
            deadline = start + duration if duration is not None else None
            records += await _closed_loop(client, plan, deadline, done)
        else:
            records += await _open_loop(client, plan, start, done)
    return records


def _worker_main(
    plan: WorkerPlan,
    counter: Any,
    barrier: Any,
    start_at: Any,
    results: Any,
) -> None:
    """Entry point of a worker process; its records (or its error) go to `results`."""

    def done() -> None:
        with counter.get_lock():
            counter.value += 1

    def start_measured() -> float:
        with start_at.get_lock():  # the last worker to arrive sets the common start
            start_at.value = max(start_at.value, clock() + START_DELAY_SECONDS)
        barrier.wait()
        return float(start_at.value)

    try:
        results.put((plan.worker, asyncio.run(run_plan(plan, done, start_measured)), None))
    except BaseException as error:  # reported to the parent, which raises it
        barrier.abort()
        results.put((plan.worker, [], f"worker {plan.worker}: {type(error).__name__}: {error}"))


async def run_load_point(
    target: Target,
    load: LoadPoint,
    warmup: Sequence[BenchRequest],
    measured: Sequence[BenchRequest],
    workers: int,
    seed: int,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> list[RequestRecord]:
    """All records of the load point (warm-up ones flagged), from every worker, in index order."""
    plans = plan_workers(target, load, warmup, measured, workers, seed)
    if workers == 1:
        completed = 0

        def done() -> None:
            nonlocal completed
            completed += 1
            on_progress(completed)

        return _merge([await run_plan(plans[0], done, clock)])
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    counter, start_at = context.Value("q", 0), context.Value("d", 0.0)
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [
        context.Process(target=_worker_main, args=(plan, counter, barrier, start_at, results), daemon=True)
        for plan in plans
    ]
    for process in processes:
        process.start()
    loop = asyncio.get_running_loop()
    collected: dict[int, list[RequestRecord]] = {}
    try:
        while len(collected) < workers:
            on_progress(counter.value)
            try:
                worker, records, error = await loop.run_in_executor(None, results.get, True, 0.2)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes):
                    barrier.abort()
                    raise RuntimeError("a worker process died without reporting") from None
                continue
            if error is not None:
                raise RuntimeError(error)
            collected[worker] = records
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    on_progress(counter.value)
    return _merge(list(collected.values()))


def _merge(shares: list[list[RequestRecord]]) -> list[RequestRecord]:
    return sorted((r for share in shares for r in share), key=lambda r: (not r.warmup, r.index))
