"""What a running command shows and how it stops: the status line and the signals."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import click

from podrunner._threads import start_quiet
from podrunner.cli._backend import error_dict
from podrunner.cli._group import quiet_broken_pipe

__all__ = ["StatusLine", "StopSignals"]


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class StopSignals:
    """SIGINT, SIGTERM and SIGHUP (and, for ``run``, a closed stdout) while a run is going on.

    The first signal raises in the main thread (``KeyboardInterrupt`` for SIGINT,
    :class:`~podrunner.signals.Terminated` for the others), so the runner's cleanup runs as the
    exception passes. A second one while that cleanup is still going ends the command at once
    with ``128 + signal``, after one line naming what may be left. The previous handlers are
    restored on exit.

    A closed stdout is noticed by the thread that writes the log; :meth:`stdout_closed` turns
    it into SIGPIPE for the main thread, which may be blocked reading the pod's watch.
    """

    SIGNALS = tuple(
        getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
    )

    def __init__(self, may_be_left: str, *, pipe: bool = False) -> None:
        self.signum: int | None = None
        self.cleaning = False
        self.may_be_left = may_be_left
        self._pipe = pipe and hasattr(signal, "SIGPIPE")
        self._previous: list[tuple[int, Any]] = []

    def __enter__(self) -> StopSignals:
        for signum in self.SIGNALS:
            # An ignored signal stays ignored: `nohup` and `&` in a script rely on it.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous.append((signum, signal.signal(signum, self._handle)))
        if self._pipe:
            # Python itself ignores SIGPIPE (writes fail with EPIPE instead); only our own
            # stdout_closed() sends it, and an EPIPE write still fails as before.
            self._previous.append((signal.SIGPIPE, signal.signal(signal.SIGPIPE, self._handle)))
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in reversed(self._previous):
            signal.signal(signum, handler)

    def stdout_closed(self) -> None:
        """Stop the run because stdout's reader went away (callable from any thread)."""
        if self._pipe and self.signum is None:
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGPIPE)

    def _handle(self, signum: int, frame: object) -> None:
        from podrunner.signals import Terminated

        if self.signum is None:
            self.signum = signum
            self.cleaning = True
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signum)
        if self._pipe and signum == signal.SIGPIPE:
            return  # the same closed stdout, noticed again
        if self.cleaning:
            # Plain os.write: this may run in the middle of any other write.
            os.write(
                2,
                f"podrunner: {signal_name(signum)} again: cleanup stopped; may be left: "
                f"{self.may_be_left} (`podrunner reap` deletes them once they expire)\n".encode(),
            )
        # os._exit skips atexit: end the fake's local processes and run directories first.
        local = sys.modules.get("podrunner.backends.fake.runtime_local")
        if local is not None:
            local.end_all_local_processes()
        os._exit(128 + signum)

    def cleaned(self) -> None:
        """The cleanup is over: a further signal just ends the command."""
        self.cleaning = False


def target_names(targets: list[tuple[str, str, str]]) -> str:
    parts = [f"{kind} {namespace}/{name}" for kind, namespace, name in targets]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def cleanup_failure(exc: BaseException) -> str | None:
    for note in getattr(exc, "__notes__", ()):
        if "cleanup also failed" in note:
            return str(note)
    return None


def warn_unread_stdin(hint: str) -> bool:
    """Warn (once) when stdin is a pipe or a file with data that nobody will read."""
    try:
        fd = sys.stdin.fileno()
        if os.isatty(fd):
            return False
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            waiting = os.fstat(fd).st_size > os.lseek(fd, 0, os.SEEK_CUR)
        elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            import array
            import fcntl
            import termios

            count = array.array("i", [0])
            fcntl.ioctl(fd, termios.FIONREAD, count)
            waiting = count[0] > 0
        else:
            return False
    except (AttributeError, ImportError, OSError, ValueError):
        return False
    if waiting:
        click.echo(f"podrunner: warning: stdin is not read; {hint}", err=True)
    return waiting


