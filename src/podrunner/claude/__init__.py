"""Claude Code on top of the podrunner SDK.

* :class:`ClaudeTask`: the prompt and CLI options, rendered to an argv list (never a shell
  string).
* :class:`ClaudeCredentials`: API key, bearer token, OAuth token or credentials file, a
  credential-injecting proxy, Bedrock or Vertex; secrets as a value (per-run Secret owned by
  the pod) or a reference to an existing Secret; never in a pod manifest.
* :class:`ClaudeRunner`: one task per ephemeral, hardened pod.
* :class:`AsyncClaudeRunner`: the same for coroutines, on an ``AsyncPodRunner`` (loaded on
  first use, so ``import podrunner.claude`` does not import :mod:`asyncio`).
* :class:`Telemetry`: where Claude Code sends its OpenTelemetry metrics, events and traces.
* :class:`SessionStore`: a volume where session transcripts outlive the pod (``resume``
  in the next one).
* :class:`PodTransport`: the Claude Agent SDK's transport to a CLI in a pod (the
  ``agent-sdk`` extra; loaded on first use, so ``import podrunner.claude`` does not import
  ``claude_agent_sdk``).
* :class:`ClaudeWorker`: one long-running pod, one ``exec`` per task; it only ever uses or
  deletes a pod it can prove its own (:class:`WorkerOwnershipError` otherwise).
  :class:`AsyncClaudeWorker` is the same for coroutines.
* :class:`ClaudeResult`: answer, structured output, cost, session id, usage, turns, events.
* :class:`ClaudeError` and its subclasses: how a task failed, with the CLI's own message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podrunner.claude.cli import (
    cli_exit_code,
    format_cli_answer,
    format_cli_notes,
    format_cli_result,
    run_claude_cli,
)
from podrunner.claude.credentials import ClaudeCredentials, InlineCredentialsWarning
from podrunner.claude.errors import (
    ClaudeAPIError,
    ClaudeAuthError,
    ClaudeBudgetExceeded,
    ClaudeCLINotFound,
    ClaudeError,
    ClaudeExecutionError,
    ClaudeMaxTurns,
    ClaudeOutputError,
    ClaudeTimeout,
)
from podrunner.claude.parse import StreamParser, extract_structured, parse_output
from podrunner.claude.refresh import ClaudeCredentialsInUse, CredentialsNotWrittenBack
from podrunner.claude.result import ClaudeResult, Usage
from podrunner.claude.runner import ClaudeRunner
from podrunner.claude.sessions import SessionInUse, SessionStore
from podrunner.claude.task import (
    CHECKED_CLI_VERSION,
    EFFORT_LEVELS,
    PROMPT_STDIN_THRESHOLD,
    SETTING_SOURCES,
    ClaudeTask,
)
from podrunner.claude.telemetry import Telemetry
from podrunner.claude.worker import ClaudeWorker, WorkerOwnershipError

if TYPE_CHECKING:
    from podrunner.claude.aio_runner import AsyncClaudeRunner
    from podrunner.claude.aio_worker import AsyncClaudeWorker
    from podrunner.claude.transport import PodTransport

__all__ = [
    "CHECKED_CLI_VERSION",
    "EFFORT_LEVELS",
    "PROMPT_STDIN_THRESHOLD",
    "SETTING_SOURCES",
    "AsyncClaudeRunner",
    "AsyncClaudeWorker",
    "ClaudeAPIError",
    "ClaudeAuthError",
    "ClaudeBudgetExceeded",
    "ClaudeCLINotFound",
    "ClaudeCredentials",
    "ClaudeCredentialsInUse",
    "ClaudeError",
    "ClaudeExecutionError",
    "ClaudeMaxTurns",
    "ClaudeOutputError",
    "ClaudeResult",
    "ClaudeRunner",
    "ClaudeTask",
    "ClaudeTimeout",
    "ClaudeWorker",
    "CredentialsNotWrittenBack",
    "InlineCredentialsWarning",
    "PodTransport",
    "SessionInUse",
    "SessionStore",
    "StreamParser",
    "Telemetry",
    "Usage",
    "WorkerOwnershipError",
    "cli_exit_code",
    "extract_structured",
    "format_cli_answer",
    "format_cli_notes",
    "format_cli_result",
    "parse_output",
    "run_claude_cli",
]


def __getattr__(name: str) -> Any:
    if name == "AsyncClaudeRunner":  # the async runner imports asyncio: only when asked for
        from podrunner.claude.aio_runner import AsyncClaudeRunner

        globals()[name] = AsyncClaudeRunner
        return AsyncClaudeRunner
    if name == "AsyncClaudeWorker":  # imports asyncio too: only when asked for
        from podrunner.claude.aio_worker import AsyncClaudeWorker

        globals()[name] = AsyncClaudeWorker
        return AsyncClaudeWorker
    if name == "PodTransport":  # needs claude-agent-sdk (the agent-sdk extra)
        try:
            from podrunner.claude.transport import PodTransport
        except ModuleNotFoundError as exc:
            if exc.name is None or not exc.name.startswith("claude_agent_sdk"):
                raise
            raise ImportError(
                "podrunner.claude.PodTransport needs the Claude Agent SDK: "
                "pip install 'podrunner[agent-sdk]'"
            ) from exc
        globals()[name] = PodTransport
        return PodTransport
    raise AttributeError(f"module 'podrunner.claude' has no attribute {name!r}")
