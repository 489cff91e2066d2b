"""The fake's clocks for coroutines: one agent per event loop, on the same lock and timers.

The rule of :mod:`podrunner.backends.fake.clock` holds for tasks: virtual time jumps only when
everyone waiting on the clock is blocked. An event loop counts as *one* waiter of the clock
(the agent's proxy), blocked when the loop is idle: no callback is ready to run, so every task
waits for something. Then the agent does what a thread's ``block_until`` does: it jumps to the
earliest deadline (a kubelet transition, a task's sleep or timeout, a watch's server-side
timeout after ``idle_grace``), fires the timers due by then, and resolves the waits they end.
Threads that share the clock see the loop as one more waiter, so the two kinds mix.

Waits are futures resolved by the agent: a deadline waiter when time reaches it; a predicate
waiter (a watch or followed log waiting for news) when a change makes its predicate true.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from podrunner.backends.fake.clock import SchedulingClock, VirtualClock, _Waiter

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AsyncFakeClock", "LoopAgent"]

T = TypeVar("T")

# Loops without a visible ready queue (uvloop) are taken as idle after this many passes in a
# row through the loop with no change to the clock.
_IDLE_PASSES = 3


class _AsyncWaiter:
    __slots__ = ("deadline", "future", "live", "pred", "seq", "soft")

    def __init__(
        self,
        future: asyncio.Future[Any],
        deadline: float | None,
        soft: bool,
        pred: Callable[[], Any] | None,
        seq: int,
    ) -> None:
        self.future = future
        self.deadline = deadline
        self.soft = soft
        self.pred = pred
        self.seq = seq
        self.live = True  # not yet resolved nor given up


_Heap = list[tuple[float, int, _AsyncWaiter]]


class LoopAgent:
    """The clock as one event loop's tasks see it (see the module docstring).

    Args:
        clock: The fake cluster's clock.
        loop: The event loop (the agent lives in its thread; it is held weakly).
    """

    def __init__(self, clock: SchedulingClock, loop: asyncio.AbstractEventLoop) -> None:
        self.clock = clock
        self._loop = weakref.ref(loop)
        self.virtual = isinstance(clock, VirtualClock)
        self._tid = threading.get_ident()
        self._seq = itertools.count()
        # Deadline waiters in two heaps: watch timeouts (soft) and everything else (hard).
        self._hard: _Heap = []
        self._soft: _Heap = []
        self._watching: dict[int, _AsyncWaiter] = {}  # predicate waiters by seq
        self._count = 0  # live waiters
        self._proxy = _Waiter(None, False)
        self._registered = False
        self._recheck_scheduled = False
        self._probing = False
        self._timer: asyncio.TimerHandle | None = None  # the real clock's next wake-up
        self._timer_at = 0.0
        clock.add_listener(self._on_notify)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The agent's event loop, while it exists and is open."""
        loop = self._loop()
        return None if loop is None or loop.is_closed() else loop

    def close(self) -> None:
        """Stop listening to the clock (the loop is gone)."""
        self.clock.remove_listener(self._on_notify)
        with self.clock.lock:
            self._unregister()

    # -- waiting ----------------------------------------------------------------------------

    async def block_until(
        self, pred: Callable[[], T], deadline: float | None = None, *, soft: bool = False
    ) -> T:
        """Wait until ``pred()`` is truthy or the clock reaches ``deadline``.

        ``pred`` runs with the clock's lock held, after every change; its last value is
        returned (a truthy value is returned as it was when it ended the wait).
        """
        clock = self.clock
        with clock.lock:
            if not self.virtual:
                clock.fire_due()
            result = pred()
            if result or (deadline is not None and clock.monotonic() >= deadline):
                return result
            waiter = self._add(deadline, soft, pred)
        return await self._await(waiter)  # type: ignore[no-any-return]

    async def sleep_until(self, deadline: float) -> None:
        """Wait until the clock reaches ``deadline``."""
        with self.clock.lock:
            if self.clock.monotonic() >= deadline:
                return
            waiter = self._add(deadline, False, None)
        await self._await(waiter)

    async def wait_future(self, future: asyncio.Future[Any], deadline: float | None) -> bool:
        """Wait until ``future`` is done or the clock reaches ``deadline`` (never cancels it)."""
        if future.done():
            return True
        if deadline is None:
            await asyncio.wait((future,))
            return True
        with self.clock.lock:
            if self.clock.monotonic() >= deadline:
                return future.done()
            waiter = self._add(deadline, False, None)
        mine = waiter.future

        def done(_: object) -> None:
            if not mine.done():
                mine.set_result(True)

        future.add_done_callback(done)
        try:
            await self._await(waiter)
        finally:
            future.remove_done_callback(done)
        return future.done()

    def _add(
        self, deadline: float | None, soft: bool, pred: Callable[[], Any] | None
    ) -> _AsyncWaiter:
        # Lock held.
        loop = asyncio.get_running_loop()
        waiter = _AsyncWaiter(loop.create_future(), deadline, soft, pred, next(self._seq))
        if pred is not None:
            self._watching[waiter.seq] = waiter
        if deadline is not None:
            heapq.heappush(self._soft if soft else self._hard, (deadline, waiter.seq, waiter))
        self._count += 1
        self._sync_proxy()
        self._kick()
        return waiter

    async def _await(self, waiter: _AsyncWaiter) -> Any:
        try:
            return await waiter.future
        finally:
            with self.clock.lock:
                self._drop(waiter)
                self._sync_proxy()

    def _drop(self, waiter: _AsyncWaiter) -> None:
        # Lock held. A dropped waiter's heap entry leaves the heap lazily.
        if waiter.live:
            waiter.live = False
            self._count -= 1
            if waiter.pred is not None:
                self._watching.pop(waiter.seq, None)

    # -- the clock's side ---------------------------------------------------------------------

    def _on_notify(self) -> None:
        # Lock held, any thread: a change; the loop looks at its waiters soon.
        if self._recheck_scheduled or not self._count:
            return
        loop = self.loop
        if loop is None:
            return
        self._recheck_scheduled = True
        if threading.get_ident() == self._tid:
            loop.call_soon(self._recheck)
            return
        try:
            loop.call_soon_threadsafe(self._recheck)
        except RuntimeError:  # the loop closed meanwhile: nobody waits any more
            self._recheck_scheduled = False

    def _recheck(self) -> None:
        """Resolve the waits that a change or the time ended (in the loop)."""
        self._recheck_scheduled = False
        clock = self.clock
        with clock.lock:
            if not self.virtual:
                clock.fire_due()
            for waiter in list(self._watching.values()):
                result = waiter.pred()  # type: ignore[misc]
                if result:
                    self._resolve(waiter, result)
            now = clock.monotonic()
            for heap in (self._hard, self._soft):
                while heap and (not heap[0][2].live or heap[0][0] <= now):
                    _, _, waiter = heapq.heappop(heap)
                    if waiter.live:
                        self._resolve(waiter, waiter.pred() if waiter.pred is not None else False)
            self._sync_proxy()
        self._kick()

    def _resolve(self, waiter: _AsyncWaiter, result: Any) -> None:
        if not waiter.future.done():
            waiter.future.set_result(result)
        self._drop(waiter)

    @staticmethod
    def _top(heap: _Heap) -> float | None:
        while heap and not heap[0][2].live:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _next_own_deadline(self) -> tuple[float | None, bool]:
        """The earliest deadline of this loop's waiters, and whether a hard one exists."""
        hard, soft = self._top(self._hard), self._top(self._soft)
        if hard is not None:
            return (hard if soft is None else min(hard, soft)), True
        return soft, False

    def _sync_proxy(self) -> None:
        """Show the clock this loop as one waiter while it has any (lock held).

        When the last wait ends the loop stays counted, as not blocked, until it is idle
        again: the task just woken is working, and time must not jump under it.
        """
        clock = self.clock
        if not self.virtual:
            self._arm_real_timer()
            return
        proxy = self._proxy
        if self._count:
            deadline, hard = self._next_own_deadline()
            proxy.deadline = deadline
            proxy.soft = deadline is not None and not hard
            if not self._registered:
                proxy.blocked = False
                clock._waiters.append(proxy)
                self._registered = True
        elif self._registered:
            proxy.deadline = None
            if proxy.blocked:
                proxy.blocked = False
                clock._blocked -= 1
            self._kick()

    def _unregister(self) -> None:
        clock = self.clock
        if not self._registered:
            return
        clock._waiters.remove(self._proxy)
        self._registered = False
        if self._proxy.blocked:
            self._proxy.blocked = False
            clock._blocked -= 1
        if clock._waiters:
            clock.notify()  # one fewer waiter: the others may all be blocked now

    # -- idle detection and jumps ---------------------------------------------------------------

    def _kick(self) -> None:
        if self._probing or not (self._count or self._registered) or not self.virtual:
            return
        loop = self.loop
        if loop is not None:
            self._probing = True
            _idle_probe(loop).want(self)

    def probe(self) -> None:
        """The loop is idle: if everyone waiting on the clock is blocked, jump (in the loop)."""
        self._probing = False
        if not (self._count or self._registered):
            return
        clock = self.clock
        assert isinstance(clock, VirtualClock)
        with clock.lock:
            if not self._count:
                self._unregister()  # idle with nothing to wait for: no longer counted
                return
            self._sync_proxy()
            if not self._proxy.blocked:
                self._proxy.blocked = True
                clock._blocked += 1
            if clock._busy_others() or clock._blocked < len(clock._waiters):
                return  # a thread is working: it jumps when it blocks, or notifies
            target, hard = clock._next_deadline()
            if target is None:
                return
            if hard:
                clock._advance_to(target)  # its notify schedules the recheck
                return
            epoch = clock._epoch
        loop = self.loop
        if loop is not None:
            loop.call_later(clock.idle_grace, self._soft_jump, epoch)

    def _soft_jump(self, epoch: int) -> None:
        """Jump to a watch's timeout after ``idle_grace`` real seconds without any change."""
        clock = self.clock
        assert isinstance(clock, VirtualClock)
        with clock.lock:
            if (
                clock._epoch == epoch
                and self._proxy.blocked
                and not clock._busy_others()
                and clock._blocked >= len(clock._waiters)
            ):
                target, _ = clock._next_deadline()
                if target is not None:
                    clock._advance_to(target)
                    return
        self._kick()

    def _arm_real_timer(self) -> None:
        """Real clock: wake the loop at the next waiter deadline or kubelet timer (lock held)."""
        clock = self.clock
        due = clock._next_timer()
        own, _ = self._next_own_deadline() if self._count else (None, False)
        if own is not None and (due is None or own < due):
            due = own
        if due is None or not self._count:
            return
        if self._timer is not None and not self._timer.cancelled() and self._timer_at <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        delay = max(0.0, due - time.monotonic())
        loop = self.loop
        if loop is None:
            return
        if threading.get_ident() == self._tid:
            self._timer = loop.call_later(delay, self._real_wake)
        else:  # a kubelet timer set by another thread: re-arm from the loop
            loop.call_soon_threadsafe(self._recheck)

    def _real_wake(self) -> None:
        self._timer = None
        self._recheck()