def _state_word(state: Any) -> str:
    """pending, scheduled, pulling, running, or how the run ended."""
    from podrunner.run.state import Phase

    if state.phase is Phase.PENDING:
        return "pending"
    if state.phase is Phase.SCHEDULED:
        if (
            state.detail in ("ContainerCreating", "PodInitializing")
            or "pull" in state.detail.lower()
        ):
            return "pulling"
        return "scheduled"
    if state.phase is Phase.RUNNING:
        return "running"
    return str(state).lower()


class StatusLine:
    """Shows the run's state on stderr: a live line on a terminal, plain lines otherwise.

    The live line is redrawn by a background thread (spinner, state, elapsed time) with rich
    styles; log lines written to stdout first erase it, so output and status never mix. When
    stdout's reader goes away (EPIPE), ``pipe_closed`` is set and ``on_pipe_closed`` called.
    """

    def __init__(self, live: bool, echo_logs: bool) -> None:
        import threading
        import time

        self._time = time.monotonic
        self._started = time.monotonic()
        self._live = live
        self._echo_logs = echo_logs
        self._word = "pending"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._shown = False
        # A pipe is flushed at most every 50 ms: a flush per line made 2M lines take seconds.
        self._flush_every_line = sys.stdout.isatty()
        self._flushed = self._started
        self._thread: Any = None
        self.pipe_closed = False
        self.on_pipe_closed: Callable[[], None] | None = None
        if live:
            from rich.console import Console

            self._console = Console(file=sys.stderr, force_terminal=True, highlight=False)
            self._thread = threading.Thread(target=self._loop, daemon=True, name="status-line")
            start_quiet(self._thread)

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self._time() - self._started

    def _draw(self) -> None:
        from rich.text import Text

        frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
        frame = frames[int(self.elapsed() * 10) % len(frames)]
        line = Text.assemble(
            (f"{frame} ", "cyan"), (self._word, "bold"), (f"  {self.elapsed():.1f}s", "dim")
        )
        sys.stderr.write("\r\x1b[2K")
        self._console.print(line, end="")
        sys.stderr.flush()
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
            self._shown = False

    def _loop(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                self._draw()

    def state(self, state: Any) -> None:
        """Record a new state (``on_state`` callback)."""
        word = _state_word(state)
        with self._lock:
            if word == self._word and self._shown:
                return
            self._word = word
            if self._live:
                self._draw()
            else:
                extra = f" on {state.node_name}" if word == "scheduled" and state.node_name else ""
                click.echo(f"podrunner: [{self.elapsed():6.1f}s] {word}{extra}", err=True)

    def log(self, line: str) -> None:
        """Write one log line to stdout (``on_log`` callback)."""
        if not self._echo_logs or self.pipe_closed:
            return
        with self._lock:
            self._erase()
            try:
                sys.stdout.write(line + "\n")
                now = self._time()
                if self._flush_every_line or now - self._flushed >= 0.05:
                    sys.stdout.flush()
                    self._flushed = now
            except BrokenPipeError:
                self._close_pipe()
                return
            if self._live:
                self._draw()

    def _close_pipe(self) -> None:
        # Like a Unix tool whose reader went away (`| head -1`): stop, quietly.
        self.pipe_closed = True
        quiet_broken_pipe()
        if self.on_pipe_closed is not None:
            self.on_pipe_closed()

    def close(self) -> None:
        """Stop the live line and erase it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            self._erase()
            if self._echo_logs and not self.pipe_closed:
                try:
                    sys.stdout.flush()
                except BrokenPipeError:
                    self._close_pipe()


def say_stopped(
    stop: StopSignals, exc: BaseException, what: str, failure: str | None, *, as_json: bool
) -> NoReturn:
    """The one line (and JSON document) of a stopped run, then exit ``128 + signal``."""
    stop.cleaned()
    signum = stop.signum if stop.signum is not None else signal.SIGINT
    pipe = hasattr(signal, "SIGPIPE") and signum == signal.SIGPIPE
    why = "stdout closed" if pipe else f"interrupted ({signal_name(signum)})"
    if failure is None:
        text = f"{why}; deleted {what}"
    else:
        text = f"{why}; {failure}; may be left: {what} (`podrunner reap` deletes them once expired)"
    click.echo(f"podrunner: {text}", err=True)
    if as_json:
        click.echo(json.dumps(error_dict(exc, text), indent=2, ensure_ascii=False))
    sys.exit(128 + signum)
