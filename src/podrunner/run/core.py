"""The run core: the life of one run as a state machine, without I/O (sans-I/O, like h11).

A driver (the threaded :class:`~podrunner.RunHandle` today) feeds the core what happened (pod
versions from the watch, a missing pod, cancel, a callback that raised, logs read, events
listed, and the time) and asks it what to do next. The core answers with actions (wait for
the pod until a deadline, read the pod once more, delete it, complete the log, list the pod's
events, follow the log, report a state, finish with a result, fail with an error). It never
sleeps, opens a socket, starts a thread or calls a backend, so every rule below is tested with
plain event lists (``tests/unit/test_run_core.py``):

- deadlines (total, scheduling, start), with one last read of the pod before one is declared
  passed (its final event may still be on its way);
- fail fast on an image that cannot be pulled, a pod no node takes, a container that cannot
  be created, an init container that failed (with the pod's events, and the failed init
  container's log);
- a pod no node takes yet: it waits while a cluster autoscaler says a node is coming (its
  events, looked at again every :data:`CAPACITY_RECHECK` seconds), and fails when none does
  within ``Deadlines.autoscaler_grace`` or the autoscaler says it cannot help;
- the pod going away (evicted, deleted by someone else) and cancel;
- the log: the :class:`~podrunner.run.logs.LogCollector` (resume without duplicates) belongs
  to the core; drivers feed it and the verdict reads it;
- files asked for with ``collect=``: copied out of the pod's collector once the main
  container has ended, before the verdict and before cleanup deletes the pod;
- the verdict, once: final state -> :class:`RunResult` or a :class:`RunError`;
- what cleanup deletes, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from podrunner.backends.base import Kind, WatchEvent
from podrunner.errors import CollectFailed
from podrunner.run.collect import Collect, CollectedFiles
from podrunner.run.logs import LogCollector
from podrunner.run.outcome import (
    DeadlineName,
    RunIdentity,
    RunResult,
    cancelled_error,
    fail_fast_error,
    is_fail_fast,
    lost_error,
    run_result,
    timeout_error,
)
from podrunner.run.state import Phase, PodState, Reason, reduce
from podrunner.spec import CleanupPolicy, Deadlines

__all__ = [
    "CAPACITY_RECHECK",
    "Action",
    "CollectFiles",
    "DrainLogs",
    "Fail",
    "Finish",
    "FollowLogs",
    "KillPod",
    "ListEvents",
    "ReadInitLog",
    "RefreshPod",
    "ReportState",
    "RunCore",
    "WaitForPod",
]


@attrs.frozen
class WaitForPod:
    """Wait for the pod's next events (or a cancel) until ``deadline`` (``None``: no limit)."""

    deadline: float | None


@attrs.frozen
class RefreshPod:
    """Read the pod once (a deadline passed; its last event may still be on its way)."""


@attrs.frozen
class KillPod:
    """Delete the pod now, without a grace period."""


@attrs.frozen
class DrainLogs:
    """Complete the log into the collector: stop following, read the rest from the last stamp.

    ``best_effort``: the container may still run (timeout, cancel, lost pod): take what is
    there without waiting, and ignore a failed read. Otherwise report a note with
    :meth:`RunCore.logs_drained` when the log is incomplete.
    """

    best_effort: bool


@attrs.frozen
class ListEvents:
    """List the pod's events and give them to :meth:`RunCore.events_listed`."""


@attrs.frozen
class ReadInitLog:
    """Read the failed init container's log and give it to :meth:`RunCore.init_log_read`."""

    container: str


@attrs.frozen
class CollectFiles:
    """Copy the files out of the pod's collector container (it outlived the main one).

    Give them to :meth:`RunCore.files_collected`, or why not to :meth:`RunCore.collect_failed`.
    """

    collect: Collect


@attrs.frozen
class FollowLogs:
    """Start following the container's log (it has started and someone streams it)."""


@attrs.frozen
class ReportState:
    """Tell the user's ``on_state`` callback about a new state."""

    state: PodState


@attrs.frozen
class Finish:
    """The run is over: this is its result."""

    result: RunResult


@attrs.frozen
class Fail:
    """The run is over without a result: raise this."""

    error: BaseException


Action = (
    WaitForPod
    | RefreshPod
    | KillPod
    | DrainLogs
    | ListEvents
    | ReadInitLog
    | CollectFiles
    | FollowLogs
    | ReportState
    | Finish
    | Fail
)
"""What :class:`RunCore` asks its driver to do."""

