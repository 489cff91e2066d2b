from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from fakepods import pod

from podrunner.backends.base import ExecResult
from podrunner.errors import BadRequest, Invalid, NotFound

if TYPE_CHECKING:
    from podrunner.backends.fake import ExecRequest, FakeCluster


def _exists(cluster: FakeCluster, kind: str, name: str) -> bool:
    try:
        cluster.backend.get(kind, "default", name)  # type: ignore[arg-type]
    except NotFound:
        return False
    return True


def test_graceful_delete_kills_then_removes(cluster: FakeCluster) -> None:
    """Deleting a running pod sets deletionTimestamp, kills with 143 and then removes it."""
    cluster.when(name="a").hang()
    created = cluster.backend.create(pod("a"))
    cluster.advance(5)
    start = cluster.backend.list("Pod", "default").resource_version
    cluster.backend.delete("Pod", "default", "a")
    terminating = cluster.backend.get("Pod", "default", "a")
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert terminating["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:35Z"
    events = []
    for event in cluster.backend.watch(
        "Pod", "default", resource_version=start, timeout_seconds=60
    ):
        events.append(event)
        if event.type == "DELETED":
            break
    types = [e.type for e in events]
    assert types[0] == "MODIFIED"
    assert types[-1] == "DELETED"
    killed = [
        e
        for e in events
        if e.object["status"].get("containerStatuses", [{}])[0].get("state", {}).get("terminated")
    ]
    assert (
        killed[0].object["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143
    )
    assert cluster.clock.monotonic() < 6  # stopped on SIGTERM, well before the grace period
    assert "Killing" in [e["reason"] for e in cluster.events(pod="a")]
    assert created["metadata"]["uid"] == events[-1].object["metadata"]["uid"]


def test_sigterm_ignored_waits_for_grace(cluster: FakeCluster) -> None:
    """A container that ignores SIGTERM is killed with 137 when the grace period ends."""
    cluster.when(name="a").hang(ignore_sigterm=True)
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=10)
    cluster.advance(9)
    assert _exists(cluster, "Pod", "a")
    cluster.advance(1)
    assert not _exists(cluster, "Pod", "a")
    last = cluster.history("Pod", "default", "a")[-1]
    assert last["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


def test_grace_zero_and_unscheduled_are_immediate(cluster: FakeCluster) -> None:
    """Grace 0, unscheduled pods and other kinds are deleted at once."""
    cluster.when(name="a").hang()
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    assert not _exists(cluster, "Pod", "a")
    cluster.backend.create(pod("b"))
    cluster.backend.delete("Pod", "default", "b")
    assert not _exists(cluster, "Pod", "b")
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}})
    cluster.backend.delete("Secret", "default", "s")
    assert not _exists(cluster, "Secret", "s")
    with pytest.raises(NotFound):
        cluster.backend.delete("Secret", "default", "s")


def test_owner_garbage_collection(cluster: FakeCluster) -> None:
    """A Secret owned by a pod is deleted with it."""
    owner = cluster.backend.create(pod("a"))
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "a", "uid": owner["metadata"]["uid"]}
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s", "ownerReferences": [ref]}})
    cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "keep"}})
    cluster.backend.delete("Pod", "default", "a")
    cluster.advance(1)
    assert not _exists(cluster, "Secret", "s")
    assert _exists(cluster, "ConfigMap", "keep")


def test_orphan_with_missing_owner_is_collected(cluster: FakeCluster) -> None:
    """A dependent whose owner never existed is collected shortly after creation.

    The create answers with the object; by the next call the garbage collector has removed
    it, as a real one does within milliseconds (the differential tier saw the 404).
    """
    ref = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "x",
        "uid": "00000000-0000-4000-8000-000000000000",
    }
    created = cluster.backend.create(
        {"kind": "Secret", "metadata": {"name": "s", "ownerReferences": [ref]}}
    )
    assert created["metadata"]["name"] == "s"
    assert not _exists(cluster, "Secret", "s")


# -- logs ----------------------------------------------------------------------------------


def test_follow_streams_until_termination(cluster: FakeCluster) -> None:
    """A follower receives lines as they are written and ends when the container exits."""
    cluster.when(name="a").succeed(logs=[(1.0, "one\n"), (2.0, "two\n")], after=3.0)
    cluster.backend.create(pod("a"))
    cluster.advance(1.5)
    chunks = list(cluster.backend.read_log("default", "a", follow=True))
    assert chunks == [b"one\n", b"two\n"]
    assert cluster.clock.monotonic() == 4.0


def test_timestamps_and_since(cluster: FakeCluster) -> None:
    """Timestamps prefixes RFC3339Nano; sinceTime and sinceSeconds filter by them."""
    cluster.when(name="a").hang(logs=[(0.5, "a\n"), (10.0, "b\n")])
    cluster.backend.create(pod("a"))
    cluster.advance(20)
    lines = list(cluster.backend.read_log("default", "a", timestamps=True))
    assert lines == [b"2026-01-01T00:00:01.5Z a\n", b"2026-01-01T00:00:11Z b\n"]
    since = list(cluster.backend.read_log("default", "a", since_time="2026-01-01T00:00:05Z"))
    assert since == [b"b\n"]
    assert list(cluster.backend.read_log("default", "a", since_seconds=15)) == [b"b\n"]


