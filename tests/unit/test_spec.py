"""Tests for podrunner.spec: construction, validation and copies."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from podrunner.errors import SpecError
from podrunner.spec import (
    CleanupPolicy,
    Deadlines,
    EnvVar,
    FrozenMap,
    ImagePullPolicy,
    PodSpec,
    Resources,
    SecretRef,
    SecurityProfile,
    Toleration,
    Volume,
)


def spec(**kw: Any) -> PodSpec:
    return PodSpec("img:v1", ["sh"], **kw)


def raises_on(field: str, **kw: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec(**kw)
    assert info.value.field == field, info.value
    return info.value


def test_defaults() -> None:
    """A minimal spec has the documented defaults."""
    s = spec()
    assert s.command == ("sh",)
    assert s.restart_policy == "Never"
    assert s.image_pull_policy is ImagePullPolicy.IF_NOT_PRESENT
    assert s.security is SecurityProfile.RESTRICTED
    assert s.container_name == "main"
    assert s.component == "runner"
    assert s.resources == Resources()
    assert s.env == ()
    assert s.labels == {}
    assert s.automount_service_account_token is False


def test_resources_default() -> None:
    """Seed: default resources set no limit (and here, no request)."""
    r = Resources()
    assert r.cpu_limit is None
    assert r.memory_limit is None
    assert r.cpu_request is None
    assert r.memory_request is None
    assert r.to_manifest() == {}


def test_image_pull_policy_values() -> None:
    """Seed: the three policies and their Kubernetes spelling; IfNotPresent by default."""
    assert [p.value for p in ImagePullPolicy] == ["Always", "IfNotPresent", "Never"]
    assert spec(image_pull_policy="Always").image_pull_policy is ImagePullPolicy.ALWAYS
    assert spec(image_pull_policy="never").image_pull_policy is ImagePullPolicy.NEVER
    raises_on("image_pull_policy", image_pull_policy="Sometimes")


def test_enums_accept_strings() -> None:
    """Security and cleanup enums accept their values and names."""
    assert spec(security="baseline").security is SecurityProfile.BASELINE
    assert spec(security="NONE").security is SecurityProfile.NONE
    assert CleanupPolicy("on-success") is CleanupPolicy.ON_SUCCESS
    raises_on("security", security="privileged")


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"cpu_limit": "5 m"}, "resources.cpu_limit"),
        ({"memory_limit": "Mi"}, "resources.memory_limit"),
        ({"cpu_request": "1.5.5"}, "resources.cpu_request"),
        ({"memory_request": ""}, "resources.memory_request"),
        ({"cpu_limit": "-1"}, "resources.cpu_limit"),
        ({"cpu_limit": True}, "resources.cpu_limit"),
        ({"cpu_limit": float("nan")}, "resources.cpu_limit"),
    ],
)
def test_resources_reject_bad_quantities(kw: dict[str, Any], field: str) -> None:
    """Malformed or negative quantities raise SpecError naming the field."""
    with pytest.raises(SpecError) as info:
        Resources(**kw)
    assert info.value.field == field


def test_resources_accept_quantities_and_numbers() -> None:
    """Every quantity form is accepted; numbers become strings."""
    r = Resources(cpu_limit=2, memory_limit="1.5Gi", cpu_request="500m", memory_request="1e3")
    assert r.cpu_limit == "2"
    assert r.to_manifest() == {
        "limits": {"cpu": "2", "memory": "1.5Gi"},
        "requests": {"cpu": "500m", "memory": "1e3"},
    }


def test_resources_request_above_limit() -> None:
    """A request above its limit is rejected, compared by value not by text."""
    with pytest.raises(SpecError) as info:
        Resources(cpu_limit="500m", cpu_request="1")
    assert info.value.field == "resources.cpu_request"
    assert "cpu limit of 500m" in info.value.rule
    with pytest.raises(SpecError):
        Resources(memory_limit="1Gi", memory_request="1025Mi")
    assert Resources(memory_limit="1Gi", memory_request="1024Mi").memory_request == "1024Mi"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"name": "Bad_Name"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"namespace": "a.b"}, "namespace"),
        ({"service_account": "UPPER"}, "service_account"),
        ({"restart_policy": "Sometimes"}, "restart_policy"),
        ({"restart_policy": ""}, "restart_policy"),
        ({"labels": {"bad key": "v"}}, "labels"),
        ({"labels": {"k": "bad value"}}, "labels[k]"),
        ({"labels": {"k": "x" * 64}}, "labels[k]"),
        ({"annotations": {"bad key": "v"}}, "annotations"),
        ({"annotations": {"k": "x" * 262144}}, "annotations"),
        ({"env": {"A=B": "v"}}, "env.name"),
        ({"env": {"": "v"}}, "env.name"),
        ({"env": [EnvVar("A", "1"), EnvVar("A", "2")]}, "env"),
        ({"env": "A=B"}, "env"),
        ({"blank_env": ["A=B"]}, "blank_env"),
        ({"blank_env": "CLAUDECODE"}, "blank_env"),
        ({"image_pull_secrets": ["Bad"]}, "image_pull_secrets"),
        ({"working_dir": "relative"}, "working_dir"),
        ({"node_selector": {"k": "bad value"}}, "node_selector[k]"),
        ({"active_deadline_seconds": 0}, "active_deadline_seconds"),
        ({"active_deadline_seconds": -5}, "active_deadline_seconds"),
        ({"active_deadline_seconds": 1.5}, "active_deadline_seconds"),
        ({"container_name": "Main"}, "container_name"),
        ({"component": ""}, "component"),
        ({"run_as_user": -1}, "run_as_user"),
        ({"run_as_user": 0}, "run_as_user"),
        ({"fs_group": 2**31}, "fs_group"),
        ({"stdin": "yes"}, "stdin"),
        ({"name": "a", "name_prefix": "b"}, "name_prefix"),
        ({"secret_files": {"relative": "x"}}, "secret_files"),
        ({"secret_files": {"/dir/": "x"}}, "secret_files"),
    ],
)
def test_invalid_fields_raise_spec_error(kw: dict[str, Any], field: str) -> None:
    """Each invalid value raises SpecError naming its field, value and rule."""
    err = raises_on(field, **kw)
    assert isinstance(err, ValueError)
    assert err.rule
    assert field in str(err)


@pytest.mark.parametrize(
    ("image", "command", "field"),
    [
        ("", ["sh"], "image"),
        (" img", ["sh"], "image"),
        ("img", [], "command"),
        ("img", "sh -c 'echo hi'", "command"),
        ("img", [""], "command[0]"),
        ("img", ["sh", 3], "command[1]"),
        ("img", ["sh", "a\x00b"], "command[1]"),
    ],
)
def test_image_and_command_rules(image: str, command: Any, field: str) -> None:
    """An empty image, an empty or string argv, or an empty program is rejected."""
    with pytest.raises(SpecError) as info:
        PodSpec(image, command)
    assert info.value.field == field


def test_empty_later_argv_elements_are_allowed() -> None:
    """An empty argument after the program is legitimate (sh -c '' runs nothing)."""
    assert PodSpec("img", ["sh", "-c", ""]).command == ("sh", "-c", "")


@pytest.mark.parametrize(
    "key", ["app.kubernetes.io/managed-by", "app.kubernetes.io/component", "podrunner.dev/run-id"]
)
def test_reserved_label_keys(key: str) -> None:
    """Seed: managed labels cannot be overridden; here a user label with one is an error."""
    err = raises_on("labels", labels={key: "attacker"})
    assert "reserved" in err.rule


def test_env_forms_are_normalised() -> None:
    """Mappings, EnvVar items and pairs all become a tuple of EnvVar."""
    a = spec(env={"A": "1", "B": "2"})
    b = spec(env=[EnvVar("A", "1"), ("B", "2")])
    assert a.env == b.env == (EnvVar("A", "1"), EnvVar("B", "2"))
    assert spec(env=None).env == ()


def test_env_var_rules() -> None:
    """EnvVar takes a value or a secret_ref, never both; relaxed names are accepted."""
    assert EnvVar("my.var-1:x").name == "my.var-1:x"
    with pytest.raises(SpecError):
        EnvVar("A", "v", secret_ref=SecretRef("s", "k"))
    with pytest.raises(SpecError) as info:
        SecretRef("Bad Name", "k")
    assert info.value.field == "secret_ref.name"
    with pytest.raises(SpecError) as info:
        SecretRef("s", "a/b")
    assert info.value.field == "secret_ref.key"


def test_same_name_in_env_and_secret_env() -> None:
    """A variable set both plainly and as a secret is ambiguous: SpecError."""
    err = raises_on("secret_env", env={"TOKEN": "x"}, secret_env={"TOKEN": "y"})
    assert err.value == "TOKEN"


def test_blank_env_is_deduplicated() -> None:
    """Blanked names keep their order and appear once."""
    assert spec(blank_env=["A", "B", "A"]).blank_env == ("A", "B")


def test_secret_values_not_in_repr() -> None:
    """secret_env values and secret_files contents never show in repr or str."""
    s = spec(
        secret_env={"TOKEN": "hunter2-value", "REF": SecretRef("creds", "token")},
        secret_files={"/etc/creds.json": "file-secret-content"},
    )
    text = repr(s) + str(s)
    assert "hunter2-value" not in text
    assert "file-secret-content" not in text
    assert "TOKEN" in text
    assert "creds" in text


def test_bad_secret_value_type_is_not_echoed() -> None:
    """A secret of the wrong type is reported without its value."""
    err = raises_on("secret_env[TOKEN]", secret_env={"TOKEN": b"raw-secret-bytes"})
    assert "raw-secret-bytes" not in str(err)


def test_volume_constructors() -> None:
    """Each class method builds its kind; config maps and secrets default to read-only."""
    assert Volume.host_path("/srv", "/data").kind == "hostPath"
    assert Volume.pvc("claim", "/data").kind == "persistentVolumeClaim"
    assert Volume.config_map("cm", "/etc/cm").read_only is True
    assert Volume.secret("s", "/etc/s").read_only is True
    e = Volume.empty_dir("/scratch", size_limit="1Gi")
    assert (e.kind, e.source, e.size_limit) == ("emptyDir", None, "1Gi")


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Volume.host_path("relative", "/data"), "volume.source"),
        (lambda: Volume.host_path("/srv", "data"), "volume.mount_path"),
        (lambda: Volume.pvc("Bad", "/data"), "volume.source"),
        (lambda: Volume.empty_dir("/s", size_limit="lots"), "volume.size_limit"),
        (lambda: Volume.pvc("c", "/d", sub_path="/abs"), "volume.sub_path"),
        (lambda: Volume.pvc("c", "/d", sub_path="a/../../b"), "volume.sub_path"),
        (lambda: Volume("nfs", "x", "/d"), "volume.kind"),
        (lambda: Volume("persistentVolumeClaim", "c", "/d", size_limit="1Gi"), "volume.size_limit"),
        (lambda: Volume.pvc("c", "/a/../b"), "volume.mount_path"),
    ],
)
def test_volume_rules(make: Any, field: str) -> None:
    """Volume sources, paths, sub-paths and size limits are validated."""
    with pytest.raises(SpecError) as info:
        make()
    assert info.value.field == field


def test_mount_paths_unique_across_spec() -> None:
    """Two mounts on the same path (volumes or secret files) are rejected."""
    raises_on(
        "volumes[1].mount_path",
        volumes=[Volume.pvc("a", "/data"), Volume.empty_dir("/data/")],
    )
    raises_on(
        "secret_files",
        volumes=[Volume.empty_dir("/etc/x")],
        secret_files={"/etc/x": "v"},
    )


def test_host_path_requires_opt_out() -> None:
    """A host path is forbidden by baseline and restricted standards; NONE allows it."""
    vol = Volume.host_path("/srv", "/data")
    for profile in (SecurityProfile.RESTRICTED, SecurityProfile.BASELINE):
        err = raises_on("volumes[0]", volumes=[vol], security=profile)
        assert "Pod Security Standards" in err.rule
    assert spec(volumes=[vol], security=SecurityProfile.NONE).volumes == (vol,)


def test_deadlines() -> None:
    """Deadlines are positive finite seconds; ints become floats."""
    d = Deadlines(scheduling=30, start=120.5)
    assert (d.scheduling, d.start, d.total) == (30.0, 120.5, None)
    for bad in (0, -1, float("inf"), "10", True):
        with pytest.raises(SpecError) as info:
            Deadlines(total=bad)
        assert info.value.field == "deadlines.total"


def test_tolerations() -> None:
    """Tolerations follow the API server's operator, value and effect rules."""
    t = Toleration("gpu", value="true", effect="NoSchedule")
    assert t.to_manifest() == {
        "key": "gpu",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    }
    assert Toleration(operator="Exists").to_manifest() == {"operator": "Exists"}
    with pytest.raises(SpecError):
        Toleration(operator="Equal")
    with pytest.raises(SpecError):
        Toleration("k", operator="Exists", value="v")
    with pytest.raises(SpecError):
        Toleration("k", effect="Sometimes")
    with pytest.raises(SpecError):
        Toleration("k", effect="NoSchedule", toleration_seconds=5)
    assert Toleration("k", effect="NoExecute", toleration_seconds=5).toleration_seconds == 5


