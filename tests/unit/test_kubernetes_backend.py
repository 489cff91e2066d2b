"""KubernetesBackend over real HTTP, against a tiny API server on 127.0.0.1.

The server (``http.server`` in a thread) answers with realistic API JSON, error ``Status``
bodies, chunked watch streams, chunked logs and an exec websocket, so the error mapping, watch
parsing, 410 handling, log streaming and exec channels are exercised through the real client and
urllib3, not mocks. Nothing here dials anything but 127.0.0.1.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import http.server
import json
import socket
import struct
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("kubernetes")

import kubernetes.client

from podrunner.backends.base import Backend, RealClock, WatchEvent
from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend
from podrunner.errors import (
    AlreadyExists,
    BackendError,
    BackendUnavailable,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServerError,
    StatusCause,
    TooManyRequests,
    Unauthorized,
)

TOKEN = "unit-test-token"  # a fixture value, not a secret


# ---------------------------------------------------------------------------------------------
# The fake API server
# ---------------------------------------------------------------------------------------------


def status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    """A Kubernetes ``Status`` failure body."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def pod(name: str = "p1", namespace: str = "default", rv: str = "100") -> dict[str, Any]:
    """A pod as the API server returns it."""
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": "5c1d0a52-0000-4000-8000-000000000001",
            "resourceVersion": rv,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "x"},
        },
        "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }


class Request:
    """One request as the server saw it."""

    def __init__(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        self.method = handler.command
        self.path = parsed.path
        self.query = dict(urllib.parse.parse_qsl(parsed.query))
        self.headers = {k.lower(): v for k, v in handler.headers.items()}
        self.body = body

    def json(self) -> Any:
        """The request body, decoded."""
        return json.loads(self.body)


Route = Callable[["Handler", Request], None]


class Handler(http.server.BaseHTTPRequestHandler):
    """Dispatches to the route the test registered for ``(method, path)``."""

    protocol_version = "HTTP/1.1"
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(self, self.rfile.read(length) if length else b"")
        self.server.requests.append(request)
        route = self.server.routes.get((request.method, request.path))
        if route is None:
            self.send_json(404, status(404, "NotFound", "the server could not find it"))
            return
        route(self, request)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    # -- answers ----------------------------------------------------------------------------

    def send_json(self, code: int, body: object, headers: dict[str, str] | None = None) -> None:
        """Answer with a JSON body."""
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def send_raw(self, code: int, data: bytes, content_type: str = "text/plain") -> None:
        """Answer with an arbitrary body."""
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_chunked(self, content_type: str = "application/json") -> None:
        """Begin a chunked 200 answer (what watches and followed logs look like)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        """Send one chunk and flush it to the socket."""
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self) -> None:
        """Send the terminating chunk."""
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop(self) -> None:
        """Close the connection without finishing the answer."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True


class ApiServer(http.server.ThreadingHTTPServer):
    """The server: routes set per test, every request recorded."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Request] = []

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def route(self, method: str, path: str) -> Callable[[Route], Route]:
        """Register a handler function for ``method path``."""

        def register(fn: Route) -> Route:
            self.routes[(method, path)] = fn
            return fn

        return register

    def answer(self, method: str, path: str, code: int, body: object, **headers: str) -> None:
        """Register a fixed JSON answer."""
        self.routes[(method, path)] = lambda h, _r: h.send_json(code, body, headers)


def kubeconfig_yaml(server: str, token: str = TOKEN) -> str:
    """A one-context kubeconfig for ``server`` with a bearer token."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server}}],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )


@pytest.fixture
def server() -> Iterator[ApiServer]:
    """A fresh API server on 127.0.0.1."""
    srv = ApiServer()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def backend(server: ApiServer) -> Iterator[KubernetesBackend]:
    """A backend pointed at the local server."""
    b = KubernetesBackend(
        ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(server.url)),
        request_timeout=(2.0, 2.0),
    )
    try:
        yield b
    finally:
        b.close()


# ---------------------------------------------------------------------------------------------
# CRUD: raw JSON, paths, query parameters, bodies
# ---------------------------------------------------------------------------------------------


