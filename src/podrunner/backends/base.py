r"""The backend protocol: the narrow, synchronous API every cluster backend speaks.

Objects cross this boundary as plain ``dict``\\ s in the exact JSON shape the Kubernetes API
server accepts and returns (camelCase, ``status`` included), so the fake and a real cluster are
interchangeable. Errors are podrunner's own (:mod:`podrunner.errors`), converted in one place
per backend with the client's exception kept as ``__cause__``.

Kinds are the few podrunner needs: ``Pod``, ``Secret``, ``ConfigMap``, ``Event``,
``NetworkPolicy`` (namespaced) and ``Namespace`` (cluster-scoped: pass ``namespace=None``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, runtime_checkable

import attrs

if TYPE_CHECKING:
    import asyncio

__all__ = [
    "API_VERSIONS",
    "KINDS",
    "PLURALS",
    "AsyncBackend",
    "AsyncClock",
    "AsyncExecStream",
    "AsyncStream",
    "Backend",
    "Clock",
    "ExecChunk",
    "ExecResult",
    "ExecStream",
    "Hold",
    "Kind",
    "ObjectList",
    "RealAsyncClock",
    "RealClock",
    "WatchEvent",
    "WatchEventType",
]

Kind = Literal["Pod", "Secret", "ConfigMap", "Event", "Namespace", "NetworkPolicy"]
KINDS: tuple[Kind, ...] = ("Pod", "Secret", "ConfigMap", "Event", "Namespace", "NetworkPolicy")
# The resource name of each kind in URLs and in the API server's messages ("pods "x" not found").
PLURALS: dict[str, str] = {
    "Pod": "pods",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Event": "events",
    "Namespace": "namespaces",
    "NetworkPolicy": "networkpolicies",
}
# Each kind's apiVersion: the core group ("v1", served under /api/v1) or "group/version"
# (served under /apis/group/version).
API_VERSIONS: dict[str, str] = {
    "Pod": "v1",
    "Secret": "v1",
    "ConfigMap": "v1",
    "Event": "v1",
    "Namespace": "v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]


@attrs.frozen
class ObjectList:
    """The answer to a list call.

    Attributes:
        items: The objects, as Kubernetes JSON.
        resource_version: The list's ``metadata.resourceVersion``; a watch started from it
            sees every change made after the list, and none before.
    """

    items: list[dict[str, Any]]
    resource_version: str


@attrs.frozen
class WatchEvent:
    """One event of a watch stream.

    Attributes:
        type: ``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK`` (only
            ``metadata.resourceVersion`` is meaningful) or ``ERROR`` (``object`` is a Status).
        object: The object after the change (for ``DELETED``, its last state).
    """

    type: WatchEventType
    object: dict[str, Any]


@attrs.frozen
class ExecResult:
    """The outcome of a command executed in a running container.

    Attributes:
        exit_code: The command's exit code as the runtime reported it.
        stdout: Everything the command wrote to standard output.
        stderr: Everything the command wrote to standard error.
    """

    exit_code: int
    stdout: bytes
    stderr: bytes


_S = TypeVar("_S")


@attrs.frozen
class ExecChunk:
    """One piece of an exec's output, as it arrived.

    Attributes:
        stream: ``stdout`` or ``stderr``.
        data: The bytes (never empty; chunk boundaries are arbitrary).
    """

    stream: Literal["stdout", "stderr"]
    data: bytes


class ExecStream(Protocol):
    """A command running in a container, opened by :meth:`~podrunner.Backend.open_exec`.

    Its output is read as it arrives by iterating; what it reads on standard input is written
    as it goes. Both directions apply backpressure: a write blocks while the command (or the
    connection) is not taking input, and output the caller does not read stays in the command's
    pipe, not in memory. Use it as a context manager, or call :meth:`close`.
    """

    def write(self, data: bytes) -> None:
        """Send ``data`` to the command's standard input (opened with ``stdin=True``)."""
        ...

    def close_stdin(self) -> None:
        """Send end-of-file to the command's standard input."""
        ...

    def __iter__(self) -> Iterator[ExecChunk]:
        """Yield output as it arrives; the iteration ends when the command's output ends."""
        ...

    def wait(self, timeout: float | None = None) -> int:
        """Read (and drop) what output is left, then return the command's exit code.

        Raises:
            BackendUnavailable: ``timeout`` seconds passed first, or the connection broke.
        """
        ...

    def close(self) -> None:
        """End the session: the command is killed or abandoned (idempotent, bounded time)."""
        ...

    def __enter__(self: _S) -> _S: ...

    def __exit__(self, *exc_info: object) -> None: ...


