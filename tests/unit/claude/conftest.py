"""Shared fixtures for the Claude Code tests: the stand-in CLI, samples, a local fake cluster."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from podrunner.claude import ClaudeRunner
from podrunner.run import PodRunner
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from collections.abc import Iterator

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "claude"
STANDIN = FIXTURES / "claude"
SAMPLES = FIXTURES / "samples"


@pytest.fixture
def standin() -> str:
    """Absolute path of the stand-in ``claude`` executable."""
    return str(STANDIN)


@pytest.fixture
def local_runner() -> Iterator[PodRunner]:
    """A PodRunner on a fake cluster whose containers run as local processes."""
    cluster = FakeCluster(runtime="local")
    runner = PodRunner(cluster.backend)
    try:
        yield runner
    finally:
        runner.close()


@pytest.fixture
def claude_runner(local_runner: PodRunner, standin: str, tmp_path: Path) -> ClaudeRunner:
    """A ClaudeRunner running the stand-in CLI locally, HOME in a temporary directory."""
    return ClaudeRunner(
        local_runner,
        image="example.com/claude-code:2.0.0",
        claude_path=standin,
        home=str(tmp_path / "home"),
        launcher_environ={},
        timeout=60,
    )


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A host directory the pod's process can use: it may run as another user (uid 10001).

    A path that exists on this machine is left as it is by the local runtime, so files here
    are seen by the CLI under the same path; ``record.jsonl`` is ready for
    ``CLAUDE_STANDIN_RECORD``.
    """
    path = tmp_path / "shared"
    path.mkdir()
    for directory in (path, *path.parents):
        if directory == Path("/tmp"):
            break
        directory.chmod(directory.stat().st_mode | 0o711)
    path.chmod(0o777)
    (path / "record.jsonl").touch()
    (path / "record.jsonl").chmod(0o666)
    return path


@pytest.fixture(autouse=True)
def _pools_end_with_their_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Stop the background thread of every pool a test started and left running.

    A ClaudeWorker is a pool of one pod: a test that never stops its worker would leave the
    pool's thread watching a cluster that is gone (and counted by later tests' thread checks).
    """
    from podrunner.run.pool import PodPool

    started: list[PodPool] = []
    start = PodPool.start

    def recording(self: PodPool) -> PodPool:
        started.append(self)
        return start(self)

    monkeypatch.setattr(PodPool, "start", recording)
    yield
    for pool in started:
        pool.detach()
