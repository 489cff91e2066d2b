"""The escape hatch: a JSON merge patch (RFC 7386) applied to the pod podrunner builds.

``PodSpec(pod_patch={...})`` reaches any pod field PodSpec has no option for (a
``dnsConfig``, a ``hostAliases`` list, a container's ``lifecycle`` hook...). The patch is
checked here when the spec is made: JSON values only, no field that names or identifies the
pod (``apiVersion``, ``kind``, ``metadata.name``/``generateName``/``namespace``/``uid``/
``ownerReferences``/``resourceVersion``, ``status``), and the fields PodSpec has options for by
the same rules (labels, annotations, node selector, class and account names, restart policy,
deadline, container names, images, variable names, resource names and quantities). Other
fields are the server's to judge. What it may not undo (the labels podrunner manages, the
per-run Secret and files wiring) is checked when the manifest is built, see
``podrunner.manifest.patch``.

A merge patch replaces lists whole: patching ``spec.containers`` restates every container, and
a restated main container that drops the Secret mounts or ``secretKeyRef`` variables is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from podrunner import _validation as v
from podrunner.errors import SpecError, kind_of
from podrunner.spec._fields import FrozenMap

__all__ = ["freeze_patch", "thaw_patch"]

_FIELD = "pod_patch"
# Fields that name or identify the pod: the runner, the reaper and garbage collection rely on
# them, and the server sets some of them itself.
_FIXED = frozenset(
    {
        "apiVersion",
        "kind",
        "status",
        "metadata.name",
        "metadata.generateName",
        "metadata.namespace",
        "metadata.uid",
        "metadata.resourceVersion",
        "metadata.ownerReferences",
        "metadata.creationTimestamp",
        "metadata.deletionTimestamp",
        "metadata.managedFields",
    }
)
_MAX_DEPTH = 32


def freeze_patch(value: object) -> FrozenMap[Any] | None:
    """Check a pod patch and return it immutable (mappings frozen, lists as tuples).

    Raises:
        SpecError: The patch is not a JSON object, touches a fixed field, or sets a label or
            annotation the server would refuse.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(_FIELD, kind_of(value), "must be a mapping (a JSON merge patch object)")
    frozen = _freeze(value, "", 0)
    assert isinstance(frozen, FrozenMap)
    metadata = value.get("metadata")
    if isinstance(metadata, Mapping):
        _check_labels(metadata.get("labels"), "metadata.labels")
        _check_annotations(metadata.get("annotations"))
    spec = value.get("spec")
    if isinstance(spec, Mapping):
        _check_pod_fields(spec)
    return frozen


# The pod fields PodSpec has options for, checked by the same rules when a patch sets them.
_POD_NAMES = {
    "restartPolicy": v.restart_policy_error,
    "runtimeClassName": v.dns1123_subdomain_error,
    "priorityClassName": v.dns1123_subdomain_error,
    "serviceAccountName": v.dns1123_subdomain_error,
}
_CONTAINER_TEXT = {"name": v.container_name_error, "image": v.image_error}


def _check_pod_fields(spec: Mapping[str, Any]) -> None:
    for key, rule in _POD_NAMES.items():
        if spec.get(key) is not None:
            _check_text(f"spec.{key}", spec[key], rule)
    _check_labels(spec.get("nodeSelector"), "spec.nodeSelector")
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (
        isinstance(deadline, bool) or not isinstance(deadline, int) or deadline < 1
    ):
        raise SpecError(
            f"{_FIELD}.spec.activeDeadlineSeconds", str(deadline), "must be a positive integer"
        )
    for group in ("containers", "initContainers"):
        items = spec.get(group)
        for i, container in enumerate(items if isinstance(items, list) else []):
            if isinstance(container, Mapping):
                _check_container(f"spec.{group}[{i}]", container)


def _check_container(path: str, container: Mapping[str, Any]) -> None:
    for key, rule in _CONTAINER_TEXT.items():
        if container.get(key) is not None:
            _check_text(f"{path}.{key}", container[key], rule)
    env = container.get("env")
    for i, var in enumerate(env if isinstance(env, list) else []):
        if isinstance(var, Mapping) and var.get("name") is not None:
            _check_text(f"{path}.env[{i}].name", var["name"], v.env_name_error)
    resources = container.get("resources")
    for bound in ("limits", "requests"):
        amounts = resources.get(bound) if isinstance(resources, Mapping) else None
        for name, amount in (amounts or {}).items() if isinstance(amounts, Mapping) else ():
            _check_text(f"{path}.resources.{bound}", name, v.resource_name_error)
            if amount is not None:
                _check_text(f"{path}.resources.{bound}[{name}]", str(amount), v.quantity_error)


def _check_text(path: str, value: object, rule: Any) -> None:
    if not isinstance(value, str):
        raise SpecError(f"{_FIELD}.{path}", kind_of(value), "must be a string")
    error = rule(value)
    if error:
        raise SpecError(f"{_FIELD}.{path}", value, error)


def thaw_patch(value: object) -> Any:
    """Return the plain JSON form (dicts and lists) of a frozen patch."""
    if isinstance(value, FrozenMap):
        return {key: thaw_patch(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw_patch(item) for item in value]
    return value


def _freeze(value: object, path: str, depth: int) -> object:
    field = f"{_FIELD}.{path}" if path else _FIELD
    if depth > _MAX_DEPTH:
        raise SpecError(field, "...", f"is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, Mapping):
        out: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SpecError(field, kind_of(key), "keys must be strings")
            inner = f"{path}.{key}" if path else key
            if inner in _FIXED:
                raise SpecError(
                    _FIELD,
                    inner,
                    "may not be patched: it names or identifies the pod, which the runner "
                    "relies on",
                )
            out[key] = _freeze(item, inner, depth + 1)
        return FrozenMap(out)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    # The value itself may be anything, a secret included: only its type is shown.
    raise SpecError(
        field, kind_of(value), "must be JSON: null, a boolean, number, string, list or mapping"
    )


def _check_labels(labels: object, path: str) -> None:
    if labels is None:
        return
    if not isinstance(labels, Mapping):
        raise SpecError(f"{_FIELD}.{path}", kind_of(labels), "must be a mapping")
    for key, value in labels.items():
        field = f"{_FIELD}.{path}[{key}]"
        error = v.label_key_error(key)
        if error:
            raise SpecError(f"{_FIELD}.{path}", key, error)
        if value is None:
            continue  # a merge patch removes the label
        if not isinstance(value, str):
            raise SpecError(field, kind_of(value), "must be a string, or null to remove it")
        error = v.label_value_error(value)
        if error:
            raise SpecError(field, value, error)


def _check_annotations(annotations: object) -> None:
    if annotations is None:
        return
    if not isinstance(annotations, Mapping):
        raise SpecError(f"{_FIELD}.metadata.annotations", kind_of(annotations), "must be a mapping")
    for key, value in annotations.items():
        error = v.annotation_key_error(key)
        if error:
            raise SpecError(f"{_FIELD}.metadata.annotations", key, error)
        if value is not None and not isinstance(value, str):
            raise SpecError(
                f"{_FIELD}.metadata.annotations[{key}]",
                kind_of(value),
                "must be a string, or null to remove it",
            )
