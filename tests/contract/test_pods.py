"""Contract: pod status shapes through each outcome, log options and exec, as the server has them.

Outcomes come from the simulation annotations (``sim.podrunner.dev/*``) that the fake and the
kwok stages both honour.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from podrunner._time import parse_rfc3339_nano
from podrunner.errors import BackendError, BadRequest, NotFound

if TYPE_CHECKING:
    from conftest import Kit

TIMESTAMPED = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (.*)$")


def container(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod's first container status."""
    statuses = pod["status"]["containerStatuses"]
    assert len(statuses) == 1
    status: dict[str, Any] = statuses[0]
    return status


def condition(pod: dict[str, Any], type_: str) -> dict[str, Any]:
    """The pod condition of that type."""
    for cond in pod["status"].get("conditions", []):
        if cond["type"] == type_:
            result: dict[str, Any] = cond
            return result
    raise AssertionError(f"no {type_} condition in {pod['status']}")


# -- status shapes --------------------------------------------------------------------------------


def test_success_status_shape(kit: Kit) -> None:
    """A successful run ends Succeeded, terminated with exit code 0 and reason Completed."""
    kit.pod("p", exit_code="0", duration="1")
    pod = kit.wait_phase("p", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Succeeded"
    status = container(pod)
    terminated = status["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["reason"] == "Completed"
    for key in ("startedAt", "finishedAt", "containerID"):
        assert terminated[key]
    assert status["ready"] is False
    assert status["restartCount"] == 0
    assert condition(pod, "PodScheduled")["status"] == "True"
    assert condition(pod, "Ready")["status"] == "False"
    assert pod["spec"]["nodeName"]
    assert pod["status"]["startTime"]


def test_running_status_shape(kit: Kit) -> None:
    """A running container is ready, started, with a running.startedAt and a Ready condition."""
    kit.pod("p", duration="600")
    pod = kit.wait_for(
        "Pod",
        "p",
        lambda p: (
            p is not None
            and p.get("status", {}).get("phase") == "Running"
            and condition(p, "Ready")["status"] == "True"
        ),
    )
    assert pod is not None
    status = container(pod)
    assert status["state"]["running"]["startedAt"]
    assert status["ready"] is True
    assert status["started"] is True
    kit.backend.delete("Pod", kit.namespace, "p", grace_period_seconds=0)


def test_failure_keeps_the_exit_code(kit: Kit) -> None:
    """A non-zero exit ends Failed, terminated with that exit code and reason Error."""
    kit.pod("p", exit_code="3", duration="1")
    pod = kit.wait_phase("p", "Succeeded", "Failed")
    assert pod["status"]["phase"] == "Failed"
    terminated = container(pod)["state"]["terminated"]
    assert terminated["exitCode"] == 3
    assert terminated["reason"] == "Error"


def test_oom_killed_status(kit: Kit) -> None:
    """OOMKilled ends Failed with exit code 137 and reason OOMKilled."""
    kit.pod("p", failure="OOMKilled")
    pod = kit.wait_phase("p", "Failed")
    terminated = container(pod)["state"]["terminated"]
    assert terminated["exitCode"] == 137
    assert terminated["reason"] == "OOMKilled"


def test_evicted_status(kit: Kit) -> None:
    """An evicted pod is Failed with status.reason Evicted and a message."""
    kit.pod("p", failure="Evicted")
    pod = kit.wait_phase("p", "Failed")
    assert pod["status"]["reason"] == "Evicted"
    assert pod["status"]["message"]


def test_image_pull_error_status(kit: Kit) -> None:
    """An image that cannot be pulled leaves the pod Pending, waiting in an image-pull reason."""
    kit.pod("p", failure="ImagePullBackOff")
    pod = kit.wait_for(
        "Pod",
        "p",
        lambda p: (
            p is not None
            and bool(p["status"].get("containerStatuses"))
            and p["status"]["containerStatuses"][0]["state"].get("waiting", {}).get("reason")
            == "ImagePullBackOff"
        ),
    )
    assert pod is not None
    assert pod["status"]["phase"] == "Pending"
    waiting = container(pod)["state"]["waiting"]
    assert waiting["message"]
    assert condition(pod, "PodScheduled")["status"] == "True"


def test_unschedulable_status(kit: Kit) -> None:
    """An unschedulable pod is Pending with PodScheduled=False, reason Unschedulable."""
    kit.pod("p", failure="Unschedulable")
    pod = kit.wait_for(
        "Pod",
        "p",
        lambda p: (
            p is not None
            and any(
                c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                for c in p["status"].get("conditions", [])
            )
        ),
    )
    assert pod is not None
    assert pod["status"]["phase"] == "Pending"
    cond = condition(pod, "PodScheduled")
    assert cond["status"] == "False"
    assert cond["message"]
    assert "nodeName" not in pod["spec"]
    assert "containerStatuses" not in pod["status"]


# -- logs -----------------------------------------------------------------------------------------

LOGS = "one\ntwo\nthree\n"


@pytest.fixture
def finished(kit: Kit) -> str:
    """A pod that wrote three lines and exited 0."""
    kit.pod("logs", logs=LOGS, duration="1")
    kit.wait_phase("logs", "Succeeded")
    return "logs"


def read(kit: Kit, pod: str, **kw: Any) -> bytes:
    """The whole log with those options."""
    return b"".join(kit.backend.read_log(kit.namespace, pod, **kw))


def test_logs_plain(kit: Kit, finished: str) -> None:
    """The log is what the container wrote, byte for byte."""
    assert read(kit, finished) == LOGS.encode()
    assert read(kit, finished, container="main") == LOGS.encode()


def test_logs_tail_lines(kit: Kit, finished: str) -> None:
    """TailLines keeps the last lines."""
    assert read(kit, finished, tail_lines=1) == b"three\n"
    assert read(kit, finished, tail_lines=2) == b"two\nthree\n"


def test_logs_timestamps(kit: Kit, finished: str) -> None:
    """Timestamps prefixes each line with an RFC 3339 time and one space."""
    lines = read(kit, finished, timestamps=True).splitlines()
    assert [TIMESTAMPED.match(line).group(2) for line in lines] == [b"one", b"two", b"three"]  # type: ignore[union-attr]


def test_logs_since_time(kit: Kit, finished: str) -> None:
    """SinceTime in the future returns nothing; in the past returns everything."""
    assert read(kit, finished, since_time="2999-01-01T00:00:00Z") == b""
    assert read(kit, finished, since_time="2000-01-01T00:00:00Z") == LOGS.encode()


def test_logs_limit_bytes(kit: Kit, finished: str) -> None:
    """LimitBytes cuts the log after that many bytes."""
    assert read(kit, finished, limit_bytes=5) == b"one\nt"


def test_logs_follow_ends_with_the_container(kit: Kit) -> None:
    """A followed log of a running container ends once the container has terminated."""
    kit.pod("p", logs=LOGS, duration="3")
    kit.wait_phase("p", "Running")
    kit.kwok_kubelet_cannot("p", "a followed log never ends when the container does")
    assert read(kit, "p", follow=True) == LOGS.encode()
    ended = kit.backend.clock.now()
    kit.wait_phase("p", "Succeeded")
    pod = kit.backend.get("Pod", kit.namespace, "p")
    finished = pod["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"]
    # finishedAt is truncated to the second: the follow must not have ended before it.
    assert ended >= parse_rfc3339_nano(finished) / 1e9  # type: ignore[operator]


def test_logs_of_missing_pod_is_not_found(kit: Kit) -> None:
    """Logs of a pod that does not exist: 404."""
    with pytest.raises(NotFound):
        read(kit, "ghost")


def test_logs_of_unknown_container_is_bad_request(kit: Kit, finished: str) -> None:
    """Logs of a container the pod does not have: 400 naming the valid ones."""
    with pytest.raises(BadRequest) as info:
        read(kit, finished, container="nope")
    assert "container nope is not valid for pod logs" in info.value.message


# -- exec -----------------------------------------------------------------------------------------


@pytest.fixture
def running(kit: Kit) -> str:
    """A pod whose container keeps running."""
    kit.pod("run", duration="600")
    kit.wait_for(
        "Pod",
        "run",
        lambda p: (
            p is not None
            and bool(p["status"].get("containerStatuses"))
            and "running" in p["status"]["containerStatuses"][0]["state"]
        ),
    )
    return "run"


def test_exec_output_and_exit_code_zero(kit: Kit, running: str) -> None:
    """Exec returns stdout and exit code 0."""
    result = kit.backend.exec(kit.namespace, running, "main", ["echo", "hello"], timeout=30)
    assert result.exit_code == 0
    assert result.stdout == b"hello\n"
    assert result.stderr == b""


def test_exec_non_zero_exit_code(kit: Kit, running: str) -> None:
    """Exec reports a failing command's exit code."""
    result = kit.backend.exec(kit.namespace, running, None, ["false"], timeout=30)
    assert result.exit_code == 1


def test_exec_shell_exit_code(kit: Kit, running: str) -> None:
    """A shell's exit status comes back exactly."""
    result = kit.backend.exec(kit.namespace, running, None, ["sh", "-c", "exit 3"], timeout=30)
    assert result.exit_code == 3


def test_exec_stdin_reaches_the_command(kit: Kit, running: str) -> None:
    """Stdin is delivered and closed, so cat ends with what it was given."""
    kit.kwok_kubelet_cannot(running, "its exec server ignores the v5 stdin close signal")
    result = kit.backend.exec(kit.namespace, running, None, ["cat"], stdin=b"data\n", timeout=30)
    assert result.exit_code == 0
    assert result.stdout == b"data\n"


def test_exec_in_missing_pod_is_not_found(kit: Kit) -> None:
    """Exec into a pod that does not exist: 404."""
    with pytest.raises(NotFound):
        kit.backend.exec(kit.namespace, "ghost", None, ["true"], timeout=30)


def test_exec_in_completed_pod_fails(kit: Kit) -> None:
    """Exec into a finished pod fails: its container is not running any more."""
    kit.pod("done", duration="1")
    kit.wait_phase("done", "Succeeded")
    kit.kwok_kubelet_cannot("done", "it execs into terminated containers")
    with pytest.raises(BackendError):
        kit.backend.exec(kit.namespace, "done", None, ["true"], timeout=30)
