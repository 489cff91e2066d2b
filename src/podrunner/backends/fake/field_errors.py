"""How the fake reports what it refuses: 422 field causes and 400 decoding errors.

Shape errors (a string where a list belongs, a bad quantity) fail JSON decoding on a real
server, so they are 400 ``BadRequest``; rule violations are 422 ``Invalid`` with one
:class:`~podrunner.errors.StatusCause` per field, in the server's wording
(``metadata.name: Invalid value: "X": a lowercase RFC 1123 ...``).
"""

from __future__ import annotations

import json
import re

from podrunner.backends.base import API_VERSIONS, PLURALS
from podrunner.errors import BadRequest, Invalid, StatusCause

__all__ = ["Errors", "decode_error", "expect", "qualified", "resource", "string_map"]


def _group(kind: str) -> str:
    version = API_VERSIONS.get(kind, "v1")
    return version.split("/")[0] if "/" in version else ""


def qualified(kind: str) -> str:
    """The kind as the server names it in a 422 (``NetworkPolicy.networking.k8s.io``)."""
    group = _group(kind)
    return f"{kind}.{group}" if group else kind


def resource(kind: str) -> str:
    """The resource as the server names it in a 404 or 409 (``networkpolicies.networking.k8s.io``).

    Core kinds have no group: ``pods``.
    """
    group = _group(kind)
    return f"{PLURALS[kind]}.{group}" if group else PLURALS[kind]


_GO_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
}


def _json_type(value: object) -> str:
    return "null" if value is None else _GO_TYPES.get(type(value), "value")


def _fmt(value: object) -> str:
    if isinstance(value, list):
        return json.dumps(value, separators=(",", ":"))  # as Go prints a slice in a cause
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_MAX_LEN_RE = re.compile(r"(must be no more than \d+) characters$")


class Errors:
    """Collects field errors and raises them as one 422, the way ``field.ErrorList`` does."""

    __slots__ = ("causes", "kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        self.causes: list[StatusCause] = []

    def invalid(self, field: str, value: object, detail: str, *, as_is: bool = False) -> None:
        """Record ``Invalid value``: one cause per message of a joined ``"; "`` detail.

        The server's validators return a list of messages and their callers append one
        ``field.Invalid`` per message; podrunner's checks join that list with ``"; "``.
        ``as_is`` keeps a "no more than N characters" message as it is, for the checks that
        count characters rather than bytes (a port name's).
        """
        shown = _fmt(value)
        for message in detail.split("; "):
            if not as_is:
                message = _MAX_LEN_RE.sub(r"\1 bytes", message)  # MaxLenError counts bytes
            self.causes.append(
                StatusCause(field, "FieldValueInvalid", f"Invalid value: {shown}: {message}")
            )

    def required(self, field: str, detail: str = "") -> None:
        """Record ``Required value``."""
        message = f"Required value: {detail}" if detail else "Required value"
        self.causes.append(StatusCause(field, "FieldValueRequired", message))

    def not_found(self, field: str, value: object) -> None:
        """Record ``Not found``."""
        self.causes.append(StatusCause(field, "FieldValueNotFound", f"Not found: {_fmt(value)}"))

    def not_supported(
        self, field: str, value: object, supported: tuple[str, ...], *, ordered: bool = False
    ) -> None:
        """Record ``Unsupported value`` (the values sorted, unless ``ordered`` keeps them)."""
        allowed = ", ".join(_fmt(s) for s in (supported if ordered else sorted(supported)))
        self.causes.append(
            StatusCause(
                field,
                "FieldValueNotSupported",
                f"Unsupported value: {_fmt(value)}: supported values: {allowed}",
            )
        )

    def duplicate(self, field: str, value: object) -> None:
        """Record ``Duplicate value``."""
        self.causes.append(
            StatusCause(field, "FieldValueDuplicate", f"Duplicate value: {_fmt(value)}")
        )

    def too_long(self, field: str, limit: int) -> None:
        """Record ``Too long``."""
        self.causes.append(
            StatusCause(field, "FieldValueTooLong", f"Too long: may not be more than {limit} bytes")
        )

    def forbidden(self, field: str, detail: str) -> None:
        """Record ``Forbidden``."""
        self.causes.append(StatusCause(field, "FieldValueForbidden", f"Forbidden: {detail}"))

    def raise_if_any(self) -> None:
        """Raise :class:`Invalid` if anything was recorded."""
        if not self.causes:
            return
        parts = [f"{c.field}: {c.message}" for c in self.causes]
        body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        raise Invalid(
            f'{qualified(self.kind)} "{self.name}" is invalid: {body}',
            kind=self.kind,
            name=self.name,
            causes=self.causes,
        )


def decode_error(kind: str, detail: str) -> BadRequest:
    """The 400 a server answers when the body does not decode into the kind's Go struct."""
    return BadRequest(f'{kind} in version "v1" cannot be handled as a {kind}: {detail}')


def expect(kind: str, value: object, want: type, path: str) -> None:
    """Raise the decoding error of ``value`` at ``path`` unless it is a JSON ``want``."""
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        go = {dict: "object", list: "array", str: "string", int: "int", bool: "bool"}[want]
        raise decode_error(
            kind,
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {path} of type {go}",
        )


def string_map(kind: str, value: object, path: str) -> dict[str, str]:
    """Check that ``value`` is a map of strings (400 otherwise) and return it."""
    expect(kind, value, dict, path)
    assert isinstance(value, dict)
    for item in value.values():
        expect(kind, item, str, path)
    return value
