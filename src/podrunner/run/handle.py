"""RunHandle: the threaded driver of one run's core (:mod:`podrunner.run.core`).

The handle asks the core what to do next and does it: wait on the shared watch, read the
pod, delete it, complete the log, list the pod's events, call the user's callbacks. The
rules (deadlines, fail fast, the verdict, what cleanup deletes) are the core's.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from podrunner._threads import start_quiet
from podrunner.backends.base import Clock, Hold, WatchEvent
from podrunner.errors import BackendError, NotFound, StartTimeout
from podrunner.run.collect import CollectProblem, collect_files
from podrunner.run.core import (
    Action,
    CollectFiles,
    DrainLogs,
    Fail,
    Finish,
    FollowLogs,
    KillPod,
    ListEvents,
    ReadInitLog,
    RefreshPod,
    ReportState,
    RunCore,
    WaitForPod,
)
from podrunner.run.follow import LogFollower
from podrunner.run.initlog import read_init_log
from podrunner.run.outcome import RunResult
from podrunner.run.retry import RetryingBackend
from podrunner.run.state import Phase, PodState
from podrunner.run.watch import Either, Flag, WatchRegistry

if TYPE_CHECKING:
    from podrunner.manifest import Manifests

__all__ = ["Callbacks", "Driver", "RunHandle"]

_A = TypeVar("_A")
# How long a log iterator waits for its status thread to leave (it ends at once on both
# backends; the bound only keeps a stream that cannot be interrupted from holding it).
READER_JOIN_SECONDS = 5.0


@attrs.frozen
class Driver:
    """What every run of a runner shares: the retrying API and the shared watches."""

    api: RetryingBackend
    watches: WatchRegistry


@attrs.frozen
class Callbacks:
    """The user's callbacks for one run (``None``: not wanted)."""

    on_log: Callable[[str], None] | None = None
    on_state: Callable[[PodState], None] | None = None


