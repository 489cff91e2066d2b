"""ClaudeTask: argv rendering of every option, validation, and hostile prompts through a shell."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

import pytest

from podrunner.claude import PROMPT_STDIN_THRESHOLD, ClaudeTask
from podrunner.claude.launch import LAUNCHER_SCRIPT, launcher_command
from podrunner.errors import SpecError
from podrunner.manifest import build_credentials_prefix

if TYPE_CHECKING:
    from pathlib import Path

SESSION = "2b8a3f6e-1c4d-4e5f-9a0b-7c6d5e4f3a2b"


def test_minimal_argv() -> None:
    """A bare task renders print mode, json output, ``--`` and the prompt, in that order."""
    assert ClaudeTask("hi").argv() == ["claude", "-p", "--output-format=json", "--", "hi"]


def test_stream_json_adds_verbose() -> None:
    """stream-json needs --verbose in print mode, so it is always rendered with it."""
    argv = ClaudeTask("hi", output_format="stream-json").argv()
    assert argv[1:4] == ["-p", "--output-format=stream-json", "--verbose"]


OTHER = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"model": "sonnet"}, ["--model=sonnet"]),
        ({"system_prompt": "You review code."}, ["--system-prompt=You review code."]),
        ({"system_prompt": "- be brief"}, ["--system-prompt=- be brief"]),
        ({"append_system_prompt": "Be brief."}, ["--append-system-prompt=Be brief."]),
        (
            {"allowed_tools": ["Read", "Bash(git diff:*)"]},
            ["--allowedTools=Read,Bash(git diff:*)"],
        ),
        ({"disallowed_tools": ("Write", "Edit")}, ["--disallowedTools=Write,Edit"]),
        ({"max_turns": 5}, ["--max-turns=5"]),
        ({"max_budget_usd": 0.5}, ["--max-budget-usd=0.5"]),
        ({"max_budget_usd": 2}, ["--max-budget-usd=2"]),
        ({"permission_mode": "plan"}, ["--permission-mode=plan"]),
        (
            {"permission_mode": "bypassPermissions", "dangerously_allow_bypass": True},
            ["--permission-mode=bypassPermissions"],
        ),
        (
            {"json_schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
            ['--json-schema={"properties":{"a":{"type":"string"}},"type":"object"}'],
        ),
        ({"json_schema": '{"type": "object"}'}, ['--json-schema={"type": "object"}']),
        ({"mcp_config": "/etc/mcp.json"}, ["--mcp-config=/etc/mcp.json"]),
        (
            {"mcp_config": {"mcpServers": {}}, "strict_mcp_config": True},
            ['--mcp-config={"mcpServers":{}}', "--strict-mcp-config"],
        ),
        ({"session_id": SESSION}, [f"--session-id={SESSION}"]),
        ({"resume": SESSION}, [f"--resume={SESSION}"]),
        (
            {"resume": SESSION, "session_id": OTHER, "fork_session": True},
            [f"--session-id={OTHER}", f"--resume={SESSION}", "--fork-session"],
        ),
        ({"extra_args": ["--add-dir", "/data"]}, ["--add-dir", "/data"]),
    ],
)
def test_each_option_renders(options: dict[str, object], expected: list[str]) -> None:
    """Every option becomes its documented flag, as one ``--flag=value`` argument."""
    argv = ClaudeTask("the prompt", **options).argv()  # type: ignore[arg-type]
    body = argv[3 : argv.index("--")]
    assert body == expected
    assert argv[-2:] == ["--", "the prompt"]


def test_all_options_together_keep_prompt_last() -> None:
    """With every option set, the prompt is still the single argument after ``--``."""
    task = ClaudeTask(
        "-p --dangerously-skip-permissions",
        model="opus",
        output_format="stream-json",
        system_prompt="s",
        append_system_prompt="a",
        allowed_tools=["Read"],
        disallowed_tools=["Write"],
        max_turns=3,
        max_budget_usd=1.25,
        permission_mode="acceptEdits",
        json_schema={"type": "object"},
        mcp_config={"mcpServers": {}},
        strict_mcp_config=True,
        session_id=SESSION,
        working_dir="/work",
    )
    argv = task.argv("/usr/local/bin/claude")
    assert argv[0] == "/usr/local/bin/claude"
    assert argv.count("--") == 1
    assert argv[-1] == "-p --dangerously-skip-permissions"
    assert "--dangerously-skip-permissions" not in argv[:-1]


def test_working_dir_is_not_a_flag() -> None:
    """The working directory is applied by the launcher, never as a CLI flag."""
    assert "/work" not in ClaudeTask("hi", working_dir="/work").argv()


def test_large_prompt_leaves_argv() -> None:
    """A prompt over 100 KB is left out of the argv (it goes to stdin)."""
    small = ClaudeTask("a" * PROMPT_STDIN_THRESHOLD)
    large = ClaudeTask("é" * (PROMPT_STDIN_THRESHOLD // 2 + 1))
    assert not small.prompt_on_stdin()
    assert large.prompt_on_stdin()
    assert large.argv()[-1] == "--output-format=json"
    assert large.prompt not in large.argv()
    assert small.argv(prompt_on_stdin=True)[-1] == "--output-format=json"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "a\x00b"}, "prompt"),
        ({"output_format": "text"}, "output_format"),
        ({"max_turns": 0}, "max_turns"),
        ({"max_turns": True}, "max_turns"),
        ({"max_budget_usd": -1}, "max_budget_usd"),
        ({"max_budget_usd": float("nan")}, "max_budget_usd"),
        ({"permission_mode": "yolo"}, "permission_mode"),
        ({"permission_mode": "bypassPermissions"}, "permission_mode"),
        ({"json_schema": "[1, 2]"}, "json_schema"),
        ({"json_schema": "not json"}, "json_schema"),
        ({"session_id": "not-a-uuid"}, "session_id"),
        ({"session_id": SESSION, "resume": OTHER}, "session_id"),
        ({"fork_session": True}, "fork_session"),
        ({"strict_mcp_config": True}, "strict_mcp_config"),
        ({"working_dir": "relative"}, "working_dir"),
        ({"allowed_tools": ["Read,Write"]}, "allowed_tools[0]"),
        ({"extra_args": "--x"}, "extra_args"),
    ],
)
def test_invalid_options_raise_spec_error(options: dict[str, object], field: str) -> None:
    """Bad values fail on construction with a SpecError naming the field."""
    kwargs = {"prompt": "hi", **options}
    prompt = kwargs.pop("prompt")
    with pytest.raises(SpecError) as info:
        ClaudeTask(prompt, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_replace_revalidates() -> None:
    """replace() returns a validated copy."""
    task = ClaudeTask("hi").replace(model="haiku")
    assert task.model == "haiku"
    with pytest.raises(SpecError):
        task.replace(max_turns=-3)


HOSTILE = [
    "$(touch {canary})",
    "`touch {canary}`",
    "'; touch {canary}; echo '",
    '"; touch {canary}; echo "',
    "a\nb; touch {canary}\n",
    "${{HOME}} $0 $@ $* \\ \\' %s %n",
    "-p --dangerously-skip-permissions",
    "--",
    "héllo 日本語 🎉 \t end",
    "|| touch {canary} && touch {canary} ; touch {canary} > /dev/null &",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_prompt_reaches_cli_verbatim(template: str, standin: str, tmp_path: Path) -> None:
    """Shell metacharacters in a prompt run nothing and reach the CLI byte for byte."""
    canary = tmp_path / "canary"
    prompt = template.format(canary=canary)
    record = tmp_path / "record.jsonl"
    argv = launcher_command(ClaudeTask(prompt).argv(standin), working_dir=str(tmp_path))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDE_STANDIN_RECORD": str(record)}
    done = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert not canary.exists()
    seen = json.loads(record.read_text())
    assert seen["prompt"] == prompt
    assert seen["prompt_from_stdin"] is False
    assert seen["cwd"] == str(tmp_path)


def test_launcher_script_is_constant() -> None:
    """The shell script never contains task data: only positional parameters carry it."""
    task = ClaudeTask("secret prompt text", model="my-model", working_dir="/w")
    argv = launcher_command(task.argv(), working_dir="/w", prompt_file="", credentials_file="")
    assert argv[:3] == ["sh", "-c", LAUNCHER_SCRIPT]
    assert "secret prompt text" not in argv[2]
    assert "my-model" not in argv[2]


def test_prompt_file_goes_to_stdin(standin: str, tmp_path: Path) -> None:
    """With a prompt file, the CLI reads the prompt from stdin and gets it whole."""
    prompt = "line one\n" + "x" * 200_000 + "\n'$(reboot)'"
    prompt_file = tmp_path / "prompt"
    prompt_file.write_text(prompt)
    record = tmp_path / "record.jsonl"
    argv = launcher_command(
        ClaudeTask(prompt).argv(standin, prompt_on_stdin=True), prompt_file=str(prompt_file)
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CLAUDE_STANDIN_RECORD": str(record)}
    done = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(record.read_text())
    assert seen["prompt"] == prompt
    assert seen["prompt_from_stdin"] is True


def test_credentials_file_is_copied_private(standin: str, tmp_path: Path) -> None:
    """The launcher copies the mounted credentials into $HOME/.claude with mode 0600."""
    source = tmp_path / "mounted.json"
    source.write_text('{"claudeAiOauth": {"accessToken": "t"}}')
    home = tmp_path / "home"
    home.mkdir()
    argv = launcher_command(ClaudeTask("hi").argv(standin), credentials_file=str(source))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "CLAUDE_STANDIN_REQUIRE_AUTH": "1"}
    done = subprocess.run(argv, env=env, capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout
    copied = home / ".claude" / ".credentials.json"
    assert copied.read_text() == source.read_text()
    assert copied.stat().st_mode & 0o777 == 0o600


def test_existing_credentials_are_kept(standin: str, tmp_path: Path) -> None:
    """A worker keeps the copy the CLI may have refreshed instead of overwriting it."""
    source = tmp_path / "mounted.json"
    source.write_text('{"old": true}')
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True)
    (home / ".claude" / ".credentials.json").write_text('{"refreshed": true}')
    argv = launcher_command(ClaudeTask("hi").argv(standin), credentials_file=str(source))
    subprocess.run(
        argv, env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, capture_output=True, check=True
    )
    assert (home / ".claude" / ".credentials.json").read_text() == '{"refreshed": true}'


@pytest.mark.parametrize(
    "oauth_json",
    ['{"a": "it\'s %s %n $(touch {canary}) `x`"}', '{"b": "\\u00e9 \'\'; touch {canary}"}'],
)
def test_inline_prefix_is_quoted(oauth_json: str, standin: str, tmp_path: Path) -> None:
    """The seed's inline prefix writes hostile JSON byte for byte and runs nothing."""
    canary = tmp_path / "canary"
    text = oauth_json.replace("{canary}", str(canary))
    home = tmp_path / "home"
    home.mkdir()
    argv = launcher_command(
        ClaudeTask("hi").argv(standin), shell_prefix=build_credentials_prefix(text)
    )
    subprocess.run(
        argv, env={"PATH": "/usr/bin:/bin", "HOME": str(home)}, capture_output=True, check=True
    )
    assert (home / ".claude" / ".credentials.json").read_text() == text
    assert not canary.exists()


def test_missing_cli_exits_127(tmp_path: Path) -> None:
    """A missing executable makes the launcher exit 127 with the shell's message."""
    argv = launcher_command(ClaudeTask("hi").argv("no-such-claude-binary"))
    done = subprocess.run(
        argv, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, capture_output=True, check=False
    )
    assert done.returncode == 127
    assert b"not found" in done.stderr
