"""Claude Code on the local runtime: mounted files, credentials and HOME live in the run.

The pod spec mounts the large prompt (a ConfigMap), the OAuth credentials file (a Secret file)
and ``HOME`` (an emptyDir) at container paths; the local runtime materialises each under the
run's directory, maps the paths the command is given, and removes it all with the pod.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from podrunner import PodRunner, PodSpec, Volume
from podrunner.backends.fake import runtime_local
from podrunner.claude import ClaudeCredentials, ClaudeRunner, ClaudeTask
from podrunner.claude.runner import DEFAULT_HOME
from podrunner.testing import FakeCluster


def _run_dirs() -> set[str]:
    live = getattr(runtime_local, "_LIVE", None)
    parent = None if live is None else live.parent
    return set() if parent is None or not os.path.isdir(parent) else set(os.listdir(parent))


def _host_home() -> list[str]:
    """Everything under the host's /home/claude (the container HOME), if it exists at all."""
    return (
        sorted(str(p) for p in Path(DEFAULT_HOME).rglob("*")) if os.path.isdir(DEFAULT_HOME) else []
    )


def _runner(local_runner: PodRunner, standin: str, **kwargs: object) -> ClaudeRunner:
    # The default HOME (/home/claude): the host's must never be touched.
    return ClaudeRunner(
        local_runner,
        image="example.com/claude-code:2.0.0",
        claude_path=standin,
        launcher_environ={},
        timeout=60,
        **kwargs,  # type: ignore[arg-type]
    )


def test_prompt_over_100_kb_reaches_the_cli(local_runner: PodRunner, standin: str) -> None:
    """A 150 KB prompt goes through its ConfigMap file and stdin to the CLI, whole."""
    before, host_home = _run_dirs(), _host_home()
    prompt = "Summarise this. " + "x" * 150_000
    result = _runner(local_runner, standin).run(ClaudeTask(prompt))
    digest = hashlib.sha256(prompt.encode()).hexdigest()[:12]
    assert f"({len(prompt.encode())} bytes, sha256 {digest})" in result.text
    assert _run_dirs() == before
    assert _host_home() == host_home


def test_oauth_json_credentials_authenticate(local_runner: PodRunner, standin: str) -> None:
    """The OAuth JSON file (a Secret file mount) is found and copied into the run's HOME."""
    before = _run_dirs()
    oauth = json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-local", "expiresAt": 1}})
    runner = _runner(
        local_runner,
        standin,
        credentials=ClaudeCredentials.oauth_json(oauth),
        env={"CLAUDE_STANDIN_REQUIRE_AUTH": "1"},
    )
    result = runner.run(ClaudeTask("hello"), check=False)
    assert result.ok, result.run.logs if result.run else result
    assert _run_dirs() == before


def test_sessions_do_not_pile_up_across_runs(local_runner: PodRunner, standin: str) -> None:
    """Each run has its own HOME: a session of one run is unknown to the next, as in pods."""
    host_home = _host_home()
    runner = _runner(local_runner, standin)
    first = runner.run(ClaudeTask("one"))
    assert first.session_id
    again = runner.run(ClaudeTask("two", resume=first.session_id), check=False)
    assert not again.ok
    assert _host_home() == host_home


def test_spec_volumes_are_files_at_mapped_paths(tmp_path: Path) -> None:
    """Secret files, ConfigMap volumes and emptyDirs of any spec are there for the command."""
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    cluster.backend.create(
        {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"app.yaml": "level: 3\n"}}
    )
    spec = PodSpec(
        image="x",
        command=["sh", "-c", 'cat "$1" "$2"; echo made > "$3/f" && cat "$3/f"; echo "$CACHE"', "sh",
                 "/etc/app/app.yaml", "/var/run/secret/token", "/cache"],
        env={"CACHE": "/cache/sub"},
        secret_files={"/var/run/secret/token": "t0k3n\n"},
        volumes=[Volume.config_map("cfg", "/etc/app"), Volume.empty_dir("/cache")],
    )  # fmt: skip
    try:
        result = runner.run(spec)
        lines = result.logs.splitlines()
        assert lines[:3] == ["level: 3", "t0k3n", "made"]
        assert lines[3].endswith("/sub")
        assert lines[3] != "/cache/sub"
    finally:
        runner.close()


@pytest.fixture(autouse=True)
def _no_leftovers() -> object:
    before = _run_dirs()
    yield
    assert _run_dirs() <= before
