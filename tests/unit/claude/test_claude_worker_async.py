"""AsyncClaudeWorker: the worker's pod, claims and ownership for coroutines, on the fake."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

import pytest
from claude_util import leftovers

from podrunner import AsyncPodRunner, PodRunner
from podrunner.backends.base import ExecResult
from podrunner.claude import (
    AsyncClaudeWorker,
    ClaudeCredentials,
    ClaudeTask,
    ClaudeWorker,
    WorkerOwnershipError,
)
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from podrunner.backends.fake.scripting import ExecRequest

IMAGE = "example.com/claude-code:2"
KEY = "sk-ant-api03-ASYNC-0000000000"
SESSION = "3f0c1f1e-8d1b-4c39-9a47-2b6a5f0d7c11"
LINE = (
    '{"type":"result","subtype":"success","is_error":false,"result":"ok",'
    f'"session_id":"{SESSION}"}}\n'
).encode()


def _cluster(calls: list[ExecRequest], pause: float = 0.0) -> tuple[FakeCluster, list[int]]:
    """A fake whose worker image answers every task; the second list records the overlap."""
    cluster = FakeCluster()
    active, peak = [0], [0]
    lock = threading.Lock()

    def handle(request: ExecRequest) -> ExecResult:
        with lock:
            calls.append(request)
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(pause)  # real time: an overlap would show
        with lock:
            active[0] -= 1
        return ExecResult(0, LINE, b"")

    cluster.when(image=IMAGE).hang().exec_handler(handle)
    return cluster, peak


def _worker(cluster: FakeCluster, **kw: object) -> AsyncClaudeWorker:
    return AsyncClaudeWorker(
        AsyncPodRunner(cluster.async_backend),
        image=IMAGE,
        credentials=ClaudeCredentials.api_key(KEY),
        launcher_environ={},
        **kw,  # type: ignore[arg-type]
    )


def test_tasks_run_in_one_pod_and_stop_leaves_nothing() -> None:
    calls: list[ExecRequest] = []
    cluster, _ = _cluster(calls)

    async def main() -> None:
        async with _worker(cluster) as worker:
            first = await worker.run("Read src/ and list the modules")
            again = await worker.run(ClaudeTask("Which is riskiest?", resume=first.session_id))
            assert again.session_id == SESSION
            assert worker.recreated == 1
            assert {c.pod for c in calls} == {worker.name}
            assert calls[0].stdin == b"Read src/ and list the modules"  # the prompt on stdin

    asyncio.run(main())
    assert leftovers(cluster) == []


def test_a_sync_and_an_async_worker_share_the_pod_and_take_turns() -> None:
    """Same identity, two drivers: one pod between them, and the claim keeps tasks apart."""
    calls: list[ExecRequest] = []
    cluster, peak = _cluster(calls, pause=0.05)
    sync_worker = ClaudeWorker(
        PodRunner(cluster.backend),
        image=IMAGE,
        credentials=ClaudeCredentials.api_key(KEY),
        launcher_environ={},
    )
    sync_errors: list[BaseException] = []

    def sync_tasks() -> None:
        try:
            for i in range(3):
                sync_worker.run(f"sync {i}")
        except BaseException as exc:  # reported below
            sync_errors.append(exc)

    async def main() -> None:
        worker = _worker(cluster)
        assert worker.name == sync_worker.name
        thread = threading.Thread(target=sync_tasks)
        thread.start()
        for i in range(3):
            await worker.run(f"async {i}")
        await asyncio.to_thread(thread.join, 60)
        assert worker.recreated + sync_worker.recreated == 1
        await worker.stop()

    asyncio.run(main())
    sync_worker.stop()
    assert sync_errors == []
    assert (len(calls), peak[0]) == (6, 1)
    assert leftovers(cluster) == []


def test_a_foreign_pod_under_the_name_is_refused_and_left_intact() -> None:
    calls: list[ExecRequest] = []
    cluster, _ = _cluster(calls)
    cluster.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "shared", "labels": {"app.kubernetes.io/managed-by": "x"}},
            "spec": {"containers": [{"name": "c", "image": IMAGE}]},
        }
    )

    async def main() -> None:
        async with _worker(cluster, name="shared", start_timeout=30) as worker:
            with pytest.raises(WorkerOwnershipError) as caught:
                await worker.run("hi")
            assert caught.value.reason == "it was not made by podrunner"
            assert KEY not in str(caught.value)

    asyncio.run(main())
    assert calls == []
    assert [p["metadata"]["name"] for p in cluster.pods()] == ["shared"]


def test_a_cancelled_task_takes_its_pod() -> None:
    """The CLI may still run in it: the next task gets a new pod."""
    calls: list[ExecRequest] = []
    cluster, _ = _cluster(calls, pause=0.3)

    async def main() -> None:
        async with _worker(cluster) as worker:
            first = (await worker.ensure_running())["metadata"]["uid"]
            task = asyncio.ensure_future(worker.run("slow"))
            while not calls:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            second = (await worker.ensure_running())["metadata"]["uid"]
            assert second != first
            assert (await worker.run("next")).ok

    asyncio.run(main())
    assert leftovers(cluster) == []


def test_detach_leaves_the_pod_for_the_next_worker() -> None:
    calls: list[ExecRequest] = []
    cluster, _ = _cluster(calls)

    async def main() -> None:
        first = _worker(cluster)
        uid = (await first.ensure_running())["metadata"]["uid"]
        await first.detach()
        async with _worker(cluster) as later:
            assert (await later.ensure_running())["metadata"]["uid"] == uid
            assert later.recreated == 0

    asyncio.run(main())
    assert leftovers(cluster) == []
