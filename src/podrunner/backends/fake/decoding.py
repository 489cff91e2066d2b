"""What decoding keeps: the fields each stored kind has, and Go's ``omitempty``.

The API server decodes a body into Go structs, so unknown fields vanish (with a warning) and
empty ``omitempty`` fields are not stored; the fake drops the same ones.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CONTAINER_FIELDS",
    "META_FIELDS",
    "POD_SPEC_FIELDS",
    "TOP_FIELDS",
    "drop_unknown",
    "prune",
    "prune_in_place",
    "prune_pod",
]

# Known fields of the structs the fake stores; anything else is dropped, as decoding drops it.
POD_SPEC_FIELDS = frozenset(
    {
        "volumes",
        "initContainers",
        "containers",
        "ephemeralContainers",
        "restartPolicy",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "dnsPolicy",
        "nodeSelector",
        "serviceAccountName",
        "serviceAccount",
        "automountServiceAccountToken",
        "nodeName",
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "shareProcessNamespace",
        "securityContext",
        "imagePullSecrets",
        "hostname",
        "subdomain",
        "affinity",
        "schedulerName",
        "tolerations",
        "hostAliases",
        "priorityClassName",
        "priority",
        "dnsConfig",
        "readinessGates",
        "runtimeClassName",
        "enableServiceLinks",
        "preemptionPolicy",
        "overhead",
        "topologySpreadConstraints",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        "schedulingGates",
        "resourceClaims",
        "resources",
        "hostnameOverride",
    }
)
CONTAINER_FIELDS = frozenset(
    {
        "name",
        "image",
        "command",
        "args",
        "workingDir",
        "ports",
        "envFrom",
        "env",
        "resources",
        "resizePolicy",
        "restartPolicy",
        "restartPolicyRules",
        "volumeMounts",
        "volumeDevices",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "terminationMessagePath",
        "terminationMessagePolicy",
        "imagePullPolicy",
        "securityContext",
        "stdin",
        "stdinOnce",
        "tty",
    }
)
TOP_FIELDS = {
    "Pod": frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
    "Secret": frozenset(
        {"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}
    ),
    "ConfigMap": frozenset({"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
    "Namespace": frozenset({"apiVersion", "kind", "metadata", "spec", "status"}),
    "NetworkPolicy": frozenset({"apiVersion", "kind", "metadata", "spec"}),
    "Event": frozenset(
        {
            "apiVersion",
            "kind",
            "metadata",
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "type",
            "eventTime",
            "series",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        }
    ),
}
META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
# Go maps (and slices) marked omitempty vanish when empty; so do empty omitempty strings.
_MAP_FIELDS = frozenset({"labels", "annotations", "nodeSelector", "limits", "requests", "overhead"})


def prune(value: Any) -> Any:
    """Drop what Go's ``omitempty`` drops: empty maps, lists and strings, and nulls."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if item is None or item == "" or item == [] or (item == {} and key in _MAP_FIELDS):
                continue
            if key in _MAP_FIELDS:
                out[key] = item  # a map's values are data, kept as given
            else:
                out[key] = prune(item)
        return out
    if isinstance(value, list):
        return [prune(item) for item in value]
    return value


def prune_in_place(value: dict[str, Any]) -> None:
    """:func:`prune` a map in place: callers hold references to it."""
    pruned = prune(value)
    value.clear()
    value.update(pruned)


def prune_pod(obj: dict[str, Any]) -> None:
    """Drop the empty omitempty fields of a pod's metadata and spec."""
    for part in ("metadata", "spec"):
        value = obj.get(part)
        if isinstance(value, dict):
            prune_in_place(value)


def drop_unknown(kind: str, obj: dict[str, Any], *, spec: bool = True) -> None:
    """Drop fields the kind does not have, as the server's decoder does (with a warning).

    ``spec=False`` leaves a pod's spec alone (its prepared form is memoised).
    """
    known = TOP_FIELDS[kind]
    for key in [k for k in obj if k not in known]:
        del obj[key]
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in META_FIELDS]:
            del meta[key]
    if kind == "Pod" and spec:
        body = obj.get("spec")
        if isinstance(body, dict):
            _drop_unknown_in_spec(body)


def _drop_unknown_in_spec(body: dict[str, Any]) -> None:
    for key in [k for k in body if k not in POD_SPEC_FIELDS]:
        del body[key]
    for field in ("containers", "initContainers"):
        for c in body.get(field) or ():
            if isinstance(c, dict):
                for key in [k for k in c if k not in CONTAINER_FIELDS]:
                    del c[key]
