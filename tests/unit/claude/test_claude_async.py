"""AsyncClaudeRunner: the stand-in CLI in pods of the async fake (local runtime)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from claude_util import leftovers, standin_runner

from podrunner import AsyncPodRunner, SecretRef
from podrunner.claude import (
    AsyncClaudeRunner,
    ClaudeAuthError,
    ClaudeBudgetExceeded,
    ClaudeCredentials,
    ClaudeMaxTurns,
    ClaudeRunner,
    ClaudeTask,
    ClaudeTimeout,
)
from podrunner.errors import ImagePullError, SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.testing import FakeCluster

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.asyncio

IMAGE = "example.com/claude-code:2.0.0"


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(runtime="local")


@pytest_asyncio.fixture
async def pods(cluster: FakeCluster) -> AsyncIterator[AsyncPodRunner]:
    async with AsyncPodRunner(cluster.async_backend) as runner:
        yield runner


@pytest.fixture
def claude(pods: AsyncPodRunner, standin: str, tmp_path: Path) -> AsyncClaudeRunner:
    runner: AsyncClaudeRunner = standin_runner(pods, standin, str(tmp_path / "home"))
    return runner


async def test_success_with_cost_and_usage(claude: AsyncClaudeRunner, cluster: FakeCluster) -> None:
    """The answer, cost, usage and session come back as from ClaudeRunner; nothing is left."""
    result = await claude.run(ClaudeTask("Say hello", model="sonnet"))
    assert result.ok
    assert result.text.startswith("You asked (9 bytes")
    assert result.cost_usd == pytest.approx(0.0123)
    assert result.usage.output_tokens == 57
    assert result.session_id
    assert result.run is not None
    assert result.run.exit_code == 0
    assert leftovers(cluster) == []


async def test_the_pod_is_the_sync_runners(claude: AsyncClaudeRunner, standin: str) -> None:
    """Both runners build the same pod from the same settings (one builder, no copy)."""
    sync = ClaudeRunner(
        PodRunner(FakeCluster().backend),
        image=IMAGE,
        claude_path=standin,
        home=claude.home,
        launcher_environ={},
        timeout=60,
    )
    task = ClaudeTask("x" * 200_000, output_format="stream-json")
    pods = [build_manifests(r.build_spec(task, pod_name="p")) for r in (sync, claude)]
    assert pods[0].pod["spec"] == pods[1].pod["spec"]  # (each run has its own run id)
    assert pods[0].config_map is not None
    assert pods[1].config_map is not None
    assert pods[0].config_map["data"] == pods[1].config_map["data"]


async def test_classified_errors(claude: AsyncClaudeRunner) -> None:
    """Budget and turn limits raise the typed errors; check=False puts them in the result."""
    with pytest.raises(ClaudeBudgetExceeded) as budget:
        await claude.run(ClaudeTask("#budget everything", max_budget_usd=0.01))
    assert budget.value.result is not None
    assert budget.value.result.cost_usd == pytest.approx(0.014)
    result = await claude.run(ClaudeTask("#tool-use x", max_turns=1), check=False)
    assert isinstance(result.error, ClaudeMaxTurns)
    assert result.run is not None
    assert result.run.exit_code == 1


async def test_auth_error(pods: AsyncPodRunner, standin: str, tmp_path: Path) -> None:
    """Without credentials the CLI's login message surfaces as ClaudeAuthError."""
    runner = AsyncClaudeRunner(
        pods,
        image=IMAGE,
        claude_path=standin,
        home=str(tmp_path),
        launcher_environ={},
        env={"CLAUDE_STANDIN_REQUIRE_AUTH": "1"},
    )
    with pytest.raises(ClaudeAuthError, match="Please run /login"):
        await runner.run("hello")


