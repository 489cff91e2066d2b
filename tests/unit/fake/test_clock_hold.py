"""Clock.hold: virtual time waits for declared work, but never for the holder's own waits."""

from __future__ import annotations

import threading
import time

from podrunner.backends.base import RealClock
from podrunner.backends.fake.clock import VirtualClock


def test_hold_keeps_time_still_until_released() -> None:
    """A sleeper on another thread does not advance while a hold is open."""
    clock = VirtualClock()
    start = clock.monotonic()
    hold = clock.hold()
    done = threading.Event()
    threading.Thread(target=lambda: (clock.sleep(10), done.set()), daemon=True).start()
    time.sleep(0.1)
    assert not done.is_set()
    assert clock.monotonic() == start
    hold.release()
    assert done.wait(5)
    assert clock.monotonic() == start + 10


def test_holders_own_sleep_is_not_blocked_by_its_hold() -> None:
    """The thread owning a hold may sleep on the clock without deadlocking itself."""
    clock = VirtualClock()
    hold = clock.hold()
    start = clock.monotonic()
    clock.sleep(5)
    assert clock.monotonic() == start + 5
    hold.release()


def test_adopted_hold_moves_with_the_work() -> None:
    """A hold handed to a worker is owned there; the creator's waits no longer discount it."""
    clock = VirtualClock()
    hold = clock.hold()
    adopted = threading.Event()
    release = threading.Event()

    def worker() -> None:
        hold.adopt()
        adopted.set()
        release.wait(5)
        hold.release()

    threading.Thread(target=worker, daemon=True).start()
    assert adopted.wait(5)
    woke = threading.Event()
    threading.Thread(target=lambda: (clock.sleep(1), woke.set()), daemon=True).start()
    time.sleep(0.1)
    assert not woke.is_set()  # the worker is still busy
    release.set()
    assert woke.wait(5)


def test_an_unowned_hold_is_not_discounted_by_the_queueing_threads_wait() -> None:
    """Work queued for a worker keeps time still even while the queueing thread waits.

    run_many queues starts for its pool: had the hold been the consumer's own, the
    consumer's wait for results would discount it, and time could jump over a start that
    no worker had picked up yet (seen as a run starting 30 virtual seconds late under load).
    """
    clock = VirtualClock()
    queued = clock.hold(owned=False)
    seen: list[float] = []

    def worker() -> None:
        time.sleep(0.1)  # picked up late, as a busy pool does
        queued.adopt()
        seen.append(clock.monotonic())
        queued.release()

    threading.Thread(target=worker, daemon=True).start()
    clock.sleep(30)  # the queueing thread waits; time must wait for the queued work
    assert seen == [0]
    assert clock.monotonic() == 30


def test_an_owned_hold_is_discounted_by_its_owners_wait() -> None:
    """The contrast: the same wait in the owning thread lets time move."""
    clock = VirtualClock()
    mine = clock.hold()
    clock.sleep(30)
    assert clock.monotonic() == 30
    mine.release()


def test_release_is_idempotent_and_real_clock_ignores_holds() -> None:
    """Releasing twice is harmless; the real clock's hold does nothing."""
    clock = VirtualClock()
    hold = clock.hold()
    hold.release()
    hold.release()
    clock.sleep(1)
    real = RealClock().hold()
    real.adopt()
    real.release()
