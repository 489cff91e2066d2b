"""The sync Kubernetes backend's exec stream: the exec websocket read one frame at a time.

``kubernetes.stream``'s ``WSClient`` opens the websocket (authentication, TLS, subprotocol), but
its ``update()`` is not used: it reads every frame that is available before returning and
appends each to one ``bytes`` per channel, so a command that writes fast is held in memory
whole (and copied again on each append). Here a frame is read only when the caller asks for
the next chunk; what the caller does not read stays in the socket and TCP holds the server
back.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import websocket

from podrunner.backends.base import ExecChunk
from podrunner.backends.kubernetes._errors import error_from_status_body
from podrunner.backends.kubernetes._streams import status_exit_code
from podrunner.errors import BackendUnavailable, BadRequest

__all__ = ["WebSocketExecStream"]

_V5 = "v5.channel.k8s.io"
# Frames written to stdin are at most this big (a large write is several frames).
_WRITE_FRAME = 64 * 1024
_NAMES: dict[int, Literal["stdout", "stderr"]] = {1: "stdout", 2: "stderr"}


class WebSocketExecStream:
    """An :class:`~podrunner.backends.base.ExecStream` over an open exec ``WSClient``.

    Args:
        ws: The ``WSClient`` of ``kubernetes.stream.stream(..., _preload_content=False)``.
        stdin: Whether the exec was opened with stdin.
        where: ``(namespace, pod)``, for errors.
    """

    def __init__(self, ws: Any, stdin: bool, where: tuple[str, str]) -> None:
        self._ws = ws
        self._sock: Any = ws.sock
        self._stdin = stdin
        self._stdin_closed = False
        self._where = where
        self._status = b""
        self._ended = False
        self._closed = False
        self._read_lock = threading.Lock()
        self._code: int | None = None

    def _unavailable(self, message: str) -> BackendUnavailable:
        namespace, pod = self._where
        return BackendUnavailable(message, kind="Pod", namespace=namespace, name=pod)

    def write(self, data: bytes) -> None:
        """Send ``data`` on channel 0 (blocks while the connection does not take it)."""
        if not self._stdin:
            raise BadRequest("the exec was opened without stdin (open_exec(..., stdin=True))")
        if self._stdin_closed:
            raise BadRequest("stdin of the exec is closed")
        try:
            for at in range(0, len(data), _WRITE_FRAME):
                chunk = data[at : at + _WRITE_FRAME]
                self._sock.send(b"\x00" + chunk, opcode=websocket.ABNF.OPCODE_BINARY)
        except (OSError, websocket.WebSocketException) as exc:
            if self._ended or self._closed:
                return  # the command ended: its input is dropped, as by a kubelet
            raise self._unavailable(f"exec stdin: {type(exc).__name__}: {exc}") from exc

    def close_stdin(self) -> None:
        """Send the ``v5.channel.k8s.io`` close signal for stdin (v4 cannot say EOF)."""
        if self._stdin_closed or not self._stdin:
            return
        self._stdin_closed = True
        if self._ws.subprotocol == _V5:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self._sock.send(b"\xff\x00", opcode=websocket.ABNF.OPCODE_BINARY)

    def __iter__(self) -> Iterator[ExecChunk]:
        """Yield stdout and stderr frames as they arrive, until the server closes the session."""
        while (chunk := self.next_chunk(None)) is not None:
            yield chunk

    def next_chunk(self, deadline: float | None) -> ExecChunk | None:
        """The next chunk of output, or ``None`` at the end (``deadline``: monotonic time).

        Raises:
            BackendUnavailable: The deadline passed, or the connection broke.
        """
        with self._read_lock:
            while not self._ended:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._unavailable("exec timed out before the command ended")
                try:
                    self._sock.settimeout(remaining)
                    opcode, frame = self._sock.recv_data_frame(True)
                except websocket.WebSocketTimeoutException:
                    continue
                except (OSError, websocket.WebSocketException) as exc:
                    self._ended = True
                    if self._closed:
                        return None
                    raise self._unavailable(f"exec: {type(exc).__name__}: {exc}") from exc
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self._ended = True
                    return None
                data = frame.data if opcode == websocket.ABNF.OPCODE_BINARY else b""
                if len(data) < 2:
                    continue
                if data[0] == 3:
                    self._status += data[1:]
                elif data[0] in _NAMES:
                    return ExecChunk(_NAMES[data[0]], bytes(data[1:]))
            return None

    def wait(self, timeout: float | None = None) -> int:
        """Drop the output left and return the exit code from the status channel (3).

        Raises:
            BackendUnavailable: ``timeout`` passed, or the session ended without a status.
            BackendError: The command could not be started (a ``Failure`` status without an
                exit code).
        """
        if self._code is not None:
            return self._code
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self.next_chunk(deadline) is not None:
                pass
        finally:
            self.close()
        if not self._status:
            raise self._unavailable("exec stream ended without a status")
        result = json.loads(self._status)
        code = status_exit_code(result)
        if code is None:
            # A Failure without an ExitCode cause: the command could not be started at all.
            namespace, pod = self._where
            raise error_from_status_body(
                int(result.get("code") or 500), result, kind="Pod", namespace=namespace, name=pod
            )
        self._code = code
        return code

    def close(self) -> None:
        """Close the websocket (the API server ends the command's session)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            # The close frame only: waiting for the peer's answer would read the socket that
            # a reader in another thread may be reading.
            self._sock.send_close()
        with contextlib.suppress(Exception):
            # websocket-client skips closing the socket once the peer's close frame was seen;
            # shutdown() always releases it, and wakes a read blocked in another thread.
            self._sock.shutdown()

    def __enter__(self) -> WebSocketExecStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
