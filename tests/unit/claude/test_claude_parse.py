"""Output parsing: every recorded sample, messy output, structured fallbacks, classification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from podrunner.claude import (
    ClaudeAPIError,
    ClaudeAuthError,
    ClaudeBudgetExceeded,
    ClaudeCLINotFound,
    ClaudeError,
    ClaudeExecutionError,
    ClaudeMaxTurns,
    ClaudeOutputError,
    StreamParser,
    extract_structured,
    parse_output,
)

SAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "claude" / "samples"

# sample -> (error type or None, text prefix ("" means no text at all), structured answer,
# (total_cost_usd, num_turns, duration_ms) as the sample's result record states them)
ONE = (0.0123, 1, 1500)
FREE = (0.0, 1, 1500)
EXPECTED: dict[
    str,
    tuple[type[ClaudeError] | None, str, object, tuple[float | None, int | None, int | None]],
] = {
    "success.json": (None, "You asked (9 bytes", None, ONE),
    "success.jsonl": (None, "You asked (9 bytes", None, ONE),
    "tool_use.jsonl": (None, "The diff touches one file", None, (0.0369, 3, 4500)),
    "structured.json": (
        None,
        '{"verdict": "approve"',
        {"verdict": "approve", "issues": ["example"]},
        (0.0246, 2, 3000),
    ),
    "budget_exceeded.json": (ClaudeBudgetExceeded, "", None, (0.07, 4, 6000)),
    "budget_exceeded.jsonl": (ClaudeBudgetExceeded, "", None, (0.07, 4, 6000)),
    "max_turns.json": (ClaudeMaxTurns, "", None, (0.0246, 2, 3000)),
    "max_turns.jsonl": (ClaudeMaxTurns, "", None, (0.0246, 2, 3000)),
    "auth_error.json": (ClaudeAuthError, "Invalid API key", None, FREE),
    "auth_error.jsonl": (ClaudeAuthError, "Invalid API key", None, FREE),
    "oauth_expired.json": (ClaudeAuthError, "OAuth token has expired", None, FREE),
    "api_error.json": (ClaudeAPIError, "API Error: 529", None, FREE),
    "no_result.jsonl": (ClaudeOutputError, "Starting the review", None, (None, None, None)),
    "truncated.json": (ClaudeOutputError, "", None, (None, None, None)),
    "noisy.json": (None, "Réponse: héllo 日本語 🎉", None, ONE),
    "pretty.json": (None, "Pretty answer", None, ONE),
    "glued.json": (None, "Glued answer", None, ONE),
    "fenced.json": (None, "Here is the review", {"verdict": "approve", "issues": []}, ONE),
    "braces.json": (
        None,
        "Sure.",
        {"verdict": "request-changes", "issues": ["missing test"]},
        ONE,
    ),
    "result_is_json.json": (
        None,
        '{"verdict": "approve"',
        {"verdict": "approve", "issues": []},
        ONE,
    ),
}


def test_every_sample_has_an_expectation() -> None:
    """No recorded sample goes untested."""
    assert {p.name for p in SAMPLES.iterdir()} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str) -> None:
    """Each recorded output parses to the expected outcome, text and structured answer."""
    error_type, text, structured, (cost, turns, duration) = EXPECTED[name]
    stream = name.endswith(".jsonl")
    result = parse_output((SAMPLES / name).read_bytes(), keep_events=stream)
    if error_type is None:
        assert result.error is None, result.error
        assert result.ok
        assert result.session_id
        assert result.model == "claude-sonnet-4-5-20250929"
        assert result.usage.output_tokens > 0
    else:
        assert isinstance(result.error, error_type)
        assert result.error.result is result
        with pytest.raises(error_type):
            result.check()
    assert (result.num_turns, result.duration_ms) == (turns, duration)
    assert result.cost_usd == (None if cost is None else pytest.approx(cost))
    if text:
        assert result.text.startswith(text)
    else:
        assert result.text == ""
    if structured is not None:
        assert result.structured == structured
    if stream:
        assert result.events
        assert all(isinstance(e, dict) for e in result.events)
    else:
        assert result.events == ()


def test_stream_events_keep_tool_use() -> None:
    """stream-json keeps init, the tool_use call and its tool_result in order."""
    result = parse_output((SAMPLES / "tool_use.jsonl").read_text(), keep_events=True)
    types = [e["type"] for e in result.events]
    assert types[0] == "system"
    assert types[-1] == "result"
    tool_use = result.events[1]["message"]["content"][1]
    assert tool_use["type"] == "tool_use"
    assert tool_use["name"] == "Bash"
    tool_result = result.events[2]["message"]["content"][0]
    assert tool_result["tool_use_id"] == tool_use["id"]
    assert result.num_turns == 3


def test_budget_error_keeps_cost_and_limit() -> None:
    """A budget error reports what was spent and the CLI's own message."""
    result = parse_output((SAMPLES / "budget_exceeded.json").read_text(), max_budget_usd=0.05)
    error = result.error
    assert isinstance(error, ClaudeBudgetExceeded)
    assert error.limit_usd == 0.05
    assert error.spent_usd == pytest.approx(0.07)
    assert "Reached maximum budget" in error.cli_message
    assert not error.retryable


