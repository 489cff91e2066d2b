"""PodRunner on the fake cluster: every lifecycle outcome, cleanup, logs, concurrency."""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest

from podrunner import (
    CleanupPolicy,
    Deadlines,
    PodRunner,
    PodSpec,
    SecretRef,
)
from podrunner._time import parse_rfc3339 as parse_timestamp
from podrunner.errors import (
    ImagePullError,
    PodFailed,
    PodLost,
    RunCancelled,
    RunTimeout,
    StartTimeout,
    Unschedulable,
)
from podrunner.manifest import MANAGED_SELECTOR, RUN_ID_LABEL
from podrunner.run import RunResult
from podrunner.run.state import Phase, Reason
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "echo hi"])


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def runner(cluster: FakeCluster) -> PodRunner:
    return PodRunner(cluster.backend, namespace="default")


def leftovers(cluster: FakeCluster) -> list[str]:
    """Names of every managed object still in the store."""
    out: list[str] = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = cluster.backend.list(kind, None, label_selector=MANAGED_SELECTOR)
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


def test_success_returns_output_and_exit_zero(cluster: FakeCluster, runner: PodRunner) -> None:
    """A scripted success returns exit 0, the exact output, and leaves nothing behind."""
    cluster.when(image="busybox:*").succeed(logs="hello\nworld\n", after=3.0)
    result = runner.run(SPEC)
    assert result.exit_code == 0
    assert result.ok
    assert result.logs == "hello\nworld\n"
    assert result.state.phase is Phase.SUCCEEDED
    assert result.duration >= 3.0
    assert leftovers(cluster) == []


def test_nonzero_exit_is_a_result_not_an_error(cluster: FakeCluster, runner: PodRunner) -> None:
    """Exit 3 is reported as a result with reason Error, like subprocess.run."""
    cluster.when(image="busybox:*").fail(exit_code=3, logs="boom\n")
    result = runner.run(SPEC)
    assert (result.exit_code, result.reason, result.logs) == (3, Reason.ERROR, "boom\n")
    assert not result.ok


def test_check_raises_pod_failed_with_result(cluster: FakeCluster, runner: PodRunner) -> None:
    """check=True raises PodFailed carrying the full result; the pod is still cleaned up."""
    cluster.when(image="busybox:*").fail(exit_code=2, logs="bad\n")
    with pytest.raises(PodFailed) as info:
        runner.run(SPEC, check=True)
    assert info.value.result.exit_code == 2
    assert info.value.result.logs == "bad\n"
    assert leftovers(cluster) == []


def test_oom_killed_is_a_result(cluster: FakeCluster, runner: PodRunner) -> None:
    """OOMKilled is a result with reason OOM_KILLED and exit code 137."""
    cluster.when(image="busybox:*").oom(after=1.0)
    result = runner.run(SPEC)
    assert result.reason is Reason.OOM_KILLED
    assert result.exit_code == 137


def test_image_pull_error_fails_fast_with_events(cluster: FakeCluster, runner: PodRunner) -> None:
    """An image pull error raises at once (not after the timeout) and names the events."""
    cluster.when(image="busybox:*").image_pull_error()
    start = cluster.clock.monotonic()
    with pytest.raises(ImagePullError) as info:
        runner.run(SPEC, timeout=3600)
    assert cluster.clock.monotonic() - start < 600
    assert any("Pull" in e or "pull" in e for e in info.value.events)
    assert info.value.pod_name
    assert leftovers(cluster) == []


def test_unschedulable_fails_fast(cluster: FakeCluster, runner: PodRunner) -> None:
    """An unschedulable pod raises Unschedulable with the scheduler's message and event."""
    cluster.when(image="busybox:*").unschedulable(message="0/1 nodes are available")
    with pytest.raises(Unschedulable) as info:
        runner.run(SPEC, timeout=3600)
    assert "0/1 nodes" in str(info.value)
    assert any(e.startswith("FailedScheduling") for e in info.value.events)
    assert leftovers(cluster) == []


def test_eviction_is_pod_lost(cluster: FakeCluster, runner: PodRunner) -> None:
    """An evicted pod raises PodLost."""
    cluster.when(image="busybox:*").evict(after=5.0)
    with pytest.raises(PodLost, match="evicted"):
        runner.run(SPEC)
    assert leftovers(cluster) == []


