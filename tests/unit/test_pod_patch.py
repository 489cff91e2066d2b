"""PodSpec.pod_patch: a JSON merge patch on the built pod that cannot undo what a run relies on."""

from __future__ import annotations

import math
from typing import Any

import pytest

from podrunner import PodRunner, PodSpec, SecretRef, SpecError
from podrunner.manifest import MANAGED_SELECTOR, build_manifests
from podrunner.manifest.patch import merge_patch
from podrunner.testing import FakeCluster

SECRET = "s3cret-value-never-shown"


def spec(**kw: Any) -> PodSpec:
    base: dict[str, Any] = {"image": "busybox:1.36", "command": ["true"]}
    return PodSpec(**{**base, **kw})


def wired(**kw: Any) -> PodSpec:
    """A spec with every kind of credential and files wiring (a fixed name: the same Secret)."""
    return spec(
        name="wired",
        secret_env={"TOKEN": SECRET, "REF": SecretRef("team-creds", "key")},
        secret_files={"/run/creds/key.pem": SECRET},
        files={"/in/prompt.txt": "hello"},
        **kw,
    )


def test_patched_fields_reach_the_pod_the_cluster_stores() -> None:
    cluster = FakeCluster()
    cluster.when(image="busybox:*").succeed(logs="ok\n")
    patch = {
        "metadata": {"labels": {"team": "ml"}, "annotations": {"example.com/owner": "a"}},
        "spec": {
            "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
            "hostAliases": [{"ip": "127.0.0.1", "hostnames": ["api.internal"]}],
        },
    }
    runner = PodRunner(cluster.backend)
    with runner.start(wired(pod_patch=patch)) as handle:
        stored = cluster.backend.get("Pod", "default", handle.pod_name)
        result = handle.wait()
    assert result.exit_code == 0
    assert stored["spec"]["dnsConfig"] == patch["spec"]["dnsConfig"]
    assert stored["spec"]["hostAliases"] == patch["spec"]["hostAliases"]
    assert stored["metadata"]["labels"]["team"] == "ml"
    assert stored["metadata"]["annotations"]["example.com/owner"] == "a"


def test_merge_semantics_null_removes_and_lists_replace() -> None:
    target = {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}
    assert merge_patch(target, {"a": {"b": None, "d": 3}, "l": [9]}) == {
        "a": {"c": 2, "d": 3},
        "l": [9],
        "keep": True,
    }
    assert target == {"a": {"b": 1, "c": 2}, "l": [1, 2], "keep": True}  # not modified
    pod = build_manifests(
        spec(labels={"tier": "x"}, pod_patch={"metadata": {"labels": {"tier": None}}})
    ).pod
    assert "tier" not in pod["metadata"]["labels"]


@pytest.mark.parametrize(
    "path",
    [
        "apiVersion",
        "kind",
        "status",
        "metadata.name",
        "metadata.generateName",
        "metadata.namespace",
        "metadata.uid",
        "metadata.resourceVersion",
        "metadata.ownerReferences",
    ],
)
def test_fields_that_identify_the_pod_are_refused_when_the_spec_is_made(path: str) -> None:
    *parents, leaf = path.split(".")
    patch: dict[str, Any] = {leaf: "x"}
    for parent in reversed(parents):
        patch = {parent: patch}
    with pytest.raises(SpecError) as info:
        spec(pod_patch=patch)
    assert (info.value.field, info.value.value) == ("pod_patch", path)


@pytest.mark.parametrize(
    "label", ["app.kubernetes.io/managed-by", "app.kubernetes.io/component", "podrunner.dev/run-id"]
)
@pytest.mark.parametrize("new", [None, "other"])
def test_managed_labels_cannot_be_changed_or_removed(label: str, new: str | None) -> None:
    s = spec(pod_patch={"metadata": {"labels": {label: new}}})
    with pytest.raises(SpecError) as info:
        build_manifests(s)
    assert (info.value.field, info.value.value) == ("pod_patch.metadata.labels", label)


def test_podrunner_annotations_cannot_be_set() -> None:
    s = spec(pod_patch={"metadata": {"annotations": {"podrunner.dev/expires-at": "2099"}}})
    with pytest.raises(SpecError) as info:
        build_manifests(s)
    assert info.value.value == "podrunner.dev/expires-at"


def _refusal(s: PodSpec) -> SpecError:
    with pytest.raises(SpecError) as info:
        build_manifests(s)
    assert SECRET not in str(info.value)
    return info.value


def test_restating_the_containers_must_keep_the_secret_variables() -> None:
    built = build_manifests(wired()).pod["spec"]["containers"][0]
    no_env = {**built, "env": [e for e in built["env"] if "valueFrom" not in e]}
    error = _refusal(wired(pod_patch={"spec": {"containers": [no_env]}}))
    assert error.field == "pod_patch.spec.containers[main].env"
    assert error.value in {"TOKEN", "REF"}


def test_restating_the_containers_must_keep_the_secret_and_files_mounts() -> None:
    built = build_manifests(wired()).pod["spec"]["containers"][0]
    for kept in ("podrunner-files", "podrunner-secrets"):
        mounts = [m for m in built["volumeMounts"] if m["name"].startswith(kept)]
        error = _refusal(
            wired(pod_patch={"spec": {"containers": [{**built, "volumeMounts": mounts}]}})
        )
        assert error.field == "pod_patch.spec.containers[main].volumeMounts"
        assert not error.value.startswith(kept)


