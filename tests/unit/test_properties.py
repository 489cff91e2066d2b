"""Property tests: valid specs give grammatical manifests, invalid ones never give one."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import (
    build_invalid,
    invalid_fields,
    is_dns_label,
    is_label_key,
    is_label_value,
    is_quantity,
    valid_specs,
)

from podrunner import PodSpec, SecretRef, build_manifests
from podrunner.errors import SpecError


def secret_values(spec: PodSpec) -> list[str]:
    values = [*spec.secret_env.values(), *spec.secret_files.values()]
    return [x for x in values if not isinstance(x, SecretRef)]


@settings(max_examples=100, deadline=None)
@given(spec=valid_specs())
def test_valid_specs_give_grammatical_manifests(spec: PodSpec) -> None:
    """Names, labels and quantities of every manifest satisfy the Kubernetes grammars."""
    m = build_manifests(spec)
    for obj in m.objects:
        meta = obj["metadata"]
        assert len(meta["name"]) <= 253
        for key, value in meta["labels"].items():
            assert is_label_key(key), key
            assert is_label_value(value), value
    assert is_dns_label(m.pod_name)
    container = m.pod["spec"]["containers"][0]
    assert is_dns_label(container["name"])
    for group in container.get("resources", {}).values():
        for quantity in group.values():
            assert is_quantity(quantity), quantity
    for volume in m.pod["spec"].get("volumes", []):
        assert is_dns_label(volume["name"])
    env_names = [e["name"] for e in container.get("env", [])]
    assert len(env_names) == len(set(env_names))
    mounts = [mnt["mountPath"] for mnt in container.get("volumeMounts", [])]
    assert len(mounts) == len(set(mounts))


@settings(max_examples=100, deadline=None)
@given(spec=valid_specs())
def test_no_secret_value_in_any_pod_manifest(spec: PodSpec) -> None:
    """No secret value, plain or base64, appears in the generated pod JSON."""
    m = build_manifests(spec)
    text = json.dumps(m.pod, ensure_ascii=False)
    ascii_text = json.dumps(m.pod)
    for secret in secret_values(spec):
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in ascii_text
        assert base64.b64encode(secret.encode()).decode() not in text
    if secret_values(spec):
        assert m.secret is not None
        decoded = {base64.b64decode(x).decode() for x in m.secret["data"].values()}
        assert set(secret_values(spec)) <= decoded


@settings(max_examples=200, deadline=None)
@given(case=invalid_fields)
def test_invalid_specs_never_give_a_manifest(case: tuple[dict[str, Any], str]) -> None:
    """Every invalid value raises SpecError naming its field before any manifest exists."""
    kw, field = case
    with pytest.raises(SpecError) as info:
        build_manifests(build_invalid(kw))
    assert info.value.field == field, (info.value, kw)


@given(spec=valid_specs(), data=st.data())
@settings(max_examples=25, deadline=None)
def test_same_inputs_same_json(spec: PodSpec, data: st.DataObject) -> None:
    """Building twice with the same run id and name gives identical JSON."""
    run_id = data.draw(st.from_regex(r"[a-f0-9]{16}", fullmatch=True))
    named = spec if spec.name else spec.with_name("fixed")
    assert json.dumps(build_manifests(named, run_id=run_id).pod) == json.dumps(
        build_manifests(named, run_id=run_id).pod
    )