def test_total_timeout_kills_and_raises(cluster: FakeCluster, runner: PodRunner) -> None:
    """A hanging pod hits the total timeout in virtual time; the pod is deleted."""
    cluster.when(image="busybox:*").hang()
    with pytest.raises(RunTimeout) as info:
        runner.run(SPEC, timeout=30)
    assert "30s" in str(info.value)
    assert leftovers(cluster) == []


def test_active_deadline_is_a_result(cluster: FakeCluster, runner: PodRunner) -> None:
    """The cluster's activeDeadlineSeconds ends the run with reason DeadlineExceeded."""
    cluster.when(image="busybox:*").hang()
    spec = PodSpec(image="busybox:1.36", command=["sleep", "inf"], active_deadline_seconds=20)
    result = runner.run(spec, timeout=3600)
    assert result.reason is Reason.DEADLINE_EXCEEDED


def test_total_deadline_is_written_as_active_deadline(
    cluster: FakeCluster, runner: PodRunner
) -> None:
    """The total budget plus the margin becomes the pod's activeDeadlineSeconds."""
    runner.run(SPEC, timeout=100, cleanup=CleanupPolicy.NEVER)
    (pod,) = cluster.backend.list("Pod", "default").items
    assert pod["spec"]["activeDeadlineSeconds"] == 130
    assert "podrunner.dev/expires-at" in pod["metadata"]["annotations"]


def test_scheduling_deadline() -> None:
    """A pod the scheduler does not get to in time ends in StartTimeout, and is deleted."""
    slow = FakeCluster(schedule_delay=600)
    with pytest.raises(StartTimeout, match="not scheduled within 5s") as info:
        PodRunner(slow.backend).run(SPEC, deadlines=Deadlines(scheduling=5))
    assert slow.clock.monotonic() == pytest.approx(5, abs=0.5)
    assert info.value.state is not None
    assert info.value.state.phase is Phase.PENDING
    assert leftovers(slow) == []


def test_start_deadline() -> None:
    """A scheduled pod whose containers do not start in time ends in StartTimeout."""
    slow = FakeCluster(start_delay=600)
    with pytest.raises(StartTimeout, match="not running within 5s") as info:
        PodRunner(slow.backend).run(SPEC, deadlines=Deadlines(start=5))
    assert slow.clock.monotonic() == pytest.approx(5, abs=0.5)
    assert info.value.state is not None
    assert info.value.state.phase is Phase.SCHEDULED
    assert leftovers(slow) == []


def test_virtual_hour_returns_at_once(cluster: FakeCluster, runner: PodRunner) -> None:
    """A run scripted to take one virtual hour completes without waiting an hour."""
    cluster.when(image="busybox:*").succeed(logs="done\n", after=3600.0)
    result = runner.run(SPEC, timeout=7200)
    assert result.ok
    assert result.duration >= 3600


def test_deleted_externally_is_pod_lost(cluster: FakeCluster, runner: PodRunner) -> None:
    """Someone else deleting the pod mid-run raises PodLost instead of hanging."""
    cluster.when(image="busybox:*").hang()

    def on_state(state: Any) -> None:
        if state.phase is Phase.RUNNING:
            (pod,) = cluster.backend.list("Pod", "default").items
            cluster.backend.delete(
                "Pod", "default", pod["metadata"]["name"], grace_period_seconds=0
            )

    with pytest.raises(PodLost):
        runner.run(SPEC, timeout=600, on_state=on_state)
    assert leftovers(cluster) == []


def test_cancel(cluster: FakeCluster, runner: PodRunner) -> None:
    """cancel() deletes the pod and wait() raises RunCancelled."""
    cluster.when(image="busybox:*").hang()
    handle = runner.start(SPEC)
    handle.cancel()
    with pytest.raises(RunCancelled):
        handle.wait()
    assert leftovers(cluster) == []


def test_keyboard_interrupt_cleans_up_and_propagates(
    cluster: FakeCluster, runner: PodRunner
) -> None:
    """Ctrl-C while waiting propagates as KeyboardInterrupt after the pod is deleted."""
    cluster.when(image="busybox:*").hang()

    def on_state(state: Any) -> None:
        if state.phase is Phase.RUNNING:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(SPEC, on_state=on_state)
    assert leftovers(cluster) == []


