"""Contract: object CRUD, names, versions, validation and selectors answer like the API server."""

from __future__ import annotations

import base64
import contextlib
import re
from typing import TYPE_CHECKING

import pytest

from podrunner.errors import AlreadyExists, BadRequest, Conflict, Invalid, NotFound

if TYPE_CHECKING:
    from conftest import Kit

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_create_fills_server_fields(kit: Kit) -> None:
    """create() returns the stored object with uid, resourceVersion and creationTimestamp."""
    created = kit.pod("p")
    meta = created["metadata"]
    assert meta["name"] == "p"
    assert meta["namespace"] == kit.namespace
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert meta["resourceVersion"].isdigit()
    assert RFC3339.match(meta["creationTimestamp"])
    assert created["kind"] == "Pod"
    assert created["apiVersion"] == "v1"
    assert created["status"]["phase"] == "Pending"


def test_get_returns_what_create_stored(kit: Kit) -> None:
    """get() returns the same uid and spec create() stored."""
    created = kit.config_map("cm", {"a": "1"})
    got = kit.backend.get("ConfigMap", kit.namespace, "cm")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    assert got["data"] == {"a": "1"}


def test_generate_name_appends_five_characters(kit: Kit) -> None:
    """GenerateName gets a five-character random suffix from the server."""
    manifest = kit.pod_manifest(None)
    manifest["metadata"]["generateName"] = "job-"
    first = kit.backend.create(manifest)["metadata"]["name"]
    second = kit.backend.create(manifest)["metadata"]["name"]
    assert re.fullmatch(r"job-[a-z0-9]{5}", first)
    assert first != second


def test_create_existing_name_is_already_exists(kit: Kit) -> None:
    """A second create with the same name answers 409 AlreadyExists."""
    kit.config_map("dup")
    with pytest.raises(AlreadyExists) as info:
        kit.config_map("dup")
    assert info.value.status == 409
    assert info.value.reason == "AlreadyExists"
    assert info.value.message == 'configmaps "dup" already exists'


def test_get_missing_is_not_found(kit: Kit) -> None:
    """get() of a missing object answers 404 with the server's message."""
    with pytest.raises(NotFound) as info:
        kit.backend.get("Pod", kit.namespace, "ghost")
    assert info.value.message == 'pods "ghost" not found'


def test_delete_missing_is_not_found(kit: Kit) -> None:
    """delete() of a missing object answers 404."""
    with pytest.raises(NotFound):
        kit.backend.delete("Secret", kit.namespace, "ghost")


def test_create_in_missing_namespace_is_not_found(kit: Kit) -> None:
    """Creating into a namespace that does not exist answers 404 naming the namespace."""
    manifest = kit.pod_manifest("p")
    manifest["metadata"]["namespace"] = "no-such-namespace-x"
    with pytest.raises(NotFound) as info:
        kit.backend.create(manifest)
    assert info.value.message == 'namespaces "no-such-namespace-x" not found'


def test_replace_with_stale_version_is_conflict(kit: Kit) -> None:
    """A replace carrying an old resourceVersion answers 409 Conflict."""
    stale = kit.config_map("cm", {"v": "1"})
    fresh = dict(stale, data={"v": "2"})
    updated = kit.backend.replace(fresh)
    assert int(updated["metadata"]["resourceVersion"]) > int(stale["metadata"]["resourceVersion"])
    with pytest.raises(Conflict) as info:
        kit.backend.replace(dict(stale, data={"v": "3"}))
    assert info.value.reason == "Conflict"
    assert "the object has been modified" in info.value.message


def test_merge_patch_sets_and_removes_keys(kit: Kit) -> None:
    """A merge patch sets keys and deletes the ones given as null."""
    kit.config_map("cm", {"keep": "1", "drop": "2"})
    patched = kit.backend.patch(
        "ConfigMap", kit.namespace, "cm", {"data": {"drop": None, "new": "3"}}
    )
    assert patched["data"] == {"keep": "1", "new": "3"}


