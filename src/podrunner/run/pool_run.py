"""What one run in a pool's pod turns into, without I/O: shared by both pool drivers.

The command, checked; the exec's failures as the run's errors (:class:`RunTimeout`,
:class:`PodLost`); its result as a :class:`RunResult`; the files copied out of the pod; and,
while a run waits for a warm pod, the run engine's errors for a pod that will not start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from podrunner.backends.base import ExecChunk, ExecResult
from podrunner.errors import (
    BackendError,
    BackendUnavailable,
    BadRequest,
    CollectFailed,
    NotFound,
    PodLost,
    RunError,
    RunTimeout,
    SpecError,
    StartTimeout,
)
from podrunner.run.collect import CollectedFiles, CollectProblem
from podrunner.run.core import CAPACITY_RECHECK, capacity_coming
from podrunner.run.outcome import RunIdentity, RunResult, fail_fast_error
from podrunner.run.state import Phase, PodState, Reason

__all__ = [
    "EXEC_FAILURES",
    "ClaimedPod",
    "ExecOutput",
    "RefusedPod",
    "check_argv",
    "exec_failure",
    "exec_result",
    "start_error",
    "stdin_bytes",
    "timed_out",
    "with_files",
]


@attrs.define
class ClaimedPod:
    """A pool pod held by one run (what :meth:`PodPool.claim` yields).

    Attributes:
        name: The pod's name.
        namespace: Its namespace.
        container: The container commands run in (the spec's main container).
        claim_id: The claim's id (the ``podrunner.dev/claim-id`` annotation).
        reusable: Whether the pod may go back to the pool afterwards (``False`` once a
            command timed out or failed halfway: it may still run).
    """

    name: str
    namespace: str
    container: str
    claim_id: str
    reusable: bool = True


def check_argv(argv: object) -> list[str]:
    """A run's command, checked before any API call.

    Raises:
        SpecError: ``argv`` is not a non-empty list of strings.
    """
    if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not argv:
        raise SpecError("argv", argv, "must be a non-empty list of strings")
    if not all(isinstance(a, str) for a in argv):
        raise SpecError("argv", argv, "must be a non-empty list of strings")
    return list(argv)


def stdin_bytes(stdin: bytes | str | None) -> bytes | None:
    """A run's standard input as bytes (text is sent as UTF-8)."""
    return stdin.encode() if isinstance(stdin, str) else stdin


def timed_out(timeout: float | None, elapsed: float) -> bool:
    """Whether an exec that broke after ``elapsed`` seconds hit the run's ``timeout``.

    A backend ends an exec that outlives its timeout by closing the stream
    (:class:`~podrunner.errors.BackendUnavailable`); a break well before it is a failure.
    """
    return timeout is not None and elapsed >= timeout * 0.9


EXEC_FAILURES = (BackendUnavailable, NotFound, BadRequest)
"""The exec failures :func:`exec_failure` turns into a run's error (the pod is spent)."""


def exec_failure(
    exc: BackendError,
    *,
    pod_name: str,
    namespace: str,
    claim_id: str,
    timeout: float | None,
    elapsed: float,
) -> RunError | None:
    """The run's error for an exec in a claimed pod that failed with ``exc`` (``None``: ``exc``).

    A stream closed at the run's timeout is ``RunTimeout``; a pod or container that is gone
    (404, or the API server's 400 for a container no longer running) is ``PodLost``.
    """
    if isinstance(exc, BackendUnavailable):
        if timeout is not None and timed_out(timeout, elapsed):
            return RunTimeout(
                f"command did not finish within {timeout:g}s",
                pod_name=pod_name,
                namespace=namespace,
                run_id=claim_id,
            )
        return None
    if isinstance(exc, (NotFound, BadRequest)):
        return PodLost(
            f"the pool pod went away during the run: {exc}",
            pod_name=pod_name,
            namespace=namespace,
            run_id=claim_id,
        )
    return None


def start_error(name: str, state: PodState, namespace: str) -> RunError:
    """The run engine's error for the pool pod ``name`` in ``state``: it will not start."""
    error = fail_fast_error(state, RunIdentity(name, namespace, ""), [])
    return error or StartTimeout(f"pool pod {name} did not start", namespace=namespace)


class RefusedPod:
    """When a run waiting for a warm pod decides on a pool pod the scheduler refused.

    As the run engine does for a run's pod: wait ``grace`` seconds for a cluster autoscaler,
    then read the pod's events; a scale-up under way means look again in
    :data:`~podrunner.run.core.CAPACITY_RECHECK` seconds, anything else is
    :class:`~podrunner.errors.Unschedulable`.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.since: tuple[str, float] | None = None

    def due(self, unplaced: tuple[str, PodState] | None, now: float) -> float | None:
        """Seconds until the next look (``inf``: no pod refused); ``None``: read its events."""
        if unplaced is None:
            self.since = None
            return math.inf
        if self.since is None or self.since[0] != unplaced[0]:
            self.since = (unplaced[0], now)
        left = self.since[1] + self.grace - now
        return left if left > 0 else None

    def verdict(self, unplaced: tuple[str, PodState], events: list[str], namespace: str) -> float:
        """Seconds until the next look while a node is coming.

        Raises:
            Unschedulable: No autoscaler is bringing a node for the pod.
        """
        if capacity_coming(events):
            return CAPACITY_RECHECK
        name, state = unplaced
        error = fail_fast_error(state, RunIdentity(name, namespace, ""), events)
        raise error or start_error(name, state, namespace)


def exec_result(
    result: ExecResult, pod: ClaimedPod, *, duration: float, log_limit_bytes: int | None
) -> RunResult:
    """The :class:`RunResult` of a command run in a claimed pod.

    ``logs`` is standard output followed by standard error (exec keeps them apart; the
    tail is kept when ``log_limit_bytes`` is exceeded). ``run_id`` is the claim id.
    """
    out = result.stdout + result.stderr
    truncated = log_limit_bytes is not None and len(out) > log_limit_bytes
    if truncated:
        out = out[len(out) - (log_limit_bytes or 0) :]
    code = result.exit_code
    state = PodState(
        Phase.SUCCEEDED if code == 0 else Phase.FAILED,
        Reason.COMPLETED if code == 0 else Reason.ERROR,
        exit_code=code,
    )
    return RunResult(
        pod_name=pod.name,
        namespace=pod.namespace,
        run_id=pod.claim_id,
        state=state,
        exit_code=code,
        logs=out.decode("utf-8", errors="replace"),
        logs_truncated=truncated,
        duration=duration,
    )


def with_files(result: RunResult, files: CollectedFiles | CollectProblem) -> RunResult:
    """The run's result with the files copied out of its pod.

    Raises:
        CollectFailed: The copy failed (``files`` is why), with the command's result.
    """
    if isinstance(files, CollectProblem):
        raise CollectFailed(
            f"the command ended but its files were not collected: {files}",
            result=result,
            pod_name=result.pod_name,
            namespace=result.namespace,
            run_id=result.run_id,
            state=result.state,
            logs=result.logs,
        )
    return attrs.evolve(result, files=files)


class ExecOutput:
    """A streamed exec's output: kept whole per stream, and cut into lines as it arrives."""

    def __init__(self) -> None:
        self._data = {"stdout": bytearray(), "stderr": bytearray()}
        self._partial = {"stdout": b"", "stderr": b""}

    def feed(self, chunk: ExecChunk) -> list[str]:
        """Keep ``chunk``; return the lines it completes (without newlines)."""
        self._data[chunk.stream] += chunk.data
        *complete, self._partial[chunk.stream] = (self._partial[chunk.stream] + chunk.data).split(
            b"\n"
        )
        return [raw.decode("utf-8", "replace") for raw in complete]

    def end(self) -> list[str]:
        """The last line of each stream when it had no newline."""
        rest = [raw.decode("utf-8", "replace") for raw in self._partial.values() if raw]
        self._partial = {"stdout": b"", "stderr": b""}
        return rest

    def result(self, exit_code: int) -> ExecResult:
        """The whole output, as :meth:`~podrunner.Backend.exec` returns it."""
        return ExecResult(exit_code, bytes(self._data["stdout"]), bytes(self._data["stderr"]))
