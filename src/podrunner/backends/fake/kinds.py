"""Defaulting and validation of the kinds other than Pod: Secret, ConfigMap, Namespace, Event.

NetworkPolicy has its own module (:mod:`.netpol`). Secret types follow ``ValidateSecret`` (the
keys each type requires, and the JSON of docker configs); a Secret's and a ConfigMap's data
together stay under ``core.MaxSecretSize``.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any

from podrunner.backends.fake.decoding import prune
from podrunner.backends.fake.field_errors import Errors, decode_error, expect
from podrunner.backends.fake.memo import v
from podrunner.backends.fake.netpol import prepare_network_policy

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["PREPARE"]

_SECRET_REQUIRED = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
}
_DOCKER_CONFIGS = ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson")
_EVENT_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("source", {}),
    ("firstTimestamp", None),
    ("lastTimestamp", None),
    ("eventTime", None),
    ("reportingComponent", ""),
    ("reportingInstance", ""),
)


def _check_data_keys(kind: str, obj: dict[str, Any], field: str, errs: Errors) -> None:
    data = obj.get(field)
    if data is None:
        return
    expect(kind, data, dict, f"{kind}.{field}")
    for key in data:
        error = v.config_map_key_error(key)
        if error:
            errs.invalid(f"{field}[{key}]", key, error)


def _decoded_size(b64: str) -> int:
    return len(b64) // 4 * 3 - b64[-2:].count("=")


def _prepare_secret(obj: dict[str, Any], errs: Errors) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    expect("Secret", obj["type"], str, "Secret.type")
    _decode_secret_data(obj)
    # The strategy folds stringData into data first, so every key is checked as data[key].
    _check_data_keys("Secret", obj, "data", errs)
    data = obj.get("data") or {}
    _check_secret_type(obj, data, errs)
    # ValidateSecret: the decoded values (not the keys) total at most core.MaxSecretSize.
    total = sum(_decoded_size(value) for value in data.values())
    if total > v.SECRET_DATA_SIZE_LIMIT:
        errs.too_long("data", v.SECRET_DATA_SIZE_LIMIT)


def _decode_secret_data(obj: dict[str, Any]) -> None:
    """Check that ``data`` is base64 (400) and fold ``stringData`` into it, encoded."""
    for field in ("data", "stringData"):
        if obj.get(field) is not None:
            expect("Secret", obj[field], dict, f"Secret.{field}")
    data = obj.get("data") or {}
    for value in data.values():
        expect("Secret", value, str, "Secret.data")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise decode_error("Secret", "illegal base64 data at input byte 0") from None
    string_data = obj.pop("stringData", None)
    if string_data:
        merged = dict(data)
        for key, value in string_data.items():
            expect("Secret", value, str, "Secret.stringData")
            merged[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = merged
    if not obj.get("data"):
        obj.pop("data", None)


def _check_secret_type(obj: dict[str, Any], data: dict[str, Any], errs: Errors) -> None:
    """The keys (or annotation) each built-in Secret type requires."""
    type_ = obj["type"]
    if type_ == "kubernetes.io/service-account-token":
        annotations = obj["metadata"].get("annotations") or {}
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif type_ == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.required("data[username]")
            errs.required("data[password]")
    elif type_ == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errs.required("data[ssh-privatekey]")
    elif type_ in _SECRET_REQUIRED:
        missing = [k for k in _SECRET_REQUIRED[type_] if k not in data]
        for key in missing:
            errs.required(f"data[{key}]")
        if type_ in _DOCKER_CONFIGS and not missing:
            key = _SECRET_REQUIRED[type_][0]
            try:
                parsed = json.loads(base64.b64decode(data[key]))
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                errs.invalid(f"data[{key}]", "<secret contents redacted>", "invalid JSON")


def _prepare_config_map(obj: dict[str, Any], errs: Errors) -> None:
    _check_data_keys("ConfigMap", obj, "data", errs)
    _check_data_keys("ConfigMap", obj, "binaryData", errs)
    for value in (obj.get("data") or {}).values():
        expect("ConfigMap", value, str, "ConfigMap.data")
    for key in obj.get("binaryData") or {}:
        if key in (obj.get("data") or {}):
            errs.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
    for field in ("data", "binaryData"):
        if obj.get(field) == {}:
            del obj[field]
    # ValidateConfigMap: data and binaryData together, at most core.MaxSecretSize, reported
    # on the empty path, which the server prints as "[]".
    total = sum(
        len(value.encode("utf-8", "surrogatepass")) for value in (obj.get("data") or {}).values()
    )
    total += sum(
        _decoded_size(value)
        for value in (obj.get("binaryData") or {}).values()
        if isinstance(value, str)
    )
    if total > v.SECRET_DATA_SIZE_LIMIT:
        errs.too_long("[]", v.SECRET_DATA_SIZE_LIMIT)


def _prepare_namespace(obj: dict[str, Any], errs: Errors) -> None:
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}
    name = obj["metadata"].get("name")
    if name:
        labels = obj["metadata"].get("labels") or {}
        obj["metadata"]["labels"] = {**labels, "kubernetes.io/metadata.name": name}


def _prepare_event(obj: dict[str, Any], errs: Errors) -> None:
    involved = obj.get("involvedObject")
    if involved is None:
        involved = obj["involvedObject"] = {}
    expect("Event", involved, dict, "Event.involvedObject")
    obj["involvedObject"] = involved = prune(involved)
    for field in ("reason", "message", "type", "action"):
        if obj.get(field) == "":
            del obj[field]
    if obj.get("count") == 0:
        del obj["count"]
    for field, default in _EVENT_DEFAULTS:
        if obj.get(field) is None:
            obj[field] = default
    ns = obj["metadata"].get("namespace")
    if obj.get("eventTime") is None:
        # legacyValidateEvent: an involvedObject without a namespace is fine only for
        # events in "default" (old clients) or cluster-scoped ones.
        given = involved.get("namespace") or ""
        if (not given and ns not in ("", "default")) or (given and given != ns):
            errs.invalid("involvedObject.namespace", given, "does not match event.namespace")


#: Each kind's defaulting and validation (the pod's is :func:`.podspec.prepare_pod`).
PREPARE: dict[str, Callable[[dict[str, Any], Errors], None]] = {
    "Secret": _prepare_secret,
    "ConfigMap": _prepare_config_map,
    "Namespace": _prepare_namespace,
    "Event": _prepare_event,
    "NetworkPolicy": prepare_network_policy,
}
