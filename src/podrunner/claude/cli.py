"""What ``podrunner claude "PROMPT" [options]`` calls: build the task, run it, format it.

The command itself lives in :mod:`podrunner.cli`; it builds a :class:`~podrunner.PodRunner` from
the same backend options as ``podrunner run`` and then does::

    result = run_claude_cli(runner, prompt, image=..., model=..., ...)
    click.echo(format_cli_result(result, output="json" if as_json else "text"))
    sys.exit(cli_exit_code(result))
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from podrunner.claude.credentials import ClaudeCredentials
from podrunner.claude.runner import ClaudeRunner, EventCallback
from podrunner.claude.task import ClaudeTask
from podrunner.errors import SpecError
from podrunner.spec import Resources

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from podrunner.claude.errors import ClaudeError
    from podrunner.claude.result import ClaudeResult
    from podrunner.run import PodRunner

__all__ = [
    "IMAGE_ENV",
    "cli_exit_code",
    "format_cli_answer",
    "format_cli_notes",
    "format_cli_result",
    "run_claude_cli",
]

IMAGE_ENV = "PODRUNNER_CLAUDE_IMAGE"
"""Environment variable naming the default image for ``podrunner claude``."""


def _schema(value: str | None) -> str | None:
    # The option takes JSON text or a path to a .json file; a path is the friendlier form.
    if value is None:
        return None
    text = value.strip()
    if text.startswith("{"):
        return text
    path = Path(value).expanduser()
    if not path.is_file():
        raise SpecError("json_schema", value, "must be JSON text or the path of a JSON file")
    return path.read_text(encoding="utf-8")


def run_claude_cli(
    pod_runner: PodRunner,
    prompt: str,
    *,
    image: str | None = None,
    model: str | None = None,
    output_format: Literal["json", "stream-json"] = "json",
    system_prompt: str | None = None,
    append_system_prompt: str | None = None,
    allowed_tools: Iterable[str] = (),
    disallowed_tools: Iterable[str] = (),
    max_turns: int | None = None,
    max_budget_usd: float | None = None,
    permission_mode: str | None = None,
    dangerously_allow_bypass: bool = False,
    json_schema: str | None = None,
    mcp_config: str | None = None,
    session_id: str | None = None,
    resume: str | None = None,
    working_dir: str | None = None,
    timeout: float | None = 600.0,
    credentials: ClaudeCredentials | None = None,
    use_launcher_credentials: bool = True,
    credentials_file: str | None = None,
    cpu_limit: str | None = None,
    memory_limit: str | None = None,
    claude_path: str = "claude",
    env: Mapping[str, str] | None = None,
    on_event: EventCallback | None = None,
    environ: Mapping[str, str] | None = None,
    task_options: Mapping[str, Any] | None = None,
    **runner_options: Any,
) -> ClaudeResult:
    """Run one prompt the way ``podrunner claude`` does and return the result.

    A failed task does not raise: its error is in ``result.error`` (see :func:`cli_exit_code`).

    Args:
        pod_runner: Runner built from the command's backend options.
        prompt: The prompt (``-`` style stdin reading is the command's job).
        image: Image with the CLI; default ``$PODRUNNER_CLAUDE_IMAGE``.
        model: ``--model``.
        output_format: ``json`` or ``stream-json``.
        system_prompt: ``--system-prompt``.
        append_system_prompt: ``--append-system-prompt``.
        allowed_tools: ``--allowedTools`` entries.
        disallowed_tools: ``--disallowedTools`` entries.
        max_turns: ``--max-turns``.
        max_budget_usd: ``--max-budget-usd``.
        permission_mode: ``--permission-mode``.
        dangerously_allow_bypass: Required with ``permission_mode="bypassPermissions"``.
        json_schema: JSON text or a path to a JSON file.
        mcp_config: A path or JSON text for ``--mcp-config``.
        session_id: ``--session-id`` (a UUID).
        resume: ``--resume``.
        working_dir: Directory in the container.
        timeout: Seconds for the whole run.
        credentials: Explicit credentials; otherwise taken from the launcher when allowed.
        use_launcher_credentials: Use ``ANTHROPIC_API_KEY`` / ``CLAUDE_CODE_OAUTH_TOKEN`` of
            ``environ`` (or ``credentials_file``) when ``credentials`` is not given. They go
            into a per-run Secret, never into the pod manifest.
        credentials_file: OAuth credentials file to fall back on (never read unless given).
        cpu_limit: Container CPU limit.
        memory_limit: Container memory limit.
        claude_path: The CLI in the image.
        env: Extra plain variables for the container.
        on_event: Called with each stream-json event (live progress).
        environ: The launcher's environment (default :data:`os.environ`).
        task_options: Further :class:`ClaudeTask` options by name (``effort``, ``tools``,
            ``fallback_model``...), checked by the task like the ones above.
        **runner_options: Further :class:`ClaudeRunner` options.

    Returns:
        The result.

    Raises:
        SpecError: Bad options (no image, bad schema...), before anything is created.
        RunError: The pod never ran (image pull error...); ``ClaudeTimeout`` on timeout.
    """
    env_map = os.environ if environ is None else environ
    image = image or env_map.get(IMAGE_ENV)
    if not image:
        raise SpecError("image", image, f"give --image or set ${IMAGE_ENV}")
    if credentials is None and use_launcher_credentials:
        credentials = ClaudeCredentials.from_environment(env_map, credentials_file=credentials_file)
    task = ClaudeTask(
        prompt,
        model=model,
        output_format=output_format,
        system_prompt=system_prompt,
        append_system_prompt=append_system_prompt,
        allowed_tools=tuple(allowed_tools),
        disallowed_tools=tuple(disallowed_tools),
        max_turns=max_turns,
        max_budget_usd=max_budget_usd,
        permission_mode=permission_mode,
        dangerously_allow_bypass=dangerously_allow_bypass,
        json_schema=_schema(json_schema),
        mcp_config=mcp_config,
        session_id=session_id,
        resume=resume,
        working_dir=working_dir,
        **dict(task_options or {}),
    )
    runner = ClaudeRunner(
        pod_runner,
        image=image,
        credentials=credentials,
        resources=Resources(cpu_limit=cpu_limit, memory_limit=memory_limit),
        claude_path=claude_path,
        env=env,
        launcher_environ=env_map,
        timeout=timeout,
        **runner_options,
    )
    return runner.run(task, check=False, on_event=on_event)


def format_cli_answer(result: ClaudeResult) -> str:
    """The answer, for stdout: the text, then the structured output when the text is not it.

    Empty when the task failed: the error (:func:`format_cli_notes`) belongs on stderr.
    """
    if result.error is not None:
        return ""
    if result.structured is not None and not result.text.strip().startswith(("{", "[")):
        return "\n".join([result.text, json.dumps(result.structured, indent=2, ensure_ascii=False)])
    return result.text


def format_cli_notes(result: ClaudeResult) -> str:
    """What goes to stderr: the error, if any, then ``cost: $… · session: … · turns: …``."""
    lines: list[str] = []
    if result.error is not None:
        lines.append(f"error: {result.error}")
    facts = []
    if result.cost_usd is not None:
        facts.append(f"cost: ${result.cost_usd:.4f}")
    if result.session_id:
        facts.append(f"session: {result.session_id}")
    if result.num_turns is not None:
        facts.append(f"turns: {result.num_turns}")
    if result.model:
        facts.append(f"model: {result.model}")
    if facts:
        lines.append(" · ".join(facts))
    return "\n".join(lines)


def format_cli_result(result: ClaudeResult, output: Literal["text", "json"] = "text") -> str:
    """Render a result as one text.

    ``text``: the answer (:func:`format_cli_answer`), then the error and the cost line
    (:func:`format_cli_notes`); ``podrunner claude`` prints the first part on stdout and the
    second on stderr. ``json``: :meth:`ClaudeResult.to_dict` as indented JSON.
    """
    if output == "json":
        return json.dumps(result.to_dict(), indent=2, ensure_ascii=False, default=str)
    parts = [format_cli_answer(result), format_cli_notes(result)]
    return "\n".join(part for part in parts if part)


def cli_exit_code(result: ClaudeResult) -> int:
    """0 for success; 2 for authentication, 3 for budget or turn limits, 1 otherwise.

    A result without a classified error whose pod still failed (a non-zero exit, a
    ``CrashLoopBackOff`` with exit code 0) is 1: a failed run never exits 0.
    """
    from podrunner.claude.errors import ClaudeAuthError, ClaudeBudgetExceeded, ClaudeMaxTurns

    error: ClaudeError | None = result.error
    if error is None:
        return 0 if result.run is None or result.run.ok else 1
    if isinstance(error, ClaudeAuthError):
        return 2
    if isinstance(error, (ClaudeBudgetExceeded, ClaudeMaxTurns)):
        return 3
    return 1