class _IdleProbe:
    """One per event loop: tells the agents that want to know when the loop is idle.

    One probe for all the loop's agents (one per fake cluster in use), so that no agent
    mistakes another's probe for work.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._wanting: dict[int, LoopAgent] = {}
        self._scheduled = False
        self._passes = 0
        self._last = -1

    def want(self, agent: LoopAgent) -> None:
        self._wanting[id(agent)] = agent
        loop = self._loop()
        if not self._scheduled and loop is not None:
            self._scheduled = True
            loop.call_soon(self._run)

    def _busy(self, loop: asyncio.AbstractEventLoop) -> bool:
        ready = getattr(loop, "_ready", None)
        if ready is not None:
            return len(ready) > 0
        activity = sum(agent.clock._epoch for agent in self._wanting.values())
        if activity != self._last:
            self._last, self._passes = activity, 0
        self._passes += 1
        return self._passes < _IDLE_PASSES

    def _run(self) -> None:
        self._scheduled = False
        loop = self._loop()
        if loop is None or loop.is_closed():
            return
        while self._wanting:
            if self._busy(loop):
                self._scheduled = True
                loop.call_soon(self._run)  # look again on the next pass through the loop
                return
            _, agent = self._wanting.popitem()
            agent.probe()


_PROBES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _IdleProbe] = (
    weakref.WeakKeyDictionary()
)


def _idle_probe(loop: asyncio.AbstractEventLoop) -> _IdleProbe:
    probe = _PROBES.get(loop)
    if probe is None:
        probe = _PROBES[loop] = _IdleProbe(loop)
    return probe


_AGENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, LoopAgent]] = (
    weakref.WeakKeyDictionary()
)
_AGENTS_LOCK = threading.Lock()


def agent_for(clock: SchedulingClock) -> LoopAgent:
    """The running loop's agent on ``clock`` (made on first use)."""
    loop = asyncio.get_running_loop()
    with _AGENTS_LOCK:
        per_loop = _AGENTS.get(loop)
        if per_loop is None:
            per_loop = _AGENTS[loop] = {}
        agent = per_loop.get(id(clock))
        if agent is None or agent.clock is not clock:
            agent = per_loop[id(clock)] = LoopAgent(clock, loop)
            # The agent holds the loop weakly: when the loop goes, so does its listener.
            weakref.finalize(loop, agent.close)
    return agent


