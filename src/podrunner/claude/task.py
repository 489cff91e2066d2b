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

Every option with a value is rendered as one ``--flag=value`` argument, so a value that starts
with ``-`` (a system prompt such as ``"- be brief"``) is never read as a flag of its own;
session ids (``session_id``, ``resume``) must be UUIDs. Tool rules are checked as the CLI parses
them (see :func:`split_tool_rules`): one rule per entry.

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
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs

from podrunner.errors import REDACTED, SpecError, kind_of
from podrunner.spec import MAX_ARG_BYTES

__all__ = [
    "MAX_JSON_DEPTH",
    "PERMISSION_MODES",
    "PROMPT_STDIN_THRESHOLD",
    "ClaudeTask",
    "OutputFormat",
    "split_tool_rules",
]

PROMPT_STDIN_THRESHOLD = 100_000
"""Prompts larger than this many UTF-8 bytes go through standard input, not the argv."""

OutputFormat = Literal["json", "stream-json"]

PERMISSION_MODES: frozenset[str] = frozenset(
    {"default", "acceptEdits", "plan", "auto", "dontAsk", "bypassPermissions"}
)
"""The values ``--permission-mode`` accepts (Claude Code CLI reference)."""

_BYPASS = "bypassPermissions"


def _text(field: str, value: object, *, allow_empty: bool = False, secret: bool = False) -> str:
    shown: object = REDACTED if secret else value
    if not isinstance(value, str):
        raise SpecError(field, shown, f"must be a string, not {kind_of(value)}")
    if not allow_empty and not value.strip():
        raise SpecError(field, shown, "must not be empty")
    if "\x00" in value:
        # execve cannot carry a NUL; refusing it here beats a confusing failure in the pod.
        raise SpecError(field, shown, "must not contain NUL characters (\\x00)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(
            field,
            shown,
            "must be valid Unicode: it holds a lone surrogate, which UTF-8 cannot encode",
        ) from None
    return value


def _model(value: str | None) -> str | None:
    return None if value is None else _text("model", value)


def _system_prompt(value: str | None) -> str | None:
    return None if value is None else _text("system_prompt", value)


def _append_system_prompt(value: str | None) -> str | None:
    return None if value is None else _text("append_system_prompt", value)


# The canonical text form the CLI prints and accepts (uuid.UUID would also take braces, URNs and
# bare hex, which the CLI does not).
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _uuid(field: str, value: object) -> str:
    text = _text(field, value)
    if not _UUID_RE.fullmatch(text):
        # A session id reaches the CLI's argv: anything else (a flag such as
        # --dangerously-skip-permissions, a search term) must not get there.
        raise SpecError(field, text, "must be a session id: a UUID such as " + _EXAMPLE_UUID)
    return text


_EXAMPLE_UUID = "123e4567-e89b-12d3-a456-426614174000"


def _resume(value: str | None) -> str | None:
    return None if value is None else _uuid("resume", value)


def _session_id(value: str | None) -> str | None:
    return None if value is None else _uuid("session_id", value)


def _prompt(value: str) -> str:
    return _text("prompt", value)


def _output_format(value: str) -> OutputFormat:
    if isinstance(value, str):
        if value == "json":
            return "json"
        if value == "stream-json":
            return "stream-json"
    raise SpecError("output_format", value, "must be 'json' or 'stream-json'")


# One permission rule: a tool name, optionally followed by one parenthesised specifier.
_TOOL_RULE_RE = re.compile(r"[^\s,()]+(\([^()]*\))?")


def split_tool_rules(text: str) -> list[str]:
    """Split an ``--allowedTools`` value into rules the way the Claude Code CLI does.

    The CLI reads one argument as a list: commas and spaces separate rules, except inside
    parentheses, so ``"Bash(git diff:*),Write"`` is two rules and ``"Bash(git diff:*)"`` one.

    Args:
        text: One ``--allowedTools`` or ``--disallowedTools`` value.

    Returns:
        The rules, stripped, in order.
    """
    rules: list[str] = []
    current: list[str] = []
    in_parens = False
    for char in text:
        if char == "(":
            in_parens = True
        elif char == ")":
            in_parens = False
        elif char in ", " and not in_parens:
            if "".join(current).strip():
                rules.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if "".join(current).strip():
        rules.append("".join(current).strip())
    return rules