def test_satisfies_protocol_with_real_clock(backend: KubernetesBackend) -> None:
    """The backend is a Backend and its clock is the machine's."""
    assert isinstance(backend, Backend)
    assert isinstance(backend.clock, RealClock)


def test_get_returns_server_json_verbatim(server: ApiServer, backend: KubernetesBackend) -> None:
    """get() returns the exact JSON the server sent, with a bearer token and JSON Accept."""
    body = pod()
    body["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:x": {}}}]
    server.answer("GET", "/api/v1/namespaces/default/pods/p1", 200, body)
    assert backend.get("Pod", "default", "p1") == body
    request = server.requests[-1]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/json"


def test_create_posts_manifest_to_its_namespace(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """create() POSTs the manifest unchanged to the manifest's namespace."""
    server.route("POST", "/api/v1/namespaces/work/pods")(
        lambda h, r: h.send_json(201, {**r.json(), "status": {"phase": "Pending"}})
    )
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "x-", "namespace": "work"},
    }
    created = backend.create(manifest)
    assert created["status"] == {"phase": "Pending"}
    assert server.requests[-1].json() == manifest
    assert "dryRun" not in server.requests[-1].query


def test_create_dry_run_sends_dry_run_all(server: ApiServer, backend: KubernetesBackend) -> None:
    """create(dry_run=True) asks for a server-side dry run."""
    server.route("POST", "/api/v1/namespaces/default/configmaps")(
        lambda h, r: h.send_json(201, r.json())
    )
    backend.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, dry_run=True
    )
    assert server.requests[-1].query["dryRun"] == "All"


def test_backend_dry_run_applies_to_every_mutation(server: ApiServer) -> None:
    """KubernetesBackend(dry_run=True) dry-runs create, replace, patch and delete."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}}
    server.answer("POST", "/api/v1/namespaces/n/configmaps", 201, cm)
    for method in ("PUT", "PATCH", "DELETE"):
        server.answer(method, "/api/v1/namespaces/n/configmaps/c", 200, cm)
    cluster = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(server.url))
    with KubernetesBackend(cluster, dry_run=True) as b:
        b.create(cm)
        b.replace(cm)
        b.patch("ConfigMap", "n", "c", {"data": {"a": "1"}})
        b.delete("ConfigMap", "n", "c")
    assert [r.query.get("dryRun") for r in server.requests] == ["All"] * 4


def test_namespace_is_cluster_scoped(server: ApiServer, backend: KubernetesBackend) -> None:
    """Namespaces live at /api/v1/namespaces whatever namespace the metadata names."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    server.answer("POST", "/api/v1/namespaces", 201, ns)
    server.answer("GET", "/api/v1/namespaces/team", 200, ns)
    assert backend.create(ns) == ns
    assert backend.get("Namespace", None, "team") == ns


def test_list_fills_item_kind_and_sends_selectors(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """list() encodes both selectors and restores kind/apiVersion on items, like kubectl."""
    item = pod()
    del item["kind"], item["apiVersion"]
    server.answer(
        "GET",
        "/api/v1/namespaces/default/pods",
        200,
        {
            "kind": "PodList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "77"},
            "items": [item],
        },
    )
    result = backend.list(
        "Pod", "default", label_selector="app in (x,y),!z", field_selector="status.phase=Running"
    )
    assert result.resource_version == "77"
    assert result.items[0]["kind"] == "Pod"
    assert result.items[0]["apiVersion"] == "v1"
    assert server.requests[-1].query == {
        "labelSelector": "app in (x,y),!z",
        "fieldSelector": "status.phase=Running",
    }


def test_list_across_namespaces(server: ApiServer, backend: KubernetesBackend) -> None:
    """namespace=None lists a namespaced kind across all namespaces."""
    server.answer("GET", "/api/v1/events", 200, {"metadata": {"resourceVersion": "5"}, "items": []})
    assert backend.list("Event", None).items == []


def test_replace_puts_to_the_object(server: ApiServer, backend: KubernetesBackend) -> None:
    """replace() PUTs the whole manifest to the object's own path."""
    server.route("PUT", "/api/v1/namespaces/default/secrets/s")(
        lambda h, r: h.send_json(200, r.json())
    )
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "s", "resourceVersion": "9"},
    }
    assert backend.replace(secret) == secret


