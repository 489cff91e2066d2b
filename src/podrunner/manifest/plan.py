"""A run's plan: its manifests as they are sent, with namespace, expiry and the pod's deadline.

Pure: the runner creates what the plan lists, in order (extras, then the pod), and makes the
extras owned by the pod.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from podrunner._time import format_rfc3339
from podrunner.manifest.build import Manifests

__all__ = ["EXPIRES_ANNOTATION", "RunPlan", "plan_run"]

EXPIRES_ANNOTATION = "podrunner.dev/expires-at"
"""RFC 3339 time after which :meth:`PodRunner.reap` may delete the object."""


@attrs.frozen
class RunPlan:
    """What a run creates.

    Attributes:
        manifests: The manifests as built from the spec.
        namespace: Where everything goes.
        pod: The pod to create.
        extras: The NetworkPolicy, Secret and ConfigMap to create before the pod (owned by it
            afterwards).
    """

    manifests: Manifests
    namespace: str
    pod: dict[str, Any]
    extras: tuple[dict[str, Any], ...]


def plan_run(
    manifests: Manifests,
    *,
    namespace: str,
    now: float,
    total: float | None,
    default_ttl: float,
    deadline_margin: float,
) -> RunPlan:
    """Plan a run: set the namespace and the expiry annotation, and bound the pod's life.

    Args:
        manifests: Built from the spec.
        namespace: Where the run goes.
        now: The backend's wall clock (seconds since the epoch).
        total: The run's total deadline, if any.
        default_ttl: Expiry of the objects of a run without a total deadline.
        deadline_margin: Added to the total deadline for expiry and ``activeDeadlineSeconds``,
            so the cluster kills the pod of a runner that died.
    """
    ttl = total + deadline_margin if total is not None else default_ttl
    expires = format_rfc3339(now + ttl)
    pod = _with_expiry(manifests.pod, expires, namespace)
    if total is not None:
        ads = math.ceil(total + deadline_margin)
        current = pod["spec"].get("activeDeadlineSeconds")
        pod["spec"]["activeDeadlineSeconds"] = min(current, ads) if current else ads
    extras = tuple(_with_expiry(extra, expires, namespace) for extra in manifests.extras)
    return RunPlan(manifests=manifests, namespace=namespace, pod=pod, extras=extras)


def _with_expiry(manifest: Mapping[str, Any], expires: str, namespace: str) -> dict[str, Any]:
    out = dict(manifest)
    meta = dict(out.get("metadata", {}))
    meta["namespace"] = namespace
    annotations = dict(meta.get("annotations") or {})
    annotations[EXPIRES_ANNOTATION] = expires
    meta["annotations"] = annotations
    out["metadata"] = meta
    if "spec" in out:
        out["spec"] = dict(out["spec"])
    return out
