"""podrunner's own validation against the real API server's, and Pod Security admission.

A property test generates specs, half of them with values the server refuses, and checks that
podrunner's validation (``PodSpec`` + ``build_manifests``) accepts a spec exactly when the real
API server accepts the manifest in a server-side dry run. When podrunner refuses a spec, the same
raw values are written into a valid manifest and sent, so the server judges the same input.
The property tests run on real servers only: the fake's validation is what is being checked
against. The size tests at the end run on the fake too, which must answer as the server does.
"""

from __future__ import annotations

import base64
import copy
import re
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from podrunner import PodSpec, Resources, SecurityProfile, build_manifests
from podrunner.errors import (
    BackendError,
    BadRequest,
    Forbidden,
    Invalid,
    ServerError,
    SpecError,
    StatusCause,
)

if TYPE_CHECKING:
    from conftest import Kit

pytestmark = pytest.mark.integration

NAME_CHARS = "abcxyz019-.X_"
KEY_CHARS = "abcz09-._/A"
VALUE_CHARS = "abz09-._A /"
QUANTITIES = [
    "100m", "1", "0", "0.5", "2", "1e3", "512Mi", "1.5Gi", "2G", "1k", "10n",
    "abc", "1.5.5", "-1", "-100m", "1Zi", " 1", "+1", "0x10", "1 Mi", "1mi", ".5", "5.",
]  # fmt: skip
SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
IMAGES = ["busybox:1.36", "registry.example/ns/img@sha256:" + "a" * 64, " busybox", "busybox ", ""]


def text(chars: str, max_size: int) -> st.SearchStrategy[str]:
    """Short strings over a small alphabet, so valid and invalid values both come up often."""
    return st.text(alphabet=chars, min_size=0, max_size=max_size)


# Long values come from repeating a short one, so the 63/253-character limits are crossed.
def padded(chars: str) -> st.SearchStrategy[str]:
    """A short string, sometimes repeated past a length limit."""
    return st.one_of(
        text(chars, 12),
        st.builds(lambda s, n: (s or "a") * n, text(chars, 4), st.integers(16, 80)),
    )


specs = st.fixed_dictionaries(
    {
        "name": padded(NAME_CHARS),
        "labels": st.dictionaries(padded(KEY_CHARS), padded(VALUE_CHARS), max_size=2),
        "env": st.dictionaries(text("AZaz09_.-=", 6), st.just("v"), max_size=2),
        "cpu": st.one_of(st.none(), st.sampled_from(QUANTITIES)),
        "memory": st.one_of(st.none(), st.sampled_from(QUANTITIES)),
        "image": st.sampled_from(IMAGES),
    }
)


def podrunner_accepts(kit: Kit, raw: dict[str, Any]) -> dict[str, Any] | None:
    """Podrunner's verdict: the pod manifest it builds, or ``None`` if it refuses the spec."""
    try:
        spec = PodSpec(
            image=raw["image"],
            command=["true"],
            name=raw["name"],
            namespace=kit.namespace,
            labels=raw["labels"],
            env=raw["env"],
            resources=Resources(cpu_limit=raw["cpu"], memory_limit=raw["memory"]),
        )
        pod: dict[str, Any] = build_manifests(spec).pod
    except SpecError:
        return None
    return pod


def raw_manifest(kit: Kit, raw: dict[str, Any]) -> dict[str, Any]:
    """A valid podrunner manifest with the generated values written in unchecked."""
    base = build_manifests(
        PodSpec(image="busybox:1.36", command=["true"], name="base", namespace=kit.namespace)
    ).pod
    pod = copy.deepcopy(base)
    pod["metadata"]["name"] = raw["name"]
    pod["metadata"]["labels"].update(raw["labels"])
    container = pod["spec"]["containers"][0]
    container["image"] = raw["image"]
    container["env"] = [*container.get("env", []), *({"name": k, "value": "v"} for k in raw["env"])]
    limits = {k: raw[k] for k in ("cpu", "memory") if raw[k] is not None}
    if limits:
        container["resources"] = {"limits": limits}
    return pod


def server_accepts(kit: Kit, manifest: dict[str, Any]) -> bool:
    """The real server's verdict in a dry run: accepted, or refused as invalid/bad."""
    try:
        kit.backend.create(manifest, dry_run=True)
    except (Invalid, BadRequest):
        return False
    return True


@pytest.fixture
def real_kit(kit: Kit) -> Kit:
    """The kit, on a real API server only."""
    if kit.is_fake:
        pytest.skip("compares podrunner's validation with a real API server")
    return kit


@settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=specs)
def test_podrunner_validation_matches_the_api_server(real_kit: Kit, raw: dict[str, Any]) -> None:
    """Podrunner accepts a spec exactly when the API server accepts its manifest (dry run)."""
    ours = podrunner_accepts(real_kit, raw)
    manifest = ours if ours is not None else raw_manifest(real_kit, raw)
    theirs = server_accepts(real_kit, manifest)
    if ours is None and theirs:
        reason = known_stricter_rule(real_kit, raw)
        if reason:
            event(f"podrunner stricter by design: {reason}")
            return
    assert (ours is not None) == theirs, (raw, manifest)