def test_patch_pod_status_subresource(kit: Kit) -> None:
    """Patching pods/status changes the status and, on the server, metadata labels too."""
    kit.pod("p", labels={"a": "b"}, failure="Unschedulable")
    patched = kit.backend.patch(
        "Pod",
        kit.namespace,
        "p",
        {"status": {"message": "from the contract suite"}, "metadata": {"labels": {"a": "z"}}},
        subresource="status",
    )
    assert patched["status"]["message"] == "from the contract suite"
    assert patched["metadata"]["labels"] == {"a": "z"}


def test_secret_string_data_becomes_data(kit: Kit) -> None:
    """StringData is folded into base64 data by the server and not stored itself."""
    created = kit.backend.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s", "namespace": kit.namespace},
            "stringData": {"token": "abc"},
        }
    )
    assert created["data"] == {"token": base64.b64encode(b"abc").decode()}
    assert "stringData" not in created
    assert created["type"] == "Opaque"


def test_dry_run_create_stores_nothing(kit: Kit) -> None:
    """create(dry_run=True) answers with the object but stores nothing."""
    answer = kit.backend.create(kit.pod_manifest("dry"), dry_run=True)
    assert answer["metadata"]["name"] == "dry"
    with pytest.raises(NotFound):
        kit.backend.get("Pod", kit.namespace, "dry")


# -- validation: 422 with causes ---------------------------------------------------------------


def test_invalid_name_has_a_metadata_name_cause(kit: Kit) -> None:
    """An upper-case name is 422 Invalid with a FieldValueInvalid cause on metadata.name."""
    with pytest.raises(Invalid) as info:
        kit.pod("Bad_Name")
    assert info.value.status == 422
    fields = {(c.field, c.reason) for c in info.value.causes}
    assert ("metadata.name", "FieldValueInvalid") in fields


def test_invalid_label_value_has_a_labels_cause(kit: Kit) -> None:
    """A label value with a space is 422 with a cause on metadata.labels."""
    with pytest.raises(Invalid) as info:
        kit.pod("p", labels={"team": "not valid"})
    causes = [c for c in info.value.causes if c.field == "metadata.labels"]
    assert causes
    assert causes[0].reason == "FieldValueInvalid"


def test_missing_containers_is_required(kit: Kit) -> None:
    """A pod without containers is 422 with a FieldValueRequired cause."""
    manifest = kit.pod_manifest("p")
    manifest["spec"]["containers"] = []
    with pytest.raises(Invalid) as info:
        kit.backend.create(manifest)
    assert ("spec.containers", "FieldValueRequired") in {
        (c.field, c.reason) for c in info.value.causes
    }


