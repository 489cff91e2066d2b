from __future__ import annotations

import re

import pytest
from fakepods import pod

from podrunner.backends.fake import FakeCluster, VirtualClock
from podrunner.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound


def test_resource_versions_are_global_and_increasing(cluster: FakeCluster) -> None:
    """Every write takes a larger resourceVersion, across kinds."""
    a = cluster.backend.create(pod("a"))
    s = cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}})
    b = cluster.backend.create(pod("b"))
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, s, b)]
    assert versions == sorted(versions)
    assert len(set(versions)) == 3


def test_stale_replace_is_conflict(cluster: FakeCluster) -> None:
    """Replacing with an old resourceVersion answers 409 Conflict with the server's message."""
    cm = cluster.backend.create(
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}}
    )
    newer = dict(cm, data={"k": "2"})
    cluster.backend.replace(newer)
    stale = dict(cm, data={"k": "3"})
    with pytest.raises(Conflict) as info:
        cluster.backend.replace(stale)
    assert info.value.status == 409
    assert info.value.reason == "Conflict"
    assert "the object has been modified" in info.value.message


def test_unconditional_replace_is_allowed(cluster: FakeCluster) -> None:
    """A replace without resourceVersion overwrites (allowed for these kinds)."""
    cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}})
    out = cluster.backend.replace(
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "2"}}
    )
    assert out["data"] == {"k": "2"}