class AsyncExecStream(Protocol):
    """:class:`ExecStream` for coroutines, opened by :meth:`~podrunner.AsyncBackend.open_exec`."""

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the command's standard input (opened with ``stdin=True``)."""
        ...

    async def close_stdin(self) -> None:
        """Send end-of-file to the command's standard input."""
        ...

    def __aiter__(self) -> AsyncIterator[ExecChunk]:
        """Yield output as it arrives; the iteration ends when the command's output ends."""
        ...

    async def wait(self, timeout: float | None = None) -> int:
        """Read (and drop) what output is left, then return the command's exit code."""
        ...

    async def aclose(self) -> None:
        """End the session: the command is killed or abandoned (idempotent, bounded time)."""
        ...

    async def __aenter__(self: _S) -> _S: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class Clock(Protocol):
    """Time as a backend sees it. The runner never calls :mod:`time` directly.

    A fake backend's virtual clock jumps forward whenever the caller waits, so a run that takes
    an hour of cluster time finishes in microseconds and timeouts fire in virtual time.
    """

    def now(self) -> float:
        """Return wall-clock time in seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic time in seconds, for measuring durations and deadlines."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait for ``seconds``."""
        ...

    def wait(self, event: threading.Event, timeout: float | None = None) -> bool:
        """Block until ``event`` is set or ``timeout`` seconds of this clock have passed.

        Every blocking wait in the runner goes through here, so a virtual clock knows when all
        callers are idle and may jump to the next scheduled moment.

        Returns:
            Whether the event is set.
        """
        ...

    def hold(self, *, owned: bool = True) -> Hold:
        """Declare work in progress that time must not jump over.

        A virtual clock does not jump while a hold is open, except when the thread that owns
        the hold itself waits on the clock. A real clock ignores holds.

        Args:
            owned: The calling thread owns the hold. Work queued for another thread passes
                ``False``, so the queueing thread's waits do not discount it; the thread that
                picks the work up calls ``Hold.adopt()``.
        """
        ...


class Hold(Protocol):
    """Work in progress, as declared with :meth:`Clock.hold`."""

    def adopt(self) -> None:
        """Make the calling thread the owner (work handed to another thread)."""
        ...

    def release(self) -> None:
        """End the hold (idempotent)."""
        ...


class _NoHold:
    def adopt(self) -> None:
        pass

    def release(self) -> None:
        pass