def test_patch_is_a_merge_patch(server: ApiServer, backend: KubernetesBackend) -> None:
    """patch() sends application/merge-patch+json, to the status subresource when asked."""
    server.answer("PATCH", "/api/v1/namespaces/default/pods/p1/status", 200, pod())
    backend.patch("Pod", "default", "p1", {"status": {"phase": "Running"}}, subresource="status")
    request = server.requests[-1]
    assert request.headers["content-type"] == "application/merge-patch+json"
    assert request.json() == {"status": {"phase": "Running"}}


def test_patch_status_of_kind_without_status_is_not_found(backend: KubernetesBackend) -> None:
    """ConfigMaps have no status subresource: NotFound, as the server would answer."""
    with pytest.raises(NotFound):
        backend.patch("ConfigMap", "default", "c", {"a": 1}, subresource="status")


def test_delete_sends_background_propagation_and_grace(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """delete() sends DeleteOptions with Background propagation and the grace period."""
    server.answer("DELETE", "/api/v1/namespaces/default/pods/p1", 200, pod())
    backend.delete("Pod", "default", "p1", grace_period_seconds=0)
    assert server.requests[-1].json() == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Background",
        "gracePeriodSeconds": 0,
    }


def test_names_are_path_quoted(server: ApiServer, backend: KubernetesBackend) -> None:
    """A hostile name cannot escape its path segment."""
    with pytest.raises(NotFound):
        backend.get("Pod", "default", "../../namespaces")
    assert server.requests[-1].path == "/api/v1/namespaces/default/pods/..%2F..%2Fnamespaces"


# ---------------------------------------------------------------------------------------------
# Error conversion
# ---------------------------------------------------------------------------------------------

CAUSES = [
    {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "Bad_Name"',
        "field": "metadata.name",
    },
    {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers"},
]


@pytest.mark.parametrize(
    ("code", "body", "expected"),
    [
        (400, status(400, "BadRequest", "field label not supported: spec.foo"), BadRequest),
        (401, status(401, "Unauthorized", "Unauthorized"), Unauthorized),
        (403, status(403, "Forbidden", 'violates PodSecurity "restricted:latest"'), Forbidden),
        (404, status(404, "NotFound", 'pods "p1" not found', name="p1", kind="pods"), NotFound),
        (409, status(409, "AlreadyExists", 'pods "p1" already exists'), AlreadyExists),
        (409, status(409, "Conflict", "the object has been modified"), Conflict),
        (410, status(410, "Expired", "too old resource version: 1 (200)"), Gone),
        (422, status(422, "Invalid", 'Pod "Bad_Name" is invalid', causes=CAUSES), Invalid),
        (500, status(500, "InternalError", "etcd timeout"), ServerError),
        (503, status(503, "ServiceUnavailable", "try later"), ServerError),
    ],
)
def test_status_answers_map_to_errors(
    server: ApiServer,
    backend: KubernetesBackend,
    code: int,
    body: dict[str, Any],
    expected: type[BackendError],
) -> None:
    """Each HTTP status and Status reason becomes its podrunner error, client error as cause."""
    server.answer("GET", "/api/v1/namespaces/default/pods/p1", code, body)
    with pytest.raises(expected) as info:
        backend.get("Pod", "default", "p1")
    error = info.value
    assert error.status == code
    assert error.reason == body["reason"]
    assert error.message == body["message"]
    assert (error.kind, error.namespace, error.name) == ("Pod", "default", "p1")
    assert isinstance(error.__cause__, kubernetes.client.ApiException)


def test_invalid_keeps_every_cause(server: ApiServer, backend: KubernetesBackend) -> None:
    """A 422 keeps Status.details.causes as StatusCause objects, in order."""
    body = status(422, "Invalid", "Pod is invalid", name="Bad_Name", kind="Pod", causes=CAUSES)
    server.answer("POST", "/api/v1/namespaces/default/pods", 422, body)
    with pytest.raises(Invalid) as info:
        backend.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}})
    assert info.value.causes == (
        StatusCause("metadata.name", "FieldValueInvalid", 'Invalid value: "Bad_Name"'),
        StatusCause("spec.containers", "FieldValueRequired", "Required value"),
    )


