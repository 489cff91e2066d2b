"""Checks shared by the Claude layer's value types: text, paths, lists, tool rules, JSON.

Each check returns the value it accepts (normalised) or raises :class:`~podrunner.SpecError`
naming the field, the value (``REDACTED`` when it may be a secret) and the rule.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from podrunner.errors import REDACTED, SpecError, kind_of

__all__ = [
    "MAX_JSON_DEPTH",
    "absolute_path",
    "choice",
    "flag",
    "json_text",
    "sequence",
    "split_tool_rules",
    "text",
    "tool_rules",
]

MAX_JSON_DEPTH = 64
"""How deeply a JSON option (``json_schema``, ``mcp_config``, ``settings``...) may nest."""


def text(field: str, value: object, *, allow_empty: bool = False, secret: bool = False) -> str:
    """A string that ``execve`` can carry: no NUL, valid Unicode, not blank unless allowed."""
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


def flag(field: str, value: object) -> bool:
    """A real ``bool`` (``1`` or ``"yes"`` are refused: they usually mean a mix-up)."""
    if not isinstance(value, bool):
        raise SpecError(field, value, f"must be True or False, not {kind_of(value)}")
    return value


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    """One of ``allowed`` (checked as a string first: ``{}`` cannot be looked up in a set)."""
    options = tuple(allowed)
    if not isinstance(value, str) or value not in options:
        raise SpecError(field, value, f"must be one of {', '.join(options)}")
    return value


def sequence(field: str, value: object, what: str) -> tuple[object, ...]:
    """A list-like value as a tuple: ``None`` is empty, one string is one item."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        return tuple(value)
    raise SpecError(field, value, f"must be a sequence of {what}, not {kind_of(value)}")


def absolute_path(field: str, value: object) -> str:
    """An absolute path in the container (a relative one would depend on the CLI's cwd)."""
    path = text(field, value)
    if not path.startswith("/"):
        raise SpecError(field, path, "must be an absolute path in the container")
    return path


# -- tool rules ---------------------------------------------------------------------------------

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


def tool_rules(field: str, value: object) -> tuple[str, ...]:
    """Permission rules, one per entry (``Read``, ``Bash(git diff:*)``)."""
    rules: list[str] = []
    for i, item in enumerate(sequence(field, value, "tool rules")):
        rule = text(f"{field}[{i}]", item)
        if not _TOOL_RULE_RE.fullmatch(rule):
            parts = split_tool_rules(rule)
            if len(parts) > 1:
                # Claude Code would read several rules here: "Bash(git diff:*),Write" allows
                # Write too. One entry, one rule, so what is allowed is what is listed.
                reason = f"holds {len(parts)} rules ({', '.join(parts)}); give one rule per entry"
            else:
                reason = (
                    "must be one tool rule: a tool name, optionally followed by one "
                    "specifier in parentheses without nested parentheses, e.g. "
                    "'Bash(git diff:*)'"
                )
            raise SpecError(f"{field}[{i}]", rule, reason)
        rules.append(rule)
    return tuple(rules)


# -- JSON ---------------------------------------------------------------------------------------


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


def json_text(
    field: str, value: object, *, must_be_object: bool, secret: bool
) -> tuple[str, dict[str, Any] | None]:
    """A JSON object (mapping or text) as compact text, or a file path; and the parsed object.

    A mapping is serialised compact and key-ordered (the argv, and so the pod manifest, is
    stable for one task). A string that starts with ``{`` or ``[`` (or any string, with
    ``must_be_object``) must be a JSON object; any other string is returned as is (a path)
    with ``None`` for the object.
    """

    # A config may carry tokens (server env, headers): its values are never echoed then.
    def fail(path: str, shown: object, rule: str) -> SpecError:
        return SpecError(f"{field}{path}", REDACTED if secret else shown, rule)

    if isinstance(value, Mapping):
        problem = _json_problem(value)
        if problem is not None:
            raise fail(*problem)
        rendered = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return rendered, json.loads(rendered)
    raw = text(field, value, secret=secret)
    if not must_be_object and not raw.lstrip().startswith(("{", "[")):
        return raw, None
    try:
        parsed = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise fail("", f"<{len(raw)} characters>", "nests too deeply") from None
    except ValueError as exc:
        raise fail("", raw[:200], f"must be a JSON object: {exc}") from None
    if not isinstance(parsed, dict):
        raise fail("", raw[:200], f"must be a JSON object, not {kind_of(parsed)}")
    problem = _json_problem(parsed)
    if problem is not None:
        raise fail(*problem)
    return raw, parsed
