"""ClaudeTask against hostile input: every bad value is a SpecError naming its field.

Covers raw errors that used to escape (TypeError, RecursionError), invalid JSON (NaN), a tool
rule smuggled next to another, session ids that are flags, and arguments over the kernel's
per-argument limit. A fuzz test throws arbitrary Python values at every field.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podrunner.claude import ClaudeTask
from podrunner.claude.task import MAX_JSON_DEPTH, split_tool_rules
from podrunner.errors import SpecError
from podrunner.spec import MAX_ARG_BYTES

SESSION = "2b8a3f6e-1c4d-4e5f-9a0b-7c6d5e4f3a2b"
TOKEN = "sk-ant-MCP-S3CR3T-42"


def refused(**options: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        ClaudeTask(options.pop("prompt", "hi"), **options)
    return info.value


def nested(depth: int) -> dict[str, Any]:
    return functools.reduce(lambda inner, _: {"a": inner}, range(depth), {})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"json_schema": {1: "a", "b": 2}}, "json_schema"),
        ({"json_schema": {"type": "object", "enum": {1, 2}}}, 'json_schema["enum"]'),
        ({"json_schema": {"a": float("nan")}}, 'json_schema["a"]'),
        ({"json_schema": {"a": [float("inf")]}}, 'json_schema["a"][0]'),
        ({"json_schema": {"a": b"bytes"}}, 'json_schema["a"]'),
        ({"json_schema": {"a": object()}}, 'json_schema["a"]'),
        ({"json_schema": {"a": "\ud800"}}, 'json_schema["a"]'),
        ({"json_schema": '{"a": NaN}'}, "json_schema"),
        ({"json_schema": '{"a": -Infinity}'}, "json_schema"),
        ({"json_schema": '{"a": "\\ud800"}'}, 'json_schema["a"]'),
        ({"json_schema": "[" * 100_000 + "]" * 100_000}, "json_schema"),
        ({"json_schema": 5}, "json_schema"),
        ({"mcp_config": nested(5000)}, "mcp_config"),
        ({"mcp_config": '{"a":' * 5000 + "{}" + "}" * 5000}, "mcp_config"),
        ({"mcp_config": ["servers"]}, "mcp_config"),
        ({"mcp_config": "{not json"}, "mcp_config"),
        ({"allowed_tools": 5}, "allowed_tools"),
        ({"allowed_tools": [5]}, "allowed_tools[0]"),
        ({"allowed_tools": {"Read": True}}, "allowed_tools"),
        ({"allowed_tools": b"Read"}, "allowed_tools"),
        ({"disallowed_tools": [None]}, "disallowed_tools[0]"),
        ({"permission_mode": {}}, "permission_mode"),
        ({"permission_mode": ["plan"]}, "permission_mode"),
        ({"permission_mode": 1}, "permission_mode"),
        ({"output_format": {}}, "output_format"),
        ({"model": 5}, "model"),
        ({"model": "opus\x00"}, "model"),
        ({"system_prompt": "\udc80"}, "system_prompt"),
        ({"max_budget_usd": 10**400}, "max_budget_usd"),
        ({"max_turns": "3"}, "max_turns"),
        ({"dangerously_allow_bypass": "yes"}, "dangerously_allow_bypass"),
        ({"strict_mcp_config": 1}, "strict_mcp_config"),
        ({"fork_session": None}, "fork_session"),
        ({"extra_args": 5}, "extra_args"),
        ({"extra_args": [1]}, "extra_args[0]"),
        ({"extra_args": ["a\x00"]}, "extra_args[0]"),
        ({"working_dir": 5}, "working_dir"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_bad_shapes_are_spec_errors_naming_the_field(options: dict[str, Any], field: str) -> None:
    """The issue's raw TypeError/RecursionError cases, NaN and their kin are SpecErrors."""
    err = refused(**options)
    assert err.field.startswith(field), err
    str(err).encode("utf-8")


def test_nesting_is_limited_to_a_documented_depth() -> None:
    """A JSON tree may nest MAX_JSON_DEPTH levels; one more is refused, never a crash."""
    assert ClaudeTask("hi", mcp_config=nested(MAX_JSON_DEPTH - 1)).mcp_config is not None
    assert refused(mcp_config=nested(MAX_JSON_DEPTH + 1)).field.startswith("mcp_config")


