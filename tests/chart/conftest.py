from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.chart import helm


@pytest.fixture(scope="session", autouse=True)
def _helm_home() -> Iterator[None]:
    yield
    helm.cleanup()
