"""ClaudeWorker: the persistent pod, exec with the prompt on stdin, serialisation, recreation."""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from podrunner import CleanupPolicy, SecretRef
from podrunner.backends.base import ExecResult
from podrunner.claude import (
    ClaudeAuthError,
    ClaudeCLINotFound,
    ClaudeCredentials,
    ClaudeTask,
    ClaudeWorker,
    WorkerOwnershipError,
)
from podrunner.claude.worker import SLEEP_LOOP, WORKER_ID_LABEL, default_worker_id
from podrunner.errors import ImagePullError, SpecError, StartTimeout, Unschedulable
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
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


def test_workers_of_one_identity_share_the_pod_and_take_turns() -> None:
    """Two worker objects of one user (two processes, say) share one pod and take turns.

    No lock is shared, only the cluster: the claim keeps their tasks apart.
    """
    active, peak, tasks = 0, 0, 0
    lock = threading.Lock()
    line = b'{"type":"result","subtype":"success","is_error":false,"result":"ok"}\n'

    def handler(request: ExecRequest) -> ExecResult:
        nonlocal active, peak, tasks
        with lock:
            active, tasks = active + 1, tasks + 1
            peak = max(peak, active)
        time.sleep(0.05)  # real time: an overlap would show
        with lock:
            active -= 1
        return ExecResult(0, line, b"")

    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(handler)
    workers = [_keyed(cluster, ALICE_KEY), _keyed(cluster, ALICE_KEY)]
    failures: list[BaseException] = []

    def use(worker: ClaudeWorker) -> None:
        try:
            for i in range(3):
                worker.run(f"task {i}")
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=use, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert (tasks, peak) == (6, 1)
    assert list(_uids(cluster, "Pod")) == [workers[0].name]
    assert sum(w.recreated for w in workers) == 1  # one pod was ever made
    for worker in workers:
        worker.stop()
    assert _uids(cluster, "Pod") == {}


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


def test_unschedulable_fails_fast() -> None:
    """A pod no node takes raises the engine's Unschedulable, not a timeout."""
    cluster = FakeCluster()
    cluster.when(image=IMAGE).unschedulable(message="0/1 nodes are available: 1 Insufficient cpu.")
    with pytest.raises(Unschedulable) as info:
        _worker(cluster, start_timeout=3600).ensure_running()
    assert "Insufficient cpu" in str(info.value)
    assert cluster.clock.monotonic() < 60


def test_start_is_watched_not_polled() -> None:
    """Waiting for the pod costs the same few requests whether it starts in 1 s or 5 min."""
    counts = []
    for delay in (1.0, 300.0):
        cluster = FakeCluster(start_delay=delay)
        cluster.when(image=IMAGE).hang()
        worker = _keyed(cluster, ALICE_KEY, start_timeout=600)
        cluster.clear_actions()
        worker.ensure_running()
        counts.append(Counter(a.verb for a in cluster.actions))
        cluster.clear_actions()
        worker.recreate()  # the old pod's end is watched too
        counts.append(Counter(a.verb for a in cluster.actions))
    for quick, slow in ((counts[0], counts[2]), (counts[1], counts[3])):
        assert slow["get"] == quick["get"]
        # The one watch stream (and the list before it) is opened again each time it ends:
        # once per minute waited, and once as the wait ends. A bound, not a poll.
        assert slow["list"] <= quick["list"] + 300 / 60 + 1
        assert slow["watch"] <= quick["watch"] + 300 / 60
    assert counts[2]["get"] <= 4  # the pod and its Secret: before, and once created


def test_adopts_a_pod_that_is_still_starting() -> None:
    """A pod another process just started is waited for, not replaced."""
    cluster = FakeCluster(start_delay=60)
    cluster.when(image=IMAGE).hang()
    runner = PodRunner(cluster.backend)
    first = _worker(cluster, credentials=ClaudeCredentials.api_key(ALICE_KEY))
    # What another worker's pool does: its pod, named, with the pool's labels.
    runner.start(first.pool.spec, cleanup=CleanupPolicy.NEVER).close()
    pods = _uids(cluster, "Pod")
    later = _keyed(cluster, ALICE_KEY)
    pod = later.ensure_running()
    assert pod["status"]["phase"] == "Running"
    assert later.recreated == 0
    assert _uids(cluster, "Pod") == pods
    assert cluster.clock.monotonic() >= 60
    later.stop()
    assert _uids(cluster, "Pod") == {}
    assert _uids(cluster, "Secret") == {}