def test_max_turns_error_reports_turns() -> None:
    """A max-turns error reports the turns taken and the limit."""
    result = parse_output((SAMPLES / "max_turns.json").read_text(), max_turns=2)
    assert isinstance(result.error, ClaudeMaxTurns)
    assert (result.error.turns, result.error.limit) == (2, 2)


def test_api_error_status_and_retry() -> None:
    """An API error carries its HTTP status; 529 is retryable, 400 is not."""
    result = parse_output((SAMPLES / "api_error.json").read_text())
    assert isinstance(result.error, ClaudeAPIError)
    assert result.error.status == 529
    assert result.error.retryable
    assert result.structured is None  # an error message is never decoded as an answer
    bad = json.loads((SAMPLES / "api_error.json").read_text())
    bad.pop("api_error_status")
    bad["result"] = 'API Error: 400 {"type":"error","error":{"type":"invalid_request_error"}}'
    error = parse_output(json.dumps(bad)).error
    assert isinstance(error, ClaudeAPIError)
    assert error.status == 400
    assert not error.retryable


def test_truncated_output_is_flagged() -> None:
    """A result line cut in the middle is reported as truncated output."""
    result = parse_output((SAMPLES / "truncated.json").read_text(), exit_code=0)
    assert result.truncated
    assert isinstance(result.error, ClaudeOutputError)
    assert "cut short" in str(result.error)


def test_non_json_lines_are_kept_apart() -> None:
    """Warnings and stderr lines are skipped by the parser and kept in ``stderr``."""
    text = (SAMPLES / "success.jsonl").read_text()
    lines = text.splitlines()
    mixed = "\n".join(["npm WARN deprecated", lines[0], "{not json", *lines[1:], "bye"]) + "\n"
    result = parse_output(mixed, keep_events=True)
    assert result.ok
    assert result.stderr == ("npm WARN deprecated", "{not json", "bye")
    assert not result.truncated


def test_missing_result_line_uses_assistant_text() -> None:
    """Without a result line the last assistant text and the session id survive."""
    lines = (SAMPLES / "tool_use.jsonl").read_text().splitlines()[:-1]
    result = parse_output("\n".join(lines), exit_code=0, keep_events=True)
    assert isinstance(result.error, ClaudeOutputError)
    assert result.text.startswith("The diff touches")
    assert result.session_id
    assert result.is_error


def test_nonzero_exit_without_result_is_execution_error() -> None:
    """A crash with no result is an execution error carrying the last lines."""
    result = parse_output("Error: something broke\n", exit_code=1)
    assert isinstance(result.error, ClaudeExecutionError)
    assert "something broke" in result.error.cli_message


