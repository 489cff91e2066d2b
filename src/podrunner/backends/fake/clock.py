"""Clocks for the fake cluster: a virtual clock that jumps, and a real one with timers.

Both are :class:`~podrunner.backends.base.Clock` implementations that also schedule the fake
cluster's timers (kubelet transitions, deadlines) and own the one lock that guards the fake's
state, so waiting for "a change or a deadline" is a single condition wait.

The auto-advance rule of :class:`VirtualClock` (the contract the runner relies on):

* A thread is *counted* while it is inside a fake backend call or inside :meth:`~Clock.sleep`
  / :meth:`~Clock.wait`. A thread outside any call (a suspended watch or log iterator
  included) is not counted.
* When every counted thread is blocked waiting, the clock jumps to the earliest pending
  deadline (a kubelet transition, a sleep or wait deadline, a fault's latency, a watch's
  server-side timeout), fires the timers due by then in order, and wakes every waiter.
  A wait whose event is set by a timer firing at its own deadline returns ``True``: events
  are delivered before deadlines at the same instant.
* Watch timeouts are *soft*: when they are the only deadlines pending, the jump happens only
  after the same waiters have stayed blocked, with nothing changing, for ``idle_grace``
  seconds of real time (10 ms by default). A long-lived idle watcher therefore costs about
  a hundred wake-ups per second instead of spinning virtual time forward at full CPU, and a
  runner whose only deadline is a watch timeout still times out in virtual time.
* A waiter with no deadline and nothing pending blocks in real time until another thread
  changes something.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_START",
    "ClockHold",
    "RealTimeClock",
    "SchedulingClock",
    "Timer",
    "VirtualClock",
]

#: Where virtual time starts: 2026-01-01T00:00:00Z, so timestamps are reproducible.
DEFAULT_START = 1_767_225_600.0

T = TypeVar("T")


class Timer:
    """A callback scheduled on a clock; :meth:`cancel` prevents it from firing."""

    __slots__ = ("cancelled", "clock", "due", "fn")

    def __init__(self, due: float, fn: Callable[[], object], clock: SchedulingClock) -> None:
        self.due = due
        self.fn = fn
        self.clock = clock
        self.cancelled = False

    def cancel(self) -> None:
        """Prevent the callback from running (no-op if it already ran)."""
        if not self.cancelled:
            self.cancelled = True
            self.clock._ncancelled += 1


class _Waiter:
    __slots__ = ("blocked", "deadline", "soft", "tid")

    def __init__(self, deadline: float | None, soft: bool) -> None:
        self.deadline = deadline
        self.soft = soft
        self.blocked = False
        self.tid = threading.get_ident()


class SchedulingClock:
    """Base of the fake's clocks: one lock, a timer heap and condition waits.

    Subclasses decide what time is and what happens when every counted thread is blocked.
    """

    #: Real seconds between checks of an event that a thread outside the fake may set.
    poll_interval = 0.005

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._waiters: list[_Waiter] = []
        self._blocked = 0
        self._busy = 0
        self._owned: dict[int, int] = {}  # thread id -> open holds it owns
        self._epoch = 0
        self._ncancelled = 0
        self._sleepers = 0  # threads inside cond.wait: notify_all is skipped when there are none
        # Called (lock held) on every notify: event loops whose tasks wait on this clock
        # (podrunner.backends.fake.aio_clock) re-check their waiters.
        self._listeners: list[Callable[[], None]] = []

    # -- Clock protocol -------------------------------------------------------------------

    def now(self) -> float:
        """Return wall-clock time in seconds since the epoch."""
        raise NotImplementedError  # pragma: no cover

    def monotonic(self) -> float:
        """Return monotonic seconds (the timers' time base)."""
        raise NotImplementedError  # pragma: no cover

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        with self.lock:
            self.block_until(_never, self.monotonic() + max(seconds, 0.0))

    def wait(self, event: threading.Event, timeout: float | None = None) -> bool:
        """Block until ``event`` is set or ``timeout`` seconds of this clock have passed.

        Returns:
            Whether the event is set.
        """
        if event.is_set():
            return True
        with self.lock:
            deadline = None if timeout is None else self.monotonic() + max(timeout, 0.0)
            # The event may be set by a thread that never touches the fake, so poll it.
            return self.block_until(event.is_set, deadline, poll=True)

    # -- scheduling (callers hold ``lock``) -----------------------------------------------

    def call_at(self, due: float, fn: Callable[[], object]) -> Timer:
        """Run ``fn`` (under the lock) when monotonic time reaches ``due``."""
        timer = Timer(due, fn, self)
        timers = self._timers
        if self._ncancelled > 256 and self._ncancelled * 2 > len(timers):
            # Cancelled timers are dropped lazily; rebuild before they dominate the heap.
            timers[:] = [entry for entry in timers if not entry[2].cancelled]
            heapq.heapify(timers)
            self._ncancelled = 0
        heapq.heappush(timers, (due, next(self._seq), timer))
        return timer

    def call_later(self, delay: float, fn: Callable[[], object]) -> Timer:
        """Run ``fn`` (under the lock) ``delay`` seconds from now."""
        return self.call_at(self.monotonic() + max(delay, 0.0), fn)

    def notify(self) -> None:
        """Tell waiters that state changed (call with the lock held)."""
        self._epoch += 1
        if self._listeners:
            for listener in self._listeners:
                listener()
        if self._waiters:
            for waiter in self._waiters:
                waiter.blocked = False
            self._blocked = 0
            if self._sleepers:
                self.cond.notify_all()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (with the lock held) whenever waiters are notified."""
        with self.lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener`` (no-op if it is not registered)."""
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def fire_due(self) -> None:
        """Run the timers that are due now (the real clock applies transitions lazily)."""

    def enter_busy(self) -> None:
        """Count the current thread as working inside the fake without holding the lock."""
        self._busy += 1

    def leave_busy(self) -> None:
        """Undo :meth:`enter_busy` and let waiters re-evaluate."""
        self._busy -= 1
        self.notify()

    def hold(self, *, owned: bool = True) -> ClockHold:
        """Keep time from jumping while work is in progress (see :class:`ClockHold`).

        Args:
            owned: The calling thread owns the hold, so its own waits do not count it. Work
                queued for another thread passes ``False``: nobody's wait discounts the hold
                until the thread that picks the work up calls :meth:`ClockHold.adopt`.
        """
        with self.lock:
            owner = threading.get_ident() if owned else None
            hold = ClockHold(self, owner)
            self._busy += 1
            if owner is not None:
                self._owned[owner] = self._owned.get(owner, 0) + 1
            return hold

    def _drop_owner(self, owner: int | None) -> None:
        if owner is None:
            return
        count = self._owned.get(owner, 0) - 1
        if count > 0:
            self._owned[owner] = count
        else:
            self._owned.pop(owner, None)

    def _busy_others(self) -> int:
        """Open holds and busy calls not owned by a thread that is waiting on the clock.

        Called when every waiter is blocked: a hold whose owner waits here cannot be doing
        work, so it does not keep time still (a holder's own back-off sleep cannot deadlock).
        """
        owned = self._owned
        if not owned:
            return self._busy
        return self._busy - sum(owned.get(w.tid, 0) for w in self._waiters)

    def waiting(self) -> int:
        """Return how many threads are inside a wait of this clock."""
        return len(self._waiters)

    def pending(self) -> int:
        """Return how many timers are scheduled and not cancelled."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    def block_until(
        self,
        pred: Callable[[], T],
        deadline: float | None = None,
        *,
        soft: bool = False,
        poll: bool = False,
    ) -> T:
        """Wait (lock held) until ``pred()`` is truthy or monotonic time reaches ``deadline``.

        Args:
            pred: Re-evaluated after every change; its truthy result is returned.
            deadline: Monotonic deadline, or ``None``.
            soft: The deadline is a watch server-side timeout (see the module docstring).
            poll: ``pred`` may become true without a :meth:`notify` (a foreign event).

        Returns:
            The last value of ``pred()``.
        """
        raise NotImplementedError  # pragma: no cover

    def _sleep(self, timeout: float | None) -> None:
        """``cond.wait`` (lock held), counted so :meth:`notify` knows whether anyone sleeps."""
        self._sleepers += 1
        try:
            self.cond.wait(timeout)
        finally:
            self._sleepers -= 1

    def _next_timer(self) -> float | None:
        timers = self._timers
        while timers and timers[0][2].cancelled:
            heapq.heappop(timers)
            self._ncancelled -= 1
        return timers[0][0] if timers else None

    def _run_until(self, target: float, set_time: Callable[[float], None]) -> None:
        timers = self._timers
        while timers:
            due, _, timer = timers[0]
            if due > target:
                break
            heapq.heappop(timers)
            if timer.cancelled:
                self._ncancelled -= 1
                continue
            set_time(due)
            timer.cancelled = True
            timer.fn()
        set_time(target)


def _never() -> bool:
    return False


class VirtualClock(SchedulingClock):
    """A clock whose time only moves when everyone waits (or when a test advances it).

    The rule is in this module's docstring: the clock jumps to the earliest pending deadline
    only when every thread inside a fake backend call or a clock wait is blocked; watch
    timeouts alone make it jump only after ``idle_grace`` real seconds without any change.

    Args:
        start: Wall-clock time (seconds since the epoch) at monotonic zero.
        idle_grace: Real seconds to wait before jumping to a deadline that is only a watch
            server-side timeout.
    """

    def __init__(self, start: float = DEFAULT_START, *, idle_grace: float = 0.01) -> None:
        super().__init__()
        self._start = start
        self._mono = 0.0
        self.idle_grace = idle_grace

    def now(self) -> float:
        """Return virtual wall-clock time."""
        return self._start + self._mono

    def monotonic(self) -> float:
        """Return virtual seconds since the clock was created."""
        return self._mono

    def _set(self, value: float) -> None:
        if value > self._mono:
            self._mono = value

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing every timer due on the way, in order."""
        with self.lock:
            self._run_until(self._mono + max(seconds, 0.0), self._set)
            self.notify()

    def _advance_to(self, target: float) -> None:
        self._run_until(max(target, self._mono), self._set)
        self.notify()

    def _next_deadline(self) -> tuple[float | None, bool]:
        """Return the earliest deadline and whether it (or an earlier one) is hard."""
        hard = self._next_timer()
        soft: float | None = None
        for waiter in self._waiters:
            d = waiter.deadline
            if d is None:
                continue
            if waiter.soft:
                if soft is None or d < soft:
                    soft = d
            elif hard is None or d < hard:
                hard = d
        if hard is not None:
            return (hard if soft is None else min(hard, soft)), True
        return soft, False

    def block_until(
        self,
        pred: Callable[[], T],
        deadline: float | None = None,
        *,
        soft: bool = False,
        poll: bool = False,
    ) -> T:
        """Wait until ``pred()`` is truthy or virtual time reaches ``deadline``.

        See :meth:`SchedulingClock.block_until` and the module docstring for when time jumps.
        """
        me = _Waiter(deadline, soft)
        waiters = self._waiters
        waiters.append(me)
        try:
            while True:
                result = pred()
                if result or (deadline is not None and self._mono >= deadline):
                    return result
                me.blocked = True
                self._blocked += 1
                if self._busy_others() == 0 and self._blocked >= len(waiters):
                    target, hard = self._next_deadline()
                    if target is not None and hard:
                        self._advance_to(target)
                        continue
                    if target is not None:
                        epoch = self._epoch
                        self._sleep(self.idle_grace)
                        if (
                            self._epoch == epoch
                            and self._busy_others() == 0
                            and self._blocked >= len(waiters)
                        ):
                            target, _ = self._next_deadline()
                            if target is not None:
                                self._advance_to(target)
                                continue
                    else:
                        self._sleep(self.poll_interval if poll else None)
                else:
                    self._sleep(self.poll_interval if poll else None)
                if me.blocked:
                    me.blocked = False
                    self._blocked -= 1
        finally:
            waiters.remove(me)
            if me.blocked:
                self._blocked -= 1
            if waiters:
                # One fewer counted thread: the others may now all be blocked.
                self.notify()


class ClockHold:
    """An open :meth:`SchedulingClock.hold`: time does not jump until it is released.

    The owning thread's own waits do not count it, so a holder that sleeps on the clock (a
    retry back-off) cannot deadlock itself.
    """

    __slots__ = ("_clock", "_owner", "_released")

    def __init__(self, clock: SchedulingClock, owner: int | None) -> None:
        self._clock = clock
        self._owner = owner  # None: queued work that no thread has adopted yet
        self._released = False

    def adopt(self) -> None:
        """Make the calling thread the owner."""
        clock = self._clock
        with clock.lock:
            if self._released:
                return
            me = threading.get_ident()
            clock._drop_owner(self._owner)
            clock._owned[me] = clock._owned.get(me, 0) + 1
            self._owner = me

    def release(self) -> None:
        """End the hold and let waiters re-evaluate (idempotent)."""
        clock = self._clock
        with clock.lock:
            if self._released:
                return
            self._released = True
            clock._drop_owner(self._owner)
            clock.leave_busy()


class RealTimeClock(SchedulingClock):
    """The machine's clock, with timers fired lazily whenever a caller enters or waits."""

    def now(self) -> float:
        """Return :func:`time.time`."""
        return time.time()

    def monotonic(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def fire_due(self) -> None:
        """Run every timer whose due time has passed."""
        if self._timers and self._timers[0][0] <= time.monotonic():
            self._run_until(time.monotonic(), _ignore)
            self.notify()

    def block_until(
        self,
        pred: Callable[[], T],
        deadline: float | None = None,
        *,
        soft: bool = False,
        poll: bool = False,
    ) -> T:
        """Wait in real time until ``pred()`` is truthy or ``deadline`` passes."""
        me = _Waiter(deadline, soft)
        self._waiters.append(me)
        try:
            while True:
                self.fire_due()
                result = pred()
                now = time.monotonic()
                if result or (deadline is not None and now >= deadline):
                    return result
                wake = self._next_timer()
                if deadline is not None and (wake is None or deadline < wake):
                    wake = deadline
                timeout = None if wake is None else max(wake - now, 0.0)
                if poll and (timeout is None or timeout > self.poll_interval):
                    timeout = self.poll_interval
                self._sleep(timeout)
        finally:
            self._waiters.remove(me)


def _ignore(_: float) -> None:
    return None