def test_noop_replace_keeps_version(cluster: FakeCluster) -> None:
    """An update that changes nothing is not written, as on a real server."""
    cm = cluster.backend.create(
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "1"}}
    )
    again = cluster.backend.replace(cm)
    assert again["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]


def test_create_existing_is_already_exists(cluster: FakeCluster) -> None:
    """Creating an existing name answers 409 AlreadyExists."""
    cluster.backend.create(pod("a"))
    with pytest.raises(AlreadyExists) as info:
        cluster.backend.create(pod("a"))
    assert info.value.reason == "AlreadyExists"
    assert info.value.message == 'pods "a" already exists'


def test_generate_name_suffix_alphabet() -> None:
    """GenerateName appends five characters from the API server's alphabet."""
    cluster = FakeCluster()
    names = {cluster.backend.create(pod(""))["metadata"]["name"] for _ in range(200)}
    assert len(names) == 200
    assert all(re.fullmatch(r"p-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in names)


def test_generate_name_retries_on_collision() -> None:
    """A generated name that collides is regenerated."""
    first = FakeCluster(seed=7).backend.create(pod(""))["metadata"]["name"]
    cluster = FakeCluster(seed=7)
    cluster.backend.create(pod(first))
    second = cluster.backend.create(pod(""))["metadata"]["name"]
    assert second != first
    assert second.startswith("p-")


def test_server_fields(cluster: FakeCluster) -> None:
    """uid, creationTimestamp (RFC 3339 Z) and generation are set by the server."""
    out = cluster.backend.create(pod("a"))
    meta = out["metadata"]
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", meta["uid"]
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert out["status"]["phase"] == "Pending"
    assert out["spec"]["schedulerName"] == "default-scheduler"


def test_generation_bumps_on_spec_change(cluster: FakeCluster) -> None:
    """Changing a mutable pod spec field bumps metadata.generation."""
    cluster.backend.create(pod("a"))
    out = cluster.backend.patch("Pod", "default", "a", {"spec": {"activeDeadlineSeconds": 60}})
    assert out["metadata"]["generation"] == 2


def test_returned_objects_are_copies(cluster: FakeCluster) -> None:
    """Mutating a returned object or the input never changes the store."""
    manifest = pod("a")
    out = cluster.backend.create(manifest)
    out["metadata"]["labels"] = {"x": "y"}
    out["spec"]["containers"][0]["image"] = "evil"
    manifest["spec"]["containers"][0]["image"] = "evil"
    got = cluster.backend.get("Pod", "default", "a")
    assert got["spec"]["containers"][0]["image"] == "busybox:1.36"
    assert "labels" not in got["metadata"]
    got["status"]["phase"] = "Failed"
    assert cluster.backend.get("Pod", "default", "a")["status"]["phase"] == "Pending"


def test_namespaces_exist_and_unknown_is_not_found(cluster: FakeCluster) -> None:
    """Default and kube-system exist; an unknown namespace is NotFound as on the server."""
    assert {"default", "kube-system"} <= set(cluster.namespaces())
    with pytest.raises(NotFound) as info:
        cluster.backend.create(pod("a", namespace="nope"))
    assert info.value.message == 'namespaces "nope" not found'
    cluster.create_namespace("nope")
    assert cluster.backend.create(pod("a", namespace="nope"))["metadata"]["namespace"] == "nope"


def test_auto_create_namespaces() -> None:
    """With auto_create_namespaces a missing namespace is created on first use."""
    cluster = FakeCluster(auto_create_namespaces=True)
    cluster.backend.create(pod("a", namespace="team"))
    assert "team" in cluster.namespaces()


def test_dry_run_does_not_store(cluster: FakeCluster) -> None:
    """A dry-run create validates and returns the object without storing it."""
    out = cluster.backend.create(pod("a"), dry_run=True)
    assert out["metadata"]["name"] == "a"
    with pytest.raises(NotFound):
        cluster.backend.get("Pod", "default", "a")


def test_get_missing_is_not_found(cluster: FakeCluster) -> None:
    """A missing object is 404 with the server's message."""
    with pytest.raises(NotFound) as info:
        cluster.backend.get("Secret", "default", "x")
    assert info.value.message == 'secrets "x" not found'
    assert info.value.status == 404


def test_pod_spec_is_immutable(cluster: FakeCluster) -> None:
    """Changing an immutable pod field is 422 Forbidden on spec."""
    cluster.backend.create(pod("a"))
    with pytest.raises(Invalid) as info:
        cluster.backend.patch("Pod", "default", "a", {"spec": {"restartPolicy": "Always"}})
    assert info.value.causes[0].field == "spec"
    assert info.value.causes[0].reason == "FieldValueForbidden"


def test_image_update_is_allowed(cluster: FakeCluster) -> None:
    """A container image may be changed on a pod."""
    cluster.backend.create(pod("a"))
    current = cluster.backend.get("Pod", "default", "a")
    current["spec"]["containers"][0]["image"] = "busybox:1.37"
    out = cluster.backend.replace(current)
    assert out["spec"]["containers"][0]["image"] == "busybox:1.37"


def test_pod_status_ignored_on_replace_but_patchable_as_subresource(cluster: FakeCluster) -> None:
    """A pod's status changes only through the status subresource."""
    current = cluster.backend.create(pod("a"))
    current["status"] = {"phase": "Failed"}
    assert cluster.backend.replace(current)["status"]["phase"] == "Pending"
    out = cluster.backend.patch(
        "Pod", "default", "a", {"status": {"phase": "Failed"}}, subresource="status"
    )
    assert out["status"]["phase"] == "Failed"


def test_merge_patch_removes_with_null(cluster: FakeCluster) -> None:
    """A JSON merge patch adds keys and removes those set to null."""
    cluster.backend.create(
        {"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "1"}}
    )
    out = cluster.backend.patch(
        "ConfigMap",
        "default",
        "c",
        {"metadata": {"labels": {"a": None, "b": "2"}}, "data": {"y": "2"}},
    )
    assert out["metadata"]["labels"] == {"b": "2"}
    assert out["data"] == {"x": "1", "y": "2"}


def test_patch_with_stale_version_conflicts(cluster: FakeCluster) -> None:
    """A merge patch carrying an old resourceVersion is a 409 precondition failure."""
    cm = cluster.backend.create({"kind": "ConfigMap", "metadata": {"name": "c"}})
    cluster.backend.patch("ConfigMap", "default", "c", {"data": {"a": "1"}})
    with pytest.raises(Conflict):
        cluster.backend.patch(
            "ConfigMap",
            "default",
            "c",
            {
                "metadata": {"resourceVersion": cm["metadata"]["resourceVersion"]},
                "data": {"a": "2"},
            },
        )


def test_unknown_subresource_is_not_found(cluster: FakeCluster) -> None:
    """Only the status subresource exists."""
    cluster.backend.create(pod("a"))
    with pytest.raises(NotFound):
        cluster.backend.patch("Pod", "default", "a", {}, subresource="scale")


def test_secret_string_data_is_encoded(cluster: FakeCluster) -> None:
    """StringData is merged into base64 data, as the API server does on write."""
    out = cluster.backend.create(
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"token": "abc"}}
    )
    assert out["data"] == {"token": "YWJj"}
    assert "stringData" not in out
    assert out["type"] == "Opaque"


def test_immutable_config_map(cluster: FakeCluster) -> None:
    """An immutable ConfigMap's data cannot change."""
    cluster.backend.create(
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}, "immutable": True}
    )
    with pytest.raises(Invalid):
        cluster.backend.patch("ConfigMap", "default", "c", {"data": {"a": "2"}})


