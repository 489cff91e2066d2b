"""Stop a program's runs cleanly when it is sent SIGTERM or SIGHUP.

Python turns SIGINT (Ctrl-C) into :class:`KeyboardInterrupt`, and podrunner's runner deletes
what a run created when that exception goes through it. SIGTERM and SIGHUP, which ``timeout``,
``kill``, a cancelled CI job, a closed terminal and Kubernetes itself send, kill the process
outright by default, so nothing is cleaned up. A library must not install signal handlers behind
its user's back, so podrunner gives the choice to the program: inside :func:`stop_on_signals`,
those signals raise :class:`Terminated` in the main thread, the runner's cleanup runs as the
exception passes, and a program that does not catch it exits with status ``128 + signal``, as a
shell reports a process killed by that signal::

    with podrunner.stop_on_signals():
        result = runner.run(spec)
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from types import FrameType

__all__ = ["DEFAULT_STOP_SIGNALS", "Terminated", "stop_on_signals"]

DEFAULT_STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals :func:`podrunner.stop_on_signals` handles by default: SIGTERM and SIGHUP."""


class Terminated(SystemExit):
    """The program was sent a stop signal while :func:`podrunner.stop_on_signals` was active.

    A :class:`SystemExit` on purpose: ``except Exception`` does not swallow it, ``finally``
    blocks and context managers (the runner's cleanup among them) run as it passes, and, left
    uncaught, it ends the program quietly with ``code`` set to ``128 + signum`` (143 for SIGTERM,
    129 for SIGHUP), the status a shell shows for a process killed by that signal.

    """

    signum: int
    """The signal's number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(128 + signum)

    @property
    def signal_name(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    def __str__(self) -> str:
        return f"stopped by {self.signal_name}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.signum,))


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def stop_on_signals(
    signals: Iterable[int] = DEFAULT_STOP_SIGNALS,
) -> Iterator[None]:
    """Turn stop signals into :class:`Terminated` in the main thread while the block runs.

    The previous handlers are restored when the block ends, however it ends. A signal that
    is ignored when the block starts (SIGHUP under ``nohup``) stays ignored. Every signal that
    arrives while the block is active raises, including one that arrives while an earlier
    :class:`Terminated` is being handled; the runner finishes its deletes regardless.
    SIGINT needs nothing: Python already raises :class:`KeyboardInterrupt` for it.

    Args:
        signals: The signals to handle (default
            :data:`podrunner.signals.DEFAULT_STOP_SIGNALS`).

    Yields:
        Nothing; the block runs with the handlers in place.

    Raises:
        RuntimeError: Not called from the main thread (only the main thread receives
            Python-level signals).

    Example:
        >>> import podrunner
        >>> with podrunner.stop_on_signals():
        ...     pass  # runner.run(...) here deletes its pod if the program gets SIGTERM
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("stop_on_signals() works only in the main thread")
    previous: list[tuple[int, Any]] = []
    try:
        for signum in signals:
            # An ignored signal stays ignored: `nohup` relies on SIGHUP being ignored.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous.append((signum, signal.signal(signum, _raise_terminated)))
        yield
    finally:
        for signum, handler in reversed(previous):
            signal.signal(signum, handler)