def test_too_many_requests_keeps_retry_after(server: ApiServer, backend: KubernetesBackend) -> None:
    """A 429's Retry-After header becomes TooManyRequests.retry_after."""
    server.answer(
        "GET",
        "/api/v1/namespaces/default/pods/p1",
        429,
        status(429, "TooManyRequests", "slow down"),
        **{"Retry-After": "7"},
    )
    with pytest.raises(TooManyRequests) as info:
        backend.get("Pod", "default", "p1")
    assert info.value.retry_after == 7.0


def test_non_json_error_body_still_maps(server: ApiServer, backend: KubernetesBackend) -> None:
    """An HTML 502 from a proxy in front of the API server is still a ServerError."""
    server.route("GET", "/api/v1/namespaces/default/pods/p1")(
        lambda h, _r: h.send_raw(502, b"<html>bad gateway</html>", "text/html")
    )
    with pytest.raises(ServerError) as info:
        backend.get("Pod", "default", "p1")
    assert info.value.status == 502


def test_connection_refused_is_backend_unavailable() -> None:
    """Nobody listening: BackendUnavailable with the urllib3 error as cause."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cluster = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(f"http://127.0.0.1:{port}"))
    with (
        KubernetesBackend(cluster, request_timeout=1.0) as b,
        pytest.raises(BackendUnavailable) as info,
    ):
        b.get("Pod", "default", "p1")
    assert info.value.status == 0
    assert info.value.__cause__ is not None


def test_read_timeout_is_backend_unavailable(server: ApiServer) -> None:
    """A server that answers too slowly: BackendUnavailable, not a hang."""
    release = threading.Event()

    def slow(h: Handler, _r: Request) -> None:
        release.wait(5)
        h.send_json(200, pod())

    server.route("GET", "/api/v1/namespaces/default/pods/p1")(slow)
    cluster = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(server.url))
    try:
        with KubernetesBackend(cluster, request_timeout=(1.0, 0.3)) as b:
            b.configuration.retries = False  # one attempt: the timeout itself is under test
            b.api_client.rest_client = type(b.api_client.rest_client)(b.configuration)
            with pytest.raises(BackendUnavailable):
                b.get("Pod", "default", "p1")
    finally:
        release.set()


# ---------------------------------------------------------------------------------------------
# Watch
# ---------------------------------------------------------------------------------------------


def event_line(type_: str, obj: dict[str, Any]) -> bytes:
    """One newline-terminated watch event."""
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


def test_watch_parses_events_split_across_chunks(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """Events arrive in order even when chunk boundaries cut through lines."""
    stream = (
        event_line("ADDED", pod(rv="101"))
        + event_line("MODIFIED", pod(rv="102"))
        + event_line(
            "BOOKMARK", {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "150"}}
        )
        + event_line("DELETED", pod(rv="103"))
    )

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        for i in range(0, len(stream), 37):
            h.chunk(stream[i : i + 37])
        h.end_chunked()

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    events = list(
        backend.watch(
            "Pod",
            "default",
            label_selector="app=x",
            resource_version="100",
            timeout_seconds=30,
            allow_bookmarks=True,
        )
    )
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "BOOKMARK", "DELETED"]
    assert [e.object["metadata"]["resourceVersion"] for e in events] == ["101", "102", "150", "103"]
    assert server.requests[-1].query == {
        "watch": "1",
        "labelSelector": "app=x",
        "resourceVersion": "100",
        "timeoutSeconds": "30",
        "allowWatchBookmarks": "true",
    }


def test_watch_closed_from_another_thread_ends_a_blocked_read(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """close() from another thread ends a read blocked on a silent stream, with no error."""
    release = threading.Event()
    sent = threading.Event()

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ADDED", pod(rv="101")))
        sent.set()
        release.wait(30)  # then silence, as an idle watch is

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    stream = backend.watch("Pod", "default", timeout_seconds=600)
    got: list[WatchEvent] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            got.extend(stream)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert sent.wait(10)
        while not got:  # the first event is read; the reader now blocks on the socket
            time.sleep(0.001)
        stream.close()
        thread.join(10)
        # It ended because it was closed: the server is still holding the stream open.
        assert not thread.is_alive()
        assert not release.is_set()
    finally:
        release.set()
    assert errors == []
    assert [e.type for e in got] == ["ADDED"]


def test_a_dropped_watch_is_freed_at_once(server: ApiServer, backend: KubernetesBackend) -> None:
    """A stream dropped without close() is freed by reference counting, not by the GC.

    In a reference cycle the socket could be finalised before the generator closed it,
    which Python reports as an unclosed socket in whatever test runs the collector.
    """

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ADDED", pod(rv="101")))
        h.chunk(event_line("ADDED", pod(rv="102")))
        h.end_chunked()

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    gc.disable()
    try:
        stream = backend.watch("Pod", "default", timeout_seconds=60)
        assert next(stream).type == "ADDED"
        gen = weakref.ref(stream.gen)  # type: ignore[attr-defined]
        del stream
        assert gen() is None
    finally:
        gc.enable()


def test_watch_http_410_raises_gone(server: ApiServer, backend: KubernetesBackend) -> None:
    """A watch refused with HTTP 410 raises Gone."""
    server.answer(
        "GET",
        "/api/v1/namespaces/default/pods",
        410,
        status(410, "Expired", "too old resource version: 1 (500)"),
    )
    with pytest.raises(Gone):
        list(backend.watch("Pod", "default", resource_version="1"))


def test_watch_in_stream_410_raises_gone_after_earlier_events(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """An ERROR event with code 410 raises Gone after the events before it were delivered."""

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ADDED", pod(rv="101")))
        h.chunk(event_line("ERROR", status(410, "Expired", "too old resource version: 100 (300)")))
        h.end_chunked()

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    seen: list[WatchEvent] = []
    with pytest.raises(Gone) as info:
        seen.extend(backend.watch("Pod", "default", resource_version="100"))
    assert [e.type for e in seen] == ["ADDED"]
    assert info.value.reason == "Expired"


def test_watch_other_error_events_are_yielded(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """An ERROR event that is not a 410 is handed to the caller as an event."""

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ERROR", status(500, "InternalError", "boom")))
        h.end_chunked()

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    (event,) = list(backend.watch("Pod", "default"))
    assert event.type == "ERROR"
    assert event.object["code"] == 500


def test_watch_dropped_mid_stream_is_backend_unavailable(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """A watch whose connection breaks mid-stream raises instead of ending quietly."""

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ADDED", pod(rv="101")))
        h.drop()

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    watch = backend.watch("Pod", "default")
    assert next(watch).type == "ADDED"
    with pytest.raises(BackendUnavailable):
        next(watch)


def test_watch_close_releases_the_connection(server: ApiServer, backend: KubernetesBackend) -> None:
    """Closing the watch iterator closes its connection: the server's writes start failing."""
    disconnected = threading.Event()

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        try:
            for i in range(400):
                h.chunk(event_line("MODIFIED", pod(rv=str(200 + i))))
                time.sleep(0.01)
        except OSError:
            disconnected.set()
            h.close_connection = True

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    watch = backend.watch("Pod", "default")
    assert next(watch).type == "MODIFIED"
    watch.close()
    assert disconnected.wait(3)
    server.answer("GET", "/api/v1/namespaces/default/pods/p1", 200, pod())
    assert backend.get("Pod", "default", "p1")["metadata"]["name"] == "p1"


