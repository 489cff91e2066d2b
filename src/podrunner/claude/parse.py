"""Parse what Claude Code printed into a :class:`~podrunner.claude.ClaudeResult`.

The CLI's two machine formats (Claude Code's headless and Agent SDK documentation):

* ``--output-format json``: one object at the end, ``{"type": "result", "subtype": ...,
  "is_error": ..., "result": ..., "session_id": ..., "total_cost_usd": ..., "usage": {...},
  "modelUsage": {...}, "num_turns": ..., "duration_ms": ..., "duration_api_ms": ...,
  "permission_denials": [...], "structured_output": ...}``. Error subtypes
  (``error_max_turns``, ``error_max_budget_usd``, ``error_during_execution``,
  ``error_max_structured_output_retries``) carry an ``errors`` list instead of ``result``. A
  failed API call comes back as subtype ``success`` with ``is_error: true`` and the message in
  ``result`` (``api_error_status`` holds the HTTP status when the CLI knows it,
  ``api_error_type`` the API's error type, and ``api_error: "connection_failed"`` marks an
  unreachable API). Keys come in any order: Claude Code 2.1.332 writes ``"type": "result"``
  near the end of the object. With ``--verbose`` the whole run is one JSON array of events.
* ``--output-format stream-json --verbose``: one JSON event per line: a ``system``/``init``
  event (``session_id``, ``model``, ``tools``, ``mcp_servers``, ``permissionMode``...),
  ``assistant`` and ``user`` events wrapping API messages (text, ``tool_use`` and
  ``tool_result`` blocks; an assistant event may carry ``error``, e.g.
  ``authentication_failed``), and the same ``result`` object last.

Real output is messier than that, and every case below yields a result rather than an
exception: stderr and warnings interleaved with the JSON (a pod log merges both streams), a
result object glued to the end of a warning line, a missing result line (the CLI was killed),
a last line cut in the middle (truncated log), and UTF-8 characters split across chunks
(:class:`StreamParser`). Failures are then classified into the typed errors of
:mod:`podrunner.claude.errors`, keeping the CLI's own message.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from podrunner.claude.errors import (
    ClaudeAPIError,
    ClaudeAuthError,
    ClaudeBudgetExceeded,
    ClaudeCLINotFound,
    ClaudeError,
    ClaudeExecutionError,
    ClaudeMaxTurns,
    ClaudeOutputError,
)
from podrunner.claude.result import ClaudeResult, Usage

__all__ = [
    "StreamParser",
    "classify",
    "extract_structured",
    "parse_output",
    "split_lines",
]

EXIT_NOT_FOUND = 127
"""The shell's exit code for "command not found"."""

_RESULT_TYPE = re.compile(r'"type"\s*:\s*"result"')
# Where to look for a result object inside noise: each "{" up to this many (a hostile line of
# braces must not cost quadratic time).
_MAX_OBJECT_STARTS = 64
_FENCE = re.compile(r"```(?:json|JSON)?[ \t]*\r?\n(.*?)```", re.DOTALL)
_API_STATUS = re.compile(r"API Error:\s*(\d{3})")
_AUTH_MARKERS = (
    "invalid api key",
    "failed to authenticate",
    "please run /login",
    "authentication_error",
    "authentication_failed",
    "oauth token has expired",
    "invalid x-api-key",
    "invalid bearer token",
    "not logged in",
    "oauth token has been revoked",
)

# The API's error types that mean the credentials were refused (2.1.332 reports them in the
# result's "api_error_type"; a 403 reads "Failed to authenticate").
_AUTH_ERROR_TYPES = frozenset({"authentication_error", "permission_error"})


# --------------------------------------------------------------------------------------------
# Lines and events


