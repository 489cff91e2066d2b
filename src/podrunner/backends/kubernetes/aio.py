"""AsyncKubernetesBackend: the async backend protocol on a real API server, over aiohttp.

True async I/O: requests, watches and log streams are coroutines on one ``aiohttp``
connection pool for every run, so a thousand runs cost no thread. Loaded lazily, as the sync
backend is: ``import podrunner`` imports neither ``aiohttp`` nor ``kubernetes``.

How it talks to the server is the sync backend's (``backend.py``), request for request:

- **Where and who** come from the official client's kubeconfig loaders
  (:meth:`ClusterConfig.load_client_configuration`): host, CA, client certificate, bearer
  token, exec credential plugins, in-cluster account. After a 401 :meth:`refresh_credentials`
  runs the loaders again (exec plugins included) in a worker thread, once.
- **Raw JSON** in and out, the objects exactly as the server sent them.
- **One error mapping**: an aiohttp error or a non-2xx answer becomes a podrunner error through
  :func:`~podrunner.errors.error_for_status` (``_errors.error_from_status_body``), with
  ``Retry-After`` honoured and the original kept as ``__cause__``.
- **Watches** are newline-delimited JSON events read as they come (bookmarks, an in-stream
  410 raised as :class:`~podrunner.errors.Gone`); **logs** are raw byte chunks. A connection
  that drops mid-stream raises :class:`~podrunner.errors.BackendUnavailable`.
- **Exec** runs over the exec websocket (``v5.channel.k8s.io``, which can close stdin;
  ``v4`` when the server speaks no v5): :meth:`open_exec` streams stdout and stderr as
  messages arrive (``_aio_exec``), and the exit code comes from the status channel, as the
  sync backend reads them; :meth:`exec` buffers that stream.

Why aiohttp on raw JSON, and not httpx or ``kubernetes_asyncio``: see ``docs/async.md``
(measured side by side on a local API server).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import ssl
from typing import TYPE_CHECKING, Any, Generic, TypeVar

try:
    import aiohttp
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the async Kubernetes backend needs aiohttp: pip install 'podrunner[async]'"
    ) from exc

from podrunner.backends.base import (
    API_VERSIONS,
    ExecResult,
    Kind,
    ObjectList,
    RealAsyncClock,
    WatchEvent,
)
from podrunner.backends.kubernetes._aio_exec import AiohttpExecStream
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
# aiohttp sends a body above this size from a file-like object (it warns on larger bytes).
_LARGE_BODY = 1 << 20


def _ssl_context(config: Any) -> ssl.SSLContext | bool:
    """The TLS settings of a ``kubernetes.client.Configuration``, as aiohttp takes them."""
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
        self._ssl = _ssl_context(self._config)
        self._base = str(self._config.host).rstrip("/")
        self._client: aiohttp.ClientSession | None = None  # made in the loop, on first use
        self._closed = False
        self._keeper: asyncio.Task[None] | None = None

    def _session(self) -> aiohttp.ClientSession:
        """The connection pool, made in the running loop on first use."""
        if self._client is None or self._client.closed:
            connector = _Connector(limit=self._pool_size, ssl=self._ssl)
            self._client = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self._connect_timeout, sock_read=self._read_timeout
                ),
                trust_env=False,
                # Kubernetes JSON is decoded by the caller; no cookies to keep.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._bind()
        return self._client

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
            self._ssl = _ssl_context(fresh)
            old, self._client = self._client, None
            if old is not None:
                await _close_session(old)
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
        if self._client is not None:
            await _close_session(self._client)

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

    async def _send(
        self,
        method: str,
        path: str,
        where: tuple[str | None, str | None, str | None],
        *,
        query: Sequence[tuple[str, object]] = (),
        body: object = None,
        content_type: str = "application/json",
        read_timeout: float | None,
        accept: str = "application/json",
    ) -> aiohttp.ClientResponse:
        """Send one request; return the response, body unread (2xx), or raise the error."""
        headers = {"Accept": accept, **self._headers}
        data: Any = None
        if body is not None:
            headers["Content-Type"] = content_type
            raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
            data = raw.encode() if isinstance(raw, str) else raw
            if len(data) > _LARGE_BODY:
                data = io.BytesIO(data)  # sent in pieces: a large body never blocks the loop
        params = [(k, str(v)) for k, v in query if v is not None]
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._connect_timeout, sock_read=read_timeout
        )
        try:
            response = await self._session().request(
                method,
                self._base + path,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                proxy=self._config.proxy or None,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _unavailable(exc, where) from exc
        if 200 <= response.status <= 299:
            return response
        try:
            payload = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _unavailable(exc, where) from exc
        finally:
            response.release()
        kind, namespace, name = where
        raise error_from_status_body(
            response.status,
            status_from_body(payload),
            fallback_message=response.reason or "",
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
        response = await self._send(method, path, where, read_timeout=self._read_timeout, **kw)
        try:
            data = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _unavailable(exc, where) from exc
        finally:
            response.release()
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
            method,
            path,
            (None, None, None),
            query=query,
            body=body,
            content_type=content_type,
            read_timeout=self._read_timeout,
        )
        try:
            data = await response.read()
        finally:
            response.release()
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
            item.setdefault("apiVersion", API_VERSIONS[kind])
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
            # The server ends the stream; the margin (the sync backend's) catches a connection
            # that died silently, so a watch does not outlive a run's deadline by more.
            read_timeout = seconds + 5.0
        where = (kind, namespace, None)
        path = KubernetesBackend._path(kind, namespace)
        response = await self._send("GET", path, where, query=query, read_timeout=read_timeout)
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
        response = await self._send(
            "GET",
            KubernetesBackend._path("Pod", namespace, pod, "log"),
            where,
            query=query,
            read_timeout=read_timeout,
            accept="*/*",
        )
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
        """Run ``argv`` in a running container over the exec websocket (:meth:`open_exec`).

        ``stdin`` is written, then closed with the ``v5.channel.k8s.io`` close signal; the exit
        code comes from the status channel (3).

        Raises:
            BackendUnavailable: The websocket could not be opened, broke, or ``timeout``
                passed before the command ended.
            BackendError: The server refused (404 no such pod/container, 400 not running...).
        """
        stream = await self.open_exec(namespace, pod, container, argv, stdin=stdin is not None)
        try:
            return await asyncio.wait_for(_buffer(stream, stdin), timeout)
        except asyncio.TimeoutError as exc:
            raise BackendUnavailable(
                f"exec did not end within {timeout}s", kind="Pod", namespace=namespace, name=pod
            ) from exc
        finally:
            await stream.aclose()

    async def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
    ) -> AiohttpExecStream:
        """Start ``argv`` in a running container and stream it over the exec websocket.

        ``v5.channel.k8s.io`` is asked for (``close_stdin`` can then send EOF), ``v4`` taken
        when the server speaks no v5.

        Raises:
            BackendUnavailable: The websocket could not be opened.
            BackendError: The server refused (404 no such pod/container, 400 not running...).
        """
        where = ("Pod", namespace, pod)
        query: builtins.list[tuple[str, str]] = [("command", str(arg)) for arg in argv]
        query += [("stdout", "true"), ("stderr", "true"), ("tty", "false")]
        if stdin:
            query.append(("stdin", "true"))
        if container:
            query.append(("container", container))
        url = self._base + KubernetesBackend._path("Pod", namespace, pod, "exec")
        try:
            ws = await self._session().ws_connect(
                url,
                params=query,
                headers=self._headers,
                protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"),
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=0.2),
                proxy=self._config.proxy or None,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise error_from_status_body(
                exc.status,
                None,
                fallback_message=exc.message,
                kind="Pod",
                namespace=namespace,
                name=pod,
            ) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise _unavailable(exc, where) from exc
        return AiohttpExecStream(ws, stdin, (namespace, pod))


async def _buffer(stream: AiohttpExecStream, stdin: bytes | None) -> ExecResult:
    """Write stdin (then close it), read the output to the end, and the exit code."""
    if stdin is not None:
        if stdin:
            await stream.write(stdin)
        await stream.close_stdin()
    out: builtins.list[bytes] = []
    err: builtins.list[bytes] = []
    while (chunk := await stream.next_chunk()) is not None:
        (out if chunk.stream == "stdout" else err).append(chunk.data)
    code = await stream.wait()
    return ExecResult(code, b"".join(out), b"".join(err))


def _unavailable(exc: BaseException, where: tuple[str | None, ...]) -> BackendUnavailable:
    kind, namespace, name = where
    return BackendUnavailable(
        f"{type(exc).__name__}: {exc}".rstrip(": "), kind=kind, namespace=namespace, name=name
    )


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    async for chunk in response.content.iter_any():
        if chunk:
            yield chunk


async def _events(
    response: aiohttp.ClientResponse, kind: str, namespace: str | None
) -> AsyncIterator[WatchEvent]:
    buffer = b""
    async for chunk in response.content.iter_any():
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
        response: aiohttp.ClientResponse,
        items: AsyncIterator[_T],
        where: tuple[str | None, str | None, str | None],
    ) -> None:
        self._response = response
        self._items = items
        self._where = where
        self._closed = False
        self._loop = asyncio.get_running_loop()

    def __del__(self) -> None:
        # Dropped unclosed (a loop left with break): close the connection in its loop, as the
        # sync backend's streams close theirs when they are freed.
        if not self._closed and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._response.close)

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
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
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
        if self._response.content.at_eof():
            self._response.release()  # read to the end: the connection is reused
        else:
            self._response.close()  # a half-read body would poison the connection


class _Connector(aiohttp.TCPConnector):
    """aiohttp's connector, remembering each connection's socket for :func:`_close_session`."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.sockets: dict[int, Any] = {}

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        transport = connection.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is not None:
            if len(self.sockets) > 2 * (self.limit or 100):
                self.sockets = {k: s for k, s in self.sockets.items() if s.fileno() != -1}
            self.sockets[id(sock)] = sock
        return connection


async def _close_session(session: aiohttp.ClientSession) -> None:
    """Close a pool and end every connection it opened, even the ones already closing.

    A connection closed earlier can still be "closing" when the pool closes: a large body the
    server refused (413) keeps unsent bytes the server no longer reads, and on CPython before
    3.12.8 its TLS layer can no longer be aborted (cpython#118960). Left alone it is collected
    unclosed after the loop ends (a ResourceWarning and a socket held until then); shutting
    its socket down makes the pending write fail and the transport finish closing at once.
    """
    connector = session.connector
    await session.close()
    if not isinstance(connector, _Connector):
        return
    stragglers = [s for s in connector.sockets.values() if s.fileno() != -1]
    connector.sockets.clear()
    for sock in stragglers:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 1.0
    while any(s.fileno() != -1 for s in stragglers) and loop.time() < deadline:
        await asyncio.sleep(0.005)
