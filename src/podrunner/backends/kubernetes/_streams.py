"""Reading the Kubernetes backend's streamed responses: chunks, closing, exec channels."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

_CHUNK = 64 * 1024


def read_chunks(resp: Any, amt: int = _CHUNK) -> Iterator[bytes]:
    """Yield body bytes as they arrive, without buffering the whole response."""
    if getattr(resp, "chunked", False) and resp.supports_chunked_reads():
        yield from resp.read_chunked(amt, decode_content=True)
        return
    # read1 (urllib3 >= 2.3) returns what is there; read(amt) would wait for amt bytes.
    read = getattr(resp, "read1", None) or resp.read
    while True:
        data = read(amt)
        if not data:
            return
        yield data


def shut_down(opened: list[Any]) -> None:
    """Unblock a read on a watch's response from another thread."""
    for resp in opened:
        # urllib3 >= 2.3 shuts the socket down, which wakes a blocked recv; closing alone
        # does not on Linux.
        shutdown = getattr(resp, "shutdown", None)
        with contextlib.suppress(Exception):
            if shutdown is not None:
                shutdown()
            else:
                resp.close()


def close_response(resp: Any, complete: bool) -> None:
    """Give the connection back: reusable when the body was read to the end, else closed."""
    if not complete:
        # A half-read body would poison the next request on that connection.
        with contextlib.suppress(Exception):
            resp.close()
    with contextlib.suppress(Exception):
        resp.release_conn()


def status_exit_code(status: Mapping[str, Any]) -> int | None:
    """The exit code in an exec status-channel ``Status`` (``None`` if it carries none)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or ():
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return int(cause.get("message", ""))
    return None
