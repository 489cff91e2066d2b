"""PodRunner: run a :class:`~podrunner.PodSpec` in an ephemeral pod and give back the result.

How a run goes (every backend, every outcome):

1. Manifests are built (pure) and validated before any API call.
2. The per-run Secret (if any) is created, then the pod; the Secret is then made owned by the
   pod so the cluster collects it even if this process dies. Every object carries an
   ``podrunner.dev/expires-at`` annotation for :meth:`PodRunner.reap`.
3. The pod is followed through one watch per namespace shared by all runs of the runner
   (leader/follower: whichever waiting run is free reads the stream and hands events to the
   others, so a single run costs no extra thread). A 410 Gone relists and resumes.
4. :mod:`podrunner.sdk.lifecycle` reduces each pod version to a :class:`PodState`. Image pull
   errors and unschedulable pods fail fast with the pod's events in the error.
5. Completion comes from the status, never from the log stream. Logs are then drained with
   timestamps (resumed without duplicates after a dropped connection) *before* the pod is
   deleted.
6. Cleanup runs in ``finally``: on success, error, timeout, cancel or Ctrl-C, everything the
   run created is deleted unless the cleanup policy says to keep it. The caller sees the
   original exception.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import attrs

from podrunner.backends._stream import InterruptibleStream
from podrunner.backends.base import Backend, Clock, Hold, Kind, WatchEvent
from podrunner.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    BadRequest,
    Conflict,
    ContainerConfigError,
    Gone,
    ImagePullError,
    NotFound,
    PodFailed,
    PodLost,
    RunCancelled,
    RunError,
    RunTimeout,
    ServerError,
    StartTimeout,
    TooManyRequests,
    Unauthorized,
    Unschedulable,
    error_for_status,
)
from podrunner.sdk.lifecycle import Phase, PodState, Reason, reduce
from podrunner.sdk.logs import LogCollector, parse_timestamp
from podrunner.sdk.manifest import (
    MANAGED_SELECTOR,
    RUN_ID_LABEL,
    Manifests,
    build_manifests,
    owner_reference,
)
from podrunner.sdk.spec import CleanupPolicy, Deadlines, PodSpec

if TYPE_CHECKING:
    from podrunner.sdk.cluster import ClusterConfig

__all__ = [
    "EXPIRES_ANNOTATION",
    "PodRunner",
    "ReapReport",
    "RetryPolicy",
    "RunHandle",
    "RunResult",
]

EXPIRES_ANNOTATION = "podrunner.dev/expires-at"
"""RFC 3339 time after which :meth:`PodRunner.reap` may delete the object."""

_MANAGED = MANAGED_SELECTOR
_PENDING = PodState(Phase.PENDING)  # immutable, so one instance serves every new run
_NO_DEADLINES = Deadlines()  # immutable: one shared instance serves every run without budgets
# How long run_many waits for its interrupted watch readers to leave: they end at once on
# both backends; the bound only keeps a backend whose streams cannot be interrupted from
# holding run_many for a whole watch timeout.
_READER_JOIN_SECONDS = 5.0
# Errors any call may retry (with backoff); a 401 is handled apart, by a credentials refresh.
_RETRIED: tuple[type[BackendError], ...] = (TooManyRequests, ServerError, BackendUnavailable)
_HANDLED: tuple[type[BackendError], ...] = (*_RETRIED, Unauthorized)
# Watch streams in a row that end at once with nothing in them before the runner stops
# trusting the watch and reads the pods instead (a proxy or server that cuts every watch).
_EMPTY_STREAMS_BEFORE_READ = 3
_T = TypeVar("_T")
_A = TypeVar("_A")

StateCallback = Callable[[PodState], None]
LogCallback = Callable[[str], None]


def _is_outage(exc: BaseException) -> bool:
    """The server is unreachable or says it is unavailable for now (not a refusal)."""
    if isinstance(exc, BackendUnavailable):
        return True
    return isinstance(exc, ServerError) and exc.status in (502, 503, 504)


def _rfc3339(epoch: float) -> str:
    if 0.0 <= epoch < 253402300799.0:  # years 1970-9999, where gmtime's %Y has 4 digits
        seconds = math.floor(epoch)
        # datetime rounds to the microsecond (up into the next second just below it);
        # gmtime truncates. Away from that edge they agree, and gmtime is much cheaper.
        if epoch - seconds < 0.999999:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    ts = parse_timestamp(text)
    return None if ts is None else ts[0] + ts[1] / 1e9


@attrs.frozen
class RetryPolicy:
    """When and how API calls are retried.

    Only safe retries happen: 429 (honouring ``Retry-After``), 5xx and connection errors for
    idempotent calls, with bounded exponential backoff and jitter; a 401 refreshes the
    backend's credentials once per call.

    An API server that cannot be reached or says it is unavailable (a connection error, or a
    502/503/504: restarting in a rolling upgrade, a cut load balancer, etcd re-electing) is
    retried beyond ``attempts`` until ``outage`` seconds have passed since the first failure,
    every ``max_backoff`` at most, so a restart of a few seconds does not fail the run.

    Attributes:
        attempts: Tries per call, the first included.
        backoff: First delay in seconds; doubled on each retry.
        max_backoff: Upper bound of one delay.
        outage: Seconds an unreachable or unavailable server is retried for (0: only
            ``attempts`` count).
    """

    attempts: int = 5
    backoff: float = 0.2
    max_backoff: float = 5.0
    outage: float = 30.0

    def exhausted(self, attempt: int, exc: BaseException, failing_for: float) -> bool:
        """Whether to give up after failed try number ``attempt`` (1-based).

        Args:
            attempt: How many tries failed so far.
            exc: The last error.
            failing_for: Seconds since the first of these failures.
        """
        if attempt < self.attempts:
            return False
        return not (_is_outage(exc) and failing_for < self.outage)

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), with up to 10% jitter."""
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        jitter = random.random() / 10  # noqa: S311 - jitter, not crypto
        return float(base * (1 + jitter))


@attrs.frozen
class RunResult:
    """What a finished run produced, in the spirit of :class:`subprocess.CompletedProcess`.

    Attributes:
        pod_name: The pod's name.
        namespace: The pod's namespace.
        run_id: The run's id (``podrunner.dev/run-id`` label).
        state: The final :class:`PodState`.
        exit_code: The main container's exit code; ``None`` when the cluster never reported it.
        logs: The container's output (the tail, when the size cap was hit).
        logs_truncated: Whether output was dropped to respect the cap.
        duration: Seconds from pod creation to the terminal status (the backend's clock).
        started_at: When the container started (RFC 3339), if known.
        finished_at: When it finished (RFC 3339), if known.
        message: Extra information (why the exit code is unknown, why logs are missing...).
    """

    pod_name: str
    namespace: str
    run_id: str
    state: PodState
    exit_code: int | None
    logs: str
    logs_truncated: bool = False
    duration: float = 0.0
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""

    @property
    def reason(self) -> Reason | None:
        """Why the run ended (``Completed``, ``Error``, ``OOMKilled``...)."""
        return self.state.reason

    @property
    def ok(self) -> bool:
        """Whether the container exited 0."""
        return self.exit_code == 0 and self.state.phase is Phase.SUCCEEDED

    def check(self) -> RunResult:
        """Return ``self`` if the run succeeded, else raise :class:`~podrunner.errors.PodFailed`."""
        if not self.ok:
            code = "unknown" if self.exit_code is None else str(self.exit_code)
            raise PodFailed(
                f"container failed: {self.state} (exit code {code})",
                result=self,
                pod_name=self.pod_name,
                namespace=self.namespace,
                run_id=self.run_id,
                state=self.state,
                logs=self.logs,
            )
        return self


@attrs.frozen
class ReapReport:
    """What :meth:`PodRunner.reap` deleted.

    Attributes:
        deleted: ``(kind, namespace, name)`` of each deleted object.
        kept: How many managed objects were examined and left alone.
    """

    deleted: tuple[tuple[str, str, str], ...]
    kept: int


