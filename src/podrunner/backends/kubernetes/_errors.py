"""Error conversion for the Kubernetes backend, in one place.

A client, urllib3 or socket error becomes a podrunner error here (through
:func:`~podrunner.errors.error_for_status`), with the original kept as ``__cause__``.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import kubernetes.client
import kubernetes.stream
import kubernetes.stream.ws_client
import urllib3
import urllib3.exceptions

from podrunner.errors import (
    BackendError,
    BackendUnavailable,
    StatusCause,
    error_for_status,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


# Exceptions that mean "no (complete) answer": the peer is unreachable or the stream broke.
NO_ANSWER: tuple[type[BaseException], ...] = (
    urllib3.exceptions.MaxRetryError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.HTTPError,
    OSError,
)


def parse_retry_after(value: object) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(str(value).strip()))
    except ValueError:
        # An HTTP-date Retry-After is legal but the API server only sends seconds.
        return None


def status_from_body(body: object) -> dict[str, Any] | None:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body.strip():
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("kind") == "Status" else None


def error_from_status_body(
    code: int,
    status: Mapping[str, Any] | None,
    *,
    fallback_message: str = "",
    retry_after: float | None = None,
    kind: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
) -> BackendError:
    """Build the podrunner error for an HTTP code and (optional) ``Status`` body."""
    status = status or {}
    details = status.get("details") or {}
    causes = [
        StatusCause(str(c.get("field", "")), str(c.get("reason", "")), str(c.get("message", "")))
        for c in details.get("causes") or ()
        if isinstance(c, dict)
    ]
    return error_for_status(
        code,
        str(status.get("reason") or ""),
        str(status.get("message") or fallback_message),
        retry_after=retry_after,
        kind=kind,
        namespace=namespace,
        name=name or details.get("name") or None,
        causes=causes,
    )


def convert_error(
    exc: BaseException,
    *,
    kind: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
) -> BackendError | None:
    """Return the podrunner error for a client, websocket, urllib3 or socket exception.

    Returns:
        The error, or ``None`` when ``exc`` is not something a backend call converts.
    """
    where: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name}
    if isinstance(exc, kubernetes.client.ApiException):
        code = int(exc.status or 0)
        if code == 0:
            # kubernetes.stream wraps a failed websocket handshake as status 0 and keeps the
            # real answer (404 pod not found, 403...) only on the implicit context.
            inner = exc.__cause__ or exc.__context__
            status_code = getattr(inner, "status_code", None)
            if isinstance(status_code, int) and status_code:
                return error_from_status_body(
                    status_code,
                    status_from_body(getattr(inner, "resp_body", None)),
                    fallback_message=str(inner),
                    **where,
                )
            return BackendUnavailable(str(exc.reason or exc).strip(), **where)
        headers = exc.headers or {}
        return error_from_status_body(
            code,
            status_from_body(exc.body),
            fallback_message=str(exc.reason or ""),
            retry_after=parse_retry_after(headers.get("Retry-After")),
            **where,
        )
    if isinstance(exc, NO_ANSWER):
        return BackendUnavailable(f"{type(exc).__name__}: {exc}", **where)
    return None


@contextlib.contextmanager
def translate_errors(
    kind: str | None = None, namespace: str | None = None, name: str | None = None
) -> Iterator[None]:
    """Convert whatever the client raises inside the block into a podrunner error."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        error = convert_error(exc, kind=kind, namespace=namespace, name=name)
        if error is None:
            raise
        raise error from exc


def api_exception(resp: Any) -> kubernetes.client.ApiException:
    """Turn a non-2xx raw response into the client's own exception (read and released)."""
    try:
        body = resp.data
    finally:
        resp.release_conn()
    exc = kubernetes.client.ApiException(status=resp.status, reason=resp.reason)
    exc.body = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    exc.headers = resp.headers
    return exc
