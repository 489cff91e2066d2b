"""The fault matrix: every call a run makes x every failure, plus Ctrl-C and pod outcomes.

For each scenario the run must end with its documented outcome (a transparent retry, the
right typed error, or the right state), the output must be exactly what the container printed
(no line lost or doubled), and afterwards nothing with the run's labels may remain (unless the
API refused every delete, in which case the caller got that error).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from podrunner import PodRunner, PodSpec
from podrunner.backends.base import Backend
from podrunner.errors import (
    BackendError,
    BackendUnavailable,
    Conflict,
    Forbidden,
    Gone,
    ImagePullError,
    NotFound,
    PodLost,
    ServerError,
    TooManyRequests,
    Unauthorized,
    Unschedulable,
)
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.state import Phase, Reason
from podrunner.testing import FakeCluster

LOGS = "".join(f"line {i} ✓ héllo 日本\n" for i in range(12))
SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "work"]).with_secret_env(TOKEN="t0k3n")

CALLS = [
    ("create", "Secret"),
    ("create", "Pod"),
    ("patch", "Secret"),
    ("watch", "Pod"),
    ("read_log", "Pod"),
    ("delete", "Pod"),
    ("delete", "Secret"),
]
FAULTS: list[Any] = [401, 409, 429, 500, 503, "connection", "latency"]
ERROR_TYPES: dict[Any, type[BackendError]] = {
    401: Unauthorized,
    409: Conflict,
    410: Gone,
    429: TooManyRequests,
    500: ServerError,
    503: ServerError,
    "connection": BackendUnavailable,
}


def managed(cluster: FakeCluster) -> set[str]:
    """Kinds and names of every managed object left in the store."""
    out: set[str] = set()
    for kind in ("Pod", "Secret", "ConfigMap"):
        for obj in cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR).items:
            out.add(f"{kind}/{obj['metadata']['name']}")
    return out


def scenario(stream: bool) -> tuple[FakeCluster, PodRunner, dict[str, Any]]:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=10.0)
    lines: list[str] = []
    kwargs: dict[str, Any] = {"timeout": 3600}
    if stream:
        kwargs["on_log"] = lines.append
    kwargs["_lines"] = lines
    return cluster, PodRunner(cluster.backend), kwargs


def run(runner: PodRunner, kwargs: dict[str, Any]) -> Any:
    lines = kwargs.pop("_lines")
    result = runner.run(SPEC, **kwargs)
    if "on_log" in kwargs:
        # Streamed lines are the output, each exactly once.
        assert lines == LOGS.splitlines()
    return result


def expected(verb: str, kind: str, fault: Any, mode: str) -> str:
    """The documented outcome: ok, logs-lost, or error."""
    if fault == "latency":
        return "ok"
    if mode == "first":
        if fault == 409 and verb in ("create", "patch", "watch"):
            return "error"  # a 409 Conflict is not retried: the request itself is refused
        return "ok"
    if verb == "read_log":
        return "logs-lost"
    return "error"


def fault_kwargs(fault: Any, mode: str) -> dict[str, Any]:
    kw: dict[str, Any] = {} if mode == "every" else {"times": 1}
    if fault == "connection":
        kw["connection_error"] = True
    elif fault == "latency":
        kw["latency"] = 2.5
    elif fault == 429:
        kw.update(status=429, retry_after=1.0)
    else:
        kw["status"] = fault
    return kw


MATRIX = [
    pytest.param(
        verb,
        kind,
        fault,
        mode,
        stream,
        id=f"{verb}-{kind}-{fault}-{mode}-{'stream' if stream else 'drain'}",
    )
    for verb, kind in CALLS
    for fault in FAULTS
    for mode in ("first", "every")
    for stream in (False, True)
] + [
    pytest.param(
        "watch",
        "Pod",
        410,
        mode,
        stream,
        id=f"watch-Pod-410-{mode}-{'stream' if stream else 'drain'}",
    )
    for mode in ("first", "every")
    for stream in (False, True)
]


@pytest.mark.parametrize(("verb", "kind", "fault", "mode", "stream"), MATRIX)
def test_api_fault(verb: str, kind: str, fault: Any, mode: str, stream: bool) -> None:
    """An API failure on one call ends in its documented outcome with nothing leaked."""
    cluster, runner, kwargs = scenario(stream)
    cluster.fault(verb=verb, kind=kind, **fault_kwargs(fault, mode))
    outcome = expected(verb, kind, fault, mode)
    if outcome == "ok":
        result = run(runner, kwargs)
        assert (result.exit_code, result.logs) == (0, LOGS)
        assert managed(cluster) == set()
    elif outcome == "logs-lost":
        lines = kwargs.pop("_lines")
        result = runner.run(SPEC, **kwargs)
        assert result.exit_code == 0
        assert result.state.phase is Phase.SUCCEEDED
        assert "logs" in result.message
        # Every log read failed: nothing was read, so nothing may be reported or streamed.
        assert result.logs == ""
        assert lines == []
        assert managed(cluster) == set()
    else:
        lines = kwargs.pop("_lines")
        with pytest.raises(ERROR_TYPES[fault]):
            runner.run(SPEC, **kwargs)
        # Whatever was streamed before the error is a prefix of the output: nothing doubled.
        assert lines == LOGS.splitlines()[: len(lines)]
        left = managed(cluster)
        if verb == "delete" and kind == "Pod":
            # The API refused every delete of the pod: exactly the pod remains.
            assert len(left) == 1
            assert next(iter(left)).startswith("Pod/")
        else:
            # A Secret whose deletes all failed is still collected with its owner pod, as on a
            # real cluster: the runner made the pod its owner for that reason.
            assert left == set()


class Interrupting:
    """A backend proxy that raises KeyboardInterrupt at the first matching call."""

    def __init__(self, backend: Backend, verb: str, kind: str) -> None:
        self._backend = backend
        self._verb = verb
        self._kind = kind
        self.fired = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def _hit(self, verb: str, kind: str | None) -> None:
        # Ctrl-C is delivered to the main thread only, as CPython does.
        if threading.current_thread() is not threading.main_thread():
            return
        if not self.fired and verb == self._verb and kind == self._kind:
            self.fired = True
            raise KeyboardInterrupt

    def create(self, manifest: Any, **kw: Any) -> Any:
        self._hit("create", manifest.get("kind"))
        return self._backend.create(manifest, **kw)

    def patch(self, kind: Any, *args: Any, **kw: Any) -> Any:
        self._hit("patch", kind)
        return self._backend.patch(kind, *args, **kw)

    def watch(self, kind: Any, *args: Any, **kw: Any) -> Iterator[Any]:
        self._hit("watch", kind)
        return self._backend.watch(kind, *args, **kw)

    def read_log(self, *args: Any, **kw: Any) -> Iterator[bytes]:
        self._hit("read_log", "Pod")
        return self._backend.read_log(*args, **kw)

    def delete(self, kind: Any, *args: Any, **kw: Any) -> None:
        self._hit("delete", kind)
        return self._backend.delete(kind, *args, **kw)


# When streaming, the log is read by the follower thread, which Ctrl-C never reaches (CPython
# delivers it to the main thread), so that combination has no scenario.
CTRL_C_CALLS = [
    pytest.param(verb, kind, stream, id=f"{'stream' if stream else 'drain'}-{verb}-{kind}")
    for stream in (False, True)
    for verb, kind in CALLS
    if not (stream and verb == "read_log")
]


@pytest.mark.parametrize(("verb", "kind", "stream"), CTRL_C_CALLS)
def test_ctrl_c_during_each_call(verb: str, kind: str, stream: bool) -> None:
    """Ctrl-C during any API call propagates as KeyboardInterrupt and leaves nothing behind."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=10.0)
    proxy = Interrupting(cluster.backend, verb, kind)
    runner = PodRunner(proxy)  # type: ignore[arg-type]
    with pytest.raises(KeyboardInterrupt):
        runner.run(SPEC, timeout=3600, on_log=(lambda line: None) if stream else None)
    assert proxy.fired
    assert managed(cluster) == set()


