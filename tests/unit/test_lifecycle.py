"""The pod status reducer: every state the runner acts on, from real status shapes."""

from __future__ import annotations

from typing import Any

import pytest

from podrunner.run.state import Phase, Reason, reduce


def pod(
    phase: str = "Pending",
    *,
    state: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    restart_policy: str = "Never",
    node: str | None = None,
    reason: str | None = None,
    message: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    extra_statuses: list[dict[str, Any]] | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    if conditions:
        status["conditions"] = conditions
    statuses = list(extra_statuses or [])
    if state is not None:
        cs: dict[str, Any] = {"name": "main", "state": state, "restartCount": restarts}
        if last is not None:
            cs["lastState"] = last
        statuses.insert(0, cs)
    if statuses:
        status["containerStatuses"] = statuses
    spec: dict[str, Any] = {
        "restartPolicy": restart_policy,
        "containers": [{"name": "main"}, {"name": "sidecar"}],
    }
    if node:
        spec["nodeName"] = node
    meta: dict[str, Any] = {"name": "p"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-27T10:00:00Z"
    return {"metadata": meta, "spec": spec, "status": status}


def term(code: int, reason: str = "") -> dict[str, Any]:
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason or ("Completed" if code == 0 else "Error"),
        }
    }


def test_new_pod_is_pending() -> None:
    """A pod with no status yet is Pending and not terminal."""
    state = reduce({"metadata": {"name": "p"}, "spec": {}})
    assert state.phase is Phase.PENDING
    assert not state.terminal
    assert state.exit_code is None


def test_scheduled_pod_with_container_creating() -> None:
    """A pod bound to a node whose container is being created is SCHEDULED with the detail."""
    state = reduce(pod(node="n1", state={"waiting": {"reason": "ContainerCreating"}}))
    assert state.phase is Phase.SCHEDULED
    assert state.detail == "ContainerCreating"
    assert state.node_name == "n1"


def test_running() -> None:
    """A running main container in a Running pod is RUNNING."""
    state = reduce(pod("Running", node="n1", state={"running": {"startedAt": "x"}}))
    assert state.phase is Phase.RUNNING
    assert not state.terminal


def test_succeeded_exit_zero() -> None:
    """Succeeded with exit 0 is SUCCEEDED/Completed and carries exit code 0."""
    state = reduce(pod("Succeeded", node="n", state=term(0)))
    assert (state.phase, state.reason, state.exit_code) == (Phase.SUCCEEDED, Reason.COMPLETED, 0)
    assert state.container_ran


def test_failed_exit_three() -> None:
    """Failed with exit 3 keeps the exit code and the reason Error."""
    state = reduce(pod("Failed", node="n", state=term(3)))
    assert (state.phase, state.reason, state.exit_code) == (Phase.FAILED, Reason.ERROR, 3)


def test_oom_killed() -> None:
    """An OOMKilled termination is reported as such with its exit code."""
    state = reduce(pod("Failed", node="n", state=term(137, "OOMKilled")))
    assert (state.reason, state.exit_code) == (Reason.OOM_KILLED, 137)


def test_terminal_phase_without_exit_code_is_none_not_zero() -> None:
    """A terminal phase with no terminated container state never reports exit code 0."""
    state = reduce(pod("Succeeded", node="n"))
    assert state.terminal
    assert state.exit_code is None
    assert "exit code" in state.message
    failed = reduce(pod("Failed", node="n"))
    assert failed.exit_code is None
    assert failed.reason is Reason.UNKNOWN


@pytest.mark.parametrize("waiting", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull_errors_fail_fast(waiting: str) -> None:
    """Image pull waiting reasons end the run at once with IMAGE_PULL_ERROR."""
    state = reduce(pod(node="n", state={"waiting": {"reason": waiting, "message": "nope"}}))
    assert (state.phase, state.reason, state.detail, state.message) == (
        Phase.FAILED,
        Reason.IMAGE_PULL_ERROR,
        waiting,
        "nope",
    )
    assert not state.container_ran


def test_create_container_config_error() -> None:
    """CreateContainerConfigError (a missing Secret key...) is a config error."""
    state = reduce(pod(node="n", state={"waiting": {"reason": "CreateContainerConfigError"}}))
    assert state.reason is Reason.CONFIG_ERROR


def test_unschedulable() -> None:
    """PodScheduled False with reason Unschedulable fails fast with the scheduler's message."""
    cond = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes",
    }
    state = reduce(pod(conditions=[cond]))
    assert (state.phase, state.reason, state.message) == (
        Phase.FAILED,
        Reason.UNSCHEDULABLE,
        "0/1 nodes",
    )


def test_evicted_wins_over_container_exit_code() -> None:
    """Evicted is read from the pod status even when the container shows exit 137."""
    state = reduce(pod("Failed", node="n", reason="Evicted", message="low memory", state=term(137)))
    assert (state.reason, state.message) == (Reason.EVICTED, "low memory")
    assert not state.container_ran


def test_deadline_exceeded() -> None:
    """ActiveDeadlineSeconds expiry is DEADLINE_EXCEEDED, a run that did run."""
    state = reduce(pod("Failed", node="n", reason="DeadlineExceeded", state=term(137)))
    assert state.reason is Reason.DEADLINE_EXCEEDED
    assert state.container_ran


def test_crash_loop_takes_exit_code_from_last_state() -> None:
    """CrashLoopBackOff reports the last terminated exit code and restart count."""
    state = reduce(
        pod(
            "Running",
            node="n",
            restart_policy="Always",
            state={"waiting": {"reason": "CrashLoopBackOff"}},
            last=term(2),
            restarts=4,
        )
    )
    assert (state.reason, state.exit_code, state.restart_count) == (Reason.CRASH_LOOP, 2, 4)


def test_on_failure_nonzero_exit_is_not_final() -> None:
    """With OnFailure a non-zero exit is restarted by the kubelet, so it is not terminal."""
    state = reduce(pod("Running", node="n", restart_policy="OnFailure", state=term(1)))
    assert not state.terminal


def test_main_container_terminated_while_sidecar_runs() -> None:
    """Completion is judged on the main container even if a sidecar keeps the pod Running."""
    sidecar = {"name": "sidecar", "state": {"running": {}}}
    state = reduce(pod("Running", node="n", state=term(0), extra_statuses=[sidecar]))
    assert (state.phase, state.exit_code) == (Phase.SUCCEEDED, 0)


def test_deleting_flag() -> None:
    """A deletionTimestamp is reported so the runner can tell an external delete."""
    assert reduce(pod("Running", node="n", state={"running": {}}, deleting=True)).deleting


def test_str_is_readable() -> None:
    """The state prints as phase, reason and exit code."""
    assert str(reduce(pod("Failed", node="n", state=term(3)))) == "Failed (Error) exit 3"
