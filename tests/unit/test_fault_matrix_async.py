"""The fault matrix on the async driver: every call x every failure, cancellation, outcomes.

The same scenarios and documented outcomes as ``test_fault_matrix.py`` (the sync driver),
through ``AsyncPodRunner`` on the async fake: the output must be exactly what the container
printed, and nothing with the run's labels may remain afterwards. Ctrl-C's async counterpart
is cancellation of the awaiting task, during each API call and at each stage.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_fault_matrix import (
    CALLS,
    ERROR_TYPES,
    LOGS,
    MATRIX,
    POD_OUTCOMES,
    SPEC,
    expected,
    fault_kwargs,
    managed,
)

from podrunner import AsyncPodRunner, PodSpec
from podrunner.backends.base import AsyncBackend
from podrunner.errors import (
    Forbidden,
    ImagePullError,
    NotFound,
    PodLost,
    ServerError,
    Unschedulable,
)
from podrunner.run.state import Phase, Reason
from podrunner.testing import FakeCluster

pytestmark = pytest.mark.asyncio


def scenario() -> tuple[FakeCluster, AsyncPodRunner]:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=10.0)
    return cluster, AsyncPodRunner(cluster.async_backend)


def streaming(stream: bool) -> tuple[list[str], dict[str, Any]]:
    lines: list[str] = []

    async def on_log(line: str) -> None:
        lines.append(line)

    return lines, ({"on_log": on_log} if stream else {})


@pytest.mark.parametrize(("verb", "kind", "fault", "mode", "stream"), MATRIX)
async def test_api_fault(verb: str, kind: str, fault: Any, mode: str, stream: bool) -> None:
    """An API failure on one call ends in its documented outcome with nothing leaked."""
    cluster, runner = scenario()
    cluster.fault(verb=verb, kind=kind, **fault_kwargs(fault, mode))
    outcome = expected(verb, kind, fault, mode)
    lines, kwargs = streaming(stream)
    if outcome == "ok":
        result = await runner.run(SPEC, timeout=3600, **kwargs)
        assert (result.exit_code, result.logs) == (0, LOGS)
        if stream:
            assert lines == LOGS.splitlines()
        assert managed(cluster) == set()
    elif outcome == "logs-lost":
        result = await runner.run(SPEC, timeout=3600, **kwargs)
        assert (result.exit_code, result.state.phase) == (0, Phase.SUCCEEDED)
        assert "logs" in result.message
        assert (result.logs, lines) == ("", [])
        assert managed(cluster) == set()
    else:
        with pytest.raises(ERROR_TYPES[fault]):
            await runner.run(SPEC, timeout=3600, **kwargs)
        assert lines == LOGS.splitlines()[: len(lines)]
        left = managed(cluster)
        if verb == "delete" and kind == "Pod":
            assert len(left) == 1
            assert next(iter(left)).startswith("Pod/")
        else:
            assert left == set()


class Cancelling:
    """An async backend proxy that cancels the running task at the first matching call."""

    def __init__(self, backend: AsyncBackend, verb: str, kind: str) -> None:
        self._backend = backend
        self._verb = verb
        self._kind = kind
        self.target: asyncio.Task[Any] | None = None
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def _hit(self, verb: str, kind: str | None) -> None:
        if self.fired or verb != self._verb or kind != self._kind:
            return
        # The call may run in the run's task or in its shielded cleanup: either way the
        # run's task is cancelled while the call is under way.
        self.fired = True
        assert self.target is not None
        self.target.cancel()
        await asyncio.sleep(0)  # the cancellation lands here, inside the call

    async def create(self, manifest: Any, **kw: Any) -> Any:
        await self._hit("create", manifest.get("kind"))
        return await self._backend.create(manifest, **kw)

    async def patch(self, kind: Any, *args: Any, **kw: Any) -> Any:
        await self._hit("patch", kind)
        return await self._backend.patch(kind, *args, **kw)

    async def watch(self, kind: Any, *args: Any, **kw: Any) -> Any:
        await self._hit("watch", kind)
        return await self._backend.watch(kind, *args, **kw)

    async def read_log(self, *args: Any, **kw: Any) -> Any:
        await self._hit("read_log", "Pod")
        return await self._backend.read_log(*args, **kw)

    async def delete(self, kind: Any, *args: Any, **kw: Any) -> None:
        await self._hit("delete", kind)
        await self._backend.delete(kind, *args, **kw)


# The shared watch is read by its own task, and a streamed log by the follower's: those calls
# are not the run's, so those combinations have no scenario.
CANCEL_CALLS = [
    pytest.param(verb, kind, stream, id=f"{'stream' if stream else 'drain'}-{verb}-{kind}")
    for stream in (False, True)
    for verb, kind in CALLS
    if verb != "watch" and not (stream and verb == "read_log")
]


@pytest.mark.parametrize(("verb", "kind", "stream"), CANCEL_CALLS)
async def test_cancel_during_each_call(verb: str, kind: str, stream: bool) -> None:
    """Cancelling the run's task inside any API call propagates after full cleanup."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=10.0)
    proxy = Cancelling(cluster.async_backend, verb, kind)
    runner = AsyncPodRunner(proxy)  # type: ignore[arg-type]
    _, kwargs = streaming(stream)
    task = asyncio.create_task(runner.run(SPEC, timeout=3600, **kwargs))
    proxy.target = task
    with pytest.raises(asyncio.CancelledError):
        await task
    assert proxy.fired
    assert managed(cluster) == set()


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.SCHEDULED, Phase.RUNNING])
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
async def test_cancel_at_each_stage(phase: Phase, stream: bool) -> None:
    """Cancelling at each lifecycle stage propagates and the pod and Secret are deleted."""
    cluster, runner = scenario()
    seen: list[Phase] = []
    task: asyncio.Task[Any] | None = None

    def on_state(state: Any) -> None:
        seen.append(state.phase)
        if state.phase is phase and task is not None:
            task.cancel()

    _, kwargs = streaming(stream)
    task = asyncio.create_task(runner.run(SPEC, on_state=on_state, **kwargs))
    with pytest.raises(asyncio.CancelledError):
        await task
    assert phase in seen
    assert managed(cluster) == set()


