"""Container logs through the API (``pods/log``), read and followed as the kubelet serves them.

The request's options are checked as the API server checks ``PodLogOptions``; the stream
then reads the container instance's :class:`~podrunner.backends.fake.logs.LogBuffer` from
``sinceTime``/``sinceSeconds``/``tailLines`` on, prefixes timestamps, stops at
``limitBytes``, and with ``follow`` waits for whole lines until the instance ends. Injected
faults cut the stream after some lines, split chunks inside UTF-8 characters, or keep a
follow open after the container ended.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from podrunner._time import format_rfc3339_nano, parse_rfc3339_nano
from podrunner.backends._stream import InterruptibleStream, StreamState
from podrunner.backends.fake.logs import LogBuffer, Position, split_inside_utf8
from podrunner.backends.fake.podsim import container_name
from podrunner.backends.fake.watch import wake
from podrunner.errors import BackendUnavailable, BadRequest, Invalid, StatusCause

if TYPE_CHECKING:
    from podrunner.backends.fake.clock import SchedulingClock
    from podrunner.backends.fake.faults import FaultRule
    from podrunner.backends.fake.podsim import ContainerSim, PodSims

__all__ = ["FakeLogStream", "LogFeed", "open_log"]

_PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName")


def open_log(
    pods: PodSims,
    pod: dict[str, Any],
    container: str | None,
    *,
    follow: bool,
    timestamps: bool,
    since_time: str | None,
    since_seconds: int | None,
    tail_lines: int | None,
    limit_bytes: int | None,
    previous: bool,
    fault: FaultRule | None,
) -> FakeLogStream:
    """Check a log request on a stored pod (lock held) and return its lazy stream.

    Raises:
        Invalid: Bad or conflicting options.
        BadRequest: No such container, a bad ``sinceTime``, or a container with no log yet
            (or no previous instance).
    """
    clock = pods.clock
    _check_options(since_time, since_seconds, tail_lines, limit_bytes)
    since_ns = _since_ns(clock, since_time, since_seconds)
    cname = container_name(pod, container)
    sim = pods.get(pod)
    c = None if sim is None else sim.container(cname)
    buffer = _buffer(c, pod["metadata"]["name"], cname, previous)
    alive = None
    if follow and fault is not None and fault.follow_never_ends:
        alive = partial(_same_pod, pods.store.objects["Pod"], pod)
    # Closable from any thread, as the real backend's: a followed log may never end.
    stream = FakeLogStream()
    output = Output(timestamps, limit_bytes, fault)
    feed = LogFeed(stream.state, buffer, follow, (since_ns, tail_lines), output, alive)
    stream.feed = feed
    stream.gen = _log_stream(feed, clock)
    stream.interrupt = partial(wake, clock)
    return stream


def _check_options(
    since_time: str | None,
    since_seconds: int | None,
    tail_lines: int | None,
    limit_bytes: int | None,
) -> None:
    causes = []
    if since_time is not None and since_seconds is not None:
        causes.append(
            StatusCause(
                "sinceSeconds",
                "FieldValueForbidden",
                "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified",
            )
        )
    checks: tuple[tuple[str, object], ...] = (
        ("sinceSeconds", since_seconds),
        ("tailLines", tail_lines),
        ("limitBytes", limit_bytes),
    )
    for field, value in checks:
        minimum = 0 if field == "tailLines" else 1
        if value is not None and (not isinstance(value, int) or value < minimum):
            bound = "greater than or equal to 0" if minimum == 0 else "greater than 0"
            message = f"Invalid value: {value}: must be {bound}"
            causes.append(StatusCause(field, "FieldValueInvalid", message))
    if causes:
        raise Invalid(
            'PodLogOptions "" is invalid: ' + ", ".join(f"{c.field}: {c.message}" for c in causes),
            kind="PodLogOptions",
            causes=causes,
        )


def _since_ns(
    clock: SchedulingClock, since_time: str | None, since_seconds: int | None
) -> int | None:
    if since_time is not None:
        since_ns = parse_rfc3339_nano(str(since_time))
        if since_ns is None:
            raise BadRequest(
                f'parsing time "{since_time}" as "2006-01-02T15:04:05Z07:00": cannot parse'
            )
        return since_ns
    if since_seconds is not None:
        return int((clock.now() - since_seconds) * 1e9)
    return None


def _buffer(c: ContainerSim | None, pod: str, cname: str, previous: bool) -> LogBuffer:
    if previous:
        buffer = None if c is None else c.previous_buffer()
        if buffer is None:
            raise BadRequest(f'previous terminated container "{cname}" in pod "{pod}" not found')
        return buffer
    buffer = None if c is None else c.current_buffer()
    if buffer is None:
        reason = "ContainerCreating"
        if c is not None and "waiting" in c.state:
            reason = c.state["waiting"].get("reason", reason)
        if reason in _PULL_FAILURES:
            reason = "trying and failing to pull image"
        raise BadRequest(f'container "{cname}" in pod "{pod}" is waiting to start: {reason}')
    return buffer


def _same_pod(pods: dict[tuple[str | None, str], dict[str, Any]], obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    current = pods.get((meta["namespace"], meta["name"]))
    return current is not None and current["metadata"].get("uid") == meta.get("uid")


class LogFeed:
    """One log request's progress through its buffer, in non-blocking steps.

    Both readers drive it, the sync stream's generator and the async fake's stream
    (:class:`~podrunner.backends.fake.aio.AsyncFakeLog`): when following, wait on the clock
    until :meth:`has_more`; :meth:`read` the next pieces (lock held) and send what
    ``output.chunks`` makes of each, ending once ``output.full``; then read again while
    :meth:`again` (lock held). Otherwise the stream ends, after a wait until :meth:`gone`
    when :attr:`alive` is set.

    Attributes:
        follow: The request follows the log.
        output: What is sent of each piece.
        alive: Set by a never-ending-follow fault: whether the pod is still there.
    """

    __slots__ = ("alive", "buffer", "ended", "follow", "handle", "output", "pos", "start")

    def __init__(
        self,
        handle: StreamState,
        buffer: LogBuffer,
        follow: bool,
        start: tuple[int | None, int | None],
        output: Output,
        alive: Callable[[], bool] | None,
    ) -> None:
        self.handle = handle
        self.buffer = buffer
        self.follow = follow
        self.start = start
        self.output = output
        self.alive = alive
        # Where the next read starts; placed (sinceTime, tailLines) at the first read.
        self.pos: Position | None = None
        self.ended = False  # the container instance ended: its log is complete

    def has_more(self) -> bool:
        """The follower's wait predicate (lock held): news, or the stream was closed."""
        pos = self.pos
        return pos is None or self.buffer.has_more(pos) or self.handle.closed

    def read(self) -> list[tuple[int, bytes]] | None:
        """The next pieces as ``(stamp, block)`` (lock held); ``None``: the stream was closed."""
        if self.handle.closed:
            return None
        buffer = self.buffer
        pos = self.pos
        if pos is None:
            pos = buffer.start(*self.start)
        self.ended = buffer.closed
        # A follower holds back a partial line until it is complete.
        pieces, self.pos = buffer.read(pos, whole_lines=self.follow and not self.ended)
        return pieces

    def again(self) -> bool:
        """Whether to read on (lock held): a live follow, or a follow with more to read."""
        if not self.follow:
            return False
        return not self.ended or (self.pos is not None and self.pos < self.buffer.end())

    def gone(self) -> bool:
        """The never-ending follow's wait predicate (lock held): closed, or the pod is gone."""
        return self.handle.closed or self.alive is None or not self.alive()


