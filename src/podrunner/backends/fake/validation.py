"""Defaulting and validation of incoming objects, with the API server's codes and messages.

The entry points the fake cluster calls: :func:`prepare` on every create and update (the
kind's defaulting and validation, mutating admission, then the metadata rules, in the
server's order), :func:`check_pod_update` for a pod's immutable fields and
:func:`check_stored_size` before a write. The rules themselves live by job: the pod spec in
:mod:`.podspec` (containers, resources, volumes beside it), the other kinds in :mod:`.kinds`,
metadata in :mod:`.objectmeta`, and how a refusal is reported in :mod:`.field_errors`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from podrunner.backends.fake.decoding import drop_unknown
from podrunner.backends.fake.field_errors import Errors
from podrunner.backends.fake.kinds import PREPARE
from podrunner.backends.fake.memo import v

# check_meta_shape, Errors and v are re-exported for cluster.py and selectors.py.
from podrunner.backends.fake.objectmeta import check_meta_shape, check_object_meta, validate_meta
from podrunner.backends.fake.podspec import prepare_pod
from podrunner.errors import error_for_status

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "ETCD_MAX_REQUEST_BYTES",
    "Errors",
    "check_meta_shape",
    "check_pod_update",
    "check_stored_size",
    "prepare",
    "v",
]

ETCD_MAX_REQUEST_BYTES = 1536 * 1024
"""etcd's default ``--max-request-bytes``: a larger object cannot be stored (the server: 500)."""


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
) -> bytes | None:
    """Default and validate a normalised object in place (raises 400, 403, 413 or 422).

    ``admit`` is the mutating admission of a create, run after defaulting and before
    validation, as the API server orders them. Returns the key of the memoised pod spec the
    object was prepared from (``None`` for other kinds and unmemoised specs).
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
    key = None
    if kind == "Pod":
        key = prepare_pod(obj, errs)
    else:
        PREPARE[kind](obj, errs)
    if admit is not None:
        admit(obj)  # mutating admission answers (403) before validation does
    if kind == "Event":
        # ValidateEventCreate stops at the event's own errors, and never looks at
        # finalizers or owner references.
        if not errs.causes:
            validate_meta(kind, meta, errs, label_name=False)
        errs.raise_if_any()
        return None
    check_object_meta(kind, meta, errs, update=update)
    errs.raise_if_any()
    return key


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