@pytest.mark.parametrize("phase", [Phase.PENDING, Phase.SCHEDULED, Phase.RUNNING])
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
def test_ctrl_c_at_each_stage(phase: Phase, stream: bool) -> None:
    """Ctrl-C at each lifecycle stage propagates and the pod and Secret are deleted."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=10.0)
    seen: list[Phase] = []

    def on_state(state: Any) -> None:
        seen.append(state.phase)
        if state.phase is phase:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        PodRunner(cluster.backend).run(
            SPEC, on_state=on_state, on_log=(lambda line: None) if stream else None
        )
    assert phase in seen
    assert managed(cluster) == set()


POD_OUTCOMES = ["evict", "oom", "delete", "unschedulable", "image_pull_error", "crash_loop"]


@pytest.mark.parametrize("outcome", POD_OUTCOMES)
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
def test_pod_outcomes(outcome: str, stream: bool) -> None:
    """Evicted, OOM-killed, deleted, unschedulable, pull back-off and crash-looping pods.

    Each ends in its outcome, with exactly the output the container printed (streamed lines
    included), and nothing left behind.
    """
    cluster = FakeCluster()
    script = cluster.when(image="busybox:*")
    spec = SPEC
    lines: list[str] = []
    kwargs: dict[str, Any] = {"timeout": 3600, "on_log": lines.append if stream else None}
    printed = "a ✓\nb\n"
    output: str
    if outcome == "evict":
        script.evict(after=5.0, logs=printed)
        with pytest.raises(PodLost, match="evicted") as lost:
            PodRunner(cluster.backend).run(spec, **kwargs)
        output = lost.value.logs
        assert "Evicted" in " ".join(lost.value.events)
    elif outcome == "oom":
        script.oom(after=5.0, logs=printed)
        result = PodRunner(cluster.backend).run(spec, **kwargs)
        assert (result.reason, result.exit_code) == (Reason.OOM_KILLED, 137)
        output = result.logs
    elif outcome == "delete":
        script.hang(logs=printed)

        def on_state(state: Any) -> None:
            if state.phase is Phase.RUNNING:
                for pod in cluster.backend.list("Pod", "default").items:
                    cluster.backend.delete("Pod", "default", pod["metadata"]["name"])

        with pytest.raises(PodLost, match="deleted") as lost:
            PodRunner(cluster.backend).run(spec, on_state=on_state, **kwargs)
        output = lost.value.logs
        if not stream:
            # Gone before the run read its log: as on a real cluster, there is none to read.
            printed = ""
    elif outcome == "unschedulable":
        script.unschedulable()
        with pytest.raises(Unschedulable, match="nodes are available") as refused:
            PodRunner(cluster.backend).run(spec, **kwargs)
        assert any(e.startswith("FailedScheduling") for e in refused.value.events)
        output, printed = refused.value.logs, ""
    elif outcome == "image_pull_error":
        script.image_pull_error()
        with pytest.raises(ImagePullError, match=r"busybox:1\.36") as pull:
            PodRunner(cluster.backend).run(spec, **kwargs)
        output, printed = pull.value.logs, ""
    else:
        script.fail(exit_code=4, logs="crash\n", after=1.0)
        result = PodRunner(cluster.backend).run(
            PodSpec(image="busybox:1.36", command=["false"], restart_policy="Always"), **kwargs
        )
        assert (result.reason, result.exit_code) == (Reason.CRASH_LOOP, 4)
        output, printed = result.logs, "crash\n"
    assert output == printed
    if stream:
        assert lines == printed.splitlines()
    assert managed(cluster) == set()


@pytest.mark.parametrize("after_lines", [0, 1, 2, 5, 11])
@pytest.mark.parametrize("split_utf8", [False, True], ids=["whole", "split-utf8"])
@pytest.mark.parametrize("times", [1, 3])
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
def test_log_stream_cut(after_lines: int, split_utf8: bool, times: int, stream: bool) -> None:
    """Log streams cut mid-line or mid-character lose nothing and double nothing."""
    cluster, runner, kwargs = scenario(stream)
    cluster.fault(
        verb="read_log", cut_log_after_lines=after_lines, split_utf8=split_utf8, times=times
    )
    result = run(runner, kwargs)
    assert result.logs == LOGS
    assert managed(cluster) == set()


# -- callbacks that raise -------------------------------------------------------------------

CALLBACK_ENTRY_POINTS = ["run", "start-wait", "logs", "run_many", "attach"]


class CallbackBoom(Exception):
    """What the user's callback raises."""


