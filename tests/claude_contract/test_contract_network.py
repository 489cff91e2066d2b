"""The real CLI cannot reach anything but loopback; the stand-in refuses any other address."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from contract_util import loopback_only

from podrunner.claude import ClaudeExecutionError, ClaudeTask

if TYPE_CHECKING:
    from collections.abc import Callable

    from contract_util import Cli

    from podrunner.claude import ClaudeRunner


def test_only_loopback_when_the_real_cli_runs(cli: Cli) -> None:
    """The namespace the real CLI runs in has no interface but lo and no route."""
    ok, seen = loopback_only()
    if not cli.real:
        pytest.skip(f"the stand-in never leaves loopback by itself ({seen})")
    assert ok, seen


def test_pods_see_only_loopback(cli: Cli, runner: ClaudeRunner) -> None:
    """A pod process (what the CLI runs as) sees the same namespace: lo alone, no route."""
    if not cli.real:
        pytest.skip("checked where the real CLI runs")
    spec = runner.base_spec(["sh", "-c", "cat /proc/self/net/dev /proc/self/net/route"])
    logs = runner.pod_runner.run(spec, timeout=60).logs
    interfaces = {line.split(":")[0].strip() for line in logs.splitlines() if ":" in line}
    assert interfaces == {"lo"}
    assert logs.strip().endswith("IRTT")  # the route table's header, and no route after it


def test_stand_in_refuses_a_remote_api(cli: Cli, make_runner: Callable[..., ClaudeRunner]) -> None:
    """The stand-in's API mode only talks to loopback addresses."""
    if cli.real:
        pytest.skip("the real CLI is fenced by the namespace instead")
    runner = make_runner(env={"ANTHROPIC_BASE_URL": "https://api.example.com"})
    with pytest.raises(ClaudeExecutionError) as caught:
        runner.run(ClaudeTask("hi"))
    assert "not a loopback address" in caught.value.cli_message