def test_protected_namespace_cannot_be_deleted(cluster: FakeCluster) -> None:
    """Deleting default is 403, as the NamespaceLifecycle admission answers."""
    with pytest.raises(Forbidden):
        cluster.backend.delete("Namespace", None, "default")


def test_namespace_delete_removes_contents(cluster: FakeCluster) -> None:
    """Deleting a namespace deletes what it contains."""
    cluster.create_namespace("t")
    cluster.backend.create(pod("a", namespace="t"))
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s", "namespace": "t"}})
    cluster.backend.delete("Namespace", None, "t")
    assert cluster.pods("t") == []
    assert cluster.secrets("t") == []
    assert "t" not in cluster.namespaces()


def test_namespaced_kind_needs_namespace(cluster: FakeCluster) -> None:
    """A namespaced get without a namespace is a 400, not a crash."""
    with pytest.raises(BadRequest):
        cluster.backend.get("Pod", None, "a")


def test_history_records_every_version(cluster: FakeCluster) -> None:
    """history() returns each stored version of a pod, oldest first."""
    cluster.backend.create(pod("a"))
    cluster.advance(10)
    versions = cluster.history("Pod", "default", "a")
    phases = [v["status"]["phase"] for v in versions]
    assert phases[0] == "Pending"
    assert phases[-1] == "Succeeded"
    rvs = [int(v["metadata"]["resourceVersion"]) for v in versions]
    assert rvs == sorted(rvs)


def test_actions_are_recorded(cluster: FakeCluster) -> None:
    """Every call is recorded with verb, kind, namespace, name and selectors."""
    cluster.backend.create(pod("a"))
    cluster.backend.list(
        "Pod", "default", label_selector="app=x", field_selector="status.phase=Running"
    )
    with pytest.raises(NotFound):
        cluster.backend.get("Pod", "default", "zz")
    verbs = [(a.verb, a.kind, a.namespace, a.name) for a in cluster.actions]
    assert verbs == [
        ("create", "Pod", "default", "a"),
        ("list", "Pod", "default", None),
        ("get", "Pod", "default", "zz"),
    ]
    assert cluster.actions[1].label_selector == "app=x"
    assert cluster.actions[1].field_selector == "status.phase=Running"
    cluster.clear_actions()
    assert cluster.actions == []


def test_list_is_sorted_and_carries_version(cluster: FakeCluster) -> None:
    """A list returns items sorted by name and the current resourceVersion."""
    for name in ("c", "a", "b"):
        cluster.backend.create(pod(name))
    out = cluster.backend.list("Pod", "default")
    assert [p["metadata"]["name"] for p in out.items] == ["a", "b", "c"]
    assert int(out.resource_version) >= max(
        int(p["metadata"]["resourceVersion"]) for p in out.items
    )