class AsyncFakeClock:
    """The :class:`~podrunner.backends.base.AsyncClock` of a fake cluster.

    Time is the cluster's clock (virtual or real); waits go through the running loop's
    :class:`LoopAgent`.
    """

    def __init__(self, clock: SchedulingClock) -> None:
        self.sync = clock
        """The cluster's (thread-side) clock."""

    def now(self) -> float:
        """Return the cluster's wall-clock time."""
        return self.sync.now()

    def monotonic(self) -> float:
        """Return the cluster's monotonic time."""
        return self.sync.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of the cluster's time (yields to the loop even for 0)."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        await agent_for(self.sync).sleep_until(self.sync.monotonic() + seconds)

    async def wait(self, future: asyncio.Future[Any], timeout: float | None = None) -> bool:
        """Wait until ``future`` is done or ``timeout`` seconds of the cluster's time passed."""
        deadline = None if timeout is None else self.sync.monotonic() + max(timeout, 0.0)
        return await agent_for(self.sync).wait_future(future, deadline)

    async def block_until(
        self, pred: Callable[[], T], deadline: float | None = None, *, soft: bool = False
    ) -> T:
        """Wait until ``pred()`` (run under the cluster's lock) is truthy or ``deadline``."""
        return await agent_for(self.sync).block_until(pred, deadline, soft=soft)
