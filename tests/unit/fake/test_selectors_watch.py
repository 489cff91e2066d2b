from __future__ import annotations

import threading
import time

import pytest
from fakepods import pod

from podrunner.backends.fake import FakeCluster
from podrunner.errors import BadRequest, Gone


def _names(cluster: FakeCluster, **selectors: str) -> list[str]:
    out = cluster.backend.list("Pod", "default", **selectors)  # type: ignore[arg-type]
    return [p["metadata"]["name"] for p in out.items]


@pytest.fixture
def labelled(cluster: FakeCluster) -> FakeCluster:
    cluster.backend.create(pod("a", labels={"app": "web", "tier": "front"}))
    cluster.backend.create(pod("b", labels={"app": "db"}))
    cluster.backend.create(pod("c"))
    return cluster


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a"]),
        ("app==web", ["a"]),
        ("app!=web", ["b", "c"]),
        ("app in (web, db)", ["a", "b"]),
        ("app notin (web)", ["b", "c"]),
        ("app", ["a", "b"]),
        ("!app", ["c"]),
        ("app,tier=front", ["a"]),
        ("app=web,!tier", []),
        ("", ["a", "b", "c"]),
    ],
)
def test_label_selector_grammar(labelled: FakeCluster, selector: str, expected: list[str]) -> None:
    """Every operator of the label-selector grammar selects like the server."""
    assert _names(labelled, label_selector=selector) == expected


@pytest.mark.parametrize(
    "selector", ["app=(", "app in web", "app in ()", "=x", "a b", "app=web,", "bad key=1"]
)
def test_label_selector_parse_errors_are_400(labelled: FakeCluster, selector: str) -> None:
    """A label selector that does not parse is 400 BadRequest."""
    with pytest.raises(BadRequest) as info:
        labelled.backend.list("Pod", "default", label_selector=selector)
    assert info.value.message.startswith("unable to parse requirement")


def test_pod_field_selectors(labelled: FakeCluster) -> None:
    """Supported pod fields select with =, == and !=."""
    assert _names(labelled, field_selector="metadata.name=b") == ["b"]
    assert _names(labelled, field_selector="metadata.name!=b") == ["a", "c"]
    assert _names(labelled, field_selector="status.phase==Pending,spec.restartPolicy=Never") == [
        "a",
        "b",
        "c",
    ]
    assert _names(labelled, field_selector="spec.nodeName=") == ["a", "b", "c"]
    labelled.advance(0)
    assert _names(labelled, field_selector="spec.nodeName=fake-node-1") == ["a", "b", "c"]
    for field in (
        "spec.schedulerName=default-scheduler",
        "spec.serviceAccountName=default",
        "status.podIP!=",
        "status.nominatedNodeName=",
        "metadata.namespace=default",
    ):
        assert len(_names(labelled, field_selector=field)) == 3


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("Pod", "spec.hostname"),
        ("Pod", "metadata.labels"),
        ("ConfigMap", "data.x"),
        ("Secret", "status.phase"),
    ],
)
def test_unsupported_field_selector_is_400(cluster: FakeCluster, kind: str, field: str) -> None:
    """An unsupported field is rejected with the server's message, never ignored."""
    with pytest.raises(BadRequest) as info:
        cluster.backend.list(kind, "default", field_selector=f"{field}=x")  # type: ignore[arg-type]
    assert info.value.message == f"field label not supported: {field}"


def test_field_selector_syntax_error(cluster: FakeCluster) -> None:
    """A term without an operator is 400."""
    with pytest.raises(BadRequest, match="invalid selector"):
        cluster.backend.list("Pod", "default", field_selector="metadata.name")


def test_event_and_secret_fields(cluster: FakeCluster) -> None:
    """Events select on involvedObject.*, reason, type and source; Secrets on type."""
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    events = cluster.backend.list(
        "Event",
        "default",
        field_selector="involvedObject.name=a,reason=Started,type=Normal,source=kubelet",
    ).items
    assert [e["reason"] for e in events] == ["Started"]
    cluster.backend.create(
        {
            "kind": "Secret",
            "metadata": {"name": "s"},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": "", "tls.key": ""},
        }
    )
    assert (
        len(
            cluster.backend.list("Secret", "default", field_selector="type=kubernetes.io/tls").items
        )
        == 1
    )


# -- watch ---------------------------------------------------------------------------------


def test_watch_without_version_starts_with_added(cluster: FakeCluster) -> None:
    """A watch without a version (or "0") first sends ADDED for current objects."""
    cluster.backend.create(pod("a"))
    cluster.backend.create(pod("b"))
    for rv in (None, "0"):
        events = list(
            cluster.backend.watch("Pod", "default", resource_version=rv, timeout_seconds=0)
        )
        assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
            ("ADDED", "a"),
            ("ADDED", "b"),
        ]


