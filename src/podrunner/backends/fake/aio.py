"""``AsyncFakeBackend``: the fake cluster for coroutines (``FakeCluster.async_backend``).

The same store, scripting, faults, action log and clock as the sync backend: every call goes
through the sync :class:`~podrunner.backends.fake.cluster.FakeBackend` (its validation, its
recorded action, its faults), so both kinds of callers see one cluster and the same answers.
What differs is waiting: a watch or a followed log waits on the clock through the event loop's
:class:`~podrunner.backends.fake.aio_clock.LoopAgent` instead of blocking a thread, so ten
thousand runs on one loop need no thread at all. The streams are the sync backend's, driven
step by step: the sync call opens the stream (checks, action, faults) and the async stream
runs its feed (:class:`~podrunner.backends.fake.watch.WatchFeed`,
:class:`~podrunner.backends.fake.podlogs.LogFeed`), whose steps never block.

Calls that may block a thread run in a worker thread holding the clock (an exec, whose handler
or local process may take time; any call while a latency fault is set, whose latency is a
wait on the clock); everything else runs inline, in the loop.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from podrunner.backends.fake.aio_clock import AsyncFakeClock
from podrunner.backends.fake.podlogs import FakeLogStream
from podrunner.backends.fake.watch import FakeWatchStream
from podrunner.errors import BackendUnavailable

if TYPE_CHECKING:
    from podrunner.backends._stream import StreamState
    from podrunner.backends.base import (
        Backend,
        ExecChunk,
        ExecResult,
        ExecStream,
        Kind,
        ObjectList,
        WatchEvent,
    )
    from podrunner.backends.fake.clock import SchedulingClock
    from podrunner.backends.fake.faults import FaultRule
    from podrunner.backends.fake.podlogs import LogFeed
    from podrunner.backends.fake.watch import WatchFeed

__all__ = ["AsyncFakeBackend"]

_T = TypeVar("_T")


class AsyncFakeBackend:
    """The :class:`~podrunner.backends.base.AsyncBackend` of a fake cluster.

    Made by ``FakeCluster.async_backend``, which passes what this backend uses of the cluster.

    Args:
        calls: A sync backend of the cluster's own API server (the same actions, faults and
            state), not ``cluster.backend``: what wraps that one (the pytest plugin's log
            recorder) does not stand between this backend and the server.
        clock: The cluster's clock.
        faults: The cluster's fault rules (live: rules added later count).
    """

    def __init__(self, calls: Backend, clock: SchedulingClock, faults: Sequence[FaultRule]) -> None:
        self._calls = calls
        self._sync_clock = clock
        self._faults = faults
        self._clock = AsyncFakeClock(clock)

    @property
    def clock(self) -> AsyncFakeClock:
        """The cluster's clock, for coroutines."""
        return self._clock

    async def _call(self, fn: Callable[[], _T]) -> _T:
        """Run a sync call inline, or in a thread when a latency fault may make it wait."""
        if not any(rule.latency > 0 for rule in self._faults):
            return fn()
        return await self._in_thread(fn)

    async def _in_thread(self, fn: Callable[[], _T]) -> _T:
        # Held from now until the thread is done, as work queued for another thread: the
        # virtual clock must not jump before the thread counts itself.
        hold = self._sync_clock.hold(owned=False)

        def work() -> _T:
            hold.adopt()
            try:
                return fn()
            finally:
                hold.release()

        try:
            return await asyncio.to_thread(work)
        except BaseException:
            hold.release()  # never started (cancelled): idempotent otherwise
            raise

    # -- the protocol -----------------------------------------------------------------------

    async def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object; see the backend protocol."""
        return await self._call(partial(self._calls.create, manifest, dry_run=dry_run))

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return a copy of one object."""
        return await self._call(partial(self._calls.get, kind, namespace, name))

    async def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects, filtered by selectors."""
        return await self._call(
            partial(
                self._calls.list,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        )

    async def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale resourceVersion is 409 Conflict."""
        return await self._call(partial(self._calls.replace, manifest))

    async def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch to an object or its status."""
        return await self._call(
            partial(self._calls.patch, kind, namespace, name, patch, subresource=subresource)
        )

    async def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        """Delete an object: pods gracefully unless the grace period is 0."""
        await self._call(
            partial(
                self._calls.delete, kind, namespace, name, grace_period_seconds=grace_period_seconds
            )
        )

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
    ) -> AsyncFakeWatch:
        """Open a stream of changes after ``resource_version`` (as the sync backend's)."""
        stream = await self._call(
            partial(
                self._calls.watch,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_bookmarks=allow_bookmarks,
            )
        )
        assert isinstance(stream, FakeWatchStream)  # the fake's own backend
        return AsyncFakeWatch(self._clock, stream.state, stream.feed)

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
    ) -> AsyncFakeLog:
        """Open a container's log as a stream of byte chunks (as the sync backend's)."""
        stream = await self._call(
            partial(
                self._calls.read_log,
                namespace,
                pod,
                container,
                follow=follow,
                timestamps=timestamps,
                since_time=since_time,
                since_seconds=since_seconds,
                tail_lines=tail_lines,
                limit_bytes=limit_bytes,
                previous=previous,
            )
        )
        assert isinstance(stream, FakeLogStream)  # the fake's own backend
        return AsyncFakeLog(self._clock, stream.state, stream.feed)

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
        """Run ``argv`` in a running container (in a worker thread: handlers may block)."""
        return await self._in_thread(
            partial(self._calls.exec, namespace, pod, container, argv, stdin=stdin, timeout=timeout)
        )

    async def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> AsyncFakeExec:
        """Start ``argv`` and stream it (the sync stream, each blocking step in a thread)."""
        stream = await self._in_thread(
            partial(self._calls.open_exec, namespace, pod, container, argv, stdin=stdin)
        )
        return AsyncFakeExec(stream, self._in_thread)

    async def refresh_credentials(self) -> bool:
        """As the sync backend's: ``True`` once after each injected 401."""
        return self._calls.refresh_credentials()

    async def close(self) -> None:
        """Stop local processes; the in-memory state stays readable."""
        self._calls.close()


