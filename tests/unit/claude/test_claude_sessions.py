"""Sessions that outlive the pod: a SessionStore volume, resume in a new pod, one writer each.

On the fake's local runtime a PVC outlives its pods, and the stand-in CLI keeps transcripts
where the real one does (``~/.claude/projects/<cwd>/<id>.jsonl``), so a session written in one
pod is resumed in the next exactly as with Claude Code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from podrunner import PodSpec
from podrunner.claude import ClaudeRunner, ClaudeTask, ClaudeWorker, SessionInUse, SessionStore
from podrunner.claude.sessions import SESSIONS_ENV, claim_session
from podrunner.errors import SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.spec import Volume
from podrunner.testing import FakeCluster

IMAGE = "example.com/claude-code:2"
STORE = SessionStore.pvc("claude-sessions")
SESSION = "5d3f0c2a-9b1e-4c7d-8a6f-2e4b6c8d0f1a"


def _runner(pod_runner: PodRunner, standin: str, **kw: Any) -> ClaudeRunner:
    return ClaudeRunner(
        pod_runner,
        image=IMAGE,
        claude_path=standin,
        launcher_environ={},
        sessions=STORE,
        timeout=60,
        **kw,
    )


def _store_files(pod_runner: PodRunner) -> dict[str, list[dict[str, Any]]]:
    """The store's transcripts, read by another pod that mounts the claim (as kubectl would)."""
    # Project directories start with "-" (the escaped cwd): "./" keeps them from being options.
    script = 'cd "$1" && for f in ./*/*.jsonl; do echo "== $f"; cat "$f"; done'
    spec = PodSpec(
        "busybox:1.36",
        ["sh", "-c", script, "sh", "/store"],
        volumes=[Volume.pvc("claude-sessions", "/store")],
    )
    files: dict[str, list[dict[str, Any]]] = {}
    name = ""
    for line in pod_runner.run(spec, timeout=30).logs.splitlines():
        if line.startswith("== "):
            name = line[3:]
            files[name] = []
        elif line.strip():
            files[name].append(json.loads(line))
    return files


def test_the_store_is_mounted_and_named_to_the_launcher() -> None:
    """The PVC is mounted writable outside HOME; the launcher learns where from one variable."""
    runner = ClaudeRunner(
        PodRunner(FakeCluster().backend), image=IMAGE, sessions=STORE, launcher_environ={}
    )
    pod = build_manifests(runner.build_spec(ClaudeTask("hi"))).pod
    container = pod["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[SESSIONS_ENV] == STORE.mount_path
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == STORE.mount_path)
    assert not mount.get("readOnly")
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"] == {"claimName": "claude-sessions"}


@pytest.mark.parametrize(
    "volume",
    [
        Volume.pvc("s", "/s", read_only=True),
        Volume.empty_dir("/s"),
        Volume.config_map("s", "/s"),
        "claude-sessions",
    ],
    ids=["read-only", "emptyDir", "configMap", "a name"],
)
def test_a_store_must_outlive_the_pod_and_be_writable(volume: Any) -> None:
    """A read-only, pod-scoped or non-volume store is a SpecError naming the field."""
    with pytest.raises(SpecError) as info:
        SessionStore(volume)
    assert info.value.field == "sessions.volume"


def test_a_session_from_one_pod_resumes_in_the_next(local_runner: PodRunner, standin: str) -> None:
    """Pod A writes the transcript to the store; pod B resumes it and sees A's prompt."""
    runner = _runner(local_runner, standin)
    first = runner.run(ClaudeTask("remember the number 42"))
    second = runner.run(ClaudeTask("what was the number?", resume=first.session_id))
    assert first.run is not None
    assert second.run is not None
    assert first.run.pod_name != second.run.pod_name
    assert second.session_id == first.session_id
    assert '"remember the number 42"' in second.text
    (name, entries) = next(iter(_store_files(local_runner).items()))
    assert name.endswith(f"/{first.session_id}.jsonl")
    prompts = [e["message"]["content"] for e in entries if e["type"] == "user"]
    assert prompts == ["remember the number 42", "what was the number?"]
    assert {e["sessionId"] for e in entries} == {first.session_id}
    assert [e["parentUuid"] for e in entries][1:] == [e["uuid"] for e in entries][:-1]


def test_a_fork_branches_off_and_leaves_the_original(local_runner: PodRunner, standin: str) -> None:
    """fork_session: a new session that knows the old prompts; the original is untouched."""
    runner = _runner(local_runner, standin)
    first = runner.run(ClaudeTask("plan A", session_id=SESSION))
    fork = runner.run(ClaudeTask("try plan B", resume=SESSION, fork_session=True))
    assert fork.session_id not in (None, SESSION)
    assert '"plan A"' in fork.text
    files = _store_files(local_runner)
    original = next(e for n, e in files.items() if n.endswith(f"/{SESSION}.jsonl"))
    assert [e["message"]["content"] for e in original if e["type"] == "user"] == ["plan A"]
    assert first.session_id == SESSION


def test_without_a_store_the_next_pod_cannot_resume(local_runner: PodRunner, standin: str) -> None:
    """The control: HOME is an emptyDir, so the CLI finds no conversation in a new pod."""
    runner = ClaudeRunner(
        local_runner, image=IMAGE, claude_path=standin, launcher_environ={}, timeout=60
    )
    first = runner.run(ClaudeTask("remember 42"))
    again = runner.run(ClaudeTask("and?", resume=first.session_id), check=False)
    assert again.error is not None
    assert "No conversation found" in str(again.error)


def test_a_session_has_one_writer_at_a_time() -> None:
    """While a run writes a session, another resume of it is refused; a fork is not."""
    cluster = FakeCluster()
    runner = ClaudeRunner(
        PodRunner(cluster.backend), image=IMAGE, sessions=STORE, launcher_environ={}
    )
    writing = ClaudeTask("first", session_id=SESSION)
    with claim_session(STORE, writing):
        with pytest.raises(SessionInUse) as info:
            runner.run(ClaudeTask("second", resume=SESSION))
        assert "fork_session=True" in str(info.value)
        assert cluster.actions == []
        # A fork writes a new session; reading the old one meanwhile is fine.
        with claim_session(STORE, ClaudeTask("branch", resume=SESSION, fork_session=True)):
            pass
        # Another store is another set of sessions.
        with claim_session(SessionStore.pvc("other"), ClaudeTask("x", resume=SESSION)):
            pass
    with claim_session(STORE, ClaudeTask("again", resume=SESSION)):
        pass  # released when the first run ended


def test_a_worker_and_a_runner_share_a_store(local_runner: PodRunner, standin: str) -> None:
    """A session a worker pod wrote is resumed by a one-off pod, and the other way round."""
    with ClaudeWorker(
        local_runner,
        image=IMAGE,
        claude_path=standin,
        sessions=STORE,
        launcher_environ={},
        worker_id="sessions-test",
    ) as worker:
        first = worker.run("the worker's prompt")
        second = _runner(local_runner, standin).run(
            ClaudeTask("and in a new pod?", resume=first.session_id)
        )
        assert '"the worker\'s prompt"' in second.text
        third = worker.run(ClaudeTask("back in the worker", resume=first.session_id))
        assert "and in a new pod?" in third.text
