"""Claude Code on a real API server (kwok): ephemeral pods and the exec-based worker.

kwok plays the kubelet, so an ephemeral pod's output comes from the simulation annotations (a
recorded CLI output), while the worker's ``exec`` runs for real on this machine through kwok's
local exec, with the stand-in CLI. Skips when the kwok binaries cannot be had.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from podrunner.claude import (
    ClaudeBudgetExceeded,
    ClaudeCredentials,
    ClaudeRunner,
    ClaudeTask,
    ClaudeWorker,
    WorkerOwnershipError,
)
from podrunner.errors import NotFound
from podrunner.run import EXPIRES_ANNOTATION, PodRunner
from podrunner.spec import CleanupPolicy

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude"
SAMPLES = FIXTURES / "samples"
IMAGE = "example.com/claude-code:2"
CANARY = "sk-ant-api03-KWOKLEAKCANARY"


@pytest.fixture
def kwok_runner(kwok_cluster: Any, namespace: str) -> Iterator[PodRunner]:
    """A PodRunner on the session's kwok control plane, in a fresh namespace."""
    kubernetes_backend = pytest.importorskip("podrunner.backends.kubernetes")
    cluster_mod = pytest.importorskip("podrunner.backends.kubernetes")
    config = cluster_mod.ClusterConfig.from_kubeconfig_file(kwok_cluster.kubeconfig)
    backend = kubernetes_backend.KubernetesBackend(config)
    runner = PodRunner(backend, namespace)
    try:
        yield runner
    finally:
        runner.close()
        backend.close()


@pytest.fixture(autouse=True)
def _needs_kwok() -> None:
    kwok = pytest.importorskip("podrunner.testing.controlplane.kwok")
    if kwok.KwokCluster().missing_binaries() and shutil.which("go") is None:
        pytest.skip("kwok control-plane binaries are missing and Go is not installed to build them")


def _sim(sample: str, exit_code: int, path: Path = SAMPLES) -> dict[str, str]:
    return {
        "sim.podrunner.dev/logs": (path / sample).read_text(),
        "sim.podrunner.dev/exit-code": str(exit_code),
        "sim.podrunner.dev/duration": "1",
    }


def test_ephemeral_success_and_no_leak(kwok_runner: PodRunner) -> None:
    """A recorded success parses; the stored pod holds no credential value."""
    runner = ClaudeRunner(
        kwok_runner,
        image=IMAGE,
        credentials=ClaudeCredentials.api_key(CANARY),
        annotations=_sim("structured.json", 0),
        launcher_environ={"CLAUDECODE": "1"},
        cleanup=CleanupPolicy.NEVER,
        timeout=60,
    )
    result = runner.run(ClaudeTask("review", json_schema={"type": "object"}))
    assert result.ok
    assert result.structured == {"verdict": "approve", "issues": ["example"]}
    assert result.run is not None
    pod = kwok_runner.backend.get("Pod", kwok_runner.namespace, result.run.pod_name)
    assert CANARY not in json.dumps(pod)
    assert pod["spec"]["containers"][0]["name"] == "claude-code"
    kwok_runner.backend.delete("Pod", kwok_runner.namespace, result.run.pod_name)


def test_ephemeral_budget_error(kwok_runner: PodRunner) -> None:
    """A recorded budget overrun with exit 1 raises ClaudeBudgetExceeded with the cost."""
    runner = ClaudeRunner(
        kwok_runner,
        image=IMAGE,
        annotations=_sim("budget_exceeded.json", 1),
        launcher_environ={},
        timeout=60,
    )
    with pytest.raises(ClaudeBudgetExceeded) as info:
        runner.run(ClaudeTask("refactor", max_budget_usd=0.05))
    assert info.value.spent_usd == pytest.approx(0.07)


def test_ephemeral_stream_of_partial_messages(kwok_runner: PodRunner) -> None:
    """ClaudeRunner.stream() on a real API server: each recorded event once, in order.

    The output is 2.1.332's with partial messages; the run then ends cleanly, its pod gone.
    """
    recorded = FIXTURES / "real-2.1.332"
    runner = ClaudeRunner(
        kwok_runner,
        image=IMAGE,
        annotations=_sim("partial_messages.jsonl", 0, recorded),
        launcher_environ={},
        timeout=60,
    )
    task = ClaudeTask("run echo hi", output_format="stream-json", include_partial_messages=True)
    events = list(runner.stream(task))
    lines = (recorded / "partial_messages.jsonl").read_text().splitlines()
    assert events == [json.loads(line) for line in lines]
    assert {"stream_event", "assistant", "result"} <= {e["type"] for e in events}
    assert kwok_runner.backend.list("Pod", kwok_runner.namespace).items == []


