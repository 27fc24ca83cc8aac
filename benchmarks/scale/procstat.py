"""CPU time and memory of a process, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    """User plus system CPU time since the process started."""
    peak_rss_bytes: int
    """Peak resident set (``VmHWM``) since the process started or its last ``reset_peak``."""
    rss_bytes: int


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name: proc(5)'s field N is index N - 3."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` since it started."""
    fields = stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of proc(5)


def usage(pid: int) -> Usage:
    cpu = cpu_seconds(pid)
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return Usage(cpu, _kib(status.get("VmHWM", "0 kB")), _kib(status.get("VmRSS", "0 kB")))


def reset_peak(pid: int) -> None:
    """Starts a new ``VmHWM`` window (``clear_refs`` value 5, Linux 4.0+)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def _kib(value: str) -> int:
    return int(value.strip().split()[0]) * 1024