class RealClock:
    """The machine's clock."""

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep with :func:`time.sleep` (no-op for non-positive values)."""
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, event: threading.Event, timeout: float | None = None) -> bool:
        """Wait on the event with a real timeout."""
        return event.wait(timeout)

    def hold(self, *, owned: bool = True) -> Hold:
        """Real time never jumps: nothing to hold."""
        return _NoHold()


@runtime_checkable
class Backend(Protocol):
    """What the runner needs from a cluster.

    Every method may raise a :class:`~podrunner.errors.BackendError` subclass and nothing else
    (apart from ``KeyboardInterrupt``). Methods are safe to call from several threads at once.
    """

    @property
    def clock(self) -> Clock:
        """The clock runs on this backend must use for waiting and deadlines."""
        ...

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object; ``metadata.generateName`` is honoured. Returns the stored object."""
        ...

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return one object, or raise :class:`~podrunner.errors.NotFound`."""
        ...

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects (``namespace=None`` lists across namespaces for namespaced kinds)."""
        ...

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale ``metadata.resourceVersion`` raises ``Conflict``."""
        ...

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) to an object or its ``status`` subresource."""
        ...

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        """Delete an object (gracefully for pods unless the grace period is 0)."""
        ...

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> Iterator[WatchEvent]:
        """Stream changes after ``resource_version``, in order.

        The iterator ends when the server-side timeout expires. Closing it (``.close()``)
        releases the connection; both backends allow that from another thread while a read is
        blocked on the stream, which then ends without an error.

        Raises:
            Gone: ``resource_version`` is older than the server's history.
        """
        ...

    def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        follow: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> Iterator[bytes]:
        """Stream a container's log as raw byte chunks (chunk boundaries are arbitrary).

        With ``follow`` the stream ends when the container terminates or the connection drops.
        Closing the iterator closes the connection.
        """
        ...

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``argv`` in a running container and return its exit code and output."""
        ...

    def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> ExecStream:
        """Start ``argv`` in a running container and stream its input and output.

        Args:
            namespace: The pod's namespace.
            pod: The pod's name.
            container: The container (``None``: the pod's only or default container).
            argv: The command, run as it is (no shell).
            stdin: Open the command's standard input, for
                :meth:`~podrunner.backends.base.ExecStream.write`.

        Raises:
            BadRequest: The container is not running (or no command was given).
            NotFound: No such pod.
        """
        ...

    def refresh_credentials(self) -> bool:
        """Reload credentials after a 401; return whether anything changed."""
        ...

    def close(self) -> None:
        """Release connections and threads."""
        ...


# -- the async twin ---------------------------------------------------------------------------
#
# asyncio is imported where it is used: `import podrunner` and the sync runner never load it.

_T_co = TypeVar("_T_co", covariant=True)


@runtime_checkable
class AsyncClock(Protocol):
    """Time as an async backend sees it: :class:`Clock` for coroutines.

    A fake backend's virtual clock jumps forward only when every task of the event loop that
    waits on it is blocked, so an hour-long run awaited in a test takes milliseconds.
    """

    def now(self) -> float:
        """Return wall-clock time in seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Return a monotonic time in seconds, for measuring durations and deadlines."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` of this clock."""
        ...

    async def wait(self, future: asyncio.Future[Any], timeout: float | None = None) -> bool:
        """Wait until ``future`` is done or ``timeout`` seconds of this clock have passed.

        The future is never cancelled by the timeout (it may be shared by several waits).

        Returns:
            Whether the future is done.
        """
        ...


class RealAsyncClock:
    """The machine's clock for coroutines: :func:`asyncio.sleep` and real timeouts."""

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep with :func:`asyncio.sleep` (yields to the loop even for 0)."""
        import asyncio

        await asyncio.sleep(max(seconds, 0.0))

    async def wait(self, future: asyncio.Future[Any], timeout: float | None = None) -> bool:
        """Wait on the future with a real timeout; the future is left alone."""
        import asyncio

        if not future.done():
            await asyncio.wait((future,), timeout=None if timeout is None else max(timeout, 0.0))
        return future.done()


@runtime_checkable
class AsyncStream(Protocol[_T_co]):
    """A watch or log stream of an :class:`AsyncBackend`: async-iterate it, then close it.

    Cancelling the task that awaits ``__anext__`` is how a reader is interrupted; ``aclose``
    releases the connection (idempotent).
    """

    def __aiter__(self) -> AsyncIterator[_T_co]: ...

    async def __anext__(self) -> _T_co: ...

    async def aclose(self) -> None:
        """Release the stream's connection."""
        ...


@runtime_checkable
class AsyncBackend(Protocol):
    """:class:`Backend` for coroutines: the same methods, the same JSON and the same errors.

    Methods are coroutines; ``watch`` and ``read_log`` are coroutines that open the stream
    (errors at opening, such as ``Gone``, are raised there) and return an :class:`AsyncStream`.
    """

    @property
    def clock(self) -> AsyncClock:
        """The clock runs on this backend must use for waiting and deadlines."""
        ...

    async def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object; ``metadata.generateName`` is honoured. Returns the stored object."""
        ...

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return one object, or raise :class:`~podrunner.errors.NotFound`."""
        ...

    async def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects (``namespace=None`` lists across namespaces for namespaced kinds)."""
        ...

    async def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale ``metadata.resourceVersion`` raises ``Conflict``."""
        ...

    async def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch (RFC 7386) to an object or its ``status`` subresource."""
        ...

    async def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        """Delete an object (gracefully for pods unless the grace period is 0)."""
        ...

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> AsyncStream[WatchEvent]:
        """Open a stream of changes after ``resource_version`` (see :meth:`Backend.watch`).

        Raises:
            Gone: ``resource_version`` is older than the server's history.
        """
        ...

    async def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        follow: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> AsyncStream[bytes]:
        """Open a container's log as a stream of raw byte chunks (see :meth:`Backend.read_log`)."""
        ...

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run ``argv`` in a running container and return its exit code and output."""
        ...

    async def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> AsyncExecStream:
        """Start ``argv`` and stream its input and output (as :meth:`~podrunner.Backend.open_exec`).

        Errors of the request (``BadRequest``, ``NotFound``...) are raised here, at opening.
        """
        ...

    async def refresh_credentials(self) -> bool:
        """Reload credentials after a 401; return whether anything changed."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
