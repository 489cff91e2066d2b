"""The ``initContainers`` of a run's pod: its sidecars first, then its init containers.

Sidecars come first so that the plain init containers can already use them (a proxy, a
credential helper). Each gets the main container's security defaults and pull policy and the
pod's user volumes at their mount paths; never the main container's secrets or files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podrunner.spec import InitContainer, PodSpec, Sidecar

__all__ = ["init_container_manifests"]


def init_container_manifests(
    spec: PodSpec, volume_mounts: list[dict[str, Any]], security: dict[str, Any]
) -> list[dict[str, Any]]:
    """Return the pod's ``initContainers`` entries (empty when it has none).

    Args:
        spec: The pod spec.
        volume_mounts: The mounts of the spec's user ``volumes`` (not its secrets or files).
        security: The container ``securityContext`` the main container gets.
    """
    steps: list[tuple[InitContainer | Sidecar, bool]] = [(s, True) for s in spec.sidecars]
    steps.extend((c, False) for c in spec.init_containers)
    out: list[dict[str, Any]] = []
    for step, sidecar in steps:
        container: dict[str, Any] = {
            "name": step.name,
            "image": step.image,
            "imagePullPolicy": spec.image_pull_policy.value,
            "command": list(step.command),
        }
        if sidecar:
            container["restartPolicy"] = "Always"
        if step.working_dir:
            container["workingDir"] = step.working_dir
        if step.env:
            container["env"] = [e.to_manifest() for e in step.env]
        resources = step.resources.to_manifest()
        if resources:
            container["resources"] = resources
        if volume_mounts:
            container["volumeMounts"] = [dict(m) for m in volume_mounts]
        if security:
            container["securityContext"] = dict(security)
        out.append(container)
    return out
