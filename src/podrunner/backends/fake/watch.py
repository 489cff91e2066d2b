"""Watches of the fake API server: the store's history streamed as the watch cache does.

A watch starts after a resourceVersion still in the history window (older ones are 410 Gone)
or, with none, with a synthetic ``ADDED`` per current object. An object that stops matching
the selectors is sent as ``DELETED`` (its previous content at the new version) and one that
starts matching as ``ADDED``. A stream ends at its server-side timeout (with a ``BOOKMARK``
when asked), when the watcher falls out of the window, or when it is closed from any thread.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any

from podrunner.backends._stream import StreamState, WatchStream
from podrunner.backends.base import API_VERSIONS, WatchEvent
from podrunner.backends.fake._fastcopy import copy_object
from podrunner.backends.fake.selectors import (
    FieldSelector,
    LabelSelector,
    matches,
    parse_field,
    parse_label,
    select,
)
from podrunner.errors import BadRequest, Gone

if TYPE_CHECKING:
    from podrunner.backends.fake.clock import SchedulingClock
    from podrunner.backends.fake.store import Entry, Store

__all__ = ["FakeWatchStream", "WatchFeed", "open_watch", "wake"]


def open_watch(
    store: Store,
    kind: str,
    namespace: str | None,
    *,
    label_selector: str | None,
    field_selector: str | None,
    resource_version: str | None,
    timeout_seconds: float | None,
    allow_bookmarks: bool,
    limit: int | None,
) -> FakeWatchStream:
    """Start a watch (lock held): check the request now, stream lazily.

    Args:
        store: The objects and their history.
        kind: A served kind.
        namespace: The namespace, or ``None`` for all (always ``None`` for Namespaces).
        label_selector: As the backend protocol takes it.
        field_selector: As the backend protocol takes it.
        resource_version: Start after this version; ``None``, ``""`` or ``"0"``: now, with
            the current objects first.
        timeout_seconds: The server-side timeout (on the cluster's clock).
        allow_bookmarks: End a timed-out stream with a ``BOOKMARK``.
        limit: End the stream after this many events (an injected fault).

    Raises:
        BadRequest: A bad selector, timeout or resource version.
        Gone: The version is older than the history window.
    """
    clock = store.clock
    labels = parse_label(label_selector)
    fields = parse_field(kind, field_selector)
    if timeout_seconds is not None and timeout_seconds < 0:
        raise BadRequest("timeoutSeconds must be non-negative")
    initial: list[dict[str, Any]] = []
    if resource_version in (None, "", "0"):
        initial = select(store.objects[kind], namespace, labels, fields)
        cursor = store.rv
    else:
        try:
            cursor = int(str(resource_version))
        except ValueError:
            raise BadRequest(f'invalid resource version "{resource_version}"') from None
        oldest = store.oldest()
        if cursor < oldest - 1:
            raise Gone(f"too old resource version: {cursor} ({oldest - 1})")
    deadline = None
    if timeout_seconds is not None:
        deadline = clock.monotonic() + float(timeout_seconds)
    stream = FakeWatchStream()
    watcher = _Watcher(store, stream.state, kind, namespace, labels, fields, cursor)
    stream.feed = feed = WatchFeed(watcher, initial, deadline, allow_bookmarks, limit)
    stream.gen = _events(feed, clock)
    stream.interrupt = partial(wake, clock)
    return stream


def wake(clock: SchedulingClock) -> None:
    """Make a stream's reader, blocked in the clock, look again (it was closed)."""
    with clock.lock:
        clock.notify()


class _Watcher:
    """Where one watch is in the history, and the events it has yet to send."""

    __slots__ = (
        "batch",
        "cursor",
        "fields",
        "handle",
        "kind",
        "labels",
        "lost",
        "namespace",
        "pinned",
        "plain",
        "store",
    )

    def __init__(
        self,
        store: Store,
        handle: StreamState,
        kind: str,
        namespace: str | None,
        labels: LabelSelector | None,
        fields: FieldSelector | None,
        cursor: int,
    ) -> None:
        self.store = store
        self.handle = handle
        self.kind = kind
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.cursor = cursor
        # A watch on one pod by name (what the runner opens) skips other objects by the name
        # in the history entry, and needs no matching at all when the name is the only term.
        self.pinned = None if fields is None else fields.exact_name()
        self.plain = labels is None and (
            fields is None or (self.pinned is not None and len(fields.terms) == 1)
        )
        self.batch: list[tuple[Any, dict[str, Any]]] = []
        self.lost = False

    def collect(self) -> bool:
        """Gather the events after the cursor (lock held); ``True`` when there is news."""
        if self.handle.closed:
            return True  # closed from another thread: end the stream now
        store = self.store
        rv_now = store.rv
        cursor = self.cursor
        if rv_now <= cursor:
            return False
        if cursor + 1 < store.oldest():
            self.lost = True  # fell out of the window: the server closes such a watcher
            return True
        kind, ns, pinned, plain = self.kind, self.namespace, self.pinned, self.plain
        batch = self.batch
        for entry in store.hist[cursor + 1 - store.hist_base :]:
            if entry[1] != kind or (ns is not None and entry[2] != ns):
                continue
            if pinned is not None and entry[3] != pinned:
                continue
            if plain:
                batch.append((entry[4], entry[5]))
            else:
                self._select(entry)
        self.cursor = rv_now
        return bool(batch)

    def _select(self, entry: Entry) -> None:
        """Send a change as the selectors see it: entering is ADDED, leaving is DELETED."""
        rv, _, _, _, typ, obj, prev = entry
        labels, fields = self.labels, self.fields
        now_ok = matches(obj, labels, fields)
        if typ in ("ADDED", "DELETED"):
            if now_ok:
                self.batch.append((typ, obj))
            return
        was_ok = prev is not None and matches(prev, labels, fields)
        if now_ok:
            self.batch.append(("MODIFIED" if was_ok else "ADDED", obj))
        elif was_ok and prev is not None:
            gone = dict(prev)
            gone["metadata"] = dict(prev["metadata"])
            gone["metadata"]["resourceVersion"] = str(rv)
            self.batch.append(("DELETED", gone))

    def take(self) -> list[tuple[Any, dict[str, Any]]]:
        """Return the gathered events and forget them (lock held)."""
        events, self.batch = self.batch, []
        return events


class WatchFeed:
    """One watch's progress: the events ready to send, and the non-blocking step to get more.

    Both readers drive it, the sync stream's generator and the async fake's stream
    (:class:`~podrunner.backends.fake.aio.AsyncFakeWatch`): send what :meth:`pop` returns;
    when it returns ``None`` and the feed is not :attr:`over`, wait on the clock until
    :attr:`collect` is true or :attr:`deadline` passes, then pass the wait's result to
    :meth:`gathered` (lock held).

    Attributes:
        collect: The wait's predicate (lock held): ``True`` on news or the stream's end.
        deadline: The server-side timeout on the clock's monotonic time, or ``None``.
        over: No more waiting: the stream ends once :meth:`pop` has nothing left.
    """

    __slots__ = ("bookmarks", "collect", "deadline", "limit", "over", "queue", "sent", "watcher")

    def __init__(
        self,
        watcher: _Watcher,
        initial: list[dict[str, Any]],
        deadline: float | None,
        bookmarks: bool,
        limit: int | None,
    ) -> None:
        self.watcher = watcher
        self.collect: Callable[[], bool] = watcher.collect
        self.deadline = deadline
        self.bookmarks = bookmarks
        self.limit = limit
        self.sent = 0
        self.over = False
        self.queue: collections.deque[tuple[Any, dict[str, Any]]] = collections.deque(
            ("ADDED", obj) for obj in initial
        )

    def pop(self) -> WatchEvent | None:
        """The next event to send, or ``None`` when none is ready (or the stream ended)."""
        queue = self.queue
        if not queue:
            return None
        typ, obj = queue[0]
        if self.watcher.handle.closed or (
            # An injected cut: the events stop (a timeout's bookmark still comes).
            typ != "BOOKMARK" and self.limit is not None and self.sent >= self.limit
        ):
            self.over = True
            queue.clear()
            return None
        queue.popleft()
        self.sent += 1
        return WatchEvent(typ, copy_object(obj))

    def gathered(self, more: bool) -> None:
        """Queue what the wait gathered (lock held); ``more`` is what the wait returned."""
        watcher = self.watcher
        events = watcher.take()
        if watcher.lost or watcher.handle.closed:
            self.over = True
            return
        self.queue.extend(events)
        if not more:  # the server-side timeout
            self.over = True
            if self.bookmarks:
                meta = {"resourceVersion": str(watcher.store.rv)}
                self.queue.append(
                    (
                        "BOOKMARK",
                        {
                            "kind": watcher.kind,
                            "apiVersion": API_VERSIONS[watcher.kind],
                            "metadata": meta,
                        },
                    )
                )


class FakeWatchStream(WatchStream):
    """The fake's watch stream; its :attr:`feed` is what an async reader drives instead."""

    __slots__ = ("feed",)

    feed: WatchFeed


def _events(feed: WatchFeed, clock: SchedulingClock) -> Generator[WatchEvent, None, None]:
    while True:
        event = feed.pop()
        if event is not None:
            yield event
        elif feed.over:
            return
        else:
            with clock.lock:
                feed.gathered(clock.block_until(feed.collect, feed.deadline, soft=True))