def test_exit_127_is_cli_not_found() -> None:
    """The shell's 127 means the CLI is missing from the image."""
    result = parse_output("podrunner-claude: 10: exec: claude: not found\n", exit_code=127)
    assert isinstance(result.error, ClaudeCLINotFound)
    assert "claude: not found" in result.error.cli_message


def test_auth_text_without_result_is_auth_error() -> None:
    """A login prompt printed without a result line is still an authentication error."""
    result = parse_output("Invalid API key · Please run /login\n", exit_code=1)
    assert isinstance(result.error, ClaudeAuthError)


def test_schema_without_structured_answer() -> None:
    """With a schema, an answer holding no JSON is an output error with a hint."""
    result = parse_output((SAMPLES / "success.json").read_text(), expect_structured=True)
    assert isinstance(result.error, ClaudeOutputError)
    assert "max_turns" in str(result.error)


def test_success_with_nonzero_exit_is_flagged() -> None:
    """A success result with a non-zero exit code is not silently accepted."""
    result = parse_output((SAMPLES / "success.json").read_text(), exit_code=3)
    assert isinstance(result.error, ClaudeExecutionError)


def test_error_subtypes_during_execution() -> None:
    """error_during_execution and structured-output retries map to their errors."""
    base = json.loads((SAMPLES / "max_turns.json").read_text())
    base["subtype"] = "error_during_execution"
    base["errors"] = ["No conversation found with session ID: x"]
    error = parse_output(json.dumps(base)).error
    assert isinstance(error, ClaudeExecutionError)
    assert "No conversation found" in error.cli_message
    base["subtype"] = "error_max_structured_output_retries"
    assert isinstance(parse_output(json.dumps(base)).error, ClaudeOutputError)


def test_garbage_and_empty_output() -> None:
    """Empty or binary output yields an error result, never an exception."""
    assert isinstance(parse_output("").error, ClaudeOutputError)
    assert parse_output(b"\xff\xfe\x00garbage", exit_code=1).error is not None


def test_stream_parser_split_multibyte() -> None:
    """Chunks that split UTF-8 characters and lines anywhere still give whole events."""
    data = (SAMPLES / "noisy.json").read_bytes() + (SAMPLES / "success.jsonl").read_bytes()
    for size in (1, 2, 3, 7, 64):
        parser = StreamParser()
        events = []
        for i in range(0, len(data), size):
            events += parser.feed(data[i : i + size])
        events += parser.close()
        assert [e["type"] for e in events] == ["result", "system", "assistant", "result"]
        assert events[0]["result"] == "Réponse: héllo 日本語 🎉 — done"
        assert parser.text == data.decode("utf-8")


def test_stream_parser_last_line_without_newline() -> None:
    """close() parses an unterminated last line."""
    parser = StreamParser()
    assert parser.feed('{"type": "result"') == []
    assert parser.feed("}") == []
    assert parser.close() == [{"type": "result"}]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"structured_output": {"a": 1}, "result": '{"b": 2}'}, {"a": 1}),
        ({"structured_output": None, "result": '{"b": 2}'}, {"b": 2}),
        ({"result": "[1, 2]"}, [1, 2]),
        ({"result": 'x\n```json\n{"c": 3}\n```'}, {"c": 3}),
        ({"result": '```\n{"d": 4}\n```'}, {"d": 4}),
        ({"result": '```json\nbroken\n```\n```json\n{"e": 5}\n```'}, {"e": 5}),
        ({"result": 'before {"f": {"g": 6}} after'}, {"f": {"g": 6}}),
        ({"result": "no json here"}, None),
        ({"result": "{ not json }"}, None),
        ({"result": "42"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_structured_fallback_order(result: dict[str, object] | None, expected: object) -> None:
    """structured_output, then result as JSON, then a fenced block, then the outer braces."""
    assert extract_structured(result) == expected