class RunHandle:
    """A started run: follow it, wait for it, read its logs, cancel it.

    Made by :meth:`PodRunner.start` and :meth:`PodRunner.attach`. Use it as a context manager
    so the pod is cleaned up on exit, whatever happens::

        with runner.start(spec) as handle:
            for line in handle.logs():
                print(line)
            result = handle.wait()
    """

    def __init__(
        self,
        driver: Driver,
        core: RunCore,
        *,
        stored: Mapping[str, Any],
        resource_version: str | None,
        callbacks: Callbacks = Callbacks(),
        manifests: Manifests | None = None,
        check: bool = False,
    ) -> None:
        self.namespace = core.run.namespace
        """The pod's namespace."""
        self.pod_name = core.run.pod_name
        """The pod's name."""
        self.run_id = core.run.run_id
        """The run's id."""
        self.manifests = manifests
        """What was created (``None`` for an attached run)."""
        self._api = driver.api
        self._clock = driver.api.clock
        self._core = core
        self._check = check
        self._on_state = None if callbacks.on_state is None else self._guarded(callbacks.on_state)
        core.report_states = self._on_state is not None
        if callbacks.on_log is not None:
            core.logs.add_listener(self._guarded(callbacks.on_log))
            core.stream_logs = True
        self._stop = Flag()  # cancel, or a callback raised in another thread
        self._lock = threading.Lock()
        self._watch = driver.watches.for_namespace(self.namespace)
        self._sub = self._watch.subscribe(self.pod_name, resource_version)
        self._follower = LogFollower(
            self._api,
            core,
            refresh=self._refresh_state,
            failed_elsewhere=self._callback_failed_elsewhere,
            stopped=self._stop.is_set,
        )
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._cleaned = False
        try:
            self._apply([WatchEvent("MODIFIED", dict(stored))])
        except BaseException:
            self._finish(success=False)  # on_state raised: nothing may stay behind
            raise

    # -- public --------------------------------------------------------------------------

    @property
    def state(self) -> PodState:
        """The latest observed state of the pod."""
        return self._core.state

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
            self._core.limit_total(self._clock.monotonic() + timeout)
        # While this run works, a virtual clock must not jump; it still may whenever this
        # thread itself blocks on the clock.
        hold = self._clock.hold()
        try:
            result = self._drive()
        except BaseException as exc:
            self._error = exc
            try:
                self._finish(success=False)
            except BackendError as cleanup_exc:
                # The caller must see why the run failed, not why cleanup failed after it.
                add_note(exc, f"cleanup also failed: {cleanup_exc}")
            raise
        finally:
            hold.release()
        self._result = result
        self._finish(success=result.ok)
        if self._check:
            result.check()
        return result

    def wait_running(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the main container runs; return the pod as it was then seen.

        The run's rules apply as in :meth:`wait`: a pod that cannot start (its image cannot be
        pulled, no node takes it, its container cannot be created), a pod that went away, a
        cancel and the run's own deadlines end the run with their error, at once. ``timeout``
        only bounds this wait: when it passes, the run goes on (wait for it, or cancel it).
        A container that already ended (too fast to be seen running) returns too:
        :attr:`state` is then terminal and :meth:`wait` gives the result.

        Args:
            timeout: Seconds to wait (``None``: as long as the run's deadlines allow).

        Returns:
            The pod (Kubernetes JSON), running or, when the container already ended, terminal.

        Raises:
            StartTimeout: Not running within ``timeout`` (the run is not stopped), or the run's
                own scheduling or start deadline passed.
            RunError: The run ended without running, as :meth:`wait` would raise.
        """
        if self._error is not None:
            raise self._error
        limit = None if timeout is None else self._clock.monotonic() + timeout
        hold = self._clock.hold()  # as in wait(): a virtual clock jumps only while we block
        try:
            pod = self._until_running(limit)
        except BaseException as exc:
            self._error = exc  # the run is over: wait() raises the same
            try:
                self._finish(success=False)
            except BackendError as cleanup_exc:
                add_note(exc, f"cleanup also failed: {cleanup_exc}")
            raise
        finally:
            hold.release()
        if pod is not None:
            return pod
        assert timeout is not None  # only a bounded wait ends without the pod
        state = self._core.state
        raise StartTimeout(
            f"the pod was not running within {timeout:g}s (state: {state})",
            **self._core.run.context(state),
            events=self._api.pod_events(self.namespace, self.pod_name),
            logs=self._core.logs.text,
        )

    def _until_running(self, limit: float | None) -> dict[str, Any] | None:
        """Drive the core until the container runs or ended (the pod), or ``limit`` (``None``)."""
        core = self._core
        refreshed = False
        while True:
            now = self._clock.monotonic()
            action = core.next_action(now)
            if isinstance(action, Fail):
                raise action.error
            if isinstance(action, Finish):
                return dict(core.pod or {})  # it ran and ended before it was seen running
            if not isinstance(action, WaitForPod):
                self._perform(action)
                continue
            state = core.state
            if state.phase is Phase.RUNNING and not state.deleting:
                return dict(core.pod or {})
            if limit is not None and now >= limit:
                if refreshed:
                    return None
                # As for the run's deadlines: the pod's last event may still be on its way.
                refreshed = True
                self._refresh_state()
                continue
            deadline = action.deadline
            if limit is not None and (deadline is None or limit < deadline):
                deadline = limit
            self._apply(self._watch.wait(self._sub, deadline, self._stop))

    def logs(self) -> Iterator[str]:
        """Follow the container's output line by line until it terminates.

        Lines are de-duplicated across reconnects and also kept for the result. The iterator
        ends once the pod's status says the container terminated (what is left of the log is
        then read at once, since a followed log may stay open after its container ended), when
        the run is cancelled, or when one of its deadlines passes (:meth:`wait` then stops the
        run and raises ``RunTimeout``). An exception raised by a callback is raised here.
        """
        lines = _LogLines(
            self._core,
            self._follower,
            self._clock,
            stopping=self._stop,
            wait_for_pod=self._wait_for_pod,
            stop_waiting=self._stop_waiting,
            failed_elsewhere=self._callback_failed_elsewhere,
        )
        return lines.lines()

    def cancel(self) -> None:
        """Stop the run: its pod is deleted and :meth:`wait` raises ``RunCancelled``."""
        self._core.cancel()
        self._stop.set()
        self.wake()

    def close(self) -> None:
        """Clean up according to the cleanup policy (idempotent)."""
        self._finish(success=self._result is not None and self._result.ok)

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for run_many ---------------------------------------------------------------------

    def poll(self) -> bool:
        """Fold the events already delivered; return whether :meth:`wait` would not block."""
        self._apply(self._watch.take(self._sub))
        return self._core.settled(self._clock.monotonic())

    def next_deadline(self) -> float | None:
        """When the run's next deadline passes (driver clock), if it has one."""
        return self._core.next_deadline()[0]

    def wake(self) -> None:
        """Make whoever waits on this run look at it now (from any thread)."""
        self._sub.wake()
        listener = self._watch.listener
        if listener is not None:
            listener(self.pod_name)  # run_many's consumer
        # A waiter reading the shared stream would only notice at the pod's next event.
        self._watch.interrupt()

    # -- driving the core -----------------------------------------------------------------

    def _drive(self) -> RunResult:
        """Do what the core asks until it finishes or fails (the one wait loop)."""
        core = self._core
        while True:
            action = core.next_action(self._clock.monotonic())
            if isinstance(action, WaitForPod):
                self._apply(self._watch.wait(self._sub, action.deadline, self._stop))
            elif isinstance(action, Finish):
                return action.result
            elif isinstance(action, Fail):
                raise action.error
            else:
                self._perform(action)

    def _perform(self, action: Action) -> None:
        core = self._core
        if isinstance(action, ReportState):
            if self._on_state is not None:
                self._on_state(action.state)
        elif isinstance(action, FollowLogs):
            self._follower.ensure()
        elif isinstance(action, RefreshPod):
            self._refresh_state()
        elif isinstance(action, KillPod):
            self._api.delete_quietly("Pod", self.namespace, self.pod_name, grace=0)
        elif isinstance(action, DrainLogs):
            if action.best_effort:
                self._follower.drain_best_effort()
            else:
                core.logs_drained(self._follower.drain())
        elif isinstance(action, ListEvents):
            core.events_listed(self._api.pod_events(self.namespace, self.pod_name))
        elif isinstance(action, (ReadInitLog, CollectFiles)):
            self._read_from_pod(action)

    def _read_from_pod(self, action: ReadInitLog | CollectFiles) -> None:
        """Read what the verdict needs from the pod: a failed init container's log, files."""
        core, api = self._core, self._api
        if isinstance(action, ReadInitLog):
            core.init_log_read(read_init_log(api, self.namespace, self.pod_name, action.container))
            return
        try:
            files = collect_files(api, self.namespace, self.pod_name, action.collect)
        except CollectProblem as exc:
            core.collect_failed(str(exc))
        else:
            core.files_collected(files)

    def _apply(self, events: list[WatchEvent]) -> None:
        """Fold watch events into the core, doing what each asks at once."""
        if not events:
            return
        core = self._core
        now = self._clock.monotonic()
        for event in events:
            for action in core.pod_event(event, now):
                self._perform(action)
            if core.gone and not core.state.terminal:
                return

    def _wait_for_pod(self, stop: threading.Event, deadline: float | None) -> None:
        """Wait for and fold the pod's next events, until ``stop``, ``deadline`` or the end."""
        self._apply(self._watch.wait(self._sub, deadline, Either(stop, self._stop)))

    def _stop_waiting(self, *, interrupt: bool) -> None:
        """Release a :meth:`_wait_for_pod` (``interrupt``: it may read the shared stream)."""
        self._sub.wake()
        if interrupt:
            self._watch.interrupt()

    def _refresh_state(self) -> None:
        try:
            pod = self._api.get("Pod", self.namespace, self.pod_name)
        except NotFound:
            self._core.pod_missing()
            return
        except BackendError:
            return
        self._apply([WatchEvent("MODIFIED", pod)])

    def _guarded(self, callback: Callable[[_A], None]) -> Callable[[_A], None]:
        """Wrap a user callback so that its exception stops the run and reaches the caller."""
        # Weakly: the core's log collector holds the on_log wrapper, and a strong reference
        # back would make every run with on_log a cycle only the garbage collector frees.
        core_ref = weakref.ref(self._core)

        def call(arg: _A) -> None:
            core = core_ref()
            if core is None or core.callback_error is not None:
                return  # the run is stopping because a callback raised: no more calls
            try:
                callback(arg)
            except BaseException as exc:
                core.callback_failed(exc)
                raise

        return call

    def _callback_failed_elsewhere(self, exc: BaseException) -> bool:
        """In a background thread: whether ``exc`` is a callback's; if so, stop the run."""
        if exc is not self._core.callback_error:
            return False
        self._stop.set()
        self.wake()
        return True

    # -- cleanup --------------------------------------------------------------------------

    def _finish(self, *, success: bool) -> None:
        with self._lock:
            if self._cleaned:
                return
            self._cleaned = True
        self._follower.stop()
        self._follower.detach()
        try:
            self._watch.unsubscribe(self._sub)
        finally:
            self._delete(self._core.cleanup_targets(success=success))

    def _delete(self, targets: tuple[tuple[Any, str], ...]) -> None:
        errors: list[BackendError] = []
        interrupted: BaseException | None = None
        for kind, name in targets:
            for _ in range(2):
                try:
                    self._api.delete_quietly(kind, self.namespace, name, grace=0)
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