def test_worker_exec(kwok_runner: PodRunner, tmp_path: Path) -> None:
    """The worker pod runs on kwok and each task executes the stand-in through local exec."""
    wrapper = tmp_path / "claude"
    # kwok's local exec does not apply the pod's env; pin HOME to a scratch directory.
    wrapper.write_text(f'#!/bin/sh\nHOME={tmp_path} exec {FIXTURES / "claude"} "$@"\n')
    wrapper.chmod(0o755)
    worker = ClaudeWorker(
        kwok_runner,
        image=IMAGE,
        claude_path=str(wrapper),
        launcher_environ={},
        start_timeout=60,
        exec_timeout=60,
    )
    with worker:
        first = worker.run(ClaudeTask("#tool-use look at the diff", output_format="stream-json"))
        assert first.ok
        assert first.num_turns == 3
        second = worker.run(ClaudeTask("and now?", resume=first.session_id))
        assert second.session_id == first.session_id


def test_worker_ownership(kwok_runner: PodRunner) -> None:
    """On a real API server: a stranger is refused and leaves the pod, its owner re-adopts it.

    The adoption compares the Secret as the server stores it, and the expiry renewal is a
    uid-conditional patch; both are checked against the real server here.
    """
    backend = kwok_runner.backend
    ns = kwok_runner.namespace

    def worker(key: str, **kw: Any) -> ClaudeWorker:
        return ClaudeWorker(
            kwok_runner,
            image=IMAGE,
            credentials=ClaudeCredentials.api_key(key),
            launcher_environ={},
            start_timeout=60,
            **kw,
        )

    alice = worker(CANARY)
    alice.ensure_running()
    pod_uid = backend.get("Pod", ns, alice.name)["metadata"]["uid"]
    secret_uid = backend.get("Secret", ns, f"{alice.name}-secrets")["metadata"]["uid"]
    bob = worker("sk-ant-api03-BOB", name=alice.name)
    with pytest.raises(WorkerOwnershipError):
        bob.ensure_running()
    bob.stop()
    assert backend.get("Pod", ns, alice.name)["metadata"]["uid"] == pod_uid
    assert backend.get("Secret", ns, f"{alice.name}-secrets")["metadata"]["uid"] == secret_uid
    # Make the expiry due for renewal, then adopt from a fresh object.
    old = {"metadata": {"annotations": {EXPIRES_ANNOTATION: "2000-01-01T00:00:00Z"}}}
    backend.patch("Pod", ns, alice.name, old)
    backend.patch("Secret", ns, f"{alice.name}-secrets", old)
    again = worker(CANARY)
    again.ensure_running()
    assert again.recreated == 0
    for kind, name in (("Pod", alice.name), ("Secret", f"{alice.name}-secrets")):
        renewed = backend.get(kind, ns, name)["metadata"]["annotations"][EXPIRES_ANNOTATION]
        assert renewed > "2001"
    again.stop()
    for kind, name in (("Pod", alice.name), ("Secret", f"{alice.name}-secrets")):
        with pytest.raises(NotFound):
            backend.get(kind, ns, name)


def test_worker_recreate_and_replace(kwok_runner: PodRunner) -> None:
    """On a real API server: recreate() watches the old pod go, a deleted pod is replaced.

    The old pod's end and the new pod's start are both followed on watches (no polling).
    """
    backend = kwok_runner.backend
    ns = kwok_runner.namespace
    worker = ClaudeWorker(
        kwok_runner,
        image=IMAGE,
        credentials=ClaudeCredentials.api_key(CANARY),
        launcher_environ={},
        start_timeout=60,
    )
    with worker:
        first = worker.ensure_running()["metadata"]["uid"]
        worker.recreate()
        second = backend.get("Pod", ns, worker.name)
        assert second["metadata"]["uid"] != first
        assert second["status"]["phase"] == "Running"
        backend.delete("Pod", ns, worker.name, grace_period_seconds=0)
        third = worker.ensure_running()
        assert third["metadata"]["uid"] not in (first, second["metadata"]["uid"])
        assert worker.recreated == 3
    for kind, name in (("Pod", worker.name), ("Secret", f"{worker.name}-secrets")):
        with pytest.raises(NotFound):
            backend.get(kind, ns, name)
