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
SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
_TX_FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11)
"""SOF_TIMESTAMPING_TX_SOFTWARE | SOFTWARE | OPT_ID | OPT_TSONLY: a stamp when each send's last byte
leaves for the device, keyed by that byte's offset in the stream."""
_SO_EE_ORIGIN_TIMESTAMPING = 4
_SCM_TSTAMP_SND = 0
_RECVERR = {(socket.IPPROTO_IP, 11), (socket.IPPROTO_IPV6, 25)}  # IP_RECVERR, IPV6_RECVERR
_TIMESPEC = struct.Struct("qq")
_EXTENDED_ERR = struct.Struct("IBBBBII")  # struct sock_extended_err
ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(3 * _TIMESPEC.size)
_REALTIME = time.CLOCK_REALTIME
_realtime_ns = time.clock_gettime_ns
_monotonic_ns = time.perf_counter_ns


def enable_rx_timestamps(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not Linux: recv_stamped falls back to the read time
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)


def enable_tx_timestamps(sock: socket.socket) -> bool:
    """Ask for a kernel stamp of every send (read them with `sent_stamps`); False where unsupported."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, _TX_FLAGS)
    except OSError:
        return False
    return True


def _to_monotonic_ns(raw: bytes) -> int:
    seconds: int
    nanos: int
    seconds, nanos = _TIMESPEC.unpack_from(raw)
    return seconds * 1_000_000_000 + nanos - (_realtime_ns(_REALTIME) - _monotonic_ns())


def sent_stamps(sock: socket.socket) -> dict[int, int]:
    """Drain the socket's error queue: {offset of a send's last byte in the stream: when the kernel
    handed it to the device, perf_counter ns}. Sends on loopback are stamped before `send` returns."""
    stamps: dict[int, int] = {}
    while True:
        try:
            _data, ancillary, _flags, _address = sock.recvmsg(0, 512, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            return stamps
        when, key = None, None
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING:
                when = _to_monotonic_ns(raw)  # the first of three timespecs is the software stamp
            elif (level, kind) in _RECVERR:
                _errno, origin, _type, _code, _pad, info, data = _EXTENDED_ERR.unpack_from(raw)
                if origin == _SO_EE_ORIGIN_TIMESTAMPING and info == _SCM_TSTAMP_SND:
                    key = data
        if when is not None and key is not None:
            stamps[key] = when


def recv_stamped(sock: socket.socket, size: int) -> tuple[bytes, int]:
    """One non-blocking read: (data, arrival in perf_counter nanoseconds). Raises BlockingIOError when
    nothing is there; b"" means the peer closed."""
    data, ancillary, _flags, _address = sock.recvmsg(size, ANCILLARY_BYTES)
    for level, kind, raw in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= _TIMESPEC.size:
            return data, _to_monotonic_ns(raw)
    return data, _monotonic_ns()
