"""The differential tier: the same seeded random operations on the fake and on a real API server.

A *sequence* is a list of operations generated from one seed (:func:`generate`): creates of
Pods, Secrets, ConfigMaps, Events and Namespaces with valid and invalid specs, gets, lists with
label and field selectors, merge patches with and without ``resourceVersion`` preconditions,
replaces (current and stale), deletes with every grace period, finalizers, owner references,
and at the end one watch per kind replaying everything the sequence did. :func:`execute` runs a
sequence on one backend in one namespace and returns one *outcome* per call, normalised
(:func:`normalize`: uids, resourceVersion values, timestamps, managedFields and generated
suffixes dropped, defaulted fields kept), so the fake's outcomes and the server's compare with
``==``. :func:`cause` names the root cause of each difference (the call, the kind, and the
first differing field or status), and :func:`shrink` reduces a sequence to the fewest
operations that still show one root cause: a minimal reproduction.

Pods name a scheduler that does not exist, and the fake runs with a scheduler that never
binds, so no pod is ever bound (nor its status written by a controller) on either side:
what a kubelet does is the contract tier's business, and random traffic compares the API
server's answers only.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from podrunner.backends.base import Backend
from podrunner.errors import BackendError, NotFound

Op = dict[str, Any]
Outcome = Any

#: No scheduler has this name, so no pod is ever bound nor has its status written by one.
NO_SCHEDULER = "podrunner-differential-none"
KINDS = ("Pod", "Secret", "ConfigMap", "Event", "Namespace")
NAMES = {
    "Pod": ("p0", "p1", "p2"),
    "Secret": ("s0", "s1", "s2"),
    "ConfigMap": ("c0", "c1", "c2"),
    "Event": ("e0", "e1"),
    "Namespace": ("n0", "n1"),
}
LABEL_KEYS = ("app", "tier", "x.example.com/k")
LABEL_VALUES = ("a", "b", "")
LABEL_SELECTORS = (
    "app=a",
    "app!=a",
    "app in (a,b)",
    "app notin (a)",
    "tier",
    "!tier",
    "app=a,tier=b",
    "x.example.com/k",
    "app in (",  # malformed: 400
    "app==a",
)
FIELD_SELECTORS = {
    "Pod": (
        "metadata.name=p0",
        "metadata.name!=p1",
        "status.phase=Pending",
        "status.phase!=Pending",
        "spec.nodeName=",
        "spec.restartPolicy=Never",
        "spec.schedulerName=default-scheduler",
        "spec.serviceAccountName=default",
        "spec.image=x",  # unsupported: 400
    ),
    "Secret": ("metadata.name=s0", "type=Opaque", "type!=Opaque", "data=x"),
    "ConfigMap": ("metadata.name=c1", "metadata.name!=c0", "data=x"),
    "Event": ("metadata.name=e0", "involvedObject.name=p0", "reason=Demo", "type=Normal"),
    "Namespace": ("metadata.name=n0", "status.phase=Active"),
}
GRACES = (None, 0, 1, 30, -1, 5)


# -- generation ---------------------------------------------------------------------------------


def _labels(rng: random.Random) -> dict[str, str]:
    out = {}
    for _ in range(rng.randint(0, 2)):
        out[rng.choice(LABEL_KEYS)] = rng.choice(LABEL_VALUES)
    if rng.random() < 0.03:
        out["bad key!"] = "v"
    return out


def _meta(rng: random.Random, kind: str, name: str, owners: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if rng.random() < 0.08:
        del meta["name"]
        meta["generateName"] = "g-" + kind.lower()[:3] + "-"
    if rng.random() < 0.6:
        meta["labels"] = _labels(rng)
    if rng.random() < 0.2:
        meta["annotations"] = rng.choice(({}, {"note": "x"}, {"a.example.com/b": ""}))
    r = rng.random()
    if r < 0.08:
        meta["finalizers"] = ["example.com/hold"]
    elif r < 0.1:
        meta["finalizers"] = ["hold"]
    elif r < 0.11:
        meta["finalizers"] = ["kubernetes.io/x", "kubernetes.io/x"]
    if owners and kind != "Namespace" and rng.random() < 0.12:
        meta["ownerReferences"] = [{"$owner": rng.choice(owners)}]
    elif kind != "Namespace" and rng.random() < 0.02:
        meta["ownerReferences"] = [{"kind": "Pod", "name": "x"}]  # no apiVersion nor uid: 422
    return meta


_POD_MUTATIONS: list[tuple[str, Callable[[random.Random, dict[str, Any]], None]]] = []


def _mutation(tag: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        _POD_MUTATIONS.append((tag, fn))
        return fn

    return register


def _c0(spec: dict[str, Any]) -> dict[str, Any]:
    """The first container, or a detached one when an earlier mutation emptied the list.

    Mutations stack: "no containers" followed by any container mutation must still generate
    a (refused) spec instead of crashing the generator.
    """
    if not spec["containers"]:
        return {}
    container: dict[str, Any] = spec["containers"][0]
    return container


@_mutation("mount-undeclared")
def _m1(rng: random.Random, spec: dict[str, Any]) -> None:
    _c0(spec)["volumeMounts"] = [{"name": "nothere", "mountPath": "/x"}]


@_mutation("volume")
def _m2(rng: random.Random, spec: dict[str, Any]) -> None:
    vol = rng.choice(
        (
            {"name": "v", "emptyDir": {}},
            {"name": "v", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "v", "configMap": {"name": "c0"}},
            {"name": "v", "configMap": {"name": "c0", "items": [{"key": "k", "path": "k"}]}},
            {"name": "v", "configMap": {"name": "c0", "items": [{"key": "k", "path": "../k"}]}},
            {"name": "v", "configMap": {"name": "c0", "items": [{"key": "", "path": "k"}]}},
            {"name": "v", "configMap": {"name": "c0", "defaultMode": 1000}},
            {"name": "v", "configMap": {"name": "c0", "defaultMode": 256}},
            {"name": "v", "secret": {"secretName": "s0"}},
            {"name": "v", "secret": {"secretName": "s0", "optional": True}},
            {"name": "v", "secret": {}},
            {"name": "V_bad", "emptyDir": {}},
            {"name": "v"},
            {"name": "v", "emptyDir": {}, "configMap": {"name": "c0"}},
        )
    )
    spec["volumes"] = [vol]
    if rng.random() < 0.2:
        spec["volumes"].append(dict(vol))  # duplicate name
    if rng.random() < 0.6:
        mount: dict[str, Any] = {"name": vol["name"], "mountPath": "/data"}
        if rng.random() < 0.2:
            mount["mountPath"] = ""
        if rng.random() < 0.2:
            mount["readOnly"] = True
        _c0(spec)["volumeMounts"] = [mount]


@_mutation("env")
def _m3(rng: random.Random, spec: dict[str, Any]) -> None:
    var = rng.choice(
        (
            {"name": "A", "value": "1"},
            {"name": "A", "value": ""},
            {"name": "A"},
            {"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s0", "key": "k"}}},
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s0"}}},
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "s0", "key": "k"}}},
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c0", "key": "k"}}},
            {"name": "A", "valueFrom": {"configMapKeyRef": {"key": "k"}}},
            {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.nope"}}},
            {"name": "A", "valueFrom": {}},
            {"name": "1A", "value": "x"},
            {"name": "A=B", "value": "x"},
        )
    )
    _c0(spec)["env"] = [var]
    if rng.random() < 0.1:
        _c0(spec)["envFrom"] = [rng.choice(({"configMapRef": {"name": "c0"}}, {"prefix": "P"}))]


@_mutation("resources")
def _m4(rng: random.Random, spec: dict[str, Any]) -> None:
    pool = (
        {"limits": {"cpu": "500m", "memory": "128Mi"}},
        {"limits": {"cpu": "1"}},
        {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
        {"requests": {"cpu": "100m", "memory": "64Mi"}},
        {"requests": {"foo": "1"}},
        {"requests": {"example.com/gpu": "1"}},
        {"limits": {"example.com/gpu": "1"}},
        {"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}},
        {"limits": {"cpu": 0.5}},
        {"limits": {"cpu": 1}},
        {"requests": {"cpu": "10n"}},
        {"requests": {"memory": "1000Mi", "cpu": "1000m"}},
        {"requests": {"cpu": "0.5"}},
        {"requests": {"cpu": "1.5"}},
        {"limits": {"memory": "1e3"}},
        {"limits": {"memory": "1.5Gi"}},
        {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}},
        {"limits": {"hugepages-2Mi": "2Mi", "memory": "1Gi"}},
        {"limits": {"ephemeral-storage": "1Gi"}},
        {"limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"}},
        {"requests": {"cpu": "-1"}},
        {"claims": [{"name": "x"}]},
    )
    _c0(spec)["resources"] = copy.deepcopy(rng.choice(pool))


@_mutation("ports")
def _m5(rng: random.Random, spec: dict[str, Any]) -> None:
    port = rng.choice(
        (
            {"containerPort": 80},
            {"containerPort": 80, "protocol": "UDP"},
            {"containerPort": 80, "protocol": "XYZ"},
            {"containerPort": 80, "name": "http"},
            {"containerPort": 80, "name": "HTTP_bad"},
            {"containerPort": 80, "name": "a-very-long-port-name"},
            {"containerPort": 0},
            {"containerPort": 70000},
            {"containerPort": 80, "hostPort": 8080},
        )
    )
    container = _c0(spec)
    container["ports"] = [port]
    if rng.random() < 0.15:
        container["ports"].append(dict(port))


@_mutation("tolerations")
def _m6(rng: random.Random, spec: dict[str, Any]) -> None:
    spec["tolerations"] = [
        rng.choice(
            (
                {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
                {"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
                {"key": "k", "operator": "Exists", "value": "v"},
                {"key": "k", "operator": "Maybe"},
                {"operator": "Exists"},
                {"key": "k", "effect": "Sometimes"},
                {"key": "k", "operator": "Equal", "value": "v", "tolerationSeconds": 5},
                {
                    "key": "node.kubernetes.io/not-ready",
                    "operator": "Exists",
                    "effect": "NoExecute",
                },
            )
        )
    ]


@_mutation("enums")
def _m7(rng: random.Random, spec: dict[str, Any]) -> None:
    field_, value = rng.choice(
        (
            ("imagePullPolicy", "Sometimes"),
            ("imagePullPolicy", "Never"),
            ("terminationMessagePolicy", "FallbackToLogsOnError"),
            ("terminationMessagePolicy", "Loud"),
            ("dnsPolicy", "Default"),
            ("dnsPolicy", "Nope"),
            ("restartPolicy", "Sometimes"),
            ("restartPolicy", "OnFailure"),
            ("workingDir", "/tmp"),
        )
    )
    target = spec if field_ in ("dnsPolicy", "restartPolicy") else _c0(spec)
    target[field_] = value


@_mutation("host")
def _m8(rng: random.Random, spec: dict[str, Any]) -> None:
    key, value = rng.choice(
        (
            ("hostname", "h1"),
            ("hostname", "Bad_Host"),
            ("subdomain", "sub"),
            ("subdomain", "bad.sub"),
            ("activeDeadlineSeconds", 0),
            ("activeDeadlineSeconds", 60),
            ("terminationGracePeriodSeconds", -5),
            ("terminationGracePeriodSeconds", 0),
        )
    )
    spec[key] = value


@_mutation("admission")
def _m9(rng: random.Random, spec: dict[str, Any]) -> None:
    key, value = rng.choice(
        (
            ("serviceAccountName", "default"),
            ("serviceAccountName", "ghost"),
            ("serviceAccountName", "Bad_SA"),
            ("serviceAccount", "default"),
            ("automountServiceAccountToken", False),
            ("priorityClassName", "ghost"),
            ("priorityClassName", "system-cluster-critical"),
            ("priority", 5),
            ("preemptionPolicy", "Never"),
            ("enableServiceLinks", False),
        )
    )
    spec[key] = value


@_mutation("containers")
def _m10(rng: random.Random, spec: dict[str, Any]) -> None:
    r = rng.random()
    if r < 0.3:
        spec["containers"].append(copy.deepcopy(spec["containers"][0]))  # duplicate name
    elif r < 0.6:
        spec["containers"].append({"name": "side", "image": "busybox:latest"})
    elif r < 0.7:
        _c0(spec)["name"] = "Bad_Name"
    elif r < 0.8:
        spec["containers"] = []
    else:
        spec["initContainers"] = [{"name": "init", "image": "busybox"}]


@_mutation("security")
def _m11(rng: random.Random, spec: dict[str, Any]) -> None:
    r = rng.random()
    if r < 0.4:
        spec["securityContext"] = rng.choice(
            ({"runAsUser": 1000}, {"runAsUser": -1}, {"runAsNonRoot": True}, {"fsGroup": 2000})
        )
    else:
        _c0(spec)["securityContext"] = rng.choice(
            (
                {"privileged": False},
                {"allowPrivilegeEscalation": False},
                {"capabilities": {"drop": ["ALL"]}},
                {"readOnlyRootFilesystem": True},
            )
        )


@_mutation("unknown")
def _m12(rng: random.Random, spec: dict[str, Any]) -> None:
    if rng.random() < 0.5:
        spec["madeUpField"] = 1
    else:
        _c0(spec)["madeUp"] = "x"


def _pod_spec(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    container: dict[str, Any] = {
        "name": "main",
        "image": rng.choice(("busybox:1.36", "busybox", "busybox@sha256:" + "a" * 64)),
    }
    if rng.random() < 0.5:
        container["command"] = ["sh", "-c", "true"]
    spec: dict[str, Any] = {
        "restartPolicy": rng.choice(("Never", "Always")),
        "schedulerName": NO_SCHEDULER,
        "containers": [container],
    }
    tags = []
    for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
        tag, fn = rng.choice(_POD_MUTATIONS)
        fn(rng, spec)
        tags.append(tag)
    return spec, tags


_SECRET_BODIES: tuple[tuple[str | None, dict[str, str]], ...] = (
    (None, {"k": "v"}),
    ("Opaque", {}),
    ("Opaque", {"k": "v", "bad key": "v"}),
    ("kubernetes.io/tls", {"tls.crt": "c", "tls.key": "k"}),
    ("kubernetes.io/tls", {"tls.crt": "c"}),
    ("kubernetes.io/basic-auth", {"username": "u", "password": "p"}),
    ("kubernetes.io/basic-auth", {"username": "u"}),
    ("kubernetes.io/basic-auth", {"other": "x"}),
    ("kubernetes.io/basic-auth", {}),
    ("kubernetes.io/ssh-auth", {"ssh-privatekey": "k"}),
    ("kubernetes.io/ssh-auth", {}),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": '{"auths":{}}'}),
    ("kubernetes.io/dockerconfigjson", {".dockerconfigjson": "not json"}),
    ("kubernetes.io/dockerconfigjson", {}),
    ("kubernetes.io/dockercfg", {".dockercfg": "{}"}),
    ("kubernetes.io/dockercfg", {}),
    ("kubernetes.io/service-account-token", {}),
    ("bootstrap.kubernetes.io/token", {}),
    ("example.com/custom", {"a": "b"}),
    ("", {"a": "b"}),
)


def _body(rng: random.Random, kind: str, name: str, owners: list[str], ns: str) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": kind,
        "metadata": _meta(rng, kind, name, owners),
    }
    tags: list[str] = []
    if kind == "Pod":
        obj["spec"], tags = _pod_spec(rng)
    elif kind == "Secret":
        type_, data = rng.choice(_SECRET_BODIES)
        if type_ is not None:
            obj["type"] = type_
        if rng.random() < 0.5:
            obj["stringData"] = dict(data)
        else:
            obj["data"] = {k: _b64(v) for k, v in data.items()}
        if rng.random() < 0.1:
            obj["immutable"] = True
        tags.append(f"type={type_}")
    elif kind == "ConfigMap":
        obj["data"] = rng.choice(({}, {"k": "v"}, {"k": ""}, {"bad/key": "v"}, {".": "x"}))
        if rng.random() < 0.1:
            obj["binaryData"] = rng.choice(({"b": _b64("x")}, {"k": _b64("x")}))
        if rng.random() < 0.1:
            obj["immutable"] = True
    elif kind == "Event":
        obj["involvedObject"] = rng.choice(
            (
                {"kind": "Pod", "name": "p0", "namespace": ns, "apiVersion": "v1"},
                {"kind": "Pod", "name": "p0"},
                {"kind": "Pod", "name": "p0", "namespace": "elsewhere"},
                {},
            )
        )
        obj["reason"] = rng.choice(("Demo", ""))
        obj["message"] = "m"
        r = rng.random()
        if r < 0.4:
            obj["type"] = rng.choice(("Normal", "Warning", "Odd"))
        if rng.random() < 0.5:
            obj["source"] = {"component": "differential"}
        if rng.random() < 0.3:
            obj["count"] = rng.choice((1, 0, -1))
        if rng.random() < 0.3:
            obj["firstTimestamp"] = "2026-01-01T00:00:00Z"
            obj["lastTimestamp"] = "2026-01-01T00:00:01Z"
    elif kind == "Namespace" and rng.random() < 0.05:
        obj["metadata"]["name"] = "Bad_NS"
    if rng.random() < 0.05 and kind != "Namespace":
        obj["madeUpTopLevel"] = True
    obj["$tags"] = tags
    return obj


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _patch(rng: random.Random, kind: str) -> tuple[dict[str, Any], list[str]]:
    meta_patches: list[dict[str, Any]] = [
        {"metadata": {"labels": {"app": rng.choice(LABEL_VALUES)}}},
        {"metadata": {"labels": {"tier": None}}},
        {"metadata": {"labels": {}}},
        {"metadata": {"annotations": {"note": rng.choice(("x", "y", ""))}}},
        {"metadata": {"annotations": {}}},
        {},
        {"metadata": {"finalizers": None}},
        {"metadata": {"finalizers": ["example.com/hold"]}},
        {"metadata": {"finalizers": ["hold"]}},
        {"metadata": {"labels": {"bad key!": "x"}}},
        {"metadata": {"ownerReferences": None}},
        {"unknownTop": 1},
    ]
    per_kind: dict[str, list[dict[str, Any]]] = {
        "Pod": [
            {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}},
            {"spec": {"activeDeadlineSeconds": rng.choice((30, 0))}},
            {"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}},
            {"spec": {"restartPolicy": "OnFailure"}},
            {"spec": {"terminationGracePeriodSeconds": 3}},
            {"spec": {"nodeSelector": {"a": "b"}}},
        ],
        "Secret": [
            {"data": {"k": _b64("new")}},
            {"stringData": {"k": "via-string"}},
            {"data": {"k": None}},
            {"type": "example.com/other"},
            {"immutable": True},
            {"data": {"k": "!!!"}},
        ],
        "ConfigMap": [
            {"data": {"k": "v2"}},
            {"data": {"k": None}},
            {"data": {}},
            {"immutable": True},
            {"binaryData": {"b": _b64("y")}},
        ],
        "Event": [{"count": 2}, {"message": "m2"}, {"type": "Warning"}],
        "Namespace": [{"spec": {"finalizers": []}}],
    }
    pool = meta_patches + per_kind[kind] * 2
    body = copy.deepcopy(rng.choice(pool))
    tags = []
    r = rng.random()
    if r < 0.15:
        body.setdefault("metadata", {})["resourceVersion"] = "$current"
        tags.append("rv=current")
    elif r < 0.25:
        body.setdefault("metadata", {})["resourceVersion"] = "$stale"
        tags.append("rv=stale")
    return body, tags


def generate(seed: int, length: int = 25) -> list[Op]:
    """Return the operations of sequence ``seed`` (deterministic)."""
    rng = random.Random(seed)
    ops: list[Op] = []
    created: list[tuple[str, str]] = []
    for _ in range(length):
        kind = rng.choices(KINDS, weights=(40, 20, 20, 10, 6))[0]
        name = rng.choice(NAMES[kind])
        verb = rng.choices(
            ("create", "get", "list", "patch", "replace", "delete", "dry_run"),
            weights=(32, 8, 12, 20, 8, 14, 4),
        )[0]
        owners = [f"{k}/{n}" for k, n in created if k in ("Pod", "Secret", "ConfigMap")]
        op: Op = {"verb": verb, "kind": kind, "name": name}
        if verb in ("create", "dry_run"):
            op["body"] = _body(rng, kind, name, owners, "$ns")
            created.append((kind, name))
        elif verb == "list":
            r = rng.random()
            if r < 0.4:
                op["label_selector"] = rng.choice(LABEL_SELECTORS)
            elif r < 0.8:
                op["field_selector"] = rng.choice(FIELD_SELECTORS[kind])
        elif verb == "patch":
            op["patch"], op["tags"] = _patch(rng, kind)
        elif verb == "replace":
            op["change"] = rng.choice(("labels", "stale", "no-rv", "same", "drop-defaults"))
        elif verb == "delete":
            op["grace"] = rng.choice(GRACES)
        ops.append(op)
    ops.append({"verb": "watch"})
    return ops


# -- execution ----------------------------------------------------------------------------------

_GENERATED = re.compile(r"^([a-z0-9-]*g-[a-z]{3}-)[a-z0-9]{5}$")
_SA_VOLUME = re.compile(r"kube-api-access-[a-z0-9]{5}")


def _norm_value(value: Any) -> Any:
    if isinstance(value, str):
        if "kube-api-access-" in value:
            value = _SA_VOLUME.sub("kube-api-access-*", value)
        m = _GENERATED.match(value)
        return m.group(1) + "*" if m else value
    if isinstance(value, dict):
        return {k: _norm_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm_value(v) for v in value]
    return value


_DROP_META = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink")


def normalize(obj: Any, ns: str = "") -> Any:
    """Return ``obj`` with what legitimately differs between two clusters taken out."""
    if not isinstance(obj, dict):
        return obj
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in _DROP_META:
            meta.pop(key, None)
        if "deletionTimestamp" in meta:
            meta["deletionTimestamp"] = "<set>"
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict):
                ref.pop("uid", None)
        if ns and meta.get("namespace") == ns:
            meta["namespace"] = "$ns"
    kind = out.get("kind")
    if kind == "Pod":
        status = out.get("status") or {}
        out["status"] = {k: status[k] for k in ("phase", "qosClass") if k in status}
        (out.get("spec") or {}).pop("nodeName", None)
    if kind == "Event":
        inv = out.get("involvedObject")
        if isinstance(inv, dict) and inv.get("namespace") == ns:
            inv["namespace"] = "$ns"
    if kind == "Namespace" and isinstance(meta, dict):
        labels = meta.get("labels") or {}
        if "kubernetes.io/metadata.name" in labels:
            labels["kubernetes.io/metadata.name"] = meta.get("name")
    return _norm_value(out)


def _error(exc: BackendError) -> tuple[Any, ...]:
    causes = tuple(sorted((c.field or "", c.reason or "") for c in exc.causes or ()))
    return ("error", exc.status, exc.reason, causes)


@dataclass
class Run:
    """One sequence's outcomes on one backend, and the time its calls took."""

    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    calls: int = 0


