"""The shared pod watch for coroutines: one stream per namespace, read by one task.

The twin of :mod:`podrunner.run.watch` for :class:`~podrunner.AsyncPodRunner`: every run of
a runner subscribes to its pod on the namespace's one watch stream, and a single reader task
hands each event to the run it is about. The rules are the sync watch's: a lone run starts
the stream where its pod was created (no list request); a run whose pod is older than the
stream reads it once; a 410 Gone relists and resumes; a broken stream backs off under the
:class:`~podrunner.RetryPolicy`; streams that end empty, again and again, make the watch read
the pods instead. When the retry budget is spent, every subscriber's wait raises the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from functools import partial
from typing import Any

from podrunner.backends.base import AsyncStream, WatchEvent
from podrunner.errors import (
    BackendError,
    BackendUnavailable,
    Gone,
    NotFound,
    ServerError,
    TooManyRequests,
    error_for_status,
)
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.aio_retry import AsyncRetryingBackend
from podrunner.run.watch import _EMPTY_STREAMS_BEFORE_READ, _rv_before

__all__ = ["AsyncSharedWatch", "AsyncSubscription", "AsyncWatchRegistry"]


class AsyncSubscription:
    """One run's place on a shared watch: the events for its pod wait here."""

    __slots__ = ("error", "name", "pending", "rv", "waiter")

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: list[WatchEvent] = []
        self.waiter: asyncio.Future[Any] | None = None
        self.error: BaseException | None = None  # the watch gave up: raised by the next wait
        self.rv = -1  # the newest version delivered (a read of the pod never goes back)

    def wake(self) -> None:
        """Wake whoever waits on this subscription."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncSharedWatch:
    """One pod watch per namespace, shared by every run of an async runner."""

    _WATCH_SECONDS = 60.0

    def __init__(self, api: AsyncRetryingBackend, namespace: str) -> None:
        self._api = api
        self._namespace = namespace
        self._subs: dict[str, AsyncSubscription] = {}
        self._rv: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping: set[asyncio.Task[None]] = set()  # cancelled readers not yet ended
        self._stream_end = 0.0
        self._failures = 0
        self._failing_since = 0.0
        self._events_in_stream = 0
        self._empty_streams = 0
        self._reopen_at = 0.0
        self.streams_opened = 0
        self.open_streams = 0
        self.peak_open_streams = 0

    async def subscribe(self, name: str, resource_version: str | None) -> AsyncSubscription:
        """Start receiving the events of pod ``name`` (stored at ``resource_version``)."""
        sub = AsyncSubscription(name)
        sync = False
        # Decided and registered without an await in between: another run subscribing
        # meanwhile must see this one.
        if not self._subs and resource_version is not None:
            # A lone run: start the stream where its pod was created, so no list request is
            # needed and no stale history is replayed.
            self._detach_reader()
            self._rv = resource_version
        elif self._rv is None:
            self._rv = resource_version
        elif resource_version is not None:
            sync = _rv_before(resource_version, self._rv)
        self._subs[name] = sub
        if sync:
            # The stream is already past this pod's creation: read it once so that no
            # transition between its creation and the stream's position is missed.
            with contextlib.suppress(NotFound):
                pod = await self._api.get("Pod", self._namespace, name)
                self._deliver(sub, WatchEvent("MODIFIED", pod))
        return sub

    def take(self, sub: AsyncSubscription) -> list[WatchEvent]:
        """Return and clear the events queued for ``sub`` without waiting."""
        events, sub.pending = sub.pending, []
        return events

    def unsubscribe(self, sub: AsyncSubscription) -> None:
        """Stop receiving events; the reader stops when nobody is left."""
        if self._subs.get(sub.name) is sub:
            del self._subs[sub.name]
        if not self._subs:
            self._detach_reader()

    async def wait(
        self,
        sub: AsyncSubscription,
        deadline: float | None,
        waiter: asyncio.Future[Any] | None = None,
    ) -> list[WatchEvent]:
        """Return the events queued for ``sub``, waiting for some until ``deadline``.

        Returns an empty list when the deadline passed or ``waiter`` (which the caller may
        resolve to be woken, on cancel) is done without news.

        Raises:
            BackendError: The watch gave up after its retry budget.
        """
        clock = self._api.clock
        if not sub.pending and sub.error is None:
            remaining = None if deadline is None else deadline - clock.monotonic()
            if remaining is not None and remaining <= 0:
                return []
            self._ensure_reader()
            sub.waiter = waiter or asyncio.get_running_loop().create_future()
            try:
                await clock.wait(sub.waiter, remaining)
            finally:
                sub.waiter = None
        if sub.error is not None:
            error, sub.error = sub.error, None
            raise error
        return self.take(sub)

    async def close(self) -> None:
        """Stop the reader and close the stream."""
        self._subs.clear()
        await self._stop_reader()

    # -- the reader task ----------------------------------------------------------------------

    def _ensure_reader(self) -> None:
        if self._task is None and self._subs:
            self._task = asyncio.get_running_loop().create_task(
                self._read(), name=f"podrunner-watch-{self._namespace}"
            )

    def _detach_reader(self) -> None:
        """Cancel the reader; the next wait starts a new one (the old one closes its stream)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def _stop_reader(self) -> None:
        self._detach_reader()
        for task in list(self._stopping):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _read(self) -> None:
        # The stream belongs to this task: a reader cancelled while a new one starts closes
        # its own stream, never the new one's.
        reader = _Reader()
        try:
            while self._subs and self._task is asyncio.current_task():
                await self._pump(reader)
        except BackendError as exc:
            # Given up: every run waiting on this watch sees the error.
            for sub in self._subs.values():
                sub.error = exc
                sub.wake()
        finally:
            if self._task is asyncio.current_task():
                self._task = None
            await asyncio.shield(self._drop_stream(reader))

    async def _drop_stream(self, reader: _Reader) -> None:
        stream, reader.stream = reader.stream, None
        if stream is not None:
            self.open_streams -= 1
            with contextlib.suppress(BackendError):
                await stream.aclose()

    def _deliver(self, sub: AsyncSubscription, event: WatchEvent) -> None:
        rv = _rv_int((event.object.get("metadata") or {}).get("resourceVersion"))
        if rv is not None:
            if rv <= sub.rv and event.type != "DELETED":
                return  # older than what the run has seen (a read that raced the stream)
            sub.rv = max(sub.rv, rv)
        sub.pending.append(event)
        sub.wake()

    async def _failed(self, exc: BackendError) -> None:
        """Back off after a broken stream; give up (raise) after the retry budget."""
        api = self._api
        now = api.clock.monotonic()
        self._failures += 1
        if self._failures == 1:
            self._failing_since = now
        if api.policy.exhausted(self._failures - 1, exc, now - self._failing_since):
            self._failures = 0
            raise exc
        if isinstance(exc, Gone) and self._failures == 1:
            return  # relist at once: that is the normal way to recover from 410
        delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
        await api.clock.sleep(delay or api.policy.delay(self._failures))

    def _ended_empty(self) -> None:
        """A stream ended long before its timeout with no event: back off before the next."""
        self._empty_streams += 1
        if self._empty_streams >= _EMPTY_STREAMS_BEFORE_READ:
            self._rv = None
        delay = self._api.policy.delay(min(self._empty_streams, 16))
        self._reopen_at = self._api.clock.monotonic() + delay

    async def _list_and_deliver(self) -> None:
        api = self._api
        listed = await api.list("Pod", self._namespace, label_selector=MANAGED_SELECTOR)
        self._rv = listed.resource_version
        names = set()
        for obj in listed.items:
            name = obj.get("metadata", {}).get("name", "")
            names.add(name)
            sub = self._subs.get(name)
            if sub is not None:
                self._deliver(sub, WatchEvent("MODIFIED", obj))
        for sub in [sub for name, sub in self._subs.items() if name not in names]:
            # Absent from the list: gone while nobody watched, or created just after the list
            # was taken. Only a direct read can tell.
            get = partial(api.get, "Pod", self._namespace, sub.name)
            try:
                found = WatchEvent("MODIFIED", await get())
            except NotFound:
                found = WatchEvent("DELETED", {"metadata": {"name": sub.name}})
            self._deliver(sub, found)

    async def _open(self) -> AsyncStream[WatchEvent]:
        api = self._api
        if self._rv is None:
            await self._list_and_deliver()
        seconds = math.ceil(self._WATCH_SECONDS)
        stream = await api.watch(
            "Pod",
            self._namespace,
            label_selector=MANAGED_SELECTOR,
            resource_version=self._rv,
            timeout_seconds=seconds,
            allow_bookmarks=True,
        )
        self._stream_end = api.clock.monotonic() + seconds
        self._events_in_stream = 0
        self.streams_opened += 1
        self.open_streams += 1
        self.peak_open_streams = max(self.peak_open_streams, self.open_streams)
        return stream

    async def _pump(self, reader: _Reader) -> None:
        """Read one event from the shared stream and hand it to its subscriber."""
        clock = self._api.clock
        try:
            if reader.stream is None:
                pause = self._reopen_at - clock.monotonic()
                if pause > 0:
                    await clock.sleep(pause)
                reader.stream = await self._open()
            event = await reader.stream.__anext__()
        except StopAsyncIteration:
            empty = self._events_in_stream == 0 and clock.monotonic() < self._stream_end - 1
            await self._drop_stream(reader)
            if empty:
                self._ended_empty()
            else:
                self._empty_streams = 0
            return
        except Gone as exc:
            await self._drop_stream(reader)
            self._rv = None
            await self._failed(exc)
            return
        except (ServerError, BackendUnavailable, TooManyRequests) as exc:
            await self._drop_stream(reader)
            await self._failed(exc)
            return
        await self._dispatch(event, reader)

    async def _dispatch(self, event: WatchEvent, reader: _Reader) -> None:
        """Hand one event of the stream to the run it is about."""
        self._failures = 0
        self._events_in_stream += 1
        self._empty_streams = 0
        obj = event.object
        if event.type == "ERROR":
            # An in-stream Status: 410 means the version expired; anything else, reconnect.
            await self._drop_stream(reader)
            if obj.get("code") == 410:
                self._rv = None
            await self._failed(
                error_for_status(
                    int(obj.get("code") or 500), obj.get("reason") or "", obj.get("message") or ""
                )
            )
            return
        meta = obj.get("metadata", {})
        if meta.get("resourceVersion"):
            self._rv = meta["resourceVersion"]
        if event.type == "BOOKMARK":
            return
        sub = self._subs.get(meta.get("name", ""))
        if sub is not None:
            self._deliver(sub, event)


class _Reader:
    """What one reader task holds: its stream."""

    __slots__ = ("stream",)

    def __init__(self) -> None:
        self.stream: AsyncStream[WatchEvent] | None = None


def _rv_int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class AsyncWatchRegistry:
    """The shared watches of one async runner, one per namespace, made on first use."""

    def __init__(self, api: AsyncRetryingBackend) -> None:
        self._api = api
        self._watches: dict[str, AsyncSharedWatch] = {}

    def for_namespace(self, namespace: str) -> AsyncSharedWatch:
        """The namespace's shared watch."""
        watch = self._watches.get(namespace)
        if watch is None:
            watch = self._watches[namespace] = AsyncSharedWatch(self._api, namespace)
        return watch

    async def close(self) -> None:
        """Close every watch."""
        watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            await watch.close()

    def stats(self) -> dict[str, int]:
        """Counters: streams opened, open now and the peak."""
        watches = list(self._watches.values())
        return {
            "streams_opened": sum(w.streams_opened for w in watches),
            "open_streams": sum(w.open_streams for w in watches),
            "peak_open_streams": max((w.peak_open_streams for w in watches), default=0),
        }
