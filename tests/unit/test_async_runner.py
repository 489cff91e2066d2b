"""AsyncPodRunner on the async fake: outcomes, logs, cancellation, run_many, attach, reap."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from podrunner import AsyncPodRunner, CleanupPolicy, Deadlines, PodSpec
from podrunner.errors import (
    ImagePullError,
    PodFailed,
    PodLost,
    RunCancelled,
    RunTimeout,
    ServerError,
    StartTimeout,
)
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run import RunResult
from podrunner.run.state import Phase, Reason
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.asyncio

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "echo hi"])
SECRET_SPEC = SPEC.with_secret_env(TOKEN="t0k3n")
HOUR = 3600.0


@pytest.fixture
def cluster() -> FakeCluster:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="a\nb\n", after=HOUR)
    return cluster


@pytest.fixture
def runner(cluster: FakeCluster) -> AsyncPodRunner:
    return AsyncPodRunner(cluster.async_backend)


def leftovers(cluster: FakeCluster) -> list[str]:
    """Names of every managed object still in the store."""
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


async def test_an_hour_long_run_is_awaited_in_virtual_time(
    cluster: FakeCluster, runner: AsyncPodRunner
) -> None:
    """run() returns the result of an hour-long container; nothing is left."""
    result = await runner.run(SECRET_SPEC, timeout=2 * HOUR)
    assert (result.exit_code, result.logs, result.reason) == (0, "a\nb\n", Reason.COMPLETED)
    assert result.duration == pytest.approx(HOUR + 1.0)
    assert leftovers(cluster) == []


async def test_outcomes_match_the_sync_runner(cluster: FakeCluster) -> None:
    """Exit codes, OOM, pull errors and check=True end as PodRunner's runs do."""
    runner = AsyncPodRunner(cluster.async_backend)
    cluster.when(image="fails:*").fail(exit_code=3, logs="boom\n", after=5)
    cluster.when(image="oom:*").oom(after=5)
    cluster.when(image="pull:*").image_pull_error()
    failed = await runner.run(PodSpec(image="fails:1", command=["x"]))
    assert (failed.exit_code, failed.logs) == (3, "boom\n")
    with pytest.raises(PodFailed):
        await runner.run(PodSpec(image="fails:1", command=["x"]), check=True)
    oom = await runner.run(PodSpec(image="oom:1", command=["x"]))
    assert oom.reason is Reason.OOM_KILLED
    with pytest.raises(ImagePullError):
        await runner.run(PodSpec(image="pull:1", command=["x"]))
    assert leftovers(cluster) == []