_PENDING = PodState(Phase.PENDING)


CAPACITY_RECHECK = 5.0
"""Seconds between looks at the events of a pod that waits for an autoscaler's node."""

# Event reasons on a pod no node takes: a node is coming (cluster-autoscaler's
# TriggeredScaleUp, Karpenter's Nominated), or no node group can help. The newest one decides.
_SCALING_UP = frozenset({"TriggeredScaleUp", "Nominated"})
_NOT_SCALING_UP = frozenset({"NotTriggerScaleUp"})


def capacity_coming(events: list[str]) -> bool | None:
    """What the newest autoscaler event (``"Reason: message"``, oldest first) says, if any."""
    for line in reversed(events):
        reason = line.partition(":")[0]
        if reason in _SCALING_UP:
            return True
        if reason in _NOT_SCALING_UP:
            return False
    return None


class RunCore:
    """The rules of one run, as a state machine (see the module docstring).

    Args:
        run: Which run (pod, namespace, run id, container).
        deadlines: The run's budgets, counted from ``created_at``.
        cleanup: What to delete afterwards.
        created_at: When the run began, on the driver's monotonic clock.
        extras: ``(kind, name)`` of the objects created with the pod (its Secret, ConfigMap).
        log_limit_bytes: Keep at most this much output.
        stream_logs: Whether the log is followed as it comes (someone wants the lines).
        report_states: Whether new states are reported (someone wants them).
        collect: The files to copy out once the main container has ended (``None``: none).
    """

    def __init__(
        self,
        run: RunIdentity,
        *,
        deadlines: Deadlines,
        cleanup: CleanupPolicy,
        created_at: float,
        extras: tuple[tuple[Kind, str], ...] = (),
        log_limit_bytes: int | None = None,
        stream_logs: bool = False,
        report_states: bool = True,
        collect: Collect | None = None,
    ) -> None:
        self.run = run
        self.deadlines = deadlines
        self.cleanup = cleanup
        self.created_at = created_at
        self.extras = extras
        self.logs = LogCollector(max_bytes=log_limit_bytes)
        """The run's log; drivers feed it (under their own lock), the verdict reads it."""
        self.stream_logs = stream_logs
        self.report_states = report_states
        self.state = _PENDING
        self.pod: Mapping[str, Any] | None = None
        self.gone = False
        self.cancelled = False
        self.callback_error: BaseException | None = None
        self.we_deleted = False
        self._reported: PodState | None = None
        self._seen_deleting = False
        self._scheduled_at: float | None = None
        self._running_at: float | None = None
        self._refreshed_for: float | None = None
        self._steps: list[Action] = []
        self._verdict: Callable[[float], Action] | None = None
        self._final: Action | None = None
        self._events: list[str] = []
        self._log_note = ""
        self._init_log = ""
        self.collect = collect
        self._files: CollectedFiles | None = None
        self._collect_problem = ""
        # A pod the scheduler refused, while the autoscaler's word is awaited: "ask" (list
        # its events), "listed" (decide), "wait" (until _capacity_look), "no" (fail).
        self._capacity = ""
        self._refused: PodState | None = None
        self._refused_at = 0.0
        self._capacity_look = 0.0

    # -- events ---------------------------------------------------------------------------

    def pod_event(self, event: WatchEvent, now: float) -> list[Action]:
        """Fold one watch event (or a pod read, as ``MODIFIED``) into the run."""
        if event.type != "DELETED":
            return self._observe(event.object, now)
        actions = self._observe(event.object, now) if event.object.get("status") else []
        self.gone = True
        return actions

    def pod_missing(self) -> None:
        """A read of the pod answered 404: it is gone."""
        self.gone = True

    def cancel(self) -> None:
        """The user cancelled the run."""
        self.cancelled = True

    def callback_failed(self, exc: BaseException) -> None:
        """A user callback raised ``exc``: the run stops and ``exc`` reaches the caller."""
        if self.callback_error is None:
            self.callback_error = exc

    def limit_total(self, limit: float) -> None:
        """Make the total deadline end no later than ``limit`` (``wait(timeout=...)``)."""
        total = self.deadlines.total
        if total is None or self.created_at + total > limit:
            self.deadlines = attrs.evolve(self.deadlines, total=limit - self.created_at)

    def logs_drained(self, note: str) -> None:
        """The log was completed (``note`` says why it is not, if it is not)."""
        self._log_note = note

    def events_listed(self, events: list[str]) -> None:
        """The pod's events, for the error that is about to be raised."""
        self._events = events

    def init_log_read(self, text: str) -> None:
        """The failed init container's log, for the error that is about to be raised."""
        self._init_log = text

    def files_collected(self, files: CollectedFiles) -> None:
        """The files copied out of the pod, for the result."""
        self._files = files

    def collect_failed(self, why: str) -> None:
        """The files could not be copied out: the run fails with ``CollectFailed``."""
        self._collect_problem = why

    # -- decisions --------------------------------------------------------------------------

    @property
    def container_started(self) -> bool:
        """Whether the container was seen running or terminated (so it has a log)."""
        return self._running_at is not None or self.state.container_ran

    def next_action(self, now: float) -> Action:
        """What the driver does next; ``now`` is its monotonic clock."""
        if self._steps:
            return self._steps.pop(0)
        if self._verdict is not None:
            # A callback that raised while the run was ending (on a line of the final read)
            # still stops it: its error, not the verdict, reaches the caller.
            error = self.callback_error
            self._final = self._verdict(now) if error is None else Fail(error)
            self._verdict = None
        if self._final is not None:
            return self._final
        look = self._capacity_step(now)
        if look is not None:
            return look
        ending = self._ending()
        if ending:
            return self.next_action(now)
        deadline, which = self.next_deadline()
        if self._capacity == "wait" and (deadline is None or self._capacity_look < deadline):
            return WaitForPod(self._capacity_look)
        if deadline is None or now < deadline:
            return WaitForPod(deadline)
        if self._refreshed_for != deadline:
            self._refreshed_for = deadline
            return RefreshPod()
        self._end_timeout(which)
        return self.next_action(now)

    def next_deadline(self) -> tuple[float | None, DeadlineName]:
        """The earliest deadline still ahead of the run, and which one it is."""
        d = self.deadlines
        candidates: list[tuple[float, DeadlineName]] = []
        if d.total is not None:
            candidates.append((self.created_at + d.total, "total"))
        if d.scheduling is not None and self._scheduled_at is None:
            candidates.append((self.created_at + d.scheduling, "scheduling"))
        if d.start is not None and self._running_at is None and not self.state.terminal:
            candidates.append((self.created_at + d.start, "start"))
        if not candidates:
            return None, "total"
        return min(candidates)

    def settled(self, now: float) -> bool:
        """Whether the run would end without waiting for the cluster."""
        if self.state.terminal or self.gone or self.cancelled or self.callback_error:
            return True
        deadline, _ = self.next_deadline()
        return deadline is not None and now >= deadline

    def cleanup_targets(self, *, success: bool) -> tuple[tuple[Kind, str], ...]:
        """What cleanup deletes under the run's policy (decided here, once).

        "Keep" never means "keep running": a kept run whose pod is still alive loses its pod.
        """
        policy = self.cleanup
        keep = policy is CleanupPolicy.NEVER or (policy is CleanupPolicy.ON_SUCCESS and not success)
        if keep and (self.state.terminal or policy is CleanupPolicy.NEVER):
            return ()
        self.we_deleted = True
        return (("Pod", self.run.pod_name), *self.extras)

    # -- internals --------------------------------------------------------------------------

    def _observe(self, pod: Mapping[str, Any], now: float) -> list[Action]:
        self.pod = pod
        state = self._refusal(reduce(pod, self.run.container), now)
        if state.deleting:
            self._seen_deleting = True
        if state.node_name and self._scheduled_at is None:
            self._scheduled_at = now
        if state.phase is Phase.RUNNING and self._running_at is None:
            self._running_at = now
        prev, self._reported = self._reported, state
        self.state = state
        actions: list[Action] = []
        if self.report_states and (
            prev is None
            or state.phase is not prev.phase
            or state.reason is not prev.reason
            or state.detail != prev.detail
        ):
            actions.append(ReportState(state))
        if self.stream_logs and (state.phase is Phase.RUNNING or state.container_ran):
            actions.append(FollowLogs())
        return actions

    def _refusal(self, state: PodState, now: float) -> PodState:
        """A pod the scheduler refused stays pending while an autoscaler may bring a node."""
        if state.reason is not Reason.UNSCHEDULABLE:
            self._capacity, self._refused = "", None
            return state
        if self._capacity == "no":
            return state
        if not self._capacity:
            self._capacity, self._refused_at = "ask", now
        self._refused = state
        return attrs.evolve(state, phase=Phase.PENDING, reason=None)

    def _capacity_step(self, now: float) -> Action | None:
        """Look at the events of a refused pod, or decide on what they said."""
        if self._capacity == "ask" or (self._capacity == "wait" and now >= self._capacity_look):
            self._capacity = "listed"
            return ListEvents()
        if self._capacity != "listed" or self._refused is None:
            return None
        coming = capacity_coming(self._events)
        grace_over = now >= self._refused_at + self.deadlines.autoscaler_grace
        if coming or (coming is None and not grace_over):
            self._capacity, self._capacity_look = "wait", now + CAPACITY_RECHECK
        else:
            self._capacity, self.state = "no", self._refused
            self._reported = self._refused
            return ReportState(self._refused) if self.report_states else None
        return None

    def _end(self, steps: list[Action], verdict: Callable[[float], Action]) -> bool:
        self._steps = steps
        self._verdict = verdict
        return True

    def _kill(self) -> list[Action]:
        self.we_deleted = True
        return [KillPod()]

    def _drain_best_effort(self) -> list[Action]:
        # A container that never started has no log to read.
        return [DrainLogs(best_effort=True)] if self.container_started else []

    def _ending(self) -> bool:
        """Start the ending the run has reached, if any; whether there is one."""
        error = self.callback_error
        if error is not None:
            return self._end([] if self.state.terminal else self._kill(), lambda _: Fail(error))
        state = self.state
        if state.terminal:
            return self._end_terminal(state)
        if self.gone:
            return self._end_lost("the pod was deleted by someone else before it finished")
        if self.cancelled:
            steps = self._kill() + self._drain_best_effort()
            return self._end(
                steps, lambda _: Fail(cancelled_error(self.state, self.run, self.logs.text))
            )
        return False

    def _end_terminal(self, state: PodState) -> bool:
        if is_fail_fast(state):
            init = state.init_container
            # A refused pod's events were just listed, to hear from an autoscaler.
            listed = state.reason is Reason.UNSCHEDULABLE and self._capacity == "no"
            steps: list[Action] = [] if listed else [ListEvents()]
            if state.reason is Reason.INIT_CONTAINER_FAILED and init is not None:
                steps.insert(0, ReadInitLog(init))
            return self._end(
                steps,
                lambda _: Fail(
                    fail_fast_error(state, self.run, self._events, self._init_log) or RuntimeError()
                ),
            )
        if state.reason is Reason.EVICTED:
            return self._end_lost(f"the pod was evicted: {state.message}".rstrip(": "))
        if self._seen_deleting and not self.we_deleted and state.reason is not Reason.COMPLETED:
            return self._end_lost("the pod was deleted by someone else while it ran")
        last: list[Action] = [DrainLogs(best_effort=False)]
        if self.collect is not None and state.container_ran:
            # Before cleanup: the collector container dies with the pod.
            last.append(CollectFiles(self.collect))
        return self._end(last, self._result)

    def _result(self, now: float) -> Action:
        result = run_result(
            self.state,
            self.pod or {},
            self.run,
            logs=self.logs.text,
            truncated=self.logs.truncated,
            note=self._log_note,
            elapsed=now - self.created_at,
        )
        if self._collect_problem:
            return Fail(
                CollectFailed(
                    f"the container ended but its files were not collected: "
                    f"{self._collect_problem}",
                    result=result,
                    **self.run.context(self.state),
                    logs=self.logs.text,
                )
            )
        if self._files is not None:
            result = attrs.evolve(result, files=self._files)
        return Finish(result)

    def _end_lost(self, why: str) -> bool:
        # An evicted pod still exists and its log can be read; a deleted one answers 404 and
        # keeps what was streamed. Either way the caller gets all the output there is.
        return self._end(
            [*self._drain_best_effort(), ListEvents()],
            lambda _: Fail(lost_error(why, self.state, self.run, self._events, self.logs.text)),
        )

    def _end_timeout(self, which: DeadlineName) -> None:
        steps = [*self._drain_best_effort(), ListEvents(), *self._kill()]
        self._end(
            steps,
            lambda _: Fail(
                timeout_error(
                    which, self.deadlines, self.state, self.run, self._events, self.logs.text
                )
            ),
        )