async def test_events_through_callbacks_and_stream(claude: AsyncClaudeRunner) -> None:
    """stream-json events reach an async on_event, and stream() yields the same events."""
    seen: list[str] = []

    async def on_event(event: Any) -> None:
        seen.append(str(event["type"]))

    task = ClaudeTask("#tool-use review", output_format="stream-json")
    result = await claude.run(task, on_event=on_event)
    assert [e["type"] for e in result.events] == seen
    assert (seen[0], seen[-1], result.num_turns) == ("system", "result", 3)
    streamed = [event["type"] async for event in claude.stream(task)]
    assert streamed == seen


async def test_stream_raises_the_classified_error_at_the_end(claude: AsyncClaudeRunner) -> None:
    """A failed task streams its events, then raises its error from the iteration."""
    task = ClaudeTask("#tool-use x", max_turns=1, output_format="stream-json")
    seen: list[str] = []

    async def consume() -> None:
        async for event in claude.stream(task):
            seen.append(str(event["type"]))

    with pytest.raises(ClaudeMaxTurns):
        await consume()
    assert seen[-1] == "result"


async def test_timeout(claude: AsyncClaudeRunner, cluster: FakeCluster) -> None:
    """A task that outlives its timeout raises ClaudeTimeout and its pod is gone."""
    claude.env["CLAUDE_STANDIN_SLEEP"] = "30"
    with pytest.raises(ClaudeTimeout) as info:
        await claude.run("#slow", timeout=1.5)
    assert info.value.retryable
    assert leftovers(cluster) == []


async def test_cancelling_deletes_pod_secret_and_config_map(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, tmp_path: Path
) -> None:
    """Cancelling the awaiting task deletes the pod, its Secret and ConfigMap first."""
    runner = AsyncClaudeRunner(
        pods,
        image=IMAGE,
        claude_path=standin,
        home=str(tmp_path),
        launcher_environ={},
        env={"CLAUDE_STANDIN_SLEEP": "30"},
        credentials=ClaudeCredentials.api_key("sk-ant-test"),
        managed_settings={"permissions": {"deny": ["Bash"]}},
    )
    task = asyncio.create_task(runner.run("#slow"))
    while not any(name.startswith("Pod/") for name in leftovers(cluster)):
        await asyncio.sleep(0.01)
    kinds = {name.split("/")[0] for name in leftovers(cluster)}
    assert kinds == {"Pod", "Secret", "ConfigMap"}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(cluster) == []


async def test_leaving_a_stream_early_deletes_the_pod(
    claude: AsyncClaudeRunner, cluster: FakeCluster
) -> None:
    """Breaking out of stream() and closing it cleans the run up."""
    stream = claude.stream(ClaudeTask("#tool-use review", output_format="stream-json"))
    async for event in stream:
        assert event["type"] == "system"
        break
    await stream.aclose()
    assert leftovers(cluster) == []


async def test_refused_before_any_api_call(pods: AsyncPodRunner, cluster: FakeCluster) -> None:
    """write_back credentials and oversized prompts are refused with nothing created."""
    runner = AsyncClaudeRunner(pods, image=IMAGE, launcher_environ={})
    with pytest.raises(SpecError, match="1 MiB"):
        await runner.run("x" * 1_100_000)
    creds = ClaudeCredentials.oauth_json(SecretRef("claude-login", "json"), write_back=True)
    writing = AsyncClaudeRunner(pods, image=IMAGE, launcher_environ={}, credentials=creds)
    with pytest.raises(SpecError, match="write_back"):
        await writing.run("hi")
    assert leftovers(cluster) == []


async def test_image_pull_error_propagates() -> None:
    """A pod that never runs raises the SDK's RunError, not a Claude error."""
    cluster = FakeCluster()
    cluster.when(image="example.com/missing:*").image_pull_error()
    async with AsyncPodRunner(cluster.async_backend) as pods:
        runner = AsyncClaudeRunner(pods, image="example.com/missing:1", launcher_environ={})
        with pytest.raises(ImagePullError):
            await runner.run("hi")
    assert leftovers(cluster) == []
