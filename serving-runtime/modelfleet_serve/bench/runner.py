"""Drive one load point: warm-up, then the measured phase, in one or several worker processes.

Each worker runs its own event loop and connection pool over its share of the load (a share of the
concurrency, or a Poisson process at a share of the rate; superposed Poisson processes are Poisson
at the summed rate). The hot path only sends, timestamps and stores; metrics come afterwards.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from modelfleet_api.benchmark import ArrivalProcess, KServeSettings, LoadMode, LoadPoint, Protocol

from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord
from modelfleet_serve.bench.schedule import arrival_offsets

clock = time.perf_counter
WORKER_START_SLACK_SECONDS = 2.0
"""Worker processes start this long after being planned, so all begin the measured phase together."""


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
    from modelfleet_serve.bench.protocols.kserve import KServeClient

    return KServeClient(
        target.url,
        target.model,
        grpc=target.protocol is Protocol.KSERVE_V2_GRPC,
        settings=target.kserve,
        timeout_seconds=load.request_timeout_seconds,
        max_connections=load.max_in_flight,
    )


@dataclass(frozen=True)
class WorkerPlan:
    target: Target
    load: LoadPoint
    warmup: Sequence[BenchRequest]
    measured: Sequence[BenchRequest]
    """This worker's measured requests, sent in order (cycled when bounded by duration only)."""
    concurrency: int
    rate: float
    arrival_seed: int
    arrival_shift: float
    """Constant arrivals: this worker's offset within the combined schedule."""
    start_at: float


async def _closed_loop(
    client: ProtocolClient,
    requests: Sequence[BenchRequest],
    limit: int | None,
    concurrency: int,
    deadline: float | None,
    warmup: bool,
    done: Callable[[], None],
) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    next_index = 0

    async def user() -> None:
        nonlocal next_index
        while (limit is None or next_index < limit) and (deadline is None or clock() < deadline):
            index = next_index
            next_index += 1
            record = RequestRecord(index=index, warmup=warmup, scheduled=clock())
            await client.send(requests[index % len(requests)], record)
            records.append(record)
            done()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return records


async def _open_loop(
    client: ProtocolClient,
    requests: Sequence[BenchRequest],
    offsets: np.ndarray,
    max_in_flight: int,
    deadline: float | None,
    warmup: bool,
    done: Callable[[], None],
) -> list[RequestRecord]:
    records: list[RequestRecord] = []
    in_flight = asyncio.Semaphore(max_in_flight)
    tasks: set[asyncio.Task[None]] = set()

    async def send(request: BenchRequest, record: RequestRecord) -> None:
        try:
            await client.send(request, record)
            records.append(record)
            done()
        finally:
            in_flight.release()

    start = clock()
    for index, offset in enumerate(offsets.tolist()):
        due = start + offset
        if deadline is not None and due >= deadline:
            break
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        await in_flight.acquire()
        record = RequestRecord(index=index, warmup=warmup, scheduled=due)
        task = asyncio.create_task(send(requests[index % len(requests)], record))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)
    return records


async def run_plan(plan: WorkerPlan, done: Callable[[], None]) -> list[RequestRecord]:
    load = plan.load
    async with make_client(plan.target, load) as client:
        if plan.warmup:
            await _closed_loop(
                client, plan.warmup, len(plan.warmup), max(plan.concurrency, 1), None, True, done
            )
        await asyncio.sleep(max(0.0, plan.start_at - clock()))
        deadline = clock() + load.duration_seconds if load.duration_seconds is not None else None
        limit = len(plan.measured) if load.requests is not None else None
        if load.mode is LoadMode.CLOSED_LOOP:
            if plan.concurrency == 0:
                return []
            return await _closed_loop(client, plan.measured, limit, plan.concurrency, deadline, False, done)
        count = limit if limit is not None else int(plan.rate * (load.duration_seconds or 0) * 1.5) + 16
        offsets = arrival_offsets(plan.rate, count, load.arrival, plan.arrival_seed) + plan.arrival_shift
        return await _open_loop(client, plan.measured, offsets, load.max_in_flight, deadline, False, done)


def _split(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def plan_workers(
    target: Target,
    load: LoadPoint,
    warmup: Sequence[BenchRequest],
    measured: Sequence[BenchRequest],
    workers: int,
    seed: int,
    start_at: float,
) -> list[WorkerPlan]:
    """Split the load point between `workers` processes."""
    plans = []
    for w in range(workers):
        rate = (load.request_rate or 0.0) / workers
        shift = w / (load.request_rate or 1.0) if load.arrival is ArrivalProcess.CONSTANT else 0.0
        plans.append(
            WorkerPlan(
                target=target,
                load=load,
                warmup=warmup[w::workers],
                measured=measured[w::workers],
                concurrency=_split(load.concurrency or 0, workers, w)
                if load.mode is LoadMode.CLOSED_LOOP
                else 0,
                rate=rate,
                arrival_seed=seed + 1000 * w,
                arrival_shift=shift,
                start_at=start_at,
            )
        )
    return plans


def _run_in_process(
    plan: WorkerPlan, counter: multiprocessing.sharedctypes.Synchronized[int]
) -> list[RequestRecord]:
    def done() -> None:
        with counter.get_lock():
            counter.value += 1

    return asyncio.run(run_plan(plan, done))


async def run_load_point(
    target: Target,
    load: LoadPoint,
    warmup: Sequence[BenchRequest],
    measured: Sequence[BenchRequest],
    workers: int,
    seed: int,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> list[RequestRecord]:
    """All records of the load point (warm-up ones flagged), from every worker."""
    if workers == 1:
        completed = 0

        def done() -> None:
            nonlocal completed
            completed += 1
            on_progress(completed)

        (plan,) = plan_workers(target, load, warmup, measured, 1, seed, clock())
        return await run_plan(plan, done)
    context = multiprocessing.get_context("spawn" if os.name != "posix" else "forkserver")
    counter = context.Value("q", 0)
    plans = plan_workers(target, load, warmup, measured, workers, seed, clock() + WORKER_START_SLACK_SECONDS)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_share, initargs=(counter,)) as pool:
        futures = [loop.run_in_executor(pool, _run_shared, plan) for plan in plans]
        while not all(f.done() for f in futures):
            on_progress(counter.value)
            await asyncio.wait(futures, timeout=0.2)
        on_progress(counter.value)
        return [record for f in futures for record in f.result()]


_counter: multiprocessing.sharedctypes.Synchronized[int] | None = None


def _share(counter: multiprocessing.sharedctypes.Synchronized[int]) -> None:
    global _counter
    _counter = counter


def _run_shared(plan: WorkerPlan) -> list[RequestRecord]:
    assert _counter is not None
    return _run_in_process(plan, _counter)
