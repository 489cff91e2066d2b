"""The fake answers as kube-apiserver 1.36 does where the differential tier found it did not.

Each test is one root cause of issue 19, asserted as the real server answers (measured by
``tests/differential`` on a kwok control plane); every one failed on the fake before.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fakepods import pod

from podrunner.backends.fake import FakeCluster
from podrunner.errors import BadRequest, Forbidden, Invalid, NotFound

TOKEN_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"


def causes(exc: pytest.ExceptionInfo[Invalid]) -> list[tuple[str, str]]:
    return [(c.field, c.reason) for c in exc.value.causes]


def with_container(**fields: Any) -> dict[str, Any]:
    manifest = pod()
    manifest["spec"]["containers"][0].update(fields)
    return manifest


@pytest.mark.parametrize(
    ("manifest", "cause"),
    [
        (
            with_container(volumeMounts=[{"name": "nothere", "mountPath": "/x"}]),
            ("spec.containers[0].volumeMounts[0].name", "FieldValueNotFound"),
        ),
        (
            with_container(
                env=[{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s"}}}]
            ),
            ("spec.containers[0].env[0].valueFrom", "FieldValueInvalid"),
        ),
        (
            with_container(env=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]),
            ("spec.containers[0].env[0].valueFrom.secretKeyRef.key", "FieldValueRequired"),
        ),
        (
            with_container(resources={"requests": {"foo": "1"}}),
            ("spec.containers[0].resources.requests[foo]", "FieldValueInvalid"),
        ),
        (
            with_container(resources={"requests": {"example.com/gpu": "1"}}),
            ("spec.containers[0].resources.limits", "FieldValueRequired"),
        ),
        (
            with_container(
                resources={"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}}
            ),
            ("spec.containers[0].resources.requests", "FieldValueInvalid"),
        ),
        (
            with_container(ports=[{"containerPort": 80, "protocol": "XYZ"}]),
            ("spec.containers[0].ports[0].protocol", "FieldValueNotSupported"),
        ),
        (
            with_container(ports=[{"containerPort": 80, "name": "HTTP_bad"}]),
            ("spec.containers[0].ports[0].name", "FieldValueInvalid"),
        ),
        (
            pod(tolerations=[{"key": "k", "operator": "Maybe"}]),
            ("spec.tolerations[0].operator", "FieldValueNotSupported"),
        ),
        (
            with_container(imagePullPolicy="Sometimes"),
            ("spec.containers[0].imagePullPolicy", "FieldValueNotSupported"),
        ),
        (pod(dnsPolicy="Nope"), ("spec.dnsPolicy", "FieldValueNotSupported")),
        (
            with_container(terminationMessagePolicy="Loud"),
            ("spec.containers[0].terminationMessagePolicy", "FieldValueNotSupported"),
        ),
        (pod(hostname="Bad_Host"), ("spec.hostname", "FieldValueInvalid")),
        (
            pod(
                volumes=[
                    {"name": "v", "configMap": {"name": "c", "items": [{"key": "", "path": "k"}]}}
                ]
            ),
            ("spec.volumes[0].configMap.items[0].key", "FieldValueRequired"),
        ),
        (
            pod(volumes=[{"name": "v", "configMap": {"name": "c", "defaultMode": 1000}}]),
            ("spec.volumes[0].configMap.defaultMode", "FieldValueInvalid"),
        ),
        (
            pod(volumes=[{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}]),
            ("spec.volumes[1].name", "FieldValueDuplicate"),
        ),
        (
            pod(securityContext={"runAsUser": -1}),
            ("spec.securityContext.runAsUser", "FieldValueInvalid"),
        ),
    ],
)
def test_pod_spec_rules_are_refused(
    cluster: FakeCluster, manifest: dict[str, Any], cause: tuple[str, str]
) -> None:
    """What the server refuses with 422 the fake refuses, with the same cause."""
    with pytest.raises(Invalid) as exc:
        cluster.backend.create(manifest)
    assert cause in causes(exc)
    assert cluster.pods() == []


def test_service_account_admission_injects_the_token_volume(cluster: FakeCluster) -> None:
    """A pod gains the kube-api-access projected volume, its mount and spec.serviceAccount."""
    created = cluster.backend.create(pod())
    spec = created["spec"]
    assert spec["serviceAccount"] == spec["serviceAccountName"] == "default"
    (volume,) = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-")
    assert volume["projected"]["defaultMode"] == 420
    mount = spec["containers"][0]["volumeMounts"][0]
    assert mount == {"name": volume["name"], "readOnly": True, "mountPath": TOKEN_MOUNT}


def test_automount_off_injects_nothing(cluster: FakeCluster) -> None:
    created = cluster.backend.create(pod(automountServiceAccountToken=False))
    assert "volumes" not in created["spec"]
    assert "volumeMounts" not in created["spec"]["containers"][0]


def test_patching_containers_drops_the_token_mount_and_is_refused(cluster: FakeCluster) -> None:
    """Updating the image with a merge patch of spec.containers is a 422 on every cluster."""
    cluster.backend.create(pod())
    patch = {"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}}
    with pytest.raises(Invalid) as exc:
        cluster.backend.patch("Pod", "default", "p", patch)
    assert causes(exc) == [("spec", "FieldValueForbidden")]


@pytest.mark.parametrize(
    "spec",
    [{"serviceAccountName": "ghost"}, {"priorityClassName": "ghost"}, {"priority": 5}],
)
def test_admission_refuses_what_does_not_exist(cluster: FakeCluster, spec: dict[str, Any]) -> None:
    """A missing service account or priority class, or a given priority, is a 403."""
    with pytest.raises(Forbidden):
        cluster.backend.create(pod(**spec))


def test_an_added_service_account_is_accepted(cluster: FakeCluster) -> None:
    cluster.add_service_account("default", "builder")
    created = cluster.backend.create(pod(serviceAccountName="builder"))
    assert created["spec"]["serviceAccount"] == "builder"


def test_defaulting_admission(cluster: FakeCluster) -> None:
    """Tolerations for a lost node (300 s), priority and preemption policy are defaulted."""
    spec = cluster.backend.create(pod(priorityClassName="system-cluster-critical"))["spec"]
    assert spec["priority"] == 2000000000
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"
    assert [(t["key"], t["tolerationSeconds"]) for t in spec["tolerations"]] == [
        ("node.kubernetes.io/not-ready", 300),
        ("node.kubernetes.io/unreachable", 300),
    ]
    everything = cluster.backend.create(pod("q", tolerations=[{"operator": "Exists"}]))
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_finalizers_are_validated(cluster: FakeCluster) -> None:
    with pytest.raises(Invalid) as exc:
        cluster.backend.create(
            {"kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["hold"]}}
        )
    assert causes(exc) == [("metadata.finalizers[0]", "FieldValueInvalid")]


@pytest.mark.parametrize("kind", ["ConfigMap", "Pod"])
def test_finalizers_hold_the_object_until_removed(cluster: FakeCluster, kind: str) -> None:
    """Delete marks the object (deletionTimestamp); removing the last finalizer deletes it."""
    body: dict[str, Any] = pod("o") if kind == "Pod" else {"kind": kind, "metadata": {"name": "o"}}
    body["metadata"]["finalizers"] = ["example.com/hold"]
    cluster.backend.create(body)
    start = cluster.backend.list(kind, "default").resource_version
    cluster.backend.delete(kind, "default", "o")
    held = cluster.backend.get(kind, "default", "o")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["deletionGracePeriodSeconds"] == 0
    with pytest.raises(Invalid):
        cluster.backend.patch(kind, "default", "o", {"metadata": {"finalizers": ["a.b/c"]}})
    cluster.backend.patch(kind, "default", "o", {"metadata": {"finalizers": None}})
    with pytest.raises(NotFound):
        cluster.backend.get(kind, "default", "o")
    events = [
        e.type
        for e in cluster.backend.watch(kind, "default", resource_version=start, timeout_seconds=1)
    ]
    assert events == ["MODIFIED", "DELETED"]


@pytest.mark.parametrize(
    ("type_", "data", "missing"),
    [
        ("kubernetes.io/tls", {"tls.crt": "c"}, ["data[tls.key]"]),
        ("kubernetes.io/basic-auth", {}, ["data[username]", "data[password]"]),
        ("kubernetes.io/ssh-auth", {}, ["data[ssh-privatekey]"]),
        ("kubernetes.io/dockerconfigjson", {}, ["data[.dockerconfigjson]"]),
        (
            "kubernetes.io/service-account-token",
            {},
            ["metadata.annotations[kubernetes.io/service-account.name]"],
        ),
    ],
)
def test_secret_type_rules(
    cluster: FakeCluster, type_: str, data: dict[str, str], missing: list[str]
) -> None:
    with pytest.raises(Invalid) as exc:
        cluster.backend.create(
            {"kind": "Secret", "metadata": {"name": "s"}, "type": type_, "stringData": data}
        )
    assert causes(exc) == [(m, "FieldValueRequired") for m in missing]


def test_secret_type_is_immutable(cluster: FakeCluster) -> None:
    cluster.backend.create({"kind": "Secret", "metadata": {"name": "s"}, "type": ""})
    assert cluster.backend.get("Secret", "default", "s")["type"] == "Opaque"
    with pytest.raises(Invalid) as exc:
        cluster.backend.patch("Secret", "default", "s", {"type": "example.com/other"})
    assert causes(exc) == [("type", "FieldValueInvalid")]


def test_requests_default_from_limits_and_qos_counts_cpu_and_memory(cluster: FakeCluster) -> None:
    created = cluster.backend.create(
        with_container(
            resources={"limits": {"cpu": 0.5, "memory": "1.5Gi", "example.com/gpu": "1"}}
        )
    )
    resources = created["spec"]["containers"][0]["resources"]
    expected = {"cpu": "500m", "example.com/gpu": "1", "memory": "1536Mi"}
    assert resources == {"limits": expected, "requests": expected}
    assert created["status"]["qosClass"] == "Guaranteed"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("10n", "1m"),
        ("1500u", "2m"),
        ("1000m", "1"),
        ("0.5", "500m"),
        (0.5, "500m"),
        (2.25, "2250m"),
        ("1e-3", "1e-3"),
        ("1.5e3", "1500"),
        ("1024Ki", "1Mi"),
        ("0.1Ki", "102400m"),
        ("1000000", "1M"),
        ("+1", "+1"),
    ],
)
def test_quantities_are_canonicalised(cluster: FakeCluster, given: object, stored: str) -> None:
    created = cluster.backend.create(with_container(resources={"requests": {"memory": given}}))
    assert created["spec"]["containers"][0]["resources"]["requests"]["memory"] == stored


def test_pod_deletion_is_modified_then_deleted(cluster: FakeCluster) -> None:
    """An immediate deletion still records the deletion (next generation) before DELETED."""
    cluster.backend.create(pod())
    start = cluster.backend.list("Pod", "default").resource_version
    cluster.backend.delete("Pod", "default", "p", grace_period_seconds=-1)
    events = list(
        cluster.backend.watch("Pod", "default", resource_version=start, timeout_seconds=1)
    )
    assert [e.type for e in events] == ["MODIFIED", "DELETED"]
    assert events[0].object["metadata"]["generation"] == 2
    assert events[0].object["metadata"]["deletionGracePeriodSeconds"] == 0


def test_no_op_patches_and_unknown_fields(cluster: FakeCluster) -> None:
    """Empty maps and unknown fields are dropped, so a patch of them is no write at all."""
    created = cluster.backend.create(
        {"kind": "ConfigMap", "metadata": {"name": "c", "labels": {}}, "data": {}, "extra": 1}
    )
    assert set(created) == {"kind", "apiVersion", "metadata"}
    assert "labels" not in created["metadata"]
    patched = cluster.backend.patch("ConfigMap", "default", "c", {"metadata": {"annotations": {}}})
    assert patched["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_other_defaults(cluster: FakeCluster) -> None:
    created = cluster.backend.create(
        with_container(
            ports=[{"containerPort": 80}],
            env=[{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        )
        | {}
    )
    container = created["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    with_volume = pod("q", volumes=[{"name": "v", "secret": {"secretName": "s"}}])
    spec = cluster.backend.create(with_volume)["spec"]
    assert spec["volumes"][0]["secret"]["defaultMode"] == 420


def test_a_malformed_quantity_is_still_a_decode_error(cluster: FakeCluster) -> None:
    with pytest.raises(BadRequest):
        cluster.backend.create(with_container(resources={"requests": {"cpu": "lots"}}))


def test_event_namespace_rule(cluster: FakeCluster) -> None:
    """An Event outside "default" must name its involved object's namespace."""
    cluster.create_namespace("team")
    event = {
        "kind": "Event",
        "metadata": {"name": "e", "namespace": "team"},
        "involvedObject": {"kind": "Pod", "name": "p"},
        "reason": "Demo",
        "message": "m",
    }
    with pytest.raises(Invalid) as exc:
        cluster.backend.create(event)
    assert causes(exc) == [("involvedObject.namespace", "FieldValueInvalid")]
    event["metadata"]["namespace"] = "default"
    stored = cluster.backend.create(event)
    assert stored["source"] == {}
    assert stored["eventTime"] is None


def test_secret_string_data_keys_are_checked_as_data(cluster: FakeCluster) -> None:
    with pytest.raises(Invalid) as exc:
        cluster.backend.create(
            {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"bad key": "v"}}
        )
    assert causes(exc) == [("data[bad key]", "FieldValueInvalid")]
    assert base64  # stringData is folded into base64 data before validation
