"""Fixtures of the chaos tier: ONE kwok control plane for the whole session.

Faults restart its components instead of starting clusters, so the tier fits in a few
minutes on two cores. Run with ``nox -s chaos``.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

import pytest
from harness import admin_backend

from podrunner.backends.kubernetes import KubernetesBackend
from podrunner.testing.controlplane import KwokCluster, wait_for_api


@pytest.fixture(scope="session")
def cluster() -> Iterator[KwokCluster]:
    """The session's control plane; skips when the binaries are not built."""
    kwok = KwokCluster()
    missing = kwok.missing_binaries()
    if missing:
        pytest.skip(f"control-plane binaries missing: {missing} (nox -s chaos builds them)")
    with kwok:
        print(f"\nkwok control plane started in {kwok.start_seconds:.1f} s", file=sys.stderr)
        yield kwok


@pytest.fixture(scope="session")
def admin(cluster: KwokCluster) -> Iterator[KubernetesBackend]:
    """A backend straight to the API server (no proxy) for set-up and leak checks."""
    backend = admin_backend(cluster)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="session")
def chaos_namespace(cluster: KwokCluster, admin: KubernetesBackend) -> str:
    """A namespace with its ``default`` ServiceAccount, made before any fault."""
    import time

    name = f"chaos-{uuid.uuid4().hex[:8]}"
    admin.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for_api(cluster.kubeconfig, deadline=time.monotonic() + 60, namespace=name)
    return name


def pytest_configure(config: pytest.Config) -> None:
    """The fault proxy's asyncio TLS transports can be collected after its loop closed.

    Those are the proxy's own sockets (test tooling), reported as unraisable warnings at
    session end; the runner's (urllib3) sockets still fail the run when left open.
    """
    for pattern in ("_SSLProtocolTransport", "_SelectorTransport", "StreamWriter"):
        config.addinivalue_line(
            "filterwarnings",
            f"ignore:Exception ignored in.*{pattern}:pytest.PytestUnraisableExceptionWarning",
        )
