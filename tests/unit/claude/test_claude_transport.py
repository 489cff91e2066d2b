"""PodTransport: the real ``claude_agent_sdk`` talking to the stand-in CLI in a fake pod.

The pods run on the fake's local runtime (real processes); the CLI is started in them with a
bidirectional exec, so the SDK's own flows (``query()``, ``ClaudeSDKClient`` with a permission
callback, hooks and ``interrupt()``) go through podrunner end to end. Skipped when
``claude-agent-sdk`` is not installed (``pip install 'podrunner[agent-sdk]'``; ``nox -s tests``
installs it).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from claude_util import leftovers

from podrunner import AsyncPodRunner
from podrunner.claude import ClaudeCredentials
from podrunner.errors import ImagePullError, SpecError
from podrunner.testing import FakeCluster

sdk = pytest.importorskip(
    "claude_agent_sdk",
    reason="claude-agent-sdk is not installed: pip install 'podrunner[agent-sdk]'",
)

from claude_agent_sdk import (  # noqa: E402
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    CLIConnectionError,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ResultMessage,
    SystemMessage,
    TextBlock,
    query,
)

from podrunner.claude.transport import PodTransport, cli_argv  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.asyncio

IMAGE = "example.com/claude-code:2.1.332"
CANARY = "sk-ant-api03-SDKTRANSPORTCANARY"


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster(runtime="local")


@pytest_asyncio.fixture
async def pods(cluster: FakeCluster) -> AsyncIterator[AsyncPodRunner]:
    async with AsyncPodRunner(cluster.async_backend) as runner:
        yield runner


@pytest.fixture
def workdir(shared: Path) -> Path:
    """Where the CLI runs in the pod (a host path the pod's user can write)."""
    return shared


def transport(
    pods: AsyncPodRunner, standin: str, options: ClaudeAgentOptions, **kw: Any
) -> PodTransport:
    return PodTransport(
        pods,
        image=IMAGE,
        options=options,
        claude_path=standin,
        launcher_environ={},
        start_timeout=30,
        **kw,
    )


def texts(messages: list[Any]) -> list[str]:
    return [
        b.text
        for m in messages
        if isinstance(m, AssistantMessage)
        for b in m.content
        if isinstance(b, TextBlock)
    ]


async def test_query_runs_in_a_pod_and_leaves_nothing(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, workdir: Path
) -> None:
    """query(): init, the answer and the result come from the CLI in the pod; then it is gone."""
    options = ClaudeAgentOptions(cwd=str(workdir), model="sonnet")
    pod_transport = transport(pods, standin, options, timeout=300)
    messages = [m async for m in query(prompt="hello", options=options, transport=pod_transport)]
    assert isinstance(messages[0], SystemMessage)
    assert messages[0].data["cwd"] == str(workdir)
    assert messages[0].data["model"] == "claude-sonnet-5-5"
    assert texts(messages) == ["You asked: hello"]
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert (result.subtype, result.is_error) == ("success", False)
    assert pod_transport.pod_name is not None
    pod = cluster.history("Pod", pods.namespace, pod_transport.pod_name)[0]
    assert pod["spec"]["activeDeadlineSeconds"] >= 300  # timeout=: the cluster ends the pod
    assert leftovers(cluster) == []


async def test_permission_callback_and_hooks(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, workdir: Path
) -> None:
    """A tool needing permission: the PreToolUse hook, then can_use_tool decide; it runs."""
    seen: list[tuple[str, Any]] = []

    async def decide(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        seen.append(("can_use_tool", (name, tool_input["command"])))
        return PermissionResultAllow()

    async def pre_tool(data: Any, tool_use_id: str | None, context: Any) -> Any:
        seen.append(("PreToolUse", (data["tool_name"], data["tool_input"]["command"])))
        return {}

    async def post_tool(data: Any, tool_use_id: str | None, context: Any) -> Any:
        seen.append(("PostToolUse", data["tool_name"]))
        return {}

    options = ClaudeAgentOptions(
        cwd=str(workdir),
        can_use_tool=decide,
        hooks={
            "PreToolUse": [HookMatcher(matcher="Bash", hooks=[pre_tool])],
            "PostToolUse": [HookMatcher(matcher="Bash", hooks=[post_tool])],
        },
    )
    async with ClaudeSDKClient(options, transport=transport(pods, standin, options)) as client:
        await client.query("make the file #tool-use")
        messages = [m async for m in client.receive_response()]
    assert seen == [
        ("PreToolUse", ("Bash", "touch made.txt")),
        ("can_use_tool", ("Bash", "touch made.txt")),
        ("PostToolUse", "Bash"),
    ]
    assert (workdir / "made.txt").exists()  # the tool ran in the pod, in options.cwd
    result = messages[-1]
    assert isinstance(result, ResultMessage)
    assert result.permission_denials == []
    assert texts(messages) == ["Created made.txt."]
    assert leftovers(cluster) == []


async def test_denied_by_callback_and_by_hook(
    pods: AsyncPodRunner, standin: str, workdir: Path
) -> None:
    """A deny from can_use_tool, or from a PreToolUse hook, keeps the tool from running."""

    async def deny(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        return PermissionResultDeny(message="not in this pod")

    async def block(data: Any, tool_use_id: str | None, context: Any) -> Any:
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "policy",
            }
        }

    by_callback = ClaudeAgentOptions(cwd=str(workdir), can_use_tool=deny)
    by_hook = ClaudeAgentOptions(
        cwd=str(workdir), hooks={"PreToolUse": [HookMatcher(matcher=None, hooks=[block])]}
    )
    for options, why in ((by_callback, "not in this pod"), (by_hook, "policy")):
        async with ClaudeSDKClient(options, transport=transport(pods, standin, options)) as client:
            await client.query("make the file #tool-use")
            messages = [m async for m in client.receive_response()]
        result = messages[-1]
        assert isinstance(result, ResultMessage)
        assert [d["tool_name"] for d in result.permission_denials or []] == ["Bash"]
        tool_results = [
            b
            for m in messages
            if not isinstance(m, ResultMessage)
            for b in getattr(m, "content", [])
            if type(b).__name__ == "ToolResultBlock"
        ]
        assert why in str(tool_results[0].content)
        assert tool_results[0].is_error
    assert not (workdir / "made.txt").exists()


async def test_interrupt_and_a_second_turn(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, workdir: Path
) -> None:
    """interrupt() stops a long turn at once; the same CLI then answers the next prompt."""
    options = ClaudeAgentOptions(cwd=str(workdir), env={"CLAUDE_STANDIN_SLEEP": "60"})
    async with ClaudeSDKClient(options, transport=transport(pods, standin, options)) as client:
        await client.query("think hard #slow")
        started = time.monotonic()
        await client.interrupt()
        first = [m async for m in client.receive_response()]
        assert time.monotonic() - started < 30
        stopped = first[-1]
        assert isinstance(stopped, ResultMessage)
        assert (stopped.subtype, stopped.is_error) == ("error_during_execution", True)
        await client.query("and now?")
        second = [m async for m in client.receive_response()]
    assert texts(second) == ["You asked: and now?"]
    answered = second[-1]
    # (again: ClaudeSDKClient.__aexit__ returns a bool, so mypy drops what it knew inside)
    assert isinstance(stopped, ResultMessage)
    assert isinstance(answered, ResultMessage)
    assert answered.session_id == stopped.session_id
    assert leftovers(cluster) == []


async def test_error_in_the_caller_cleans_up(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, workdir: Path
) -> None:
    """An exception in the ``async with`` body: the pod, Secret and CLI are gone after it."""
    options = ClaudeAgentOptions(cwd=str(workdir))
    creds = ClaudeCredentials.api_key(CANARY)
    during: list[list[str]] = []

    async def converse() -> None:
        async with ClaudeSDKClient(
            options, transport=transport(pods, standin, options, credentials=creds)
        ) as client:
            await client.query("hello")
            during.append(leftovers(cluster))
            raise RuntimeError("caller failed")

    with pytest.raises(RuntimeError, match="caller failed"):
        await converse()
    assert during[0] != []  # the pod and its Secret existed meanwhile
    assert leftovers(cluster) == []


async def test_cancellation_cleans_up(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, workdir: Path
) -> None:
    """Cancelling the task mid-turn, or mid-connect, deletes everything before it returns."""
    options = ClaudeAgentOptions(cwd=str(workdir), env={"CLAUDE_STANDIN_SLEEP": "60"})

    async def converse() -> None:
        # (the stand-in works on after end of input until its turn is over: a short wait)
        pod_transport = transport(pods, standin, options, close_timeout=2)
        async with ClaudeSDKClient(options, transport=pod_transport) as c:
            await c.query("think hard #slow")
            async for _ in c.receive_response():
                pass

    for delay in (0.0, 1.5):
        task = asyncio.ensure_future(converse())
        await asyncio.sleep(delay)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert leftovers(cluster) == []


async def test_credentials_reach_the_cli_not_the_spec(
    pods: AsyncPodRunner, cluster: FakeCluster, standin: str, workdir: Path, shared: Path
) -> None:
    """The key is in a Secret: the CLI sees it, no pod version, event or message holds it."""
    record = shared / "record.jsonl"
    options = ClaudeAgentOptions(cwd=str(workdir), env={"CLAUDE_STANDIN_RECORD": str(record)})
    pod_transport = transport(pods, standin, options, credentials=ClaudeCredentials.api_key(CANARY))
    messages = [m async for m in query(prompt="hi", options=options, transport=pod_transport)]
    assert isinstance(messages[-1], ResultMessage)
    seen = json.loads(record.read_text().splitlines()[0])
    assert "ANTHROPIC_API_KEY" in seen["credentials"]
    assert "CLAUDE_CODE_ENTRYPOINT" in seen["claude_env"]
    assert "--input-format" in seen["argv"]
    assert pod_transport.pod_name is not None
    stored = json.dumps(cluster.history("Pod", pods.namespace, pod_transport.pod_name))
    assert stored != "[]"
    assert CANARY not in stored
    assert CANARY not in json.dumps(cluster.backend.list("Event", None).items)
    assert CANARY not in repr(pod_transport.spec) + " ".join(pod_transport.command)
    assert leftovers(cluster) == []


async def test_pod_that_never_runs_is_a_connection_error() -> None:
    """An image that cannot be pulled: the SDK's CLIConnectionError, podrunner's as cause."""
    cluster = FakeCluster()
    cluster.when(image="example.com/missing:*").image_pull_error()
    options = ClaudeAgentOptions()
    async with AsyncPodRunner(cluster.async_backend) as pods:
        pod_transport = PodTransport(
            pods, image="example.com/missing:1", options=options, launcher_environ={}
        )
        with pytest.raises(CLIConnectionError) as caught:
            async for _ in query(prompt="hi", options=options, transport=pod_transport):
                pass
    assert isinstance(caught.value.__cause__, ImagePullError)
    assert leftovers(cluster) == []


async def test_bad_options_are_refused_before_any_call(pods: AsyncPodRunner) -> None:
    """A credential in options.env, a local cli_path, write_back: SpecError, nothing made."""
    with pytest.raises(SpecError, match=r"options.env\[ANTHROPIC_API_KEY\]") as caught:
        PodTransport(
            pods, image=IMAGE, options=ClaudeAgentOptions(env={"ANTHROPIC_API_KEY": CANARY})
        )
    assert CANARY not in str(caught.value)
    with pytest.raises(SpecError, match="cli_path"):
        PodTransport(pods, image=IMAGE, options=ClaudeAgentOptions(cli_path="/usr/bin/claude"))
    with pytest.raises(SpecError, match="runner"):
        PodTransport(object(), image=IMAGE)  # type: ignore[arg-type]


async def test_import_podrunner_claude_leaves_the_sdk_unloaded() -> None:
    """``import podrunner.claude`` loads no SDK; ``podrunner.claude.PodTransport`` does."""
    probe = (
        "import sys, podrunner, podrunner.claude\n"
        "before = 'claude_agent_sdk' in sys.modules\n"
        "podrunner.claude.PodTransport\n"
        "print(before, 'claude_agent_sdk' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]


async def test_argv_is_the_sdks() -> None:
    """The argv is what the SDK runs locally; a permission callback routes prompts over stdio."""

    async def decide(*_: Any) -> Any:
        return PermissionResultAllow()

    argv = cli_argv(ClaudeAgentOptions(model="opus", max_turns=3, can_use_tool=decide), "claude")
    assert argv[:4] == ["claude", "--output-format", "stream-json", "--verbose"]
    assert argv[-2:] == ["--input-format", "stream-json"]
    assert argv[argv.index("--permission-prompt-tool") + 1] == "stdio"
    assert argv[argv.index("--max-turns") + 1] == "3"
