"""What the kwok and kind control planes share: their errors and the readiness checks.

Standard library only (``yaml`` is imported lazily to read kubeconfigs this package did not
write), so importing a control plane never loads the ``kubernetes`` client.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from podrunner.errors import PodrunnerError

__all__ = [
    "LOOPBACK",
    "Api",
    "ClusterStartError",
    "ClusterUnavailable",
    "WatchStream",
    "poll",
    "wait_for_api",
]

LOOPBACK = "127.0.0.1"


class ClusterUnavailable(PodrunnerError):
    """The cluster cannot be provided on this machine (a tool or engine is missing).

    The message is one line that says what is missing, so fixtures can pass it to ``pytest.skip``.
    """


class ClusterStartError(PodrunnerError):
    """A cluster was possible but did not come up; the message carries the tails of its logs."""


class Api:
    """Just enough of a Kubernetes REST client: JSON requests and watch streams."""

    def __init__(
        self,
        server: str,
        *,
        token: str | None = None,
        ca_file: Path | None = None,
        ca_data: bytes | None = None,
        client_cert: tuple[Path, Path] | None = None,
        insecure: bool = False,
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.context: ssl.SSLContext | None = None
        if self.server.startswith("https://"):
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif ca_file is not None:
                ctx.load_verify_locations(cafile=str(ca_file))
            elif ca_data is not None:
                ctx.load_verify_locations(cadata=ca_data.decode())
            if client_cert is not None:
                ctx.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
            self.context = ctx
        # Never through a proxy: these requests go to 127.0.0.1 (or the kubeconfig's server).
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.context)
        )

    @classmethod
    def from_kubeconfig(cls, path: Path, scratch: Path) -> Api:
        """Build a client from a kubeconfig's current context (token or client certificate)."""
        import yaml  # lazy: only needed for kubeconfigs this module did not write

        config = yaml.safe_load(path.read_text()) or {}

        def named(section: str, name: str) -> dict[str, Any]:
            for item in config.get(section) or []:
                if item.get("name") == name:
                    return dict(item.get(section[:-1]) or {})
            raise ClusterStartError(f"kubeconfig {path}: no {section[:-1]} named {name!r}")

        context = named("contexts", config.get("current-context", ""))
        cluster = named("clusters", context.get("cluster", ""))
        user = named("users", context.get("user", ""))
        ca_data = None
        if cluster.get("certificate-authority-data"):
            ca_data = base64.b64decode(cluster["certificate-authority-data"])
        elif cluster.get("certificate-authority"):
            ca_data = Path(cluster["certificate-authority"]).read_bytes()
        client_cert = None
        if user.get("client-certificate-data") or user.get("client-certificate"):
            cert = scratch / "client.crt"
            key = scratch / "client.key"
            if user.get("client-certificate-data"):
                cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            else:
                shutil.copyfile(user["client-certificate"], cert)
            if user.get("client-key-data"):
                key.write_bytes(base64.b64decode(user["client-key-data"]))
            else:
                shutil.copyfile(user["client-key"], key)
            key.chmod(0o600)
            client_cert = (cert, key)
        return cls(
            str(cluster.get("server", "")),
            token=user.get("token"),
            ca_data=ca_data,
            client_cert=client_cert,
            insecure=bool(cluster.get("insecure-skip-tls-verify")),
        )

    def _request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> urllib.request.Request:
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.server + path
        return urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, Any]:
        """Send one request; return ``(status, decoded JSON body or None)``; 4xx/5xx don't raise."""
        request = self._request(method, path, body, content_type)
        try:
            with self._opener.open(request, timeout=timeout) as resp:
                raw = resp.read()
                status = int(resp.status)
        except urllib.error.HTTPError as err:
            raw = err.read()
            status = err.code
            err.close()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def watch(self, path: str, timeout: float = 60.0) -> WatchStream:
        """Open a watch stream (``path`` must carry ``watch=1``)."""
        parsed = urllib.parse.urlsplit(self.server)
        conn: http.client.HTTPConnection
        if parsed.scheme == "https":
            conn = http.client.HTTPSConnection(
                parsed.hostname or LOOPBACK, parsed.port, timeout=timeout, context=self.context
            )
        else:
            conn = http.client.HTTPConnection(
                parsed.hostname or LOOPBACK, parsed.port, timeout=timeout
            )
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        if resp.status != 200:
            body = resp.read().decode(errors="replace")
            conn.close()
            raise OSError(f"watch {path}: HTTP {resp.status}: {body[:200]}")
        return WatchStream(conn, resp)


class WatchStream:
    """An open watch; :meth:`abort` may be called from another thread to end it at once."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn = conn
        self.resp = resp
        self.sock = conn.sock

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield decoded watch events until the server ends the stream."""
        for line in self.resp:
            if line.strip():
                yield json.loads(line)

    def abort(self) -> None:
        """Shut the socket down, which wakes a reader blocked in another thread."""
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Close the connection (from the reading thread)."""
        with contextlib.suppress(Exception):
            self.conn.close()


def poll(
    check: Any,
    *,
    deadline: float,
    what: str,
    interval: float = 0.1,
    errors: list[str] | None = None,
) -> Any:
    """Call ``check()`` until it returns a truthy value; raise ClusterStartError at the deadline."""
    last = ""
    while True:
        try:
            result = check()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            result = None
            last = f"{type(exc).__name__}: {exc}"
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last})" if last else ""
            if errors is not None:
                errors.append(f"timed out waiting for {what}{detail}")
            raise ClusterStartError(f"timed out waiting for {what}{detail}")
        time.sleep(interval)


def wait_for_api(
    kubeconfig: str | os.PathLike[str],
    *,
    deadline: float,
    what: str = "the API server",
    namespace: str = "default",
) -> None:
    """Wait until the kubeconfig's API server is ready and ``serviceaccount/default`` exists.

    Args:
        kubeconfig: Path of a kubeconfig file (token or client-certificate credentials).
        deadline: ``time.monotonic()`` value after which to give up.
        what: Name used in the timeout message.
        namespace: Namespace whose ``default`` ServiceAccount must exist.

    Raises:
        ClusterStartError: the deadline passed first.
    """
    with tempfile.TemporaryDirectory(prefix="podrunner-kubeconfig-") as scratch:
        api = Api.from_kubeconfig(Path(kubeconfig), Path(scratch))
        poll(
            lambda: api.call("GET", "/readyz")[0] == 200, deadline=deadline, what=f"{what} /readyz"
        )
        sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
        poll(
            lambda: api.call("GET", sa_path)[0] == 200,
            deadline=deadline,
            what=f"{what}: serviceaccount {namespace}/default",
        )