def test_a_pod_deleted_while_it_starts_is_made_again() -> None:
    """Someone deleting the pod before it runs: the worker sees it go and starts another."""
    cluster = FakeCluster(start_delay=60)
    cluster.when(image=IMAGE).hang()
    worker = _worker(cluster)

    # Virtual time stands still until the deleter sleeps (the worker alone cannot move it past
    # 0 s), so the delete comes at 10 s, while the worker waits for its first pod (60 s).
    hold = cluster.clock.hold(owned=False)

    def delete_soon() -> None:
        hold.adopt()
        try:
            for _ in range(10_000):  # real time: until the worker has created its pod
                if worker.name in _uids(cluster, "Pod"):
                    break
                time.sleep(0.001)
            cluster.clock.sleep(10)
            cluster.backend.delete("Pod", "default", worker.name, grace_period_seconds=0)
        finally:
            hold.release()

    deleter = threading.Thread(target=delete_soon)
    deleter.start()
    pod = worker.ensure_running()
    deleter.join(10)
    assert pod["status"]["phase"] == "Running"
    assert worker.recreated == 2
    assert cluster.clock.monotonic() >= 70
    worker.stop()
    assert _uids(cluster, "Pod") == {}


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


# -- ownership: a worker uses and deletes only its own pod ----------------------------------------

ALICE_KEY = "sk-ant-api03-ALICE-0000000000"
BOB_KEY = "sk-ant-api03-BOB-1111111111"


def _uids(cluster: FakeCluster, kind: str) -> dict[str, str]:
    items = cluster.backend.list(kind, "default").items  # type: ignore[arg-type]
    return {o["metadata"]["name"]: o["metadata"]["uid"] for o in items}


def _keyed(cluster: FakeCluster, key: str, **kw: object) -> ClaudeWorker:
    return _worker(cluster, credentials=ClaudeCredentials.api_key(key), **kw)


def _shared_cluster(calls: list[ExecRequest]) -> FakeCluster:
    cluster = FakeCluster()

    def handle(request: ExecRequest) -> ExecResult:
        calls.append(request)
        line = '{"type":"result","subtype":"success","is_error":false,"result":"ok",'
        line += '"session_id":"00000000-0000-4000-8000-000000000001"}'
        return ExecResult(0, (line + "\n").encode(), b"")

    cluster.when(image=IMAGE).hang().exec_handler(handle)
    return cluster


def test_default_names_differ_between_users() -> None:
    """Two users with default names get a pod each; stopping one leaves the other's pod."""
    calls: list[ExecRequest] = []
    cluster = _shared_cluster(calls)
    alice = _keyed(cluster, ALICE_KEY)
    bob = _keyed(cluster, BOB_KEY)
    assert alice.name != bob.name
    assert alice.worker_id != bob.worker_id
    assert alice.run("alice's task").ok
    assert bob.run("bob's task").ok
    assert [c.pod for c in calls] == [alice.name, bob.name]
    before = _uids(cluster, "Pod")
    bob.stop()
    after = _uids(cluster, "Pod")
    assert after == {alice.name: before[alice.name]}
    alice.stop()
    assert _uids(cluster, "Pod") == {}
    assert _uids(cluster, "Secret") == {}


def test_a_foreign_pod_under_the_name_is_refused_and_left_intact() -> None:
    """Bob's worker named like Alice's refuses her pod: no task, no key use, nothing deleted."""
    calls: list[ExecRequest] = []
    cluster = _shared_cluster(calls)
    alice = _keyed(cluster, ALICE_KEY)
    assert alice.run("alice's task").ok
    pods, secrets = _uids(cluster, "Pod"), _uids(cluster, "Secret")
    bob = _keyed(cluster, BOB_KEY, name=alice.name)
    for attempt in (bob.run, lambda _: bob.ensure_running(), lambda _: bob.recreate()):
        with pytest.raises(WorkerOwnershipError) as info:
            attempt("bob's task")
        assert info.value.pod_name == alice.name
        assert f"pod default/{alice.name} is not this worker's" in str(info.value)
        assert "label names another worker" in info.value.reason
        assert BOB_KEY not in str(info.value)
        assert ALICE_KEY not in str(info.value)
    bob.stop()
    with bob:
        pass
    assert len(calls) == 1  # only Alice's task ever ran in her pod
    assert _uids(cluster, "Pod") == pods
    assert _uids(cluster, "Secret") == secrets
    assert alice.run("alice again").ok  # her worker is unaffected


