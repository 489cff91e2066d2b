"""Children of signal tests start with the stop signals at their defaults."""

from __future__ import annotations

import signal


def default_stop_signals() -> None:
    """A ``preexec_fn``: undo an inherited SIG_IGN for SIGHUP, SIGTERM and SIGINT.

    Under `nohup`, or a CI job started in the background by a shell without job control (which
    ignores SIGINT for it), the child would inherit SIG_IGN, and the CLI rightly keeps an
    ignored signal ignored: the tests want a plain terminal's child. Only signal calls: safe
    with threads.
    """
    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
