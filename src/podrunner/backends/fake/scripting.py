"""Scripted outcomes: what a pod's containers do, chosen by rule or by annotation.

``cluster.when(image="busybox:*").fail(exit_code=3, after=2.0)`` registers a :class:`Rule`;
the newest matching rule decides the outcome of each pod when it is created. Pods carrying the
simulation annotations (``sim.podrunner.dev/...``) follow them instead, since an annotation is
the most specific statement about one pod. Unmatched pods succeed at once with empty logs.

Init containers and sidecars follow the newest rule that names them by ``image`` or
``command`` (``cluster.when(image="alpine/git:*").fail(exit_code=128)``); unmatched init
containers succeed at once and unmatched sidecars run until the main container has ended.
The pod's containers after the first (the collector of ``run(collect=...)``) follow such a rule
too; unmatched, they run until the pod is deleted.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union

import attrs

from podrunner.backends.base import ExecResult
from podrunner.simulation import (
    ANNOTATION_DURATION,
    ANNOTATION_EXIT_CODE,
    ANNOTATION_FAILURE,
    ANNOTATION_LOGS,
)

__all__ = [
    "ANNOTATION_DURATION",
    "ANNOTATION_EXIT_CODE",
    "ANNOTATION_FAILURE",
    "ANNOTATION_LOGS",
    "ContainerContext",
    "ExecHandler",
    "ExecRequest",
    "Logs",
    "Outcome",
    "Rule",
    "RunResultLike",
    "outcome_from_annotations",
]

#: Logs as one text written when the container starts, or ``(seconds after start, text)``
#: pieces written over time (what a follower sees arrive).
Logs = Union[str, Sequence[tuple[float, str]]]  # noqa: UP007 - evaluated at runtime on 3.10

OutcomeKind = Literal["exit", "hang", "image_pull", "unschedulable", "evict", "run"]


@attrs.frozen
class ContainerContext:
    """What a :meth:`Rule.run` callable learns about the container it decides for.

    Attributes:
        pod: A copy of the pod as stored when the container starts.
        container: The container's name.
        attempt: 0 for the first run, then 1, 2... after restarts.
        argv: The container's ``command`` followed by its ``args``.
        env: The container's plain ``env`` values.
        now: Virtual wall-clock time of the start.
    """

    pod: dict[str, Any]
    container: str
    attempt: int
    argv: list[str]
    env: dict[str, str]
    now: float


#: What a run callable returns: ``None`` (exit 0), an exit code, logs (exit 0),
#: ``(exit_code, logs)`` or ``(exit_code, logs, after_seconds)``.
RunResultLike = Union[None, int, str, tuple[int, str], tuple[int, str, float]]  # noqa: UP007


@attrs.frozen
class ExecRequest:
    """One exec call, as an exec handler sees it.

    Attributes:
        namespace: The pod's namespace.
        pod: The pod's name.
        container: The container's name.
        argv: The command to run.
        stdin: Bytes sent on standard input, if any.
    """

    namespace: str
    pod: str
    container: str
    argv: list[str]
    stdin: bytes | None


#: An exec handler returns an :class:`ExecResult`, an exit code, stdout text or bytes
#: (exit 0), or ``(exit_code, stdout)`` / ``(exit_code, stdout, stderr)``.
ExecHandler = Callable[[ExecRequest], Any]


@attrs.frozen
class Outcome:
    """How every container of a pod behaves once started.

    Attributes:
        kind: ``exit`` (terminate with ``exit_code``), ``hang`` (run until killed),
            ``image_pull`` (never starts), ``unschedulable`` (never scheduled), ``evict``
            (evicted after ``after``), ``run`` (``fn`` decides).
        exit_code: Exit code for ``exit``.
        reason: Terminated reason (``Completed``/``Error``/``OOMKilled``), the image pull
            waiting reason, or the unschedulable/evicted message override.
        message: Status message (eviction, scheduling failure, pull failure).
        logs: What the container writes.
        after: Seconds from start to the exit or eviction.
        fail_times: For crash loops: how many attempts fail before one succeeds (``None``:
            every attempt fails).
        ignore_sigterm: The process ignores SIGTERM, so deletion waits for the grace period
            and ends with exit code 137.
        fn: The callable of a ``run`` outcome.
        scale_up_after: For ``unschedulable``: seconds until an autoscaler's node takes the
            pod (negative: the autoscaler says it cannot help; ``None``: no autoscaler).
    """

    kind: OutcomeKind = "exit"
    exit_code: int = 0
    reason: str | None = None
    message: str | None = None
    logs: Logs = ""
    after: float = 0.0
    fail_times: int | None = None
    ignore_sigterm: bool = False
    fn: Callable[[ContainerContext], RunResultLike] | None = None
    scale_up_after: float | None = None


DEFAULT_OUTCOME = Outcome()


class Rule:
    """A scripting rule built by :meth:`FakeCluster.when`; its methods set the outcome.

    Every filter given must match: ``image`` and ``name`` are globs, ``labels`` must all be
    present with equal values, ``command`` is a glob over the shell-quoted ``command + args``
    of a container (or an exact argv sequence), ``namespace`` is exact. Each outcome method
    returns the rule, so ``.exec_handler(...)`` can be chained.

    A rule decides the main container when its ``image``/``command`` match one of the pod's
    ``containers``, and decides each init container or sidecar whose own image and command
    match (see :meth:`matches_init`).
    """

    def __init__(
        self,
        *,
        image: str | None = None,
        labels: Mapping[str, str] | None = None,
        name: str | None = None,
        command: str | Sequence[str] | None = None,
        namespace: str | None = None,
        times: int | None = None,
    ) -> None:
        self.image = image
        self.labels = dict(labels or {})
        self.name = name
        self.command = command
        self.namespace = namespace
        self.times = times
        self.outcome: Outcome | None = None
        self.exec_handlers: list[tuple[str | None, ExecHandler]] = []

    def __repr__(self) -> str:
        return (
            f"Rule(image={self.image!r}, labels={self.labels!r}, name={self.name!r}, "
            f"command={self.command!r}, outcome={self.outcome!r})"
        )

    # -- matching -------------------------------------------------------------------------

    def matches(self, pod: Mapping[str, Any]) -> bool:
        """Return whether the rule applies to a pod (as stored): to its main container."""
        if not self._matches_meta(pod):
            return False
        containers = (pod.get("spec") or {}).get("containers") or []
        if self.image is not None and not any(
            fnmatch.fnmatchcase(str(c.get("image", "")), self.image) for c in containers
        ):
            return False
        if self.command is not None:
            return any(self._command_matches(c) for c in containers)
        return True

    def matches_init(self, pod: Mapping[str, Any], container: Mapping[str, Any]) -> bool:
        """Return whether the rule applies to one init container or sidecar of a pod.

        Only a rule that names containers (by ``image`` or ``command``) does: a rule chosen by
        pod name, labels or namespace alone is about the main container.
        """
        if self.image is None and self.command is None:
            return False
        if self.outcome is not None and self.outcome.kind == "unschedulable":
            return False  # scheduling is the pod's, not a container's
        if not self._matches_meta(pod):
            return False
        image = str(container.get("image", ""))
        if self.image is not None and not fnmatch.fnmatchcase(image, self.image):
            return False
        return self.command is None or self._command_matches(container)

    def _matches_meta(self, pod: Mapping[str, Any]) -> bool:
        meta = pod.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and not fnmatch.fnmatchcase(meta.get("name", ""), self.name):
            return False
        if self.labels:
            labels = meta.get("labels") or {}
            for key, value in self.labels.items():
                if labels.get(key) != value:
                    return False
        return True

    def _command_matches(self, container: Mapping[str, Any]) -> bool:
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        if isinstance(self.command, str):
            return fnmatch.fnmatchcase(shlex.join(argv), self.command)
        return argv == list(self.command or [])

    # -- outcomes -------------------------------------------------------------------------

    def _set(self, outcome: Outcome) -> Rule:
        self.outcome = outcome
        return self

    def succeed(self, logs: Logs = "", after: float = 0.0) -> Rule:
        """Exit 0 (reason ``Completed``) ``after`` seconds after starting."""
        return self._set(Outcome("exit", 0, "Completed", logs=logs, after=after))

    def fail(
        self, exit_code: int = 1, reason: str = "Error", logs: Logs = "", after: float = 0.0
    ) -> Rule:
        """Exit with ``exit_code`` and terminated ``reason`` ``after`` seconds after starting."""
        return self._set(Outcome("exit", exit_code, reason, logs=logs, after=after))

    def oom(self, after: float = 0.0, logs: Logs = "") -> Rule:
        """Get OOM-killed: exit code 137, reason ``OOMKilled``."""
        return self._set(Outcome("exit", 137, "OOMKilled", logs=logs, after=after))

    def image_pull_error(
        self, reason: str = "ImagePullBackOff", message: str | None = None
    ) -> Rule:
        """Never start: the image cannot be pulled (``ErrImagePull``, then ``reason``)."""
        return self._set(Outcome("image_pull", reason=reason, message=message))

    def unschedulable(
        self,
        message: str = "0/1 nodes are available: 1 Insufficient cpu.",
        *,
        scale_up_after: float | None = None,
        logs: Logs = "",
    ) -> Rule:
        """Never get scheduled: ``PodScheduled=False`` with reason ``Unschedulable``.

        With ``scale_up_after``, a cluster autoscaler answers: a ``TriggeredScaleUp`` Event
        at once, and the node it adds takes the pod that many seconds later; the pod then
        runs and succeeds with ``logs``. ``scale_up_after=-1`` has it answer
        ``NotTriggerScaleUp`` instead (no node group can take the pod).
        """
        return self._set(
            Outcome("unschedulable", message=message, logs=logs, scale_up_after=scale_up_after)
        )

    def evict(self, after: float = 0.0, message: str | None = None, logs: Logs = "") -> Rule:
        """Run, then get evicted by the kubelet ``after`` seconds later (pod ``Failed``)."""
        return self._set(Outcome("evict", message=message, logs=logs, after=after))

    def hang(self, logs: Logs = "", *, ignore_sigterm: bool = False) -> Rule:
        """Run until deleted or killed by ``activeDeadlineSeconds``."""
        return self._set(Outcome("hang", logs=logs, ignore_sigterm=ignore_sigterm))

    def crash_loop(
        self,
        exit_code: int = 1,
        logs: Logs = "",
        after: float = 0.0,
        restarts: int | None = None,
    ) -> Rule:
        """Fail on every attempt (or the first ``restarts`` attempts, then succeed).

        With ``restartPolicy`` ``Always`` or ``OnFailure`` the kubelet restarts the container
        with an exponential back-off (``CrashLoopBackOff``); with ``Never`` the pod fails.
        """
        return self._set(
            Outcome("exit", exit_code, "Error", logs=logs, after=after, fail_times=restarts)
        )

    def run(self, fn: Callable[[ContainerContext], RunResultLike]) -> Rule:
        """Let ``fn`` decide when each container starts (see :data:`RunResultLike`).

        The callable runs inside the fake while virtual time stands still; it must not block.
        If it raises, the container fails with exit code 1 and the exception as its log.
        """
        return self._set(Outcome("run", fn=fn))

    def exec_handler(self, fn: ExecHandler, *, argv: str | None = None) -> Rule:
        """Answer exec calls into matching pods with ``fn`` (optionally only for an argv glob).

        ``argv`` is matched against the shell-quoted command, e.g. ``"cat *"``.
        """
        self.exec_handlers.append((argv, fn))
        return self


def outcome_from_annotations(annotations: Mapping[str, str] | None) -> Outcome | None:
    """Build the outcome the simulation annotations describe, or ``None`` if there are none.

    Unparseable values are ignored, as kwok ignores them: annotations are free text to the API.
    """
    if not annotations:
        return None
    failure = annotations.get(ANNOTATION_FAILURE)
    code_text = annotations.get(ANNOTATION_EXIT_CODE)
    duration_text = annotations.get(ANNOTATION_DURATION)
    logs = annotations.get(ANNOTATION_LOGS)
    if failure is None and code_text is None and duration_text is None and logs is None:
        return None
    after = 0.0
    if duration_text is not None:
        try:
            after = max(float(duration_text), 0.0)
        except ValueError:
            after = 0.0
    code = 0
    if code_text is not None:
        try:
            code = int(code_text)
        except ValueError:
            code = 0
    logs = logs or ""
    if failure == "ImagePullBackOff":
        return Outcome("image_pull", reason="ImagePullBackOff")
    if failure == "Unschedulable":
        return Outcome("unschedulable", message="0/1 nodes are available: 1 Insufficient cpu.")
    if failure == "OOMKilled":
        return Outcome("exit", 137, "OOMKilled", logs=logs, after=after)
    if failure == "Evicted":
        return Outcome("evict", logs=logs, after=after)
    return Outcome("exit", code, "Completed" if code == 0 else "Error", logs=logs, after=after)


def coerce_exec_result(value: Any) -> ExecResult:
    """Turn what an exec handler returned into an :class:`ExecResult`."""
    if isinstance(value, ExecResult):
        return value
    if value is None:
        return ExecResult(0, b"", b"")
    if isinstance(value, bool):
        return ExecResult(int(value), b"", b"")
    if isinstance(value, int):
        return ExecResult(value, b"", b"")
    if isinstance(value, (str, bytes)):
        return ExecResult(0, _bytes(value), b"")
    if isinstance(value, tuple) and 1 <= len(value) <= 3:
        code = int(value[0])
        out = _bytes(value[1]) if len(value) > 1 else b""
        err = _bytes(value[2]) if len(value) > 2 else b""
        return ExecResult(code, out, err)
    raise TypeError(f"exec handler returned {value!r}; expected ExecResult, int, str or tuple")


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value
