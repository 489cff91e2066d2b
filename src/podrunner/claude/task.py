"""What to ask Claude Code, and how that becomes the ``claude`` command line.

A :class:`ClaudeTask` renders to an **argv list**, never to a shell string: the prompt and every
option value travel as separate ``execve`` arguments, so no character of them is ever read by a
shell. The flags are those of Claude Code's print mode (``claude -p``), as its CLI reference
documents them:

* ``--output-format json`` prints one result object at the end; ``stream-json`` prints one JSON
  event per line and, in print mode, requires ``--verbose`` (rendered automatically).
* ``--model``, ``--system-prompt`` (replaces the default prompt), ``--append-system-prompt``
  (adds to it), ``--allowedTools`` / ``--disallowedTools`` (comma-separated rules such as
  ``Bash(git diff:*)``), ``--max-turns``, ``--max-budget-usd`` (print mode only; checked between
  turns, so one turn can overshoot it), ``--mcp-config`` (a file or a JSON string),
  ``--strict-mcp-config``, ``--permission-mode`` (``default``, ``acceptEdits``, ``plan``,
  ``auto``, ``dontAsk``, ``bypassPermissions``), ``--json-schema`` (the answer then arrives in
  the result's ``structured_output``), ``--session-id`` (a UUID), ``--resume`` and
  ``--fork-session``.

The prompt comes last, after ``--``. Several of the CLI's options take a variable number of
values (``--allowedTools``, ``--mcp-config``), so a prompt placed after them would be swallowed
as one more value; ``--`` ends option parsing, which also keeps a prompt that starts with ``-``
from being read as a flag.

A prompt larger than :data:`PROMPT_STDIN_THRESHOLD` bytes is not put on the command line (the
kernel's ``ARG_MAX`` and the pod manifest size both cap it): it is piped to the CLI's standard
input instead, which ``claude -p`` reads as the prompt.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from podrunner.errors import SpecError

__all__ = [
    "PERMISSION_MODES",
    "PROMPT_STDIN_THRESHOLD",
    "ClaudeTask",
    "OutputFormat",
]

PROMPT_STDIN_THRESHOLD = 100_000
"""Prompts larger than this many UTF-8 bytes go through standard input, not the argv."""

OutputFormat = Literal["json", "stream-json"]

PERMISSION_MODES: frozenset[str] = frozenset(
    {"default", "acceptEdits", "plan", "auto", "dontAsk", "bypassPermissions"}
)
"""The values ``--permission-mode`` accepts (Claude Code CLI reference)."""

_BYPASS = "bypassPermissions"


def _text(field: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise SpecError(field, value, f"must be a string, not {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise SpecError(field, value, "must not be empty")
    if "\x00" in value:
        # execve cannot carry a NUL; refusing it here beats a confusing failure in the pod.
        raise SpecError(field, value[:80], "must not contain NUL characters")
    return value


def _model(value: str | None) -> str | None:
    return None if value is None else _text("model", value)


def _system_prompt(value: str | None) -> str | None:
    return None if value is None else _text("system_prompt", value)


def _append_system_prompt(value: str | None) -> str | None:
    return None if value is None else _text("append_system_prompt", value)


def _resume(value: str | None) -> str | None:
    return None if value is None else _text("resume", value)


def _prompt(value: str) -> str:
    return _text("prompt", value)


def _output_format(value: str) -> OutputFormat:
    if value == "json":
        return "json"
    if value == "stream-json":
        return "stream-json"
    raise SpecError("output_format", value, "must be 'json' or 'stream-json'")


def _tools(field: str, value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        _text(field, item)
        if "," in item and "(" not in item:
            # A comma outside a rule's parentheses would split one entry into two.
            raise SpecError(field, item, "give one tool per entry, not a comma-joined list")
    return items


def _allowed_tools(value: Iterable[str] | str | None) -> tuple[str, ...]:
    return _tools("allowed_tools", value)


def _disallowed_tools(value: Iterable[str] | str | None) -> tuple[str, ...]:
    return _tools("disallowed_tools", value)


def _max_turns(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError("max_turns", value, "must be a positive integer")
    return value


def _budget(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError("max_budget_usd", value, "must be a number of US dollars")
    if not math.isfinite(value) or value <= 0:
        raise SpecError("max_budget_usd", value, "must be a positive, finite amount")
    return float(value)


def _permission_mode(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in PERMISSION_MODES:
        allowed = ", ".join(sorted(PERMISSION_MODES))
        raise SpecError("permission_mode", value, f"must be one of {allowed}")
    return value


def _json_text(field: str, value: object, *, must_be_object: bool) -> str:
    if isinstance(value, Mapping):
        # Compact and key-ordered: the argv (and so the pod manifest) is stable for one task.
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    text = _text(field, value)
    if must_be_object:
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise SpecError(field, text[:200], f"must be a JSON object: {exc}") from None
        if not isinstance(parsed, dict):
            raise SpecError(field, text[:200], "must be a JSON object")
    return text


def _json_schema(value: Mapping[str, Any] | str | None) -> str | None:
    return None if value is None else _json_text("json_schema", value, must_be_object=True)


def _mcp_config(value: Mapping[str, Any] | str | None) -> str | None:
    # A string is a file path or a JSON document; the CLI accepts both for --mcp-config.
    return None if value is None else _json_text("mcp_config", value, must_be_object=False)


def _session_id(value: str | None) -> str | None:
    if value is None:
        return None
    text = _text("session_id", value)
    try:
        uuid.UUID(text)
    except ValueError:
        raise SpecError(
            "session_id", text, "must be a UUID (the CLI refuses anything else)"
        ) from None
    return text


def _working_dir(value: str | None) -> str | None:
    if value is None:
        return None
    path = _text("working_dir", value)
    if not path.startswith("/"):
        raise SpecError("working_dir", path, "must be an absolute path")
    return path


def _extra_args(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise SpecError("extra_args", value, "must be a sequence of strings, not one string")
    items = tuple(value)
    for item in items:
        _text("extra_args", item, allow_empty=True)
    return items


@attrs.frozen
class ClaudeTask:
    """One Claude Code task: the prompt and the CLI options to run it with.

    Only the prompt is required; everything else is keyword-only. Values are validated on
    construction and the object is immutable (use :meth:`replace` for a variant).

    Attributes:
        prompt: What to ask. Any text: it never passes through a shell.
        model: Model alias (``sonnet``, ``opus``) or full model id.
        output_format: ``"json"`` (default) or ``"stream-json"`` (keeps every event; adds
            ``--verbose``).
        system_prompt: Replaces Claude Code's default system prompt.
        append_system_prompt: Appended to the default system prompt.
        allowed_tools: Tool rules allowed without asking, e.g. ``"Read"``,
            ``"Bash(git diff:*)"``.
        disallowed_tools: Tool rules removed from the model's reach.
        max_turns: Stop after this many agentic turns (subtype ``error_max_turns``).
        max_budget_usd: Stop once this many dollars are spent (subtype
            ``error_max_budget_usd``).
        permission_mode: One of :data:`PERMISSION_MODES`. ``"bypassPermissions"`` also needs
            ``dangerously_allow_bypass=True``.
        dangerously_allow_bypass: The explicit opt-in for ``bypassPermissions``: every tool
            call is then approved. Only sensible in a pod that has nothing worth protecting.
        json_schema: A JSON Schema (mapping or JSON text) the answer must follow; the answer
            arrives in :attr:`ClaudeResult.structured <podrunner.claude.ClaudeResult.structured>`.
        mcp_config: MCP servers: a mapping (sent as JSON text) or a path/JSON string.
        strict_mcp_config: Use only the servers of ``mcp_config``, ignoring other settings.
        session_id: Run under this session id (a UUID), so a later task can resume it.
        resume: Resume this earlier session.
        fork_session: With ``resume``: continue in a new session instead of extending it.
        working_dir: Absolute directory the CLI runs in.
        extra_args: Further CLI arguments, passed verbatim before the prompt (an escape hatch
            for flags this class does not model).
    """

    prompt: str = attrs.field(converter=_prompt)
    model: str | None = attrs.field(default=None, kw_only=True, converter=_model)
    output_format: OutputFormat = attrs.field(
        default="json", kw_only=True, converter=_output_format
    )
    system_prompt: str | None = attrs.field(default=None, kw_only=True, converter=_system_prompt)
    append_system_prompt: str | None = attrs.field(
        default=None, kw_only=True, converter=_append_system_prompt
    )
    allowed_tools: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_allowed_tools)
    disallowed_tools: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_disallowed_tools
    )
    max_turns: int | None = attrs.field(default=None, kw_only=True, converter=_max_turns)
    max_budget_usd: float | None = attrs.field(default=None, kw_only=True, converter=_budget)
    permission_mode: str | None = attrs.field(
        default=None, kw_only=True, converter=_permission_mode
    )
    dangerously_allow_bypass: bool = attrs.field(default=False, kw_only=True)
    json_schema: str | None = attrs.field(default=None, kw_only=True, converter=_json_schema)
    mcp_config: str | None = attrs.field(default=None, kw_only=True, converter=_mcp_config)
    strict_mcp_config: bool = attrs.field(default=False, kw_only=True)
    session_id: str | None = attrs.field(default=None, kw_only=True, converter=_session_id)
    resume: str | None = attrs.field(default=None, kw_only=True, converter=_resume)
    fork_session: bool = attrs.field(default=False, kw_only=True)
    working_dir: str | None = attrs.field(default=None, kw_only=True, converter=_working_dir)
    extra_args: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_extra_args)

    def __attrs_post_init__(self) -> None:
        for name in ("dangerously_allow_bypass", "strict_mcp_config", "fork_session"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(name, getattr(self, name), "must be True or False")
        if self.permission_mode == _BYPASS and not self.dangerously_allow_bypass:
            raise SpecError(
                "permission_mode",
                _BYPASS,
                "approves every tool call; pass dangerously_allow_bypass=True to mean it",
            )
        if self.fork_session and self.resume is None:
            raise SpecError("fork_session", True, "only makes sense with resume")
        if self.session_id is not None and self.resume is not None and not self.fork_session:
            raise SpecError(
                "session_id",
                self.session_id,
                "give session_id or resume, not both (unless forking)",
            )
        if self.strict_mcp_config and self.mcp_config is None:
            raise SpecError("strict_mcp_config", True, "needs mcp_config")

    # -- rendering -----------------------------------------------------------------------------

    @property
    def prompt_bytes(self) -> int:
        """Size of the prompt in UTF-8 bytes."""
        return len(self.prompt.encode("utf-8"))

    def prompt_on_stdin(self, threshold: int = PROMPT_STDIN_THRESHOLD) -> bool:
        """Whether the prompt is too large for the argv and must be piped to stdin.

        Args:
            threshold: Largest prompt, in UTF-8 bytes, kept on the command line.
        """
        return self.prompt_bytes > threshold

    def options(self) -> list[str]:
        """Return the CLI options (everything between ``claude`` and the prompt)."""
        args = ["-p", "--output-format", self.output_format]
        if self.output_format == "stream-json":
            args.append("--verbose")  # print mode refuses stream-json without it
        if self.model is not None:
            args += ["--model", self.model]
        if self.system_prompt is not None:
            args += ["--system-prompt", self.system_prompt]
        if self.append_system_prompt is not None:
            args += ["--append-system-prompt", self.append_system_prompt]
        if self.allowed_tools:
            args += ["--allowedTools", ",".join(self.allowed_tools)]
        if self.disallowed_tools:
            args += ["--disallowedTools", ",".join(self.disallowed_tools)]
        if self.max_turns is not None:
            args += ["--max-turns", str(self.max_turns)]
        if self.max_budget_usd is not None:
            args += ["--max-budget-usd", _money(self.max_budget_usd)]
        if self.mcp_config is not None:
            args += ["--mcp-config", self.mcp_config]
        if self.strict_mcp_config:
            args.append("--strict-mcp-config")
        if self.permission_mode is not None:
            args += ["--permission-mode", self.permission_mode]
        if self.json_schema is not None:
            args += ["--json-schema", self.json_schema]
        if self.session_id is not None:
            args += ["--session-id", self.session_id]
        if self.resume is not None:
            args += ["--resume", self.resume]
        if self.fork_session:
            args.append("--fork-session")
        args += self.extra_args
        return args

    def argv(
        self, claude_path: str = "claude", *, prompt_on_stdin: bool | None = None
    ) -> list[str]:
        """Return the full command: ``[claude_path, *options, "--", prompt]``.

        Args:
            claude_path: The executable (a name on ``PATH`` or an absolute path).
            prompt_on_stdin: Leave the prompt out (it is piped to stdin). Default: only when
                the prompt exceeds :data:`PROMPT_STDIN_THRESHOLD`.

        Returns:
            The argv list, ready for ``execve``; no shell quoting is involved.
        """
        _text("claude_path", claude_path)
        if prompt_on_stdin is None:
            prompt_on_stdin = self.prompt_on_stdin()
        argv = [claude_path, *self.options()]
        if not prompt_on_stdin:
            argv += ["--", self.prompt]
        return argv

    def replace(self, **changes: Any) -> ClaudeTask:
        """Return a re-validated copy with some fields changed."""
        return attrs.evolve(self, **changes)

    @property
    def structured_expected(self) -> bool:
        """Whether a JSON schema was given, so a structured answer is required."""
        return self.json_schema is not None


def _money(value: float) -> str:
    # "0.5", not "0.50000000001": repr() is the shortest text that round-trips.
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
