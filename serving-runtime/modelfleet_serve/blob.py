"""Azure Blob Storage for the serving runtime: URI parsing and one container-client factory, shared by the
model cache (downloads) and the benchmark client's result sink (uploads).

URIs: `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`, or `az://CONTAINER/PATH` with the
account in AZURE_STORAGE_ACCOUNT. Credentials: a connection string in AZURE_STORAGE_CONNECTION_STRING
when set (Azurite, SAS), otherwise DefaultAzureCredential (AKS workload identity).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelfleet_api.contract import ENV_STORAGE_ACCOUNT
from modelfleet_api.storage import BLOB_HOST_SUFFIX, StorageUri, UriKind, kind_of

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

ENV_CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"


@dataclass(frozen=True)
class BlobLocation:
    account_url: str
    container: str
    prefix: str

    def blob_name(self, name: str) -> str:
        """The full name of blob `name` under this prefix."""
        return f"{self.prefix.strip('/')}/{name}".lstrip("/")

    def __str__(self) -> str:
        return f"{self.account_url}/{self.container}/{self.prefix}".rstrip("/")


def parse_blob_uri(uri: str, field: str, *, require_path: bool = True) -> BlobLocation | None:
    """The blob location of an `https://ACCOUNT.blob.core.windows.net/...` or `az://...` URI, else None.

    `require_path`: the URI must name a path inside the container (a model); without it the container
    alone is a valid prefix (a place to write files under)."""
    if kind_of(uri) is not UriKind.BLOB:
        return None
    parts = StorageUri(uri, UriKind.BLOB).blob()
    account = parts.account or os.environ.get(ENV_STORAGE_ACCOUNT)
    if not account:
        raise ValueError(f"{field}: {uri} is an az:// URI but {ENV_STORAGE_ACCOUNT} is not set")
    if require_path and not parts.path:
        raise ValueError(f"{field}: {uri} must name a container and a path inside it")
    return BlobLocation(f"https://{account}{BLOB_HOST_SUFFIX}", parts.container, parts.path)


def container_client(location: BlobLocation) -> ContainerClient:
    """A client of the location's container, with the connection string or workload identity."""
    from azure.storage.blob import ContainerClient

    connection_string = os.environ.get(ENV_CONNECTION_STRING)
    if connection_string:
        return ContainerClient.from_connection_string(connection_string, location.container)
    from azure.identity import DefaultAzureCredential

    return ContainerClient(location.account_url, location.container, credential=DefaultAzureCredential())


def upload_files(location: BlobLocation, files: Sequence[Path]) -> list[str]:
    """Upload each file as `<prefix>/<file name>` (overwriting); the blob names written."""
    client = container_client(location)
    names = []
    for path in files:
        name = location.blob_name(path.name)
        with path.open("rb") as source:
            client.upload_blob(name, source, overwrite=True, max_concurrency=4)
        names.append(name)
    return names
