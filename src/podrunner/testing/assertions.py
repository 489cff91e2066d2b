"""Readable assertions about runs and clusters, for tests of code that uses podrunner.

They work on a :class:`~podrunner.testing.FakeCluster` (which remembers pods that are already
deleted) and on any :class:`~podrunner.backends.base.Backend` (which only shows what still
exists)::

    from podrunner.testing import assert_pod_created, assert_run_state

    result = runner.run(spec)
    assert_run_state(result, "Succeeded", exit_code=0)
    assert_pod_created(cluster, labels={"team": "ml"}, image="busybox:*")

The pytest plugin registers this module for assertion rewriting, so a failure shows both sides
of the comparison.
"""

from __future__ import annotations

import fnmatch
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from podrunner.backends.base import Backend
    from podrunner.backends.fake import FakeCluster
    from podrunner.run import RunResult
    from podrunner.run.state import Phase, PodState, Reason

__all__ = [
    "assert_no_leftovers",
    "assert_pod_created",
    "assert_run_state",
    "created_pods",
    "leftovers",
]

_UNSET: Any = object()
_MANAGED_KEY = "app.kubernetes.io/managed-by"
_MANAGED = f"{_MANAGED_KEY}=podrunner"
_SA_TOKEN = "kubernetes.io/service-account-token"  # noqa: S105 - a Secret type, not a password


def _is_fake(target: object) -> bool:
    from podrunner.backends.fake import FakeCluster

    return isinstance(target, FakeCluster)


def created_pods(
    target: FakeCluster | Backend, namespace: str | None = None
) -> list[dict[str, Any]]:
    """Return the pods a cluster has seen, as first created (fake) or as they are now (backend).

    Args:
        target: A :class:`FakeCluster` (pods already deleted are included, from its history)
            or a backend (only pods that still exist; ``namespace`` is then required).
        namespace: Only this namespace.

    Returns:
        Pod objects, oldest first on the fake.
    """
    if _is_fake(target):
        cluster: Any = target
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        for action in cluster.actions:
            if action.verb != "create" or action.kind != "Pod" or action.name is None:
                continue
            ns = action.namespace or "default"
            if namespace is not None and ns != namespace:
                continue
            versions = cluster.history("Pod", ns, action.name)
            if versions and (ns, action.name) not in seen:
                seen[(ns, action.name)] = versions[0]
        for pod in cluster.pods(namespace):
            meta = pod["metadata"]
            seen.setdefault((meta["namespace"], meta["name"]), pod)
        return list(seen.values())
    if namespace is None:
        raise ValueError("namespace is required with a backend (a fake cluster has none)")
    backend: Any = target
    return list(backend.list("Pod", namespace).items)


