"""The async fake: ``FakeCluster.async_backend`` serves the same cluster to coroutines.

Its clock is the cluster's: virtual time jumps only when every task waiting on it is blocked,
so an hour of cluster time awaited in a test takes milliseconds, and threads that share the
clock see the event loop as one more waiter.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from fakepods import pod

from podrunner.backends.base import AsyncBackend
from podrunner.backends.fake import FakeCluster, RealTimeClock
from podrunner.errors import BackendUnavailable, Gone, NotFound, ServerError

pytestmark = pytest.mark.asyncio

HOUR = 3600.0


def scripted(after: float = HOUR, logs: str = "one\ntwo\n") -> FakeCluster:
    cluster = FakeCluster(seed=1)
    cluster.when(image="busybox:*").succeed(logs=logs, after=after)
    return cluster


async def until_terminated(cluster: FakeCluster, name: str = "p") -> list[str]:
    """Watch pod ``name`` until its container terminated; return the phases seen."""
    backend = cluster.async_backend
    rv = (await backend.get("Pod", "default", name))["metadata"]["resourceVersion"]
    stream = await backend.watch(
        "Pod", "default", field_selector=f"metadata.name={name}", resource_version=rv
    )
    phases: list[str] = []
    try:
        async for event in stream:
            status = event.object.get("status", {})
            phases.append(status.get("phase", ""))
            statuses = status.get("containerStatuses") or [{}]
            if "terminated" in statuses[0].get("state", {}):
                return phases
    finally:
        await stream.aclose()
    return phases


async def test_same_cluster_for_both_kinds_of_callers() -> None:
    """What one backend writes the other reads; both calls land in one action log."""
    cluster = scripted()
    backend = cluster.async_backend
    assert isinstance(backend, AsyncBackend)
    assert cluster.async_backend is backend
    await backend.create(pod("p"))
    assert cluster.backend.get("Pod", "default", "p")["metadata"]["name"] == "p"
    cluster.backend.create(pod("q"))
    listed = await backend.list("Pod", "default")
    assert sorted(o["metadata"]["name"] for o in listed.items) == ["p", "q"]
    assert [a.verb for a in cluster.actions] == ["create", "get", "create", "list"]
    await backend.delete("Pod", "default", "q", grace_period_seconds=0)
    with pytest.raises(NotFound):
        await backend.get("Pod", "default", "q")


async def test_an_hour_long_pod_is_awaited_in_virtual_time() -> None:
    """A watch awaits the kubelet's transitions: an hour of cluster time passes at once."""
    cluster = scripted()
    backend = cluster.async_backend
    await backend.create(pod("p"))
    phases = await until_terminated(cluster)
    assert phases[-1] in ("Running", "Succeeded")
    assert backend.clock.monotonic() == pytest.approx(HOUR + 1.0)
    log = await backend.read_log("default", "p")
    assert b"".join([chunk async for chunk in log]) == b"one\ntwo\n"


async def test_sleep_and_wait_move_virtual_time_exactly() -> None:
    """clock.sleep and clock.wait end at their deadline on the cluster's clock."""
    cluster = FakeCluster()
    clock = cluster.async_backend.clock
    await clock.sleep(HOUR)
    assert clock.monotonic() == HOUR
    future = asyncio.get_running_loop().create_future()
    assert await clock.wait(future, 30.0) is False
    assert clock.monotonic() == HOUR + 30.0

    async def resolve_later() -> None:
        await clock.sleep(5.0)
        future.set_result(None)

    task = asyncio.create_task(resolve_later())
    assert await clock.wait(future, 100.0) is True
    assert clock.monotonic() == HOUR + 35.0
    await task


async def test_time_does_not_jump_while_a_task_has_work() -> None:
    """A task that keeps the loop busy sees no jump; time moves once everyone is blocked."""
    cluster = FakeCluster()
    clock = cluster.async_backend.clock
    seen: list[float] = []

    async def busy() -> None:
        for _ in range(200):
            seen.append(clock.monotonic())
            await asyncio.sleep(0)

    sleeper = asyncio.create_task(clock.sleep(10.0))
    await busy()
    assert set(seen) == {0.0}
    await sleeper
    assert clock.monotonic() == 10.0