def test_malformed_quantity_is_rejected_when_decoding(kit: Kit) -> None:
    """A quantity that does not parse fails decoding: 400 BadRequest, not 422."""
    manifest = kit.pod_manifest("p")
    manifest["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "lots"}}
    with pytest.raises(BadRequest) as info:
        kit.backend.create(manifest)
    assert "quantities must match the regular expression" in info.value.message


def test_negative_quantity_is_invalid(kit: Kit) -> None:
    """A well-formed but negative limit is 422 with a cause on the limit's path."""
    manifest = kit.pod_manifest("p")
    manifest["spec"]["containers"][0]["resources"] = {"limits": {"memory": "-1Mi"}}
    with pytest.raises(Invalid) as info:
        kit.backend.create(manifest)
    assert any(c.field == "spec.containers[0].resources.limits[memory]" for c in info.value.causes)


# -- selectors ----------------------------------------------------------------------------------


def _names(items: list[dict[str, object]]) -> list[str]:
    return sorted(str(i["metadata"]["name"]) for i in items)  # type: ignore[index]


def test_label_selectors(kit: Kit) -> None:
    """Equality, set-based and existence selectors pick the same objects as the server."""
    kit.config_map("a", labels={"set": "t", "tier": "web", "env": "prod"})
    kit.config_map("b", labels={"set": "t", "tier": "db", "env": "prod"})
    kit.config_map("c", labels={"set": "t", "tier": "web"})
    kit.config_map("d", labels={"set": "t"})

    def select(selector: str) -> list[str]:
        # "set=t" keeps out kube-root-ca.crt, which real namespaces get from a controller.
        items = kit.backend.list("ConfigMap", kit.namespace, label_selector=f"set=t,{selector}")
        return _names(items.items)

    assert select("tier=web") == ["a", "c"]
    assert select("tier!=web") == ["b", "d"]
    assert select("tier in (web,db),env") == ["a", "b"]
    assert select("tier notin (web)") == ["b", "d"]
    assert select("!env") == ["c", "d"]
    assert select("env=prod,tier==db") == ["b"]


def test_invalid_label_selector_is_bad_request(kit: Kit) -> None:
    """A label selector that does not parse is 400."""
    with pytest.raises(BadRequest):
        kit.backend.list("ConfigMap", kit.namespace, label_selector="a in (b")


def test_pod_field_selectors(kit: Kit) -> None:
    """metadata.name and status.phase select pods."""
    kit.pod("one", failure="Unschedulable")
    kit.pod("two", failure="Unschedulable")
    by_name = kit.backend.list("Pod", kit.namespace, field_selector="metadata.name=one")
    assert _names(by_name.items) == ["one"]
    pending = kit.backend.list("Pod", kit.namespace, field_selector="status.phase=Pending")
    assert _names(pending.items) == ["one", "two"]
    not_one = kit.backend.list("Pod", kit.namespace, field_selector="metadata.name!=one")
    assert _names(not_one.items) == ["two"]


def test_unsupported_field_selector_is_bad_request(kit: Kit) -> None:
    """A field the server does not index is 400 with its 'field label not supported' message."""
    with pytest.raises(BadRequest) as info:
        kit.backend.list("Pod", kit.namespace, field_selector="spec.image=busybox")
    assert "field label not supported: spec.image" in info.value.message


def test_new_namespace_holds_the_root_ca_config_map(kit: Kit) -> None:
    """Every new namespace gets the kube-root-ca.crt ConfigMap from the controller-manager."""
    found = kit.wait_for("ConfigMap", "kube-root-ca.crt", lambda o: o is not None, timeout=30)
    assert found is not None
    assert "ca.crt" in found["data"]


def test_list_resource_version_is_a_number(kit: Kit) -> None:
    """A list carries a resourceVersion later than the objects it holds."""
    created = kit.config_map("cm")
    listing = kit.backend.list("ConfigMap", kit.namespace)
    assert int(listing.resource_version) >= int(created["metadata"]["resourceVersion"])
    assert [i["kind"] for i in listing.items] == ["ConfigMap"] * len(listing.items)


# -- deletion -----------------------------------------------------------------------------------


def test_zero_grace_delete_removes_the_pod_at_once(kit: Kit) -> None:
    """A pod deleted with grace period 0 is gone immediately."""
    kit.pod("p", duration="600")
    kit.wait_phase("p", "Running")
    kit.backend.delete("Pod", kit.namespace, "p", grace_period_seconds=0)
    with pytest.raises(NotFound):
        kit.backend.get("Pod", kit.namespace, "p")


def test_graceful_delete_sets_deletion_timestamp_then_deletes(kit: Kit) -> None:
    """A graceful delete first marks the pod (deletionTimestamp, grace) and then removes it."""
    kit.pod("p", duration="600")
    running = kit.wait_phase("p", "Running")
    version = running["metadata"]["resourceVersion"]
    kit.backend.delete("Pod", kit.namespace, "p", grace_period_seconds=30)
    events = kit.collect(
        kit.backend.watch(
            "Pod",
            kit.namespace,
            field_selector="metadata.name=p",
            resource_version=version,
            timeout_seconds=60,
        ),
        count=10,
    )
    first = events[0]
    assert first.type == "MODIFIED"
    assert RFC3339.match(first.object["metadata"]["deletionTimestamp"])
    assert first.object["metadata"]["deletionGracePeriodSeconds"] == 30
    assert events[-1].type == "DELETED"
    with pytest.raises(NotFound):
        kit.backend.get("Pod", kit.namespace, "p")


def test_owner_reference_garbage_collection(kit: Kit) -> None:
    """Deleting an owner pod garbage-collects the ConfigMap and Secret it owns."""
    owner = kit.pod("owner", failure="Unschedulable")
    ref = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    kit.config_map("owned", ownerReferences=[ref])
    kit.backend.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "owned", "namespace": kit.namespace, "ownerReferences": [ref]},
            "stringData": {"k": "v"},
        }
    )
    kit.config_map("unowned")
    kit.backend.delete("Pod", kit.namespace, "owner", grace_period_seconds=0)
    kit.wait_gone("ConfigMap", "owned")
    kit.wait_gone("Secret", "owned")
    assert kit.backend.get("ConfigMap", kit.namespace, "unowned")["metadata"]["name"] == "unowned"


