"""``podrunner claude``: run Claude Code on a prompt in a pod."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from podrunner.cli import _backend
from podrunner.cli._backend import (
    backend_options,
    close_runner,
    describe_backend,
    namespace_option,
    run_errors,
)
from podrunner.cli._group import main, parse_pairs
from podrunner.cli._status import StopSignals, cleanup_failure, say_stopped, warn_unread_stdin

__all__ = ["claude"]


@main.command()
@backend_options
@namespace_option
@click.argument("prompt")
@click.option("--image", help="Image with the claude CLI (default: $PODRUNNER_CLAUDE_IMAGE).")
@click.option("--model", help="Model name or alias.")
@click.option("--system-prompt", help="Replace the system prompt.")
@click.option("--append-system-prompt", help="Append to the system prompt.")
@click.option("--allowed-tool", "allowed_tools", multiple=True, help="Allowed tool (repeat).")
@click.option("--disallowed-tool", "disallowed_tools", multiple=True, help="Denied tool (repeat).")
@click.option("--max-turns", type=int, help="Stop after this many turns.")
@click.option("--max-budget-usd", type=float, help="Stop when the cost reaches this.")
@click.option("--permission-mode", help="Claude Code permission mode.")
@click.option("--json-schema", help="JSON schema (text or a .json file) for structured output.")
@click.option("--session-id", help="Session id (a UUID).")
@click.option("--resume", help="Resume this session.")
@click.option("--working-dir", help="Directory in the container.")
@click.option("--fork-session", is_flag=True, help="With --resume: continue in a new session.")
@click.option(
    "--sessions",
    metavar="PVC",
    help="Keep session transcripts on this PersistentVolumeClaim, so a later run can --resume.",
)
@click.option(
    "--fallback-model",
    "fallback_model",
    multiple=True,
    help="Model to use when overloaded (repeat).",
)
@click.option("--effort", help="Reasoning effort: low, medium, high, xhigh or max.")
@click.option(
    "--tools",
    help='Built-in tools available, comma-separated ("" for none); default: all of them.',
)
@click.option("--settings", help="Settings: JSON text or a path in the container.")
@click.option(
    "--setting-sources", help="Setting sources to load, comma-separated: user,project,local."
)
@click.option("--agents", help="Custom subagents: JSON text or a path in the container.")
@click.option(
    "--add-dir", "add_dirs", multiple=True, help="Another directory tools may use (repeat)."
)
@click.option(
    "--bare", is_flag=True, help="Minimal mode: no hooks, plugins, memory or auto-discovery."
)
@click.option(
    "--permission-prompt-tool", help="MCP tool (mcp__server__tool) that answers permission prompts."
)
@click.option("--no-session-persistence", is_flag=True, help="Do not write a session transcript.")
@click.option(
    "--system-prompt-file", help="Replace the system prompt with this file in the container."
)
@click.option(
    "--append-system-prompt-file", help="Append this file in the container to the system prompt."
)
@click.option("--mcp-config", help="MCP servers: JSON text or a path in the container.")
@click.option("--strict-mcp-config", is_flag=True, help="Use only the servers of --mcp-config.")
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds.")
@click.option("--cpu-limit", metavar="CPU", help="Container CPU limit, e.g. 500m or 2.")
@click.option("--memory-limit", metavar="SIZE", help="Container memory limit, e.g. 1Gi.")
@click.option("--claude-path", default="claude", show_default=True, help="The CLI in the image.")
@click.option("--env", "env", multiple=True, metavar="K=V", help="Environment variable.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: the answer on stdout, errors and cost on stderr; json: the whole result "
    "(or the error).",
)
def claude(
    prompt: str,
    backend: str,
    kubeconfig: str | None,
    context: str | None,
    api_outage: float,
    verbose: bool,
    namespace: str | None,
    output: str,
    env: tuple[str, ...],
    **opts: Any,
) -> None:
    """Ask Claude Code in an ephemeral pod: podrunner claude "PROMPT" ("-" reads stdin).

    The answer goes to stdout; errors, the cost and the session id to stderr. Credentials come
    from $ANTHROPIC_API_KEY or $CLAUDE_CODE_OAUTH_TOKEN and go into a per-run Secret. Exit
    status: 0 success, 2 authentication, 3 budget or turn limit, 1 other; Ctrl-C, SIGTERM and
    SIGHUP delete the run and exit 130, 143 and 129.
    """
    from podrunner.claude.cli import IMAGE_ENV, cli_exit_code, run_claude_cli
    from podrunner.claude.credentials import ClaudeCredentials
    from podrunner.signals import Terminated

    as_json = output == "json"
    extra_env = parse_pairs("--env", env)
    if not (opts["image"] or os.environ.get(IMAGE_ENV)):
        raise click.UsageError(f"Missing option '--image' (or set ${IMAGE_ENV}).")
    if prompt == "-":
        prompt = sys.stdin.read()
    else:
        warn_unread_stdin('the prompt is the argument (give "-" as the PROMPT to read stdin)')
    if ClaudeCredentials.from_environment() is None:
        click.echo(
            "podrunner: warning: no Claude credential: set ANTHROPIC_API_KEY or "
            "CLAUDE_CODE_OAUTH_TOKEN (Claude Code will likely fail to log in)",
            err=True,
        )
    with run_errors(verbose, as_json=as_json) as errors:
        opts = _task_options(opts)
        runner = _backend.make_runner(
            backend, kubeconfig, context, namespace, api_outage=api_outage
        )
        errors.runner = runner
        try:
            click.echo(describe_backend(backend, runner), err=True)
            what = "the run's pod and the Secret and ConfigMap it created"
            with StopSignals(may_be_left=what) as stop:
                try:
                    result = run_claude_cli(runner, prompt, env=extra_env, **opts)
                except (KeyboardInterrupt, Terminated) as exc:
                    say_stopped(stop, exc, what, cleanup_failure(exc), as_json=as_json)
        finally:
            close_runner(runner)
    _print(result, as_json=as_json)
    sys.exit(cli_exit_code(result))


# Flags that go to ClaudeTask as they are; click gives a tuple or a flag for each.
_TASK_FLAGS = (
    "fork_session",
    "fallback_model",
    "effort",
    "settings",
    "agents",
    "add_dirs",
    "bare",
    "permission_prompt_tool",
    "no_session_persistence",
    "system_prompt_file",
    "append_system_prompt_file",
    "strict_mcp_config",
)


def _task_options(opts: dict[str, Any]) -> dict[str, Any]:
    """Split the task's new flags off the options ``run_claude_cli`` takes by name.

    Unset flags are left out so the task's defaults apply; comma lists become tuples. The
    task checks every value (a bad one is a SpecError naming the field, before any call).
    """
    from podrunner.claude.sessions import SessionStore

    task = {k: opts.pop(k) for k in _TASK_FLAGS if opts.get(k) not in (None, False, ())}
    for name in _TASK_FLAGS:
        opts.pop(name, None)
    for name in ("tools", "setting_sources"):
        value = opts.pop(name)
        if value is not None:
            task[name] = tuple(v.strip() for v in value.split(",")) if value else ()
    claim = opts.pop("sessions")
    if claim:
        opts["sessions"] = SessionStore.pvc(claim)
    opts["task_options"] = task
    return opts


def _print(result: Any, *, as_json: bool) -> None:
    """The answer on stdout and the notes (cost, session...) on stderr, or the JSON document."""
    from podrunner.claude.cli import format_cli_answer, format_cli_notes, format_cli_result

    if as_json:
        click.echo(format_cli_result(result, output="json"))
        return
    answer = format_cli_answer(result)
    if answer:
        click.echo(answer)
    notes = format_cli_notes(result)
    if notes:
        click.echo(notes, err=True)
