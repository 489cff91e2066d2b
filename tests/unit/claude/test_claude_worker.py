"""ClaudeWorker: the persistent pod, exec with the prompt on stdin, serialisation, recreation."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from podrunner.backends.base import ExecResult
from podrunner.claude import ClaudeAuthError, ClaudeCLINotFound, ClaudeTask, ClaudeWorker
from podrunner.claude.worker import SLEEP_LOOP
from podrunner.errors import ImagePullError, StartTimeout
from podrunner.sdk.runner import PodRunner
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from collections.abc import Callable

    from podrunner.backends.fake.scripting import ExecRequest

IMAGE = "example.com/claude-code:2"
STANDIN = Path(__file__).resolve().parents[2] / "fixtures" / "claude" / "claude"


def _standin_handler(home: Path, calls: list[ExecRequest]) -> Callable[[ExecRequest], ExecResult]:
    """An exec handler that runs the real launcher argv locally, prompt on stdin."""

    def handle(request: ExecRequest) -> ExecResult:
        calls.append(request)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
        done = subprocess.run(
            request.argv, input=request.stdin, env=env, capture_output=True, check=False
        )
        return ExecResult(done.returncode, done.stdout, done.stderr)

    return handle


def _worker(cluster: FakeCluster, **kw: object) -> ClaudeWorker:
    return ClaudeWorker(
        PodRunner(cluster.backend),
        image=IMAGE,
        claude_path=str(STANDIN),
        launcher_environ={},
        **kw,  # type: ignore[arg-type]
    )


def test_worker_pod_shape() -> None:
    """The worker pod restarts Always, idles in a TERM-aware sleep loop and is hardened."""
    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(lambda r: (0, ""))
    worker = _worker(cluster)
    pod = worker.ensure_running()
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["restartPolicy"] == "Always"
    container = pod["spec"]["containers"][0]
    assert container["name"] == "claude-code"
    assert container["command"] == ["sh", "-c", SLEEP_LOOP]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "claude-runner"
    assert worker.recreated == 1
    worker.ensure_running()
    assert worker.recreated == 1  # a running pod is reused


def test_exec_with_prompt_on_stdin(tmp_path: Path) -> None:
    """Each task is one exec of the launcher; the prompt travels on stdin, not in the argv."""
    cluster = FakeCluster()
    calls: list[ExecRequest] = []
    cluster.when(image=IMAGE).hang().exec_handler(_standin_handler(tmp_path, calls))
    worker = _worker(cluster)
    prompt = "hello '$(reboot)' " + "x" * 150_000
    result = worker.run(ClaudeTask(prompt, output_format="stream-json"))
    assert result.ok
    assert result.text.startswith(f"You asked ({len(prompt)} bytes")
    assert result.events[0]["type"] == "system"
    (call,) = calls
    assert call.container == "claude-code"
    assert call.stdin == prompt.encode()
    assert prompt not in call.argv
    assert call.argv[:2] == ["sh", "-c"]


def test_exit_code_from_exec_status(tmp_path: Path) -> None:
    """The exec's exit code drives classification (127: CLI missing; auth failure)."""
    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(
        lambda r: ExecResult(127, b"", b"sh: 10: exec: claude: not found\n")
    )
    with pytest.raises(ClaudeCLINotFound):
        _worker(cluster).run("hi")
    cluster = FakeCluster()
    calls: list[ExecRequest] = []
    cluster.when(image=IMAGE).hang().exec_handler(_standin_handler(tmp_path, calls))
    result = _worker(cluster).run("#auth-error hi", check=False)
    assert isinstance(result.error, ClaudeAuthError)
    assert result.exit_code == 1


def test_sessions_persist_between_tasks(tmp_path: Path) -> None:
    """HOME outlives a task, so a later task can resume the earlier session."""
    cluster = FakeCluster()
    calls: list[ExecRequest] = []
    cluster.when(image=IMAGE).hang().exec_handler(_standin_handler(tmp_path, calls))
    worker = _worker(cluster)
    first = worker.run("remember 42")
    second = worker.run(ClaudeTask("what did I say?", resume=first.session_id))
    assert second.session_id == first.session_id
    unknown = worker.run(
        ClaudeTask("x", resume="00000000-0000-4000-8000-000000000000"), check=False
    )
    assert "No conversation found" in str(unknown.error)


def test_tasks_are_serialised(tmp_path: Path) -> None:
    """Concurrent run() calls never exec in the worker at the same time."""
    cluster = FakeCluster()
    active = 0
    peak = 0
    lock = threading.Lock()
    inner = _standin_handler(tmp_path, [])

    def handler(request: ExecRequest) -> ExecResult:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.05)  # real time: the overlap would show if the lock were missing
        try:
            return inner(request)
        finally:
            with lock:
                active -= 1

    cluster.when(image=IMAGE).hang().exec_handler(handler)
    worker = _worker(cluster)
    results = []

    def one(i: int) -> None:
        results.append(worker.run(f"task {i}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 4
    assert all(r.ok for r in results)
    assert peak == 1


def test_recreated_when_gone_or_terminal(tmp_path: Path) -> None:
    """A deleted or failed worker pod is replaced before the next task."""
    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(_standin_handler(tmp_path, []))
    worker = _worker(cluster)
    worker.run("one")
    cluster.backend.delete("Pod", "default", worker.name, grace_period_seconds=0)
    assert worker.run("two").ok
    assert worker.recreated == 2
    cluster.backend.patch(
        "Pod", "default", worker.name, {"status": {"phase": "Failed"}}, subresource="status"
    )
    assert worker.run("three").ok
    assert worker.recreated == 3
    worker.stop()
    assert cluster.backend.list("Pod", "default").items == []


def test_start_failures() -> None:
    """An unpullable image fails fast; a pod that never runs hits the start timeout."""
    cluster = FakeCluster()
    cluster.when(image=IMAGE).image_pull_error()
    with pytest.raises(ImagePullError):
        _worker(cluster).run("hi")
    slow = FakeCluster(start_delay=600)
    with pytest.raises(StartTimeout):
        _worker(slow, start_timeout=5).run("hi")


def test_local_runtime_worker(tmp_path: Path) -> None:
    """On the local runtime the exec runs the stand-in for real, inside the pod's env."""
    cluster = FakeCluster(runtime="local")
    worker = ClaudeWorker(
        PodRunner(cluster.backend),
        image=IMAGE,
        claude_path=str(STANDIN),
        home=str(tmp_path / "home"),
        launcher_environ={},
    )
    with worker:
        result = worker.run(ClaudeTask("#tool-use diff", max_budget_usd=1.0))
        assert result.ok
        assert result.num_turns == 3
    assert cluster.backend.list("Pod", "default").items == []