def test_uids_are_unique_and_uuid_shaped() -> None:
    """Every object gets a distinct version-4-shaped uid, also across clusters."""
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
    uids = []
    for _ in range(2):
        cluster = FakeCluster()
        for i in range(50):
            uids.append(cluster.backend.create(pod(f"p{i}"))["metadata"]["uid"])
        cluster.advance(5)
        uids.extend(e["metadata"]["uid"] for e in cluster.events())
    assert all(shape.fullmatch(u) for u in uids)
    assert len(set(uids)) == len(uids)


def test_seeded_clusters_mint_the_same_uids() -> None:
    """A seed makes names and uids reproducible."""
    made = [FakeCluster(seed=7).backend.create(pod("a"))["metadata"]["uid"] for _ in range(2)]
    assert made[0] == made[1]


def test_history_of_a_deleted_pod_is_kept_for_the_last_100_deletions(
    cluster: FakeCluster,
) -> None:
    """Recently deleted pods keep their versions; older ones are dropped, bounding memory."""
    for i in range(101):
        cluster.backend.create(pod(f"p{i}"))
        cluster.advance(5)
        cluster.backend.delete("Pod", "default", f"p{i}")
    cluster.advance(60)
    recent = cluster.history("Pod", "default", "p100")
    assert recent[0]["status"]["phase"] == "Pending"
    assert recent[-1]["status"]["phase"] == "Succeeded"
    assert cluster.history("Pod", "default", "p0") == []


def test_event_history_is_its_current_version(cluster: FakeCluster) -> None:
    """Events keep no version history: history() returns the Event as it is now."""
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    event = cluster.events(pod="a")[0]
    name = event["metadata"]["name"]
    assert cluster.history("Event", "default", name) == [event]
    assert cluster.history("Event", "default", "no-such-event") == []


def test_events_handed_out_are_independent(cluster: FakeCluster) -> None:
    """Events of one pod version share stored subtrees, yet callers get separate copies."""
    cluster.backend.create(pod("a"))
    cluster.advance(5)
    by_reason = {e["reason"]: e for e in cluster.events(pod="a")}
    pulled, created = by_reason["Pulled"], by_reason["Created"]
    assert pulled["involvedObject"] == created["involvedObject"]
    pulled["involvedObject"]["name"] = "changed"
    pulled["source"]["component"] = "changed"
    again = {e["reason"]: e for e in cluster.events(pod="a")}
    assert again["Pulled"]["involvedObject"]["name"] == "a"
    assert again["Created"]["source"]["component"] == "kubelet"
    assert created["involvedObject"]["name"] == "a"


def test_expired_events_do_not_evict_the_history_of_deleted_pods() -> None:
    """Hundreds of expiring Events leave the last deleted pods' versions in place."""
    cluster = FakeCluster()
    for i in range(50):
        cluster.backend.create(pod(f"p{i}"))
        cluster.advance(100)
        cluster.backend.delete("Pod", "default", f"p{i}")
    cluster.advance(4000)
    assert cluster.events() == []
    assert cluster.history("Pod", "default", "p0")[-1]["status"]["phase"] == "Succeeded"


# -- garbage collection of owner references written after creation ----------------------------


def _owner_ref(owner: dict[str, object], name: str = "a") -> dict[str, object]:
    meta = owner["metadata"]
    assert isinstance(meta, dict)
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": meta["uid"]}


def _secret_exists(cluster: FakeCluster, name: str = "s") -> bool:
    try:
        cluster.backend.get("Secret", "default", name)
    except NotFound:
        return False
    return True


