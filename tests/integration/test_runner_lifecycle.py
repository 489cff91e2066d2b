"""PodRunner through every lifecycle outcome, unchanged on the fake, kwok and kind.

Outcomes are chosen with the simulation annotations, which the fake and the kwok stages
honour (a real kubelet would run the command, written to do the same thing). Run on a real
API server with ``nox -s integration`` (``--podrunner-backend=kwok``); by default these run on
the fake. After every test nothing managed by podrunner is left in the namespace.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from podrunner import CleanupPolicy, Deadlines, PodRunner, PodSpec
from podrunner.backends.base import Backend
from podrunner.errors import ImagePullError, PodLost, RunTimeout, Unschedulable
from podrunner.manifest import MANAGED_SELECTOR
from podrunner.run.state import Phase, Reason
from podrunner.testing.controlplane.kwok import NODE_NAME

pytestmark = pytest.mark.integration


def spec(**sim: str) -> PodSpec:
    """A pod whose outcome the simulation annotations decide."""
    annotations = {
        f"sim.podrunner.dev/{key.replace('_', '-')}": value for key, value in sim.items()
    }
    return PodSpec(image="busybox:1.36", command=["sh", "-c", "true"], annotations=annotations)


def managed(backend: Backend, namespace: str) -> list[str]:
    out = []
    for kind in ("Pod", "Secret", "ConfigMap"):
        listed = backend.list(kind, namespace, label_selector=MANAGED_SELECTOR)  # type: ignore[arg-type]
        out += [f"{kind}/{o['metadata']['name']}" for o in listed.items]
    return out


@pytest.fixture
def runner(
    podrunner_runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> Iterator[PodRunner]:
    yield podrunner_runner
    # Deletes are asynchronous on a real server (grace periods, the garbage collector): poll.
    clock = podrunner_backend.clock
    deadline = clock.monotonic() + 60
    while managed(podrunner_backend, podrunner_namespace) and clock.monotonic() < deadline:
        clock.sleep(0.5)
    assert managed(podrunner_backend, podrunner_namespace) == []


def test_success_with_logs(runner: PodRunner) -> None:
    """Exit 0 and the exact output, through pods/log."""
    result = runner.run(spec(logs="hello\nworld\n", duration="1"), timeout=120)
    assert (result.exit_code, result.logs) == (0, "hello\nworld\n")
    assert result.state.phase is Phase.SUCCEEDED


def test_exit_code_three(runner: PodRunner) -> None:
    """A failing container is a result with its exit code, not an error."""
    result = runner.run(spec(exit_code="3", logs="boom\n"), timeout=120)
    assert (result.exit_code, result.reason, result.logs) == (3, Reason.ERROR, "boom\n")


def test_image_pull_error_fails_fast(runner: PodRunner) -> None:
    """ImagePullBackOff raises ImagePullError without waiting out the timeout."""
    clock = runner.clock
    start = clock.monotonic()
    with pytest.raises(ImagePullError):
        runner.run(spec(failure="ImagePullBackOff"), timeout=600)
    assert clock.monotonic() - start < 60


def test_unschedulable_fails_fast(runner: PodRunner) -> None:
    """An unschedulable pod raises Unschedulable with the scheduler's words."""
    with pytest.raises(Unschedulable):
        runner.run(spec(failure="Unschedulable"), timeout=600)


def test_oom_killed(runner: PodRunner) -> None:
    """OOMKilled is a result with that reason."""
    result = runner.run(spec(failure="OOMKilled"), timeout=120)
    assert result.reason is Reason.OOM_KILLED


def test_evicted_is_pod_lost(runner: PodRunner) -> None:
    """An evicted pod raises PodLost."""
    with pytest.raises(PodLost):
        runner.run(spec(failure="Evicted"), timeout=120)


def test_timeout_kills_the_pod(runner: PodRunner) -> None:
    """A run past its total budget raises RunTimeout and its pod is deleted."""
    with pytest.raises(RunTimeout):
        runner.run(spec(duration="600"), timeout=5)


def test_external_delete_is_pod_lost(
    runner: PodRunner, podrunner_backend: Backend, podrunner_namespace: str
) -> None:
    """A pod deleted by someone else mid-run raises PodLost instead of hanging."""

    def on_state(state: Any) -> None:
        if state.phase is Phase.RUNNING:
            for pod in podrunner_backend.list(
                "Pod", podrunner_namespace, label_selector=MANAGED_SELECTOR
            ).items:
                podrunner_backend.delete(
                    "Pod", podrunner_namespace, pod["metadata"]["name"], grace_period_seconds=0
                )

    with pytest.raises(PodLost):
        runner.run(spec(duration="600"), timeout=300, on_state=on_state)


def test_ctrl_c_cleans_up(runner: PodRunner) -> None:
    """KeyboardInterrupt while the pod runs propagates after the pod and Secret are deleted."""

    def on_state(state: Any) -> None:
        if state.phase is Phase.RUNNING:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(
            spec(duration="600").with_secret_env(TOKEN="s3cret"), timeout=300, on_state=on_state
        )


def test_secret_run_leaves_nothing(runner: PodRunner) -> None:
    """A run with a per-run Secret returns its result and removes the Secret."""
    result = runner.run(spec(logs="ok\n").with_secret_env(TOKEN="s3cret"), timeout=120)
    assert result.logs == "ok\n"