@pytest.mark.parametrize("outcome", POD_OUTCOMES)
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
async def test_pod_outcomes(outcome: str, stream: bool) -> None:
    """Evicted, OOM-killed, deleted, unschedulable, pull back-off and crash-looping pods."""
    cluster = FakeCluster()
    script = cluster.when(image="busybox:*")
    runner = AsyncPodRunner(cluster.async_backend)
    lines, kwargs = streaming(stream)
    printed = "a ✓\nb\n"
    output: str
    if outcome == "evict":
        script.evict(after=5.0, logs=printed)
        with pytest.raises(PodLost, match="evicted") as lost:
            await runner.run(SPEC, timeout=3600, **kwargs)
        output = lost.value.logs
    elif outcome == "oom":
        script.oom(after=5.0, logs=printed)
        result = await runner.run(SPEC, timeout=3600, **kwargs)
        assert (result.reason, result.exit_code) == (Reason.OOM_KILLED, 137)
        output = result.logs
    elif outcome == "delete":
        script.hang(logs=printed)

        async def on_state(state: Any) -> None:
            if state.phase is Phase.RUNNING:
                for pod in (await cluster.async_backend.list("Pod", "default")).items:
                    await cluster.async_backend.delete("Pod", "default", pod["metadata"]["name"])

        with pytest.raises(PodLost, match="deleted") as lost:
            await runner.run(SPEC, timeout=3600, on_state=on_state, **kwargs)
        output = lost.value.logs
        if not stream:
            printed = ""
    elif outcome == "unschedulable":
        script.unschedulable()
        with pytest.raises(Unschedulable, match="nodes are available"):
            await runner.run(SPEC, timeout=3600, **kwargs)
        output = printed = ""
    elif outcome == "image_pull_error":
        script.image_pull_error()
        with pytest.raises(ImagePullError, match=r"busybox:1\.36"):
            await runner.run(SPEC, timeout=3600, **kwargs)
        output = printed = ""
    else:
        script.fail(exit_code=4, logs="crash\n", after=1.0)
        crashing = PodSpec(image="busybox:1.36", command=["false"], restart_policy="Always")
        result = await runner.run(crashing, timeout=3600, **kwargs)
        assert (result.reason, result.exit_code) == (Reason.CRASH_LOOP, 4)
        output, printed = result.logs, "crash\n"
    assert output == printed
    if stream:
        assert lines == printed.splitlines()
    assert managed(cluster) == set()


