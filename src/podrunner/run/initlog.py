"""Read a failed init container's log once, for its :class:`~podrunner.errors.InitContainerFailed`.

Best effort, like every read on a failing path: a log that cannot be read leaves the error
without it rather than replacing it. Only the last :data:`INIT_LOG_LIMIT` bytes are kept (the
reason a checkout or a download failed is at the end).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from podrunner.errors import BackendError

if TYPE_CHECKING:
    from podrunner.run.retry import RetryingBackend

__all__ = ["INIT_LOG_LIMIT", "TAIL_LINES", "read_init_log", "text_of"]

INIT_LOG_LIMIT = 64 * 1024
"""Bytes of a failed init container's log kept in the error."""

TAIL_LINES = 2000


def text_of(chunks: list[bytes]) -> str:
    """The end of a log read as chunks, decoded."""
    data = b"".join(chunks)[-INIT_LOG_LIMIT:]
    return data.decode("utf-8", errors="replace")


def read_init_log(api: RetryingBackend, namespace: str, pod: str, container: str) -> str:
    """Return the end of ``container``'s log, or ``""`` when it cannot be read."""
    chunks: list[bytes] = []
    try:
        stream = api.read_log(namespace, pod, container, tail_lines=TAIL_LINES)
        try:
            chunks.extend(stream)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    except BackendError:
        pass  # what was read before the failure is kept
    return text_of(chunks)