def raising(kind: type[BaseException], calls: list[str]) -> Any:
    def callback(arg: Any) -> None:
        calls.append(str(arg))
        raise kind("from the callback")

    return callback


@pytest.mark.timeout(120)
@pytest.mark.parametrize("entry", CALLBACK_ENTRY_POINTS)
@pytest.mark.parametrize("callback", ["on_log", "on_state"])
@pytest.mark.parametrize("error", [CallbackBoom, KeyboardInterrupt], ids=["exception", "ctrl-c"])
def test_callback_that_raises(entry: str, callback: str, error: type[BaseException]) -> None:
    """A callback's exception stops the run, reaches the caller, and nothing is left.

    The container would run for an hour: the run ends because the callback raised, not
    because the pod finished, and the exception is the callback's own (Ctrl-C included).
    A thread that let it escape would fail this test ("unhandled thread exception" warnings
    are errors in this suite).
    """
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=3600.0)
    runner = PodRunner(cluster.backend)
    calls: list[str] = []
    kwargs: dict[str, Any] = {callback: raising(error, calls)}

    def enter() -> None:
        if entry == "run":
            runner.run(SPEC, **kwargs)
        elif entry == "start-wait":
            with runner.start(SPEC, **kwargs) as handle:
                handle.wait()
        elif entry == "logs":
            with runner.start(SPEC, **kwargs) as handle:
                for _ in handle.logs():
                    pass
        elif entry == "run_many":
            for _ in runner.run_many([SPEC] * 3, **kwargs):
                pass
        else:
            first = runner.start(SPEC)
            with runner.attach(first.run_id, **kwargs) as handle:
                handle.wait()

    with pytest.raises(error, match="from the callback"):
        enter()
    # Each run called the callback once at most: a stopping run calls it no more.
    assert 1 <= len(calls) <= (3 if entry == "run_many" else 1)
    assert cluster.clock.monotonic() < 3600.0
    if entry == "attach":
        # An attached run knows only its pod; the cluster collects the Secret the pod owns.
        assert {name for name in managed(cluster) if name.startswith("Pod/")} == set()
    else:
        assert managed(cluster) == set()


