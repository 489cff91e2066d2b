"""A local stand-in for the Anthropic Messages API, to run Claude Code against in tests.

:class:`FakeMessagesAPI` is a small threaded HTTP server on ``127.0.0.1`` (it refuses any
other address). Point a CLI at it with ``ANTHROPIC_BASE_URL=api.url`` and script what the model
says, turn by turn, with :class:`Reply`:

* ``Reply.text("...")``: one text block, ``stop_reason: end_turn``;
* ``Reply.tool_use("Bash", {"command": "echo hi"})``: a ``tool_use`` block (optionally after
  some text), ``stop_reason: tool_use``; the CLI runs the tool and sends the result back in
  its next request;
* ``Reply.error(529)``: an HTTP error with the API's JSON error body (``overloaded_error``;
  401 ``authentication_error``, 429 ``rate_limit_error`` with ``retry-after``...).

Streaming requests (``"stream": true``, which is how Claude Code asks) get the API's
server-sent events, one chunk per event: ``message_start`` (input usage), per block
``content_block_start``, ``content_block_delta`` (``text_delta`` or ``input_json_delta``) and
``content_block_stop``, then ``message_delta`` (stop reason, output usage) and
``message_stop``. Other requests get the whole message as JSON. ``/v1/messages/count_tokens``
and ``GET /v1/models`` are answered; any other path gets a 404 error body. Every request is
recorded in :attr:`FakeMessagesAPI.requests`, with credential headers redacted.

Replies are used in order, one per ``/v1/messages`` request; when the script runs out, the
``default`` reply answers (a short text unless set), so a retried request meets the same error
when the default is an error.

Example:
    >>> import json, urllib.request
    >>> with FakeMessagesAPI() as api:
    ...     api.script(Reply.text("Hello!"))
    ...     body = json.dumps({"model": "m", "max_tokens": 10, "messages": []}).encode()
    ...     request = urllib.request.Request(api.url + "/v1/messages", body, method="POST")
    ...     with urllib.request.urlopen(request) as response:
    ...         json.load(response)["content"]
    [{'type': 'text', 'text': 'Hello!'}]
"""

from __future__ import annotations

import ipaddress
import json
import threading
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["FakeMessagesAPI", "RecordedRequest", "Reply", "Usage"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    401: "invalid x-api-key",
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "proxy-authorization", "cookie"})
_MODELS = ("claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5-20251001")


