"""When bytes reached this host's socket, not when this process got round to reading them.

Linux stamps every received packet (`SO_TIMESTAMPNS`, CLOCK_REALTIME) as the kernel queues it; a read
returns the stamp of the last packet it consumed. Converted to CLOCK_MONOTONIC (`time.perf_counter`'s
clock), it makes arrival times independent of how late the reading process was scheduled: on a busy
host a process can wake several milliseconds after its data arrived, and a timestamp taken at read time
would count that as server latency. Where the kernel gives no stamp, the read time is used.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("qq")
ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size)
_REALTIME = time.CLOCK_REALTIME
_realtime_ns = time.clock_gettime_ns
_monotonic_ns = time.perf_counter_ns


def enable_rx_timestamps(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not Linux: recv_stamped falls back to the read time
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def recv_stamped(sock: socket.socket, size: int) -> tuple[bytes, int]:
    """One non-blocking read: (data, arrival in perf_counter nanoseconds). Raises BlockingIOError when
    nothing is there; b"" means the peer closed."""
    data, ancillary, _flags, _address = sock.recvmsg(size, ANCILLARY_BYTES)
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= _TIMESPEC.size:
            seconds, nanos = _TIMESPEC.unpack_from(raw)
            return data, seconds * 1_000_000_000 + nanos - (_realtime_ns(_REALTIME) - _monotonic_ns())
    return data, _monotonic_ns()