class _FakeStream:
    """What the two streams share: closing, and the wait on the cluster's clock."""

    def __init__(self, clock: AsyncFakeClock, handle: StreamState) -> None:
        self._lock = clock.sync.lock
        self._clock = clock
        self._handle = handle

    async def aclose(self) -> None:
        """End the stream (a read waiting in another task ends too)."""
        if not self._handle.closed:
            self._handle.closed = True
            with self._lock:
                self._clock.sync.notify()


class AsyncFakeWatch(_FakeStream):
    """A watch stream of the fake cluster, read by a coroutine (the sync stream's twin)."""

    def __init__(self, clock: AsyncFakeClock, handle: StreamState, feed: WatchFeed) -> None:
        super().__init__(clock, handle)
        self._feed = feed

    def __aiter__(self) -> AsyncFakeWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        feed = self._feed
        while True:
            event = feed.pop()
            if event is not None:
                return event
            if feed.over:
                raise StopAsyncIteration
            more = await self._clock.block_until(feed.collect, feed.deadline, soft=True)
            with self._lock:
                feed.gathered(more)


class AsyncFakeLog(_FakeStream):
    """A container log of the fake cluster, read by a coroutine (the sync stream's twin)."""

    def __init__(self, clock: AsyncFakeClock, handle: StreamState, feed: LogFeed) -> None:
        super().__init__(clock, handle)
        self._feed = feed
        self._done = False
        # Chunks to hand out; an exception in it is raised when its turn comes.
        self._queue: collections.deque[bytes | BaseException] = collections.deque()

    def __aiter__(self) -> AsyncFakeLog:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._queue:
                item = self._queue.popleft()
                if isinstance(item, BaseException):
                    self._done = True
                    self._queue.clear()
                    raise item
                return item
            if self._done or self._handle.closed:
                self._done = True
                raise StopAsyncIteration
            await self._read()

    async def _read(self) -> None:
        """One round of the sync stream's loop: wait (following), read, queue the chunks."""
        feed = self._feed
        if feed.follow:
            await self._clock.block_until(feed.has_more)
        with self._lock:
            pieces = feed.read()
        if pieces is None or not self._queue_chunks(pieces):
            self._done = True
            return
        with self._lock:
            again = feed.again()
        if again:
            return
        if feed.alive is not None:
            # An injected never-ending follow: silent until the pod is deleted.
            await self._clock.block_until(feed.gone)
        self._done = True

    def _queue_chunks(self, pieces: list[tuple[int, bytes]]) -> bool:
        """Queue what the sync stream would yield of ``pieces``; ``False`` once it ends."""
        output = self._feed.output
        queue = self._queue
        try:
            for stamp, block in pieces:
                for chunk in output.chunks(stamp, block):
                    queue.append(chunk)
                if output.full:
                    return False
        except BackendUnavailable as exc:  # an injected cut: raised after what came before
            queue.append(exc)
            return False
        return True


class AsyncFakeExec:
    """The sync fake's exec stream for coroutines: each step that may block runs in a thread.

    Closing kills the process (or drops the handler's answer), which ends a step blocked in a
    thread; a cancelled step's thread ends with it.
    """

    def __init__(
        self, stream: ExecStream, in_thread: Callable[[Callable[[], Any]], Awaitable[Any]]
    ) -> None:
        self._stream = stream
        self._in_thread = in_thread
        self._chunks = iter(stream)

    async def write(self, data: bytes) -> None:
        """Write to the command's stdin (in a thread: a full pipe blocks)."""
        await self._in_thread(partial(self._stream.write, data))

    async def close_stdin(self) -> None:
        """Send end-of-file to the command."""
        self._stream.close_stdin()

    def __aiter__(self) -> AsyncIterator[ExecChunk]:
        return self

    async def __anext__(self) -> ExecChunk:
        """The next piece of output, as it arrives."""
        chunk: ExecChunk | None = await self._in_thread(partial(next, self._chunks, None))
        if chunk is None:
            raise StopAsyncIteration
        return chunk

    async def wait(self, timeout: float | None = None) -> int:
        """Drop the output left and return the exit code."""
        code: int = await self._in_thread(partial(self._stream.wait, timeout))
        return code

    async def aclose(self) -> None:
        """Kill the command (idempotent)."""
        await asyncio.to_thread(self._stream.close)

    async def __aenter__(self) -> AsyncFakeExec:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
