"""ClaudeTask's newer options (CLI 2.1.332): rendering, refusals, extra_args clashes, stdin input.

Every refusal here is something the real CLI either refuses itself or accepts silently while
doing something else than asked (checked against 2.1.332 run offline).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podrunner.claude import (
    CHECKED_CLI_VERSION,
    ClaudeCredentials,
    ClaudeExecutionError,
    ClaudeRunner,
    ClaudeTask,
)
from podrunner.claude import task as task_module
from podrunner.claude.launch import launcher_command
from podrunner.claude.runner import PROMPT_MOUNT
from podrunner.errors import SpecError
from podrunner.manifest import build_manifests
from podrunner.run import PodRunner
from podrunner.testing import FakeCluster

DOCS = Path(__file__).resolve().parents[3] / "docs"
SECRET = "sk-ant-SETTINGS-S3CR3T-7"
AGENTS = {"reviewer": {"description": "Reviews code", "prompt": "You review code."}}


def body(task: ClaudeTask) -> list[str]:
    argv = task.argv()
    return argv[3 : argv.index("--")] if "--" in argv else argv[3:]


def refused(**options: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        ClaudeTask(options.pop("prompt", "hi"), **options)
    return info.value


def test_checked_cli_version_is_documented() -> None:
    """The CLI version the options were checked against is public and in the docs."""
    assert CHECKED_CLI_VERSION == "2.1.332"
    assert "CHECKED_CLI_VERSION" in (task_module.__doc__ or "")
    assert CHECKED_CLI_VERSION in (DOCS / "claude.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"fallback_model": "sonnet"}, ["--fallback-model=sonnet"]),
        ({"fallback_model": ["sonnet", "haiku"]}, ["--fallback-model=sonnet,haiku"]),
        ({"effort": "xhigh"}, ["--effort=xhigh"]),
        (
            {"system_prompt_file": "/etc/prompts/sys.md"},
            ["--system-prompt-file=/etc/prompts/sys.md"],
        ),
        (
            {"append_system_prompt_file": "/etc/prompts/extra.md"},
            ["--append-system-prompt-file=/etc/prompts/extra.md"],
        ),
        ({"tools": ["Read", "Grep"]}, ["--tools=Read,Grep"]),
        ({"tools": []}, ["--tools="]),
        ({"tools": ""}, ["--tools="]),
        ({"tools": ["default"]}, ["--tools=default"]),
        (
            {"permission_prompt_tool": "mcp__approver__check"},
            ["--permission-prompt-tool=mcp__approver__check"],
        ),
        (
            {"settings": {"permissions": {"deny": ["Bash"]}}},
            ['--settings={"permissions":{"deny":["Bash"]}}'],
        ),
        ({"settings": "/etc/claude/extra.json"}, ["--settings=/etc/claude/extra.json"]),
        ({"setting_sources": []}, ["--setting-sources="]),
        ({"setting_sources": ["user", "project"]}, ["--setting-sources=user,project"]),
        (
            {"agents": AGENTS},
            ['--agents={"reviewer":{"description":"Reviews code","prompt":"You review code."}}'],
        ),
        ({"agents": "/etc/claude/agents.json"}, ["--agents=/etc/claude/agents.json"]),
        ({"add_dirs": ["/data", "/lib"]}, ["--add-dir=/data", "--add-dir=/lib"]),
        ({"bare": True}, ["--bare"]),
        ({"no_session_persistence": True}, ["--no-session-persistence"]),
        (
            {"output_format": "stream-json", "input_format": "stream-json"},
            ["--input-format=stream-json"],
        ),
        (
            {"output_format": "stream-json", "include_partial_messages": True},
            ["--include-partial-messages"],
        ),
    ],
)
def test_each_new_option_renders(options: dict[str, Any], expected: list[str]) -> None:
    """Each option becomes its flag as one ``--flag=value`` argument (add_dirs: one per dir)."""
    task = ClaudeTask("the prompt", **options)
    rendered = [a for a in body(task) if a != "--verbose" and not a.startswith("--output-format")]
    assert rendered == expected


def test_defaults_render_nothing_new() -> None:
    """Unset options add no flag: a bare task's argv is what it always was."""
    assert ClaudeTask("hi").argv() == ["claude", "-p", "--output-format=json", "--", "hi"]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"fallback_model": "sonnet,haiku"}, "fallback_model[0]"),
        ({"fallback_model": ["sonnet", "sonnet"]}, "fallback_model[1]"),
        ({"fallback_model": [""]}, "fallback_model[0]"),
        ({"fallback_model": 3}, "fallback_model"),
        ({"effort": "extreme"}, "effort"),
        ({"effort": 3}, "effort"),
        ({"tools": ["Bash(git:*)"]}, "tools[0]"),
        ({"tools": ["Bash,Read"]}, "tools[0]"),
        ({"tools": ["default", "Bash"]}, "tools"),
        ({"tools": ["Read", "Read"]}, "tools[1]"),
        ({"setting_sources": ["managed"]}, "setting_sources[0]"),
        ({"setting_sources": "user,project"}, "setting_sources[0]"),
        ({"settings": "relative.json"}, "settings"),
        ({"settings": "{bad json"}, "settings"),
        ({"settings": {"a": float("nan")}}, 'settings["a"]'),
        ({"agents": {"r": {"description": "d"}}}, "agents['r'].prompt"),
        ({"agents": {"r": "not an object"}}, "agents['r']"),
        ({"agents": '{"r": {"description": "d", "prompt": ""}}'}, "agents['r'].prompt"),
        ({"agents": "agents.json"}, "agents"),
        ({"add_dirs": ["relative/dir"]}, "add_dirs[0]"),
        ({"add_dirs": ["/a", "/a"]}, "add_dirs[1]"),
        ({"system_prompt_file": "prompt.md"}, "system_prompt_file"),
        ({"system_prompt": "x", "system_prompt_file": "/p.md"}, "system_prompt_file"),
        (
            {"append_system_prompt": "x", "append_system_prompt_file": "/p.md"},
            "append_system_prompt_file",
        ),
        ({"permission_prompt_tool": "approve"}, "permission_prompt_tool"),
        ({"permission_prompt_tool": "mcp__x"}, "permission_prompt_tool"),
        ({"bare": "yes"}, "bare"),
        ({"no_session_persistence": 1}, "no_session_persistence"),
        ({"input_format": "json"}, "input_format"),
        ({"input_format": "stream-json"}, "input_format"),
        ({"include_partial_messages": True}, "include_partial_messages"),
        ({"include_partial_messages": "yes"}, "include_partial_messages"),
        (
            {"include_partial_messages": True, "output_format": "json"},
            "include_partial_messages",
        ),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_bad_new_options_are_spec_errors(options: dict[str, Any], field: str) -> None:
    """Bad values, and values the CLI would silently misread, fail naming field and rule."""
    error = refused(**options)
    assert error.field == field, error
    assert error.rule


