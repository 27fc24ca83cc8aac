"""The node cache's bookkeeping on a plain directory (``modelfleet_train.node_cache``): entries are
filled once and atomically, a killed download leaves nothing behind, the cap removes what was used
longest ago, and pods' scratch directories go with their pods."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from modelfleet_train.node_cache import NodeCache, entry_key, pod_scratch

pytestmark = pytest.mark.unit


def writer(content: bytes, calls: list[str]):  # type: ignore[no-untyped-def]
    def fetch(target: Path) -> None:
        calls.append(target.name)
        (target / "weights.bin").write_bytes(content)

    return fetch


def test_an_entry_is_fetched_once_and_reused(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path)
    calls: list[str] = []
    first = cache.fill("models", "az://models/a", writer(b"a" * 10, calls))
    again = cache.fill("models", "az://models/a", writer(b"b" * 10, calls))
    assert first == again == tmp_path / "models" / entry_key("az://models/a")
    assert calls == [f"{entry_key('az://models/a')}.partial"]  # fetched into a partial directory, once
    assert (first / "weights.bin").read_bytes() == b"a" * 10


def test_a_download_cut_short_is_redone_from_scratch(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path)

    def dies(target: Path) -> None:
        (target / "weights.bin").write_bytes(b"half")
        raise ConnectionError("connection reset")

    with pytest.raises(ConnectionError):
        cache.fill("models", "az://models/a", dies)
    assert not cache.entry("models", "az://models/a").exists()
    calls: list[str] = []
    entry = cache.fill("models", "az://models/a", writer(b"whole", calls))
    assert sorted(p.name for p in entry.iterdir()) == [".complete", "weights.bin"]
    assert not (tmp_path / "models" / f"{entry_key('az://models/a')}.partial").exists()


def test_the_cap_removes_the_entries_used_longest_ago_but_not_one_in_use(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path, max_bytes=250)
    for name in ("a", "b", "c"):
        cache.fill("datasets", f"az://data/{name}", writer(b"x" * 100, []))
        time.sleep(0.01)  # distinct use times
    # a was used longest ago and went when c came; using b now makes c the oldest
    assert not cache.entry("datasets", "az://data/a").exists()
    cache.fill("datasets", "az://data/b", writer(b"", []))
    lock = cache.entry("datasets", "az://data/c").with_name(entry_key("az://data/c") + ".lock")
    fd = os.open(lock, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is busy with c
    try:
        cache.fill("models", "az://models/d", writer(b"x" * 100, []))
        assert cache.entry("datasets", "az://data/c").exists()  # skipped: locked
        assert not cache.entry("datasets", "az://data/b").exists()
    finally:
        os.close(fd)
    assert [p.name for p in cache.entries()] == [entry_key("az://data/c"), entry_key("az://models/d")]


def test_a_pods_scratch_stays_while_its_processes_live_and_goes_after(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from modelfleet_train.node_cache import pod_scratch;"
            " pod_scratch(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        env={**os.environ, "POD_NAME": "tiny-1-alive"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        (tmp_path / "pods" / "tiny-0-gone").mkdir()
        (tmp_path / "pods" / "tiny-0-gone" / "step-00000100").mkdir()
        (tmp_path / "pods" / "tiny-0-gone.lock").touch()  # its pod's processes have exited
        os.environ["POD_NAME"] = "tiny-2-new"
        try:
            mine = pod_scratch(tmp_path)
        finally:
            del os.environ["POD_NAME"]
        assert mine == tmp_path / "pods" / "tiny-2-new"
        assert sorted(p.name for p in (tmp_path / "pods").iterdir() if p.is_dir()) == [
            "tiny-1-alive",
            "tiny-2-new",
        ]
    finally:
        holder.kill()
        holder.wait()
