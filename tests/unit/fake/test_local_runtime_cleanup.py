"""The local runtime leaves no process and no directory behind, whatever stops a run.

Each case starts a process whose argv carries a unique token, so the test can look for it in
``/proc`` afterwards; interpreter-exit cases run in a child interpreter whose temp dir is a
fresh directory of the test, so what it leaves there is visible.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import podrunner
from podrunner.backends.fake import FakeCluster
from podrunner.errors import BackendUnavailable

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")

SRC = str(Path(podrunner.__file__).resolve().parents[1])


def _token() -> str:
    # sleep takes fractional seconds: a unique duration marks this test's processes.
    return f"{900 + uuid.uuid4().int % 99}.{uuid.uuid4().int % 10**9:09d}"


def _alive(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token.encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


def _eventually_gone(token: str, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (alive := _alive(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def _pod(name: str, argv: list[str]) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "ignored:1", "command": argv}],
        },
    }


def _wait_phase(cluster: FakeCluster, name: str, phases: tuple[str, ...]) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pod = cluster.backend.get("Pod", "default", name)
        if pod["status"]["phase"] in phases:
            return pod
        time.sleep(0.02)
    raise AssertionError(f"pod {name} never reached {phases}")


def test_delete_kills_the_whole_process_group() -> None:
    """Deleting a pod whose shell started a background job leaves no sleeper."""
    token = _token()
    cluster = FakeCluster(runtime="local")
    try:
        argv = ["sh", "-c", f"sleep {token} & sleep {token}"]
        cluster.backend.create(_pod("a", argv))
        _wait_phase(cluster, "a", ("Running",))
        deadline = time.monotonic() + 10
        while len(_alive(token)) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_alive(token)) == 2
        cluster.backend.delete("Pod", "default", "a", grace_period_seconds=1)
        assert _eventually_gone(token) == []
    finally:
        cluster.backend.close()


def test_main_process_exit_ends_its_background_jobs() -> None:
    """A pod's other processes end with its main process, and the pod completes."""
    token = _token()
    cluster = FakeCluster(runtime="local")
    try:
        cluster.backend.create(_pod("a", ["sh", "-c", f"sleep {token} & echo started"]))
        # Today the background sleep kept the output pipe open: the pod never completed.
        pod = _wait_phase(cluster, "a", ("Succeeded", "Failed"))
        assert pod["status"]["phase"] == "Succeeded"
        assert _eventually_gone(token) == []
        assert b"started\n" in b"".join(cluster.backend.read_log("default", "a"))
    finally:
        cluster.backend.close()


def test_close_kills_groups_and_removes_directories(tmp_path: Path) -> None:
    """``backend.close()`` kills every running group and removes every run directory."""
    token = _token()
    cluster = FakeCluster(runtime="local")
    cluster.backend.create(_pod("a", ["sh", "-c", f"sleep {token} & sleep {token}"]))
    _wait_phase(cluster, "a", ("Running",))
    home = cluster.backend.exec("default", "a", None, ["sh", "-c", 'printf %s "$HOME"']).stdout
    assert Path(home.decode()).is_dir()
    cluster.backend.close()
    assert _eventually_gone(token) == []
    assert not Path(home.decode()).exists()


_CHILD = """
import os, signal, sys, threading, time
from podrunner.backends.fake import FakeCluster
from podrunner.errors import BackendUnavailable

how, token = sys.argv[1], sys.argv[2]
cluster = FakeCluster(runtime="local")
argv = ["sh", "-c", f"sleep {token} & sleep {token}"]
if how == "failed-start":
    argv = ["/nonexistent/podrunner-test-binary", token]
cluster.backend.create({
    "kind": "Pod", "metadata": {"name": "a"},
    "spec": {"restartPolicy": "Never",
             "containers": [{"name": "c", "image": "x", "command": argv}]},
})
while cluster.backend.get("Pod", "default", "a")["status"]["phase"] == "Pending":
    time.sleep(0.02)
if how == "failed-start":
    while cluster.backend.get("Pod", "default", "a")["status"]["phase"] != "Failed":
        time.sleep(0.02)
else:
    def count():
        n = 0
        for p in os.listdir("/proc"):
            try:
                n += p.isdigit() and token.encode() in open(f"/proc/{p}/cmdline", "rb").read()
            except OSError:
                pass  # the process ended while we looked
        return n
    while count() < 2:
        time.sleep(0.02)
print("ready", flush=True)
if how == "interrupt":
    # A Ctrl-C in the main thread while the run goes on, never caught.
    threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGINT)).start()
    time.sleep(30)
if how == "delete-then-exit":
    # The runner deletes the pod and the program ends before the grace period is over.
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=30)
sys.exit(0)
"""


@pytest.mark.parametrize("how", ["exit", "interrupt", "delete-then-exit", "failed-start"])
def test_interpreter_exit_leaves_nothing(how: str, tmp_path: Path) -> None:
    """Whatever ends the program, its run's process group and directories go with it."""
    token = _token()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": SRC}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_CHILD), how, token],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert "ready" in proc.stdout, proc.stderr
    assert _eventually_gone(token) == []
    assert list(temp.iterdir()) == []


def test_a_process_that_left_the_group_does_not_hold_the_pod() -> None:
    """A daemon that escaped with setsid keeps the pipes open; the pod completes anyway."""
    token = _token()
    cluster = FakeCluster(runtime="local")
    try:
        cluster.backend.create(_pod("a", ["sh", "-c", f"setsid sleep {token} & echo started"]))
        pod = _wait_phase(cluster, "a", ("Succeeded", "Failed"))
        assert pod["status"]["phase"] == "Succeeded"
    finally:
        cluster.backend.close()
        for pid in _alive(token):  # it escaped the runtime: this test ends it
            os.kill(pid, 9)


def test_exec_that_times_out_leaves_no_process() -> None:
    """An exec's whole process group ends with it, on a timeout too."""
    token = _token()
    cluster = FakeCluster(runtime="local")
    try:
        cluster.backend.create(_pod("a", ["sleep", "30"]))
        _wait_phase(cluster, "a", ("Running",))
        argv = ["sh", "-c", f"sleep {token} & sleep {token}"]
        with pytest.raises(BackendUnavailable, match="timed out"):
            cluster.backend.exec("default", "a", None, argv, timeout=0.5)
        assert _eventually_gone(token) == []
        done = cluster.backend.exec(
            "default", "a", None, ["sh", "-c", f"sleep {token} >/dev/null 2>&1 &"]
        )
        assert done.exit_code == 0
        assert _eventually_gone(token) == []
    finally:
        cluster.backend.close()
        for pid in _alive(token):  # the old runtime leaves them: end them here
            os.kill(pid, 9)
