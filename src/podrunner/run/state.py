"""Pod status -> :class:`PodState`: the one reducer every backend's pods go through.

The reducer is pure: it reads a pod object (Kubernetes JSON, as the API server returns it) and
says where the run stands. It never looks at logs, so a log stream that ends early or hangs
cannot decide completion (the most common failure of peer tools).

State diagram (``phase`` values; terminal ones in capitals)::

    PENDING ──► SCHEDULED ──► RUNNING ──► SUCCEEDED
       │            │            │
       │            │            └──────► FAILED (Error, OOMKilled, DeadlineExceeded,
       │            │                             Evicted, CrashLoopBackOff, Deleted)
       │            ├─ image pull error, config error ─► FAILED (fail fast)
       │            └─ init container failed ─► FAILED (fail fast)
       └─ unschedulable ─► FAILED (fail fast)

Completion is judged on the *main* container, so an injected sidecar that keeps the pod
``Running`` does not hide a finished run. Until the main container has started, the init
containers and native sidecars (``initContainerStatuses``) are read too: one that failed for
good (non-zero exit under ``restartPolicy: Never``, or ``CrashLoopBackOff``), or that cannot
pull its image or be created, fails the run at once instead of leaving it ``Pending``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Phase", "PodState", "Reason", "reduce"]


class Phase(enum.Enum):
    """Where a run stands."""

    PENDING = "Pending"
    """Created, not yet placed on a node."""
    SCHEDULED = "Scheduled"
    """Placed on a node; the image is being pulled or the container created."""
    RUNNING = "Running"
    """The main container is running."""
    SUCCEEDED = "Succeeded"
    """The main container exited 0."""
    FAILED = "Failed"
    """The run ended any other way; :attr:`PodState.reason` says how."""


class Reason(enum.Enum):
    """Why a run ended (or why it is about to fail fast)."""

    COMPLETED = "Completed"
    ERROR = "Error"
    OOM_KILLED = "OOMKilled"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    EVICTED = "Evicted"
    CRASH_LOOP = "CrashLoopBackOff"
    IMAGE_PULL_ERROR = "ImagePullError"
    CONFIG_ERROR = "CreateContainerConfigError"
    UNSCHEDULABLE = "Unschedulable"
    INIT_CONTAINER_FAILED = "InitContainerFailed"
    UNKNOWN = "Unknown"


_IMAGE_PULL_WAITING = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName"})
_CONFIG_WAITING = frozenset(
    {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)

_Words = tuple[Phase, "Reason | None", "int | None", str, str]
"""What the cluster says of a run: phase, reason, exit code, message and detail (PodState's)."""


@attrs.frozen
class PodState:
    """A snapshot of a run's pod, reduced to what a caller acts on.

    Attributes:
        phase: Where the run stands.
        reason: Why it ended, or why it will fail fast; ``None`` while it is healthy.
        exit_code: The main container's exit code; ``None`` when the cluster never reported
            one (never reported as 0).
        message: The cluster's words (scheduler message, waiting message, status message).
        detail: The raw reason string the cluster gave (``ContainerCreating``, ``Error``...).
        restart_count: Restarts of the main container.
        node_name: The node the pod was scheduled on.
        deleting: The pod carries a ``deletionTimestamp``.
        init_container: The init container (or sidecar) that failed the run (reason
            ``INIT_CONTAINER_FAILED``, ``IMAGE_PULL_ERROR`` or ``CONFIG_ERROR``), if one did.
        init_exit_code: That init container's exit code, when it reported one.
    """

    phase: Phase
    reason: Reason | None = None
    exit_code: int | None = None
    message: str = ""
    detail: str = ""
    restart_count: int = 0
    node_name: str | None = None
    deleting: bool = False
    init_container: str | None = None
    init_exit_code: int | None = None

    @property
    def terminal(self) -> bool:
        """Whether the run is over (the main container will not run again)."""
        phase = self.phase
        return phase is Phase.SUCCEEDED or phase is Phase.FAILED

    @property
    def container_ran(self) -> bool:
        """Whether the main container ran and terminated, so a result can be reported."""
        return self.terminal and self.reason in _RAN_REASONS

    def __str__(self) -> str:
        text = self.phase.value
        if self.reason is not None and self.reason is not Reason.COMPLETED:
            text += f" ({self.reason.value})"
        if self.exit_code is not None:
            text += f" exit {self.exit_code}"
        return text


_RAN_REASONS = frozenset(
    {
        Reason.COMPLETED,
        Reason.ERROR,
        Reason.OOM_KILLED,
        Reason.DEADLINE_EXCEEDED,
        Reason.CRASH_LOOP,
    }
)


def _main_status(
    status: Mapping[str, Any], spec: Mapping[str, Any], container: str | None
) -> Mapping[str, Any]:
    if container is None:
        containers = spec.get("containers") or ()
        container = containers[0].get("name") if containers else None
    for main in status.get("containerStatuses") or ():
        if main.get("name") == container:
            return main  # type: ignore[no-any-return]
    return {}


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for cond in status.get("conditions") or ():
        if cond.get("type") == kind:
            return cond  # type: ignore[no-any-return]
    return {}


def _terminated_reason(terminated: Mapping[str, Any]) -> Reason:
    raw = terminated.get("reason") or ""
    if raw == "OOMKilled":
        return Reason.OOM_KILLED
    code = terminated.get("exitCode")
    if code == 0:
        return Reason.COMPLETED
    return Reason.ERROR


def reduce(pod: Mapping[str, Any], container: str | None = None) -> PodState:
    """Reduce a pod object to a :class:`PodState`.

    Args:
        pod: The pod as Kubernetes JSON.
        container: Name of the main container; the first container when ``None``.

    Returns:
        The state. Terminal states carry the exit code from the main container's
        ``terminated`` state (or ``lastState`` after a restart), or ``None`` when the
        cluster never reported one.

    Examples:
        >>> reduce({"status": {"phase": "Pending"}}).phase
        <Phase.PENDING: 'Pending'>
    """
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    main = _main_status(status, spec, container)
    state = main.get("state") or {}
    last = main.get("lastState") or {}
    deleting = bool(pod.get("metadata", {}).get("deletionTimestamp"))
    init = None
    if status.get("initContainerStatuses") and not (deleting or last or _started(state)):
        init = _init_failure(status, spec)
    init_name: str | None = None
    init_code: int | None = None
    if init is not None:
        words, init_name, init_code = init
    else:
        words = _final(status, spec, state, last) or _not_final(status, spec, state, last)
    phase, reason, exit_code, message, detail = words
    return PodState(
        phase=phase,
        reason=reason,
        exit_code=exit_code,
        message=message,
        detail=detail,
        restart_count=int(main.get("restartCount") or 0),
        node_name=spec.get("nodeName") or None,
        deleting=deleting,
        init_container=init_name,
        init_exit_code=init_code,
    )


def _started(state: Mapping[str, Any]) -> bool:
    return bool(state.get("running") or state.get("terminated"))


def _init_failure(
    status: Mapping[str, Any], spec: Mapping[str, Any]
) -> tuple[_Words, str, int | None] | None:
    """An init container or sidecar that keeps the main container from ever starting."""
    if (status.get("reason") or "") in ("Evicted", "DeadlineExceeded"):
        return None  # the pod-level reason says more (and killed the init container)
    sidecars = {
        c.get("name")
        for c in spec.get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    }
    never = (spec.get("restartPolicy") or "Always") == "Never"
    for init in status.get("initContainerStatuses") or ():
        name = str(init.get("name") or "")
        state = init.get("state") or {}
        waiting = state.get("waiting") or {}
        why = waiting.get("reason") or ""
        message = waiting.get("message") or ""
        if why in _IMAGE_PULL_WAITING:
            return (Phase.FAILED, Reason.IMAGE_PULL_ERROR, None, message, why), name, None
        if why in _CONFIG_WAITING:
            return (Phase.FAILED, Reason.CONFIG_ERROR, None, message, why), name, None
        terminated = state.get("terminated") or {}
        if why == "CrashLoopBackOff":
            terminated = (init.get("lastState") or {}).get("terminated") or {}
        elif not (terminated and never and name not in sidecars):
            continue
        code = terminated.get("exitCode")
        if why != "CrashLoopBackOff" and code == 0:
            continue
        detail = why or terminated.get("reason") or ""
        message = message or terminated.get("message") or ""
        return (Phase.FAILED, Reason.INIT_CONTAINER_FAILED, None, message, detail), name, code
    return None


def _final(
    status: Mapping[str, Any],
    spec: Mapping[str, Any],
    state: Mapping[str, Any],
    last: Mapping[str, Any],
) -> _Words | None:
    """The words of a run that is over; else ``None``."""
    pod_phase = status.get("phase") or "Pending"
    terminated = state.get("terminated") or {}
    if not terminated and pod_phase not in ("Succeeded", "Failed"):
        return None  # under way, as most of a run's pods are: no branch below applies
    restart_policy = spec.get("restartPolicy") or "Always"
    # The pod-level reason wins: Evicted and DeadlineExceeded are written there, and the
    # containers may show a misleading exit code (137) or nothing at all.
    pod_reason = status.get("reason") or ""
    if pod_phase == "Failed" and pod_reason in ("Evicted", "DeadlineExceeded"):
        exit_code = terminated.get("exitCode")
        if exit_code is None:
            exit_code = (last.get("terminated") or {}).get("exitCode")
        reason = Reason.EVICTED if pod_reason == "Evicted" else Reason.DEADLINE_EXCEEDED
        message = status.get("message") or ""
        return Phase.FAILED, reason, exit_code, message, pod_reason
    # The main container terminated for good: the result is known even if a sidecar keeps
    # the pod Running. With OnFailure a non-zero exit is restarted, so it is not final yet.
    if terminated and (
        pod_phase in ("Succeeded", "Failed")
        or restart_policy == "Never"
        or (restart_policy == "OnFailure" and terminated.get("exitCode") == 0)
    ):
        reason = _terminated_reason(terminated)
        phase = Phase.SUCCEEDED if reason is Reason.COMPLETED else Phase.FAILED
        message = terminated.get("message") or ""
        detail = terminated.get("reason") or ""
        return phase, reason, terminated.get("exitCode"), message, detail
    if pod_phase in ("Succeeded", "Failed"):
        # Terminal phase without a terminated container state: the exit code is unknown.
        phase = Phase.SUCCEEDED if pod_phase == "Succeeded" else Phase.FAILED
        fallback = Reason.COMPLETED if phase is Phase.SUCCEEDED else Reason.UNKNOWN
        message = status.get("message") or "exit code was not reported by the cluster"
        return phase, fallback, None, message, pod_reason
    return None


# The scheduler's words while a pod's immediate-binding claims wait for the volume binder.
_VOLUME_BINDING = "unbound immediate PersistentVolumeClaims"


def _not_final(
    status: Mapping[str, Any],
    spec: Mapping[str, Any],
    state: Mapping[str, Any],
    last: Mapping[str, Any],
) -> _Words:
    """The words of a run still under way (or about to fail fast)."""
    waiting = state.get("waiting") or {}
    waiting_reason = waiting.get("reason") or ""
    waiting_message = waiting.get("message") or ""
    if waiting_reason in _IMAGE_PULL_WAITING:
        return Phase.FAILED, Reason.IMAGE_PULL_ERROR, None, waiting_message, waiting_reason
    if waiting_reason in _CONFIG_WAITING:
        return Phase.FAILED, Reason.CONFIG_ERROR, None, waiting_message, waiting_reason
    if waiting_reason == "CrashLoopBackOff":
        exit_code = (last.get("terminated") or {}).get("exitCode")
        return Phase.FAILED, Reason.CRASH_LOOP, exit_code, waiting_message, waiting_reason
    scheduled = _condition(status, "PodScheduled")
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        message = scheduled.get("message") or ""
        if status.get("nominatedNodeName") or _VOLUME_BINDING in message:
            # Under way, not refused: the scheduler is preempting lower-priority pods for this
            # one (it names the node), or its claims are being bound to volumes.
            return Phase.PENDING, None, None, message, "Unschedulable"
        return Phase.FAILED, Reason.UNSCHEDULABLE, None, message, "Unschedulable"
    if state.get("running") and status.get("phase") == "Running":
        return Phase.RUNNING, None, None, "", ""
    if spec.get("nodeName") or scheduled.get("status") == "True":
        return Phase.SCHEDULED, None, None, waiting_message, waiting_reason
    message = status.get("message") or ""
    return Phase.PENDING, None, None, message, status.get("reason") or ""