async def test_deadlines(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """A total timeout and a start deadline stop the run in virtual time, typed."""
    with pytest.raises(RunTimeout):
        await runner.run(SPEC, timeout=60)
    assert cluster.async_backend.clock.monotonic() == pytest.approx(60, abs=1)
    assert leftovers(cluster) == []
    slow = FakeCluster(start_delay=600)
    with pytest.raises(StartTimeout, match="not running within 5s"):
        await AsyncPodRunner(slow.async_backend).run(SPEC, deadlines=Deadlines(start=5))
    assert slow.clock.monotonic() == pytest.approx(5, abs=0.5)
    assert leftovers(slow) == []


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_on_log_sees_every_line_once(
    cluster: FakeCluster, runner: AsyncPodRunner, kind: str
) -> None:
    """on_log (a function or a coroutine function) sees each line once, in order."""
    logs = "".join(f"line {i} ✓\n" for i in range(50))
    cluster.when(image="busybox:*").succeed(logs=logs, after=10)
    lines: list[str] = []

    async def collect(line: str) -> None:
        await asyncio.sleep(0)
        lines.append(line)

    result = await runner.run(SPEC, on_log=lines.append if kind == "sync" else collect)
    assert lines == logs.splitlines()
    assert result.logs == logs


async def test_on_state_may_be_a_coroutine(runner: AsyncPodRunner) -> None:
    """on_state sees each new state; an async one is awaited."""
    phases: list[Phase] = []

    async def on_state(state: Any) -> None:
        phases.append(state.phase)

    await runner.run(SPEC, on_state=on_state)
    assert phases[0] is Phase.PENDING
    assert phases[-1] is Phase.SUCCEEDED
    assert Phase.RUNNING in phases


async def test_start_logs_and_wait(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """Entering start(), iterating logs(), then awaiting wait(); cleaned up on exit."""
    async with runner.start(SECRET_SPEC) as handle:
        assert [line async for line in handle.logs()] == ["a", "b"]
        result = await handle.wait()
        assert leftovers(cluster) == []  # wait() cleans up as soon as the run is over
    assert result.logs == "a\nb\n"
    handle = await runner.start(SECRET_SPEC)
    assert (await handle.wait()).exit_code == 0
    await handle.close()
    assert leftovers(cluster) == []


async def test_handle_cancel(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """handle.cancel() stops the run: wait() raises RunCancelled and nothing is left."""
    async with runner.start(SECRET_SPEC) as handle:

        async def cancel_later() -> None:
            await cluster.async_backend.clock.sleep(30)
            handle.cancel()

        canceller = asyncio.create_task(cancel_later())
        with pytest.raises(RunCancelled):
            await handle.wait()
        await canceller
    assert leftovers(cluster) == []


async def test_cancelling_the_task_cleans_up_before_cancelled_error(
    cluster: FakeCluster, runner: AsyncPodRunner
) -> None:
    """Task.cancel() deletes the pod and Secret before CancelledError reaches the awaiter."""
    task = asyncio.create_task(runner.run(SECRET_SPEC))
    await cluster.async_backend.clock.sleep(60)
    assert len(leftovers(cluster)) == 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(cluster) == []


async def test_cancel_during_create_leaves_nothing(cluster: FakeCluster) -> None:
    """A run cancelled while its create waits (latency) leaves nothing behind."""
    cluster.fault(verb="create", kind="Pod", latency=5.0, times=1)
    runner = AsyncPodRunner(cluster.async_backend)
    task = asyncio.create_task(runner.run(SECRET_SPEC))
    while not any(a.verb == "create" and a.kind == "Pod" for a in cluster.actions):
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(cluster) == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is Python 3.11+")
async def test_asyncio_timeout_cleans_up(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """asyncio.timeout around run() raises TimeoutError, after cleanup."""
    cluster.when(image="busybox:*").hang()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):  # real seconds: the hung pod never ends
            await runner.run(SECRET_SPEC)
    assert leftovers(cluster) == []


async def test_a_callback_that_raises_reaches_the_caller(
    cluster: FakeCluster, runner: AsyncPodRunner
) -> None:
    """A callback's exception stops an hour-long run at once and nothing is left."""

    class Boom(Exception):
        pass

    async def on_log(line: str) -> None:
        raise Boom(line)

    with pytest.raises(Boom):
        await runner.run(SECRET_SPEC, on_log=on_log)
    assert leftovers(cluster) == []


async def test_cleanup_policies(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """NEVER keeps the finished pod; a failed create deletes what was made before it."""
    result = await runner.run(SPEC, cleanup=CleanupPolicy.NEVER)
    assert leftovers(cluster) == [f"Pod/{result.pod_name}"]
    cluster.backend.delete("Pod", "default", result.pod_name)
    cluster.fault(verb="create", kind="Pod", status=500)
    with pytest.raises(ServerError):
        await runner.run(SECRET_SPEC)
    assert leftovers(cluster) == []


async def test_run_many_in_input_order_on_one_watch(cluster: FakeCluster) -> None:
    """run_many returns each run's own outcome in input order, over one watch stream."""
    cluster.when(image="busybox:*").run(lambda ctx: (0, " ".join(ctx.argv[1:]) + "\n", 5))
    cluster.when(image="bad:*").image_pull_error()
    runner = AsyncPodRunner(cluster.async_backend)
    specs = [PodSpec(image="busybox:1", command=["echo", str(i)]) for i in range(40)]
    specs[7] = PodSpec(image="bad:1", command=["x"])
    outcomes = await runner.run_many(specs, max_parallel=40)
    assert isinstance(outcomes[7], ImagePullError)
    for i, outcome in enumerate(outcomes):
        if i != 7:
            assert isinstance(outcome, RunResult)
            assert outcome.logs == f"{i}\n"
    assert runner.watch_stats()["peak_open_streams"] == 1
    assert leftovers(cluster) == []


async def test_run_many_raises_the_first_error_after_cleanup(cluster: FakeCluster) -> None:
    """return_exceptions=False raises a run's error once every other run was cleaned up."""
    cluster.when(image="bad:*").image_pull_error()
    runner = AsyncPodRunner(cluster.async_backend)
    specs = [SECRET_SPEC] * 5 + [PodSpec(image="bad:1", command=["x"])]
    with pytest.raises(ImagePullError):
        await runner.run_many(specs, return_exceptions=False)
    assert leftovers(cluster) == []


async def test_attach_picks_up_a_run(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """A second runner attaches by run id and gets the result."""
    first = await runner.start(SECRET_SPEC)
    other = AsyncPodRunner(cluster.async_backend)
    async with await other.attach(first.run_id) as handle:
        result = await handle.wait()
    assert (result.exit_code, result.logs) == (0, "a\nb\n")
    await first.close()
    assert leftovers(cluster) == []


async def test_reap_deletes_expired_objects(cluster: FakeCluster, runner: AsyncPodRunner) -> None:
    """reap() removes managed objects whose expiry passed and keeps the others."""
    cluster.when(image="busybox:*").hang()
    handle = await runner.start(SECRET_SPEC, timeout=100)
    assert (await runner.reap()).deleted == ()
    cluster.advance(1000)
    report = await runner.reap()
    assert {k for k, _, _ in report.deleted} == {"Pod", "Secret"}
    assert leftovers(cluster) == []
    await handle.close()


async def test_pod_deleted_underneath_is_pod_lost(
    cluster: FakeCluster, runner: AsyncPodRunner
) -> None:
    """A pod deleted by someone else ends the run with PodLost."""

    async def delete_when_running(state: Any) -> None:
        if state.phase is Phase.RUNNING:
            for pod in (await cluster.async_backend.list("Pod", "default")).items:
                await cluster.async_backend.delete("Pod", "default", pod["metadata"]["name"])

    with pytest.raises(PodLost, match="deleted"):
        await runner.run(SECRET_SPEC, on_state=delete_when_running)
    assert leftovers(cluster) == []


async def test_runner_as_async_context_manager(cluster: FakeCluster) -> None:
    """``async with AsyncPodRunner(...)`` closes its shared watch on exit."""
    async with AsyncPodRunner(cluster.async_backend) as runner:
        await runner.run(SPEC)
    assert runner.watch_stats()["open_streams"] == 0


async def test_anyio_cancel_scope_cleans_up(cluster: FakeCluster) -> None:
    """An anyio cancel scope cancelled mid-run ends the run with everything deleted."""
    import anyio

    runner = AsyncPodRunner(cluster.async_backend)
    with anyio.CancelScope() as scope:

        def on_state(state: Any) -> None:
            if state.phase is Phase.RUNNING:
                scope.cancel()

        await runner.run(SECRET_SPEC, on_state=on_state)
    assert scope.cancelled_caught
    assert leftovers(cluster) == []


@pytest.mark.timeout(30)
async def test_anyio_cleanup_that_waits_on_the_clock(cluster: FakeCluster) -> None:
    """A cleanup retrying refused deletes under a cancelled anyio scope still ends.

    anyio cancels its task again on every pass through the loop; shielded, the cleanup's
    back-off on the virtual clock can pass (the loop goes idle) and everything is deleted.
    """
    import anyio

    cluster.fault(verb="delete", kind="Pod", status=503, times=2)
    runner = AsyncPodRunner(cluster.async_backend)
    with anyio.CancelScope() as scope:

        def on_state(state: Any) -> None:
            if state.phase is Phase.RUNNING:
                scope.cancel()

        await runner.run(SECRET_SPEC, on_state=on_state)
    assert scope.cancelled_caught
    assert leftovers(cluster) == []
