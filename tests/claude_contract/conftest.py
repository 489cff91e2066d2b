"""The Claude contract tier: the same tests on the stand-in CLI and on the real Claude Code.

Every test gets a ``cli`` parameter: ``stand-in`` (``tests/fixtures/claude/claude``, always)
and ``real`` (the npm package ``@anthropic-ai/claude-code``, pinned in noxfile.py, when
``$PODRUNNER_REAL_CLAUDE`` names its binary: ``nox -s claude_contract`` installs it and sets
that). Both run as local processes through ``FakeCluster(runtime="local")``, with
``ANTHROPIC_BASE_URL`` pointing at a :class:`~podrunner.testing.messages_api.FakeMessagesAPI`
on 127.0.0.1 that scripts what the model says.

Network safety: the real CLI only runs when this process (and so every pod process it starts)
is in a network namespace whose only interface is loopback (``unshare --net``, as the nox
session runs pytest); otherwise its tests fail rather than risk a call out. The CLI also gets
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` (set by ClaudeRunner).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from contract_util import Cli, loopback_only

from podrunner.claude import ClaudeCredentials, ClaudeRunner, ClaudeWorker
from podrunner.run import PodRunner
from podrunner.testing import FakeCluster
from podrunner.testing.messages_api import FakeMessagesAPI

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REAL_CLI_ENV = "PODRUNNER_REAL_CLAUDE"
STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "claude" / "claude"
IMAGE = "example.com/claude-code:2.1.332"
API_KEY = "sk-ant-api03-contract-0000000000"


def _reachable(binary: str, tmp: Path) -> str:
    """A path of the binary that the pod's user (uid 10001) can execute.

    The npm cache lives under ``~/.cache`` (``/root`` is 0700 for root); a hard link in a
    world-searchable directory costs nothing, a copy is the fallback across filesystems.
    """
    tmp.chmod(0o755)
    target = tmp / "claude"
    try:
        os.link(os.path.realpath(binary), target)
    except OSError:
        shutil.copy2(os.path.realpath(binary), target)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(target)


@pytest.fixture(scope="session", params=["stand-in", "real"])
def cli(request: pytest.FixtureRequest) -> Iterator[Cli]:
    """The CLI under test (the real one skips unless installed; see the module docstring)."""
    if request.param == "stand-in":
        yield Cli("stand-in", str(STANDIN), "stand-in")
        return
    binary = os.environ.get(REAL_CLI_ENV)
    if not binary:
        pytest.skip(f"the real Claude Code CLI is not installed (${REAL_CLI_ENV} is unset)")
    ok, seen = loopback_only()
    if not ok:
        pytest.fail(
            f"the real Claude Code CLI runs only in a network namespace with loopback alone "
            f"(unshare --net, as `nox -s claude_contract` does); this one has {seen}"
        )
    tmp = Path(tempfile.mkdtemp(prefix="podrunner-claude-cli-"))
    try:
        path = _reachable(binary, tmp)
        version = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        yield Cli("real", path, version)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    """The Messages API stand-in on 127.0.0.1, one per test."""
    with FakeMessagesAPI() as server:
        yield server


@pytest.fixture
def pod_runner() -> Iterator[PodRunner]:
    """A PodRunner on a fake cluster whose containers run as local processes."""
    runner = PodRunner(FakeCluster(runtime="local").backend)
    try:
        yield runner
    finally:
        runner.close()


def pod_env(api: FakeMessagesAPI, **extra: str) -> dict[str, str]:
    """The CLI's environment: the stand-in API, no retries unless a test wants them."""
    return {"ANTHROPIC_BASE_URL": api.url, "CLAUDE_CODE_MAX_RETRIES": "0", **extra}


@pytest.fixture
def make_runner(
    cli: Cli, api: FakeMessagesAPI, pod_runner: PodRunner
) -> Callable[..., ClaudeRunner]:
    """Build a ClaudeRunner for ``cli`` against ``api``; keywords override its options."""

    def make(*, env: dict[str, str] | None = None, **options: Any) -> ClaudeRunner:
        options.setdefault("credentials", ClaudeCredentials.api_key(API_KEY))
        return ClaudeRunner(
            pod_runner,
            image=IMAGE,
            claude_path=cli.path,
            launcher_environ={},
            timeout=120,
            env=pod_env(api, **(env or {})),
            **options,
        )

    return make


@pytest.fixture
def runner(make_runner: Callable[..., ClaudeRunner]) -> ClaudeRunner:
    """A ClaudeRunner with the default options."""
    return make_runner()


@pytest.fixture
def worker(cli: Cli, api: FakeMessagesAPI, pod_runner: PodRunner) -> Iterator[ClaudeWorker]:
    """A ClaudeWorker (one pod, one exec per task: HOME, and so sessions, persist)."""
    with ClaudeWorker(
        pod_runner,
        image=IMAGE,
        credentials=ClaudeCredentials.api_key(API_KEY),
        claude_path=cli.path,
        launcher_environ={},
        exec_timeout=120,
        env=pod_env(api),
    ) as running:
        yield running