class _Flag:
    """A set-once flag read across threads; unlike ``threading.Event`` nothing waits on it."""

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


class _Settable(Protocol):
    def is_set(self) -> bool: ...


class _Either:
    """Set when any of its flags is set."""

    __slots__ = ("flags",)

    def __init__(self, *flags: _Settable) -> None:
        self.flags = flags

    def is_set(self) -> bool:
        return any(flag.is_set() for flag in self.flags)


class _Subscription:
    __slots__ = ("event", "name", "pending")

    def __init__(self, name: str) -> None:
        self.name = name
        # Made by the first wait that blocks on it (under the watch lock): a run that only ever
        # leads the stream never blocks, so it needs no Event. Nobody blocks on a missing one,
        # so a wake-up aimed at it has nobody to wake.
        self.event: threading.Event | None = None
        self.pending: list[WatchEvent] = []

    def wake(self) -> None:
        event = self.event
        if event is not None:
            event.set()


class _PodWatch:
    """One pod watch per namespace, shared by every run of a runner.

    Leader/follower: a run that needs news takes the reader role if it is free and pulls the
    next event from the shared stream, handing events for other pods to their subscribers;
    the others wait on their own event through the backend clock. When the reader leaves,
    it wakes one waiting run to take over, so a lone run never needs an extra thread.
    """

    _WATCH_SECONDS = 60.0

    def __init__(self, runner: PodRunner, namespace: str) -> None:
        self._runner = runner
        self._namespace = namespace
        self._lock = threading.Lock()
        self._subs: dict[str, _Subscription] = {}
        # Followers between deciding to wait and waking up: the reader role is handed to one
        # of these, never to a run nobody waits on (its wake-up would be lost).
        self._blocked: set[_Subscription] = set()
        self._reading = False
        self._rv: str | None = None
        self._stream: Iterator[WatchEvent] | None = None
        self._interrupted = False  # interrupt() asked the reader to drop its stream
        self._stream_end = 0.0
        self._failures = 0
        self._failing_since = 0.0
        self._events_in_stream = 0
        self._empty_streams = 0  # streams in a row that ended early with no event
        self._reopen_at = 0.0  # back-off after such streams: no new stream before this
        self._listed = False  # the last _open listed the pods and handed them out
        self._closing = False
        self.listener: Callable[[str], None] | None = None
        self.streams_opened = 0
        self.open_streams = 0
        self.peak_open_streams = 0

    def subscribe(self, name: str, resource_version: str | None) -> _Subscription:
        sub = _Subscription(name)
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

    def take(self, sub: _Subscription) -> list[WatchEvent]:
        """Return and clear the events queued for ``sub`` without waiting."""
        with self._lock:
            events, sub.pending = sub.pending, []
            return events

    def unsubscribe(self, sub: _Subscription) -> None:
        with self._lock:
            if self._subs.get(sub.name) is sub:
                del self._subs[sub.name]
            self._blocked.discard(sub)
            self._hand_over(sub)

    def close(self) -> None:
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

    def _hand_over(self, leaving: _Subscription) -> None:
        # Called with the lock held: wake one waiting run so it takes the reader role.
        for other in self._blocked:
            if other is not leaving:
                other.wake()
                return

    def _sync(self, sub: _Subscription) -> None:
        try:
            obj = self._runner._call(
                lambda: self._runner.backend.get("Pod", self._namespace, sub.name)
            )
        except NotFound:
            return
        with self._lock:
            self._deliver(sub, WatchEvent("MODIFIED", obj))

    def _deliver(self, sub: _Subscription, event: WatchEvent) -> None:
        # Called with the lock held: queue the event and wake whoever waits for the pod.
        sub.pending.append(event)
        sub.wake()
        if self.listener is not None:
            self.listener(sub.name)

    def wait(
        self, sub: _Subscription, deadline: float | None, cancel: _Settable
    ) -> list[WatchEvent]:
        """Return the next events for ``sub``; an empty list when the deadline passed."""
        while True:
            with self._lock:
                self._blocked.discard(sub)  # awake: not a candidate for the reader role now
                event = sub.event
                if sub.pending:
                    events, sub.pending = sub.pending, []
                    if event is not None and event.is_set():
                        event.clear()
                    return events
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
            if cancel.is_set():
                self._stop_waiting(sub, lead)
                return []
            remaining = None if deadline is None else deadline - self._runner.clock.monotonic()
            if remaining is not None and remaining <= 0:
                self._stop_waiting(sub, lead)
                return []
            if not lead:
                assert event is not None  # made above for a follower
                self._runner.clock.wait(event, remaining)
                continue
            try:
                self._pump(remaining)
            except BaseException:
                self._leave(sub)
                raise
            self._drop_if_closing()
            with self._lock:
                self._end_reading()
                events = sub.pending
                if events:
                    # This reader leaves with its news (taken now, as the next pass would):
                    # someone else leads.
                    self._hand_over(sub)
                    sub.pending = []
                    event = sub.event
                    if event is not None and event.is_set():
                        event.clear()
                    return events

    def _stop_waiting(self, sub: _Subscription, lead: bool) -> None:
        with self._lock:
            self._blocked.discard(sub)
            if lead:
                self._end_reading()
                self._hand_over(sub)

    def _leave(self, sub: _Subscription) -> None:
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
        """Back off after a broken stream; give up (raise) after the retry budget."""
        now = self._runner.clock.monotonic()
        self._failures += 1
        if self._failures == 1:
            self._failing_since = now
        if self._runner.retry.exhausted(self._failures - 1, exc, now - self._failing_since):
            self._failures = 0
            raise exc
        if isinstance(exc, Gone) and self._failures == 1:
            return  # relist at once: that is the normal way to recover from 410
        delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
        self._runner.clock.sleep(delay or self._runner.retry.delay(self._failures))

    def _ended_empty(self) -> None:
        """A stream ended long before its timeout with no event: back off before the next.

        Reconnecting at once would be a busy loop against a server that cuts every watch;
        after a few such streams the next one starts with a list of the pods, so runs still
        see their pods finish (the watch then works as a poll).
        """
        self._empty_streams += 1
        if self._empty_streams >= _EMPTY_STREAMS_BEFORE_READ:
            self._rv = None
        delay = self._runner.retry.delay(min(self._empty_streams, 16))
        self._reopen_at = self._runner.clock.monotonic() + delay

    def _open(self, remaining: float | None) -> Iterator[WatchEvent]:
        runner = self._runner
        if self._rv is None:
            listed = runner._call(
                lambda: runner.backend.list("Pod", self._namespace, label_selector=_MANAGED)
            )
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
                get = partial(runner.backend.get, "Pod", self._namespace, sub.name)
                try:
                    found = WatchEvent("MODIFIED", runner._call(get))
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
        stream = runner._call(
            lambda: runner.backend.watch(
                "Pod",
                self._namespace,
                label_selector=_MANAGED,
                resource_version=rv,
                timeout_seconds=math.ceil(seconds),
                allow_bookmarks=True,
            )
        )
        self._stream_end = runner.clock.monotonic() + math.ceil(seconds)
        self._events_in_stream = 0
        self.streams_opened += 1
        self.open_streams += 1
        self.peak_open_streams = max(self.peak_open_streams, self.open_streams)
        return stream

    def _pump(self, remaining: float | None) -> None:
        """Read one event from the shared stream and hand it to its subscriber."""
        runner = self._runner
        # A stream opened by an earlier reader may outlive this reader's deadline; a new one
        # with a shorter server-side timeout keeps the deadline honest.
        if (
            self._stream is not None
            and remaining is not None
            and self._stream_end > runner.clock.monotonic() + remaining + 1
        ):
            self._drop_stream()
        if self._stream is None and self._reopen_at > runner.clock.monotonic():
            pause = self._reopen_at - runner.clock.monotonic()
            runner.clock.sleep(pause if remaining is None else max(0.0, min(pause, remaining)))
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
            empty = (
                self._events_in_stream == 0
                and not self._interrupted
                and runner.clock.monotonic() < self._stream_end - 1
            )
            self._drop_stream()
            if empty:
                self._ended_empty()
            else:
                self._empty_streams = 0
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