def _tools(field: str, value: Iterable[str] | str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    raw: object = value
    if isinstance(raw, str):
        items: tuple[object, ...] = (raw,)
    elif isinstance(raw, Iterable) and not isinstance(raw, (bytes, Mapping)):
        items = tuple(raw)
    else:
        raise SpecError(field, raw, f"must be a sequence of tool rules, not {kind_of(raw)}")
    for i, item in enumerate(items):
        rule = _text(f"{field}[{i}]", item)
        if not _TOOL_RULE_RE.fullmatch(rule):
            rules = split_tool_rules(rule)
            if len(rules) > 1:
                # Claude Code would read several rules here: "Bash(git diff:*),Write" allows
                # Write too. One entry, one rule, so what is allowed is what is listed.
                reason = f"holds {len(rules)} rules ({', '.join(rules)}); give one rule per entry"
            else:
                reason = (
                    "must be one tool rule: a tool name, optionally followed by one "
                    "specifier in parentheses without nested parentheses, e.g. "
                    "'Bash(git diff:*)'"
                )
            raise SpecError(f"{field}[{i}]", rule, reason)
    return items  # type: ignore[return-value]  # each item checked to be a str above


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
    # Checked as a string first: an unhashable value ({}) cannot be looked up in a set.
    if not isinstance(value, str) or value not in PERMISSION_MODES:
        allowed = ", ".join(sorted(PERMISSION_MODES))
        raise SpecError("permission_mode", value, f"must be one of {allowed}")
    return value


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, value, f"must be True or False, not {kind_of(value)}")
    return value


def _allow_bypass(value: bool) -> bool:
    return _flag("dangerously_allow_bypass", value)


def _strict_mcp(value: bool) -> bool:
    return _flag("strict_mcp_config", value)


def _fork(value: bool) -> bool:
    return _flag("fork_session", value)


