"""Drive one load point: warm-up, then the measured phase, in one or several worker processes.

What users send are sessions (`records.Session`: a conversation, or one request). Sessions are
numbered in the order they start, and their requests carry consecutive global indices
(`schedule.SessionPlan`), so a request limit is met exactly: open loop, session n starts at the n-th
arrival of the schedule (`schedule`); closed loop, worker w of W starts sessions w, w+W, ..., each
user one after another. A request's planned time is its arrival, or the previous reply's end of the
same user plus the think time: how late it was really sent is the schedule lag that tells whether the
client kept up. Workers run their own event loop and connection pool, meet at a barrier after their
warm-up, start the measured phase at the same instant and send back their records, which are merged by
index. The hot path only sends, timestamps and stores; metrics come afterwards.
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
from modelfleet_api.benchmark import ArrivalProcess, KServeSettings, LoadMode, LoadPoint, Protocol

from modelfleet_serve.bench.engine_metrics import EngineCounters, read_engine_counters
from modelfleet_serve.bench.protocols.base import ProtocolClient
from modelfleet_serve.bench.records import BenchRequest, RequestRecord
from modelfleet_serve.bench.schedule import SessionPlan, arrival_offsets, assign_to_workers

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
    host: str | None = None
    """The ``Host`` header (``targetHost``); None: the URL's."""


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
            host=target.host,
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
        host=target.host,
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
    sessions: SessionPlan
    """The measured sessions; session number n sends sessions.session(n)."""
    warmup: Sequence[tuple[int, BenchRequest]]
    warmup_concurrency: int
    worker: int
    workers: int
    concurrency: int
    """Closed loop: this worker's users."""
    numbers: np.ndarray | None = None
    """Open loop: the sessions this worker starts (their numbers) ..."""
    offsets: np.ndarray | None = None
    """... and when (seconds after the measured phase starts)."""
    engine_metrics_url: str | None = None
    """Read the engine's counters here just before the measured phase (worker 0 only)."""


def open_loop_offsets(load: LoadPoint, sessions: SessionPlan, seed: int) -> np.ndarray:
    """When each session starts: the arrival process, or with `arrival: trace` the recorded times.
    Bounded by the request count, the sessions hold exactly that many requests."""
    assert load.request_rate is not None
    count = len(sessions.sessions) if load.requests else None
    if load.arrival is ArrivalProcess.TRACE:
        offsets = sessions.trace_offsets(load.request_rate, None if count else load.duration_seconds)
        return offsets if load.duration_seconds is None else offsets[offsets < load.duration_seconds]
    return arrival_offsets(load.request_rate, load.arrival, seed, count, load.duration_seconds)


