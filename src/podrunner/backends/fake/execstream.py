"""The fake's :class:`~podrunner.backends.base.ExecStream`: a real process's pipes, or a result.

A command that runs as a process (the local runtime, the ``sh -c`` and ``cat`` builtins) is
streamed from its pipes: output is read when the caller asks for it, so a caller that stops
reading leaves it in the pipe (the process blocks, as behind a real kubelet), and a write blocks
while the pipe is full. An exec handler or another builtin answers at once: it gets what was
written until :meth:`~CannedExecStream.close_stdin` and its result comes out as chunks.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Literal, TypeVar

from podrunner.backends.base import ExecChunk, ExecResult
from podrunner.errors import BackendUnavailable, BadRequest

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

__all__ = ["CannedExecStream", "ProcessExecStream"]

_READ = 64 * 1024
_S = TypeVar("_S")
# How long close() waits for a killed process to be reaped.
_REAP_SECONDS = 5.0

#: Marks the calling thread busy in the fake (the virtual clock does not jump over it).
Busy = Callable[[], "AbstractContextManager[None]"]


class _StreamBase:
    """Context management and ``wait`` in terms of iteration, shared by both kinds."""

    _code: int | None = None

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[ExecChunk]:
        raise NotImplementedError


class ProcessExecStream(_StreamBase):
    """A process's pipes as an exec stream (the process runs in its own process group).

    Args:
        proc: The process, started with pipes for stdout and stderr (and stdin if wanted),
            unbuffered (``bufsize=0``) and ``start_new_session=True``.
        busy: Marks blocking reads and writes as work in the fake.
        on_end: Called once when the stream is done (removes a temporary directory...).
    """

    def __init__(
        self, proc: subprocess.Popen[bytes], busy: Busy, on_end: Callable[[], None] | None = None
    ) -> None:
        self.process = proc
        self._busy = busy
        self.on_end = on_end
        self._sel = selectors.DefaultSelector()
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self._sel.register(pipe.fileno(), selectors.EVENT_READ, name)
        self._closed = False
        self._io_lock = threading.Lock()

    def write(self, data: bytes) -> None:
        """Write all of ``data`` to the process's stdin (blocks while the pipe is full)."""
        pipe = self.process.stdin
        if pipe is None:
            raise BadRequest("the exec was opened without stdin (open_exec(..., stdin=True))")
        if pipe.closed:
            raise BadRequest("stdin of the exec is closed")
        view = memoryview(data)
        with self._busy():
            while view:
                try:
                    view = view[pipe.write(view) or 0 :]
                except BrokenPipeError:
                    return  # the command is gone or closed its stdin: as a kubelet drops it
                except ValueError:
                    return  # closed by close() from another thread

    def close_stdin(self) -> None:
        """Close the process's stdin: it reads end-of-file."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def __iter__(self) -> Iterator[ExecChunk]:
        """Yield what the process writes, as it writes it, until both pipes are at EOF."""
        while chunk := self._next(None):
            yield chunk

    def _next(self, deadline: float | None) -> ExecChunk | None:
        with self._io_lock:
            while not self._closed and self._sel.get_map():
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                with self._busy():
                    ready = self._sel.select(timeout)
                if not ready and deadline is not None and time.monotonic() >= deadline:
                    raise BackendUnavailable("exec did not end in time")
                for key, _ in ready:
                    try:
                        data = os.read(key.fd, _READ)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        self._sel.unregister(key.fd)
                        continue
                    name: Literal["stdout", "stderr"] = key.data
                    return ExecChunk(name, data)
            return None

    def wait(self, timeout: float | None = None) -> int:
        """Drop the output that is left and return the exit code.

        Raises:
            BackendUnavailable: ``timeout`` passed first (the process is killed).
        """
        if self._code is not None:
            return self._code
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self._next(deadline) is not None:
                pass
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            with self._busy():
                code = self.process.wait(remaining)
        except subprocess.TimeoutExpired:
            self.close()
            raise BackendUnavailable(f"exec did not end within {timeout}s") from None
        except BackendUnavailable:
            self.close()
            raise
        self._code = _exit_code(code)
        self.close()
        return self._code

    def close(self) -> None:
        """Kill the process's group (what it started in the background too) and reap it.

        From another thread too: the kill ends a read blocked there (its pipes reach EOF).
        """
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        # A reader in another thread wakes at EOF and lets go; the pipes close after it.
        locked = self._io_lock.acquire(timeout=_REAP_SECONDS)
        try:
            for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            self._sel.close()
        finally:
            if locked:
                self._io_lock.release()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_REAP_SECONDS)
        if self.on_end is not None:
            self.on_end()


def _exit_code(code: int) -> int:
    # As a container runtime reports a command killed by a signal: 128 + the signal.
    return 128 - code if code < 0 else code


class CannedExecStream(_StreamBase):
    """An exec answered at once: ``answer(stdin)`` gives the result when stdin is closed.

    With ``stdin=True``, reading waits until :meth:`close_stdin` (from another thread), as
    ``cat`` would; writes are kept until then. ``reads_stdin=False`` answers at once (a
    command that could not start) and drops what is written.
    """

    def __init__(
        self,
        answer: Callable[[bytes | None], ExecResult],
        *,
        stdin: bool,
        reads_stdin: bool = True,
    ) -> None:
        self._answer = answer
        self._stdin: bytearray | None = bytearray() if stdin else None
        self._stdin_closed = threading.Event()
        if not stdin or not reads_stdin:
            self._stdin_closed.set()
        self._result: ExecResult | None = None
        self._read = False
        self._closed = False

    def write(self, data: bytes) -> None:
        """Keep ``data`` for the handler."""
        if self._stdin is None:
            raise BadRequest("the exec was opened without stdin (open_exec(..., stdin=True))")
        if self._stdin_closed.is_set():
            return  # the answer is given: as a kubelet drops input to an ended command
        self._stdin += data

    def close_stdin(self) -> None:
        """End the input: the handler runs when the output is read."""
        self._stdin_closed.set()

    def _run(self) -> ExecResult:
        if self._result is None:
            self._stdin_closed.wait()
            if self._closed:
                raise BackendUnavailable("the exec was closed")
            self._result = self._answer(None if self._stdin is None else bytes(self._stdin))
        return self._result

    def __iter__(self) -> Iterator[ExecChunk]:
        """Yield the result's stdout, then its stderr (each once)."""
        if self._read or self._closed:
            return
        result = self._run()
        self._read = True
        if result.stdout:
            yield ExecChunk("stdout", result.stdout)
        if result.stderr:
            yield ExecChunk("stderr", result.stderr)

    def wait(self, timeout: float | None = None) -> int:
        """The result's exit code (waits for :meth:`close_stdin` up to ``timeout``)."""
        if not self._stdin_closed.wait(timeout):
            raise BackendUnavailable(f"exec did not end within {timeout}s (stdin still open)")
        self._read = True
        return self._run().exit_code

    def close(self) -> None:
        """Drop the session (a reader waiting for stdin ends)."""
        self._closed = True
        self._stdin_closed.set()


def spawn(
    argv: list[str],
    busy: Busy,
    *,
    stdin: bool,
    cleanup: Callable[[], None] | None = None,
    **popen: object,
) -> ProcessExecStream:
    """Start ``argv`` with pipes in its own process group and stream it."""
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        start_new_session=True,
        **popen,  # type: ignore[call-overload]
    )
    return ProcessExecStream(proc, busy, cleanup)


def temp_dir_cleanup(path: str) -> Callable[[], None]:
    """Remove ``path`` when the stream ends."""
    return lambda: shutil.rmtree(path, ignore_errors=True)
