"""Component faults on the local kwok control plane: readiness after a restart.

:meth:`KwokCluster.restart <podrunner.testing.kwok.KwokCluster.restart>`,
:meth:`~podrunner.testing.kwok.KwokCluster.pause` and
:meth:`~podrunner.testing.kwok.KwokCluster.resume` signal only processes the cluster started
(by PID). This module holds what they need beyond that: which components exist and when a
restarted one counts as ready:

- ``etcd``: its ``/health`` answers ``true``, and the API server's ``/readyz`` is 200 again;
- ``kube-apiserver``: ``/readyz`` is 200;
- ``kwok``: its node server accepts TCP connections (it serves logs and exec) and the API
  server is ready;
- ``kube-controller-manager``, ``kube-scheduler``: they run with ``--secure-port=0`` (no health
  endpoint), so ready means the process is still alive one second after it started and the
  API server is ready.

After a restart of etcd, the API server or kwok, ready also means pod logs are served again: kwok
serves them from ``Logs`` objects it learns through a watch, which lags a few seconds behind
an API server restart (a real kubelet reads its own files and has no such lag). A probe pod
with a log line is created and deleted for that.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import time
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from podrunner.testing.kwok import KwokCluster

__all__ = ["COMPONENTS", "component_index", "wait_ready"]

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
"""Names accepted by ``KwokCluster.restart``, ``pause`` and ``resume``."""


def component_index(procs: Sequence[Any], component: str) -> int:
    """Index of ``component`` in the cluster's process table.

    Raises:
        ValueError: not a component name, or the cluster is not running.
    """
    if component not in COMPONENTS:
        raise ValueError(f"component: {component!r} is not one of {', '.join(COMPONENTS)}")
    for index, proc in enumerate(procs):
        if proc.name == component:
            return index
    raise ValueError(f"component: {component!r} is not running (start the cluster first)")


def _flag(argv: Sequence[str], name: str) -> str:
    prefix = f"--{name}="
    for arg in argv:
        if arg.startswith(prefix):
            return arg[len(prefix) :]
    raise ValueError(f"no --{name} flag")


def _etcd_healthy(argv: Sequence[str]) -> bool:
    url = _flag(argv, "listen-client-urls").split(",")[0] + "/health"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=2) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def _port_open(argv: Sequence[str], flag: str) -> bool:
    with socket.create_connection(("127.0.0.1", int(_flag(argv, flag))), timeout=2):
        return True


def wait_ready(cluster: KwokCluster, proc: Any, *, deadline: float) -> None:
    """Wait until a (re)started component is ready; see the module docs for what that means.

    Raises:
        ClusterStartError: the process exited, or the deadline passed first.
    """
    from podrunner.testing.kind import ClusterStartError

    api = cluster._api
    started = time.monotonic()
    checks: list[Any] = []
    if proc.name == "etcd":
        checks.append(lambda: _etcd_healthy(proc.argv))
    elif proc.name == "kwok":
        checks.append(lambda: _port_open(proc.argv, "node-port"))
    elif proc.name in ("kube-controller-manager", "kube-scheduler"):
        checks.append(lambda: time.monotonic() - started >= 1.0)
    if api is not None:
        checks.append(lambda: api.call("GET", "/readyz", timeout=2)[0] == 200)
    probe: list[str] = []
    if api is not None and proc.name in ("etcd", "kube-apiserver", "kwok"):
        checks.append(lambda: _logs_served(api, probe))
    last = ""
    for check in checks:
        while True:
            if not proc.alive():
                raise ClusterStartError(
                    f"{proc.name} (pid {proc.pid}) exited with code {proc.popen.returncode} "
                    f"after a restart:\n{proc.tail()}"
                )
            try:
                if check():
                    break
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise ClusterStartError(
                    f"timed out waiting for {proc.name} to be ready after a restart"
                    + (f" (last error: {last})" if last else "")
                )
            time.sleep(0.1)
    if api is not None and probe:
        api.call("DELETE", f"/api/v1/namespaces/default/pods/{probe[0]}?gracePeriodSeconds=0")


def _logs_served(api: Any, probe: list[str]) -> bool:
    """Create a probe pod once (its name goes in ``probe``); true once its log is served."""
    if not probe:
        name = f"podrunner-probe-logs-{secrets.token_hex(4)}"
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": {"sim.podrunner.dev/logs": "probe\n"}},
            "spec": {"containers": [{"name": "probe", "image": "probe"}]},
        }
        status, _ = api.call("POST", "/api/v1/namespaces/default/pods", manifest)
        if status not in (200, 201):
            return False
        probe.append(name)
    status, body = api.call("GET", f"/api/v1/namespaces/default/pods/{probe[0]}/log")
    return status == 200 and "probe" in str(body)