def _describe(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata", {})
    images = [c.get("image") for c in pod.get("spec", {}).get("containers", [])]
    labels = json.dumps(meta.get("labels") or {}, sort_keys=True)
    return f"{meta.get('namespace')}/{meta.get('name')} images={images} labels={labels}"


def assert_pod_created(
    target: FakeCluster | Backend,
    *,
    labels: Mapping[str, str] | None = None,
    image: str | None = None,
    name: str | None = None,
    namespace: str | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """Assert that a pod matching every given criterion was created, and return it.

    Args:
        target: A :class:`FakeCluster` or a backend (see :func:`created_pods`).
        labels: Labels the pod must carry (others may be present).
        image: Glob over the first container's image (``"busybox:*"``).
        name: Glob over the pod name.
        namespace: The pod's namespace.
        count: Exactly this many pods must match (default: at least one).

    Returns:
        The first matching pod (as created, on the fake).

    Raises:
        AssertionError: No pod (or not ``count`` pods) matched; the message lists the pods seen.
    """
    __tracebackhide__ = True
    pods = created_pods(target, namespace)

    def matches(pod: Mapping[str, Any]) -> bool:
        meta = pod.get("metadata", {})
        have = meta.get("labels") or {}
        if labels and any(have.get(k) != v for k, v in labels.items()):
            return False
        containers = pod.get("spec", {}).get("containers") or [{}]
        if image is not None and not fnmatch.fnmatchcase(str(containers[0].get("image")), image):
            return False
        return name is None or fnmatch.fnmatchcase(str(meta.get("name")), name)

    found = [p for p in pods if matches(p)]
    wanted = {
        k: v
        for k, v in {"labels": labels, "image": image, "name": name, "namespace": namespace}.items()
        if v is not None
    }
    seen = "\n".join(f"  - {_describe(p)}" for p in pods) or "  (none)"
    if count is not None:
        assert len(found) == count, (
            f"expected {count} pod(s) matching {wanted}, found {len(found)}; pods seen:\n{seen}"
        )
    else:
        assert found, f"no pod matching {wanted} was created; pods seen:\n{seen}"
    return found[0] if found else {}


def _phase_value(value: str | Phase) -> str:
    return value if isinstance(value, str) else value.value


def assert_run_state(
    result: RunResult | PodState,
    phase: str | Phase | None = None,
    *,
    reason: str | Reason | None = _UNSET,
    exit_code: int | None = _UNSET,
    logs: str | None = None,
) -> None:
    """Assert how a run ended.

    Args:
        result: A :class:`~podrunner.RunResult` (or a :class:`~podrunner.PodState`).
        phase: ``"Succeeded"``, ``"Failed"``... (a :class:`Phase` works too).
        reason: ``"Completed"``, ``"Error"``, ``"OOMKilled"``... or ``None`` for no reason.
        exit_code: The expected exit code (``None``: never reported).
        logs: Text the logs must contain (results only).

    Raises:
        AssertionError: A criterion does not hold; the message shows the whole state.
    """
    __tracebackhide__ = True
    from podrunner.run.state import PodState

    state = result if isinstance(result, PodState) else result.state
    where = f"run ended {state}" + (f": {state.message}" if state.message else "")
    if phase is not None:
        assert state.phase.value == _phase_value(phase), f"{where}; expected phase {phase}"
    if reason is not _UNSET:
        got = None if state.reason is None else state.reason.value
        want = reason if reason is None or isinstance(reason, str) else reason.value
        assert got == want, f"{where}; expected reason {want}"
    if exit_code is not _UNSET:
        assert state.exit_code == exit_code, f"{where}; expected exit code {exit_code}"
    if logs is not None:
        text = getattr(result, "logs", "")
        assert logs in text, f"{logs!r} not in the run's logs:\n{text[-2000:]}"


def leftovers(target: FakeCluster | Backend, namespace: str | None = None) -> list[str]:
    """Describe the pods, Secrets and podrunner's ConfigMaps and NetworkPolicies still there.

    Objects being deleted are not counted, nor service-account token Secrets (made by the
    cluster itself), nor ConfigMaps and NetworkPolicies podrunner did not make (a
    namespace's ``kube-root-ca.crt``, its own policies).

    Args:
        target: A :class:`FakeCluster` (all namespaces by default) or a backend.
        namespace: Only this namespace (required with a backend).

    Returns:
        Lines such as ``Pod default/job-1 (Running)``; empty when nothing is left.
    """
    if _is_fake(target):
        cluster: Any = target
        pods = cluster.pods(namespace)
        secrets = cluster.secrets(namespace)
        policies = cluster.network_policies(namespace)
        config_maps = cluster.config_maps(namespace)
    else:
        if namespace is None:
            raise ValueError("namespace is required with a backend")
        backend: Any = target
        pods = backend.list("Pod", namespace).items
        secrets = backend.list("Secret", namespace).items
        policies = backend.list("NetworkPolicy", namespace, label_selector=_MANAGED).items
        config_maps = backend.list("ConfigMap", namespace, label_selector=_MANAGED).items
    out: list[str] = []
    for pod in pods:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        phase = (pod.get("status") or {}).get("phase", "Pending")
        out.append(f"Pod {meta.get('namespace')}/{meta['name']} ({phase})")
    for secret in secrets:
        meta = secret["metadata"]
        if meta.get("deletionTimestamp") or secret.get("type") == _SA_TOKEN:
            continue
        owner = ", owned by a pod" if meta.get("ownerReferences") else ""
        out.append(f"Secret {meta.get('namespace')}/{meta['name']}{owner}")
    for kind, items in (("ConfigMap", config_maps), ("NetworkPolicy", policies)):
        for item in items:
            meta = item["metadata"]
            if (
                meta.get("deletionTimestamp")
                or (meta.get("labels") or {}).get(_MANAGED_KEY) != "podrunner"
            ):
                continue
            owner = ", owned by a pod" if meta.get("ownerReferences") else ""
            out.append(f"{kind} {meta.get('namespace')}/{meta['name']}{owner}")
    return out


def assert_no_leftovers(target: FakeCluster | Backend, namespace: str | None = None) -> None:
    """Assert that no pod, Secret or podrunner ConfigMap or NetworkPolicy is left.

    See :func:`leftovers`.

    Raises:
        AssertionError: Something is left; the message lists it.
    """
    __tracebackhide__ = True
    left = leftovers(target, namespace)
    listing = "\n".join(f"  - {line}" for line in left)
    assert not left, (
        f"{len(left)} object(s) left behind (a run with cleanup=NEVER, or a pod created "
        f"directly?):\n{listing}"
    )
