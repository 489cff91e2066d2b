from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from podrunner.backends.fake import FakeCluster


def _pod(name: str, argv: list[str], **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "ignored:1", "command": argv}
    container.update(spec.pop("container", {}))
    return {
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def _wait_phase(
    cluster: FakeCluster, name: str, phases: tuple[str, ...], timeout: float = 10
) -> dict[str, Any]:
    created = cluster.backend.get("Pod", "default", name)
    if created["status"]["phase"] in phases:
        return created
    for event in cluster.backend.watch(
        "Pod",
        "default",
        field_selector=f"metadata.name={name}",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=timeout,
    ):
        if event.object["status"]["phase"] in phases:
            return event.object
    raise AssertionError(f"pod {name} never reached {phases}")


@pytest.fixture
def local() -> Any:
    cluster = FakeCluster(runtime="local")
    yield cluster
    cluster.backend.close()


def test_runs_command_with_env_and_secret(local: FakeCluster) -> None:
    """The command runs locally with plain env values and secretKeyRef values, in a temp HOME."""
    local.backend.create(
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"token": "t0p"}}
    )
    script = (
        "import os, sys; print(os.environ['A'], os.environ['T'],"
        " os.environ['HOME'] != os.getcwd());"
        " print('err', file=sys.stderr)"
    )
    local.backend.create(
        _pod(
            "a",
            [sys.executable, "-c", script],
            container={
                "env": [
                    {"name": "A", "value": "1"},
                    {"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                ]
            },
        )
    )
    pod = _wait_phase(local, "a", ("Succeeded", "Failed"))
    assert pod["status"]["phase"] == "Succeeded"
    logs = b"".join(local.backend.read_log("default", "a", timestamps=True)).decode()
    assert "1 t0p True\n" in logs
    assert "err\n" in logs
    assert logs.startswith(time.strftime("%Y-", time.gmtime()))


def test_real_exit_code(local: FakeCluster) -> None:
    """The process's exit code is the container's."""
    local.backend.create(_pod("a", [sys.executable, "-c", "raise SystemExit(7)"]))
    pod = _wait_phase(local, "a", ("Failed",))
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 7


def test_delete_kills_process_group(local: FakeCluster) -> None:
    """Deleting the pod terminates the process (SIGTERM: 143) and removes the pod."""
    local.backend.create(
        _pod("a", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    )
    _wait_phase(local, "a", ("Running",))
    local.backend.delete("Pod", "default", "a", grace_period_seconds=5)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not local.pods():
            break
        local.clock.sleep(0.05)
    assert local.pods() == []
    last = local.history("Pod", "default", "a")[-1]
    assert last["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 143


def test_active_deadline_kills(local: FakeCluster) -> None:
    """ActiveDeadlineSeconds kills a long command and fails the pod."""
    local.backend.create(
        _pod("a", [sys.executable, "-c", "import time; time.sleep(60)"], activeDeadlineSeconds=1)
    )
    pod = _wait_phase(local, "a", ("Failed",))
    assert pod["status"]["reason"] == "DeadlineExceeded"


def test_exec_runs_locally(local: FakeCluster) -> None:
    """Exec runs argv as a local process in the pod's working directory, with stdin."""
    local.backend.create(_pod("a", [sys.executable, "-c", "import time; time.sleep(30)"]))
    _wait_phase(local, "a", ("Running",))
    result = local.backend.exec(
        "default",
        "a",
        None,
        [sys.executable, "-c", "import sys; print(sys.stdin.read().upper())"],
        stdin=b"hi",
    )
    assert result.exit_code == 0
    assert result.stdout == b"HI\n"
    assert local.backend.exec("default", "a", None, ["definitely-not-a-command"]).exit_code == 127


def test_missing_command_fails(local: FakeCluster) -> None:
    """Without a command the local runtime cannot run the image: StartError."""
    local.backend.create(
        {
            "kind": "Pod",
            "metadata": {"name": "a"},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x:1"}]},
        }
    )
    pod = _wait_phase(local, "a", ("Failed",))
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "StartError"


def test_a_pvc_outlives_its_pods(local: FakeCluster) -> None:
    """What one pod writes to a PVC the next pod reads; another claim or cluster is empty."""

    def run(name: str, claim: str, cluster: FakeCluster) -> str:
        script = 'cat "$1/f" 2>/dev/null; echo "$2" >> "$1/f"'
        cluster.backend.create(
            _pod(
                name,
                ["sh", "-c", script, "sh", "/data", name],
                volumes=[{"name": "d", "persistentVolumeClaim": {"claimName": claim}}],
                container={"volumeMounts": [{"name": "d", "mountPath": "/data"}]},
            )
        )
        _wait_phase(cluster, name, ("Succeeded",))
        return b"".join(cluster.backend.read_log("default", name)).decode()

    assert run("a", "store", local) == ""
    assert run("b", "store", local) == "a\n"
    assert run("c", "other", local) == ""
    elsewhere = FakeCluster(runtime="local")
    try:
        assert run("d", "store", elsewhere) == ""
    finally:
        elsewhere.backend.close()