class RunHandle:
    """A started run: follow it, wait for it, read its logs, cancel it.

    Use it as a context manager so the pod is cleaned up on exit, whatever happens::

        with runner.start(spec) as handle:
            for line in handle.logs():
                print(line)
            result = handle.wait()
    """

    def __init__(
        self,
        runner: PodRunner,
        *,
        namespace: str,
        pod_name: str,
        run_id: str,
        container: str | None,
        manifests: Manifests | None,
        deadlines: Deadlines,
        cleanup: CleanupPolicy,
        check: bool,
        on_log: LogCallback | None,
        on_state: StateCallback | None,
        created_at: float,
        resource_version: str | None,
        initial: Mapping[str, Any] | None,
    ) -> None:
        self._runner = runner
        self.namespace = namespace
        """The pod's namespace."""
        self.pod_name = pod_name
        """The pod's name."""
        self.run_id = run_id
        """The run's id."""
        self.manifests = manifests
        """What was created (``None`` for an attached run)."""
        self._container = container
        self._deadlines = deadlines
        self._cleanup_policy = cleanup
        self._check = check
        # The first exception a user callback raised: it stops the run and reaches whoever
        # waits on it (wait(), logs(), run_many), whatever thread the callback ran in.
        self._callback_error: BaseException | None = None
        self._on_state = None if on_state is None else self._guarded(on_state)
        self._created = created_at
        self._cancel = _Flag()
        self._lock = threading.Lock()
        # A plain read finds the namespace's watch nearly always; the lock is for making one.
        self._watch = runner._watches.get(namespace) or runner._watch_for(namespace)
        self._sub = self._watch.subscribe(pod_name, resource_version)
        self._state = _PENDING
        self._state_seen: PodState | None = None  # the first observation always reports
        self._pod: dict[str, Any] | None = dict(initial) if initial is not None else None
        self._seen_deleting = False
        self._we_deleted = False
        self._gone = False
        self._scheduled_at: float | None = None
        self._running_at: float | None = None
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._cleaned = False
        self._collector = LogCollector(
            max_bytes=runner.log_limit_bytes,
            on_line=None if on_log is None else self._guarded(on_log),
        )
        self._collector_lock = threading.Lock()
        self._drain_lock = threading.Lock()  # one non-following read at a time
        self._follower: threading.Thread | None = None
        # Made with the follower thread: only a followed log is ever waited for.
        self._follower_done: threading.Event
        self._follow_abandoned = _Flag()
        self._follow_stream: Iterator[bytes] | None = None  # the follower's open stream
        self._drained = False
        self._stream_logs = on_log is not None
        if self._pod is not None:
            try:
                self._observe(self._pod)
            except BaseException:
                self._finish(success=False)  # on_state raised: nothing may stay behind
                raise

    # -- public --------------------------------------------------------------------------

    @property
    def state(self) -> PodState:
        """The latest observed state of the pod."""
        return self._state

    def wait(self, timeout: float | None = None) -> RunResult:
        """Wait for the run to end and return its result.

        Args:
            timeout: Seconds to wait on top of the run's own deadlines; when they pass the run
                is stopped and :class:`~podrunner.errors.RunTimeout` raised.

        Returns:
            The :class:`RunResult` when the container ran and terminated.

        Raises:
            RunError: A subclass saying why there is no result (see :mod:`podrunner.errors`).
        """
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if timeout is not None:
            limit = self._runner.clock.monotonic() + timeout
            total = self._deadlines.total
            if total is None or self._created + total > limit:
                self._deadlines = attrs.evolve(self._deadlines, total=limit - self._created)
        # While this run works, a virtual clock must not jump; it still may whenever this
        # thread itself blocks on the clock.
        hold = self._runner.clock.hold()
        try:
            result = self._wait()
        except BaseException as exc:
            self._error = exc
            try:
                self._finish(success=False)
            except BackendError as cleanup_exc:
                # The caller must see why the run failed, not why cleanup failed after it.
                _add_note(exc, f"cleanup also failed: {cleanup_exc}")
            raise
        finally:
            hold.release()
        self._result = result
        self._finish(success=result.ok)
        if self._check:
            result.check()
        return result

    def logs(self) -> Iterator[str]:
        """Follow the container's output line by line until it terminates.

        Lines are de-duplicated across reconnects and also kept for the result. The iterator
        ends once the pod's status says the container terminated (what is left of the log is
        then read at once, since a followed log may stay open after its container ended), or
        when the run is cancelled. An exception raised by a callback is raised here.
        """
        lines: list[str] = []
        ready = threading.Event()

        def on_line(line: str) -> None:
            lines.append(line)
            ready.set()

        self._collector.add_listener(on_line)
        self._stream_logs = True
        self._ensure_follower()
        # The follower cannot tell that the container ended while its stream stays open, so
        # a second thread follows the pod's status for this iterator.
        stop = _Flag()
        over = threading.Event()
        failed: list[BaseException] = []

        # Held as wait() holds it: a virtual clock must not jump while this thread works
        # (from before it starts), only while it waits.
        hold = self._runner.clock.hold(owned=False)

        def follow_status() -> None:
            hold.adopt()
            try:
                while not (self._state.terminal or self._gone or self._cancel.is_set()):
                    if stop.is_set():
                        return
                    self._apply(self._watch.wait(self._sub, None, _Either(stop, self._cancel)))
            except BaseException as exc:
                self._callback_failed_elsewhere(exc)
                failed.append(exc)  # raised by the iterator, in its caller's thread
            finally:
                hold.release()
                over.set()
                ready.set()

        status = threading.Thread(
            target=follow_status, name=f"podrunner-status-{self.pod_name}", daemon=True
        )
        status.start()
        clock = self._runner.clock
        pos = 0
        try:
            while True:
                ready.clear()
                batch = lines[pos:]
                pos += len(batch)
                yield from batch
                if batch:
                    continue
                if self._callback_error is not None:
                    raise self._callback_error
                if failed:
                    raise failed[0]
                if over.is_set() or (self._follower_done.is_set() and self._drained):
                    if not self._drained and not self._cancel.is_set():
                        self._drain_logs()  # the rest arrives through on_line
                    if pos == len(lines):
                        return
                    continue
                clock.wait(ready, 1.0)
        finally:
            stop.set()
            self._sub.wake()
            if status.is_alive():
                self._watch.interrupt()  # it may be blocked reading the shared stream
            status.join(_READER_JOIN_SECONDS)

    def cancel(self) -> None:
        """Stop the run: its pod is deleted and :meth:`wait` raises ``RunCancelled``."""
        self._cancel.set()
        self._wake_waiter()

    def close(self) -> None:
        """Clean up according to the cleanup policy (idempotent)."""
        self._finish(success=self._result is not None and self._result.ok)

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------

    def _wake_waiter(self) -> None:
        """Make whoever waits on this run look at it now (from any thread)."""
        self._sub.wake()
        listener = self._watch.listener
        if listener is not None:
            listener(self.pod_name)  # run_many's consumer
        # A waiter reading the shared stream would only notice at the pod's next event.
        self._watch.interrupt()

    def _guarded(self, callback: Callable[[_A], None]) -> Callable[[_A], None]:
        """Wrap a user callback so that its exception stops the run and reaches the caller."""

        def call(arg: _A) -> None:
            if self._callback_error is not None:
                return  # the run is stopping because a callback raised: no more calls
            try:
                callback(arg)
            except BaseException as exc:
                if self._callback_error is None:
                    self._callback_error = exc
                raise

        return call

    def _callback_failed_elsewhere(self, exc: BaseException) -> bool:
        """In a background thread: whether ``exc`` is a callback's; if so, stop the run."""
        if exc is not self._callback_error:
            return False
        self._cancel.set()
        self._wake_waiter()
        return True

    def _observe(self, pod: Mapping[str, Any]) -> PodState:
        state = reduce(pod, self._container)
        if state.deleting:
            self._seen_deleting = True
        if state.node_name and self._scheduled_at is None:
            self._scheduled_at = self._runner.clock.monotonic()
        if state.phase is Phase.RUNNING and self._running_at is None:
            self._running_at = self._runner.clock.monotonic()
        prev = self._state_seen
        self._state_seen = state
        self._state = state
        on_state = self._on_state
        if on_state is not None and (
            prev is None
            or state.phase is not prev.phase
            or state.reason is not prev.reason
            or state.detail != prev.detail
        ):
            on_state(state)
        if self._stream_logs and (state.phase is Phase.RUNNING or state.container_ran):
            self._ensure_follower()
        return state

    def _next_deadline(self) -> tuple[float | None, str]:
        d = self._deadlines
        if d.total is None and d.scheduling is None and d.start is None:
            return None, ""
        candidates: list[tuple[float, str]] = []
        if d.total is not None:
            candidates.append((self._created + d.total, "total"))
        if d.scheduling is not None and self._scheduled_at is None:
            candidates.append((self._created + d.scheduling, "scheduling"))
        if d.start is not None and self._running_at is None and not self._state.terminal:
            candidates.append((self._created + d.start, "start"))
        if not candidates:
            return None, ""
        return min(candidates)

    def _wait(self) -> RunResult:
        runner = self._runner
        clock = runner.clock
        d = self._deadlines
        if d.total is None and d.scheduling is None and d.start is None:
            return self._wait_unbounded()
        while True:
            over = self._outcome_now()
            if over is not None:
                return over
            deadline, which = self._next_deadline()
            if deadline is not None and clock.monotonic() >= deadline:
                # The last word before giving up: the pod may have just finished, with its
                # event still on its way through the shared watch.
                self._refresh_state()
                if self._state.terminal or self._gone:
                    continue
                self._timeout(which)
            self._apply(self._watch.wait(self._sub, deadline, self._cancel))

    def _wait_unbounded(self) -> RunResult:
        """:meth:`_wait` for a run without deadlines (the default): no clock checks."""
        watch, sub, cancel, deadlines = self._watch, self._sub, self._cancel, self._deadlines
        while True:
            over = self._outcome_now()
            if over is not None:
                return over
            if self._deadlines is not deadlines:
                return self._wait()  # a concurrent wait(timeout=...) gave the run a budget
            self._apply(watch.wait(sub, None, cancel))

    def _outcome_now(self) -> RunResult | None:
        """The result if the run is over (raising if lost or cancelled); ``None`` if not."""
        failure = self._callback_error
        if failure is not None:
            if not self._state.terminal:
                self._kill()
            raise failure
        state = self._state
        if state.terminal:
            return self._conclude(state)
        if self._gone:
            return self._lost("the pod was deleted by someone else before it finished")
        if self._cancel.is_set():
            self._kill()
            raise RunCancelled(
                "the run was cancelled",
                **self._context(),
                logs=self._drain_logs_safely(),
            )
        return None

    def _apply(self, events: list[WatchEvent]) -> None:
        """Fold watch events into the run's state."""
        for event in events:
            if event.type == "DELETED":
                if event.object.get("status"):
                    self._pod = event.object
                    self._observe(event.object)
                self._gone = True
                if not self._state.terminal:
                    return
            else:
                self._pod = event.object
                self._observe(event.object)

    def _settled(self) -> bool:
        """Whether :meth:`wait` would return or raise without waiting for the cluster."""
        if self._state.terminal or self._gone or self._cancel.is_set():
            return True
        deadline, _ = self._next_deadline()
        return deadline is not None and self._runner.clock.monotonic() >= deadline

    def _context(self) -> dict[str, Any]:
        return {
            "pod_name": self.pod_name,
            "namespace": self.namespace,
            "run_id": self.run_id,
            "state": self._state,
        }

    def _timeout(self, which: str) -> None:
        logs = self._drain_logs_safely()
        events = self._runner._events_for(self.namespace, self.pod_name)
        self._kill()
        d = self._deadlines
        if which == "total":
            raise RunTimeout(
                f"the run did not finish within {d.total:g}s (state: {self._state})",
                **self._context(),
                events=events,
                logs=logs,
            )
        budget = d.scheduling if which == "scheduling" else d.start
        what = "scheduled" if which == "scheduling" else "running"
        raise StartTimeout(
            f"the pod was not {what} within {budget:g}s (state: {self._state})",
            **self._context(),
            events=events,
            logs=logs,
        )

    def _lost(self, why: str) -> RunResult:
        # An evicted pod still exists and its log can be read; a deleted one answers 404 and
        # keeps what was streamed. Either way the caller gets all the output there is.
        logs = self._drain_logs_safely()
        raise PodLost(
            why,
            **self._context(),
            events=self._runner._events_for(self.namespace, self.pod_name),
            logs=logs,
        )

    def _conclude(self, state: PodState) -> RunResult:
        reason = state.reason
        if reason is Reason.IMAGE_PULL_ERROR:
            raise ImagePullError(
                f"the image could not be pulled: {state.detail}: {state.message}".rstrip(": "),
                **self._context(),
                events=self._runner._events_for(self.namespace, self.pod_name),
            )
        if reason is Reason.UNSCHEDULABLE:
            raise Unschedulable(
                f"no node can run the pod: {state.message}".rstrip(": "),
                **self._context(),
                events=self._runner._events_for(self.namespace, self.pod_name),
            )
        if reason is Reason.CONFIG_ERROR:
            raise ContainerConfigError(
                f"the container could not be created: {state.detail}: {state.message}".rstrip(": "),
                **self._context(),
                events=self._runner._events_for(self.namespace, self.pod_name),
            )
        if reason is Reason.EVICTED:
            return self._lost(f"the pod was evicted: {state.message}".rstrip(": "))
        if self._seen_deleting and not self._we_deleted and reason is not Reason.COMPLETED:
            return self._lost("the pod was deleted by someone else while it ran")
        logs, note = self._drain_logs()
        message = state.message
        if state.exit_code is None:
            message = message or "the cluster never reported an exit code"
        if note:
            message = f"{message}; {note}" if message else note
        pod = self._pod or {}
        started = finished = None
        for cs in pod.get("status", {}).get("containerStatuses") or ():
            if self._container is None or cs.get("name") == self._container:
                term = (
                    (cs.get("state") or {}).get("terminated")
                    or (cs.get("lastState") or {}).get("terminated")
                    or {}
                )
                started, finished = term.get("startedAt"), term.get("finishedAt")
                break
        end = _epoch(finished)
        start = _epoch(pod.get("metadata", {}).get("creationTimestamp"))
        if end is not None and start is not None:
            duration = max(0.0, end - start)
        else:
            duration = max(0.0, self._runner.clock.monotonic() - self._created)
        return RunResult(  # positional, in field order: cheaper than keywords
            self.pod_name,
            self.namespace,
            self.run_id,
            state,
            state.exit_code,
            logs,
            self._collector.truncated,
            duration,
            started,
            finished,
            message,
        )

    # -- logs -----------------------------------------------------------------------------

    def _ensure_follower(self) -> None:
        with self._lock:
            if self._follower is not None:
                return
            self._follower_done = threading.Event()
            self._follower = threading.Thread(
                target=self._follow, name=f"podrunner-logs-{self.pod_name}", daemon=True
            )
        self._follower.start()

    def _follow(self) -> None:
        """Follow the log, reconnecting from the last timestamp until the container is done."""
        try:
            self._follow_until_done()
        except BaseException as exc:
            if self._callback_failed_elsewhere(exc):
                return
            if self._follow_abandoned.is_set():
                return  # its stream was closed under it: nobody needs this read any more
            raise
        finally:
            self._follower_done.set()

    def _follow_until_done(self) -> None:
        runner = self._runner
        failures = 0
        since = 0.0
        while not self._follow_abandoned.is_set():
            try:
                self._read_log_into_collector(follow=True)
                failures = 0
            except NotFound:
                return
            except BackendError as exc:
                failures += 1
                now = runner.clock.monotonic()
                since = now if failures == 1 else since
                if failures > runner.retry.attempts * 4 and runner.retry.exhausted(
                    failures, exc, now - since
                ):
                    return
            if self._follow_abandoned.is_set() or self._cancel.is_set():
                return
            # The stream ended. Only the pod status says whether the container is done:
            # a stream also ends on a dropped connection or before the container started.
            if not self._state.terminal:
                self._refresh_state()
            if self._state.terminal or self._gone:
                self._drain_logs_now()
                return
            runner.clock.sleep(min(1.0, runner.retry.backoff * max(1, failures)))

    def _refresh_state(self) -> None:
        try:
            pod = self._runner._call(
                lambda: self._runner.backend.get("Pod", self.namespace, self.pod_name)
            )
        except NotFound:
            self._gone = True
            return
        except BackendError:
            return
        with self._lock:
            self._pod = pod
        self._observe(pod)

    def _read_log_into_collector(self, *, follow: bool) -> None:
        """One log request from the last timestamp; raises on a broken stream."""
        with self._collector_lock:
            if follow and self._follow_abandoned.is_set():
                return  # the collector now belongs to the final, non-following read
            since = self._collector.since_time
            self._collector.begin_stream()
        stream = self._runner.backend.read_log(
            self.namespace,
            self.pod_name,
            self._container,
            follow=follow,
            timestamps=True,
            since_time=since,
        )
        if follow:
            with self._collector_lock:
                self._follow_stream = stream
            if self._follow_abandoned.is_set():
                self._stop_follower()  # abandoned meanwhile: the stop may have missed it
        try:
            for chunk in stream:
                with self._collector_lock:
                    if self._follow_abandoned.is_set() and follow:
                        return
                    self._collector.feed(chunk)
        except BaseException:
            with self._collector_lock:
                if not (follow and self._follow_abandoned.is_set()):
                    self._collector.end_stream(complete=False)
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        with self._collector_lock:
            if follow and self._follow_abandoned.is_set():
                return
            # A follow stream that ended may have been cut: its partial line comes again.
            self._collector.end_stream(complete=not follow)

    def _drain_logs_now(self) -> str:
        """Read what the log has that the collector lacks; return a note if incomplete."""
        with self._drain_lock:
            if self._drained:
                return ""
            return self._read_rest()

    def _read_rest(self) -> str:
        runner = self._runner
        attempt = 0
        refreshed = False
        since = runner.clock.monotonic()
        while True:
            try:
                self._read_log_into_collector(follow=False)
                self._drained = True
                return ""
            except NotFound:
                return "logs unavailable: the pod was deleted before they could be read"
            except BadRequest as exc:
                return f"logs unavailable: {exc.message}"
            except Unauthorized:
                if refreshed or not runner.backend.refresh_credentials():
                    return "logs unavailable: unauthorized"
                refreshed = True
            except BackendError as exc:
                attempt += 1
                if runner.retry.exhausted(attempt, exc, runner.clock.monotonic() - since):
                    return f"logs incomplete: {exc}"
                delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
                runner.clock.sleep(delay or runner.retry.delay(attempt))

    def _drain_logs(self) -> tuple[str, str]:
        """Complete the log before the pod is deleted; return (logs, note).

        A followed log may stay open after its container ended (kwok's never ends; a real
        kubelet can leave one open), so the follower is not waited for: it is told to stop
        feeding the collector, and the rest is read with one non-following request from the
        last timestamp kept. The collector drops the lines it already has: the output is
        exact whichever read got each line. The follower's own stream ends when the pod is
        deleted.
        """
        self._stop_follower()
        note = self._drain_logs_now()
        return self._collector.text, note

    def _stop_follower(self) -> None:
        """Stop the follower: it feeds the collector no more, and its stream is closed."""
        with self._collector_lock:
            self._follow_abandoned.set()
            stream = self._follow_stream
        # Only a stream made to be closed from another thread: closing a plain generator
        # that another thread runs would fail in one of the two threads.
        if isinstance(stream, InterruptibleStream):
            stream.close()

    def _drain_logs_safely(self) -> str:
        if self._running_at is None and not self._state.container_ran:
            return self._collector.text  # the container never started: there is no log
        try:
            # The container may still run (timeout, cancel): take what is there, do not wait.
            return self._drain_logs()[0]
        except BackendError:
            return self._collector.text

    # -- cleanup --------------------------------------------------------------------------

    def _kill(self) -> None:
        self._we_deleted = True
        self._runner._delete_quietly("Pod", self.namespace, self.pod_name, grace=0)

    def _finish(self, *, success: bool) -> None:
        with self._lock:
            if self._cleaned:
                return
            self._cleaned = True
        self._stop_follower()
        try:
            self._watch.unsubscribe(self._sub)
        finally:
            self._runner._cleanup(self, success=success)