class Executor:
    """Runs one sequence on one backend, in namespace ``ns`` (namespace names prefixed)."""

    def __init__(self, backend: Backend, ns: str, watch_timeout: float = 1.0) -> None:
        self.b = backend
        self.ns = ns
        self.seen: dict[tuple[str, str], dict[str, Any]] = {}
        self.stale: dict[tuple[str, str], str] = {}
        self.watch_timeout = watch_timeout
        self.parallel_watch = getattr(backend, "api_client", None) is not None
        self.start_rv = ""
        self.run = Run()

    def _name(self, kind: str, name: str) -> str:
        return f"{self.ns}-{name}" if kind == "Namespace" else name

    def _space(self, kind: str) -> str | None:
        return None if kind == "Namespace" else self.ns

    def _remember(self, kind: str, name: str, obj: dict[str, Any]) -> None:
        key = (kind, name)
        old = self.seen.get(key)
        if old is not None:
            self.stale[key] = old["metadata"]["resourceVersion"]
        self.seen[key] = obj

    def _resolve(self, body: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(body)
        body.pop("$tags", None)
        meta = body["metadata"]
        kind = body["kind"]
        if kind == "Namespace":
            if "name" in meta and meta["name"] != "Bad_NS":
                meta["name"] = self._name(kind, meta["name"])
            if "generateName" in meta:
                meta["generateName"] = f"{self.ns}-g-nam-"
            labels = meta.setdefault("labels", {})
            labels["podrunner.dev/differential"] = self.ns
        else:
            meta["namespace"] = self.ns
        for ref in meta.get("ownerReferences") or ():
            target = ref.pop("$owner", None)
            if target is None:
                continue
            okind, oname = target.split("/")
            ref.update({"apiVersion": "v1", "kind": okind, "name": oname})
            seen = self.seen.get((okind, oname))
            ref["uid"] = seen["metadata"]["uid"] if seen else "00000000-0000-4000-8000-000000000000"
        if kind == "Event":
            inv = body.get("involvedObject") or {}
            if inv.get("namespace") == "$ns":
                inv["namespace"] = self.ns
            if inv.get("namespace") == "elsewhere":
                inv["namespace"] = self.ns + "-else"
        return body

    def _call(self, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.run.seconds += time.perf_counter() - start
            self.run.calls += 1

    def execute(self, ops: list[Op]) -> Run:
        """Run ``ops`` and return their normalised outcomes."""
        self.start_rv = self.b.list("ConfigMap", self.ns).resource_version
        for op in ops:
            try:
                result = self._op(op)
            except BackendError as exc:
                result = _error(exc)
            self.run.outcomes.append(result)
        return self.run

    def _op(self, op: Op) -> Outcome:
        verb = op["verb"]
        if verb == "watch":
            return self._watch()
        kind: str = op["kind"]
        name = self._name(kind, op["name"])
        space = self._space(kind)
        b = self.b
        if verb in ("create", "dry_run"):
            body = self._resolve(op["body"])
            obj = self._call(lambda: b.create(body, dry_run=verb == "dry_run"))
            if verb == "create" and obj["metadata"]["name"] == name:
                self._remember(kind, op["name"], obj)
            return ("ok", normalize(obj, self.ns))
        if verb == "get":
            obj = self._call(lambda: b.get(kind, space, name))
            self._remember(kind, op["name"], obj)
            return ("ok", normalize(obj, self.ns))
        if verb == "list":
            label = op.get("label_selector")
            if kind == "Namespace":
                extra = f"podrunner.dev/differential={self.ns}"
                label = f"{label},{extra}" if label else extra
            fsel = op.get("field_selector")
            if kind == "Namespace" and fsel and fsel.startswith("metadata.name="):
                fsel = "metadata.name=" + self._name(kind, fsel.split("=", 1)[1])
            listing = self._call(
                lambda: b.list(kind, space, label_selector=label, field_selector=fsel)
            )
            items = [normalize(o, self.ns) for o in listing.items if self._ours(o)]
            return ("ok", sorted(json.dumps(i, sort_keys=True) for i in items))
        if verb == "patch":
            patch = copy.deepcopy(op["patch"])
            meta = patch.get("metadata") or {}
            rv = meta.get("resourceVersion")
            key = (kind, op["name"])
            if rv == "$current":
                seen = self.seen.get(key)
                meta["resourceVersion"] = seen["metadata"]["resourceVersion"] if seen else "1"
            elif rv == "$stale":
                meta["resourceVersion"] = self.stale.get(key, "1")
            obj = self._call(lambda: b.patch(kind, space, name, patch))
            self._remember(kind, op["name"], obj)
            return ("ok", normalize(obj, self.ns))
        if verb == "replace":
            key = (kind, op["name"])
            seen = self.seen.get(key)
            if seen is None:
                return ("skipped",)
            body = copy.deepcopy(seen)
            body["metadata"].pop("managedFields", None)
            change = op["change"]
            if change == "labels":
                body["metadata"].setdefault("labels", {})["tier"] = "b"
            elif change == "stale":
                body["metadata"]["resourceVersion"] = self.stale.get(key, "1")
                body["metadata"].setdefault("labels", {})["tier"] = "a"
            elif change == "no-rv":
                body["metadata"].pop("resourceVersion", None)
                body["metadata"].setdefault("annotations", {})["r"] = "1"
            elif change == "drop-defaults" and kind == "Pod":
                for c in body["spec"]["containers"]:
                    c.pop("terminationMessagePath", None)
            obj = self._call(lambda: b.replace(body))
            self._remember(kind, op["name"], obj)
            return ("ok", normalize(obj, self.ns))
        if verb == "delete":
            grace = op.get("grace")
            self._call(lambda: b.delete(kind, space, name, grace_period_seconds=grace))
            return ("ok", None)
        raise AssertionError(verb)

    def _ours(self, obj: dict[str, Any]) -> bool:
        # Only what the sequence made: the controllers' own objects (the root CA ConfigMap,
        # the scheduler's Events) are not part of the traffic.
        name = obj["metadata"]["name"]
        if obj.get("kind") == "Namespace":
            return str(name).startswith(self.ns)
        return name in _ALL_NAMES or _GENERATED.match(name) is not None

    def _watch(self) -> Outcome:
        out: dict[str, list[Any]] = {}

        def one(kind: str) -> list[Any]:
            events = []
            space = self._space(kind)
            label = f"podrunner.dev/differential={self.ns}" if kind == "Namespace" else None
            state: dict[str, Any] = {}
            for event in self.b.watch(
                kind,
                space,
                label_selector=label,
                resource_version=self.start_rv,
                timeout_seconds=self.watch_timeout,
            ):
                if event.type not in ("ADDED", "MODIFIED", "DELETED"):
                    continue
                if not self._ours(event.object):
                    continue
                norm = normalize(event.object, self.ns)
                name = event.object["metadata"]["name"]
                # A controller's status write is not traffic: only changes that survive
                # normalisation count.
                if event.type == "MODIFIED" and state.get(name) == norm:
                    continue
                state[name] = norm
                events.append((event.type, norm))
            return events

        if self.parallel_watch:
            # Five one-second server-side timeouts at once, not one after another.
            with concurrent.futures.ThreadPoolExecutor(len(KINDS)) as pool:
                results = dict(zip(KINDS, pool.map(one, KINDS), strict=True))
        else:
            results = {kind: one(kind) for kind in KINDS}
        for kind in KINDS:
            out[kind] = results[kind]
        return ("watch", out)

    def cleanup(self) -> None:
        """Let go of every finalizer the sequence set, so its namespace can be deleted."""
        for kind in ("Pod", "Secret", "ConfigMap", "Event"):
            with contextlib.suppress(BackendError):
                for obj in self.b.list(kind, self.ns).items:
                    if obj["metadata"].get("finalizers"):
                        with contextlib.suppress(BackendError):
                            self.b.patch(
                                kind,
                                self.ns,
                                obj["metadata"]["name"],
                                {"metadata": {"finalizers": None}},
                            )
        with contextlib.suppress(BackendError):
            for obj in self.b.list(
                "Namespace", None, label_selector=f"podrunner.dev/differential={self.ns}"
            ).items:
                with contextlib.suppress(BackendError):
                    self.b.delete("Namespace", None, obj["metadata"]["name"])


_ALL_NAMES = {n for names in NAMES.values() for n in names}


# -- comparison ---------------------------------------------------------------------------------


def _first_diff(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key, "<absent>") != b.get(key, "<absent>"):
                if key not in a or key not in b:
                    return f"{path}.{key} ({'only server' if key not in a else 'only fake'})"
                return _first_diff(a[key], b[key], f"{path}.{key}")
        return path
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}[len {len(a)} vs {len(b)}]"
        for x, y in zip(a, b, strict=True):
            if x != y:
                return _first_diff(x, y, f"{path}[]")
        return path
    if isinstance(a, str) and isinstance(b, str) and a.startswith("{") and b.startswith("{"):
        with contextlib.suppress(ValueError):
            return _first_diff(json.loads(a), json.loads(b), path)
    return f"{path} ({_short(a)} vs {_short(b)})"


def _short(x: Any) -> str:
    text = json.dumps(x, sort_keys=True)
    return text if len(text) < 60 else text[:57] + "..."


def cause(op: Op, fake: Outcome, real: Outcome) -> str:
    """Name the root cause of one difference: call, kind, and what differs."""
    verb = op["verb"]
    head = verb if verb == "watch" else f"{verb} {op['kind']}"
    if fake[0] == "skipped" or real[0] == "skipped":
        return f"{head}: fake {fake[0]} vs server {real[0]} (an earlier difference)"
    if fake[0] == "error" and real[0] == "error":
        if fake[1] != real[1] or fake[2] != real[2]:
            return f"{head}: fake {fake[1]} {fake[2]} vs server {real[1]} {real[2]}"
        return f"{head}: {fake[1]} causes fake {list(fake[3])[:2]} vs server {list(real[3])[:2]}"
    if fake[0] == "error" or real[0] == "error":
        f = f"{fake[1]} {fake[2]}" if fake[0] == "error" else "ok"
        r = f"{real[1]} {real[2]} {list(real[3])[:1]}" if real[0] == "error" else "ok"
        if fake[0] == "error":
            f += f" {list(fake[3])[:1]}"
        return f"{head}: fake {f} vs server {r}"
    if verb == "watch":
        for kind in KINDS:
            if fake[1][kind] != real[1][kind]:
                fe, re_ = fake[1][kind], real[1][kind]
                if [t for t, _ in fe] != [t for t, _ in re_]:
                    return (
                        f"watch {kind}: fake {[t for t, _ in fe]} vs server {[t for t, _ in re_]}"[
                            :200
                        ]
                    )
                for x, y in zip(fe, re_, strict=True):
                    if x != y:
                        return f"watch {kind}: {_first_diff(x[1], y[1])}"
        return "watch"
    return f"{head}: {_first_diff(fake[1], real[1])}"


@dataclass
class Report:
    """Figures of one differential run."""

    compared: int = 0
    disagreed: int = 0
    causes: Counter[str] = field(default_factory=Counter)
    samples: dict[str, tuple[int, int]] = field(default_factory=dict)
    fake_seconds: float = 0.0
    fake_calls: int = 0
    server_seconds: float = 0.0
    server_calls: int = 0
    reproductions: dict[str, list[Op]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Disagreeing calls as a fraction of compared calls."""
        return self.disagreed / self.compared if self.compared else 0.0

    def summary(self) -> str:
        """A readable account: the figures, then each root cause with its count."""
        fake_cps = self.fake_calls / self.fake_seconds if self.fake_seconds else 0.0
        real_cps = self.server_calls / self.server_seconds if self.server_seconds else 0.0
        lines = [
            f"{self.compared} calls compared, {self.disagreed} disagree ({100 * self.rate:.2f}%); "
            f"fake {fake_cps:,.0f} calls/s, server {real_cps:,.0f} calls/s",
        ]
        for text, count in self.causes.most_common():
            seed, index = self.samples[text]
            lines.append(f"  {count:5d}  {text}  [seed {seed} call {index}]")
            if text in self.reproductions:
                lines.append("         minimal: " + json.dumps(self.reproductions[text])[:600])
        return "\n".join(lines)


def compare_runs(seed: int, ops: list[Op], fake: Run, real: Run, report: Report) -> None:
    """Add one sequence's comparison to ``report``."""
    report.fake_seconds += fake.seconds
    report.fake_calls += fake.calls
    report.server_seconds += real.seconds
    report.server_calls += real.calls
    for i, (op, f, r) in enumerate(zip(ops, fake.outcomes, real.outcomes, strict=True)):
        if f == ("skipped",) and r == ("skipped",):
            continue
        report.compared += 1
        if f != r:
            report.disagreed += 1
            text = cause(op, f, r)
            report.causes[text] += 1
            report.samples.setdefault(text, (seed, i))


# -- running on the two sides -------------------------------------------------------------------


def fake_backend() -> Any:
    """A fresh fake cluster's backend whose scheduler never binds a pod (see the module doc)."""
    from podrunner.testing import FakeCluster

    return FakeCluster(schedule_delay=1e9, seed=0).backend


def _make_namespace(backend: Backend, ns: str) -> None:
    backend.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def wait_for_service_accounts(backend: Backend, namespaces: list[str], timeout: float = 60) -> None:
    """Pods are refused until the controller-manager made each namespace's default account."""
    api_client = getattr(backend, "api_client", None)
    if api_client is None:
        return
    import kubernetes

    core = kubernetes.client.CoreV1Api(api_client)
    deadline = time.monotonic() + timeout
    for ns in namespaces:
        while True:
            try:
                core.read_namespaced_service_account("default", ns)
                break
            except kubernetes.client.ApiException as exc:
                if exc.status != 404 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def run_fake(ops: list[Op], ns: str) -> Run:
    """Run one sequence on a fresh fake cluster."""
    backend = fake_backend()
    _make_namespace(backend, ns)
    return Executor(backend, ns, watch_timeout=1.0).execute(ops)


def run_server(backend: Backend, ops: list[Op], ns: str, fresh: bool = True) -> Run:
    """Run one sequence on the real server in namespace ``ns`` (made here if ``fresh``)."""
    if fresh:
        _make_namespace(backend, ns)
        wait_for_service_accounts(backend, [ns])
    ex = Executor(backend, ns, watch_timeout=1.0)
    try:
        return ex.execute(ops)
    finally:
        ex.cleanup()
        with contextlib.suppress(NotFound):
            backend.delete("Namespace", None, ns)


def differential(
    backend: Backend,
    seeds: list[int],
    *,
    token: str,
    length: int = 25,
    workers: int = 4,
    shrink_causes: int = 0,
    deadline: float | None = None,
) -> Report:
    """Run ``seeds`` on the fake and on ``backend``; shrink the first ``shrink_causes`` causes."""
    report = Report()
    names = [f"d{token}-{seed}" for seed in seeds]
    for ns in names:
        _make_namespace(backend, ns)
    wait_for_service_accounts(backend, names)
    sequences = {seed: generate(seed, length) for seed in seeds}

    def server(seed: int, ns: str) -> Run | None:
        if deadline is not None and time.monotonic() > deadline:
            with contextlib.suppress(NotFound):
                backend.delete("Namespace", None, ns)
            return None
        return run_server(backend, sequences[seed], ns, fresh=False)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        real_runs = list(pool.map(server, seeds, names))
    for seed, ns, real in zip(seeds, names, real_runs, strict=True):
        if real is None:
            continue
        fake = run_fake(sequences[seed], ns)
        compare_runs(seed, sequences[seed], fake, real, report)
    for text, _ in report.causes.most_common(shrink_causes):
        seed, index = report.samples[text]
        ops = sequences[seed]
        report.reproductions[text] = shrink(backend, ops[: index + 1], text, token)
    return report


def _strip(ops: list[Op]) -> list[Op]:
    out = []
    for op in ops:
        op = dict(op)
        if "body" in op:
            op["body"] = {k: v for k, v in op["body"].items() if k != "$tags"}
        out.append(op)
    return out


def shrink(backend: Backend, ops: list[Op], text: str, token: str, budget: int = 40) -> list[Op]:
    """Remove operations while the last one still shows ``text``: a minimal reproduction."""
    counter = iter(range(10**6))

    def shows(candidate: list[Op]) -> bool:
        ns = f"d{token}-s{next(counter)}"
        fake = run_fake(candidate, ns)
        real = run_server(backend, candidate, ns)
        f, r = fake.outcomes[-1], real.outcomes[-1]
        return f != r and cause(candidate[-1], f, r) == text

    current = list(ops)
    tries = 0
    i = 0
    while i < len(current) - 1 and tries < budget:
        candidate = current[:i] + current[i + 1 :]
        tries += 1
        if shows(candidate):
            current = candidate
        else:
            i += 1
    return _strip(current)


def iter_seeds(start: int, count: int) -> Iterator[int]:
    """The seeds of a run."""
    return iter(range(start, start + count))
