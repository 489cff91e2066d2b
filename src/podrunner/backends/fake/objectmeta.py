"""ObjectMeta rules every kind shares: shape, name, labels, annotations, finalizers, owners."""

from __future__ import annotations

from typing import Any

from podrunner import _validation
from podrunner.backends.fake.field_errors import Errors, expect, string_map
from podrunner.backends.fake.memo import v
from podrunner.errors import StatusCause

__all__ = [
    "FINALIZER_STANDARD",
    "check_finalizers",
    "check_meta_shape",
    "check_object_meta",
    "check_owner_references",
    "validate_meta",
]

FINALIZER_STANDARD = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def check_meta_shape(kind: str, meta: object) -> dict[str, Any]:
    """Check the JSON shape of ``metadata`` (400 on a wrong type) and return it."""
    expect(kind, meta, dict, f"{kind}.metadata")
    assert isinstance(meta, dict)
    for field in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        if field in meta and meta[field] is not None:
            expect(kind, meta[field], str, f"ObjectMeta.metadata.{field}")
    for field in ("labels", "annotations"):
        if meta.get(field) is not None:
            string_map(kind, meta[field], f"ObjectMeta.metadata.{field}")
    refs = meta.get("ownerReferences")
    if refs is not None:
        expect(kind, refs, list, "ObjectMeta.metadata.ownerReferences")
        for ref in refs:
            expect(kind, ref, dict, "ObjectMeta.metadata.ownerReferences")
    return meta


def _label_key_wording(error: str) -> str:
    # Label and annotation keys: the server's message names a label key, not a qualified name.
    return error.replace("a qualified name must consist", "a valid label key must consist")


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
                errs.invalid("metadata.labels", key, _label_key_wording(error))
            error = v.label_value_error(value)
            if error:
                errs.invalid("metadata.labels", value, error)
    annotations = meta.get("annotations")
    if annotations:
        for key in annotations:
            error = v.annotation_key_error(key)
            if error:
                errs.invalid("metadata.annotations", key, _label_key_wording(error))
        if v.annotations_size_error(annotations):
            errs.too_long("metadata.annotations", v.TOTAL_ANNOTATION_SIZE_LIMIT)


def check_finalizers(meta: dict[str, Any], errs: Errors) -> None:
    """ValidateFinalizers: qualified names; a name without a slash must be a standard one."""
    finalizers = meta.get("finalizers")
    if not finalizers:
        return
    for i, name in enumerate(finalizers):
        path = f"metadata.finalizers[{i}]"
        if not isinstance(name, str):
            continue
        error = _validation.label_key_error(name)
        if error:
            errs.invalid(path, name, error)
        elif "/" not in name and name not in FINALIZER_STANDARD:
            errs.invalid(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )


def check_owner_references(meta: dict[str, Any], errs: Errors) -> None:
    """ValidateOwnerReferences: apiVersion, kind, name and uid must be set."""
    for ref in meta.get("ownerReferences") or ():
        if not isinstance(ref, dict):
            continue
        if not ref.get("apiVersion"):
            errs.invalid("metadata.ownerReferences.apiVersion", "", "version must not be empty")
        if not ref.get("kind"):
            errs.invalid("metadata.ownerReferences.kind", "", "must not be empty")
        if not ref.get("name"):
            errs.invalid("metadata.ownerReferences.name", "", "must not be empty")
        if not ref.get("uid"):
            errs.invalid("metadata.ownerReferences.uid", "", "must not be empty")


def _check_generate_name(kind: str, meta: dict[str, Any], errs: Errors) -> None:
    # ValidateObjectMetaUpdate checks generateName too (a create names the object before
    # validation, so only an update can carry a bad one this far).
    gen = meta["generateName"]
    masked = gen[:-1] + "a" if len(gen) > 1 and gen.endswith("-") else gen
    check = v.dns1123_label_error if kind == "Namespace" else v.dns1123_subdomain_error
    error = check(masked) if isinstance(gen, str) else None
    if error:
        errs.invalid("metadata.generateName", gen, error)


def check_object_meta(kind: str, meta: dict[str, Any], errs: Errors, *, update: bool) -> None:
    """Validate the metadata of a create or update, with the server's repeated causes."""
    if update and meta.get("generateName"):
        _check_generate_name(kind, meta, errs)
    # kube-apiserver 1.36 reports an update's metadata causes four times (labels,
    # annotations, owner references) and its finalizer causes twice: the object meta is
    # validated by the update path and by the kind's own validation, each twice.
    for round_ in range(4 if update else 1):
        validate_meta(kind, meta, errs, label_name=kind == "Namespace")
        if round_ < 2:
            check_finalizers(meta, errs)
        check_owner_references(meta, errs)