def test_owner_added_by_patch_is_collected_with_its_owner(cluster: FakeCluster) -> None:
    """A Secret the runner ties to its pod with a patch goes when the pod goes, as on a server."""
    owner = cluster.backend.create(pod("a"))
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}})
    cluster.backend.patch(
        "Secret", "default", "s", {"metadata": {"ownerReferences": [_owner_ref(owner)]}}
    )
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    cluster.advance(120)
    assert not _secret_exists(cluster)


def test_owner_added_by_replace_is_collected_with_its_owner(cluster: FakeCluster) -> None:
    """The same through a full update (replace) of the dependent."""
    owner = cluster.backend.create(pod("a"))
    secret = cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}})
    secret["metadata"]["ownerReferences"] = [_owner_ref(owner)]
    cluster.backend.replace(secret)
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    cluster.advance(120)
    assert not _secret_exists(cluster)


def test_owner_removed_by_patch_keeps_the_dependent(cluster: FakeCluster) -> None:
    """Removing the owner reference orphans the dependent: deleting the old owner keeps it."""
    owner = cluster.backend.create(pod("a"))
    cluster.backend.create(
        {"kind": "Secret", "metadata": {"name": "s", "ownerReferences": [_owner_ref(owner)]}}
    )
    cluster.backend.patch("Secret", "default", "s", {"metadata": {"ownerReferences": None}})
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    cluster.advance(120)
    assert _secret_exists(cluster)


def test_owner_swapped_by_patch_follows_the_new_owner(cluster: FakeCluster) -> None:
    """Moving a dependent to another owner: the old owner's deletion keeps it, the new one's not."""
    first = cluster.backend.create(pod("a"))
    second = cluster.backend.create(pod("b"))
    cluster.backend.create(
        {"kind": "Secret", "metadata": {"name": "s", "ownerReferences": [_owner_ref(first)]}}
    )
    cluster.backend.patch(
        "Secret", "default", "s", {"metadata": {"ownerReferences": [_owner_ref(second, "b")]}}
    )
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    cluster.advance(120)
    assert _secret_exists(cluster)
    cluster.backend.delete("Pod", "default", "b", grace_period_seconds=0)
    cluster.advance(120)
    assert not _secret_exists(cluster)


def test_owner_patched_to_a_missing_uid_is_collected(cluster: FakeCluster) -> None:
    """A patch naming only owners that do not exist makes the dependent garbage at once."""
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}})
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "x", "uid": "00000000-0000-4000-8000-0"}
    cluster.backend.patch("Secret", "default", "s", {"metadata": {"ownerReferences": [ref]}})
    cluster.advance(120)
    assert not _secret_exists(cluster)


def test_recreated_dependent_without_owner_survives_the_old_owner(cluster: FakeCluster) -> None:
    """A Secret deleted and made again under the same name without an owner is not collected."""
    owner = cluster.backend.create(pod("a"))
    cluster.backend.create(
        {"kind": "Secret", "metadata": {"name": "s", "ownerReferences": [_owner_ref(owner)]}}
    )
    cluster.backend.delete("Secret", "default", "s")
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}})
    cluster.backend.delete("Pod", "default", "a", grace_period_seconds=0)
    cluster.advance(120)
    assert _secret_exists(cluster)


def test_clusters_at_different_times_stamp_their_own_time() -> None:
    """Timestamps come from each cluster's own clock, interleaved or not."""
    early = FakeCluster(clock=VirtualClock(start=1_767_225_600.0))
    late = FakeCluster(clock=VirtualClock(start=1_798_761_600.0))
    for i in range(3):
        a = early.backend.create(pod(f"a{i}"))["metadata"]["creationTimestamp"]
        b = late.backend.create(pod(f"b{i}"))["metadata"]["creationTimestamp"]
        assert (a, b) == ("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    early.advance(61)
    assert early.backend.create(pod("c"))["metadata"]["creationTimestamp"] == (
        "2026-01-01T00:01:01Z"
    )
