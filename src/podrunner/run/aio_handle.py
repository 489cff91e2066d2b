"""AsyncRunHandle: the asyncio driver of one run's core (:mod:`podrunner.run.core`).

The twin of :class:`~podrunner.RunHandle`: it asks the same :class:`RunCore` what to do next
and does it with awaits (wait on the shared watch, read the pod, delete it, complete the log,
list the pod's events, call the user's callbacks). The rules are the core's.

Cancellation is structured: when the task awaiting :meth:`AsyncRunHandle.wait` is cancelled
(``task.cancel()``, ``asyncio.timeout``, an anyio cancel scope), cleanup runs to its end in a
task of its own, shielded from that cancellation, and only then does ``CancelledError``
propagate.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from podrunner.backends.base import AsyncClock, WatchEvent
from podrunner.errors import BackendError, NotFound, StartTimeout
from podrunner.run.aio_collect import acollect_files
from podrunner.run.aio_follow import AsyncLogFollower
from podrunner.run.aio_initlog import aread_init_log
from podrunner.run.aio_retry import AsyncRetryingBackend
from podrunner.run.aio_watch import AsyncSubscription, AsyncWatchRegistry
from podrunner.run.collect import CollectProblem
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
from podrunner.run.handle import add_note
from podrunner.run.outcome import RunResult
from podrunner.run.state import Phase, PodState

if TYPE_CHECKING:
    from podrunner.manifest import Manifests

__all__ = ["AsyncCallbacks", "AsyncDriver", "AsyncRunHandle", "call_back", "shielded"]

_T = TypeVar("_T")

LogCallback = Callable[[str], "Awaitable[object] | object"]
StateCallback = Callable[[PodState], "Awaitable[object] | object"]


@attrs.frozen
class AsyncDriver:
    """What every run of an async runner shares: the retrying API and the shared watches."""

    api: AsyncRetryingBackend
    watches: AsyncWatchRegistry


@attrs.frozen
class AsyncCallbacks:
    """The user's callbacks for one run, each a function or a coroutine function."""

    on_log: LogCallback | None = None
    on_state: StateCallback | None = None


