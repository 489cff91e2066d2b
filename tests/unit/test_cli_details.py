"""CLI details a user meets: exit codes, JSON errors, one-line messages, warnings, help text.

Commands run as subprocesses on the default fake backend, as a user runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from podrunner.claude import ClaudeResult, cli_exit_code
from podrunner.cli import main
from podrunner.cli.run import exit_status
from podrunner.run import RunResult
from podrunner.run.state import Phase, PodState, Reason

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "claude" / "claude"
CREDENTIAL_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")


def _env(run_tmp: Path | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODRUNNER_")}
    env.pop("KUBECONFIG", None)
    for name in CREDENTIAL_VARS:
        env.pop(name, None)
    if run_tmp is not None:
        env["TMPDIR"] = str(run_tmp)
    env.update(extra)
    return env


def podrunner(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m podrunner ARGS`` (stdin from /dev/null unless given) and capture it."""
    return subprocess.run(
        [sys.executable, "-m", "podrunner", *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or _env(),
        check=False,
    )


@pytest.fixture
def run_tmp() -> Iterator[Path]:
    """The command's TMPDIR: outside pytest's private tmp, so a non-root container can reach it."""
    path = Path(tempfile.mkdtemp(prefix="podrunner-cli-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- exit codes and JSON ----------------------------------------------------------------------


def test_a_failed_run_with_exit_code_0_does_not_exit_0() -> None:
    """A run ending in CrashLoopBackOff with exit code 0 (`--restart-policy Always`) exits 1."""
    args = ["run", "--restart-policy", "Always", "--image", "x"]
    proc = podrunner(*args, "--", "true")
    assert "Failed (CrashLoopBackOff)" in proc.stderr
    assert proc.returncode == 1
    as_json = podrunner(*args, "-o", "json", "--", "true")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout)["ok"] is False


def test_json_output_on_a_run_error_is_a_document_with_the_partial_output() -> None:
    """-o json when the run errors (timeout): type, message, state and partial logs; exit 1."""
    proc = podrunner(
        "run", "-o", "json", "--timeout", "2", "--image", "x", "--",
        "sh", "-c", "echo started; exec sleep 60",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert doc["error"]["type"] == "RunTimeout"
    assert doc["error"]["message"]
    assert doc["logs"] == "started\n"
    assert doc["pod_name"].startswith("podrunner-")
    assert doc["state"]["phase"] in ("Running", "Failed")
    errors = [line for line in proc.stderr.splitlines() if line.startswith("podrunner: error:")]
    assert len(errors) == 1


def test_json_output_on_a_spec_error_keeps_exit_2() -> None:
    """A usage-level error with -o json still prints a document, and keeps exit status 2."""
    proc = podrunner("run", "-o", "json", "--image", "x", "--label", "bad_=x", "--", "true")
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["type"] == "SpecError"


# -- messages ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting is refused


def test_unreachable_api_server_is_one_line_naming_server_and_cause(tmp_path: Path) -> None:
    """A kubeconfig pointing at a closed port: one line with the URL and the cause, no urllib3."""
    server = f"https://127.0.0.1:{_closed_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t0ken"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    args = ["run", "--backend", "kubernetes", "--kubeconfig", str(kubeconfig), "--image", "x"]
    proc = podrunner(*args, "--", "true")
    assert proc.returncode == 1
    assert proc.stdout == ""
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"podrunner: error: cannot reach the Kubernetes API server {server}: connection refused"
        " (retried for 5s; --api-outage SECONDS waits longer)"
    ]
    for raw in ("MaxRetryError", "HTTPSConnectionPool", "NewConnectionError", "Errno"):
        assert raw not in proc.stderr
    doc = json.loads(podrunner(*args, "--api-outage", "0", "-o", "json", "--", "true").stdout)
    assert doc["error"]["type"] == "BackendUnavailable"
    assert server in doc["error"]["message"]


def test_no_python_repr_in_usage_errors() -> None:
    """Messages quote the user's text plainly: no Python reprs such as None or 'x'."""
    proc = podrunner("run", "--image", "x", "--env", "NOVALUE", "--", "true")
    assert proc.returncode == 2
    assert '"NOVALUE"' in proc.stderr
    assert "'NOVALUE'" not in proc.stderr
    claude = podrunner("claude", "hi")
    assert claude.returncode == 2
    assert "None" not in claude.stderr
    assert "--image" in claude.stderr
    assert "PODRUNNER_CLAUDE_IMAGE" in claude.stderr


@pytest.mark.parametrize(
    "item",
    ["sk-ant-api03-SECRET", "sk ant SECRET", "SECRET\n", "'SECRET'", "-SECRET"],
)
def test_a_secret_value_is_never_echoed(item: str) -> None:
    """--secret-env without NAME= in any shape: a usage error that never shows the text."""
    for command in ("run", "manifest"):
        proc = podrunner(command, "--image", "x", "--secret-env", item, "--", "true")
        assert proc.returncode == 2
        assert "SECRET" not in proc.stdout + proc.stderr
        assert "--secret-env" in proc.stderr


def test_manifest_hides_secret_values_unless_asked() -> None:
    """`podrunner manifest` shows the Secret's keys, not its values, unless --show-secrets."""
    args = ["manifest", "--image", "x", "--secret-env", "TOKEN=s3cr3t", "-o", "json"]
    hidden = podrunner(*args, "--", "true")
    assert hidden.returncode == 0
    secret = json.loads(hidden.stdout)["items"][0]
    assert list(secret["data"]) == ["env.TOKEN"]
    assert "czNjcjN0" not in hidden.stdout  # base64 of the value
    assert "s3cr3t" not in hidden.stdout
    shown = podrunner(*args, "--show-secrets", "--", "true")
    assert json.loads(shown.stdout)["items"][0]["data"]["env.TOKEN"] == "czNjcjN0"


# -- stdin and credentials warnings -----------------------------------------------------------


def test_piped_stdin_is_reported_as_not_read() -> None:
    """Data piped into `podrunner run` is not passed on, and the CLI says so on stderr."""
    piped = podrunner("run", "--image", "x", "--", "cat", stdin="hello\n")
    assert piped.returncode == 0
    assert piped.stdout == ""
    assert "warning: stdin is not read" in piped.stderr
    quiet = podrunner("run", "--image", "x", "--", "true")
    assert "stdin" not in quiet.stderr


@pytest.mark.skipif(not STANDIN.exists(), reason="stand-in claude CLI missing")
def test_claude_without_any_credential_warns() -> None:
    """No ANTHROPIC_API_KEY nor CLAUDE_CODE_OAUTH_TOKEN: a warning on stderr; with one, none."""
    args = ["claude", "hi", "--image", "example.com/claude:2", "--claude-path", str(STANDIN)]
    bare = podrunner(*args, env=_env())
    assert "warning: no Claude credential" in bare.stderr
    assert "warning" not in bare.stdout
    keyed = podrunner(*args, env=_env(ANTHROPIC_API_KEY="sk-x"))
    assert keyed.returncode == 0, keyed.stderr
    assert "credential" not in keyed.stderr


@pytest.mark.skipif(not STANDIN.exists(), reason="stand-in claude CLI missing")
def test_claude_answer_on_stdout_errors_and_cost_on_stderr() -> None:
    """The answer alone on stdout; the cost line and any error on stderr."""
    env = _env(ANTHROPIC_API_KEY="sk-x")
    args = ["--image", "example.com/claude:2", "--claude-path", str(STANDIN)]
    ok = podrunner("claude", "hello", *args, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "hello" in ok.stdout
    assert "cost: $" not in ok.stdout
    assert "cost: $" in ok.stderr
    budget = podrunner("claude", "#budget x", *args, "--max-budget-usd", "0.01", env=env)
    assert budget.returncode == 3
    assert "error" not in budget.stdout
    assert "error: " in budget.stderr


@pytest.mark.skipif(not STANDIN.exists(), reason="stand-in claude CLI missing")
def test_claude_json_on_a_run_error_is_a_document() -> None:
    """`podrunner claude -o json` when the pod errors (timeout): a JSON error, exit 1."""
    env = _env(ANTHROPIC_API_KEY="sk-x")
    proc = podrunner(
        "claude", "#slow hi", "--image", "example.com/claude:2", "--claude-path", str(STANDIN),
        "--timeout", "1", "-o", "json", env=env,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False
    assert doc["error"]["type"] == "ClaudeTimeout"


@pytest.mark.skipif(not STANDIN.exists(), reason="stand-in claude CLI missing")
def test_claude_flags_for_the_cli_surface_reach_the_cli(run_tmp: Path) -> None:
    """Each first-class task flag of `podrunner claude` arrives in the pod's CLI argv."""
    record = run_tmp / "record.jsonl"
    record.touch()
    record.chmod(0o666)
    proc = podrunner(
        "claude", "hello", "--image", "example.com/claude:2", "--claude-path", str(STANDIN),
        "--env", f"CLAUDE_STANDIN_RECORD={record}",
        "--fallback-model", "sonnet", "--effort", "high", "--tools", "Bash,Read",
        "--setting-sources", "user,project", "--add-dir", "/work", "--add-dir", "/data",
        "--no-session-persistence", "--append-system-prompt-file", "/etc/os-release",
        env=_env(run_tmp, ANTHROPIC_API_KEY="sk-x"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    argv = json.loads(record.read_text().splitlines()[-1])["argv"]
    for expected in (
        "--fallback-model=sonnet",
        "--effort=high",
        "--tools=Bash,Read",
        "--setting-sources=user,project",
        "--add-dir=/work",
        "--add-dir=/data",
        "--no-session-persistence",
        "--append-system-prompt-file=/etc/os-release",
    ):
        assert expected in argv, (expected, argv)


def test_claude_flags_are_checked_before_any_pod(run_tmp: Path) -> None:
    """A bad value for a new flag: one line naming the field and the rule, exit 2, no pod."""
    args = ["claude", "hi", "--image", "example.com/claude:2"]
    env = _env(run_tmp, ANTHROPIC_API_KEY="sk-x")
    effort = podrunner(*args, "--effort", "huge", env=env)
    assert effort.returncode == 2, effort.stderr
    assert "effort" in effort.stderr
    assert "huge" in effort.stderr
    assert "Traceback" not in effort.stderr
    tools = podrunner(*args, "--tools", "Bash(git:*)", env=env)
    assert tools.returncode == 2, tools.stderr
    assert "tools[0]" in tools.stderr
    dirs = podrunner(*args, "--add-dir", "relative/dir", env=env)
    assert dirs.returncode == 2, dirs.stderr
    assert "add_dirs[0]" in dirs.stderr
    assert "absolute" in dirs.stderr
    claim = podrunner(*args, "--sessions", "Not_A_Claim", env=env)
    assert claim.returncode == 2, claim.stderr
    assert "Not_A_Claim" in claim.stderr


# -- the fake backend keeps nothing -----------------------------------------------------------


def test_cleanup_never_on_the_fake_says_nothing_is_kept(run_tmp: Path) -> None:
    """--cleanup never on the fake: the summary says plainly the pod ends with the command."""
    proc = podrunner(
        "run", "--cleanup", "never", "--image", "x", "--", "sh", "-c", "echo hi",
        env=_env(run_tmp),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = proc.stderr.strip().splitlines()[-1]
    assert "(kept)" not in summary
    assert "not kept: the fake backend's pods live in this process and end with it" in summary
    assert list(run_tmp.iterdir()) == [], "the fake's temp dir outlived the command"
    reap = podrunner("reap")
    assert "nothing is ever left to reap" in reap.stderr


# -- help ---------------------------------------------------------------------------------------


def _commands(group: click.Group) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in group.commands.items():
        found.append((name, command))
        if isinstance(command, click.Group):
            found.extend((f"{name} {sub}", cmd) for sub, cmd in _commands(command))
    return found


def test_every_option_of_every_command_has_help() -> None:
    """Walk all commands and options: each option carries help text, each command a docstring."""
    assert isinstance(main, click.Group)
    missing = [
        f"{name} {param.opts[0]}"
        for name, command in [("podrunner", main), *_commands(main)]
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []
    assert all((command.help or "").strip() for _, command in _commands(main))
    # What the help says about stopping is what the signal tests check.
    cleanup = next(p for p in main.commands["run"].params if p.name == "cleanup")
    assert isinstance(cleanup, click.Option)
    assert "SIGTERM" in (cleanup.help or "")
    assert "always deleted" in (cleanup.help or "")


# -- every path from a result to an exit status -------------------------------------------------


def _result(phase: str, reason: str | None, exit_code: int | None) -> RunResult:
    state = PodState(Phase(phase), None if reason is None else Reason(reason), exit_code=exit_code)
    return RunResult(
        pod_name="p", namespace="default", run_id="r", state=state, exit_code=exit_code, logs=""
    )


@pytest.mark.parametrize(
    ("phase", "reason", "exit_code", "status"),
    [
        ("Succeeded", "Completed", 0, 0),
        ("Failed", "Error", 3, 3),
        ("Failed", "CrashLoopBackOff", 0, 1),
        ("Failed", "Evicted", None, 1),
        ("Failed", "DeadlineExceeded", None, 1),
    ],
)
def test_run_and_claude_exit_status_is_never_0_for_a_failed_run(
    phase: str, reason: str, exit_code: int | None, status: int
) -> None:
    """`run` passes the container's code through, and neither command exits 0 for a failure."""
    result = _result(phase, reason, exit_code)
    assert exit_status(result) == status
    answered = ClaudeResult(text="done", run=result)  # the CLI printed an answer, no error
    assert cli_exit_code(answered) == (0 if result.ok else 1)
