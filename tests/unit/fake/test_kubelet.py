from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from fakepods import pod

if TYPE_CHECKING:
    from podrunner.backends.fake import ContainerContext, FakeCluster


def _status(cluster: FakeCluster, name: str = "a") -> dict[str, Any]:
    status: dict[str, Any] = cluster.backend.get("Pod", "default", name)["status"]
    return status


def _container(cluster: FakeCluster, name: str = "a") -> dict[str, Any]:
    container: dict[str, Any] = _status(cluster, name)["containerStatuses"][0]
    return container


def _conditions(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def _reasons(cluster: FakeCluster, name: str = "a") -> list[str]:
    return [e["reason"] for e in cluster.events(pod=name)]


def test_unscripted_pod_succeeds_with_realistic_status(cluster: FakeCluster) -> None:
    """An unscripted pod is scheduled, runs and succeeds with the statuses a kubelet writes."""
    cluster.backend.create(pod("a"))
    cluster.advance(0)
    status = _status(cluster)
    assert status["phase"] == "Pending"
    assert _container(cluster)["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert _conditions(status) == {
        "PodReadyToStartContainers": "False",
        "Initialized": "True",
        "Ready": "False",
        "ContainersReady": "False",
        "PodScheduled": "True",
    }
    assert cluster.backend.get("Pod", "default", "a")["spec"]["nodeName"] == "fake-node-1"
    assert status["hostIP"] == "127.0.0.1"
    assert status["podIP"].startswith("10.244.")
    cluster.advance(5)
    status = _status(cluster)
    assert status["phase"] == "Succeeded"
    term = _container(cluster)["state"]["terminated"]
    assert term["exitCode"] == 0
    assert term["reason"] == "Completed"
    assert term["containerID"].startswith("containerd://")
    assert {"startedAt", "finishedAt"} <= set(term)
    assert _conditions(status)["Ready"] == "False"
    assert b"".join(cluster.backend.read_log("default", "a")) == b""
    assert _reasons(cluster) == ["Scheduled", "Pulling", "Pulled", "Created", "Started"]


def test_running_state(cluster: FakeCluster) -> None:
    """A hanging container is Running, ready, with startedAt."""
    cluster.when(name="a").hang()
    cluster.backend.create(pod("a"))
    cluster.advance(2)
    status = _status(cluster)
    assert status["phase"] == "Running"
    assert _conditions(status)["Ready"] == "True"
    assert "startedAt" in _container(cluster)["state"]["running"]
    assert _container(cluster)["ready"] is True


def test_fail_with_exit_code(cluster: FakeCluster) -> None:
    """fail() terminates with the exit code and reason; the pod is Failed."""
    cluster.when(image="busybox:*").fail(exit_code=3, logs="boom\n", after=10)
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    assert _status(cluster)["phase"] == "Running"
    cluster.advance(10)
    assert _status(cluster)["phase"] == "Failed"
    term = _container(cluster)["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (3, "Error")
    assert b"".join(cluster.backend.read_log("default", "a")) == b"boom\n"


def test_oom(cluster: FakeCluster) -> None:
    """oom() ends with 137 OOMKilled."""
    cluster.when(name="a").oom(after=1)
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    term = _container(cluster)["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (137, "OOMKilled")


def test_image_pull_error(cluster: FakeCluster) -> None:
    """An image pull error goes ErrImagePull then ImagePullBackOff and stays Pending."""
    cluster.when(image="private/*").image_pull_error()
    cluster.backend.create(pod("a", image="private/x:1"))
    cluster.advance(1)
    assert _container(cluster)["state"]["waiting"]["reason"] == "ErrImagePull"
    cluster.advance(100)
    assert _status(cluster)["phase"] == "Pending"
    assert _container(cluster)["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert "BackOff" in _reasons(cluster)
    failed = [e for e in cluster.events(pod="a") if e["reason"] == "Failed"]
    assert failed[0]["type"] == "Warning"
    assert failed[0]["message"].startswith('Failed to pull image "private/x:1"')


def test_unschedulable(cluster: FakeCluster) -> None:
    """An unschedulable pod gets PodScheduled False, a FailedScheduling event, stays Pending."""
    cluster.when(name="a").unschedulable(message="0/1 nodes are available: 1 Insufficient memory.")
    cluster.backend.create(pod("a"))
    cluster.advance(60)
    status = _status(cluster)
    assert status["phase"] == "Pending"
    cond = status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "PodScheduled",
        "False",
        "Unschedulable",
    )
    event = cluster.events(pod="a")[0]
    assert (event["reason"], event["type"], event["source"]["component"]) == (
        "FailedScheduling",
        "Warning",
        "default-scheduler",
    )


def test_evicted(cluster: FakeCluster) -> None:
    """An evicted pod is Failed with reason Evicted and a DisruptionTarget condition."""
    cluster.when(name="a").evict(after=3)
    cluster.backend.create(pod("a"))
    cluster.advance(10)
    status = _status(cluster)
    assert (status["phase"], status["reason"]) == ("Failed", "Evicted")
    assert "low on resource" in status["message"]
    assert _conditions(status)["DisruptionTarget"] == "True"
    assert "Evicted" in _reasons(cluster)


def test_active_deadline(cluster: FakeCluster) -> None:
    """ActiveDeadlineSeconds fails the pod with reason DeadlineExceeded."""
    cluster.when(name="a").hang()
    cluster.backend.create(pod("a", activeDeadlineSeconds=30))
    cluster.advance(29)
    assert _status(cluster)["phase"] == "Running"
    cluster.advance(2)
    status = _status(cluster)
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert _container(cluster)["state"]["terminated"]["exitCode"] == 137
    assert "DeadlineExceeded" in _reasons(cluster)


@pytest.mark.parametrize("policy", ["OnFailure", "Always"])
def test_restart_with_backoff(cluster: FakeCluster, policy: str) -> None:
    """A failing container restarts with exponential back-off in CrashLoopBackOff."""
    cluster.when(name="a").crash_loop(exit_code=2, logs="oops\n")
    cluster.backend.create(pod("a", restartPolicy=policy))
    cluster.advance(1)
    container = _container(cluster)
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert container["restartCount"] == 1
    assert container["lastState"]["terminated"]["exitCode"] == 2
    assert _status(cluster)["phase"] == "Running"
    cluster.advance(10)  # first back-off: 10 s
    assert _container(cluster)["restartCount"] == 2
    cluster.advance(20)  # then 20 s
    assert _container(cluster)["restartCount"] == 3
    assert "BackOff" in _reasons(cluster)
    previous = b"".join(cluster.backend.read_log("default", "a", previous=True))
    assert previous == b"oops\n"


def test_crash_loop_then_success(cluster: FakeCluster) -> None:
    """crash_loop(restarts=2) fails twice and then succeeds (OnFailure)."""
    cluster.when(name="a").crash_loop(restarts=2)
    cluster.backend.create(pod("a", restartPolicy="OnFailure"))
    cluster.advance(1000)
    assert _status(cluster)["phase"] == "Succeeded"
    assert _container(cluster)["restartCount"] == 2


def test_never_policy_does_not_restart(cluster: FakeCluster) -> None:
    """With restartPolicy Never a failure is final."""
    cluster.when(name="a").crash_loop()
    cluster.backend.create(pod("a"))
    cluster.advance(1000)
    assert _status(cluster)["phase"] == "Failed"
    assert _container(cluster)["restartCount"] == 0


def test_run_callable_decides(cluster: FakeCluster) -> None:
    """A run() callable sees the container and returns exit code, logs and duration."""
    seen: list[ContainerContext] = []

    def script(ctx: ContainerContext) -> tuple[int, str, float]:
        seen.append(ctx)
        return 4, f"argv={ctx.argv} env={ctx.env['X']}\n", 7.0

    cluster.when(name="a").run(script)
    manifest = pod("a")
    manifest["spec"]["containers"][0]["env"] = [{"name": "X", "value": "1"}]
    cluster.backend.create(manifest)
    cluster.advance(5)
    assert _status(cluster)["phase"] == "Running"
    cluster.advance(5)
    assert _container(cluster)["state"]["terminated"]["exitCode"] == 4
    assert seen[0].container == "c"
    assert b"".join(cluster.backend.read_log("default", "a")) == b"argv=['true'] env=1\n"


def test_run_callable_exception_fails_container(cluster: FakeCluster) -> None:
    """A run() callable that raises fails the container with exit code 1."""

    def script(ctx: ContainerContext) -> int:
        raise RuntimeError("nope")

    cluster.when(name="a").run(script)
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    assert _container(cluster)["state"]["terminated"]["exitCode"] == 1
    assert b"nope" in b"".join(cluster.backend.read_log("default", "a"))


@pytest.mark.parametrize(
    ("annotations", "phase", "reason", "code"),
    [
        (
            {"sim.podrunner.dev/exit-code": "7", "sim.podrunner.dev/duration": "30"},
            "Failed",
            "Error",
            7,
        ),
        ({"sim.podrunner.dev/failure": "OOMKilled"}, "Failed", "OOMKilled", 137),
        ({"sim.podrunner.dev/logs": "hello\n"}, "Succeeded", "Completed", 0),
    ],
)
def test_simulation_annotations(
    cluster: FakeCluster, annotations: dict[str, str], phase: str, reason: str, code: int
) -> None:
    """The simulation annotations script exit code, duration, logs and failures."""
    cluster.backend.create(pod("a", annotations=annotations))
    cluster.advance(20)
    if "sim.podrunner.dev/duration" in annotations:
        assert _status(cluster)["phase"] == "Running"
        cluster.advance(20)
    assert _status(cluster)["phase"] == phase
    term = _container(cluster)["state"]["terminated"]
    assert (term["reason"], term["exitCode"]) == (reason, code)
    logs = b"".join(cluster.backend.read_log("default", "a"))
    assert logs == annotations.get("sim.podrunner.dev/logs", "").encode()


def test_annotation_failures(cluster: FakeCluster) -> None:
    """ImagePullBackOff, Unschedulable and Evicted annotations produce those failures."""
    for name, failure in (("i", "ImagePullBackOff"), ("u", "Unschedulable"), ("e", "Evicted")):
        cluster.backend.create(pod(name, annotations={"sim.podrunner.dev/failure": failure}))
    cluster.advance(60)
    assert _container(cluster, "i")["state"]["waiting"]["reason"] == "ImagePullBackOff"
    assert _status(cluster, "u")["conditions"][0]["reason"] == "Unschedulable"
    assert _status(cluster, "e")["reason"] == "Evicted"


def test_newest_rule_wins_and_times(cluster: FakeCluster) -> None:
    """The newest matching rule decides; times= limits how many pods a rule takes."""
    cluster.when(image="busybox:*").fail(exit_code=1)
    cluster.when(labels={"team": "x"}, times=1).fail(exit_code=9)
    cluster.backend.create(pod("a", labels={"team": "x"}))
    cluster.backend.create(pod("b", labels={"team": "x"}))
    cluster.advance(10)
    assert _container(cluster, "a")["state"]["terminated"]["exitCode"] == 9
    assert _container(cluster, "b")["state"]["terminated"]["exitCode"] == 1


def test_command_rule(cluster: FakeCluster) -> None:
    """Rules can match the container's command by glob."""
    cluster.when(command="sh -c *").fail(exit_code=5)
    manifest = pod("a")
    manifest["spec"]["containers"][0]["command"] = ["sh", "-c", "exit 5"]
    cluster.backend.create(manifest)
    cluster.backend.create(pod("b"))
    cluster.advance(10)
    assert _container(cluster, "a")["state"]["terminated"]["exitCode"] == 5
    assert _container(cluster, "b")["state"]["terminated"]["exitCode"] == 0


def test_event_aggregation(cluster: FakeCluster) -> None:
    """Repeated identical events are aggregated with a count, like the client-go recorder."""
    cluster.when(name="a").crash_loop()
    cluster.backend.create(pod("a", restartPolicy="Always"))
    cluster.advance(200)
    backoff = [e for e in cluster.events(pod="a") if e["reason"] == "BackOff"]
    assert len(backoff) == 1
    assert backoff[0]["count"] > 1
    assert backoff[0]["involvedObject"]["fieldPath"] == "spec.containers{c}"
    assert backoff[0]["firstTimestamp"] < backoff[0]["lastTimestamp"]


def test_events_expire_after_the_event_ttl() -> None:
    """Events are deleted an hour after their last update, as with --event-ttl=1h."""
    from podrunner.backends.fake import FakeCluster

    cluster = FakeCluster()
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    assert {e["reason"] for e in cluster.events(pod="a")} >= {"Scheduled", "Started"}
    listed = cluster.backend.list("Event", "default")
    assert listed.items
    stream = cluster.backend.watch(
        "Event", "default", resource_version=listed.resource_version, timeout_seconds=7200
    )
    cluster.advance(3600)
    assert cluster.backend.list("Event", "default").items == []
    assert cluster.events(pod="a") == []
    gone = [next(stream) for _ in listed.items]
    assert {e.type for e in gone} == {"DELETED"}
    assert {e.object["metadata"]["name"] for e in gone} == {
        e["metadata"]["name"] for e in listed.items
    }


def test_an_aggregated_event_renews_its_lease() -> None:
    """A repeating Event outlives its TTL while it keeps being updated; one-off Events go."""
    from podrunner.backends.fake import FakeCluster

    cluster = FakeCluster(event_ttl=1000)
    cluster.when(name="a").crash_loop()
    cluster.backend.create(pod("a", restartPolicy="Always"))
    cluster.advance(3000)
    reasons = {e["reason"]: e for e in cluster.events(pod="a")}
    assert "Scheduled" not in reasons
    assert reasons["BackOff"]["count"] > 1


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), True, "1h"])
def test_event_ttl_must_be_a_positive_number(ttl: Any) -> None:
    """A bad event_ttl is refused with the field, the value and the rule."""
    from podrunner.backends.fake import FakeCluster

    with pytest.raises(ValueError, match=r"event_ttl must be a positive number of seconds, not"):
        FakeCluster(event_ttl=ttl)


def test_schedule_delay_leaves_the_pod_unbound_and_silent() -> None:
    """Until the scheduler gets to it, a pod is Pending with no node, condition or event."""
    from podrunner.backends.fake import FakeCluster

    cluster = FakeCluster(schedule_delay=30)
    cluster.backend.create(pod("a"))
    cluster.advance(29)
    (waiting,) = cluster.pods()
    assert waiting["status"]["phase"] == "Pending"
    assert "nodeName" not in waiting["spec"]
    assert "conditions" not in waiting["status"]
    assert cluster.events(pod="a") == []
    cluster.advance(5)
    (bound,) = cluster.pods()
    assert bound["spec"]["nodeName"] == "fake-node-1"
    assert cluster.events(pod="a")[0]["reason"] == "Scheduled"