def test_owner_references_written_by_update_are_followed(kit: Kit) -> None:
    """Owners added by a patch or a replace are collected with the owner; a dropped owner is not.

    This is how the runner ties its per-run Secret and ConfigMap to the pod: it creates them
    first, then patches in the pod as owner once the pod exists.
    """
    owner = kit.pod("owner", failure="Unschedulable")
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner["metadata"]["uid"]}
    kit.backend.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "patched", "namespace": kit.namespace},
            "stringData": {"k": "v"},
        }
    )
    kit.backend.patch("Secret", kit.namespace, "patched", {"metadata": {"ownerReferences": [ref]}})
    replaced = kit.config_map("replaced")
    replaced["metadata"]["ownerReferences"] = [ref]
    kit.backend.replace(replaced)
    kit.config_map("released", ownerReferences=[ref])
    kit.backend.patch(
        "ConfigMap", kit.namespace, "released", {"metadata": {"ownerReferences": None}}
    )
    kit.backend.delete("Pod", kit.namespace, "owner", grace_period_seconds=0)
    kit.wait_gone("Secret", "patched")
    kit.wait_gone("ConfigMap", "replaced")
    # Collected in the same pass as the others, had it still been a dependent.
    kept = kit.backend.get("ConfigMap", kit.namespace, "released")
    assert "ownerReferences" not in kept["metadata"]


def test_writes_naming_another_uid_are_refused(kit: Kit) -> None:
    """A replace or merge patch carrying another object's ``metadata.uid`` changes nothing.

    The replace is a uid precondition (409); the patch fails validation, the uid being
    immutable (422). ClaudeWorker relies on this to patch only the pod it created, not one
    made again under the same name.
    """
    first = kit.config_map("c")
    kit.backend.delete("ConfigMap", kit.namespace, "c")
    again = kit.config_map("c")
    stale = {**again, "metadata": {**again["metadata"], "uid": first["metadata"]["uid"]}}
    stale["data"] = {"k": "v"}
    with pytest.raises(Conflict):
        kit.backend.replace(stale)
    with pytest.raises(Invalid) as info:
        kit.backend.patch(
            "ConfigMap",
            kit.namespace,
            "c",
            {"metadata": {"uid": first["metadata"]["uid"], "labels": {"x": "1"}}},
        )
    assert "metadata.uid" in [c.field for c in info.value.causes]
    unchanged = kit.backend.get("ConfigMap", kit.namespace, "c")
    assert unchanged["metadata"]["resourceVersion"] == again["metadata"]["resourceVersion"]
    patched = kit.backend.patch(
        "ConfigMap",
        kit.namespace,
        "c",
        {"metadata": {"uid": again["metadata"]["uid"], "labels": {"x": "1"}}},
    )
    assert patched["metadata"]["labels"] == {"x": "1"}


def test_namespace_deletion_waits_for_its_contents(kit: Kit) -> None:
    """A deleted namespace stays Terminating while an object in it holds a finalizer.

    The fake deletes a namespace and everything in it at once (a deliberate difference:
    the namespace controller's asynchronous clean-up is not simulated; see
    docs/fake-fidelity.md).
    """
    kit.fake_differs("a namespace and its contents are deleted at once, finalizers or not")
    backend = kit.backend
    name = f"{kit.namespace}-t"
    backend.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        backend.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "held", "namespace": name, "finalizers": ["example.com/x"]},
            }
        )
        backend.delete("Namespace", None, name)
        ns = backend.get("Namespace", None, name)
        assert ns["metadata"].get("deletionTimestamp")
        assert ns["status"]["phase"] == "Terminating"
    finally:
        with contextlib.suppress(NotFound):
            backend.patch("ConfigMap", name, "held", {"metadata": {"finalizers": None}})
        with contextlib.suppress(NotFound):
            backend.delete("Namespace", None, name)
