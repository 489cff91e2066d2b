"""How a run ended, as values: RunResult, ReapReport, and the final state -> result/error mapping.

Pure: nothing here reads the cluster. The run core (:mod:`podrunner.run.core`) calls these
once, when it has everything a verdict needs (the final state, the pod, the logs, the events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from podrunner._time import epoch_of
from podrunner.errors import (
    ContainerConfigError,
    ImagePullError,
    InitContainerFailed,
    PodFailed,
    PodLost,
    RunCancelled,
    RunError,
    RunTimeout,
    StartTimeout,
    Unschedulable,
)
from podrunner.run.collect import CollectedFiles
from podrunner.run.state import Phase, PodState, Reason
from podrunner.spec import Deadlines

__all__ = [
    "ReapReport",
    "RunIdentity",
    "RunResult",
    "cancelled_error",
    "fail_fast_error",
    "lost_error",
    "run_result",
    "timeout_error",
]

DeadlineName = Literal["total", "scheduling", "start"]


@attrs.frozen
class RunResult:
    """What a finished run produced, in the spirit of :class:`subprocess.CompletedProcess`.

    Attributes:
        pod_name: The pod's name.
        namespace: The pod's namespace.
        run_id: The run's id (``podrunner.dev/run-id`` label).
        state: The final :class:`PodState`.
        exit_code: The main container's exit code; ``None`` when the cluster never reported it.
        logs: The container's output (the tail, when the size cap was hit).
        logs_truncated: Whether output was dropped to respect the cap.
        duration: Seconds from pod creation to the terminal status (the backend's clock).
        started_at: When the container started (RFC 3339), if known.
        finished_at: When it finished (RFC 3339), if known.
        message: Extra information (why the exit code is unknown, why logs are missing...).
        files: The files copied out with ``run(collect=...)``, or ``None`` when none were asked.
    """

    pod_name: str
    namespace: str
    run_id: str
    state: PodState
    exit_code: int | None
    logs: str
    logs_truncated: bool = False
    duration: float = 0.0
    started_at: str | None = None
    finished_at: str | None = None
    message: str = ""
    files: CollectedFiles | None = attrs.field(default=None, repr=False)

    @property
    def reason(self) -> Reason | None:
        """Why the run ended (``Completed``, ``Error``, ``OOMKilled``...)."""
        return self.state.reason

    @property
    def ok(self) -> bool:
        """Whether the container exited 0."""
        return self.exit_code == 0 and self.state.phase is Phase.SUCCEEDED

    def check(self) -> RunResult:
        """Return ``self`` if the run succeeded, else raise :class:`~podrunner.errors.PodFailed`."""
        if not self.ok:
            code = "unknown" if self.exit_code is None else str(self.exit_code)
            raise PodFailed(
                f"container failed: {self.state} (exit code {code})",
                result=self,
                pod_name=self.pod_name,
                namespace=self.namespace,
                run_id=self.run_id,
                state=self.state,
                logs=self.logs,
            )
        return self


@attrs.frozen
class ReapReport:
    """What :meth:`PodRunner.reap` deleted.

    Attributes:
        deleted: ``(kind, namespace, name)`` of each deleted object.
        kept: How many managed objects were examined and left alone.
        skipped: Kinds the caller may not list (403), so not examined: a Secret, ConfigMap or
            NetworkPolicy of a run is owned by its pod and goes with it; one whose pod was
            never made stays until someone allowed to list it reaps it.
    """

    deleted: tuple[tuple[str, str, str], ...]
    kept: int
    skipped: tuple[str, ...] = ()


@attrs.frozen
class RunIdentity:
    """Which run an outcome is about: what every error and result names."""

    pod_name: str
    namespace: str
    run_id: str
    container: str | None = None

    def context(self, state: PodState) -> dict[str, Any]:
        """The keyword arguments every :class:`~podrunner.errors.RunError` takes."""
        return {
            "pod_name": self.pod_name,
            "namespace": self.namespace,
            "run_id": self.run_id,
            "state": state,
        }


def fail_fast_error(
    state: PodState, run: RunIdentity, events: list[str], logs: str = ""
) -> RunError | None:
    """The error for a state the container will never leave by itself, else ``None``.

    An image that cannot be pulled, a pod no node can take, a container that cannot be
    created and an init container that failed end the run at once, with the pod's events
    (they say why); ``logs`` is the failed init container's output.
    """
    reason = state.reason
    init = state.init_container
    of = "" if init is None else f" of init container {init}"
    if reason is Reason.INIT_CONTAINER_FAILED:
        code = "unknown" if state.init_exit_code is None else str(state.init_exit_code)
        said = state.message or _why(logs)
        text = f"init container {init} failed (exit code {code}): {state.detail}: {said}"
        return InitContainerFailed(
            text.rstrip(": "),
            container=init or "",
            exit_code=state.init_exit_code,
            **run.context(state),
            events=events,
            logs=logs,
        )
    if reason is Reason.IMAGE_PULL_ERROR:
        text = f"the image{of} could not be pulled: {state.detail}: {state.message}"
        return ImagePullError(text.rstrip(": "), **run.context(state), events=events)
    if reason is Reason.UNSCHEDULABLE:
        text = f"no node can run the pod: {state.message}"
        return Unschedulable(text.rstrip(": "), **run.context(state), events=events)
    if reason is Reason.CONFIG_ERROR:
        what = "the container" if init is None else f"init container {init}"
        text = f"{what} could not be created: {state.detail}: {state.message}"
        return ContainerConfigError(text.rstrip(": "), **run.context(state), events=events)
    return None


def is_fail_fast(state: PodState) -> bool:
    """Whether :func:`fail_fast_error` has an error for ``state``."""
    return state.reason in _FAIL_FAST


_FAIL_FAST = (
    Reason.IMAGE_PULL_ERROR,
    Reason.UNSCHEDULABLE,
    Reason.CONFIG_ERROR,
    Reason.INIT_CONTAINER_FAILED,
)


def lost_error(
    why: str, state: PodState, run: RunIdentity, events: list[str], logs: str
) -> PodLost:
    """The error for a pod that went away (evicted, or deleted by someone else)."""
    return PodLost(why, **run.context(state), events=events, logs=logs)


def cancelled_error(state: PodState, run: RunIdentity, logs: str) -> RunCancelled:
    """The error for a run stopped by :meth:`RunHandle.cancel`."""
    return RunCancelled("the run was cancelled", **run.context(state), logs=logs)


def timeout_error(
    which: DeadlineName,
    deadlines: Deadlines,
    state: PodState,
    run: RunIdentity,
    events: list[str],
    logs: str,
) -> RunError:
    """The error for a deadline that passed: ``RunTimeout`` (total) or ``StartTimeout``."""
    if which == "total":
        return RunTimeout(
            f"the run did not finish within {deadlines.total:g}s (state: {state})",
            **run.context(state),
            events=events,
            logs=logs,
        )
    budget = deadlines.scheduling if which == "scheduling" else deadlines.start
    what = "scheduled" if which == "scheduling" else "running"
    return StartTimeout(
        f"the pod was not {what} within {budget:g}s (state: {state})",
        **run.context(state),
        events=events,
        logs=logs,
    )


def run_result(
    state: PodState,
    pod: Mapping[str, Any],
    run: RunIdentity,
    *,
    logs: str,
    truncated: bool,
    note: str,
    elapsed: float,
) -> RunResult:
    """The result of a container that terminated.

    ``duration`` comes from the pod's own times (creation to the container's end); ``elapsed``
    (the driver's clock since the run began) stands in when the cluster did not report them.
    """
    message = state.message
    if state.exit_code is None:
        message = message or "the cluster never reported an exit code"
    if note:
        message = f"{message}; {note}" if message else note
    started = finished = None
    for cs in pod.get("status", {}).get("containerStatuses") or ():
        if run.container is None or cs.get("name") == run.container:
            term = (
                (cs.get("state") or {}).get("terminated")
                or (cs.get("lastState") or {}).get("terminated")
                or {}
            )
            started, finished = term.get("startedAt"), term.get("finishedAt")
            break
    end = epoch_of(finished)
    start = epoch_of(pod.get("metadata", {}).get("creationTimestamp"))
    duration = max(0.0, end - start) if end is not None and start is not None else elapsed
    return RunResult(
        pod_name=run.pod_name,
        namespace=run.namespace,
        run_id=run.run_id,
        state=state,
        exit_code=state.exit_code,
        logs=logs,
        logs_truncated=truncated,
        duration=max(0.0, duration),
        started_at=started,
        finished_at=finished,
        message=message,
    )


def _why(logs: str) -> str:
    """The line of a failed container's log that says why: its last ``fatal:``/``error:`` line.

    The cluster's message is mostly empty. Tools print the reason and then advice (git ends
    with "...and the repository exists."), so the last line alone often says nothing.
    """
    lines = logs.strip().splitlines()
    for line in reversed(lines):
        if line.lower().startswith(("fatal:", "error:", "error ")):
            return line
    return lines[-1] if lines else ""