def split_lines(text: str) -> tuple[list[dict[str, Any]], list[str], bool]:
    """Split output into JSON events and other lines.

    Args:
        text: Everything the CLI printed (stdout, possibly with stderr mixed in).

    Returns:
        ``(events, noise, truncated)``: the JSON objects in order, the non-JSON lines, and
        whether the last non-empty line looked like JSON but did not parse (output cut short).
    """
    events: list[dict[str, Any]] = []
    noise: list[str] = []
    truncated = False
    lines = text.splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        obj = _loads_object(stripped) if stripped.startswith("{") else None
        if obj is not None:
            events.append(obj)
            continue
        if stripped.startswith("["):
            # json with --verbose prints every event and the result as one array.
            array = _loads_array(stripped)
            if array is not None:
                events.extend(array)
                continue
        embedded = _embedded_result(stripped)
        if embedded is not None:
            # A warning printed without a newline, then the result object on the same line.
            prefix, obj = embedded
            if prefix.strip():
                noise.append(prefix.strip())
            events.append(obj)
            continue
        if index == last and stripped.startswith("{"):
            truncated = True
        noise.append(line.rstrip())
    return events, noise, truncated


def _loads_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _loads_array(text: str) -> list[dict[str, Any]] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value
    return None


def _result_at(text: str, starts: Iterable[int]) -> tuple[int, dict[str, Any]] | None:
    """The first result object that starts at one of ``starts``.

    Its key order is free: the real CLI writes ``"type": "result"`` near the end.
    """
    decoder = json.JSONDecoder()
    for count, start in enumerate(starts):
        if count >= _MAX_OBJECT_STARTS:
            break
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("type") == "result":
            return start, value
    return None


def _embedded_result(line: str) -> tuple[str, dict[str, Any]] | None:
    if _RESULT_TYPE.search(line) is None:
        return None
    found = _result_at(line, (i for i, char in enumerate(line) if char == "{"))
    if found is None:
        return None
    start, value = found
    return line[:start], value


def _whole_document(text: str) -> dict[str, Any] | None:
    # A pretty-printed result spans several lines: it starts with a "{" that opens a line.
    if _RESULT_TYPE.search(text) is None:
        return None
    starts = (m.end() - 1 for m in re.finditer(r"^[ \t]*\{", text, re.MULTILINE))
    found = _result_at(text, starts)
    return None if found is None else found[1]