def run_through(entry: str, runner: PodRunner, kwargs: dict[str, Any]) -> None:
    """Run :data:`SPEC` (three times for run_many) through one of the entry points."""
    if entry == "run":
        runner.run(SPEC, **kwargs)
    elif entry == "start-wait":
        with runner.start(SPEC, **kwargs) as handle:
            handle.wait()
    elif entry == "logs":
        with runner.start(SPEC, **kwargs) as handle:
            for _ in handle.logs():
                pass
    elif entry == "run_many":
        for _ in runner.run_many([SPEC] * 3, **kwargs):
            pass
    else:
        first = runner.start(SPEC)
        with runner.attach(first.run_id, **kwargs) as handle:
            handle.wait()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("entry", CALLBACK_ENTRY_POINTS)
@pytest.mark.parametrize("callback", ["on_log", "on_state"])
def test_slow_callback_that_raises(entry: str, callback: str) -> None:
    """A callback that takes its time before it raises still stops the run, in virtual time.

    The callback sleeps in real time, so every other thread runs before the exception is
    raised: the threads that wait on the fake's clock must not see everyone blocked and let
    virtual time run to the pod's end (the container would run for an hour). The log
    follower once did not hold the clock while it handled a line, so the clock jumped
    during the callback and the callback's error was lost or came too late.
    """
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=3600.0)
    runner = PodRunner(cluster.backend)
    calls: list[str] = []

    def slowly_raising(arg: Any) -> None:
        calls.append(str(arg))
        time.sleep(0.05)  # the other threads run meanwhile
        raise CallbackBoom("from the callback")

    with pytest.raises(CallbackBoom, match="from the callback"):
        run_through(entry, runner, {callback: slowly_raising})
    assert 1 <= len(calls) <= (3 if entry == "run_many" else 1)
    assert cluster.clock.monotonic() < 3600.0
    if entry != "attach":
        assert managed(cluster) == set()


# -- persistent faults in run_many ----------------------------------------------------------

MANY = 40


def left_behind(cluster: FakeCluster) -> dict[str, int]:
    counts = {"Pod": 0, "Secret": 0}
    for name in managed(cluster):
        counts[name.split("/")[0]] = counts.get(name.split("/")[0], 0) + 1
    return counts


