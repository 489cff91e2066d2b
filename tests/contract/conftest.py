"""The contract suite's fixtures: one ``backend`` parameter per cluster, and a per-test ``kit``.

Every test runs on the fake (a fresh :class:`~podrunner.testing.FakeCluster` per test) and, when
``--podrunner-backend=kwok|kind|kubeconfig`` (or ``$PODRUNNER_BACKEND``) selects one, on that real
API server too, in a fresh namespace deleted afterwards. Each runs once more through the async
backend of the same cluster (``fake-async``, ``kwok-async``...: ``FakeCluster.async_backend``
and ``AsyncKubernetesBackend``, called through ``aio_bridge.SyncOverAsync``), so both kinds of
backend are held to the same real server. The tests only touch the backend
protocol, and they wait through ``backend.watch`` and ``backend.clock``, so on the fake's
virtual clock a test that waits a minute of cluster time takes microseconds.

When the fake and a real server disagree, the test stays as the real server answers and is
marked ``xfail(strict=True)`` for the fake only, with :meth:`Kit.fake_differs`; every such mark is
listed in docs/fake-fidelity.md.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from podrunner.backends.base import Backend, WatchEvent
from podrunner.errors import Gone, NotFound

SIM = "sim.podrunner.dev/"
TEST_LABEL = "podrunner.dev/contract-test"


def _real_backend_name(config: pytest.Config) -> str | None:
    from podrunner.testing.plugin import settings

    name = settings(config).backend
    return None if name == "fake" else name


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend_name`` with the fake and the selected real server, if any."""
    if "backend_name" in metafunc.fixturenames:
        names = ["fake", "fake-async"]
        real = _real_backend_name(metafunc.config)
        if real:
            names += [real, f"{real}-async"]
        metafunc.parametrize("backend_name", names, scope="session")


@pytest.fixture
def backend(request: pytest.FixtureRequest, backend_name: str) -> Iterator[Backend]:
    """The backend under test: a fresh fake cluster, or the session's real API server."""
    if backend_name.endswith("-async"):
        yield from _async_backend(request, backend_name)
        return
    if backend_name == "fake":
        from podrunner.testing import FakeCluster

        cluster = FakeCluster()
        try:
            yield cluster.backend
        finally:
            cluster.backend.close()
        return
    # The plugin's fixture builds one KubernetesBackend per session (kwok/kind started once).
    real: Backend = request.getfixturevalue("podrunner_backend")
    yield real


def _async_backend(request: pytest.FixtureRequest, backend_name: str) -> Iterator[Backend]:
    """The async backend of the same cluster, called through the sync bridge."""
    from aio_bridge import SyncOverAsync

    if backend_name == "fake-async":
        from podrunner.backends.fake import FakeCluster

        cluster = FakeCluster()
        bridge = SyncOverAsync(cluster.async_backend, cluster.clock)
    else:
        from podrunner.backends.base import RealClock
        from podrunner.backends.kubernetes.aio import AsyncKubernetesBackend

        sync: Any = request.getfixturevalue("podrunner_backend")
        bridge = SyncOverAsync(AsyncKubernetesBackend(sync._cluster), RealClock())
    try:
        yield bridge  # type: ignore[misc]
    finally:
        bridge.close()


