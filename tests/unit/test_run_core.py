"""The run core, driven by plain event lists: no backend, no threads, no clock.

Each case feeds the core what a driver would see (pod versions, a deletion, a cancel, a
callback that raised, the time) and checks what the core asked for and how the run ended.
The tiny driver below answers the core's requests the way RunHandle does: a log read feeds
the collector, a listing gives the pod's events, a refresh gives the pod as it is now.
"""

from __future__ import annotations

from typing import Any

import pytest

from podrunner.backends.base import WatchEvent
from podrunner.errors import (
    ContainerConfigError,
    ImagePullError,
    InitContainerFailed,
    PodLost,
    RunCancelled,
    RunTimeout,
    StartTimeout,
    Unschedulable,
)
from podrunner.run.core import (
    DrainLogs,
    Fail,
    Finish,
    FollowLogs,
    KillPod,
    ListEvents,
    ReadInitLog,
    RefreshPod,
    ReportState,
    RunCore,
    WaitForPod,
)
from podrunner.run.outcome import RunIdentity
from podrunner.run.state import Phase, Reason
from podrunner.spec import CleanupPolicy, Deadlines

RUN = RunIdentity(pod_name="p", namespace="ns", run_id="r1", container="main")
EVENTS = ["Warning: something happened"]
LOG = b"2026-11-27T10:00:01Z hello\n2026-11-27T10:00:02Z world\n"


def pod(
    phase: str = "Pending",
    *,
    node: str | None = None,
    state: dict[str, Any] | None = None,
    deleting: bool = False,
    reason: str | None = None,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    if conditions:
        status["conditions"] = conditions
    if state is not None:
        status["containerStatuses"] = [{"name": "main", "state": state, "restartCount": 0}]
    meta: dict[str, Any] = {"name": "p", "creationTimestamp": "2026-11-27T10:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-27T10:00:09Z"
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [{"name": "main"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": meta, "spec": spec, "status": status}


def done(code: int) -> dict[str, Any]:
    terminated = {
        "exitCode": code,
        "reason": "Completed" if code == 0 else "Error",
        "startedAt": "2026-11-27T10:00:01Z",
        "finishedAt": "2026-11-27T10:00:05Z",
    }
    return pod("Succeeded" if code == 0 else "Failed", node="n1", state={"terminated": terminated})


SCHEDULED = pod(node="n1", state={"waiting": {"reason": "ContainerCreating"}})
RUNNING = pod("Running", node="n1", state={"running": {"startedAt": "2026-11-27T10:00:01Z"}})
PULL_ERROR = pod(
    node="n1", state={"waiting": {"reason": "ErrImagePull", "message": "no such image"}}
)
CONFIG_ERROR = pod(node="n1", state={"waiting": {"reason": "CreateContainerConfigError"}})
UNSCHEDULABLE = pod(
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available",
        }
    ]
)
SCALE_UP = "TriggeredScaleUp: pod triggered scale-up: [{gpu-pool 0->1 (max: 4)}]"
NO_SCALE_UP = "NotTriggerScaleUp: pod didn't trigger scale-up: 1 max node group size reached"
PREEMPTING = pod(conditions=UNSCHEDULABLE["status"]["conditions"])
PREEMPTING["status"]["nominatedNodeName"] = "n1"
BINDING = pod(
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/1 nodes are available: pod has unbound immediate "
            "PersistentVolumeClaims. preemption: 0/1 nodes are available",
        }
    ]
)
EVICTED = pod("Failed", node="n1", reason="Evicted")
INIT_FAILED = pod("Failed", node="n1", state={"waiting": {"reason": "PodInitializing"}})
INIT_FAILED["spec"]["initContainers"] = [{"name": "fetch"}]
INIT_FAILED["status"]["initContainerStatuses"] = [
    {"name": "fetch", "state": {"terminated": {"exitCode": 128, "reason": "Error"}}}
]


