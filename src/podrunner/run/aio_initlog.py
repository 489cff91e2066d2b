"""Read a failed init container's log once, from coroutines (see :mod:`.initlog`)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from podrunner.errors import BackendError
from podrunner.run.initlog import TAIL_LINES, text_of

if TYPE_CHECKING:
    from podrunner.run.aio_retry import AsyncRetryingBackend

__all__ = ["aread_init_log"]


async def aread_init_log(
    api: AsyncRetryingBackend, namespace: str, pod: str, container: str
) -> str:
    """Return the end of ``container``'s log, or ``""`` when it cannot be read (async)."""
    chunks: list[bytes] = []
    try:
        stream = await api.read_log(namespace, pod, container, tail_lines=TAIL_LINES)
        try:
            async for chunk in stream:
                chunks.append(chunk)
        finally:
            await asyncio.shield(stream.aclose())
    except BackendError:
        pass  # what was read before the failure is kept
    return text_of(chunks)
