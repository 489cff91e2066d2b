"""Fixtures for the integration tier: a real API server (local kwok control plane, or kind).

The cluster is chosen by ``--podrunner-backend`` when the podrunner plugin registers it, else by
``$PODRUNNER_BACKEND``; the default is ``kwok``. ``kwok_cluster`` builds the control-plane
binaries if they are missing (``python -m podrunner.testing.controlplane build``) and starts one
cluster per session.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podrunner.testing.controlplane import ClusterUnavailable, KindCluster
from podrunner.testing.controlplane.kwok import KwokCluster


def _backend(config: pytest.Config) -> str:
    try:
        value = config.getoption("--podrunner-backend")
    except ValueError:
        value = None
    value = value or os.environ.get("PODRUNNER_BACKEND") or "kwok"
    return str(value)


def _plugin_cluster(request: pytest.FixtureRequest, fixture: str) -> Any:
    """The cluster object of the podrunner plugin's session fixture, if this process owns it."""
    try:
        shared = request.getfixturevalue(fixture)
    except pytest.FixtureLookupError:
        return None
    return getattr(shared, "cluster", None)


@pytest.fixture(scope="session")
def kwok_cluster(request: pytest.FixtureRequest) -> Iterator[KwokCluster]:
    """A local control plane (etcd, apiserver, controller-manager, scheduler, kwok) per session.

    Builds the binaries first if they are missing. Shares the plugin's ``podrunner_kwok``
    cluster when this process started it, so a session runs one control plane.
    """
    cluster = KwokCluster()
    if cluster.missing_binaries():
        subprocess.run(
            [sys.executable, "-m", "podrunner.testing.controlplane", "build"], check=True
        )
    shared = _plugin_cluster(request, "podrunner_kwok")
    if isinstance(shared, KwokCluster):
        yield shared
        return
    with cluster:
        print(f"\nkwok control plane started in {cluster.start_seconds:.1f} s", file=sys.stderr)
        yield cluster


@pytest.fixture(scope="session")
def kind_cluster(request: pytest.FixtureRequest) -> Iterator[KindCluster]:
    """A kind cluster (reused if it exists); skips when kind or Docker is missing."""
    shared = _plugin_cluster(request, "podrunner_kind")
    if isinstance(shared, KindCluster):
        yield shared
        return
    keep = os.environ.get("PODRUNNER_KIND_KEEP", "") not in ("", "0")
    cluster = KindCluster(
        os.environ.get("PODRUNNER_KIND_CLUSTER", "podrunner-test"),
        image=os.environ.get("PODRUNNER_KIND_IMAGE") or None,
        keep=keep,
    )
    try:
        cluster.start()
    except ClusterUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def backend_name(pytestconfig: pytest.Config) -> str:
    """``kwok`` or ``kind``: which cluster the integration tests run on."""
    return _backend(pytestconfig)


@pytest.fixture(scope="session")
def kubeconfig(request: pytest.FixtureRequest, backend_name: str) -> Path:
    """Path of the chosen cluster's private kubeconfig."""
    if backend_name == "kind":
        cluster: Any = request.getfixturevalue("kind_cluster")
    elif backend_name == "kwok":
        cluster = request.getfixturevalue("kwok_cluster")
    else:
        pytest.skip(f"control-plane tests run on kwok or kind, not {backend_name!r}")
    return Path(cluster.kubeconfig)


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[Any]:
    """A plain ``kubernetes`` ApiClient for the chosen cluster."""
    kubernetes = pytest.importorskip("kubernetes")
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def core(api_client: Any) -> Any:
    """``CoreV1Api`` on the chosen cluster."""
    import kubernetes

    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def namespace(core: Any) -> Iterator[str]:
    """A fresh namespace per test (with its ``default`` ServiceAccount), deleted afterwards."""
    import kubernetes

    name = f"it-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"podrunner.dev/test": "1"}}})
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except kubernetes.client.ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield name
    finally:
        core.delete_namespace(name)