@pytest.mark.timeout(120)
@pytest.mark.parametrize("max_parallel", [8, 64])
@pytest.mark.parametrize(
    "fault",
    ["missing-namespace", "pod-create-403", "secret-create-403", "patch-403", "watch-500"],
)
def test_run_many_persistent_fault_leaves_nothing(fault: str, max_parallel: int) -> None:
    """Whatever run_many raises, no pod or Secret it started is left afterwards."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=30.0)
    specs = [SPEC] * MANY
    expected_error: type[BackendError] = ServerError
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
        list(PodRunner(cluster.backend).run_many(specs, max_parallel=max_parallel))
    assert left_behind(cluster) == {"Pod": 0, "Secret": 0}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("max_parallel", [1, 8, 64])
def test_run_many_persistent_delete_failure_ends(max_parallel: int) -> None:
    """Deletes that keep failing end in a typed error (no hang on the virtual clock).

    Only the pods whose delete the API refused may remain; every Secret is deleted.
    """
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=5.0)
    refused = cluster.fault(verb="delete", kind="Pod", status=500)
    with pytest.raises(ServerError):
        for _ in PodRunner(cluster.backend).run_many([SPEC] * MANY, max_parallel=max_parallel):
            pass
    left = left_behind(cluster)
    assert left["Secret"] == 0
    assert 1 <= left["Pod"] <= min(max_parallel, MANY)
    assert refused.fired >= 5  # each refused delete was retried to the budget, then given up
    cluster.clear_faults()
    PodRunner(cluster.backend).reap(older_than=0)
    assert left_behind(cluster) == {"Pod": 0, "Secret": 0}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stop_after", [0, 1, 10])
@pytest.mark.parametrize("how", ["break", "close", "error"])
def test_run_many_stopped_by_its_caller_leaves_nothing(stop_after: int, how: str) -> None:
    """A caller that stops iterating (break, close, an exception) leaves nothing behind."""
    cluster = FakeCluster()
    # Runs of different lengths, so starts complete while earlier runs' results are yielded.
    specs = []
    for i in range(MANY):
        cluster.when(image=f"busybox:1.{i}").succeed(logs=LOGS, after=0.5 * (i % 7))
        specs.append(SPEC.with_image(f"busybox:1.{i}"))
    outcomes = PodRunner(cluster.backend).run_many(specs, max_parallel=16)
    seen = 0
    with pytest.raises(CallbackBoom) if how == "error" else contextlib.nullcontext():
        for _ in outcomes:
            if seen >= stop_after:
                if how == "close":
                    outcomes.close()  # type: ignore[attr-defined]
                if how == "error":
                    raise CallbackBoom
                break
            seen += 1
    if how != "close":
        del outcomes  # the generator is closed when it is dropped
    assert left_behind(cluster) == {"Pod": 0, "Secret": 0}


# -- empty watch streams --------------------------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize("clock", ["virtual", "real"])
@pytest.mark.parametrize("stream", [False, True], ids=["drain", "stream"])
def test_watch_streams_that_end_empty(clock: str, stream: bool) -> None:
    """Watches that close with no event back off and fall back to reading the pod."""
    cluster = FakeCluster(clock=clock)
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=0.5)
    cluster.fault(verb="watch", cut_watch_after=0)
    runner = PodRunner(cluster.backend)
    lines: list[str] = []
    result = runner.run(SPEC, on_log=lines.append if stream else None)
    assert (result.exit_code, result.logs) == (0, LOGS)
    if stream:
        assert lines == LOGS.splitlines()
    # A handful of reconnects, not a busy loop (which made hundreds of thousands).
    watches = sum(1 for action in cluster.actions if action[0] == "watch")
    assert watches < 40
    assert managed(cluster) == set()


@pytest.mark.timeout(120)
def test_run_many_with_watch_streams_that_end_empty() -> None:
    """run_many completes every run when every watch closes with no event."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs=LOGS, after=2.0)
    cluster.fault(verb="watch", cut_watch_after=0)
    results = list(PodRunner(cluster.backend).run_many([SPEC] * 10, max_parallel=4))
    assert [(r.exit_code, r.logs) for r in results] == [(0, LOGS)] * 10  # type: ignore[union-attr]
    assert managed(cluster) == set()
