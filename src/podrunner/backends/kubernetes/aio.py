"""AsyncKubernetesBackend: the async backend protocol on a real API server, over httpx.

True async I/O: requests, watches and log streams are coroutines on ``httpx.AsyncClient``
(one connection pool for every run), so a thousand runs cost no thread. Loaded lazily, as the
sync backend is: ``import podrunner`` imports neither ``httpx`` nor ``kubernetes``.

How it talks to the server is the sync backend's (``backend.py``), request for request:

- **Where and who** come from the official client's kubeconfig loaders
  (:meth:`ClusterConfig.load_client_configuration`): host, CA, client certificate, bearer
  token, exec credential plugins, in-cluster account. After a 401 :meth:`refresh_credentials`
  runs the loaders again (exec plugins included) in a worker thread, once.
- **Raw JSON** in and out, the objects exactly as the server sent them.
- **One error mapping**: an httpx error or a non-2xx answer becomes a podrunner error through
  :func:`~podrunner.errors.error_for_status` (``_errors.error_from_status_body``), with
  ``Retry-After`` honoured and the original kept as ``__cause__``.
- **Watches** are newline-delimited JSON events read as they come (bookmarks, an in-stream
  410 raised as :class:`~podrunner.errors.Gone`); **logs** are raw byte chunks. A connection
  that drops mid-stream raises :class:`~podrunner.errors.BackendUnavailable`.
- **Exec** (a websocket) still goes through the sync backend in a worker thread: one thread
  per exec call, never per run (the runner does not exec).

Why httpx on raw JSON and not ``kubernetes_asyncio``: see ``docs/async.md`` (measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from typing import TYPE_CHECKING, Any, Generic, TypeVar

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the async Kubernetes backend needs httpx: pip install 'podrunner[async]'"
    ) from exc

from podrunner.backends.base import ExecResult, Kind, ObjectList, RealAsyncClock, WatchEvent
from podrunner.backends.kubernetes._errors import (
    error_from_status_body,
    parse_retry_after,
    status_from_body,
)
from podrunner.backends.kubernetes.backend import (
    _MERGE_PATCH,
    _STATUS_SUBRESOURCE,
    KubernetesBackend,
)
from podrunner.backends.kubernetes.config import ClusterConfig
from podrunner.errors import BackendError, BackendUnavailable, ConfigError, NotFound

if TYPE_CHECKING:
    import builtins
    from collections.abc import AsyncIterator, Mapping, Sequence

__all__ = ["AsyncKubernetesBackend"]

_T = TypeVar("_T")


def _ssl_context(config: Any) -> ssl.SSLContext | bool:
    """The TLS settings of a ``kubernetes.client.Configuration``, as httpx takes them."""
    if not config.verify_ssl:
        return False
    context = ssl.create_default_context(cafile=config.ssl_ca_cert or None)
    if config.cert_file:
        context.load_cert_chain(config.cert_file, config.key_file or None)
    if getattr(config, "assert_hostname", None) is False:
        context.check_hostname = False
    return context


def _auth_headers(config: Any) -> dict[str, str]:
    """The credentials as request headers (a bearer token, or basic auth)."""
    key = config.api_key or {}
    token = key.get("authorization") or key.get("BearerToken")
    if token:
        prefix = (config.api_key_prefix or {}).get("authorization")
        return {"Authorization": f"{prefix} {token}" if prefix else str(token)}
    if config.username or config.password:
        return {"Authorization": str(config.get_basic_auth_token())}
    # No credentials at all (an insecure port, a proxy that authenticates): none sent.
    return {}


class AsyncKubernetesBackend:
    """The :class:`~podrunner.backends.base.AsyncBackend` protocol on a real API server.

    Args:
        cluster: Where to connect; :meth:`ClusterConfig.default` when ``None``.
        pool_size: Connections kept to the server; each followed log holds one, the shared
            watch one, short calls share the rest (a call waits for a free connection).
        request_timeout: ``(connect, read)`` seconds (or one number) for ordinary requests.
        log_idle_timeout: Seconds a followed log may stay silent before the read fails with
            :class:`~podrunner.errors.BackendUnavailable` (the follower resumes).
        dry_run: Send every mutating call as a server-side dry run (``dryRun=All``).

    Raises:
        ConfigError: The cluster configuration cannot be loaded.
    """

    def __init__(
        self,
        cluster: ClusterConfig | None = None,
        *,
        pool_size: int = 100,
        request_timeout: float | tuple[float, float] = (10.0, 60.0),
        log_idle_timeout: float | None = 300.0,
        dry_run: bool = False,
    ) -> None:
        self._cluster = ClusterConfig.default() if cluster is None else cluster
        self._pool_size = pool_size
        if isinstance(request_timeout, tuple):
            self._connect_timeout, self._read_timeout = request_timeout
        else:
            self._connect_timeout = self._read_timeout = float(request_timeout)
        self._log_idle_timeout = log_idle_timeout
        self._dry_run = dry_run
        self._clock = RealAsyncClock()
        self._config = self._cluster.load_client_configuration()
        self._headers = _auth_headers(self._config)
        self._client = self._new_client()
        self._sync: KubernetesBackend | None = None  # for exec only, made on first use
        self._closed = False
        self._keeper: asyncio.Task[None] | None = None

    def _new_client(self) -> httpx.AsyncClient:
        config = self._config
        limits = httpx.Limits(
            max_connections=self._pool_size, max_keepalive_connections=self._pool_size
        )
        return httpx.AsyncClient(
            base_url=str(config.host).rstrip("/"),
            verify=_ssl_context(config),
            proxy=config.proxy or None,
            limits=limits,
            # pool=None: a call waits for a free connection instead of failing.
            timeout=httpx.Timeout(self._connect_timeout, read=self._read_timeout, pool=None),
            trust_env=False,
        )

    @property
    def clock(self) -> RealAsyncClock:
        """The machine's clock."""
        return self._clock

    @property
    def configuration(self) -> Any:
        """The ``kubernetes.client.Configuration`` the credentials came from."""
        return self._config

    async def refresh_credentials(self) -> bool:
        """Load the cluster configuration again (exec plugins re-run) and adopt it.

        Returns:
            Whether the token or client certificate changed.

        Raises:
            ConfigError: The configuration can no longer be loaded.
        """
        fresh = await asyncio.to_thread(self._load_fresh)
        headers = _auth_headers(fresh)
        old_cert = (self._config.cert_file, self._config.key_file)
        new_cert = (fresh.cert_file, fresh.key_file)
        changed = headers != self._headers or new_cert != old_cert
        self._config, self._headers = fresh, headers
        if new_cert != old_cert:
            # Client certificates live in the pool's TLS context: a new pool is needed.
            old, self._client = self._client, self._new_client()
            await old.aclose()
        return changed

    def _load_fresh(self) -> Any:
        with contextlib.suppress(ConfigError):  # gone or half-written: keep what worked
            self._cluster = self._cluster.reload()
        return self._cluster.load_client_configuration()

    async def close(self) -> None:
        """Close the connection pool (idempotent)."""
        if self._closed:
            return
        self._closed = True
        keeper, self._keeper = self._keeper, None
        if keeper is not None and keeper is not asyncio.current_task():
            keeper.cancel()
        await self._client.aclose()
        if self._sync is not None:
            await asyncio.to_thread(self._sync.close)

    def _bind(self) -> None:
        """On first use, make sure the pool is closed in its loop, at the latest when it ends.

        The connections belong to the loop that opened them: a backend nobody closed (a test
        fixture's, a script's) is closed by a task that waits until the loop cancels it at
        shutdown (``asyncio.run`` and the pytest plugins cancel leftover tasks).
        """
        if self._keeper is None and not self._closed:
            self._keeper = asyncio.get_running_loop().create_task(
                self._close_at_shutdown(), name="podrunner-http-pool"
            )

    async def _close_at_shutdown(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if self._keeper is asyncio.current_task():
                self._keeper = None
                await self.close()

    async def __aenter__(self) -> AsyncKubernetesBackend:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- transport ----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, object]] = (),
        body: object = None,
        content_type: str = "application/json",
        read_timeout: float | None,
        accept: str = "application/json",
    ) -> httpx.Request:
        headers = {"Accept": accept, **self._headers}
        content = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = body if isinstance(body, (bytes, str)) else json.dumps(body)
        params = httpx.QueryParams([(k, str(v)) for k, v in query if v is not None])
        timeout = httpx.Timeout(self._connect_timeout, read=read_timeout, pool=None)
        return self._client.build_request(
            method, path, params=params, content=content, headers=headers, timeout=timeout
        )

    async def _send(
        self, request: httpx.Request, where: tuple[str | None, str | None, str | None]
    ) -> httpx.Response:
        """Send a request, streaming; a non-2xx answer is raised as the podrunner error."""
        kind, namespace, name = where
        self._bind()
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise _unavailable(exc, where) from exc
        if response.is_success:
            return response
        try:
            body = await response.aread()
        except httpx.HTTPError as exc:
            raise _unavailable(exc, where) from exc
        finally:
            await response.aclose()
        raise error_from_status_body(
            response.status_code,
            status_from_body(body),
            fallback_message=response.reason_phrase,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            kind=kind,
            namespace=namespace,
            name=name,
        )

    async def _json(
        self,
        method: str,
        path: str,
        where: tuple[str | None, str | None, str | None],
        **kw: Any,
    ) -> dict[str, Any]:
        response = await self._send(
            self._request(method, path, read_timeout=self._read_timeout, **kw), where
        )
        try:
            data = await response.aread()
        except httpx.HTTPError as exc:
            raise _unavailable(exc, where) from exc
        finally:
            await response.aclose()
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, object]] = (),
        body: object = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request to any API path (see :meth:`KubernetesBackend.request`)."""
        response = await self._send(
            self._request(
                method,
                path,
                query=query,
                body=body,
                content_type=content_type,
                read_timeout=self._read_timeout,
            ),
            (None, None, None),
        )
        try:
            data = await response.aread()
        finally:
            await response.aclose()
        try:
            result = json.loads(data) if data else {}
        except ValueError:
            return {}
        return result if isinstance(result, dict) else {}

    def _dry_run_query(self, dry_run: bool) -> builtins.list[tuple[str, object]]:
        return [("dryRun", "All")] if dry_run or self._dry_run else []

    # -- CRUD -----------------------------------------------------------------------------------

    async def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object (``generateName`` honoured by the server); return it as stored."""
        kind, namespace, name = KubernetesBackend._identity(manifest)
        return await self._json(
            "POST",
            KubernetesBackend._path(kind, namespace),
            (kind, namespace, name),
            query=self._dry_run_query(dry_run),
            body=dict(manifest),
        )

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return one object, or raise :class:`~podrunner.errors.NotFound`."""
        path = KubernetesBackend._path(kind, namespace, name)
        return await self._json("GET", path, (kind, namespace, name))

    async def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects; ``namespace=None`` lists across namespaces."""
        data = await self._json(
            "GET",
            KubernetesBackend._path(kind, namespace),
            (kind, namespace, None),
            query=[("labelSelector", label_selector), ("fieldSelector", field_selector)],
        )
        items = data.get("items") or []
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", "v1")
        return ObjectList(items, str((data.get("metadata") or {}).get("resourceVersion", "")))

    async def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale ``resourceVersion`` raises ``Conflict``."""
        kind, namespace, name = KubernetesBackend._identity(manifest)
        if not name:
            raise error_from_status_body(
                422, {"reason": "Invalid", "message": "metadata.name is required for replace"}
            )
        return await self._json(
            "PUT",
            KubernetesBackend._path(kind, namespace, name),
            (kind, namespace, name),
            query=self._dry_run_query(False),
            body=dict(manifest),
        )

    async def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch to an object or its ``status`` subresource."""
        if subresource is not None and (subresource != "status" or kind not in _STATUS_SUBRESOURCE):
            raise NotFound(
                "the server could not find the requested resource",
                kind=kind,
                namespace=namespace,
                name=name,
            )
        return await self._json(
            "PATCH",
            KubernetesBackend._path(kind, namespace, name, subresource),
            (kind, namespace, name),
            query=self._dry_run_query(False),
            body=dict(patch),
            content_type=_MERGE_PATCH,
        )

    async def delete(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        *,
        grace_period_seconds: int | None = None,
    ) -> None:
        """Delete an object; dependents are garbage-collected in the background."""
        options: dict[str, Any] = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
        }
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        await self._json(
            "DELETE",
            KubernetesBackend._path(kind, namespace, name),
            (kind, namespace, name),
            query=self._dry_run_query(False),
            body=options,
        )

    # -- streams --------------------------------------------------------------------------------

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
    ) -> HttpStream[WatchEvent]:
        """Open a stream of changes after ``resource_version`` (see the sync backend's).

        Raises:
            Gone: The version is too old (HTTP 410 at opening, or an in-stream 410).
        """
        query: builtins.list[tuple[str, object]] = [
            ("watch", "1"),
            ("labelSelector", label_selector),
            ("fieldSelector", field_selector),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true" if allow_bookmarks else None),
        ]
        read_timeout: float | None = None
        if timeout_seconds is not None:
            seconds = max(1, int(-(-timeout_seconds // 1)))  # the server takes whole seconds
            query.append(("timeoutSeconds", seconds))
            read_timeout = seconds + 15.0  # the server ends the stream; this catches a dead one
        where = (kind, namespace, None)
        request = self._request(
            "GET", KubernetesBackend._path(kind, namespace), query=query, read_timeout=read_timeout
        )
        response = await self._send(request, where)
        return HttpStream(response, _events(response, kind, namespace), where)

    async def read_log(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        follow: bool = False,
        timestamps: bool = False,
        since_time: str | None = None,
        since_seconds: int | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> HttpStream[bytes]:
        """Open a container's log as a stream of raw byte chunks (see the sync backend's)."""
        query: builtins.list[tuple[str, object]] = [
            ("container", container),
            ("follow", "true" if follow else None),
            ("timestamps", "true" if timestamps else None),
            ("sinceTime", since_time),
            ("sinceSeconds", since_seconds),
            ("tailLines", tail_lines),
            ("limitBytes", limit_bytes),
            ("previous", "true" if previous else None),
        ]
        read_timeout = self._log_idle_timeout if follow else self._read_timeout
        where = ("Pod", namespace, pod)
        request = self._request(
            "GET",
            KubernetesBackend._path("Pod", namespace, pod, "log"),
            query=query,
            read_timeout=read_timeout,
            accept="*/*",
        )
        response = await self._send(request, where)
        return HttpStream(response, _chunks(response), where)

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
        """Run ``argv`` in a running container (the sync backend's websocket, in a thread)."""
        if self._sync is None:
            self._sync = KubernetesBackend(self._cluster)
        return await asyncio.to_thread(
            self._sync.exec, namespace, pod, container, argv, stdin=stdin, timeout=timeout
        )


def _unavailable(exc: BaseException, where: tuple[str | None, ...]) -> BackendUnavailable:
    kind, namespace, name = where
    return BackendUnavailable(
        f"{type(exc).__name__}: {exc}".rstrip(": "), kind=kind, namespace=namespace, name=name
    )


async def _chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_raw():
        if chunk:
            yield chunk


async def _events(
    response: httpx.Response, kind: str, namespace: str | None
) -> AsyncIterator[WatchEvent]:
    buffer = b""
    async for chunk in response.aiter_raw():
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            event = KubernetesBackend._event(line, kind, namespace)
            if event is not None:
                yield event
    if buffer.strip():
        event = KubernetesBackend._event(buffer, kind, namespace)
        if event is not None:
            yield event


class HttpStream(Generic[_T]):
    """A watch or log stream on an open response: async-iterate it, then ``aclose()`` it.

    A connection that breaks before the server ended the body raises
    :class:`~podrunner.errors.BackendUnavailable`; a stream closed by its reader just ends.
    """

    def __init__(
        self,
        response: httpx.Response,
        items: AsyncIterator[_T],
        where: tuple[str | None, str | None, str | None],
    ) -> None:
        self._response = response
        self._items = items
        self._where = where
        self._closed = False

    def __aiter__(self) -> HttpStream[_T]:
        return self

    async def __anext__(self) -> _T:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await self._items.__anext__()
        except StopAsyncIteration:
            await self.aclose()
            raise
        except httpx.HTTPError as exc:
            await self.aclose()
            raise _unavailable(exc, self._where) from exc
        except BackendError:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the response (its connection goes back to the pool only if read to the end)."""
        if self._closed:
            return
        self._closed = True
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            await aclose()
        await self._response.aclose()