def test_cleanup_never_keeps_everything(cluster: FakeCluster, runner: PodRunner) -> None:
    """CleanupPolicy.NEVER keeps the pod and its Secret."""
    spec = SPEC.with_secret_env(TOKEN="s3cret")
    runner.run(spec, cleanup=CleanupPolicy.NEVER)
    kinds = sorted(name.split("/")[0] for name in leftovers(cluster))
    assert kinds == ["Pod", "Secret"]


def test_cleanup_on_success_keeps_failed_terminated_pod(
    cluster: FakeCluster, runner: PodRunner
) -> None:
    """ON_SUCCESS keeps a failed run's terminated pod for inspection."""
    cluster.when(image="busybox:*").fail(exit_code=1)
    runner.run(SPEC, cleanup=CleanupPolicy.ON_SUCCESS)
    assert len(cluster.backend.list("Pod", "default").items) == 1


def test_cleanup_on_success_never_keeps_a_running_pod(
    cluster: FakeCluster, runner: PodRunner
) -> None:
    """ON_SUCCESS deletes a pod that is still running when the run times out."""
    cluster.when(image="busybox:*").hang()
    with pytest.raises(RunTimeout):
        runner.run(SPEC, timeout=10, cleanup=CleanupPolicy.ON_SUCCESS)
    assert leftovers(cluster) == []


def test_secret_is_owned_by_pod_and_never_in_manifest(
    cluster: FakeCluster, runner: PodRunner
) -> None:
    """A per-run Secret is created, owned by the pod, referenced, and removed after."""
    spec = SPEC.with_secret_env(API_KEY="sk-very-secret")
    handle = runner.start(spec)
    pod = cluster.backend.get("Pod", "default", handle.pod_name)
    assert "sk-very-secret" not in repr(pod)
    secret_name = handle.manifests.secret["metadata"]["name"]  # type: ignore[index,union-attr]
    secret = cluster.backend.get("Secret", "default", secret_name)
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Pod",
        pod["metadata"]["name"],
        pod["metadata"]["uid"],
    )
    handle.wait()
    handle.close()
    assert leftovers(cluster) == []


def test_secret_ref_needs_no_secret(cluster: FakeCluster, runner: PodRunner) -> None:
    """A reference to an existing Secret creates no per-run Secret."""
    spec = SPEC.with_secret_env(API_KEY=SecretRef("existing", "key"))
    handle = runner.start(spec, cleanup=CleanupPolicy.ALWAYS)
    assert handle.manifests is not None
    assert handle.manifests.secret is None
    handle.cancel()
    with pytest.raises(RunCancelled):
        handle.wait()


def test_on_log_streams_lines(cluster: FakeCluster, runner: PodRunner) -> None:
    """on_log sees every line once, in order, and the result holds the same output."""
    cluster.when(image="busybox:*").succeed(
        logs="".join(f"line {i}\n" for i in range(50)), after=10
    )
    lines: list[str] = []
    result = runner.run(SPEC, on_log=lines.append)
    assert lines == [f"line {i}" for i in range(50)]
    assert result.logs == "".join(f"line {i}\n" for i in range(50))


def test_handle_logs_iterator(cluster: FakeCluster, runner: PodRunner) -> None:
    """RunHandle.logs() yields the lines and ends when the container does."""
    cluster.when(image="busybox:*").succeed(logs="a\nb\n", after=5)
    with runner.start(SPEC) as handle:
        assert list(handle.logs()) == ["a", "b"]
        assert handle.wait().logs == "a\nb\n"
    assert leftovers(cluster) == []


NEVER_ENDING_LOGS = "".join(f"out {i} ✓\n" for i in range(20)) + "no newline at the end"


