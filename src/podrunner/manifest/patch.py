"""Apply ``PodSpec.pod_patch`` to a built pod, keeping what the run depends on.

The patch is a JSON merge patch (RFC 7386): a mapping merges into a mapping, ``null`` removes a
key, anything else (lists included) replaces. After applying it, the pod must still carry
everything the runner relies on, or the build fails with a :class:`~podrunner.errors.SpecError`
before any API call:

- the labels podrunner manages (``app.kubernetes.io/managed-by``, ``.../component``,
  ``podrunner.dev/run-id``) and every ``podrunner.dev/`` annotation, unchanged;
- the main container, by name;
- the credential and files wiring: every volume of the per-run Secret or ConfigMap, the main
  container's mounts of them and its ``secretKeyRef`` variables, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podrunner import _validation as v
from podrunner.errors import SpecError

__all__ = ["merge_patch", "patch_pod"]

_FIELD = "pod_patch"
_MANAGED_PREFIX = "podrunner.dev/"


def merge_patch(target: Any, patch: Any) -> Any:
    """Return ``target`` with the JSON merge patch ``patch`` applied (RFC 7386), as a new value."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def patch_pod(
    pod: dict[str, Any], patch: Mapping[str, Any], *, managed_labels: Mapping[str, str],
    container: str, wired: frozenset[str]
) -> dict[str, Any]:  # fmt: skip
    """Apply ``patch`` to ``pod``, refusing a result that lost what the run relies on.

    Args:
        pod: The pod podrunner built.
        patch: The plain JSON merge patch.
        managed_labels: The labels podrunner set and the runner finds its pods by.
        container: The main container's name.
        wired: Names of the volumes that carry the per-run Secret and files.

    Returns:
        The patched pod.

    Raises:
        SpecError: The patch removed or changed a managed label or annotation, the main
            container, or the Secret and files wiring; or the annotations grew too large.
    """
    patched: dict[str, Any] = merge_patch(pod, patch)
    meta = patched.get("metadata") or {}
    labels = meta.get("labels") or {}
    for key, value in managed_labels.items():
        if labels.get(key) != value:
            raise SpecError(
                f"{_FIELD}.metadata.labels", key, "may not change a label podrunner manages"
            )
    _check_annotations(pod["metadata"].get("annotations") or {}, meta.get("annotations") or {})
    _check_wiring(pod, patched, container, wired)
    return patched


def _check_annotations(before: Mapping[str, str], after: Mapping[str, str]) -> None:
    for key in {*before, *after}:
        if key.startswith(_MANAGED_PREFIX) and before.get(key) != after.get(key):
            raise SpecError(
                f"{_FIELD}.metadata.annotations",
                key,
                "may not change a podrunner.dev/ annotation (the runner and reaper read them)",
            )
    error = v.annotations_size_error(after)
    if error:
        raise SpecError(f"{_FIELD}.metadata.annotations", f"{len(after)} entries", error)


def _main(pod: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    containers = (pod.get("spec") or {}).get("containers")
    if not isinstance(containers, list):
        return None
    return next((c for c in containers if isinstance(c, Mapping) and c.get("name") == name), None)


def _check_wiring(
    pod: Mapping[str, Any], patched: Mapping[str, Any], container: str, wired: frozenset[str]
) -> None:
    main = _main(patched, container)
    if main is None:
        raise SpecError(
            f"{_FIELD}.spec.containers", container, "must keep the main container (by name)"
        )
    old_main = _main(pod, container)
    assert old_main is not None
    volumes = (patched.get("spec") or {}).get("volumes")
    kept = {vol.get("name"): vol for vol in volumes or [] if isinstance(vol, Mapping)}
    for vol in pod["spec"].get("volumes") or []:
        if vol["name"] in wired and kept.get(vol["name"]) != vol:
            raise SpecError(
                f"{_FIELD}.spec.volumes",
                vol["name"],
                "must keep the run's Secret and files volumes",
            )
    mounts = main.get("volumeMounts")
    kept_mounts = [m for m in mounts or [] if isinstance(m, Mapping)]
    for mount in old_main.get("volumeMounts") or []:
        if mount["name"] in wired and mount not in kept_mounts:
            raise SpecError(
                f"{_FIELD}.spec.containers[{container}].volumeMounts",
                mount["name"],
                "must keep the mounts of the run's Secret and files",
            )
    env = main.get("env")
    kept_env = [e for e in env or [] if isinstance(e, Mapping)]
    for var in old_main.get("env") or []:
        if "valueFrom" in var and "secretKeyRef" in var["valueFrom"] and var not in kept_env:
            raise SpecError(
                f"{_FIELD}.spec.containers[{container}].env",
                var["name"],
                "must keep the variables that come from the run's Secret",
            )
