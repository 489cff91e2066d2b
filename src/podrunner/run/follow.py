"""The log follower: the thread that streams a run's log into the run core's collector.

It reconnects from the last timestamp until the pod's status says the container is done
(completion never comes from the log stream), and completes the log with one non-following
read when the run ends: a followed log may stay open after its container ended (kwok's never
ends; a real kubelet can leave one open), so the follower is not waited for. The collector
drops the lines it already has, so the output is exact whichever read got each line.

The thread holds the backend's clock while it lives (:meth:`Clock.hold`): a virtual clock
moves only while the follower itself waits on it (in a read, in a back-off), never while it
works on what it read. A callback that raises on a line therefore stops the run before the
pod's next moment, however long the callback takes and whichever thread runs first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from podrunner._threads import start_quiet
from podrunner.backends._stream import closable_from_any_thread
from podrunner.backends.base import Hold
from podrunner.errors import BackendError, BadRequest, NotFound, TooManyRequests, Unauthorized
from podrunner.run.core import RunCore
from podrunner.run.retry import RetryingBackend

__all__ = ["LogFollower"]


class LogFollower:
    """Follows one run's log on a thread of its own, and completes it at the end.

    Args:
        api: Where to read the log.
        core: The run (its identity, state and log collector).
        refresh: Reads the pod once (when a stream ends: is the container done?).
        failed_elsewhere: Given an exception raised on the follower's thread; returns whether
            it was a user callback's (the run then stops), else the thread re-raises it.
        stopped: Whether the run is being stopped (cancel).
    """

    def __init__(
        self,
        api: RetryingBackend,
        core: RunCore,
        *,
        refresh: Callable[[], None],
        failed_elsewhere: Callable[[BaseException], bool],
        stopped: Callable[[], bool],
    ) -> None:
        self._api = api
        self._clock = api.clock
        self._core = core
        self._refresh = refresh
        self._failed_elsewhere = failed_elsewhere
        self._stopped = stopped
        self._lock = threading.Lock()
        self._collector_lock = threading.Lock()
        self._drain_lock = threading.Lock()  # one non-following read at a time
        self._thread: threading.Thread | None = None
        self.done = False
        """Whether the follower thread ended (never true if it never started)."""
        self._abandoned = False  # set under the collector lock: the follower feeds no more
        self._stream: Iterator[bytes] | None = None  # the follower's open stream
        self.drained = False
        """Whether the log was completed by a non-following read."""

    def ensure(self) -> None:
        """Start following, unless already started."""
        with self._lock:
            if self._thread is not None:
                return
            # Taken here, adopted by the thread: time cannot jump before the thread runs.
            hold = self._clock.hold(owned=False)
            self._thread = threading.Thread(
                target=self._follow,
                args=(hold,),
                name=f"podrunner-logs-{self._core.run.pod_name}",
                daemon=True,
            )
        try:
            start_quiet(self._thread)
        except BaseException:
            hold.release()
            raise

    def stop(self) -> None:
        """Stop following: the collector gets nothing more from it, and its stream is closed."""
        with self._collector_lock:
            self._abandoned = True
            stream = self._stream
        # Only a stream made to be closed from another thread: closing a plain generator
        # that another thread runs would fail in one of the two threads.
        if closable_from_any_thread(stream):
            stream.close()  # type: ignore[union-attr]

    def detach(self) -> None:
        """Forget the run's callbacks: the run is over and the follower stopped.

        They are methods of the run's handle, which holds this follower: kept, the two would
        form a reference cycle, and each run's objects (its pods, its log) would stay in
        memory until the garbage collector found them. A follower thread still winding down
        finds nobody left to tell.
        """
        self._refresh = _nothing
        self._failed_elsewhere = _not_a_callback_error

    def _is_abandoned(self) -> bool:
        """Whether the follower was told to stop (read from any thread)."""
        return self._abandoned

    def drain(self) -> str:
        """Complete the log before the pod is deleted; return a note if it is incomplete."""
        self.stop()
        return self._drain_now()

    def drain_best_effort(self) -> None:
        """Take what the log has now, without waiting and without failing."""
        try:
            self.drain()
        except BackendError:
            return

    # -- the thread -------------------------------------------------------------------------

    def _follow(self, hold: Hold) -> None:
        hold.adopt()
        try:
            self._follow_until_done()
        except BaseException as exc:
            # Still holding the clock: the run hears of a callback's error (failed_elsewhere
            # wakes whoever waits on it) before time may move on.
            if self._failed_elsewhere(exc):
                return
            if self._is_abandoned():
                return  # its stream was closed under it: nobody needs this read any more
            raise
        finally:
            self.done = True
            hold.release()

    def _follow_until_done(self) -> None:
        policy = self._api.policy
        failures = 0
        since = 0.0  # when the first of those failures happened
        while not self._is_abandoned():
            try:
                self._read(follow=True)
                failures = 0
            except NotFound:
                return
            except BackendError as exc:
                failures += 1
                now = self._clock.monotonic()
                since = now if failures == 1 else since
                # An outage is ridden out (RetryPolicy.outage); the final read completes the log.
                if failures > policy.attempts * 4 and policy.exhausted(failures, exc, now - since):
                    return
            if self._is_abandoned() or self._stopped():
                return
            # The stream ended. Only the pod status says whether the container is done:
            # a stream also ends on a dropped connection or before the container started.
            if not self._core.state.terminal:
                self._refresh()
            if self._core.state.terminal or self._core.gone:
                # If the run is already completing the log, that read serves both: waiting
                # for it on a lock, clock held, would stop the time that read may sleep on.
                self._drain_now(wait=False)
                return
            self._clock.sleep(min(1.0, policy.backoff * max(1, failures)))

    # -- reads ------------------------------------------------------------------------------

    def _read(self, *, follow: bool) -> None:
        """One log request from the last timestamp; raises on a broken stream."""
        collector = self._core.logs
        with self._collector_lock:
            if follow and self._is_abandoned():
                return  # the collector now belongs to the final, non-following read
            since = collector.since_time
            collector.begin_stream()
        run = self._core.run
        stream = self._api.read_log(
            run.namespace,
            run.pod_name,
            run.container,
            follow=follow,
            timestamps=True,
            since_time=since,
        )
        if follow:
            with self._collector_lock:
                self._stream = stream
            if self._is_abandoned():
                self.stop()  # abandoned meanwhile: the stop may have missed it
        try:
            for chunk in stream:
                with self._collector_lock:
                    if follow and self._is_abandoned():
                        return
                    collector.feed(chunk)
        except BaseException:
            with self._collector_lock:
                if not (follow and self._is_abandoned()):
                    collector.end_stream(complete=False)
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        with self._collector_lock:
            if follow and self._is_abandoned():
                return
            # A follow stream that ended may have been cut: its partial line comes again.
            collector.end_stream(complete=not follow)

    def _drain_now(self, *, wait: bool = True) -> str:
        """Read what the log has that the collector lacks; return a note if incomplete.

        ``wait=False``: if another thread is completing the log, leave it to that thread.
        """
        if not self._drain_lock.acquire(blocking=wait):
            return ""
        try:
            if self.drained:
                return ""
            return self._read_rest()
        finally:
            self._drain_lock.release()

    def _read_rest(self) -> str:
        api = self._api
        attempt = 0
        refreshed = False
        clock = self._clock
        since = clock.monotonic()
        while True:
            try:
                self._read(follow=False)
                self.drained = True
                return ""
            except NotFound:
                return "logs unavailable: the pod was deleted before they could be read"
            except BadRequest as exc:
                return f"logs unavailable: {exc.message}"
            except Unauthorized:
                if refreshed or not api.refresh_credentials():
                    return "logs unavailable: unauthorized"
                refreshed = True
            except BackendError as exc:
                attempt += 1
                if api.policy.exhausted(attempt, exc, clock.monotonic() - since):
                    return f"logs incomplete: {exc}"
                delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
                clock.sleep(delay or api.policy.delay(attempt))


def _nothing() -> None:
    return None


def _not_a_callback_error(exc: BaseException) -> bool:
    return False