def test_owner_re_adopts_her_pod_from_a_new_worker() -> None:
    """A new worker object with the same credentials adopts the pod, runs and can stop it."""
    calls: list[ExecRequest] = []
    cluster = _shared_cluster(calls)
    first = _keyed(cluster, ALICE_KEY)
    first.ensure_running()
    first.detach()  # its process ended without stop()
    pods = _uids(cluster, "Pod")
    later = _keyed(cluster, ALICE_KEY)  # e.g. the next day, in another process
    assert later.name == first.name
    assert later.run("resume work").ok
    assert later.recreated == 0
    assert _uids(cluster, "Pod") == pods
    later.stop()
    assert _uids(cluster, "Pod") == {}
    assert _uids(cluster, "Secret") == {}


def test_explicit_name_and_worker_id_re_adopt_without_credentials() -> None:
    """Without credentials the id is random; passing it back finds the pod again."""
    cluster = _shared_cluster([])
    first = _worker(cluster, name="my-worker")
    first.ensure_running()
    assert _worker(cluster).worker_id != first.worker_id  # no per-user identity to derive
    with pytest.raises(WorkerOwnershipError):
        _worker(cluster, name="my-worker").ensure_running()
    again = _worker(cluster, name="my-worker", worker_id=first.worker_id)
    assert again.run("hi").ok
    assert again.recreated == 0


def test_right_label_but_another_users_credentials_is_refused() -> None:
    """A pod with Alice's worker id whose Secret holds Bob's key is not Alice's."""
    calls: list[ExecRequest] = []
    cluster = _shared_cluster(calls)
    alice = _keyed(cluster, ALICE_KEY)
    impostor = _keyed(cluster, BOB_KEY, worker_id=alice.worker_id, name=alice.name)
    impostor.ensure_running()
    pods, secrets = _uids(cluster, "Pod"), _uids(cluster, "Secret")
    with pytest.raises(WorkerOwnershipError) as info:
        alice.run("alice's task")
    assert "holds other credentials than this worker's" in info.value.reason
    alice.stop()
    assert calls == []
    assert _uids(cluster, "Pod") == pods
    assert _uids(cluster, "Secret") == secrets


def test_right_label_but_a_foreign_secret_reference_is_refused() -> None:
    """A pod with the worker's label that reads another Secret is refused, whatever its name."""
    cluster = _shared_cluster([])
    creds = ClaudeCredentials.api_key(SecretRef("alice-claude", "key"))
    alice = _worker(cluster, credentials=creds)
    manifest = {
        "kind": "Pod",
        "metadata": {
            "name": alice.name,
            "labels": {
                "app.kubernetes.io/managed-by": "podrunner",
                WORKER_ID_LABEL: alice.worker_id,
            },
        },
        "spec": {
            "containers": [
                {
                    "name": "claude-code",
                    "image": IMAGE,
                    "env": [
                        {
                            "name": "ANTHROPIC_API_KEY",
                            "valueFrom": {"secretKeyRef": {"name": "mallory", "key": "key"}},
                        }
                    ],
                }
            ]
        },
    }
    cluster.backend.create(manifest)
    with pytest.raises(WorkerOwnershipError) as info:
        alice.ensure_running()
    assert "[mallory]" in info.value.reason
    assert "[alice-claude]" in info.value.reason
    alice.stop()
    assert alice.name in _uids(cluster, "Pod")


def test_secret_ref_workers_adopt_only_the_same_reference() -> None:
    """With a SecretRef the identity and the check follow the Secret name and key."""
    cluster = _shared_cluster([])
    creds = ClaudeCredentials.api_key(SecretRef("team-claude", "key"))
    first = _worker(cluster, credentials=creds)
    first.ensure_running()
    assert _worker(cluster, credentials=creds).run("hi").ok
    other = ClaudeCredentials.api_key(SecretRef("team-claude", "other-key"))
    assert default_worker_id(other) != first.worker_id
    with pytest.raises(WorkerOwnershipError):
        _worker(cluster, credentials=other, name=first.name).ensure_running()


