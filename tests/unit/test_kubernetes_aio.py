"""AsyncKubernetesBackend over real HTTP (aiohttp), against the tiny API server on 127.0.0.1.

The same server as ``test_kubernetes_backend.py`` (the sync backend's tests): realistic API
JSON, ``Status`` error bodies, chunked watch streams and logs. The async backend must answer
exactly as the sync one does, and never start a thread for a call or a stream.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

pytest.importorskip("aiohttp")

from test_kubernetes_backend import (
    TOKEN,
    ApiServer,
    Handler,
    Request,
    RotatingCluster,
    event_line,
    exec_route,
    kubeconfig_yaml,
    pod,
    server,  # noqa: F401  (the fixture)
    status,
)

from podrunner import AsyncRetryingBackend
from podrunner.backends.base import AsyncBackend
from podrunner.backends.kubernetes import ClusterConfig
from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend
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
    TooManyRequests,
    Unauthorized,
)

pytestmark = pytest.mark.asyncio

POD_PATH = "/api/v1/namespaces/default/pods/p1"
PODS_PATH = "/api/v1/namespaces/default/pods"
LOG_PATH = "/api/v1/namespaces/default/pods/p1/log"


@pytest_asyncio.fixture
async def backend(server: ApiServer) -> AsyncIterator[AsyncKubernetesBackend]:  # noqa: F811
    """An async backend pointed at the local server."""
    b = AsyncKubernetesBackend(
        ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(server.url)),
        request_timeout=(2.0, 2.0),
    )
    try:
        yield b
    finally:
        await b.close()


async def test_crud_speaks_raw_json(server: ApiServer, backend: AsyncKubernetesBackend) -> None:  # noqa: F811
    """Objects come back verbatim; paths, bodies, queries and the token are the sync ones."""
    assert isinstance(backend, AsyncBackend)
    server.answer("GET", POD_PATH, 200, pod())
    assert await backend.get("Pod", "default", "p1") == pod()
    assert server.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    server.answer("POST", PODS_PATH, 201, pod())
    await backend.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"}})
    assert server.requests[-1].json()["metadata"]["name"] == "p1"
    server.answer("GET", PODS_PATH, 200, {"metadata": {"resourceVersion": "7"}, "items": [{}]})
    listed = await backend.list("Pod", "default", label_selector="a=b", field_selector="x=y")
    assert (listed.resource_version, listed.items[0]["kind"]) == ("7", "Pod")
    assert server.requests[-1].query == {"labelSelector": "a=b", "fieldSelector": "x=y"}
    server.answer("PATCH", POD_PATH, 200, pod())
    await backend.patch("Pod", "default", "p1", {"metadata": {"labels": {"a": "b"}}})
    assert server.requests[-1].headers["content-type"] == "application/merge-patch+json"
    server.answer("DELETE", POD_PATH, 200, status(200, "", ""))
    await backend.delete("Pod", "default", "p1", grace_period_seconds=0)
    assert server.requests[-1].json()["gracePeriodSeconds"] == 0


CAUSES = [{"field": "metadata.name", "reason": "FieldValueInvalid", "message": "bad"}]


@pytest.mark.parametrize(
    ("code", "body", "expected"),
    [
        (400, status(400, "BadRequest", "field label not supported"), BadRequest),
        (401, status(401, "Unauthorized", "Unauthorized"), Unauthorized),
        (403, status(403, "Forbidden", "forbidden"), Forbidden),
        (404, status(404, "NotFound", 'pods "p1" not found', name="p1", kind="pods"), NotFound),
        (409, status(409, "AlreadyExists", 'pods "p1" already exists'), AlreadyExists),
        (409, status(409, "Conflict", "the object has been modified"), Conflict),
        (410, status(410, "Expired", "too old resource version"), Gone),
        (422, status(422, "Invalid", "Pod is invalid", causes=CAUSES), Invalid),
        (500, status(500, "InternalError", "etcd timeout"), ServerError),
        (503, status(503, "ServiceUnavailable", "try later"), ServerError),
    ],
)
async def test_status_answers_map_to_errors(
    server: ApiServer,  # noqa: F811
    backend: AsyncKubernetesBackend,
    code: int,
    body: dict[str, Any],
    expected: type[BackendError],
) -> None:
    """Each HTTP status and Status reason becomes the same podrunner error as the sync one."""
    server.answer("GET", POD_PATH, code, body)
    with pytest.raises(expected) as info:
        await backend.get("Pod", "default", "p1")
    error = info.value
    assert (error.status, error.reason, error.message) == (code, body["reason"], body["message"])
    assert (error.kind, error.namespace, error.name) == ("Pod", "default", "p1")


async def test_retry_after_and_non_json_errors(
    server: ApiServer,  # noqa: F811
    backend: AsyncKubernetesBackend,
) -> None:
    """A 429 keeps Retry-After; a proxy's HTML 502 is still a ServerError."""
    server.answer(
        "GET", POD_PATH, 429, status(429, "TooManyRequests", "slow"), **{"Retry-After": "7"}
    )
    with pytest.raises(TooManyRequests) as info:
        await backend.get("Pod", "default", "p1")
    assert info.value.retry_after == 7.0
    server.route("GET", POD_PATH)(lambda h, _r: h.send_raw(502, b"<html>bad</html>", "text/html"))
    with pytest.raises(ServerError) as bad:
        await backend.get("Pod", "default", "p1")
    assert bad.value.status == 502


