"""A pod's spec as the API server prepares a create or update: decoded, defaulted, checked.

Written from kube-apiserver 1.36's behaviour (``pkg/apis/core/validation`` and the v1
defaulting functions), as the differential tier (``tests/differential``) measures it against
a real server. Causes carry the server's field paths and cause types; the tables are module
constants, built once. The containers' rules are in :mod:`.containers`, the volumes' in
:mod:`.volumes`; admission (:mod:`.admission`) runs after this and before the metadata checks.
"""

from __future__ import annotations

import marshal
from typing import Any

from podrunner import _validation
from podrunner._jsoncopy import copy_tree

# Re-exported for cluster.py, which imports the pod's admission from here.
from podrunner.backends.fake.admission import admit_pod, default_tolerations, token_volume_name
from podrunner.backends.fake.containers import (
    check_container,
    check_security_context,
    prepare_container,
)
from podrunner.backends.fake.decoding import drop_unknown, prune_in_place, prune_pod
from podrunner.backends.fake.field_errors import Errors, expect
from podrunner.backends.fake.memo import Memo, v
from podrunner.backends.fake.resources import qos_class
from podrunner.backends.fake.volumes import check_volumes
from podrunner.errors import StatusCause

__all__ = [
    "admit_pod",
    "check_pod_spec",
    "default_tolerations",
    "prepare_pod",
    "token_volume_name",
]

_DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_TOLERATION_OPS = ("Equal", "Exists")


class _PreparedSpec:
    """A memoised prepared spec, shared (never mutated) by the pods made from it."""

    __slots__ = ("causes", "qos", "spec")

    def __init__(self, spec: dict[str, Any], qos: str, causes: tuple[tuple[str, str, str], ...]):
        self.spec = spec
        self.qos = qos
        self.causes = causes

    def fill(self, spec: dict[str, Any]) -> None:
        """Make ``spec`` the prepared spec, sharing every subtree admission never assigns.

        Admission and updates assign keys of the spec and of its containers (volumes,
        tolerations, volumeMounts) and never change a nested value in place, and stored
        objects are immutable (readers get copies), so only those two levels are new.
        """
        spec.clear()  # in place, as the uncached path keeps the caller's dict
        spec.update(self.spec)
        for field in ("containers", "initContainers"):
            items = spec.get(field)
            if type(items) is list:
                spec[field] = [c.copy() if type(c) is dict else c for c in items]


#: Prepared pod specs by the marshalled input spec.
_MEMO: Memo[bytes, _PreparedSpec] = Memo(1024)


def _memo_key(spec: object) -> bytes | None:
    """The spec's ``marshal`` encoding, or ``None`` when it cannot be memoised.

    ``marshal`` tells ``True`` from ``1`` and ``1`` from ``1.0`` as JSON does, and two equal
    encodings decode to equal trees.
    """
    if type(spec) is not dict:
        return None
    try:
        return marshal.dumps(spec)
    except ValueError:  # not a plain JSON tree, or too deep: no memo
        return None


def prepare_pod(obj: dict[str, Any], errs: Errors) -> bytes | None:
    """Default and check a pod, memoised by its spec: the same spec is created again and again.

    Only the spec is memoised: the metadata differs per pod (its name, often generated) and
    is pruned here and validated by the caller every time. The spec's defaulting and
    validation read nothing but the spec, so equal input specs give equal results. Returns
    the memo key (``None`` when the spec was not memoised).
    """
    spec = obj.get("spec")
    key = None if errs.causes else _memo_key(spec)
    hit = _MEMO.get(key) if key is not None else None
    if hit is not None:
        assert isinstance(spec, dict)
        drop_unknown("Pod", obj, spec=False)
        meta = obj.get("metadata")
        if isinstance(meta, dict):
            prune_in_place(meta)
        hit.fill(spec)
        errs.causes.extend(StatusCause(*c) for c in hit.causes)
        obj["status"] = {"phase": "Pending", "qosClass": hit.qos}
        return key
    _prepare_uncached(obj, errs)
    if key is not None:
        causes = tuple((c.field, c.reason, c.message) for c in errs.causes)
        _MEMO.put(key, _PreparedSpec(copy_tree(obj["spec"]), obj["status"]["qosClass"], causes))
    return key


def _prepare_uncached(obj: dict[str, Any], errs: Errors) -> None:
    spec, containers = _decode_spec(obj, errs)
    _default_spec(spec)
    _check_spec_fields(spec, errs)
    init = spec.get("initContainers") or []
    # As the API server: app container names are unique among themselves, and an init
    # container's name is also checked against them, so a clash is reported on the init one.
    app_names = {c.get("name") for c in containers if isinstance(c, dict)}
    seen_by_field = {"initContainers": {n for n in app_names if isinstance(n, str)}}
    for field, items in (("initContainers", init), ("containers", containers)):
        seen = seen_by_field.get(field, set())
        for i, container in enumerate(items):
            prepare_container(container, field, f"spec.{field}[{i}]", errs, spec, seen)
    check_pod_spec(spec, errs)
    obj["status"] = {"phase": "Pending", "qosClass": qos_class([*init, *containers])}


