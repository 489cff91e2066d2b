"""The shared pod watch: one stream per namespace, read by whichever waiting run is free.

Leader/follower: a run that waits reads the namespace's stream if nobody else does and hands
each event to the run it is about; the others wait on their own event through the backend
clock. A single run thus costs no extra thread, and a thousand runs share one stream. A 410
Gone relists and resumes; streams that end empty, again and again, make the watch read the
pods instead (a proxy or server that cuts every watch).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Protocol

from podrunner.backends.base import WatchEvent
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
from podrunner.run.retry import RetryingBackend

__all__ = ["Either", "Flag", "SharedWatch", "Subscription", "WatchRegistry"]

_MANAGED = MANAGED_SELECTOR
# Watch streams in a row that end at once with nothing in them before the watch stops
# trusting the stream and reads the pods instead (a proxy or server that cuts every watch).
_EMPTY_STREAMS_BEFORE_READ = 3


class _Settable(Protocol):
    def is_set(self) -> bool: ...


class Flag:
    """A flag any thread sets and others check (nobody blocks on it, so no Event is needed)."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        """Set the flag."""
        self._set = True

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set


class Either:
    """Set when any of its flags is set."""

    __slots__ = ("flags",)

    def __init__(self, *flags: _Settable) -> None:
        self.flags = flags

    def is_set(self) -> bool:
        """Whether any flag is set."""
        return any(flag.is_set() for flag in self.flags)


class Subscription:
    """One run's place on a shared watch: the events for its pod wait here."""

    __slots__ = ("event", "name", "pending")

    def __init__(self, name: str) -> None:
        self.name = name
        # Made by the first wait that blocks on it (under the watch lock): a run that only ever
        # leads the stream never blocks, so it needs no Event. Nobody blocks on a missing one,
        # so a wake-up aimed at it has nobody to wake.
        self.event: threading.Event | None = None
        self.pending: list[WatchEvent] = []

    def wake(self) -> None:
        """Wake whoever waits on this subscription."""
        event = self.event
        if event is not None:
            event.set()