async def test_no_answer_is_backend_unavailable(server: ApiServer) -> None:  # noqa: F811
    """Nobody listening, or an answer too slow: BackendUnavailable with the cause kept."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(f"http://127.0.0.1:{port}"))
    async with AsyncKubernetesBackend(refused, request_timeout=1.0) as b:
        with pytest.raises(BackendUnavailable) as info:
            await b.get("Pod", "default", "p1")
        assert info.value.__cause__ is not None
    release = threading.Event()

    def slow(h: Handler, _r: Request) -> None:
        release.wait(5)
        h.send_json(200, pod())

    server.route("GET", POD_PATH)(slow)
    cluster = ClusterConfig.from_kubeconfig_yaml(kubeconfig_yaml(server.url))
    try:
        async with AsyncKubernetesBackend(cluster, request_timeout=(1.0, 0.3)) as b:
            with pytest.raises(BackendUnavailable):
                await b.get("Pod", "default", "p1")
    finally:
        release.set()


async def test_watch_events_bookmarks_and_query(
    server: ApiServer,  # noqa: F811
    backend: AsyncKubernetesBackend,
) -> None:
    """Events split across chunks arrive in order; bookmarks pass; the query is the sync one."""
    body = (
        event_line("ADDED", pod(rv="101"))
        + event_line("MODIFIED", pod(rv="102"))
        + event_line("BOOKMARK", {"kind": "Pod", "metadata": {"resourceVersion": "150"}})
        + event_line("DELETED", pod(rv="103"))
    )

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked()
        for i in range(0, len(body), 37):
            h.chunk(body[i : i + 37])
        h.end_chunked()

    server.route("GET", PODS_PATH)(serve)
    stream = await backend.watch(
        "Pod",
        "default",
        label_selector="app=x",
        resource_version="100",
        timeout_seconds=30,
        allow_bookmarks=True,
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "BOOKMARK", "DELETED"]
    assert server.requests[-1].query == {
        "watch": "1",
        "labelSelector": "app=x",
        "resourceVersion": "100",
        "timeoutSeconds": "30",
        "allowWatchBookmarks": "true",
    }


async def test_watch_410_and_drops(server: ApiServer, backend: AsyncKubernetesBackend) -> None:  # noqa: F811
    """HTTP 410 and an in-stream 410 raise Gone; a dropped stream is BackendUnavailable."""
    server.answer("GET", PODS_PATH, 410, status(410, "Expired", "too old resource version"))
    with pytest.raises(Gone):
        await backend.watch("Pod", "default", resource_version="1")

    def in_stream(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ADDED", pod(rv="101")))
        h.chunk(event_line("ERROR", status(410, "Expired", "too old resource version")))
        h.end_chunked()

    server.route("GET", PODS_PATH)(in_stream)
    stream = await backend.watch("Pod", "default", resource_version="100")
    assert (await stream.__anext__()).type == "ADDED"
    with pytest.raises(Gone):
        await stream.__anext__()

    def dropped(h: Handler, _r: Request) -> None:
        h.start_chunked()
        h.chunk(event_line("ADDED", pod(rv="101")))
        h.drop()

    server.route("GET", PODS_PATH)(dropped)
    stream = await backend.watch("Pod", "default")
    assert (await stream.__anext__()).type == "ADDED"
    with pytest.raises(BackendUnavailable):
        await stream.__anext__()


async def test_read_log_streams_as_it_comes(
    server: ApiServer,  # noqa: F811
    backend: AsyncKubernetesBackend,
) -> None:
    """Every option is sent; the first chunk arrives while the server holds back the rest."""
    gate = threading.Event()

    def serve(h: Handler, _r: Request) -> None:
        h.start_chunked("text/plain")
        h.chunk(b"first line\n")
        gate.wait(5)
        h.chunk(b"second line\n")
        h.end_chunked()

    server.route("GET", LOG_PATH)(serve)
    stream = await backend.read_log(
        "default", "p1", "main", follow=True, timestamps=True, since_time="2026-01-01T00:00:00Z"
    )
    assert await stream.__anext__() == b"first line\n"
    gate.set()
    assert b"".join([chunk async for chunk in stream]) == b"second line\n"
    assert server.requests[-1].query == {
        "container": "main",
        "follow": "true",
        "timestamps": "true",
        "sinceTime": "2026-01-01T00:00:00Z",
    }


async def test_a_401_refreshes_the_token_once(server: ApiServer) -> None:  # noqa: F811
    """Through the retrying wrapper, a 401 re-runs the loaders and the call succeeds."""

    def guarded(h: Handler, r: Request) -> None:
        if r.headers.get("authorization") == "Bearer t2":
            h.send_json(200, pod())
        else:
            h.send_json(401, status(401, "Unauthorized", "Unauthorized"))

    server.route("GET", POD_PATH)(guarded)
    async with AsyncKubernetesBackend(RotatingCluster(server.url)) as inner:  # type: ignore[arg-type]
        api = AsyncRetryingBackend(inner)
        assert (await api.get("Pod", "default", "p1"))["metadata"]["name"] == "p1"
        assert [r.headers["authorization"] for r in server.requests] == ["Bearer t1", "Bearer t2"]


async def test_concurrent_calls_and_streams_start_no_thread(
    server: ApiServer,  # noqa: F811
    backend: AsyncKubernetesBackend,
) -> None:
    """Twenty concurrent requests and ten open log streams run on the loop alone."""
    server.answer("GET", POD_PATH, 200, pod())
    gate = threading.Event()

    def held(h: Handler, _r: Request) -> None:
        h.start_chunked("text/plain")
        h.chunk(b"x\n")
        gate.wait(5)
        h.end_chunked()

    server.route("GET", LOG_PATH)(held)

    def ours() -> set[str]:
        # The test server answers each request on a thread of its own ("Thread-N"): those
        # are not the client's. An executor or resolver thread would show here.
        return {t.name for t in threading.enumerate() if not t.name.startswith("Thread-")}

    before = ours()
    streams = [await backend.read_log("default", "p1", follow=True) for _ in range(10)]
    await asyncio.gather(*(backend.get("Pod", "default", "p1") for _ in range(20)))
    assert ours() == before
    gate.set()
    for stream in streams:
        assert [chunk async for chunk in stream] == [b"x\n"]


async def test_exec_over_the_websocket(server: ApiServer, backend: AsyncKubernetesBackend) -> None:  # noqa: F811
    """Exec writes stdin, closes it (v5), collects stdout/stderr and the status's exit code."""
    seen = exec_route(server)
    result = await backend.exec("default", "p1", "main", ["cat"], stdin=b"hello \xff", timeout=5)
    assert (result.exit_code, result.stdout, result.stderr) == (0, b"HELLO \xff", b"warning\n")
    assert seen["stdin"] == b"hello \xff"
    assert seen["query"]["command"] == ["cat"]
    assert seen["query"]["container"] == ["main"]
    assert "v5.channel.k8s.io" in seen["protocols"]
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
    assert (await backend.exec("default", "p1", None, ["sh", "-c", "exit 3"])).exit_code == 3


async def test_exec_refusals_and_timeouts(
    server: ApiServer,  # noqa: F811
    backend: AsyncKubernetesBackend,
) -> None:
    """A refused upgrade is the server's error; a command past the timeout is unavailable."""
    server.answer("GET", POD_PATH + "/exec", 404, status(404, "NotFound", 'pods "p1" not found'))
    with pytest.raises(NotFound):
        await backend.exec("default", "p1", None, ["true"], timeout=5)
    release = threading.Event()
    exec_route(server, hang=release)
    try:
        with pytest.raises(BackendUnavailable):
            await backend.exec("default", "p1", None, ["sleep", "60"], timeout=0.5)
    finally:
        release.set()