def test_plain_pod_under_the_name_is_refused() -> None:
    """A pod podrunner did not make, or a podrunner pod that is no worker, is left alone."""
    cluster = _shared_cluster([])
    cluster.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "c", "image": IMAGE}]},
        }
    )
    with pytest.raises(WorkerOwnershipError) as info:
        _keyed(cluster, ALICE_KEY, name="web").run("hi")
    assert info.value.reason == "it was not made by podrunner"
    cluster.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "job", "labels": {"app.kubernetes.io/managed-by": "podrunner"}},
            "spec": {"containers": [{"name": "c", "image": IMAGE}]},
        }
    )
    with pytest.raises(WorkerOwnershipError) as info:
        _keyed(cluster, ALICE_KEY, name="job").run("hi")
    assert info.value.reason == f"it has no {WORKER_ID_LABEL} label"
    assert set(_uids(cluster, "Pod")) == {"web", "job"}


def test_a_worker_labelled_pod_podrunner_did_not_start_is_refused() -> None:
    """Labels alone do not make a pod the worker's: one no run started is left alone."""
    cluster = _shared_cluster([])
    worker = _worker(cluster, name="hand-made", worker_id="me")
    labels = {"app.kubernetes.io/managed-by": "podrunner", WORKER_ID_LABEL: "me"}
    cluster.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "hand-made", "labels": labels},
            "spec": {"containers": [{"name": "claude-code", "image": IMAGE}]},
        }
    )
    with pytest.raises(WorkerOwnershipError) as info:
        worker.ensure_running()
    assert info.value.reason == "it has no podrunner.dev/run-id label"
    worker.stop()
    assert set(_uids(cluster, "Pod")) == {"hand-made"}


def test_foreign_secret_left_under_the_name_is_refused() -> None:
    """With no pod but another user's Secret under the worker's Secret name: refuse, keep it."""
    cluster = _shared_cluster([])
    alice = _keyed(cluster, ALICE_KEY)
    # Alice's worker Secret, left with no pod (its pod's create failed, her process died).
    leftover = build_manifests(alice.pool.spec).secret
    assert leftover is not None
    cluster.backend.create(leftover)
    secrets = _uids(cluster, "Secret")
    bob = _keyed(cluster, BOB_KEY, name=alice.name)
    with pytest.raises(WorkerOwnershipError) as info:
        bob.run("hi")
    assert f"Secret default/{alice.name}-secrets is not this worker's" in str(info.value)
    assert _uids(cluster, "Secret") == secrets
    assert _uids(cluster, "Pod") == {}
    bob.stop()  # else his worker takes the name as soon as it is free
    # Alice's own leftover Secret is hers to replace.
    assert alice.run("hi").ok
    alice.stop()
    assert _uids(cluster, "Secret") == {}


def test_pod_replaced_by_a_stranger_is_not_deleted_by_stop() -> None:
    """stop() deletes the pod it created, not one made again under the name by someone else."""
    cluster = _shared_cluster([])
    bob = _keyed(cluster, BOB_KEY, name="shared-name")
    bob.ensure_running()
    bob.detach()  # Bob's worker makes no new pod meanwhile (a process stopped, say)
    cluster.backend.delete("Pod", "default", "shared-name", grace_period_seconds=0)
    alice = _keyed(cluster, ALICE_KEY, name="shared-name")
    alice.ensure_running()
    pods, secrets = _uids(cluster, "Pod"), _uids(cluster, "Secret")
    bob.stop()
    assert _uids(cluster, "Pod") == pods
    assert _uids(cluster, "Secret") == secrets


def test_worker_id_is_checked() -> None:
    """A worker id must be a label value; labels cannot smuggle another one in."""
    cluster = _shared_cluster([])
    with pytest.raises(SpecError) as info:
        _worker(cluster, worker_id="not a label!")
    assert info.value.field == "worker_id"
    with pytest.raises(SpecError) as info:
        _worker(cluster, worker_id="me", labels={WORKER_ID_LABEL: "you"})
    assert info.value.field == "labels"
    worker = _worker(cluster, worker_id="me", labels={"team": "a"})
    pod = worker.ensure_running()
    assert pod["metadata"]["labels"][WORKER_ID_LABEL] == "me"
    assert pod["metadata"]["labels"]["team"] == "a"