def test_watch_stream_ending_ends_iteration(server: ApiServer, backend: KubernetesBackend) -> None:
    """A server-side timeout (clean end of stream) ends the iterator without error."""

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.end_chunked()

    server.route("GET", "/api/v1/namespaces/default/pods")(serve)
    assert list(backend.watch("Pod", "default", timeout_seconds=0.2)) == []
    assert server.requests[-1].query["timeoutSeconds"] == "1"


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------

LOG_PATH = "/api/v1/namespaces/default/pods/p1/log"


def test_read_log_sends_every_option(server: ApiServer, backend: KubernetesBackend) -> None:
    """Every read_log option becomes its query parameter."""
    server.route("GET", LOG_PATH)(lambda h, _r: h.send_raw(200, b"hi\n"))
    data = b"".join(
        backend.read_log(
            "default",
            "p1",
            "main",
            follow=True,
            timestamps=True,
            since_time="2026-01-01T00:00:00Z",
            since_seconds=10,
            tail_lines=5,
            limit_bytes=100,
            previous=True,
        )
    )
    assert data == b"hi\n"
    assert server.requests[-1].query == {
        "container": "main",
        "follow": "true",
        "timestamps": "true",
        "sinceTime": "2026-01-01T00:00:00Z",
        "sinceSeconds": "10",
        "tailLines": "5",
        "limitBytes": "100",
        "previous": "true",
    }


