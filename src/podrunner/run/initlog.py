"""Read a failed init container's log once, for its :class:`~podrunner.errors.InitContainerFailed`.

Best effort, like every read on a failing path: a log that cannot be read leaves the error
without it rather than replacing it. Only the last :data:`INIT_LOG_LIMIT` bytes are kept (the
reason a checkout or a download failed is at the end).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from podrunner.errors import BackendError

if TYPE_CHECKING:
    from podrunner.run.aio_retry import AsyncRetryingBackend
    from podrunner.run.retry import RetryingBackend

__all__ = ["INIT_LOG_LIMIT", "aread_init_log", "read_init_log"]

INIT_LOG_LIMIT = 64 * 1024
"""Bytes of a failed init container's log kept in the error."""

_TAIL_LINES = 2000


def _text(chunks: list[bytes]) -> str:
    data = b"".join(chunks)[-INIT_LOG_LIMIT:]
    return data.decode("utf-8", errors="replace")


def read_init_log(api: RetryingBackend, namespace: str, pod: str, container: str) -> str:
    """Return the end of ``container``'s log, or ``""`` when it cannot be read."""
    chunks: list[bytes] = []
    try:
        stream = api.read_log(namespace, pod, container, tail_lines=_TAIL_LINES)
        try:
            chunks.extend(stream)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    except BackendError:
        pass  # what was read before the failure is kept
    return _text(chunks)


async def aread_init_log(
    api: AsyncRetryingBackend, namespace: str, pod: str, container: str
) -> str:
    """Return the end of ``container``'s log, or ``""`` when it cannot be read (async)."""
    chunks: list[bytes] = []
    try:
        stream = await api.read_log(namespace, pod, container, tail_lines=_TAIL_LINES)
        try:
            async for chunk in stream:
                chunks.append(chunk)
        finally:
            await asyncio.shield(stream.aclose())
    except BackendError:
        pass  # what was read before the failure is kept
    return _text(chunks)