def _add_note(exc: BaseException, note: str) -> None:
    add = getattr(exc, "add_note", None)  # Python >= 3.11
    if add is not None:
        add(note)


class PodRunner:
    r"""Runs pods to completion on a backend and returns their results.

    Args:
        backend: The cluster (a :class:`~podrunner.backends.base.Backend`).
        namespace: Default namespace for specs that name none.
        retry: When API calls are retried.
        log_limit_bytes: Keep at most this much output per run (the tail is kept).
        default_ttl: Expiry written on objects of runs without a total deadline, for
            :meth:`reap`.
        deadline_margin: Seconds added to the total deadline for the pod's
            ``activeDeadlineSeconds``, so the cluster kills a pod whose runner died.

    Example:
        >>> from podrunner import PodRunner, PodSpec
        >>> from podrunner.testing import FakeCluster
        >>> cluster = FakeCluster()
        >>> _ = cluster.when(image="busybox:*").succeed(logs="hi\\n", after=2.0)
        >>> spec = PodSpec(image="busybox:1.36", command=["echo", "hi"])
        >>> result = PodRunner(cluster.backend).run(spec)
        >>> result.exit_code, result.logs
        (0, 'hi\\n')
    """

    def __init__(
        self,
        backend: Backend,
        namespace: str = "default",
        *,
        retry: RetryPolicy | None = None,
        log_limit_bytes: int | None = 16 * 1024 * 1024,
        default_ttl: float = 24 * 3600.0,
        deadline_margin: float = 30.0,
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.retry = retry or RetryPolicy()
        self.log_limit_bytes = log_limit_bytes
        self.default_ttl = default_ttl
        self.deadline_margin = deadline_margin
        self._watches: dict[str, _PodWatch] = {}
        self._watches_lock = threading.Lock()

    @classmethod
    def connect(
        cls, cluster: ClusterConfig | None = None, namespace: str = "default", **kw: Any
    ) -> PodRunner:
        """Create a runner on a real cluster through the official ``kubernetes`` client.

        Args:
            cluster: Where to connect; :meth:`ClusterConfig.default` when ``None``.
            namespace: Default namespace.
            **kw: Passed to :class:`PodRunner`.
        """
        from podrunner.backends.kubernetes import KubernetesBackend
        from podrunner.sdk.cluster import ClusterConfig

        return cls(KubernetesBackend(cluster or ClusterConfig.default()), namespace, **kw)

    @property
    def clock(self) -> Clock:
        """The backend's clock."""
        return self.backend.clock

    def close(self) -> None:
        """Close shared watches."""
        with self._watches_lock:
            watches = list(self._watches.values())
            self._watches.clear()
        for watch in watches:
            watch.close()

    def __enter__(self) -> PodRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ----------------------------------------------------------------------------

    def run(
        self,
        spec: PodSpec,
        *,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        check: bool = False,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: LogCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> RunResult:
        """Run ``spec`` to completion, like :func:`subprocess.run`.

        Args:
            spec: What to run.
            timeout: Total seconds for the run (shorthand for ``Deadlines(total=...)``).
            deadlines: Separate scheduling, start and total budgets.
            check: Raise :class:`~podrunner.errors.PodFailed` when the exit code is not 0.
            cleanup: What to delete afterwards.
            on_log: Called with each output line as it arrives (streams the log).
            on_state: Called with each new :class:`PodState`.

        Returns:
            The result, whenever the container ran and terminated (any exit code).

        Raises:
            RunError: The container never ran or the run was cut short.
            BackendError: The cluster refused a request that retrying could not fix.
        """
        handle = self.start(
            spec,
            timeout=timeout,
            deadlines=deadlines,
            check=check,
            cleanup=cleanup,
            on_log=on_log,
            on_state=on_state,
        )
        with handle:
            return handle.wait()

    def start(
        self,
        spec: PodSpec,
        *,
        timeout: float | None = None,
        deadlines: Deadlines | None = None,
        check: bool = False,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: LogCallback | None = None,
        on_state: StateCallback | None = None,
        run_id: str | None = None,
    ) -> RunHandle:
        """Create the run's objects and return a handle without waiting.

        The arguments are those of :meth:`run`. If creation fails, whatever was created is
        deleted before the error propagates.
        """
        deadlines = deadlines or _NO_DEADLINES
        if timeout is not None:
            deadlines = attrs.evolve(deadlines, total=timeout)
        namespace = spec.namespace or self.namespace
        manifests = build_manifests(spec, run_id=run_id)
        now = self.clock.now()
        ttl = (
            deadlines.total + self.deadline_margin
            if deadlines.total is not None
            else self.default_ttl
        )
        expires = _rfc3339(now + ttl)
        pod = _with_expiry(manifests.pod, expires, namespace)
        if deadlines.total is not None:
            ads = math.ceil(deadlines.total + self.deadline_margin)
            current = pod["spec"].get("activeDeadlineSeconds")
            pod["spec"]["activeDeadlineSeconds"] = min(current, ads) if current else ads
        secret = _with_expiry(manifests.secret, expires, namespace) if manifests.secret else None
        config_map = (
            _with_expiry(manifests.config_map, expires, namespace) if manifests.config_map else None
        )
        created: list[tuple[Kind, str]] = []
        trying: tuple[Kind, str] | None = None  # the object whose create is under way
        started = self.clock.monotonic()
        until = None if deadlines.total is None else started + deadlines.total
        extras = (secret, config_map) if secret is not None or config_map is not None else ()
        try:
            for extra in extras:
                if extra is not None:
                    trying = (extra["kind"], extra["metadata"]["name"])
                    self._create(extra, manifests.run_id, until)
                    created.append(trying)
            trying = ("Pod", manifests.pod_name)
            stored = self._create(pod, manifests.run_id, until)
            created.append(("Pod", manifests.pod_name))
            owner = owner_reference(stored)
            for extra in extras:
                if extra is not None:
                    # Owned by the pod: the cluster's garbage collector removes it with the
                    # pod even if this process dies before its own cleanup.
                    kind, name = extra["kind"], extra["metadata"]["name"]
                    self._call(
                        partial(
                            self.backend.patch,
                            kind,
                            namespace,
                            name,
                            {"metadata": {"ownerReferences": [owner]}},
                        )
                    )
            container = pod["spec"]["containers"][0]["name"]
            return RunHandle(
                self,
                namespace=namespace,
                pod_name=manifests.pod_name,
                run_id=manifests.run_id,
                container=container,
                manifests=manifests,
                deadlines=deadlines,
                cleanup=cleanup,
                check=check,
                on_log=on_log,
                on_state=on_state,
                created_at=started,
                resource_version=stored.get("metadata", {}).get("resourceVersion"),
                initial=stored,
            )
        except BaseException as exc:
            if trying is not None and trying not in created and _is_outage(exc):
                # The create's answer was lost: it may have landed. Only the run-id label
                # tells whether an object of that name is this run's.
                self._forget_lost_create(*trying, namespace, manifests.run_id)
            for kind, name in reversed(created):
                self._delete_quietly(kind, namespace, name, grace=0)
            raise

    def _forget_lost_create(self, kind: Kind, name: str, namespace: str, run_id: str) -> None:
        """Delete ``name`` if it exists and carries ``run_id`` (a create whose answer was lost).

        Best effort: if the server stays unreachable the object keeps its expiry annotation,
        so :meth:`reap` removes it later.
        """
        try:
            found = self._call(partial(self.backend.get, kind, namespace, name))
            if found.get("metadata", {}).get("labels", {}).get(RUN_ID_LABEL) == run_id:
                self._delete_quietly(kind, namespace, name, grace=0)
        except BackendError:
            return  # the create's own error is what the caller must see

    def run_many(
        self,
        specs: Iterable[PodSpec],
        *,
        max_parallel: int = 16,
        return_exceptions: bool = True,
        **kwargs: Any,
    ) -> Iterator[RunResult | RunError]:
        """Run several specs concurrently, yielding each outcome as it finishes.

        At most ``max_parallel`` runs are in flight. They share one pod watch per namespace,
        read by a single thread, and a bounded pool (at most 32 threads) does the blocking
        work (creating, draining logs, deleting), so a thousand concurrent runs need neither a
        thousand threads nor a thousand watches.

        Args:
            specs: What to run.
            max_parallel: Upper bound of runs in flight.
            return_exceptions: Yield a run's :class:`~podrunner.errors.RunError` instead of
                raising it; when ``False`` the first error is raised after the other runs
                were stopped and cleaned up.
            **kwargs: Passed to :meth:`run` for every spec.
        """
        return _ManyRuns(
            self, list(specs), max(1, max_parallel), return_exceptions, kwargs
        ).outcomes()

    def attach(
        self,
        run_id: str,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
        cleanup: CleanupPolicy = CleanupPolicy.ALWAYS,
        on_log: LogCallback | None = None,
        on_state: StateCallback | None = None,
    ) -> RunHandle:
        """Pick up a run started by an earlier process, found by its run-id label.

        Raises:
            NotFound: No pod carries that run id.
        """
        namespace = namespace or self.namespace
        listed = self._call(
            lambda: self.backend.list(
                "Pod", namespace, label_selector=f"{_MANAGED},{RUN_ID_LABEL}={run_id}"
            )
        )
        if not listed.items:
            raise NotFound(f"no pod with run id {run_id!r}", kind="Pod", namespace=namespace)
        pod = listed.items[0]
        meta = pod["metadata"]
        deadlines = Deadlines(total=timeout) if timeout is not None else Deadlines()
        started = self.clock.monotonic()
        created = _epoch(meta.get("creationTimestamp"))
        if timeout is None and created is not None:
            # Without a new budget, durations count from the pod's creation, not from now.
            started -= max(0.0, self.clock.now() - created)
        return RunHandle(
            self,
            namespace=namespace,
            pod_name=meta["name"],
            run_id=run_id,
            container=pod["spec"]["containers"][0]["name"],
            manifests=None,
            deadlines=deadlines,
            cleanup=cleanup,
            check=False,
            on_log=on_log,
            on_state=on_state,
            created_at=started,
            resource_version=listed.resource_version,
            initial=pod,
        )

    def reap(self, *, older_than: float | None = None, namespace: str | None = None) -> ReapReport:
        """Delete podrunner-managed pods, Secrets and ConfigMaps that outlived their runs.

        An object is reaped when its ``podrunner.dev/expires-at`` annotation is in the past,
        or, with ``older_than``, when it was created more than that many seconds ago.

        Args:
            older_than: Also reap objects older than this many seconds.
            namespace: Where to look; the runner's namespace by default.
        """
        namespace = namespace or self.namespace
        now = self.clock.now()
        deleted: list[tuple[Kind, str, str]] = []
        kept = 0
        kinds: tuple[Kind, ...] = ("Pod", "Secret", "ConfigMap")
        for kind in kinds:
            listed = self._call(
                partial(self.backend.list, kind, namespace, label_selector=_MANAGED)
            )
            for obj in listed.items:
                meta = obj.get("metadata", {})
                expires = _epoch((meta.get("annotations") or {}).get(EXPIRES_ANNOTATION))
                created = _epoch(meta.get("creationTimestamp"))
                due = expires is not None and expires <= now
                if older_than is not None and created is not None and now - created >= older_than:
                    due = True
                if not due:
                    kept += 1
                    continue
                deleted.append((kind, namespace, meta["name"]))
        # Everything due is listed before anything is deleted: a Secret owned by a reaped pod
        # may be collected by the cluster meanwhile, and the report still names it.
        for due_kind, _, name in deleted:
            self._delete_quietly(due_kind, namespace, name, grace=0)
        return ReapReport(tuple(deleted), kept)

    # -- plumbing ---------------------------------------------------------------------------

    def _watch_for(self, namespace: str) -> _PodWatch:
        with self._watches_lock:
            watch = self._watches.get(namespace)
            if watch is None:
                watch = self._watches[namespace] = _PodWatch(self, namespace)
            return watch

    def watch_stats(self) -> dict[str, int]:
        """Counters of the shared watches: streams opened, open now and the peak."""
        with self._watches_lock:
            watches = list(self._watches.values())
        return {
            "streams_opened": sum(w.streams_opened for w in watches),
            "open_streams": sum(w.open_streams for w in watches),
            "peak_open_streams": max((w.peak_open_streams for w in watches), default=0),
        }

    def _call(
        self,
        fn: Callable[[], _T],
        *,
        also_retry: tuple[type[BackendError], ...] = (),
        on_retry: Callable[[BackendError], None] | None = None,
        until: float | None = None,
    ) -> _T:
        """Call the backend, retrying where that is safe.

        429 (honouring ``Retry-After``), 5xx and connection errors are retried with bounded
        backoff, as are the ``also_retry`` errors; a 401 refreshes the credentials once.
        ``on_retry`` sees each error that is about to be retried. An outage is not waited
        out past ``until`` (a run's deadline, on the clock's monotonic time).
        """
        # The common case is a call that succeeds at once: no retry state is built for it.
        try:
            return fn()
        except BackendError as exc:
            if not (isinstance(exc, _HANDLED) or (also_retry and isinstance(exc, also_retry))):
                raise
            first = exc
        return self._call_retrying(fn, first, (*_RETRIED, *also_retry), on_retry, until)

    def _call_retrying(
        self,
        fn: Callable[[], _T],
        exc: BackendError,
        retried: tuple[type[BackendError], ...],
        on_retry: Callable[[BackendError], None] | None,
        until: float | None = None,
    ) -> _T:
        """The retry loop of :meth:`_call`, entered with the first attempt's error."""
        attempt = 0
        refreshed = False
        since = self.clock.monotonic()
        while True:
            if isinstance(exc, Unauthorized):
                if refreshed or not self.backend.refresh_credentials():
                    raise exc
                refreshed = True
            else:
                attempt += 1
                now = self.clock.monotonic()
                past = until is not None and now >= until and attempt >= self.retry.attempts
                if past or self.retry.exhausted(attempt, exc, now - since):
                    raise exc
                if on_retry is not None:
                    on_retry(exc)
                delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
                self.clock.sleep(delay or self.retry.delay(attempt))
            try:
                return fn()
            except Unauthorized as again:
                exc = again
            except retried as again:
                exc = again

    def _create(
        self, manifest: dict[str, Any], run_id: str, until: float | None = None
    ) -> dict[str, Any]:
        """Create an object; after an ambiguous failure, a 409 is checked against the run id."""
        kind = manifest["kind"]
        namespace = manifest["metadata"].get("namespace")
        name = manifest["metadata"]["name"]
        ambiguous = False

        def note(exc: BackendError) -> None:
            nonlocal ambiguous
            # No answer, or a 5xx: the create may have landed before the failure.
            ambiguous = ambiguous or isinstance(exc, (ServerError, BackendUnavailable))

        try:
            return self._call(partial(self.backend.create, manifest), on_retry=note, until=until)
        except AlreadyExists:
            if not ambiguous:
                raise
            existing = self._call(partial(self.backend.get, kind, namespace, name))
            if existing.get("metadata", {}).get("labels", {}).get(RUN_ID_LABEL) == run_id:
                return existing
            raise

    def _delete_quietly(self, kind: Kind, namespace: str, name: str, *, grace: int | None) -> None:
        """Delete, retrying transient errors; a missing object counts as deleted.

        Deleting is idempotent, so a 409 (a precondition race) is retried too.
        """
        delete = partial(self.backend.delete, kind, namespace, name, grace_period_seconds=grace)
        try:
            self._call(delete, also_retry=(Conflict,))
        except NotFound:
            return

    def _events_for(self, namespace: str, pod: str) -> list[str]:
        """The pod's events, oldest first, as ``"Reason: message"`` (best effort)."""
        try:
            listed = self._call(
                lambda: self.backend.list(
                    "Event",
                    namespace,
                    field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod}",
                )
            )
        except BackendError:
            return []
        items = sorted(
            listed.items,
            key=lambda e: (
                e.get("lastTimestamp")
                or e.get("eventTime")
                or e.get("metadata", {}).get("creationTimestamp")
                or ""
            ),
        )
        return [f"{e.get('reason', '')}: {e.get('message', '')}" for e in items]

    def _cleanup(self, handle: RunHandle, *, success: bool) -> None:
        policy = handle._cleanup_policy
        state = handle._state
        keep = policy is CleanupPolicy.NEVER or (policy is CleanupPolicy.ON_SUCCESS and not success)
        if keep and (state.terminal or policy is CleanupPolicy.NEVER):
            return
        # "Keep" never means "keep running": a failed run's pod that is still alive is deleted.
        errors: list[BackendError] = []
        handle._we_deleted = True
        targets: list[tuple[Kind, str]] = [("Pod", handle.pod_name)]
        if handle.manifests is not None:
            if handle.manifests.secret is not None:
                targets.append(("Secret", handle.manifests.secret["metadata"]["name"]))
            if handle.manifests.config_map is not None:
                targets.append(("ConfigMap", handle.manifests.config_map["metadata"]["name"]))
        interrupted: BaseException | None = None
        for kind, name in targets:
            for _ in range(2):
                try:
                    self._delete_quietly(kind, handle.namespace, name, grace=0)
                    break
                except BackendError as exc:
                    errors.append(exc)
                    break
                except (KeyboardInterrupt, SystemExit) as exc:
                    # A second Ctrl-C during cleanup must not leak the pod: finish the
                    # deletes (once more for this object), then let the interrupt through.
                    interrupted = exc
        if interrupted is not None:
            raise interrupted
        if errors:
            raise errors[0]


class _Workers:
    """A bounded thread pool whose queued work never stops a virtual clock.

    Work handed to a free worker takes a clock hold, so virtual time cannot jump before the
    worker picks it up. Work that finds every worker busy waits in a backlog without a hold:
    the busy workers may be sleeping on the clock (retry back-offs), and a hold for work that
    cannot start until they wake would stop time for good. A worker that finishes takes the
    next backlog item in the same thread with its hold still open, so nothing runs unheld.
    """

    def __init__(self, clock: Clock, size: int) -> None:
        self._clock = clock
        self._size = size
        self._pool = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="podrunner-run")
        self._lock = threading.Lock()
        self._busy = 0
        self._backlog: collections.deque[
            tuple[Callable[[], Any], concurrent.futures.Future[Any]]
        ] = collections.deque()

    def submit(self, fn: Callable[[], _T]) -> concurrent.futures.Future[_T]:
        """Run ``fn`` on a worker; a backlog item can still be cancelled with its future."""
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        with self._lock:
            if self._busy >= self._size:
                self._backlog.append((fn, future))
                return future
            self._busy += 1
        self._pool.submit(self._work, self._clock.hold(owned=False), fn, future)
        return future

    def _work(
        self, hold: Hold, fn: Callable[[], Any], future: concurrent.futures.Future[Any]
    ) -> None:
        hold.adopt()
        try:
            while True:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn()
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                with self._lock:
                    if not self._backlog:
                        self._busy -= 1
                        return
                    fn, future = self._backlog.popleft()
        finally:
            hold.release()

    def shutdown(self) -> None:
        """Wait until everything submitted, the backlog included, has run."""
        self._pool.shutdown(wait=True)