def _epoch(text: str | None) -> float:
    assert text is not None
    ts = parse_timestamp(text)
    assert ts is not None
    return ts[0] + ts[1] / 1e9


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cut", [None, 0, 7], ids=["whole", "cut-at-once", "cut-mid"])
@pytest.mark.parametrize("how", ["run", "on_log", "logs", "logs+on_log"])
def test_log_follow_that_never_ends(cluster: FakeCluster, how: str, cut: int | None) -> None:
    """A followed log that stays open after the container ended (kwok, some kubelets).

    The run ends when the status says the container terminated, without waiting for the
    stream: the result (and ``run()``) comes at that virtual instant, ``logs()`` ends, and
    the output is exact, each line streamed once.
    """
    cluster.when(image="busybox:*").succeed(logs=NEVER_ENDING_LOGS, after=5.0)
    cluster.fault(verb="read_log", follow_never_ends=True)
    if cut is not None:
        cluster.fault(verb="read_log", cut_log_after_lines=cut, times=1)
    runner = PodRunner(cluster.backend)
    streamed: list[str] = []
    on_log = streamed.append if "on_log" in how else None
    iterated: list[str] | None = None
    if how.startswith("logs"):
        with runner.start(SPEC, on_log=on_log) as handle:
            iterated = list(handle.logs())
            result = handle.wait()
    else:
        result = runner.run(SPEC, on_log=on_log)
    assert (result.exit_code, result.logs) == (0, NEVER_ENDING_LOGS)
    expected = NEVER_ENDING_LOGS.splitlines()
    if on_log is not None:
        assert streamed == expected
    if iterated is not None:
        assert iterated == expected
    # Nothing waited for the stream to end: the run returned when the container finished
    # (virtual time, to the second the status carries).
    assert cluster.clock.now() - _epoch(result.finished_at) < 2.0
    assert leftovers(cluster) == []


def follower_threads(pod_name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"podrunner-logs-{pod_name}"]


@pytest.mark.parametrize("recorded", [False, True], ids=["plain", "recorded"])
@pytest.mark.parametrize("cleanup", [CleanupPolicy.ALWAYS, CleanupPolicy.NEVER])
def test_log_follower_is_stopped(
    cluster: FakeCluster, cleanup: CleanupPolicy, recorded: bool
) -> None:
    """The follower of a never-ending log stream ends with the run, even if the pod is kept.

    ``recorded``: the stream is wrapped, as the pytest plugin's log recorder wraps it; the
    wrapper must still let the runner close the stream from another thread.
    """
    cluster.when(image="busybox:*").succeed(logs="a\nb\n", after=5.0)
    cluster.fault(verb="read_log", follow_never_ends=True)
    if recorded:
        from podrunner.testing._recording import LogRecorder, record_fake_logs

        record_fake_logs(cluster, LogRecorder())
    lines: list[str] = []
    result = PodRunner(cluster.backend).run(SPEC, on_log=lines.append, cleanup=cleanup)
    assert (lines, result.logs) == (["a", "b"], "a\nb\n")
    for thread in follower_threads(result.pod_name):
        thread.join(30)  # a bound for a broken build only: it ends at once
        assert not thread.is_alive()


@pytest.mark.parametrize("how", ["run", "on_log", "on_state", "logs", "run_many"])
def test_a_finished_run_is_freed_without_the_garbage_collector(
    cluster: FakeCluster, runner: PodRunner, how: str
) -> None:
    """Once the caller lets go, a finished run's objects (its pods, its log) are freed at once.

    A reference cycle between the run's parts kept every run in memory until the garbage
    collector found it (which, with many runs, is most of what the collector does).
    """
    cluster.when(image="busybox:*").succeed(logs="a\nb\n", after=1.0)

    def one_run() -> None:
        if how == "run":
            runner.run(SPEC)
        elif how in ("on_log", "on_state"):
            runner.run(SPEC, **{how: lambda _: None})
        elif how == "logs":
            with runner.start(SPEC) as handle:
                assert list(handle.logs()) == ["a", "b"]
                handle.wait()
        else:
            assert all(r.ok for r in runner.run_many([SPEC] * 3))  # type: ignore[union-attr]

    one_run()  # whatever is made once (the shared watch, caches) is made now
    gc.collect()
    gc.disable()
    try:
        one_run()
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_log_cap_keeps_tail(cluster: FakeCluster) -> None:
    """With a cap the result keeps the tail and says it was truncated."""
    cluster.when(image="busybox:*").succeed(logs="".join(f"{i:04d}\n" for i in range(1000)))
    result = PodRunner(cluster.backend, log_limit_bytes=100).run(SPEC)
    assert result.logs_truncated
    assert result.logs.endswith("0999\n")
    assert len(result.logs) <= 100


