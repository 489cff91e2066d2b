"""The Agent SDK through a pod: time from ``connect`` to the first event, against a local CLI.

Target (issue 17, figures): the SDK's own flow, ``ClaudeSDKClient.connect()`` then a prompt
and its first message, with :class:`~podrunner.claude.PodTransport` on kwok, against the same
flow with the SDK's default transport (a local subprocess). Both run the stand-in CLI
(tests/fixtures/claude/claude, the SDK's mode), so what differs is the transport: a pod created,
scheduled and reported running by the API server, then the CLI exec'd into it over the exec
websocket, against a fork and exec on this machine. The fake's local runtime (PodTransport on
``FakeCluster(runtime="local")``) is measured too.

Per repeat, the three are timed in turn in one event loop (the machine is shared and noisy);
figures are medians of :data:`REPEATS`. ``*_connect_s``: ``connect()`` returned (pod running,
CLI started, the SDK's ``initialize`` answered); ``*_first_event_s``: from the start of
``connect()`` to the first message of the prompt's answer (the CLI's ``system/init``).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

REPEATS = 5
STANDIN = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "claude" / "claude"
IMAGE = "example.com/claude-code:2.1.332"


async def _timed(options: Any, transport: Any) -> tuple[float, float]:
    """Seconds to ``connect()`` and to the first message of the answer, from one start."""
    from claude_agent_sdk import ClaudeSDKClient

    client = ClaudeSDKClient(options, transport=transport)
    start = time.perf_counter()
    await client.connect()
    connected = time.perf_counter() - start
    try:
        await client.query("hello")
        async for _ in client.receive_messages():
            break
        first = time.perf_counter() - start
        async for _ in client.receive_response():
            pass
    finally:
        await client.disconnect()
    return connected, first


async def _measure(kubeconfig: Path, scratch: Path) -> dict[str, list[float]]:
    from claude_agent_sdk import ClaudeAgentOptions

    from podrunner import AsyncPodRunner
    from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend
    from podrunner.backends.kubernetes.config import ClusterConfig
    from podrunner.claude.transport import PodTransport
    from podrunner.testing import FakeCluster

    # The local transport passes this process's environment on; a PYTHONPATH (a checkout run)
    # would slow the stand-in's interpreter start there and nowhere else. sys.path is set.
    os.environ.pop("PYTHONPATH", None)
    # One python3 for all three: the fake's pod keeps only the PATH its user can search, so a
    # version manager's shims under /root (~100 ms per start here) would only slow the others.
    path = ":".join(d for d in os.environ.get("PATH", "").split(":") if not d.startswith("/root"))
    wrapper = scratch / "claude"  # kwok's local exec drops the pod's env: pin HOME
    wrapper.write_text(f'#!/bin/sh\nHOME={scratch} PATH={path} exec {STANDIN} "$@"\n')
    wrapper.chmod(0o755)
    options = ClaudeAgentOptions(cwd=str(scratch))
    local = ClaudeAgentOptions(
        cwd=str(scratch), cli_path=str(STANDIN), env={"HOME": str(scratch), "PATH": path}
    )
    kwok = AsyncKubernetesBackend(ClusterConfig.from_kubeconfig_file(kubeconfig))
    times: dict[str, list[float]] = {}
    async with (
        AsyncPodRunner(kwok, "default") as on_kwok,
        AsyncPodRunner(FakeCluster(runtime="local").async_backend) as on_fake,
    ):

        def pod(runner: AsyncPodRunner, path: Path) -> Any:
            return PodTransport(
                runner, image=IMAGE, options=options, claude_path=str(path), launcher_environ={}
            )

        await _timed(local, None)  # warm: imports, first spawn
        await _timed(options, pod(on_fake, STANDIN))
        await _timed(options, pod(on_kwok, wrapper))
        for _ in range(REPEATS):
            for name, opts, transport in (
                ("local", local, None),
                ("fake", options, pod(on_fake, STANDIN)),
                ("kwok", options, pod(on_kwok, wrapper)),
            ):
                connected, first = await _timed(opts, transport)
                times.setdefault(f"{name}_connect_s", []).append(connected)
                times.setdefault(f"{name}_first_event_s", []).append(first)
    await kwok.close()
    return times


def run() -> dict[str, object]:
    try:
        import claude_agent_sdk  # noqa: F401
    except ImportError:
        return {"skipped": "claude-agent-sdk is not installed (pip install 'podrunner[agent-sdk]')"}
    from podrunner.testing.controlplane.kwok import KwokCluster

    cluster = KwokCluster()
    with cluster, tempfile.TemporaryDirectory(prefix="podrunner-bench-sdk-") as scratch:
        Path(scratch).chmod(0o777)
        times = asyncio.run(_measure(cluster.kubeconfig, Path(scratch)))
    figures: dict[str, object] = {"repeats": REPEATS}
    for key, values in sorted(times.items()):
        figures[key] = round(statistics.median(values), 3)
    figures["kwok_over_local_first_event_s"] = round(
        float(str(figures["kwok_first_event_s"])) - float(str(figures["local_first_event_s"])), 3
    )
    return figures
