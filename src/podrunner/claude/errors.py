"""The errors a Claude Code task can end with, all under :class:`ClaudeError`.

The tree::

    PodrunnerError
    └── ClaudeError                      the task produced no usable answer; .result, .cli_message
        ├── ClaudeAuthError              credentials missing, invalid or expired
        ├── ClaudeBudgetExceeded         --max-budget-usd reached (subtype error_max_budget_usd)
        ├── ClaudeMaxTurns               --max-turns reached (subtype error_max_turns)
        ├── ClaudeAPIError               the Anthropic API answered with an error; .status
        ├── ClaudeExecutionError         the CLI failed for another reason (non-zero exit...)
        ├── ClaudeOutputError            no result line, unparseable output, missing structured
        │                                output
        ├── ClaudeCLINotFound            the image has no ``claude`` executable (exit 127)
        ├── ClaudeCredentialsInUse       a rotating OAuth login is in use by another run
        │                                (podrunner.claude.refresh)
        └── ClaudeTimeout (TimeoutError) the task ran out of time; .logs holds partial output

Each error keeps the CLI's own words in :attr:`ClaudeError.cli_message` and, when the CLI got far
enough to report them, the cost and usage in :attr:`ClaudeError.result` (a budget that ran out
still cost money).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podrunner.errors import PodrunnerError

if TYPE_CHECKING:
    from podrunner.claude.result import ClaudeResult

__all__ = [
    "ClaudeAPIError",
    "ClaudeAuthError",
    "ClaudeBudgetExceeded",
    "ClaudeCLINotFound",
    "ClaudeError",
    "ClaudeExecutionError",
    "ClaudeMaxTurns",
    "ClaudeOutputError",
    "ClaudeTimeout",
]

_MAX_MESSAGE = 4000  # keeps an error printable even when the CLI dumped a whole log


def _clip(text: str) -> str:
    text = text.strip()
    if len(text) <= _MAX_MESSAGE:
        return text
    return text[: _MAX_MESSAGE - 15] + " ... [truncated]"


class ClaudeError(PodrunnerError):
    """A Claude Code task did not produce a usable answer.

    Attributes:
        message: What happened, in podrunner's words.
        cli_message: What the CLI itself said (its ``result`` text, ``errors`` list or the
            last lines it printed), clipped to 4000 characters.
        result: The parsed :class:`~podrunner.claude.ClaudeResult` when the CLI reported one
            (cost, usage and session id survive errors), else ``None``.
        exit_code: The CLI's exit code, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        cli_message: str = "",
        result: ClaudeResult | None = None,
        exit_code: int | None = None,
    ) -> None:
        self.message = message
        self.cli_message = _clip(cli_message)
        self.result = result
        self.exit_code = exit_code
        text = message
        if self.cli_message and self.cli_message not in message:
            text = f"{message}: {self.cli_message}"
        super().__init__(text)

    @property
    def retryable(self) -> bool:
        """Whether running the same task again may succeed (transient failures only)."""
        return False


class ClaudeAuthError(ClaudeError):
    """The CLI could not authenticate: no credentials, an invalid key or an expired token."""


class ClaudeBudgetExceeded(ClaudeError):
    """The task reached ``--max-budget-usd`` before finishing.

    Attributes:
        spent_usd: What the task cost (``total_cost_usd``).
        limit_usd: The budget it was given, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        spent_usd: float | None = None,
        limit_usd: float | None = None,
        **kw: Any,
    ) -> None:
        self.spent_usd = spent_usd
        self.limit_usd = limit_usd
        super().__init__(message, **kw)


class ClaudeMaxTurns(ClaudeError):
    """The task reached ``--max-turns`` before finishing.

    Attributes:
        turns: Turns the CLI reported (``num_turns``).
        limit: The limit it was given, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        turns: int | None = None,
        limit: int | None = None,
        **kw: Any,
    ) -> None:
        self.turns = turns
        self.limit = limit
        super().__init__(message, **kw)


class ClaudeAPIError(ClaudeError):
    """The Anthropic API answered with an error (the CLI reports ``is_error: true``).

    Attributes:
        status: The HTTP status the CLI reported (``api_error_status``), or one found in its
            message, when known.
    """

    def __init__(self, message: str, *, status: int | None = None, **kw: Any) -> None:
        self.status = status
        super().__init__(message, **kw)

    @property
    def retryable(self) -> bool:
        """Rate limits, overload (529) and server errors are worth a retry; other 4xx are not."""
        return self.status is None or self.status == 429 or self.status >= 500


class ClaudeExecutionError(ClaudeError):
    """The CLI failed for a reason it did not classify (``error_during_execution``, a crash)."""

    @property
    def retryable(self) -> bool:
        """An unexplained failure may be transient."""
        return True


class ClaudeOutputError(ClaudeError):
    """The output had no result line, could not be parsed, or lacked the structured output."""

    @property
    def retryable(self) -> bool:
        """Truncated or malformed output is usually a one-off."""
        return True


class ClaudeCLINotFound(ClaudeError):
    """The image has no ``claude`` executable on its ``PATH`` (the shell exited 127)."""


class ClaudeTimeout(ClaudeError, TimeoutError):
    """The task did not finish in time; its pod (or exec) was stopped.

    Attributes:
        logs: Output captured before the timeout.
    """

    def __init__(self, message: str, *, logs: str = "", **kw: Any) -> None:
        self.logs = logs
        super().__init__(message, **kw)

    @property
    def retryable(self) -> bool:
        """A longer budget, or a less busy cluster, may be enough."""
        return True
