"""The async Kubernetes backend's exec stream: the exec websocket, one message at a time.

aiohttp reads a websocket into a flow-controlled queue (it stops reading the socket while the
queue is full) and waits for the socket to drain when sending, so a reader that stops reading
holds the server back through TCP, and a writer waits while the server does not take input.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from podrunner.backends.base import ExecChunk
from podrunner.backends.kubernetes._errors import error_from_status_body
from podrunner.backends.kubernetes._streams import status_exit_code
from podrunner.errors import BackendUnavailable, BadRequest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["AiohttpExecStream"]

_V5 = "v5.channel.k8s.io"
_WRITE_FRAME = 64 * 1024
_NAMES: dict[int, Literal["stdout", "stderr"]] = {1: "stdout", 2: "stderr"}
_END = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)


class AiohttpExecStream:
    """An :class:`~podrunner.backends.base.AsyncExecStream` over an exec websocket.

    Args:
        ws: The open websocket.
        stdin: Whether the exec was opened with stdin.
        where: ``(namespace, pod)``, for errors.
    """

    def __init__(self, ws: Any, stdin: bool, where: tuple[str, str]) -> None:
        self._ws = ws
        self._stdin = stdin
        self._stdin_closed = False
        self._where = where
        self._status = b""
        self._ended = False
        self._code: int | None = None

    def _unavailable(self, message: str) -> BackendUnavailable:
        namespace, pod = self._where
        return BackendUnavailable(message, kind="Pod", namespace=namespace, name=pod)

    async def write(self, data: bytes) -> None:
        """Send ``data`` on channel 0 (waits while the connection does not take it)."""
        if not self._stdin:
            raise BadRequest("the exec was opened without stdin (open_exec(..., stdin=True))")
        if self._stdin_closed:
            raise BadRequest("stdin of the exec is closed")
        try:
            for at in range(0, len(data), _WRITE_FRAME):
                await self._ws.send_bytes(b"\x00" + data[at : at + _WRITE_FRAME])
        except (aiohttp.ClientError, ConnectionError) as exc:
            if self._ended or self._ws.closed:
                return  # the command ended: its input is dropped, as by a kubelet
            raise self._unavailable(f"exec stdin: {type(exc).__name__}: {exc}") from exc

    async def close_stdin(self) -> None:
        """Send the ``v5.channel.k8s.io`` close signal for stdin (v4 cannot say EOF)."""
        if self._stdin_closed or not self._stdin:
            return
        self._stdin_closed = True
        if self._ws.protocol == _V5 and not self._ws.closed:
            # A session already over has nothing left to end.
            with contextlib.suppress(aiohttp.ClientError, ConnectionError):
                await self._ws.send_bytes(b"\xff\x00")

    def __aiter__(self) -> AsyncIterator[ExecChunk]:
        return self

    async def __anext__(self) -> ExecChunk:
        chunk = await self.next_chunk()
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def next_chunk(self) -> ExecChunk | None:
        """The next chunk of stdout or stderr, or ``None`` when the server ended the session.

        Raises:
            BackendUnavailable: The connection broke.
        """
        while not self._ended:
            try:
                message = await self._ws.receive()
            except (aiohttp.ClientError, ConnectionError) as exc:
                self._ended = True
                raise self._unavailable(f"exec: {type(exc).__name__}: {exc}") from exc
            if message.type in _END:
                self._ended = True
                return None
            if message.type is aiohttp.WSMsgType.ERROR:
                self._ended = True
                raise self._unavailable(f"exec: {message.data}")
            if message.type is not aiohttp.WSMsgType.BINARY or len(message.data) < 2:
                continue
            channel, payload = message.data[0], message.data[1:]
            if channel == 3:
                self._status += payload
            elif channel in _NAMES:
                return ExecChunk(_NAMES[channel], payload)
        return None

    async def wait(self, timeout: float | None = None) -> int:
        """Drop the output left and return the exit code from the status channel (3).

        Raises:
            BackendUnavailable: ``timeout`` passed, or the session ended without a status.
            BackendError: The command could not be started (a ``Failure`` without an exit code).
        """
        if self._code is not None:
            return self._code
        try:
            await asyncio.wait_for(self._drain(), timeout)
        except asyncio.TimeoutError:
            raise self._unavailable(f"exec did not end within {timeout}s") from None
        finally:
            await self.aclose()
        self._code = self._exit_code()
        return self._code

    async def _drain(self) -> None:
        while await self.next_chunk() is not None:
            pass

    def _exit_code(self) -> int:
        if not self._status:
            raise self._unavailable("exec stream ended without a status")
        result: dict[str, Any] = json.loads(self._status)
        code = status_exit_code(result)
        if code is None:
            # A Failure without an ExitCode cause: the command could not be started at all.
            namespace, pod = self._where
            raise error_from_status_body(
                int(result.get("code") or 500), result, kind="Pod", namespace=namespace, name=pod
            )
        return code

    async def aclose(self) -> None:
        """Close the websocket (the API server ends the command's session); idempotent."""
        self._ended = True
        await self._ws.close()

    async def __aenter__(self) -> AiohttpExecStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