class _ManyRuns:
    """The engine of :meth:`PodRunner.run_many`: one reader, a bounded pool, a ready queue."""

    def __init__(
        self,
        runner: PodRunner,
        specs: list[PodSpec],
        max_parallel: int,
        return_exceptions: bool,
        kwargs: dict[str, Any],
    ) -> None:
        self.runner = runner
        self.specs = specs
        self.max_parallel = max_parallel
        self.return_exceptions = return_exceptions
        self.kwargs = kwargs
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.ready_names: set[str] = set()
        self.done: list[concurrent.futures.Future[Any]] = []
        self.reader_errors: list[BaseException] = []  # a shared watch that gave up
        self.cleanup_errors: list[BackendError] = []

    def _wake(self, name: str | None = None) -> None:
        with self.lock:
            if name is not None:
                self.ready_names.add(name)
        self.ready.set()

    def _close(self, handle: RunHandle) -> None:
        try:
            handle.close()
        except BackendError as exc:
            with self.lock:
                self.cleanup_errors.append(exc)

    def _finished(self, handle: RunHandle, future: concurrent.futures.Future[Any]) -> None:
        self._close(handle)
        self._future_done(future)

    def _close_started(self, future: concurrent.futures.Future[Any]) -> None:
        # A start that completed after run_many stopped: its run is stopped and cleaned up.
        if future.cancelled() or future.exception() is not None:
            return
        handle: RunHandle = future.result()
        handle.cancel()
        self._close(handle)

    def _future_done(self, future: concurrent.futures.Future[Any]) -> None:
        with self.lock:
            self.done.append(future)
        self.ready.set()

    def outcomes(self) -> Iterator[RunResult | RunError]:
        runner = self.runner
        clock = runner.clock
        if not self.specs:
            return
        workers = _Workers(clock, min(32, self.max_parallel, len(self.specs)))
        stop = threading.Event()
        todo = iter(self.specs)
        remaining = len(self.specs)
        in_flight = 0
        handles: dict[str, RunHandle] = {}
        finishing: set[concurrent.futures.Future[Any]] = set()
        starting: set[concurrent.futures.Future[Any]] = set()
        watches: dict[str, _PodWatch] = {}
        idles: list[_Subscription] = []
        readers: list[threading.Thread] = []
        failure: BaseException | None = None

        def reader(watch: _PodWatch, idle: _Subscription) -> None:
            # Waits forever on a subscription no pod has: it leads the shared stream
            # whenever nobody else does, so every run's events keep flowing.
            try:
                while not stop.is_set():
                    watch.wait(idle, None, stop)
            except BaseException as exc:
                with self.lock:
                    self.reader_errors.append(exc)
                self.ready.set()

        def ensure_reader(namespace: str) -> None:
            if namespace in watches:
                return
            watch = runner._watch_for(namespace)
            watch.listener = self._wake
            watches[namespace] = watch
            idle = _Subscription("")
            idles.append(idle)
            thread = threading.Thread(
                target=reader, args=(watch, idle), daemon=True, name="podrunner-watch"
            )
            thread.start()
            readers.append(thread)

        def submit_start(spec: PodSpec) -> None:
            future = workers.submit(partial(runner.start, spec, **self.kwargs))
            starting.add(future)
            future.add_done_callback(self._future_done)

        def submit_finish(handle: RunHandle) -> None:
            handles.pop(handle.pod_name, None)
            future = workers.submit(handle.wait)
            finishing.add(future)
            future.add_done_callback(partial(self._finished, handle))

        def check(handle: RunHandle) -> None:
            handle._apply(handle._watch.take(handle._sub))
            if handle._settled():
                submit_finish(handle)

        # The consumer holds the clock while it works; its own waits do not count the hold.
        consumer_hold = clock.hold()
        try:
            while remaining:
                while in_flight < self.max_parallel:
                    spec = next(todo, None)
                    if spec is None:
                        break
                    ensure_reader(spec.namespace or runner.namespace)
                    submit_start(spec)
                    in_flight += 1
                self.ready.clear()
                with self.lock:
                    done, self.done = self.done, []
                    names, self.ready_names = self.ready_names, set()
                    if self.reader_errors:
                        raise self.reader_errors[0]
                for future in done:
                    if future in starting:
                        starting.discard(future)
                        error = future.exception()
                        if error is not None:
                            in_flight -= 1
                            remaining -= 1
                            if isinstance(error, RunError) and self.return_exceptions:
                                yield error
                                continue
                            raise error
                        handle = future.result()
                        handles[handle.pod_name] = handle
                        check(handle)
                    elif future in finishing:
                        finishing.discard(future)
                        in_flight -= 1
                        remaining -= 1
                        error = future.exception()
                        if error is None:
                            yield future.result()
                        elif isinstance(error, RunError) and self.return_exceptions:
                            yield error
                        else:
                            raise error
                for name in names:
                    found = handles.get(name)
                    if found is not None:
                        check(found)
                next_deadline: float | None = None
                now = clock.monotonic()
                for handle in list(handles.values()):
                    deadline, _ = handle._next_deadline()
                    if deadline is None:
                        continue
                    if deadline <= now:
                        submit_finish(handle)
                    elif next_deadline is None or deadline < next_deadline:
                        next_deadline = deadline
                # Wait only when there is nothing to do: a run that just finished frees a slot
                # for the next spec, which the top of the loop starts.
                room = in_flight < self.max_parallel and in_flight < remaining
                if remaining and not room and not self.done and not self.ready_names:
                    clock.wait(self.ready, None if next_deadline is None else next_deadline - now)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            consumer_hold.release()
            stop.set()
            # Whatever run_many raised or returned, and wherever its caller stopped: starts
            # still queued never begin, a start under way is cleaned up as soon as it
            # returns (or at once if it already has), and every run in flight is stopped.
            for future in list(starting):
                if not future.cancel():
                    future.add_done_callback(self._close_started)
            for handle in list(handles.values()):
                handle.cancel()
                workers.submit(partial(self._close, handle))
            workers.shutdown()  # queued closes and finishes run: none is cancelled
            for watch in watches.values():
                watch.listener = None
            for idle in idles:
                idle.wake()
            # A reader blocked on the shared stream would hold its connection (and, on the
            # fake, let virtual time jump to the stream's timeout) after run_many returned.
            for watch in watches.values():
                watch.interrupt()
            give_up = time.monotonic() + _READER_JOIN_SECONDS  # one bound for all readers
            for thread in readers:
                thread.join(max(0.0, give_up - time.monotonic()))
            if self.cleanup_errors and failure is not None:
                _add_note(failure, f"cleanup also failed: {self.cleanup_errors[0]}")


def _with_expiry(manifest: Mapping[str, Any], expires: str, namespace: str) -> dict[str, Any]:
    out = dict(manifest)
    meta = dict(out.get("metadata", {}))
    meta["namespace"] = namespace
    annotations = dict(meta.get("annotations") or {})
    annotations[EXPIRES_ANNOTATION] = expires
    meta["annotations"] = annotations
    out["metadata"] = meta
    if "spec" in out:
        out["spec"] = dict(out["spec"])
    return out