class Driver:
    """Feeds the core a script and answers its requests; records what it asked."""

    def __init__(self, core: RunCore, *, refresh: dict[str, Any] | None = None) -> None:
        self.core = core
        self.refresh = refresh  # what a pod read returns (None: 404)
        self.now = 0.0
        self.asked: list[str] = []
        self.events = list(EVENTS)  # what the pod's events are (a script's "events" sets them)

    def feed(self, item: tuple[Any, ...]) -> None:
        what = item[0]
        if what == "pod":
            self._fold(WatchEvent("MODIFIED", item[1]))
        elif what == "deleted":
            self._fold(WatchEvent("DELETED", item[1]))
        elif what == "at":
            self.now = item[1]
        elif what == "cancel":
            self.core.cancel()
        elif what == "callback":
            self.core.callback_failed(item[1])
        elif what == "events":
            self.events = list(item[1])

    def _fold(self, event: WatchEvent) -> None:
        for action in self.core.pod_event(event, self.now):
            self.asked.append(type(action).__name__)

    def run(self, script: list[tuple[Any, ...]]) -> Finish | Fail | WaitForPod:
        """Play ``script``; return the verdict, or the wait the core is left in."""
        script = list(script)
        while True:
            action = self.core.next_action(self.now)
            if isinstance(action, (Finish, Fail)):
                return action
            if isinstance(action, WaitForPod):
                if not script:
                    return action
                self.feed(script.pop(0))
                continue
            self.asked.append(type(action).__name__)
            self.answer(action)

    def answer(self, action: Any) -> None:
        if isinstance(action, RefreshPod):
            if self.refresh is None:
                self.core.pod_missing()
            else:
                self._fold(WatchEvent("MODIFIED", self.refresh))
        elif isinstance(action, DrainLogs):
            logs = self.core.logs
            logs.begin_stream()
            logs.feed(LOG)
            logs.end_stream(complete=True)
            if not action.best_effort:
                self.core.logs_drained("")
        elif isinstance(action, ListEvents):
            self.core.events_listed(list(self.events))
        elif isinstance(action, ReadInitLog):
            self.core.init_log_read("fatal: repository not found\n")


def core(deadlines: Deadlines | None = None, **kw: Any) -> RunCore:
    return RunCore(
        RUN,
        deadlines=deadlines or Deadlines(),
        cleanup=kw.pop("cleanup", CleanupPolicy.ALWAYS),
        created_at=0.0,
        **kw,
    )


