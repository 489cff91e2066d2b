"""Retries at the I/O boundary: :class:`RetryingBackend` wraps any Backend with a RetryPolicy.

Everything that talks to a cluster on a run's behalf (the runner, the shared watch, the Claude
runner and worker) goes through one of these, so every call gets the same safe retries, the
same 401 refresh and the same resolution of ambiguous creates.
"""

from __future__ import annotations

import builtins
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import attrs

from podrunner.backends.base import (
    Backend,
    Clock,
    ExecResult,
    ExecStream,
    Kind,
    ObjectList,
    WatchEvent,
)
from podrunner.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    Conflict,
    NotFound,
    ServerError,
    TooManyRequests,
    Unauthorized,
)
from podrunner.manifest import RUN_ID_LABEL

__all__ = ["RetryPolicy", "RetryingBackend"]

_T = TypeVar("_T")
# Errors any call may retry (with backoff); a 401 is handled apart, by a credentials refresh.
_RETRIED: tuple[type[BackendError], ...] = (TooManyRequests, ServerError, BackendUnavailable)
_HANDLED: tuple[type[BackendError], ...] = (*_RETRIED, Unauthorized)


def _is_outage(exc: BaseException) -> bool:
    """The server is unreachable or says it is unavailable for now (not a refusal)."""
    if isinstance(exc, BackendUnavailable):
        return True
    return isinstance(exc, ServerError) and exc.status in (502, 503, 504)


def _run_id_of(obj: Mapping[str, Any]) -> str | None:
    """The object's ``podrunner.dev/run-id`` label (``None``: it has none)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    run_id = labels.get(RUN_ID_LABEL)
    return run_id if isinstance(run_id, str) else None


def _events_selector(pod: str) -> str:
    """The field selector of a pod's Events."""
    return f"involvedObject.kind=Pod,involvedObject.name={pod}"


def _event_lines(items: Sequence[Mapping[str, Any]]) -> builtins.list[str]:
    """Events oldest first, as ``"Reason: message"``."""

    def when(event: Mapping[str, Any]) -> str:
        meta = event.get("metadata") or {}
        stamp = event.get("lastTimestamp") or event.get("eventTime")
        return str(stamp or meta.get("creationTimestamp") or "")

    return [f"{e.get('reason', '')}: {e.get('message', '')}" for e in sorted(items, key=when)]


class _Retries:
    """What one call does after each failure: the retry rule both wrappers drive (no I/O).

    :meth:`after` answers the seconds to wait before trying again, or ``None`` for "refresh the
    credentials, then try again" (a 401, once per call), and raises the error when the call
    must fail: attempts spent (an outage gets the policy's ``outage`` budget, but never past
    ``until`` once the attempts are spent).
    """

    def __init__(self, policy: RetryPolicy, since: float, until: float | None) -> None:
        self.policy = policy
        self.since = since
        self.until = until
        self.attempt = 0
        self.refreshed = False

    def after(self, exc: BackendError, now: float) -> float | None:
        if isinstance(exc, Unauthorized):
            if self.refreshed:
                raise exc
            self.refreshed = True
            return None
        self.attempt += 1
        spent = self.attempt >= self.policy.attempts
        past = self.until is not None and now >= self.until and spent
        if past or self.policy.exhausted(self.attempt, exc, now - self.since):
            raise exc
        delay = exc.retry_after if isinstance(exc, TooManyRequests) else None
        return delay or self.policy.delay(self.attempt)


