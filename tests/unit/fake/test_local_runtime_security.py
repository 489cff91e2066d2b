"""The local runtime enforces what a local process can of a pod's security settings.

What it cannot enforce is named: by :func:`unenforced_settings` (for the CLI's banner) and by a
``Warning`` event on the pod.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from podrunner import PodRunner, PodSpec
from podrunner.backends.fake import FakeCluster, runtime_local
from podrunner.backends.fake.runtime_local import (
    DEFAULT_NON_ROOT_UID,
    IGNORE_RUN_AS_USER_ENV,
    unenforced_settings,
)
from podrunner.sdk.manifest import build_manifests

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture
def runner() -> Iterator[PodRunner]:
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    try:
        yield runner
    finally:
        runner.close()
        cluster.backend.close()


def _ids(runner: PodRunner, **spec: Any) -> list[str]:
    script = 'id -u; id -g; id -G; printf "%s\\n" "$HOME"; touch /root/podrunner-probe 2>&1'
    result = runner.run(PodSpec(image="busybox:1.36", command=["sh", "-c", script], **spec))
    return result.logs.splitlines()


@root_only
def test_restricted_spec_runs_as_the_non_root_default(runner: PodRunner) -> None:
    """The default (restricted, non-root) spec no longer runs as root, and cannot write /root."""
    uid, gid, _groups, home, *rest = _ids(runner)
    assert uid == str(DEFAULT_NON_ROOT_UID)
    assert gid == str(DEFAULT_NON_ROOT_UID)
    assert "Permission denied" in " ".join(rest)
    assert not os.path.exists("/root/podrunner-probe")
    # HOME is the run's own directory, which that user owns.
    assert home.startswith("/")
    assert not home.startswith("/root")


@root_only
def test_run_as_user_group_and_fs_group(runner: PodRunner) -> None:
    """run_as_user / run_as_group / fs_group are the process's uid, gid and a group."""
    uid, gid, groups, *_ = _ids(runner, run_as_user=4242, run_as_group=4343, fs_group=4444)
    assert (uid, gid) == ("4242", "4343")
    assert "4444" in groups.split()


@root_only
def test_exec_runs_as_the_containers_user() -> None:
    """An exec into a running container runs as the container's user."""
    cluster = FakeCluster(runtime="local")
    try:
        pod = build_manifests(PodSpec(image="x", command=["sleep", "30"], name="p")).pod
        cluster.backend.create(pod)
        while cluster.backend.get("Pod", "default", "p")["status"]["phase"] == "Pending":
            cluster.clock.sleep(0.02)
        result = cluster.backend.exec("default", "p", None, ["id", "-u"])
        assert result.stdout == f"{DEFAULT_NON_ROOT_UID}\n".encode()
    finally:
        cluster.backend.close()


def test_non_root_caller_refuses_a_user_it_cannot_be(
    runner: PodRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller that is not root cannot switch users: the container fails, saying why."""
    monkeypatch.setattr(runtime_local.os, "geteuid", lambda: 1000)
    monkeypatch.delenv(IGNORE_RUN_AS_USER_ENV, raising=False)
    result = runner.run(PodSpec(image="x", command=["true"], run_as_user=4242), check=False)
    assert not result.ok
    assert "cannot run the command as uid 4242" in result.logs
    assert IGNORE_RUN_AS_USER_ENV in result.logs


def test_opting_out_runs_as_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the opt-out, the command runs as the caller and the setting is named unenforced."""
    monkeypatch.setattr(runtime_local.os, "geteuid", lambda: 1000)
    monkeypatch.setenv(IGNORE_RUN_AS_USER_ENV, "1")
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    try:
        result = runner.run(PodSpec(image="x", command=["true"], run_as_user=4242))
        assert result.ok
        pod = build_manifests(PodSpec(image="x", command=["true"], run_as_user=4242)).pod
        assert "runAsUser 4242 (runs as uid 1000)" in unenforced_settings(pod)
    finally:
        runner.close()


def test_non_root_caller_satisfies_the_restricted_default(
    runner: PodRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restricted profile's implicit 65532 is met by any non-root caller (no refusal)."""
    monkeypatch.setattr(runtime_local.os, "geteuid", lambda: 1000)
    monkeypatch.delenv(IGNORE_RUN_AS_USER_ENV, raising=False)
    assert runner.run(PodSpec(image="x", command=["true"])).ok


def test_unenforced_settings_are_named_and_reported(runner: PodRunner) -> None:
    """The settings a local process cannot honour are listed and end in a Warning event."""
    spec = PodSpec(image="x", command=["true"], read_only_root_filesystem=True)
    names = unenforced_settings(build_manifests(spec).pod)
    for expected in ("readOnlyRootFilesystem", "capabilities", "seccompProfile"):
        assert expected in names
    result = runner.run(spec)
    assert result.ok
    warnings = [
        e
        for e in runner.backend.list("Event", "default").items
        if e.get("reason") == "SecurityNotEnforced"
    ]
    assert warnings
    assert "readOnlyRootFilesystem" in warnings[0]["message"]
