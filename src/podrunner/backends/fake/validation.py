"""Defaulting and validation of incoming objects, with the API server's codes and messages.

Shape errors (a string where a list belongs, a bad quantity) fail JSON decoding on a real
server, so they are 400 ``BadRequest``; rule violations are 422 ``Invalid`` with one
:class:`~podrunner.errors.StatusCause` per field, in the server's wording
(``metadata.name: Invalid value: "X": a lowercase RFC 1123 ...``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from typing import TYPE_CHECKING, Any

from podrunner import _validation
from podrunner.backends.fake.podspec import (
    canonical_quantity,
    check_finalizers,
    check_owner_references,
    check_pod_spec,
    drop_unknown,
    is_extended,
    number_quantity,
    prune,
    prune_pod,
    resource_name_error,
)
from podrunner.errors import BadRequest, Invalid, StatusCause, error_for_status

if TYPE_CHECKING:
    from collections.abc import Callable
    from decimal import Decimal

__all__ = ["ETCD_MAX_REQUEST_BYTES", "Errors", "check_pod_update", "check_stored_size", "prepare"]

ETCD_MAX_REQUEST_BYTES = 1536 * 1024
"""etcd's default ``--max-request-bytes``: a larger object cannot be stored (the server: 500)."""


class _Memo:
    """The server's rules, memoised: the same names, labels and quantities recur constantly."""

    def __init__(self) -> None:
        cache = functools.lru_cache(maxsize=4096)
        self.dns1123_label_error = cache(_validation.dns1123_label_error)
        self.dns1123_subdomain_error = cache(_validation.dns1123_subdomain_error)
        self.label_key_error = cache(_validation.label_key_error)
        self.label_value_error = cache(_validation.label_value_error)
        self.annotation_key_error = cache(_validation.annotation_key_error)
        self.env_name_error = cache(_validation.env_name_error)
        self.container_name_error = cache(_validation.container_name_error)
        self.image_error = cache(_validation.image_error)
        self.quantity_error = cache(_validation.quantity_error)
        self.parse_quantity = cache(_validation.parse_quantity)
        self.config_map_key_error = cache(_validation.config_map_key_error)
        self.restart_policy_error = cache(_validation.restart_policy_error)
        self.annotations_size_error = _validation.annotations_size_error
        self.RESTART_POLICIES = _validation.RESTART_POLICIES
        self.TOTAL_ANNOTATION_SIZE_LIMIT = _validation.TOTAL_ANNOTATION_SIZE_LIMIT
        self.SECRET_DATA_SIZE_LIMIT = _validation.SECRET_DATA_SIZE_LIMIT
        self.MAX_REQUEST_BODY_BYTES = _validation.MAX_REQUEST_BODY_BYTES


v = _Memo()

_GO_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "bool",
    int: "number",
    float: "number",
}


def _json_type(value: object) -> str:
    return "null" if value is None else _GO_TYPES.get(type(value), "value")


