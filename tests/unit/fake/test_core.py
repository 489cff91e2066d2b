from __future__ import annotations

from fakepods import pod

from podrunner.backends.base import Backend
from podrunner.backends.fake import FakeCluster
from podrunner.testing import FakeCluster as ExportedFakeCluster


def test_backend_implements_protocol(cluster: FakeCluster) -> None:
    """The fake's backend satisfies the runtime-checkable Backend protocol."""
    assert isinstance(cluster.backend, Backend)
    assert ExportedFakeCluster is FakeCluster


def test_lifecycle_to_succeeded_in_virtual_time(cluster: FakeCluster) -> None:
    """A scripted pod runs to Succeeded through a watch, with logs, in virtual time."""
    cluster.when(image="busybox:*").succeed(logs="hi\n", after=3600.0)
    created = cluster.backend.create(pod("a"))
    phases = []
    for event in cluster.backend.watch(
        "Pod",
        "default",
        field_selector="metadata.name=a",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=7200,
    ):
        phases.append(event.object["status"]["phase"])
        if phases[-1] == "Succeeded":
            break
    assert phases[-1] == "Succeeded"
    assert "Running" in phases
    assert cluster.clock.monotonic() == 3601.0
    assert b"".join(cluster.backend.read_log("default", "a")) == b"hi\n"
