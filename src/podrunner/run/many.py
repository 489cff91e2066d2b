"""run_many: many runs on one shared watch per namespace, one reader, a bounded pool.

The consumer (the thread iterating :meth:`PodRunner.run_many`) starts runs while there is
room, folds the events the readers deliver, and hands each settled run to the pool to finish
(drain its log, delete its objects). Blocking work never runs on the consumer.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from podrunner._threads import block_stop_signals, start_quiet
from podrunner.backends.base import Clock, Hold
from podrunner.errors import BackendError, RunError
from podrunner.run.handle import READER_JOIN_SECONDS, RunHandle, add_note
from podrunner.run.outcome import RunResult
from podrunner.run.watch import SharedWatch, Subscription

if TYPE_CHECKING:
    from podrunner.spec import PodSpec

__all__ = ["ManyRuns"]

_T = TypeVar("_T")
_Future = concurrent.futures.Future


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
        self._pool = concurrent.futures.ThreadPoolExecutor(
            size, thread_name_prefix="podrunner-run", initializer=block_stop_signals
        )
        self._lock = threading.Lock()
        self._busy = 0
        self._backlog: collections.deque[tuple[Callable[[], Any], _Future[Any]]] = (
            collections.deque()
        )

    def submit(self, fn: Callable[[], _T]) -> _Future[_T]:
        """Run ``fn`` on a worker; a backlog item can still be cancelled with its future."""
        future: _Future[_T] = concurrent.futures.Future()
        with self._lock:
            if self._busy >= self._size:
                self._backlog.append((fn, future))
                return future
            self._busy += 1
        self._pool.submit(self._work, self._clock.hold(owned=False), fn, future)
        return future

    def _work(self, hold: Hold, fn: Callable[[], Any], future: _Future[Any]) -> None:
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


class ManyRuns:
    """The engine of :meth:`PodRunner.run_many` (one instance per call).

    Args:
        clock: The backend's clock.
        start: Starts one run (:meth:`PodRunner.start` with the caller's options).
        watch_for: The shared watch a spec's run is followed on.
        max_parallel: Upper bound of runs in flight.
        return_exceptions: Yield a run's error instead of raising it.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        start: Callable[[PodSpec], RunHandle],
        watch_for: Callable[[PodSpec], SharedWatch],
        max_parallel: int,
        return_exceptions: bool,
    ) -> None:
        self._clock = clock
        self._start = start
        self._watch_for = watch_for
        self._max_parallel = max_parallel
        self._return_exceptions = return_exceptions
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ready_names: set[str] = set()
        self._done: list[_Future[Any]] = []
        self._reader_errors: list[BaseException] = []  # a shared watch that gave up
        self._cleanup_errors: list[BackendError] = []
        self._handles: dict[str, RunHandle] = {}
        self._starting: set[_Future[Any]] = set()
        self._finishing: set[_Future[Any]] = set()
        self._readers: dict[SharedWatch, tuple[Subscription, threading.Thread]] = {}
        self._workers: _Workers | None = None
        self._in_flight = 0
        self._remaining = 0

    def outcomes(self, specs: list[PodSpec]) -> Iterator[RunResult | RunError]:
        """Yield each run's result (or error) as it finishes."""
        if not specs:
            return
        self._workers = _Workers(self._clock, min(32, self._max_parallel, len(specs)))
        todo = iter(specs)
        self._remaining = len(specs)
        failure: BaseException | None = None
        # The consumer holds the clock while it works; its own waits do not count the hold.
        hold = self._clock.hold()
        try:
            while self._remaining:
                self._fill(todo)
                self._ready.clear()
                done, names = self._take_news()
                for future in done:
                    yield from self._collect(future)
                for name in names:
                    found = self._handles.get(name)
                    if found is not None:
                        self._check(found)
                self._wait_for_news(self._finish_due())
        except BaseException as exc:
            failure = exc
            raise
        finally:
            hold.release()
            self._shutdown(failure)

    # -- the consumer's steps -------------------------------------------------------------

    def _fill(self, todo: Iterator[PodSpec]) -> None:
        """Start runs while there is room."""
        while self._in_flight < self._max_parallel:
            spec = next(todo, None)
            if spec is None:
                return
            self._ensure_reader(self._watch_for(spec))
            future = self._submit(partial(self._start, spec))
            self._starting.add(future)
            future.add_done_callback(self._future_done)
            self._in_flight += 1

    def _take_news(self) -> tuple[list[_Future[Any]], set[str]]:
        with self._lock:
            done, self._done = self._done, []
            names, self._ready_names = self._ready_names, set()
            if self._reader_errors:
                raise self._reader_errors[0]
        return done, names

    def _collect(self, future: _Future[Any]) -> Iterator[RunResult | RunError]:
        """Account for a start or a finish that completed; yield the outcome, if one."""
        if future in self._starting:
            self._starting.discard(future)
            error = future.exception()
            if error is None:
                handle: RunHandle = future.result()
                self._handles[handle.pod_name] = handle
                self._check(handle)
                return
        else:
            self._finishing.discard(future)
            error = future.exception()
        self._in_flight -= 1
        self._remaining -= 1
        if error is None:
            yield future.result()
        elif isinstance(error, RunError) and self._return_exceptions:
            yield error
        else:
            raise error

    def _check(self, handle: RunHandle) -> None:
        if handle.poll():
            self._submit_finish(handle)

    def _finish_due(self) -> float | None:
        """Finish the runs whose deadline passed; return the next deadline of the others."""
        next_deadline: float | None = None
        now = self._clock.monotonic()
        for handle in list(self._handles.values()):
            deadline = handle.next_deadline()
            if deadline is None:
                continue
            if deadline <= now:
                self._submit_finish(handle)
            elif next_deadline is None or deadline < next_deadline:
                next_deadline = deadline
        return next_deadline

    def _wait_for_news(self, next_deadline: float | None) -> None:
        # Wait only when there is nothing to do: a run that just finished frees a slot for
        # the next spec, which the top of the loop starts.
        room = self._in_flight < self._max_parallel and self._in_flight < self._remaining
        if self._remaining and not room and not self._done and not self._ready_names:
            now = self._clock.monotonic()
            self._clock.wait(self._ready, None if next_deadline is None else next_deadline - now)

    def _submit_finish(self, handle: RunHandle) -> None:
        self._handles.pop(handle.pod_name, None)
        future = self._submit(handle.wait)
        self._finishing.add(future)
        future.add_done_callback(partial(self._finished, handle))

    def _submit(self, fn: Callable[[], _T]) -> _Future[_T]:
        assert self._workers is not None
        return self._workers.submit(fn)

    # -- readers ----------------------------------------------------------------------------

    def _ensure_reader(self, watch: SharedWatch) -> None:
        if watch in self._readers:
            return
        watch.listener = self._wake
        idle = Subscription("")
        # The reader holds the clock while it lives, as a log follower does: time moves only
        # while it waits, never between reading an event and handing it to its run.
        hold = self._clock.hold(owned=False)
        thread = threading.Thread(
            target=self._read, args=(watch, idle, hold), daemon=True, name="podrunner-watch"
        )
        self._readers[watch] = (idle, thread)
        try:
            start_quiet(thread)
        except BaseException:
            hold.release()
            raise

    def _read(self, watch: SharedWatch, idle: Subscription, hold: Hold) -> None:
        # Waits forever on a subscription no pod has: it leads the shared stream whenever
        # nobody else does, so every run's events keep flowing.
        hold.adopt()
        try:
            while not self._stop.is_set():
                watch.wait(idle, None, self._stop)
        except BaseException as exc:
            with self._lock:
                self._reader_errors.append(exc)
            self._ready.set()
        finally:
            hold.release()

    # -- callbacks from other threads -------------------------------------------------------

    def _wake(self, name: str | None = None) -> None:
        with self._lock:
            if name is not None:
                self._ready_names.add(name)
        self._ready.set()

    def _close(self, handle: RunHandle) -> None:
        try:
            handle.close()
        except BackendError as exc:
            with self._lock:
                self._cleanup_errors.append(exc)

    def _finished(self, handle: RunHandle, future: _Future[Any]) -> None:
        self._close(handle)
        self._future_done(future)

    def _close_started(self, future: _Future[Any]) -> None:
        # A start that completed after run_many stopped: its run is stopped and cleaned up.
        if future.cancelled() or future.exception() is not None:
            return
        handle: RunHandle = future.result()
        handle.cancel()
        self._close(handle)

    def _future_done(self, future: _Future[Any]) -> None:
        with self._lock:
            self._done.append(future)
        self._ready.set()

    # -- the end ----------------------------------------------------------------------------

    def _shutdown(self, failure: BaseException | None) -> None:
        """Whatever run_many raised or returned, and wherever its caller stopped, stop all.

        Starts still queued never begin, a start under way is cleaned up as soon as it
        returns (or at once if it already has), and every run in flight is stopped.
        """
        self._stop.set()
        for future in list(self._starting):
            if not future.cancel():
                future.add_done_callback(self._close_started)
        for handle in list(self._handles.values()):
            handle.cancel()
            self._submit(partial(self._close, handle))
        if self._workers is not None:
            self._workers.shutdown()  # queued closes and finishes run: none is cancelled
        for watch, (idle, _) in self._readers.items():
            watch.listener = None
            idle.wake()
        # A reader blocked on the shared stream would hold its connection (and, on the fake,
        # let virtual time jump to the stream's timeout) after run_many returned.
        for watch in self._readers:
            watch.interrupt()
        give_up = time.monotonic() + READER_JOIN_SECONDS  # one bound for all readers
        for _, thread in self._readers.values():
            thread.join(max(0.0, give_up - time.monotonic()))
        if self._cleanup_errors and failure is not None:
            add_note(failure, f"cleanup also failed: {self._cleanup_errors[0]}")