# (name, deadlines, script, what a read of the pod returns, asked, outcome): ``asked`` is
# every request the core made, in order, after it saw the pod as created; ``outcome`` is an
# exit code (a result) or the type of the error raised.
R = "ReportState"
CASES: list[tuple[str, Deadlines, list[tuple[Any, ...]], Any, list[str], int | type]] = [
    (
        "success: the log is completed before the result",
        Deadlines(),
        [("pod", SCHEDULED), ("pod", RUNNING), ("pod", done(0))],
        None,
        [R, R, R, R, "DrainLogs"],
        0,
    ),
    (
        "a non-zero exit is a result, not an error",
        Deadlines(),
        [("pod", RUNNING), ("pod", done(3))],
        None,
        [R, R, R, "DrainLogs"],
        3,
    ),
    (
        "an image that cannot be pulled fails fast with the events",
        Deadlines(),
        [("pod", PULL_ERROR)],
        None,
        [R, R, "ListEvents"],
        ImagePullError,
    ),
    (
        "a container that cannot be created fails fast",
        Deadlines(),
        [("pod", CONFIG_ERROR)],
        None,
        [R, R, "ListEvents"],
        ContainerConfigError,
    ),
    (
        "an init container that failed fails fast with its log and the events",
        Deadlines(),
        [("pod", INIT_FAILED)],
        None,
        [R, R, "ReadInitLog", "ListEvents"],
        InitContainerFailed,
    ),
    (
        "a pod no node takes fails fast without an autoscaler grace",
        Deadlines(autoscaler_grace=0),
        [("pod", UNSCHEDULABLE)],
        None,
        [R, R, "ListEvents", R],
        Unschedulable,
    ),
    (
        "a pod no node takes fails when no autoscaler speaks within the grace",
        Deadlines(autoscaler_grace=12),
        [("pod", UNSCHEDULABLE), ("at", 5), ("at", 10), ("at", 15)],
        None,
        [R, R, "ListEvents", "ListEvents", "ListEvents", "ListEvents", R],
        Unschedulable,
    ),
    (
        "a pod no node takes fails at once when the autoscaler cannot help",
        Deadlines(),
        [("events", [NO_SCALE_UP]), ("pod", UNSCHEDULABLE)],
        None,
        [R, R, "ListEvents", R],
        Unschedulable,
    ),
    (
        "a pod waits for the node an autoscaler brings, then runs",
        Deadlines(autoscaler_grace=1),
        [
            ("events", [SCALE_UP]),
            ("pod", UNSCHEDULABLE),
            ("at", 60),
            ("pod", SCHEDULED),
            ("pod", RUNNING),
            ("pod", done(0)),
        ],
        None,
        [R, R, "ListEvents", "ListEvents", R, R, R, "DrainLogs"],
        0,
    ),
    (
        "a scale-up that fails later fails the run at the next look",
        Deadlines(),
        [
            ("events", [SCALE_UP]),
            ("pod", UNSCHEDULABLE),
            ("events", [SCALE_UP, NO_SCALE_UP]),
            ("at", 5),
        ],
        None,
        [R, R, "ListEvents", "ListEvents", R],
        Unschedulable,
    ),
    (
        "a pod being preempted for, or waiting for its volumes, is not refused",
        Deadlines(scheduling=30),
        [("pod", PREEMPTING), ("pod", BINDING), ("at", 30)],
        BINDING,
        [R, R, "RefreshPod", "ListEvents", "KillPod"],
        StartTimeout,
    ),
    (
        "an evicted pod is lost; its log is read and its events listed",
        Deadlines(),
        [("pod", RUNNING), ("pod", EVICTED)],
        None,
        [R, R, R, "DrainLogs", "ListEvents"],
        PodLost,
    ),
    (
        "deleted by someone else before it ran: lost, no log to read",
        Deadlines(),
        [("deleted", pod())],
        None,
        [R, "ListEvents"],
        PodLost,
    ),
    (
        "deleted by someone else while it ran: lost even though it terminated",
        Deadlines(),
        [("pod", RUNNING), ("pod", {**done(137), "metadata": pod(deleting=True)["metadata"]})],
        None,
        [R, R, R, "DrainLogs", "ListEvents"],
        PodLost,
    ),
    (
        "cancel: the pod is killed, then what it wrote is taken",
        Deadlines(),
        [("pod", RUNNING), ("cancel",)],
        None,
        [R, R, "KillPod", "DrainLogs"],
        RunCancelled,
    ),
    (
        "cancel before the container started: killed, no log read",
        Deadlines(),
        [("cancel",)],
        None,
        [R, "KillPod"],
        RunCancelled,
    ),
    (
        "total deadline: one last read of the pod, then log, events, kill",
        Deadlines(total=10),
        [("pod", RUNNING), ("at", 11.0)],
        RUNNING,
        [R, R, "RefreshPod", "DrainLogs", "ListEvents", "KillPod"],
        RunTimeout,
    ),
    (
        "the last read before a deadline finds the pod finished: a result, no timeout",
        Deadlines(total=10),
        [("pod", RUNNING), ("at", 11.0)],
        done(0),
        [R, R, "RefreshPod", R, "DrainLogs"],
        0,
    ),
    (
        "the last read before a deadline finds the pod gone: lost, not timed out",
        Deadlines(total=10),
        [("pod", RUNNING), ("at", 11.0)],
        None,
        [R, R, "RefreshPod", "DrainLogs", "ListEvents"],
        PodLost,
    ),
    (
        "scheduling deadline on a pod never scheduled: StartTimeout, no log read",
        Deadlines(scheduling=5),
        [("at", 6.0)],
        pod(),
        [R, "RefreshPod", "ListEvents", "KillPod"],
        StartTimeout,
    ),
    (
        "start deadline on a pod scheduled but not running",
        Deadlines(start=5),
        [("pod", SCHEDULED), ("at", 6.0)],
        SCHEDULED,
        [R, R, "RefreshPod", "ListEvents", "KillPod"],
        StartTimeout,
    ),
    (
        "a callback that raised stops the run: the pod is killed, the error raised",
        Deadlines(),
        [("pod", RUNNING), ("callback", KeyError("boom"))],
        None,
        [R, R, "KillPod"],
        KeyError,
    ),
]


