"""PodTransport on a real API server (kwok): the Claude Agent SDK's flows through a pod.

kwok plays the kubelet: the pod is scheduled and reported running, and the exec that starts
the CLI runs on this machine through kwok's local exec (which does not apply the pod's
environment: a wrapper pins ``HOME``). The SDK is the real ``claude_agent_sdk`` package, the CLI
the stand-in, which speaks the SDK's control protocol. Skips when either is missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

pytest.importorskip("aiohttp")
pytest.importorskip(
    "claude_agent_sdk",
    reason="claude-agent-sdk is not installed: pip install 'podrunner[agent-sdk]'",
)

from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookMatcher,
    PermissionResultAllow,
    ResultMessage,
    SystemMessage,
    query,
)

from podrunner import AsyncPodRunner
from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend
from podrunner.backends.kubernetes.config import ClusterConfig
from podrunner.claude import ClaudeCredentials
from podrunner.claude.transport import PodTransport
from podrunner.manifest import MANAGED_SELECTOR

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

pytestmark = pytest.mark.integration

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "claude" / "claude"
IMAGE = "example.com/claude-code:2.1.332"
CANARY = "sk-ant-api03-KWOKSDKCANARY"


@pytest.fixture(autouse=True)
def _needs_kwok() -> None:
    kwok = pytest.importorskip("podrunner.testing.controlplane.kwok")
    if kwok.KwokCluster().missing_binaries() and shutil.which("go") is None:
        pytest.skip("kwok control-plane binaries are missing and Go is not installed to build them")


@pytest.fixture
def wrapper(tmp_path: Path) -> Path:
    """The stand-in with HOME in a scratch directory (kwok's exec drops the pod's env)."""
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "claude"
    script.write_text(f'#!/bin/sh\nHOME={home} exec {STANDIN} "$@"\n')
    script.chmod(0o755)
    return script


def run(
    kubeconfig: Path,
    namespace: str,
    body: Callable[[AsyncPodRunner], Awaitable[Any]],
) -> tuple[Any, list[str]]:
    """Run ``body`` with an AsyncPodRunner on kwok; return its value and what was left."""

    async def main() -> tuple[Any, list[str]]:
        backend = AsyncKubernetesBackend(ClusterConfig.from_kubeconfig_file(kubeconfig))
        async with AsyncPodRunner(backend, namespace) as pods:
            try:
                value = await body(pods)
            finally:
                left = [
                    f"{kind}/{o['metadata']['name']}"
                    for kind in ("Pod", "Secret", "ConfigMap")
                    for o in (
                        await backend.list(kind, namespace, label_selector=MANAGED_SELECTOR)
                    ).items
                ]
        await backend.close()
        return value, left

    return asyncio.run(main())


def make(
    pods: AsyncPodRunner, wrapper: Path, options: ClaudeAgentOptions, **kw: Any
) -> PodTransport:
    return PodTransport(
        pods,
        image=IMAGE,
        options=options,
        claude_path=str(wrapper),
        launcher_environ={},
        start_timeout=60,
        **kw,
    )


def test_query_through_a_kwok_pod(kubeconfig: Path, namespace: str, wrapper: Path) -> None:
    """query(): the answer from the CLI in the pod; the key only in a Secret; nothing left."""
    options = ClaudeAgentOptions(cwd=str(wrapper.parent))
    seen: dict[str, Any] = {}

    async def body(pods: AsyncPodRunner) -> list[Any]:
        transport = make(pods, wrapper, options, credentials=ClaudeCredentials.api_key(CANARY))
        messages = []
        async for message in query(prompt="hello", options=options, transport=transport):
            if isinstance(message, SystemMessage) and transport.pod_name:
                pod = await pods.api.get("Pod", namespace, transport.pod_name)
                seen["pod"] = json.dumps(pod)
            messages.append(message)
        return messages

    messages, left = run(kubeconfig, namespace, body)
    assert isinstance(messages[-1], ResultMessage)
    assert messages[-1].result == "You asked: hello"
    assert CANARY not in seen["pod"]
    assert "secretKeyRef" in seen["pod"]
    assert left == []


def test_client_with_permission_hook_and_interrupt(
    kubeconfig: Path, namespace: str, wrapper: Path
) -> None:
    """ClaudeSDKClient: hook and permission callbacks, interrupt, a second turn; then nothing."""
    calls: list[str] = []

    async def decide(name: str, tool_input: dict[str, Any], context: Any) -> Any:
        calls.append(f"can_use_tool:{name}")
        return PermissionResultAllow()

    async def hook(data: Any, tool_use_id: str | None, context: Any) -> Any:
        calls.append(f"{data['hook_event_name']}:{data['tool_name']}")
        return {}

    options = ClaudeAgentOptions(
        cwd=str(wrapper.parent),
        can_use_tool=decide,
        hooks={"PreToolUse": [HookMatcher(matcher="Bash", hooks=[hook])]},
        env={"CLAUDE_STANDIN_SLEEP": "60"},
    )

    async def body(pods: AsyncPodRunner) -> tuple[list[Any], list[Any]]:
        async with ClaudeSDKClient(options, transport=make(pods, wrapper, options)) as client:
            await client.query("make it #tool-use")
            tool_turn = [m async for m in client.receive_response()]
            await client.query("think #slow")
            await client.interrupt()
            stopped = [m async for m in client.receive_response()]
        return tool_turn, stopped

    (tool_turn, stopped), left = run(kubeconfig, namespace, body)
    assert calls == ["PreToolUse:Bash", "can_use_tool:Bash"]
    assert (wrapper.parent / "made.txt").exists()
    assert any(isinstance(m, AssistantMessage) for m in tool_turn)
    assert isinstance(stopped[-1], ResultMessage)
    assert stopped[-1].subtype == "error_during_execution"
    assert left == []


def test_exception_and_cancellation_leave_nothing(
    kubeconfig: Path, namespace: str, wrapper: Path
) -> None:
    """An exception in the caller, or a cancelled task: pod and Secret are deleted."""
    options = ClaudeAgentOptions(cwd=str(wrapper.parent))
    creds = ClaudeCredentials.api_key(CANARY)

    async def body(pods: AsyncPodRunner) -> None:
        async def fail() -> None:
            # (mid-turn, and kwok's exec cannot pass on end of input: a short wait)
            pod_transport = make(pods, wrapper, options, credentials=creds, close_timeout=2)
            async with ClaudeSDKClient(options, transport=pod_transport) as client:
                await client.query("hello")
                raise RuntimeError("caller failed")

        with pytest.raises(RuntimeError):
            await fail()

        async def converse() -> None:
            async with ClaudeSDKClient(
                options, transport=make(pods, wrapper, options, credentials=creds)
            ) as client:
                await client.query("hello")
                await asyncio.sleep(60)

        task = asyncio.ensure_future(converse())
        await asyncio.sleep(3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _, left = run(kubeconfig, namespace, body)
    assert left == []