def test_default_worker_id_hides_the_credential() -> None:
    """The derived id is stable per credential, differs between them and is not the value."""
    alice = ClaudeCredentials.api_key(ALICE_KEY)
    assert default_worker_id(alice) == default_worker_id(ClaudeCredentials.api_key(ALICE_KEY))
    assert default_worker_id(alice) != default_worker_id(ClaudeCredentials.api_key(BOB_KEY))
    assert default_worker_id(alice) != default_worker_id(ClaudeCredentials.oauth_token(ALICE_KEY))
    assert "ALICE" not in default_worker_id(alice)
    cluster = _shared_cluster([])
    worker = ClaudeWorker(PodRunner(cluster.backend), image=IMAGE, credentials=alice)
    worker.ensure_running()
    for kind in ("Pod", "Secret"):
        for obj in cluster.backend.list(kind, "default").items:
            assert ALICE_KEY not in str(obj["metadata"])


def test_reap_takes_idle_workers_only() -> None:
    """A worker in use renews its reap expiry; one left idle past the TTL is reaped."""
    cluster = _shared_cluster([])
    runner = PodRunner(cluster.backend)
    busy = ClaudeWorker(runner, image=IMAGE, credentials=ClaudeCredentials.api_key(ALICE_KEY))
    idle = ClaudeWorker(runner, image=IMAGE, credentials=ClaudeCredentials.api_key(BOB_KEY))
    busy.ensure_running()
    idle.ensure_running()
    idle.detach()  # a worker whose process is gone: nothing renews its pod
    day = runner.default_ttl
    for _ in range(4):  # two days of use, a task every 12 hours
        cluster.advance(day / 2)
        assert busy.run("still here").ok
    report = runner.reap()
    reaped = {(kind, name) for kind, _, name in report.deleted}
    assert ("Pod", idle.name) in reaped
    assert ("Pod", busy.name) not in reaped
    assert ("Secret", f"{busy.name}-secrets") not in reaped
    assert busy.run("after the reap").ok
    assert busy.recreated == 1


def test_an_exec_that_runs_out_of_time_is_a_timeout_whatever_its_words() -> None:
    """Time, not the error's message, says whether a task timed out in the worker."""
    from podrunner.claude import ClaudeTimeout
    from podrunner.errors import BackendUnavailable

    def slow(request: ExecRequest) -> ExecResult:
        time.sleep(0.2)
        raise BackendUnavailable("the stream ended")  # no "timed out" in it

    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(slow)
    with pytest.raises(ClaudeTimeout):
        _worker(cluster).run("hi", timeout=0.1)

    def refused(request: ExecRequest) -> ExecResult:
        raise BackendUnavailable("dial tcp: connection timed out")  # at once

    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(refused)
    with pytest.raises(BackendUnavailable) as info:
        _worker(cluster).run("hi", timeout=30)
    assert not isinstance(info.value, ClaudeTimeout)


def test_an_interrupted_task_takes_its_pod_a_failed_answer_keeps_it() -> None:
    """Ctrl-C during a task: the pod goes, as the CLI may still run in it.

    The next task gets a new pod; a task the CLI answered with an error leaves it as it was.
    """
    interrupt = True
    error_line = b'{"type":"result","subtype":"error_during_execution","is_error":true}\n'

    def handler(request: ExecRequest) -> ExecResult:
        if interrupt:
            raise KeyboardInterrupt
        return ExecResult(1, error_line, b"")

    cluster = FakeCluster()
    cluster.when(image=IMAGE).hang().exec_handler(handler)
    worker = _keyed(cluster, ALICE_KEY)
    first = worker.ensure_running()["metadata"]["uid"]
    with pytest.raises(KeyboardInterrupt):
        worker.run("interrupted")
    interrupt = False
    failed = worker.run("fails", check=False)
    assert not failed.ok
    second = worker.ensure_running()["metadata"]["uid"]
    assert second != first
    assert worker.run("fails again", check=False).error is not None
    assert worker.ensure_running()["metadata"]["uid"] == second  # kept
    assert worker.recreated == 2
    worker.stop()
    assert _uids(cluster, "Pod") == {}
