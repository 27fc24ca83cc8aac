"""The node cache with real processes and real blob storage (Azurite): two workers on one node that want
the same model download it once, the second waiting for the first; a later run (a gang restart, the next
job on the node) finds it without downloading."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from modelfleet_api import contract
from modelfleet_train import storage
from modelfleet_train.node_cache import entry_key

from tests.runtime.conftest import TinyAssets

pytestmark = pytest.mark.runtime

RESOLVE = (
    "import logging, sys; logging.basicConfig(level=logging.INFO, format='%(name)s %(message)s');"
    " from modelfleet_api.training import ModelSource; from modelfleet_train.model_loading import resolve;"
    " print('resolved', resolve(ModelSource(uri=sys.argv[1])), flush=True)"
)


def resolver(uri: str, cache: Path, connection: str) -> subprocess.Popen[str]:
    env = {**os.environ, contract.ENV_CACHE_DIR: str(cache), storage.ENV_CONNECTION_STRING: connection}
    return subprocess.Popen(
        [sys.executable, "-c", RESOLVE, uri],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def output_of(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    return output


def test_two_workers_download_a_model_once_and_a_later_run_reuses_it(
    azurite: str, tiny: TinyAssets, tmp_path: Path
) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite)
    if not service.get_container_client("models").exists():
        service.create_container("models")
    uri = "az://models/cached-tiny"
    os.environ[storage.ENV_CONNECTION_STRING] = azurite
    try:
        storage.upload_dir(tiny.model, storage.blob_location(uri))
        # padding, so the first download lasts long enough for the second worker to arrive during it
        storage.write_blob_text(storage.blob_location(f"{uri}/padding.bin"), "0" * (64 << 20))
    finally:
        del os.environ[storage.ENV_CONNECTION_STRING]
    cache = tmp_path / "node-cache"
    partial = cache / "models" / f"{entry_key(uri)}.partial"

    first = resolver(uri, cache, azurite)
    deadline = time.monotonic() + 120
    while not partial.exists():  # the first worker is downloading
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
        time.sleep(0.05)
    second = resolver(uri, cache, azurite)
    first_output, second_output = output_of(first), output_of(second)

    downloads = [
        line for line in (first_output + second_output).splitlines() if "into the node cache" in line
    ]
    assert len(downloads) == 1 and "downloading az://models/cached-tiny" in first_output, downloads
    entry = cache / "models" / entry_key(uri)
    assert f"resolved {entry}" in first_output and f"resolved {entry}" in second_output
    assert (entry / "config.json").read_text() == (tiny.model / "config.json").read_text()
    assert (entry / "padding.bin").stat().st_size == 64 << 20

    later = output_of(resolver(uri, cache, azurite))
    assert f"resolved {entry}" in later and "into the node cache" not in later
