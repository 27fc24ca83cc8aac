"""The interface of a protocol adapter: send one request, record what happened."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from modelfleet_serve.bench.records import BenchRequest, RequestRecord


class ProtocolClient(ABC):
    """One per worker process; reused for every request (connection reuse)."""

    @abstractmethod
    async def send(self, request: BenchRequest, record: RequestRecord) -> None:
        """Send the request and fill in `record` (start, chunk times, text, end, usage or error).
        Never raises for a failed request: the failure goes into `record.error`."""

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> ProtocolClient:
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()
