"""Parsing output recorded from the real Claude Code 2.1.332.

Recorded against the local Messages API stand-in (docs/claude.md "Tested against the real CLI").

2.1.332 writes ``"type": "result"`` near the end of the result object, prints one JSON array for
``json --verbose``, and says ``api_error_type``: the cases below hold on that shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podrunner.claude import (
    ClaudeAPIError,
    ClaudeAuthError,
    ClaudeBudgetExceeded,
    ClaudeMaxTurns,
)
from podrunner.claude.parse import parse_output

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "claude" / "real-2.1.332"

# sample -> (error type or None, status, retryable)
EXPECTED: dict[str, tuple[type[Exception] | None, int | None, bool]] = {
    "success.json": (None, None, False),
    "structured.json": (None, None, False),
    "auth_error_401.json": (ClaudeAuthError, None, False),
    "permission_error_403.json": (ClaudeAuthError, None, False),
    "not_logged_in.json": (ClaudeAuthError, None, False),
    "rate_limit_429.json": (ClaudeAPIError, 429, True),
    "overloaded_529.json": (ClaudeAPIError, 529, True),
    "connection_failed.json": (ClaudeAPIError, None, True),
    "max_turns.json": (ClaudeMaxTurns, None, False),
    "budget_exceeded.json": (ClaudeBudgetExceeded, None, False),
}


def test_every_recording_is_covered() -> None:
    assert {p.name for p in REAL.glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_results_classify(name: str) -> None:
    """Each recorded result parses and classifies as the contract tier saw it live."""
    kind, status, retryable = EXPECTED[name]
    result = parse_output(
        (REAL / name).read_text(encoding="utf-8"), exit_code=0 if kind is None else 1
    )
    assert result.raw is not None
    if kind is None:
        assert result.error is None
        assert result.session_id
        return
    assert type(result.error) is kind
    assert result.error.retryable is retryable
    if status is not None:
        assert isinstance(result.error, ClaudeAPIError)
        assert result.error.status == status


def test_result_glued_after_a_warning() -> None:
    """A warning without a newline, then the result: found although "type" comes last."""
    line = (REAL / "success.json").read_text(encoding="utf-8").strip()
    result = parse_output("(node:7) Warning: something {odd} happened" + line + "\n", exit_code=0)
    assert result.error is None
    assert result.text == "The answer is 4."
    assert result.stderr == ("(node:7) Warning: something {odd} happened",)


def test_pretty_printed_result() -> None:
    """A result printed over several lines after noise is found too."""
    obj = json.loads((REAL / "success.json").read_text(encoding="utf-8"))
    result = parse_output("npm WARN something\n" + json.dumps(obj, indent=2) + "\n", exit_code=0)
    assert result.error is None
    assert result.text == "The answer is 4."


def test_json_verbose_array() -> None:
    """With json --verbose, every event and the result come in one array, on one line."""
    events = [
        json.loads(line)
        for line in (REAL / "tool_use.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    result = parse_output(json.dumps(events) + "\n", exit_code=0, keep_events=True)
    assert result.error is None
    assert result.text == "It printed hi."
    assert len(result.events) == len(events)


def test_stream_json_tool_use() -> None:
    """The recorded tool turn: one assistant event per content block, the final answer."""
    result = parse_output(
        (REAL / "tool_use.jsonl").read_text(encoding="utf-8"), exit_code=0, keep_events=True
    )
    assert result.error is None
    assert (result.text, result.num_turns, result.model) == (
        "It printed hi.",
        2,
        "claude-sonnet-4-5-20250929",
    )
    assistant = [e for e in result.events if e["type"] == "assistant"]
    assert [len(e["message"]["content"]) for e in assistant] == [1, 1, 1]


def test_many_braces_before_a_result_stay_cheap() -> None:
    """A hostile prefix of braces is not searched forever (bounded attempts)."""
    line = (REAL / "success.json").read_text(encoding="utf-8").strip()
    result = parse_output("{" * 200_000 + line + "\n", exit_code=0)
    assert result.raw is None  # too deep in the noise to look for; reported, not hung


def test_partial_messages_leave_the_result_alone() -> None:
    """--include-partial-messages (recorded): stream_event lines are kept as events.

    The answer, turns and cost come from the result line, never summed from the deltas.
    """
    text = (REAL / "partial_messages.jsonl").read_text(encoding="utf-8")
    result = parse_output(text, exit_code=0, keep_events=True)
    assert result.error is None
    assert (result.text, result.num_turns) == ("It printed hi.", 2)
    assert result.cost_usd == json.loads(text.splitlines()[-1])["total_cost_usd"]
    kinds = [e["event"]["type"] for e in result.events if e["type"] == "stream_event"]
    assert kinds.count("message_start") == kinds.count("message_stop") == 2
    deltas = [
        e["event"]["delta"]["text"]
        for e in result.events
        if e["type"] == "stream_event"
        and e["event"]["type"] == "content_block_delta"
        and e["event"]["delta"]["type"] == "text_delta"
    ]
    assert "".join(deltas[1:]) == result.text  # the second turn's words, as they came
    assert len(result.events) == len(text.splitlines())
