"""handle.logs() ends at the run's deadline, and wait() then raises RunTimeout (sync and async).

The log iterator used to wait for the container however long it ran: a run started with
``timeout=1.5`` on a 6-second container yielded every line and then succeeded.
"""

from __future__ import annotations

import asyncio

import pytest

from podrunner import AsyncPodRunner, PodRunner, PodSpec
from podrunner.errors import RunTimeout
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "slow"])


def _cluster(after: float = 600.0) -> FakeCluster:
    # Past the pod's own activeDeadlineSeconds (timeout + 30 s): whenever the caller gets to
    # wait(), the run has timed out, whoever noticed first.
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=[(0.2, "early\n"), (5.0, "late\n")], after=after)
    return cluster


def _left(cluster: FakeCluster) -> int:
    return len(cluster.backend.list("Pod", None, label_selector=MANAGED_SELECTOR).items)


def test_sync_logs_end_at_the_deadline_and_wait_raises_run_timeout() -> None:
    cluster = _cluster()
    runner = PodRunner(cluster.backend)
    start = cluster.clock.monotonic()
    with runner.start(SPEC, timeout=1.5) as handle:
        lines = list(handle.logs())
        ended_after = cluster.clock.monotonic() - start
        with pytest.raises(RunTimeout):
            handle.wait()
    assert lines == ["early"]
    assert 1.5 <= ended_after < 5.0
    assert _left(cluster) == 0


def test_async_logs_end_at_the_deadline_and_wait_raises_run_timeout() -> None:
    cluster = _cluster()

    async def main() -> tuple[list[str], float]:
        runner = AsyncPodRunner(cluster.async_backend)
        clock = cluster.async_backend.clock
        start = clock.monotonic()
        async with runner.start(SPEC, timeout=1.5) as handle:
            lines = [line async for line in handle.logs()]
            ended_after = clock.monotonic() - start
            with pytest.raises(RunTimeout):
                await handle.wait()
        return lines, ended_after

    lines, ended_after = asyncio.run(main())
    assert lines == ["early"]
    assert 1.5 <= ended_after < 5.0
    assert _left(cluster) == 0


def test_logs_of_a_run_within_its_deadline_are_whole() -> None:
    cluster = _cluster(after=6.0)
    with PodRunner(cluster.backend).start(SPEC, timeout=60) as handle:
        lines = list(handle.logs())
        assert handle.wait().exit_code == 0
    assert lines == ["early", "late"]