def test_mcp_config_values_are_never_shown() -> None:
    """An MCP config may carry tokens: its errors and the task's repr do not show them."""
    err = refused(mcp_config={"mcpServers": {"x": {"env": {"KEY": TOKEN}, "bad": {1, 2}}}})
    assert TOKEN not in str(err)
    err = refused(mcp_config='{"mcpServers": {"x": {"env": {"KEY": "' + TOKEN + '"}}}')
    assert TOKEN not in str(err)
    task = ClaudeTask("hi", mcp_config={"mcpServers": {"x": {"env": {"KEY": TOKEN}}}})
    assert TOKEN not in repr(task)
    assert TOKEN in task.mcp_config  # type: ignore[operator]  # still passed to the CLI


# -- tool rules (item 12) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("Read", ["Read"]),
        ("Bash(git diff:*)", ["Bash(git diff:*)"]),
        ("Bash(git diff:*),Write", ["Bash(git diff:*)", "Write"]),
        ("Read Write", ["Read", "Write"]),
        ("Read, Write", ["Read", "Write"]),
        ("Bash(a, b) Edit", ["Bash(a, b)", "Edit"]),
        ("mcp__github__get_issue", ["mcp__github__get_issue"]),
    ],
)
def test_split_tool_rules_reads_lists_as_the_cli_does(text: str, rules: list[str]) -> None:
    """Commas and spaces separate rules outside parentheses, as Claude Code parses them."""
    assert split_tool_rules(text) == rules


@pytest.mark.parametrize(
    "entry",
    [
        "Bash(git diff:*),Write",
        "Bash(git diff:*) Write",
        "Read,Write",
        "Read Write",
        "Read\tWrite",
        "Read\nWrite",
        "Bash(echo (a) b)",
        "Bash(git diff:*)Write",
        "Bash(unclosed",
        "Read)",
    ],
)
@pytest.mark.parametrize("field", ["allowed_tools", "disallowed_tools"])
def test_an_entry_must_hold_exactly_one_rule(field: str, entry: str) -> None:
    """A smuggled second rule (the issue: "Bash(git diff:*),Write" allows Write) is refused."""
    err = refused(**{field: ["Read", entry]})
    assert err.field == f"{field}[1]"


def test_accepted_tool_entries_render_one_rule_each() -> None:
    """Whatever the task accepts, the CLI reads back exactly the rules that were listed."""
    tools = ["Read", "Bash(git diff:*)", "Bash(npm run test, lint)", "mcp__srv__tool"]
    task = ClaudeTask("hi", allowed_tools=tools, disallowed_tools=["WebFetch(domain:x.com)"])
    allowed = next(a for a in task.argv() if a.startswith("--allowedTools="))
    assert split_tool_rules(allowed.partition("=")[2]) == tools


# -- session ids and values that look like flags (item 17) -----------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "--dangerously-skip-permissions",
        "-p",
        "abc",
        SESSION.replace("-", ""),
        "{" + SESSION + "}",
        "urn:uuid:" + SESSION,
        SESSION + "\n",
        " " + SESSION,
    ],
)
@pytest.mark.parametrize("field", ["resume", "session_id"])
def test_session_ids_must_be_uuids(field: str, value: str) -> None:
    """The issue's resume="--dangerously-skip-permissions" and other non-UUIDs are refused."""
    err = refused(**{field: value})
    assert err.field == field


def test_fork_options_take_uuids() -> None:
    """Forking names the old session (resume) and may name the new one (session_id)."""
    other = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    task = ClaudeTask("hi", resume=SESSION, session_id=other, fork_session=True)
    assert f"--resume={SESSION}" in task.argv()
    assert refused(resume=SESSION, session_id="--x", fork_session=True).field == "session_id"


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        ("model", "--model"),
        ("system_prompt", "--system-prompt"),
        ("append_system_prompt", "--append-system-prompt"),
    ],
)
def test_values_starting_with_a_dash_stay_values(option: str, flag: str) -> None:
    """A value such as "--dangerously-skip-permissions" is one --flag=value argument."""
    argv = ClaudeTask("hi", **{option: "--dangerously-skip-permissions"}).argv()
    assert f"{flag}=--dangerously-skip-permissions" in argv
    assert "--dangerously-skip-permissions" not in argv


