"""Component faults on the local kwok control plane: readiness after a restart.

:meth:`KwokCluster.restart <podrunner.testing.controlplane.kwok.KwokCluster.restart>`,
:meth:`~podrunner.testing.controlplane.kwok.KwokCluster.pause` and
:meth:`~podrunner.testing.controlplane.kwok.KwokCluster.resume` signal only processes the
cluster started (by PID). This module holds what they need beyond that: which components exist
and when a restarted one counts as ready:

- ``etcd``: its ``/health`` answers ``true``, and the API server's ``/readyz`` is 200 again;
- ``kube-apiserver``: ``/readyz`` is 200;
- ``kwok``: its node server accepts TCP connections (it serves logs and exec) and the API
  server is ready;
- ``kube-controller-manager``, ``kube-scheduler``: they run with ``--secure-port=0`` (no health
  endpoint), so ready means the process is still alive one second after it started and the
  API server is ready.

After a restart of etcd, the API server or kwok, ready also means kwok works again: a probe
pod is created, and deleted once it runs and its log is served. kwok learns pods and ``Logs``
objects through watches that lag seconds behind an API server restart (client-go backs off);
a real kubelet reads its own files and has no such lag for logs.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from podrunner.errors import AlreadyExists, BackendError
from podrunner.testing.controlplane._common import LOOPBACK, ClusterStartError, answers, poll

if TYPE_CHECKING:
    from podrunner.backends.kubernetes import KubernetesBackend
    from podrunner.testing.controlplane._procs import Proc

__all__ = ["COMPONENTS", "component_index", "wait_ready"]

_READYZ = "kube-apiserver /readyz"

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
"""Names accepted by ``KwokCluster.restart``, ``pause`` and ``resume``."""


def component_index(procs: Sequence[Proc], component: str) -> int:
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
    with socket.create_connection((LOOPBACK, int(_flag(argv, flag))), timeout=2):
        return True


def wait_ready(api: KubernetesBackend | None, proc: Proc, *, deadline: float) -> float | None:
    """Wait until a (re)started component is ready; see the module docs for what that means.

    Args:
        api: The cluster's admin client (``None``: only the process itself is checked).
        proc: The component's new process.
        deadline: ``time.monotonic()`` value after which to give up.

    Returns:
        When (``time.monotonic()``) the API server answered ``/readyz`` again (``None``
        without ``api``): what clients see as the end of the outage, before kwok caught up.

    Raises:
        ClusterStartError: the process exited, or the deadline passed first.
    """
    started = time.monotonic()
    checks: list[tuple[str, Callable[[], bool]]] = []
    if proc.name == "etcd":
        checks.append(("etcd /health", lambda: _etcd_healthy(proc.argv)))
    elif proc.name == "kwok":
        checks.append(("kwok's node port", lambda: _port_open(proc.argv, "node-port")))
    elif proc.name in ("kube-controller-manager", "kube-scheduler"):
        checks.append(("one second alive", lambda: time.monotonic() - started >= 1.0))
    probe = f"podrunner-probe-logs-{secrets.token_hex(4)}"
    created: list[bool] = []
    if api is not None:
        checks.append((_READYZ, lambda: answers(api, "/readyz")))
        if proc.name in ("etcd", "kube-apiserver", "kwok"):
            checks.append(
                ("a probe pod running, its log served", lambda: _logs_served(api, probe, created))
            )

    def alive(check: Callable[[], bool]) -> Callable[[], bool]:
        def checked() -> bool:
            if not proc.alive():
                raise ClusterStartError(
                    f"{proc.name} (pid {proc.pid}) exited with code {proc.popen.returncode} "
                    f"after a restart:\n{proc.tail()}"
                )
            return check()

        return checked

    api_ready_at = None
    try:
        for what, check in checks:
            poll(alive(check), deadline=deadline, what=f"{proc.name} after a restart: {what}")
            if what == _READYZ:
                api_ready_at = time.monotonic()
        return api_ready_at
    finally:
        if api is not None and proc.name in ("etcd", "kube-apiserver", "kwok"):
            with contextlib.suppress(BackendError):  # NotFound: the probe was never made
                api.delete("Pod", "default", probe, grace_period_seconds=0)


def _logs_served(api: KubernetesBackend, name: str, created: list[bool]) -> bool:
    """Create the probe pod ``name`` once (noted in ``created``); true once its log is served."""
    if not created:
        manifest = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "default",
                "annotations": {"sim.podrunner.dev/logs": "probe\n"},
            },
            "spec": {"containers": [{"name": "probe", "image": "probe"}]},
        }
        with contextlib.suppress(AlreadyExists):  # an earlier try landed, its answer lost
            api.create(manifest)
        created.append(True)
    if b"probe" not in b"".join(api.read_log("default", name, "probe")):
        return False
    # Running too: kwok's pod controller, whose watch also lags a restart, plays stages again.
    return bool(api.get("Pod", "default", name).get("status", {}).get("phase") == "Running")