@attrs.frozen
class Usage:
    """The token counts one reply reports (the API's ``usage`` object)."""

    input_tokens: int = 12
    output_tokens: int = 6
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def start(self) -> dict[str, Any]:
        """The usage of ``message_start``: input counts, one output token so far."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": 1,
            "service_tier": "standard",
        }

    def final(self) -> dict[str, Any]:
        """The whole usage, as a non-streamed message carries it."""
        return {**self.start(), "output_tokens": self.output_tokens}


@attrs.frozen
class Reply:
    """What the fake model answers to one ``/v1/messages`` request.

    Build it with the class methods.
    """

    content: tuple[dict[str, Any], ...] = ()
    stop_reason: str = "end_turn"
    usage: Usage = Usage()
    status: int = 200
    error_type: str = ""
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def text(cls, text: str, *, usage: Usage | None = None) -> Reply:
        """A text answer that ends the turn."""
        return cls(({"type": "text", "text": text},), usage=usage or Usage())

    @classmethod
    def tool_use(
        cls,
        name: str,
        tool_input: Mapping[str, Any],
        *,
        text: str | None = None,
        tool_id: str | None = None,
        usage: Usage | None = None,
    ) -> Reply:
        """A call of tool ``name`` with ``tool_input`` (after ``text``, when given)."""
        block = {
            "type": "tool_use",
            "id": tool_id or "toolu_01" + uuid.uuid4().hex[:22],
            "name": name,
            "input": dict(tool_input),
        }
        blocks = ({"type": "text", "text": text},) if text else ()
        return cls((*blocks, block), stop_reason="tool_use", usage=usage or Usage())

    @classmethod
    def error(
        cls,
        status: int,
        *,
        error_type: str | None = None,
        message: str | None = None,
        retry_after: int | None = None,
    ) -> Reply:
        """An HTTP error with the API's body ``{"type": "error", "error": {...}}``."""
        headers = () if retry_after is None else (("retry-after", str(retry_after)),)
        return cls(
            status=status,
            error_type=error_type or _ERROR_TYPES.get(status, "api_error"),
            message=message or _ERROR_MESSAGES.get(status, "Error"),
            headers=headers,
        )

    def message_json(self, model: str) -> dict[str, Any]:
        """The complete message (a non-streamed answer)."""
        return {
            "id": "msg_01" + uuid.uuid4().hex[:22],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [dict(block) for block in self.content],
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": self.usage.final(),
        }

    def events(self, model: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """The server-sent events of this answer, in the API's order."""
        start = {**self.message_json(model), "content": [], "stop_reason": None}
        start["usage"] = self.usage.start()
        yield "message_start", {"type": "message_start", "message": start}
        yield "ping", {"type": "ping"}
        for index, block in enumerate(self.content):
            yield from _block_events(index, block)
        delta = {"stop_reason": self.stop_reason, "stop_sequence": None}
        usage = {"output_tokens": self.usage.output_tokens}
        yield "message_delta", {"type": "message_delta", "delta": delta, "usage": usage}
        yield "message_stop", {"type": "message_stop"}


def _block_events(index: int, block: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    if block["type"] == "tool_use":
        empty = {**block, "input": {}}
        text = json.dumps(block["input"])
        # Tool input arrives as JSON text in pieces, as the API sends it.
        pieces = [text[i : i + 16] for i in range(0, len(text), 16)]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    else:
        empty = {**block, "text": ""}
        words = str(block["text"]).split(" ")
        parts = [w if i == 0 else " " + w for i, w in enumerate(words)]
        deltas = [{"type": "text_delta", "text": p} for p in parts]
    yield (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": empty},
    )
    for delta in deltas:
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


@attrs.frozen
class RecordedRequest:
    """One request the stand-in received (credential headers redacted)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The ``messages`` of a Messages API request (empty for other requests)."""
        found = self.body.get("messages") if isinstance(self.body, dict) else None
        return list(found) if isinstance(found, list) else []


class FakeMessagesAPI:
    """The Messages API stand-in (see the module docstring).

    Args:
        host: A loopback address to listen on.
        port: The port (0: any free one; see :attr:`url`).
        default: The reply once the script is used up.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, default: Reply | None = None):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"host {host!r}: the stand-in listens on loopback addresses only")
        self.default = default or Reply.text("Hello from the Messages API stand-in.")
        self.requests: list[RecordedRequest] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, for ``ANTHROPIC_BASE_URL``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeMessagesAPI:
        """Serve in a daemon thread; returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                # A short poll: close() waits up to one interval for the serving loop.
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.02},
                name="fake-messages-api",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeMessagesAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def script(self, *replies: Reply) -> None:
        """Queue replies for the next ``/v1/messages`` requests, in order."""
        with self._lock:
            self._script.extend(replies)

    def reset(self, default: Reply | None = None) -> None:
        """Forget the script and the recorded requests; set a new default reply."""
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.default = default or Reply.text("Hello from the Messages API stand-in.")

    @property
    def message_requests(self) -> list[RecordedRequest]:
        """The ``POST /v1/messages`` requests (token counts excluded), in order."""
        with self._lock:
            return [r for r in self.requests if _is_messages(r)]

    def _record(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self.requests.append(request)
            if not _is_messages(request):
                return None
            return self._script.popleft() if self._script else self.default


def _is_messages(request: RecordedRequest) -> bool:
    return request.method == "POST" and request.path.split("?")[0] == "/v1/messages"


def _handler(api: FakeMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        owner = api

    return Handler


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FakeMessagesAPI

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded instead."""

    def do_GET(self) -> None:
        self._serve(None)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._serve(body)

    def _serve(self, body: Any) -> None:
        headers = {
            k.lower(): ("<redacted>" if k.lower() in _SECRET_HEADERS else v)
            for k, v in self.headers.items()
        }
        request = RecordedRequest(self.command, self.path, headers, body)
        reply = self.owner._record(request)
        path = self.path.split("?")[0]
        if reply is not None:
            self._reply(reply, body if isinstance(body, dict) else {})
        elif self.command == "POST" and path == "/v1/messages/count_tokens":
            self._json(200, {"input_tokens": _count(body)})
        elif self.command == "GET" and path == "/v1/models":
            models = [{"type": "model", "id": m, "display_name": m} for m in _MODELS]
            self._json(200, {"data": models, "has_more": False})
        else:
            self._json(404, _error_body("not_found_error", f"no route {self.command} {path}"))

    def _reply(self, reply: Reply, body: Mapping[str, Any]) -> None:
        if reply.status != 200:
            error = _error_body(reply.error_type, reply.message)
            self._json(reply.status, error, extra=reply.headers)
            return
        model = str(body.get("model") or _MODELS[0])
        if not body.get("stream"):
            self._json(200, reply.message_json(model))
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", _request_id())
        self.end_headers()
        for name, data in reply.events(model):
            self._chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, value: object, *, extra: tuple[tuple[str, str], ...] = ()) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", _request_id())
        for name, value_ in extra:
            self.send_header(name, value_)
        self.end_headers()
        self.wfile.write(data)


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": _request_id(),
    }


def _request_id() -> str:
    return "req_011C" + uuid.uuid4().hex[:20]


def _count(body: object) -> int:
    # A rough count (4 characters a token) is all a caller of count_tokens needs here.
    return max(1, len(json.dumps(body)) // 4)
