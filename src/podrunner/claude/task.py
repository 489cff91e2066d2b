"""What to ask Claude Code, and how that becomes the ``claude`` command line.

A :class:`ClaudeTask` renders to an **argv list**, never to a shell string: the prompt and every
option value travel as separate ``execve`` arguments, so no character of them is ever read by a
shell. The flags are those of Claude Code's print mode (``claude -p``); each option was checked
against the CLI's own ``--help`` and argument parser, version :data:`CHECKED_CLI_VERSION`:

* ``--output-format json`` prints one result object at the end; ``stream-json`` prints one JSON
  event per line and, in print mode, requires ``--verbose`` (rendered automatically).
  ``--input-format stream-json`` reads the prompt as JSON user messages on standard input and
  requires ``stream-json`` output. ``--include-partial-messages`` adds ``stream_event`` events
  (the Messages API's stream: ``message_start``, ``content_block_delta``... as they arrive) and
  also requires ``stream-json`` output (the CLI refuses it otherwise).
* ``--model`` and ``--fallback-model`` (models tried in order when the main one is overloaded
  or unavailable; sent comma-separated), ``--effort`` (``low`` to ``max``).
* ``--system-prompt`` (replaces the default prompt), ``--append-system-prompt`` (adds to it),
  and their ``-file`` variants, which read the text from a file in the container.
* ``--allowedTools`` / ``--disallowedTools`` (comma-separated rules such as
  ``Bash(git diff:*)``), ``--tools`` (which built-in tools exist at all: none, ``default`` or
  names), ``--permission-mode`` (``default``, ``acceptEdits``, ``plan``, ``auto``,
  ``dontAsk``, ``bypassPermissions``), ``--permission-prompt-tool`` (an MCP tool that answers
  permission prompts in print mode).
* ``--max-turns``, ``--max-budget-usd`` (print mode only; checked between turns, so one turn
  can overshoot it).
* ``--mcp-config`` (a file or a JSON string), ``--strict-mcp-config``, ``--settings`` (a
  settings file or JSON string), ``--setting-sources`` (which of the ``user``, ``project`` and
  ``local`` settings files load; managed settings and ``--settings`` always do), ``--agents``
  (subagents as JSON, or a file), ``--add-dir`` (more directories the tools may use),
  ``--bare`` (no hooks, plugins, auto-memory or ``CLAUDE.md`` discovery; only
  ``ANTHROPIC_API_KEY``-style credentials are read).
* ``--json-schema`` (the answer then arrives in the result's ``structured_output``),
  ``--session-id`` (a UUID), ``--resume``, ``--fork-session``, ``--no-session-persistence``.

Every option with a value is rendered as one ``--flag=value`` argument, so a value that starts
with ``-`` (a system prompt such as ``"- be brief"``) is never read as a flag of its own;
session ids (``session_id``, ``resume``) must be UUIDs. Tool rules are checked as the CLI parses
them (see :func:`split_tool_rules`): one rule per entry. Paths in the container (``add_dirs``,
the ``*_file`` options, a ``settings`` or ``agents`` file) must be absolute.

The CLI accepts several things silently that never do what was meant, so they are refused
here: ``--tools Bash(git:*)`` (a rule, not a name: no tool at all), ``--tools default,Bash``
(``default`` is dropped), an unknown ``--effort`` (ignored with a warning), both a prompt and
its ``-file`` variant (one of them is ignored), and ``extra_args`` that repeat a flag an option
already renders (the last one wins).

The prompt comes last, after ``--``. Several of the CLI's options take a variable number of
values (``--allowedTools``, ``--mcp-config``), so a prompt placed after them would be swallowed
as one more value; ``--`` ends option parsing, which also keeps a prompt that starts with ``-``
from being read as a flag.

A prompt larger than :data:`PROMPT_STDIN_THRESHOLD` bytes is not put on the command line (the
kernel's ``ARG_MAX`` and the pod manifest size both cap it): it is piped to the CLI's standard
input instead, which ``claude -p`` reads as the prompt. With ``input_format="stream-json"``
the prompt always goes to standard input, as one JSON user message (:meth:`ClaudeTask.stdin`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from podrunner.claude._checks import (
    MAX_JSON_DEPTH,
    absolute_path,
    choice,
    flag,
    json_text,
    sequence,
    split_tool_rules,
    text,
    tool_rules,
)
from podrunner.errors import REDACTED, SpecError
from podrunner.spec import MAX_ARG_BYTES

__all__ = [
    "CHECKED_CLI_VERSION",
    "EFFORT_LEVELS",
    "INPUT_FORMATS",
    "MAX_JSON_DEPTH",
    "PERMISSION_MODES",
    "PROMPT_STDIN_THRESHOLD",
    "SETTING_SOURCES",
    "ClaudeTask",
    "InputFormat",
    "OutputFormat",
    "split_tool_rules",
]

CHECKED_CLI_VERSION = "2.1.332"
"""The Claude Code version whose flags and refusals the options were checked against."""

PROMPT_STDIN_THRESHOLD = 100_000
"""Prompts larger than this many UTF-8 bytes go through standard input, not the argv."""

OutputFormat = Literal["json", "stream-json"]
InputFormat = Literal["text", "stream-json"]

INPUT_FORMATS: tuple[str, ...] = ("text", "stream-json")
"""The values ``--input-format`` accepts."""

PERMISSION_MODES: frozenset[str] = frozenset(
    {"default", "manual", "acceptEdits", "plan", "auto", "dontAsk", "bypassPermissions"}
)
"""The values ``--permission-mode`` accepts (Claude Code 2.1.332 lists ``manual`` and still takes
``default``, the same mode)."""

EFFORT_LEVELS: tuple[str, ...] = ("low", "medium", "high", "xhigh", "max")
"""The values ``--effort`` accepts; the CLI ignores any other with a warning."""

SETTING_SOURCES: tuple[str, ...] = ("user", "project", "local")
"""The values ``--setting-sources`` accepts (managed settings always load)."""

_BYPASS = "bypassPermissions"
# Fields whose values may carry tokens: never shown in errors, shown by size in repr.
_SECRET_FIELDS = frozenset({"mcp_config", "settings"})


def _optional_text(field: str, value: object) -> str | None:
    return None if value is None else text(field, value)


def _optional_path(field: str, value: object) -> str | None:
    return None if value is None else absolute_path(field, value)


# The canonical text form the CLI prints and accepts (uuid.UUID would also take braces, URNs and
# bare hex, which the CLI does not).
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_EXAMPLE_UUID = "123e4567-e89b-12d3-a456-426614174000"


def _optional_uuid(field: str, value: object) -> str | None:
    if value is None:
        return None
    checked = text(field, value)
    if not _UUID_RE.fullmatch(checked):
        # A session id reaches the CLI's argv: anything else (a flag such as
        # --dangerously-skip-permissions, a search term) must not get there.
        raise SpecError(field, checked, "must be a session id: a UUID such as " + _EXAMPLE_UUID)
    return checked


def _switch(field: str, value: object) -> bool:
    return flag(field, value)


def _prompt(value: str) -> str:
    return text("prompt", value)


def _output_format(value: object) -> OutputFormat:
    if isinstance(value, str):
        if value == "json":
            return "json"
        if value == "stream-json":
            return "stream-json"
    raise SpecError("output_format", value, "must be 'json' or 'stream-json'")


def _input_format(value: object) -> InputFormat:
    return "stream-json" if choice("input_format", value, INPUT_FORMATS) != "text" else "text"


def _allowed_tools(value: Iterable[str] | str | None) -> tuple[str, ...]:
    return tool_rules("allowed_tools", value)


def _disallowed_tools(value: Iterable[str] | str | None) -> tuple[str, ...]:
    return tool_rules("disallowed_tools", value)


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
    try:
        amount = float(value)
    except OverflowError:  # an int beyond any float
        raise SpecError("max_budget_usd", value, "must be a positive, finite amount") from None
    if not math.isfinite(amount) or amount <= 0:
        raise SpecError("max_budget_usd", value, "must be a positive, finite amount")
    return amount


def _permission_mode(value: object) -> str | None:
    if value is None:
        return None
    return choice("permission_mode", value, sorted(PERMISSION_MODES))


def _effort(value: object) -> str | None:
    return None if value is None else choice("effort", value, EFFORT_LEVELS)


def _json_schema(value: Mapping[str, Any] | str | None) -> str | None:
    if value is None:
        return None
    return json_text("json_schema", value, must_be_object=True, secret=False)[0]


def _config(field: str, value: object) -> str | None:
    # A string is a file path or a JSON document; the CLI accepts both for these flags.
    if value is None:
        return None
    rendered, parsed = json_text(field, value, must_be_object=False, secret=True)
    if parsed is None and field != "mcp_config":
        absolute_path(field, rendered)
    return rendered


# One named converter per field (the attrs plugin of mypy needs named functions).


def _model(value: object) -> str | None:
    return _optional_text("model", value)


def _system_prompt(value: object) -> str | None:
    return _optional_text("system_prompt", value)


def _append_system_prompt(value: object) -> str | None:
    return _optional_text("append_system_prompt", value)


def _dangerously_allow_bypass(value: object) -> bool:
    return _switch("dangerously_allow_bypass", value)


def _mcp_config(value: object) -> str | None:
    return _config("mcp_config", value)


def _strict_mcp_config(value: object) -> bool:
    return _switch("strict_mcp_config", value)


def _session_id(value: object) -> str | None:
    return _optional_uuid("session_id", value)


def _resume(value: object) -> str | None:
    return _optional_uuid("resume", value)


def _fork_session(value: object) -> bool:
    return _switch("fork_session", value)


def _working_dir(value: object) -> str | None:
    return _optional_path("working_dir", value)


def _system_prompt_file(value: object) -> str | None:
    return _optional_path("system_prompt_file", value)


def _append_system_prompt_file(value: object) -> str | None:
    return _optional_path("append_system_prompt_file", value)


def _settings(value: object) -> str | None:
    return _config("settings", value)


def _bare(value: object) -> bool:
    return _switch("bare", value)


def _no_session_persistence(value: object) -> bool:
    return _switch("no_session_persistence", value)


def _include_partial_messages(value: object) -> bool:
    return _switch("include_partial_messages", value)


def _size_repr(value: str | None) -> str:
    return "None" if value is None else f"<{len(value)} characters>"


def _agents(value: Mapping[str, Any] | str | None) -> str | None:
    if value is None:
        return None
    rendered, parsed = json_text("agents", value, must_be_object=False, secret=False)
    if parsed is None:
        return absolute_path("agents", rendered)  # with --print, a file holding the JSON
    for name, agent in parsed.items():
        if not name.strip():
            raise SpecError("agents", name, "agent names must not be empty")
        if not isinstance(agent, dict):
            raise SpecError(f"agents[{name!r}]", agent, "must be an object")
        for key in ("description", "prompt"):
            # The CLI refuses the whole task without these: "Invalid --agents configuration".
            if not isinstance(agent.get(key), str) or not agent[key].strip():
                raise SpecError(f"agents[{name!r}].{key}", agent.get(key), "must be a text")
    return rendered


def _names(field: str, value: object, what: str) -> tuple[str, ...]:
    names: list[str] = []
    for i, item in enumerate(sequence(field, value, what)):
        name = text(f"{field}[{i}]", item)
        if name in names:
            raise SpecError(f"{field}[{i}]", name, "is listed twice")
        names.append(name)
    return tuple(names)


_MODEL_RE = re.compile(r"[^\s,]+")


def _fallback_model(value: Iterable[str] | str | None) -> tuple[str, ...]:
    models = _names("fallback_model", value, "model names")
    for i, model in enumerate(models):
        if not _MODEL_RE.fullmatch(model):
            # The chain is sent comma-separated: "a,b" would be two models.
            raise SpecError(
                f"fallback_model[{i}]", model, "must be one model name (no commas or spaces)"
            )
    return models


_TOOL_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _tools(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) and not value:
        return ()  # the CLI's own spelling of "no built-in tools"
    names = _names("tools", value, "tool names")
    for i, name in enumerate(names):
        if not _TOOL_NAME_RE.fullmatch(name):
            # The CLI silently drops what is not a tool name: "Bash(git:*)" means no Bash.
            raise SpecError(
                f"tools[{i}]",
                name,
                "must be one built-in tool name such as 'Bash' (rules with parentheses "
                "belong in allowed_tools; several names are several entries)",
            )
    if "default" in names and len(names) > 1:
        raise SpecError("tools", list(names), "'default' must be the only entry (the CLI drops it)")
    return names


def _setting_sources(value: Iterable[str] | str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = _names("setting_sources", value, "setting sources")
    for i, name in enumerate(names):
        choice(f"setting_sources[{i}]", name, SETTING_SOURCES)
    return names


def _add_dirs(value: Iterable[str] | str | None) -> tuple[str, ...]:
    dirs = _names("add_dirs", value, "directories")
    return tuple(absolute_path(f"add_dirs[{i}]", d) for i, d in enumerate(dirs))


_MCP_TOOL_RE = re.compile(r"mcp__[A-Za-z0-9_-]+__[A-Za-z0-9_-]+")


def _permission_prompt_tool(value: object) -> str | None:
    if value is None:
        return None
    name = text("permission_prompt_tool", value)
    if not _MCP_TOOL_RE.fullmatch(name):
        raise SpecError(
            "permission_prompt_tool",
            name,
            "must be an MCP tool name, mcp__<server>__<tool> (e.g. mcp__approver__check)",
        )
    return name


def _extra_args(value: Iterable[str]) -> tuple[str, ...]:
    raw: object = value
    if isinstance(raw, str):
        raise SpecError("extra_args", raw, "must be a sequence of strings, not one string")
    items = sequence("extra_args", raw, "strings")
    return tuple(text(f"extra_args[{i}]", item, allow_empty=True) for i, item in enumerate(items))


# Flags the CLI reads as one another (aliases, and a prompt with its -file variant).
_SAME_FLAG = {
    "--print": "-p",
    "--allowed-tools": "--allowedTools",
    "--disallowed-tools": "--disallowedTools",
    "-r": "--resume",
    "--system-prompt-file": "--system-prompt",
    "--append-system-prompt-file": "--append-system-prompt",
}


def _flag_name(arg: str) -> str | None:
    if not arg.startswith("-") or arg in ("-", "--"):
        return None
    name = arg.split("=", 1)[0]
    return _SAME_FLAG.get(name, name)


@attrs.frozen
class ClaudeTask:
    """One Claude Code task: the prompt and the CLI options to run it with.

    Only the prompt is required; everything else is keyword-only and named after its flag
    (``fallback_model`` is ``--fallback-model``). Values are validated on construction and the
    object is immutable (use :meth:`replace` for a variant).

    Attributes:
        prompt: What to ask. Any text: it never passes through a shell.
        model: Model alias (``sonnet``, ``opus``) or full model id.
        fallback_model: Models tried, in order, when the main one is overloaded or
            unavailable (one name per entry; a single string is one model).
        effort: Reasoning effort, one of :data:`EFFORT_LEVELS`.
        output_format: ``"json"`` (default) or ``"stream-json"`` (keeps every event; adds
            ``--verbose``).
        input_format: ``"text"`` (default) or ``"stream-json"``: the prompt is sent on
            standard input as one JSON user message (needs ``output_format="stream-json"``).
        include_partial_messages: Also emit the model's output as it is generated: one
            ``stream_event`` event per Messages API stream event (``message_start``,
            ``content_block_delta`` with ``text_delta``...). Needs
            ``output_format="stream-json"``.
        system_prompt: Replaces Claude Code's default system prompt.
        system_prompt_file: A file in the container whose text replaces the default system
            prompt (instead of ``system_prompt``).
        append_system_prompt: Appended to the default system prompt.
        append_system_prompt_file: A file in the container whose text is appended (instead of
            ``append_system_prompt``).
        allowed_tools: Tool rules allowed without asking, e.g. ``"Read"``,
            ``"Bash(git diff:*)"``.
        disallowed_tools: Tool rules removed from the model's reach.
        tools: The built-in tools that exist at all: ``None`` (the CLI's default set), ``()``
            or ``""`` for none, ``("default",)``, or names such as ``("Read", "Grep")``.
        max_turns: Stop after this many agentic turns (subtype ``error_max_turns``).
        max_budget_usd: Stop once this many dollars are spent (subtype
            ``error_max_budget_usd``).
        permission_mode: One of :data:`PERMISSION_MODES`. ``"bypassPermissions"`` also needs
            ``dangerously_allow_bypass=True``.
        dangerously_allow_bypass: The explicit opt-in for ``bypassPermissions``: every tool
            call is then approved. Only sensible in a pod that has nothing worth protecting.
        permission_prompt_tool: An MCP tool (``mcp__<server>__<tool>``) that answers the
            permission prompts nobody can answer in print mode.
        json_schema: A JSON Schema (mapping or JSON text) the answer must follow; the answer
            arrives in :attr:`ClaudeResult.structured <podrunner.claude.ClaudeResult.structured>`.
        mcp_config: MCP servers: a mapping (sent as JSON text) or a path/JSON string.
        strict_mcp_config: Use only the servers of ``mcp_config``, ignoring other settings.
        settings: More settings: a mapping (sent as JSON text), JSON text, or an absolute
            path to a settings file in the container. Never shown in errors or ``repr``.
        setting_sources: Which settings files load: a subset of :data:`SETTING_SOURCES`
            (``()`` for none). Managed settings and ``settings`` always load.
        agents: Subagents: a mapping of name to ``{"description": ..., "prompt": ...}`` (plus
            optional ``tools``, ``model``...), JSON text, or an absolute path to such a file.
        add_dirs: More absolute directories the tools may read and edit.
        bare: Minimal mode: no hooks, plugins, auto-memory or ``CLAUDE.md`` discovery. The
            CLI then reads only API-key style credentials (no OAuth).
        session_id: Run under this session id (a UUID), so a later task can resume it.
        resume: Resume this earlier session.
        fork_session: With ``resume``: continue in a new session instead of extending it.
        no_session_persistence: Do not save the session (it cannot be resumed).
        working_dir: Absolute directory the CLI runs in.
        extra_args: Further CLI arguments, passed verbatim before the prompt (an escape hatch
            for flags this class does not model). A flag that an option above already renders
            is refused: the CLI would silently keep only one of the two.
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
    dangerously_allow_bypass: bool = attrs.field(
        default=False, kw_only=True, converter=_dangerously_allow_bypass
    )
    json_schema: str | None = attrs.field(default=None, kw_only=True, converter=_json_schema)
    mcp_config: str | None = attrs.field(
        default=None, kw_only=True, converter=_mcp_config, repr=_size_repr
    )
    strict_mcp_config: bool = attrs.field(default=False, kw_only=True, converter=_strict_mcp_config)
    session_id: str | None = attrs.field(default=None, kw_only=True, converter=_session_id)
    resume: str | None = attrs.field(default=None, kw_only=True, converter=_resume)
    fork_session: bool = attrs.field(default=False, kw_only=True, converter=_fork_session)
    working_dir: str | None = attrs.field(default=None, kw_only=True, converter=_working_dir)
    fallback_model: tuple[str, ...] = attrs.field(
        default=(), kw_only=True, converter=_fallback_model
    )
    effort: str | None = attrs.field(default=None, kw_only=True, converter=_effort)
    input_format: InputFormat = attrs.field(default="text", kw_only=True, converter=_input_format)
    system_prompt_file: str | None = attrs.field(
        default=None, kw_only=True, converter=_system_prompt_file
    )
    append_system_prompt_file: str | None = attrs.field(
        default=None, kw_only=True, converter=_append_system_prompt_file
    )
    tools: tuple[str, ...] | None = attrs.field(default=None, kw_only=True, converter=_tools)
    permission_prompt_tool: str | None = attrs.field(
        default=None, kw_only=True, converter=_permission_prompt_tool
    )
    settings: str | None = attrs.field(
        default=None, kw_only=True, converter=_settings, repr=_size_repr
    )
    setting_sources: tuple[str, ...] | None = attrs.field(
        default=None, kw_only=True, converter=_setting_sources
    )
    agents: str | None = attrs.field(default=None, kw_only=True, converter=_agents, repr=_size_repr)
    add_dirs: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_add_dirs)
    bare: bool = attrs.field(default=False, kw_only=True, converter=_bare)
    no_session_persistence: bool = attrs.field(
        default=False, kw_only=True, converter=_no_session_persistence
    )
    include_partial_messages: bool = attrs.field(
        default=False, kw_only=True, converter=_include_partial_messages
    )
    extra_args: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_extra_args)

    def __attrs_post_init__(self) -> None:
        self._check_combinations()
        rendered = self._rendered()
        for field, arg in rendered:
            size = len(arg.encode("utf-8"))
            if size > MAX_ARG_BYTES:
                raise SpecError(
                    field,
                    REDACTED if field in _SECRET_FIELDS else arg,
                    f"renders to a {size}-byte argument; execve takes at most {MAX_ARG_BYTES} "
                    "bytes per argument (MAX_ARG_STRLEN)",
                )
        self._check_extra_args(rendered)

    def _check_combinations(self) -> None:
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
        for inline, from_file in (
            ("system_prompt", "system_prompt_file"),
            ("append_system_prompt", "append_system_prompt_file"),
        ):
            if getattr(self, inline) is not None and getattr(self, from_file) is not None:
                raise SpecError(
                    from_file,
                    getattr(self, from_file),
                    f"give {inline} or {from_file}, not both (the CLI would ignore one)",
                )
        if self.input_format == "stream-json" and self.output_format != "stream-json":
            raise SpecError(
                "input_format",
                "stream-json",
                "needs output_format='stream-json' (the CLI refuses it otherwise)",
            )
        if self.include_partial_messages and self.output_format != "stream-json":
            raise SpecError(
                "include_partial_messages",
                True,
                f"needs output_format='stream-json', not {self.output_format!r} (the CLI "
                "refuses it otherwise: partial messages are stream-json events)",
            )

    def _check_extra_args(self, rendered: list[tuple[str, str]]) -> None:
        owners: dict[str, str] = {}
        for field, arg in rendered:
            name = _flag_name(arg)
            if name is not None and not field.startswith("extra_args"):
                owners.setdefault(name, field)
        for i, arg in enumerate(self.extra_args):
            name = _flag_name(arg)
            if name is not None and name in owners:
                raise SpecError(
                    f"extra_args[{i}]",
                    arg,
                    f"repeats a flag the {owners[name]} option already renders; set it once "
                    "(the CLI would keep only one of the two)",
                )

    # -- rendering -----------------------------------------------------------------------------

    @property
    def prompt_bytes(self) -> int:
        """Size of the prompt in UTF-8 bytes."""
        return len(self.prompt.encode("utf-8"))

    def prompt_on_stdin(self, threshold: int = PROMPT_STDIN_THRESHOLD) -> bool:
        """Whether the prompt is too large for the argv and must be piped to stdin.

        Always true with ``input_format="stream-json"``.

        Args:
            threshold: Largest prompt, in UTF-8 bytes, kept on the command line. A larger
                value than :data:`~podrunner.spec.MAX_ARG_BYTES` is lowered to it: the
                kernel refuses a longer argument.
        """
        if self.input_format == "stream-json":
            return True
        return self.prompt_bytes > min(threshold, MAX_ARG_BYTES)

    def stdin(self) -> str:
        """Return what the CLI reads on standard input when the prompt is sent there.

        The prompt itself, or with ``input_format="stream-json"`` one JSON line holding a
        user message with the prompt as its content.
        """
        if self.input_format == "stream-json":
            message = {"type": "user", "message": {"role": "user", "content": self.prompt}}
            return json.dumps(message, ensure_ascii=False) + "\n"
        return self.prompt

    def _rendered(self) -> list[tuple[str, str]]:
        """The options with the field each comes from, for size checks and :meth:`options`."""
        # Every option with a value is one "--flag=value" argument: a value starting with "-"
        # (a system prompt "- be brief", a crafted id) can then never be read as a flag.
        out = [("output_format", "-p"), ("output_format", f"--output-format={self.output_format}")]
        if self.output_format == "stream-json":
            out.append(("output_format", "--verbose"))  # print mode refuses stream-json without
        if self.input_format != "text":
            out.append(("input_format", f"--input-format={self.input_format}"))
        out += [(field, f"{flag}={value}") for field, flag, value in self._values()]
        switches = (
            ("strict_mcp_config", "--strict-mcp-config", self.strict_mcp_config),
            ("fork_session", "--fork-session", self.fork_session),
            ("bare", "--bare", self.bare),
            ("no_session_persistence", "--no-session-persistence", self.no_session_persistence),
            (
                "include_partial_messages",
                "--include-partial-messages",
                self.include_partial_messages,
            ),
        )
        out += [(field, flag) for field, flag, on in switches if on]
        out += [(f"add_dirs[{i}]", f"--add-dir={path}") for i, path in enumerate(self.add_dirs)]
        out += [(f"extra_args[{i}]", arg) for i, arg in enumerate(self.extra_args)]
        return out

    def _values(self) -> list[tuple[str, str, str]]:
        """``(field, flag, value)`` of every option with a value that is set, in argv order."""

        def joined(items: tuple[str, ...] | None) -> str | None:
            return None if items is None else ",".join(items)

        budget = None if self.max_budget_usd is None else _money(self.max_budget_usd)
        valued: list[tuple[str, str, str | None]] = [
            ("model", "--model", self.model),
            ("system_prompt", "--system-prompt", self.system_prompt),
            ("append_system_prompt", "--append-system-prompt", self.append_system_prompt),
            ("allowed_tools", "--allowedTools", joined(self.allowed_tools) or None),
            ("disallowed_tools", "--disallowedTools", joined(self.disallowed_tools) or None),
            ("max_turns", "--max-turns", None if self.max_turns is None else str(self.max_turns)),
            ("max_budget_usd", "--max-budget-usd", budget),
            ("mcp_config", "--mcp-config", self.mcp_config),
            ("permission_mode", "--permission-mode", self.permission_mode),
            ("json_schema", "--json-schema", self.json_schema),
            ("session_id", "--session-id", self.session_id),
            ("resume", "--resume", self.resume),
            ("fallback_model", "--fallback-model", joined(self.fallback_model) or None),
            ("effort", "--effort", self.effort),
            ("system_prompt_file", "--system-prompt-file", self.system_prompt_file),
            (
                "append_system_prompt_file",
                "--append-system-prompt-file",
                self.append_system_prompt_file,
            ),
            ("tools", "--tools", joined(self.tools)),
            ("permission_prompt_tool", "--permission-prompt-tool", self.permission_prompt_tool),
            ("settings", "--settings", self.settings),
            ("setting_sources", "--setting-sources", joined(self.setting_sources)),
            ("agents", "--agents", self.agents),
        ]
        return [(field, flag, value) for field, flag, value in valued if value is not None]

    def options(self) -> list[str]:
        """Return the CLI options (everything between ``claude`` and the prompt).

        Options with a value are rendered as one ``--flag=value`` argument each.
        """
        return [arg for _, arg in self._rendered()]

    def argv(
        self, claude_path: str = "claude", *, prompt_on_stdin: bool | None = None
    ) -> list[str]:
        """Return the full command: ``[claude_path, *options, "--", prompt]``.

        Args:
            claude_path: The executable (a name on ``PATH`` or an absolute path).
            prompt_on_stdin: Leave the prompt out (it is piped to stdin). Default: only when
                the prompt exceeds :data:`PROMPT_STDIN_THRESHOLD`, and always with
                ``input_format="stream-json"``.

        Returns:
            The argv list, ready for ``execve``; no shell quoting is involved.
        """
        text("claude_path", claude_path)
        if prompt_on_stdin is None or self.input_format == "stream-json":
            prompt_on_stdin = self.prompt_on_stdin()
        argv = [claude_path, *self.options()]
        if not prompt_on_stdin:
            if self.prompt_bytes > MAX_ARG_BYTES:
                raise SpecError(
                    "prompt",
                    f"<{self.prompt_bytes} bytes>",
                    f"is over the {MAX_ARG_BYTES} bytes execve takes in one argument; "
                    "pipe it to standard input (prompt_on_stdin=True)",
                )
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
    shown = repr(value)
    return shown[:-2] if shown.endswith(".0") else shown
