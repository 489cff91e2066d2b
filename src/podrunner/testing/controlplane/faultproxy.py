"""A fault-injecting HTTPS proxy between a Kubernetes client and a local API server.

The proxy listens on 127.0.0.1 only and terminates TLS with the API server's own serving
certificate and key (the kwok control plane's ``pki/apiserver.crt`` and ``apiserver.key``; the
certificate's SANs include ``127.0.0.1``, so a kubeconfig that points at the proxy verifies
against the same CA). It re-encrypts towards the real server. Seeing plain HTTP lets it tell
streaming requests (``watch=true``, ``follow=true``, upgrades such as exec) from ordinary ones
exactly, instead of guessing from how long a TLS connection stays open.

Faults, switched on and off from any thread:

- :meth:`FaultProxy.reset` resets every open connection (TCP RST), or only streaming ones;
- :meth:`FaultProxy.reset_after` resets connections once they have passed ``n`` response bytes;
- :meth:`FaultProxy.set_latency` delays every response byte by a fixed time;
- :meth:`FaultProxy.stall` holds every response until :meth:`FaultProxy.unstall`;
- :meth:`FaultProxy.refuse` closes the listening socket (connections are refused) for a while.

Example::

    with FaultProxy.for_kwok(cluster) as proxy:
        runner = PodRunner(KubernetesBackend(ClusterConfig(kubeconfig=str(proxy.kubeconfig))))
        proxy.reset(streaming_only=True)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podrunner.testing.controlplane.kwok import KwokCluster

__all__ = ["FaultProxy"]

LOOPBACK = "127.0.0.1"
_CHUNK = 64 * 1024


class _Conn:
    """One client connection and what the proxy knows of it."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.request = ""  # the request line of the request being answered
        self.streaming = False
        self.opaque = False  # after an upgrade (or a body we cannot frame): bytes only
        self.bytes_down = 0
        self.reset_budget: int | None = None  # response bytes left before a reset_after fires
        self.lose_response = False  # reset instead of forwarding the current response
        self.closed = False

    def finish(self) -> None:
        """Close both sides in order (TLS close and FIN): what was forwarded is still read."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.close()

    def abort(self) -> None:
        """Reset both sides: SO_LINGER 0 makes close() send RST, like a cut load balancer."""
        if self.closed:
            return
        self.closed = True
        for writer in (self.client, self.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()


def _is_streaming(request_line: str, headers: dict[str, str]) -> bool:
    parts = request_line.split(" ")
    target = parts[1] if len(parts) > 1 else ""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
    flags = {k: (v[-1].lower() if v else "") for k, v in query.items()}
    return (
        flags.get("watch") in ("true", "1")
        or flags.get("follow") in ("true", "1")
        or "upgrade" in headers
    )


class FaultProxy:
    """A TLS-terminating TCP proxy on 127.0.0.1 that injects faults on command.

    Args:
        upstream: ``https://127.0.0.1:<port>`` of the real API server.
        cert_file: Serving certificate (chain) to present; must be trusted by the client.
        key_file: Its private key.
        ca_file: CA bundle to verify the upstream server with.
        kubeconfig: A kubeconfig for the upstream; :attr:`kubeconfig` is a copy pointing at
            the proxy (written next to it).

    Attributes:
        connections_opened: Client connections accepted so far.
        connections_failed: Accepted client connections reset at once because the server
            could not be reached (each a request the client tried: it never got to send it).
        requests: Request lines seen so far, in order (e.g. ``"GET /api/v1/...?watch=true"``).
    """

    def __init__(
        self,
        upstream: str,
        *,
        cert_file: Path,
        key_file: Path,
        ca_file: Path,
        kubeconfig: Path | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self._up_host = parsed.hostname or LOOPBACK
        self._up_port = int(parsed.port or 443)
        self._server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._server_ctx.load_cert_chain(str(cert_file), str(key_file))
        self._server_ctx.set_alpn_protocols(["http/1.1"])
        self._client_ctx = ssl.create_default_context(cafile=str(ca_file))
        self._client_ctx.set_alpn_protocols(["http/1.1"])
        self._source_kubeconfig = kubeconfig
        self._kubeconfig: Path | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="podrunner-faultproxy", daemon=True
        )
        # Our own accept loop rather than asyncio.Server: before Python 3.12, a connection
        # accepted just before Server.close() fails to attach to the closed server and its
        # socket is dropped unclosed (a refuse() could leak one); here each accepted socket
        # belongs to a task that closes it whatever happens.
        self._listener: socket.socket | None = None
        self._unserved: set[socket.socket] = set()
        self._conns: set[_Conn] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._latency = 0.0
        self._reset_after: tuple[int, bool] | None = None
        self._refuse_handle: asyncio.TimerHandle | None = None
        self._lose: tuple[str, str] | None = None
        self._placeholder: socket.socket | None = None
        self._stopping = False
        self.port = 0
        self.connections_opened = 0
        self.connections_failed = 0
        self.requests: list[str] = []

    @classmethod
    def for_kwok(cls, cluster: KwokCluster) -> FaultProxy:
        """A proxy in front of a started :class:`~podrunner.testing.controlplane.KwokCluster`."""
        pki = cluster.workdir / "pki"
        return cls(
            cluster.server,
            cert_file=pki / "apiserver.crt",
            key_file=pki / "apiserver.key",
            ca_file=pki / "apiserver.crt",
            kubeconfig=cluster.kubeconfig,
        )

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        """Start listening on a free 127.0.0.1 port; write :attr:`kubeconfig` if asked."""
        self._thread.start()
        self._run(self._listen())
        if self._source_kubeconfig is not None:
            config = json.loads(self._source_kubeconfig.read_text())
            for cluster in config.get("clusters", []):
                cluster["cluster"]["server"] = self.url
            path = self._source_kubeconfig.with_name(f"proxy-{self.port}.kubeconfig")
            path.write_text(json.dumps(config, indent=2) + "\n")
            path.chmod(0o600)
            self._kubeconfig = path
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and end the proxy's thread."""
        if not self._thread.is_alive():
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.run_until_complete(self._finish())
            self._loop.close()
        if self._kubeconfig is not None:
            self._kubeconfig.unlink(missing_ok=True)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>`` of the proxy."""
        return f"https://{LOOPBACK}:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        """A kubeconfig that reaches the API server through this proxy."""
        if self._kubeconfig is None:
            raise RuntimeError("FaultProxy has no kubeconfig (give one and start it)")
        return self._kubeconfig

    def open_connections(self, *, streaming_only: bool = False) -> int:
        """How many client connections are open (optionally: only streaming ones)."""
        return int(self._run(self._count(streaming_only)))

    # -- faults -----------------------------------------------------------------------------

    def reset(self, *, streaming_only: bool = False) -> int:
        """Reset open connections (all, or only those answering a streaming request).

        Returns:
            How many connections were reset.
        """
        return int(self._run(self._reset(streaming_only)))

    def reset_after(self, n_bytes: int, *, streaming_only: bool = True) -> None:
        """Reset each matching connection once it has passed ``n_bytes`` more response bytes.

        Applies to connections open now and opened later, until :meth:`clear`.
        """
        self._run(self._arm(n_bytes, streaming_only))

    def lose_next_response(self, method: str, path_contains: str) -> None:
        """Forward the next matching request, then reset instead of returning its answer.

        The server acts on the request but the client never learns the outcome: an
        ambiguous create (was the pod created?).
        """
        self._lose = (method.upper(), path_contains)

    def set_latency(self, seconds: float) -> None:
        """Deliver every response byte ``seconds`` late (0 turns it off)."""
        self._latency = max(0.0, seconds)

    def stall(self) -> None:
        """Hold every response (requests still go through) until :meth:`unstall`."""
        self._soon(self._flowing.clear)

    def unstall(self) -> None:
        """Release held responses."""
        self._soon(self._flowing.set)

    def refuse(self, seconds: float | None = None) -> None:
        """Refuse new connections (the port is closed) for ``seconds``, or until :meth:`accept`."""
        self._run(self._refuse(seconds))

    def accept(self) -> None:
        """Listen again after :meth:`refuse`."""
        self._run(self._listen())

    def clear(self) -> None:
        """Turn every fault off (existing connections stay)."""
        self._latency = 0.0
        self.unstall()
        self._run(self._arm(None, False))
        self.accept()

    # -- internals --------------------------------------------------------------------------

    def _run(self, coro: Any) -> Any:
        if self._loop.is_closed():  # stopped: a late timer's command has nothing to act on
            coro.close()
            return 0
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _soon(self, fn: Any) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    async def _listen(self) -> None:
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()
            self._refuse_handle = None
        if self._stopping:
            return  # a reopen timer that fired as the proxy stopped: stay closed
        if self._listener is not None:
            return
        sock = self._placeholder
        self._placeholder = None
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((LOOPBACK, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, listener: socket.socket) -> None:
        # A plain callback, not an awaited accept: a cancelled await could drop a socket it
        # had just accepted. Each one is in _unserved until its task takes it.
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # the listener was closed under us
            conn.setblocking(False)
            self._unserved.add(conn)
            self._loop.create_task(self._serve(conn))

    async def _serve(self, conn: socket.socket) -> None:
        """TLS on an accepted socket, then :meth:`_handle`; the socket is closed on failure."""
        self._unserved.discard(conn)
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await self._loop.connect_accepted_socket(
                lambda: protocol, conn, ssl=self._server_ctx, ssl_handshake_timeout=10
            )
        except (OSError, asyncio.TimeoutError):
            conn.close()  # a failed handshake ends this connection only
            return
        except BaseException:
            conn.close()  # the proxy is stopping
            raise
        writer = asyncio.StreamWriter(transport, protocol, reader, self._loop)
        await self._handle(reader, writer)

    async def _refuse(self, seconds: float | None) -> None:
        if self._listener is not None:
            self._close_listener()
            # Keep the port bound but not listening: a connection is refused (RST), and no
            # other socket can take the port meanwhile (it is an ephemeral one).
            placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            placeholder.bind((LOOPBACK, self.port))
            self._placeholder = placeholder
        if seconds is not None:

            def reopen() -> None:
                self._refuse_handle = None
                self._loop.create_task(self._listen())

            self._refuse_handle = self._loop.call_later(seconds, reopen)

    async def _shutdown(self) -> None:
        self._stopping = True
        if self._refuse_handle is not None:
            self._refuse_handle.cancel()
        self._close_listener()
        for conn in list(self._conns):
            conn.abort()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        if tasks:
            # Aborted connections end their tasks; cancelling them instead makes asyncio's
            # stream callback log the CancelledError.
            await asyncio.wait(tasks, timeout=2)
        # A reopen that was under way when the proxy stopped may have listened meanwhile.
        self._close_listener()
        # Connections still in their TLS handshake belong to no task yet: abort every
        # transport the loop still has, so none is left for the garbage collector to warn of.
        transports = getattr(self._loop, "_transports", {})
        for transport in list(transports.values()):
            if transport is not None and not transport.is_closing():
                transport.abort()
        await asyncio.sleep(0.05)

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # Unregistered before the close, so the fd cannot be reused while still watched.
            self._loop.remove_reader(listener.fileno())
            listener.close()
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    async def _finish(self) -> None:
        """After the loop stopped: end what is left, so no accepted socket outlives the proxy.

        A connection accepted just before the listener closed has a task that creates its
        transport on a later loop turn; unrun, its socket is collected unclosed.
        """
        for _ in range(3):
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for transport in list(getattr(self._loop, "_transports", {}).values()):
                if transport is not None and not transport.is_closing():
                    transport.abort()
            for conn in list(self._unserved):  # accepted, but its task never ran
                conn.close()
            self._unserved.clear()
            await asyncio.sleep(0.01)

    async def _count(self, streaming_only: bool) -> int:
        return sum(1 for c in self._conns if c.streaming or not streaming_only)

    async def _reset(self, streaming_only: bool) -> int:
        victims = [c for c in self._conns if c.streaming or not streaming_only]
        for conn in victims:
            conn.abort()
        return len(victims)

    async def _arm(self, n_bytes: int | None, streaming_only: bool) -> None:
        self._reset_after = None if n_bytes is None else (n_bytes, streaming_only)
        for conn in self._conns:
            conn.reset_budget = None if n_bytes is None else n_bytes

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_opened += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self._up_host,
                self._up_port,
                ssl=self._client_ctx,
                server_hostname=self._up_host,
            )
        except OSError:
            self.connections_failed += 1
            _Conn(writer, writer).abort()
            return
        conn = _Conn(writer, up_writer)
        if self._reset_after is not None:
            conn.reset_budget = self._reset_after[0]
        self._conns.add(conn)
        sides = {
            asyncio.ensure_future(self._requests(conn, reader, up_writer)),
            asyncio.ensure_future(self._responses(conn, up_reader, writer)),
        }
        try:
            # Whichever side ends first ends the connection, as a load balancer's TCP proxy
            # does: waiting for both kept a client's watch open, silent, after the API server
            # behind it was killed (the client was waiting for the answer, so sent nothing).
            await asyncio.wait(sides, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._conns.discard(conn)
            conn.abort()  # a side that failed (reset, TLS error): reset the other
            for side in sides:
                side.cancel()
            await asyncio.gather(*sides, return_exceptions=True)

    async def _requests(
        self, conn: _Conn, reader: asyncio.StreamReader, out: asyncio.StreamWriter
    ) -> None:
        """Client to server: forward bytes, noting each request line to classify it."""
        buffer = b""
        body_left = 0
        while not conn.closed:
            data = await reader.read(_CHUNK)
            if not data:
                with contextlib.suppress(Exception):
                    out.write_eof()
                return
            if not conn.opaque:
                buffer += data
                while buffer and not conn.opaque:
                    if body_left:
                        step = min(body_left, len(buffer))
                        body_left -= step
                        buffer = buffer[step:]
                        continue
                    end = buffer.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    head = buffer[:end].decode("latin-1").split("\r\n")
                    buffer = buffer[end + 4 :]
                    headers = {}
                    for line in head[1:]:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                    conn.request = head[0]
                    conn.streaming = _is_streaming(head[0], headers)
                    lose = self._lose
                    method, _, target = head[0].partition(" ")
                    if lose is not None and method == lose[0] and lose[1] in target:
                        self._lose = None
                        conn.lose_response = True
                    self.requests.append(head[0].rsplit(" ", 1)[0])
                    if "upgrade" in headers or "chunked" in headers.get("transfer-encoding", ""):
                        conn.opaque = True
                    else:
                        body_left = int(headers.get("content-length") or 0)
            out.write(data)
            await out.drain()

    async def _responses(
        self, conn: _Conn, reader: asyncio.StreamReader, out: asyncio.StreamWriter
    ) -> None:
        """Server to client: forward bytes, applying latency, stalls and byte budgets."""
        while not conn.closed:
            data = await reader.read(_CHUNK)
            arrived = time.monotonic()
            if not data:
                # The server closed: so does the proxy, with a FIN rather than a reset, so the
                # client still reads every byte forwarded before it.
                conn.finish()
                return
            if conn.lose_response:
                conn.abort()
                return
            await self._flowing.wait()
            if self._latency:
                await asyncio.sleep(max(0.0, arrived + self._latency - time.monotonic()))
            rule = self._reset_after
            armed = rule is not None and conn.reset_budget is not None
            if armed and rule is not None and (conn.streaming or not rule[1]):
                budget = conn.reset_budget or 0
                if len(data) >= budget:
                    out.write(data[:budget])
                    with contextlib.suppress(Exception):
                        await out.drain()
                    conn.abort()
                    return
                conn.reset_budget = budget - len(data)
            conn.bytes_down += len(data)
            out.write(data)
            await out.drain()