def test_settings_values_never_shown() -> None:
    """Settings may carry tokens (env, headers, apiKeyHelper): no error or repr shows them."""
    settings = {"env": {"TOKEN": SECRET}, "bad": {1, 2}}
    assert SECRET not in str(refused(settings=settings))
    assert SECRET not in str(refused(settings='{"env": {"TOKEN": "' + SECRET + '"}, "x": NaN}'))
    task = ClaudeTask("hi", settings={"env": {"TOKEN": SECRET}})
    assert SECRET not in repr(task)
    assert task.settings is not None
    assert SECRET in task.settings  # still passed to the CLI


@pytest.mark.parametrize(
    ("options", "extra"),
    [
        ({"model": "opus"}, ["--model", "sonnet"]),
        ({"model": "opus"}, ["--model=sonnet"]),
        ({"allowed_tools": ["Read"]}, ["--allowed-tools", "Write"]),
        ({"add_dirs": ["/data"]}, ["--add-dir", "/other"]),
        ({"bare": True}, ["--bare"]),
        ({"system_prompt": "s"}, ["--system-prompt-file=/p.md"]),
        ({}, ["--output-format", "text"]),
        ({}, ["--print"]),
    ],
)
def test_extra_args_may_not_repeat_a_rendered_flag(
    options: dict[str, Any], extra: list[str]
) -> None:
    """A flag an option already renders is refused in extra_args: the CLI keeps only one."""
    error = refused(extra_args=extra, **options)
    assert error.field == "extra_args[0]"
    assert "set it once" in error.rule


def test_extra_args_stay_an_escape_hatch() -> None:
    """Flags no set option renders still pass verbatim, modelled or not."""
    task = ClaudeTask("hi", extra_args=["--add-dir", "/data", "--betas", "x", "--model-new"])
    assert body(task) == ["--add-dir", "/data", "--betas", "x", "--model-new"]


def test_stream_json_input_sends_a_user_message_on_stdin() -> None:
    """With stream-json input the prompt leaves the argv and becomes one JSON user message."""
    task = ClaudeTask("héllo -- $(x)", output_format="stream-json", input_format="stream-json")
    assert task.prompt_on_stdin()
    assert "--" not in task.argv(prompt_on_stdin=False)
    (line,) = task.stdin().splitlines()
    assert json.loads(line) == {
        "type": "user",
        "message": {"role": "user", "content": "héllo -- $(x)"},
    }
    assert ClaudeTask("plain").stdin() == "plain"


def _runner(local_runner: PodRunner, standin: str, shared: Path, **kw: Any) -> ClaudeRunner:
    kw.setdefault("home", "/home/claude")  # an emptyDir: the local runtime gives it a directory
    return ClaudeRunner(
        local_runner,
        image="example.com/claude-code:2",
        claude_path=standin,
        launcher_environ={},
        env={"CLAUDE_STANDIN_RECORD": str(shared / "record.jsonl")},
        timeout=60,
        **kw,
    )