def known_stricter_rule(kit: Kit, raw: dict[str, Any]) -> str | None:
    """Name the documented rule podrunner refused for, if that rule alone explains it.

    Two rules are stricter than the server's on purpose and listed in docs/fake-fidelity.md:

    - pod names: the server takes any DNS-1123 *subdomain* (253 characters, dots allowed);
      podrunner asks for a DNS-1123 *label* (63, no dots), as the name becomes the hostname;
    - quantities: the server trims spaces around a quantity while decoding JSON; podrunner
      refuses ``" 1"`` rather than guess.

    Returns:
        The rule, or ``None`` when something else made podrunner refuse.
    """
    fixed = dict(raw)
    reasons = []
    name = raw["name"]
    if SUBDOMAIN.fullmatch(name) and len(name) <= 253 and (len(name) > 63 or "." in name):
        fixed["name"] = "ok"
        reasons.append("pod name is a subdomain, not a label")
    for key in ("cpu", "memory"):
        value = raw[key]
        if value is not None and value.strip() != value:
            fixed[key] = value.strip()
            reasons.append("quantity with surrounding spaces")
    if reasons and podrunner_accepts(kit, fixed) is not None:
        return "; ".join(reasons)
    return None


def test_podrunner_pod_name_rule_is_stricter_than_the_server(real_kit: Kit) -> None:
    """Documented difference: a dotted pod name the server takes, podrunner refuses."""
    raw: dict[str, Any] = {"name": "v1.2", "labels": {}, "env": {}, "cpu": None, "memory": None}
    raw["image"] = "busybox:1.36"
    assert podrunner_accepts(real_kit, raw) is None
    assert server_accepts(real_kit, raw_manifest(real_kit, raw))


def test_podrunner_quantity_rule_is_stricter_than_the_server(real_kit: Kit) -> None:
    """Documented difference: a space-padded quantity the server trims, podrunner refuses."""
    raw: dict[str, Any] = {"name": "ok", "labels": {}, "env": {}, "cpu": None, "memory": " 1Gi"}
    raw["image"] = "busybox:1.36"
    assert podrunner_accepts(real_kit, raw) is None
    assert server_accepts(real_kit, raw_manifest(real_kit, raw))


# -- Pod Security ---------------------------------------------------------------------------------


@pytest.fixture
def restricted_namespace(real_kit: Kit) -> Any:
    """A namespace enforcing the restricted Pod Security Standard, deleted afterwards."""
    name = f"{real_kit.namespace}-psa"
    real_kit.backend.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            },
        }
    )
    yield name
    real_kit.backend.delete("Namespace", None, name)


def test_restricted_namespace_admits_the_default_manifest(
    real_kit: Kit, restricted_namespace: str
) -> None:
    """Every pod podrunner builds by default passes restricted Pod Security admission."""
    spec = PodSpec(image="busybox:1.36", command=["true"], namespace=restricted_namespace)
    manifests = build_manifests(spec)
    created = real_kit.backend.create(manifests.pod, dry_run=True)
    assert created["metadata"]["namespace"] == restricted_namespace


def test_restricted_namespace_refuses_an_opt_out_with_the_server_reason(
    real_kit: Kit, restricted_namespace: str
) -> None:
    """A SecurityProfile.NONE pod is Forbidden there, with the server's PodSecurity reason."""
    spec = PodSpec(
        image="busybox:1.36",
        command=["true"],
        namespace=restricted_namespace,
        security=SecurityProfile.NONE,
    )
    with pytest.raises(Forbidden) as info:
        real_kit.backend.create(build_manifests(spec).pod, dry_run=True)
    assert info.value.status == 403
    assert 'violates PodSecurity "restricted:latest"' in info.value.message


# -- Sizes: what the API server and etcd refuse, and podrunner refuses first ----------------------

MIB = 1024 * 1024
TOO_LONG = "Too long: may not be more than {} bytes"


def _secret(kit: Kit, name: str, size: int) -> dict[str, Any]:
    data = {"a": base64.b64encode(b"x" * size).decode()}
    meta = {"name": name, "namespace": kit.namespace}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data}


