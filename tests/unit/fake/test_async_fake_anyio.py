"""The async fake under anyio's pytest plugin (asyncio backend)."""

from __future__ import annotations

import pytest
from fakepods import pod
from test_async_fake import scripted, until_terminated

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_anyio_plugin_runs_the_fake() -> None:
    """An anyio test awaits the fake's virtual time as a pytest-asyncio one does."""
    cluster = scripted(after=600.0)
    await cluster.async_backend.create(pod("p"))
    await until_terminated(cluster)
    assert cluster.async_backend.clock.monotonic() == pytest.approx(601.0)