class StreamParser:
    r"""Incremental parser for output that arrives in arbitrary byte chunks.

    Chunks may split a line, or a multi-byte UTF-8 character, anywhere; the parser keeps the
    incomplete tail until the next chunk. Invalid bytes become U+FFFD instead of failing.

    Example:
        >>> parser = StreamParser()
        >>> parser.feed(b'{"type":"system","subtype":"init"}\\n{"ty')
        [{'type': 'system', 'subtype': 'init'}]
        >>> parser.feed(b'pe":"result"}\\n')
        [{'type': 'result'}]
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._chunks: list[str] = []

    def feed(self, chunk: bytes | str) -> list[dict[str, Any]]:
        """Add a chunk; return the JSON events completed by it."""
        text = self._decoder.decode(chunk) if isinstance(chunk, bytes) else chunk
        self._chunks.append(text)
        self._pending += text
        *complete, self._pending = self._pending.split("\n")
        return self._events(complete)

    def close(self) -> list[dict[str, Any]]:
        """Flush the decoder and the last, unterminated line; return its events."""
        tail = self._decoder.decode(b"", final=True)
        self._chunks.append(tail)
        rest, self._pending = self._pending + tail, ""
        return self._events([rest]) if rest.strip() else []

    @property
    def text(self) -> str:
        """Everything decoded so far."""
        return "".join(self._chunks)

    @staticmethod
    def _events(lines: Iterable[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for line in lines:
            stripped = line.strip()
            obj = _loads_object(stripped) if stripped.startswith("{") else None
            if obj is not None:
                out.append(obj)
        return out


# --------------------------------------------------------------------------------------------
# Structured output


def extract_structured(result: Mapping[str, Any] | None) -> Any:
    """Return the structured answer of a result object, trying each fallback in order.

    1. ``structured_output`` when present and not null (``--json-schema`` runs);
    2. ``result`` parsed as JSON;
    3. the first fenced ```` ```json ```` block in ``result`` that parses;
    4. the text from the first ``{`` to the last ``}`` of ``result``.

    The fallbacks exist because the CLI has returned schema answers inside ``result`` (as
    text, or fenced) instead of ``structured_output``.

    Args:
        result: The CLI's result object.

    Returns:
        The decoded value, or ``None`` when no step yields JSON.
    """
    if not result:
        return None
    structured = result.get("structured_output")
    if structured is not None:
        return structured
    text = result.get("result")
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        pass
    else:
        if isinstance(value, (dict, list)):
            return value
    for match in _FENCE.finditer(text):
        try:
            return json.loads(match.group(1))
        except ValueError:
            continue
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        try:
            return json.loads(text[start : end + 1])
        except ValueError:
            return None
    return None


# --------------------------------------------------------------------------------------------
# From output to ClaudeResult


@attrs.frozen
class _Limits:
    max_turns: int | None = None
    max_budget_usd: float | None = None
    expect_structured: bool = False


def parse_output(
    output: str | bytes,
    *,
    exit_code: int | None = None,
    stderr: str | bytes = "",
    keep_events: bool = False,
    expect_structured: bool = False,
    max_turns: int | None = None,
    max_budget_usd: float | None = None,
) -> ClaudeResult:
    """Parse the CLI's output and classify how the task ended.

    Never raises for bad output: a missing or broken result becomes
    :class:`~podrunner.claude.ClaudeOutputError` in :attr:`ClaudeResult.error`.

    Args:
        output: What the CLI printed (a pod log, or an exec's stdout). Bytes are decoded as
            UTF-8 with replacement.
        exit_code: The CLI's exit code, when known.
        stderr: A separate standard error (exec), kept as non-JSON lines.
        keep_events: Keep every JSON event in :attr:`ClaudeResult.events` (stream-json).
        expect_structured: The task had a JSON schema, so a missing structured answer is an
            error.
        max_turns: The task's turn limit, reported in :class:`ClaudeMaxTurns`.
        max_budget_usd: The task's budget, reported in :class:`ClaudeBudgetExceeded`.

    Returns:
        The result; ``result.error`` is ``None`` when the task succeeded.
    """
    text = _decode(output)
    events, noise, truncated = split_lines(text)
    err_text = _decode(stderr)
    if err_text:
        noise += [line for line in err_text.splitlines() if line.strip()]
    result_obj = next((e for e in reversed(events) if e.get("type") == "result"), None)
    if result_obj is None:
        result_obj = _whole_document(text)
    init = next(
        (e for e in events if e.get("type") == "system" and e.get("subtype") == "init"), None
    )
    result = _build(result_obj, init, events, noise, truncated, exit_code, keep_events)
    limits = _Limits(max_turns, max_budget_usd, expect_structured)
    error = classify(result, events, limits=limits)
    if error is None:
        return result
    final = attrs.evolve(result, error=error)
    error.result = final
    return final


def _decode(data: str | bytes) -> str:
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def _build(
    result_obj: Mapping[str, Any] | None,
    init: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]],
    noise: Sequence[str],
    truncated: bool,
    exit_code: int | None,
    keep_events: bool,
) -> ClaudeResult:
    obj: Mapping[str, Any] = result_obj or {}
    model_usage = obj.get("modelUsage")
    if not isinstance(model_usage, Mapping):
        model_usage = {}
    model = next(iter(model_usage), None)
    if model is None and init is not None and isinstance(init.get("model"), str):
        model = init["model"]
    if model is None:
        model = _last_assistant_model(events)
    text = obj.get("result")
    if not isinstance(text, str):
        # No result line: the last thing the assistant said is the best answer there is.
        text = _last_assistant_text(events) if result_obj is None else ""
    session_id = obj.get("session_id")
    if not isinstance(session_id, str):
        session_id = next(
            (e["session_id"] for e in events if isinstance(e.get("session_id"), str)), None
        )
    denials = obj.get("permission_denials")
    return ClaudeResult(
        text=text,
        # An error's text is the CLI's message, never an answer to decode.
        structured=extract_structured(obj) if result_obj is not None and _succeeded(obj) else None,
        cost_usd=_float(obj.get("total_cost_usd")),
        session_id=session_id,
        model=model,
        usage=Usage.from_json(obj.get("usage")),
        model_usage=dict(model_usage),
        num_turns=_opt_int(obj.get("num_turns")),
        duration_ms=_opt_int(obj.get("duration_ms")),
        duration_api_ms=_opt_int(obj.get("duration_api_ms")),
        is_error=bool(obj.get("is_error")) if result_obj is not None else True,
        subtype=obj.get("subtype") if isinstance(obj.get("subtype"), str) else None,
        permission_denials=tuple(denials) if isinstance(denials, list) else (),
        events=tuple(events) if keep_events else (),
        stderr=tuple(noise),
        truncated=truncated,
        exit_code=exit_code,
        raw=dict(result_obj) if result_obj is not None else None,
    )


def _succeeded(obj: Mapping[str, Any]) -> bool:
    return not obj.get("is_error") and not str(obj.get("subtype") or "").startswith("error")


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _opt_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _assistant_messages(events: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for event in reversed(events):
        if event.get("type") == "assistant" and isinstance(event.get("message"), Mapping):
            yield event["message"]


def _last_assistant_text(events: Sequence[Mapping[str, Any]]) -> str:
    for message in _assistant_messages(events):
        content = message.get("content")
        if isinstance(content, list):
            parts = [
                b["text"]
                for b in content
                if isinstance(b, Mapping)
                and b.get("type") == "text"
                and isinstance(b.get("text"), str)
            ]
            if parts:
                return "".join(parts)
    return ""


def _last_assistant_model(events: Sequence[Mapping[str, Any]]) -> str | None:
    for message in _assistant_messages(events):
        if isinstance(message.get("model"), str):
            return str(message["model"])
    return None


# --------------------------------------------------------------------------------------------
# Classification


def classify(
    result: ClaudeResult,
    events: Sequence[Mapping[str, Any]] = (),
    *,
    limits: _Limits | None = None,
) -> ClaudeError | None:
    """Decide how a task ended: ``None`` for success, else the typed error.

    Args:
        result: The parsed result (its ``raw`` result object, exit code and stderr).
        events: All JSON events (assistant errors such as ``authentication_failed``).
        limits: The task's limits, quoted in the errors.

    Returns:
        The error, carrying the CLI's own message; ``None`` when the task succeeded.
    """
    limits = limits or _Limits()
    kw: dict[str, Any] = {"result": result, "exit_code": result.exit_code}
    if result.raw is None:
        return _without_result(result, events, kw)
    return _from_result(result, result.raw, events, limits, kw)


def _without_result(
    result: ClaudeResult, events: Sequence[Mapping[str, Any]], kw: dict[str, Any]
) -> ClaudeError:
    """The error of a run that printed no result line."""
    code = result.exit_code
    tail = "\n".join(result.stderr[-20:])
    said = _assistant_error_text(events) or result.text or tail
    if code == EXIT_NOT_FOUND:
        return ClaudeCLINotFound(
            "the claude executable was not found in the image (exit 127)",
            cli_message=tail,
            **kw,
        )
    if _is_auth(said) or _is_auth(tail) or _assistant_error(events) == "authentication_failed":
        return ClaudeAuthError("Claude Code could not authenticate", cli_message=said, **kw)
    if code not in (None, 0):
        return ClaudeExecutionError(
            f"claude exited with code {code} without a result", cli_message=said, **kw
        )
    why = "the output was cut short" if result.truncated else "the output had no result line"
    return ClaudeOutputError(f"no result from claude: {why}", cli_message=said, **kw)


def _from_result(
    result: ClaudeResult,
    raw: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    limits: _Limits,
    kw: dict[str, Any],
) -> ClaudeError | None:
    """The error (or ``None``) of a run that printed its result line."""
    tail = "\n".join(result.stderr[-20:])
    subtype = result.subtype or ""
    message = _cli_message(raw) or tail
    if subtype.startswith("error"):
        return _error_subtype(result, subtype, message, limits, kw)
    if result.is_error:
        status = _opt_int(raw.get("api_error_status"))
        if status is None:
            found = _API_STATUS.search(message)
            status = int(found.group(1)) if found else None
        if (
            status == 401
            or raw.get("api_error_type") in _AUTH_ERROR_TYPES
            or _is_auth(message)
            or _assistant_error(events) == "authentication_failed"
        ):
            return ClaudeAuthError("Claude Code could not authenticate", cli_message=message, **kw)
        where = f" ({status})" if status is not None else ""
        return ClaudeAPIError(
            f"the Anthropic API returned an error{where}", status=status, cli_message=message, **kw
        )
    if limits.expect_structured and result.structured is None:
        return ClaudeOutputError(
            "a JSON schema was given but the answer holds no JSON (with max_turns, allow at "
            "least 2 turns: the structured answer takes one)",
            cli_message=result.text,
            **kw,
        )
    code = result.exit_code
    if code not in (None, 0):
        return ClaudeExecutionError(
            f"claude reported success but exited with code {code}", cli_message=tail, **kw
        )
    return None


def _error_subtype(
    result: ClaudeResult, subtype: str, message: str, limits: _Limits, kw: dict[str, Any]
) -> ClaudeError:
    """The error a result line's ``error_*`` subtype names."""
    if subtype == "error_max_budget_usd":
        return ClaudeBudgetExceeded(
            _budget_text(result.cost_usd, limits.max_budget_usd),
            spent_usd=result.cost_usd,
            limit_usd=limits.max_budget_usd,
            cli_message=message,
            **kw,
        )
    if subtype == "error_max_turns":
        limit = f" of {limits.max_turns}" if limits.max_turns is not None else ""
        return ClaudeMaxTurns(
            f"the task reached its turn limit{limit} ({result.num_turns} turns)",
            turns=result.num_turns,
            limit=limits.max_turns,
            cli_message=message,
            **kw,
        )
    if subtype == "error_max_structured_output_retries":
        return ClaudeOutputError(
            "claude could not produce output matching the JSON schema", cli_message=message, **kw
        )
    return ClaudeExecutionError(f"claude failed ({subtype})", cli_message=message, **kw)


def _cli_message(raw: Mapping[str, Any]) -> str:
    errors = raw.get("errors")
    parts: list[str] = []
    if isinstance(errors, list):
        parts += [e if isinstance(e, str) else json.dumps(e) for e in errors]
    text = raw.get("result")
    if isinstance(text, str) and text.strip():
        parts.append(text)
    return "\n".join(parts)


def _assistant_error(events: Sequence[Mapping[str, Any]]) -> str | None:
    for event in reversed(events):
        if event.get("type") == "assistant" and isinstance(event.get("error"), str):
            return str(event["error"])
    return None


def _assistant_error_text(events: Sequence[Mapping[str, Any]]) -> str:
    if _assistant_error(events) is None:
        return ""
    return _last_assistant_text(events)


def _is_auth(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in _AUTH_MARKERS)


def _budget_text(spent: float | None, limit: float | None) -> str:
    text = "the task reached its budget"
    if limit is not None:
        text += f" of ${limit:g}"
    if spent is not None:
        text += f" (spent ${spent:.4f})"
    return text
