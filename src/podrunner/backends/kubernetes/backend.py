"""KubernetesBackend: the :class:`~podrunner.backends.base.Backend` protocol on the official client.

Loaded lazily (by :meth:`podrunner.PodRunner.connect` or an explicit import), so ``import
podrunner`` never pays for ``import kubernetes``; this module imports the client at module level.

Where the client is awkward, this module goes around it on purpose:

- **Raw JSON.** Every request goes through ``ApiClient.call_api`` with ``_preload_content=False``
  semantics: the urllib3 response body is ``json.loads``-ed, never turned into ``V1Pod`` models
  (several times slower, see ``benchmarks/bench_kubernetes.py``), and objects keep the exact
  shape the API server sent.
- **One error mapping.** ``_errors.translate_errors`` is the only place a client, urllib3 or socket
  exception becomes a podrunner error (through :func:`~podrunner.errors.error_for_status`); the
  original stays as ``__cause__``.
- **Watches and logs are streamed by hand**: newline-delimited JSON events and raw log bytes are
  read chunk by chunk from the response; closing the iterator closes the connection, and a
  connection that drops mid-stream raises :class:`~podrunner.errors.BackendUnavailable` instead
  of ending silently. ``kubernetes.watch.Watch`` is not used because it deserialises models and
  swallows 410s into a generic error.
- **Exec** opens the websocket with ``kubernetes.stream.stream`` (``v5.channel.k8s.io`` when the
  server and client agree on it, which is what makes closing stdin possible) but reads it one
  frame at a time itself (``_exec``): the client's ``update()`` holds everything that has arrived
  in memory. The exit code comes from the status channel (3); :meth:`exec` buffers the stream.

One :class:`kubernetes.client.ApiClient` (one urllib3 pool, sized by ``pool_size``) serves every
thread; the backend holds no per-call state, so ``run_many`` can share it.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import urllib.parse
from functools import partial
from typing import TYPE_CHECKING, Any

import kubernetes.client
import kubernetes.stream
import kubernetes.stream.ws_client
import urllib3
import urllib3.exceptions

from podrunner.backends._stream import InterruptibleStream, StreamState, WatchStream
from podrunner.backends.base import (
    API_VERSIONS,
    PLURALS,
    Clock,
    ExecResult,
    Kind,
    ObjectList,
    RealClock,
    WatchEvent,
    WatchEventType,
)
from podrunner.backends.kubernetes._errors import (
    api_exception,
    error_from_status_body,
    translate_errors,
)
from podrunner.backends.kubernetes._exec import WebSocketExecStream
from podrunner.backends.kubernetes._streams import (
    close_response,
    read_chunks,
    shut_down,
)
from podrunner.backends.kubernetes.config import ClusterConfig
from podrunner.errors import (
    BackendError,
    BackendUnavailable,
    ConfigError,
    NotFound,
    error_for_status,
)

if TYPE_CHECKING:
    import builtins
    from collections.abc import Generator, Iterator, Mapping, Sequence

__all__ = ["KubernetesBackend"]

# Kinds with a status subresource in core/v1 (the others answer 404 for ``.../status``).
_STATUS_SUBRESOURCE = frozenset({"Pod", "Namespace"})
_MERGE_PATCH = "application/merge-patch+json"
# Seconds a watch may stay silent past the timeout it asked the server for.
_WATCH_READ_MARGIN = 5.0
# ---------------------------------------------------------------------------------------------
# The backend
# ---------------------------------------------------------------------------------------------


class KubernetesBackend:
    """The backend protocol on a real API server, through the official ``kubernetes`` client.

    Args:
        cluster: Where to connect; :meth:`ClusterConfig.default` when ``None``.
        pool_size: Connections kept per host in the shared pool; size it to the concurrency of
            ``run_many`` (each run holds a log stream, plus the shared watch and short calls).
        request_timeout: ``(connect, read)`` seconds (or one number for both) for ordinary
            requests. Watches use the server-side ``timeout_seconds`` plus a margin instead.
        log_idle_timeout: Seconds a followed log may stay silent before the read fails with
            :class:`~podrunner.errors.BackendUnavailable` (the log follower then resumes), so a
            stream the kubelet forgot never hangs a run; ``None`` waits forever.
        dry_run: Send every mutating call as a server-side dry run (``dryRun=All``).

    Raises:
        ConfigError: The cluster configuration cannot be loaded.
    """

    def __init__(
        self,
        cluster: ClusterConfig | None = None,
        *,
        pool_size: int = 64,
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
        self._clock = RealClock()
        self._lock = threading.Lock()
        self._config = self._load_configuration()
        self._api: Any = kubernetes.client.ApiClient(self._config)
        self._core: Any = kubernetes.client.CoreV1Api(self._api)
        # kubernetes >= 37 splits request building (param_serialize) from sending (call_api);
        # older releases build and send in one call_api(resource_path, method, ...).
        params = list(inspect.signature(self._api.call_api).parameters)
        self._modern = bool(params) and params[0] == "method"
        self._closed = False

    # -- configuration ----------------------------------------------------------------------

    def _load_configuration(self) -> Any:
        config = self._cluster.load_client_configuration()
        config.connection_pool_maxsize = self._pool_size
        if config.retries is None:
            # urllib3's default retries 429/503 answers itself, sleeping Retry-After in real
            # time behind the backend's clock; podrunner's RetryPolicy decides instead, from
            # TooManyRequests.retry_after. Failures to connect are still retried here, but
            # not reads: urllib3 resent a GET whose answer stalled, so a stalled server held
            # a call for four read timeouts (four minutes by default), past any run deadline.
            config.retries = urllib3.util.Retry(
                total=3,
                read=0,
                status=0,
                respect_retry_after_header=False,
                raise_on_status=False,
            )
        return config

    @property
    def clock(self) -> Clock:
        """The machine's clock."""
        return self._clock

    @property
    def configuration(self) -> Any:
        """The shared ``kubernetes.client.Configuration`` (host, TLS, credentials)."""
        return self._config

    @property
    def api_client(self) -> Any:
        """The shared, thread-safe ``kubernetes.client.ApiClient``."""
        return self._api

    def _token(self) -> str | None:
        key = self._config.api_key or {}
        value = key.get("authorization") or key.get("BearerToken")
        return str(value) if value else None

    def refresh_credentials(self) -> bool:
        """Reload the cluster configuration and adopt its credentials.

        Re-runs exec plugins and OIDC refreshes and re-reads the in-cluster token file. Callers
        do this once after a 401.

        Returns:
            Whether the token or client certificate changed.

        Raises:
            ConfigError: The configuration can no longer be loaded.
        """
        self._reread_kubeconfig_file()
        fresh = self._load_configuration()
        with self._lock:
            old_token = self._token()
            old_cert = (self._config.cert_file, self._config.key_file)
            # Mutate the shared Configuration in place: every request reads its auth from it,
            # so calls in flight on other threads pick up the new token on their next request.
            self._config.api_key = dict(fresh.api_key or {})
            self._config.api_key_prefix = dict(fresh.api_key_prefix or {})
            self._config.refresh_api_key_hook = fresh.refresh_api_key_hook
            self._config.username = fresh.username
            self._config.password = fresh.password
            new_cert = (fresh.cert_file, fresh.key_file)
            if new_cert != old_cert:
                # Client certificates live in the pool's SSL context: a new pool is needed.
                self._config.cert_file, self._config.key_file = new_cert
                old_rest = self._api.rest_client
                self._api.rest_client = type(old_rest)(self._config)
                old_rest.close()
            return self._token() != old_token or new_cert != old_cert

    def _reread_kubeconfig_file(self) -> None:
        """Pick up a kubeconfig file rewritten since start (``aws eks update-kubeconfig``...)."""
        try:
            self._cluster = self._cluster.reload()
        except ConfigError:
            # Gone, half-written, or one file of a merged $KUBECONFIG list that does not hold
            # the whole context: keep what worked.
            return

    def close(self) -> None:
        """Close the connection pool."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._api.close()

    def __enter__(self) -> KubernetesBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ----------------------------------------------------------------------------

    @staticmethod
    def _path(
        kind: str, namespace: str | None, name: str | None = None, sub: str | None = None
    ) -> str:
        if kind not in PLURALS:
            raise BackendError(f"unsupported kind {kind!r}", status=400, reason="BadRequest")
        version = API_VERSIONS[kind]
        parts = ["/api/v1" if version == "v1" else f"/apis/{version}"]
        if namespace is not None and kind != "Namespace":
            parts += ["namespaces", urllib.parse.quote(namespace, safe="")]
        parts.append(PLURALS[kind])
        if name is not None:
            parts.append(urllib.parse.quote(name, safe=""))
        if sub is not None:
            parts.append(urllib.parse.quote(sub, safe=""))
        return "/".join(parts)

    def _timeout(self, read: float | None) -> tuple[float, float | None]:
        # A (connect, read) pair: the only shape every client release turns into a
        # urllib3.Timeout (a Timeout object itself is silently dropped by some).
        return (self._connect_timeout, read)

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, object]] = (),
        body: object = None,
        content_type: str = "application/json",
        read_timeout: float | None,
        accept: str = "application/json",
    ) -> Any:
        """Send one request and return the raw urllib3 response (2xx only; body unread).

        Non-2xx answers are raised as ``ApiException`` for :func:`translate_errors`.
        """
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        query_list = [(k, v) for k, v in query if v is not None]
        timeout = self._timeout(read_timeout)
        if self._modern:
            method_, url, header_params, body_, post = self._api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query_list,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self._api.call_api(
                method_, url, header_params, body_, post, _request_timeout=timeout
            ).response
        else:  # pragma: no cover - kubernetes < 37
            resp = self._api.call_api(
                path,
                method,
                query_params=query_list,
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _return_http_data_only=True,
                _request_timeout=timeout,
            )
        if not 200 <= resp.status <= 299:
            raise api_exception(resp)
        return resp

    def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = self._open(method, path, read_timeout=self._read_timeout, **kw)
        try:
            data = resp.data
        finally:
            resp.release_conn()
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, object]] = (),
        body: object = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request to any API path, beyond the kinds of the Backend protocol.

        For tools that set a cluster up (nodes, CRDs and their objects, admission policies,
        ``/readyz``), with the same connection pool, credentials and error mapping as every
        other call.

        Args:
            method: ``GET``, ``POST``, ``PATCH``, ``DELETE``...
            path: The API path, e.g. ``/api/v1/nodes``.
            query: Query parameters; ``None`` values are left out.
            body: A JSON-serialisable body, or ``str``/``bytes`` sent as they are.
            content_type: The body's content type (``application/apply-patch+yaml``...).

        Returns:
            The decoded JSON answer; ``{}`` for an empty answer or one that is not JSON
            (``/readyz`` answers ``ok``).

        Raises:
            BackendError: The matching podrunner error for a non-2xx answer or no answer.
        """
        with translate_errors():
            resp = self._open(
                method,
                path,
                query=query,
                body=body,
                content_type=content_type,
                read_timeout=self._read_timeout,
            )
            try:
                data = resp.data
            finally:
                resp.release_conn()
        try:
            result = json.loads(data) if data else {}
        except ValueError:
            return {}
        return result if isinstance(result, dict) else {}

    def _dry_run_query(self, dry_run: bool) -> builtins.list[tuple[str, object]]:
        return [("dryRun", "All")] if dry_run or self._dry_run else []

    # -- CRUD ---------------------------------------------------------------------------------

    @staticmethod
    def _identity(manifest: Mapping[str, Any]) -> tuple[Kind, str | None, str | None]:
        kind = manifest.get("kind")
        if kind not in PLURALS:
            raise error_for_status(400, "BadRequest", f"unsupported kind {kind!r}")
        meta = manifest.get("metadata") or {}
        namespace = None if kind == "Namespace" else (meta.get("namespace") or "default")
        return kind, namespace, meta.get("name")

    def create(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """Create an object (``generateName`` honoured by the server); return it as stored."""
        kind, namespace, name = self._identity(manifest)
        with translate_errors(kind, namespace, name):
            return self._json(
                "POST",
                self._path(kind, namespace),
                query=self._dry_run_query(dry_run),
                body=dict(manifest),
            )

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any]:
        """Return one object, or raise :class:`~podrunner.errors.NotFound`."""
        with translate_errors(kind, namespace, name):
            return self._json("GET", self._path(kind, namespace, name))

    def list(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        """List objects; ``namespace=None`` lists across namespaces."""
        with translate_errors(kind, namespace):
            data = self._json(
                "GET",
                self._path(kind, namespace),
                query=[("labelSelector", label_selector), ("fieldSelector", field_selector)],
            )
        items = data.get("items") or []
        # The server leaves kind/apiVersion off list items; `kubectl get -o json` (and the
        # fake) put them back, so code can dispatch on item["kind"] either way.
        for item in items:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", API_VERSIONS[kind])
        return ObjectList(items, str((data.get("metadata") or {}).get("resourceVersion", "")))

    def replace(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an object; a stale ``resourceVersion`` raises ``Conflict``."""
        kind, namespace, name = self._identity(manifest)
        if not name:
            raise error_for_status(422, "Invalid", "metadata.name is required for replace")
        with translate_errors(kind, namespace, name):
            return self._json(
                "PUT",
                self._path(kind, namespace, name),
                query=self._dry_run_query(False),
                body=dict(manifest),
            )

    def patch(
        self,
        kind: Kind,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Apply a JSON merge patch to an object or its ``status`` subresource."""
        with translate_errors(kind, namespace, name):
            if subresource is not None and (
                subresource != "status" or kind not in _STATUS_SUBRESOURCE
            ):
                # What the server answers for a subresource the kind does not have.
                raise NotFound(
                    "the server could not find the requested resource",
                    kind=kind,
                    namespace=namespace,
                    name=name,
                )
            return self._json(
                "PATCH",
                self._path(kind, namespace, name, subresource),
                query=self._dry_run_query(False),
                body=dict(patch),
                content_type=_MERGE_PATCH,
            )

    def delete(
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
        with translate_errors(kind, namespace, name):
            self._json(
                "DELETE",
                self._path(kind, namespace, name),
                query=self._dry_run_query(False),
                body=options,
            )

    # -- watch --------------------------------------------------------------------------------

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
        """Stream changes after ``resource_version`` as :class:`WatchEvent` objects.

        The request is sent when iteration starts. The iterator ends when the server-side
        timeout expires; ``close()`` closes the connection, also from another thread while
        a read is blocked on it (the socket is shut down and that read ends the stream).

        Raises:
            Gone: The version is too old (HTTP 410 or an in-stream ``ERROR`` with code 410).
            BackendUnavailable: The connection dropped or stalled mid-stream.
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
            # The server ends the stream itself; the margin only catches a connection that
            # died silently (a proxy that kept it open after the server went), so a watch
            # opened for the rest of a run's deadline does not outlive it by more.
            read_timeout = seconds + _WATCH_READ_MARGIN
        stream = WatchStream()
        opened: builtins.list[Any] = []
        stream.gen = self._watch(kind, namespace, query, read_timeout, stream.state, opened)
        stream.interrupt = partial(shut_down, opened)
        return stream

    def _watch(
        self,
        kind: Kind,
        namespace: str | None,
        query: builtins.list[tuple[str, object]],
        read_timeout: float | None,
        handle: StreamState,
        opened: builtins.list[Any],
    ) -> Generator[WatchEvent, None, None]:
        with translate_errors(kind, namespace):
            resp = self._open(
                "GET", self._path(kind, namespace), query=query, read_timeout=read_timeout
            )
        # Published before `closed` is read: a close() racing with the open either sees the
        # response and shuts it down, or this sees `closed` and stops.
        opened.append(resp)
        complete = False
        try:
            if handle.closed:
                return
            buffer = b""
            with translate_errors(kind, namespace):
                for chunk in read_chunks(resp):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        event = self._event(line, kind, namespace)
                        if event is not None:
                            yield event
                if buffer.strip():
                    event = self._event(buffer, kind, namespace)
                    if event is not None:
                        yield event
            complete = True
        except BackendError:
            if not handle.closed:
                raise  # a read cut short by close() is the end of the stream, not an error
        finally:
            close_response(resp, complete)

    @staticmethod
    def _event(line: bytes, kind: str, namespace: str | None) -> WatchEvent | None:
        if not line.strip():
            return None
        try:
            data = json.loads(line)
        except ValueError:
            raise BackendUnavailable(
                f"malformed watch event: {line[:200]!r}", kind=kind, namespace=namespace
            ) from None
        type_: WatchEventType = data.get("type", "ERROR")
        obj = data.get("object") or {}
        if type_ == "ERROR" and obj.get("kind") == "Status":
            code = int(obj.get("code") or 0)
            if code == 410:
                raise error_from_status_body(410, obj, kind=kind, namespace=namespace)
        return WatchEvent(type_, obj)

    # -- logs ---------------------------------------------------------------------------------

    def read_log(
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
    ) -> Iterator[bytes]:
        """Stream a container's log as raw byte chunks, never holding the whole log.

        The request is sent when iteration starts; ``close()`` closes the connection, also
        from another thread while a read is blocked on it (a followed log can stay open after
        its container ended).

        Raises:
            BackendUnavailable: The connection dropped before the server ended the stream, or
                a followed log stayed silent longer than ``log_idle_timeout``.
        """
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
        stream: InterruptibleStream[bytes] = InterruptibleStream()
        opened: builtins.list[Any] = []
        stream.gen = self._read_log(namespace, pod, query, read_timeout, stream.state, opened)
        stream.interrupt = partial(shut_down, opened)
        return stream

    def _read_log(
        self,
        namespace: str,
        pod: str,
        query: builtins.list[tuple[str, object]],
        read_timeout: float | None,
        handle: StreamState,
        opened: builtins.list[Any],
    ) -> Generator[bytes, None, None]:
        with translate_errors("Pod", namespace, pod):
            resp = self._open(
                "GET",
                self._path("Pod", namespace, pod, "log"),
                query=query,
                read_timeout=read_timeout,
                accept="*/*",
            )
        # Published before `closed` is read, as for a watch (see _watch).
        opened.append(resp)
        complete = False
        try:
            if handle.closed:
                return
            with translate_errors("Pod", namespace, pod):
                for chunk in read_chunks(resp):
                    if chunk:
                        yield chunk
            complete = True
        except BackendError:
            if not handle.closed:
                raise  # a read cut short by close() is the end of the stream, not an error
        finally:
            close_response(resp, complete)

    # -- exec ---------------------------------------------------------------------------------

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
        """Run ``argv`` in a running container over the exec websocket (:meth:`open_exec`).

        ``stdin`` is written, then closed with the ``v5.channel.k8s.io`` close signal. On a
        server that only speaks v4 there is no way to send EOF: a command that reads stdin to
        the end then runs until ``timeout``.

        Raises:
            BackendUnavailable: The websocket could not be opened, broke, or ``timeout``
                passed before the command ended.
            BackendError: The server refused (404 no such pod/container, 400 not running...).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        out: list[bytes] = []
        err: list[bytes] = []
        with self.open_exec(
            namespace, pod, container, argv, stdin=stdin is not None, _timeout=timeout
        ) as stream:
            if stdin is not None:
                if stdin:
                    stream.write(stdin)
                stream.close_stdin()
            while (chunk := stream.next_chunk(deadline)) is not None:
                (out if chunk.stream == "stdout" else err).append(chunk.data)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            code = stream.wait(remaining)
        return ExecResult(code, b"".join(out), b"".join(err))

    def open_exec(
        self,
        namespace: str,
        pod: str,
        container: str | None,
        argv: Sequence[str],
        *,
        stdin: bool = False,
        _timeout: float | None = None,
    ) -> WebSocketExecStream:
        """Start ``argv`` in a running container and stream it over the exec websocket.

        The ``v5.channel.k8s.io`` subprotocol is asked for, so that ``close_stdin`` can send
        EOF; frames are read one at a time as the caller iterates (see
        :mod:`~podrunner.backends.kubernetes._exec`).

        Raises:
            BackendUnavailable: The websocket could not be opened.
            BackendError: The server refused (404 no such pod/container, 400 not running...).
        """
        kwargs: dict[str, Any] = {
            "command": list(argv),
            "stdin": stdin,
            "stdout": True,
            "stderr": True,
            "tty": False,
            "_preload_content": False,
        }
        if container:
            kwargs["container"] = container
        if "binary" in inspect.signature(kubernetes.stream.ws_client.WSClient).parameters:
            kwargs["binary"] = True  # raw bytes out, not a lossy utf-8 decode
        if _timeout is not None:
            kwargs["_request_timeout"] = _timeout
        with translate_errors("Pod", namespace, pod):
            ws = kubernetes.stream.stream(
                self._core.connect_get_namespaced_pod_exec, pod, namespace, **kwargs
            )
        return WebSocketExecStream(ws, stdin, (namespace, pod))
