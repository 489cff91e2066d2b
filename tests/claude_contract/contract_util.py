"""Helpers of the Claude contract tier: the CLI under test, and what it sent to the API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from podrunner.testing.messages_api import RecordedRequest


def texts(request: RecordedRequest, role: str | None = None) -> list[str]:
    """Every text of the request's messages (text blocks and plain string contents), in order."""
    found: list[str] = []
    for message in request.messages:
        if role is not None and message.get("role") != role:
            continue
        content = message.get("content")
        if isinstance(content, str):
            found.append(content)
            continue
        for block in content or []:
            if isinstance(block, dict) and block.get("type") == "text":
                found.append(str(block.get("text", "")))
    return found


def tool_results(request: RecordedRequest) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of the request's last message."""
    if not request.messages:
        return []
    content = request.messages[-1].get("content")
    return [b for b in content or [] if isinstance(b, dict) and b.get("type") == "tool_result"]


def result_text(block: dict[str, Any]) -> str:
    """A tool result's content as text (a string, or a list of text blocks)."""
    content = block.get("content")
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def system_text(request: RecordedRequest) -> str:
    """The request's system prompt, its blocks joined."""
    system = request.body.get("system") if isinstance(request.body, dict) else None
    if isinstance(system, str):
        return system
    return "\n".join(str(b.get("text", "")) for b in system or [] if isinstance(b, dict))


def tool_names(request: RecordedRequest) -> list[str]:
    """The names of the tools the request offers the model."""
    tools = request.body.get("tools") if isinstance(request.body, dict) else None
    return [str(t.get("name")) for t in tools or [] if isinstance(t, dict)]


@attrs.frozen
class Cli:
    """One Claude Code CLI under test."""

    name: str
    path: str
    version: str

    @property
    def real(self) -> bool:
        return self.name == "real"


def loopback_only() -> tuple[bool, str]:
    """Whether this process's network namespace has no interface but ``lo`` and no route."""
    with open("/proc/self/net/dev", encoding="ascii") as fh:
        names = {line.split(":", 1)[0].strip() for line in fh.readlines()[2:]}
    with open("/proc/self/net/route", encoding="ascii") as fh:
        routes = [line for line in fh.readlines()[1:] if line.strip()]
    ok = names <= {"lo"} and not routes
    return ok, f"interfaces {sorted(names)}, {len(routes)} IPv4 routes"
