"""The control plane's child processes: started on 127.0.0.1 ports, stopped by PID."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

from podrunner.testing.controlplane._common import LOOPBACK

__all__ = ["Proc", "free_port"]


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _set_pdeathsig() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the child when the parent dies, so a crash leaks no control plane."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: S110 - best effort; stop() still kills by PID
        pass


class Proc:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self._log: IO[bytes] = log_path.open("ab")
        # Linux sends the death signal when the *thread* that forked the child ends, not the
        # process: a component restarted from a worker thread would be killed when that
        # thread returns. Such children rely on stop() and atexit alone.
        on_main = threading.current_thread() is threading.main_thread()
        preexec = _set_pdeathsig if sys.platform.startswith("linux") and on_main else None
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,
        )
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0, *, hard: bool = False) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                # A paused (SIGSTOPped) process would hold a SIGTERM pending forever.
                self.popen.send_signal(signal.SIGCONT)
                self.popen.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.kill()
                self.popen.wait(timeout=10)
        self._log.close()

    def tail(self, lines: int = 15) -> str:
        try:
            data = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(data.strip().splitlines()[-lines:])
