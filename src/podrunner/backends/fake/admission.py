"""The admission plugins a new pod meets: ServiceAccount, Priority, DefaultTolerationSeconds.

Written from kube-apiserver 1.36's plugins: the ServiceAccount plugin refuses an unknown
account and mounts a projected token volume; Priority refuses an unknown class and sets the
priority and preemption policy; DefaultTolerationSeconds tolerates a lost node for 300 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from podrunner.errors import Forbidden

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "PRIORITY_CLASSES",
    "SA_MOUNT_PATH",
    "admit_pod",
    "default_tolerations",
    "token_volume_name",
]

SA_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
PRIORITY_CLASSES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def admit_pod(
    obj: dict[str, Any],
    accounts: Callable[[str, str], bool],
    suffix: Callable[[], str],
) -> None:
    """Mutating admission of a new pod: ServiceAccount, Priority, DefaultTolerationSeconds.

    Raises:
        Forbidden: The service account or the priority class does not exist, or the spec
            gives a priority the class does not (403, as the admission plugins answer).
    """
    meta = obj["metadata"]
    spec = obj["spec"]
    name = meta.get("name") or ""
    ns = meta.get("namespace") or "default"
    _admit_service_account(spec, name, ns, accounts, suffix)
    _admit_priority(spec, name, ns)
    default_tolerations(spec)


def _forbidden(name: str, ns: str, reason: str) -> Forbidden:
    return Forbidden(f'pods "{name}" is forbidden: {reason}', kind="Pod", namespace=ns, name=name)


def _admit_service_account(
    spec: dict[str, Any],
    name: str,
    ns: str,
    accounts: Callable[[str, str], bool],
    suffix: Callable[[], str],
) -> None:
    account = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    if not isinstance(account, str) or not accounts(ns, account):
        raise _forbidden(
            name,
            ns,
            f'error looking up service account {ns}/{account}: serviceaccount "{account}" '
            "not found",
        )
    spec["serviceAccountName"] = account
    if spec.get("automountServiceAccountToken") is not False:
        _mount_token(spec, suffix())


def _admit_priority(spec: dict[str, Any], name: str, ns: str) -> None:
    klass = spec.get("priorityClassName")
    priority = 0
    if klass:
        if klass not in PRIORITY_CLASSES:
            raise _forbidden(name, ns, f"no PriorityClass with name {klass} was found")
        priority = PRIORITY_CLASSES[klass]
    given = spec.get("priority")
    if given is not None and given != priority:
        raise _forbidden(
            name,
            ns,
            f"the integer value of priority ({given}) must not be provided in pod spec; "
            f"priority admission controller computed {priority} from the given PriorityClass "
            "name",
        )
    spec["priority"] = priority
    policy = spec.get("preemptionPolicy")
    if policy is not None and policy != "PreemptLowerPriority":
        raise _forbidden(
            name,
            ns,
            f"the string value of PreemptionPolicy ({policy}) must not be provided in pod "
            "spec; priority admission controller computed PreemptLowerPriority from the "
            "given PriorityClass name",
        )
    spec["preemptionPolicy"] = "PreemptLowerPriority"


def default_tolerations(spec: dict[str, Any]) -> None:
    """DefaultTolerationSeconds (on creates and updates): tolerate a lost node for 300 s."""
    tolerations = spec.get("tolerations")
    if tolerations is not None and not isinstance(tolerations, list):
        return
    tolerations = list(tolerations or ())
    for key in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        covered = any(
            isinstance(t, dict)
            and t.get("key", "") in (key, "")
            and t.get("effect", "") in ("NoExecute", "")
            for t in tolerations
        )
        if not covered:
            tolerations.append(
                {"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            )
    spec["tolerations"] = tolerations


def token_volume_name(rng_bits: Callable[[int], int]) -> str:
    """``kube-api-access-`` and five characters, as the ServiceAccount plugin names it."""
    n = rng_bits(30)
    return "kube-api-access-" + "".join(
        _GENERATE_ALPHABET[(n >> s) % 27] for s in (0, 6, 12, 18, 24)
    )


#: The ServiceAccount admission's projected volume (shared; never mutated).
_TOKEN_PROJECTION: dict[str, Any] = {
    "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {
            "configMap": {
                "name": "kube-root-ca.crt",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            }
        },
        {
            "downwardAPI": {
                "items": [
                    {
                        "path": "namespace",
                        "fieldRef": {
                            "apiVersion": "v1",
                            "fieldPath": "metadata.namespace",
                        },
                    }
                ]
            }
        },
    ],
    "defaultMode": 420,
}


def _mount_token(spec: dict[str, Any], volume: str) -> None:
    volumes = spec.get("volumes")
    if volumes is not None and not isinstance(volumes, list):
        return
    containers = [
        c
        for field in ("initContainers", "containers")
        for c in (spec.get(field) or ())
        if isinstance(c, dict)
    ]
    spec["volumes"] = [
        *(volumes or ()),
        {
            "name": volume,
            # One subtree for every pod: stored objects are never mutated, readers get copies.
            "projected": _TOKEN_PROJECTION,
        },
    ]
    for c in containers:
        mounts = c.get("volumeMounts")
        if mounts is not None and not isinstance(mounts, list):
            continue
        if any(isinstance(m, dict) and m.get("mountPath") == SA_MOUNT_PATH for m in mounts or ()):
            continue
        c["volumeMounts"] = [
            *(mounts or ()),
            {"name": volume, "readOnly": True, "mountPath": SA_MOUNT_PATH},
        ]