def test_with_methods_return_revalidated_copies() -> None:
    """with_* methods leave the original alone and re-validate the copy."""
    base = spec(labels={"a": "1"}, env={"A": "1"})
    s = (
        base.with_labels(team="ml")
        .with_annotations(note="x")
        .with_env(A="2", B="3")
        .with_resources(cpu_limit="500m", memory_limit="512Mi")
        .with_volumes(Volume.empty_dir("/scratch"))
        .with_command("sh", "-c", "echo hi")
        .with_secret_env(TOKEN="t")
        .with_image("img:v2")
        .with_namespace("agents")
        .with_blank_env("CLAUDECODE")
        .with_tolerations(Toleration(operator="Exists"))
        .with_node_selector(pool="gpu")
        .with_image_pull_secrets("regcred")
        .with_security("baseline")
        .with_secret_files({"/etc/f": "x"})
        .with_env_vars(EnvVar("C", secret_ref=SecretRef("s", "k")))
    )
    assert base.labels == {"a": "1"}
    assert s.labels == {"a": "1", "team": "ml"}
    assert [(e.name, e.value) for e in s.env] == [("A", "2"), ("B", "3"), ("C", None)]
    assert s.resources.cpu_limit == "500m"
    assert s.command == ("sh", "-c", "echo hi")
    assert s.image == "img:v2"
    assert s.namespace == "agents"
    assert s.with_resources(cpu_request="100m").resources.cpu_limit == "500m"
    assert s.with_name(prefix="job").name_prefix == "job"
    with pytest.raises(SpecError):
        base.with_labels({"app.kubernetes.io/component": "x"})
    with pytest.raises(SpecError):
        base.with_resources(cpu_limit="lots")
    with pytest.raises(SpecError):
        s.with_env(TOKEN="clash")


def test_evolve_is_idempotent_and_specs_hash() -> None:
    """Re-running converters on an unchanged spec gives an equal, hashable spec."""
    s = spec(
        env={"A": "1"},
        labels={"a": "b"},
        secret_env={"T": "x"},
        volumes=[Volume.empty_dir("/s")],
        tolerations=[Toleration(operator="Exists")],
    )
    copy = attrs.evolve(s)
    assert copy == s
    assert hash(copy) == hash(s)
    assert s.replace(image="other").image == "other"
    assert isinstance(s.labels, FrozenMap)
    assert s.labels.to_dict() == {"a": "b"}


def test_spec_is_frozen() -> None:
    """Specs cannot be mutated in place."""
    s = spec()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        s.image = "x"  # type: ignore[misc]
