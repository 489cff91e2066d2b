"""What the kwok and kind control planes share: their errors and the readiness checks.

Both talk to their API server through podrunner's own Kubernetes backend
(:class:`~podrunner.backends.kubernetes.KubernetesBackend`), imported when a cluster starts, so
importing a control plane never loads the ``kubernetes`` client.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from podrunner.errors import BackendError, PodrunnerError

if TYPE_CHECKING:
    from podrunner.backends.kubernetes import KubernetesBackend

__all__ = [
    "LOOPBACK",
    "ClusterStartError",
    "ClusterUnavailable",
    "answers",
    "connect",
    "poll",
    "wait_for_api",
]

LOOPBACK = "127.0.0.1"
_T = TypeVar("_T")


class ClusterUnavailable(PodrunnerError):
    """The cluster cannot be provided on this machine (a tool or engine is missing).

    The message is one line that says what is missing, so fixtures can pass it to ``pytest.skip``.
    """


class ClusterStartError(PodrunnerError):
    """A cluster was possible but did not come up; the message carries the tails of its logs."""


def connect(kubeconfig: str | os.PathLike[str], *, timeout: float = 10.0) -> KubernetesBackend:
    """Return a Kubernetes backend for a kubeconfig file (imports the ``kubernetes`` client).

    Args:
        kubeconfig: The kubeconfig file; its current context is used.
        timeout: Seconds to connect and to read each answer.
    """
    from podrunner.backends.kubernetes import ClusterConfig, KubernetesBackend

    config = ClusterConfig.from_kubeconfig_file(Path(kubeconfig))
    return KubernetesBackend(config, pool_size=16, request_timeout=timeout)


def answers(api: KubernetesBackend, path: str) -> bool:
    """GET ``path``: whether the server answers it with success (an error raises)."""
    api.request("GET", path)
    return True


def poll(
    check: Callable[[], _T],
    *,
    deadline: float,
    what: str,
    interval: float = 0.1,
    errors: list[str] | None = None,
) -> _T:
    """Call ``check()`` until it returns a truthy value; raise ClusterStartError at the deadline.

    A check that fails with a backend, connection or decoding error has simply not passed yet.
    """
    last = ""
    while True:
        try:
            result = check()
        except (BackendError, OSError, http.client.HTTPException, ValueError) as exc:
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
    with connect(kubeconfig, timeout=5.0) as api:
        poll(lambda: answers(api, "/readyz"), deadline=deadline, what=f"{what} /readyz")
        sa_path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
        poll(
            lambda: answers(api, sa_path),
            deadline=deadline,
            what=f"{what}: serviceaccount {namespace}/default",
        )
