"""ClaudeRunner callbacks that raise: the run stops, the caller gets the error, nothing stays."""

from __future__ import annotations

import pytest

from podrunner.claude import ClaudeRunner, ClaudeTask
from podrunner.sdk.manifest import MANAGED_SELECTOR


class Boom(Exception):
    """What the user's callback raises."""


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt], ids=["exception", "ctrl-c"])
@pytest.mark.parametrize("callback", ["on_log", "on_event"])
def test_claude_callback_that_raises(
    claude_runner: ClaudeRunner, callback: str, error: type[BaseException]
) -> None:
    """on_log / on_event raising reaches run()'s caller, and the pod, Secret and ConfigMap go."""
    calls: list[object] = []

    def raising(arg: object) -> None:
        calls.append(arg)
        raise error("from the callback")

    task = ClaudeTask("#tool-use review", output_format="stream-json")
    with pytest.raises(error, match="from the callback"):
        claude_runner.run(task, **{callback: raising})  # type: ignore[arg-type]
    assert len(calls) == 1
    backend = claude_runner.pod_runner.backend
    for kind in ("Pod", "Secret", "ConfigMap"):
        assert backend.list(kind, None, label_selector=MANAGED_SELECTOR).items == []  # type: ignore[arg-type]
