"""Typing example of the async API; checked by ``mypy --strict``, never run."""

from __future__ import annotations

import asyncio
import contextlib

from podrunner import AsyncBackend, AsyncPodRunner, AsyncRunHandle, PodSpec, RunResult
from podrunner.backends.base import AsyncClock, AsyncStream, WatchEvent
from podrunner.backends.fake import FakeCluster
from podrunner.backends.kubernetes import ClusterConfig
from podrunner.claude import AsyncClaudeRunner, ClaudeTask
from podrunner.errors import RunError


async def use() -> None:
    backend: AsyncBackend = FakeCluster().async_backend
    clock: AsyncClock = backend.clock
    await clock.sleep(1.0)
    stream: AsyncStream[WatchEvent] = await backend.watch("Pod", "default")
    async for event in stream:
        assert event.type
    await stream.aclose()

    async def on_log(line: str) -> None:
        print(line)

    runner = AsyncPodRunner(backend, namespace="default")
    spec = PodSpec(image="busybox:1.36", command=["true"])
    result: RunResult = await runner.run(spec, timeout=60, on_log=on_log)
    async with runner.start(spec) as handle:
        lines: list[str] = [line async for line in handle.logs()]
        result = await handle.wait()
    started: AsyncRunHandle = await runner.start(spec, on_log=print)
    started.cancel()
    await started.close()
    outcomes: list[RunResult | RunError] = await runner.run_many([spec], max_parallel=4)
    attached: AsyncRunHandle = await runner.attach("run-id")
    await attached.close()
    async with AsyncPodRunner.connect(ClusterConfig.in_cluster()) as real:
        await real.reap(older_than=3600)
    print(result, lines, outcomes)


if __name__ == "__main__":
    asyncio.run(use())


async def claude_events(pods: AsyncPodRunner) -> list[str]:
    """AsyncClaudeRunner.stream() is an async generator: contextlib.aclosing() takes it."""
    claude = AsyncClaudeRunner(pods, image="example.com/claude-code:2")
    task = ClaudeTask("hi", output_format="stream-json", include_partial_messages=True)
    async with contextlib.aclosing(claude.stream(task)) as events:
        return [str(event["type"]) async for event in events]


async def warm_pool(runner: AsyncPodRunner) -> int | None:
    """AsyncPodPool is an async context manager; run() is awaited."""
    from podrunner import AsyncPodPool

    async with AsyncPodPool(runner, PodSpec("busybox:1.36", ["x"]), size=2) as pool:
        result: RunResult = await pool.run(["echo", "hi"], timeout=30)
        async with pool.claim() as pod:
            del pod
        return result.exit_code
