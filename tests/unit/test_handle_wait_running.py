"""RunHandle.wait_running: wait for the container to run through the engine's watch and rules."""

from __future__ import annotations

import pytest

from podrunner import CleanupPolicy, Deadlines, PodRunner, PodSpec
from podrunner.errors import ImagePullError, PodLost, StartTimeout, Unschedulable
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.state import Phase
from podrunner.testing import FakeCluster

SPEC = PodSpec(image="busybox:1.36", command=["sh", "-c", "serve"])


def _pods(cluster: FakeCluster) -> list[str]:
    listed = cluster.backend.list("Pod", "default", label_selector=MANAGED_SELECTOR)
    return [pod["metadata"]["name"] for pod in listed.items]


def test_returns_the_running_pod_and_the_run_goes_on() -> None:
    """The pod comes back as soon as its container runs; the run is still there to wait for."""
    cluster = FakeCluster(start_delay=30)
    cluster.when(image="busybox:*").succeed(logs="served\n", after=60)
    runner = PodRunner(cluster.backend)
    with runner.start(SPEC) as handle:
        pod = handle.wait_running(timeout=120)
        assert pod["metadata"]["name"] == handle.pod_name
        assert pod["status"]["phase"] == "Running"
        assert pod["status"]["podIP"]  # what a caller typically waits for
        assert handle.state.phase is Phase.RUNNING
        assert 30 <= cluster.clock.monotonic() < 60
        result = handle.wait()
    assert result.ok
    assert result.logs == "served\n"
    assert _pods(cluster) == []


def test_waits_on_the_watch_without_polling() -> None:
    """Waiting is watching: no reads of the pod, however long it takes to start."""
    opened = []
    for delay in (1.0, 600.0):
        cluster = FakeCluster(start_delay=delay)
        cluster.when(image="busybox:*").hang()
        with PodRunner(cluster.backend).start(SPEC, cleanup=CleanupPolicy.NEVER) as handle:
            cluster.clear_actions()
            handle.wait_running(timeout=3600)
        assert {(a.verb, a.kind) for a in cluster.actions} == {("watch", "Pod")}
        opened.append(len(cluster.actions))
    # One stream; a long start reopens it when the server ends it (every minute).
    assert opened[0] == 1
    assert opened[1] <= 600 / 60 + 1


def test_a_timeout_does_not_stop_the_run() -> None:
    """When ``timeout`` passes, StartTimeout is raised and the pod is left to start."""
    cluster = FakeCluster(start_delay=100)
    cluster.when(image="busybox:*").succeed(after=10)
    runner = PodRunner(cluster.backend)
    with runner.start(SPEC) as handle:
        with pytest.raises(StartTimeout, match="not running within 5s") as info:
            handle.wait_running(timeout=5)
        assert info.value.pod_name == handle.pod_name
        assert info.value.state is not None
        assert info.value.state.phase is Phase.SCHEDULED
        assert _pods(cluster) == [handle.pod_name]  # not killed
        assert handle.wait_running()["status"]["phase"] == "Running"
        assert handle.wait().ok
    assert _pods(cluster) == []


def test_fails_fast_like_wait() -> None:
    """An image that cannot be pulled raises ImagePullError with the events; cleanup is done."""
    cluster = FakeCluster()
    cluster.when(image="busybox:*").image_pull_error()
    handle = PodRunner(cluster.backend).start(SPEC)
    start = cluster.clock.monotonic()
    with pytest.raises(ImagePullError) as info:
        handle.wait_running(timeout=3600)
    assert cluster.clock.monotonic() - start < 600
    assert any("ull" in event for event in info.value.events)
    assert _pods(cluster) == []  # the run is over, as after wait()
    with pytest.raises(ImagePullError) as again:
        handle.wait()
    assert again.value is info.value

    cluster = FakeCluster()
    cluster.when(image="busybox:*").unschedulable(message="0/1 nodes are available")
    with PodRunner(cluster.backend).start(SPEC) as handle, pytest.raises(Unschedulable):
        handle.wait_running()


def test_the_runs_own_start_deadline_applies() -> None:
    """The run's start deadline ends the run as wait() would: StartTimeout, pod deleted."""
    cluster = FakeCluster(start_delay=600)
    handle = PodRunner(cluster.backend).start(SPEC, deadlines=Deadlines(start=5))
    with pytest.raises(StartTimeout, match="not running within 5s"):
        handle.wait_running(timeout=3600)
    assert cluster.clock.monotonic() == pytest.approx(5, abs=0.5)
    assert _pods(cluster) == []


def test_a_pod_deleted_before_it_runs_is_lost() -> None:
    """Someone else deleting the pod while it starts raises PodLost instead of waiting on."""
    cluster = FakeCluster(start_delay=60)
    cluster.when(image="busybox:*").hang()
    runner = PodRunner(cluster.backend)
    with runner.start(SPEC, cleanup=CleanupPolicy.NEVER) as handle:
        cluster.backend.delete("Pod", "default", handle.pod_name, grace_period_seconds=0)
        with pytest.raises(PodLost):
            handle.wait_running(timeout=3600)


def test_a_pod_that_ended_before_it_was_seen_running_returns() -> None:
    """A pod whose status went straight to an end comes back; wait() has the result."""
    cluster = FakeCluster(start_delay=600)
    with PodRunner(cluster.backend).start(SPEC) as handle:
        ended = {"phase": "Failed", "message": "the node went away"}
        cluster.backend.patch(
            "Pod", "default", handle.pod_name, {"status": ended}, subresource="status"
        )
        pod = handle.wait_running(timeout=10)
        assert pod["status"]["phase"] == "Failed"
        assert handle.state.terminal
        assert handle.state.phase is Phase.FAILED
        result = handle.wait()
    assert not result.ok
    assert result.exit_code is None
    assert "the node went away" in result.message
    assert _pods(cluster) == []