def _decode_spec(obj: dict[str, Any], errs: Errors) -> tuple[dict[str, Any], list[Any]]:
    """Check the spec's shape (400), drop unknown and empty fields; return spec and containers."""
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    expect("Pod", spec, dict, "Pod.spec")
    containers = spec.get("containers")
    if containers is None:
        errs.required("spec.containers")
        containers = []
    expect("Pod", containers, list, "PodSpec.spec.containers")
    init = spec.get("initContainers")
    if init is not None:
        expect("Pod", init, list, "PodSpec.spec.initContainers")
    drop_unknown("Pod", obj)
    prune_pod(obj)
    spec = obj["spec"]
    containers = spec.get("containers") or []
    if containers == [] and "spec.containers" not in {c.field for c in errs.causes}:
        errs.required("spec.containers")
    return spec, containers


def _default_spec(spec: dict[str, Any]) -> None:
    """SetDefaults_PodSpec (the containers' defaults come with their checks)."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)


def _check_spec_fields(spec: dict[str, Any], errs: Errors) -> None:
    """The restart policy, deadline, grace period and node name."""
    restart = spec["restartPolicy"]
    expect("Pod", restart, str, "PodSpec.spec.restartPolicy")
    if v.restart_policy_error(restart):
        errs.not_supported("spec.restartPolicy", restart, v.RESTART_POLICIES)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None:
        expect("Pod", deadline, int, "PodSpec.spec.activeDeadlineSeconds")
        if not 1 <= deadline <= 2147483647:
            errs.invalid(
                "spec.activeDeadlineSeconds",
                deadline,
                "must be between 1 and 2147483647, inclusive",
            )
    grace = spec["terminationGracePeriodSeconds"]
    expect("Pod", grace, int, "PodSpec.spec.terminationGracePeriodSeconds")
    if grace < 0:
        # The pod strategy turns a negative grace period into 1 second.
        spec["terminationGracePeriodSeconds"] = 1
    if spec.get("nodeName") is not None:
        expect("Pod", spec["nodeName"], str, "PodSpec.spec.nodeName")


def check_pod_spec(spec: dict[str, Any], errs: Errors) -> None:
    """Validate the PodSpec rules the fake knows beyond names, images and resources."""
    volumes = check_volumes(spec, errs)
    port_names: set[str] = set()
    host_ports: set[str] = set()
    for field in ("initContainers", "containers"):
        items = spec.get(field)
        for i, c in enumerate(items if isinstance(items, list) else ()):
            if not isinstance(c, dict):
                continue
            # Port names are unique among the app containers; each init container has its own.
            names = port_names if field == "containers" else set()
            check_container(c, f"spec.{field}[{i}]", errs, volumes, names, host_ports)
    dns = spec.get("dnsPolicy")
    if dns is not None and dns not in _DNS_POLICIES:
        errs.not_supported("spec.dnsPolicy", dns, _DNS_POLICIES)
    for field in ("hostname", "subdomain"):
        value = spec.get(field)
        if value:
            error = _validation.dns1123_label_error(value)
            if error:
                errs.invalid(f"spec.{field}", value, error)
    check_security_context(spec.get("securityContext"), "spec.securityContext", errs)
    _check_tolerations(spec, errs)


def _check_tolerations(spec: dict[str, Any], errs: Errors) -> None:
    tolerations = spec.get("tolerations")
    for i, tol in enumerate(tolerations if isinstance(tolerations, list) else ()):
        if not isinstance(tol, dict):
            continue
        path = f"spec.tolerations[{i}]"
        key = tol.get("key") or ""
        op = tol.get("operator") or ""
        if key:
            error = _validation.label_key_error(key)
            if error:
                errs.invalid(f"{path}.key", key, error)
        elif op != "Exists":
            errs.invalid(
                f"{path}.operator",
                op,
                'operator must be Exists when `key` is empty, which means "match all values '
                'and all keys"',
            )
        value = tol.get("value") or ""
        if op in ("Equal", ""):
            error = _validation.label_value_error(value)
            if error:
                errs.invalid(f"{path}.operator", value, error)
        elif op == "Exists":
            if value:
                errs.invalid(
                    f"{path}.operator", "", "value must be empty when `operator` is 'Exists'"
                )
        else:
            errs.not_supported(f"{path}.operator", op, _TOLERATION_OPS)
        effect = tol.get("effect") or ""
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.invalid(
                f"{path}.effect",
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            )
        if effect and effect not in _TAINT_EFFECTS:
            errs.not_supported(f"{path}.effect", effect, _TAINT_EFFECTS)