class FakeLogStream(InterruptibleStream[bytes]):
    """The fake's log stream; its :attr:`feed` is what an async reader drives instead."""

    __slots__ = ("feed",)

    feed: LogFeed


def _log_stream(feed: LogFeed, clock: SchedulingClock) -> Generator[bytes, None, None]:
    lock = clock.lock
    output = feed.output
    while True:
        with lock:
            if feed.follow:
                clock.block_until(feed.has_more)
            pieces = feed.read()
        if pieces is None:
            return
        for stamp, block in pieces:
            yield from output.chunks(stamp, block)
            if output.full:
                return
        with lock:
            again = feed.again()
        if again:
            continue
        if feed.alive is not None:
            # An injected never-ending follow: silent until the pod is deleted.
            with lock:
                clock.block_until(feed.gone)
        return


class Output:
    """What one log request makes of the blocks: timestamps, its byte limit, faults."""

    __slots__ = ("cut", "full", "limit", "per_line", "sent_bytes", "sent_lines", "split", "stamps")

    def __init__(self, timestamps: bool, limit_bytes: int | None, fault: FaultRule | None) -> None:
        self.stamps = timestamps
        self.limit = limit_bytes
        self.cut = None if fault is None else fault.cut_log_after_lines
        self.split = fault is not None and fault.split_utf8
        self.per_line = self.cut is not None or self.split
        self.sent_bytes = 0
        self.sent_lines = 0
        #: The byte limit is reached: the stream ends.
        self.full = False

    def chunks(self, stamp: int, block: bytes) -> Iterator[bytes]:
        """Yield what to send of one block (stamped ``stamp``)."""
        prefix = format_rfc3339_nano(stamp).encode() + b" " if self.stamps else b""
        if not self.per_line:
            # One piece per block: every line gets the block's stamp.
            data = block
            if prefix:
                data = prefix + block.replace(b"\n", b"\n" + prefix)
                if block.endswith(b"\n"):
                    data = data[: -len(prefix)]
            fitted = self._fit(data)
            if fitted is not None:
                yield fitted
            return
        for line in _lines(block):
            if self.cut is not None and self.sent_lines >= self.cut:
                # A dropped connection mid-body is an error for the client (an incomplete
                # chunked read), not a clean end: callers must tell.
                raise BackendUnavailable(
                    f"connection reset: log stream cut after {self.cut} lines (injected fault)"
                )
            fitted = self._fit(prefix + line)
            if fitted is None:
                return
            self.sent_lines += 1
            if self.split:
                yield from split_inside_utf8(fitted)
            else:
                yield fitted

    def _fit(self, data: bytes) -> bytes | None:
        """Cut ``data`` to the room left under the byte limit (``None``: no room left)."""
        if self.limit is not None:
            room = self.limit - self.sent_bytes
            if room <= 0:
                self.full = True
                return None
            data = data[:room]
        self.sent_bytes += len(data)
        return data


def _lines(block: bytes) -> list[bytes]:
    """Split a block into lines, each with its newline (only a newline byte ends a line)."""
    lines = [line + b"\n" for line in block.split(b"\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    return lines