def test_requests_per_run(cluster: FakeCluster, runner: PodRunner) -> None:
    """A successful run costs create, one watch, one log read and a delete."""
    cluster.when(image="busybox:*").succeed(logs="x\n", after=1)
    before = len(cluster.actions)
    runner.run(SPEC)
    verbs = [(a.verb, a.kind) for a in cluster.actions[before:]]
    assert verbs.count(("create", "Pod")) == 1
    assert sum(1 for v in verbs if v[0] == "watch") == 1
    assert verbs.count(("delete", "Pod")) == 1
    assert len(verbs) <= 5, verbs


def test_run_many_shares_one_watch(cluster: FakeCluster) -> None:
    """Many concurrent runs all succeed with their own output over at most 2 watch streams."""
    # Each container prints its own argument, so a run handed another's log would show.
    cluster.when(image="busybox:*").run(lambda ctx: (0, " ".join(ctx.argv[1:]) + "\n", 5))
    runner = PodRunner(cluster.backend)
    specs = [
        PodSpec(image="busybox:1.36", command=["echo", str(i)], labels={"i": str(i)})
        for i in range(60)
    ]
    results = list(runner.run_many(specs, max_parallel=30))
    assert len(results) == 60
    assert all(not isinstance(r, Exception) and r.ok for r in results)
    assert sorted(r.logs for r in results) == sorted(f"{i}\n" for i in range(60))
    assert runner.watch_stats()["peak_open_streams"] <= 2
    assert leftovers(cluster) == []


def test_run_many_leaves_no_reader_or_stream_behind(cluster: FakeCluster) -> None:
    """When run_many returns its watch reader is gone, no stream is open, and time is still.

    A reader left blocked on the shared stream would keep a connection open on a real cluster
    and let the fake's virtual time jump to the stream's timeout after run_many returned.
    """
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=30)
    runner = PodRunner(cluster.backend)
    specs = [SPEC.with_labels(i=str(i)) for i in range(20)]
    results = list(runner.run_many(specs, max_parallel=20))
    assert all(not isinstance(r, Exception) and r.ok for r in results)
    assert not [t for t in threading.enumerate() if t.name == "podrunner-watch"]
    assert runner.watch_stats()["open_streams"] == 0
    assert cluster.clock.waiting() == 0
    ended = cluster.clock.monotonic()
    time.sleep(0.05)  # five idle graces: long enough for a lingering reader to jump time
    assert cluster.clock.monotonic() == ended


def test_a_run_after_run_many_opens_one_stream(cluster: FakeCluster) -> None:
    """Stopping run_many's reader leaves no request behind that makes the next run reopen."""
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=30)
    runner = PodRunner(cluster.backend)
    for round_ in range(5):
        specs = [SPEC.with_labels(i=f"{round_}-{i}") for i in range(10)]
        assert all(r.ok for r in runner.run_many(specs, max_parallel=10))  # type: ignore[union-attr]
        before = runner.watch_stats()["streams_opened"]
        assert runner.run(SPEC).ok
        assert runner.watch_stats()["streams_opened"] - before == 1


def test_the_reader_role_goes_to_a_run_that_waits() -> None:
    """When the reader leaves, a run blocked waiting takes over, not a run nobody waits on.

    Handing the role to a started but unwaited run lost the wake-up: the waiting run then
    slept forever, because nobody read the shared stream any more.
    """
    cluster = FakeCluster(clock="real")
    cluster.when(image="idle:*").succeed(logs="a\n", after=0.1)
    cluster.when(image="slow:*").succeed(logs="b\n", after=0.6)
    cluster.when(image="fast:*").succeed(logs="c\n", after=0.2)
    runner = PodRunner(cluster.backend)
    unwaited = runner.start(PodSpec(image="idle:1", command=["true"]))
    slow = runner.start(PodSpec(image="slow:1", command=["true"]))
    fast = runner.start(PodSpec(image="fast:1", command=["true"]))
    results: dict[str, Any] = {}

    def wait(name: str, handle: Any) -> None:
        results[name] = handle.wait()

    first = threading.Thread(target=wait, args=("fast", fast), daemon=True)
    first.start()
    while not runner.watch_stats()["streams_opened"]:  # the fast run leads the stream
        time.sleep(0.005)
    second = threading.Thread(target=wait, args=("slow", slow), daemon=True)
    second.start()
    first.join(10)
    second.join(10)
    try:
        assert results["fast"].logs == "c\n"
        assert not second.is_alive(), "the waiting run never got the reader role"
        assert results["slow"].logs == "b\n"
    finally:
        unwaited.close()
        slow.close()
        fast.close()


