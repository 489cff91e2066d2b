"""AsyncRetryingBackend: :class:`~podrunner.RetryingBackend` for an async backend.

The same :class:`~podrunner.RetryPolicy` decides (the same safe retries, the same 401
refresh, the same resolution of ambiguous creates by run id); only the waiting is awaited.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from podrunner.backends.base import (
    AsyncBackend,
    AsyncClock,
    AsyncExecStream,
    AsyncStream,
    ExecResult,
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
    Unauthorized,
)
from podrunner.run.retry import (
    _HANDLED,
    _RETRIED,
    RetryPolicy,
    _event_lines,
    _events_selector,
    _is_outage,
    _Retries,
    _run_id_of,
)

__all__ = ["AsyncRetryingBackend"]

_T = TypeVar("_T")


class AsyncRetryingBackend:
    """An :class:`~podrunner.backends.base.AsyncBackend` that retries another one's calls.

    What is retried, and how, is :class:`~podrunner.RetryingBackend`'s rule: 429 (honouring
    ``Retry-After``), 5xx and connection errors with the policy's backoff; a 401 refreshes the
    wrapped backend's credentials once per call; an ambiguous create that answers 409 is
    resolved by its run id; deletes also retry a 409; an outage is ridden out for the
    policy's ``outage`` seconds. Log reads and execs pass through unretried.

    Args:
        backend: The async backend to wrap.
        policy: When to retry; :class:`RetryPolicy` defaults when ``None``.
    """

    def __init__(self, backend: AsyncBackend, policy: RetryPolicy | None = None) -> None:
        self.inner = backend
        """The wrapped backend."""
        self.policy = policy or RetryPolicy()
        """When calls are retried."""

    @property
    def clock(self) -> AsyncClock:
        """The wrapped backend's clock."""
        return self.inner.clock

    # -- the AsyncBackend protocol ----------------------------------------------------------

    async def create(
        self, manifest: Mapping[str, Any], *, dry_run: bool = False, until: float | None = None
    ) -> dict[str, Any]:
        """Create an object; after an ambiguous failure, a 409 is checked against the run id.

        ``until`` bounds the retries of an outage, as :meth:`RetryingBackend.create`'s.
        """
        ambiguous = False

        def note(exc: BackendError) -> None:
            nonlocal ambiguous
            ambiguous = ambiguous or isinstance(exc, (ServerError, BackendUnavailable))

        try:
            return await self.call(
                partial(self.inner.create, manifest, dry_run=dry_run), on_retry=note, until=until
            )
        except AlreadyExists:
            run_id = _run_id_of(manifest)
            if not ambiguous or run_id is None:
                raise
            meta = manifest["metadata"]
            existing = await self.get(manifest["kind"], meta.get("namespace"), meta["name"])
            if _run_id_of(existing) == run_id:
                return existing
            raise

    async def forget_lost_create(self, manifest: Mapping[str, Any], exc: BaseException) -> None:
        """After a create failed with ``exc`` in an outage, delete what it may have made.

        As the sync ``RetryingBackend.forget_lost_create``: the lookup rides out the outage
        like any call (an outage past the run's deadline must not leave the pod behind); an
        object left behind when the server stays down expires for ``reap``.
        """
        run_id = _run_id_of(manifest)
        if run_id is None or not _is_outage(exc):
            return
        meta = manifest["metadata"]
        try:
            found = await self.get(manifest["kind"], meta.get("namespace"), meta["name"])
            if _run_id_of(found) == run_id:
                await self.delete_quietly(
                    manifest["kind"], meta["namespace"], meta["name"], grace=0
                )
        except BackendError:
            return  # the create's own error is what the caller must see

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Get an object (retried)."""
        return await self.call(partial(self.inner.get, kind, namespace, name))

    async def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects (retried)."""
        return await self.call(
            partial(
                self.inner.list,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
            )
        )

    async def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object (retried)."""
        return await self.call(partial(self.inner.replace, manifest))

    async def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch an object (retried)."""
        return await self.call(
            partial(self.inner.patch, kind, namespace, name, patch, subresource=subresource)
        )

    async def delete(
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
        await self.call(delete, also_retry=(Conflict,))

    async def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: float | None = None,
        allow_bookmarks: bool = False,
    ) -> AsyncStream[WatchEvent]:
        """Open a watch (opening is retried; a stream that breaks later is the caller's)."""
        return await self.call(
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

    async def read_log(
        self, namespace: str, pod: str, container: str | None = None, **kw: Any
    ) -> AsyncStream[bytes]:
        """Open a container's log (not retried: the follower resumes by timestamp)."""
        return await self.inner.read_log(namespace, pod, container, **kw)

    async def exec(
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
        return await self.inner.exec(namespace, pod, container, argv, stdin=stdin, timeout=timeout)

    async def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> AsyncExecStream:
        """Start a command in a container (not retried: an exec is not idempotent)."""
        return await self.inner.open_exec(namespace, pod, container, argv, stdin=stdin)

    async def refresh_credentials(self) -> bool:
        """Reload the wrapped backend's credentials."""
        return await self.inner.refresh_credentials()

    async def close(self) -> None:
        """Close the wrapped backend."""
        await self.inner.close()

    # -- beyond the protocol ----------------------------------------------------------------

    async def delete_quietly(
        self, kind: Kind, namespace: str, name: str, *, grace: int | None = None
    ) -> None:
        """Delete with retries; an object that is already gone counts as deleted."""
        try:
            await self.delete(kind, namespace, name, grace_period_seconds=grace)
        except NotFound:
            return

    async def pod_events(self, namespace: str, pod: str) -> builtins.list[str]:
        """The pod's events, oldest first, as ``"Reason: message"`` (best effort: ``[]``)."""
        try:
            listed = await self.list("Event", namespace, field_selector=_events_selector(pod))
        except BackendError:
            return []
        return _event_lines(listed.items)

    async def call(
        self,
        fn: Callable[[], Awaitable[_T]],
        *,
        also_retry: tuple[type[BackendError], ...] = (),
        on_retry: Callable[[BackendError], None] | None = None,
        until: float | None = None,
    ) -> _T:
        """Await ``fn()`` (a call on the wrapped backend), retrying where that is safe."""
        try:
            return await fn()
        except BackendError as exc:
            if not (isinstance(exc, _HANDLED) or (also_retry and isinstance(exc, also_retry))):
                raise
            first = exc
        return await self._retrying(fn, first, (*_RETRIED, *also_retry), on_retry, until)

    async def _retrying(
        self,
        fn: Callable[[], Awaitable[_T]],
        exc: BackendError,
        retried: tuple[type[BackendError], ...],
        on_retry: Callable[[BackendError], None] | None,
        until: float | None,
    ) -> _T:
        """The retry loop of :meth:`call` (:meth:`RetryingBackend._retrying`, awaited)."""
        retries = _Retries(self.policy, self.clock.monotonic(), until)
        while True:
            wait = retries.after(exc, self.clock.monotonic())
            if wait is None:
                if not await self.inner.refresh_credentials():
                    raise exc
            else:
                if on_retry is not None:
                    on_retry(exc)
                await self.clock.sleep(wait)
            try:
                return await fn()
            except Unauthorized as again:
                exc = again
            except retried as again:
                exc = again
