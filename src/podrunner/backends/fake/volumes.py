"""A pod's volumes: one source each, defaulted and checked (ValidateVolumes)."""

from __future__ import annotations

from typing import Any

from podrunner import _validation
from podrunner.backends.fake.field_errors import Errors
from podrunner.backends.fake.quantities import canonical_quantity, decode_quantity

__all__ = ["check_mode", "check_volumes"]

_VOLUME_SOURCES = (
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
)
#: The sources whose files get a mode: they default ``defaultMode`` to 0644.
_FILE_SOURCES = ("configMap", "secret", "projected", "downwardAPI")


def check_mode(errs: Errors, path: str, value: object) -> None:
    """A file mode must fit in 0777."""
    if isinstance(value, int) and not 0 <= value <= 0o777:
        errs.invalid(path, value, "must be a number between 0 and 0777 (octal), both inclusive")


def _key_to_paths(errs: Errors, path: str, items: object) -> None:
    for j, item in enumerate(items if isinstance(items, list) else ()):
        if not isinstance(item, dict):
            continue
        ipath = f"{path}.items[{j}]"
        if not item.get("key"):
            errs.required(f"{ipath}.key")
        target = item.get("path") or ""
        if not target:
            errs.required(f"{ipath}.path")
        elif target.startswith("/"):
            errs.invalid(f"{ipath}.path", target, "must be a relative path")
        elif ".." in target.split("/"):
            errs.invalid(f"{ipath}.path", target, "must not contain '..'")
        elif target.startswith(".."):
            errs.invalid(f"{ipath}.path", target, "must not start with '..'")
        check_mode(errs, f"{ipath}.mode", item.get("mode"))


def _check_source(kind: str, source: dict[str, Any], path: str, errs: Errors) -> None:
    """Default and check the one source of a volume (``kind`` is its field name)."""
    if kind in _FILE_SOURCES:
        source.setdefault("defaultMode", 420)
        check_mode(errs, f"{path}.defaultMode", source.get("defaultMode"))
    if kind == "configMap":
        if not source.get("name"):
            errs.required(f"{path}.name")
        _key_to_paths(errs, path, source.get("items"))
    elif kind == "secret":
        if not source.get("secretName"):
            errs.required(f"{path}.secretName")
        _key_to_paths(errs, path, source.get("items"))
    elif kind == "emptyDir" and source.get("sizeLimit") is not None:
        # A quantity that does not parse is the decoder's 400; a negative one is refused.
        limit = canonical_quantity(decode_quantity("Pod", source["sizeLimit"]), False)
        source["sizeLimit"] = limit
        if _validation.parse_quantity(limit) < 0:
            errs.forbidden(f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity")


def _check_volume(vol: dict[str, Any], path: str, errs: Errors, names: set[str]) -> str:
    """Default and check one volume; return its name."""
    sources = [s for s in _VOLUME_SOURCES if vol.get(s) is not None]
    if not sources:
        vol["emptyDir"] = {}  # SetDefaults_Volume
        sources = ["emptyDir"]
    for extra in sources[1:]:
        errs.forbidden(f"{path}.{extra}", "may not specify more than 1 volume type")
    source = vol[sources[0]]
    if isinstance(source, dict) and len(sources) == 1:
        _check_source(sources[0], source, f"{path}.{sources[0]}", errs)
    name = vol.get("name") or ""
    if not name:
        errs.required(f"{path}.name")
    else:
        error = _validation.dns1123_label_error(name)
        if error:
            errs.invalid(f"{path}.name", name, error)
    if name in names:
        errs.duplicate(f"{path}.name", name)
    return name


def check_volumes(spec: dict[str, Any], errs: Errors) -> set[str]:
    """ValidateVolumes: only a volume without errors is declared (for mounts and duplicates)."""
    names: set[str] = set()
    volumes = spec.get("volumes")
    for i, vol in enumerate(volumes if isinstance(volumes, list) else ()):
        if not isinstance(vol, dict):
            continue
        before = len(errs.causes)
        name = _check_volume(vol, f"spec.volumes[{i}]", errs, names)
        if len(errs.causes) == before:
            names.add(name)
    return names