class _LogLines:
    """The iterator of :meth:`RunHandle.logs`, with the status thread it needs.

    The follower cannot tell that the container ended while its stream stays open, so a
    second thread follows the pod's status for the iterator.
    """

    def __init__(
        self,
        core: RunCore,
        follower: LogFollower,
        clock: Clock,
        *,
        stopping: Flag,
        wait_for_pod: Callable[[threading.Event, float | None], None],
        stop_waiting: Callable[..., None],
        failed_elsewhere: Callable[[BaseException], bool],
    ) -> None:
        self._core = core
        self._follower = follower
        self._clock = clock
        self._stopping = stopping
        self._wait_for_pod = wait_for_pod
        self._stop_waiting = stop_waiting
        self._failed_elsewhere = failed_elsewhere
        self._lines: list[str] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._over = threading.Event()
        self._failed: list[BaseException] = []

    def _on_line(self, line: str) -> None:
        self._lines.append(line)
        self._ready.set()

    def _follow_status(self, hold: Hold) -> None:
        hold.adopt()
        core = self._core
        try:
            # Until the container ends, or one of the run's deadlines passes (wait() then
            # stops the run and raises RunTimeout): the lines end either way.
            while not (core.settled(self._clock.monotonic()) or self._stopping.is_set()):
                if self._stop.is_set():
                    return
                self._wait_for_pod(self._stop, core.next_deadline()[0])
        except BaseException as exc:
            self._failed_elsewhere(exc)
            self._failed.append(exc)  # raised by the iterator, in its caller's thread
        finally:
            self._over.set()
            self._ready.set()
            # Last: time may move on only once the iterator was told why this thread ended.
            hold.release()

    def lines(self) -> Iterator[str]:
        """The lines, as :meth:`RunHandle.logs` documents them."""
        core, follower = self._core, self._follower
        clock = self._clock
        # Held as wait() holds it: a virtual clock must not jump while this thread works
        # (from before it starts, and before the follower starts: time jumped to the end of
        # the run while the follower alone waited), only while it waits.
        hold = clock.hold(owned=False)
        core.logs.add_listener(self._on_line)
        core.stream_logs = True
        follower.ensure()
        status = threading.Thread(
            target=self._follow_status,
            args=(hold,),
            name=f"podrunner-status-{core.run.pod_name}",
            daemon=True,
        )
        start_quiet(status)
        try:
            yield from self._yield_lines(clock)
        finally:
            core.logs.remove_listener(self._on_line)  # (which would hold this object)
            self._stop.set()
            # The status thread may be blocked reading the shared stream.
            self._stop_waiting(interrupt=status.is_alive())
            status.join(READER_JOIN_SECONDS)

    def _yield_lines(self, clock: Clock) -> Iterator[str]:
        core, follower, lines = self._core, self._follower, self._lines
        pos = 0
        while True:
            self._ready.clear()
            batch = lines[pos:]
            pos += len(batch)
            yield from batch
            if batch:
                continue
            if core.callback_error is not None:
                raise core.callback_error
            if self._failed:
                raise self._failed[0]
            if self._over.is_set() or (follower.done and follower.drained):
                ended = core.state.terminal or core.gone
                if ended and not follower.drained and not self._stopping.is_set():
                    follower.drain()  # the rest arrives through _on_line
                if pos == len(lines):
                    return
                continue
            clock.wait(self._ready, 1.0)


def add_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc`` (Python >= 3.11; a no-op before)."""
    add = getattr(exc, "add_note", None)
    if add is not None:
        add(note)