def test_reap(runner: PodRunner) -> None:
    """reap(older_than=0) deletes a kept run's pod and Secret."""
    runner.run(
        spec(logs="kept\n").with_secret_env(TOKEN="x"), timeout=120, cleanup=CleanupPolicy.NEVER
    )
    report = runner.reap(older_than=0)
    assert {kind for kind, _, _ in report.deleted} == {"Pod", "Secret"}


def test_run_many(runner: PodRunner) -> None:
    """Several concurrent runs all return their own output."""
    specs = [spec(logs=f"run {i}\n", duration="1") for i in range(5)]
    outcomes = list(runner.run_many(specs, max_parallel=5, timeout=120))
    assert sorted(o.logs for o in outcomes if not isinstance(o, Exception)) == [
        f"run {i}\n" for i in range(5)
    ]


# kwok's followed log never ends (a real kubelet can also leave one open): the runner must
# finish the log from the status, not wait for the stream. Before, every streamed run waited
# a 10 s drain and handle.logs() never ended. The bound is far below that and far above a
# normal run's end (tens of milliseconds).
PROMPT_SECONDS = 5.0
STREAMED = "".join(f"line {i} ✓\n" for i in range(30)) + "last, without a newline"


def test_on_log_run_returns_promptly(runner: PodRunner) -> None:
    """run(on_log=...) streams each line once and returns soon after the container ends."""
    lines: list[str] = []
    clock = runner.clock
    start = clock.monotonic()
    result = runner.run(spec(logs=STREAMED, duration="1"), timeout=120, on_log=lines.append)
    took = clock.monotonic() - start
    assert (result.exit_code, result.logs) == (0, STREAMED)
    assert lines == STREAMED.splitlines()
    assert took < 1.0 + PROMPT_SECONDS, took
    # The follower's stream is closed, not left open until the server gives up on it.
    for thread in threading.enumerate():
        if thread.name == f"podrunner-logs-{result.pod_name}":
            thread.join(30)
            assert not thread.is_alive()


@pytest.mark.timeout(120)
def test_handle_logs_ends(runner: PodRunner) -> None:
    """The docs/running.md loop: handle.logs() ends when the container does, output exact."""
    clock = runner.clock
    with runner.start(spec(logs=STREAMED, duration="1"), timeout=120) as handle:
        start = clock.monotonic()
        lines = list(handle.logs())
        took = clock.monotonic() - start
        result = handle.wait()
    assert lines == STREAMED.splitlines()
    assert (result.exit_code, result.logs) == (0, STREAMED)
    assert took < 1.0 + PROMPT_SECONDS, took


def test_a_refused_pod_waits_for_the_node_an_autoscaler_announces(
    runner: PodRunner,
    podrunner_backend: Backend,
    podrunner_namespace: str,
    podrunner_backend_name: str,
) -> None:
    """On a real scheduler, TriggeredScaleUp keeps a refused run waiting past the grace.

    The node that then appears (the kwok node gains the label the pod needs) takes it, and it
    runs to its end.
    """
    if podrunner_backend_name != "kwok":
        pytest.skip("needs the real scheduler to retry the pod when a node changes")
    backend: Any = podrunner_backend
    ns = podrunner_namespace
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = runner.run(
                spec(failure="Unschedulable", logs="trained\n"), timeout=300
            )
        except Exception as exc:  # reported by the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    clock = backend.clock
    try:
        pod = _refused_pod(backend, ns)
        stamp = pod["metadata"]["creationTimestamp"]
        name = pod["metadata"]["name"]
        involved = {"apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns}
        backend.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.scale-up", "namespace": ns},
                "involvedObject": {**involved, "uid": pod["metadata"]["uid"]},
                "reason": "TriggeredScaleUp",
                "message": "pod triggered scale-up: [{kwok-pool 1->2 (max: 3)}]",
                "type": "Normal",
                "source": {"component": "cluster-autoscaler"},
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "count": 1,
            }
        )
        clock.sleep(Deadlines().autoscaler_grace + 5)
        assert thread.is_alive(), f"the run ended while a node was coming: {outcome}"
        _label_node(backend, "true")
        thread.join(120)
        assert "error" not in outcome, outcome
        assert (outcome["result"].exit_code, outcome["result"].logs) == (0, "trained\n")
    finally:
        _label_node(backend, None)
        thread.join(120)


def _refused_pod(backend: Any, namespace: str) -> dict[str, Any]:
    clock = backend.clock
    deadline = clock.monotonic() + 60
    while clock.monotonic() < deadline:
        for pod in backend.list("Pod", namespace, label_selector=MANAGED_SELECTOR).items:
            conditions = pod["status"].get("conditions") or []
            if any(c.get("reason") == "Unschedulable" for c in conditions):
                return dict(pod)
        clock.sleep(0.2)
    raise AssertionError("no pod was refused by the scheduler within 60s")


def _label_node(backend: Any, value: str | None) -> None:
    label = {"metadata": {"labels": {"sim.podrunner.dev/unschedulable": value}}}
    backend.request(
        "PATCH",
        f"/api/v1/nodes/{NODE_NAME}",
        body=label,
        content_type="application/merge-patch+json",
    )
