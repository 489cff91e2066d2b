"""Every thread podrunner starts leaves SIGINT, SIGTERM and SIGHUP to the main thread.

Found by CI: `podrunner run` ignored Ctrl-C when the kernel handed SIGINT to a log-follower
thread while the main thread was blocked on the watch (CPython runs handlers only in the main
thread, once it runs bytecode again). The thread masks are read from /proc.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest

from podrunner import PodRunner, PodSpec
from podrunner._threads import start_quiet
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

STOP = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _blocked(native_id: int) -> set[int]:
    for line in Path(f"/proc/self/task/{native_id}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            mask = int(line.split()[1], 16)
            return {n for n in range(1, 65) if mask & (1 << (n - 1))}
    raise AssertionError("no SigBlk line")


def _worker_masks() -> dict[str, set[int]]:
    main = threading.main_thread()
    masks: dict[str, set[int]] = {}
    for t in threading.enumerate():
        if t is main or t.native_id is None:
            continue
        try:
            masks[t.name] = _blocked(t.native_id)
        except OSError:
            continue  # the thread ended meanwhile (ENOENT or ESRCH)
    return masks


def test_start_quiet_blocks_the_stop_signals_in_the_new_thread_only() -> None:
    seen: dict[str, set[int]] = {}
    go = threading.Event()

    def body() -> None:
        seen["mask"] = _blocked(threading.get_native_id())
        go.wait(5)

    thread = threading.Thread(target=body, daemon=True)
    start_quiet(thread)
    go.set()
    thread.join(5)
    assert {int(s) for s in STOP} <= seen["mask"]
    assert not {int(s) for s in STOP} & _blocked(threading.get_native_id())


def test_every_thread_of_a_local_run_blocks_the_stop_signals() -> None:
    """Log follower, status reader, local-process pumps: none can swallow a Ctrl-C."""
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    masks: list[dict[str, set[int]]] = []

    def on_log(line: str) -> None:
        masks.append(_worker_masks())

    spec = PodSpec(image="x", command=["sh", "-c", "echo one; sleep 0.2; echo two"])
    with runner.start(spec, on_log=on_log) as handle:
        lines = list(handle.logs())
        handle.wait()
    runner.close()
    assert lines == ["one", "two"]
    assert masks
    assert all(masks)
    for snapshot in masks:
        for name, blocked in snapshot.items():
            assert {int(s) for s in STOP} <= blocked, name


def test_run_many_threads_block_the_stop_signals() -> None:
    cluster = FakeCluster()
    cluster.when(image="*").succeed(logs="hi\n", after=1.0)
    runner = PodRunner(cluster.backend)
    masks: list[dict[str, set[int]]] = []

    def on_log(line: str) -> None:
        masks.append(_worker_masks())

    specs = [PodSpec(image="busybox", command=["true"]) for _ in range(4)]
    results = runner.run_many(specs, max_parallel=2, on_log=on_log)
    runner.close()
    assert [r.logs for r in results] == ["hi\n"] * 4
    assert masks
    for snapshot in masks:
        for name, blocked in snapshot.items():
            assert {int(s) for s in STOP} <= blocked, name
