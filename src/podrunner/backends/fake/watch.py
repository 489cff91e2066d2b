"""Watches of the fake API server: the store's history streamed as the watch cache does.

A watch starts after a resourceVersion still in the history window (older ones are 410 Gone)
or, with none, with a synthetic ``ADDED`` per current object. An object that stops matching
the selectors is sent as ``DELETED`` (its previous content at the new version) and one that
starts matching as ``ADDED``. A stream ends at its server-side timeout (with a ``BOOKMARK``
when asked), when the watcher falls out of the window, or when it is closed from any thread.
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import TYPE_CHECKING, Any

from podrunner.backends._stream import StreamState, WatchStream
from podrunner.backends.base import WatchEvent
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

__all__ = ["open_watch", "wake"]


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
) -> WatchStream:
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
    stream = WatchStream()
    watcher = _Watcher(store, stream.state, kind, namespace, labels, fields, cursor)
    stream.gen = _events(watcher, initial, deadline, allow_bookmarks, limit)
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


def _events(
    watcher: _Watcher,
    initial: list[dict[str, Any]],
    deadline: float | None,
    bookmarks: bool,
    limit: int | None,
) -> Generator[WatchEvent, None, None]:
    store = watcher.store
    clock = store.clock
    handle = watcher.handle
    sent = 0
    events: list[tuple[Any, dict[str, Any]]] = [("ADDED", obj) for obj in initial]
    more = True
    rv_now = store.rv
    while True:
        for typ, obj in events:
            if limit is not None and sent >= limit:
                return
            yield WatchEvent(typ, copy_object(obj))
            sent += 1
        if not more:
            if bookmarks:
                meta = {"resourceVersion": str(rv_now)}
                yield WatchEvent(
                    "BOOKMARK", {"kind": watcher.kind, "apiVersion": "v1", "metadata": meta}
                )
            return
        with clock.lock:
            more = clock.block_until(watcher.collect, deadline, soft=True)
            events = watcher.take()
            rv_now = store.rv
        if watcher.lost or handle.closed:
            return
