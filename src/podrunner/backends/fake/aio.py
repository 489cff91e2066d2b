"""``AsyncFakeBackend``: the fake cluster for coroutines (``FakeCluster.async_backend``).

The same store, scripting, faults, action log and clock as the sync backend: every call goes
through the sync :class:`~podrunner.backends.fake.cluster.FakeBackend` (its validation, its
recorded action, its faults), so both kinds of callers see one cluster and the same answers.
What differs is waiting: a watch or a followed log waits on the clock through the event loop's
:class:`~podrunner.backends.fake.aio_clock.LoopAgent` instead of blocking a thread, so ten
thousand runs on one loop need no thread at all.

Calls that may block a thread run in a worker thread holding the clock (an exec, whose handler
or local process may take time; any call while a latency fault is set, whose latency is a
wait on the clock); everything else runs inline, in the loop.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from podrunner.backends._stream import StreamState
from podrunner.backends.base import ExecResult, Kind, ObjectList, WatchEvent
from podrunner.backends.fake._fastcopy import copy_object
from podrunner.backends.fake._json import format_rfc3339_nano
from podrunner.backends.fake.aio_clock import AsyncFakeClock
from podrunner.backends.fake.cluster import FakeBackend, _has_more, _lines, _matches
from podrunner.backends.fake.logs import split_inside_utf8
from podrunner.errors import BackendUnavailable

if TYPE_CHECKING:
    from podrunner.backends.fake.cluster import FakeCluster
    from podrunner.backends.fake.logs import LogBuffer, Position
    from podrunner.backends.fake.selectors import FieldSelector, LabelSelector

__all__ = ["AsyncFakeBackend"]

_T = TypeVar("_T")


class _Opened:
    """The arguments the sync backend would have started its stream generator with."""

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args


class _Opener(FakeBackend):
    """The sync backend, except that opening a stream returns its arguments.

    ``watch`` and ``read_log`` validate, record the action and apply the faults as always;
    the stream itself is then run by the async classes below.
    """

    def _stream(self, *args: Any) -> Any:
        return _Opened(args)

    def _log_stream(self, *args: Any) -> Any:
        return _Opened(args)


class AsyncFakeBackend:
    """The :class:`~podrunner.backends.base.AsyncBackend` of a :class:`FakeCluster`.

    Args:
        cluster: The fake cluster to serve.
    """

    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster
        self._sync = cluster.backend
        self._opener = _Opener(cluster)
        self._clock = AsyncFakeClock(cluster.clock)

    @property
    def clock(self) -> AsyncFakeClock:
        """The cluster's clock, for coroutines."""
        return self._clock

    @property
    def cluster(self) -> FakeCluster:
        """The cluster this backend talks to."""
        return self._cluster

    @property
    def sync(self) -> FakeBackend:
        """The cluster's sync backend (the same cluster)."""
        return self._sync

    async def _call(self, fn: Callable[[], _T]) -> _T:
        """Run a sync call inline, or in a thread when a latency fault may make it wait."""
        if not any(rule.latency > 0 for rule in self._cluster._faults):
            return fn()
        return await self._in_thread(fn)

    async def _in_thread(self, fn: Callable[[], _T]) -> _T:
        # Held from now until the thread is done, as work queued for another thread: the
        # virtual clock must not jump before the thread counts itself.
        hold = self._cluster.clock.hold(owned=False)

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
        return await self._call(partial(self._sync.create, manifest, dry_run=dry_run))

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return a copy of one object."""
        return await self._call(partial(self._sync.get, kind, namespace, name))

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
                self._sync.list,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        )

    async def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale resourceVersion is 409 Conflict."""
        return await self._call(partial(self._sync.replace, manifest))

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
            partial(self._sync.patch, kind, namespace, name, patch, subresource=subresource)
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
                self._sync.delete, kind, namespace, name, grace_period_seconds=grace_period_seconds
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
        opened = await self._call(
            partial(
                self._opener.watch,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_bookmarks=allow_bookmarks,
            )
        )
        return AsyncFakeWatch(self._cluster, self._clock, *opened.gen.args)  # type: ignore[attr-defined]

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
        opened = await self._call(
            partial(
                self._opener.read_log,
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
        return AsyncFakeLog(self._cluster, self._clock, *opened.gen.args)  # type: ignore[attr-defined]

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
            partial(self._sync.exec, namespace, pod, container, argv, stdin=stdin, timeout=timeout)
        )

    async def refresh_credentials(self) -> bool:
        """As the sync backend's: ``True`` once after each injected 401."""
        return self._sync.refresh_credentials()

    async def close(self) -> None:
        """Stop local processes; the in-memory state stays readable."""
        self._sync.close()


class _FakeStream:
    """What the two streams share: closing, and the wait on the cluster's clock."""

    def __init__(self, cluster: FakeCluster, clock: AsyncFakeClock, handle: StreamState) -> None:
        self._cluster = cluster
        self._lock = cluster.clock.lock
        self._clock = clock
        self._handle = handle
        self._done = False

    async def aclose(self) -> None:
        """End the stream (a read waiting in another task ends too)."""
        self._done = True
        if not self._handle.closed:
            self._handle.closed = True
            with self._lock:
                self._cluster.clock.notify()


class AsyncFakeWatch(_FakeStream):
    """A watch stream of the fake cluster, read by a coroutine (the sync stream's twin)."""

    def __init__(
        self,
        cluster: FakeCluster,
        clock: AsyncFakeClock,
        handle: StreamState,
        kind: str,
        ns: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
        initial: builtins.list[dict[str, Any]],
        cursor: int,
        deadline: float | None,
        bookmarks: bool,
        limit: int | None,
    ) -> None:
        super().__init__(cluster, clock, handle)
        self._store = cluster._store
        self._kind, self._ns, self._labels, self._fields = kind, ns, labels, fields
        self._cursor = cursor
        self._deadline = deadline
        self._bookmarks = bookmarks
        self._limit = limit
        self._sent = 0
        self._queue: collections.deque[tuple[Any, dict[str, Any]]] = collections.deque(
            ("ADDED", obj) for obj in initial
        )
        self._batch: builtins.list[tuple[Any, dict[str, Any]]] = []
        self._lost = False
        self._pinned = None if fields is None else fields.exact_name()
        self._name_only = self._pinned is not None and labels is None and len(fields.terms) == 1  # type: ignore[union-attr]

    def __aiter__(self) -> AsyncFakeWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._queue and not self._handle.closed:
                if self._limit is not None and self._sent >= self._limit:
                    self._done = True
                    raise StopAsyncIteration
                typ, obj = self._queue.popleft()
                self._sent += 1
                return WatchEvent(typ, copy_object(obj))
            if self._done or self._handle.closed:
                self._done = True
                raise StopAsyncIteration
            await self._wait()

    async def _wait(self) -> None:
        got = await self._clock.block_until(self._collect, self._deadline, soft=True)
        with self._lock:
            events, self._batch = self._batch, []
            rv_now = self._store.rv
        if self._lost or self._handle.closed:
            self._done = True
            return
        self._queue.extend(events)
        if not got:
            self._done = True
            if self._bookmarks:
                bookmark = {
                    "kind": self._kind,
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": str(rv_now)},
                }
                self._queue.append(("BOOKMARK", bookmark))

    def _collect(self) -> bool:
        """Gather the history entries this watch sends (lock held): the sync stream's rule."""
        if self._handle.closed:
            return True
        store = self._store
        rv_now = store.rv
        if rv_now <= self._cursor:
            return False
        if self._cursor + 1 < store.oldest():
            self._lost = True  # fell out of the window: the server closes such a watcher
            return True
        labels, fields, pinned = self._labels, self._fields, self._pinned
        filtered = labels is not None or fields is not None
        batch = self._batch
        for entry in store.hist[self._cursor + 1 - store.hist_base :]:
            rv, ekind, ens, ename, typ, obj, prev = entry
            if ekind != self._kind or (self._ns is not None and ens != self._ns):
                continue
            if pinned is not None and ename != pinned:
                continue
            if not filtered or self._name_only:
                batch.append((typ, obj))
                continue
            now_ok = _matches(obj, labels, fields)
            if typ in ("ADDED", "DELETED"):
                if now_ok:
                    batch.append((typ, obj))
                continue
            was_ok = prev is not None and _matches(prev, labels, fields)
            if now_ok:
                batch.append(("MODIFIED" if was_ok else "ADDED", obj))
            elif was_ok and prev is not None:
                gone = dict(prev)
                gone["metadata"] = dict(prev["metadata"])
                gone["metadata"]["resourceVersion"] = str(rv)
                batch.append(("DELETED", gone))
        self._cursor = rv_now
        return bool(batch)


class AsyncFakeLog(_FakeStream):
    """A container log of the fake cluster, read by a coroutine (the sync stream's twin)."""

    def __init__(
        self,
        cluster: FakeCluster,
        clock: AsyncFakeClock,
        handle: StreamState,
        buffer: LogBuffer,
        follow: bool,
        timestamps: bool,
        since_ns: int | None,
        tail_lines: int | None,
        limit_bytes: int | None,
        cut: int | None,
        split: bool,
        alive: Callable[[], bool] | None = None,
    ) -> None:
        super().__init__(cluster, clock, handle)
        self._buffer = buffer
        self._follow = follow
        self._timestamps = timestamps
        self._since = since_ns
        self._tail = tail_lines
        self._limit = limit_bytes
        self._cut = cut
        self._split = split
        self._alive = alive
        self._pos: Position | None = None
        self._sent_bytes = 0
        self._sent_lines = 0
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
                    raise item
                return item
            if self._done or self._handle.closed:
                self._done = True
                raise StopAsyncIteration
            await self._read()

    async def _read(self) -> None:
        """One round of the sync stream's loop: wait (following), read, queue the pieces."""
        buffer, handle = self._buffer, self._handle
        if self._pos is None:
            with self._lock:
                self._pos = buffer.start(self._since, self._tail)
        if self._follow:
            pos = self._pos
            await self._clock.block_until(partial(_has_more, buffer, pos, handle))
        with self._lock:
            if handle.closed:
                self._done = True
                return
            closed = buffer.closed
            pieces, self._pos = buffer.read(self._pos, whole_lines=self._follow and not closed)
        if not self._queue_pieces(pieces):
            self._done = True
            return
        if not self._follow or closed:
            with self._lock:
                more = self._follow and self._pos < buffer.end()
            if more:
                return
            if self._alive is not None:
                # An injected never-ending follow: silent until the pod is deleted.
                alive = self._alive
                await self._clock.block_until(lambda: handle.closed or not alive())
            self._done = True

    def _queue_pieces(self, pieces: builtins.list[tuple[int, bytes]]) -> bool:
        """Queue the pieces as the sync stream yields them; ``False`` once the stream ends."""
        per_line = self._cut is not None or self._split
        for stamp, block in pieces:
            prefix = format_rfc3339_nano(stamp).encode() + b" " if self._timestamps else b""
            if not per_line:
                data = block
                if prefix:
                    data = prefix + block.replace(b"\n", b"\n" + prefix)
                    if block.endswith(b"\n"):
                        data = data[: -len(prefix)]
                if not self._put(data):
                    return False
                continue
            for line in _lines(block):
                if self._cut is not None and self._sent_lines >= self._cut:
                    self._queue.append(
                        BackendUnavailable(
                            f"connection reset: log stream cut after {self._cut} lines "
                            "(injected fault)"
                        )
                    )
                    return True
                self._sent_lines += 1
                if not self._put(prefix + line):
                    return False
        return True

    def _put(self, data: bytes) -> bool:
        if self._limit is not None:
            room = self._limit - self._sent_bytes
            if room <= 0:
                return False
            data = data[:room]
        self._sent_bytes += len(data)
        if self._split:
            self._queue.extend(split_inside_utf8(data))
        else:
            self._queue.append(data)
        return True