def test_list_then_watch_loses_nothing(cluster: FakeCluster) -> None:
    """A watch from a list's version sees every later change, in order, exactly once."""
    cluster.backend.create(pod("a"))
    listed = cluster.backend.list("Pod", "default")
    cluster.backend.create(pod("b"))
    cluster.backend.delete("Pod", "default", "a")
    events = list(
        cluster.backend.watch(
            "Pod", "default", resource_version=listed.resource_version, timeout_seconds=0
        )
    )
    # As the API server: the deletion is recorded (deletionTimestamp) before the object goes.
    assert [(e.type, e.object["metadata"]["name"]) for e in events] == [
        ("ADDED", "b"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]
    rvs = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(listed.resource_version)


def test_watch_follows_lifecycle_in_order(cluster: FakeCluster) -> None:
    """A pod's lifecycle arrives as ordered MODIFIED events ending in DELETED."""
    created = cluster.backend.create(pod("a"))
    stream = cluster.backend.watch(
        "Pod",
        "default",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=100,
    )
    seen = []
    deleted = False
    for event in stream:
        seen.append((event.type, event.object["status"]["phase"]))
        if event.type == "DELETED":
            break
        if event.object["status"]["phase"] == "Succeeded" and not deleted:
            cluster.backend.delete("Pod", "default", "a")
            deleted = True
    assert seen[-1][0] == "DELETED"
    assert ("MODIFIED", "Running") in seen


def test_too_old_version_is_gone() -> None:
    """A version older than the history window is 410 Expired with the server's message."""
    cluster = FakeCluster(history=5)
    first = cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "c0"}})
    for i in range(1, 20):
        cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": f"c{i}"}})
    with pytest.raises(Gone) as info:
        cluster.backend.watch(
            "ConfigMap", "default", resource_version=first["metadata"]["resourceVersion"]
        )
    assert info.value.status == 410
    assert info.value.reason == "Expired"
    assert info.value.message.startswith(
        f"too old resource version: {first['metadata']['resourceVersion']} ("
    )


def test_watch_applies_selectors_with_transitions(cluster: FakeCluster) -> None:
    """An object that starts matching is ADDED; one that stops matching is DELETED."""
    start = cluster.backend.list("ConfigMap", "default").resource_version
    cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "1"}}})
    cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "other"}})
    cluster.backend.patch("ConfigMap", "default", "c", {"metadata": {"labels": {"x": "2"}}})
    cluster.backend.patch("ConfigMap", "default", "c", {"metadata": {"labels": {"x": "1"}}})
    events = list(
        cluster.backend.watch(
            "ConfigMap", "default", label_selector="x=1", resource_version=start, timeout_seconds=0
        )
    )
    assert [e.type for e in events] == ["ADDED", "DELETED", "ADDED"]
    assert events[1].object["metadata"]["labels"] == {"x": "1"}


def test_watch_timeout_and_bookmark(cluster: FakeCluster) -> None:
    """The server-side timeout ends the stream in virtual time, after a BOOKMARK if allowed."""
    events = list(cluster.backend.watch("Pod", "default", timeout_seconds=30, allow_bookmarks=True))
    assert [e.type for e in events] == ["BOOKMARK"]
    assert (
        events[0].object["metadata"]["resourceVersion"]
        == cluster.backend.list("Pod", "default").resource_version
    )
    assert cluster.clock.monotonic() == 30.0


def test_watch_bad_version_is_400(cluster: FakeCluster) -> None:
    """A non-numeric resourceVersion is a 400."""
    with pytest.raises(BadRequest):
        cluster.backend.watch("Pod", "default", resource_version="abc")


def test_watch_all_namespaces(cluster: FakeCluster) -> None:
    """namespace=None watches every namespace."""
    cluster.create_namespace("t")
    cluster.backend.create(pod("a", namespace="t"))
    cluster.backend.create(pod("b"))
    events = list(cluster.backend.watch("Pod", None, timeout_seconds=0))
    assert sorted(e.object["metadata"]["name"] for e in events) == ["a", "b"]


def test_closing_a_watch_from_another_thread_ends_it_at_once() -> None:
    """close() from another thread ends a next() blocked on an idle watch, without time passing.

    A generator cannot be closed while another thread runs it; the fake's stream can, as
    closing the connection does on a real server.
    """
    cluster = FakeCluster()
    hold = cluster.clock.hold()  # time stands still: only close() can end the stream
    stream = cluster.backend.watch("Pod", "default", timeout_seconds=3600)
    got: list[object] = []
    started = threading.Event()

    def reader() -> None:
        started.set()
        got.extend(stream)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    started.wait(5)
    while cluster.clock.waiting() < 1:  # the reader is blocked inside the fake
        time.sleep(0.001)
    stream.close()
    thread.join(5)
    assert not thread.is_alive()
    assert got == []
    assert cluster.clock.monotonic() == 0  # it ended because it was closed, not timed out
    assert list(stream) == []  # and stays ended
    hold.release()


def test_a_dropped_watch_is_freed_at_once() -> None:
    """A fake watch dropped without close() is freed by reference counting, not by the GC."""
    import gc
    import weakref

    cluster = FakeCluster()
    cluster.backend.create(pod("a"))
    gc.disable()
    try:
        stream = cluster.backend.watch("Pod", "default", timeout_seconds=60)
        assert next(stream).type == "ADDED"
        gen = weakref.ref(stream.gen)  # type: ignore[attr-defined]
        del stream
        assert gen() is None
    finally:
        gc.enable()
