"""Contract: a streamed exec (``open_exec``): output as it arrives, stdin as it is written.

The commands are what every image and kwok's local exec have (``sh``, ``cat``, ``head``). Where
kwok's simulated kubelet lacks a behaviour (it ignores the stdin close signal, and execs into
terminated containers), the test is skipped there, never on the fake.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

import pytest

from podrunner.errors import BackendError, BadRequest, NotFound

if TYPE_CHECKING:
    from conftest import Kit

    from podrunner.backends.base import ExecChunk, ExecStream

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def running(kit: Kit) -> str:
    """A pod whose container keeps running."""
    kit.pod("run", duration="600")
    kit.wait_for(
        "Pod",
        "run",
        lambda p: (
            p is not None
            and bool(p["status"].get("containerStatuses"))
            and "running" in p["status"]["containerStatuses"][0]["state"]
        ),
    )
    return "run"


def _read_until(chunks: list[ExecChunk], stream: ExecStream, wanted: bytes) -> bytes:
    """Read stdout until it ends with ``wanted`` (the test's timeout guards a hang)."""
    out = b"".join(c.data for c in chunks if c.stream == "stdout")
    it = iter(stream)
    while not out.endswith(wanted):
        chunk = next(it)
        chunks.append(chunk)
        if chunk.stream == "stdout":
            out += chunk.data
    return out


def test_output_arrives_before_the_command_ends(kit: Kit, running: str) -> None:
    """A line written before the command waits for input is read while it still runs."""
    script = 'echo ready; read x; echo "got $x" >&2; echo done'
    with kit.backend.open_exec(kit.namespace, running, None, ["sh", "-c", script], stdin=True) as s:
        chunks: list[ExecChunk] = []
        assert _read_until(chunks, s, b"ready\n") == b"ready\n"  # the command is blocked on read
        s.write(b"hello\n")
        chunks += list(s)
        assert s.wait(30) == 0
    assert b"".join(c.data for c in chunks if c.stream == "stdout") == b"ready\ndone\n"
    assert b"".join(c.data for c in chunks if c.stream == "stderr") == b"got hello\n"
    assert all(c.data for c in chunks)


def test_cat_echoes_each_write_back(kit: Kit, running: str) -> None:
    """Stdin round trip through ``cat``: each line written comes back before the next."""
    with kit.backend.open_exec(kit.namespace, running, None, ["cat"], stdin=True) as s:
        chunks: list[ExecChunk] = []
        for line in (b"one\n", b"two\n", b"x" * 100_000 + b"\n"):
            before = b"".join(c.data for c in chunks)
            s.write(line)
            assert _read_until(chunks, s, line) == before + line


def test_close_stdin_gives_eof(kit: Kit, running: str) -> None:
    """After ``close_stdin`` the command reads end-of-file, ends, and its output ends."""
    kit.kwok_kubelet_cannot(running, "its exec server ignores the v5 stdin close signal")
    with kit.backend.open_exec(kit.namespace, running, None, ["cat"], stdin=True) as s:
        s.write(b"first\n")
        s.write(b"second\n")
        s.close_stdin()
        out = b"".join(c.data for c in s)
        assert s.wait(30) == 0
    assert out == b"first\nsecond\n"


@pytest.mark.parametrize(
    ("argv", "code"), [(["true"], 0), (["false"], 1), (["sh", "-c", "exit 7"], 7)]
)
def test_exit_codes(kit: Kit, running: str, argv: list[str], code: int) -> None:
    """``wait`` gives the command's exit code, after the output."""
    with kit.backend.open_exec(kit.namespace, running, None, argv) as s:
        assert s.wait(30) == code
        assert s.wait(30) == code  # asked again: the same answer


def test_large_output_arrives_whole(kit: Kit, running: str) -> None:
    """16 MB of output is read in pieces, every byte of it."""
    size = 16 * 1024 * 1024
    argv = ["sh", "-c", f"head -c {size} /dev/zero"]
    with kit.backend.open_exec(kit.namespace, running, None, argv) as s:
        total = 0
        pieces = 0
        for chunk in s:
            assert chunk.stream == "stdout"
            total += len(chunk.data)
            pieces += 1
        assert s.wait(60) == 0
    assert total == size
    assert pieces > 1


def _alive(kit: Kit, pod: str, pid: str) -> bool:
    result = kit.backend.exec(kit.namespace, pod, None, ["sh", "-c", f"kill -0 {pid}"], timeout=30)
    return result.exit_code == 0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_reader_that_stops_early_then_closes_leaves_nothing(kit: Kit, running: str) -> None:
    """A reader stops after a little of an endless output; ``close`` ends the session.

    The connection is released in bounded time; on a kubelet that ends the command with its
    session (the fake's, as a container runtime's), the command is gone too.
    """
    fds = _open_fds()
    s = kit.backend.open_exec(kit.namespace, running, None, ["sh", "-c", "echo $$ >&2; exec yes"])
    chunks: list[ExecChunk] = []
    for chunk in s:
        chunks.append(chunk)
        if sum(len(c.data) for c in chunks if c.stream == "stdout") > 100_000 and any(
            c.stream == "stderr" for c in chunks
        ):
            break
    pid = b"".join(c.data for c in chunks if c.stream == "stderr").decode().strip()
    time.sleep(0.5)  # the command is blocked writing: nobody reads
    started = time.monotonic()
    s.close()
    s.close()  # idempotent
    assert time.monotonic() - started < 10
    assert _open_fds() <= fds  # the connection (or the pipes) released
    kit.kwok_kubelet_cannot(running, "its exec keeps running (and drained) after the session ends")
    deadline = time.monotonic() + 30
    while _alive(kit, running, pid):
        assert time.monotonic() < deadline, f"the exec's process {pid} outlived close()"
        time.sleep(0.2)


def test_write_without_stdin_is_refused(kit: Kit, running: str) -> None:
    """An exec opened without stdin refuses writes, with the way to ask for it."""
    with (
        kit.backend.open_exec(kit.namespace, running, None, ["true"]) as s,
        pytest.raises(BadRequest, match="stdin=True"),
    ):
        s.write(b"x")


def test_open_in_missing_pod_is_not_found(kit: Kit) -> None:
    """The request's errors are raised at opening: a pod that does not exist is 404."""
    with pytest.raises(NotFound):
        kit.backend.open_exec(kit.namespace, "ghost", None, ["true"])


def test_open_in_completed_pod_fails(kit: Kit) -> None:
    """Opening an exec into a finished pod fails at opening."""
    kit.pod("done", duration="1")
    kit.wait_phase("done", "Succeeded")
    kit.kwok_kubelet_cannot("done", "it execs into terminated containers")
    with pytest.raises(BackendError):
        kit.backend.open_exec(kit.namespace, "done", None, ["true"])
