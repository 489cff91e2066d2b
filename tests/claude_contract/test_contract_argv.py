"""The argv podrunner renders is accepted, and each option reaches the API as it should."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from contract_util import system_text, texts, tool_names

from podrunner.claude import ClaudeExecutionError, ClaudeTask
from podrunner.testing.messages_api import Reply

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from contract_util import Cli

    from podrunner.claude import ClaudeRunner
    from podrunner.testing.messages_api import FakeMessagesAPI, RecordedRequest

ANSWER = "Accepted."
SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}
AGENTS = {"reviewer": {"description": "Reviews code", "prompt": "You review code."}}


def _sent_model(expected: str) -> Callable[[RecordedRequest], None]:
    def check(request: RecordedRequest) -> None:
        assert request.body["model"] == expected

    return check


def _in_system(*needles: str) -> Callable[[RecordedRequest], None]:
    def check(request: RecordedRequest) -> None:
        for needle in needles:
            assert needle in system_text(request)

    return check


def _tools(present: tuple[str, ...] = (), absent: tuple[str, ...] = ()) -> Callable[..., None]:
    def check(request: RecordedRequest) -> None:
        names = tool_names(request)
        assert set(present) <= set(names), names
        assert not set(absent) & set(names), names

    return check


def _user_says(prompt: str) -> Callable[[RecordedRequest], None]:
    def check(request: RecordedRequest) -> None:
        assert prompt in texts(request, "user")

    return check


def _nothing(request: RecordedRequest) -> None:
    del request


# (task options, what the first API request must show)
ACCEPTED: dict[str, tuple[dict[str, Any], Callable[[RecordedRequest], None]]] = {
    "defaults": ({}, _nothing),
    "stream-json": ({"output_format": "stream-json"}, _nothing),
    "model alias": ({"model": "sonnet"}, _sent_model("claude-sonnet-5-5")),
    "model id": (
        {"model": "claude-sonnet-4-5-20250929"},
        _sent_model("claude-sonnet-4-5-20250929"),
    ),
    "system prompt starting with -": (
        {"system_prompt": "- be brief SYSMARK"},
        _in_system("- be brief SYSMARK"),
    ),
    "append system prompt": ({"append_system_prompt": "APPENDMARK"}, _in_system("APPENDMARK")),
    "allowed tools": (
        {"allowed_tools": ["Bash(git diff:*)", "Read", "Write"]},
        _tools(("Bash", "Read")),
    ),
    "disallowed tools": ({"disallowed_tools": ["Bash"]}, _tools(("Read",), ("Bash",))),
    "max turns": ({"max_turns": 3}, _nothing),
    "max budget": ({"max_budget_usd": 2.5}, _nothing),
    "mcp config, strict": ({"mcp_config": {"mcpServers": {}}, "strict_mcp_config": True}, _nothing),
    "json schema": ({"json_schema": SCHEMA}, _tools(("StructuredOutput",))),
    "session id": ({"session_id": "123e4567-e89b-12d3-a456-426614174000"}, _nothing),
    "working dir": ({"working_dir": "/tmp"}, _nothing),
    "bypass, opted in": (
        {"permission_mode": "bypassPermissions", "dangerously_allow_bypass": True},
        _nothing,
    ),
    "effort": ({"effort": "high"}, _nothing),
    "fallback model": ({"fallback_model": "haiku"}, _nothing),
    "fallback models": ({"fallback_model": ["haiku", "sonnet"]}, _nothing),
    "tools": ({"tools": ["Read"]}, _tools(("Read",), ("Bash",))),
    "no tools": ({"tools": []}, _tools((), ("Bash", "Read", "Write"))),
    "default tools": ({"tools": ["default"]}, _tools(("Bash", "Read"))),
    "settings json": ({"settings": {"model": "haiku"}}, _sent_model("claude-haiku-5-5")),
    "setting sources": ({"setting_sources": ["user", "project"]}, _nothing),
    "no setting sources": ({"setting_sources": []}, _nothing),
    "agents": ({"agents": AGENTS}, _nothing),
    "add dirs": ({"add_dirs": ["/tmp", "/var/tmp"]}, _nothing),
    "bare": ({"bare": True}, _nothing),
    "no session persistence": ({"no_session_persistence": True}, _nothing),
    "permission prompt tool": ({"permission_prompt_tool": "mcp__perm__ask"}, _nothing),
    "stream-json input": (
        {"input_format": "stream-json", "output_format": "stream-json"},
        _user_says("Check the options."),
    ),
    "partial messages": (
        {"include_partial_messages": True, "output_format": "stream-json"},
        _nothing,
    ),
    "extra args": ({"extra_args": ["--disable-slash-commands"]}, _nothing),
}
MODES = ["default", "manual", "acceptEdits", "plan", "auto", "dontAsk"]


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_rendered_options_are_accepted(
    name: str, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """Each option set runs to a result, and the first API request shows its effect."""
    options, check = ACCEPTED[name]
    reply = (
        Reply.tool_use("StructuredOutput", {"verdict": "ok"})
        if "json_schema" in options
        else Reply.text(ANSWER)
    )
    api.script(reply)
    result = runner.run(ClaudeTask("Check the options.", **options))
    assert result.ok, result.error
    assert result.text == ('{"verdict":"ok"}' if "json_schema" in options else ANSWER)
    assert result.session_id
    check(api.message_requests[0])


@pytest.fixture
def readable() -> Iterator[Path]:
    """A directory of option files the pod's user (uid 10001) can read."""
    path = Path(tempfile.mkdtemp(prefix="podrunner-claude-options-"))
    path.chmod(0o755)
    (path / "system.md").write_text("You are terse. SYSFILEMARK\n")
    (path / "append.md").write_text("APPENDFILEMARK\n")
    (path / "settings.json").write_text(json.dumps({"model": "haiku"}))
    (path / "agents.json").write_text(json.dumps(AGENTS))
    for child in path.iterdir():
        child.chmod(0o644)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# (task options naming files in `readable`, what the first API request must show)