MAX_JSON_DEPTH = 64
"""How deeply a ``json_schema`` or ``mcp_config`` may nest (objects and arrays)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_problem(tree: object) -> tuple[str, object, str] | None:
    """Find the first value of ``tree`` that is not plain, finite JSON: (path, value, rule)."""
    stack: list[tuple[object, str, int]] = [(tree, "", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return path, node, f"nests deeper than {MAX_JSON_DEPTH} levels"
        if isinstance(node, Mapping):
            for key, item in node.items():
                if not isinstance(key, str):
                    return path, key, f"object keys must be strings, not {kind_of(key)}"
                stack.append((key, f"{path}[{json.dumps(key)}]", depth + 1))
                stack.append((item, f"{path}[{json.dumps(key)}]", depth + 1))
        elif isinstance(node, (list, tuple)):
            stack.extend((item, f"{path}[{i}]", depth + 1) for i, item in enumerate(node))
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return path, node, "holds a lone surrogate, which UTF-8 cannot encode"
        elif isinstance(node, float):
            if not math.isfinite(node):
                return path, node, "NaN and infinities are not valid JSON"
        elif node is not None and not isinstance(node, (bool, int)):
            return path, node, f"{kind_of(node)} is not a JSON value"
    return None


def _json_text(field: str, value: object, *, must_be_object: bool, secret: bool) -> str:
    # An MCP config may carry tokens (server env, headers): its values are never echoed.
    def fail(path: str, shown: object, rule: str) -> SpecError:
        return SpecError(f"{field}{path}", REDACTED if secret else shown, rule)

    if isinstance(value, Mapping):
        problem = _json_problem(value)
        if problem is not None:
            raise fail(*problem)
        # Compact and key-ordered: the argv (and so the pod manifest) is stable for one task.
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    text = _text(field, value, secret=secret)
    if must_be_object or text.lstrip().startswith(("{", "[")):
        try:
            parsed = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise fail("", f"<{len(text)} characters>", "nests too deeply") from None
        except ValueError as exc:
            raise fail("", text[:200], f"must be a JSON object: {exc}") from None
        if not isinstance(parsed, dict):
            raise fail("", text[:200], f"must be a JSON object, not {kind_of(parsed)}")
        problem = _json_problem(parsed)
        if problem is not None:
            raise fail(*problem)
    return text


def _json_schema(value: Mapping[str, Any] | str | None) -> str | None:
    if value is None:
        return None
    return _json_text("json_schema", value, must_be_object=True, secret=False)


def _mcp_config(value: Mapping[str, Any] | str | None) -> str | None:
    # A string is a file path or a JSON document; the CLI accepts both for --mcp-config.
    if value is None:
        return None
    return _json_text("mcp_config", value, must_be_object=False, secret=True)


def _mcp_repr(value: str | None) -> str:
    return "None" if value is None else f"<{len(value)} characters>"


def _working_dir(value: str | None) -> str | None:
    if value is None:
        return None
    path = _text("working_dir", value)
    if not path.startswith("/"):
        raise SpecError("working_dir", path, "must be an absolute path")
    return path


def _extra_args(value: Iterable[str]) -> tuple[str, ...]:
    raw: object = value
    if isinstance(raw, str):
        raise SpecError("extra_args", raw, "must be a sequence of strings, not one string")
    if not isinstance(raw, Iterable) or isinstance(raw, (bytes, Mapping)):
        raise SpecError("extra_args", raw, f"must be a sequence of strings, not {kind_of(raw)}")
    return tuple(_text(f"extra_args[{i}]", item, allow_empty=True) for i, item in enumerate(raw))


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
    dangerously_allow_bypass: bool = attrs.field(
        default=False, kw_only=True, converter=_allow_bypass
    )
    json_schema: str | None = attrs.field(default=None, kw_only=True, converter=_json_schema)
    mcp_config: str | None = attrs.field(
        default=None, kw_only=True, converter=_mcp_config, repr=_mcp_repr
    )
    strict_mcp_config: bool = attrs.field(default=False, kw_only=True, converter=_strict_mcp)
    session_id: str | None = attrs.field(default=None, kw_only=True, converter=_session_id)
    resume: str | None = attrs.field(default=None, kw_only=True, converter=_resume)
    fork_session: bool = attrs.field(default=False, kw_only=True, converter=_fork)
    working_dir: str | None = attrs.field(default=None, kw_only=True, converter=_working_dir)
    extra_args: tuple[str, ...] = attrs.field(default=(), kw_only=True, converter=_extra_args)

    def __attrs_post_init__(self) -> None:
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
        for field, arg in self._rendered():
            size = len(arg.encode("utf-8"))
            if size > MAX_ARG_BYTES:
                raise SpecError(
                    field,
                    REDACTED if field == "mcp_config" else arg,
                    f"renders to a {size}-byte argument; execve takes at most {MAX_ARG_BYTES} "
                    "bytes per argument (MAX_ARG_STRLEN)",
                )

    # -- rendering -----------------------------------------------------------------------------

    @property
    def prompt_bytes(self) -> int:
        """Size of the prompt in UTF-8 bytes."""
        return len(self.prompt.encode("utf-8"))

    def prompt_on_stdin(self, threshold: int = PROMPT_STDIN_THRESHOLD) -> bool:
        """Whether the prompt is too large for the argv and must be piped to stdin.

        Args:
            threshold: Largest prompt, in UTF-8 bytes, kept on the command line. A larger
                value than :data:`~podrunner.spec.MAX_ARG_BYTES` is lowered to it: the
                kernel refuses a longer argument.
        """
        return self.prompt_bytes > min(threshold, MAX_ARG_BYTES)

    def _rendered(self) -> list[tuple[str, str]]:
        """The options with the field each comes from, for size checks and :meth:`options`."""
        # Every option with a value is one "--flag=value" argument: a value starting with "-"
        # (a system prompt "- be brief", a crafted id) can then never be read as a flag.
        out = [("output_format", "-p"), ("output_format", f"--output-format={self.output_format}")]
        if self.output_format == "stream-json":
            out.append(("output_format", "--verbose"))  # print mode refuses stream-json without
        valued: list[tuple[str, str, str | None]] = [
            ("model", "--model", self.model),
            ("system_prompt", "--system-prompt", self.system_prompt),
            ("append_system_prompt", "--append-system-prompt", self.append_system_prompt),
            ("allowed_tools", "--allowedTools", ",".join(self.allowed_tools) or None),
            ("disallowed_tools", "--disallowedTools", ",".join(self.disallowed_tools) or None),
            ("max_turns", "--max-turns", None if self.max_turns is None else str(self.max_turns)),
            (
                "max_budget_usd",
                "--max-budget-usd",
                None if self.max_budget_usd is None else _money(self.max_budget_usd),
            ),
            ("mcp_config", "--mcp-config", self.mcp_config),
        ]
        out += [(field, f"{flag}={value}") for field, flag, value in valued if value is not None]
        if self.strict_mcp_config:
            out.append(("strict_mcp_config", "--strict-mcp-config"))
        for field, flag, value in (
            ("permission_mode", "--permission-mode", self.permission_mode),
            ("json_schema", "--json-schema", self.json_schema),
            ("session_id", "--session-id", self.session_id),
            ("resume", "--resume", self.resume),
        ):
            if value is not None:
                out.append((field, f"{flag}={value}"))
        if self.fork_session:
            out.append(("fork_session", "--fork-session"))
        out += [(f"extra_args[{i}]", arg) for i, arg in enumerate(self.extra_args)]
        return out

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
                the prompt exceeds :data:`PROMPT_STDIN_THRESHOLD`.

        Returns:
            The argv list, ready for ``execve``; no shell quoting is involved.
        """
        _text("claude_path", claude_path)
        if prompt_on_stdin is None:
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
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