def plan_workers(
    target: Target,
    load: LoadPoint,
    warmup: Sequence[BenchRequest],
    sessions: SessionPlan,
    workers: int,
    seed: int,
    engine_metrics_url: str | None = None,
) -> list[WorkerPlan]:
    """Split the load point between `workers` processes (see `schedule` for open-loop arrivals)."""
    closed = load.mode is LoadMode.CLOSED_LOOP
    share: list[tuple[np.ndarray | None, np.ndarray | None]] = [(None, None)] * workers
    if not closed:
        offsets = open_loop_offsets(load, sessions, seed)
        share = [(i, offsets[i]) for i in assign_to_workers(offsets.size, workers, load.arrival, seed)]
    concurrency = load.concurrency or 1
    plans = []
    for w in range(workers):
        users = concurrency // workers + (1 if w < concurrency % workers else 0)
        plans.append(
            WorkerPlan(
                target=target,
                load=load,
                sessions=sessions,
                warmup=[(i, warmup[i]) for i in range(w, len(warmup), workers)],
                warmup_concurrency=max(users, 1) if closed else 1,
                worker=w,
                workers=workers,
                concurrency=users if closed else 0,
                numbers=share[w][0],
                offsets=share[w][1],
                engine_metrics_url=engine_metrics_url if w == 0 else None,
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


@dataclass
class SessionRun:
    """What a worker's users share while they send sessions."""

    client: ProtocolClient
    plan: WorkerPlan
    deadline: float | None
    done: Callable[[], None]
    records: list[RequestRecord]
    in_flight: asyncio.Semaphore | None = None
    """Open loop: at most `maxInFlight` requests outstanding."""

    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        slots = self.in_flight
        if slots is None:
            await self.client.send(request, record)
        else:
            record.queued = slots.locked()
            async with slots:
                await self.client.send(request, record)
        self.records.append(record)
        self.done()

    async def session(self, number: int, due: float) -> float:
        """Send session `number`'s turns, the first at `due`, each later one its think time after the
        previous reply, with the conversation so far; returns when the last reply ended. A failed
        turn ends its session; no turn starts at or past the request limit or the deadline."""
        plan, limit = self.plan, self.plan.load.requests
        session = plan.sessions.session(number)
        index = plan.sessions.first_index(number)
        request = session.turns[0]
        end, reply = due, ""
        for turn in range(len(session.turns)):
            if turn:
                if limit is not None and index + turn >= limit:
                    break
                due = end + session.think_seconds[turn - 1]
                delay = due - clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.deadline is not None and clock() >= self.deadline:
                    break
                history = (*request.history, ("user", request.prompt), ("assistant", reply))
                following = session.turns[turn]
                request = BenchRequest(
                    following.prompt, following.max_tokens, following.prompt_tokens, history
                )
            record = RequestRecord(index=index + turn, warmup=False, scheduled=due, session=number, turn=turn)
            await self.send(request, record)
            end, reply = record.end or clock(), record.text
            if not record.ok:
                break
        return end


async def _closed_loop(run: SessionRun, start: float) -> None:
    """Each user sends one session after another; worker w of W starts sessions w, w+W, ..."""
    plan, limit = run.plan, run.plan.load.requests
    next_number = plan.worker

    async def user() -> None:
        nonlocal next_number
        ready = start
        while (limit is None or plan.sessions.first_index(next_number) < limit) and (
            run.deadline is None or clock() < run.deadline
        ):
            number = next_number
            next_number += plan.workers
            ready = await run.session(number, ready)

    await asyncio.gather(*(user() for _ in range(plan.concurrency)))


async def _open_loop(run: SessionRun, start: float) -> None:
    """Start this worker's sessions at their arrival times, whatever is still outstanding. One-request
    sessions take the short path: a task per request, sent without a session's bookkeeping."""
    plan = run.plan
    assert plan.numbers is not None and plan.offsets is not None
    in_flight = run.in_flight
    assert in_flight is not None
    tasks: set[asyncio.Task[Any]] = set()
    sessions, single = plan.sessions, plan.sessions.single_turn
    records, client, done = run.records, run.client, run.done

    async def send(request: BenchRequest, record: RequestRecord) -> None:
        try:
            await client.send(request, record)
            records.append(record)
            done()
        finally:
            in_flight.release()

    for number, offset in zip(plan.numbers.tolist(), plan.offsets.tolist(), strict=True):
        due = start + offset
        delay = due - clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if single:
            queued = in_flight.locked()
            await in_flight.acquire()
            index = sessions.first_index(number)
            record = RequestRecord(index=index, warmup=False, scheduled=due, session=number, queued=queued)
            task: asyncio.Task[Any] = asyncio.create_task(send(sessions.session(number).turns[0], record))
        else:
            task = asyncio.create_task(run.session(number, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*tasks)


async def run_plan(
    plan: WorkerPlan, done: Callable[[], None], start_measured: Callable[[], float]
) -> list[RequestRecord]:
    """Warm-up, then `start_measured()` (the instant the measured phase begins), then the load."""
    async with make_client(plan.target, plan.load) as client:
        records = await _warmup(client, plan, done)
        start = start_measured()
        await asyncio.sleep(max(0.0, start - clock()))
        closed = plan.load.mode is LoadMode.CLOSED_LOOP
        duration = plan.load.duration_seconds
        run = SessionRun(
            client,
            plan,
            deadline=start + duration if duration is not None else None,
            done=done,
            records=records,
            in_flight=None if closed else asyncio.Semaphore(plan.load.max_in_flight),
        )
        await (_closed_loop(run, start) if closed else _open_loop(run, start))
    return records


@dataclass(repr=False)
class PointRecords:
    """Every record of a load point (warm-up ones flagged) in index order, and the engine's counters
    read just before its measured phase."""

    records: list[RequestRecord]
    counters_before: EngineCounters | None = None

    def __repr__(self) -> str:
        # short: as `asyncio.run`'s result it is repr'd whole when the runner restores the SIGINT
        # handler (Python 3.11 formats its main task, result included), some µs per record
        return f"PointRecords({len(self.records)} records)"


def _worker_main(
    plan: WorkerPlan,
    counter: Any,
    barrier: Any,
    start_at: Any,
    results: Any,
) -> None:
    """Entry point of a worker process; its records (or its error) go to `results`."""
    before: list[EngineCounters | None] = [None]

    def done() -> None:
        with counter.get_lock():
            counter.value += 1

    def start_measured() -> float:
        barrier.wait()  # every worker finished its warm-up
        if plan.worker == 0:
            before[0] = read_engine_counters(plan.engine_metrics_url)
            start_at.value = clock() + START_DELAY_SECONDS
        barrier.wait()
        return float(start_at.value)

    try:
        records = asyncio.run(run_plan(plan, done, start_measured))
        results.put((plan.worker, records, before[0], None))
    except BaseException as error:  # reported to the parent, which raises it
        barrier.abort()
        results.put((plan.worker, [], None, f"worker {plan.worker}: {type(error).__name__}: {error}"))


async def run_load_point(
    target: Target,
    load: LoadPoint,
    warmup: Sequence[BenchRequest],
    sessions: SessionPlan,
    workers: int,
    seed: int,
    on_progress: Callable[[int], None] = lambda _n: None,
    engine_metrics_url: str | None = None,
) -> PointRecords:
    """All records of the load point, from every worker."""
    plans = plan_workers(target, load, warmup, sessions, workers, seed, engine_metrics_url)
    if workers == 1:
        completed = 0
        before: list[EngineCounters | None] = [None]

        def done() -> None:
            nonlocal completed
            completed += 1
            on_progress(completed)

        def start_now() -> float:
            before[0] = read_engine_counters(engine_metrics_url)
            return clock()

        records = await run_plan(plans[0], done, start_now)
        return PointRecords(_merge([records]), before[0])
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
    counters: EngineCounters | None = None
    try:
        while len(collected) < workers:
            on_progress(counter.value)
            try:
                worker, records, before_measured, error = await loop.run_in_executor(
                    None, results.get, True, 0.2
                )
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in processes):
                    barrier.abort()
                    raise RuntimeError("a worker process died without reporting") from None
                continue
            if error is not None:
                raise RuntimeError(error)
            collected[worker] = records
            counters = counters or before_measured
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
    on_progress(counter.value)
    return PointRecords(_merge(list(collected.values())), counters)


def _merge(shares: list[list[RequestRecord]]) -> list[RequestRecord]:
    return sorted((r for share in shares for r in share), key=lambda r: (not r.warmup, r.index))