async def shielded(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``make()`` to its end even if the calling task is cancelled meanwhile.

    The work runs in a task of its own; a cancellation of the caller is held until the work
    is done, then raised (so ``asyncio.timeout`` still turns it into ``TimeoutError``).
    """
    task = asyncio.ensure_future(make())
    interrupted: BaseException | None = None
    while not task.done():
        try:
            with _anyio_shield():
                await asyncio.wait((task,))
        except asyncio.CancelledError as exc:
            interrupted = exc
    if interrupted is not None:
        if not task.cancelled() and task.exception() is not None:
            add_note(interrupted, f"cleanup also failed: {task.exception()}")
        raise interrupted
    return task.result()


def _anyio_shield() -> contextlib.AbstractContextManager[object]:
    """A shielded anyio scope when anyio is in use, else nothing.

    A cancelled anyio scope cancels its task again on every pass through the loop while it
    waits: the loop is then never idle, and a fake cluster's virtual clock could not move for
    a cleanup that waits on it (a retry back-off). Inside a shielded scope it leaves the task
    alone. Plain asyncio cancels once, which the loop above absorbs.
    """
    anyio = sys.modules.get("anyio")
    if anyio is None:
        return contextlib.nullcontext()
    shield: contextlib.AbstractContextManager[object] = anyio.CancelScope(shield=True)
    return shield


async def call_back(callback: Callable[[_T], object], arg: _T) -> None:
    """Call a sync or async callback."""
    outcome = callback(arg)
    if inspect.isawaitable(outcome):
        await outcome


class AsyncRunHandle:
    """A started run, for coroutines: follow it, await it, read its logs, cancel it.

    Made by :meth:`AsyncPodRunner.start` and :meth:`AsyncPodRunner.attach`. Use it as an
    async context manager so the pod is cleaned up on exit, whatever happens::

        async with runner.start(spec) as handle:
            async for line in handle.logs():
                print(line)
            result = await handle.wait()
    """

    def __init__(
        self,
        driver: AsyncDriver,
        core: RunCore,
        *,
        callbacks: AsyncCallbacks = AsyncCallbacks(),
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
        self._clock: AsyncClock = driver.api.clock
        self._core = core
        self._check = check
        self._on_state = callbacks.on_state
        core.report_states = callbacks.on_state is not None  # nobody hears them otherwise
        self._on_log = callbacks.on_log
        self._backlog: collections.deque[str] = collections.deque()
        if callbacks.on_log is not None:
            core.logs.add_listener(self._backlog.append)
            core.stream_logs = True
        self._watch = driver.watches.for_namespace(self.namespace)
        self._sub: AsyncSubscription | None = None  # subscribed by _begin
        self._waiter: asyncio.Future[Any] | None = None
        self._follower = AsyncLogFollower(
            self._api,
            core,
            refresh=self._refresh_state,
            flush=self._flush,
            failed=self._failed_elsewhere,
        )
        self._result: RunResult | None = None
        self._error: BaseException | None = None
        self._cleaned = False

    async def _begin(self, stored: Mapping[str, Any], resource_version: str | None) -> None:
        """Subscribe to the pod and fold what was stored (a failed on_state cleans up)."""
        self._sub = await self._watch.subscribe(self.pod_name, resource_version)
        try:
            await self._apply([WatchEvent("MODIFIED", dict(stored))])
        except BaseException:
            await shielded(lambda: self._finish(success=False))
            raise

    # -- public --------------------------------------------------------------------------

    @property
    def state(self) -> PodState:
        """The latest observed state of the pod."""
        return self._core.state

    async def wait(self, timeout: float | None = None) -> RunResult:
        """Wait for the run to end and return its result.

        Args:
            timeout: Seconds to wait on top of the run's own deadlines; when they pass the run
                is stopped and :class:`~podrunner.errors.RunTimeout` raised.

        Returns:
            The :class:`RunResult` when the container ran and terminated.

        Raises:
            RunError: A subclass saying why there is no result (see :mod:`podrunner.errors`).
            asyncio.CancelledError: The awaiting task was cancelled; the run was cleaned up.
        """
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if timeout is not None:
            self._core.limit_total(self._clock.monotonic() + timeout)
        try:
            result = await self._drive()
        except BaseException as exc:
            self._error = error = exc
            await shielded(lambda: self._finish_after(error))
            raise
        self._result = result
        await shielded(lambda: self._finish(success=result.ok))
        if self._check:
            result.check()
        return result

    async def wait_running(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait until the main container runs; return the pod as it was then seen.

        As :meth:`RunHandle.wait_running <podrunner.RunHandle.wait_running>`: a pod that
        cannot start, went away or was cancelled, and the run's own deadlines end the run with
        their error, at once. ``timeout`` only bounds this wait: when it passes, the run goes
        on. A container that already ended returns too (:attr:`state` is then terminal).

        Args:
            timeout: Seconds to wait (``None``: as long as the run's deadlines allow).

        Returns:
            The pod (Kubernetes JSON), running or, when the container already ended, terminal.

        Raises:
            StartTimeout: Not running within ``timeout`` (the run is not stopped), or the run's
                own scheduling or start deadline passed.
            RunError: The run ended without running, as :meth:`wait` would raise.
            asyncio.CancelledError: The awaiting task was cancelled; the run was cleaned up.
        """
        if self._error is not None:
            raise self._error
        limit = None if timeout is None else self._clock.monotonic() + timeout
        try:
            pod = await self._until_running(limit)
        except BaseException as exc:
            self._error = error = exc  # the run is over: wait() raises the same
            await shielded(lambda: self._finish_after(error))
            raise
        if pod is not None:
            return pod
        assert timeout is not None  # only a bounded wait ends without the pod
        state = self._core.state
        raise StartTimeout(
            f"the pod was not running within {timeout:g}s (state: {state})",
            **self._core.run.context(state),
            events=await self._api.pod_events(self.namespace, self.pod_name),
            logs=self._core.logs.text,
        )

    async def logs(self) -> AsyncIterator[str]:
        """Follow the container's output line by line until it terminates.

        Lines are de-duplicated across reconnects and also kept for the result. The iterator
        ends once the pod's status says the container terminated (what is left of the log is
        then read at once), when the run is cancelled, or when one of its deadlines passes
        (:meth:`wait` then stops it and raises ``RunTimeout``). A callback's exception is
        raised here.
        """
        core, follower = self._core, self._follower
        lines: list[str] = []
        wake: list[asyncio.Future[Any]] = []

        def on_line(line: str) -> None:
            lines.append(line)
            if wake and not wake[0].done():
                wake[0].set_result(None)

        core.logs.add_listener(on_line)
        core.stream_logs = True
        follower.ensure()
        pos = 0
        try:
            while True:
                batch = lines[pos:]
                pos += len(batch)
                for line in batch:
                    yield line
                if batch:
                    continue
                if core.callback_error is not None:
                    raise core.callback_error
                # A deadline that passed ends the lines too: wait() then stops the run.
                over = core.settled(self._clock.monotonic())
                if over or (follower.done and follower.drained):
                    if not follower.drained and not core.cancelled:
                        await follower.drain()  # the rest arrives through on_line
                    if pos == len(lines):
                        return
                    continue
                future = asyncio.get_running_loop().create_future()
                wake[:] = [future]
                await self._wait_for_pod(core.next_deadline()[0], future)
        finally:
            core.logs.remove_listener(on_line)  # (which would hold the lines read)

    def cancel(self) -> None:
        """Stop the run: its pod is deleted and :meth:`wait` raises ``RunCancelled``."""
        self._core.cancel()
        self._wake()

    async def close(self) -> None:
        """Clean up according to the cleanup policy (idempotent)."""
        await shielded(lambda: self._finish(success=self._result is not None and self._result.ok))

    async def __aenter__(self) -> AsyncRunHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- driving the core -----------------------------------------------------------------

    async def _drive(self) -> RunResult:
        """Do what the core asks until it finishes or fails (the one wait loop)."""
        core = self._core
        while True:
            action = core.next_action(self._clock.monotonic())
            if isinstance(action, WaitForPod):
                await self._wait_for_pod(action.deadline)
            elif isinstance(action, Finish):
                return action.result
            elif isinstance(action, Fail):
                raise action.error
            else:
                await self._perform(action)

    async def _until_running(self, limit: float | None) -> dict[str, Any] | None:
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
                await self._perform(action)
                continue
            state = core.state
            if state.phase is Phase.RUNNING and not state.deleting:
                return dict(core.pod or {})
            if limit is not None and now >= limit:
                if refreshed:
                    return None
                # As for the run's deadlines: the pod's last event may still be on its way.
                refreshed = True
                await self._refresh_state()
                continue
            deadline = action.deadline
            if limit is not None and (deadline is None or limit < deadline):
                deadline = limit
            await self._wait_for_pod(deadline)

    async def _wait_for_pod(
        self, deadline: float | None, future: asyncio.Future[Any] | None = None
    ) -> None:
        """Fold the pod's next events; return early when woken (cancel) or at ``deadline``."""
        assert self._sub is not None  # subscribed when the handle was made
        future = future or asyncio.get_running_loop().create_future()
        self._waiter = future
        await self._apply(await self._watch.wait(self._sub, deadline, future))

    async def _perform(self, action: Action) -> None:
        core = self._core
        if isinstance(action, ReportState):
            if self._on_state is not None and core.callback_error is None:
                try:
                    await call_back(self._on_state, action.state)
                except BaseException as exc:
                    core.callback_failed(exc)
                    raise
        elif isinstance(action, FollowLogs):
            self._follower.ensure()
        elif isinstance(action, RefreshPod):
            await self._refresh_state()
        elif isinstance(action, KillPod):
            await self._api.delete_quietly("Pod", self.namespace, self.pod_name, grace=0)
        elif isinstance(action, DrainLogs):
            if action.best_effort:
                await self._follower.drain_best_effort()
            else:
                core.logs_drained(await self._follower.drain())
        elif isinstance(action, ListEvents):
            core.events_listed(await self._api.pod_events(self.namespace, self.pod_name))
        elif isinstance(action, (ReadInitLog, CollectFiles)):
            await self._read_from_pod(action)

    async def _read_from_pod(self, action: ReadInitLog | CollectFiles) -> None:
        """Read what the verdict needs from the pod: a failed init container's log, files."""
        core, api = self._core, self._api
        if isinstance(action, ReadInitLog):
            log = await aread_init_log(api, self.namespace, self.pod_name, action.container)
            core.init_log_read(log)
            return
        try:
            files = await acollect_files(api, self.namespace, self.pod_name, action.collect)
        except CollectProblem as exc:
            core.collect_failed(str(exc))
        else:
            core.files_collected(files)

    async def _apply(self, events: list[WatchEvent]) -> None:
        """Fold watch events into the core, doing what each asks at once."""
        core = self._core
        now = self._clock.monotonic()
        for event in events:
            for action in core.pod_event(event, now):
                await self._perform(action)
            if core.gone and not core.state.terminal:
                return

    async def _refresh_state(self) -> None:
        try:
            pod = await self._api.get("Pod", self.namespace, self.pod_name)
        except NotFound:
            self._core.pod_missing()
            return
        except BackendError:
            return
        await self._apply([WatchEvent("MODIFIED", pod)])

    async def _flush(self) -> None:
        """Hand the lines read so far to ``on_log``, in order (its exception stops the run)."""
        backlog, callback, core = self._backlog, self._on_log, self._core
        while backlog and callback is not None and core.callback_error is None:
            line = backlog.popleft()
            try:
                await call_back(callback, line)
            except BaseException as exc:
                core.callback_failed(exc)
                self._wake()
                raise

    def _failed_elsewhere(self, exc: BaseException) -> None:
        """The follower task ended with ``exc``: the run stops and its caller sees it."""
        self._core.callback_failed(exc)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- cleanup --------------------------------------------------------------------------

    async def _finish_after(self, exc: BaseException) -> None:
        try:
            await self._finish(success=False)
        except BackendError as cleanup_exc:
            # The caller must see why the run failed, not why cleanup failed after it.
            add_note(exc, f"cleanup also failed: {cleanup_exc}")

    async def _finish(self, *, success: bool) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        self._follower.stop()
        if self._sub is not None:
            self._watch.unsubscribe(self._sub)
        errors: list[BackendError] = []
        for kind, name in self._core.cleanup_targets(success=success):
            try:
                await self._api.delete_quietly(kind, self.namespace, name, grace=0)
            except BackendError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]