@pytest.mark.parametrize(
    ("deadlines", "script", "refresh", "asked", "outcome"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_run_core_table(
    deadlines: Deadlines,
    script: list[tuple[Any, ...]],
    refresh: dict[str, Any] | None,
    asked: list[str],
    outcome: int | type,
) -> None:
    driver = Driver(core(deadlines), refresh=refresh)
    driver.feed(("pod", pod()))  # the pod as created
    verdict = driver.run(script)
    assert driver.asked == asked
    if isinstance(outcome, int):
        assert isinstance(verdict, Finish)
        assert verdict.result.exit_code == outcome
        assert verdict.result.logs == "hello\nworld\n"
    else:
        assert isinstance(verdict, Fail)
        assert type(verdict.error) is outcome
        if "ListEvents" in asked:
            assert list(verdict.error.events) == driver.events  # type: ignore[attr-defined]
        if "DrainLogs" in asked:
            assert verdict.error.logs == "hello\nworld\n"  # type: ignore[attr-defined]


def test_a_callback_that_raised_after_the_pod_finished_kills_nothing() -> None:
    run = core()
    run.pod_event(WatchEvent("MODIFIED", done(0)), 0.0)
    run.callback_failed(KeyError("boom"))
    verdict = run.next_action(1.0)
    assert isinstance(verdict, Fail)
    assert isinstance(verdict.error, KeyError)
    assert not run.we_deleted


def test_a_callback_that_raised_during_the_final_read_stops_the_run() -> None:
    """A line of the last log read whose callback raised (in another thread) ends the run."""
    run = core()
    run.pod_event(WatchEvent("MODIFIED", done(0)), 0.0)
    assert run.next_action(1.0) == DrainLogs(best_effort=False)
    run.callback_failed(KeyError("boom"))  # while the driver completed the log
    run.logs_drained("")
    verdict = run.next_action(1.0)
    assert isinstance(verdict, Fail)
    assert isinstance(verdict.error, KeyError)


def test_a_result_carries_the_pods_own_times_and_identity() -> None:
    run = core()
    verdict = Driver(run).run([("pod", RUNNING), ("at", 99.0), ("pod", done(0))])
    assert isinstance(verdict, Finish)
    result = verdict.result
    assert (result.pod_name, result.namespace, result.run_id) == ("p", "ns", "r1")
    assert result.duration == 5.0  # creation 10:00:00 to finish 10:00:05, not the driver's 99
    assert (result.started_at, result.finished_at) == (
        "2026-11-27T10:00:01Z",
        "2026-11-27T10:00:05Z",
    )
    assert result.ok
    assert result.state.phase is Phase.SUCCEEDED


def test_the_verdict_is_given_once_and_then_repeated() -> None:
    run = core()
    driver = Driver(run)
    first = driver.run([("pod", done(0))])
    assert isinstance(first, Finish)
    # Whatever happens next, the run's verdict stands.
    run.cancel()
    assert run.next_action(100.0) is first


def test_waits_until_the_earliest_deadline_still_ahead() -> None:
    run = core(Deadlines(total=100, scheduling=5, start=20))
    assert run.next_action(0.0) == WaitForPod(5)
    run.pod_event(WatchEvent("MODIFIED", SCHEDULED), 1.0)
    assert run.next_action(1.0) == WaitForPod(20)
    run.pod_event(WatchEvent("MODIFIED", RUNNING), 2.0)
    assert run.next_action(2.0) == WaitForPod(100)
    run.limit_total(50.0)  # wait(timeout=48) at t=2
    assert run.next_action(2.0) == WaitForPod(50)


def test_states_are_reported_once_each_and_the_log_followed_when_streamed() -> None:
    run = core(stream_logs=True)
    assert run.pod_event(WatchEvent("MODIFIED", pod()), 0) == [ReportState(run.state)]
    assert run.pod_event(WatchEvent("MODIFIED", pod()), 1) == []
    actions = run.pod_event(WatchEvent("MODIFIED", RUNNING), 2)
    assert actions == [ReportState(run.state), FollowLogs()]
    assert run.state.phase is Phase.RUNNING


@pytest.mark.parametrize(
    ("policy", "success", "terminal", "deleted"),
    [
        (CleanupPolicy.ALWAYS, True, True, ["Pod", "Secret"]),
        (CleanupPolicy.ALWAYS, False, True, ["Pod", "Secret"]),
        (CleanupPolicy.ON_SUCCESS, True, True, ["Pod", "Secret"]),
        (CleanupPolicy.ON_SUCCESS, False, True, []),
        # "Keep" never means "keep running": a failed run's live pod goes.
        (CleanupPolicy.ON_SUCCESS, False, False, ["Pod", "Secret"]),
        (CleanupPolicy.NEVER, True, True, []),
        (CleanupPolicy.NEVER, False, False, []),
    ],
)
def test_cleanup_is_decided_once_by_the_policy(
    policy: CleanupPolicy, success: bool, terminal: bool, deleted: list[str]
) -> None:
    run = core(cleanup=policy, extras=(("Secret", "p-secret"),))
    run.pod_event(WatchEvent("MODIFIED", done(1) if terminal else RUNNING), 0)
    assert [kind for kind, _ in run.cleanup_targets(success=success)] == deleted
    assert run.we_deleted is bool(deleted)


def test_only_reasons_the_reducer_produces_exist() -> None:
    assert {r.name for r in Reason} == {
        "COMPLETED",
        "ERROR",
        "OOM_KILLED",
        "DEADLINE_EXCEEDED",
        "EVICTED",
        "CRASH_LOOP",
        "IMAGE_PULL_ERROR",
        "CONFIG_ERROR",
        "UNSCHEDULABLE",
        "INIT_CONTAINER_FAILED",
        "UNKNOWN",
    }


def test_a_timed_out_run_is_killed_once_and_counts_as_deleted_by_us() -> None:
    run = core(Deadlines(total=1))
    driver = Driver(run, refresh=RUNNING)
    verdict = driver.run([("pod", RUNNING), ("at", 2.0)])
    assert isinstance(verdict, Fail)
    assert driver.asked.count(KillPod.__name__) == 1
    assert run.we_deleted


def core_table() -> str:
    """The run core's behaviour as a Markdown table, generated from :data:`CASES`."""
    rows = [
        "| situation | what the core asks the driver, in order | outcome |",
        "|---|---|---|",
    ]
    for name, _, _, _, asked, outcome in CASES:
        steps = [step for step in asked if step != R] or ["(nothing)"]
        if isinstance(outcome, int):
            end = f"`RunResult` (exit {outcome})"
        else:
            end = f"raises `{outcome.__name__}`"
        rows.append(f"| {name} | {' → '.join(f'`{s}`' for s in steps)} | {end} |")
    return "\n".join(rows) + "\n"


def test_the_docs_show_the_core_as_the_code_has_it() -> None:
    """docs/concepts.md carries the table above (regenerate: python tests/unit/test_run_core.py)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "concepts.md").read_text()
    start = text.index("<!-- core-table:start -->\n") + len("<!-- core-table:start -->\n")
    end = text.index("<!-- core-table:end -->")
    assert text[start:end] == core_table()


if __name__ == "__main__":
    print(core_table(), end="")
