"""Contract: watches deliver changes in order from a version, and 410 for one too old."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from podrunner.errors import Gone

if TYPE_CHECKING:
    from conftest import Kit


def test_watch_sees_changes_after_the_list_in_order(kit: Kit) -> None:
    """A watch from a list's version sees later changes only, in order, versions increasing."""
    kit.config_map("before")
    listing = kit.backend.list("ConfigMap", kit.namespace, label_selector="w=1")
    kit.config_map("cm", labels={"w": "1"})
    kit.backend.patch("ConfigMap", kit.namespace, "cm", {"data": {"x": "1"}})
    kit.backend.delete("ConfigMap", kit.namespace, "cm")
    events = kit.collect(
        kit.backend.watch(
            "ConfigMap",
            kit.namespace,
            label_selector="w=1",
            resource_version=listing.resource_version,
            timeout_seconds=30,
        ),
        count=3,
    )
    assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert all(e.object["metadata"]["name"] == "cm" for e in events)
    versions = [int(e.object["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert events[1].object["data"] == {"x": "1"}
    assert events[0].object["kind"] == "ConfigMap"


def test_watch_without_version_starts_with_current_objects(kit: Kit) -> None:
    """A watch with no version first replays the existing objects as ADDED."""
    kit.config_map("a", labels={"w": "1"})
    kit.config_map("b", labels={"w": "1"})
    events = kit.collect(
        kit.backend.watch("ConfigMap", kit.namespace, label_selector="w=1", timeout_seconds=5),
        count=2,
    )
    assert sorted(e.object["metadata"]["name"] for e in events) == ["a", "b"]
    assert {e.type for e in events} == {"ADDED"}


def test_watch_field_selector_filters_events(kit: Kit) -> None:
    """A metadata.name field selector limits the watch to that object."""
    listing = kit.backend.list("ConfigMap", kit.namespace)
    kit.config_map("other")
    kit.config_map("mine")
    events = kit.collect(
        kit.backend.watch(
            "ConfigMap",
            kit.namespace,
            field_selector="metadata.name=mine",
            resource_version=listing.resource_version,
            timeout_seconds=30,
        ),
        count=1,
    )
    assert [e.object["metadata"]["name"] for e in events] == ["mine"]


def test_watch_ends_at_the_server_timeout(kit: Kit) -> None:
    """With nothing happening, the watch ends by itself after timeout_seconds."""
    listing = kit.backend.list("Secret", kit.namespace)
    started = kit.backend.clock.monotonic()
    events = list(
        kit.backend.watch(
            "Secret", kit.namespace, resource_version=listing.resource_version, timeout_seconds=1
        )
    )
    assert [e for e in events if e.type != "BOOKMARK"] == []
    assert kit.backend.clock.monotonic() - started >= 0.9


def test_watch_from_a_too_old_version_is_gone(kit: Kit) -> None:
    """Watching from resourceVersion 1 (older than the watch cache) raises Gone."""
    kit.fake_differs("keeps the whole history of a young cluster, so version 1 is not too old")
    if not kit.is_fake:
        # A real server forgets versions only when etcd is compacted (every 5 minutes, to
        # the revision of the previous round): before that, version 1 is still served.
        created = kit.backend.get("Namespace", None, "default")["metadata"]["creationTimestamp"]
        age = (
            kit.backend.clock.now()
            - dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        )
        if age < 660:
            pytest.skip(f"the cluster is {age:.0f}s old; version 1 is compacted after ~10 minutes")
    with pytest.raises(Gone):
        kit.collect(
            kit.backend.watch("ConfigMap", kit.namespace, resource_version="1", timeout_seconds=5),
            count=1,
        )


def test_watch_pod_status_through_a_run(kit: Kit) -> None:
    """A pod's watch shows Pending, then Running, then Succeeded, never going back."""
    created = kit.pod("p", duration="2")
    order = {"Pending": 0, "Running": 1, "Succeeded": 2}
    seen: list[str] = []
    for event in kit.backend.watch(
        "Pod",
        kit.namespace,
        field_selector="metadata.name=p",
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=60,
    ):
        phase = event.object.get("status", {}).get("phase")
        if phase:
            seen.append(phase)
        if phase == "Succeeded":
            break
    assert seen[-1] == "Succeeded"
    assert "Running" in seen
    assert [order[p] for p in seen] == sorted(order[p] for p in seen)
