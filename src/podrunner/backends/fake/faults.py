"""Fault injection by rule: API errors, connection errors, latency and broken streams."""

from __future__ import annotations

import fnmatch

from podrunner.backends.base import API_VERSIONS, PLURALS
from podrunner.errors import BackendError, BackendUnavailable, error_for_status

__all__ = ["FaultRule"]

_DEFAULT_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class FaultRule:
    """One rule registered with :meth:`FakeCluster.fault`.

    A call matches when every given filter matches (``verb``, ``kind``, ``namespace``
    exactly; ``name`` as a glob). Among matching calls the rule applies to every call, to the
    ``nth`` only (1-based), to the first ``times``, or to ``times`` calls from the ``nth`` on.
    """

    def __init__(
        self,
        *,
        verb: str | None = None,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        status: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        connection_error: bool = False,
        latency: float = 0.0,
        times: int | None = None,
        nth: int | None = None,
        cut_watch_after: int | None = None,
        cut_log_after_lines: int | None = None,
        split_utf8: bool = False,
        follow_never_ends: bool = False,
    ) -> None:
        self.verb = verb
        self.kind = kind
        self.namespace = namespace
        self.name = name
        self.status = status
        self.reason = reason
        self.message = message
        self.retry_after = retry_after
        self.connection_error = connection_error
        self.latency = latency
        self.times = times
        self.nth = nth
        self.cut_watch_after = cut_watch_after
        self.cut_log_after_lines = cut_log_after_lines
        self.split_utf8 = split_utf8
        self.follow_never_ends = follow_never_ends
        self.calls = 0
        self.fired = 0

    def __repr__(self) -> str:
        return (
            f"FaultRule(verb={self.verb!r}, kind={self.kind!r}, name={self.name!r}, "
            f"status={self.status!r}, fired={self.fired})"
        )

    def matches(self, verb: str, kind: str | None, namespace: str | None, name: str | None) -> bool:
        """Return whether a call is covered by the rule's filters."""
        if self.verb is not None and self.verb != verb:
            return False
        if self.kind is not None and self.kind != kind:
            return False
        if self.namespace is not None and self.namespace != namespace:
            return False
        return self.name is None or fnmatch.fnmatchcase(name or "", self.name)

    def take(self) -> bool:
        """Count a matching call and return whether the rule applies to it."""
        self.calls += 1
        if self.nth is not None:
            if self.calls < self.nth:
                return False
            if self.times is None and self.calls != self.nth:
                return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def error(
        self, verb: str, kind: str | None, namespace: str | None, name: str | None
    ) -> BackendError | None:
        """Return the error this rule answers with, if it answers with one."""
        if self.connection_error:
            return BackendUnavailable(
                self.message or "connection refused (injected fault)",
                kind=kind,
                namespace=namespace,
                name=name,
            )
        if self.status is None:
            return None
        status = self.status
        reason = self.reason or _DEFAULT_REASONS.get(status, "")
        plural = PLURALS.get(kind or "", "pods")
        version = API_VERSIONS.get(kind or "", "v1")
        group = version.split("/")[0] if "/" in version else ""
        message = self.message or _default_message(status, verb, plural, group, namespace, name)
        return error_for_status(
            status,
            reason,
            message,
            retry_after=self.retry_after,
            kind=kind,
            namespace=namespace,
            name=name,
        )


def _default_message(
    status: int, verb: str, plural: str, group: str, namespace: str | None, name: str | None
) -> str:
    resource = f"{plural}.{group}" if group else plural  # as the server names it
    what = f'{resource} "{name}"' if name else resource
    if status == 401:
        return "Unauthorized"
    if status == 403:
        return (
            f'{what} is forbidden: User "system:serviceaccount:default:podrunner" cannot {verb} '
            f'resource "{plural}" in API group "{group}" in the namespace "{namespace or ""}"'
        )
    if status == 404:
        return f"{what} not found"
    if status == 409:
        return (
            f"Operation cannot be fulfilled on {what}: the object has been modified; please "
            "apply your changes to the latest version and try again"
        )
    if status == 410:
        return "too old resource version: 1 (2)"
    if status == 429:
        return "Too many requests, please try again later."
    if status == 503:
        return "the server is currently unable to handle the request"
    if status == 504:
        return "Timeout: request did not complete within requested timeout"
    if status >= 500:
        return "Internal error occurred: injected fault"
    return f"injected fault ({status})"