def test_tail_and_limit_bytes(cluster: FakeCluster) -> None:
    """TailLines keeps the last lines; limitBytes truncates the stream."""
    cluster.when(name="a").succeed(logs="1\n2\n3\n4\n")
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    assert b"".join(cluster.backend.read_log("default", "a", tail_lines=2)) == b"3\n4\n"
    assert b"".join(cluster.backend.read_log("default", "a", limit_bytes=3)) == b"1\n2"


def test_log_option_errors(cluster: FakeCluster) -> None:
    """Conflicting or invalid log options are rejected like the server does."""
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    with pytest.raises(Invalid):
        cluster.backend.read_log("default", "a", since_seconds=1, since_time="2026-01-01T00:00:00Z")
    with pytest.raises(Invalid):
        cluster.backend.read_log("default", "a", tail_lines=-1)
    with pytest.raises(BadRequest):
        cluster.backend.read_log("default", "a", since_time="yesterday")


def test_previous_without_restart_is_400(cluster: FakeCluster) -> None:
    """previous=True on a container that never restarted is 400 with the kubelet's message."""
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    with pytest.raises(BadRequest) as info:
        cluster.backend.read_log("default", "a", previous=True)
    assert info.value.message == 'previous terminated container "c" in pod "a" not found'


def test_logs_of_waiting_container_is_400(cluster: FakeCluster) -> None:
    """Logs of a container that has not started are 400 'waiting to start'."""
    cluster.when(name="a").image_pull_error()
    cluster.backend.create(pod("a"))
    with pytest.raises(BadRequest, match="is waiting to start: ContainerCreating"):
        cluster.backend.read_log("default", "a")
    cluster.advance(5)
    with pytest.raises(BadRequest, match="trying and failing to pull image"):
        cluster.backend.read_log("default", "a")


def test_container_name_required_with_several(cluster: FakeCluster) -> None:
    """A pod with several containers needs the container name; an unknown one is 400."""
    manifest = pod("a")
    manifest["spec"]["containers"].append({"name": "side", "image": "x:1"})
    cluster.backend.create(manifest)
    cluster.advance(5)
    with pytest.raises(BadRequest, match=r"choose one of: \[c side\]"):
        cluster.backend.read_log("default", "a")
    with pytest.raises(BadRequest, match="container zz is not valid for pod a"):
        cluster.backend.read_log("default", "a", "zz")
    assert list(cluster.backend.read_log("default", "a", "side")) == []


def test_set_logs(cluster: FakeCluster) -> None:
    """set_logs replaces or extends a started container's log."""
    cluster.when(name="a").hang()
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    cluster.set_logs("default", "a", "x\n")
    cluster.set_logs("default", "a", "y\n", append=True)
    assert b"".join(cluster.backend.read_log("default", "a")) == b"x\ny\n"


def test_log_follow_ends_when_pod_deleted(cluster: FakeCluster) -> None:
    """A follower ends when the pod is removed."""
    cluster.when(name="a").hang(logs="x\n")
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    stream = cluster.backend.read_log("default", "a", follow=True)
    assert next(stream) == b"x\n"
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    assert list(stream) == []


# -- exec ----------------------------------------------------------------------------------


def test_exec_handler(cluster: FakeCluster) -> None:
    """An exec handler answers with exit code, stdout and stderr, and sees stdin."""
    requests: list[ExecRequest] = []

    def handler(request: ExecRequest) -> ExecResult:
        requests.append(request)
        return ExecResult(3, b"out:" + (request.stdin or b""), b"err")

    cluster.when(image="busybox:*").hang().exec_handler(handler, argv="cat *")
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    result = cluster.backend.exec("default", "a", None, ["cat", "/x"], stdin=b"in")
    assert result == ExecResult(3, b"out:in", b"err")
    assert requests[0].argv == ["cat", "/x"]
    assert cluster.backend.exec("default", "a", "c", ["echo", "hi"]).stdout == b"hi\n"
    missing = cluster.backend.exec("default", "a", "c", ["nosuch"])
    assert missing.exit_code == 127


def test_exec_handler_shorthand_results(cluster: FakeCluster) -> None:
    """Handlers may return an int, text or a tuple."""
    cluster.when(name="a").hang().exec_handler(lambda r: (2, "x", "y"))
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    assert cluster.backend.exec("default", "a", None, ["anything"]) == ExecResult(2, b"x", b"y")


def test_exec_into_non_running_is_400(cluster: FakeCluster) -> None:
    """Exec into a pending or completed pod is 400 as on the real server."""
    cluster.backend.create(pod("a"))
    with pytest.raises(BadRequest, match="container not found"):
        cluster.backend.exec("default", "a", None, ["true"])
    cluster.advance(5)
    with pytest.raises(BadRequest, match="completed pod; current phase is Succeeded"):
        cluster.backend.exec("default", "a", None, ["true"])
    with pytest.raises(NotFound):
        cluster.backend.exec("default", "zz", None, ["true"])