def test_the_secret_and_files_volumes_must_stay() -> None:
    volumes = build_manifests(wired()).pod["spec"]["volumes"]
    for dropped in volumes:
        rest = [v for v in volumes if v is not dropped]
        error = _refusal(wired(pod_patch={"spec": {"volumes": rest}}))
        assert (error.field, error.value) == ("pod_patch.spec.volumes", dropped["name"])
    error = _refusal(wired(pod_patch={"spec": {"volumes": None}}))
    assert error.field == "pod_patch.spec.volumes"


def test_the_main_container_must_stay() -> None:
    error = _refusal(spec(pod_patch={"spec": {"containers": [{"name": "other", "image": "x"}]}}))
    assert (error.field, error.value) == ("pod_patch.spec.containers", "main")


def test_adding_a_sidecar_by_restating_the_containers_is_allowed() -> None:
    built = build_manifests(wired()).pod["spec"]["containers"][0]
    extra = {"name": "tail", "image": "busybox:1.36", "command": ["sleep", "1"]}
    pod = build_manifests(wired(pod_patch={"spec": {"containers": [built, extra]}})).pod
    assert [c["name"] for c in pod["spec"]["containers"]] == ["main", "tail"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({SECRET}, "a set"),
        (SECRET.encode(), "bytes"),
        (math.nan, "a float"),
        (object(), "an object"),
    ],
)
def test_values_that_are_not_json_are_refused_without_being_shown(value: object, kind: str) -> None:
    with pytest.raises(SpecError) as info:
        spec(pod_patch={"spec": {"containers": [{"env": [{"value": value}]}]}})
    assert info.value.field == "pod_patch.spec.containers[0].env[0].value"
    assert SECRET not in str(info.value)
    assert "nan" not in str(info.value)


def test_labels_and_annotations_follow_the_server_rules() -> None:
    with pytest.raises(SpecError) as info:
        spec(pod_patch={"metadata": {"labels": {"bad key": "v"}}})
    assert (info.value.field, info.value.value) == ("pod_patch.metadata.labels", "bad key")
    with pytest.raises(SpecError) as info:
        spec(pod_patch={"metadata": {"labels": {"ok": "bad value!"}}})
    assert info.value.field == "pod_patch.metadata.labels[ok]"
    with pytest.raises(SpecError):
        spec(pod_patch={"metadata": {"annotations": {"ok": 3}}})


def test_a_patch_that_is_not_a_mapping_or_has_odd_keys_is_refused() -> None:
    for bad in ([{"spec": {}}], "spec: {}", {1: "x"}):
        with pytest.raises(SpecError) as info:
            spec(pod_patch=bad)
        assert info.value.field == "pod_patch"


def test_a_refused_patch_creates_nothing() -> None:
    cluster = FakeCluster()
    runner = PodRunner(cluster.backend)
    bad = wired(pod_patch={"spec": {"volumes": None}})
    with pytest.raises(SpecError):
        runner.run(bad)
    for kind in ("Pod", "Secret", "ConfigMap"):
        items = cluster.backend.list(kind, "default", label_selector=MANAGED_SELECTOR).items
        assert items == []


def test_specs_with_patches_are_values() -> None:
    a = spec(
        name="a", pod_patch={"spec": {"hostAliases": [{"ip": "127.0.0.1", "hostnames": ["x"]}]}}
    )
    b = spec(
        name="a", pod_patch={"spec": {"hostAliases": [{"ip": "127.0.0.1", "hostnames": ["x"]}]}}
    )
    assert a == b
    assert hash(a) == hash(b)
    assert build_manifests(a, run_id="r").pod == build_manifests(b, run_id="r").pod


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"spec": {"restartPolicy": "Sometimes"}}, "pod_patch.spec.restartPolicy"),
        ({"spec": {"runtimeClassName": "Not_A_Name"}}, "pod_patch.spec.runtimeClassName"),
        ({"spec": {"serviceAccountName": "a b"}}, "pod_patch.spec.serviceAccountName"),
        ({"spec": {"nodeSelector": {"zone": "a b"}}}, "pod_patch.spec.nodeSelector[zone]"),
        ({"spec": {"activeDeadlineSeconds": 0}}, "pod_patch.spec.activeDeadlineSeconds"),
        ({"spec": {"containers": [{"name": "Main"}]}}, "pod_patch.spec.containers[0].name"),
        ({"spec": {"containers": [{"image": " x"}]}}, "pod_patch.spec.containers[0].image"),
        (
            {"spec": {"containers": [{"env": [{"name": "A=B"}]}]}},
            "pod_patch.spec.containers[0].env[0].name",
        ),
        (
            {"spec": {"initContainers": [{"resources": {"limits": {"cpu": "lots"}}}]}},
            "pod_patch.spec.initContainers[0].resources.limits[cpu]",
        ),
    ],
)
def test_fields_podspec_has_options_for_are_checked_by_its_rules(
    patch: dict[str, Any], field: str
) -> None:
    with pytest.raises(SpecError) as info:
        spec(pod_patch=patch)
    assert info.value.field == field