async def test_sleepers_wake_in_deadline_order() -> None:
    """Many tasks sleeping on the clock wake in the order of their deadlines."""
    clock = FakeCluster().async_backend.clock
    woke: list[float] = []

    async def nap(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    await asyncio.gather(*(nap(s) for s in (30.0, 10.0, 20.0, 10.0)))
    assert woke == [10.0, 10.0, 20.0, 30.0]


async def test_a_thread_and_a_task_share_the_virtual_clock() -> None:
    """A thread sleeping on the clock and a task sleeping on it both wake at their times."""
    cluster = FakeCluster()
    clock = cluster.async_backend.clock
    thread_woke: list[float] = []

    def thread_sleep() -> None:
        cluster.clock.sleep(50.0)
        thread_woke.append(cluster.clock.monotonic())

    # Held while both start waiting, so neither jumps before the other counts.
    hold = cluster.clock.hold(owned=False)
    sleeper = asyncio.create_task(clock.sleep(20.0))
    thread = threading.Thread(target=thread_sleep)
    thread.start()
    while cluster.clock.waiting() < 2:  # the loop (one waiter) and the thread
        await asyncio.sleep(0.001)
    hold.release()
    await sleeper
    assert clock.monotonic() == 20.0
    await clock.sleep(100.0)
    await asyncio.to_thread(thread.join, 10)
    assert thread_woke == [50.0]
    assert clock.monotonic() == 120.0


async def test_followed_log_waits_for_lines() -> None:
    """A followed log hands out lines as the container writes them, then ends."""
    cluster = scripted(after=60.0)
    backend = cluster.async_backend
    await backend.create(pod("p"))
    await backend.clock.sleep(2.0)  # started: the log can be read
    stream = await backend.read_log("default", "p", follow=True, timestamps=True)
    chunks = [chunk async for chunk in stream]
    text = b"".join(chunks).decode()
    assert [line.split(" ", 1)[1] for line in text.splitlines()] == ["one", "two"]
    assert backend.clock.monotonic() >= 60.0


async def test_watch_timeout_ends_the_stream_with_a_bookmark() -> None:
    """A watch with nothing to send ends at its server-side timeout, with a bookmark."""
    backend = FakeCluster().async_backend
    stream = await backend.watch("Pod", "default", timeout_seconds=30, allow_bookmarks=True)
    events = [event async for event in stream]
    assert [e.type for e in events] == ["BOOKMARK"]
    assert backend.clock.monotonic() == 30.0


async def test_faults_reach_async_callers() -> None:
    """Status, latency, connection and stream faults apply to the async backend as well."""
    cluster = scripted(after=5.0, logs="".join(f"{i}\n" for i in range(6)))
    backend = cluster.async_backend
    cluster.fault(verb="create", kind="Pod", status=500, times=1)
    with pytest.raises(ServerError):
        await backend.create(pod("p"))
    cluster.fault(verb="create", kind="Pod", latency=7.0, times=1)
    await backend.create(pod("p"))
    assert backend.clock.monotonic() == 7.0
    cluster.fault(verb="get", connection_error=True, times=1)
    with pytest.raises(BackendUnavailable):
        await backend.get("Pod", "default", "p")
    await until_terminated(cluster)
    cluster.fault(verb="read_log", cut_log_after_lines=2, times=1)
    stream = await backend.read_log("default", "p")
    got = [await stream.__anext__(), await stream.__anext__()]
    with pytest.raises(BackendUnavailable):
        await stream.__anext__()
    assert b"".join(got) == b"0\n1\n"


async def test_too_old_resource_version_is_gone() -> None:
    """A watch from a version older than the history answers 410 Gone at opening."""
    cluster = FakeCluster(history=5)
    backend = cluster.async_backend
    for i in range(10):
        await backend.create({"kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    with pytest.raises(Gone):
        await backend.watch("ConfigMap", "default", resource_version="2")


async def test_exec_runs_in_a_started_container() -> None:
    """An exec answers as the sync backend's does."""
    cluster = scripted()
    backend = cluster.async_backend
    await backend.create(pod("p"))
    await backend.clock.sleep(2.0)
    result = await backend.exec("default", "p", None, ["echo", "hi"])
    assert (result.exit_code, result.stdout) == (0, b"hi\n")


async def test_real_clock_cluster_serves_async_callers() -> None:
    """On the real clock, transitions are applied as the loop waits (no virtual jumps)."""
    cluster = FakeCluster(clock=RealTimeClock(), start_delay=0.05)
    cluster.when(image="busybox:*").succeed(logs="x\n", after=0.1)
    backend = cluster.async_backend
    await backend.create(pod("p"))
    phases = await asyncio.wait_for(until_terminated(cluster), 10)
    assert phases
    log = await backend.read_log("default", "p")
    assert b"".join([c async for c in log]) == b"x\n"