class _SlowWatch:
    """A backend whose watch events reach the runner late (in real time, after the fake)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def watch(self, *args: Any, **kwargs: Any) -> Any:
        stream = self._inner.watch(*args, **kwargs)

        def late() -> Any:
            for event in stream:
                time.sleep(0.02)  # out of the fake, not yet with the runner
                yield event

        return late()


def test_run_many_reader_holds_virtual_time_while_it_hands_out_events() -> None:
    """Virtual time waits for run_many's reader between reading an event and delivering it.

    Without its clock hold, the reader was outside the fake and unaccounted for there: the
    consumer, waiting until the runs' deadline, saw everyone blocked and time jumped to it.
    """
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=10)
    runner = PodRunner(_SlowWatch(cluster.backend))
    results = list(runner.run_many([SPEC.with_labels(i=str(i)) for i in range(2)], timeout=100))
    assert all(isinstance(r, RunResult) and r.ok for r in results)
    assert cluster.clock.monotonic() < 100


def test_run_many_runs_concurrently_in_virtual_time(cluster: FakeCluster) -> None:
    """Concurrent runs overlap in virtual time as they would on a real cluster."""
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=30)
    runner = PodRunner(cluster.backend)
    specs = [SPEC.with_labels(i=str(i)) for i in range(40)]
    results = list(runner.run_many(specs, max_parallel=40, timeout=60))
    assert all(isinstance(r, RunResult) and r.ok for r in results)
    # 40 runs of 30 s each, all in flight at once: they finish within about 30 s of each
    # other, not 40 x 30 s apart.
    finished = sorted(
        parse_timestamp(r.finished_at)[0]  # type: ignore[arg-type,index,union-attr]
        for r in results
    )
    assert finished[-1] - finished[0] < 30


def test_run_many_yields_errors(cluster: FakeCluster) -> None:
    """run_many yields a RunError for a run that could not run, and results for the rest."""
    cluster.when(labels={"bad": "yes"}).image_pull_error()
    runner = PodRunner(cluster.backend)
    specs = [SPEC, SPEC.with_labels(bad="yes"), SPEC]
    outcomes = list(runner.run_many(specs))
    assert sum(isinstance(o, ImagePullError) for o in outcomes) == 1
    assert sum(not isinstance(o, Exception) for o in outcomes) == 2


def test_attach_picks_up_a_run(cluster: FakeCluster, runner: PodRunner) -> None:
    """attach(run_id) follows a pod another runner started and returns its result."""
    cluster.when(image="busybox:*").succeed(logs="later\n", after=50)
    first = runner.start(SPEC)
    other = PodRunner(cluster.backend)
    handle = other.attach(first.run_id)
    assert handle.pod_name == first.pod_name
    assert handle.wait().logs == "later\n"


def test_reap_deletes_expired_objects(cluster: FakeCluster, runner: PodRunner) -> None:
    """reap() removes managed objects whose expiry passed and keeps the others."""
    cluster.when(image="busybox:*").hang()
    handle = runner.start(SPEC.with_secret_env(K="v"), timeout=100)
    assert runner.reap().deleted == ()
    cluster.advance(1000)
    report = runner.reap()
    assert {k for k, _, _ in report.deleted} == {"Pod", "Secret"}
    assert leftovers(cluster) == []
    handle.close()


def test_run_id_label_on_everything(cluster: FakeCluster, runner: PodRunner) -> None:
    """Every object a run creates carries its run id."""
    handle = runner.start(SPEC.with_secret_env(K="v"))
    for kind in ("Pod", "Secret"):
        items = cluster.backend.list(
            kind, "default", label_selector=f"{RUN_ID_LABEL}={handle.run_id}"
        ).items
        assert len(items) == 1
    handle.cancel()
    with pytest.raises(RunCancelled):
        handle.wait()


def test_concurrent_run_calls_from_threads(cluster: FakeCluster) -> None:
    """run() from several threads at once shares one runner safely."""
    cluster.when(image="busybox:*").succeed(logs="ok\n", after=2)
    runner = PodRunner(cluster.backend)
    results: list[Any] = []

    def work() -> None:
        results.append(runner.run(SPEC))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8
    assert all(r.logs == "ok\n" for r in results)
