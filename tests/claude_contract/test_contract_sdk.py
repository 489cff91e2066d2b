"""The Agent SDK's control protocol, through PodTransport, on the stand-in and the real CLI.

The real ``claude_agent_sdk`` drives the CLI in a pod of the fake's local runtime (a real
process), the model is the Messages API stand-in. What the stand-in's SDK mode does
(tests/fixtures/claude/standin_sdk.py) is held to what Claude Code 2.1.332 does: the same
assertions on both. Skipped without ``claude-agent-sdk`` (``nox -s claude_contract`` installs
the ``agent-sdk`` extra).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

pytest.importorskip(
    "claude_agent_sdk",
    reason="claude-agent-sdk is not installed: pip install 'podrunner[agent-sdk]'",
)

from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    ToolResultBlock,
    UserMessage,
    query,
)

from podrunner import AsyncPodRunner
from podrunner.claude import ClaudeCredentials
from podrunner.claude.transport import PodTransport
from podrunner.testing import FakeCluster
from podrunner.testing.messages_api import Reply

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from contract_util import Cli

    from podrunner.testing.messages_api import FakeMessagesAPI

pytestmark = pytest.mark.asyncio

IMAGE = "example.com/claude-code:2.1.332"
API_KEY = "sk-ant-api03-contract-0000000000"


def pod_env(api: FakeMessagesAPI) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": api.url, "CLAUDE_CODE_MAX_RETRIES": "0"}


@pytest_asyncio.fixture
async def pods() -> AsyncIterator[AsyncPodRunner]:
    async with AsyncPodRunner(FakeCluster(runtime="local").async_backend) as runner:
        yield runner


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The CLI's working directory, writable by the pod's user (uid 10001)."""
    path = tmp_path / "work"
    path.mkdir()
    for directory in (path, *path.parents):
        if directory == Path("/tmp"):
            break
        directory.chmod(directory.stat().st_mode | 0o711)
    path.chmod(0o777)
    return path


def make(
    pods: AsyncPodRunner, cli: Cli, api: FakeMessagesAPI, options: ClaudeAgentOptions
) -> PodTransport:
    return PodTransport(
        pods,
        image=IMAGE,
        options=options,
        credentials=ClaudeCredentials.api_key(API_KEY),
        claude_path=cli.path,
        launcher_environ={},
        env=pod_env(api),
        start_timeout=60,
    )


def tool_results(messages: list[Any]) -> list[ToolResultBlock]:
    return [
        block
        for m in messages
        if isinstance(m, UserMessage) and isinstance(m.content, list)
        for block in m.content
        if isinstance(block, ToolResultBlock)
    ]


async def test_query(pods: AsyncPodRunner, cli: Cli, api: FakeMessagesAPI, workdir: Path) -> None:
    """query(): the model's answer is the result; the prompt reached the API."""
    api.script(Reply.text("The answer is 4."))
    options = ClaudeAgentOptions(cwd=str(workdir))
    messages = [
        m
        async for m in query(
            prompt="What is 2+2?", options=options, transport=make(pods, cli, api, options)
        )
    ]
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert (result.subtype, result.is_error, result.result) == (
        "success",
        False,
        "The answer is 4.",
    )
    assert any("What is 2+2?" in str(r.messages) for r in api.message_requests)


async def test_hook_then_permission_then_tool(
    pods: AsyncPodRunner, cli: Cli, api: FakeMessagesAPI, workdir: Path
) -> None:
    """A tool that needs permission: PreToolUse hook first, then can_use_tool; then it runs."""
    calls: list[str] = []

    async def decide(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        calls.append(f"can_use_tool:{name}:{tool_input['command']}")
        return PermissionResultAllow()

    async def hook(data: Any, tool_use_id: str | None, context: Any) -> Any:
        calls.append(
            f"{data['hook_event_name']}:{data['tool_name']}:{tool_use_id == data['tool_use_id']}"
        )
        return {}

    api.script(
        Reply.tool_use("Bash", {"command": "touch made.txt", "description": "make it"}),
        Reply.text("done"),
    )
    options = ClaudeAgentOptions(
        cwd=str(workdir),
        can_use_tool=decide,
        hooks={"PreToolUse": [HookMatcher(matcher="Bash", hooks=[hook])]},
    )
    async with ClaudeSDKClient(options, transport=make(pods, cli, api, options)) as client:
        await client.query("make the file")
        messages = [m async for m in client.receive_response()]
    assert calls == ["PreToolUse:Bash:True", "can_use_tool:Bash:touch made.txt"]
    assert (workdir / "made.txt").exists()
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert (result.result, result.permission_denials) == ("done", [])


async def test_permission_denied(
    pods: AsyncPodRunner, cli: Cli, api: FakeMessagesAPI, workdir: Path
) -> None:
    """A deny: the tool does not run, its message is the tool's error, the result lists it."""

    async def deny(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        return PermissionResultDeny(message="not here")

    api.script(
        Reply.tool_use("Bash", {"command": "touch made.txt", "description": "make it"}),
        Reply.text("ok"),
    )
    options = ClaudeAgentOptions(cwd=str(workdir), can_use_tool=deny)
    async with ClaudeSDKClient(options, transport=make(pods, cli, api, options)) as client:
        await client.query("make the file")
        messages = [m async for m in client.receive_response()]
    assert not (workdir / "made.txt").exists()
    [refused] = tool_results(messages)
    assert refused.is_error
    assert "not here" in str(refused.content)
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert [d["tool_name"] for d in result.permission_denials or []] == ["Bash"]


async def test_interrupt_a_running_tool(
    pods: AsyncPodRunner, cli: Cli, api: FakeMessagesAPI, workdir: Path
) -> None:
    """interrupt() during a long Bash call ends the turn at once; the client goes on."""
    api.script(Reply.tool_use("Bash", {"command": "sleep 60", "description": "wait"}))
    options = ClaudeAgentOptions(cwd=str(workdir), allowed_tools=["Bash"])
    async with ClaudeSDKClient(options, transport=make(pods, cli, api, options)) as client:
        await client.query("wait a minute")
        started = time.monotonic()
        async for message in client.receive_messages():
            if type(message).__name__ == "AssistantMessage":
                break  # the tool call: the command now runs
        await client.interrupt()
        rest = [m async for m in client.receive_response()]
        stopped = rest[-1]
        api.script(Reply.text("second answer"))
        await client.query("and now?")
        second = [m async for m in client.receive_response()]
    assert time.monotonic() - started < 30
    assert isinstance(stopped, ResultMessage)
    assert (stopped.subtype, stopped.is_error) == ("error_during_execution", True)
    answered = second[-1]
    assert isinstance(answered, ResultMessage)
    assert answered.result == "second answer"