class SharedWatch:
    """One pod watch per namespace, shared by every run of a runner.

    Leader/follower: a run that needs news takes the reader role if it is free and pulls the
    next event from the shared stream, handing events for other pods to their subscribers;
    the others wait on their own event through the backend clock. When the reader leaves,
    it wakes one waiting run to take over, so a lone run never needs an extra thread.
    """

    _WATCH_SECONDS = 60.0

    def __init__(self, api: RetryingBackend, namespace: str) -> None:
        self._api = api
        self._clock = api.clock
        self._namespace = namespace
        self._lock = threading.Lock()
        self._subs: dict[str, Subscription] = {}
        # Followers between deciding to wait and waking up: the reader role is handed to one
        # of these, never to a run nobody waits on (its wake-up would be lost).
        self._blocked: set[Subscription] = set()
        self._reading = False
        self._rv: str | None = None
        self._stream: Iterator[WatchEvent] | None = None
        self._interrupted = False  # interrupt() asked the reader to drop its stream
        self._stream_end = 0.0
        self._failures = 0
        self._failing_since = 0.0  # when the first of those failures happened
        self._events_in_stream = 0
        self._empty_streams = 0  # streams in a row that ended early with no event
        self._reopen_at = 0.0  # back-off after such streams: no new stream before this
        self._listed = False  # the last _open listed the pods and handed them out
        self._closing = False
        self.listener: Callable[[str], None] | None = None
        self.streams_opened = 0
        self.open_streams = 0
        self.peak_open_streams = 0

    def subscribe(self, name: str, resource_version: str | None) -> Subscription:
        """Start receiving the events of pod ``name`` (stored at ``resource_version``)."""
        sub = Subscription(name)
        sync = False
        stale: Iterator[WatchEvent] | None = None
        with self._lock:
            if not self._subs and not self._reading and resource_version is not None:
                # A lone run: start the stream where its pod was created, so no list request
                # is needed and no stale history is replayed.
                stale, self._stream = self._stream, None
                self._rv = resource_version
            elif self._rv is None:
                self._rv = resource_version
            elif resource_version is not None:
                sync = _rv_before(resource_version, self._rv)
            self._subs[name] = sub
        self._close_stream(stale)
        if sync:
            # The shared stream is already past this pod's creation: read it once so no
            # transition between its creation and the stream's position is missed.
            self._sync(sub)
        return sub

    def take(self, sub: Subscription) -> list[WatchEvent]:
        """Return and clear the events queued for ``sub`` without waiting."""
        with self._lock:
            events, sub.pending = sub.pending, []
            return events

    def unsubscribe(self, sub: Subscription) -> None:
        """Stop receiving events (handing the stream to another run if this one read it)."""
        with self._lock:
            if self._subs.get(sub.name) is sub:
                del self._subs[sub.name]
            self._blocked.discard(sub)
            self._hand_over(sub)

    def close(self) -> None:
        """Close the stream (now, or when its reader lets go)."""
        with self._lock:
            if self._reading:
                # A reader is inside the stream: closing it from here would break that
                # thread. The reader drops it when its read returns.
                self._closing = True
                return
            stream, self._stream = self._stream, None
        self._close_stream(stream)

    def _drop_stream(self) -> None:
        stream, self._stream = self._stream, None
        self._close_stream(stream)

    def interrupt(self) -> None:
        """Close the shared stream from any thread.

        Either nobody is reading it, or its reader is blocked and must let go: backends'
        streams end when closed mid-read, and the reader drops it as any ended stream.
        """
        with self._lock:
            if not self._reading:
                # Idle between readers: close it here, with its bookkeeping.
                idle, self._stream = self._stream, None
            else:
                # Set before the stream is read: a reader that has just opened one checks
                # this after publishing it, so either it sees the request or this sees it.
                self._interrupted = True
                idle = None
            live = self._stream
        if idle is not None:
            self._close_stream(idle)
            return
        close = getattr(live, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):  # a plain generator another thread runs
                close()

    def _close_stream(self, stream: Iterator[WatchEvent] | None) -> None:
        if stream is not None:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
            self.open_streams -= 1

    def _hand_over(self, leaving: Subscription) -> None:
        # Called with the lock held: wake one waiting run so it takes the reader role.
        for other in self._blocked:
            if other is not leaving:
                other.wake()
                return

    def _sync(self, sub: Subscription) -> None:
        try:
            obj = self._api.get("Pod", self._namespace, sub.name)
        except NotFound:
            return
        with self._lock:
            self._deliver(sub, WatchEvent("MODIFIED", obj))

    def _deliver(self, sub: Subscription, event: WatchEvent) -> None:
        # Called with the lock held: queue the event and wake whoever waits for the pod.
        sub.pending.append(event)
        sub.wake()
        if self.listener is not None:
            self.listener(sub.name)

    def wait(
        self, sub: Subscription, deadline: float | None, cancel: _Settable
    ) -> list[WatchEvent]:
        """Return the next events for ``sub``; an empty list when the deadline passed."""
        while True:
            with self._lock:
                self._blocked.discard(sub)  # awake: not a candidate for the reader role now
                if sub.pending:
                    return self._take_pending(sub)
                event = sub.event
                lead = not self._reading
                if lead:
                    # The leader never blocks on its event; a later follower pass clears it.
                    self._reading = True
                else:
                    if event is None:
                        event = sub.event = threading.Event()
                    elif event.is_set():
                        event.clear()
                    self._blocked.add(sub)
            remaining = None if deadline is None else deadline - self._clock.monotonic()
            if cancel.is_set() or (remaining is not None and remaining <= 0):
                self._stop_waiting(sub, lead)
                return []
            if not lead:
                assert event is not None  # made above for a follower
                self._clock.wait(event, remaining)
                continue
            try:
                self._pump(remaining)
            except BaseException:
                self._leave(sub)
                raise
            self._drop_if_closing()
            with self._lock:
                self._end_reading()
                if sub.pending:
                    # This reader leaves with its news (taken now, as the next pass would):
                    # someone else leads.
                    self._hand_over(sub)
                    return self._take_pending(sub)

    @staticmethod
    def _take_pending(sub: Subscription) -> list[WatchEvent]:
        # Called with the lock held: the queued events, and the wake-up they caused spent.
        events, sub.pending = sub.pending, []
        if sub.event is not None and sub.event.is_set():
            sub.event.clear()
        return events

    def _stop_waiting(self, sub: Subscription, lead: bool) -> None:
        with self._lock:
            self._blocked.discard(sub)
            if lead:
                self._end_reading()
                self._hand_over(sub)

    def _leave(self, sub: Subscription) -> None:
        """The reader role ends after a failed read: the events stay queued for ``sub``."""
        self._drop_if_closing()
        with self._lock:
            self._end_reading()
            if sub.pending:
                self._hand_over(sub)

    def _drop_if_closing(self) -> None:
        # close() asked while this thread read the stream: it is this reader's to drop.
        if self._closing:
            self._closing = False
            self._drop_stream()

    def _end_reading(self) -> None:
        # Lock held: give up the reader role; the stream stays open for the next reader.
        self._reading = False
        self._interrupted = False  # whatever asked the reader to stop, it has

    def _failed(self, exc: BackendError) -> None:
        """Back off after a broken stream; give up (raise) after the retry budget.

        An outage (no answer, 502/503/504) is retried until the policy's ``outage`` budget.
        """
        now = self._clock.monotonic()
        self._failures += 1
        if self._failures == 1:
            self._failing_since = now
        if self._api.policy.exhausted(self._failures - 1, exc, now - self._failing_since):
            self._failures = 0
            raise exc
        if isinstance(exc, Gone) and self._failures == 1:
            return  # relist at once: that is the normal way to recover from 410
        delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
        self._clock.sleep(delay or self._api.policy.delay(self._failures))

    def _ended_empty(self) -> None:
        """A stream ended long before its timeout with no event: back off before the next.

        Reconnecting at once would be a busy loop against a server that cuts every watch;
        after a few such streams the next one starts with a list of the pods, so runs still
        see their pods finish (the watch then works as a poll).
        """
        self._empty_streams += 1
        if self._empty_streams >= _EMPTY_STREAMS_BEFORE_READ:
            self._rv = None
        delay = self._api.policy.delay(min(self._empty_streams, 16))
        self._reopen_at = self._clock.monotonic() + delay

    def _open(self, remaining: float | None) -> Iterator[WatchEvent]:
        api = self._api
        if self._rv is None:
            listed = api.list("Pod", self._namespace, label_selector=_MANAGED)
            self._rv = listed.resource_version
            self._listed = True
            names = set()
            with self._lock:
                for obj in listed.items:
                    name = obj.get("metadata", {}).get("name", "")
                    names.add(name)
                    sub = self._subs.get(name)
                    if sub is not None:
                        self._deliver(sub, WatchEvent("MODIFIED", obj))
                missing = [sub for name, sub in self._subs.items() if name not in names]
            for sub in missing:
                # Absent from the list: gone while nobody watched, or created just after the
                # list was taken. Only a direct read can tell.
                get = partial(api.get, "Pod", self._namespace, sub.name)
                try:
                    found = WatchEvent("MODIFIED", get())
                except NotFound:
                    found = WatchEvent("DELETED", {"metadata": {"name": sub.name}})
                with self._lock:
                    self._deliver(sub, found)
        # A bounded server-side timeout lets an idle reader notice it was asked to stop.
        seconds = (
            self._WATCH_SECONDS
            if remaining is None
            else max(1.0, min(remaining, self._WATCH_SECONDS))
        )
        rv = self._rv
        stream = api.watch(
            "Pod",
            self._namespace,
            label_selector=_MANAGED,
            resource_version=rv,
            timeout_seconds=math.ceil(seconds),
            allow_bookmarks=True,
        )
        self._stream_end = self._clock.monotonic() + math.ceil(seconds)
        self._events_in_stream = 0
        self.streams_opened += 1
        self.open_streams += 1
        self.peak_open_streams = max(self.peak_open_streams, self.open_streams)
        return stream

    def _pump(self, remaining: float | None) -> None:
        """Read one event from the shared stream and hand it to its subscriber."""
        self._prepare_stream(remaining)
        try:
            if self._stream is None:
                self._stream = self._open(remaining)
                if self._listed:
                    # The list handed runs their pods: let them see that before this
                    # reader blocks on the new stream.
                    self._listed = False
                    return
            if self._interrupted:
                self._interrupted = False
                self._drop_stream()
                return
            event = next(self._stream)
        except StopIteration:
            self._stream_ended()
            return
        except Gone as exc:
            self._drop_stream()
            self._rv = None
            self._failed(exc)
            return
        except (ServerError, BackendUnavailable, TooManyRequests) as exc:
            self._drop_stream()
            self._failed(exc)
            return
        self._dispatch(event)

    def _prepare_stream(self, remaining: float | None) -> None:
        """Drop a stream that outlives the reader's deadline; wait out a pause before reopening."""
        clock = self._clock
        # A stream opened by an earlier reader may outlive this reader's deadline; a new one
        # with a shorter server-side timeout keeps the deadline honest.
        if (
            self._stream is not None
            and remaining is not None
            and self._stream_end > clock.monotonic() + remaining + 1
        ):
            self._drop_stream()
        if self._stream is None and self._reopen_at > clock.monotonic():
            pause = self._reopen_at - clock.monotonic()
            clock.sleep(pause if remaining is None else max(0.0, min(pause, remaining)))

    def _stream_ended(self) -> None:
        empty = (
            self._events_in_stream == 0
            and not self._interrupted
            and self._clock.monotonic() < self._stream_end - 1
        )
        self._drop_stream()
        if empty:
            self._ended_empty()
        else:
            self._empty_streams = 0

    def _dispatch(self, event: WatchEvent) -> None:
        """Hand one event of the stream to the run it is about."""
        self._failures = 0
        self._events_in_stream += 1
        self._empty_streams = 0
        obj = event.object
        if event.type == "ERROR":
            # An in-stream Status: 410 means the version expired; anything else, reconnect.
            self._drop_stream()
            if obj.get("code") == 410:
                self._rv = None
            self._failed(
                error_for_status(
                    int(obj.get("code") or 500), obj.get("reason") or "", obj.get("message") or ""
                )
            )
            return
        meta = obj.get("metadata", {})
        with self._lock:
            if meta.get("resourceVersion"):
                self._rv = meta["resourceVersion"]
            if event.type == "BOOKMARK":
                return
            sub = self._subs.get(meta.get("name", ""))
            if sub is not None:
                self._deliver(sub, event)