def _wait_for_service_account(backend: Backend, namespace: str, timeout: float = 60.0) -> None:
    # Pods are refused until the controller-manager made the namespace's default
    # ServiceAccount; the backend protocol has no ServiceAccount kind, so ask the client.
    api_client = getattr(backend, "api_client", None)
    if api_client is None:
        return
    import kubernetes

    core = kubernetes.client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.read_namespaced_service_account("default", namespace)
            return
        except kubernetes.client.ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Kit:
    """What a contract test needs: the backend, its namespace and a few careful helpers.

    Attributes:
        backend: The backend under test.
        namespace: A namespace made for this test.
        name: ``fake`` or the real backend's name.
    """

    def __init__(
        self, backend: Backend, namespace: str, name: str, request: pytest.FixtureRequest
    ) -> None:
        self.backend = backend
        self.namespace = namespace
        self.name = name
        self._request = request

    @property
    def is_fake(self) -> bool:
        """Whether this is a fake parameter (the fake's sync or async backend)."""
        return self.name.startswith("fake")

    def fake_differs(self, reason: str) -> None:
        """Mark the test as a known fake/real difference (strict xfail on the fake only)."""
        if self.is_fake:
            self._request.applymarker(pytest.mark.xfail(strict=True, reason=f"fake: {reason}"))

    def kwok_kubelet_cannot(self, pod: str, reason: str) -> None:
        """Skip on a kwok node: its simulated kubelet lacks a behaviour a real kubelet has.

        Only for kubelet behaviour (log streaming, exec), never for the API server's answers;
        the fake stays held to the real behaviour there.
        """
        if self.is_fake:
            return
        node = (self.backend.get("Pod", self.namespace, pod).get("spec") or {}).get("nodeName")
        if str(node or "").startswith("kwok-"):
            pytest.skip(f"kwok's simulated kubelet: {reason}")

    # -- objects ----------------------------------------------------------------------------

    def pod_manifest(
        self,
        name: str | None = "p",
        *,
        annotations: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        restart_policy: str = "Never",
        **sim: str,
    ) -> dict[str, Any]:
        """A minimal pod; ``sim`` keys become ``sim.podrunner.dev/<key>`` annotations."""
        ann = dict(annotations or {})
        ann.update({SIM + k.replace("_", "-"): v for k, v in sim.items()})
        meta: dict[str, Any] = {"namespace": self.namespace}
        if name is not None:
            meta["name"] = name
        if ann:
            meta["annotations"] = ann
        if labels:
            meta["labels"] = labels
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": meta,
            "spec": {
                "restartPolicy": restart_policy,
                "terminationGracePeriodSeconds": 30,
                "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}],
            },
        }

    def pod(self, name: str = "p", **kw: Any) -> dict[str, Any]:
        """Create a pod (see :meth:`pod_manifest`) and return it as stored."""
        return self.backend.create(self.pod_manifest(name, **kw))

    def config_map(
        self, name: str, data: dict[str, str] | None = None, **meta: Any
    ) -> dict[str, Any]:
        """Create a ConfigMap in the test namespace."""
        return self.backend.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self.namespace, **meta},
                "data": data or {},
            }
        )

    # -- waiting, through the backend's watch and clock only --------------------------------

    def wait_for(
        self,
        kind: Any,
        name: str,
        predicate: Callable[[dict[str, Any] | None], bool],
        timeout: float = 60.0,
    ) -> dict[str, Any] | None:
        """Wait until ``predicate(object)`` holds (``None`` once the object is deleted).

        Lists, checks, then watches from the list's version; a 410 relists. Every wait goes
        through ``backend.watch`` with a server-side timeout, so the fake's virtual clock makes
        it instant.

        Returns:
            The object that satisfied the predicate (``None`` if that was its deletion).
        """
        clock = self.backend.clock
        deadline = clock.monotonic() + timeout
        selector = f"metadata.name={name}"
        while True:
            listing = self.backend.list(kind, self.namespace, field_selector=selector)
            current = listing.items[0] if listing.items else None
            if predicate(current):
                return current
            remaining = deadline - clock.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out waiting for {kind} {name}; last: {current}")
            try:
                for event in self.backend.watch(
                    kind,
                    self.namespace,
                    field_selector=selector,
                    resource_version=listing.resource_version,
                    timeout_seconds=max(1.0, min(remaining, 30.0)),
                ):
                    obj = None if event.type == "DELETED" else event.object
                    if event.type in ("ADDED", "MODIFIED", "DELETED") and predicate(obj):
                        return obj
                    if clock.monotonic() > deadline:
                        break
            except Gone:
                continue

    def wait_phase(self, name: str, *phases: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the pod's phase is one of ``phases``."""
        obj = self.wait_for(
            "Pod",
            name,
            lambda p: p is not None and (p.get("status") or {}).get("phase") in phases,
            timeout,
        )
        assert obj is not None
        return obj

    def wait_gone(self, kind: Any, name: str, timeout: float = 60.0) -> None:
        """Wait until the object no longer exists."""
        self.wait_for(kind, name, lambda o: o is None, timeout)

    def collect(self, events: Iterator[WatchEvent], count: int) -> list[WatchEvent]:
        """Take ``count`` non-bookmark events from a watch, then close it."""
        out: list[WatchEvent] = []
        try:
            for event in events:
                if event.type != "BOOKMARK":
                    out.append(event)
                if len(out) >= count:
                    break
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        return out


@pytest.fixture
def kit(request: pytest.FixtureRequest, backend: Backend, backend_name: str) -> Iterator[Kit]:
    """A fresh namespace on the backend under test, deleted afterwards."""
    namespace = f"ct-{secrets.token_hex(5)}"
    backend.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {TEST_LABEL: "1"}},
        }
    )
    try:
        if not backend_name.startswith("fake"):
            # The ServiceAccount is read with the official client of the sync backend.
            _wait_for_service_account(request.getfixturevalue("podrunner_backend"), namespace)
        yield Kit(backend, namespace, backend_name, request)
    finally:
        with contextlib.suppress(NotFound):
            backend.delete("Namespace", None, namespace)
