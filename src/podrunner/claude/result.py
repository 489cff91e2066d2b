"""What a Claude Code task gave back: :class:`ClaudeResult` and :class:`Usage`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from podrunner.claude.errors import ClaudeError
    from podrunner.run.outcome import RunResult

__all__ = ["ClaudeResult", "Usage"]


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    return 0


@attrs.frozen
class Usage:
    """Token counts of a task (the result's ``usage`` object), reported separately.

    Attributes:
        input_tokens: Uncached input tokens.
        output_tokens: Output tokens.
        cache_creation_input_tokens: Input tokens written to the prompt cache.
        cache_read_input_tokens: Input tokens read from the prompt cache.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @classmethod
    def from_json(cls, data: object) -> Usage:
        """Build from the CLI's ``usage`` object; missing or odd values count as 0."""
        if not isinstance(data, Mapping):
            return cls()
        return cls(
            _int(data.get("input_tokens")),
            _int(data.get("output_tokens")),
            _int(data.get("cache_creation_input_tokens")),
            _int(data.get("cache_read_input_tokens")),
        )

    @property
    def total_input_tokens(self) -> int:
        """All input tokens, cached or not."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


@attrs.frozen
class ClaudeResult:
    """The outcome of one Claude Code task.

    Attributes:
        text: The answer (the result's ``result``); ``""`` when there was none.
        structured: The structured answer: ``structured_output``, else ``text`` parsed as
            JSON, else a fenced ```` ```json ```` block of it, else its outermost braces;
            ``None`` when none of these is JSON.
        cost_usd: ``total_cost_usd``, when reported.
        session_id: The session id, to ``resume`` later.
        model: The model that answered (first key of ``modelUsage``, else the ``init``
            event's model).
        usage: Token counts.
        model_usage: The per-model breakdown (``modelUsage``) as the CLI reported it.
        num_turns: Agentic turns taken.
        duration_ms: The CLI's wall time, in milliseconds.
        duration_api_ms: Time spent waiting for the API, in milliseconds.
        is_error: The CLI's ``is_error`` flag (or ``True`` when it reported no result).
        subtype: ``success``, ``error_max_turns``, ``error_max_budget_usd``,
            ``error_during_execution``...; ``None`` without a result line.
        permission_denials: Tool calls the permission system refused.
        events: Every JSON event, in order, for ``stream-json`` tasks (empty for ``json``).
        stderr: Lines that were not JSON (warnings, stderr mixed into the pod log).
        truncated: The output ended in the middle of a JSON line.
        exit_code: The CLI's exit code, when known.
        raw: The result object exactly as the CLI printed it (``None`` without one).
        error: The classified failure, or ``None`` when the task succeeded.
        run: The underlying :class:`~podrunner.RunResult` (ephemeral pods), else ``None``.
    """

    text: str = ""
    structured: Any = None
    cost_usd: float | None = None
    session_id: str | None = None
    model: str | None = None
    usage: Usage = attrs.field(factory=Usage)
    model_usage: Mapping[str, Any] = attrs.field(factory=dict, repr=False)
    num_turns: int | None = None
    duration_ms: int | None = None
    duration_api_ms: int | None = None
    is_error: bool = False
    subtype: str | None = None
    permission_denials: tuple[Any, ...] = attrs.field(default=(), repr=False)
    events: tuple[Mapping[str, Any], ...] = attrs.field(default=(), repr=False)
    stderr: tuple[str, ...] = attrs.field(default=(), repr=False)
    truncated: bool = False
    exit_code: int | None = None
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False)
    error: ClaudeError | None = attrs.field(default=None, repr=False, eq=False)
    run: RunResult | None = attrs.field(default=None, repr=False, eq=False)

    @property
    def ok(self) -> bool:
        """Whether the task succeeded (no classified error)."""
        return self.error is None

    @property
    def turns(self) -> int | None:
        """Alias of :attr:`num_turns`."""
        return self.num_turns

    def check(self) -> ClaudeResult:
        """Return ``self`` when the task succeeded, else raise its :attr:`error`."""
        if self.error is not None:
            raise self.error
        return self

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (what ``podrunner claude --output json`` prints)."""
        return {
            "text": self.text,
            "structured": self.structured,
            "cost_usd": self.cost_usd,
            "session_id": self.session_id,
            "model": self.model,
            "usage": attrs.asdict(self.usage),
            "num_turns": self.num_turns,
            "duration_ms": self.duration_ms,
            "is_error": self.is_error,
            "subtype": self.subtype,
            "exit_code": self.exit_code,
            "error": None if self.error is None else type(self.error).__name__,
            "error_message": None if self.error is None else str(self.error),
            "pod_name": None if self.run is None else self.run.pod_name,
        }
