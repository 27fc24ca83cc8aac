"""Where models, data, checkpoints and outputs live: local/PVC paths and Azure Blob Storage.

URIs (their grammar is ``modelfleet_api.storage``, checked when the config is read): `/local/path`,
`pvc://CLAIM/PATH` (mounted by the operator under PVC_MOUNT_ROOT/CLAIM), `az://CONTAINER/PATH`
(account from AZURE_STORAGE_ACCOUNT) and `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`.
Blob access authenticates with
azure-identity's DefaultAzureCredential, so AKS workload identity works without secrets;
AZURE_STORAGE_CONNECTION_STRING, when set, wins (Azurite, local runs).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelfleet_api import contract
from modelfleet_api.storage import BLOB_HOST_SUFFIX, BLOB_ONLY, FILE_SOURCES, StorageUri, UriKind, kind_of

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"


class StorageUriError(ValueError):
    """A URI this runtime cannot read or write."""


@dataclass(frozen=True)
class BlobLocation:
    account_url: str
    container: str
    prefix: str

    def child(self, name: str) -> BlobLocation:
        return BlobLocation(self.account_url, self.container, f"{self.prefix.rstrip('/')}/{name}".lstrip("/"))

    def __str__(self) -> str:
        return f"{self.account_url}/{self.container}/{self.prefix}"


def is_blob_uri(uri: str) -> bool:
    return kind_of(uri) is UriKind.BLOB


def is_local_uri(uri: str) -> bool:
    """A path in the pod: local, `file://` or `pvc://`."""
    return kind_of(uri) in (UriKind.LOCAL, UriKind.PVC)


def local_path(uri: str) -> Path:
    """The filesystem path of a local, `file://` or `pvc://` URI."""
    try:
        return StorageUri.parse(uri, FILE_SOURCES).local_path()
    except ValueError as error:
        raise StorageUriError(str(error)) from None


def blob_location(uri: str) -> BlobLocation:
    try:
        parts = StorageUri.parse(uri, BLOB_ONLY).blob()
    except ValueError as error:
        raise StorageUriError(str(error)) from None
    account = parts.account or os.environ.get(contract.ENV_STORAGE_ACCOUNT)
    if not account and not os.environ.get(ENV_CONNECTION_STRING):
        raise StorageUriError(f"{uri!r} needs env {contract.ENV_STORAGE_ACCOUNT} to name the account")
    account_url = f"https://{account}{BLOB_HOST_SUFFIX}" if account else ""
    return BlobLocation(account_url, parts.container, parts.path)


def check_uri(uri: str) -> None:
    """Raise StorageUriError for a blob URI this pod cannot reach (no account for `az://`); the
    grammar itself is checked when the config is read."""
    if is_blob_uri(uri):
        blob_location(uri)


def container_client(location: BlobLocation) -> ContainerClient:
    from azure.storage.blob import ContainerClient

    connection_string = os.environ.get(ENV_CONNECTION_STRING)
    if connection_string:
        return ContainerClient.from_connection_string(connection_string, location.container)
    from azure.identity import DefaultAzureCredential

    return ContainerClient(location.account_url, location.container, credential=DefaultAzureCredential())


def download_prefix(location: BlobLocation, destination: Path) -> Path:
    """Copy every blob under the location's prefix into `destination`, keeping relative paths."""
    client = container_client(location)
    prefix = f"{location.prefix}/" if location.prefix else ""
    for blob in client.list_blobs(name_starts_with=prefix):
        target = destination / blob.name[len(prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            client.download_blob(blob.name, max_concurrency=4).readinto(handle)
    return destination


def download_file(location: BlobLocation, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination, "wb") as handle:
        container_client(location).download_blob(location.prefix, max_concurrency=4).readinto(handle)
    return destination


def upload_file(location: BlobLocation, source: Path) -> None:
    with open(source, "rb") as handle:
        container_client(location).upload_blob(location.prefix, handle, overwrite=True, max_concurrency=4)


def upload_dir(source: Path, location: BlobLocation) -> list[tuple[str, int]]:
    """Upload every file under `source`; returns (relative path, size) of what was uploaded."""
    client = container_client(location)
    uploaded = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = path.relative_to(source).as_posix()
        with open(path, "rb") as handle:
            client.upload_blob(location.child(relative).prefix, handle, overwrite=True, max_concurrency=4)
        uploaded.append((relative, path.stat().st_size))
    return uploaded


def read_blob_text(location: BlobLocation) -> str | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return container_client(location).download_blob(location.prefix).readall().decode()
    except ResourceNotFoundError:
        return None


def write_blob_text(location: BlobLocation, text: str) -> None:
    container_client(location).upload_blob(location.prefix, text.encode(), overwrite=True)


def list_blob_sizes(location: BlobLocation) -> dict[str, int]:
    """Relative name -> size of every blob under the location's prefix."""
    prefix = f"{location.prefix}/" if location.prefix else ""
    return {
        blob.name[len(prefix) :]: blob.size
        for blob in container_client(location).list_blobs(name_starts_with=prefix)
    }


def delete_prefix(location: BlobLocation) -> None:
    client = container_client(location)
    prefix = f"{location.prefix}/" if location.prefix else ""
    names = [blob.name for blob in client.list_blobs(name_starts_with=prefix)]
    for start in range(0, len(names), 256):
        client.delete_blobs(*names[start : start + 256])