def test_every_valued_option_is_one_argument() -> None:
    """No option's value is ever a separate argument that the CLI could read as a flag."""
    task = ClaudeTask(
        "hi",
        model="m",
        system_prompt="s",
        append_system_prompt="a",
        allowed_tools=["Read"],
        disallowed_tools=["Write"],
        max_turns=2,
        max_budget_usd=1.5,
        mcp_config={"mcpServers": {}},
        permission_mode="plan",
        json_schema={"type": "object"},
        session_id=SESSION,
    )
    options = task.options()
    assert all(arg.startswith("-") for arg in options)


# -- argument sizes (item 15) -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["system_prompt", "append_system_prompt", "model"])
def test_an_option_over_max_arg_strlen_is_refused(field: str) -> None:
    """An option value that renders to more than 128 KiB fails here, not at exec."""
    err = refused(**{field: "x" * MAX_ARG_BYTES})
    assert err.field == field
    assert str(MAX_ARG_BYTES) in err.rule


def test_a_large_json_schema_is_refused_by_size() -> None:
    """A schema over the per-argument limit is refused, naming the field."""
    schema = {"type": "object", "description": "d" * MAX_ARG_BYTES}
    assert refused(json_schema=schema).field == "json_schema"


def test_large_prompts_still_go_to_stdin() -> None:
    """The prompt path is unaffected: big prompts leave the argv, whatever the threshold."""
    task = ClaudeTask("p" * (MAX_ARG_BYTES + 10))
    assert task.prompt_on_stdin()
    assert task.prompt_on_stdin(threshold=10 * MAX_ARG_BYTES)  # clamped to what exec takes
    assert task.prompt not in task.argv()
    with pytest.raises(SpecError) as info:
        task.argv(prompt_on_stdin=False)
    assert info.value.field == "prompt"
    assert not ClaudeTask("p" * 1000).prompt_on_stdin()


# -- fuzzing ----------------------------------------------------------------------------------

json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=5)
    | st.binary(max_size=3)
    | st.sampled_from(["\x00", "\ud800", "-x", "{", "[]", "NaN"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=3)
        | st.frozensets(st.integers(), max_size=2)
        | st.tuples(inner)
    ),
    max_leaves=8,
)
FIELDS = [
    "model",
    "output_format",
    "system_prompt",
    "append_system_prompt",
    "allowed_tools",
    "disallowed_tools",
    "max_turns",
    "max_budget_usd",
    "permission_mode",
    "dangerously_allow_bypass",
    "json_schema",
    "mcp_config",
    "strict_mcp_config",
    "session_id",
    "resume",
    "fork_session",
    "working_dir",
    "extra_args",
    "fallback_model",
    "effort",
    "input_format",
    "system_prompt_file",
    "append_system_prompt_file",
    "tools",
    "permission_prompt_tool",
    "settings",
    "setting_sources",
    "agents",
    "add_dirs",
    "bare",
    "no_session_persistence",
    "include_partial_messages",
]


@settings(max_examples=500, deadline=None)
@given(
    prompt=json_like,
    options=st.dictionaries(st.sampled_from(FIELDS), json_like, max_size=4),
)
def test_any_input_builds_or_raises_spec_error(prompt: Any, options: dict[str, Any]) -> None:
    """Arbitrary values in any field: a task with an execve-safe argv, or a SpecError."""
    error: SpecError | None = None
    try:
        task = ClaudeTask(prompt, **options)
    except SpecError as exc:
        error = exc
    if error is not None:
        assert error.field.split("[")[0] in {"prompt", *options}, error
        str(error).encode("utf-8")
        return
    for arg in task.argv():
        assert isinstance(arg, str)
        assert "\x00" not in arg
        assert len(os.fsencode(arg)) <= MAX_ARG_BYTES