FILE_OPTIONS: dict[str, tuple[dict[str, str], Callable[[RecordedRequest], None]]] = {
    "system prompt file": ({"system_prompt_file": "system.md"}, _in_system("SYSFILEMARK")),
    "append system prompt file": (
        {"append_system_prompt_file": "append.md"},
        _in_system("APPENDFILEMARK"),
    ),
    "settings file": ({"settings": "settings.json"}, _sent_model("claude-haiku-5-5")),
    "agents file": ({"agents": "agents.json"}, _nothing),
}


@pytest.mark.parametrize("name", list(FILE_OPTIONS))
def test_options_naming_files_are_accepted(
    name: str, readable: Path, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """The options that take a file path: the CLI reads the file the task names."""
    options, check = FILE_OPTIONS[name]
    api.script(Reply.text(ANSWER))
    paths = {key: str(readable / value) for key, value in options.items()}
    result = runner.run(ClaudeTask("Check the options.", **paths))
    assert result.ok, result.error
    assert result.text == ANSWER
    check(api.message_requests[0])


@pytest.mark.parametrize("mode", MODES)
def test_permission_modes_are_accepted(
    mode: str, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """Every mode ClaudeTask accepts (bypassPermissions aside, above) is one the CLI takes."""
    api.script(Reply.text(ANSWER))
    result = runner.run(ClaudeTask("hi", permission_mode=mode))
    assert result.text == ANSWER


HOSTILE = [
    "-p --dangerously-skip-permissions",
    "$(touch /tmp/pwned) `id` ; rm -rf / ' \" \\",
    "--",
    "multi\nline\n\ttabbed  prompt ✓ 日本語",
]


@pytest.mark.parametrize("prompt", HOSTILE, ids=["flags", "shell", "dashdash", "unicode"])
def test_prompt_reaches_the_api_verbatim(
    prompt: str, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """Whatever the prompt holds, the model receives exactly it as the user's words."""
    runner.run(ClaudeTask(prompt))
    assert prompt in texts(api.message_requests[0], "user")


REFUSED = {
    "unknown flag": (["--no-such-flag"], "unknown option '--no-such-flag'"),
    "setting source": (["--setting-sources=bogus"], "Invalid setting source: bogus"),
    "settings file": (["--settings=/nonexistent/settings.json"], "Settings file not found"),
    "system prompt file": (
        ["--system-prompt-file=/nonexistent/p.txt"],
        "System prompt file not found",
    ),
    "partial messages with json": (
        ["--include-partial-messages"],
        "--include-partial-messages requires",
    ),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_options_fail_before_any_api_call(
    name: str, runner: ClaudeRunner, api: FakeMessagesAPI
) -> None:
    """What the CLI refuses ends as an execution error with its own words; no API call."""
    extra, words = REFUSED[name]
    with pytest.raises(ClaudeExecutionError) as caught:
        runner.run(ClaudeTask("hi", extra_args=extra))
    assert words in caught.value.cli_message
    assert caught.value.exit_code == 1
    assert api.message_requests == []


def test_version(cli: Cli, runner: ClaudeRunner) -> None:
    """The CLI reports the pinned version (the stand-in mimics it)."""
    result = runner.pod_runner.run(runner.base_spec([cli.path, "--version"]), timeout=60)
    assert result.logs.startswith("2.1.332 (Claude Code")