@attrs.frozen
class RetryPolicy:
    """When and how API calls are retried.

    Only safe retries happen: 429 (honouring ``Retry-After``), 5xx and connection errors for
    idempotent calls, with bounded exponential backoff and jitter; a 401 refreshes the
    backend's credentials once per call.

    An API server that cannot be reached or says it is unavailable (a connection error, or a
    502/503/504: restarting in a rolling upgrade, a cut load balancer, etcd re-electing) is
    retried beyond ``attempts`` until ``outage`` seconds have passed since the first failure,
    every ``max_backoff`` at most, so a restart of a few seconds does not fail the run.

    Attributes:
        attempts: Tries per call, the first included.
        backoff: First delay in seconds; doubled on each retry.
        max_backoff: Upper bound of one delay.
        outage: Seconds an unreachable or unavailable server is retried for (0: only
            ``attempts`` count).

    Example:
        >>> from podrunner import RetryPolicy
        >>> from podrunner.errors import BackendUnavailable, ServerError
        >>> policy = RetryPolicy(attempts=3, outage=30.0)
        >>> policy.exhausted(3, ServerError("boom", status=500), failing_for=1.0)
        True
        >>> policy.exhausted(3, BackendUnavailable("connection refused"), failing_for=1.0)
        False
        >>> policy.exhausted(3, BackendUnavailable("connection refused"), failing_for=31.0)
        True
    """

    attempts: int = 5
    backoff: float = 0.2
    max_backoff: float = 5.0
    outage: float = 30.0

    def exhausted(self, attempt: int, exc: BaseException, failing_for: float) -> bool:
        """Whether to give up after failed try number ``attempt`` (1-based).

        Args:
            attempt: How many tries failed so far.
            exc: The last error.
            failing_for: Seconds since the first of these failures.
        """
        if attempt < self.attempts:
            return False
        return not (_is_outage(exc) and failing_for < self.outage)

    def delay(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), with up to 10% jitter."""
        base = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        jitter = random.random() / 10  # noqa: S311 - jitter, not crypto
        return float(base * (1 + jitter))


class RetryingBackend:
    """A :class:`~podrunner.Backend` that retries another one's calls where that is safe.

    429 (honouring ``Retry-After``), 5xx and connection errors are retried with the policy's
    backoff; a 401 refreshes the wrapped backend's credentials once per call. A create that
    failed ambiguously (no answer or a 5xx, so it may have landed) and then answers 409 is
    resolved by the ``podrunner.dev/run-id`` label: the object found is returned if it is the
    caller's own. Deletes also retry a 409 (a precondition race; deleting is idempotent).
    An outage (no answer, or a 502/503/504) is retried until the policy's ``outage`` budget.

    Log reads and execs are passed through unretried: a followed log is resumed by the run's
    log follower from its last timestamp, and an exec is not idempotent.

    Args:
        backend: The backend to wrap (wrapping a ``RetryingBackend`` again is harmless but
            multiplies the attempts).
        policy: When to retry; :class:`RetryPolicy` defaults when ``None``.

    Example:
        >>> from podrunner import RetryingBackend, RetryPolicy
        >>> from podrunner.testing import FakeCluster
        >>> cluster = FakeCluster()
        >>> _ = cluster.fault(verb="list", kind="Pod", status=503, times=2)
        >>> api = RetryingBackend(cluster.backend, RetryPolicy(backoff=0.01))
        >>> api.list("Pod", "default").items
        []
    """

    def __init__(self, backend: Backend, policy: RetryPolicy | None = None) -> None:
        self.inner = backend
        """The wrapped backend."""
        self.policy = policy or RetryPolicy()
        """When calls are retried."""

    @property
    def clock(self) -> Clock:
        """The wrapped backend's clock."""
        return self.inner.clock

    # -- the Backend protocol ---------------------------------------------------------------

    def create(
        self, manifest: Mapping[str, Any], *, dry_run: bool = False, until: float | None = None
    ) -> dict[str, Any]:
        """Create an object; after an ambiguous failure, a 409 is checked against the run id.

        ``until`` (beyond the Backend protocol) bounds the retries of an outage: none starts
        after that time on the clock's monotonic scale (a run's deadline), once the attempts
        are spent.
        """
        ambiguous = False

        def note(exc: BackendError) -> None:
            nonlocal ambiguous
            # No answer, or a 5xx: the create may have landed before the failure.
            ambiguous = ambiguous or isinstance(exc, (ServerError, BackendUnavailable))

        try:
            return self.call(
                partial(self.inner.create, manifest, dry_run=dry_run), on_retry=note, until=until
            )
        except AlreadyExists:
            run_id = _run_id_of(manifest)
            if not ambiguous or run_id is None:
                raise
            meta = manifest["metadata"]
            existing = self.get(manifest["kind"], meta.get("namespace"), meta["name"])
            if _run_id_of(existing) == run_id:
                return existing
            raise

    def forget_lost_create(self, manifest: Mapping[str, Any], exc: BaseException) -> None:
        """After a create failed with ``exc``, delete what it may have made anyway.

        A create whose retries ran out in an outage may have landed with its answer lost.
        The object of that name is deleted only if it carries the manifest's run-id label
        (another run's object of the same name is left alone). Best effort: if the server
        stays unreachable the object keeps its expiry annotation, so ``PodRunner.reap``
        removes it later. Does nothing after any other error, or for a manifest with no run id.
        """
        run_id = _run_id_of(manifest)
        if run_id is None or not _is_outage(exc):
            return
        meta = manifest["metadata"]
        try:
            found = self.get(manifest["kind"], meta.get("namespace"), meta["name"])
            if _run_id_of(found) == run_id:
                self.delete_quietly(manifest["kind"], meta["namespace"], meta["name"], grace=0)
        except BackendError:
            return  # the create's own error is what the caller must see

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Get an object (retried)."""
        return self.call(partial(self.inner.get, kind, namespace, name))

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects (retried)."""
        return self.call(
            partial(
                self.inner.list,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        )

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object (retried; one that had landed answers ``Conflict``)."""
        return self.call(partial(self.inner.replace, manifest))

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch an object (retried: a merge patch applies the same way twice)."""
        return self.call(
            partial(self.inner.patch, kind, namespace, name, patch, subresource=subresource)
        )

    def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        """Delete an object (retried, a 409 included)."""
        delete = partial(
            self.inner.delete, kind, namespace, name, grace_period_seconds=grace_period_seconds
        )
        self.call(delete, also_retry=(Conflict,))

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> Iterator[WatchEvent]:
        """Open a watch (opening is retried; a stream that breaks later is the caller's)."""
        return self.call(
            partial(
                self.inner.watch,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                resource_version=resource_version,
                timeout_seconds=timeout_seconds,
                allow_bookmarks=allow_bookmarks,
            )
        )

    def read_log(self, namespace: str, pod: str, container: str | None = None, **kw: Any) -> Any:
        """Read a container's log (not retried: see the class docstring)."""
        return self.inner.read_log(namespace, pod, container, **kw)

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run a command in a container (not retried: an exec is not idempotent)."""
        return self.inner.exec(namespace, pod, container, argv, stdin=stdin, timeout=timeout)

    def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> ExecStream:
        """Start a command in a container (not retried: an exec is not idempotent)."""
        return self.inner.open_exec(namespace, pod, container, argv, stdin=stdin)

    def refresh_credentials(self) -> bool:
        """Reload the wrapped backend's credentials."""
        return self.inner.refresh_credentials()

    def close(self) -> None:
        """Close the wrapped backend."""
        self.inner.close()

    # -- beyond the protocol ----------------------------------------------------------------

    def delete_quietly(
        self, kind: Kind, namespace: str, name: str, *, grace: int | None = None
    ) -> None:
        """Delete with retries; an object that is already gone counts as deleted."""
        try:
            self.delete(kind, namespace, name, grace_period_seconds=grace)
        except NotFound:
            return

    def pod_events(self, namespace: str, pod: str) -> builtins.list[str]:
        """The pod's events, oldest first, as ``"Reason: message"`` (best effort: ``[]``)."""
        try:
            listed = self.list("Event", namespace, field_selector=_events_selector(pod))
        except BackendError:
            return []
        return _event_lines(listed.items)

    def call(
        self,
        fn: Callable[[], _T],
        *,
        also_retry: tuple[type[BackendError], ...] = (),
        on_retry: Callable[[BackendError], None] | None = None,
        until: float | None = None,
    ) -> _T:
        """Call ``fn`` (a call on the wrapped backend), retrying where that is safe.

        ``also_retry`` adds error types to retry; ``on_retry`` sees each error that is about
        to be retried. An outage is not waited out past ``until`` (on the clock's monotonic
        scale), once the attempts are spent.
        """
        try:
            return fn()
        except BackendError as exc:
            if not (isinstance(exc, _HANDLED) or (also_retry and isinstance(exc, also_retry))):
                raise
            first = exc
        return self._retrying(fn, first, (*_RETRIED, *also_retry), on_retry, until)

    def _retrying(
        self,
        fn: Callable[[], _T],
        exc: BackendError,
        retried: tuple[type[BackendError], ...],
        on_retry: Callable[[BackendError], None] | None,
        until: float | None,
    ) -> _T:
        """The retry loop of :meth:`call`, entered with the first attempt's error."""
        retries = _Retries(self.policy, self.clock.monotonic(), until)
        while True:
            wait = retries.after(exc, self.clock.monotonic())
            if wait is None:
                if not self.inner.refresh_credentials():
                    raise exc
            else:
                if on_retry is not None:
                    on_retry(exc)
                self.clock.sleep(wait)
            try:
                return fn()
            except Unauthorized as again:
                exc = again
            except retried as again:
                exc = again
