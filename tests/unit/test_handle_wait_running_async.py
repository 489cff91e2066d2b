"""AsyncRunHandle.wait_running: as RunHandle.wait_running, on the async fake."""

from __future__ import annotations

import pytest

from podrunner import AsyncPodRunner, PodSpec
from podrunner.errors import ImagePullError, StartTimeout
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.state import Phase
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.asyncio


def leftovers(cluster: FakeCluster) -> list[str]:
    """Every managed object still in the store."""
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "sleep 1"])


async def test_wait_running_returns_the_running_pod_then_wait_finishes() -> None:
    """wait_running() returns once the container runs; wait() then gives the result."""
    cluster = FakeCluster(start_delay=30)
    cluster.when(image="busybox:*").succeed(logs="done\n", after=60)
    async with AsyncPodRunner(cluster.async_backend) as pods, pods.start(SPEC) as handle:
        pod = await handle.wait_running()
        assert pod["status"]["phase"] == "Running"
        assert handle.state.phase is Phase.RUNNING
        assert 30 <= cluster.clock.monotonic() < 60
        result = await handle.wait()
    assert (result.exit_code, result.logs) == (0, "done\n")
    assert leftovers(cluster) == []


async def test_wait_running_timeout_leaves_the_run_going() -> None:
    """A bounded wait_running() raises StartTimeout; the run goes on and can be awaited."""
    cluster = FakeCluster(start_delay=100)
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=10)
    async with AsyncPodRunner(cluster.async_backend) as pods, pods.start(SPEC) as handle:
        with pytest.raises(StartTimeout, match="not running within 30s"):
            await handle.wait_running(timeout=30)
        result = await handle.wait()
    assert result.exit_code == 0
    assert leftovers(cluster) == []


async def test_wait_running_raises_the_runs_error() -> None:
    """A pod that cannot start ends the run: wait_running() and wait() raise its error."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").image_pull_error()
    async with AsyncPodRunner(cluster.async_backend) as pods, pods.start(SPEC) as handle:
        with pytest.raises(ImagePullError):
            await handle.wait_running()
        with pytest.raises(ImagePullError):
            await handle.wait()
    assert leftovers(cluster) == []
