"""Threads podrunner starts leave SIGINT, SIGTERM and SIGHUP to the main thread.

The kernel hands a process-directed signal to any thread that does not block it. CPython runs
Python signal handlers only in the main thread, and only once that thread runs bytecode again:
a signal that lands on a worker thread while the main thread is blocked (on a lock, a socket, a
watch) stays unnoticed until that wait ends, so Ctrl-C could do nothing for a minute or more.
Every thread podrunner starts therefore blocks those signals, and the main thread gets them.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["STOP_SIGNALS", "block_stop_signals", "start_quiet"]

STOP_SIGNALS: frozenset[signal.Signals] = frozenset(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def block_stop_signals() -> None:
    """Block the stop signals in the calling thread (a pool's thread initializer)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


@contextlib.contextmanager
def _blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        # A stop signal that arrived meanwhile is pending and is delivered here.
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def start_quiet(thread: threading.Thread) -> None:
    """Start ``thread`` with the stop signals blocked in it from its first instruction.

    A new thread inherits its creator's signal mask, so the mask is set around the start
    (there is no window in which the new thread could take a signal).
    """
    with _blocked():
        thread.start()