def _fmt(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Errors:
    """Collects field errors and raises them as one 422, the way ``field.ErrorList`` does."""

    __slots__ = ("causes", "kind", "name")

    def __init__(self, kind: str, name: str) -> None:
        self.kind = kind
        self.name = name
        self.causes: list[StatusCause] = []

    def invalid(self, field: str, value: object, detail: str) -> None:
        """Record ``Invalid value``."""
        self.causes.append(
            StatusCause(field, "FieldValueInvalid", f"Invalid value: {_fmt(value)}: {detail}")
        )

    def required(self, field: str, detail: str = "") -> None:
        """Record ``Required value``."""
        message = f"Required value: {detail}" if detail else "Required value"
        self.causes.append(StatusCause(field, "FieldValueRequired", message))

    def not_found(self, field: str, value: object) -> None:
        """Record ``Not found``."""
        self.causes.append(StatusCause(field, "FieldValueNotFound", f"Not found: {_fmt(value)}"))

    def not_supported(self, field: str, value: object, supported: tuple[str, ...]) -> None:
        """Record ``Unsupported value``."""
        allowed = ", ".join(_fmt(s) for s in sorted(supported))
        self.causes.append(
            StatusCause(
                field,
                "FieldValueNotSupported",
                f"Unsupported value: {_fmt(value)}: supported values: {allowed}",
            )
        )

    def duplicate(self, field: str, value: object) -> None:
        """Record ``Duplicate value``."""
        self.causes.append(
            StatusCause(field, "FieldValueDuplicate", f"Duplicate value: {_fmt(value)}")
        )

    def too_long(self, field: str, limit: int) -> None:
        """Record ``Too long``."""
        self.causes.append(
            StatusCause(field, "FieldValueTooLong", f"Too long: may not be more than {limit} bytes")
        )

    def forbidden(self, field: str, detail: str) -> None:
        """Record ``Forbidden``."""
        self.causes.append(StatusCause(field, "FieldValueForbidden", f"Forbidden: {detail}"))

    def raise_if_any(self) -> None:
        """Raise :class:`Invalid` if anything was recorded."""
        if not self.causes:
            return
        parts = [f"{c.field}: {c.message}" for c in self.causes]
        body = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        raise Invalid(
            f'{self.kind} "{self.name}" is invalid: {body}',
            kind=self.kind,
            name=self.name,
            causes=self.causes,
        )


def _decode_error(kind: str, detail: str) -> BadRequest:
    return BadRequest(f'{kind} in version "v1" cannot be handled as a {kind}: {detail}')


def _expect(kind: str, value: object, want: type, path: str) -> None:
    if not isinstance(value, want) or (want is int and isinstance(value, bool)):
        go = {dict: "object", list: "array", str: "string", int: "int", bool: "bool"}[want]
        raise _decode_error(
            kind,
            f"json: cannot unmarshal {_json_type(value)} into Go struct field {path} of type {go}",
        )


def _string_map(kind: str, value: object, path: str) -> dict[str, str]:
    _expect(kind, value, dict, path)
    assert isinstance(value, dict)
    for item in value.values():
        _expect(kind, item, str, path)
    return value


def validate_meta(kind: str, meta: dict[str, Any], errs: Errors, *, label_name: bool) -> None:
    """Validate name, labels and annotations of ``metadata`` (shape already checked)."""
    name = meta.get("name", "")
    check = v.dns1123_label_error if label_name else v.dns1123_subdomain_error
    if not name:
        errs.causes.append(
            StatusCause(
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        )
    else:
        error = check(name)
        if error:
            errs.invalid("metadata.name", name, error)
    labels = meta.get("labels")
    if labels:
        for key, value in labels.items():
            error = v.label_key_error(key)
            if error:
                errs.invalid("metadata.labels", key, error)
            error = v.label_value_error(value)
            if error:
                errs.invalid("metadata.labels", value, error)
    annotations = meta.get("annotations")
    if annotations:
        for key in annotations:
            error = v.annotation_key_error(key)
            if error:
                errs.invalid("metadata.annotations", key, error)
        if v.annotations_size_error(annotations):
            errs.too_long("metadata.annotations", v.TOTAL_ANNOTATION_SIZE_LIMIT)


def check_meta_shape(kind: str, meta: object) -> dict[str, Any]:
    """Check the JSON shape of ``metadata`` (400 on a wrong type) and return it."""
    _expect(kind, meta, dict, f"{kind}.metadata")
    assert isinstance(meta, dict)
    for field in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        if field in meta and meta[field] is not None:
            _expect(kind, meta[field], str, f"ObjectMeta.metadata.{field}")
    for field in ("labels", "annotations"):
        if meta.get(field) is not None:
            _string_map(kind, meta[field], f"ObjectMeta.metadata.{field}")
    refs = meta.get("ownerReferences")
    if refs is not None:
        _expect(kind, refs, list, "ObjectMeta.metadata.ownerReferences")
        for ref in refs:
            _expect(kind, ref, dict, "ObjectMeta.metadata.ownerReferences")
    return meta


# -- per kind -----------------------------------------------------------------------------

_QUANTITY_RE_MSG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)


def _pull_policy(image: str) -> str:
    tail = image.rsplit("/", 1)[-1]
    if "@" in tail:
        return "IfNotPresent"
    if ":" not in tail or tail.endswith(":latest"):
        return "Always"
    return "IfNotPresent"


def _prepare_pod(obj: dict[str, Any], errs: Errors) -> None:
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    _expect("Pod", spec, dict, "Pod.spec")
    containers = spec.get("containers")
    if containers is None:
        errs.required("spec.containers")
        containers = []
    _expect("Pod", containers, list, "PodSpec.spec.containers")
    init = spec.get("initContainers")
    if init is not None:
        _expect("Pod", init, list, "PodSpec.spec.initContainers")
    drop_unknown("Pod", obj)
    prune_pod(obj)
    spec = obj["spec"]
    containers = spec.get("containers") or []
    if containers == [] and "spec.containers" not in {c.field for c in errs.causes}:
        errs.required("spec.containers")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    restart = spec["restartPolicy"]
    _expect("Pod", restart, str, "PodSpec.spec.restartPolicy")
    if v.restart_policy_error(restart):
        errs.not_supported("spec.restartPolicy", restart, v.RESTART_POLICIES)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        _expect("Pod", deadline, int, "PodSpec.spec.activeDeadlineSeconds")
        if not 1 <= deadline <= 2147483647:
            errs.invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
    grace = spec["terminationGracePeriodSeconds"]
    _expect("Pod", grace, int, "PodSpec.spec.terminationGracePeriodSeconds")
    if grace < 0:
        # The pod strategy turns a negative grace period into 1 second.
        spec["terminationGracePeriodSeconds"] = 1
    if spec.get("nodeName") is not None:
        _expect("Pod", spec["nodeName"], str, "PodSpec.spec.nodeName")
    seen: set[str] = set()
    every = [("initContainers", c) for c in spec.get("initContainers") or ()]
    every += [("containers", c) for c in containers]
    index = {"initContainers": 0, "containers": 0}
    for field_, container in every:
        i = index[field_]
        index[field_] += 1
        _expect("Pod", container, dict, f"PodSpec.spec.{field_}")
        path = f"spec.{field_}[{i}]"
        name = container.get("name")
        if name is not None:
            _expect("Pod", name, str, "Container.spec.containers.name")
        if not name:
            errs.required(f"{path}.name")
        else:
            error = v.container_name_error(name)
            if error:
                errs.invalid(f"{path}.name", name, error)
            elif name in seen:
                errs.duplicate(f"{path}.name", name)
            seen.add(name)
        image = container.get("image")
        if image is not None:
            _expect("Pod", image, str, "Container.spec.containers.image")
        error = v.image_error(image or "")
        if error == "Required value":
            errs.required(f"{path}.image")
        elif error:
            errs.invalid(f"{path}.image", image, error)
        for field in ("command", "args"):
            if container.get(field) is not None:
                _expect("Pod", container[field], list, f"Container.spec.containers.{field}")
                for item in container[field]:
                    _expect("Pod", item, str, f"Container.spec.containers.{field}")
        env = container.get("env")
        if env is not None:
            _expect("Pod", env, list, "Container.spec.containers.env")
            for j, var in enumerate(env):
                _expect("Pod", var, dict, "Container.spec.containers.env")
                env_name = var.get("name")
                if env_name is not None:
                    _expect("Pod", env_name, str, "EnvVar.spec.containers.env.name")
                if not env_name:
                    errs.required(f"{path}.env[{j}].name")
                else:
                    error = v.env_name_error(env_name)
                    if error:
                        errs.invalid(f"{path}.env[{j}].name", env_name, error)
                if var.get("value") is not None:
                    _expect("Pod", var["value"], str, "EnvVar.spec.containers.env.value")
        resources = container.get("resources")
        if resources is None:
            container["resources"] = {}
        else:
            _check_resources("Pod", resources, f"{path}.resources", errs, spec)
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        if image:
            container.setdefault("imagePullPolicy", _pull_policy(image))
    check_pod_spec(spec, errs)
    obj["status"] = {"phase": "Pending", "qosClass": _qos([c for _, c in every])}


def _quantity(kind: str, value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = number_quantity(value)
    if not isinstance(value, str) or v.quantity_error(value):
        raise _decode_error(kind, _QUANTITY_RE_MSG)
    return value


_RESOURCES_MEMO: dict[tuple[Any, ...], tuple[dict[str, Any], list[StatusCause]]] = {}


def _check_resources(
    kind: str, resources: object, path: str, errs: Errors, spec: dict[str, Any]
) -> None:
    """Canonicalise, default and check one container's resources (memoised: they recur)."""
    if (
        isinstance(resources, dict)
        and not resources.get("claims")
        and set(resources) <= {"limits", "requests"}
        and all(
            isinstance(resources.get(s), dict)
            and all(isinstance(q, str) for q in resources[s].values())
            for s in resources
        )
    ):
        key = (path, *((s, tuple(resources[s].items())) for s in sorted(resources)))
        hit = _RESOURCES_MEMO.get(key)
        if hit is None:
            scratch = Errors(kind, "")
            copy = {s: dict(resources[s]) for s in resources}
            _resources_uncached(kind, copy, path, scratch, spec)
            if len(_RESOURCES_MEMO) > 4096:
                _RESOURCES_MEMO.clear()
            hit = _RESOURCES_MEMO[key] = (copy, scratch.causes)
        result, causes = hit
        resources.clear()
        resources.update({s: dict(v) for s, v in result.items()})
        errs.causes.extend(causes)
        return
    _resources_uncached(kind, resources, path, errs, spec)


def _resources_uncached(
    kind: str, resources: object, path: str, errs: Errors, spec: dict[str, Any]
) -> None:
    _expect(kind, resources, dict, "Container.spec.containers.resources")
    assert isinstance(resources, dict)
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("limits", "requests"):
        values = resources.get(section)
        if values is None:
            continue
        _expect(kind, values, dict, f"ResourceRequirements.spec.containers.resources.{section}")
        parsed[section] = {}
        canonical = {}
        for name, quantity in values.items():
            text = canonical_quantity(_quantity(kind, quantity), True)
            canonical[name] = text
            parsed[section][name] = v.parse_quantity(text)
        resources[section] = canonical
    limits = parsed.get("limits", {})
    if limits:
        # Requests default to the limits of the resources that have none.
        requests = dict(resources.get("requests") or {})
        for name, text in resources["limits"].items():
            if name not in requests:
                requests[name] = text
                parsed.setdefault("requests", {})[name] = limits[name]
        resources["requests"] = requests
    for section in ("limits", "requests"):
        for name, amount in parsed.get(section, {}).items():
            key = f"{path}.{section}[{name}]"
            error = resource_name_error(name)
            if error:
                errs.invalid(key, name, error)
            if amount < 0:
                errs.invalid(key, resources[section][name], "must be greater than or equal to 0")
            elif (is_extended(name) or name.startswith("hugepages-")) and amount % 1 != 0:
                errs.invalid(key, resources[section][name], "must be an integer")
    for name, amount in parsed.get("requests", {}).items():
        limit = limits.get(name)
        overcommit = not is_extended(name) and not name.startswith("hugepages-")
        if limit is not None:
            if amount != limit and not overcommit:
                errs.invalid(
                    f"{path}.requests",
                    resources["requests"][name],
                    f"must be equal to {name} limit of {resources['limits'][name]}",
                )
            elif amount > limit:
                errs.invalid(
                    f"{path}.requests",
                    resources["requests"][name],
                    f"must be less than or equal to {name} limit of {resources['limits'][name]}",
                )
        elif not overcommit:
            errs.required(f"{path}.limits", "Limit must be set for non overcommitable resources")
    if any(n.startswith("hugepages-") for n in limits) and not (
        "cpu" in limits or "memory" in limits
    ):
        errs.forbidden(f"{path}.limits", "HugePages require cpu or memory")
    claims = resources.get("claims")
    if claims:
        known = {c.get("name") for c in spec.get("resourceClaims") or () if isinstance(c, dict)}
        for j, claim in enumerate(claims if isinstance(claims, list) else ()):
            name = claim.get("name") if isinstance(claim, dict) else None
            if name not in known:
                errs.not_found(f"{path}.claims[{j}]", name)


_QOS_RESOURCES = ("cpu", "memory")


def _qos(containers: list[Any]) -> str:
    """GetPodQOS: only cpu and memory count, and only positive amounts."""
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for container in containers:
        resources = container.get("resources") if isinstance(container, dict) else None
        if not isinstance(resources, dict):
            resources = {}
        found = set()
        for section, total in (("requests", requests), ("limits", limits)):
            values = resources.get(section) or {}
            for res in _QOS_RESOURCES:
                text = values.get(res)
                if not isinstance(text, str):
                    continue
                amount = v.parse_quantity(text)
                if amount > 0:
                    total[res] = total.get(res, 0) + amount
                    if section == "limits":
                        found.add(res)
        if found != set(_QOS_RESOURCES):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(limits.get(r) == requests.get(r) for r in _QOS_RESOURCES):
        return "Guaranteed"
    return "Burstable"


def _check_data_keys(kind: str, obj: dict[str, Any], field: str, errs: Errors) -> None:
    data = obj.get(field)
    if data is None:
        return
    _expect(kind, data, dict, f"{kind}.{field}")
    for key in data:
        error = v.config_map_key_error(key)
        if error:
            errs.invalid(f"{field}[{key}]", key, error)


_SECRET_REQUIRED = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
}


def _prepare_secret(obj: dict[str, Any], errs: Errors) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"
    _expect("Secret", obj["type"], str, "Secret.type")
    for field in ("data", "stringData"):
        if obj.get(field) is not None:
            _expect("Secret", obj[field], dict, f"Secret.{field}")
    data = obj.get("data") or {}
    for value in data.values():
        _expect("Secret", value, str, "Secret.data")
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _decode_error("Secret", "illegal base64 data at input byte 0") from None
    string_data = obj.pop("stringData", None)
    if string_data:
        merged = dict(data)
        for key, value in string_data.items():
            _expect("Secret", value, str, "Secret.stringData")
            merged[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = merged
    if not obj.get("data"):
        obj.pop("data", None)
    # The strategy folds stringData into data first, so every key is checked as data[key].
    _check_data_keys("Secret", obj, "data", errs)
    data = obj.get("data") or {}
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
        if type_ in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson") and not missing:
            key = _SECRET_REQUIRED[type_][0]
            try:
                parsed = json.loads(base64.b64decode(data[key]))
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                errs.invalid(f"data[{key}]", "<secret contents redacted>", "invalid JSON")
    # ValidateSecret: the decoded values (not the keys) total at most core.MaxSecretSize.
    total = sum(_decoded_size(value) for value in data.values())
    if total > v.SECRET_DATA_SIZE_LIMIT:
        errs.too_long("data", v.SECRET_DATA_SIZE_LIMIT)


def _decoded_size(b64: str) -> int:
    return len(b64) // 4 * 3 - b64[-2:].count("=")


def _prepare_config_map(obj: dict[str, Any], errs: Errors) -> None:
    _check_data_keys("ConfigMap", obj, "data", errs)
    _check_data_keys("ConfigMap", obj, "binaryData", errs)
    for value in (obj.get("data") or {}).values():
        _expect("ConfigMap", value, str, "ConfigMap.data")
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


_EVENT_DEFAULTS: tuple[tuple[str, object], ...] = (
    ("source", {}),
    ("firstTimestamp", None),
    ("lastTimestamp", None),
    ("eventTime", None),
    ("reportingComponent", ""),
    ("reportingInstance", ""),
)


def _prepare_event(obj: dict[str, Any], errs: Errors) -> None:
    involved = obj.get("involvedObject")
    if involved is None:
        involved = obj["involvedObject"] = {}
    _expect("Event", involved, dict, "Event.involvedObject")
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


_PREPARE = {
    "Pod": _prepare_pod,
    "Secret": _prepare_secret,
    "ConfigMap": _prepare_config_map,
    "Namespace": _prepare_namespace,
    "Event": _prepare_event,
}


def _large_text(obj: dict[str, Any]) -> int:
    """Bytes in the fields that can grow large: a cheap lower bound of the object's size."""
    total = sum(len(x) for x in ((obj["metadata"].get("annotations") or {}).values()))
    for field in ("data", "stringData", "binaryData"):
        values = obj.get(field)
        if isinstance(values, dict):
            total += sum(len(x) for x in values.values() if isinstance(x, str))
    spec = obj.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    for container in containers if isinstance(containers, list) else ():
        if not isinstance(container, dict):
            continue
        for field in ("command", "args"):
            items = container.get(field)
            if isinstance(items, list):
                total += sum(len(x) for x in items if isinstance(x, str))
        for var in container.get("env") or ():
            if isinstance(var, dict) and isinstance(var.get("value"), str):
                total += len(var["value"])
    return total


def _encoded_size(obj: dict[str, Any]) -> int | None:
    """The object's JSON size in bytes, or ``None`` when it is clearly small.

    Only objects whose large fields pass 1 MiB are encoded: every other object is far below
    the limits this is compared with.
    """
    if _large_text(obj) <= 1024 * 1024:
        return None
    return len(
        json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")
    )


def check_stored_size(kind: str, obj: dict[str, Any]) -> None:
    """Refuse to store an object etcd would refuse, as the API server reports it (500).

    Dry runs never reach etcd, so callers check this only when the object is written.
    """
    size = _encoded_size(obj)
    if size is not None and size > ETCD_MAX_REQUEST_BYTES:
        meta = obj.get("metadata") or {}
        raise error_for_status(
            500,
            "InternalError",
            "etcdserver: request is too large",
            kind=kind,
            namespace=meta.get("namespace"),
            name=meta.get("name"),
        )


def prepare(
    kind: str,
    obj: dict[str, Any],
    admit: Callable[[dict[str, Any]], None] | None = None,
    *,
    update: bool = False,
) -> None:
    """Default and validate a normalised object in place (raises 400, 403, 413 or 422).

    ``admit`` is the mutating admission of a create, run after defaulting and before
    validation, as the API server orders them.
    """
    size = _encoded_size(obj)
    if size is not None and size > v.MAX_REQUEST_BODY_BYTES:
        # The server refuses to decode a write body over 3 MiB, before any validation.
        raise error_for_status(
            413,
            "RequestEntityTooLarge",
            f"Request entity too large: limit is {v.MAX_REQUEST_BODY_BYTES}",
        )
    meta = obj["metadata"]
    errs = Errors(kind, meta.get("name") or meta.get("generateName") or "")
    if kind != "Pod":
        drop_unknown(kind, obj)
    for field in ("labels", "annotations", "finalizers", "ownerReferences"):
        if field in meta and not meta[field]:
            del meta[field]
    _PREPARE[kind](obj, errs)
    if admit is not None:
        admit(obj)  # mutating admission answers (403) before validation does
    # An update validates the new metadata twice (ValidateObjectMetaUpdate and the kind's
    # own update validation), and the server reports every cause twice.
    if kind == "Event":
        # ValidateEventCreate stops at the event's own errors, and never looks at
        # finalizers or owner references.
        if not errs.causes:
            validate_meta(kind, meta, errs, label_name=False)
        errs.raise_if_any()
        return
    for _ in range(2 if update else 1):
        validate_meta(kind, meta, errs, label_name=kind == "Namespace")
        check_finalizers(meta, errs)
        check_owner_references(meta, errs)
    errs.raise_if_any()


_MUTABLE_POD_FIELDS = ("activeDeadlineSeconds", "tolerations")


def check_pod_update(old: dict[str, Any], new: dict[str, Any]) -> None:
    """Reject changes to a pod's immutable spec fields, as the API server does (422)."""
    old_spec = dict(old.get("spec") or {})
    new_spec = dict(new.get("spec") or {})
    if (old_spec.get("terminationGracePeriodSeconds") or 0) < 0:
        # The one allowed change: a negative grace period may be set to 1.
        old_spec.pop("terminationGracePeriodSeconds", None)
        new_spec.pop("terminationGracePeriodSeconds", None)
    for field in _MUTABLE_POD_FIELDS:
        old_spec.pop(field, None)
        new_spec.pop(field, None)
    old_spec.pop("containers", None)
    old_containers = [
        {k: x for k, x in c.items() if k != "image"}
        for c in (old.get("spec") or {}).get("containers", [])
    ]
    new_containers = [
        {k: x for k, x in c.items() if k != "image"}
        for c in (new.get("spec") or {}).get("containers", [])
        if isinstance(c, dict)
    ]
    new_spec.pop("containers", None)
    if old_spec != new_spec or old_containers != new_containers:
        errs = Errors("Pod", old["metadata"]["name"])
        errs.forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
            "`spec.tolerations` (only additions to existing tolerations),"
            "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was "
            "previously negative)",
        )
        errs.raise_if_any()
