"""Watch and log streams that another thread can close while a read is blocked on them.

A generator cannot be closed while another thread runs it (``ValueError: generator already
executing``), yet that is exactly when a shared watch must be stopped: its reader is blocked
waiting for the next event; so must a followed log that stays open after its container
ended. Backends return these wrappers, and give each a way to interrupt a blocked read (shut
the socket down, wake the fake's clock).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Generic, TypeVar

from podrunner.backends.base import WatchEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Generator


__all__ = ["InterruptibleStream", "StreamState", "WatchStream"]

_T = TypeVar("_T")


def _nothing() -> None:
    return None


class StreamState:
    """What a backend's generator sees of its stream: whether it was closed.

    The generator gets this and not the :class:`WatchStream`, so the two do not form a
    reference cycle: a stream dropped without ``close()`` is then freed at once, and its
    generator closes the connection before the socket's own finaliser could complain.
    """

    __slots__ = ("closed",)

    def __init__(self) -> None:
        self.closed = False


class InterruptibleStream(Generic[_T]):
    """An iterator whose :meth:`close` works from any thread.

    Attributes:
        state: Shared with the backend's generator, which checks ``state.closed`` and ends.
        gen: The backend's generator, set right after construction.
        interrupt: Wakes a read blocked in another thread; set by the backend.
    """

    __slots__ = ("gen", "interrupt", "state")

    def __init__(self) -> None:
        self.state = StreamState()
        self.gen: Generator[_T, None, None] | None = None
        self.interrupt: Callable[[], None] = _nothing

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self.state.closed

    def __iter__(self) -> InterruptibleStream[_T]:
        return self

    def __next__(self) -> _T:
        if self.state.closed or self.gen is None:
            raise StopIteration
        return next(self.gen)

    def close(self) -> None:
        """End the stream and release its connection, also while another thread reads it."""
        self.state.closed = True
        self.interrupt()
        if self.gen is not None:
            # Running in another thread: the interrupt ends that read, and it sees `closed`.
            with contextlib.suppress(ValueError):
                self.gen.close()


class WatchStream(InterruptibleStream[WatchEvent]):
    """An iterator of watch events whose :meth:`close` works from any thread."""

    __slots__ = ()