def _rv_before(a: str, b: str) -> bool:
    """Whether resourceVersion ``a`` is older than ``b``; unknown orders count as older."""
    try:
        return int(a) < int(b)
    except ValueError:
        return True


class WatchRegistry:
    """The shared watches of one runner, one per namespace, made on first use."""

    def __init__(self, api: RetryingBackend) -> None:
        self._api = api
        self._watches: dict[str, SharedWatch] = {}
        self._lock = threading.Lock()

    def for_namespace(self, namespace: str) -> SharedWatch:
        """The namespace's shared watch."""
        # A plain read finds it nearly always; the lock is for making one.
        watch = self._watches.get(namespace)
        if watch is not None:
            return watch
        with self._lock:
            watch = self._watches.get(namespace)
            if watch is None:
                watch = self._watches[namespace] = SharedWatch(self._api, namespace)
            return watch

    def close(self) -> None:
        """Close every watch."""
        with self._lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            watch.close()

    def stats(self) -> dict[str, int]:
        """Counters: streams opened, open now and the peak."""
        with self._lock:
            watches = list(self._watches.values())
        return {
            "streams_opened": sum(w.streams_opened for w in watches),
            "open_streams": sum(w.open_streams for w in watches),
            "peak_open_streams": max((w.peak_open_streams for w in watches), default=0),
        }