def _big_pod(kit: Kit, name: str, size: int) -> dict[str, Any]:
    pod = kit.pod_manifest(name)
    pod["spec"]["containers"][0]["command"] = ["sh", *["y" * 50_000] * (size // 50_000)]
    return pod


def _too_long(kit: Kit, manifest: dict[str, Any]) -> StatusCause:
    with pytest.raises(Invalid) as info:
        kit.backend.create(manifest, dry_run=True)
    assert info.value.status == 422
    [cause] = info.value.causes
    assert cause.reason == "FieldValueTooLong"
    return cause


def test_secret_data_is_capped_at_one_mib(kit: Kit) -> None:
    """A Secret's decoded data may total 1 MiB (keys not counted); one byte more is a 422."""
    kit.backend.create(_secret(kit, "fits", MIB), dry_run=True)
    cause = _too_long(kit, _secret(kit, "over", MIB + 1))
    assert (cause.field, cause.message) == ("data", TOO_LONG.format(MIB))


def test_config_map_data_is_capped_at_one_mib(kit: Kit) -> None:
    """A ConfigMap's data and binaryData may total 1 MiB; the server reports the empty path."""
    meta = {"name": "cm", "namespace": kit.namespace}
    half = "x" * (MIB // 2)
    binary = base64.b64encode(b"y" * (MIB // 2 + 1)).decode()
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"a": half}}
    kit.backend.create(manifest, dry_run=True)
    cause = _too_long(kit, {**manifest, "binaryData": {"b": binary}})
    assert (cause.field, cause.message) == ("[]", TOO_LONG.format(MIB))


def test_annotations_over_256_kib_are_too_long(kit: Kit) -> None:
    """The annotation budget is refused with the server's own wording."""
    pod = kit.pod_manifest("ann", annotations={"a": "x" * (256 * 1024)})
    cause = _too_long(kit, pod)
    assert (cause.field, cause.message) == ("metadata.annotations", TOO_LONG.format(256 * 1024))


def test_a_request_body_over_3_mib_is_413(kit: Kit) -> None:
    """The server does not decode a write over 3 MiB, dry run or not: 413."""
    with pytest.raises(BackendError) as info:
        kit.backend.create(_big_pod(kit, "huge", 3_200_000), dry_run=True)
    assert info.value.status == 413
    assert info.value.reason == "RequestEntityTooLarge"
    assert "Request entity too large: limit is 3145728" in str(info.value)


def test_an_object_over_etcds_limit_is_a_500(kit: Kit) -> None:
    """A 2 MB pod is over etcd's 1.5 MiB request limit: the create fails with a 500.

    A dry run never reaches etcd, so it accepts the same pod; a 1.2 MB pod is stored.
    """
    kit.backend.create(_big_pod(kit, "big", 2_000_000), dry_run=True)
    with pytest.raises(ServerError) as info:
        kit.backend.create(_big_pod(kit, "big", 2_000_000))
    assert info.value.status == 500
    assert "etcdserver: request is too large" in str(info.value)
    kit.backend.create(_big_pod(kit, "fits", 1_200_000))
    kit.backend.delete("Pod", kit.namespace, "fits")


def _raw_with_secret(kit: Kit, size: int) -> dict[str, Any]:
    spec = PodSpec("busybox:1.36", ["true"], namespace=kit.namespace, secret_env={"T": "s"})
    secret = build_manifests(spec).secret
    assert secret is not None
    secret["data"] = {key: base64.b64encode(b"s" * size).decode() for key in secret["data"]}
    return secret


def _raw_with_command(kit: Kit, argv: list[str]) -> dict[str, Any]:
    pod = build_manifests(PodSpec("busybox:1.36", ["true"], namespace=kit.namespace)).pod
    pod["spec"]["containers"][0]["command"] = argv
    return pod


def test_podrunner_refuses_what_the_server_refuses_by_size(kit: Kit) -> None:
    """The issue's cases: a 2 MiB Secret and a 20 MB command fail in podrunner and the server."""
    with pytest.raises(SpecError) as info:
        PodSpec("busybox:1.36", ["true"], namespace=kit.namespace, secret_env={"T": "s" * 2 * MIB})
    assert info.value.field.startswith("secret_env")
    assert not server_accepts(kit, _raw_with_secret(kit, 2 * MIB))

    argv = ["echo", *["y" * 100_000] * 200]
    with pytest.raises(SpecError) as info:
        PodSpec("busybox:1.36", argv, namespace=kit.namespace)
    assert info.value.field == "command"
    with pytest.raises(BackendError) as server:
        kit.backend.create(_raw_with_command(kit, argv), dry_run=True)
    # The server answers 413 and closes the connection while a 20 MB body is still being
    # sent, so a real client may only see the connection cut (status 0).
    assert server.value.status in (413, 0)


def test_podrunner_size_rule_is_stricter_than_the_server(kit: Kit) -> None:
    """Documented difference: a 1.2 MB argv that etcd still stores, podrunner refuses.

    The stored pod grows after the create (status, managed fields), so podrunner keeps its
    text to 1 MiB, well under etcd's 1.5 MiB request limit.
    """
    argv = ["echo", *["y" * 100_000] * 12]
    with pytest.raises(SpecError):
        PodSpec("busybox:1.36", argv, namespace=kit.namespace)
    assert server_accepts(kit, _raw_with_command(kit, argv))


def test_a_pod_naming_a_missing_runtime_class_is_refused(kit: Kit) -> None:
    """RuntimeClass admission (on by default): a class that does not exist is a 403."""
    kit.fake_differs("has no RuntimeClass objects and no RuntimeClass admission")
    pod = kit.pod_manifest("rc")
    pod["spec"]["runtimeClassName"] = "no-such-class"
    with pytest.raises(BackendError) as info:
        kit.backend.create(pod, dry_run=True)
    assert info.value.status == 403
    assert 'RuntimeClass "no-such-class" not found' in str(info.value)
