"""Azure Blob Storage end to end against Azurite (Microsoft's storage emulator, from npm).

The model and dataset are read from blob, checkpoints and the final model written to it, through
the same azure-storage-blob code that uses DefaultAzureCredential on AKS (here a connection
string points it at the emulator). The checkpoint store's completeness rules are checked on blobs.
The training run is the runtime's Trainer in the session's shared one-rank launch
(tests.runtime.shared_launches): reading from and writing to blob is the Trainer's, not the command
line's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelfleet_train import storage
from modelfleet_train.checkpoints import BlobStore, choose_resume_step

from tests.runtime.conftest import TinyAssets, runtime_config, step_losses
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime


def create_containers(connection_string: str) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(connection_string)
    for container in ("models", "runs"):
        if not service.get_container_client(container).exists():
            service.create_container(container)


@pytest.fixture
def blob_env(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(storage.ENV_CONNECTION_STRING, azurite)
    create_containers(azurite)
    return azurite


def test_blob_checkpoint_store_publishes_atomically_and_rejects_torn_checkpoints(
    blob_env: str, tmp_path: Path
) -> None:
    store = BlobStore(storage.blob_location("az://runs/store-test/checkpoints"), tmp_path / "staging")
    for step in (10, 20):
        directory = store.write_dir(step)
        (directory / "state").mkdir(parents=True)
        (directory / "state" / "shard.bin").write_bytes(bytes(1000 + step))
        (directory / "trainer_state.json").write_text(json.dumps({"step": step}))
        store.publish(step, store.publish_files(step))
    assert store.latest() == 20 and store.steps() == [10, 20] and store.problem(20) is None

    torn = store.location.child("step-00000020/state/shard.bin")
    storage.write_blob_text(torn, "short")  # a later overwrite cut short
    assert store.problem(20) == "state/shard.bin has 5 bytes, the manifest says 1020"
    assert choose_resume_step(store.latest(), store.steps(), store.problem) == 10
    fetched = store.fetch(10)
    assert (fetched / "state" / "shard.bin").read_bytes() == bytes(1010)
    store.delete(20)
    assert store.steps() == [10]


@shared_case(nproc=1)
def blob_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    """The model and data uploaded first; the run's connection string is the Azurite one."""
    azurite: str = request.getfixturevalue("azurite")
    tiny: TinyAssets = request.getfixturevalue("tiny")
    with pytest.MonkeyPatch.context() as monkeypatch:  # for the uploads, as blob_env does
        monkeypatch.setenv(storage.ENV_CONNECTION_STRING, azurite)
        create_containers(azurite)
        storage.upload_dir(tiny.model, storage.blob_location("az://models/tiny"))
        storage.upload_file(storage.blob_location("az://models/data/train.jsonl"), tiny.instructions)
    config = runtime_config(
        tiny,
        directory / "unused",
        model={"uri": "az://models/tiny"},
        dataset={"uri": "az://models/data/train.jsonl", "format": "jsonl"},
        checkpoint={"uri": "az://runs/blob-run/checkpoints", "intervalSteps": 2, "keepLast": 2},
        topology={"nodes": 1, "gpusPerNode": 1},
    )
    config["output"] = {"uri": "az://runs/blob-run/model"}
    config["hyperparameters"]["maxSteps"] = 6
    return Case(directory, [Run("train", config, env={storage.ENV_CONNECTION_STRING: azurite})])


def test_training_reads_model_and_data_from_blob_and_writes_checkpoints_and_model_there(
    blob_env: str, shared_trainer_runs: SharedLaunches, tmp_path: Path
) -> None:
    shared_trainer_runs.case(blob_case).check()

    store = BlobStore(storage.blob_location("az://runs/blob-run/checkpoints"), tmp_path / "staging")
    assert store.latest() == 6
    assert store.steps() == [4, 6]  # keepLast 2
    output = storage.download_prefix(storage.blob_location("az://runs/blob-run/model"), tmp_path / "model")
    assert len(step_losses(output)) == 6
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(output).config.num_hidden_layers == 2