def test_read_log_streams_before_the_log_ends(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """The first chunk reaches the caller while the server is still holding back the rest."""
    gate = threading.Event()

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked("text/plain")
        h.chunk(b"first line\n")
        gate.wait(5)
        h.chunk(b"second line\n")
        h.end_chunked()

    server.route("GET", LOG_PATH)(serve)
    stream = backend.read_log("default", "p1", follow=True)
    assert next(stream) == b"first line\n"
    gate.set()
    assert b"".join(stream) == b"second line\n"


def test_read_log_large_log_arrives_in_bounded_chunks(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """An 8 MiB log arrives as many chunks of at most 64 KiB, never as one buffer."""
    block = (b"x" * 1023 + b"\n") * 1024

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked("text/plain")
        for _ in range(8):
            h.chunk(block)
        h.end_chunked()

    server.route("GET", LOG_PATH)(serve)
    sizes = [len(c) for c in backend.read_log("default", "p1")]
    assert sum(sizes) == 8 * len(block)
    assert max(sizes) <= 64 * 1024
    assert len(sizes) >= 128


def test_read_log_drop_mid_stream_is_backend_unavailable(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """A followed log whose connection breaks raises BackendUnavailable, not a silent end."""

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked("text/plain")
        h.chunk(b"partial\n")
        h.drop()

    server.route("GET", LOG_PATH)(serve)
    stream = backend.read_log("default", "p1", follow=True)
    assert next(stream) == b"partial\n"
    with pytest.raises(BackendUnavailable):
        next(stream)


def test_read_log_close_closes_the_connection(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """Stopping a followed log closes its connection."""
    disconnected = threading.Event()

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked("text/plain")
        try:
            for i in range(500):
                h.chunk(f"line {i}\n".encode())
                time.sleep(0.01)
        except OSError:
            disconnected.set()
            h.close_connection = True

    server.route("GET", LOG_PATH)(serve)
    stream = backend.read_log("default", "p1", follow=True)
    next(stream)
    stream.close()
    assert disconnected.wait(3)


def test_read_log_errors_map(server: ApiServer, backend: KubernetesBackend) -> None:
    """A log request for a container that is not running maps the server's 400."""
    server.answer(
        "GET",
        LOG_PATH,
        400,
        status(400, "BadRequest", 'container "main" in pod "p1" is waiting to start'),
    )
    with pytest.raises(BadRequest, match="waiting to start"):
        b"".join(backend.read_log("default", "p1", "main"))


# ---------------------------------------------------------------------------------------------
# Exec over a real websocket
# ---------------------------------------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
EXEC_PATH = "/api/v1/namespaces/default/pods/p1/exec"


def ws_read_frame(rfile: Any) -> tuple[int, bytes]:
    """Read one client frame (always masked) and return (opcode, payload)."""
    b1, b2 = rfile.read(2)
    length = b2 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", rfile.read(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", rfile.read(8))
    mask = rfile.read(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(rfile.read(length)))
    return b1 & 0x0F, data


def ws_frame(payload: bytes, opcode: int = 2) -> bytes:
    """One unmasked server frame."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


def exec_route(
    server: ApiServer,
    *,
    protocol: str = "v5.channel.k8s.io",
    result: dict[str, Any] | None = None,
    hang: threading.Event | None = None,
) -> dict[str, Any]:
    """Serve exec: echo stdin upper-cased to stdout, write to stderr, report ``result``."""
    seen: dict[str, Any] = {}

    def serve(h: Handler, r: Request) -> None:
        seen["query"] = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
        seen["protocols"] = r.headers.get("sec-websocket-protocol", "")
        accept = base64.b64encode(
            hashlib.sha1((r.headers["sec-websocket-key"] + WS_GUID).encode()).digest()
        ).decode()
        h.send_response(101)
        h.send_header("Upgrade", "websocket")
        h.send_header("Connection", "Upgrade")
        h.send_header("Sec-WebSocket-Accept", accept)
        h.send_header("Sec-WebSocket-Protocol", protocol)
        h.end_headers()
        h.wfile.flush()
        stdin = b""
        if "true" in seen["query"].get("stdin", []):
            while True:
                opcode, data = ws_read_frame(h.rfile)
                if opcode == 8:
                    return
                if data[:1] == b"\x00":
                    stdin += data[1:]
                elif data == b"\xff\x00":  # v5: the client closed stdin
                    break
        seen["stdin"] = stdin
        if hang is not None:
            hang.wait(10)  # the test releases it; until then the command "runs"
            seen["finished"] = True
            return
        h.wfile.write(ws_frame(b"\x01" + stdin.upper()))
        h.wfile.write(ws_frame(b"\x02" + b"warning\n"))
        h.wfile.write(
            ws_frame(b"\x03" + json.dumps(result or {"metadata": {}, "status": "Success"}).encode())
        )
        h.wfile.write(ws_frame(b"\x03\xe8", opcode=8))
        h.wfile.flush()
        h.close_connection = True

    server.route("GET", EXEC_PATH)(serve)
    return seen


def test_exec_success_collects_output_and_closes_stdin(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """Exec writes stdin, closes it (v5), collects stdout/stderr and reads exit code 0."""
    seen = exec_route(server)
    result = backend.exec("default", "p1", "main", ["cat"], stdin=b"hello \xff", timeout=5)
    assert result.exit_code == 0
    assert result.stdout == b"HELLO \xff"
    assert result.stderr == b"warning\n"
    assert seen["stdin"] == b"hello \xff"
    assert seen["query"]["command"] == ["cat"]
    assert seen["query"]["container"] == ["main"]
    assert "v5.channel.k8s.io" in seen["protocols"]


def test_exec_non_zero_exit_code_from_status_channel(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """A NonZeroExitCode Status on channel 3 gives the exit code from its ExitCode cause."""
    exec_route(
        server,
        result={
            "metadata": {},
            "status": "Failure",
            "message": "command terminated with non-zero exit code: exit status 3",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": "3"}]},
        },
    )
    result = backend.exec("default", "p1", None, ["sh", "-c", "exit 3"], timeout=5)
    assert result.exit_code == 3


def test_exec_failure_without_exit_code_raises(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """A Failure Status with no ExitCode cause (command not found) raises, never exit 0."""
    exec_route(
        server,
        result={
            "metadata": {},
            "status": "Failure",
            "message": 'exec: "nope": executable file not found in $PATH',
            "reason": "InternalError",
            "code": 500,
        },
    )
    with pytest.raises(ServerError, match="executable file not found"):
        backend.exec("default", "p1", None, ["nope"], timeout=5)


def test_exec_timeout_raises_backend_unavailable(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """A command still running at the timeout raises BackendUnavailable."""
    release = threading.Event()
    seen = exec_route(server, hang=release)
    try:
        with pytest.raises(BackendUnavailable, match="timed out"):
            backend.exec("default", "p1", None, ["sleep", "60"], timeout=0.5)
        # The command was still "running": the client gave up by itself instead of waiting
        # for the server (which would have ended the command after 10 s).
        assert "finished" not in seen
    finally:
        release.set()


def test_exec_handshake_refusal_keeps_the_status(
    server: ApiServer, backend: KubernetesBackend
) -> None:
    """A refused exec upgrade (pod not found) is NotFound, not a generic connection error."""
    server.answer("GET", EXEC_PATH, 404, status(404, "NotFound", 'pods "p1" not found'))
    with pytest.raises(NotFound):
        backend.exec("default", "p1", None, ["true"], timeout=5)


# ---------------------------------------------------------------------------------------------
# Credentials and configuration
# ---------------------------------------------------------------------------------------------


class RotatingCluster:
    """A cluster whose exec plugin hands out a new token on every load."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.tokens = iter(["t1", "t2", "t2"])

    def load_client_configuration(self) -> Any:
        """Build a configuration with the next token."""
        token = next(self.tokens)
        config = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(self.server, token))
        return config.load_client_configuration()

    def reload(self) -> RotatingCluster:
        """Nothing to re-read: every load already hands out the next token."""
        return self


def test_refresh_credentials_adopts_a_new_token(server: ApiServer) -> None:
    """refresh_credentials() reloads, reports a change, and later requests carry the new token."""
    server.answer("GET", "/api/v1/namespaces/default/pods/p1", 200, pod())
    with KubernetesBackend(RotatingCluster(server.url)) as b:
        b.get("Pod", "default", "p1")
        assert server.requests[-1].headers["authorization"] == "Bearer t1"
        assert b.refresh_credentials() is True
        b.get("Pod", "default", "p1")
        assert server.requests[-1].headers["authorization"] == "Bearer t2"
        assert b.refresh_credentials() is False


def test_refresh_credentials_rereads_a_kubeconfig_file(server: ApiServer, tmp_path: Any) -> None:
    """A kubeconfig file rewritten with a new token is picked up by refresh_credentials()."""
    path = tmp_path / "config"
    path.write_text(kubeconfig_yaml(server.url, "old"))
    server.answer("GET", "/api/v1/namespaces/default/pods/p1", 200, pod())
    with KubernetesBackend(ClusterConfig.from_kubeconfig_file(path)) as b:
        path.write_text(kubeconfig_yaml(server.url, "new"))
        assert b.refresh_credentials() is True
        b.get("Pod", "default", "p1")
        assert server.requests[-1].headers["authorization"] == "Bearer new"


def test_pool_is_sized_and_shared(server: ApiServer) -> None:
    """pool_size sets connection_pool_maxsize; concurrent calls share one client."""
    server.answer("GET", "/api/v1/namespaces/default/pods/p1", 200, pod())
    cluster = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(server.url))
    with KubernetesBackend(cluster, pool_size=8) as b:
        assert b.configuration.connection_pool_maxsize == 8
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    b.get("Pod", "default", "p1")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(server.requests) == 80


# ---------------------------------------------------------------------------------------------
# Raw requests beyond the protocol's kinds (what the kwok control plane sets up with)
# ---------------------------------------------------------------------------------------------


def test_request_reaches_any_path_with_the_same_errors(
    backend: KubernetesBackend, server: ApiServer
) -> None:
    """request() answers JSON for any API path; errors are the protocol's own."""
    node = {"kind": "Node", "metadata": {"name": "n1"}}
    server.answer("GET", "/api/v1/nodes/n1", 200, node)
    server.answer(
        "GET", "/api/v1/nodes/gone", 404, status(404, "NotFound", 'nodes "gone" not found')
    )
    assert backend.request("GET", "/api/v1/nodes/n1") == node
    with pytest.raises(NotFound):
        backend.request("GET", "/api/v1/nodes/gone")
    assert server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


def test_request_of_a_text_answer_is_empty(backend: KubernetesBackend, server: ApiServer) -> None:
    """/readyz answers ``ok`` as text: a 2xx that is not JSON gives ``{}``."""

    @server.route("GET", "/readyz")
    def readyz(handler: Handler, _request: Request) -> None:
        handler.send_raw(200, b"ok")

    assert backend.request("GET", "/readyz") == {}


def test_request_sends_a_server_side_apply(backend: KubernetesBackend, server: ApiServer) -> None:
    """A JSON text body goes out as it is, with the content type and query asked for."""
    path = "/apis/kwok.x-k8s.io/v1alpha1/namespaces/default/logs/p1"
    server.answer("PATCH", path, 200, {"kind": "Logs"})
    body = json.dumps({"kind": "Logs", "metadata": {"name": "p1"}})
    backend.request(
        "PATCH",
        path,
        query=[("fieldManager", "podrunner-kwok"), ("force", "true"), ("dryRun", None)],
        body=body,
        content_type="application/apply-patch+yaml",
    )
    sent = server.requests[-1]
    assert sent.headers["content-type"] == "application/apply-patch+yaml"
    assert sent.query == {"fieldManager": "podrunner-kwok", "force": "true"}
    assert sent.json() == {"kind": "Logs", "metadata": {"name": "p1"}}