def _record(shared: Path) -> dict[str, Any]:
    lines = (shared / "record.jsonl").read_text().splitlines()
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def test_stream_json_input_runs_through_a_pod(
    local_runner: PodRunner, standin: str, shared: Path
) -> None:
    """The runner pipes the JSON message through the prompt ConfigMap; the CLI reads it."""
    runner = _runner(local_runner, standin, shared)
    task = ClaudeTask("what is 2+2?", output_format="stream-json", input_format="stream-json")
    spec = runner.build_spec(task)
    assert dict(spec.files) == {f"{PROMPT_MOUNT}/prompt": task.stdin()}
    result = runner.run(task)
    assert "what is 2+2?" in result.text
    seen = _record(shared)
    assert seen["prompt"] == "what is 2+2?"
    assert seen["prompt_from_stdin"] is True
    assert "--input-format=stream-json" in seen["argv"]


def test_every_new_option_reaches_the_cli(
    local_runner: PodRunner, standin: str, shared: Path
) -> None:
    """A task with all the new options runs in a pod; the CLI got each flag and honoured some."""
    prompts = shared
    (prompts / "system.md").write_text("You are terse.")
    (prompts / "extra.md").write_text("Answer in French.")
    for name in ("system.md", "extra.md"):
        (prompts / name).chmod(0o644)
    task = ClaudeTask(
        "check the options",
        output_format="stream-json",
        fallback_model=["sonnet", "haiku"],
        effort="high",
        system_prompt_file=str(prompts / "system.md"),
        append_system_prompt_file=str(prompts / "extra.md"),
        tools=["Read", "Grep"],
        permission_prompt_tool="mcp__approver__check",
        settings={"permissions": {"deny": ["Bash"]}},
        setting_sources=["project"],
        agents=AGENTS,
        add_dirs=[str(shared)],
        no_session_persistence=True,
    )
    result = _runner(local_runner, standin, shared).run(task)
    assert result.ok
    init = next(e for e in result.events if e.get("subtype") == "init")
    assert sorted(init["tools"]) == ["Grep", "Read"]
    assert init["additional_directories"] == [str(shared)]
    assert _record(shared)["argv"] == [*task.options(), "--", "check the options"]


@pytest.mark.parametrize("persist", [True, False])
def test_no_session_persistence_leaves_nothing_to_resume(
    standin: str, tmp_path: Path, persist: bool
) -> None:
    """Without persistence a session cannot be resumed by the next CLI run in the same HOME."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    session = "2b8a3f6e-1c4d-4e5f-9a0b-7c6d5e4f3a2b"
    first = ClaudeTask("one", session_id=session, no_session_persistence=not persist)
    subprocess.run(launcher_command(first.argv(standin)), env=env, check=True, timeout=30)
    again = launcher_command(ClaudeTask("two", resume=session).argv(standin))
    done = subprocess.run(again, env=env, capture_output=True, check=False, timeout=30)
    assert (done.returncode == 0) is persist, done.stdout


def test_a_missing_prompt_file_fails_in_the_cli_with_its_words(
    local_runner: PodRunner, standin: str, tmp_path: Path
) -> None:
    """The path is the container's: only the CLI can tell it is missing, and says so."""
    task = ClaudeTask("hi", system_prompt_file="/nonexistent/system.md")
    with pytest.raises(ClaudeExecutionError) as info:
        _runner(local_runner, standin, tmp_path).run(task)
    assert "System prompt file not found: /nonexistent/system.md" in info.value.cli_message


@pytest.mark.parametrize(
    "credentials",
    [ClaudeCredentials.oauth_token("tok-1"), ClaudeCredentials.oauth_json('{"a": 1}')],
    ids=["oauth_token", "oauth_json"],
)
def test_bare_with_oauth_is_refused_before_any_call(credentials: ClaudeCredentials) -> None:
    """--bare reads no OAuth credentials: the runner refuses the task before creating anything."""
    cluster = FakeCluster()
    runner = ClaudeRunner(
        PodRunner(cluster.backend),
        image="example.com/claude-code:2",
        credentials=credentials,
        launcher_environ={},
    )
    with pytest.raises(SpecError) as info:
        runner.run(ClaudeTask("hi", bare=True))
    assert info.value.field == "bare"
    assert "api_key" in info.value.rule
    assert cluster.actions == []


def test_bare_with_an_api_key_runs(local_runner: PodRunner, standin: str, shared: Path) -> None:
    """With an API key, --bare authenticates (the stand-in reads only that under --bare)."""
    runner = _runner(
        local_runner, standin, shared, credentials=ClaudeCredentials.api_key("sk-ant-x")
    )
    spec = build_manifests(runner.build_spec(ClaudeTask("hi", bare=True))).pod
    assert "--bare" in spec["spec"]["containers"][0]["command"]
    runner.env["CLAUDE_STANDIN_REQUIRE_AUTH"] = "1"
    assert runner.run(ClaudeTask("hi", bare=True)).ok
    assert _record(shared)["credentials"] == ["ANTHROPIC_API_KEY"]
