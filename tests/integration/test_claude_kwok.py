"""Claude Code on a real API server (kwok): ephemeral pods and the exec-based worker.

kwok plays the kubelet, so an ephemeral pod's output comes from the simulation annotations (a
recorded CLI output), while the worker's ``exec`` runs for real on this machine through kwok's
local exec, with the stand-in CLI. Skips when the kwok binaries cannot be had.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from podrunner.claude import (
    ClaudeBudgetExceeded,
    ClaudeCredentials,
    ClaudeRunner,
    ClaudeTask,
    ClaudeWorker,
    SessionStore,
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


def test_async_worker_shares_the_pod_with_a_sync_one(
    kwok_runner: PodRunner, kwok_cluster: Any, tmp_path: Path
) -> None:
    """On a real API server: an AsyncClaudeWorker adopts the pod a ClaudeWorker made.

    It runs tasks through its pool's claim and exec, and its stop() leaves nothing.
    """
    import asyncio

    from podrunner import AsyncPodRunner
    from podrunner.backends.kubernetes import ClusterConfig
    from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend
    from podrunner.claude import AsyncClaudeWorker

    wrapper = tmp_path / "claude"
    wrapper.write_text(f'#!/bin/sh\nHOME={tmp_path} exec {FIXTURES / "claude"} "$@"\n')
    wrapper.chmod(0o755)
    options: dict[str, Any] = {
        "image": IMAGE,
        "credentials": ClaudeCredentials.api_key(CANARY),
        "claude_path": str(wrapper),
        "launcher_environ": {},
        "start_timeout": 60,
        "exec_timeout": 60,
    }
    sync_worker = ClaudeWorker(kwok_runner, **options)
    uid = sync_worker.ensure_running()["metadata"]["uid"]
    sync_worker.detach()
    ns = kwok_runner.namespace

    async def main() -> str | None:
        backend = AsyncKubernetesBackend(
            ClusterConfig.from_kubeconfig_file(kwok_cluster.kubeconfig)
        )
        try:
            async with (
                AsyncPodRunner(backend, ns) as pods,
                AsyncClaudeWorker(pods, **options) as worker,
            ):
                pod = await worker.ensure_running()
                assert pod["metadata"]["uid"] == uid
                first = await worker.run(ClaudeTask("remember 7"))
                second = await worker.run(ClaudeTask("and now?", resume=first.session_id))
                assert worker.recreated == 0
                return second.session_id if second.session_id == first.session_id else None
        finally:
            await backend.close()

    assert asyncio.run(main()) is not None
    for kind, name in (("Pod", sync_worker.name), ("Secret", f"{sync_worker.name}-secrets")):
        with pytest.raises(NotFound):
            kwok_runner.backend.get(kind, ns, name)


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
    alice.detach()  # her process ends, leaving the pod
    # Make the expiry due for renewal, then adopt from a fresh object.
    old = {"metadata": {"annotations": {EXPIRES_ANNOTATION: "2000-01-01T00:00:00Z"}}}
    backend.patch("Pod", ns, alice.name, old)
    backend.patch("Secret", ns, f"{alice.name}-secrets", old)
    again = worker(CANARY)
    again.ensure_running()
    assert again.recreated == 0
    # The worker's pool renews the lapsed expiry in the background, at once.
    deadline = time.monotonic() + 30
    while (
        backend.get("Pod", ns, alice.name)["metadata"]["annotations"][EXPIRES_ANNOTATION] < "2001"
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    renewed = backend.get("Pod", ns, alice.name)["metadata"]["annotations"][EXPIRES_ANNOTATION]
    assert renewed > "2001"
    # The Secret's own expiry is past, but it goes with its pod: reap keeps both.
    kwok_runner.reap()
    assert backend.get("Pod", ns, alice.name)["metadata"]["uid"] == pod_uid
    assert backend.get("Secret", ns, f"{alice.name}-secrets")["metadata"]["uid"] == secret_uid
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


def _bound_claim(backend: Any, namespace: str, claim: str, directory: Path) -> str:
    """A PersistentVolume on ``directory`` and a claim bound to it; returns the volume's name."""
    volume = f"{namespace}-{claim}"
    backend.request(
        "POST",
        "/api/v1/persistentvolumes",
        body={
            "metadata": {"name": volume},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "hostPath": {"path": str(directory)},
                "storageClassName": "",
                "persistentVolumeReclaimPolicy": "Retain",
            },
        },
    )
    backend.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        body={
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "",
                "volumeName": volume,
            },
        },
    )
    return volume


def test_a_session_resumes_in_another_pod_through_the_store(
    kwok_runner: PodRunner, tmp_path: Path
) -> None:
    """Pod A's transcript, on a claim bound by the real controller-manager, is resumed in pod B.

    Both worker pods mount the claim and are scheduled by the real scheduler (which waits for
    the binding). kwok runs no containers and its exec runs on this machine without the pod's
    mounts, so each pod's wrapper links its own ``HOME``'s transcripts to the volume's host
    directory: the mount a kubelet would make. The stand-in writes and reads transcripts as
    the real CLI does.
    """
    backend = kwok_runner.backend
    ns = kwok_runner.namespace
    store_dir = Path(tempfile.mkdtemp(prefix="podrunner-store-"))
    volume = _bound_claim(backend, ns, "claude-sessions", store_dir)
    store = SessionStore.pvc("claude-sessions")

    def worker(name: str) -> ClaudeWorker:
        home = tmp_path / name
        (home / ".claude").mkdir(parents=True)
        (home / ".claude" / "projects").symlink_to(store_dir)
        wrapper = tmp_path / f"claude-{name}"
        wrapper.write_text(f'#!/bin/sh\nHOME={home} exec {FIXTURES / "claude"} "$@"\n')
        wrapper.chmod(0o755)
        return ClaudeWorker(
            kwok_runner,
            image=IMAGE,
            claude_path=str(wrapper),
            sessions=store,
            launcher_environ={},
            worker_id=f"sessions-{name}",
            start_timeout=60,
            exec_timeout=60,
        )

    try:
        with worker("a") as pod_a:
            first = pod_a.run(ClaudeTask("remember the number 42"))
        with worker("b") as pod_b:
            second = pod_b.run(ClaudeTask("what was the number?", resume=first.session_id))
            claims = {
                v["persistentVolumeClaim"]["claimName"]
                for v in backend.get("Pod", ns, pod_b.name)["spec"]["volumes"]
                if "persistentVolumeClaim" in v
            }
            assert claims == {"claude-sessions"}
        assert second.session_id == first.session_id
        assert '"remember the number 42"' in second.text
        (transcript,) = store_dir.glob(f"*/{first.session_id}.jsonl")
        prompts = [
            json.loads(line)["message"]["content"]
            for line in transcript.read_text().splitlines()
            if json.loads(line)["type"] == "user"
        ]
        assert prompts == ["remember the number 42", "what was the number?"]
        pvc = backend.request(
            "GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/claude-sessions"
        )
        assert pvc["status"]["phase"] == "Bound"
    finally:
        with contextlib.suppress(NotFound):
            backend.request(
                "DELETE", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/claude-sessions"
            )
        with contextlib.suppress(NotFound):
            backend.request("DELETE", f"/api/v1/persistentvolumes/{volume}")
        shutil.rmtree(store_dir, ignore_errors=True)