@pytest.mark.parametrize("after_lines", [0, 1, 5, 11])
@pytest.mark.parametrize("split_utf8", [False, True], ids=["whole", "split-utf8"])
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
async def test_log_stream_cut(after_lines: int, split_utf8: bool, stream: bool) -> None:
    """Log streams cut mid-line or mid-character lose nothing and double nothing."""
    cluster, runner = scenario()
    cluster.fault(verb="read_log", cut_log_after_lines=after_lines, split_utf8=split_utf8, times=2)
    lines, kwargs = streaming(stream)
    result = await runner.run(SPEC, timeout=3600, **kwargs)
    assert result.logs == LOGS
    if stream:
        assert lines == LOGS.splitlines()
    assert managed(cluster) == set()


class CallbackBoom(Exception):
    """What the user's callback raises."""


@pytest.mark.parametrize("entry", ["run", "start-wait", "logs", "run_many", "attach"])
@pytest.mark.parametrize("callback", ["on_log", "on_state"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_callback_that_raises(entry: str, callback: str, kind: str) -> None:
    """A callback's exception stops an hour-long run, reaches the caller, nothing is left."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=3600.0)
    runner = AsyncPodRunner(cluster.async_backend)
    calls: list[str] = []

    def sync_callback(arg: Any) -> None:
        calls.append(str(arg))
        raise CallbackBoom("from the callback")

    async def async_callback(arg: Any) -> None:
        sync_callback(arg)

    kwargs: dict[str, Any] = {callback: sync_callback if kind == "sync" else async_callback}

    async def enter() -> None:
        if entry == "run":
            await runner.run(SPEC, **kwargs)
        elif entry == "start-wait":
            async with runner.start(SPEC, **kwargs) as handle:
                await handle.wait()
        elif entry == "logs":
            async with runner.start(SPEC, **kwargs) as handle:
                async for _ in handle.logs():
                    pass
        elif entry == "run_many":
            await runner.run_many([SPEC] * 3, **kwargs)
        else:
            first = await runner.start(SPEC)
            async with await runner.attach(first.run_id, **kwargs) as handle:
                await handle.wait()

    with pytest.raises(CallbackBoom, match="from the callback"):
        await enter()
    assert 1 <= len(calls) <= (3 if entry == "run_many" else 1)
    assert cluster.clock.monotonic() < 3600.0
    if entry == "attach":
        assert {name for name in managed(cluster) if name.startswith("Pod/")} == set()
    else:
        assert managed(cluster) == set()


@pytest.mark.parametrize("max_parallel", [8, 64])
@pytest.mark.parametrize(
    "fault",
    ["missing-namespace", "pod-create-403", "secret-create-403", "patch-403", "watch-500"],
)
async def test_run_many_persistent_fault_leaves_nothing(fault: str, max_parallel: int) -> None:
    """Whatever run_many raises, no pod or Secret it started is left afterwards."""
    cluster, runner = scenario()
    specs = [SPEC] * 40
    expected_error: type[Exception] = ServerError
    if fault == "missing-namespace":
        specs = [*specs[:20], SPEC.with_namespace("nowhere"), *specs[20:]]
        expected_error = NotFound
    elif fault == "watch-500":
        cluster.fault(verb="watch", status=500)
    else:
        verb, kind = {
            "pod-create-403": ("create", "Pod"),
            "secret-create-403": ("create", "Secret"),
            "patch-403": ("patch", "Secret"),
        }[fault]
        cluster.fault(verb=verb, kind=kind, status=403, nth=15)
        expected_error = Forbidden
    with pytest.raises(expected_error):
        await runner.run_many(specs, max_parallel=max_parallel)
    assert managed(cluster) == set()
